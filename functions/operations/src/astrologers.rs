//! Suspending and reinstating astrologers, and KYC decisions made by hand.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::app::closing::{self, CloseError};
use shared::domain::booking::{Action, BookingId, Consultation, ConsultationStatus, Party};
use shared::domain::kyc::RequestStatus;
use shared::domain::staff::{AuditEntry, Reason, StaffAction};
use shared::domain::user::VerificationStatus;
use shared::http::{self, Request, Response, json};
use shared::store::retry::{self, Attempt, Retry};
use shared::store::staff::Standing;
use shared::store::{Applied, KycAuditEntry, KycEvent, StoreError};
use shared::{ApiError, KycStatus, UserId};

use crate::{App, ReasonBody, reason, user_in_path};

/// How often a reinstatement re-reads when the astrologer's KYC moved underneath.
const ATTEMPTS: Retry = Retry::attempts(3);

/// An astrologer as staff see them.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct AstrologerStanding {
    astrologer_id: UserId,
    /// In the catalogue (approved by KYC and not suspended).
    listed: bool,
    suspended: bool,
    #[serde(serialize_with = "shared::domain::time::rfc3339_opt")]
    suspended_at: Option<DateTime<Utc>>,
    suspended_by: Option<UserId>,
    suspension_reason: Option<String>,
    kyc_status: KycStatus,
    verification_status: VerificationStatus,
    /// Their own share (`PUT .../terms`); `null`: the platform's.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    revenue_share_percent: Option<rust_decimal::Decimal>,
    accepts_promotional_offers: bool,
}

impl From<Standing> for AstrologerStanding {
    fn from(s: Standing) -> Self {
        let suspension = s.suspension;
        Self {
            astrologer_id: s.astrologer.id,
            listed: s.astrologer.listed,
            suspended: suspension.is_some(),
            suspended_at: suspension.as_ref().map(|x| x.at),
            suspended_by: suspension.as_ref().map(|x| x.by.clone()),
            suspension_reason: suspension.map(|x| x.reason),
            kyc_status: s.astrologer.kyc_status,
            verification_status: s.astrologer.verification_status,
            revenue_share_percent: s.astrologer.revenue_share_percent,
            accepts_promotional_offers: s.astrologer.accepts_promotional_offers,
        }
    }
}

/// A suspension and the consultations it closed: scheduled ones cancelled (fully refunded),
/// ones in progress ended and settled for the minutes used.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Suspended {
    astrologer: AstrologerStanding,
    /// Cancelled by this request (a retry lists only what was still left to cancel).
    cancelled: Vec<Consultation>,
    /// In progress, ended (completed, settled) by this request.
    ended: Vec<Consultation>,
}

async fn standing(app: &App, id: &UserId) -> Result<Standing, ApiError> {
    app.store.astrologer_standing(id).await?.ok_or_else(|| ApiError::not_found("astrologer"))
}

fn target(id: &UserId) -> String {
    format!("astrologer:{id}")
}

/// Suspends (once) and then ends every open consultation of the astrologer: scheduled ones
/// cancelled, ones in progress settled, as staff. A start cannot slip in after the
/// suspension (it is conditioned on the astrologer not being suspended), so what this
/// reads after it is everything. A retry after a partial failure ends what is left.
pub(crate) async fn suspend(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: ReasonBody = http::json_body(req)?;
    let reason = reason(StaffAction::SuspendAstrologer, body.reason)?;
    let id = user_in_path(req, "astrologer")?;
    if standing(app, &id).await?.suspension.is_none() {
        let audit = AuditEntry::new(staff, StaffAction::SuspendAstrologer, target(&id), reason);
        // `false`: suspended by someone else a moment ago; either way it is suspended now.
        app.store.suspend_astrologer(&id, &audit).await?;
    }
    let after = standing(app, &id).await?;
    let (cancelled, ended) = end_open(app, &after).await?;
    tracing::info!(astrologer = %id, cancelled = cancelled.len(), ended = ended.len(), "astrologer suspended");
    Ok(json(200, &Suspended { astrologer: after.into(), cancelled, ended }))
}

