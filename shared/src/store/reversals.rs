//! Refunds and disputes of a recharge: the store side of [`crate::domain::reversal`]. One read
//! (`BatchGetItem`: top-up, wallet, the refund's or dispute's record) and one transaction:
//! - `top_up`: the share reversed, conditioned on the share read (and on being completed);
//! - `wallet` + `ledger`: the posting, conditioned on the wallet version read;
//! - `refund` (created once per refund id) or `dispute` (conditioned on its version);
//! - `outbox`: `WalletReversed`.

use chrono::{DateTime, Utc};

use super::items::{self, Item, get_money, get_str, get_u64, money_or_zero};
use super::keys::{REVERSAL_SK, TOPUP_SK, WALLET_SK, dispute_pk, refund_pk, topup_pk, user_pk};
use super::topups::read_topup;
use super::wallet::{Account, read_wallet};
use super::{Store, StoreError, TxError};
use crate::domain::money::Money;
use crate::domain::reversal::{DisputeRecord, DisputeStage, Request, ReversalPlan, ReversalState, Share};
use crate::domain::topup::Status;
use crate::domain::user::UserId;
use crate::domain::wallet::Hold;

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reversal {
    Applied,
    /// This refund, or a later stage of this dispute, was written first.
    AlreadyDone,
    /// The wallet or the top-up moved: read again and retry.
    Conflict,
}

fn record_key(request: &Request) -> Item {
    match request {
        Request::Refund { id, .. } => items::key(refund_pk(id), REVERSAL_SK),
        Request::Dispute { id, .. } => items::key(dispute_pk(id), REVERSAL_SK),
    }
}

fn read_dispute(item: &Item) -> Result<DisputeRecord, StoreError> {
    let holds_money = item.get("holds_money").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    Ok(DisputeRecord {
        id: get_str(item, "dispute_id")?.to_owned(),
        stage: DisputeStage { rank: get_u64(item, "stage_rank")? as u32, holds_money },
        share: Share { real: get_money(item, "share_real")?, bonus: get_money(item, "share_bonus")? },
        taken: Hold { real: get_money(item, "taken_real")?, bonus: get_money(item, "taken_bonus")? },
        owed: get_money(item, "owed")?,
        version: get_u64(item, "version")?,
    })
}

