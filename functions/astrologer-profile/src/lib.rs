//! An astrologer manages what customers can book: profile (name, bio, experience, languages,
//! specialisations, per-minute rate, modes, education, certifications), weekly availability
//! in their own time zone, and presence (online lapses without a heartbeat). Edits by an
//! astrologer not yet approved (or suspended) are stored; the catalogue shows them once
//! approval lists them. The picture is the profile function's (`POST /me/picture`), as a
//! customer's is.
//!
//! Every route is one store call on the caller's own astrologer item (see
//! `shared::store::astrologers`): nobody can name someone else's.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::config::{self, ConfigError};
use shared::domain::astrologer::{AstrologerRecord, ProfileInput, RateBounds};
use shared::domain::availability::{
    DEFAULT_TIME_ZONE, PRESENCE_TTL, Presence, WeeklyAvailability, WindowInput, parse_time_zone,
};
use shared::domain::saved_replies::SavedReplies;
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::store::Store;
use shared::{ApiError, Money, UserType};

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub rates: RateBounds,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        let money = |name: &'static str, default: &str| {
            config::optional(vars, name, default)
                .parse::<Money>()
                .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })
        };
        let rates = RateBounds { min: money("RATE_MIN_PER_MINUTE", "5")?, max: money("RATE_MAX_PER_MINUTE", "1000")? };
        if rates.min > rates.max || rates.min == Money::ZERO {
            return Err(ConfigError::Invalid {
                name: "RATE_MIN_PER_MINUTE",
                problem: "must be above 0 and at most RATE_MAX_PER_MINUTE".into(),
            });
        }
        Ok(Self { store: Store::from_env(sdk, vars)?, rates })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use shared::http::openapi::{FunctionDoc, Operation, Request, STORE_UNAVAILABLE, body, error, schema, success};
    let own =
        || vec![success(200, "The caller's profile as stored, and whether the catalogue shows it", schema::<OwnView>)];
    // In the astrologer group but without an astrologer item: the sign-up never finished.
    let no_item = error(404, "not_found", "the caller has no astrologer profile (account setup did not finish)");
    FunctionDoc::new("astrologer-profile", "Astrologer profile", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::GetProfile => Operation {
            summary: "The caller's own astrologer profile, availability and presence",
            responses: own(),
            errors: vec![no_item],
            ..Operation::default()
        },
        Op::PutProfile => Operation {
            summary: "Save the profile customers see",
            description: "Languages and specialisations come from fixed lists; the per-minute rate is within the \
                          deployment's bounds (`RATE_MIN_PER_MINUTE`..`RATE_MAX_PER_MINUTE`, default 5 to 1,000); \
                          education is one line of at most 200 characters, certifications at most 10 of at most \
                          100 each. A PUT replaces the whole profile: a field left out is cleared. The picture is \
                          uploaded through `POST /me/picture` and `PUT /me/picture` (a pasted `picture_url` is \
                          refused). Saved before approval too; the catalogue shows it once KYC approval lists the \
                          astrologer.",
            request: Request::Json(body(schema::<ProfileInput>)),
            responses: own(),
            errors: vec![
                no_item,
                error(400, "invalid_field", "a field breaks its rule, or `picture_url` is sent (upload it instead)"),
            ],
            ..Operation::default()
        },
        Op::PutAvailability => Operation {
            summary: "Replace the weekly availability",
            description: "Windows are local times (`HH:MM`, 24 h) in `time_zone` (IANA, default Asia/Kolkata) on \
                          weekdays `mon`..`sun`; windows of one day may not overlap.",
            request: Request::Json(body(schema::<AvailabilityBody>)),
            responses: own(),
            errors: vec![no_item],
            ..Operation::default()
        },
        Op::GetSavedReplies => Operation {
            summary: "The caller's saved replies (texts they send often in chats)",
            responses: vec![success(200, "The saved replies, in the caller's order", schema::<SavedReplies>)],
            ..Operation::default()
        },
        Op::PutSavedReplies => Operation {
            summary: "Replace the caller's saved replies",
            description: "At most 20, each 1 to 2,000 characters (trimmed; duplicates kept once).",
            request: Request::Json(body(schema::<SavedRepliesBody>)),
            responses: vec![success(200, "The saved replies as kept", schema::<SavedReplies>)],
            errors: vec![error(
                400,
                "invalid_field",
                "more than 20 replies, or one empty, too long or with control characters",
            )],
            ..Operation::default()
        },
        Op::PutPresence => Operation {
            summary: "Go online or offline (online is a heartbeat: renew it within 5 minutes)",
            request: Request::Json(body(schema::<PresenceBody>)),
            responses: own(),
            errors: vec![no_item],
            ..Operation::default()
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetProfile,
    PutProfile,
    PutAvailability,
    PutPresence,
    GetSavedReplies,
    PutSavedReplies,
}

const ASTROLOGER: Access = Access::Role(UserType::Astrologer);

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /astrologers/me/profile", access: ASTROLOGER, handler: Op::GetProfile },
    Route { key: "PUT /astrologers/me/profile", access: ASTROLOGER, handler: Op::PutProfile },
    Route { key: "PUT /astrologers/me/availability", access: ASTROLOGER, handler: Op::PutAvailability },
    Route { key: "PUT /astrologers/me/presence", access: ASTROLOGER, handler: Op::PutPresence },
    Route { key: "GET /astrologers/me/saved-replies", access: ASTROLOGER, handler: Op::GetSavedReplies },
    Route { key: "PUT /astrologers/me/saved-replies", access: ASTROLOGER, handler: Op::PutSavedReplies },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    let saved = match op {
        Op::GetSavedReplies => return Ok(json(200, &app.store.saved_replies(&caller.user_id).await?)),
        Op::PutSavedReplies => return put_saved_replies(app, req, &caller).await,
        Op::GetProfile => app.store.astrologer(&caller.user_id).await?,
        Op::PutProfile => put_profile(app, req, &caller).await?,
        Op::PutAvailability => put_availability(app, req, &caller).await?,
        Op::PutPresence => put_presence(app, req, &caller).await?,
    };
    // In the astrologer group but without an astrologer item: the sign-up never finished.
    let record = saved.ok_or_else(|| ApiError::not_found("astrologer profile"))?;
    Ok(json(200, &OwnView::of(&record)))
}

