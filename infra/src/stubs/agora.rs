//! Agora's Notification Center, as the local stack plays it: what a real channel would
//! report when a party's SDK joins or leaves, sent to the local API's `POST /webhooks/agora`
//! correctly signed (`Agora-Signature-V2`: hex HMAC-SHA256 of the raw body with the NCS
//! secret). The media itself is not played: a call is walked by saying who joined and left.
//!
//! `curl -XPOST http://127.0.0.1:<port>/_local/channels/<channel>/join -d '{"uid": <uid>}'`
//! (also `leave`); `<channel>` and `<uid>` are those of `POST /consultations/{id}/call-token`.
//! A body may also carry `"ts"` (Unix seconds; default now), to report an event as it
//! happened earlier or arrive out of order. The answer is the webhook's status and body.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The event types of the communication profile: a user joined, a user left.
pub const USER_JOINED: u32 = 107;
pub const USER_LEFT: u32 = 108;

pub struct AgoraStub {
    pub url: String,
    pub ncs_secret: String,
    webhook_url: String,
    http: reqwest::Client,
    counter: AtomicU64,
}

impl AgoraStub {
    pub fn new(url: String, api_url: &str, ncs_secret: String) -> Self {
        Self {
            url,
            ncs_secret,
            webhook_url: format!("{api_url}/webhooks/agora"),
            http: reqwest::Client::new(),
            counter: AtomicU64::new(0),
        }
    }

    /// The `Agora-Signature-V2` of a body.
    pub fn sign(&self, body: &str) -> String {
        shared::signature::hmac_sha256_hex(self.ncs_secret.as_bytes(), body.as_bytes())
    }

    /// The notification Agora sends for `event_type` of `uid` in `channel` at `ts` (Unix
    /// seconds), with a fresh notice id.
    pub fn notice(&self, channel: &str, uid: u32, event_type: u32, ts: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        json!({
            "noticeId": format!("{n}:{uid}:{event_type}"),
            "productId": 1,
            "eventType": event_type,
            "notifyMs": chrono::Utc::now().timestamp_millis(),
            "sid": format!("local-{n}"),
            "payload": { "channelName": channel, "uid": uid, "platform": 1, "clientSeq": n, "ts": ts },
        })
        .to_string()
    }

    /// POSTs a signed notification body (a new one, or one sent before: Agora resends);
    /// the API's status code and body.
    pub async fn deliver(&self, body: &str) -> Result<(u16, String)> {
        let resp = self
            .http
            .post(&self.webhook_url)
            .header("content-type", "application/json")
            .header("agora-signature-v2", self.sign(body))
            .body(body.to_owned())
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    /// `uid` joined (`join`) or left `channel` at `ts`: the notification, delivered.
    pub async fn report(&self, channel: &str, uid: u32, join: bool, ts: i64) -> Result<(String, u16, String)> {
        let body = self.notice(channel, uid, if join { USER_JOINED } else { USER_LEFT }, ts);
        let (status, answer) = self.deliver(&body).await?;
        Ok((body, status, answer))
    }
}

/// `POST /_local/channels/{name}/{join|leave}` with `{"uid": N, "ts"?: unix seconds}`.
pub async fn control(
    State(stub): State<Arc<AgoraStub>>,
    Path((channel, action)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let join = match action.as_str() {
        "join" => true,
        "leave" => false,
        _ => return (StatusCode::NOT_FOUND, "actions: join, leave").into_response(),
    };
    let body = body.map(|Json(v)| v).unwrap_or_default();
    let Some(uid) = body.get("uid").and_then(Value::as_u64).and_then(|u| u32::try_from(u).ok()) else {
        return (StatusCode::BAD_REQUEST, "the body names the party: {\"uid\": <uid from the call token>}")
            .into_response();
    };
    let ts = body.get("ts").and_then(Value::as_i64).unwrap_or_else(|| chrono::Utc::now().timestamp());
    match stub.report(&channel, uid, join, ts).await {
        Ok((notice, status, answer)) => Json(json!({
            "notice": serde_json::from_str::<Value>(&notice).unwrap_or_default(),
            "webhook_status": status,
            "webhook_response": serde_json::from_str::<Value>(&answer).unwrap_or(Value::String(answer)),
        }))
        .into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
