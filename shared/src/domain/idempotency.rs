//! Idempotency's record, as the domain sees it: a caller's key scoped to them, the hash of
//! what they asked, and the first response kept for 24 hours. How the key arrives (the
//! `Idempotency-Key` header) and how a record is replayed as a response are HTTP's
//! (`crate::http::idempotency`, where the mechanism is described); where it is kept is the
//! store's.

use chrono::Duration;
use sha2::{Digest, Sha256};

use super::user::UserId;

pub const TTL: Duration = Duration::hours(24);

/// A validated `Idempotency-Key`, scoped to its caller, with the hash of what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub user: UserId,
    pub key: String,
    /// SHA-256 of the route key and the parsed request (see [`request_hash`]).
    pub request_hash: String,
}

/// A first response, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    /// Epoch seconds after which the record no longer counts (TTL deletes it later).
    pub expires_at: Option<u64>,
}

/// Hash of the route and the parsed request, serialised in canonical form (keys sorted, no
/// whitespace, each value as its type writes it: `Money` always `"500.00"`), so a client
/// that spells the same request differently is not refused, and one that changes what it
/// asks for is.
pub fn request_hash<T: serde::Serialize>(route_key: &str, request: &T) -> String {
    // Serialising our own request types cannot fail (no maps with non-string keys).
    let canonical = serde_json::to_value(request).map(sorted).and_then(|v| serde_json::to_vec(&v)).unwrap_or_default();
    bytes_hash(route_key, &canonical)
}

/// SHA-256 of a context (e.g. the route key) and bytes, hex.
pub fn bytes_hash(context: &str, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(context.as_bytes());
    hasher.update(b"\n");
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// Objects with their keys sorted, at every depth (whatever order `serde_json::Map` keeps,
/// which depends on a crate feature some dependency may turn on).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a top-up route parses its body into.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Amount {
        amount: crate::domain::money::Money,
    }

    fn parsed(body: &str) -> Amount {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn the_same_request_however_spelt_hashes_the_same_and_a_different_one_does_not() {
        let a = request_hash("POST /x", &parsed(r#"{"amount": "500"}"#));
        for same in [r#"{"amount":500}"#, r#"{"amount":"500.00"}"#, r#"{"amount":500.0}"#, r#"{ "amount" : "500.0" }"#]
        {
            assert_eq!(a, request_hash("POST /x", &parsed(same)), "{same}");
        }
        assert_ne!(a, request_hash("POST /x", &parsed(r#"{"amount":501}"#)));
        assert_ne!(a, request_hash("POST /x", &parsed(r#"{"amount":"500.01"}"#)));
        assert_ne!(a, request_hash("POST /y", &parsed(r#"{"amount":500}"#)));
        // Canonical whatever order a map keeps its keys in.
        let (x, y) =
            (serde_json::json!({"a": 1, "b": {"d": 2, "c": 3}}), serde_json::json!({"b": {"c": 3, "d": 2}, "a": 1}));
        assert_eq!(request_hash("POST /x", &x), request_hash("POST /x", &y));
    }
}
