//! Paid consultations. A customer books an astrologer (the price held from the wallet, bonus
//! cash first, in the same transaction that creates the consultation and claims the
//! astrologer's time); the astrologer starts it and either side ends it (the minutes used
//! are charged, never past the booked end, the rest goes back, the astrologer earns their
//! share); either side cancels one not started by the stated policy (README, "Cancellation
//! policy"). Rules: `shared::booking`; writes: `shared::store::consultations`;
//! closing: `shared::closing`.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::astrologer::Mode;
use shared::booking::{
    self, Action, BookingId, Consultation, ConsultationStatus, NotBookable, Party, PromoCode, StartRefusal,
};
use shared::closing::{self, CloseError};
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::idempotency::{IdempotencyKey, StoredResponse};
use shared::store::Account;
use shared::store::consultations::{BookingPlan, BookingWrite, StartWrite};
use shared::wallet::{Movement, Reference, WalletError};
use shared::{ApiError, UserId, UserType};

/// Reads and writes again this many times when a concurrent booking moved what was read.
const BOOKING_ATTEMPTS: usize = 5;
const MAX_QUESTION_CHARS: usize = 500;

pub use shared::app::ClosingApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::openapi::FunctionDoc {
    use serde_json::json;
    use shared::openapi::{FunctionDoc, Operation, Request, STORE_UNAVAILABLE, body, error, query, schema, success};
    let not_yours = error(404, "not_found", "no such consultation of the caller's (as its customer or astrologer)");
    let busy = error(503, "busy", "the wallet or the calendar kept changing underneath; retry");
    let transition = error(409, "invalid_transition", "the consultation's status does not allow this (see `message`)");
    let consultation = |description| vec![success(200, description, schema::<Consultation>)];
    let page = || {
        vec![
            query("limit", "per page (default 20)", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
            query(
                "cursor",
                "`next_cursor` of the previous page, as returned (opaque)",
                json!({ "type": "string", "maxLength": 200 }),
            ),
        ]
    };
    let bad_page = error(400, "invalid_field", "`limit` is not 1 to 100, or `cursor` is not one we returned");
    FunctionDoc::new("book", "Consultations", ROUTES, &[STORE_UNAVAILABLE], |op| {
        match op {
        Op::Book => Operation {
            summary: "Book a consultation (the price is held from the wallet)",
            description: "Instant (no `scheduled_at`: the astrologer must be online) or scheduled (within the \
                          astrologer's availability, up to 30 days ahead). The price (rate x minutes, less a promo \
                          code's discount) is held from the wallet, bonus cash first, in the same write that claims \
                          the astrologer's time: two bookings of one slot cannot both succeed. On 402, top up and \
                          retry with the same `Idempotency-Key`.",
            request: Request::Json(body(schema::<BookBody>)),
            idempotency_key: true,
            responses: vec![success(201, "The consultation, scheduled, with its price and hold", schema::<Consultation>)],
            errors: vec![
                error(402, "insufficient_balance", "the wallet is short by `shortfall`; top up and retry with the same key"),
                error(404, "not_found", "no such astrologer in the catalogue, or the caller has no wallet"),
                error(409, "slot_taken", "the astrologer is booked at that time"),
                error(409, "schedule_full", "the astrologer holds 1000 upcoming consultations, the most one may"),
                error(409, "astrologer_offline", "an instant consultation needs the astrologer online"),
                error(422, "cannot_book_yourself", "`astrologer_id` is the caller"),
                error(422, "mode_not_offered", "the astrologer does not offer `mode`"),
                error(422, "not_available", "`scheduled_at` is outside the astrologer's availability"),
                error(422, "promo_code_refused", "the promo code is unknown, expired, used up or not for this order"),
                error(400, "invalid_field", "`minutes` is not 5 to 120, `scheduled_at` is past or over 30 days ahead, or a field is malformed"),
                busy,
            ],
            ..Operation::default()
        },
        Op::List => Operation {
            summary: "The caller's consultations (as customer, or as astrologer), newest first",
            params: [
                vec![query(
                    "status",
                    "only these",
                    json!({ "type": "string", "enum": ConsultationStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() }),
                )],
                page(),
            ]
            .concat(),
            responses: vec![success(200, "One page", schema::<Page>)],
            errors: vec![bad_page, error(400, "invalid_field", "`status` is not a consultation status")],
            ..Operation::default()
        },
        Op::Get => Operation {
            summary: "One of the caller's consultations",
            responses: consultation("The consultation"),
            errors: vec![not_yours],
            ..Operation::default()
        },
        Op::Start => Operation {
            summary: "Start a scheduled consultation (its astrologer, from 5 minutes before the time)",
            description: "Starting one already in progress answers it again. Refused once 15 minutes have passed \
                          since the scheduled time (the no-show grace) or the booked end has passed.",
            responses: consultation("The consultation, in progress"),
            errors: vec![
                not_yours,
                transition,
                error(409, "too_early", "more than 5 minutes before the scheduled time"),
                error(409, "too_late", "the no-show grace (15 minutes after the scheduled time) or the booked end has passed"),
                error(403, "astrologer_suspended", "the astrologer is suspended"),
            ],
            ..Operation::default()
        },
        Op::Complete => Operation {
            summary: "End a consultation in progress (its astrologer or its customer): settle the minutes used",
            description: "Charges the minutes used up to now (a started minute counts whole; never past the booked \
                          end, never more than booked), returns the rest to the buckets it came from and credits \
                          the astrologer's share. One still in progress 10 minutes after its booked end is ended \
                          so by the sweep. Completing a completed one answers it again.",
            responses: consultation("The consultation, completed, with `closing`"),
            errors: vec![not_yours, transition, busy],
            ..Operation::default()
        },
        Op::Cancel => Operation {
            summary: "Cancel a consultation (its customer, before it starts; its astrologer), refunding by the policy",
            description: "An astrologer's cancellation refunds all of it; a customer's refunds all of it with 2 \
                          hours' notice, within 5 minutes of booking, or once the scheduled time has passed without \
                          the astrologer starting (instant ones included), half otherwise \
                          (`closing.refund_percent`). A full refund gives the promo code's use back. A customer \
                          ends a consultation in progress with `complete`. Cancelling a cancelled one answers it again.",
            responses: consultation("The consultation, cancelled, with `closing`"),
            errors: vec![not_yours, transition, busy],
            ..Operation::default()
        },
        Op::Earnings => Operation {
            summary: "The caller's earnings and their ledger, newest first",
            params: page(),
            responses: vec![success(200, "Earnings and one page of entries", schema::<Earnings>)],
            errors: vec![bad_page],
            ..Operation::default()
        },
    }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Book,
    List,
    Get,
    Start,
    Complete,
    Cancel,
    Earnings,
}

const ASTROLOGER: Access = Access::Role(UserType::Astrologer);

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /consultations", access: Access::Role(UserType::User), handler: Op::Book },
    Route { key: "GET /consultations", access: Access::SignedIn, handler: Op::List },
    Route { key: "GET /consultations/{id}", access: Access::SignedIn, handler: Op::Get },
    Route { key: "POST /consultations/{id}/start", access: ASTROLOGER, handler: Op::Start },
    // Either party ends it (own_consultation: only its customer or astrologer).
    Route { key: "POST /consultations/{id}/complete", access: Access::SignedIn, handler: Op::Complete },
    Route { key: "POST /consultations/{id}/cancel", access: Access::SignedIn, handler: Op::Cancel },
    Route { key: "GET /astrologers/me/earnings", access: ASTROLOGER, handler: Op::Earnings },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::Book => book(app, req, caller).await,
        Op::List => list(app, req, &caller).await,
        Op::Get => Ok(json(200, &own_consultation(app, req, &caller).await?.0)),
        Op::Start => start(app, req, &caller).await,
        Op::Complete | Op::Cancel => {
            let (c, party) = own_consultation(app, req, &caller).await?;
            let action = if op == Op::Complete { Action::Complete } else { Action::Cancel };
            let closed = closing::close(&app.store, c, action, party, app.share).await.map_err(close_error)?;
            Ok(json(200, &closed))
        }
        Op::Earnings => earnings(app, req, &caller).await,
    }
}

// ---------------------------------------------------------------- booking

/// Serialize: the idempotency key's request hash is of the parsed body.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct BookBody {
    astrologer_id: UserId,
    mode: Mode,
    #[serde(deserialize_with = "http::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 5, maximum = 120))]
    minutes: u32,
    /// Absent: now, which needs the astrologer online.
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^\\s*[A-Za-z0-9_-]{1,32}\\s*$"))]
    promo_code: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"))]
    question: Option<String>,
}

