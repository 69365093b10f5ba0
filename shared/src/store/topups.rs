//! Top-ups, their invoices and the one transaction that credits a payment exactly once.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::items::{self, Item, get_money, get_str, get_u64, opt_str};
use super::keys::{
    COUNTER_SK, GSI1, GSI2, INVOICE_SK, OPEN_TOPUPS_GSI2PK, OPEN_TOPUPS_SK, TOPUP_SK, WALLET_SK, invoice_counter_pk,
    invoices_gsi1pk, open_topups_pk, razorpay_order_gsi1pk, topup_pk, user_pk, webhook_event_pk,
};
use super::offers::{offer_keys, read_offer_state};
use super::wallet::{Account, read_wallet};
use super::webhooks::seen_event_item;
use super::{Store, StoreError, Tx, TxError};
use crate::domain::invoice::{Gstin, INVOICE_SERIES, TaxLines, financial_year};
use crate::domain::money::Money;
use crate::domain::topup::{
    CreditPlan, CreditRecord, CreditState, InvoiceView, MAX_OPEN_TOPUPS, Source, Status, TopUp,
};
use crate::domain::user::UserId;

fn topup_item(t: &TopUp) -> Item {
    let mut item = items::key(topup_pk(&t.id), TOPUP_SK);
    item.insert("entity".into(), items::s("top_up"));
    item.insert("top_up_id".into(), items::s(&t.id));
    item.insert("user_id".into(), items::s(t.user_id.as_str()));
    item.insert("amount".into(), items::money(t.amount));
    item.insert("bonus".into(), items::money(t.bonus));
    if let Some(rule) = &t.rule_id {
        item.insert("rule_id".into(), items::s(rule));
    }
    item.insert("first_recharge_only".into(), AttributeValue::Bool(t.first_recharge_only));
    if let Some(rule) = &t.fallback_rule_id {
        item.insert("fallback_rule_id".into(), items::s(rule));
    }
    item.insert("fallback_bonus".into(), items::money(t.fallback_bonus));
    if let Some(offer) = &t.offer_id {
        item.insert("offer_id".into(), items::s(offer));
    }
    item.insert("razorpay_order_id".into(), items::s(&t.razorpay_order_id));
    item.insert("status".into(), items::s(t.status.as_str()));
    item.insert("created_at".into(), items::time(t.created_at));
    item.insert("GSI1PK".into(), items::s(razorpay_order_gsi1pk(&t.razorpay_order_id)));
    item.insert("GSI1SK".into(), items::s(TOPUP_SK));
    if t.status != Status::Completed {
        item.insert("GSI2PK".into(), items::s(OPEN_TOPUPS_GSI2PK));
        item.insert("GSI2SK".into(), items::time(t.created_at));
    }
    item
}

