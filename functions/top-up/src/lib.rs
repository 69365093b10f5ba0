//! Wallet top-up through Razorpay, the wallet and its ledger.
//!
//! | route | DynamoDB calls |
//! |---|---|
//! | `POST /wallet/top-ups` | BatchGetItem (idempotency record + wallet), Query (promotion rules), TransactWriteItems (top-up + idempotency record); a replay stops after the first |
//! | `POST /wallet/top-ups/{id}/confirm` | BatchGetItem (top-up + wallet + invoice sequence), TransactWriteItems (the credit); a replay stops after the first |
//! | `POST /webhooks/razorpay` | Query GSI1 (top-up by order id), BatchGetItem (top-up + wallet + sequence + event record), TransactWriteItems; `payment.failed`: Query + UpdateItem |
//! | `GET /wallet/top-ups/{id}` | GetItem |
//! | `GET /wallet` | GetItem |
//! | `GET /wallet/transactions` | Query on `LEDGER#{sub}`, newest first |
//!
//! A credit that loses a race on the wallet version or the invoice sequence reads again and
//! retries (at most [`CREDIT_ATTEMPTS`] times); one that finds the top-up already completed
//! stops. Exactly-once is carried by the transaction's condition on the top-up's status.

pub mod razorpay;
pub mod store;
mod transactions;

use std::str::FromStr;

use chrono::Utc;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::config::{self, ConfigError};
use shared::events::{Envelope, Publisher, WalletCredited};
use shared::http::{self, Caller, Request, Response, json, route_key};
use shared::idempotency::IdempotencyKey;
use shared::store::items;
use shared::store::wallet::{TOPUP_SK, topup_pk};
use shared::store::{Store, WALLET_SK, user_pk};
use shared::{ApiError, Money};

use crate::razorpay::Razorpay;
use crate::store::{Credit, CreditSettings, Source, Status, TopUp, Wallet};

pub const CREDIT_ATTEMPTS: usize = 5;

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub razorpay: Razorpay,
    pub events: Publisher,
    pub gst_rate_percent: Decimal,
    pub min_amount: Money,
    pub max_amount: Money,
    pub invoice_prefix: String,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        let decimal = |name: &'static str, default: &str| {
            Decimal::from_str(&config::optional(vars, name, default))
                .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })
        };
        let money = |name: &'static str, default: &str| {
            config::optional(vars, name, default)
                .parse::<Money>()
                .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })
        };
        let gst_rate_percent = decimal("GST_RATE_PERCENT", "18")?;
        if gst_rate_percent < Decimal::ZERO || gst_rate_percent > Decimal::ONE_HUNDRED {
            return Err(ConfigError::Invalid { name: "GST_RATE_PERCENT", problem: "must be 0 to 100".into() });
        }
        let (min_amount, max_amount) = (money("TOPUP_MIN_AMOUNT", "10")?, money("TOPUP_MAX_AMOUNT", "50000")?);
        if min_amount < Money::from_paise(100) || max_amount < min_amount {
            return Err(ConfigError::Invalid {
                name: "TOPUP_MIN_AMOUNT",
                problem: "must be at least 1.00 (Razorpay's minimum) and at most TOPUP_MAX_AMOUNT".into(),
            });
        }
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            razorpay: Razorpay::new(
                &config::optional(vars, "RAZORPAY_BASE_URL", "https://api.razorpay.com"),
                config::required(vars, "RAZORPAY_KEY_ID")?,
                config::required(vars, "RAZORPAY_KEY_SECRET")?,
                config::required(vars, "RAZORPAY_WEBHOOK_SECRET")?,
            ),
            events: Publisher::from_env(sdk, vars)?,
            gst_rate_percent,
            min_amount,
            max_amount,
            invoice_prefix: config::optional(vars, "INVOICE_PREFIX", "AK"),
        })
    }

    fn settings(&self) -> CreditSettings<'_> {
        CreditSettings { gst_rate_percent: self.gst_rate_percent, invoice_prefix: &self.invoice_prefix }
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    match route_key(req) {
        "POST /wallet/top-ups" => create(app, req, Caller::from_request(req)?).await,
        "POST /wallet/top-ups/{id}/confirm" => confirm(app, req, Caller::from_request(req)?).await,
        "GET /wallet/top-ups/{id}" => get_topup(app, req, Caller::from_request(req)?).await,
        "POST /webhooks/razorpay" => webhook(app, req).await,
        "GET /wallet" => wallet(app, Caller::from_request(req)?).await,
        "GET /wallet/transactions" => transactions::list(app, req, Caller::from_request(req)?).await,
        _ => Err(http::no_route(req)),
    }
}

