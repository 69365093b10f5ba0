//! The Razorpay stand-in: the Orders API (`POST /v1/orders`, `GET /v1/orders/{id}`,
//! `GET /v1/orders/{id}/payments`), the Payments API (`GET /v1/payments/{id}`,
//! `GET /v1/payments/{id}/refunds`), Basic auth with
//! the key id and secret, integer paise; and a "customer" who pays or fails an order. A payment
//! is `captured` when its order was created with `payment_capture` (auto-capture), else only
//! `authorized` (with no webhooks), as on an account that captures by hand.
//! Local routes: `POST /_local/orders/{id}/pay` (add `?webhooks=false` to only get the checkout
//! response) and `POST /_local/orders/{id}/fail`; `POST /_local/webhooks/replay` sends every
//! webhook again with its event id, as Razorpay's retries do. Paying returns what the checkout SDK
//! hands the app (`razorpay_order_id`, `razorpay_payment_id`, `razorpay_signature`) and
//! POSTs signed `payment.captured` and `order.paid` webhooks to the local API, as Razorpay does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Result, anyhow};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::signature::hmac_sha256_hex;

pub const KEY_ID: &str = "rzp_test_localstack";
pub const KEY_SECRET: &str = "local_key_secret_do_not_use";
pub const WEBHOOK_SECRET: &str = "local_webhook_secret_do_not_use";

#[derive(Debug, Clone, Serialize)]
pub struct StubOrder {
    pub id: String,
    pub amount: u64,
    pub currency: String,
    pub receipt: Option<String>,
    pub notes: Value,
    pub status: String,
    pub created_at: i64,
    /// Created with `payment_capture`: Razorpay captures its payments as soon as authorised.
    pub auto_capture: bool,
}

/// A payment as Razorpay records it (tests may change it: [`RazorpayStub::update_payment`]).
#[derive(Debug, Clone, Serialize)]
pub struct StubPayment {
    pub id: String,
    pub order_id: String,
    pub amount: u64,
    pub currency: String,
    /// `authorized`, `captured`, `failed`, or `refunded` once refunded in full.
    pub status: String,
    /// Paise refunded so far.
    pub amount_refunded: u64,
    pub created_at: i64,
}

/// What the checkout SDK gives the app after a successful payment, and the webhooks sent.
#[derive(Debug, Clone, Serialize)]
pub struct Paid {
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
    pub razorpay_signature: String,
    pub webhooks: Vec<Delivery>,
}

/// A signed webhook, ready to (re)send.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub event: String,
    pub event_id: String,
    pub body: String,
    pub signature: String,
}

/// One webhook delivery and the local API's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub event: String,
    pub event_id: String,
    pub status: u16,
    pub response: Value,
}

#[derive(Clone)]
pub struct RazorpayStub {
    inner: Arc<Inner>,
}

struct Inner {
    key_id: String,
    key_secret: String,
    webhook_secret: String,
    webhook_url: String,
    orders: Mutex<HashMap<String, StubOrder>>,
    payments: Mutex<Vec<StubPayment>>,
    /// Refund entities by payment id, oldest first.
    refunds: Mutex<HashMap<String, Vec<Value>>>,
    /// Each dispute's payment, amount and latest phase and status.
    disputes: Mutex<HashMap<String, (String, u64, String, String)>>,
    /// Every webhook delivered, for replays.
    sent: Mutex<Vec<Webhook>>,
    http: reqwest::Client,
}

fn random_id(prefix: &str) -> String {
    let tail: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(14).map(char::from).collect();
    format!("{prefix}{tail}")
}