fn not_bookable(e: NotBookable) -> ApiError {
    let message = e.to_string();
    match e {
        NotBookable::SlotTaken => ApiError::conflict("slot_taken", message),
        NotBookable::ScheduleFull => ApiError::conflict("schedule_full", message),
        NotBookable::NotListed => ApiError::new(404, "not_found", "astrologer not found"),
        NotBookable::Yourself => ApiError::new(422, "cannot_book_yourself", message).with_field("astrologer_id"),
        NotBookable::ModeNotOffered => ApiError::new(422, "mode_not_offered", message).with_field("mode"),
        NotBookable::NotOnline => ApiError::new(409, "astrologer_offline", message),
        NotBookable::OutsideAvailability => ApiError::new(422, "not_available", message).with_field("scheduled_at"),
        NotBookable::BadTime => ApiError::invalid_field("scheduled_at", message),
    }
}

async fn book(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let body: BookBody = http::json_body(req)?;
    if !(booking::MIN_MINUTES..=booking::MAX_MINUTES).contains(&body.minutes) {
        let (min, max) = (booking::MIN_MINUTES, booking::MAX_MINUTES);
        return Err(ApiError::invalid_field("minutes", format!("must be {min} to {max}")));
    }
    let question = body.question.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
    if question.as_ref().is_some_and(|q| q.chars().count() > MAX_QUESTION_CHARS || q.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field("question", format!("at most {MAX_QUESTION_CHARS} characters of text")));
    }
    let promo_code = body
        .promo_code
        .as_deref()
        .map(|c| PromoCode::normalize(c).ok_or_else(|| ApiError::invalid_field("promo_code", "is not a promo code")))
        .transpose()?;
    let key = IdempotencyKey::required(req, &caller.user_id, &body)?;

    for attempt in 0..BOOKING_ATTEMPTS {
        let now = Utc::now();
        let state = app.store.booking_state(&key, &body.astrologer_id, promo_code.as_deref()).await?;
        if let Some(first) = key.replay(state.first_response.as_ref(), now)? {
            return Ok(first);
        }
        let wallet = state.wallet.ok_or_else(|| ApiError::not_found("wallet"))?;
        let astrologer = state.astrologer.ok_or_else(|| ApiError::not_found("astrologer"))?;
        let start = body.scheduled_at.unwrap_or(now);
        let interval = booking::check_bookable(
            &astrologer,
            &caller.user_id,
            body.mode,
            start,
            body.minutes,
            body.scheduled_at.is_none(),
            now,
        )
        .map_err(not_bookable)?;
        let profile = astrologer.profile.as_ref().ok_or_else(|| ApiError::not_found("astrologer"))?;
        let gross = booking::price(profile.rate_per_minute, body.minutes, shared::Money::ZERO)
            .ok_or_else(|| ApiError::invalid_field("minutes", "the price is too large"))?
            .gross;
        let discount = match (&promo_code, &state.promo) {
            (None, _) => shared::Money::ZERO,
            (Some(_), None) => return Err(promo_refused(booking::PromoRefusal::Unknown)),
            (Some(_), Some((promo, used))) => promo
                .discount(gross, now, UserType::User, *used, state.promo_used_by_customer)
                .map_err(promo_refused)?,
        };
        let price = booking::price(profile.rate_per_minute, body.minutes, discount)
            .ok_or_else(|| ApiError::invalid_field("minutes", "the price is too large"))?;
        let hold = wallet.hold(price.amount).map_err(wallet_error)?;
        let id = BookingId::from_number(rand::rng().random());
        let consultation = Consultation {
            booking_id: id.clone(),
            customer_id: caller.user_id.clone(),
            astrologer_id: astrologer.id.clone(),
            astrologer_name: profile.display_name.clone(),
            mode: body.mode,
            scheduled_at: interval.0,
            ends_at: interval.1,
            instant: body.scheduled_at.is_none(),
            price,
            promo_code: promo_code.clone().filter(|_| discount > shared::Money::ZERO),
            question: question.clone(),
            hold,
            status: ConsultationStatus::Scheduled,
            created_at: now,
            started_at: None,
            closed_at: None,
            closing: None,
        };
        let note = format!("Consultation {id} with {}", profile.display_name);
        let posting = wallet
            .post(vec![Movement::hold(hold, Reference::consultation(id.as_str()), &note)], now)
            .map_err(wallet_error)?;
        let response = json(201, &consultation);
        let plan = BookingPlan {
            schedule: booking::schedule_with(&astrologer.booked, interval, &id, now),
            schedule_version_read: astrologer.schedule_version,
            promo: state.promo.map(|(p, _)| p).filter(|_| consultation.promo_code.is_some()),
            first_response: StoredResponse::of(&key, &response, now),
            key: key.clone(),
            posting,
            consultation,
        };
        match app.store.book(&plan, now).await? {
            BookingWrite::Booked => {
                tracing::info!(booking_id = %id, amount = %price.amount, "consultation booked");
                return Ok(response);
            }
            BookingWrite::KeyTaken => return key.winner(&app.store, now).await,
            // Someone else moved the wallet or the calendar: back off a little, with jitter,
            // so racing requests spread out instead of colliding again.
            BookingWrite::Moved => shared::store::pause_after_conflict(attempt).await,
        }
    }
    Err(ApiError::unavailable("busy", "this astrologer's calendar or your wallet is busy; try again"))
}

