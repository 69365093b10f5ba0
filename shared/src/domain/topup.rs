//! A top-up (our payment order for one Razorpay order) and the decision its credit makes:
//! the bonus that still applies, the invoice number and GST split, and the wallet posting.
//! Pure; [`crate::store::topups`] writes what [`plan_credit`] decides in one transaction.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::events::{Envelope, WalletCredited};
use crate::domain::invoice::{GstSplit, Gstin, TaxLines, gst_inclusive_split, invoice_number, tax_lines};
use crate::domain::money::Money;
use crate::domain::offer::{Offer, OfferRead};
use crate::domain::promotion::{PromotionRule, best_rule};
use crate::domain::status::string_enum;
use crate::domain::user::UserId;
use crate::domain::wallet::{Movement, Posting, Wallet, WalletError};

string_enum!(
    /// Where a top-up stands: `failed` can still be credited by a late capture.
    Status { Pending => "pending", Failed => "failed", Completed => "completed" }
);

/// How long the bonus quoted when a top-up is created holds: paid later, the bonus is what
/// the promotion rules say when the credit is made (a rule staff switched off meanwhile no
/// longer pays). Long enough for a checkout, short enough that a quote cannot be banked.
pub const QUOTE_VALID_FOR: chrono::Duration = chrono::Duration::minutes(30);

/// Top-ups a customer may have open (created, neither credited nor given up) at once: each
/// costs the reconciliation a Razorpay call every 5 minutes until it is paid or given up an
/// hour after its creation.
pub const MAX_OPEN_TOPUPS: usize = 5;

#[derive(Debug, Clone)]
pub struct TopUp {
    pub id: String,
    pub user_id: UserId,
    pub amount: Money,
    /// The bonus promised when the top-up was created.
    pub bonus: Money,
    pub rule_id: Option<String>,
    pub first_recharge_only: bool,
    /// For a first-recharge-only bonus: the best rule that held for a later recharge when
    /// the top-up was created, and its bonus, applied instead if another recharge is
    /// credited first.
    pub fallback_rule_id: Option<String>,
    pub fallback_bonus: Money,
    /// A recharge-bonus offer the customer named, applied by the credit if it still holds then.
    pub offer_id: Option<String>,
    pub razorpay_order_id: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub credit: Option<CreditRecord>,
}

impl TopUp {
    /// Whether the bonus quoted at creation still holds for a payment made at `paid_at`.
    pub fn quote_holds(&self, paid_at: DateTime<Utc>) -> bool {
        paid_at - self.created_at <= QUOTE_VALID_FOR
    }
}

/// What a completed top-up records about its credit.
#[derive(Debug, Clone, Serialize)]
pub struct CreditRecord {
    pub payment_id: String,
    /// Everything credited as bonus cash: the promotion rule's and the offer's.
    pub bonus_credited: Money,
    /// The part of it the offer (`TopUp::offer_id`) gave.
    pub offer_bonus: Money,
    pub credited_by: String,
    pub completed_at: String,
    pub invoice: InvoiceView,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceView {
    /// At most 16 characters (GST rule 46(b)): prefix, financial year, series, number.
    #[cfg_attr(feature = "openapi", schema(examples("AK2627-7-000042")))]
    pub invoice_number: String,
    pub financial_year: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("29ABCDE1234F1ZW")))]
    pub supplier_gstin: Gstin,
    /// Services Accounting Code of the supply.
    #[cfg_attr(feature = "openapi", schema(examples("999799")))]
    pub sac_code: String,
    /// GST state code of the place of supply: the customer's address is not on record, so
    /// it is the supplier's state (IGST Act, section 12(2)(b)(ii)).
    #[cfg_attr(feature = "openapi", schema(examples("29")))]
    pub place_of_supply: String,
    pub taxable_value: Money,
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("18")))]
    pub gst_rate_percent: Decimal,
    pub gst: Money,
    /// `gst` split as charged: CGST + SGST within the state, IGST across states.
    #[serde(flatten)]
    pub tax: TaxLines,
    pub total: Money,
    pub gst_inclusive: bool,
}

/// What triggered a credit.
#[derive(Debug, Clone)]
pub enum Source {
    Confirm,
    Webhook {
        event: String,
        event_id: String,
    },
    /// The scheduled reconciliation, from Razorpay's own record of the order's payments.
    Reconciliation,
}

