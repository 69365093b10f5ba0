//! Paid consultations. A customer books an astrologer (the price held from the wallet, bonus
//! cash first, in the same transaction that creates the consultation and claims the
//! astrologer's time), for a time or now: connecting now rings an online astrologer, who
//! accepts or declines within a minute. The astrologer starts (or accepts) it, the customer
//! joins (the live session: the `live-session` function), and either side ends it (the
//! minutes the server measured are charged, never more than held, the rest goes back, the
//! astrologer earns their share); either side cancels one not started by the stated policy
//! (docs/money.md, "Cancellation policy"). Rules: `shared::domain::booking`; writes:
//! `shared::store::consultations`; closing: `shared::app::closing`. A party of a running
//! session uploads a chat image straight to S3 with a presigned PUT (`shared::app::images`),
//! then sends its key over the WebSocket API.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::app::closing::{self, CloseError};
use shared::domain::astrologer::Mode;
use shared::domain::booking::chat::{self, ChatMessage, ImageKey, ImageType, ServerMessage, Side};
use shared::domain::booking::{
    self, Action, BookingId, BookingRefusal, BookingRequest, BookingState, Consultation, ConsultationStatus,
    ExtensionRefusal, NotBookable, OfferState, Party, StartRefusal,
};
use shared::domain::idempotency::{IdempotencyKey, StoredResponse};
use shared::domain::offer::{self, OfferForYou, Segment};
use shared::domain::wallet::WalletError;
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::store::Account;
use shared::store::consultations::{BookingWrite, StartWrite};
use shared::store::retry::{self, Attempt, Retry};
use shared::{ApiError, UserId, UserType};

