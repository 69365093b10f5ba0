//! Reading and writing DynamoDB attribute maps by hand, so money is always a Number.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::StoreError;
use crate::domain::money::Money;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Money as a DynamoDB Number, never a String.
pub fn money(value: Money) -> AttributeValue {
    AttributeValue::N(value.decimal().to_string())
}

pub fn time(value: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(time_text(value))
}

/// RFC 3339 in UTC to the millisecond: one width, so text order is time order in keys.
pub fn time_text(value: DateTime<Utc>) -> String {
    crate::domain::time::text(value)
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(super::keys::PK.to_owned(), s(pk)), (super::keys::SK.to_owned(), s(sk))])
}

fn missing(name: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute {name} missing or of the wrong type"))
}

pub fn get_str<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).ok_or_else(|| missing(name))
}

pub fn opt_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub fn get_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).ok_or_else(|| missing(name))
}

/// Reads a Number as money. Compares values, not text: DynamoDB may normalise `100.50` to `100.5`.
pub fn get_money(item: &Item, name: &str) -> Result<Money, StoreError> {
    let text = item.get(name).and_then(|v| v.as_n().ok()).ok_or_else(|| missing(name))?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

/// A money attribute that items written before it existed lack: zero then.
pub fn money_or_zero(item: &Item, name: &str) -> Result<Money, StoreError> {
    if item.contains_key(name) { get_money(item, name) } else { Ok(Money::ZERO) }
}

pub fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(get_str(item, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_a_number_and_reads_back_by_value() {
        let m: Money = "100.50".parse().unwrap();
        assert!(matches!(money(m), AttributeValue::N(_)));
        let item = HashMap::from([("x".to_owned(), AttributeValue::N("100.5".into()))]);
        assert_eq!(get_money(&item, "x").unwrap(), m);
        assert!(get_money(&item, "y").is_err());
    }
}
