//! Refunds and chargebacks of a recharge: what Razorpay's `refund.processed` and
//! `payment.dispute.*` events do to the wallet. Pure; [`crate::store::reversals`] writes
//! what [`plan`] decides in one transaction.
//!
//! - A **refund** (each refund id once) takes back its share of the recharge: its amount of
//!   real cash, and the same fraction of the bonus the recharge added.
//! - A **dispute** takes back its share while it is open or lost, and gives it back when it
//!   is won or closed. Its events may come twice or out of order: each carries a stage
//!   ([`DisputeStage`]), and only a later stage than the one recorded changes anything, so a
//!   `won` that arrives before `created` leaves the wallet as it was.
//!
//! What was already spent cannot be taken: it becomes the wallet's debt
//! ([`crate::domain::wallet::Wallet::take_back`]), paid by the next credits. The top-up records how
//! much of it is reversed, so refunds and disputes together never take back more than it
//! added.

use chrono::{DateTime, Utc};

use crate::domain::events::{Envelope, WalletReversed};
use crate::domain::money::Money;
use crate::domain::topup::TopUp;
use crate::domain::wallet::{Hold, Movement, Posting, Reference, Wallet, WalletError};

/// How much of a recharge is taken back: of its real cash and of its bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share {
    pub real: Money,
    pub bonus: Money,
}

impl Share {
    pub fn total(&self) -> Money {
        self.real.checked_add(self.bonus).unwrap_or(self.real)
    }
}

/// The share a further `requested` of the payment takes back, of a recharge of `amount` that
/// credited `bonus`, `already` of it being taken back: at most what is left, and the bonus in
/// proportion (rounded down, the last paisa with the last rupee).
pub fn further_share(amount: Money, bonus: Money, already: Share, requested: Money) -> Share {
    let real = requested.min(amount.checked_sub(already.real).unwrap_or(Money::ZERO));
    let real_after = already.real.checked_add(real).unwrap_or(amount);
    let bonus_after = if real_after >= amount || amount == Money::ZERO {
        bonus
    } else {
        let paise = u128::from(bonus.paise()) * u128::from(real_after.paise()) / u128::from(amount.paise());
        Money::from_paise(paise as u64)
    };
    Share { real, bonus: bonus_after.checked_sub(already.bonus).unwrap_or(Money::ZERO) }
}

/// One share fewer: what a won dispute gives back.
pub fn less(already: Share, back: Share) -> Share {
    Share {
        real: already.real.checked_sub(back.real).unwrap_or(Money::ZERO),
        bonus: already.bonus.checked_sub(back.bonus).unwrap_or(Money::ZERO),
    }
}

pub use crate::domain::events::Cause;

/// Where a dispute stands, from Razorpay's `phase` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisputeStage {
    /// Later stages rank higher: phases in order (a won chargeback can come back as
    /// pre-arbitration), and within a phase open < under review < decided.
    pub rank: u32,
    /// Whether the customer's money is held back at this stage.
    pub holds_money: bool,
}

/// `None`: a phase or status we do not know (logged, changes nothing).
pub fn dispute_stage(phase: &str, status: &str) -> Option<DisputeStage> {
    let phase_rank = match phase {
        // A request for information: no money is at stake yet.
        "retrieval" => 0,
        "fraud" | "chargeback" => 1,
        "pre_arbitration" => 2,
        "arbitration" => 3,
        _ => return None,
    };
    let (status_rank, holds_money) = match status {
        "open" => (0, phase_rank > 0),
        "under_review" => (1, phase_rank > 0),
        "lost" => (2, true),
        "won" | "closed" => (2, false),
        _ => return None,
    };
    Some(DisputeStage { rank: phase_rank * 10 + status_rank, holds_money })
}

/// A dispute as recorded: the stage reached, and what it holds back now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeRecord {
    pub id: String,
    pub stage: DisputeStage,
    /// The recharge's share it reversed (while it holds money).
    pub share: Share,
    /// What that took from the buckets, and what it left owed.
    pub taken: Hold,
    pub owed: Money,
    /// Bumped by every change; each is conditioned on it.
    pub version: u64,
}