pub(crate) fn read_topup(item: &Item) -> Result<TopUp, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("top-up: {what}"));
    let status = Status::parse(get_str(item, "status")?).ok_or_else(|| corrupt("status"))?;
    let credit = if status == Status::Completed {
        Some(CreditRecord {
            payment_id: get_str(item, "payment_id")?.to_owned(),
            bonus_credited: get_money(item, "bonus_credited")?,
            offer_bonus: items::money_or_zero(item, "offer_bonus")?,
            credited_by: get_str(item, "credited_by")?.to_owned(),
            completed_at: get_str(item, "completed_at")?.to_owned(),
            invoice: InvoiceView {
                invoice_number: get_str(item, "invoice_number")?.to_owned(),
                financial_year: get_str(item, "financial_year")?.to_owned(),
                supplier_gstin: Gstin::parse(get_str(item, "supplier_gstin")?)
                    .ok_or_else(|| corrupt("supplier_gstin"))?,
                sac_code: get_str(item, "sac_code")?.to_owned(),
                place_of_supply: get_str(item, "place_of_supply")?.to_owned(),
                taxable_value: get_money(item, "taxable_value")?,
                gst_rate_percent: item
                    .get("gst_rate_percent")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| corrupt("gst_rate_percent"))?,
                gst: get_money(item, "gst")?,
                tax: TaxLines {
                    cgst: get_money(item, "cgst")?,
                    sgst: get_money(item, "sgst")?,
                    igst: get_money(item, "igst")?,
                },
                total: get_money(item, "amount")?,
                gst_inclusive: true,
            },
        })
    } else {
        None
    };
    Ok(TopUp {
        id: get_str(item, "top_up_id")?.to_owned(),
        user_id: UserId::parse(get_str(item, "user_id")?).map_err(|_| corrupt("user_id"))?,
        amount: get_money(item, "amount")?,
        bonus: get_money(item, "bonus")?,
        rule_id: opt_str(item, "rule_id").map(str::to_owned),
        first_recharge_only: item.get("first_recharge_only").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        fallback_rule_id: opt_str(item, "fallback_rule_id").map(str::to_owned),
        // Top-ups created before the fallback was recorded have none.
        fallback_bonus: get_money(item, "fallback_bonus").unwrap_or(Money::ZERO),
        offer_id: opt_str(item, "offer_id").map(str::to_owned),
        razorpay_order_id: get_str(item, "razorpay_order_id")?.to_owned(),
        status,
        created_at: items::get_time(item, "created_at")?,
        credit,
    })
}

/// The outcome of one credit attempt.
#[derive(Debug)]
pub enum Credit {
    Credited,
    /// Someone else completed this top-up (or processed this event) first: nothing to do.
    AlreadyDone,
    /// The wallet or the invoice sequence moved under us: read again and retry.
    Conflict,
}

impl Tx {
    /// A new top-up (label `top_up`), counted among its owner's open top-ups, at most
    /// [`MAX_OPEN_TOPUPS`] (label `open_topups` fails past it).
    pub fn new_topup(&mut self, topup: &TopUp) -> &mut Self {
        self.put_new("top_up", topup_item(topup));
        self.update(
            "open_topups",
            items::key(open_topups_pk(&topup.user_id), OPEN_TOPUPS_SK),
            "ADD topup_ids :id SET entity = :entity",
            "attribute_not_exists(topup_ids) OR size(topup_ids) < :max",
            vec![
                (":id", AttributeValue::Ss(vec![topup.id.clone()])),
                (":entity", items::s("open_topups")),
                (":max", items::n(MAX_OPEN_TOPUPS)),
            ],
        )
    }

    /// `topup` is open no more (credited or given up). Unconditional: removing an id that
    /// is not in the set changes nothing, so a late credit of a given-up top-up is fine.
    fn topup_closed(&mut self, topup: &TopUp) -> &mut Self {
        self.update(
            "open_topups",
            items::key(open_topups_pk(&topup.user_id), OPEN_TOPUPS_SK),
            "DELETE topup_ids :id",
            "attribute_exists(PK) OR attribute_not_exists(PK)",
            vec![(":id", AttributeValue::Ss(vec![topup.id.clone()]))],
        )
    }
}

impl Store {
    /// The top-up, if it exists and is `user`'s (one GetItem).
    pub async fn topup(&self, id: &str, user: &UserId) -> Result<Option<TopUp>, StoreError> {
        let item = self.get(items::key(topup_pk(id), TOPUP_SK)).await?;
        Ok(item.as_ref().map(read_topup).transpose()?.filter(|t| t.user_id == *user))
    }

    /// What creating a top-up reads, in one `BatchGetItem`: the idempotency record, the
    /// wallet and how many top-ups `key.user` has open.
    pub async fn topup_create_state(
        &self,
        key: &crate::domain::idempotency::IdempotencyKey,
    ) -> Result<
        (Option<crate::domain::idempotency::StoredResponse>, Option<crate::domain::wallet::Wallet>, usize),
        StoreError,
    > {
        let open_key = items::key(open_topups_pk(&key.user), OPEN_TOPUPS_SK);
        let (record, wallet, found) = self.idempotency_record_and_wallet_with(key, open_key).await?;
        let open = found.and_then(|item| item.get("topup_ids").and_then(|v| v.as_ss().ok()).map(Vec::len)).unwrap_or(0);
        Ok((record, wallet, open))
    }