async fn put_profile(app: &App, req: &Request, caller: &Caller) -> Result<Option<AstrologerRecord>, ApiError> {
    let input: ProfileInput = http::json_body(req)?;
    let profile = input.validate(app.rates).map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    Ok(app.store.save_astrologer_profile(&caller.user_id, &profile, Utc::now()).await?)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityBody {
    /// IANA name; Asia/Kolkata when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = shared::http::openapi::optional_time_zone))]
    time_zone: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_items = 28))]
    windows: Vec<WindowInput>,
}

async fn put_availability(app: &App, req: &Request, caller: &Caller) -> Result<Option<AstrologerRecord>, ApiError> {
    let body: AvailabilityBody = http::json_body(req)?;
    let invalid = |e: shared::domain::availability::AvailabilityError| ApiError::invalid_field(e.field, e.message);
    let tz = body.time_zone.as_deref().map(parse_time_zone).transpose().map_err(invalid)?.unwrap_or(DEFAULT_TIME_ZONE);
    let availability = WeeklyAvailability::parse(tz, &body.windows).map_err(invalid)?;
    Ok(app.store.save_astrologer_availability(&caller.user_id, &availability, Utc::now()).await?)
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedRepliesBody {
    #[cfg_attr(feature = "openapi", schema(schema_with = shared::domain::saved_replies::input_schema))]
    replies: Vec<String>,
}

/// Replaces the caller's saved replies (texts they send often in chats).
async fn put_saved_replies(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: SavedRepliesBody = http::json_body(req)?;
    let replies = SavedReplies::parse(&body.replies).map_err(|e| ApiError::invalid_field("replies", e.to_string()))?;
    app.store.save_replies(&caller.user_id, &replies).await?;
    Ok(json(200, &replies))
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceBody {
    status: Presence,
}

/// `online` holds for [`PRESENCE_TTL`] from each call: the app renews it as a heartbeat.
async fn put_presence(app: &App, req: &Request, caller: &Caller) -> Result<Option<AstrologerRecord>, ApiError> {
    let body: PresenceBody = http::json_body(req)?;
    let until = (body.status == Presence::Online).then(|| Utc::now() + PRESENCE_TTL);
    Ok(app.store.save_astrologer_presence(&caller.user_id, body.status, until).await?)
}

/// What an astrologer sees of their own profile.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
struct OwnView<'a> {
    astrologer_id: &'a str,
    profile: Option<&'a shared::domain::astrologer::Profile>,
    availability: AvailabilityView,
    presence: Presence,
    #[serde(skip_serializing_if = "Option::is_none")]
    online_until: Option<String>,
    /// Shown in the catalogue (approved, not suspended, with a saved profile).
    in_catalogue: bool,
    kyc_status: shared::KycStatus,
    rating: shared::domain::astrologer::RatingSummary,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
struct AvailabilityView {
    time_zone: String,
    windows: Vec<WindowInput>,
}

impl<'a> OwnView<'a> {
    fn of(r: &'a AstrologerRecord) -> Self {
        let now = Utc::now();
        let presence = r.presence_at(now);
        Self {
            astrologer_id: r.id.as_str(),
            profile: r.profile.as_ref(),
            availability: AvailabilityView {
                time_zone: r.availability.time_zone.name().to_owned(),
                windows: r.availability.as_input(),
            },
            presence,
            online_until: r
                .online_until
                .filter(|_| presence == Presence::Online)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            in_catalogue: r.visible(),
            kyc_status: r.kyc_status,
            rating: r.rating,
        }
    }
}
