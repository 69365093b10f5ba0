//! Offers (free minutes on a consultation) and the segment thresholds, as staff manage them;
//! each offer's effectiveness report. Rules: `shared::domain::offer`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::domain::offer::{self, Milestone, Offer, OfferCounters, OfferReport, Segment, SegmentThresholds};
use shared::domain::staff::{AuditEntry, Reason, StaffAction};
use shared::http::{self, Request, Response, json};
use shared::{ApiError, Money, UserId};

use crate::{App, ReasonBody, reason};

const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct OfferBody {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")
    )]
    name: String,
    /// The first minutes of a consultation that are free: 1 to 60; or leave it out and give
    /// `bonus_percent` for a recharge bonus.
    #[serde(default, deserialize_with = "shared::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 60))]
    free_minutes: u32,
    /// A recharge bonus instead of free minutes: this percent of a recharge made with the
    /// offer, as bonus cash (above 0, up to 100, two decimals).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, examples("10")))]
    bonus_percent: Option<rust_decimal::Decimal>,
    /// The most bonus one recharge gets from the offer; absent: no cap.
    #[serde(default)]
    max_bonus: Option<Money>,
    /// Only for a customer's first consultation.
    #[serde(default)]
    first_consultation_only: bool,
    /// Only once the customer reached it (e.g. 5 completed consultations).
    #[serde(default)]
    milestone: Option<Milestone>,
    /// Only customers in one of these segments; absent or empty: every segment.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 4))]
    segments: Vec<Segment>,
    /// Default: now.
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
    /// Uses per customer: 1 to 100, default 1.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100))]
    per_customer_limit: Option<u32>,
    /// Uses across all customers; absent: unlimited.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    total_limit: Option<u64>,
    /// Only with astrologers who accept promotional offers (default true).
    #[serde(default)]
    promotional_astrologers_only: Option<bool>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

/// An offer with what it has done so far.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct OfferView {
    #[serde(flatten)]
    offer: Offer,
    counters: OfferCounters,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct OfferList {
    offers: Vec<OfferView>,
}

fn target(id: &str) -> String {
    format!("offer:{id}")
}

fn offer_in_path(req: &Request) -> Result<String, ApiError> {
    Some(http::path_param(req, "id")?)
        .filter(|id| Offer::valid_id(id))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::not_found("offer"))
}

pub(crate) async fn create(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: OfferBody = http::json_body(req)?;
    let reason = reason(StaffAction::CreateOffer, body.reason)?;
    if body.name.trim().is_empty()
        || body.name.chars().count() > MAX_NAME_CHARS
        || body.name.chars().any(char::is_control)
    {
        return Err(ApiError::invalid_field("name", "1 to 100 characters of text"));
    }
    let mut segments = body.segments;
    segments.sort_by_key(|s| s.as_str());
    segments.dedup();
    let offer = Offer {
        offer_id: format!("o_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        name: body.name.trim().to_owned(),
        free_minutes: body.free_minutes,
        bonus_percent: body.bonus_percent,
        max_bonus: body.max_bonus,
        first_consultation_only: body.first_consultation_only,
        milestone: body.milestone,
        segments,
        valid_from: body.valid_from.unwrap_or_else(Utc::now),
        valid_until: body.valid_until,
        per_customer_limit: body.per_customer_limit.unwrap_or(1),
        total_limit: body.total_limit,
        // A recharge bonus involves no astrologer.
        promotional_astrologers_only: body.promotional_astrologers_only.unwrap_or(body.bonus_percent.is_none()),
        active: true,
    };
    offer::check_offer(&offer).map_err(|(field, problem)| ApiError::invalid_field(field, problem))?;
    let audit = AuditEntry::new(staff, StaffAction::CreateOffer, target(&offer.offer_id), reason);
    if !app.store.create_offer(&offer, &audit).await? {
        return Err(ApiError::unavailable("busy", "an offer id was drawn twice; retry"));
    }
    tracing::info!(offer_id = %offer.offer_id, "offer created");
    Ok(json(201, &OfferView { offer, counters: OfferCounters::default() }))
}

pub(crate) async fn list(app: &App) -> Result<Response, ApiError> {
    let offers = app.store.offers().await?.into_iter().map(|(offer, counters)| OfferView { offer, counters }).collect();
    Ok(json(200, &OfferList { offers }))
}

pub(crate) async fn deactivate(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: ReasonBody = http::json_body(req)?;
    let reason = reason(StaffAction::DeactivateOffer, body.reason)?;
    let id = offer_in_path(req)?;
    let audit = AuditEntry::new(staff, StaffAction::DeactivateOffer, target(&id), reason);
    // Not written: it is missing (404) or already inactive (answered as it is).
    app.store.deactivate_offer(&id, &audit).await?;
    let (offer, counters) = app.store.offer(&id).await?.ok_or_else(|| ApiError::not_found("offer"))?;
    Ok(json(200, &OfferView { offer, counters }))
}

/// The report's input is checked before the audited read (a refused request read nothing).
pub(crate) fn report_target(req: &Request) -> Result<(String, String), ApiError> {
    let id = offer_in_path(req)?;
    Ok((target(&id), id))
}

pub(crate) async fn report(app: &App, id: &str) -> Result<Response, ApiError> {
    let (offer, counters) = app.store.offer(id).await?.ok_or_else(|| ApiError::not_found("offer"))?;
    Ok(json(200, &OfferReport::of(&offer, &counters)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SegmentsBody {
    /// A customer with nothing completed for this many days is `lapsed` (1 to 365).
    #[serde(deserialize_with = "shared::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 365))]
    lapsed_after_days: u32,
    /// Spent at least this on consultations (and not lapsed): `high_value`.
    high_value_spend: Money,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 1, max_length = 500))]
    reason: Option<Reason>,
}

pub(crate) async fn set_segments(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let body: SegmentsBody = http::json_body(req)?;
    let reason = reason(StaffAction::SetSegmentThresholds, body.reason)?;
    if !(1..=365).contains(&body.lapsed_after_days) {
        return Err(ApiError::invalid_field("lapsed_after_days", "must be 1 to 365"));
    }
    let thresholds =
        SegmentThresholds { lapsed_after_days: body.lapsed_after_days, high_value_spend: body.high_value_spend };
    let audit = AuditEntry::new(staff, StaffAction::SetSegmentThresholds, "segments".to_owned(), reason);
    app.store.set_segment_thresholds(&thresholds, &audit).await?;
    Ok(json(200, &thresholds))
}
