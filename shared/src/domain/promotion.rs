//! Promotion rules for top-ups: which rule a recharge earns and the bonus cash it gives.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::domain::money::Money;

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
