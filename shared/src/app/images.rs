//! The private images bucket (`IMAGES_BUCKET`): chat images under `chat/` (kept 180 days)
//! and profile pictures under `pictures/` (kept while they are someone's). Nobody reaches it
//! but through URLs this module presigns (SigV4 in the query string) with the function's own
//! credentials: S3 checks each one against the signer's rights, the method, the key, the
//! signed headers and the expiry.
//!
//! - an upload: a PUT of one key for 5 minutes, signing `content-type` and `content-length`,
//!   so S3 refuses another type or size than the one asked for;
//! - a view: a GET of one key, made for each read, never stored: 10 minutes for a chat image,
//!   an hour for a picture (cards an app keeps on screen a while);
//! - with `outbound`, requests the function sends itself: whether a key is there (HEAD), a
//!   deletion (DELETE) and the keys under a prefix (a GET of the bucket).
//!
//! Signed with aws-sigv4 (in the tree already through the SDK): linking the S3 SDK into the
//! functions for a few presigned URLs would grow every cold start for nothing.

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

#[cfg(feature = "live")]
use crate::app::live::SessionApp;
use crate::config::{self, ConfigError, Vars};
use crate::domain::booking::chat::{ChatMessage, ImageKey};
use crate::domain::image::PictureKey;

/// How long an upload URL may be used.
pub const UPLOAD_URL_LIFETIME: Duration = Duration::minutes(5);
/// How long a chat image's view URL may be used (a client that kept one longer reads the
/// messages again).
pub const IMAGE_URL_LIFETIME: Duration = Duration::minutes(10);
/// How long a profile picture's view URL may be used (read the profile again for a fresh one).
pub const PICTURE_URL_LIFETIME: Duration = Duration::hours(1);

/// Presigns requests for the images bucket.
#[derive(Clone, Debug)]
pub struct Images {
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

impl Images {
    /// The bucket `IMAGES_BUCKET`, in the SDK configuration's region, signed with its
    /// credentials (on Lambda, the role's, from the environment).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        let bucket = config::required(vars, "IMAGES_BUCKET")?;
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
        key: &str,
        content_type: &'static str,
        size: u64,
        now: DateTime<Utc>,
    ) -> Result<Presigned, PresignError> {
        let headers = [("content-type", content_type.to_owned()), ("content-length", size.to_string())];
        self.presign("PUT", key, &[], &headers, UPLOAD_URL_LIFETIME, now).await
    }

    /// A GET of a chat image, for the two parties of its consultation.
    pub async fn image_url(&self, key: &ImageKey, now: DateTime<Utc>) -> Result<String, PresignError> {
        self.view_url(key.as_str(), IMAGE_URL_LIFETIME, now).await
    }

    /// A GET of a profile picture.
    pub async fn picture_url(&self, key: &PictureKey, now: DateTime<Utc>) -> Result<String, PresignError> {
        self.view_url(key.as_str(), PICTURE_URL_LIFETIME, now).await
    }

