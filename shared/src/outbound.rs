//! The HTTPS client for third parties (Digio, Razorpay) and for presigned S3 requests
//! (`crate::app::images`): hyper with the rustls and ring the SDK already links (no second
//! HTTP stack in the binary), Mozilla's roots compiled in, built once per cold start, with
//! timeouts short enough that a slow provider becomes a clear 502/503, not a Lambda timeout.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A provider's reply is a small JSON document; anything longer is not one we read.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// The bare client: a request goes out as given (a presigned URL carries its own
/// authorisation). Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http")
    }
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// `http://` URLs are allowed too (the local stand-ins); production URLs are https.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self { client: Client::builder(TokioExecutor::new()).build(https) }
    }

    /// Sends `request` on behalf of `provider` (the name its errors carry); any status is a
    /// [`Reply`], the body read up to [`MAX_REPLY_BYTES`], all within [`REQUEST_TIMEOUT`].
    pub async fn send(
        &self,
        provider: &'static str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, ProviderError> {
        let unavailable = |detail: String| ProviderError::Unavailable { provider, detail };
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| unavailable(e.to_string()))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|e| ProviderError::Rejected { provider, status, detail: e.to_string() })?
                .to_bytes();
            Ok(Reply { provider, status, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| unavailable(format!("no reply within {REQUEST_TIMEOUT:?}")))?
    }
}

/// One provider's API: its base URL and credentials (HTTP Basic, as Digio and Razorpay use).
#[derive(Clone)]
pub struct Provider {
    pub name: &'static str,
    base_url: String,
    authorization: HeaderValue,
    http: Http,
}

impl std::fmt::Debug for Provider {
    // Never the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("name", &self.name).field("base_url", &self.base_url).finish()
    }
}

/// A provider's answer: any status, the body read (bounded).
#[derive(Debug)]
pub struct Reply {
    pub provider: &'static str,
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`; an unreadable body is the provider's fault (502).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| self.rejected(format!("unreadable reply: {e}")))
    }

    pub fn rejected(&self, detail: impl Into<String>) -> ProviderError {
        ProviderError::Rejected { provider: self.provider, status: self.status, detail: detail.into() }
    }
}

impl Provider {
    /// `base_url` may be `http://` (the local stand-ins); production URLs are https.
    pub fn new(name: &'static str, base_url: &str, user: &str, secret: &str) -> Self {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {basic}")).expect("base64 is a valid header value");
        authorization.set_sensitive(true);
        Self { name, base_url: base_url.trim_end_matches('/').to_owned(), authorization, http: Http::new() }
    }

    /// `POST {base_url}{path}` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &impl Serialize) -> Result<Reply, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|e| self.unavailable(format!("request not serialisable: {e}")))?;
        self.send(http::Method::POST, path, Some(body)).await
    }

    /// `GET {base_url}{path}`.
    pub async fn get(&self, path: &str) -> Result<Reply, ProviderError> {
        self.send(http::Method::GET, path, None).await
    }

    async fn send(&self, method: http::Method, path: &str, body: Option<Vec<u8>>) -> Result<Reply, ProviderError> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, "astrokiran-backend/1");
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.unavailable(format!("bad request URL: {e}")))?;
        self.http.send(self.name, request).await
    }

    fn unavailable(&self, detail: String) -> ProviderError {
        ProviderError::Unavailable { provider: self.name, detail }
    }
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
