//! A local Digio: answers "create KYC request from template" and, when told to, moves a
//! request along and POSTs the correctly signed webhook Digio would send.
//!
//! Drive it from a test (`stack.stubs.digio.approve(kid)`) or with curl:
//! `curl -XPOST http://127.0.0.1:<port>/_local/kyc/<KID>/approve` (also `complete`, `reject`, `expire`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct DigioStub {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: String,
    webhook_url: String,
    http: reqwest::Client,
    counter: AtomicU64,
    requests: Mutex<HashMap<String, Value>>,
}

impl DigioStub {
    pub fn new(url: String, api_url: &str, client_id: String, client_secret: String, webhook_secret: String) -> Self {
        Self {
            url,
            client_id,
            client_secret,
            webhook_secret,
            webhook_url: format!("{api_url}/webhooks/digio"),
            http: reqwest::Client::new(),
            counter: AtomicU64::new(0),
            requests: Mutex::default(),
        }
    }

    /// How many KYC requests were created.
    pub fn created(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn request(&self, id: &str) -> Option<Value> {
        self.requests.lock().unwrap().get(id).cloned()
    }

    /// The `X-Digio-Checksum` for a body.
    pub fn sign(&self, body: &str) -> String {
        shared::signature::hmac_sha256_hex(self.webhook_secret.as_bytes(), body.as_bytes())
    }

    /// The webhook body Digio sends for `event` on request `id`.
    pub fn event_body(&self, id: &str, event: &str, status: &str, extra: Value) -> Result<String> {
        let mut request = self.request(id).ok_or_else(|| anyhow!("no KYC request {id} at the local Digio"))?;
        request["status"] = json!(status);
        if let (Some(target), Some(extra)) = (request.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        Ok(json!({
            "id": format!("WHE{:016}", n),
            "entities": ["kyc_request"],
            "event": event,
            "created_at": chrono::Utc::now().timestamp_millis(),
            "payload": { "kyc_request": request },
        })
        .to_string())
    }

    /// POSTs a signed webhook; returns the API's status code and body.
    pub async fn deliver(&self, body: &str) -> Result<(u16, String)> {
        let resp = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("x-digio-checksum", self.sign(body))
            .body(body.to_owned())
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// The astrologer finishes the steps: `KYC_REQUEST_COMPLETED`.
    pub async fn complete(&self, id: &str) -> Result<(u16, String)> {
        let body = self.event_body(id, "KYC_REQUEST_COMPLETED", "approval_pending", documents())?;
        self.deliver(&body).await
    }

    /// Completed, then approved: the two webhooks Digio sends on success.
    pub async fn approve(&self, id: &str) -> Result<(u16, String)> {
        self.complete(id).await?;
        let body = self.event_body(id, "KYC_REQUEST_APPROVED", "approved", documents())?;
        self.deliver(&body).await
    }

    pub async fn reject(&self, id: &str, reason: &str) -> Result<(u16, String)> {
        let body = self.event_body(id, "KYC_REQUEST_REJECTED", "rejected", json!({ "rejection_reason": reason }))?;
        self.deliver(&body).await
    }

    pub async fn expire(&self, id: &str) -> Result<(u16, String)> {
        let body = self.event_body(id, "KYC_REQUEST_EXPIRED", "expired", json!({}))?;
        self.deliver(&body).await
    }
}

/// Document details as Digio reports them, with full numbers: our side must mask them.
fn documents() -> Value {
    json!({ "actions": [
        { "type": "digilocker", "status": "approved", "details": {
            "aadhaar": { "id_number": "123412341234", "name": "Asha Rao", "dob": "1990-01-01" },
            "pan": { "id_number": "AKRPR4321K", "name": "ASHA RAO" }
        }},
        { "type": "selfie", "status": "approved", "details": { "liveness": { "result": "passed", "score": 0.98 } } }
    ]})
}

pub async fn create_request(
    State(stub): State<Arc<DigioStub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", stub.client_id, stub.client_secret))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "code": 401, "message": "Invalid credentials" })))
            .into_response();
    }
    let Some(customer) = body.get("customer_identifier").and_then(Value::as_str) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "code": 400, "message": "customer_identifier is required" })))
            .into_response();
    };
    let n = stub.counter.fetch_add(1, Ordering::SeqCst);
    let id = format!("KID{}{:06}", chrono::Utc::now().format("%y%m%d%H%M%S"), n);
    let now = chrono::Utc::now();
    let request = json!({
        "id": id,
        "created_at": now.to_rfc3339(),
        "status": "requested",
        "customer_identifier": customer,
        "customer_name": body.get("customer_name"),
        "reference_id": body.get("reference_id"),
        "template_name": body.get("template_name"),
        "expire_in_days": body.get("expire_in_days").cloned().unwrap_or(json!(7)),
        "access_token": {
            "entity_id": id,
            "id": format!("GWT{}{:06}", now.format("%y%m%d%H%M%S"), n),
            "valid_till": (now + chrono::Duration::days(7)).to_rfc3339(),
        },
    });
    let mut stored = request.clone();
    if let Some(obj) = stored.as_object_mut() {
        obj.remove("access_token");
    }
    stub.requests.lock().unwrap().insert(id.clone(), stored);
    tracing::info!(kyc_request_id = %id, "local Digio: KYC request created (approve it: POST {}/_local/kyc/{id}/approve)", stub.url);
    Json(request).into_response()
}

pub async fn control(State(stub): State<Arc<DigioStub>>, Path((id, action)): Path<(String, String)>) -> Response {
    let result = match action.as_str() {
        "complete" => stub.complete(&id).await,
        "approve" => stub.approve(&id).await,
        "reject" => stub.reject(&id, "document photo unclear").await,
        "expire" => stub.expire(&id).await,
        _ => return (StatusCode::NOT_FOUND, "actions: complete, approve, reject, expire").into_response(),
    };
    match result {
        Ok((status, body)) => Json(json!({ "webhook_status": status, "webhook_response": body })).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}