impl RazorpayStub {
    pub fn new(api_url: &str, key_id: String, key_secret: String, webhook_secret: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                key_id,
                key_secret,
                webhook_secret,
                webhook_url: format!("{}/webhooks/razorpay", api_url.trim_end_matches('/')),
                orders: Mutex::default(),
                payments: Mutex::default(),
                refunds: Mutex::default(),
                disputes: Mutex::default(),
                sent: Mutex::default(),
                http: reqwest::Client::new(),
            }),
        }
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v1/orders", post(create_order))
            .route("/v1/orders/{id}", get(fetch_order))
            .route("/v1/orders/{id}/payments", get(order_payments))
            .route("/v1/payments/{id}", get(fetch_payment))
            .route("/v1/payments/{id}/refunds", get(payment_refunds))
            .route("/v1/payments/{id}/refund", post(create_refund))
            .route("/_local/orders/{id}/pay", post(pay_order))
            .route("/_local/orders/{id}/fail", post(fail_order))
            .route("/_local/webhooks/replay", post(replay_webhooks))
            .with_state(self.clone())
    }

    pub fn order(&self, id: &str) -> Option<StubOrder> {
        self.inner.orders.lock().unwrap().get(id).cloned()
    }

    pub fn order_count(&self) -> usize {
        self.inner.orders.lock().unwrap().len()
    }

    pub fn payment(&self, id: &str) -> Option<StubPayment> {
        self.inner.payments.lock().unwrap().iter().find(|p| p.id == id).cloned()
    }

    /// Paise Razorpay finally keeps of order `order_id`: what it captured, less what it
    /// refunded and what disputes standing at a stage that holds money take (the books'
    /// other side, for the reliability suite's balance check).
    pub fn kept_of_order(&self, order_id: &str) -> u64 {
        let disputes = self.inner.disputes.lock().unwrap();
        let payments = self.inner.payments.lock().unwrap();
        payments
            .iter()
            .filter(|p| p.order_id == order_id && (p.status == "captured" || p.status == "refunded"))
            .map(|p| {
                let disputed: u64 = disputes
                    .values()
                    .filter(|(payment, ..)| *payment == p.id)
                    .filter(|(_, _, phase, status)| {
                        shared::domain::reversal::dispute_stage(phase, status).is_some_and(|s| s.holds_money)
                    })
                    .map(|(_, amount, ..)| *amount)
                    .sum();
                p.amount.saturating_sub(p.amount_refunded).saturating_sub(disputed)
            })
            .sum()
    }

    /// Changes Razorpay's record of a payment (a capture, another amount...).
    pub fn update_payment(&self, id: &str, change: impl FnOnce(&mut StubPayment)) {
        let mut payments = self.inner.payments.lock().unwrap();
        change(payments.iter_mut().find(|p| p.id == id).expect("a payment of this stub"));
    }

    /// Records a payment attempt on `order_id` with `status`; its id.
    fn record_payment(&self, order_id: &str, status: &str) -> Result<String> {
        let order = self.order(order_id).ok_or_else(|| anyhow!("no order {order_id}"))?;
        let payment = StubPayment {
            id: random_id("pay_"),
            order_id: order.id,
            amount: order.amount,
            currency: order.currency,
            status: status.into(),
            amount_refunded: 0,
            created_at: chrono::Utc::now().timestamp(),
        };
        let id = payment.id.clone();
        self.inner.payments.lock().unwrap().push(payment);
        Ok(id)
    }

    /// The checkout signature Razorpay gives the app: HMAC-SHA256 of `order_id|payment_id`.
    pub fn checkout_signature(&self, order_id: &str, payment_id: &str) -> String {
        hmac_sha256_hex(self.inner.key_secret.as_bytes(), format!("{order_id}|{payment_id}").as_bytes())
    }

    /// A signed webhook for `event` (`payment.captured`, `order.paid`, `payment.failed`).
    pub fn webhook(&self, event: &str, order_id: &str, payment_id: &str) -> Result<Webhook> {
        let order = self.order(order_id).ok_or_else(|| anyhow!("no order {order_id}"))?;
        let now = chrono::Utc::now().timestamp();
        let failed = event == "payment.failed";
        let payment = json!({
            "id": payment_id, "entity": "payment", "amount": order.amount, "currency": order.currency,
            "status": if failed { "failed" } else { "captured" }, "order_id": order.id, "invoice_id": null,
            "international": false, "method": "upi", "amount_refunded": 0, "refund_status": null,
            "captured": !failed, "description": "Wallet recharge", "card_id": null, "bank": null,
            "wallet": null, "vpa": "success@razorpay", "email": "void@razorpay.com", "contact": "+919000090000",
            "notes": order.notes, "fee": if failed { 0 } else { order.amount * 2 / 100 },
            "tax": if failed { 0 } else { order.amount * 2 / 100 * 18 / 118 },
            "error_code": if failed { json!("BAD_REQUEST_ERROR") } else { Value::Null },
            "error_description": if failed { json!("Payment failed due to incorrect PIN") } else { Value::Null },
            "created_at": now,
        });
        let mut payload = json!({ "payment": { "entity": payment } });
        let mut contains = vec!["payment"];
        if event == "order.paid" {
            contains.push("order");
            payload["order"] = json!({ "entity": {
                "id": order.id, "entity": "order", "amount": order.amount, "amount_paid": order.amount,
                "amount_due": 0, "currency": order.currency, "receipt": order.receipt, "offer_id": null,
                "status": "paid", "attempts": 1, "notes": order.notes, "created_at": order.created_at,
            } });
        }
        Ok(self.signed(event, &contains, payload))
    }

    fn signed(&self, event: &str, contains: &[&str], payload: Value) -> Webhook {
        let body = json!({
            "entity": "event", "account_id": "acc_LocalStack0001", "event": event,
            "contains": contains, "payload": payload, "created_at": chrono::Utc::now().timestamp(),
        })
        .to_string();
        let signature = hmac_sha256_hex(self.inner.webhook_secret.as_bytes(), body.as_bytes());
        Webhook { event: event.to_owned(), event_id: random_id(""), body, signature }
    }

    /// Refunds `amount` paise of payment `payment_id`, as staff do from Razorpay's dashboard:
    /// recorded on the payment (`refunded` once in full), and the signed `refund.processed`
    /// webhook returned, not yet delivered ([`Self::deliver`]).
    pub fn refund(&self, payment_id: &str, amount: u64) -> Result<Webhook> {
        self.refund_noting(payment_id, amount, json!({})).map(|(webhook, _)| webhook)
    }

    /// [`Self::refund`] with the merchant's `notes`; the refund entity too.
    fn refund_noting(&self, payment_id: &str, amount: u64, notes: Value) -> Result<(Webhook, Value)> {
        let mut payment = self.payment(payment_id).ok_or_else(|| anyhow!("no payment {payment_id}"))?;
        if payment.amount_refunded + amount > payment.amount {
            return Err(anyhow!("refund of {amount} exceeds what is left of {payment_id}"));
        }
        payment.amount_refunded += amount;
        if payment.amount_refunded == payment.amount {
            payment.status = "refunded".into();
        }
        self.update_payment(payment_id, |p| *p = payment.clone());
        let refund = json!({
            "id": random_id("rfnd_"), "entity": "refund", "amount": amount, "currency": payment.currency,
            "payment_id": payment_id, "notes": notes, "receipt": null, "acquirer_data": { "arn": null },
            "created_at": chrono::Utc::now().timestamp(), "status": "processed", "speed_processed": "normal",
            "speed_requested": "normal",
        });
        self.inner.refunds.lock().unwrap().entry(payment_id.to_owned()).or_default().push(refund.clone());
        let payload =
            json!({ "refund": { "entity": refund.clone() }, "payment": { "entity": payment_entity(&payment) } });
        Ok((self.signed("refund.processed", &["refund", "payment"], payload), refund))
    }

    /// A `payment.dispute.*` webhook for dispute `dispute_id` of `payment_id`, standing at
    /// `phase` and `status` (Razorpay's dispute entity), not yet delivered.
    pub fn dispute(
        &self,
        event: &str,
        payment_id: &str,
        dispute_id: &str,
        phase: &str,
        status: &str,
    ) -> Result<Webhook> {
        let payment = self.payment(payment_id).ok_or_else(|| anyhow!("no payment {payment_id}"))?;
        self.inner.disputes.lock().unwrap().insert(
            dispute_id.to_owned(),
            (payment_id.to_owned(), payment.amount, phase.to_owned(), status.to_owned()),
        );
        let dispute = json!({
            "id": dispute_id, "entity": "dispute", "payment_id": payment_id, "amount": payment.amount,
            "currency": payment.currency, "amount_deducted": if status == "lost" { payment.amount } else { 0 },
            "reason_code": "chargeback", "respond_by": chrono::Utc::now().timestamp() + 7 * 86_400,
            "status": status, "phase": phase, "created_at": chrono::Utc::now().timestamp(),
        });
        let payload = json!({ "dispute": { "entity": dispute }, "payment": { "entity": payment_entity(&payment) } });
        Ok(self.signed(event, &["payment", "dispute"], payload))
    }

    /// Delivers every webhook sent so far again, with the same event ids, as Razorpay's
    /// retries do.
    pub async fn replay(&self) -> Result<Vec<Delivery>> {
        let sent = self.inner.sent.lock().unwrap().clone();
        let mut out = Vec::new();
        for hook in &sent {
            out.push(self.deliver(hook).await?);
        }
        Ok(out)
    }

    /// POSTs a webhook to the local API, with Razorpay's headers.
    pub async fn deliver(&self, webhook: &Webhook) -> Result<Delivery> {
        {
            let mut sent = self.inner.sent.lock().unwrap();
            if !sent.iter().any(|w| w.event_id == webhook.event_id) {
                sent.push(webhook.clone());
            }
        }
        let resp = self
            .inner
            .http
            .post(&self.inner.webhook_url)
            .header("content-type", "application/json")
            .header("x-razorpay-signature", &webhook.signature)
            .header("x-razorpay-event-id", &webhook.event_id)
            .body(webhook.body.clone())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok(Delivery {
            event: webhook.event.clone(),
            event_id: webhook.event_id.clone(),
            status,
            response: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }

    /// The customer pays `order_id`: the checkout response, and (if `send_webhooks`, and the
    /// order captures automatically) the `payment.captured` and `order.paid` webhooks delivered.
    pub async fn pay(&self, order_id: &str, send_webhooks: bool) -> Result<Paid> {
        let auto_capture = self.order(order_id).ok_or_else(|| anyhow!("no order {order_id}"))?.auto_capture;
        let payment_id = self.record_payment(order_id, if auto_capture { "captured" } else { "authorized" })?;
        if auto_capture {
            self.inner.orders.lock().unwrap().get_mut(order_id).expect("found above").status = "paid".into();
        }
        let mut webhooks = Vec::new();
        if send_webhooks && auto_capture {
            for event in ["payment.captured", "order.paid"] {
                webhooks.push(self.deliver(&self.webhook(event, order_id, &payment_id)?).await?);
            }
        }
        Ok(self.checkout_response(order_id, payment_id, webhooks))
    }

    /// The customer pays `order_id` but Razorpay has only authorised the payment so far
    /// (auto-capture has not happened yet): the checkout response, no webhooks.
    pub fn authorize(&self, order_id: &str) -> Result<Paid> {
        let payment_id = self.record_payment(order_id, "authorized")?;
        Ok(self.checkout_response(order_id, payment_id, Vec::new()))
    }

    fn checkout_response(&self, order_id: &str, payment_id: String, webhooks: Vec<Delivery>) -> Paid {
        Paid {
            razorpay_order_id: order_id.to_owned(),
            razorpay_signature: self.checkout_signature(order_id, &payment_id),
            razorpay_payment_id: payment_id,
            webhooks,
        }
    }

    /// A failed payment attempt on `order_id`, announced by a `payment.failed` webhook.
    pub async fn fail(&self, order_id: &str) -> Result<Delivery> {
        let payment_id = self.record_payment(order_id, "failed")?;
        let hook = self.webhook("payment.failed", order_id, &payment_id)?;
        self.deliver(&hook).await
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.inner.key_id, self.inner.key_secret));
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .is_some_and(|given| given.trim() == expected)
    }
}

