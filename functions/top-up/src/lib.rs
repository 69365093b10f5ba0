//! Wallet top-up through Razorpay, the wallet and its ledger.
//!
//! | route | DynamoDB calls |
//! |---|---|
//! | `POST /wallet/top-ups` | BatchGetItem (idempotency record + wallet + open top-ups, at most [`MAX_OPEN_TOPUPS`]), Query (promotion rules), TransactWriteItems (top-up + idempotency record); a replay stops after the first |
//! | `POST /wallet/top-ups/{id}/confirm` | BatchGetItem (top-up + wallet + invoice sequence), Razorpay `GET /v1/payments/{id}` (captured?), TransactWriteItems (the credit); a replay stops after the first |
//! | `POST /webhooks/razorpay` | Query GSI1 (top-up by order id), Razorpay `GET /v1/payments/{id}` (the event's copy may be stale), BatchGetItem (top-up + wallet + sequence + event record), TransactWriteItems; `payment.failed`: Query + UpdateItem; an order the index does not show: Query, Razorpay `GET /v1/orders/{id}` (its notes), GetItem (the top-up they name: found, 503 to be retried) |
//! | `POST /webhooks/razorpay` `refund.processed`, `payment.dispute.*` | Query GSI1 (top-up by order id), BatchGetItem (top-up + wallet + refund or dispute record), TransactWriteItems (see [`reversals`]); one that overtook its payment's credit credits it first (Razorpay `GET /v1/payments/{id}`, BatchGetItem, TransactWriteItems) |
//!
//! A credit made more than [`shared::domain::topup::QUOTE_VALID_FOR`] after the top-up was created
//! (by the payment's time) reads the promotion rules again (one Query): the bonus is what
//! they say then. A credit of a payment Razorpay reports refunded takes each refund back
//! (Razorpay `GET /v1/payments/{id}/refunds`, then as the refund's own webhook would).
//! | `GET /wallet/top-ups/{id}` | GetItem |
//! | `GET /wallet` | GetItem |
//! | `GET /wallet/transactions` | Query on `LEDGER#{sub}`, newest first |
//!
//! A credit that loses a race on the wallet version or the invoice sequence reads again and
//! retries (at most [`CREDIT_ATTEMPTS`] times); one that finds the top-up already completed
//! stops. Exactly-once is carried by the transaction's condition on the top-up's status. The
//! credit, the `App` and the Razorpay client are shared with `top-up-reconcile`
//! (`shared::app::top_up`, `shared::providers::razorpay`).

#[cfg(feature = "openapi")]
mod openapi;
mod reversals;
mod transactions;

#[cfg(feature = "openapi")]
pub use openapi::openapi;
pub use shared::app::top_up::App;

use chrono::Utc;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::app::top_up::{CREDIT_ATTEMPTS, credit, log_credit};
use shared::domain::idempotency::{IdempotencyKey, StoredResponse};
use shared::domain::offer::{Offer, OfferRead, OfferRefusal};
use shared::domain::topup::{InvoiceView, MAX_OPEN_TOPUPS, Source, Status, TopUp};
use shared::domain::user::UserId;
use shared::domain::wallet::WalletView;
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::providers::razorpay::{self, PaymentCheck};
use shared::store::TxError;
use shared::store::retry::{self, Attempt};
use shared::store::topups::Credit;
use shared::{ApiError, Money};

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Confirm,
    GetTopUp,
    Webhook,
    Wallet,
    Transactions,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /wallet/top-ups", access: Access::SignedIn, handler: Op::Create },
    Route { key: "POST /wallet/top-ups/{id}/confirm", access: Access::SignedIn, handler: Op::Confirm },
    Route { key: "GET /wallet/top-ups/{id}", access: Access::SignedIn, handler: Op::GetTopUp },
    // Public: Razorpay signs the body instead.
    Route { key: "POST /webhooks/razorpay", access: Access::Public, handler: Op::Webhook },
    Route { key: "GET /wallet", access: Access::SignedIn, handler: Op::Wallet },
    Route { key: "GET /wallet/transactions", access: Access::SignedIn, handler: Op::Transactions },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    match op {
        Op::Create => create(app, req, http::signed_in(caller)?).await,
        Op::Confirm => confirm(app, req, http::signed_in(caller)?).await,
        Op::GetTopUp => get_topup(app, req, http::signed_in(caller)?).await,
        Op::Webhook => webhook(app, req).await,
        Op::Wallet => wallet(app, http::signed_in(caller)?).await,
        Op::Transactions => transactions::list(app, req, http::signed_in(caller)?).await,
    }
}