// ------------------------------------------------------------------ create

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    amount: Money,
}

#[derive(Serialize)]
struct Promotion<'a> {
    rule_id: &'a str,
    name: &'a str,
    bonus_percent: Decimal,
    first_recharge_only: bool,
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
    let key = IdempotencyKey::required(req, &caller.user_id)?;
    let now = Utc::now();

    let wallet_pk = user_pk(&caller.user_id);
    let found = store::batch_get(&app.store, vec![key.key(), items::key(&wallet_pk, WALLET_SK)]).await?;
    if let Some(first) = key.replay(found.get(&key.pk()), now)? {
        return Ok(first);
    }
    let wallet =
        found.get(&wallet_pk).map(store::read_wallet).transpose()?.ok_or_else(|| ApiError::not_found("wallet"))?;

    let rules = app.store.promotion_rules().await?;
    let rule = shared::wallet::best_rule(&rules, amount, wallet.recharge_count);
    let bonus = rule.map_or(Money::ZERO, |r| r.bonus_for(amount));

    let id = format!("tu_{}", uuid::Uuid::new_v4().simple());
    let notes = json!({ "top_up_id": id, "user_id": caller.user_id.as_str() });
    // Nothing is written before Razorpay answers: if it is down, there is nothing to undo.
    let order = app.razorpay.create_order(amount, &id, notes).await?;

    let topup = TopUp {
        id: id.clone(),
        user_id: caller.user_id.clone(),
        amount,
        bonus,
        rule_id: rule.map(|r| r.id.clone()),
        first_recharge_only: rule.is_some_and(|r| r.first_recharge_only),
        razorpay_order_id: order.id.clone(),
        status: Status::Pending,
        created_at: now,
        credit: None,
    };
    let response = json(
        201,
        &json!({
            "top_up_id": id,
            "status": "pending",
            "amount": amount,
            "bonus": bonus,
            "promotion": rule.map(|r| Promotion {
                rule_id: &r.id,
                name: &r.name,
                bonus_percent: r.bonus_percent,
                first_recharge_only: r.first_recharge_only,
            }),
            "checkout": {
                "key": app.razorpay.key_id,
                "order_id": order.id,
                "amount": order.amount,
                "currency": order.currency,
                "name": "AstroKiran",
                "description": "Wallet recharge",
            },
        }),
    );
    let writes = vec![
        shared::store::put_new(&app.store.table, store::topup_item(&topup)),
        key.record(&app.store.table, &response, now),
    ];
    match app.store.client.transact_write_items().set_transact_items(Some(writes)).send().await {
        Ok(_) => {
            tracing::info!(top_up_id = %id, order_id = %order.id, %amount, %bonus, "top-up created");
            Ok(response)
        }
        Err(err) => match shared::store::cancellation_reasons(&err) {
            // Another request with this key won: answer as it did (its order is the one kept).
            Some(reasons) if IdempotencyKey::lost_race(&reasons, 1) => key.winner(&app.store, now).await,
            _ => Err(shared::store::StoreError::from_sdk(err).into()),
        },
    }
}

// ------------------------------------------------------------------ confirm

#[derive(Deserialize)]
struct ConfirmBody {
    razorpay_payment_id: String,
    razorpay_signature: String,
    /// Accepted for the checkout SDK's convenience, never used: the stored order id is.
    #[serde(default)]
    #[allow(dead_code)]
    razorpay_order_id: Option<String>,
}