pub use shared::app::images::ChatApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use serde_json::json;
    use shared::http::openapi::{
        FunctionDoc, Operation, Request, STORE_UNAVAILABLE, body, error, query, schema, success,
    };
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
                          code's discount or an offer's free minutes) is held from the wallet, bonus cash first, in the same write that claims \
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
                error(422, "offer_refused", "the offer is unknown, over, used up, not for the caller (first consultation, milestone, segment), not taken by this astrologer, or combined with a promo code"),
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
        Op::Accept => Operation {
            summary: "Accept a connect-now request (its astrologer, within a minute of the ring)",
            description: "Opens the session: the astrologer has joined; the meter runs once the customer joins too \
                          (`join` on the WebSocket API). Accepting an accepted one answers it again.",
            responses: consultation("The consultation, in progress"),
            errors: vec![
                not_yours,
                transition,
                error(409, "expired", "the request was not answered within a minute"),
                error(403, "astrologer_suspended", "the astrologer is suspended"),
            ],
            ..Operation::default()
        },
        Op::Decline => Operation {
            summary: "Decline a connect-now request (its astrologer): the customer gets everything back",
            responses: consultation("The consultation, declined, with `closing`"),
            errors: vec![not_yours, transition, busy],
            ..Operation::default()
        },
        Op::Extend => Operation {
            summary: "Extend a session in progress (its customer): more minutes held from the wallet",
            description: "Holds `minutes` more at the booked rate, at once, and moves the session's paid end. On 402, \
                          top up and retry with the same `Idempotency-Key`. At most 120 minutes in all.",
            request: Request::Json(body(schema::<ExtendBody>)),
            idempotency_key: true,
            responses: consultation("The consultation, with its new minutes, hold and `paid_until`"),
            errors: vec![
                not_yours,
                error(402, "insufficient_balance", "the wallet is short by `shortfall`; top up and retry with the same key"),
                error(409, "not_live", "the session is not running (not started, ended, or its paid time is over)"),
                error(409, "slot_taken", "the astrologer is booked right after this session"),
                error(400, "invalid_field", "`minutes` is not a whole number from 1, or the total would pass 120"),
                busy,
            ],
            ..Operation::default()
        },
        Op::Images => Operation {
            summary: "A URL to upload a chat image to (a party of a session in progress)",
            description: "Answers a presigned PUT for one new image key, valid 5 minutes: send the bytes to `upload_url` \
                          with `method` and exactly the `headers` given (the content type and size asked for are \
                          signed: S3 refuses another type or size, another key, or a late upload). Then send \
                          `image_key` in a `send` message on the WebSocket API. The bucket is private: the two \
                          parties see the image through `image_url` on the message, a presigned GET made for each \
                          read, valid 10 minutes.",
            request: Request::Json(body(schema::<ImageUploadBody>)),
            responses: vec![success(200, "Where and how to upload the image", schema::<ImageUpload>)],
            errors: vec![
                not_yours,
                error(409, "not_live", "the session is not running (not started, ended, or its paid time is over)"),
                error(400, "invalid_field", "`content_type` is not image/jpeg or image/png, or `size` is not 1 to 5242880 bytes"),
            ],
            ..Operation::default()
        },
        Op::Messages => Operation {
            summary: "The consultation's chat, oldest first (its customer and astrologer only)",
            description: "A message with an image has `image_key` and `image_url`, a presigned GET of the image valid \
                          10 minutes, made for this read: read the page again for a fresh one.",
            params: page(),
            responses: vec![success(200, "One page of messages", schema::<Messages>)],
            errors: vec![not_yours, bad_page],
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
        Op::Offers => Operation {
            summary: "The offers the caller can use, and those a milestone will unlock",
            description: "Free minutes on a consultation: book with `offer_id` to reserve them (a cancellation, \
                          no-show or decline gives the use back); a recharge bonus (`bonus_percent`): name it in \
                          `POST /wallet/top-ups`, and the credit adds it. `segment` is where the caller stands now.",
            responses: vec![success(200, "The caller's offers", schema::<Offers>)],
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
    Accept,
    Decline,
    Messages,
    Images,
    Extend,
    Complete,
    Cancel,
    Earnings,
    Offers,
}

const ASTROLOGER: Access = Access::Role(UserType::Astrologer);

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /consultations", access: Access::Role(UserType::User), handler: Op::Book },
    Route { key: "GET /consultations", access: Access::SignedIn, handler: Op::List },
    Route { key: "GET /consultations/{id}", access: Access::SignedIn, handler: Op::Get },
    Route { key: "POST /consultations/{id}/start", access: ASTROLOGER, handler: Op::Start },
    Route { key: "POST /consultations/{id}/accept", access: ASTROLOGER, handler: Op::Accept },
    Route { key: "POST /consultations/{id}/decline", access: ASTROLOGER, handler: Op::Decline },
    Route { key: "GET /consultations/{id}/messages", access: Access::SignedIn, handler: Op::Messages },
    // Either party of a running session (own_consultation: only its customer or astrologer).
    Route { key: "POST /consultations/{id}/images", access: Access::SignedIn, handler: Op::Images },
    Route { key: "POST /consultations/{id}/extend", access: Access::Role(UserType::User), handler: Op::Extend },
    // Either party ends it (own_consultation: only its customer or astrologer).
    Route { key: "POST /consultations/{id}/complete", access: Access::SignedIn, handler: Op::Complete },
    Route { key: "POST /consultations/{id}/cancel", access: Access::SignedIn, handler: Op::Cancel },
    Route { key: "GET /astrologers/me/earnings", access: ASTROLOGER, handler: Op::Earnings },
    Route { key: "GET /offers", access: Access::Role(UserType::User), handler: Op::Offers },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::Book => book(app, req, caller).await,
        Op::List => list(app, req, &caller).await,
        Op::Get => Ok(json(200, &own_consultation(app, req, &caller).await?.0)),
        Op::Start | Op::Accept => start(app, req, &caller, op == Op::Accept).await,
        Op::Messages => messages(app, req, &caller).await,
        Op::Images => upload_image(app, req, &caller).await,
        Op::Extend => extend(app, req, &caller).await,
        Op::Complete | Op::Cancel | Op::Decline => {
            let (c, party) = own_consultation(app, req, &caller).await?;
            let action = match op {
                Op::Complete => Action::Complete,
                Op::Decline => Action::Decline,
                _ => Action::Cancel,
            };
            let closed = closing::close(&app.store, c, action, party, app.share).await.map_err(close_error)?;
            app.tell_other(&closed, party).await;
            Ok(json(200, &closed))
        }
        Op::Earnings => earnings(app, req, &caller).await,
        Op::Offers => offers(app, &caller).await,
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
    #[serde(deserialize_with = "shared::domain::json::whole_number")]
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
    /// An offer of `GET /offers` (not with a promo code): its free minutes, reserved now.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^o_[0-9a-f]{12}$"))]
    offer_id: Option<String>,
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
    let request = BookingRequest::new(
        caller.user_id.clone(),
        body.astrologer_id.clone(),
        body.mode,
        body.minutes,
        body.scheduled_at,
        body.promo_code.as_deref(),
        body.question.as_deref(),
    )
    .and_then(|r| r.with_offer(body.offer_id.as_deref()))
    .map_err(|e| ApiError::invalid_field(e.field, e.problem))?;
    let key = IdempotencyKey::required(req, &caller.user_id, &body)?;

    let busy = |_| ApiError::unavailable("busy", "this astrologer's calendar or your wallet is busy; try again");
    retry::on_conflict(Retry::DEFAULT, busy, || async {
        let now = Utc::now();
        let read = app
            .store
            .booking_state(&key, &request.astrologer_id, request.promo_code.as_deref(), request.offer_id.as_deref())
            .await?;
        if let Some(first) = key.replay(read.first_response.as_ref(), now)? {
            return Ok(Attempt::Done(first));
        }
        let wallet = read.wallet.ok_or_else(|| ApiError::not_found("wallet"))?;
        let astrologer = read.astrologer.ok_or_else(|| ApiError::not_found("astrologer"))?;
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: app.share,
            promo: read.promo.as_ref(),
            promo_used_by_customer: read.promo_used_by_customer,
            offer: read.offer.as_ref().map(|o| OfferState {
                offer: o.offer.as_ref(),
                progress: &o.progress,
                thresholds: o.thresholds,
            }),
        };
        let id = BookingId::from_number(rand::rng().random());
        let plan = booking::plan(&state, &request, id, now).map_err(refused)?;
        let response = json(201, &plan.consultation);
        match app.store.book(&plan, &key, &StoredResponse::of(&key, &response, now), now).await? {
            BookingWrite::Booked => {
                let c = &plan.consultation;
                tracing::info!(booking_id = %c.booking_id, amount = %c.price.amount, "consultation booked");
                if c.status == ConsultationStatus::Ringing {
                    let ring = ServerMessage::Ring { consultation: Box::new(c.clone()) };
                    app.push.to_user(&app.store, &c.astrologer_id, &ring).await;
                }
                Ok(Attempt::Done(response))
            }
            BookingWrite::KeyTaken => key.winner(&app.store, now).await.map(Attempt::Done),
            // Someone else moved the wallet or the calendar: read and decide again.
            BookingWrite::Moved => Ok(Attempt::Conflict),
        }
    })
    .await
}

