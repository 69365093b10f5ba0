//! Calls and video over Agora (`call` and `video` consultations; chat runs over the
//! WebSocket API, the `live-session` function).
//!
//! - `POST /consultations/{id}/call-token`: a party of a running call gets an Agora RTC token
//!   (AccessToken2) for that consultation's channel, as its own stable uid, with join and
//!   publish privileges until the paid end (`shared::providers::agora`). Asked again after
//!   an extension (or when the SDK says the token will expire), it reaches the new end.
//! - `POST /webhooks/agora`: Agora's Notification Center posts channel events, signed
//!   (`Agora-Signature-V2`: hex HMAC-SHA256 of the raw body with the NCS secret, checked
//!   before anything is parsed). Joins and leaves of the two parties are kept once per
//!   notice id, read in Agora's order, and the meter runs on them
//!   (`shared::domain::booking::call`); the sweep ends a session a party left for good.
//!   Other event types, other channels and other uids are acknowledged and ignored.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::config::{self, ConfigError};
use shared::domain::astrologer::Mode;
use shared::domain::booking::call::{self, ChannelAction, ChannelEvent, MAX_CHANNEL_LEN, MAX_NOTICE_ID_LEN, Recorded};
use shared::domain::booking::chat::Side;
use shared::domain::booking::session::{self, NotLive};
use shared::domain::booking::{BookingId, Consultation};
use shared::http::{self, Access, Caller, Request, Response, Route};
use shared::providers::agora::{self, RtcGrant};
use shared::secrets::OnFirstUse;
use shared::store::Store;
use shared::store::retry::{self, Attempt, Retry};
use shared::{ApiError, signature};

pub const SIGNATURE_HEADER: &str = "agora-signature-v2";

/// The variables naming this function's SecureString parameters (see `shared::secrets`).
pub const SECRETS: &[&str] = &["AGORA_APP_CERTIFICATE_SECRET_PARAMETER", "AGORA_NCS_SECRET_PARAMETER"];

/// What Agora shares with us: the App Certificate signs tokens, the NCS secret signs
/// Agora's notifications.
pub struct AgoraSecrets {
    pub app_certificate: String,
    pub ncs_secret: String,
}

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// The Agora project's App ID (public: apps pass it to the SDK).
    pub app_id: String,
    /// Read by the first request that needs them.
    pub secrets: OnFirstUse<AgoraSecrets>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            app_id: config::required(vars, "AGORA_APP_ID")?,
            secrets: OnFirstUse::new(sdk, vars, SECRETS, |secrets| {
                Ok(AgoraSecrets {
                    app_certificate: secrets.required("AGORA_APP_CERTIFICATE_SECRET_PARAMETER")?,
                    ncs_secret: secrets.required("AGORA_NCS_SECRET_PARAMETER")?,
                })
            })?,
        })
    }
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Token,
    ChannelEvent,
}

pub const ROUTES: &[Route<Op>] = &[
    // Either party of the consultation (own_consultation: only its customer or astrologer).
    Route { key: "POST /consultations/{id}/call-token", access: Access::SignedIn, handler: Op::Token },
    // Public, authenticated by its signature.
    Route { key: "POST /webhooks/agora", access: Access::Public, handler: Op::ChannelEvent },
];

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    match op {
        Op::Token => token(app, req, &http::signed_in(caller)?).await,
        Op::ChannelEvent => channel_event(app, req).await,
    }
}

/// A party's token for a call's channel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct CallToken {
    /// Pass to the Agora SDK with the token.
    pub app_id: String,
    pub channel: String,
    /// The caller's uid in this channel (the same every time).
    pub uid: u32,
    /// AccessToken2 (`007...`): join, publish audio, video and data until `expires_at`.
    pub token: String,
    #[serde(serialize_with = "shared::domain::time::rfc3339")]
    pub expires_at: DateTime<Utc>,
}

/// Until when a token for `c` is good at `now`: the paid end once the meter runs; before,
/// the earliest the paid end could be (the minutes held from now; a scheduled one's booked
/// end), so no token outlives what was paid for. The SDK asks for a fresh one before it expires.
fn token_expiry(c: &Consultation, now: DateTime<Utc>) -> DateTime<Utc> {
    c.paid_until.unwrap_or_else(|| {
        let held = now + Duration::minutes(i64::from(c.price.minutes));
        if c.instant { held } else { held.min(c.ends_at) }
    })
}