// ------------------------------------------------------------------ create

/// Serialize: the idempotency key's request hash is of the parsed body (`"500"` and `500`
/// are one amount).
#[derive(Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// INR to add, from `TOPUP_MIN_AMOUNT` (10) to `TOPUP_MAX_AMOUNT` (50,000), at most 2 decimals.
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::amount))]
    amount: Money,
    /// A recharge-bonus offer of `GET /offers`: its bonus is added when the payment is
    /// credited, if the offer still holds then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^o_[0-9a-f]{12}$"))]
    offer_id: Option<String>,
}

/// The offer whose bonus was quoted.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct OfferQuote<'a> {
    offer_id: &'a str,
    name: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("10")))]
    bonus_percent: Decimal,
    /// Its part of `bonus`.
    bonus: Money,
}

/// The promotion rule whose bonus was quoted.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Promotion<'a> {
    rule_id: &'a str,
    name: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("20")))]
    bonus_percent: Decimal,
    first_recharge_only: bool,
}

/// What the app hands Razorpay's checkout SDK.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Checkout<'a> {
    /// Razorpay key id.
    key: &'a str,
    order_id: &'a str,
    /// Integer paise, as Razorpay wants it.
    amount: u64,
    currency: &'a str,
    name: &'static str,
    description: &'static str,
}

/// `201` of `POST /wallet/top-ups` (a retry with the same `Idempotency-Key` gets it again).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Created<'a> {
    top_up_id: &'a str,
    /// Always `pending`.
    status: Status,
    amount: Money,
    /// Bonus cash the top-up will add when paid: the promotion rule's and the offer's.
    bonus: Money,
    promotion: Option<Promotion<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offer: Option<OfferQuote<'a>>,
    checkout: Checkout<'a>,
}