    /// [`Self::picture_url`], or none when it cannot be signed (logged): the rest of the
    /// page still reads.
    pub async fn picture_url_or_none(&self, key: Option<&PictureKey>, now: DateTime<Utc>) -> Option<String> {
        let key = key?;
        self.picture_url(key, now)
            .await
            .inspect_err(|e| tracing::error!(error = %e, picture_key = key.as_str(), "picture URL not signed"))
            .ok()
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

    async fn view_url(&self, key: &str, lifetime: Duration, now: DateTime<Utc>) -> Result<String, PresignError> {
        Ok(self.presign("GET", key, &[], &[], lifetime, now).await?.url)
    }

    /// `method` on `key` (the bucket itself when empty) with `query`, signed for `lifetime`.
    async fn presign(
        &self,
        method: &'static str,
        key: &str,
        query: &[(&str, &str)],
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
        // Keys are letters, digits, '-', '/', '.': nothing to encode in the path.
        let mut url = format!("{}/{key}", self.base);
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{name}={}", encode_query_value(value)));
        }
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

/// RFC 3986 percent-encoding of a query value (what SigV4 canonicalises it to).
fn encode_query_value(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Requests the function sends to the bucket itself, through the outbound client.
#[cfg(feature = "outbound")]
mod own_requests {
    use bytes::Bytes;
    use chrono::{DateTime, Duration, Utc};
    use http_body_util::Full;

    use super::{Images, Presigned};
    use crate::outbound::{Http, ProviderError, Reply};

    /// What errors name as the provider.
    const S3: &str = "s3";
    /// A request sent at once needs a short signature only.
    const OWN_REQUEST_LIFETIME: Duration = Duration::minutes(1);
    /// The most pages of keys one listing reads (1,000 keys each).
    const MAX_LIST_PAGES: usize = 20;

    async fn send_presigned(http: &Http, method: &str, presigned: Presigned) -> Result<Reply, ProviderError> {
        let request = http::Request::builder()
            .method(method)
            .uri(&presigned.url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProviderError::Unavailable { provider: S3, detail: format!("bad request URL: {e}") })?;
        http.send(S3, request).await
    }

    fn presign_error(e: super::PresignError) -> ProviderError {
        ProviderError::Unavailable { provider: S3, detail: e.to_string() }
    }

    /// The text of each `<tag>` element in an S3 XML answer.
    pub(super) fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        xml.split(open.as_str()).skip(1).filter_map(|rest| rest.split_once(close.as_str()).map(|(v, _)| v)).collect()
    }

    impl Images {
        /// Whether `key` holds an object. S3 answers a missing key 404, or 403 to a signer
        /// that may not list the bucket where the key would be: both are "not there".
        pub async fn object_exists(&self, http: &Http, key: &str, now: DateTime<Utc>) -> Result<bool, ProviderError> {
            let head = self.presign("HEAD", key, &[], &[], OWN_REQUEST_LIFETIME, now).await.map_err(presign_error)?;
            let reply = send_presigned(http, "HEAD", head).await?;
            match reply.status {
                200 => Ok(true),
                403 | 404 => {
                    if reply.status == 403 {
                        tracing::warn!(key, "HEAD answered 403: taken as no object");
                    }
                    Ok(false)
                }
                _ => Err(reply.rejected("HEAD of an image")),
            }
        }

        /// Deletes `key`; a key with no object is deleted already (S3 answers 204 alike).
        pub async fn delete_object(&self, http: &Http, key: &str, now: DateTime<Utc>) -> Result<(), ProviderError> {
            let delete =
                self.presign("DELETE", key, &[], &[], OWN_REQUEST_LIFETIME, now).await.map_err(presign_error)?;
            let reply = send_presigned(http, "DELETE", delete).await?;
            if reply.is_success() || reply.status == 404 { Ok(()) } else { Err(reply.rejected("DELETE of an image")) }
        }

        /// Every key under `prefix` (ListObjectsV2, page by page).
        pub async fn list_keys(
            &self,
            http: &Http,
            prefix: &str,
            now: DateTime<Utc>,
        ) -> Result<Vec<String>, ProviderError> {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            for _ in 0..MAX_LIST_PAGES {
                let mut query = vec![("list-type", "2"), ("prefix", prefix)];
                if let Some(t) = &token {
                    query.push(("continuation-token", t.as_str()));
                }
                let list =
                    self.presign("GET", "", &query, &[], OWN_REQUEST_LIFETIME, now).await.map_err(presign_error)?;
                let reply = send_presigned(http, "GET", list).await?;
                if !reply.is_success() {
                    return Err(reply.rejected("listing images"));
                }
                let xml = String::from_utf8_lossy(&reply.body);
                keys.extend(elements(&xml, "Key").into_iter().map(str::to_owned));
                token = elements(&xml, "NextContinuationToken").first().map(|t| (*t).to_owned());
                if elements(&xml, "IsTruncated").first() != Some(&"true") || token.is_none() {
                    return Ok(keys);
                }
            }
            Err(ProviderError::Rejected {
                provider: S3,
                status: 200,
                detail: format!("more than {MAX_LIST_PAGES} pages under {prefix}"),
            })
        }
    }
}

/// A function that runs live sessions with their chat images (book, live-session): the
/// session's [`SessionApp`] (reached through it, as `app.store`, `app.push`) and the images'
/// presigner.
#[cfg(feature = "live")]
#[derive(Clone, Debug)]
pub struct ChatApp {
    pub session: SessionApp,
    pub images: Images,
}

#[cfg(feature = "live")]
impl ChatApp {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self { session: SessionApp::from_env(sdk, vars)?, images: Images::from_env(sdk, vars)? })
    }
}

#[cfg(feature = "live")]
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
    use crate::domain::booking::chat::{ImageType, Side};
    use crate::domain::image::PictureType;
    use crate::domain::user::UserId;

    fn images(endpoint: Option<&str>) -> Images {
        let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let mut sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("ap-south-1"))
            .credentials_provider(SharedCredentialsProvider::new(credentials));
        sdk.set_endpoint_url(endpoint.map(str::to_owned));
        let vars = std::collections::HashMap::from([("IMAGES_BUCKET".to_owned(), "images".to_owned())]);
        Images::from_env(&sdk.build(), &vars).unwrap()
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
        let put = images(None).upload_url(key.as_str(), ImageType::Png.content_type(), 1234, now).await.unwrap();
        let (path, _) = put.url.split_once('?').unwrap();
        assert_eq!(path, format!("https://images.s3.ap-south-1.amazonaws.com/{}", key.as_str()));
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
        assert!(get.starts_with(&format!("http://127.0.0.1:4566/images/{}?", key.as_str())), "{get}");
        assert_eq!(query(&get)["X-Amz-SignedHeaders"], "host");
        assert_eq!(query(&get)["X-Amz-Expires"], "600");

        // A picture's view lasts an hour.
        let user = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let picture = PictureKey::new(&user, 9, PictureType::Webp);
        let get = images(None).picture_url(&picture, now).await.unwrap();
        assert!(get.starts_with(&format!("https://images.s3.ap-south-1.amazonaws.com/{}?", picture.as_str())));
        assert_eq!(query(&get)["X-Amz-Expires"], "3600");
    }

    #[cfg(feature = "outbound")]
    #[test]
    fn elements_are_read_from_s3_answers() {
        use super::own_requests::elements;
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a/1.png</Key></Contents>\
                   <Contents><Key>a/2.png</Key></Contents><NextContinuationToken>1x+/=</NextContinuationToken>\
                   </ListBucketResult>";
        assert_eq!(elements(xml, "Key"), ["a/1.png", "a/2.png"]);
        assert_eq!(elements(xml, "NextContinuationToken"), ["1x+/="]);
        assert_eq!(elements(xml, "IsTruncated"), ["true"]);
        assert!(elements(xml, "Owner").is_empty());
    }
}
