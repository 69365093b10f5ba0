//! The wallet: real cash and bonus (promotional) cash, and the only arithmetic that moves
//! them. Pure: the store turns a [`Posting`] into one conditional wallet update plus its
//! ledger entries, in the same transaction as the business change.
//!
//! Every change is a list of [`Movement`]s posted at once. [`Wallet::post`] refuses any
//! that would take a bucket below zero, and numbers the ledger entries by the wallet's new
//! version (a sequence, not the clock: two Lambda instances with skewed clocks can never
//! list balances out of order, and the wallet update is conditioned on the version read,
//! so two postings can never share a number).
//!
//! | operation | real | bonus | when |
//! |---|---|---|---|
//! | credit ([`Movement::top_up`], [`Movement::top_up_bonus`]) | + | + | a payment is captured |
//! | hold ([`Wallet::hold`], [`Movement::hold`]) | - | - | a booking; bonus cash first, then real |
//! | capture ([`Hold::split`]) | | | settlement: what was used stays spent |
//! | release ([`Movement::release`]) | + | + | settlement gives back what was not used, to its buckets |
//! | refund ([`Movement::refund`]) | + | + | a cancellation gives back a hold, to its buckets |
//! | debit ([`Movement::debit`]) | - | | a charge taken from real cash only |

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::money::{Amount, Money};
use crate::status::string_enum;

/// A wallet as stored: balances, lifetime totals and the version every change is
/// conditioned on. `total_credited - total_debited = real_cash + bonus_cash` always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub total_credited: Money,
    pub total_debited: Money,
    /// Credited recharges, for first-recharge-only promotions.
    pub recharge_count: u64,
    /// Bumped by every posting; ledger entries are numbered by it.
    pub version: u64,
}

/// What a customer sees of their wallet.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletView {
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub total: Money,
    pub total_credited: Money,
    pub total_debited: Money,
    pub recharge_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("not enough balance: {shortfall} more is needed")]
    Insufficient { shortfall: Money },
    #[error("amount too large")]
    Overflow,
}

impl Wallet {
    /// A new customer's wallet.
    pub fn empty() -> Self {
        Self {
            real_cash: Money::ZERO,
            bonus_cash: Money::ZERO,
            total_credited: Money::ZERO,
            total_debited: Money::ZERO,
            recharge_count: 0,
            version: 0,
        }
    }

    /// Both buckets together: what can be spent.
    pub fn total(&self) -> Money {
        // Two balances each below Decimal's limit cannot overflow when added in practice;
        // saturating to the real cash keeps this infallible for a view.
        self.real_cash.checked_add(self.bonus_cash).unwrap_or(self.real_cash)
    }

    pub fn view(&self) -> WalletView {
        WalletView {
            real_cash: self.real_cash,
            bonus_cash: self.bonus_cash,
            total: self.total(),
            total_credited: self.total_credited,
            total_debited: self.total_debited,
            recharge_count: self.recharge_count,
        }
    }

    /// What holding `amount` would take from each bucket: bonus cash first, then real cash
    /// (as in production: promotional money is spent before the customer's own).
    pub fn hold(&self, amount: Money) -> Result<Hold, WalletError> {
        let bonus = amount.min(self.bonus_cash);
        let real = amount.checked_sub(bonus).unwrap_or(Money::ZERO);
        match self.real_cash.checked_sub(real) {
            Some(_) => Ok(Hold { real, bonus }),
            None => {
                Err(WalletError::Insufficient { shortfall: real.checked_sub(self.real_cash).unwrap_or(Money::ZERO) })
            }
        }
    }

