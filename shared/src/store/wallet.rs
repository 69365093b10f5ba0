//! Keys of the wallet's neighbours (promotion rules, top-ups, ledger, invoices) and the
//! promotion rules, which the local stack and tests seed as well as the top-up function reads.

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;

use super::items::{self, Item, get_money, get_str, opt_str};
use super::{Store, StoreError};
use crate::user::UserId;
use crate::wallet::PromotionRule;

pub const PROMO_RULES_PK: &str = "PROMO_RULES";

pub fn promo_rule_sk(id: &str) -> String {
    format!("RULE#{id}")
}

/// A top-up (our payment order): `TOPUP#{id}` / `TOPUP`; its invoice `TOPUP#{id}` / `INVOICE`.
pub fn topup_pk(id: &str) -> String {
    format!("TOPUP#{id}")
}
pub const TOPUP_SK: &str = "TOPUP";
pub const INVOICE_SK: &str = "INVOICE";

/// GSI1 key that finds a top-up by its Razorpay order id (webhooks only carry that).
pub fn razorpay_order_gsi_pk(order_id: &str) -> String {
    format!("RZP_ORDER#{order_id}")
}

/// The ledger: `LEDGER#{sub}` / `TXN#{at}#{reference}#{n}`, newest last in key order.
pub fn ledger_pk(user: &UserId) -> String {
    format!("LEDGER#{user}")
}

/// The invoice sequence of a financial year: `COUNTER#INVOICE#{fy}` / `COUNTER`.
pub fn invoice_counter_pk(financial_year: &str) -> String {
    format!("COUNTER#INVOICE#{financial_year}")
}
pub const COUNTER_SK: &str = "COUNTER";

/// A processed webhook event: `WEBHOOK#{provider}#{event id}` / `WEBHOOK`, with a TTL (the
/// item is [`super::seen_event_item`], shared with the Digio webhook).
pub fn webhook_event_pk(provider: &str, event_id: &str) -> String {
    format!("WEBHOOK#{provider}#{event_id}")
}
pub const WEBHOOK_EVENT_SK: &str = "WEBHOOK";

pub fn promo_rule_item(rule: &PromotionRule) -> Item {
    let mut item = items::key(PROMO_RULES_PK, promo_rule_sk(&rule.id));
    item.insert("entity".into(), items::s("promotion_rule"));
    item.insert("rule_id".into(), items::s(&rule.id));
    item.insert("name".into(), items::s(&rule.name));
    item.insert("min_amount".into(), items::money(rule.min_amount));
    if let Some(max) = rule.max_amount {
        item.insert("max_amount".into(), items::money(max));
    }
    item.insert("bonus_percent".into(), items::n(rule.bonus_percent));
    item.insert("first_recharge_only".into(), AttributeValue::Bool(rule.first_recharge_only));
    item.insert("active".into(), AttributeValue::Bool(rule.active));
    item
}

pub fn read_promo_rule(item: &Item) -> Result<PromotionRule, StoreError> {
    let flag = |name: &str| item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    let percent = item
        .get("bonus_percent")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<Decimal>().ok())
        .ok_or_else(|| StoreError::Corrupt("bonus_percent".into()))?;
    Ok(PromotionRule {
        id: get_str(item, "rule_id")?.to_owned(),
        name: opt_str(item, "name").unwrap_or_default().to_owned(),
        min_amount: get_money(item, "min_amount")?,
        max_amount: item.contains_key("max_amount").then(|| get_money(item, "max_amount")).transpose()?,
        bonus_percent: percent,
        first_recharge_only: flag("first_recharge_only"),
        active: flag("active"),
    })
}

impl Store {
    /// Creates or replaces a promotion rule (operations, the local stack's seed, tests).
    pub async fn put_promotion_rule(&self, rule: &PromotionRule) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(promo_rule_item(rule)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Every promotion rule, in one Query.
    pub async fn promotion_rules(&self) -> Result<Vec<PromotionRule>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(PROMO_RULES_PK))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        output.items().iter().map(read_promo_rule).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rules_round_trip_through_items() {
        let rule = PromotionRule {
            id: "r20".into(),
            name: "20% on 500 to 10,000".into(),
            min_amount: "500".parse().unwrap(),
            max_amount: Some("10000".parse().unwrap()),
            bonus_percent: dec!(12.5),
            first_recharge_only: true,
            active: true,
        };
        assert_eq!(read_promo_rule(&promo_rule_item(&rule)).unwrap(), rule);
        let open = PromotionRule { max_amount: None, ..rule };
        assert_eq!(read_promo_rule(&promo_rule_item(&open)).unwrap(), open);
    }
}
