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
//! | reversal ([`Movement::reversal`]) | - | - | a refund or chargeback takes back a recharge; what is already spent becomes debt |
//! | reversal undone ([`Movement::reversal_undone`]) | + | + | a dispute won gives it back, debt first |
//! | debt settlement (made by [`Wallet::post`]) | - | - | any credit to a wallet in debt pays the debt first |
//!
//! **Debt.** A refund or a chargeback takes back the real cash and the bonus its recharge
//! added. What the customer already spent cannot be taken, so it is recorded as `debt`
//! instead, and no balance goes below zero. While there is debt, both balances are zero
//! (the posting that makes a credit also settles the debt from it), so nothing can be
//! spent; the debt has its own running balance in the ledger (`debt_delta`, `debt_after`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::money::{Amount, Money};
use crate::domain::status::string_enum;

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
    /// Owed after a refund or chargeback took back money already spent. Never above zero
    /// while either balance is: see the module doc.
    pub debt: Money,
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
    /// Owed after a refund or a chargeback took back a recharge already spent: the next
    /// credits pay it before anything can be spent.
    pub debt: Money,
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
            debt: Money::ZERO,
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
            debt: self.debt,
        }
    }

    /// What holding `amount` would take from each bucket: bonus cash first, then real cash
    /// (as in production: promotional money is spent before the customer's own). The
    /// shortfall of a wallet in debt includes the debt, which a recharge pays first.
    pub fn hold(&self, amount: Money) -> Result<Hold, WalletError> {
        let bonus = amount.min(self.bonus_cash);
        let real = amount.checked_sub(bonus).unwrap_or(Money::ZERO);
        match self.real_cash.checked_sub(real) {
            Some(_) if self.debt == Money::ZERO => Ok(Hold { real, bonus }),
            _ => {
                let short = real.checked_sub(self.real_cash).unwrap_or(Money::ZERO);
                Err(WalletError::Insufficient {
                    shortfall: short.checked_add(self.debt).map_err(|_| WalletError::Overflow)?,
                })
            }
        }
    }

    /// What taking back `real` and `bonus` (a recharge refunded or charged back) takes from
    /// each bucket, and what remains owed: each bucket gives what it has of its own part,
    /// then what it has left towards the other's; the rest is debt.
    pub fn take_back(&self, real: Money, bonus: Money) -> (Hold, Money) {
        let own_real = real.min(self.real_cash);
        let own_bonus = bonus.min(self.bonus_cash);
        let short = |want: Money, got: Money| want.checked_sub(got).unwrap_or(Money::ZERO);
        let left = |have: Money, got: Money| have.checked_sub(got).unwrap_or(Money::ZERO);
        let real_for_bonus = short(bonus, own_bonus).min(left(self.real_cash, own_real));
        let bonus_for_real = short(real, own_real).min(left(self.bonus_cash, own_bonus));
        let taken = Hold {
            real: own_real.checked_add(real_for_bonus).unwrap_or(own_real),
            bonus: own_bonus.checked_add(bonus_for_real).unwrap_or(own_bonus),
        };
        let wanted = real.checked_add(bonus).unwrap_or(real);
        (taken, short(wanted, taken.total()))
    }

    /// Applies `movements` in order: the wallet after and one ledger entry per movement,
    /// each with the balances after it. Refused as a whole if any bucket would go below zero.
    /// A wallet left with both debt and cash pays the debt from the cash in one more entry
    /// (a [`EntryKind::DebtSettlement`] on the last movement's reference).
    pub fn post(&self, mut movements: Vec<Movement>, at: DateTime<Utc>) -> Result<Posting, WalletError> {
        let mut after = self.clone();
        after.version = self.version + 1;
        let mut entries = Vec::with_capacity(movements.len() + 1);
        let mut index = 0;
        while index < movements.len() {
            let m = movements[index].clone();
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
            after.debt = m.debt.apply_to(after.debt).ok_or(WalletError::Insufficient { shortfall: Money::ZERO })?;
            if m.kind == EntryKind::TopUp {
                after.recharge_count += 1;
            }
            entries.push(LedgerEntry {
                sequence: after.version,
                index: index as u32 + 1,
                kind: m.kind,
                real_delta: m.real,
                bonus_delta: m.bonus,
                debt_delta: m.debt,
                real_balance_after: after.real_cash,
                bonus_balance_after: after.bonus_cash,
                debt_after: after.debt,
                reference: m.reference.clone(),
                description: m.description,
                invoice_number: m.invoice_number,
                created_at: at,
            });
            index += 1;
            if index == movements.len() && after.debt > Money::ZERO && after.total() > Money::ZERO {
                let paid = after.take_back(after.debt, Money::ZERO).0;
                movements.push(Movement::new(
                    EntryKind::DebtSettlement,
                    Amount::debit(paid.real),
                    Amount::debit(paid.bonus),
                    m.reference,
                    "Pays what the wallet owed",
                ));
                movements[index].debt = Amount::debit(paid.total());
            }
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
        /// An astrologer's share of an offer's free minutes, paid by the platform's promotions.
        PromotionalEarning => "promotional_earning",
        /// A refund or chargeback took back a recharge (what was spent became debt).
        Reversal => "reversal",
        /// A dispute won: what its chargeback took comes back, debt first.
        ReversalUndone => "reversal_undone",
        /// A credit paid the wallet's debt.
        DebtSettlement => "debt_settlement",
        /// Bonus cash that lapsed when its account was deleted (bonus was never paid for).
        BonusForfeited => "bonus_forfeited",
    }
);

