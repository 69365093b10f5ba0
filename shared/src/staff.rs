//! What operations staff may do, as plain rules: the actions they take (each recorded in
//! the staff audit log), the reason they give, and the checks on the promo codes and
//! promotion rules they create.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::booking::{DiscountKind, PromoCode};
use crate::money::Money;
use crate::promotion::PromotionRule;
use crate::status::string_enum;

string_enum!(
    /// One kind of staff action, as the audit log names it.
    StaffAction {
        SuspendAstrologer => "suspend_astrologer",
        ReinstateAstrologer => "reinstate_astrologer",
        ApproveKyc => "approve_kyc",
        RejectKyc => "reject_kyc",
        CreatePromoCode => "create_promo_code",
        DeactivatePromoCode => "deactivate_promo_code",
        CreatePromotionRule => "create_promotion_rule",
        DeactivatePromotionRule => "deactivate_promotion_rule",
    }
);

impl StaffAction {
    /// Taking something away from someone needs a reason on the record; creating does not.
    pub fn needs_reason(self) -> bool {
        !matches!(self, StaffAction::CreatePromoCode | StaffAction::CreatePromotionRule | StaffAction::ApproveKyc)
    }
}

pub const MAX_REASON_CHARS: usize = 500;

/// Why staff did something: 1 to 500 characters of text, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("must not be empty");
        }
        if text.chars().count() > MAX_REASON_CHARS || text.chars().any(char::is_control) {
            return Err("must be at most 500 characters of text");
        }
        Ok(Self(text.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Reason::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The reason an action needs, or the refusal (by field) when it is missing.
pub fn reason_for(action: StaffAction, reason: Option<Reason>) -> Result<Option<Reason>, &'static str> {
    match reason {
        None if action.needs_reason() => Err("a reason is required for this action"),
        other => Ok(other),
    }
}

/// The active rule whose amount range shares an amount with `candidate`'s (both ends are
/// inclusive; no maximum is open-ended), if any: two active rules never overlap, so a
/// recharge never has to choose between rules of one range.
pub fn overlapping<'a>(rules: &'a [PromotionRule], candidate: &PromotionRule) -> Option<&'a PromotionRule> {
    let below = |a: &PromotionRule, b: &PromotionRule| a.max_amount.is_some_and(|max| max < b.min_amount);
    rules.iter().filter(|r| r.active && r.id != candidate.id).find(|r| !below(r, candidate) && !below(candidate, r))
}

/// Why a rule as asked for cannot exist; the field at fault and the problem.
pub fn check_rule(rule: &PromotionRule) -> Result<(), (&'static str, &'static str)> {
    if rule.max_amount.is_some_and(|max| max < rule.min_amount) {
        return Err(("max_amount", "must not be below min_amount"));
    }
    if rule.bonus_percent <= Decimal::ZERO || rule.bonus_percent > Decimal::ONE_HUNDRED {
        return Err(("bonus_percent", "must be above 0 and at most 100"));
    }
    if rule.bonus_percent.scale() > 2 {
        return Err(("bonus_percent", "at most two decimals"));
    }
    Ok(())
}

/// Why a promo code as asked for cannot exist; the field at fault and the problem.
pub fn check_promo_code(p: &PromoCode) -> Result<(), (&'static str, &'static str)> {
    match p.kind {
        DiscountKind::Percentage if p.value <= Decimal::ZERO || p.value > Decimal::ONE_HUNDRED => {
            return Err(("discount_value", "a percentage must be above 0 and at most 100"));
        }
        DiscountKind::Fixed if p.value <= Decimal::ZERO || Money::new(p.value).is_err() => {
            return Err(("discount_value", "a fixed discount must be an amount above 0"));
        }
        DiscountKind::Fixed if p.max_discount.is_some() => {
            return Err(("max_discount", "only a percentage has a cap"));
        }
        _ => {}
    }
    if p.value.scale() > 2 {
        return Err(("discount_value", "at most two decimals"));
    }
    if p.valid_until.is_some_and(|until| until <= p.valid_from) {
        return Err(("valid_until", "must be after valid_from"));
    }
    if p.usage_limit == Some(0) {
        return Err(("usage_limit", "must be at least 1 (leave it out for no limit)"));
    }
    if p.per_user_limit == 0 {
        return Err(("per_user_limit", "must be at least 1"));
    }
    Ok(())
}

