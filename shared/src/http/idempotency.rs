//! `Idempotency-Key` for money-moving POSTs: a retry with the same key and the same request
//! gets the first response; the same key with a different request is refused. "The same
//! request" is what the parsed body means, not how it was spelt: `"500"`, `500` and
//! `"500.00"` are one amount.
//!
//! One mechanism for every route that needs it, designed so it costs no extra round trip:
//! 1. the route reads the record together with whatever else it reads first (e.g.
//!    [`Store::idempotency_record_and_wallet`], one `BatchGetItem`), and
//!    [`IdempotencyKey::replay`] turns a stored record into the first response, or into
//!    `422 idempotency_key_reused`;
//! 2. the route's business transaction carries the record ([`crate::store::Tx::idempotency`]),
//!    a `put_new` of the response it is about to give, so the record exists exactly when the
//!    effect does;
//! 3. when two requests with one key race, the loser's transaction is cancelled on the
//!    record's condition (label `idempotency`); it reads the winner's record
//!    ([`IdempotencyKey::winner`]) and answers with it.
//!
//! Record: `PK = IDEMPOTENCY#{user}#{key}`, `SK = IDEMPOTENCY`, the request hash, the
//! response status and body, and `expires_at` (TTL) 24 hours on.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::user::UserId;
use crate::http::error::ApiError;
use crate::http::{self, Body, Request, Response};
use crate::store::{Store, StoreError};

pub use crate::domain::idempotency::{IdempotencyKey, StoredResponse, TTL, request_hash};

pub const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 128;

impl IdempotencyKey {
    /// The caller's key from the `Idempotency-Key` header, for `request` (the body as the
    /// route parsed it). `Ok(None)`: no header.
    pub fn from_request<T: Serialize>(req: &Request, user: &UserId, request: &T) -> Result<Option<Self>, ApiError> {
        let Some(raw) = req.headers().get(HEADER) else {
            return Ok(None);
        };
        let key = raw.to_str().unwrap_or("\u{0}").trim();
        if key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(ApiError::invalid_field(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} characters of letters, digits, '-', '_', '.' or ':'"),
            ));
        }
        Ok(Some(Self {
            user: user.clone(),
            key: key.to_owned(),
            request_hash: request_hash(http::route_key(req), request),
        }))
    }

    /// Like [`Self::from_request`], but the header is required.
    pub fn required<T: Serialize>(req: &Request, user: &UserId, request: &T) -> Result<Self, ApiError> {
        Self::from_request(req, user, request)?.ok_or_else(|| {
            ApiError::bad_request(
                "missing_idempotency_key",
                "send an Idempotency-Key header (e.g. a UUID) with this request",
            )
            .with_field("Idempotency-Key")
        })
    }

    /// What a stored record means for this request: `Ok(Some(first response))` for a
    /// replay, `Err(422)` when the key was used for a different request, `Ok(None)` when
    /// there is no record (or it has expired but TTL has not deleted it yet).
    pub fn replay(&self, stored: Option<&StoredResponse>, now: DateTime<Utc>) -> Result<Option<Response>, ApiError> {
        let Some(record) = stored else { return Ok(None) };
        if record.expires_at.is_some_and(|exp| exp < now.timestamp().max(0) as u64) {
            return Ok(None);
        }
        if record.request_hash != self.request_hash {
            return Err(ApiError::new(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request; use a new key",
            )
            .with_field("Idempotency-Key"));
        }
        let status = ::http::StatusCode::from_u16(record.status)
            .map_err(|_| StoreError::Corrupt(format!("response_status {}", record.status)))?;
        let mut resp = Response::new(Body::Text(record.body.clone()));
        *resp.status_mut() = status;
        resp.headers_mut().insert(::http::header::CONTENT_TYPE, ::http::HeaderValue::from_static("application/json"));
        resp.headers_mut().insert("idempotent-replayed", ::http::HeaderValue::from_static("true"));
        Ok(Some(resp))
    }

    /// After losing the race on the record: the winner's response (one consistent GetItem).
    pub async fn winner(&self, store: &Store, now: DateTime<Utc>) -> Result<Response, ApiError> {
        let record = store.idempotency_record(self).await?;
        self.replay(record.as_ref(), now)?.ok_or_else(|| {
            ApiError::conflict("idempotency_conflict", "a request with this Idempotency-Key is in progress; retry")
        })
    }
}

impl StoredResponse {
    /// The record of `response`, as `key`'s first answer.
    pub fn of(key: &IdempotencyKey, response: &Response, now: DateTime<Utc>) -> Self {
        let body = match response.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        Self {
            request_hash: key.request_hash.clone(),
            status: response.status().as_u16(),
            body,
            expires_at: Some((now + TTL).timestamp().max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    fn request(key: Option<&str>, body: &str) -> Request {
        let mut ctx = aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        ctx.route_key = Some("POST /wallet/top-ups".into());
        let mut builder = ::http::Request::builder().method("POST");
        if let Some(k) = key {
            builder = builder.header(HEADER, k);
        }
        builder
            .body(Body::from(body))
            .unwrap()
            .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(ctx))
    }

    fn user() -> UserId {
        UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap()
    }

    /// What a top-up route parses its body into.
    #[derive(Serialize, serde::Deserialize)]
    struct Amount {
        amount: crate::domain::money::Money,
    }

    fn parsed(body: &str) -> Amount {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn key_is_validated_and_scoped_to_the_caller() {
        let body = parsed(r#"{"amount":"1"}"#);
        assert!(IdempotencyKey::from_request(&request(None, "{}"), &user(), &body).unwrap().is_none());
        assert_eq!(
            IdempotencyKey::required(&request(None, "{}"), &user(), &body).unwrap_err().code,
            "missing_idempotency_key"
        );
        for bad in ["", "   ", "has space", "é", &"x".repeat(129)] {
            let err = IdempotencyKey::from_request(&request(Some(bad), "{}"), &user(), &body);
            assert!(err.is_err(), "{bad:?}");
        }
        let key = IdempotencyKey::required(&request(Some("abc-123"), "{}"), &user(), &body).unwrap();
        assert_eq!((key.key.as_str(), &key.user), ("abc-123", &user()));
    }

    #[test]
    fn replays_the_first_response_and_refuses_a_different_request() {
        let now = Utc::now();
        let key =
            IdempotencyKey::required(&request(Some("k1"), "{}"), &user(), &parsed(r#"{"amount":"500"}"#)).unwrap();
        let first = http::json(201, &serde_json::json!({ "id": "t1" }));
        let stored = StoredResponse::of(&key, &first, now);
        let replayed = key.replay(Some(&stored), now).unwrap().unwrap();
        assert_eq!(replayed.status(), 201);
        assert_eq!(replayed.headers()["idempotent-replayed"], "true");
        assert_eq!(replayed.headers()[::http::header::CONTENT_TYPE], "application/json");
        assert_eq!(text(&replayed), text(&first));
        assert!(key.replay(None, now).unwrap().is_none());

        let other =
            IdempotencyKey::required(&request(Some("k1"), "{}"), &user(), &parsed(r#"{"amount":"600"}"#)).unwrap();
        let err = other.replay(Some(&stored), now).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (422, "idempotency_key_reused"));

        // Expired but not yet deleted by TTL: as if absent.
        assert!(key.replay(Some(&stored), now + TTL + chrono::Duration::seconds(5)).unwrap().is_none());
    }

    fn text(resp: &Response) -> String {
        match resp.body() {
            Body::Text(t) => t.clone(),
            _ => panic!("no text body"),
        }
    }
}