impl EntryKind {
    /// Bonus cash given away, not paid for (shown as promotional).
    pub fn promotional(self) -> bool {
        matches!(self, EntryKind::TopUpBonus | EntryKind::PromotionalEarning)
    }
}

string_enum!(
    /// What a ledger entry is about.
    ReferenceKind {
        TopUp => "top_up",
        Consultation => "consultation",
        Refund => "refund",
        Dispute => "dispute",
        /// The account itself (its deletion).
        Account => "account",
    }
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
    /// A Razorpay refund (`rfnd_...`).
    pub fn refund(id: &str) -> Self {
        Self { kind: ReferenceKind::Refund, id: id.to_owned() }
    }
    /// A Razorpay dispute (`disp_...`).
    pub fn dispute(id: &str) -> Self {
        Self { kind: ReferenceKind::Dispute, id: id.to_owned() }
    }
    /// The account (by its user id, which is pseudonymous once the account is deleted).
    pub fn account(id: &str) -> Self {
        Self { kind: ReferenceKind::Account, id: id.to_owned() }
    }
}

/// One change to the wallet's buckets, before it is posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub kind: EntryKind,
    pub real: Amount,
    pub bonus: Amount,
    /// Debt recorded (+) or paid or forgiven (-).
    pub debt: Amount,
    pub reference: Reference,
    pub description: String,
    pub invoice_number: Option<String>,
}

impl Movement {
    fn new(kind: EntryKind, real: Amount, bonus: Amount, reference: Reference, description: &str) -> Self {
        Self {
            kind,
            real,
            bonus,
            debt: Amount::ZERO,
            reference,
            description: description.to_owned(),
            invoice_number: None,
        }
    }

    /// A refund or chargeback takes back `taken` (see [`Wallet::take_back`]) and records
    /// `owed`, what was already spent, as debt.
    pub fn reversal(taken: Hold, owed: Money, reference: Reference, description: &str) -> Self {
        let mut m = Self::new(
            EntryKind::Reversal,
            Amount::debit(taken.real),
            Amount::debit(taken.bonus),
            reference,
            description,
        );
        m.debt = Amount::credit(owed);
        m
    }