fn refused(r: BookingRefusal) -> ApiError {
    match r {
        BookingRefusal::NotBookable(e) => not_bookable(e),
        BookingRefusal::Promo(e) => promo_refused(e),
        BookingRefusal::Offer(e) => ApiError::new(422, "offer_refused", e.to_string()).with_field("offer_id"),
        BookingRefusal::Wallet(e) => wallet_error(e),
        BookingRefusal::PriceTooLarge => ApiError::invalid_field("minutes", "the price is too large"),
    }
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

/// `GET /offers`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Offers {
    segment: Segment,
    offers: Vec<OfferForYou>,
}

async fn offers(app: &App, caller: &Caller) -> Result<Response, ApiError> {
    let (all, progress, thresholds) = app.store.offers_for(&caller.user_id).await?;
    let now = Utc::now();
    let offers = offer::offers_for(&all, &progress, &thresholds, now);
    Ok(json(200, &Offers { segment: progress.segment(&thresholds, now), offers }))
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

/// The astrologer opens the session: starts a scheduled consultation in its window, or
/// accepts a ringing one before the ring ends (`accept`). They have joined; the meter runs
/// once the customer joins too.
async fn start(app: &App, req: &Request, caller: &Caller, accept: bool) -> Result<Response, ApiError> {
    let (mut c, party) = own_consultation(app, req, caller).await?;
    let now = Utc::now();
    if c.status == ConsultationStatus::InProgress && party == Party::Astrologer {
        return Ok(json(200, &c));
    }
    let accept = accept || c.status == ConsultationStatus::Ringing;
    let (action, verb) = if accept { (Action::Accept, "accepted") } else { (Action::Start, "started") };
    if booking::transition(c.status, action, party).is_none() {
        return Err(ApiError::conflict(
            "invalid_transition",
            format!("a {} consultation cannot be {verb}", c.status.as_str()),
        ));
    }
    if accept {
        if c.ring_expires_at.is_some_and(|at| now >= at) {
            return Err(ApiError::conflict("expired", "the request was not answered within a minute"));
        }
    } else {
        booking::may_start(c.scheduled_at, c.ends_at, now).map_err(|r| match r {
            StartRefusal::TooEarly => ApiError::conflict("too_early", r.to_string()),
            StartRefusal::TooLate => ApiError::conflict("too_late", r.to_string()),
        })?;
    }
    match app.store.open_session(&c, now).await? {
        StartWrite::Started => {}
        StartWrite::Moved => {
            return Err(ApiError::conflict("invalid_transition", "the consultation changed; read it again"));
        }
        StartWrite::Suspended => {
            return Err(ApiError::new(403, "astrologer_suspended", "the astrologer is suspended"));
        }
    }
    c.status = ConsultationStatus::InProgress;
    c.ring_expires_at = None;
    c.attendance.astrologer_joined_at = Some(now);
    c.attendance.astrologer_seen_at = Some(now);
    app.tell_other(&c, party).await;
    Ok(json(200, &c))
}

/// Serialize: the idempotency key's request hash is of the parsed body.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ExtendBody {
    #[serde(deserialize_with = "shared::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 115))]
    minutes: u32,
}

