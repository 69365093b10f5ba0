//! The HTTP client for third parties (Digio, Razorpay): built once per cold start, with
//! timeouts short enough that a slow provider becomes a clear 502/503, not a Lambda timeout.

use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent("astrokiran-backend/1")
        .build()
        .expect("a client with rustls and timeouts builds")
}

/// What went wrong calling a provider, in the terms a route maps to 502 or 503.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable or too slow: try again later (503).
    #[error("{provider} unavailable: {detail}")]
    Unavailable { provider: &'static str, detail: String },
    /// Answered, but with an error or something we cannot read (502).
    #[error("{provider} answered {status}: {detail}")]
    Rejected { provider: &'static str, status: u16, detail: String },
}

impl ProviderError {
    pub fn from_reqwest(provider: &'static str, err: reqwest::Error) -> Self {
        if err.is_timeout() || err.is_connect() {
            ProviderError::Unavailable { provider, detail: err.to_string() }
        } else {
            ProviderError::Rejected {
                provider,
                status: err.status().map_or(0, |s| s.as_u16()),
                detail: err.to_string(),
            }
        }
    }
}

impl From<ProviderError> for crate::ApiError {
    fn from(err: ProviderError) -> Self {
        match &err {
            ProviderError::Unavailable { provider, .. } => {
                tracing::warn!(error = %err, "provider unavailable");
                crate::ApiError::unavailable(
                    &format!("{provider}_unavailable"),
                    format!("{provider} is not reachable right now; nothing was charged or changed, try again shortly"),
                )
            }
            ProviderError::Rejected { provider, .. } => {
                tracing::error!(error = %err, "provider rejected the request");
                crate::ApiError::bad_gateway(
                    &format!("{provider}_error"),
                    format!("{provider} refused the request; nothing was changed, try again"),
                )
            }
        }
    }
}