async fn create(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let body: CreateBody = http::json_body(req)?;
    let amount = body.amount;
    if amount < app.min_amount || amount > app.max_amount {
        return Err(ApiError::invalid_field(
            "amount",
            format!("must be between {} and {} INR", app.min_amount, app.max_amount),
        ));
    }
    if body.offer_id.as_deref().is_some_and(|id| !Offer::valid_id(id)) {
        return Err(ApiError::invalid_field("offer_id", "is not an offer's id"));
    }
    let key = IdempotencyKey::required(req, &caller.user_id, &body)?;
    let now = Utc::now();

    let (record, wallet, open) = app.store.topup_create_state(&key).await?;
    if let Some(first) = key.replay(record.as_ref(), now)? {
        return Ok(first);
    }
    let wallet = wallet.ok_or_else(|| ApiError::not_found("wallet"))?;
    // Checked before Razorpay is asked for an order; the transaction's condition holds it
    // under races.
    if open >= MAX_OPEN_TOPUPS {
        return Err(too_many_open());
    }

    let (rules, offered) = tokio::try_join!(app.store.promotion_rules(), async {
        match &body.offer_id {
            Some(id) => app.store.offer_state(&caller.user_id, id).await.map(Some),
            None => Ok(None),
        }
    })?;
    let offer = match &offered {
        Some(OfferRead { offer: Some((offer, counters)), progress, thresholds }) => {
            let bonus = offer
                .recharge_bonus_for(progress, thresholds, wallet.recharge_count, counters.taken, amount, now)
                .map_err(|e| ApiError::new(422, "offer_refused", e.to_string()).with_field("offer_id"))?;
            Some(OfferQuote {
                offer_id: &offer.offer_id,
                name: &offer.name,
                bonus_percent: offer.bonus_percent.unwrap_or_default(),
                bonus,
            })
        }
        Some(_) => {
            let unknown = OfferRefusal::Unknown.to_string();
            return Err(ApiError::new(422, "offer_refused", unknown).with_field("offer_id"));
        }
        None => None,
    };
    let rule = shared::domain::promotion::best_rule(&rules, amount, wallet.recharge_count);
    let bonus = rule.map_or(Money::ZERO, |r| r.bonus_for(amount));
    // Should another recharge be credited first, a first-recharge-only rule no longer holds:
    // the best rule for a later recharge is quoted now, so the credit needs no rules read.
    let fallback = rule
        .filter(|r| r.first_recharge_only)
        .and_then(|_| shared::domain::promotion::best_rule(&rules, amount, wallet.recharge_count.max(1)));

    let id = format!("tu_{}", uuid::Uuid::new_v4().simple());
    let notes = json!({ "top_up_id": id, "user_id": caller.user_id.as_str() });
    // Nothing is written before Razorpay answers: if it is down, there is nothing to undo.
    let razorpay = app.razorpay.get().await?;
    let order = razorpay.create_order(amount, &id, notes).await?;

    let topup = TopUp {
        id: id.clone(),
        user_id: caller.user_id.clone(),
        amount,
        bonus,
        rule_id: rule.map(|r| r.id.clone()),
        first_recharge_only: rule.is_some_and(|r| r.first_recharge_only),
        fallback_rule_id: fallback.map(|r| r.id.clone()),
        fallback_bonus: fallback.map_or(Money::ZERO, |r| r.bonus_for(amount)),
        offer_id: offer.as_ref().map(|o| o.offer_id.to_owned()),
        razorpay_order_id: order.id.clone(),
        status: Status::Pending,
        created_at: now,
        credit: None,
    };
    let response = json(
        201,
        &Created {
            top_up_id: &id,
            status: Status::Pending,
            amount,
            bonus: offer.as_ref().and_then(|o| bonus.checked_add(o.bonus).ok()).unwrap_or(bonus),
            promotion: rule.map(|r| Promotion {
                rule_id: &r.id,
                name: &r.name,
                bonus_percent: r.bonus_percent,
                first_recharge_only: r.first_recharge_only,
            }),
            offer,
            checkout: Checkout {
                key: &razorpay.key_id,
                order_id: &order.id,
                amount: order.amount,
                currency: &order.currency,
                name: "AstroKiran",
                description: "Wallet recharge",
            },
        },
    );
    let mut tx = app.store.tx();
    tx.new_topup(&topup).idempotency(&key, &StoredResponse::of(&key, &response, now), now);
    match app.store.commit(tx).await {
        Ok(()) => {
            tracing::info!(top_up_id = %id, order_id = %order.id, %amount, %bonus, "top-up created");
            Ok(response)
        }
        // Another request with this key won: answer as it did (its order is the one kept).
        Err(TxError::Cancelled(c)) if c.failed("idempotency") => key.winner(&app.store, now).await,
        Err(TxError::Cancelled(c)) if c.failed("open_topups") => Err(too_many_open()),
        Err(e) => Err(shared::store::StoreError::from(e).into()),
    }
}

fn too_many_open() -> ApiError {
    ApiError::conflict(
        "too_many_open_top_ups",
        format!(
            "at most {MAX_OPEN_TOPUPS} top-ups may await payment at once: pay one, or wait (an unpaid one is given up an hour after it was created)"
        ),
    )
}

// ------------------------------------------------------------------ confirm

/// What Razorpay's checkout SDK hands the app after a payment.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = TopUpConfirmBody))]
struct ConfirmBody {
    #[cfg_attr(feature = "openapi", schema(pattern = "^pay_[A-Za-z0-9_]{0,60}$"))]
    razorpay_payment_id: String,
    razorpay_signature: String,
    /// Accepted for the checkout SDK's convenience, never used: the stored order id is.
    #[serde(default)]
    #[allow(dead_code)]
    razorpay_order_id: Option<String>,
}