    /// A dispute won: `forgiven` of the debt goes, and `back` returns to the buckets.
    pub fn reversal_undone(back: Hold, forgiven: Money, reference: Reference, description: &str) -> Self {
        let mut m = Self::new(
            EntryKind::ReversalUndone,
            Amount::credit(back.real),
            Amount::credit(back.bonus),
            reference,
            description,
        );
        m.debt = Amount::debit(forgiven);
        m
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

    /// An astrologer's share of an offer's free minutes, paid by the platform's promotions
    /// (`crate::domain::offer`), into the real cash of their earnings account.
    pub fn promotional_earning(amount: Money, booking_id: &str) -> Self {
        Self::new(
            EntryKind::PromotionalEarning,
            Amount::credit(amount),
            Amount::ZERO,
            Reference::consultation(booking_id),
            &format!("Free minutes of consultation {booking_id}, paid by AstroKiran's promotions"),
        )
    }

    /// The bonus cash left when an account is deleted: it lapses (see `crate::domain::profile`).
    pub fn bonus_forfeited(bonus: Money, user_id: &str) -> Self {
        Self::new(
            EntryKind::BonusForfeited,
            Amount::ZERO,
            Amount::debit(bonus),
            Reference::account(user_id),
            "Bonus cash lapsed: account deleted",
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
    pub debt_delta: Amount,
    pub real_balance_after: Money,
    pub bonus_balance_after: Money,
    pub debt_after: Money,
    pub reference: Reference,
    pub description: String,
    pub invoice_number: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a customer sees of a ledger entry (`GET /wallet/transactions`).
impl Serialize for LedgerEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("LedgerEntry", 14)?;
        out.serialize_field("entry_id", &self.entry_id())?;
        out.serialize_field("type", &self.kind)?;
        out.serialize_field("real_delta", &self.real_delta)?;
        out.serialize_field("bonus_delta", &self.bonus_delta)?;
        out.serialize_field("real_balance_after", &self.real_balance_after)?;
        out.serialize_field("bonus_balance_after", &self.bonus_balance_after)?;
        out.serialize_field("debt_delta", &self.debt_delta)?;
        out.serialize_field("debt_after", &self.debt_after)?;
        out.serialize_field("reference_type", &self.reference.kind)?;
        out.serialize_field("reference_id", &self.reference.id)?;
        if let Some(number) = &self.invoice_number {
            out.serialize_field("invoice_number", number)?;
        }
        out.serialize_field("promotional", &self.kind.promotional())?;
        out.serialize_field("description", &self.description)?;
        out.serialize_field("created_at", &crate::domain::time::text(self.created_at))?;
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
    #[error("posting {sequence} leaves both debt and cash")]
    DebtWithCash { sequence: u64 },
}

/// Checks a wallet against its whole ledger (oldest first): entries in posting order, each
/// entry's balances the running sums, never below zero, the sums equal to the balances per
/// bucket (real, bonus, debt), no posting leaving both debt and cash, and the lifetime
/// totals consistent. For tests and for operators.
pub fn check_ledger(wallet: &Wallet, entries: &[LedgerEntry]) -> Result<(), LedgerMismatch> {
    use rust_decimal::Decimal;
    let (mut real, mut bonus, mut debt) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let mut last = (0u64, 0u32);
    for (i, e) in entries.iter().enumerate() {
        if (e.sequence, e.index) <= last {
            return Err(LedgerMismatch::Order { entry: e.entry_id() });
        }
        last = (e.sequence, e.index);
        real += e.real_delta.decimal();
        bonus += e.bonus_delta.decimal();
        debt += e.debt_delta.decimal();
        let posting_ends = entries.get(i + 1).is_none_or(|next| next.sequence != e.sequence);
        if posting_ends && !debt.is_zero() && !(real + bonus).is_zero() {
            return Err(LedgerMismatch::DebtWithCash { sequence: e.sequence });
        }
        for (bucket, sum, recorded) in [
            ("real", real, e.real_balance_after),
            ("bonus", bonus, e.bonus_balance_after),
            ("debt", debt, e.debt_after),
        ] {
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
    for (bucket, sum, balance) in
        [("real", real, wallet.real_cash), ("bonus", bonus, wallet.bonus_cash), ("debt", debt, wallet.debt)]
    {
        if balance.decimal() != sum {
            return Err(LedgerMismatch::Balance { bucket, balance, sum: sum.to_string() });
        }
    }
    if wallet.total_credited.decimal() - wallet.total_debited.decimal() != real + bonus {
        return Err(LedgerMismatch::Totals);
    }
    Ok(())
}

#[cfg(feature = "openapi")]
mod openapi_schema {
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::domain::schema::json_schema;

    impl utoipa::PartialSchema for crate::domain::wallet::LedgerEntry {
        fn schema() -> RefOr<Schema> {
            json_schema(json!({
                "type": "object",
                "description": "One ledger entry: a change to the real or bonus cash or the debt, and the balances after it",
                "required": ["entry_id", "type", "real_delta", "bonus_delta", "real_balance_after", "bonus_balance_after",
                             "debt_delta", "debt_after", "reference_type", "reference_id", "promotional", "description",
                             "created_at"],
                "properties": {
                    "entry_id": { "type": "string", "pattern": "^[0-9]{12}-[0-9]+$", "description": "unique in the wallet, in posting order" },
                    "type": { "$ref": "#/components/schemas/EntryKind" },
                    "real_delta": { "$ref": "#/components/schemas/Amount" },
                    "bonus_delta": { "$ref": "#/components/schemas/Amount" },
                    "real_balance_after": { "$ref": "#/components/schemas/Money" },
                    "bonus_balance_after": { "$ref": "#/components/schemas/Money" },
                    "debt_delta": { "$ref": "#/components/schemas/Amount" },
                    "debt_after": { "$ref": "#/components/schemas/Money", "description": "owed after a refund or chargeback took back money already spent" },
                    "reference_type": { "$ref": "#/components/schemas/ReferenceKind" },
                    "reference_id": { "type": "string" },
                    "invoice_number": { "type": "string", "description": "only on entries with an invoice" },
                    "promotional": { "type": "boolean", "description": "bonus cash (not withdrawable)" },
                    "description": { "type": "string" },
                    "created_at": { "type": "string", "format": "date-time" },
                },
                "additionalProperties": false,
            }))
        }
    }
    impl utoipa::ToSchema for crate::domain::wallet::LedgerEntry {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            use utoipa::PartialSchema;
            schemas.push(("EntryKind".into(), crate::domain::wallet::EntryKind::schema()));
            schemas.push(("ReferenceKind".into(), crate::domain::wallet::ReferenceKind::schema()));
            schemas.push(("Amount".into(), crate::domain::money::Amount::schema()));
            schemas.push(("Money".into(), crate::Money::schema()));
        }
    }
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

    #[test]
    fn a_reversal_takes_what_is_there_and_owes_the_rest_until_a_credit_pays_it() {
        let now = Utc::now();
        // 500 + 100 bonus, then 550 spent (bonus first): 50 of real cash is left.
        let w = wallet("500", "100");
        let spent = w.hold(m("550")).unwrap();
        let w = w.post(vec![Movement::hold(spent, Reference::consultation("AT1"), "x")], now).unwrap().after;
        let mut ledger = Vec::new();
        // The recharge is refunded: 50 can be taken, 550 is owed.
        let (taken, owed) = w.take_back(m("500"), m("100"));
        assert_eq!((taken, owed), (Hold { real: m("50"), bonus: m("0") }, m("550")));
        let p = w.post(vec![Movement::reversal(taken, owed, Reference::refund("rfnd_1"), "Refund")], now).unwrap();
        assert_eq!((p.after.real_cash, p.after.bonus_cash, p.after.debt), (m("0"), m("0"), m("550")));
        assert_eq!(
            (p.entries[0].real_delta.to_string(), p.entries[0].debt_delta.to_string()),
            ("-50.00".into(), "550.00".into())
        );
        let w = p.after;
        // Nothing can be spent, and the shortfall says what a recharge must cover.
        assert_eq!(w.hold(m("1")), Err(WalletError::Insufficient { shortfall: m("551") }));
        assert_eq!(w.view().debt, m("550"));
        // The next recharge pays the debt first, in the same posting.
        let p = w.post(vec![Movement::top_up(m("1000"), "tu_2", "AK/2")], now).unwrap();
        let kinds: Vec<_> = p.entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryKind::TopUp, EntryKind::DebtSettlement]);
        assert_eq!((p.after.real_cash, p.after.debt), (m("450"), m("0")));
        assert_eq!(p.entries[1].reference, Reference::top_up("tu_2"));
        ledger.extend(p.entries.clone());
        // A recharge smaller than the debt pays part of it and leaves nothing to spend.
        let owing = Wallet { debt: m("300"), ..Wallet::empty() };
        let p = owing
            .post(vec![Movement::top_up(m("100"), "tu_3", "AK/3"), Movement::top_up_bonus(m("20"), "tu_3")], now)
            .unwrap();
        assert_eq!((p.after.real_cash, p.after.bonus_cash, p.after.debt), (m("0"), m("0"), m("180")));
        assert_eq!(p.entries[2].debt_delta.to_string(), "-120.00");
    }

    #[test]
    fn each_bucket_gives_its_own_part_first_then_what_it_has_left_for_the_other() {
        let w = |real: &str, bonus: &str| Wallet { real_cash: m(real), bonus_cash: m(bonus), ..Wallet::empty() };
        assert_eq!(w("300", "0").take_back(m("100"), m("50")), (Hold { real: m("150"), bonus: m("0") }, m("0")));
        assert_eq!(w("0", "80").take_back(m("500"), m("100")), (Hold { real: m("0"), bonus: m("80") }, m("520")));
        assert_eq!(w("600", "100").take_back(m("500"), m("100")), (Hold { real: m("500"), bonus: m("100") }, m("0")));
        assert_eq!(w("0", "0").take_back(m("500"), m("0")), (Hold::default(), m("500")));
    }

    #[test]
    fn a_reversal_undone_forgives_the_debt_and_gives_back_the_rest() {
        let now = Utc::now();
        let w = Wallet { real_cash: m("0"), bonus_cash: m("0"), debt: m("400"), ..wallet("0", "0") };
        let p = w
            .post(
                vec![Movement::reversal_undone(
                    Hold { real: m("100"), bonus: m("100") },
                    m("400"),
                    Reference::dispute("disp_1"),
                    "won",
                )],
                now,
            )
            .unwrap();
        assert_eq!((p.after.real_cash, p.after.bonus_cash, p.after.debt), (m("100"), m("100"), m("0")));
        assert_eq!(p.entries.len(), 1);
    }

    proptest! {
        /// Any sequence of top-ups, holds, settlements, refunds and reversals keeps every
        /// invariant, debt included.
        #[test]
        fn every_sequence_of_operations_keeps_the_ledger_equal_to_the_balance(
            ops in proptest::collection::vec((0u8..5, 0u64..100_000, 0u64..100_000), 1..40)
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
                            let owed_and_asked = w.debt.checked_add(Money::from_paise(a)).unwrap();
                            prop_assert_eq!(shortfall.checked_add(w.total()).unwrap(), owed_and_asked);
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
                    3 => match holds.pop() {
                        Some(h) => vec![Movement::refund(h, reference, "cancel")],
                        None => continue,
                    },
                    _ => {
                        let (taken, owed) = w.take_back(Money::from_paise(a), Money::from_paise(b));
                        prop_assert_eq!(taken.total().checked_add(owed).unwrap(), Money::from_paise(a + b));
                        vec![Movement::reversal(taken, owed, Reference::refund("rfnd"), "refund")]
                    }
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