fn valid_payment_id(id: &str) -> bool {
    id.starts_with("pay_") && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn confirm(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let id = http::path_param(req, "id")?.to_owned();
    let body: ConfirmBody = http::json_body(req)?;
    if !valid_payment_id(&body.razorpay_payment_id) {
        return Err(ApiError::invalid_field("razorpay_payment_id", "must be a Razorpay payment id (pay_...)"));
    }
    for _ in 0..CREDIT_ATTEMPTS {
        let now = Utc::now();
        let state = store::credit_state(&app.store, &id, &caller.user_id, &Source::Confirm, now)
            .await?
            .ok_or_else(|| ApiError::not_found("top-up"))?;
        if !app.razorpay.checkout_signature_valid(
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
            return Ok(json(200, &topup_view(&state.topup, Some(&state.wallet))));
        }
        match store::credit(&app.store, &state, &body.razorpay_payment_id, &Source::Confirm, &app.settings(), now)
            .await?
        {
            Credit::Credited { wallet, topup } => {
                announce(app, &topup, &wallet).await;
                return Ok(json(200, &topup_view(&topup, Some(&wallet))));
            }
            // Completed by a webhook meanwhile, or the wallet moved: the next read shows which.
            Credit::AlreadyDone | Credit::Conflict => continue,
        }
    }
    Err(ApiError::unavailable("busy", "the wallet is busy; try again"))
}

fn topup_view(t: &TopUp, wallet: Option<&Wallet>) -> serde_json::Value {
    json!({
        "top_up_id": t.id,
        "status": t.status,
        "amount": t.amount,
        "bonus": t.credit.as_ref().map_or(t.bonus, |c| c.bonus_credited),
        "razorpay_order_id": t.razorpay_order_id,
        "created_at": t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "payment_id": t.credit.as_ref().map(|c| &c.payment_id),
        "completed_at": t.credit.as_ref().map(|c| &c.completed_at),
        "invoice": t.credit.as_ref().map(|c| &c.invoice),
        "wallet": wallet,
    })
}

async fn announce(app: &App, topup: &TopUp, wallet: &Wallet) {
    let Some(credit) = &topup.credit else { return };
    let event = WalletCredited {
        user_id: topup.user_id.clone(),
        top_up_id: topup.id.clone(),
        amount: topup.amount,
        bonus: credit.bonus_credited,
        real_cash: wallet.real_cash,
        bonus_cash: wallet.bonus_cash,
        invoice_number: credit.invoice.invoice_number.clone(),
    };
    tracing::info!(top_up_id = %topup.id, amount = %topup.amount, bonus = %credit.bonus_credited,
        credited_by = %credit.credited_by, "wallet credited");
    // The credit is committed; a lost notification must not undo or repeat it.
    if let Err(e) = app.events.publish(&Envelope::new(format!("wallet-credited-{}", topup.id), Utc::now(), event)).await {
        tracing::error!(top_up_id = %topup.id, error = %e, "WalletCredited not published");
    }
}

// ------------------------------------------------------------------ reads

async fn get_topup(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let id = http::path_param(req, "id")?;
    let item = app
        .store
        .client
        .get_item()
        .table_name(&app.store.table)
        .set_key(Some(items::key(topup_pk(id), TOPUP_SK)))
        .consistent_read(true)
        .send()
        .await
        .map_err(shared::store::StoreError::from_sdk)?
        .item;
    let topup = item.as_ref().map(store::read_topup).transpose()?.filter(|t| t.user_id == caller.user_id);
    let topup = topup.ok_or_else(|| ApiError::not_found("top-up"))?;
    Ok(json(200, &topup_view(&topup, None)))
}

async fn wallet(app: &App, caller: Caller) -> Result<Response, ApiError> {
    let item = app
        .store
        .client
        .get_item()
        .table_name(&app.store.table)
        .set_key(Some(items::key(user_pk(&caller.user_id), WALLET_SK)))
        .consistent_read(true)
        .send()
        .await
        .map_err(shared::store::StoreError::from_sdk)?
        .item;
    let wallet = item.as_ref().map(store::read_wallet).transpose()?.ok_or_else(|| ApiError::not_found("wallet"))?;
    Ok(json(200, &wallet))
}

// ------------------------------------------------------------------ webhook

async fn webhook(app: &App, req: &Request) -> Result<Response, ApiError> {
    let raw = http::raw_body(req)?;
    let Some(signature) = http::header(req, "x-razorpay-signature") else {
        return Err(ApiError::bad_request("missing_signature", "X-Razorpay-Signature is required"));
    };
    if !app.razorpay.webhook_signature_valid(&raw, signature) {
        tracing::warn!("razorpay webhook signature mismatch");
        return Err(ApiError::unauthorized("invalid_signature", "X-Razorpay-Signature does not match the body"));
    }
    let event: razorpay::WebhookEvent = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("not a Razorpay event: {e}")))?;
    // Razorpay sends the same id on every retry of one event; without it, the body is the event.
    let event_id = http::header(req, "x-razorpay-event-id")
        .map(str::to_owned)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .unwrap_or_else(|| shared::idempotency::request_hash("razorpay", &raw));
    let outcome = match event.event.as_str() {
        "payment.captured" | "order.paid" => webhook_credit(app, &event, &event_id).await?,
        "payment.failed" => webhook_failed(app, &event).await?,
        other => {
            tracing::info!(event = other, "razorpay event ignored");
            "ignored"
        }
    };
    tracing::info!(event = %event.event, event_id = %event_id, outcome, "razorpay webhook handled");
    Ok(json(200, &json!({ "status": outcome })))
}

