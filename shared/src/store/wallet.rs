//! The wallet item, its ledger and the promotion rules: the store side of [`crate::domain::wallet`].
//! A [`Posting`] becomes two kinds of transaction items, always together: the wallet update,
//! conditioned on the version the posting was computed from (label `wallet`), and one
//! `put_new` per ledger entry (label `ledger`).

use aws_sdk_dynamodb::types::AttributeValue;
use rust_decimal::Decimal;

use super::items::{self, Item, get_money, get_str, get_u64, opt_str};
use super::keys::{
    self, PROMO_RULES_PK, SK, WALLET_SK, earnings_ledger_pk, earnings_pk, ledger_pk, ledger_sk, user_pk,
};
use super::{Store, StoreError, Tx};
use crate::domain::money::Amount;
use crate::domain::promotion::PromotionRule;
use crate::domain::user::UserId;
use crate::domain::wallet::{EntryKind, LedgerEntry, Posting, Reference, ReferenceKind, Wallet};

/// Whose money: a customer's wallet (every user has one, made at registration) or an
/// astrologer's earnings (made by the first earning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    Wallet(UserId),
    Earnings(UserId),
}

impl Account {
    fn owner(&self) -> &UserId {
        match self {
            Account::Wallet(u) | Account::Earnings(u) => u,
        }
    }
    fn key(&self) -> Item {
        match self {
            Account::Wallet(u) => items::key(user_pk(u), WALLET_SK),
            Account::Earnings(u) => items::key(earnings_pk(u), WALLET_SK),
        }
    }
    fn ledger_pk(&self) -> String {
        match self {
            Account::Wallet(u) => ledger_pk(u),
            Account::Earnings(u) => earnings_ledger_pk(u),
        }
    }
}

/// The zero wallet a new user starts with.
pub(crate) fn new_wallet_item(user: &UserId, at: chrono::DateTime<chrono::Utc>) -> Item {
    let w = Wallet::empty();
    let mut item = items::key(user_pk(user), WALLET_SK);
    item.insert("entity".into(), items::s("wallet"));
    item.insert("real_cash".into(), items::money(w.real_cash));
    item.insert("bonus_cash".into(), items::money(w.bonus_cash));
    item.insert("total_credited".into(), items::money(w.total_credited));
    item.insert("total_debited".into(), items::money(w.total_debited));
    item.insert("recharge_count".into(), items::n(w.recharge_count));
    item.insert("debt".into(), items::money(w.debt));
    item.insert("version".into(), items::n(w.version));
    item.insert("created_at".into(), items::time(at));
    item
}

/// A wallet its owner may still spend from and top up: `None` once their account was deleted
/// (`closed_at`, see `crate::app::erasure`). Refunds, disputes and late credits still post to
/// a closed wallet (its money is accounted for to the paisa); holds and new top-ups do not.
pub(crate) fn read_open_wallet(item: &Item) -> Result<Option<Wallet>, StoreError> {
    if item.contains_key(CLOSED_AT) {
        return Ok(None);
    }
    read_wallet(item).map(Some)
}

/// The wallet attribute that marks a deleted account's wallet.
pub(crate) const CLOSED_AT: &str = "closed_at";

pub(crate) fn read_wallet(item: &Item) -> Result<Wallet, StoreError> {
    Ok(Wallet {
        real_cash: get_money(item, "real_cash")?,
        bonus_cash: get_money(item, "bonus_cash")?,
        total_credited: get_money(item, "total_credited")?,
        total_debited: get_money(item, "total_debited")?,
        recharge_count: get_u64(item, "recharge_count")?,
        // Wallets from before debt was recorded have none.
        debt: items::money_or_zero(item, "debt")?,
        version: get_u64(item, "version")?,
    })
}

fn amount(item: &Item, name: &str) -> Result<Amount, StoreError> {
    let text = item.get(name).and_then(|v| v.as_n().ok()).ok_or_else(|| StoreError::Corrupt(name.to_owned()))?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{name}: {e}")))
}

fn ledger_item(account: &Account, e: &LedgerEntry) -> Item {
    let mut item = items::key(account.ledger_pk(), ledger_sk(e.sequence, e.index));
    item.insert("entity".into(), items::s("ledger_entry"));
    item.insert("entry_id".into(), items::s(e.entry_id()));
    item.insert("sequence".into(), items::n(e.sequence));
    item.insert("type".into(), items::s(e.kind.as_str()));
    item.insert("real_delta".into(), items::n(e.real_delta));
    item.insert("bonus_delta".into(), items::n(e.bonus_delta));
    item.insert("real_balance_after".into(), items::money(e.real_balance_after));
    item.insert("bonus_balance_after".into(), items::money(e.bonus_balance_after));
    item.insert("debt_delta".into(), items::n(e.debt_delta));
    item.insert("debt_after".into(), items::money(e.debt_after));
    item.insert("reference_type".into(), items::s(e.reference.kind.as_str()));
    item.insert("reference_id".into(), items::s(&e.reference.id));
    if let Some(number) = &e.invoice_number {
        item.insert("invoice_number".into(), items::s(number));
    }
    item.insert("promotional".into(), AttributeValue::Bool(e.kind.promotional()));
    item.insert("description".into(), items::s(&e.description));
    item.insert("created_at".into(), items::time(e.created_at));
    item
}

