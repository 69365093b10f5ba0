//! `GET /wallet/transactions`: the caller's ledger, newest first, one Query per page, with an
//! opaque cursor (URL-safe base64 of the last key's sort key; the partition is always the caller's).

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rust_decimal::Decimal;
use serde::Serialize;
use shared::http::{self, Caller, Request, Response, json};
use shared::store::items::{self, Item, get_str};
use shared::store::wallet::ledger_pk;
use shared::store::{PK, SK, StoreError};
use shared::{ApiError, UserId};

use crate::App;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

#[derive(Debug, Serialize)]
pub struct Entry {
    pub entry_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub real_delta: String,
    pub bonus_delta: String,
    pub real_balance_after: String,
    pub bonus_balance_after: String,
    pub reference_type: String,
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    pub promotional: bool,
    pub description: String,
    pub created_at: String,
}

/// A signed amount at 2 decimal places (deltas may be negative once bookings debit).
fn amount(item: &Item, name: &str) -> Result<String, StoreError> {
    let mut d: Decimal = item
        .get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{name} missing")))?;
    d.rescale(2);
    Ok(d.to_string())
}

fn read_entry(item: &Item) -> Result<Entry, StoreError> {
    Ok(Entry {
        entry_id: get_str(item, "entry_id")?.to_owned(),
        kind: get_str(item, "type")?.to_owned(),
        real_delta: amount(item, "real_delta")?,
        bonus_delta: amount(item, "bonus_delta")?,
        real_balance_after: amount(item, "real_balance_after")?,
        bonus_balance_after: amount(item, "bonus_balance_after")?,
        reference_type: get_str(item, "reference_type")?.to_owned(),
        reference_id: get_str(item, "reference_id")?.to_owned(),
        invoice_number: items::opt_str(item, "invoice_number").map(str::to_owned),
        promotional: item.get("promotional").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        description: items::opt_str(item, "description").unwrap_or_default().to_owned(),
        created_at: get_str(item, "created_at")?.to_owned(),
    })
}

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
    if !sk.starts_with("TXN#") || sk.len() > 200 {
        return Err(bad());
    }
    Ok(sk.to_owned())
}

fn limit(req: &Request) -> Result<i32, ApiError> {
    match http::query_param(req, "limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => {
            raw.parse::<i32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                ApiError::invalid_field("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))
            })
        }
    }
}

pub async fn list(app: &App, req: &Request, caller: Caller) -> Result<Response, ApiError> {
    let limit = limit(req)?;
    let start = http::query_param(req, "cursor").map(decode_cursor).transpose()?;
    let pk = ledger_pk(&caller.user_id);
    let output = app
        .store
        .client
        .query()
        .table_name(&app.store.table)
        .key_condition_expression("PK = :pk AND begins_with(SK, :txn)")
        .expression_attribute_values(":pk", items::s(&pk))
        .expression_attribute_values(":txn", items::s("TXN#"))
        .scan_index_forward(false)
        .limit(limit)
        .set_exclusive_start_key(start.map(|sk| start_key(&caller.user_id, sk)))
        .send()
        .await
        .map_err(StoreError::from_sdk)?;
    let entries = output.items().iter().map(read_entry).collect::<Result<Vec<_>, _>>()?;
    let next_cursor =
        output.last_evaluated_key().and_then(|k| k.get(SK)).and_then(|v| v.as_s().ok()).map(|sk| encode_cursor(sk));
    Ok(json(200, &serde_json::json!({ "transactions": entries, "next_cursor": next_cursor })))
}

fn start_key(user: &UserId, sk: String) -> Item {
    Item::from([(PK.to_owned(), items::s(ledger_pk(user))), (SK.to_owned(), AttributeValue::S(sk))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let sk = "TXN#2026-01-01T00:00:00.000Z#tu_1#2";
        assert_eq!(decode_cursor(&encode_cursor(sk)).unwrap(), sk);
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sk":"PROFILE"}"#);
        for bad in ["", "!!!", "bm90IGpzb24", forged.as_str(), &"A".repeat(600)] {
            let err = decode_cursor(bad).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (400, Some("cursor")), "{bad}");
        }
    }
}