fn razorpay_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "description": description, "source": "NA", "step": "NA",
        "reason": "NA", "metadata": {} } })),
    )
        .into_response()
}

async fn create_order(State(stub): State<RazorpayStub>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The request body is not valid JSON");
    };
    // Razorpay wants integer paise, at least 100.
    let Some(amount) = request["amount"].as_u64().filter(|a| *a >= 100) else {
        return razorpay_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST_ERROR",
            "The amount must be an integer of at least 100.",
        );
    };
    let currency = request["currency"].as_str().unwrap_or("INR").to_owned();
    let receipt = request["receipt"].as_str().map(str::to_owned);
    if receipt.as_ref().is_some_and(|r| r.len() > 40) {
        return razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "receipt: may not exceed 40 characters");
    }
    let order = StubOrder {
        id: random_id("order_"),
        amount,
        currency,
        receipt,
        notes: request.get("notes").cloned().unwrap_or(json!([])),
        status: "created".into(),
        created_at: chrono::Utc::now().timestamp(),
        auto_capture: matches!(&request["payment_capture"], Value::Bool(true))
            || request["payment_capture"].as_u64() == Some(1),
    };
    stub.inner.orders.lock().unwrap().insert(order.id.clone(), order.clone());
    Json(order_entity(&order)).into_response()
}