/// Money a refund or chargeback took back after the customer had spent it was already paid
/// out (the astrologer's earnings, the platform's share): the astrologer keeps what they
/// earned, and the platform carries the loss in a ledger of its own, recovered as the
/// customer's next credits pay the wallet's debt. Mirrors each wallet entry that moves debt,
/// so the ledger's sum is every wallet's debt.
fn platform_loss_item(user: &UserId, e: &LedgerEntry) -> Item {
    let sk = format!("{user}#{}", ledger_sk(e.sequence, e.index));
    let mut item = items::key(keys::PLATFORM_LOSSES_PK.to_owned(), sk);
    item.insert("entity".into(), items::s("platform_loss_entry"));
    item.insert("user_id".into(), items::s(user.as_str()));
    item.insert("amount".into(), items::n(e.debt_delta));
    item.insert("type".into(), items::s(if e.debt_delta > Amount::ZERO { "loss" } else { "recovery" }));
    item.insert("reference_type".into(), items::s(e.reference.kind.as_str()));
    item.insert("reference_id".into(), items::s(&e.reference.id));
    item.insert("created_at".into(), items::time(e.created_at));
    item
}

fn read_ledger_entry(item: &Item) -> Result<LedgerEntry, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("ledger entry: {what}"));
    let sk = get_str(item, SK)?;
    let index = sk.rsplit('#').next().and_then(|n| n.parse().ok()).ok_or_else(|| corrupt("SK"))?;
    Ok(LedgerEntry {
        sequence: get_u64(item, "sequence")?,
        index,
        kind: EntryKind::parse(get_str(item, "type")?).ok_or_else(|| corrupt("type"))?,
        real_delta: amount(item, "real_delta")?,
        bonus_delta: amount(item, "bonus_delta")?,
        real_balance_after: get_money(item, "real_balance_after")?,
        bonus_balance_after: get_money(item, "bonus_balance_after")?,
        // Entries from before debt was recorded moved none.
        debt_delta: if item.contains_key("debt_delta") { amount(item, "debt_delta")? } else { Amount::ZERO },
        debt_after: items::money_or_zero(item, "debt_after")?,
        reference: Reference {
            kind: ReferenceKind::parse(get_str(item, "reference_type")?).ok_or_else(|| corrupt("reference_type"))?,
            id: get_str(item, "reference_id")?.to_owned(),
        },
        description: opt_str(item, "description").unwrap_or_default().to_owned(),
        invoice_number: opt_str(item, "invoice_number").map(str::to_owned),
        created_at: items::get_time(item, "created_at")?,
    })
}

impl Tx {
    /// The wallet change and its ledger entries: fails as `wallet` (a customer's) or
    /// `earnings` if the account moved since it was read (the caller reads again and
    /// recomputes). An earnings account is made by its first posting.
    pub fn posting(&mut self, account: &Account, posting: &Posting) -> &mut Self {
        let w = &posting.after;
        let now = posting.entries.first().map_or_else(chrono::Utc::now, |e| e.created_at);
        let (label, condition) = match account {
            Account::Wallet(_) => ("wallet", "version = :version"),
            Account::Earnings(_) => ("earnings", "attribute_not_exists(version) OR version = :version"),
        };
        self.update(
            label,
            account.key(),
            "SET real_cash = :real, bonus_cash = :bonus, total_credited = :credited, total_debited = :debited, \
             recharge_count = :count, debt = :debt, version = :next, updated_at = :at, entity = :entity, user_id = :owner",
            condition,
            vec![
                (":entity", items::s(if label == "wallet" { "wallet" } else { "earnings" })),
                (":owner", items::s(account.owner().as_str())),
                (":real", items::money(w.real_cash)),
                (":bonus", items::money(w.bonus_cash)),
                (":credited", items::money(w.total_credited)),
                (":debited", items::money(w.total_debited)),
                (":count", items::n(w.recharge_count)),
                (":debt", items::money(w.debt)),
                (":next", items::n(w.version)),
                (":version", items::n(posting.before_version)),
                (":at", items::time(now)),
            ],
        );
        for entry in &posting.entries {
            self.put_new("ledger", ledger_item(account, entry));
            if let (Account::Wallet(user), false) = (account, entry.debt_delta == Amount::ZERO) {
                self.put_new("platform_loss", platform_loss_item(user, entry));
            }
        }
        self
    }
}