impl Source {
    pub fn name(&self) -> &str {
        match self {
            Source::Confirm => "confirm",
            Source::Webhook { event, .. } => event,
            Source::Reconciliation => "reconciliation",
        }
    }
}

pub struct CreditSettings<'a> {
    pub gst_rate_percent: Decimal,
    pub invoice_prefix: &'a str,
    pub supplier_gstin: &'a Gstin,
    pub sac_code: &'a str,
}

/// Everything one credit writes, decided before anything is written.
#[derive(Debug, Clone)]
pub struct CreditPlan {
    /// The top-up as it will be once credited.
    pub topup: TopUp,
    pub posting: Posting,
    /// The invoice series drawn, the sequence read in it (`None`: the series' first this
    /// year) and the one taken.
    pub invoice_series: u8,
    pub invoice_seq_read: Option<u64>,
    pub invoice_seq: u64,
    pub event: Envelope<WalletCredited>,
    /// The recharge-bonus offer this credit consumes (its bonus: `CreditRecord::offer_bonus`).
    pub offer: Option<Offer>,
}

/// What a credit reads first (one `BatchGetItem`, see [`crate::store::Store::credit_state`]).
pub struct CreditState {
    pub topup: TopUp,
    pub wallet: Wallet,
    /// The invoice series this attempt numbers in (drawn at random, see
    /// [`crate::domain::invoice::INVOICE_SERIES`]) and its last number this financial year; `None`:
    /// none yet.
    pub invoice_series: u8,
    pub invoice_seq: Option<u64>,
    pub financial_year: String,
    /// The webhook event was already processed.
    pub event_seen: bool,
    /// The offer the top-up names, read with the rest; `None`: it names none.
    pub offer: Option<OfferRead>,
}