impl Store {
    /// What a refund or dispute of top-up `topup_id` reads, in one `BatchGetItem`. `None`: no
    /// such top-up of `user`'s.
    pub async fn reversal_state(
        &self,
        topup_id: &str,
        user: &UserId,
        request: &Request,
    ) -> Result<Option<ReversalState>, StoreError> {
        let record = record_key(request);
        let record_pk = get_str(&record, super::PK)?.to_owned();
        let found = self
            .batch_get(vec![items::key(topup_pk(topup_id), TOPUP_SK), items::key(user_pk(user), WALLET_SK), record])
            .await?;
        let Some(item) = found.get(&topup_pk(topup_id)) else { return Ok(None) };
        let topup = read_topup(item)?;
        if topup.user_id != *user {
            return Ok(None);
        }
        let reversed =
            Share { real: money_or_zero(item, "reversed_amount")?, bonus: money_or_zero(item, "reversed_bonus")? };
        let wallet = found
            .get(&user_pk(user))
            .map(read_wallet)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("wallet of {user} is missing")))?;
        let record = found.get(&record_pk);
        let (refund_seen, dispute) = match request {
            Request::Refund { .. } => (record.is_some(), None),
            Request::Dispute { .. } => (false, record.map(read_dispute).transpose()?),
        };
        Ok(Some(ReversalState { topup, reversed, wallet, refund_seen, dispute }))
    }

    /// Writes `plan` for `request` in one transaction (see the module doc).
    pub async fn reverse(
        &self,
        state: &ReversalState,
        request: &Request,
        plan: &ReversalPlan,
        now: DateTime<Utc>,
    ) -> Result<Reversal, StoreError> {
        let topup = &state.topup;
        let at = items::time(now);
        let mut tx = self.tx();
        if plan.reversed_after != plan.reversed_read {
            tx.update(
                "top_up",
                items::key(topup_pk(&topup.id), TOPUP_SK),
                "SET reversed_amount = :real, reversed_bonus = :bonus, reversed_at = :at",
                "#status = :completed AND (attribute_not_exists(reversed_amount) OR reversed_amount = :read)",
                vec![
                    (":real", items::money(plan.reversed_after.real)),
                    (":bonus", items::money(plan.reversed_after.bonus)),
                    (":read", items::money(plan.reversed_read.real)),
                    (":completed", items::s(Status::Completed.as_str())),
                    (":at", at.clone()),
                ],
            );
        }
        if let Some(posting) = &plan.posting {
            tx.posting(&Account::Wallet(topup.user_id.clone()), posting);
        }
        match (request, &plan.dispute_after) {
            (Request::Refund { id, amount }, _) => {
                let mut item = record_key(request);
                item.insert("entity".into(), items::s("refund"));
                item.insert("refund_id".into(), items::s(id));
                item.insert("top_up_id".into(), items::s(&topup.id));
                item.insert("user_id".into(), items::s(topup.user_id.as_str()));
                item.insert("amount".into(), items::money(*amount));
                let share = Share {
                    real: plan.reversed_after.real.checked_sub(plan.reversed_read.real).unwrap_or(Money::ZERO),
                    bonus: plan.reversed_after.bonus.checked_sub(plan.reversed_read.bonus).unwrap_or(Money::ZERO),
                };
                item.insert("share_real".into(), items::money(share.real));
                item.insert("share_bonus".into(), items::money(share.bonus));
                item.insert("applied_at".into(), at.clone());
                tx.put_new("refund", item);
            }
            (Request::Dispute { id, amount, .. }, Some(d)) => {
                let condition = match plan.dispute_version_read {
                    Some(_) => "version = :read",
                    None => "attribute_not_exists(PK)",
                };
                let mut values = vec![
                    (":entity", items::s("dispute")),
                    (":id", items::s(id)),
                    (":topup", items::s(&topup.id)),
                    (":user", items::s(topup.user_id.as_str())),
                    (":amount", items::money(*amount)),
                    (":rank", items::n(d.stage.rank)),
                    (":holds", aws_sdk_dynamodb::types::AttributeValue::Bool(d.stage.holds_money)),
                    (":sreal", items::money(d.share.real)),
                    (":sbonus", items::money(d.share.bonus)),
                    (":treal", items::money(d.taken.real)),
                    (":tbonus", items::money(d.taken.bonus)),
                    (":owed", items::money(d.owed)),
                    (":version", items::n(d.version)),
                    (":at", at.clone()),
                ];
                if let Some(read) = plan.dispute_version_read {
                    values.push((":read", items::n(read)));
                }
                tx.update(
                    "dispute",
                    record_key(request),
                    "SET entity = :entity, dispute_id = :id, top_up_id = :topup, user_id = :user, amount = :amount, \
                     stage_rank = :rank, holds_money = :holds, share_real = :sreal, share_bonus = :sbonus, \
                     taken_real = :treal, taken_bonus = :tbonus, owed = :owed, version = :version, updated_at = :at",
                    condition,
                    values,
                );
            }
            (Request::Dispute { .. }, None) => {
                return Err(StoreError::Other("a dispute plan without its record".into()));
            }
        }
        if let Some(event) = &plan.event {
            tx.outbox(event);
        }
        match self.commit(tx).await {
            Ok(()) => Ok(Reversal::Applied),
            Err(TxError::Cancelled(c)) if c.failed("refund") || c.failed("outbox") => Ok(Reversal::AlreadyDone),
            Err(TxError::Cancelled(c)) => {
                tracing::info!(top_up_id = %topup.id, cancelled = ?c, "reversal raced; retrying");
                Ok(Reversal::Conflict)
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }
}