/// `PUT /admin/astrologers/{id}/terms`: what an astrologer is paid and whether they take part
/// in promotional offers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct TermsBody {
    /// Their share of what customers are charged, 0 to 100 with at most two decimals;
    /// `null`: the platform's (`ASTROLOGER_SHARE_PERCENT`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^(100(\\.0{1,2})?|[0-9]{1,2}(\\.[0-9]{1,2})?)$"))]
    revenue_share_percent: Option<String>,
    accepts_promotional_offers: bool,
    /// Why (1 to 500 characters); kept in the staff audit log.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

/// The terms as set.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Terms {
    astrologer_id: UserId,
    /// `null`: the platform's share.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    revenue_share_percent: Option<rust_decimal::Decimal>,
    accepts_promotional_offers: bool,
}

pub(crate) async fn set_terms(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: TermsBody = http::json_body(req)?;
    let share = body
        .revenue_share_percent
        .as_deref()
        .map(|raw| {
            shared::domain::booking::RevenueShare::parse_percent(raw).ok_or_else(|| {
                ApiError::invalid_field("revenue_share_percent", "must be 0 to 100, at most two decimals")
            })
        })
        .transpose()?;
    let reason = reason(StaffAction::SetAstrologerTerms, body.reason)?;
    let id = user_in_path(req, "astrologer")?;
    let audit = AuditEntry::new(staff, StaffAction::SetAstrologerTerms, target(&id), reason);
    if !app.store.set_astrologer_terms(&id, share, body.accepts_promotional_offers, &audit).await? {
        return Err(ApiError::not_found("astrologer"));
    }
    tracing::info!(astrologer = %id, ?share, "astrologer terms set");
    Ok(json(
        200,
        &Terms {
            astrologer_id: id,
            revenue_share_percent: share,
            accepts_promotional_offers: body.accepts_promotional_offers,
        },
    ))
}

/// The astrologer's open (scheduled, ringing or in progress) consultations: from the schedule on
/// their item (strongly consistent: a booking committed just before the suspension is
/// there) and from their consultations index (GSI2, which also has any the schedule has
/// dropped).
async fn open(app: &App, s: &Standing) -> Result<Vec<Consultation>, StoreError> {
    let id = &s.astrologer.id;
    let mut found = app.store.open_consultations_of(id).await?;
    for (_, _, booking) in &s.astrologer.booked {
        let Some(booking) = BookingId::parse(booking) else { continue };
        if found.iter().any(|c| c.booking_id == booking) {
            continue;
        }
        found.extend(app.store.consultation(&booking).await?);
    }
    found.retain(|c| {
        matches!(c.status, ConsultationStatus::Scheduled | ConsultationStatus::Ringing | ConsultationStatus::InProgress)
            && &c.astrologer_id == id
    });
    Ok(found)
}

/// Ends each through the one closing path, as staff (whatever its status is when written:
/// the index may be a moment behind): everything back for one not started, the minutes
/// used settled for one in progress. The cancelled, then the ended.
async fn end_open(app: &App, s: &Standing) -> Result<(Vec<Consultation>, Vec<Consultation>), ApiError> {
    let (mut cancelled, mut ended) = (Vec::new(), Vec::new());
    let mut failed = 0;
    for c in open(app, s).await? {
        let id = c.booking_id.clone();
        match closing::close(&app.store, c, Action::End, Party::Staff, app.share).await {
            Ok(closed) if closed.status == ConsultationStatus::Completed => ended.push(closed),
            Ok(closed) => cancelled.push(closed),
            // Closed a moment ago by someone else: nothing left to end.
            Err(CloseError::NotAllowed(..)) => {}
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "suspension could not end a consultation");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(ApiError::unavailable(
            "busy",
            format!("suspended, but {failed} consultation(s) could not be ended yet; retry"),
        ));
    }
    Ok((cancelled, ended))
}