pub(crate) fn valid_payment_id(id: &str) -> bool {
    id.starts_with("pay_") && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn confirm(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let id = http::path_param(req, "id")?.to_owned();
    if !shared::store::keys::bounded_id(&id) {
        return Err(ApiError::not_found("top-up"));
    }
    let body: ConfirmBody = http::json_body(req)?;
    if !valid_payment_id(&body.razorpay_payment_id) {
        return Err(ApiError::invalid_field("razorpay_payment_id", "must be a Razorpay payment id (pay_...)"));
    }
    // Razorpay is asked about the payment once, whatever the number of attempts.
    let captured = tokio::sync::OnceCell::<razorpay::PaymentEntity>::new();
    let busy = |_| ApiError::unavailable("busy", "the wallet is busy; try again");
    retry::on_conflict(CREDIT_ATTEMPTS, busy, || async {
        let now = Utc::now();
        let mut state = app
            .store
            .credit_state(&id, &caller.user_id, None, &Source::Confirm, now)
            .await?
            .ok_or_else(|| ApiError::not_found("top-up"))?;
        if !app.razorpay.get().await?.checkout_signature_valid(
            &state.topup.razorpay_order_id,
            &body.razorpay_payment_id,
            &body.razorpay_signature,
        ) {
            tracing::warn!(top_up_id = %id, "checkout signature mismatch");
            return Err(ApiError::bad_request(
                "invalid_signature",
                "razorpay_signature does not match this top-up's order and payment",
            )
            .with_field("razorpay_signature"));
        }
        if state.topup.status == Status::Completed {
            return Ok(Attempt::Done(json(200, &topup_view(&state.topup, Some(&state.wallet.view())))));
        }
        let payment =
            captured.get_or_try_init(|| require_captured(app, &state.topup, &body.razorpay_payment_id)).await?;
        let plan = credit::credit_plan(app, &mut state, payment, &Source::Confirm, now).await?;
        Ok(match app.store.credit(&plan, &Source::Confirm, now).await? {
            Credit::Credited => {
                log_credit(&plan.topup);
                if payment.amount_refunded > 0 {
                    // Refunded already: what the wallet holds now is read again after.
                    credit::take_back_refunds(app, &plan.topup, payment).await?;
                    let wallet = app.store.wallet(&caller.user_id).await?.map(|w| w.view());
                    return Ok(Attempt::Done(json(200, &topup_view(&plan.topup, wallet.as_ref()))));
                }
                Attempt::Done(json(200, &topup_view(&plan.topup, Some(&plan.posting.after.view()))))
            }
            // Completed by a webhook meanwhile (the next read shows it), or the wallet or the
            // invoice sequence moved: read again.
            Credit::AlreadyDone | Credit::Conflict => Attempt::Conflict,
        })
    })
    .await
}

/// A payment Razorpay reports for another order, amount or currency than the top-up's: never
/// credited, and an alarm (the template's metric filter matches this exact message).
fn log_amount_differs(topup: &TopUp, payment: &razorpay::PaymentEntity, via: &str) {
    let (paid, currency) = (payment.amount, payment.currency.as_str());
    tracing::error!(top_up_id = %topup.id, paid, currency, via, "payment amount differs from the order; not credited");
}

/// The checkout signature proves the checkout finished, not that money moved: only
/// Razorpay's own record of a captured payment for this order, amount and currency credits.
async fn require_captured(app: &App, topup: &TopUp, payment_id: &str) -> Result<razorpay::PaymentEntity, ApiError> {
    let payment = app.razorpay.get().await?.payment(payment_id).await?;
    match payment.check(&topup.razorpay_order_id, topup.amount) {
        PaymentCheck::Captured => Ok(payment),
        PaymentCheck::NotCaptured => {
            tracing::warn!(top_up_id = %topup.id, status = %payment.status, "confirm of a payment not captured");
            Err(ApiError::conflict(
                "payment_not_captured",
                format!(
                    "Razorpay reports this payment {}; the wallet is credited once Razorpay captures it",
                    payment.status
                ),
            ))
        }
        PaymentCheck::Mismatch => {
            log_amount_differs(topup, &payment, "confirm");
            Err(ApiError::conflict(
                "payment_mismatch",
                "Razorpay's record of this payment is not for this top-up's order, amount and currency",
            ))
        }
    }
}

/// A top-up as its owner sees it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct TopUpView<'a> {
    top_up_id: &'a str,
    status: Status,
    amount: Money,
    /// The bonus credited (once completed) or quoted.
    bonus: Money,
    /// The recharge-bonus offer it names.
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_id: Option<&'a str>,
    /// Once completed: the offer's part of `bonus` (0.00 if the offer no longer held).
    #[serde(skip_serializing_if = "Option::is_none")]
    offer_bonus: Option<Money>,
    razorpay_order_id: &'a str,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    created_at: String,
    payment_id: Option<&'a str>,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    completed_at: Option<&'a str>,
    /// Once completed: the GST invoice (the amount paid is GST-inclusive).
    invoice: Option<&'a InvoiceView>,
    /// After a confirm: the wallet's balances.
    wallet: Option<&'a WalletView>,
}

