//! Chat images in the private images bucket (`CHAT_IMAGES_BUCKET`), which nobody reaches
//! but through URLs this module presigns (SigV4 in the query string) with the function's own
//! credentials: S3 checks each one against the signer's rights, the method, the key, the
//! signed headers and the expiry.
//!
//! - an upload: a PUT of one key for 5 minutes, signing `content-type` and `content-length`,
//!   so S3 refuses another type or size than the one asked for;
//! - a view: a GET of one key for 10 minutes, made for each read of a message (pushed, or
//!   listed), never stored.
//!
//! Signed with aws-sigv4 (in the tree already through the SDK): linking the S3 SDK into the
//! functions for two presigned URLs would grow every cold start for nothing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::app::live::SessionApp;
use crate::config::{self, ConfigError, Vars};
use crate::domain::booking::chat::{ChatMessage, ImageKey, ImageType};

/// How long an upload URL may be used.
pub const UPLOAD_URL_LIFETIME: Duration = Duration::minutes(5);
/// How long a view URL may be used (a client that kept one longer reads the messages again).
pub const IMAGE_URL_LIFETIME: Duration = Duration::minutes(10);

/// Presigns requests for the chat images bucket.
#[derive(Clone, Debug)]
pub struct ChatImages {
    /// The bucket's URL, up to the key: virtual-hosted on AWS, path-style at the local
    /// stack's AWS endpoint.
    base: String,
    region: String,
    credentials: SharedCredentialsProvider,
}

#[derive(Debug, thiserror::Error)]
#[error("presigning an S3 request failed: {0}")]
pub struct PresignError(String);

impl PresignError {
    fn of(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A presigned request: the URL, the headers it must be sent with (they are signed), and
/// when it stops working.
#[derive(Debug, Clone, Serialize)]
pub struct Presigned {
    pub url: String,
    pub headers: BTreeMap<&'static str, String>,
    pub expires_at: DateTime<Utc>,
}

impl ChatImages {
    /// The bucket `CHAT_IMAGES_BUCKET`, in the SDK configuration's region, signed with its
    /// credentials (on Lambda, the role's, from the environment).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        let bucket = config::required(vars, "CHAT_IMAGES_BUCKET")?;
        let region = sdk.region().map(|r| r.to_string()).ok_or(ConfigError::Missing("AWS_REGION"))?;
        let credentials = sdk.credentials_provider().ok_or(ConfigError::Missing("AWS_ACCESS_KEY_ID"))?;
        let base = match sdk.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        Ok(Self { base, region, credentials })
    }

    /// A PUT of `key` that S3 accepts only with this content type and exactly `size` bytes.
    pub async fn upload_url(
        &self,
        key: &ImageKey,
        image: ImageType,
        size: u64,
        now: DateTime<Utc>,
    ) -> Result<Presigned, PresignError> {
        let headers = [("content-type", image.content_type().to_owned()), ("content-length", size.to_string())];
        self.presign("PUT", key, &headers, UPLOAD_URL_LIFETIME, now).await
    }

    /// A GET of `key`, for the two parties of its consultation.
    pub async fn image_url(&self, key: &ImageKey, now: DateTime<Utc>) -> Result<String, PresignError> {
        Ok(self.presign("GET", key, &[], IMAGE_URL_LIFETIME, now).await?.url)
    }

    /// Sets `image_url` on each message that has an image. One that cannot be signed is left
    /// without (logged): the rest of the chat still reads.
    pub async fn with_image_urls(&self, messages: &mut [ChatMessage], now: DateTime<Utc>) {
        for message in messages {
            if let Some(key) = &message.image_key {
                match self.image_url(key, now).await {
                    Ok(url) => message.image_url = Some(url),
                    Err(e) => tracing::error!(error = %e, image_key = key.as_str(), "image URL not signed"),
                }
            }
        }
    }

    async fn presign(
        &self,
        method: &'static str,
        key: &ImageKey,
        headers: &[(&'static str, String)],
        lifetime: Duration,
        now: DateTime<Utc>,
    ) -> Result<Presigned, PresignError> {
        let identity = self.credentials.provide_credentials().await.map_err(PresignError::of)?.into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = lifetime.to_std().ok();
        // S3 checks the path as sent: encoded once, never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::from(now))
            .settings(settings)
            .build()
            .map_err(PresignError::of)?
            .into();
        // Keys are letters, digits, '/', '.': nothing to encode.
        let url = format!("{}/{}", self.base, key.as_str());
        let signable = SignableRequest::new(
            method,
            url.as_str(),
            headers.iter().map(|(name, value)| (*name, value.as_str())),
            SignableBody::UnsignedPayload,
        )
        .map_err(PresignError::of)?;
        let (instructions, _) = sign(signable, &params).map_err(PresignError::of)?.into_parts();
        let mut request = http::Request::builder().method(method).uri(&url).body(()).map_err(PresignError::of)?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(Presigned {
            url: request.uri().to_string(),
            headers: headers.iter().map(|(name, value)| (*name, value.clone())).collect(),
            expires_at: now + lifetime,
        })
    }
}

/// A function that runs live sessions with their chat images (book, live-session): the
/// session's [`SessionApp`] (reached through it, as `app.store`, `app.push`) and the images'
/// presigner.
#[derive(Clone, Debug)]
pub struct ChatApp {
    pub session: SessionApp,
    pub images: ChatImages,
}

impl ChatApp {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self { session: SessionApp::from_env(sdk, vars)?, images: ChatImages::from_env(sdk, vars)? })
    }
}

impl std::ops::Deref for ChatApp {
    type Target = SessionApp;

