//! Operations staff (Cognito group `admin`; everyone else 403): suspend and reinstate
//! astrologers, decide a KYC by hand, manage promo codes, promotion rules and offers (with
//! each offer's report and the segment thresholds), look up a
//! customer's money. Every change is one transaction with its staff audit entry
//! (`shared::store::staff`); a change that already happened (a retry) writes nothing and
//! answers the state as it is. Every read writes its own audit entry beside the read, and
//! answers only once the entry is written ([`audited`]).

mod astrologers;
mod offers;
#[cfg(feature = "openapi")]
mod openapi;
mod promotions;
mod support;

#[cfg(feature = "openapi")]
pub use openapi::openapi;
use serde::Deserialize;
use shared::domain::staff::{AuditEntry, Reason, StaffAction, reason_for};
use shared::http::{self, Access, Request, Response, Route};
use shared::{ApiError, UserId, UserType};

pub use shared::app::ClosingApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Suspend,
    Reinstate,
    Terms,
    KycDecision,
    CreatePromoCode,
    ListPromoCodes,
    DeactivatePromoCode,
    CreatePromotionRule,
    ListPromotionRules,
    DeactivatePromotionRule,
    CreateOffer,
    ListOffers,
    DeactivateOffer,
    OfferReport,
    SetSegments,
    UserWallet,
    AuditLog,
    BirthDetails,
}

const STAFF: Access = Access::Role(UserType::Admin);

/// Every route of this function in `template.yaml`: staff only, all of them.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /admin/astrologers/{id}/suspend", access: STAFF, handler: Op::Suspend },
    Route { key: "POST /admin/astrologers/{id}/reinstate", access: STAFF, handler: Op::Reinstate },
    Route { key: "PUT /admin/astrologers/{id}/terms", access: STAFF, handler: Op::Terms },
    Route { key: "POST /admin/astrologers/{id}/kyc-decision", access: STAFF, handler: Op::KycDecision },
    Route { key: "POST /admin/promo-codes", access: STAFF, handler: Op::CreatePromoCode },
    Route { key: "GET /admin/promo-codes", access: STAFF, handler: Op::ListPromoCodes },
    Route { key: "POST /admin/promo-codes/{code}/deactivate", access: STAFF, handler: Op::DeactivatePromoCode },
    Route { key: "POST /admin/promotion-rules", access: STAFF, handler: Op::CreatePromotionRule },
    Route { key: "GET /admin/promotion-rules", access: STAFF, handler: Op::ListPromotionRules },
    Route { key: "POST /admin/promotion-rules/{id}/deactivate", access: STAFF, handler: Op::DeactivatePromotionRule },
    Route { key: "POST /admin/offers", access: STAFF, handler: Op::CreateOffer },
    Route { key: "GET /admin/offers", access: STAFF, handler: Op::ListOffers },
    Route { key: "POST /admin/offers/{id}/deactivate", access: STAFF, handler: Op::DeactivateOffer },
    Route { key: "GET /admin/offers/{id}/report", access: STAFF, handler: Op::OfferReport },
    Route { key: "PUT /admin/offer-segments", access: STAFF, handler: Op::SetSegments },
    Route { key: "GET /admin/users/{id}/wallet", access: STAFF, handler: Op::UserWallet },
    Route { key: "GET /admin/users/{id}/birth-details", access: STAFF, handler: Op::BirthDetails },
    Route { key: "GET /admin/audit", access: STAFF, handler: Op::AuditLog },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let staff = http::signed_in(caller)?.user_id;
    match op {
        Op::Suspend => astrologers::suspend(app, req, &staff).await,
        Op::Terms => astrologers::set_terms(app, req, &staff).await,
        Op::Reinstate => astrologers::reinstate(app, req, &staff).await,
        Op::KycDecision => astrologers::kyc_decision(app, req, &staff).await,
        Op::CreatePromoCode => promotions::create_code(app, req, &staff).await,
        Op::ListPromoCodes => {
            audited(app, &staff, StaffAction::ListPromoCodes, "promo_codes", promotions::list_codes(app)).await
        }
        Op::DeactivatePromoCode => promotions::deactivate_code(app, req, &staff).await,
        Op::CreatePromotionRule => promotions::create_rule(app, req, &staff).await,
        Op::ListPromotionRules => {
            audited(app, &staff, StaffAction::ListPromotionRules, "promotion_rules", promotions::list_rules(app)).await
        }
        Op::DeactivatePromotionRule => promotions::deactivate_rule(app, req, &staff).await,
        Op::CreateOffer => offers::create(app, req, &staff).await,
        Op::ListOffers => audited(app, &staff, StaffAction::ListOffers, "offers", offers::list(app)).await,
        Op::DeactivateOffer => offers::deactivate(app, req, &staff).await,
        Op::OfferReport => {
            let (target, id) = offers::report_target(req)?;
            audited(app, &staff, StaffAction::ViewOfferReport, target, offers::report(app, &id)).await
        }
        Op::SetSegments => offers::set_segments(app, req, &staff).await,
        Op::UserWallet => support::user_wallet(app, req, &staff).await,
        Op::BirthDetails => support::birth_details(app, req, &staff).await,
        Op::AuditLog => support::audit_log(app, req, &staff).await,
    }
}

/// A staff read, answered once its audit entry (who, `action`, `target`, now) is written:
/// the read and the entry go concurrently, so the audit costs one call but no round trip
/// of latency, and a look that could not be recorded shows nothing. Called after the
/// request's input is checked (a refused request read nothing); a look at something missing
/// is recorded all the same (the entry is always waited for, never dropped half-sent).
async fn audited<T>(
    app: &App,
    staff: &UserId,
    action: StaffAction,
    target: impl Into<String>,
    read: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    debug_assert!(action.is_read());
    let entry = AuditEntry::new(staff, action, target.into(), None);
    let record = async { app.store.record_staff_read(&entry).await.map_err(ApiError::from) };
    let (answer, recorded) = tokio::join!(read, record);
    recorded?;
    answer
}

/// The body of an action that only needs its reason.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ReasonBody {
    /// Why (1 to 500 characters); kept in the staff audit log.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

/// The reason `action` needs, or `400 invalid_field` on `reason`.
fn reason(action: StaffAction, given: Option<Reason>) -> Result<Option<Reason>, ApiError> {
    reason_for(action, given).map_err(|problem| ApiError::invalid_field("reason", problem))
}

/// A user id from the path; anything else names nobody (404).
fn user_in_path(req: &Request, what: &str) -> Result<UserId, ApiError> {
    UserId::parse(http::path_param(req, "id")?).map_err(|_| ApiError::not_found(what))
}

/// `limit` from the query string: 1 to 100, 20 by default.
fn limit(req: &Request) -> Result<i32, ApiError> {
    http::limit_param(req, 20, 100)
}
