//! The user pool's signing keys: fetched from its JWKS URL by the first token that needs
//! them, kept for the life of the process. A token naming a key we do not know refetches
//! (Cognito rotates keys), but at most once a minute, so a flood of made-up `kid`s costs
//! Cognito one request a minute per instance.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;
use shared::outbound::Provider;

use crate::token::Refusal;

/// The least time between two fetches once we hold keys.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// The least time between two fetches while we hold none (the last one failed): short, as
/// every connection is refused until one succeeds.
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) struct Jwks {
    source: Provider,
    by_kid: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// When the last fetch started; held across a fetch, so concurrent requests for an
    /// unknown key wait for that one fetch instead of each making their own.
    pub(crate) last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(url: &str) -> Self {
        // The JWKS is public: the client's Basic credentials are empty.
        Self {
            source: Provider::new("cognito-jwks", url, "", ""),
            by_kid: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// The verification key named `kid`.
    pub async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, Refusal> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Fetched by another request while this one waited?
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let holding_keys = !self.by_kid.read().unwrap_or_else(PoisonError::into_inner).is_empty();
        let interval = if holding_keys { REFETCH_INTERVAL } else { RETRY_INTERVAL };
        if last_fetch.is_some_and(|at| at.elapsed() < interval) {
            return Err(if holding_keys {
                Refusal::UnknownKey
            } else {
                Refusal::KeysUnavailable(format!("the last fetch failed, next attempt within {interval:?}"))
            });
        }
        *last_fetch = Some(Instant::now());
        let keys = self.fetch().await.map_err(|e| {
            tracing::warn!(error = %e, "fetching the pool's JWKS failed");
            Refusal::KeysUnavailable(e)
        })?;
        tracing::info!(keys = keys.len(), "fetched the pool's JWKS");
        let key = keys.get(kid).cloned();
        // Replaced, not merged: a key the pool no longer publishes is no longer trusted.
        *self.by_kid.write().unwrap_or_else(PoisonError::into_inner) = keys;
        key.ok_or(Refusal::UnknownKey)
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.by_kid.read().unwrap_or_else(PoisonError::into_inner).get(kid).cloned()
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        /// Each key read on its own, so one of a type we do not know does not hide the rest.
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<serde_json::Value>,
        }
        let reply = self.source.get("").await.map_err(|e| e.to_string())?;
        if !reply.is_success() {
            return Err(reply.rejected("not a JWKS").to_string());
        }
        let set: KeySet = reply.json().map_err(|e| e.to_string())?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| verification_key(&jwk))
            .collect())
    }
}

/// An RSA signing key with a `kid`, usable for RS256; anything else is not one we verify with.
fn verification_key(jwk: &Jwk) -> Option<(String, Arc<DecodingKey>)> {
    let usable = matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
        && matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature))
        && matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256));
    if !usable {
        return None;
    }
    let kid = jwk.common.key_id.clone()?;
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(key)))
}