fn topup_view<'a>(t: &'a TopUp, wallet: Option<&'a WalletView>) -> TopUpView<'a> {
    TopUpView {
        top_up_id: &t.id,
        status: t.status,
        amount: t.amount,
        bonus: t.credit.as_ref().map_or(t.bonus, |c| c.bonus_credited),
        offer_id: t.offer_id.as_deref(),
        offer_bonus: t.offer_id.as_ref().and(t.credit.as_ref()).map(|c| c.offer_bonus),
        razorpay_order_id: &t.razorpay_order_id,
        created_at: t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        payment_id: t.credit.as_ref().map(|c| c.payment_id.as_str()),
        completed_at: t.credit.as_ref().map(|c| c.completed_at.as_str()),
        invoice: t.credit.as_ref().map(|c| &c.invoice),
        wallet,
    }
}

// ------------------------------------------------------------------ reads

async fn get_topup(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let id = http::path_param(req, "id")?;
    if !shared::store::keys::bounded_id(id) {
        return Err(ApiError::not_found("top-up"));
    }
    let topup = app.store.topup(id, &caller.user_id).await?.ok_or_else(|| ApiError::not_found("top-up"))?;
    Ok(json(200, &topup_view(&topup, None)))
}

async fn wallet(app: &App, caller: Caller) -> Result<Response, ApiError> {
    let wallet = app.store.wallet(&caller.user_id).await?.ok_or_else(|| ApiError::not_found("wallet"))?;
    Ok(json(200, &wallet.view()))
}

// ------------------------------------------------------------------ webhook

async fn webhook(app: &App, req: &Request) -> Result<Response, ApiError> {
    let raw = http::raw_body(req)?;
    // Unsigned is unauthenticated, like a wrong signature (and as the Digio webhook answers).
    let Some(signature) = http::header(req, "x-razorpay-signature") else {
        return Err(ApiError::unauthorized("missing_signature", "X-Razorpay-Signature is required"));
    };
    if !app.razorpay.get().await?.webhook_signature_valid(&raw, signature) {
        tracing::warn!("razorpay webhook signature mismatch");
        return Err(ApiError::unauthorized("invalid_signature", "X-Razorpay-Signature does not match the body"));
    }
    let event: razorpay::WebhookEvent = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("not a Razorpay event: {e}")))?;
    // Razorpay sends the same id on every retry of one event; without it, the body is the event.
    let event_id = http::header(req, "x-razorpay-event-id")
        .map(str::to_owned)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .unwrap_or_else(|| shared::domain::idempotency::bytes_hash("razorpay", &raw));
    let outcome = match event.event.as_str() {
        "payment.captured" | "order.paid" => webhook_credit(app, &event, &event_id).await?,
        "payment.failed" => webhook_failed(app, &event).await?,
        "refund.processed" => reversals::refund(app, &event, &event_id).await?,
        dispute if dispute.starts_with("payment.dispute.") => reversals::dispute(app, &event, &event_id).await?,
        other => {
            tracing::info!(event = other, "razorpay event ignored");
            WebhookOutcome::Ignored
        }
    };
    tracing::info!(event = %event.event, event_id = %event_id, outcome = ?outcome, "razorpay webhook handled");
    Ok(json(200, &WebhookAck { status: outcome }))
}

/// The `200` answer to Razorpay: what became of the event.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct WebhookAck {
    status: WebhookOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub(crate) enum WebhookOutcome {
    /// The wallet was credited.
    Credited,
    /// The top-up was credited before (by the confirm or another event).
    AlreadyCredited,
    /// This event id was handled before.
    Duplicate,
    /// Not an event we act on, or not one of our orders.
    Ignored,
    /// `payment.failed`: the pending top-up is now `failed`.
    Failed,
    /// A refund or chargeback took the recharge's share back from the wallet.
    Reversed,
    /// A dispute won or closed gave it back.
    Restored,
    /// A dispute moved to a stage that moves no money (or nothing was left to take back).
    Recorded,
}