async fn token(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let id = BookingId::parse(http::path_param(req, "id")?).ok_or_else(|| ApiError::not_found("consultation"))?;
    let c = app.store.consultation(&id).await?.ok_or_else(|| ApiError::not_found("consultation"))?;
    c.party(&caller.user_id).and_then(Side::of).ok_or_else(|| ApiError::not_found("consultation"))?;
    if c.mode == Mode::Chat {
        return Err(ApiError::conflict("not_a_call", "a chat consultation runs over the WebSocket API, not Agora"));
    }
    let now = Utc::now();
    session::check_live(&c, now).map_err(|e: NotLive| ApiError::conflict("not_live", e.to_string()))?;
    let secrets = app.secrets.get().await?;
    let expires_at = token_expiry(&c, now);
    let channel = call::channel_name(&c.booking_id);
    let uid = agora::uid_of(caller.user_id.as_str());
    let grant = RtcGrant {
        app_id: &app.app_id,
        channel: &channel,
        uid,
        issued_at: unix(now),
        expires_at: unix(expires_at),
        salt: rand::rng().random_range(1..=u32::MAX),
    };
    let token = agora::rtc_token(&secrets.app_certificate, &grant);
    tracing::info!(booking_id = %c.booking_id, uid, expires_at = %expires_at, "call token issued");
    Ok(http::json(200, &CallToken { app_id: app.app_id.clone(), channel, uid, token, expires_at }))
}

fn unix(t: DateTime<Utc>) -> u32 {
    u32::try_from(t.timestamp().max(0)).unwrap_or(u32::MAX)
}

/// The parts of an Agora NCS notification this function reads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// Unique per event; a resend carries the same one.
    pub notice_id: String,
    /// 103/105/107: a user joined; 104/106/108: a user left; others are not read.
    pub event_type: u32,
    pub payload: NoticePayload,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticePayload {
    #[serde(default)]
    pub channel_name: String,
    #[serde(default)]
    pub uid: u32,
    /// When it happened (Unix seconds, Agora's clock).
    #[serde(default)]
    pub ts: i64,
    /// The client's own sequence number, ordering its events.
    #[serde(default)]
    pub client_seq: i64,
}

/// What became of a notification (the `200` answer).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOutcome {
    /// Kept; the meter did not move.
    Recorded,
    /// Kept; the session now runs on Agora's view, from both parties' joins.
    MeterStarted,
    /// This notice was handled before.
    Duplicate,
    /// Not a join or leave of a party of one of our consultations (or its log is full).
    Ignored,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct ChannelAck {
    pub status: ChannelOutcome,
}

fn action_of(event_type: u32) -> Option<ChannelAction> {
    match event_type {
        103 | 105 | 107 => Some(ChannelAction::Join),
        104 | 106 | 108 => Some(ChannelAction::Leave),
        _ => None,
    }
}