    /// Applies `movements` in order: the wallet after and one ledger entry per movement,
    /// each with both balances after it. Refused as a whole if any bucket would go below zero.
    pub fn post(&self, movements: Vec<Movement>, at: DateTime<Utc>) -> Result<Posting, WalletError> {
        let mut after = self.clone();
        after.version = self.version + 1;
        let mut entries = Vec::with_capacity(movements.len());
        for (index, m) in movements.into_iter().enumerate() {
            let shortfall = |bucket: Money, delta: Amount| WalletError::Insufficient {
                shortfall: delta.magnitude().checked_sub(bucket).unwrap_or(Money::ZERO),
            };
            after.real_cash = m.real.apply_to(after.real_cash).ok_or_else(|| shortfall(after.real_cash, m.real))?;
            after.bonus_cash =
                m.bonus.apply_to(after.bonus_cash).ok_or_else(|| shortfall(after.bonus_cash, m.bonus))?;
            for delta in [m.real, m.bonus] {
                if delta.is_negative() {
                    after.total_debited =
                        after.total_debited.checked_add(delta.magnitude()).map_err(|_| WalletError::Overflow)?;
                } else {
                    after.total_credited =
                        after.total_credited.checked_add(delta.magnitude()).map_err(|_| WalletError::Overflow)?;
                }
            }
            if m.kind == EntryKind::TopUp {
                after.recharge_count += 1;
            }
            entries.push(LedgerEntry {
                sequence: after.version,
                index: index as u32 + 1,
                kind: m.kind,
                real_delta: m.real,
                bonus_delta: m.bonus,
                real_balance_after: after.real_cash,
                bonus_balance_after: after.bonus_cash,
                reference: m.reference,
                description: m.description,
                invoice_number: m.invoice_number,
                created_at: at,
            });
        }
        Ok(Posting { before_version: self.version, after, entries })
    }
}

/// What a hold took from each bucket, kept on what it paid for (the consultation), so
/// whatever comes back goes to the bucket it came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Hold {
    pub real: Money,
    pub bonus: Money,
}

impl Hold {
    pub fn total(&self) -> Money {
        self.real.checked_add(self.bonus).unwrap_or(self.real)
    }

    /// Settlement: `(used, unused)`, with `used` at most the hold. Bonus cash is used first,
    /// as it was held first, so what goes back is real cash whenever it can be.
    pub fn split(&self, used: Money) -> (Hold, Hold) {
        let used = used.min(self.total());
        let used_bonus = used.min(self.bonus);
        let used_real = used.checked_sub(used_bonus).unwrap_or(Money::ZERO);
        let unused = Hold {
            real: self.real.checked_sub(used_real).unwrap_or(Money::ZERO),
            bonus: self.bonus.checked_sub(used_bonus).unwrap_or(Money::ZERO),
        };
        (Hold { real: used_real, bonus: used_bonus }, unused)
    }
}

string_enum!(
    /// The kind of a ledger entry.
    EntryKind {
        TopUp => "top_up",
        TopUpBonus => "top_up_bonus",
        Hold => "hold",
        Release => "release",
        Refund => "refund",
        Debit => "debit",
        /// An astrologer's share of a consultation, into their earnings.
        Earning => "earning",
    }
);

impl EntryKind {
    /// Bonus cash given away, not paid for (shown as promotional).
    pub fn promotional(self) -> bool {
        self == EntryKind::TopUpBonus
    }
}

string_enum!(
    /// What a ledger entry is about.
    ReferenceKind { TopUp => "top_up", Consultation => "consultation" }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    #[serde(rename = "reference_type")]
    pub kind: ReferenceKind,
    #[serde(rename = "reference_id")]
    pub id: String,
}

impl Reference {
    pub fn top_up(id: &str) -> Self {
        Self { kind: ReferenceKind::TopUp, id: id.to_owned() }
    }
    pub fn consultation(id: &str) -> Self {
        Self { kind: ReferenceKind::Consultation, id: id.to_owned() }
    }
}

/// One change to the wallet's buckets, before it is posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: EntryKind,
    pub real: Amount,
    pub bonus: Amount,
    pub reference: Reference,
    pub description: String,
    pub invoice_number: Option<String>,
}

impl Movement {
    fn new(kind: EntryKind, real: Amount, bonus: Amount, reference: Reference, description: &str) -> Self {
        Self { kind, real, bonus, reference, description: description.to_owned(), invoice_number: None }
    }

    /// A paid recharge, into real cash.
    pub fn top_up(amount: Money, top_up_id: &str, invoice_number: &str) -> Self {
        let mut m = Self::new(
            EntryKind::TopUp,
            Amount::credit(amount),
            Amount::ZERO,
            Reference::top_up(top_up_id),
            &format!("Wallet recharge, invoice {invoice_number}"),
        );
        m.invoice_number = Some(invoice_number.to_owned());
        m
    }

