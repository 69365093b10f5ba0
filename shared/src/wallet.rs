//! Wallet rules as plain functions: which promotion rule a recharge earns, the bonus it
//! gives, the GST split of an invoice, and the Indian financial year invoices are numbered in.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::money::Money;

/// A promotion rule: recharges of `min_amount..=max_amount` (both inclusive; no maximum
/// when `None`) earn `bonus_percent` of the amount as bonus cash. Rules are data (items
/// under `PK = PROMO_RULES`), not code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRule {
    pub id: String,
    pub name: String,
    pub min_amount: Money,
    pub max_amount: Option<Money>,
    /// Percent of the recharge, e.g. `20` or `12.5`.
    pub bonus_percent: Decimal,
    /// Only a wallet's first credited recharge earns it.
    pub first_recharge_only: bool,
    pub active: bool,
}

impl PromotionRule {
    pub fn applies(&self, amount: Money, recharge_count: u64) -> bool {
        self.active
            && amount >= self.min_amount
            && self.max_amount.is_none_or(|max| amount <= max)
            && (!self.first_recharge_only || recharge_count == 0)
            && self.bonus_percent > Decimal::ZERO
    }

    /// The bonus for `amount`, rounded down to the paisa: never more than the rule says.
    pub fn bonus_for(&self, amount: Money) -> Money {
        let raw = amount.decimal() * self.bonus_percent / Decimal::ONE_HUNDRED;
        Money::new(raw.round_dp_with_strategy(2, RoundingStrategy::ToZero)).unwrap_or(Money::ZERO)
    }
}

/// The rule a recharge earns: of those that apply, the one with the largest bonus (ties:
/// the smallest id, so the choice is stable).
pub fn best_rule(rules: &[PromotionRule], amount: Money, recharge_count: u64) -> Option<&PromotionRule> {
    rules
        .iter()
        .filter(|r| r.applies(amount, recharge_count))
        .max_by(|a, b| a.bonus_for(amount).cmp(&b.bonus_for(amount)).then_with(|| b.id.cmp(&a.id)))
}

/// An invoice total split into taxable value and GST. The amount paid is GST-inclusive:
/// the customer pays ₹500 and gets ₹500 of wallet cash; the invoice shows the ₹423.73
/// taxable value and ₹76.27 GST at 18% that make it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GstSplit {
    pub taxable_value: Money,
    pub gst: Money,
    pub total: Money,
}

pub fn gst_inclusive_split(total: Money, rate_percent: Decimal) -> GstSplit {
    let divisor = Decimal::ONE + rate_percent / Decimal::ONE_HUNDRED;
    let taxable = (total.decimal() / divisor).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let taxable_value = Money::new(taxable).unwrap_or(Money::ZERO);
    // The GST is what is left, so the two always add up to what was paid.
    let gst = total.checked_sub(taxable_value).unwrap_or(Money::ZERO);
    GstSplit { taxable_value, gst, total }
}

/// India Standard Time, in which the financial year turns (1 April 00:00 IST).
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("IST is a valid offset")
}

/// The Indian financial year (April to March) of `at`, as `2025-26`.
pub fn financial_year(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&ist());
    let start = if local.month() >= 4 { local.year() } else { local.year() - 1 };
    format!("{start}-{:02}", (start + 1) % 100)
}

/// `AK/2025-26/000042`: the prefix, the financial year and the sequence within it.
pub fn invoice_number(prefix: &str, financial_year: &str, sequence: u64) -> String {
    format!("{prefix}/{financial_year}/{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn rule(id: &str, min: &str, max: Option<&str>, pct: Decimal, first: bool) -> PromotionRule {
        PromotionRule {
            id: id.into(),
            name: id.into(),
            min_amount: money(min),
            max_amount: max.map(money),
            bonus_percent: pct,
            first_recharge_only: first,
            active: true,
        }
    }

    #[test]
    fn range_edges_are_inclusive() {
        let r = rule("r", "500", Some("10000"), dec!(20), false);
        assert!(!r.applies(money("499.99"), 0));
        assert!(r.applies(money("500"), 0));
        assert!(r.applies(money("10000"), 3));
        assert!(!r.applies(money("10000.01"), 0));
        assert_eq!(r.bonus_for(money("500")), money("100"));
        let open = rule("o", "1", None, dec!(5), false);
        assert!(open.applies(money("9999999"), 0));
    }

    #[test]
    fn first_recharge_only_and_inactive_rules() {
        let first = rule("f", "100", None, dec!(50), true);
        assert!(first.applies(money("100"), 0));
        assert!(!first.applies(money("100"), 1));
        let mut off = rule("x", "100", None, dec!(50), false);
        off.active = false;
        assert!(!off.applies(money("100"), 0));
    }

    #[test]
    fn the_biggest_bonus_wins_and_bonus_rounds_down() {
        let rules = vec![
            rule("a", "100", Some("999.99"), dec!(10), false),
            rule("b", "500", None, dec!(20), false),
            rule("c", "100", None, dec!(50), true),
        ];
        assert_eq!(best_rule(&rules, money("500"), 0).unwrap().id, "c");
        assert_eq!(best_rule(&rules, money("500"), 1).unwrap().id, "b");
        assert_eq!(best_rule(&rules, money("499"), 1).unwrap().id, "a");
        assert!(best_rule(&rules, money("99.99"), 1).is_none());
        assert_eq!(rule("p", "1", None, dec!(12.5), false).bonus_for(money("10.05")), money("1.25"));
    }

    #[test]
    fn gst_is_inside_the_amount_and_adds_up() {
        let s = gst_inclusive_split(money("500"), dec!(18));
        assert_eq!((s.taxable_value, s.gst), (money("423.73"), money("76.27")));
        for total in ["1", "0.01", "118", "999.99", "100000"] {
            let s = gst_inclusive_split(money(total), dec!(18));
            assert_eq!(s.taxable_value.checked_add(s.gst).unwrap(), money(total));
        }
        assert_eq!(gst_inclusive_split(money("118"), dec!(18)).taxable_value, money("100"));
        assert_eq!(gst_inclusive_split(money("50"), dec!(0)).gst, Money::ZERO);
    }

    #[test]
    fn financial_year_turns_on_1_april_ist() {
        let utc = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
        assert_eq!(financial_year(utc(2026, 3, 31, 18, 29)), "2025-26"); // 23:59 IST on 31 March
        assert_eq!(financial_year(utc(2026, 3, 31, 18, 30)), "2026-27"); // 00:00 IST on 1 April
        assert_eq!(financial_year(utc(2026, 1, 15, 0, 0)), "2025-26");
        assert_eq!(financial_year(utc(2099, 12, 1, 0, 0)), "2099-00");
        assert_eq!(invoice_number("AK", "2025-26", 42), "AK/2025-26/000042");
    }
}