fn order_entity(o: &StubOrder) -> Value {
    let paid = o.status == "paid";
    json!({
        "id": o.id, "entity": "order", "amount": o.amount, "amount_paid": if paid { o.amount } else { 0 },
        "amount_due": if paid { 0 } else { o.amount }, "currency": o.currency, "receipt": o.receipt,
        "offer_id": null, "status": o.status, "attempts": u8::from(paid), "notes": o.notes, "created_at": o.created_at,
    })
}

async fn fetch_order(State(stub): State<RazorpayStub>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    match stub.order(&id) {
        Some(o) => Json(order_entity(&o)).into_response(),
        None => razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The id provided does not exist"),
    }
}

fn payment_entity(p: &StubPayment) -> Value {
    json!({
        "id": p.id, "entity": "payment", "amount": p.amount, "currency": p.currency, "status": p.status,
        "order_id": p.order_id, "method": "upi", "captured": p.status != "authorized" && p.status != "failed",
        "amount_refunded": p.amount_refunded,
        "error_code": if p.status == "failed" { json!("BAD_REQUEST_ERROR") } else { Value::Null },
        "error_description": if p.status == "failed" { json!("Payment failed due to incorrect PIN") } else { Value::Null },
        "created_at": p.created_at,
    })
}

async fn fetch_payment(State(stub): State<RazorpayStub>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    match stub.payment(&id) {
        Some(p) => Json(payment_entity(&p)).into_response(),
        None => razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The id provided does not exist"),
    }
}

