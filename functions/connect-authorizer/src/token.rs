//! Verifying a Cognito access token, and every reason to refuse one.

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use shared::UserId;

use crate::jwks::Jwks;

/// Cognito's access tokens are about 1 KiB; a longer one is not one of them, and is refused
/// before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4 * 1024;

/// Clock skew allowed past `exp`: a few seconds, not jsonwebtoken's default minute.
const EXPIRY_LEEWAY_SECONDS: u64 = 5;

/// Who presented a valid access token.
#[derive(Debug)]
pub(crate) struct Caller {
    pub sub: UserId,
    pub groups: Vec<String>,
}

/// Why a connection is refused: logged, never sent (the caller only sees 401).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the event has no methodArn")]
    NoMethodArn,
    #[error("no token (neither the token query parameter nor an Authorization: Bearer header)")]
    NoToken,
    #[error("the token is {0} bytes, over {MAX_TOKEN_BYTES}")]
    Oversized(usize),
    #[error("the token is not a JWT: {0}")]
    Malformed(jsonwebtoken::errors::Error),
    #[error("the token is signed with {0:?}, not RS256")]
    Algorithm(Algorithm),
    #[error("the token names no signing key (kid)")]
    NoKeyId,
    #[error("the token's signing key is not in the pool's JWKS")]
    UnknownKey,
    #[error("the pool's JWKS is unavailable: {0}")]
    KeysUnavailable(String),
    #[error("the token is invalid: {0}")]
    Rejected(jsonwebtoken::errors::Error),
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token is for another app client")]
    Client,
    #[error("the token is not an access token (token_use {0:?})")]
    NotAnAccessToken(Option<String>),
    #[error("the token's sub is not a user id")]
    Subject,
}

/// The claims of a Cognito access token this authorizer reads. Typed, so an `iss` that is
/// an array or a `sub` that is a number is refused as unreadable.
#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    iss: String,
    /// Access tokens name their app client here; ID tokens carry `aud` instead.
    client_id: Option<String>,
    token_use: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

pub(crate) struct Verifier {
    issuer: String,
    client_id: String,
    pub(crate) keys: Jwks,
    validation: Validation,
}

impl Verifier {
    pub fn new(issuer: String, client_id: String, keys: Jwks) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[&issuer]);
        validation.leeway = EXPIRY_LEEWAY_SECONDS;
        // Access tokens have no `aud`: the app client is `client_id`, checked below.
        validation.validate_aud = false;
        Self { issuer, client_id, keys, validation }
    }

    pub async fn verify(&self, token: Option<&str>) -> Result<Caller, Refusal> {
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(Refusal::NoToken)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Oversized(token.len()));
        }
        // The header is checked before any key is looked up, so a flood of HS256 or `none`
        // tokens never makes this function fetch the JWKS.
        let header = jsonwebtoken::decode_header(token).map_err(Refusal::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(Refusal::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(Refusal::NoKeyId)?;
        let key = self.keys.key(&kid).await?;
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(Refusal::Rejected)?.claims;
        if claims.iss != self.issuer {
            return Err(Refusal::Issuer);
        }
        if claims.client_id.as_deref() != Some(self.client_id.as_str()) {
            return Err(Refusal::Client);
        }
        if claims.token_use.as_deref() != Some("access") {
            return Err(Refusal::NotAnAccessToken(claims.token_use));
        }
        let sub = UserId::parse(&claims.sub).map_err(|_| Refusal::Subject)?;
        Ok(Caller { sub, groups: claims.groups })
    }
}