async fn webhook_credit(app: &App, event: &razorpay::WebhookEvent, event_id: &str) -> Result<&'static str, ApiError> {
    let (Some(order_id), Some(payment)) = (event.order_id(), event.payment()) else {
        return Err(ApiError::bad_request("invalid_body", "the event has no payment or order id"));
    };
    let Some(topup) = store::topup_by_order(&app.store, order_id).await? else {
        // Not one of ours (another integration on the account): acknowledge, or Razorpay
        // would retry for a day and then disable the webhook.
        tracing::warn!(order_id, "webhook for an unknown order");
        return Ok("ignored");
    };
    if payment.amount != topup.amount.paise() || payment.currency != "INR" {
        tracing::error!(top_up_id = %topup.id, paid = payment.amount, "payment amount differs from the order; not credited");
        return Ok("ignored");
    }
    let source = Source::Webhook { event: event.event.clone(), event_id: event_id.to_owned() };
    for _ in 0..CREDIT_ATTEMPTS {
        let now = Utc::now();
        let Some(state) = store::credit_state(&app.store, &topup.id, &topup.user_id, &source, now).await? else {
            return Ok("ignored");
        };
        if state.event_seen {
            return Ok("duplicate");
        }
        if state.topup.status == Status::Completed {
            return Ok("already_credited");
        }
        match store::credit(&app.store, &state, &payment.id, &source, &app.settings(), now).await? {
            Credit::Credited { wallet, topup } => {
                announce(app, &topup, &wallet).await;
                return Ok("credited");
            }
            Credit::AlreadyDone => return Ok("already_credited"),
            Credit::Conflict => continue,
        }
    }
    Err(ApiError::unavailable("busy", "the wallet is busy; retry"))
}

async fn webhook_failed(app: &App, event: &razorpay::WebhookEvent) -> Result<&'static str, ApiError> {
    let (Some(order_id), Some(payment)) = (event.order_id(), event.payment()) else {
        return Err(ApiError::bad_request("invalid_body", "the event has no payment or order id"));
    };
    let Some(topup) = store::topup_by_order(&app.store, order_id).await? else {
        return Ok("ignored");
    };
    let reason = payment.error_description.as_deref().unwrap_or("payment failed");
    // Only a pending top-up fails: after a success this changes nothing.
    Ok(if store::mark_failed(&app.store, &topup.id, reason, Utc::now()).await? { "failed" } else { "ignored" })
}