/// Decides the credit `state` calls for, paid by `payment_id`. `rules_now`: the promotion
/// rules in force, read because the quote no longer held ([`TopUp::quote_holds`]); `None`:
/// the quote holds.
pub fn plan_credit(
    state: &CreditState,
    payment_id: &str,
    source: &Source,
    rules_now: Option<&[PromotionRule]>,
    settings: &CreditSettings<'_>,
    now: DateTime<Utc>,
) -> Result<CreditPlan, WalletError> {
    let CreditState { topup, wallet, invoice_series, invoice_seq: invoice_seq_read, financial_year, offer, .. } = state;
    let (invoice_series, invoice_seq_read) = (*invoice_series, *invoice_seq_read);
    let bonus = match rules_now {
        // The quote expired: the rules as they stand, for this wallet's recharge count.
        Some(rules) => {
            best_rule(rules, topup.amount, wallet.recharge_count).map_or(Money::ZERO, |r| r.bonus_for(topup.amount))
        }
        // A first-recharge-only bonus is void if another recharge got in first: the best
        // rule that still held for this recharge applies instead.
        None if topup.first_recharge_only && wallet.recharge_count > 0 => topup.fallback_bonus,
        None => topup.bonus,
    };
    // The offer as it stands now: one deactivated, used up or no longer for this customer
    // since the top-up was created gives nothing, and the payment is credited all the same.
    let offer = match offer {
        Some(OfferRead { offer: Some((offer, counters)), progress, thresholds }) => offer
            .recharge_bonus_for(progress, thresholds, wallet.recharge_count, counters.taken, topup.amount, now)
            .ok()
            .filter(|b| !b.is_zero())
            .map(|b| (offer.clone(), b)),
        _ => None,
    };
    let offer_bonus = offer.as_ref().map_or(Money::ZERO, |(_, b)| *b);
    let bonus = bonus.checked_add(offer_bonus).map_err(|_| WalletError::Overflow)?;
    let invoice_seq = invoice_seq_read.unwrap_or(0) + 1;
    // A series past 999,999 this year: refuse rather than issue a number GST does not allow.
    let number = invoice_number(settings.invoice_prefix, financial_year, invoice_series, invoice_seq)
        .ok_or(WalletError::Overflow)?;
    let GstSplit { taxable_value, gst, total } = gst_inclusive_split(topup.amount, settings.gst_rate_percent);
    let place_of_supply = settings.supplier_gstin.state_code();
    let mut movements = vec![Movement::top_up(topup.amount, &topup.id, &number)];
    if bonus > Money::ZERO {
        movements.push(Movement::top_up_bonus(bonus, &topup.id));
    }
    let posting = wallet.post(movements, now)?;
    let mut credited = topup.clone();
    credited.status = Status::Completed;
    credited.credit = Some(CreditRecord {
        payment_id: payment_id.to_owned(),
        bonus_credited: bonus,
        offer_bonus,
        credited_by: source.name().to_owned(),
        completed_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        invoice: InvoiceView {
            invoice_number: number.clone(),
            financial_year: financial_year.to_owned(),
            supplier_gstin: settings.supplier_gstin.clone(),
            sac_code: settings.sac_code.to_owned(),
            place_of_supply: place_of_supply.to_owned(),
            taxable_value,
            gst_rate_percent: settings.gst_rate_percent,
            gst,
            tax: tax_lines(gst, settings.supplier_gstin.state_code(), place_of_supply),
            total,
            gst_inclusive: true,
        },
    });
    // One top-up is credited once, so its id names the event.
    let event = Envelope::new(
        format!("wallet-credited-{}", topup.id),
        now,
        WalletCredited {
            user_id: topup.user_id.clone(),
            top_up_id: topup.id.clone(),
            amount: topup.amount,
            bonus,
            real_cash: posting.after.real_cash,
            bonus_cash: posting.after.bonus_cash,
            invoice_number: number,
        },
    );
    Ok(CreditPlan {
        topup: credited,
        posting,
        invoice_series,
        invoice_seq_read,
        invoice_seq,
        event,
        offer: offer.map(|(o, _)| o),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn topup(first_only: bool) -> TopUp {
        TopUp {
            id: "tu_1".into(),
            user_id: UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap(),
            amount: "500".parse().unwrap(),
            bonus: "100".parse().unwrap(),
            rule_id: Some("r".into()),
            first_recharge_only: first_only,
            fallback_rule_id: Some("any".into()),
            fallback_bonus: "25".parse().unwrap(),
            offer_id: None,
            razorpay_order_id: "order_1".into(),
            status: Status::Pending,
            created_at: Utc::now(),
            credit: None,
        }
    }

    fn settings(gstin: &Gstin) -> CreditSettings<'_> {
        CreditSettings { gst_rate_percent: dec!(18), invoice_prefix: "AK", supplier_gstin: gstin, sac_code: "999799" }
    }

    #[test]
    fn a_credit_posts_real_and_bonus_numbers_the_invoice_and_names_its_event() {
        let gstin = Gstin::parse("29AAGCB7383J1Z4").unwrap();
        let settings = settings(&gstin);
        let state = |wallet: Wallet, seq| CreditState {
            topup: topup(true),
            wallet,
            invoice_series: 10,
            invoice_seq: seq,
            financial_year: "2026-27".into(),
            event_seen: false,
            offer: None,
        };
        let plan =
            plan_credit(&state(Wallet::empty(), Some(41)), "pay_1", &Source::Confirm, None, &settings, Utc::now())
                .unwrap();
        assert_eq!(plan.invoice_seq, 42);
        let invoice = &plan.topup.credit.as_ref().unwrap().invoice;
        assert_eq!(invoice.invoice_number, "AK2627-A-000042");
        assert_eq!((invoice.supplier_gstin.as_str(), invoice.place_of_supply.as_str()), ("29AAGCB7383J1Z4", "29"));
        let lines = serde_json::to_value(invoice).unwrap();
        assert_eq!(
            (&lines["cgst"], &lines["sgst"], &lines["igst"]),
            (&"38.13".into(), &"38.14".into(), &"0.00".into())
        );
        assert_eq!(
            (plan.posting.after.real_cash.to_string(), plan.posting.after.bonus_cash.to_string()),
            ("500.00".into(), "100.00".into())
        );
        assert_eq!(plan.posting.entries.len(), 2);
        assert_eq!(plan.event.id, "wallet-credited-tu_1");

        // Another recharge was credited first: the first-recharge-only bonus is void, and the
        // best rule that still held applies.
        let mut w = Wallet::empty();
        w.recharge_count = 1;
        let plan = plan_credit(&state(w, None), "pay_1", &Source::Confirm, None, &settings, Utc::now()).unwrap();
        assert_eq!(plan.topup.credit.unwrap().bonus_credited, "25".parse().unwrap());
        assert_eq!(plan.posting.entries.len(), 2);
        assert_eq!(plan.invoice_seq, 1);

        // The quote expired and staff switched the rule off meanwhile: no bonus, one entry.
        let stale =
            plan_credit(&state(Wallet::empty(), None), "pay_1", &Source::Confirm, Some(&[]), &settings, Utc::now())
                .unwrap();
        assert_eq!(stale.topup.credit.unwrap().bonus_credited, Money::ZERO);
        assert_eq!(stale.posting.entries.len(), 1);
    }

    /// A bonus offer for the 3rd recharge (a milestone of 2 recharges, counted on the wallet
    /// even before the customer's progress caught up): 10 % of ₹750, at most ₹50, on top of
    /// the rule's; on the 2nd recharge, or once used up, nothing, and the money lands anyway.
    #[test]
    fn a_recharge_bonus_offer_adds_to_the_rules_bonus_when_it_still_holds() {
        use crate::domain::offer::{Milestone, MilestoneMetric, OfferCounters};
        let gstin = Gstin::parse("29AAGCB7383J1Z4").unwrap();
        let settings = settings(&gstin);
        let offer = Offer {
            offer_id: "o_0123456789ab".into(),
            name: "10% on the 3rd recharge".into(),
            free_minutes: 0,
            bonus_percent: Some(dec!(10)),
            max_bonus: Some("50".parse().unwrap()),
            first_consultation_only: false,
            milestone: Some(Milestone { metric: MilestoneMetric::Recharges, count: 2 }),
            segments: vec![],
            valid_from: Utc::now() - chrono::Duration::days(1),
            valid_until: None,
            per_customer_limit: 1,
            total_limit: Some(10),
            promotional_astrologers_only: false,
            active: true,
        };
        let state = |recharges: u64, taken: u64| {
            let mut wallet = Wallet::empty();
            wallet.recharge_count = recharges;
            CreditState {
                topup: TopUp { amount: "750".parse().unwrap(), offer_id: Some(offer.offer_id.clone()), ..topup(false) },
                wallet,
                invoice_series: 0,
                invoice_seq: None,
                financial_year: "2026-27".into(),
                event_seen: false,
                offer: Some(OfferRead {
                    offer: Some((offer.clone(), OfferCounters { taken, ..OfferCounters::default() })),
                    ..OfferRead::default()
                }),
            }
        };
        let plan = |recharges, taken| {
            plan_credit(&state(recharges, taken), "pay_1", &Source::Confirm, None, &settings, Utc::now()).unwrap()
        };
        let third = plan(2, 0);
        let credit = third.topup.credit.as_ref().unwrap();
        assert_eq!(
            (credit.offer_bonus.to_string(), credit.bonus_credited.to_string()),
            ("50.00".into(), "150.00".into())
        );
        assert_eq!(third.posting.after.bonus_cash.to_string(), "150.00");
        assert_eq!(third.offer.map(|o| o.offer_id), Some(offer.offer_id.clone()));
        for (recharges, taken) in [(1, 0), (2, 10)] {
            let none = plan(recharges, taken);
            assert_eq!(none.topup.credit.as_ref().unwrap().offer_bonus, Money::ZERO);
            assert_eq!(none.topup.credit.unwrap().bonus_credited.to_string(), "100.00");
            assert!(none.offer.is_none());
        }
        // Uncapped: 10 % of ₹333.33 rounds down to the paisa.
        let uncapped = Offer { max_bonus: None, ..offer.clone() };
        let progress = crate::domain::offer::CustomerProgress::default();
        let bonus =
            uncapped.recharge_bonus_for(&progress, &Default::default(), 2, 0, "333.33".parse().unwrap(), Utc::now());
        assert_eq!(bonus.map(|b| b.to_string()), Ok("33.33".into()));
    }

    #[test]
    fn a_quote_holds_for_thirty_minutes_from_creation() {
        let t = topup(false);
        assert!(t.quote_holds(t.created_at + QUOTE_VALID_FOR));
        assert!(!t.quote_holds(t.created_at + QUOTE_VALID_FOR + chrono::Duration::seconds(1)));
    }
}
