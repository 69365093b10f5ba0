//! `GET /wallet/transactions`: the caller's ledger, newest first, one Query per page, with an
//! opaque cursor (URL-safe base64 of the last key's sort key; the partition is always the caller's).

use shared::ApiError;
use shared::http::{self, Caller, Request, Response, json};
use shared::store::keys::LEDGER_SK_PREFIX;

use crate::App;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

pub fn encode_cursor(sk: &str) -> String {
    http::encode_sk_cursor(sk)
}

/// The sort key a cursor stands for; anything we did not hand out is a 400.
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    http::decode_sk_cursor(cursor, LEDGER_SK_PREFIX)
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
    pub transactions: &'a [shared::domain::wallet::LedgerEntry],
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
