//! The one error type every HTTP route returns, and its one mapping to a response.

use serde::Serialize;

/// An error a caller sees: an HTTP status, a stable machine-readable `code`, a human
/// `message`, and the request `field` at fault when there is one.
///
/// Rendered as `{ "error": { "code", "message", "field"? } }` by [`crate::http::respond`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `402 insufficient_balance`: how much more the wallet needs, so the app can top up
    /// exactly that and retry with the same `Idempotency-Key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<crate::Money>,
    /// A `429`'s wait in seconds, sent as the `Retry-After` header (not in the body).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), field: None, shortfall: None, retry_after: None }
    }

    /// 400 naming the request field that is wrong.
    pub fn invalid_field(field: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            status: 400,
            code: "invalid_field".into(),
            message: format!("{field}: {problem}"),
            field: Some(field),
            shortfall: None,
            retry_after: None,
        }
    }
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::new(401, code, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    pub fn too_many(code: &str, message: impl Into<String>) -> Self {
        Self::new(429, code, message)
    }
    pub fn bad_gateway(code: &str, message: impl Into<String>) -> Self {
        Self::new(502, code, message)
    }
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(503, code, message)
    }
    /// A fault of ours. The detail goes to the log, never to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(500, "internal", "something went wrong on our side; try again")
    }

    /// 402: the wallet is `shortfall` short of what is asked.
    pub fn insufficient_balance(shortfall: crate::Money) -> Self {
        let mut err = Self::new(
            402,
            "insufficient_balance",
            format!("your wallet needs {shortfall} INR more; top up and retry with the same Idempotency-Key"),
        );
        err.shortfall = Some(shortfall);
        err
    }

    /// Tells the caller to wait `seconds` before retrying (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "store unavailable");
                ApiError::unavailable("store_unavailable", "the service is busy; try again shortly")
            }
            other => ApiError::internal(other),
        }
    }
}
