//! `GET /wallet/transactions`: the caller's ledger, newest first, one Query per page, with an
//! opaque cursor (URL-safe base64 of the last key's sort key; the partition is always the caller's).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared::ApiError;
use shared::http::{self, Caller, Request, Response, json};
use shared::store::keys::LEDGER_SK_PREFIX;

use crate::App;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

pub fn encode_cursor(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!({ "sk": sk }).to_string())
}

/// The sort key a cursor stands for; anything we did not hand out is a 400.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid_field("cursor", "is not a cursor this API returned");
    if cursor.len() > 512 {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let sk = value.get("sk").and_then(|v| v.as_str()).ok_or_else(bad)?;
    if !sk.starts_with(LEDGER_SK_PREFIX) || sk.len() > 200 {
        return Err(bad());
    }
    Ok(sk.to_owned())
}

fn limit(req: &Request) -> Result<i32, ApiError> {
    http::limit_param(req, DEFAULT_LIMIT, MAX_LIMIT)
}

pub async fn list(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let limit = limit(req)?;
    let start = http::query_param(req, "cursor").map(decode_cursor).transpose()?;
    let page = app.store.ledger_page(&caller.user_id, limit, start.as_deref()).await?;
    let next_cursor = page.next.as_deref().map(encode_cursor);
    Ok(json(200, &Page { transactions: &page.entries, next_cursor }))
}

/// One page of the ledger, newest first.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct Page<'a> {
    pub transactions: &'a [shared::wallet::LedgerEntry],
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let sk = "TXN#000000000007#02";
        assert_eq!(decode_cursor(&encode_cursor(sk)).unwrap(), sk);
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sk":"PROFILE"}"#);
        for bad in ["", "!!!", "bm90IGpzb24", forged.as_str(), &"A".repeat(600)] {
            let err = decode_cursor(bad).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (400, Some("cursor")), "{bad}");
        }
    }
}