async fn webhook_credit(app: &App, event: &razorpay::WebhookEvent, event_id: &str) -> Result<WebhookOutcome, ApiError> {
    let (Some(order_id), Some(payment)) = (event.order_id(), event.payment()) else {
        // A payment not made against an order (a payment link, another integration on the
        // account) is not ours: acknowledged, or Razorpay retries it for a day and then
        // disables the webhook.
        tracing::info!(event = %event.event, "razorpay event without an order; not ours");
        return Ok(WebhookOutcome::Ignored);
    };
    let Some(topup) = topup_of_order(app, order_id).await? else {
        return Ok(WebhookOutcome::Ignored);
    };
    if !valid_payment_id(&payment.id) {
        return Ok(WebhookOutcome::Ignored);
    }
    // The event's copy of the payment may be days old (Razorpay retries): Razorpay's record
    // now says whether it is still captured, and what of it was refunded since.
    let payment = &app.razorpay.get().await?.payment(&payment.id).await?;
    match payment.check(order_id, topup.amount) {
        PaymentCheck::Captured => {}
        PaymentCheck::NotCaptured => {
            tracing::warn!(top_up_id = %topup.id, status = %payment.status, "webhook for a payment not captured");
            return Ok(WebhookOutcome::Ignored);
        }
        PaymentCheck::Mismatch => {
            log_amount_differs(&topup, payment, "webhook");
            return Ok(WebhookOutcome::Ignored);
        }
    }
    let source = Source::Webhook { event: event.event.clone(), event_id: event_id.to_owned() };
    Ok(match credit::credit_captured(app, &topup, payment, &source).await? {
        credit::Credited::Now => WebhookOutcome::Credited,
        credit::Credited::Before => WebhookOutcome::AlreadyCredited,
        credit::Credited::DuplicateEvent => WebhookOutcome::Duplicate,
        credit::Credited::NoTopUp => WebhookOutcome::Ignored,
    })
}

/// The top-up paid through `order_id`; `None`: not one of our orders. An order whose top-up
/// the index does not show yet (GSI1 lags the table by a moment) is a 503, so Razorpay
/// retries the event rather than it being dropped: Razorpay's notes on the order name the
/// top-up, and a consistent read finds it.
pub(crate) async fn topup_of_order(app: &App, order_id: &str) -> Result<Option<TopUp>, ApiError> {
    if !shared::store::keys::bounded_id(order_id) {
        return Ok(None);
    }
    if let Some(topup) = app.store.topup_by_order(order_id).await? {
        return Ok(Some(topup));
    }
    let notes = app.razorpay.get().await?.order_notes(order_id).await?;
    let owner = notes.as_ref().and_then(|n| UserId::parse(&n.user_id).ok().map(|user| (&n.top_up_id, user)));
    let ours = match owner {
        Some((top_up_id, user)) if shared::store::keys::bounded_id(top_up_id) => {
            app.store.topup(top_up_id, &user).await?.filter(|t| t.razorpay_order_id == order_id)
        }
        _ => None,
    };
    match ours {
        Some(topup) => {
            tracing::warn!(order_id, top_up_id = %topup.id, "webhook for our order before the index shows it; retry");
            Err(ApiError::unavailable("top_up_not_found_yet", "the top-up of this order is not visible yet; retry"))
        }
        None => {
            // Another integration on the account, or another deployment sharing it: acknowledged.
            tracing::warn!(order_id, "webhook for an order that is not ours");
            Ok(None)
        }
    }
}

async fn webhook_failed(app: &App, event: &razorpay::WebhookEvent) -> Result<WebhookOutcome, ApiError> {
    let (Some(order_id), Some(payment)) = (event.order_id(), event.payment()) else {
        return Ok(WebhookOutcome::Ignored);
    };
    if !shared::store::keys::bounded_id(order_id) {
        return Ok(WebhookOutcome::Ignored);
    }
    let Some(topup) = app.store.topup_by_order(order_id).await? else {
        return Ok(WebhookOutcome::Ignored);
    };
    let reason = payment.error_description.as_deref().unwrap_or("payment failed");
    // Only a pending top-up fails: after a success this changes nothing.
    Ok(if app.store.mark_topup_failed(&topup.id, reason, Utc::now()).await? {
        WebhookOutcome::Failed
    } else {
        WebhookOutcome::Ignored
    })
}