async fn channel_event(app: &App, req: &Request) -> Result<Response, ApiError> {
    let body = http::raw_body(req)?;
    let secrets = app.secrets.get().await?;
    let signature_ok = http::header(req, SIGNATURE_HEADER)
        .is_some_and(|sig| signature::verify_hmac_sha256_hex(secrets.ncs_secret.as_bytes(), &body, sig));
    if !signature_ok {
        tracing::warn!("agora notification with a missing or wrong signature refused");
        return Err(ApiError::unauthorized("invalid_signature", "the notification signature is missing or wrong"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| ApiError::bad_request("invalid_body", "the notification body is not a JSON object"))?;
    let notice: Notice =
        serde_json::from_value(value).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    // Ids go into items: bounded before anything is read.
    if notice.notice_id.is_empty() || notice.notice_id.len() > MAX_NOTICE_ID_LEN {
        return Err(ApiError::invalid_field("noticeId", format!("1 to {MAX_NOTICE_ID_LEN} characters")));
    }
    if notice.payload.channel_name.len() > MAX_CHANNEL_LEN {
        return Err(ApiError::invalid_field("payload.channelName", format!("at most {MAX_CHANNEL_LEN} characters")));
    }
    let status = apply(app, &notice).await?;
    tracing::info!(notice_id = %notice.notice_id, event_type = notice.event_type, status = ?status, "agora notice");
    Ok(http::json(200, &ChannelAck { status }))
}

async fn apply(app: &App, notice: &Notice) -> Result<ChannelOutcome, ApiError> {
    let Some(action) = action_of(notice.event_type) else { return Ok(ChannelOutcome::Ignored) };
    let Some(booking) = call::booking_of_channel(&notice.payload.channel_name) else {
        return Ok(ChannelOutcome::Ignored);
    };
    let at = DateTime::from_timestamp(notice.payload.ts, 0)
        .ok_or_else(|| ApiError::invalid_field("payload.ts", "not a Unix time in seconds"))?;
    let busy = |_| ApiError::unavailable("busy", "the consultation kept changing; Agora retries");
    retry::on_conflict(Retry::DEFAULT, busy, || async {
        let Some(c) = app.store.consultation(&booking).await? else {
            return Ok(Attempt::Done(ChannelOutcome::Ignored));
        };
        let side = [Side::Customer, Side::Astrologer].into_iter().find(|s| side_uid(&c, *s) == notice.payload.uid);
        let Some(side) = side else { return Ok(Attempt::Done(ChannelOutcome::Ignored)) };
        let event =
            ChannelEvent { notice_id: notice.notice_id.clone(), side, action, at, seq: notice.payload.client_seq };
        match call::record(&c, &event) {
            Recorded::Duplicate => Ok(Attempt::Done(ChannelOutcome::Duplicate)),
            Recorded::NotACall => Ok(Attempt::Done(ChannelOutcome::Ignored)),
            Recorded::Full => {
                tracing::warn!(booking_id = %c.booking_id, "channel log full: agora notice dropped");
                Ok(Attempt::Done(ChannelOutcome::Ignored))
            }
            Recorded::Kept { meter_starts } => {
                if !app.store.record_channel_event(&c, &event, meter_starts).await? {
                    return Ok(Attempt::Conflict);
                }
                Ok(Attempt::Done(if meter_starts.is_some() {
                    tracing::info!(booking_id = %c.booking_id, "both in the channel: the meter runs on agora's view");
                    ChannelOutcome::MeterStarted
                } else {
                    ChannelOutcome::Recorded
                }))
            }
        }
    })
    .await
}

/// The uid `side` of `c` has in its channel.
fn side_uid(c: &Consultation, side: Side) -> u32 {
    let user = match side {
        Side::Customer => &c.customer_id,
        Side::Astrologer => &c.astrologer_id,
    };
    agora::uid_of(user.as_str())
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use shared::http::openapi::{
        self as doc, FunctionDoc, Operation, Request, STORE_UNAVAILABLE, error, schema, success,
    };
    FunctionDoc::new("call-session", "Calls and video (Agora)", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Token => Operation {
            summary: "An Agora RTC token for a running call or video consultation (either party)",
            description: "For the consultation's channel, as the caller's own uid (the same every time), with \
                          join and publish privileges until the paid end (before the meter runs: the minutes \
                          held from now). Ask again after an extension, or when the SDK reports the token \
                          will expire.",
            responses: vec![success(200, "The token, its channel and uid", schema::<CallToken>)],
            errors: vec![
                error(404, "not_found", "no such consultation of the caller's (as its customer or astrologer)"),
                error(409, "not_a_call", "a chat consultation (it runs over the WebSocket API)"),
                error(
                    409,
                    "not_live",
                    "the consultation is not running (not accepted or started yet, ended, or its paid minutes are over)",
                ),
            ],
            ..Operation::default()
        },
        Op::ChannelEvent => Operation {
            summary: "Agora's channel events (a callback Agora's Notification Center makes, not for apps)",
            description: "Agora calls this with `Agora-Signature-V2`: the hex HMAC-SHA256 of the raw body with \
                          the NCS secret, checked before anything is parsed. Joins (103, 105, 107) and leaves \
                          (104, 106, 108) of a consultation's parties are kept once per `noticeId`, in Agora's \
                          order whatever the order they arrive in; the meter runs from both parties' joins. \
                          Other events, channels and uids are acknowledged with 200.",
            request: Request::Signed {
                body: doc::body(schema::<Notice>),
                signature_header: "Agora-Signature-V2",
                description: "hex HMAC-SHA256 of the raw body with the Agora NCS secret",
            },
            responses: vec![success(200, "Handled (or ignored, or a duplicate)", schema::<ChannelAck>)],
            errors: vec![
                error(401, "invalid_signature", "`Agora-Signature-V2` is missing or does not match the body"),
                error(400, "invalid_body", "the (correctly signed) body is not a notification"),
                error(
                    400,
                    "invalid_field",
                    "`noticeId` or `payload.channelName` is too long, or `payload.ts` is not a time",
                ),
                error(503, "busy", "the consultation kept changing underneath; Agora retries"),
            ],
            ..Operation::default()
        },
    })
}