    /// The promotional bonus on a recharge, into bonus cash.
    pub fn top_up_bonus(bonus: Money, top_up_id: &str) -> Self {
        Self::new(
            EntryKind::TopUpBonus,
            Amount::ZERO,
            Amount::credit(bonus),
            Reference::top_up(top_up_id),
            "Bonus cash on recharge",
        )
    }

    /// Takes a hold out of the buckets.
    pub fn hold(hold: Hold, reference: Reference, description: &str) -> Self {
        Self::new(EntryKind::Hold, Amount::debit(hold.real), Amount::debit(hold.bonus), reference, description)
    }

    /// Gives back the unused part of a hold, to the buckets it came from.
    pub fn release(unused: Hold, reference: Reference, description: &str) -> Self {
        Self::new(EntryKind::Release, Amount::credit(unused.real), Amount::credit(unused.bonus), reference, description)
    }

    /// Gives back a hold (or part of it) on a cancellation, to the buckets it came from.
    pub fn refund(refunded: Hold, reference: Reference, description: &str) -> Self {
        Self::new(
            EntryKind::Refund,
            Amount::credit(refunded.real),
            Amount::credit(refunded.bonus),
            reference,
            description,
        )
    }

    /// An astrologer's share of a consultation, into the real cash of their earnings account.
    pub fn earning(amount: Money, booking_id: &str) -> Self {
        Self::new(
            EntryKind::Earning,
            Amount::credit(amount),
            Amount::ZERO,
            Reference::consultation(booking_id),
            &format!("Earnings from consultation {booking_id}"),
        )
    }

    /// Takes `amount` from real cash.
    pub fn debit(amount: Money, reference: Reference, description: &str) -> Self {
        Self::new(EntryKind::Debit, Amount::debit(amount), Amount::ZERO, reference, description)
    }
}

/// A ledger entry: one movement, with both balances after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The wallet version this entry's posting produced.
    pub sequence: u64,
    /// Its place within the posting, from 1.
    pub index: u32,
    pub kind: EntryKind,
    pub real_delta: Amount,
    pub bonus_delta: Amount,
    pub real_balance_after: Money,
    pub bonus_balance_after: Money,
    pub reference: Reference,
    pub description: String,
    pub invoice_number: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a customer sees of a ledger entry (`GET /wallet/transactions`).
impl Serialize for LedgerEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("LedgerEntry", 12)?;
        out.serialize_field("entry_id", &self.entry_id())?;
        out.serialize_field("type", &self.kind)?;
        out.serialize_field("real_delta", &self.real_delta)?;
        out.serialize_field("bonus_delta", &self.bonus_delta)?;
        out.serialize_field("real_balance_after", &self.real_balance_after)?;
        out.serialize_field("bonus_balance_after", &self.bonus_balance_after)?;
        out.serialize_field("reference_type", &self.reference.kind)?;
        out.serialize_field("reference_id", &self.reference.id)?;
        if let Some(number) = &self.invoice_number {
            out.serialize_field("invoice_number", number)?;
        }
        out.serialize_field("promotional", &self.kind.promotional())?;
        out.serialize_field("description", &self.description)?;
        out.serialize_field("created_at", &crate::time::text(self.created_at))?;
        out.end()
    }
}

impl LedgerEntry {
    /// Unique within the wallet, stable, and in posting order: `000000000007-2`.
    pub fn entry_id(&self) -> String {
        format!("{:012}-{}", self.sequence, self.index)
    }
}

/// A wallet change ready to write: the wallet after (conditioned on `before_version`) and
/// its ledger entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub before_version: u64,
    pub after: Wallet,
    pub entries: Vec<LedgerEntry>,
}