/// The customer buys more minutes of a session in progress: held at once, or `402` with the
/// shortfall (top up, then retry with the same key).
async fn extend(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: ExtendBody = http::json_body(req)?;
    if body.minutes == 0 {
        return Err(ApiError::invalid_field("minutes", "must be at least 1"));
    }
    let key = IdempotencyKey::required(req, &caller.user_id, &body)?;
    let (read, party) = own_consultation(app, req, caller).await?;
    if party != Party::Customer {
        return Err(ApiError::not_found("consultation"));
    }
    let id = read.booking_id.clone();
    let mut first = Some(read);
    let busy = |_| ApiError::unavailable("busy", "your wallet or the session is busy; try again");
    let extended = retry::on_conflict(Retry::DEFAULT, busy, || {
        let read = first.take();
        let (id, key) = (&id, &key);
        async move {
            let c = match read {
                Some(c) => c,
                None => app.store.consultation(id).await?.ok_or_else(|| ApiError::not_found("consultation"))?,
            };
            let now = Utc::now();
            let (first_response, wallet, astrologer) = app.store.extension_state(key, &c).await?;
            if let Some(first) = key.replay(first_response.as_ref(), now)? {
                return Ok(Attempt::Done((first, None)));
            }
            let wallet = wallet.ok_or_else(|| ApiError::not_found("wallet"))?;
            let astrologer = astrologer.ok_or_else(|| ApiError::not_found("astrologer"))?;
            let plan = booking::plan_extension(&c, &wallet, &astrologer, body.minutes, now).map_err(|r| match r {
                ExtensionRefusal::NotLive(e) => ApiError::conflict("not_live", e.to_string()),
                ExtensionRefusal::TooLong => ApiError::invalid_field("minutes", r.to_string()),
                ExtensionRefusal::SlotTaken => ApiError::conflict("slot_taken", r.to_string()),
                ExtensionRefusal::Wallet(e) => wallet_error(e),
            })?;
            let response = json(200, &plan.consultation);
            match app.store.extend(&plan, key, &StoredResponse::of(key, &response, now), now).await? {
                BookingWrite::Booked => Ok(Attempt::Done((response, Some(plan.consultation)))),
                BookingWrite::KeyTaken => key.winner(&app.store, now).await.map(|r| Attempt::Done((r, None))),
                BookingWrite::Moved => Ok(Attempt::Conflict),
            }
        }
    })
    .await?;
    let (response, changed) = extended;
    if let Some(c) = changed {
        tracing::info!(booking_id = %c.booking_id, minutes = c.price.minutes, "session extended");
        app.tell_other(&c, Party::Customer).await;
    }
    Ok(response)
}