    fn deref(&self) -> &SessionApp {
        &self.session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::booking::BookingId;
    use crate::domain::booking::chat::Side;

    fn images(endpoint: Option<&str>) -> ChatImages {
        let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let mut sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("ap-south-1"))
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        sdk.set_endpoint_url(endpoint.map(str::to_owned));
        let vars = std::collections::HashMap::from([("CHAT_IMAGES_BUCKET".to_owned(), "chat-images".to_owned())]);
        ChatImages::from_env(&sdk.build(), &vars).unwrap()
    }

    fn query(url: &str) -> BTreeMap<String, String> {
        url.split_once('?')
            .map(|(_, q)| q.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn an_upload_url_signs_its_key_type_and_size_for_five_minutes() {
        let key = ImageKey::new(&BookingId::from_number(42), Side::Customer, 7, ImageType::Png);
        let now = DateTime::parse_from_rfc3339("2026-12-05T08:00:00Z").unwrap().to_utc();
        let put = images(None).upload_url(&key, ImageType::Png, 1234, now).await.unwrap();
        let (path, _) = put.url.split_once('?').unwrap();
        assert_eq!(path, format!("https://chat-images.s3.ap-south-1.amazonaws.com/{}", key.as_str()));
        let q = query(&put.url);
        assert_eq!(q["X-Amz-SignedHeaders"], "content-length%3Bcontent-type%3Bhost");
        assert_eq!(q["X-Amz-Expires"], "300");
        assert_eq!(q["X-Amz-Date"], "20261205T080000Z");
        assert_eq!(q["X-Amz-Credential"], "AKIDEXAMPLE%2F20261205%2Fap-south-1%2Fs3%2Faws4_request");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        assert_eq!(put.headers["content-type"], "image/png");
        assert_eq!(put.headers["content-length"], "1234");
        assert_eq!(put.expires_at, now + Duration::minutes(5));

        // Locally: path-style at the stack's endpoint; a GET signs the host alone, 10 minutes.
        let get = images(Some("http://127.0.0.1:4566")).image_url(&key, now).await.unwrap();
        assert!(get.starts_with(&format!("http://127.0.0.1:4566/chat-images/{}?", key.as_str())), "{get}");
        assert_eq!(query(&get)["X-Amz-SignedHeaders"], "host");
        assert_eq!(query(&get)["X-Amz-Expires"], "600");
    }
}
