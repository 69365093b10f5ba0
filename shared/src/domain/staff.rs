//! What operations staff may do, as plain rules: the actions they take (each recorded in
//! the staff audit log), the reason they give, and the checks on the promo codes and
//! promotion rules they create.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::booking::{DiscountKind, PromoCode};
use crate::domain::money::Money;
use crate::domain::promotion::PromotionRule;
use crate::domain::status::string_enum;
use crate::domain::wallet::{LedgerEntry, Wallet};

string_enum!(
    /// One kind of staff action, as the audit log names it.
    StaffAction {
        SuspendAstrologer => "suspend_astrologer",
        ReinstateAstrologer => "reinstate_astrologer",
        /// An astrologer's revenue share and promotional opt-in.
        SetAstrologerTerms => "set_astrologer_terms",
        ApproveKyc => "approve_kyc",
        RejectKyc => "reject_kyc",
        CreatePromoCode => "create_promo_code",
        DeactivatePromoCode => "deactivate_promo_code",
        CreatePromotionRule => "create_promotion_rule",
        DeactivatePromotionRule => "deactivate_promotion_rule",
        CreateOffer => "create_offer",
        DeactivateOffer => "deactivate_offer",
        /// The thresholds that put customers in segments (who gets which offer).
        SetSegmentThresholds => "set_segment_thresholds",
        // What staff read is audited like what they change: who looked at what, when.
        ViewUserWallet => "view_user_wallet",
        ViewAuditLog => "view_audit_log",
        ListPromoCodes => "list_promo_codes",
        ListPromotionRules => "list_promotion_rules",
        ListOffers => "list_offers",
        ViewOfferReport => "view_offer_report",
        /// A customer's birth details and chart (`PATCH /me` sets them).
        ViewBirthDetails => "view_birth_details",
    }
);

impl StaffAction {
    /// Taking something away from someone needs a reason on the record; creating and
    /// reading do not.
    pub fn needs_reason(self) -> bool {
        !matches!(
            self,
            StaffAction::CreatePromoCode
                | StaffAction::CreatePromotionRule
                | StaffAction::CreateOffer
                | StaffAction::ApproveKyc
        ) && !self.is_read()
    }

    /// A look, not a change: its audit entry is written on its own, with the read.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            StaffAction::ViewUserWallet
                | StaffAction::ViewAuditLog
                | StaffAction::ListPromoCodes
                | StaffAction::ListPromotionRules
                | StaffAction::ListOffers
                | StaffAction::ViewOfferReport
                | StaffAction::ViewBirthDetails
        )
    }
}

/// What support can check of one page of a ledger, newest first, without reading the rest:
/// each entry's balances follow from the entry before it, and, when `wallet` is given (the
/// first page) and was read at the version of the newest entry's posting, the newest
/// entry's balances are the wallet's. (The whole-ledger sum, `wallet::check_ledger`, is
/// the reliability suite's; a support look-up reads only the page it shows.)
pub fn check_ledger_page(wallet: Option<&Wallet>, page: &[LedgerEntry]) -> Result<(), String> {
    for pair in page.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        if (newer.sequence, newer.index) <= (older.sequence, older.index) {
            return Err(format!("entry {} is out of order", newer.entry_id()));
        }
        for (bucket, before, delta, after) in [
            ("real", older.real_balance_after, newer.real_delta, newer.real_balance_after),
            ("bonus", older.bonus_balance_after, newer.bonus_delta, newer.bonus_balance_after),
            ("debt", older.debt_after, newer.debt_delta, newer.debt_after),
        ] {
            if before.decimal() + delta.decimal() != after.decimal() {
                return Err(format!(
                    "entry {}: {bucket} {before} changed by {delta} does not make the {after} recorded",
                    newer.entry_id()
                ));
            }
        }
    }
    let (Some(wallet), Some(newest)) = (wallet, page.first()) else { return Ok(()) };
    if newest.sequence != wallet.version {
        // A posting landed between the two reads: nothing to compare, nothing wrong.
        return Ok(());
    }
    for (bucket, recorded, balance) in [
        ("real", newest.real_balance_after, wallet.real_cash),
        ("bonus", newest.bonus_balance_after, wallet.bonus_cash),
        ("debt", newest.debt_after, wallet.debt),
    ] {
        if recorded != balance {
            return Err(format!("the newest entry leaves {bucket} at {recorded}, the wallet holds {balance}"));
        }
    }
    Ok(())
}

/// A position in the staff audit log (its index sort key, `{at}#{audit id}`) from a cursor,
/// with the audit id; `None`: not one we handed out.
pub fn audit_log_position(sk: &str) -> Option<(&str, &str)> {
    let (at, id) = sk.rsplit_once('#')?;
    let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && DateTime::parse_from_rfc3339(at).is_ok()).then_some((at, id))
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
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
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
    fn a_ledger_page_is_checked_entry_to_entry_and_against_the_wallet() {
        use crate::domain::wallet::Movement;
        let m = |s: &str| Money::new(s.parse().unwrap()).unwrap();
        let mut w = Wallet::empty();
        let mut ledger = Vec::new();
        for (real, bonus) in [("500", "100"), ("20", "0"), ("7.25", "1")] {
            let p = w
                .post(vec![Movement::top_up(m(real), "tu", "AK"), Movement::top_up_bonus(m(bonus), "tu")], Utc::now())
                .unwrap();
            ledger.extend(p.entries);
            w = p.after;
        }
        ledger.reverse(); // newest first, as pages are
        assert_eq!(check_ledger_page(Some(&w), &ledger[..3]), Ok(()), "the first page");
        assert_eq!(check_ledger_page(None, &ledger[3..]), Ok(()), "a later page");
        let mut off = w.clone();
        off.real_cash = m("527");
        assert!(check_ledger_page(Some(&off), &ledger[..2]).unwrap_err().contains("real"));
        off.version += 1; // a posting landed between the reads: nothing to compare
        assert_eq!(check_ledger_page(Some(&off), &ledger[..2]), Ok(()));
        let mut tampered = ledger.clone();
        tampered[2].bonus_balance_after = m("99");
        assert!(check_ledger_page(None, &tampered).unwrap_err().contains("bonus"));
        let mut reordered = ledger.clone();
        reordered.swap(0, 1);
        assert!(check_ledger_page(None, &reordered).unwrap_err().contains("out of order"));
    }

    #[test]
    fn audit_log_positions_are_a_time_and_an_id() {
        assert_eq!(audit_log_position("2026-11-22T13:00:00.000Z#0a1b2c"), Some(("2026-11-22T13:00:00.000Z", "0a1b2c")));
        for bad in ["", "#abc", "2026-11-22T13:00:00.000Z#", "yesterday#abc", "2026-11-22T13:00:00.000Z#a-b"] {
            assert!(audit_log_position(bad).is_none(), "{bad}");
        }
        assert!(StaffAction::ViewUserWallet.is_read() && !StaffAction::ViewUserWallet.needs_reason());
        assert!(!StaffAction::SuspendAstrologer.is_read());
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