/// What a refund or dispute event asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Refund { id: String, amount: Money },
    Dispute { id: String, amount: Money, stage: DisputeStage },
}

/// What a reversal reads first (one `BatchGetItem`): the completed top-up, what of it is
/// already taken back, the wallet, and what is recorded about this refund or dispute.
#[derive(Debug, Clone)]
pub struct ReversalState {
    pub topup: TopUp,
    pub reversed: Share,
    pub wallet: Wallet,
    /// A refund: it was applied before.
    pub refund_seen: bool,
    pub dispute: Option<DisputeRecord>,
}

/// Everything one reversal writes.
#[derive(Debug, Clone)]
pub struct ReversalPlan {
    /// What of the top-up is reversed after (with the value read, for the condition).
    pub reversed_read: Share,
    pub reversed_after: Share,
    /// `None`: only the dispute's stage moves.
    pub posting: Option<Posting>,
    /// The dispute after, to write conditioned on the version read; `None` for a refund.
    pub dispute_after: Option<DisputeRecord>,
    pub dispute_version_read: Option<u64>,
    pub event: Option<Envelope<WalletReversed>>,
}

/// What to do about `request`.
#[derive(Debug, Clone)]
pub enum Decision {
    /// A refund applied before, or a dispute stage no later than the one recorded.
    AlreadyDone,
    Apply(Box<ReversalPlan>),
}

/// Decides what `request` does to `state`'s wallet.
pub fn plan(state: &ReversalState, request: &Request, now: DateTime<Utc>) -> Result<Decision, WalletError> {
    let topup = &state.topup;
    let bonus = topup.credit.as_ref().map_or(Money::ZERO, |c| c.bonus_credited);
    let take = |id: &str, amount: Money, reference: Reference, cause: Cause| -> Result<_, WalletError> {
        let share = further_share(topup.amount, bonus, state.reversed, amount);
        let (taken, owed) = state.wallet.take_back(share.real, share.bonus);
        let what = match cause {
            Cause::Refund => "Refund of recharge",
            _ => "Chargeback of recharge",
        };
        // Nothing left to take back (refunded or charged back already): no entry, no news.
        let (posting, event) = if share.total() == Money::ZERO {
            (None, None)
        } else {
            let movement = Movement::reversal(taken, owed, reference, &format!("{what} {}", topup.id));
            let posting = state.wallet.post(vec![movement], now)?;
            let event = event(state, cause, id, share.total(), &posting, now);
            (Some(posting), Some(event))
        };
        let after = Share {
            real: state.reversed.real.checked_add(share.real).map_err(|_| WalletError::Overflow)?,
            bonus: state.reversed.bonus.checked_add(share.bonus).map_err(|_| WalletError::Overflow)?,
        };
        Ok((share, taken, owed, posting, event, after))
    };
    match request {
        Request::Refund { id, amount } => {
            if state.refund_seen {
                return Ok(Decision::AlreadyDone);
            }
            let (_, _, _, posting, event, after) = take(id, *amount, Reference::refund(id), Cause::Refund)?;
            Ok(Decision::Apply(Box::new(ReversalPlan {
                reversed_read: state.reversed,
                reversed_after: after,
                posting,
                dispute_after: None,
                dispute_version_read: None,
                event,
            })))
        }
        Request::Dispute { id, amount, stage } => {
            let recorded = state.dispute.as_ref();
            if recorded.is_some_and(|d| d.stage.rank >= stage.rank) {
                return Ok(Decision::AlreadyDone);
            }
            let holding = recorded.is_some_and(|d| d.stage.holds_money);
            let version = recorded.map_or(0, |d| d.version);
            let mut next = recorded.cloned().unwrap_or(DisputeRecord {
                id: id.clone(),
                stage: *stage,
                share: Share::default(),
                taken: Hold::default(),
                owed: Money::ZERO,
                version,
            });
            next.stage = *stage;
            next.version = version + 1;
            let mut plan = ReversalPlan {
                reversed_read: state.reversed,
                reversed_after: state.reversed,
                posting: None,
                dispute_after: None,
                dispute_version_read: recorded.map(|d| d.version),
                event: None,
            };
            // The suffix names the stage, so each change of a dispute is its own event.
            let event_id = format!("{id}-{}", stage.rank);
            match (holding, stage.holds_money) {
                (false, true) => {
                    let (share, taken, owed, posting, event, after) =
                        take(&event_id, *amount, Reference::dispute(id), Cause::Chargeback)?;
                    (next.share, next.taken, next.owed) = (share, taken, owed);
                    (plan.posting, plan.event, plan.reversed_after) = (posting, event, after);
                }
                (true, false) if recorded.is_some_and(|d| d.share.total() > Money::ZERO) => {
                    let held = recorded.map(|d| (d.share, d.taken, d.owed)).unwrap_or_default();
                    let (share, taken, owed) = held;
                    // The debt it recorded is forgiven as far as it is still owed; what later
                    // credits paid of it comes back as real cash.
                    let forgiven = owed.min(state.wallet.debt);
                    let paid = owed.checked_sub(forgiven).unwrap_or(Money::ZERO);
                    let back = Hold { real: taken.real.checked_add(paid).unwrap_or(taken.real), bonus: taken.bonus };
                    let movement = Movement::reversal_undone(
                        back,
                        forgiven,
                        Reference::dispute(id),
                        &format!("Dispute closed: recharge {} restored", topup.id),
                    );
                    let posting = state.wallet.post(vec![movement], now)?;
                    plan.event = Some(event(state, Cause::ChargebackReversed, &event_id, share.total(), &posting, now));
                    plan.posting = Some(posting);
                    plan.reversed_after = less(state.reversed, share);
                    (next.share, next.taken, next.owed) = (Share::default(), Hold::default(), Money::ZERO);
                }
                // Still holding, or still not: only the stage is recorded.
                _ => {}
            }
            plan.dispute_after = Some(next);
            Ok(Decision::Apply(Box::new(plan)))
        }
    }
}