fn promo_refused(r: booking::PromoRefusal) -> ApiError {
    ApiError::new(422, "promo_code_refused", r.to_string()).with_field("promo_code")
}

fn wallet_error(e: WalletError) -> ApiError {
    match e {
        WalletError::Insufficient { shortfall } => ApiError::insufficient_balance(shortfall),
        WalletError::Overflow => ApiError::invalid_field("minutes", "the price is too large"),
    }
}

// ---------------------------------------------------------------- reads and lifecycle

/// The consultation in the path, if the caller is its customer or astrologer (else 404:
/// nobody learns that someone else's exists).
async fn own_consultation(app: &App, req: &Request, caller: &Caller) -> Result<(Consultation, Party), ApiError> {
    let id = BookingId::parse(http::path_param(req, "id")?).ok_or_else(|| ApiError::not_found("consultation"))?;
    let c = app.store.consultation(&id).await?.ok_or_else(|| ApiError::not_found("consultation"))?;
    let party = c.party(&caller.user_id).ok_or_else(|| ApiError::not_found("consultation"))?;
    Ok((c, party))
}

async fn start(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let (mut c, party) = own_consultation(app, req, caller).await?;
    let now = Utc::now();
    if c.status == ConsultationStatus::InProgress && party == Party::Astrologer {
        return Ok(json(200, &c));
    }
    if booking::transition(c.status, Action::Start, party).is_none() {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("a {} consultation cannot be started", c.status.as_str()),
        ));
    }
    booking::may_start(c.scheduled_at, c.ends_at, now).map_err(|r| match r {
        StartRefusal::TooEarly => ApiError::conflict("too_early", r.to_string()),
        StartRefusal::TooLate => ApiError::conflict("too_late", r.to_string()),
    })?;
    match app.store.start_consultation(&c, now).await? {
        StartWrite::Started => {}
        StartWrite::Moved => {
            return Err(ApiError::conflict("invalid_transition", "the consultation changed; read it again"));
        }
        StartWrite::Suspended => {
            return Err(ApiError::new(403, "astrologer_suspended", "the astrologer is suspended"));
        }
    }
    c.status = ConsultationStatus::InProgress;
    c.started_at = Some(now);
    Ok(json(200, &c))
}