/// Where a wallet and its ledger disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerMismatch {
    #[error("entry {entry}: {bucket} balance after is {recorded}, the running sum is {expected}")]
    RunningBalance { entry: String, bucket: &'static str, recorded: Money, expected: String },
    #[error("entry {entry} takes the {bucket} balance below zero")]
    Negative { entry: String, bucket: &'static str },
    #[error("{bucket} cash is {balance} but its ledger sums to {sum}")]
    Balance { bucket: &'static str, balance: Money, sum: String },
    #[error("lifetime credited minus debited is not the balance")]
    Totals,
    #[error("entries are not in posting order at {entry}")]
    Order { entry: String },
}

/// Checks a wallet against its whole ledger (oldest first): entries in posting order, each
/// entry's balances the running sums, never below zero, the sums equal to the balances per
/// bucket, and the lifetime totals consistent. For tests and for operators.
pub fn check_ledger(wallet: &Wallet, entries: &[LedgerEntry]) -> Result<(), LedgerMismatch> {
    use rust_decimal::Decimal;
    let (mut real, mut bonus) = (Decimal::ZERO, Decimal::ZERO);
    let mut last = (0u64, 0u32);
    for e in entries {
        if (e.sequence, e.index) <= last {
            return Err(LedgerMismatch::Order { entry: e.entry_id() });
        }
        last = (e.sequence, e.index);
        real += e.real_delta.decimal();
        bonus += e.bonus_delta.decimal();
        for (bucket, sum, recorded) in [("real", real, e.real_balance_after), ("bonus", bonus, e.bonus_balance_after)] {
            if sum.is_sign_negative() && !sum.is_zero() {
                return Err(LedgerMismatch::Negative { entry: e.entry_id(), bucket });
            }
            if recorded.decimal() != sum {
                return Err(LedgerMismatch::RunningBalance {
                    entry: e.entry_id(),
                    bucket,
                    recorded,
                    expected: sum.to_string(),
                });
            }
        }
    }
    for (bucket, sum, balance) in [("real", real, wallet.real_cash), ("bonus", bonus, wallet.bonus_cash)] {
        if balance.decimal() != sum {
            return Err(LedgerMismatch::Balance { bucket, balance, sum: sum.to_string() });
        }
    }
    if wallet.total_credited.decimal() - wallet.total_debited.decimal() != real + bonus {
        return Err(LedgerMismatch::Totals);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn wallet(real: &str, bonus: &str) -> Wallet {
        let mut w = Wallet::empty();
        let p = w
            .post(vec![Movement::top_up(m(real), "tu_1", "AK/1"), Movement::top_up_bonus(m(bonus), "tu_1")], Utc::now())
            .unwrap();
        w = p.after;
        w
    }

    #[test]
    fn holds_take_bonus_first_then_real_and_say_the_shortfall() {
        let w = wallet("100", "30");
        assert_eq!(w.hold(m("20")).unwrap(), Hold { real: m("0"), bonus: m("20") });
        assert_eq!(w.hold(m("50")).unwrap(), Hold { real: m("20"), bonus: m("30") });
        assert_eq!(w.hold(m("130")).unwrap(), Hold { real: m("100"), bonus: m("30") });
        assert_eq!(w.hold(m("130.01")), Err(WalletError::Insufficient { shortfall: m("0.01") }));
        assert_eq!(Wallet::empty().hold(m("99")), Err(WalletError::Insufficient { shortfall: m("99") }));
    }

    #[test]
    fn a_posting_numbers_entries_by_version_with_balances_after_each() {
        let w = wallet("500", "100");
        assert_eq!((w.version, w.recharge_count, w.total_credited), (1, 1, m("600")));
        let hold = w.hold(m("150")).unwrap();
        let booking = Reference::consultation("AT00000001");
        let p = w.post(vec![Movement::hold(hold, booking.clone(), "Consultation AT00000001")], Utc::now()).unwrap();
        assert_eq!(p.before_version, 1);
        assert_eq!((p.after.real_cash, p.after.bonus_cash, p.after.version), (m("450"), m("0"), 2));
        assert_eq!(p.after.total_debited, m("150"));
        let e = &p.entries[0];
        assert_eq!((e.entry_id().as_str(), e.real_delta.to_string().as_str()), ("000000000002-1", "-50.00"));
        assert_eq!((e.real_balance_after, e.bonus_balance_after), (m("450"), m("0")));

        // Settle 40 of the 150: bonus was used first, so 110 of real cash goes back.
        let (used, unused) = hold.split(m("40"));
        assert_eq!(used, Hold { real: m("0"), bonus: m("40") });
        assert_eq!(unused, Hold { real: m("50"), bonus: m("60") });
        let settled = p.after.post(vec![Movement::release(unused, booking, "Unused minutes")], Utc::now()).unwrap();
        assert_eq!((settled.after.real_cash, settled.after.bonus_cash), (m("500"), m("60")));
    }

    #[test]
    fn nothing_goes_below_zero_and_a_refused_posting_changes_nothing() {
        let w = wallet("10", "0");
        let err = w.post(vec![Movement::debit(m("10.01"), Reference::top_up("tu_1"), "chargeback")], Utc::now());
        assert_eq!(err, Err(WalletError::Insufficient { shortfall: m("0.01") }));
        let too_much = Hold { real: m("5"), bonus: m("1") };
        assert!(w.post(vec![Movement::hold(too_much, Reference::consultation("AT1"), "x")], Utc::now()).is_err());
        assert_eq!(w, wallet("10", "0"));
    }

    #[test]
    fn the_ledger_check_finds_what_does_not_add_up() {
        let mut w = Wallet::empty();
        let mut ledger = Vec::new();
        for (real, bonus) in [("500", "100"), ("20", "0")] {
            let p = w
                .post(vec![Movement::top_up(m(real), "tu", "AK"), Movement::top_up_bonus(m(bonus), "tu")], Utc::now())
                .unwrap();
            ledger.extend(p.entries);
            w = p.after;
        }
        assert_eq!(check_ledger(&w, &ledger), Ok(()));
        let mut off = w.clone();
        off.real_cash = m("519");
        assert!(matches!(check_ledger(&off, &ledger), Err(LedgerMismatch::Balance { bucket: "real", .. })));
        let mut reordered = ledger.clone();
        reordered.swap(0, 2);
        assert!(check_ledger(&w, &reordered).is_err());
        let mut tampered = ledger.clone();
        tampered[1].bonus_balance_after = m("99");
        assert!(matches!(check_ledger(&w, &tampered), Err(LedgerMismatch::RunningBalance { .. })));
        assert!(check_ledger(&w, &ledger[..2]).is_err());
    }

    proptest! {
        /// Any sequence of top-ups, holds, settlements and refunds keeps every invariant.
        #[test]
        fn every_sequence_of_operations_keeps_the_ledger_equal_to_the_balance(
            ops in proptest::collection::vec((0u8..4, 0u64..100_000, 0u64..100_000), 1..40)
        ) {
            let mut w = Wallet::empty();
            let mut ledger = Vec::new();
            let mut holds: Vec<Hold> = Vec::new();
            for (op, a, b) in ops {
                let reference = Reference::consultation("AT1");
                let movements = match op {
                    0 => vec![Movement::top_up(Money::from_paise(a), "tu", "AK"), Movement::top_up_bonus(Money::from_paise(b), "tu")],
                    1 => match w.hold(Money::from_paise(a)) {
                        Ok(h) => { holds.push(h); vec![Movement::hold(h, reference, "hold")] }
                        Err(WalletError::Insufficient { shortfall }) => {
                            prop_assert_eq!(shortfall.checked_add(w.total()).unwrap(), Money::from_paise(a));
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    },
                    2 => match holds.pop() {
                        Some(h) => {
                            let (used, unused) = h.split(Money::from_paise(a));
                            prop_assert_eq!(used.total().checked_add(unused.total()).unwrap(), h.total());
                            vec![Movement::release(unused, reference, "settle")]
                        }
                        None => continue,
                    },
                    _ => match holds.pop() {
                        Some(h) => vec![Movement::refund(h, reference, "cancel")],
                        None => continue,
                    },
                };
                let p = w.post(movements, Utc::now()).unwrap();
                prop_assert_eq!(p.after.version, w.version + 1);
                ledger.extend(p.entries);
                w = p.after;
                prop_assert_eq!(check_ledger(&w, &ledger), Ok(()));
            }
        }
    }
}