/// One page of a ledger, newest first.
#[derive(Debug, Clone)]
pub struct LedgerPage {
    pub entries: Vec<LedgerEntry>,
    /// The sort key to continue after, when there is more.
    pub next: Option<String>,
}

impl Store {
    /// The user's wallet as they may use it (one consistent GetItem). `None`: no such user,
    /// or their account was deleted.
    pub async fn wallet(&self, user: &UserId) -> Result<Option<Wallet>, StoreError> {
        Ok(self.get(Account::Wallet(user.clone()).key()).await?.as_ref().map(read_open_wallet).transpose()?.flatten())
    }

    /// An account (one consistent GetItem). `None`: not made yet.
    pub async fn account(&self, account: &Account) -> Result<Option<Wallet>, StoreError> {
        self.get(account.key()).await?.as_ref().map(read_wallet).transpose()
    }

    /// A page of the user's ledger, newest first (one Query).
    pub async fn ledger_page(&self, user: &UserId, limit: i32, after: Option<&str>) -> Result<LedgerPage, StoreError> {
        self.account_ledger_page(&Account::Wallet(user.clone()), limit, after).await
    }

    /// A page of an account's ledger, newest first (one Query). `after` is a sort key a
    /// previous page returned; callers refuse anything else before it gets here.
    pub async fn account_ledger_page(
        &self,
        account: &Account,
        limit: i32,
        after: Option<&str>,
    ) -> Result<LedgerPage, StoreError> {
        let pk = account.ledger_pk();
        let start =
            after.map(|sk| Item::from([(keys::PK.to_owned(), items::s(&pk)), (keys::SK.to_owned(), items::s(sk))]));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :txn)")
            .expression_attribute_values(":pk", items::s(&pk))
            .expression_attribute_values(":txn", items::s(keys::LEDGER_SK_PREFIX))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let entries = output.items().iter().map(read_ledger_entry).collect::<Result<Vec<_>, _>>()?;
        let next = output.last_evaluated_key().and_then(|k| k.get(SK)).and_then(|v| v.as_s().ok()).cloned();
        Ok(LedgerPage { entries, next })
    }

    /// The wallet and its whole ledger, oldest first, for [`crate::domain::wallet::check_ledger`]
    /// (tests and operators; pages through the ledger).
    pub async fn wallet_with_ledger(
        &self,
        account: &Account,
    ) -> Result<Option<(Wallet, Vec<LedgerEntry>)>, StoreError> {
        let Some(wallet) = self.account(account).await? else { return Ok(None) };
        let mut entries = Vec::new();
        let mut after = None;
        loop {
            let page = self.account_ledger_page(account, 100, after.as_deref()).await?;
            entries.extend(page.entries);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        entries.reverse();
        Ok(Some((wallet, entries)))
    }

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
            .key_condition_expression("PK = :pk AND begins_with(SK, :rule)")
            .expression_attribute_values(":pk", items::s(PROMO_RULES_PK))
            .expression_attribute_values(":rule", items::s(keys::promo_rule_sk("")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        output.items().iter().map(read_promo_rule).collect()
    }
}

pub(crate) fn promo_rule_item(rule: &PromotionRule) -> Item {
    let mut item = items::key(PROMO_RULES_PK, keys::promo_rule_sk(&rule.id));
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

pub(crate) fn read_promo_rule(item: &Item) -> Result<PromotionRule, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;
    use crate::domain::wallet::Movement;
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

    #[test]
    fn wallets_and_ledger_entries_round_trip_with_money_as_numbers() {
        let user = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let at = chrono::Utc::now();
        assert_eq!(read_wallet(&new_wallet_item(&user, at)).unwrap(), Wallet::empty());
        let posting = Wallet::empty()
            .post(
                vec![
                    Movement::top_up(Money::from_paise(50_050), "tu_1", "AK/1"),
                    Movement::top_up_bonus(Money::from_paise(100), "tu_1"),
                ],
                at,
            )
            .unwrap();
        for e in &posting.entries {
            let item = ledger_item(&Account::Wallet(user.clone()), e);
            assert!(matches!(item["real_delta"], AttributeValue::N(_)));
            let back = read_ledger_entry(&item).unwrap();
            assert_eq!((back.entry_id(), back.kind, back.real_delta), (e.entry_id(), e.kind, e.real_delta));
            assert_eq!(back.created_at.timestamp_millis(), e.created_at.timestamp_millis());
        }
    }
}