/// One entry of the staff audit log: who did what to which thing, when and why. Written in
/// the transaction that makes the change, never changed afterwards.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub audit_id: String,
    pub staff_id: crate::UserId,
    pub action: StaffAction,
    /// What it was done to: `astrologer:{id}`, `promo_code:{CODE}`, `promotion_rule:{id}`.
    pub target: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reason: Option<Reason>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub at: DateTime<Utc>,
}

impl AuditEntry {
    pub fn new(staff: &crate::UserId, action: StaffAction, target: String, reason: Option<Reason>) -> Self {
        Self {
            audit_id: uuid::Uuid::new_v4().simple().to_string(),
            staff_id: staff.clone(),
            action,
            target,
            reason,
            at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn rule(id: &str, min: u32, max: Option<u32>, active: bool) -> PromotionRule {
        PromotionRule {
            id: id.into(),
            name: id.into(),
            min_amount: Money::from_paise(u64::from(min) * 100),
            max_amount: max.map(|m| Money::from_paise(u64::from(m) * 100)),
            bonus_percent: dec!(10),
            first_recharge_only: false,
            active,
        }
    }

    #[test]
    fn ranges_that_share_an_amount_overlap() {
        let existing = vec![rule("a", 500, Some(999), true), rule("b", 5000, None, true), rule("off", 0, None, false)];
        for (candidate, clash) in [
            (rule("n", 100, Some(499), true), None),
            (rule("n", 100, Some(500), true), Some("a")), // inclusive ends meet
            (rule("n", 999, Some(1000), true), Some("a")),
            (rule("n", 1000, Some(4999), true), None),
            (rule("n", 1000, Some(5000), true), Some("b")),
            (rule("n", 1000, None, true), Some("b")), // open-ended reaches it
            (rule("n", 100_000, Some(200_000), true), Some("b")),
            (rule("n", 1, Some(100_000), true), Some("a")),
        ] {
            assert_eq!(overlapping(&existing, &candidate).map(|r| r.id.as_str()), clash, "{candidate:?}");
        }
    }

    #[test]
    fn rules_and_codes_are_checked_by_field() {
        let mut r = rule("r", 500, Some(100), true);
        assert_eq!(check_rule(&r).unwrap_err().0, "max_amount");
        r.max_amount = None;
        assert!(check_rule(&r).is_ok());
        for bad in [dec!(0), dec!(100.01), dec!(-1), dec!(1.125)] {
            r.bonus_percent = bad;
            assert_eq!(check_rule(&r).unwrap_err().0, "bonus_percent", "{bad}");
        }
        let now = Utc::now();
        let code = PromoCode {
            code: "X".into(),
            kind: DiscountKind::Percentage,
            value: dec!(10),
            max_discount: None,
            min_order: Money::ZERO,
            valid_from: now,
            valid_until: None,
            usage_limit: None,
            per_user_limit: 1,
            user_type: None,
            active: true,
        };
        assert!(check_promo_code(&code).is_ok());
        let cases: Vec<(PromoCode, &str)> = vec![
            (PromoCode { value: dec!(101), ..code.clone() }, "discount_value"),
            (PromoCode { kind: DiscountKind::Fixed, value: dec!(0), ..code.clone() }, "discount_value"),
            (
                PromoCode { kind: DiscountKind::Fixed, max_discount: Some(Money::from_paise(1)), ..code.clone() },
                "max_discount",
            ),
            (PromoCode { valid_until: Some(now), ..code.clone() }, "valid_until"),
            (PromoCode { usage_limit: Some(0), ..code.clone() }, "usage_limit"),
            (PromoCode { per_user_limit: 0, ..code.clone() }, "per_user_limit"),
        ];
        for (bad, field) in cases {
            assert_eq!(check_promo_code(&bad).unwrap_err().0, field);
        }
    }

    #[test]
    fn reasons_are_bounded_text_and_required_to_take_away() {
        assert_eq!(Reason::parse("  fraud reports ").unwrap().as_str(), "fraud reports");
        for bad in ["", "   ", "a\u{0}b", &"x".repeat(501)] {
            assert!(Reason::parse(bad).is_err(), "{bad:?}");
        }
        assert!(reason_for(StaffAction::SuspendAstrologer, None).is_err());
        assert!(reason_for(StaffAction::RejectKyc, None).is_err());
        assert!(reason_for(StaffAction::CreatePromoCode, None).unwrap().is_none());
        assert!(reason_for(StaffAction::ApproveKyc, None).is_ok());
    }
}