    /// The top-up paid through Razorpay order `order_id` (GSI1, one Query).
    pub async fn topup_by_order(&self, order_id: &str) -> Result<Option<TopUp>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk AND GSI1SK = :sk")
            .expression_attribute_values(":pk", items::s(razorpay_order_gsi1pk(order_id)))
            .expression_attribute_values(":sk", items::s(TOPUP_SK))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        output.items().first().map(read_topup).transpose()
    }

    /// Reads the top-up, the wallet, the sequence of an invoice series drawn at random,
    /// (for a webhook) the event record and (for a top-up naming an offer: `offer_id`, as
    /// the caller read it) the offer, the customer's progress and the thresholds in one
    /// `BatchGetItem`. `None`: no such top-up of `user`'s.
    pub async fn credit_state(
        &self,
        topup_id: &str,
        user: &UserId,
        offer_id: Option<&str>,
        source: &Source,
        now: DateTime<Utc>,
    ) -> Result<Option<CreditState>, StoreError> {
        let fy = financial_year(now);
        let series = rand::random::<u8>() % INVOICE_SERIES;
        let mut keys = vec![
            items::key(topup_pk(topup_id), TOPUP_SK),
            items::key(user_pk(user), WALLET_SK),
            items::key(invoice_counter_pk(&fy, series), COUNTER_SK),
        ];
        if let Source::Webhook { event_id, .. } = source {
            keys.push(items::key(webhook_event_pk("razorpay", event_id), super::keys::WEBHOOK_EVENT_SK));
        }
        if let Some(offer_id) = offer_id {
            keys.extend(offer_keys(user, offer_id));
        }
        let all = self.batch_get_all(keys).await?;
        let offer = offer_id.map(|id| read_offer_state(&all, user, id)).transpose()?;
        let found = super::by_pk(all)?;
        let Some(topup) = found.get(&topup_pk(topup_id)).map(read_topup).transpose()? else { return Ok(None) };
        if topup.user_id != *user {
            return Ok(None);
        }
        let wallet = found
            .get(&user_pk(user))
            .map(read_wallet)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("wallet of {user} is missing")))?;
        let invoice_seq = found.get(&invoice_counter_pk(&fy, series)).map(|c| get_u64(c, "seq")).transpose()?;
        let event_seen = match source {
            Source::Webhook { event_id, .. } => found.contains_key(&webhook_event_pk("razorpay", event_id)),
            Source::Confirm | Source::Reconciliation => false,
        };
        // An offer the top-up does not name (the caller's read was older) is not applied.
        let offer = offer.filter(|_| topup.offer_id.as_deref() == offer_id);
        Ok(Some(CreditState {
            topup,
            wallet,
            invoice_series: series,
            invoice_seq,
            financial_year: fy,
            event_seen,
            offer,
        }))
    }

    /// The one `TransactWriteItems` that credits a payment, all or nothing:
    /// - `top_up`: `pending`/`failed` → `completed` (the exactly-once guard);
    /// - `wallet` + `ledger`: the posting, conditioned on the wallet version read;
    /// - `invoice_seq`: conditioned on the number read, so numbers have no gaps and no
    ///   duplicates within a series, which GST invoices need. (An `ADD` outside the
    ///   transaction would return the number but leave a gap whenever the credit then failed
    ///   or was a duplicate, and an `ADD` inside cannot return it.) The price is contention
    ///   on the counter, spread over [`INVOICE_SERIES`] series and resolved by retrying;
    /// - `invoice`; for a webhook, `webhook_event` (its seen-event record, with a TTL);
    /// - `outbox`: `WalletCredited`.
    pub async fn credit(&self, plan: &CreditPlan, source: &Source, now: DateTime<Utc>) -> Result<Credit, StoreError> {
        let t = &plan.topup;
        let credit = t.credit.as_ref().ok_or_else(|| StoreError::Other("a credit plan without its credit".into()))?;
        let inv = &credit.invoice;
        let at = items::time(now);
        let mut tx = self.tx();
        tx.update(
            "top_up",
            items::key(topup_pk(&t.id), TOPUP_SK),
            "SET #status = :completed, payment_id = :pay, bonus_credited = :bonus, credited_by = :by, \
             completed_at = :at, invoice_number = :inv, financial_year = :fy, supplier_gstin = :gstin, \
             sac_code = :sac, place_of_supply = :pos, taxable_value = :taxable, gst = :gst, cgst = :cgst, \
             sgst = :sgst, igst = :igst, gst_rate_percent = :rate, offer_bonus = :offer_bonus REMOVE failure_reason, GSI2PK, GSI2SK",
            "#status IN (:pending, :failed)",
            vec![
                (":completed", items::s(Status::Completed.as_str())),
                (":pending", items::s(Status::Pending.as_str())),
                (":failed", items::s(Status::Failed.as_str())),
                (":pay", items::s(&credit.payment_id)),
                (":bonus", items::money(credit.bonus_credited)),
                (":by", items::s(source.name())),
                (":at", at.clone()),
                (":inv", items::s(&inv.invoice_number)),
                (":fy", items::s(&inv.financial_year)),
                (":taxable", items::money(inv.taxable_value)),
                (":gst", items::money(inv.gst)),
                (":gstin", items::s(inv.supplier_gstin.as_str())),
                (":sac", items::s(&inv.sac_code)),
                (":pos", items::s(&inv.place_of_supply)),
                (":cgst", items::money(inv.tax.cgst)),
                (":sgst", items::money(inv.tax.sgst)),
                (":igst", items::money(inv.tax.igst)),
                (":rate", items::n(inv.gst_rate_percent)),
                (":offer_bonus", items::money(credit.offer_bonus)),
            ],
        );
        if let Some(offer) = &plan.offer {
            tx.consume_recharge_offer(offer, &t.user_id, &t.id, credit.offer_bonus);
        }
        tx.posting(&Account::Wallet(t.user_id.clone()), &plan.posting);
        tx.topup_closed(t);
        let (counter_cond, mut counter_values) = match plan.invoice_seq_read {
            Some(prev) => ("seq = :prev", vec![(":prev", items::n(prev))]),
            None => ("attribute_not_exists(PK)", vec![]),
        };
        counter_values.extend([(":seq", items::n(plan.invoice_seq)), (":at", at.clone())]);
        tx.update(
            "invoice_seq",
            items::key(invoice_counter_pk(&inv.financial_year, plan.invoice_series), COUNTER_SK),
            "SET seq = :seq, updated_at = :at",
            counter_cond,
            counter_values,
        );

        let mut invoice = items::key(topup_pk(&t.id), INVOICE_SK);
        invoice.insert("entity".into(), items::s("invoice"));
        invoice.insert("invoice_number".into(), items::s(&inv.invoice_number));
        invoice.insert("financial_year".into(), items::s(&inv.financial_year));
        invoice.insert("top_up_id".into(), items::s(&t.id));
        invoice.insert("user_id".into(), items::s(t.user_id.as_str()));
        invoice.insert("payment_id".into(), items::s(&credit.payment_id));
        invoice.insert("description".into(), items::s("AstroKiran wallet recharge"));
        invoice.insert("taxable_value".into(), items::money(inv.taxable_value));
        invoice.insert("gst_rate_percent".into(), items::n(inv.gst_rate_percent));
        invoice.insert("gst".into(), items::money(inv.gst));
        invoice.insert("cgst".into(), items::money(inv.tax.cgst));
        invoice.insert("sgst".into(), items::money(inv.tax.sgst));
        invoice.insert("igst".into(), items::money(inv.tax.igst));
        invoice.insert("supplier_gstin".into(), items::s(inv.supplier_gstin.as_str()));
        invoice.insert("sac_code".into(), items::s(&inv.sac_code));
        invoice.insert("place_of_supply".into(), items::s(&inv.place_of_supply));
        invoice.insert("total".into(), items::money(inv.total));
        invoice.insert("gst_inclusive".into(), AttributeValue::Bool(true));
        invoice.insert("issued_at".into(), at.clone());
        invoice.insert("GSI1PK".into(), items::s(invoices_gsi1pk(&inv.financial_year)));
        invoice.insert("GSI1SK".into(), items::s(&inv.invoice_number));
        tx.put_new("invoice", invoice);

        if let Source::Webhook { event, event_id } = source {
            let mut seen = seen_event_item("razorpay", event_id, now);
            seen.insert("event".into(), items::s(event));
            seen.insert("top_up_id".into(), items::s(&t.id));
            tx.put_new("webhook_event", seen);
        }
        tx.outbox(&plan.event);

        match self.commit(tx).await {
            Ok(()) => Ok(Credit::Credited),
            Err(TxError::Cancelled(c)) if c.failed("top_up") || c.failed("webhook_event") || c.failed("outbox") => {
                Ok(Credit::AlreadyDone)
            }
            Err(TxError::Cancelled(c)) => {
                tracing::info!(top_up_id = %t.id, cancelled = ?c, "credit raced; retrying");
                Ok(Credit::Conflict)
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Top-ups still open (pending, or failed by an attempt) created at or before `cutoff`,
    /// oldest first: one Query of GSI2 `TOPUP_OPEN` (all pages), for the reconciliation.
    pub async fn open_topups_created_by(&self, cutoff: DateTime<Utc>) -> Result<Vec<TopUp>, StoreError> {
        let open =
            self.index_items_upto(GSI2, ("GSI2PK", OPEN_TOPUPS_GSI2PK), ("GSI2SK", items::time_text(cutoff))).await?;
        open.iter().map(read_topup).collect()
    }

    /// The reconciliation gives up on a top-up nobody paid: `failed`, and out of the open
    /// top-ups (a capture after this still credits it, through the webhook or the confirm).
    /// `false`: it was completed meanwhile.
    pub async fn close_unpaid_topup(
        &self,
        topup: &TopUp,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "top_up",
            items::key(topup_pk(&topup.id), TOPUP_SK),
            "SET #status = :failed, failure_reason = :reason, failed_at = :at REMOVE GSI2PK, GSI2SK",
            "#status IN (:pending, :failed)",
            vec![
                (":failed", items::s(Status::Failed.as_str())),
                (":pending", items::s(Status::Pending.as_str())),
                (":reason", items::s(reason.chars().take(200).collect::<String>())),
                (":at", items::time(now)),
            ],
        );
        tx.topup_closed(topup);
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(c)) if c.failed("top_up") => Ok(false),
            Err(TxError::Cancelled(c)) => Err(StoreError::Other(format!("closing a top-up: {c:?}"))),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// `payment.failed`: a pending top-up becomes failed; a completed one is left alone. It
    /// stays open: the customer may pay the order on another attempt.
    pub async fn mark_topup_failed(
        &self,
        topup_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_if(
            items::key(topup_pk(topup_id), TOPUP_SK),
            "SET #status = :failed, failure_reason = :reason, failed_at = :at",
            "#status = :pending",
            vec![
                (":failed", items::s(Status::Failed.as_str())),
                (":pending", items::s(Status::Pending.as_str())),
                (":reason", items::s(reason.chars().take(200).collect::<String>())),
                (":at", items::time(now)),
            ],
        )
        .await
    }
}