fn close_error(e: CloseError) -> ApiError {
    match e {
        CloseError::NotAllowed(..) | CloseError::TooEarly => ApiError::conflict("invalid_transition", e.to_string()),
        CloseError::NotFound => ApiError::not_found("consultation"),
        CloseError::Busy => ApiError::unavailable("busy", e.to_string()),
        CloseError::Store(s) => s.into(),
        CloseError::Wallet(w) => ApiError::internal(w),
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ConsultationPage))]
struct Page<'a> {
    consultations: &'a [Consultation],
    next_cursor: Option<String>,
}

/// `limit` from the query string: 1 to 100, 20 by default.
fn limit(req: &Request) -> Result<i32, ApiError> {
    http::limit_param(req, 20, 100)
}

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A cursor is the index sort key a page ended at; only ones of the shape we hand out pass.
fn decode_cursor(raw: &str, ends_with_booking: bool) -> Result<String, ApiError> {
    let bad = || ApiError::invalid_field("cursor", "is not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let valid = text.len() <= 120
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b":-.#TZ_".contains(&b))
        && (!ends_with_booking || text.rsplit('#').next().and_then(BookingId::parse).is_some());
    valid.then_some(text).ok_or_else(bad)
}

async fn list(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let status = http::query_param(req, "status")
        .map(|s| {
            ConsultationStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field("status", "one of scheduled, in_progress, completed, cancelled, no_show")
            })
        })
        .transpose()?;
    let after = http::query_param(req, "cursor").map(|c| decode_cursor(c, true)).transpose()?;
    let as_astrologer = caller.has_role(UserType::Astrologer);
    let (list, next) =
        app.store.consultations_of(&caller.user_id, as_astrologer, status, limit(req)?, after.as_deref()).await?;
    let next_cursor = next.map(|n| URL_SAFE_NO_PAD.encode(n));
    Ok(json(200, &Page { consultations: &list, next_cursor }))
}

async fn earnings(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let account = Account::Earnings(caller.user_id.clone());
    let after = http::query_param(req, "cursor").map(|c| decode_cursor(c, false)).transpose()?;
    if after.as_ref().is_some_and(|a| !a.starts_with(shared::store::keys::LEDGER_SK_PREFIX)) {
        return Err(ApiError::invalid_field("cursor", "is not a cursor this API returned"));
    }
    let balance = app.store.account(&account).await?.unwrap_or_else(shared::wallet::Wallet::empty);
    let page = app.store.account_ledger_page(&account, limit(req)?, after.as_deref()).await?;
    Ok(json(
        200,
        &Earnings {
            balance: balance.real_cash,
            total_earned: balance.total_credited,
            entries: page.entries,
            next_cursor: page.next.map(|n| URL_SAFE_NO_PAD.encode(n)),
        },
    ))
}

/// An astrologer's earnings account and a page of its ledger, newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Earnings {
    /// Earned and not yet paid out.
    balance: shared::Money,
    total_earned: shared::Money,
    entries: Vec<shared::wallet::LedgerEntry>,
    next_cursor: Option<String>,
}