fn event(
    state: &ReversalState,
    cause: Cause,
    reference_id: &str,
    amount: Money,
    posting: &Posting,
    now: DateTime<Utc>,
) -> Envelope<WalletReversed> {
    let w = &posting.after;
    Envelope::new(
        format!("wallet-{}-{reference_id}", cause.as_str()),
        now,
        WalletReversed {
            user_id: state.topup.user_id.clone(),
            top_up_id: state.topup.id.clone(),
            cause,
            reference_id: reference_id.to_owned(),
            amount,
            real_cash: w.real_cash,
            bonus_cash: w.bonus_cash,
            debt: w.debt,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::topup::{CreditRecord, InvoiceView, Status};
    use crate::domain::user::UserId;
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn a_share_is_at_most_what_is_left_with_the_bonus_in_proportion() {
        let none = Share::default();
        assert_eq!(further_share(m("500"), m("100"), none, m("500")), Share { real: m("500"), bonus: m("100") });
        assert_eq!(further_share(m("500"), m("100"), none, m("200")), Share { real: m("200"), bonus: m("40") });
        let after = Share { real: m("200"), bonus: m("40") };
        assert_eq!(further_share(m("500"), m("100"), after, m("900")), Share { real: m("300"), bonus: m("60") });
        let all = Share { real: m("500"), bonus: m("100") };
        assert_eq!(further_share(m("500"), m("100"), all, m("1")), Share::default());
        // Thirds of 10.00 bonus: 3.33, 3.33, and the last takes 3.34.
        let mut taken = none;
        let mut bonuses = Vec::new();
        for _ in 0..3 {
            let s = further_share(m("300"), m("10"), taken, m("100"));
            bonuses.push(s.bonus.to_string());
            taken = Share {
                real: taken.real.checked_add(s.real).unwrap(),
                bonus: taken.bonus.checked_add(s.bonus).unwrap(),
            };
        }
        assert_eq!(bonuses, ["3.33", "3.33", "3.34"]);
    }

    #[test]
    fn dispute_stages_only_move_forward_and_hold_money_until_won() {
        let s = |p, st| dispute_stage(p, st).unwrap();
        assert!(s("chargeback", "open").holds_money);
        assert!(!s("retrieval", "open").holds_money);
        assert!(!s("chargeback", "won").holds_money && !s("chargeback", "closed").holds_money);
        assert!(s("chargeback", "lost").holds_money);
        assert!(s("chargeback", "open").rank < s("chargeback", "under_review").rank);
        assert!(s("chargeback", "under_review").rank < s("chargeback", "won").rank);
        assert!(s("chargeback", "won").rank < s("pre_arbitration", "open").rank);
        assert_eq!(dispute_stage("chargeback", "someday"), None);
        assert_eq!(dispute_stage("mystery", "open"), None);
    }

    fn state(wallet: Wallet) -> ReversalState {
        let gstin = crate::domain::invoice::Gstin::parse("29AAGCB7383J1Z4").unwrap();
        let topup = TopUp {
            id: "tu_1".into(),
            user_id: UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap(),
            amount: m("500"),
            bonus: m("100"),
            rule_id: None,
            first_recharge_only: false,
            fallback_rule_id: None,
            fallback_bonus: Money::ZERO,
            offer_id: None,
            razorpay_order_id: "order_1".into(),
            status: Status::Completed,
            created_at: Utc::now(),
            credit: Some(CreditRecord {
                payment_id: "pay_1".into(),
                bonus_credited: m("100"),
                offer_bonus: Money::ZERO,
                credited_by: "confirm".into(),
                completed_at: String::new(),
                invoice: InvoiceView {
                    invoice_number: "AK2627-0-000001".into(),
                    financial_year: "2026-27".into(),
                    supplier_gstin: gstin,
                    sac_code: "999799".into(),
                    place_of_supply: "29".into(),
                    taxable_value: m("423.73"),
                    gst_rate_percent: 18.into(),
                    gst: m("76.27"),
                    tax: crate::domain::invoice::TaxLines { cgst: m("38.13"), sgst: m("38.14"), igst: m("0") },
                    total: m("500"),
                    gst_inclusive: true,
                },
            }),
        };
        ReversalState { topup, reversed: Share::default(), wallet, refund_seen: false, dispute: None }
    }

    fn funded(real: &str, bonus: &str) -> Wallet {
        Wallet { real_cash: m(real), bonus_cash: m(bonus), ..Wallet::empty() }
    }

    fn apply(state: &mut ReversalState, request: &Request) -> bool {
        match plan(state, request, Utc::now()).unwrap() {
            Decision::AlreadyDone => false,
            Decision::Apply(p) => {
                if let Some(posting) = p.posting {
                    state.wallet = posting.after;
                }
                state.reversed = p.reversed_after;
                if let Some(d) = p.dispute_after {
                    state.dispute = Some(d);
                }
                true
            }
        }
    }

    fn dispute(phase: &str, status: &str) -> Request {
        Request::Dispute { id: "disp_1".into(), amount: m("500"), stage: dispute_stage(phase, status).unwrap() }
    }

    #[test]
    fn a_chargeback_takes_the_recharge_back_and_winning_it_restores_the_wallet() {
        // 500 + 100 credited, 400 spent: 200 real left.
        let mut s = state(funded("200", "0"));
        assert!(apply(&mut s, &dispute("chargeback", "open")));
        assert_eq!((s.wallet.real_cash, s.wallet.bonus_cash, s.wallet.debt), (m("0"), m("0"), m("400")));
        assert_eq!(s.reversed, Share { real: m("500"), bonus: m("100") });
        // The same event again, and a stage that comes late, change nothing.
        assert!(!apply(&mut s, &dispute("chargeback", "open")));
        assert!(apply(&mut s, &dispute("chargeback", "under_review")));
        assert_eq!(s.wallet.debt, m("400"));
        assert!(apply(&mut s, &dispute("chargeback", "won")));
        assert_eq!((s.wallet.real_cash, s.wallet.debt), (m("200"), m("0")));
        assert_eq!(s.reversed, Share::default());
        assert!(!apply(&mut s, &dispute("chargeback", "open")), "an open after won is stale");
    }

    #[test]
    fn a_dispute_won_before_it_was_created_nets_zero() {
        let mut s = state(funded("600", "100"));
        assert!(apply(&mut s, &dispute("chargeback", "won")));
        assert!(!apply(&mut s, &dispute("chargeback", "open")));
        assert_eq!((s.wallet.real_cash, s.wallet.bonus_cash, s.wallet.version), (m("600"), m("100"), 0));
    }

    #[test]
    fn refunds_apply_once_each_and_never_take_back_more_than_the_recharge() {
        let mut s = state(funded("600", "100"));
        assert!(apply(&mut s, &Request::Refund { id: "rfnd_1".into(), amount: m("200") }));
        assert_eq!((s.wallet.real_cash, s.wallet.bonus_cash), (m("400"), m("60")));
        s.refund_seen = true;
        assert!(!apply(&mut s, &Request::Refund { id: "rfnd_1".into(), amount: m("200") }));
        s.refund_seen = false;
        assert!(apply(&mut s, &Request::Refund { id: "rfnd_2".into(), amount: m("900") }));
        assert_eq!((s.wallet.real_cash, s.wallet.bonus_cash), (m("100"), m("0")));
        // A chargeback after a full refund has nothing left to take.
        assert!(apply(&mut s, &dispute("chargeback", "open")));
        assert_eq!((s.wallet.real_cash, s.wallet.debt), (m("100"), m("0")));
    }

    proptest! {
        /// Whatever order refunds and dispute events arrive in, and however often: the
        /// wallet never goes below zero, at most the recharge is taken back, and once every
        /// dispute is decided, the wallet holds what it had less what the refunds and the
        /// lost disputes took (spent money owed as debt).
        #[test]
        fn any_order_of_refunds_and_dispute_events_ends_consistent(
            events in proptest::collection::vec((0u8..7, 1u64..60_000), 1..25),
            start_real in 0u64..80_000,
        ) {
            let mut s = state(Wallet { real_cash: Money::from_paise(start_real), ..Wallet::empty() });
            let before = s.wallet.total();
            let stages = [("chargeback", "open"), ("chargeback", "under_review"), ("chargeback", "won"),
                          ("chargeback", "lost"), ("pre_arbitration", "open"), ("pre_arbitration", "won")];
            let mut refunded = 0u64;
            for (i, (kind, paise)) in events.into_iter().enumerate() {
                let request = if kind == 6 {
                    Request::Refund { id: format!("rfnd_{i}"), amount: Money::from_paise(paise) }
                } else {
                    let (p, st) = stages[kind as usize];
                    Request::Dispute { id: "disp_1".into(), amount: Money::from_paise(paise), stage: dispute_stage(p, st).unwrap() }
                };
                let reversed_before = s.reversed.real;
                apply(&mut s, &request);
                if kind == 6 {
                    refunded += s.reversed.real.paise() - reversed_before.paise();
                }
                prop_assert!(s.reversed.real <= s.topup.amount && s.reversed.bonus <= m("100"));
                prop_assert!(s.wallet.debt == Money::ZERO || s.wallet.total() == Money::ZERO);
            }
            let held = s.dispute.as_ref().map_or(Money::ZERO, |d| d.share.total());
            // Value = cash - debt, in paise: it fell by exactly what was reversed.
            let value = s.wallet.total().paise() as i128 - s.wallet.debt.paise() as i128;
            let reversed = s.reversed.total().paise() as i128;
            prop_assert_eq!(value, before.paise() as i128 - reversed);
            prop_assert!(s.reversed.real.paise() >= refunded);
            prop_assert_eq!(s.reversed.total().paise() as i128 - held.paise() as i128 >= 0, true);
        }
    }
}