async fn order_payments(State(stub): State<RazorpayStub>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    if stub.order(&id).is_none() {
        return razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The id provided does not exist");
    }
    let items: Vec<Value> =
        stub.inner.payments.lock().unwrap().iter().filter(|p| p.order_id == id).map(payment_entity).collect();
    Json(json!({ "entity": "collection", "count": items.len(), "items": items })).into_response()
}

async fn payment_refunds(State(stub): State<RazorpayStub>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    if stub.payment(&id).is_none() {
        return razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The id provided does not exist");
    }
    let items = stub.inner.refunds.lock().unwrap().get(&id).cloned().unwrap_or_default();
    Json(json!({ "entity": "collection", "count": items.len(), "items": items })).into_response()
}

#[derive(Deserialize)]
struct RefundBody {
    amount: u64,
    #[serde(default)]
    notes: Value,
}

/// `POST /v1/payments/{id}/refund`: refunds at once (as a `normal` refund is, for a test)
/// and sends `refund.processed` a moment after answering, as Razorpay does.
async fn create_refund(
    State(stub): State<RazorpayStub>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<RefundBody>,
) -> Response {
    if !stub.authorised(&headers) {
        return razorpay_error(StatusCode::UNAUTHORIZED, "BAD_REQUEST_ERROR", "Authentication failed");
    }
    if stub.payment(&id).is_none() {
        return razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", "The id provided does not exist");
    }
    let notes = if body.notes.is_object() { body.notes } else { json!({}) };
    match stub.refund_noting(&id, body.amount, notes) {
        Ok((webhook, refund)) => {
            let later = stub.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let _ = later.deliver(&webhook).await;
            });
            Json(refund).into_response()
        }
        Err(e) => razorpay_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", &e.to_string()),
    }
}

#[derive(Deserialize)]
struct PayQuery {
    webhooks: Option<bool>,
}

async fn pay_order(State(stub): State<RazorpayStub>, Path(id): Path<String>, Query(q): Query<PayQuery>) -> Response {
    match stub.pay(&id, q.webhooks.unwrap_or(true)).await {
        Ok(paid) => Json(paid).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn replay_webhooks(State(stub): State<RazorpayStub>) -> Response {
    match stub.replay().await {
        Ok(deliveries) => Json(deliveries).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}

async fn fail_order(State(stub): State<RazorpayStub>, Path(id): Path<String>) -> Response {
    match stub.fail(&id).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({ "error": e.to_string() }))).into_response(),
    }
}