/// A page of the consultation's chat, oldest first: its two parties only.
async fn messages(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let (c, _) = own_consultation(app, req, caller).await?;
    let after = http::query_param(req, "cursor").map(|cur| decode_cursor(cur, false)).transpose()?;
    if after.as_ref().is_some_and(|a| !a.starts_with(shared::store::keys::CHAT_MESSAGE_SK_PREFIX)) {
        return Err(ApiError::invalid_field("cursor", "is not a cursor this API returned"));
    }
    let (mut messages, next) = app.store.messages(&c.booking_id, limit(req)?, after.as_deref()).await?;
    app.images.with_image_urls(&mut messages, Utc::now()).await;
    Ok(json(200, &Messages { messages, next_cursor: next.map(|n| URL_SAFE_NO_PAD.encode(n)) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ImageUploadBody {
    content_type: ImageType,
    /// The image's exact size in bytes (S3 refuses an upload of any other).
    #[serde(deserialize_with = "shared::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5242880))]
    size: u64,
}

/// A presigned upload of one chat image.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ImageUpload {
    /// What to send in the `send` message once uploaded.
    image_key: ImageKey,
    upload_url: String,
    /// Always `PUT`.
    method: &'static str,
    /// Send exactly these (they are signed).
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    headers: std::collections::BTreeMap<&'static str, String>,
    expires_at: DateTime<Utc>,
}

/// A presigned PUT of a new image key for the caller's side of a running session.
async fn upload_image(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: ImageUploadBody = http::json_body(req)?;
    let size = chat::check_image_size(body.size).map_err(|problem| ApiError::invalid_field("size", problem))?;
    let (c, party) = own_consultation(app, req, caller).await?;
    let side = Side::of(party).ok_or_else(|| ApiError::not_found("consultation"))?;
    let now = Utc::now();
    shared::domain::booking::session::check_live(&c, now).map_err(|e| ApiError::conflict("not_live", e.to_string()))?;
    let key = ImageKey::new(&c.booking_id, side, rand::rng().random(), body.content_type);
    let upload = app
        .images
        .upload_url(key.as_str(), body.content_type.content_type(), size, now)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(booking_id = %c.booking_id, from = side.as_str(), size, "image upload URL");
    Ok(json(
        200,
        &ImageUpload {
            image_key: key,
            upload_url: upload.url,
            method: "PUT",
            headers: upload.headers,
            expires_at: upload.expires_at,
        },
    ))
}

/// A page of a consultation's chat.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Messages {
    messages: Vec<ChatMessage>,
    next_cursor: Option<String>,
}

fn close_error(e: CloseError) -> ApiError {
    match e {
        CloseError::NotAllowed(..) => ApiError::conflict("invalid_transition", e.to_string()),
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
    let balance = app.store.account(&account).await?.unwrap_or_else(shared::domain::wallet::Wallet::empty);
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
    entries: Vec<shared::domain::wallet::LedgerEntry>,
    next_cursor: Option<String>,
}