/// Lifts a suspension: listed again if KYC approved them, still unlisted otherwise.
pub(crate) async fn reinstate(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: ReasonBody = http::json_body(req)?;
    let reason = reason(StaffAction::ReinstateAstrologer, body.reason)?;
    let id = user_in_path(req, "astrologer")?;
    let busy = |_| ApiError::unavailable("busy", "the astrologer kept changing; retry");
    let current = retry::on_conflict(ATTEMPTS, busy, || async {
        let seen = standing(app, &id).await?;
        if seen.suspension.is_none() {
            return Ok(Attempt::Done(seen));
        }
        let audit = AuditEntry::new(staff, StaffAction::ReinstateAstrologer, target(&id), reason.clone());
        if !app.store.reinstate_astrologer(&seen, &audit).await? {
            return Ok(Attempt::Conflict);
        }
        tracing::info!(astrologer = %id, "astrologer reinstated");
        standing(app, &id).await.map(Attempt::Done)
    })
    .await?;
    Ok(json(200, &AstrologerStanding::from(current)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) enum Decision {
    Approve,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct KycDecisionBody {
    decision: Decision,
    /// Required to reject (the astrologer is told it); kept in the audit logs.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

const NOT_AWAITING_REVIEW: &str = "kyc_not_awaiting_review";

/// Approves or rejects the astrologer's current KYC request, which the astrologer completed
/// and Digio has not decided: through the webhook's own path (`apply_kyc_event`), with the
/// staff member as `verified_by` and the staff audit entry in the same transaction.
pub(crate) async fn kyc_decision(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: KycDecisionBody = http::json_body(req)?;
    let (action, decided) = match body.decision {
        Decision::Approve => (StaffAction::ApproveKyc, RequestStatus::Approved),
        Decision::Reject => (StaffAction::RejectKyc, RequestStatus::Rejected),
    };
    let reason = reason(action, body.reason)?;
    let id = user_in_path(req, "astrologer")?;
    let kyc = app.store.astrologer_kyc(&id).await?.ok_or_else(|| ApiError::not_found("astrologer"))?;
    let not_awaiting = || ApiError::conflict(NOT_AWAITING_REVIEW, "the astrologer has no KYC request awaiting review");
    let request_id = kyc.request_id.ok_or_else(not_awaiting)?;
    let request = app.store.kyc_request(&request_id).await?.ok_or_else(not_awaiting)?;
    // The same decision again (a retry) is answered, not applied twice.
    if request.status != decided {
        if request.status != RequestStatus::Completed || request.superseded {
            return Err(not_awaiting());
        }
        let audit = AuditEntry::new(staff, action, target(&id), reason.clone());
        let kyc_audit = KycAuditEntry::new("staff_decision", decided.as_str(), Some(&request_id))
            .verified_by(staff)
            .data(json!({ "reason": reason, "staff_audit_id": audit.audit_id }));
        let event_id = format!("{request_id}:{}", decided.as_str());
        let applied = app
            .store
            .apply_kyc_event(KycEvent {
                source: "staff",
                event_id: &event_id,
                request: &request,
                next: Some(decided),
                rejection_reason: reason
                    .as_ref()
                    .filter(|_| decided == RequestStatus::Rejected)
                    .map(|r| r.as_str().into()),
                documents: None,
                audit: vec![kyc_audit],
                staff: Some(&audit),
                now: Utc::now(),
            })
            .await;
        match applied {
            Ok(Applied::Changed(_) | Applied::Duplicate | Applied::Recorded) => {}
            // Digio decided (or the request moved) in the meantime.
            Err(StoreError::ConditionFailed(_)) => return Err(not_awaiting()),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(astrologer = %id, decision = decided.as_str(), "KYC decided by staff");
    }
    Ok(json(200, &AstrologerStanding::from(standing(app, &id).await?)))
}
