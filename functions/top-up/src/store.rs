//! The top-up's items and the one transaction that credits a payment exactly once.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | top-up (payment order) | `TOPUP#{id}` | `TOPUP` | status `pending`/`failed`/`completed`; GSI1 `RZP_ORDER#{order id}` |
//! | invoice | `TOPUP#{id}` | `INVOICE` | GSI1 `INVOICES#{fy}` / number, for the accountants |
//! | invoice sequence | `COUNTER#INVOICE#{fy}` | `COUNTER` | `seq`, the last number given in that financial year |
//! | ledger entry | `LEDGER#{sub}` | `TXN#{at}#{top-up id}#{n}` | deltas and balances after, as Numbers |
//! | webhook event | `WEBHOOK#razorpay#{event id}` | `WEBHOOK` | `shared::store::seen_event_item`, TTL `expires_at` |
//! | promotion rule | `PROMO_RULES` | `RULE#{id}` | see `shared::store::wallet` |
//! | idempotency record | `IDEMPOTENCY#{sub}#{key}` | `IDEMPOTENCY` | see `shared::idempotency` |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use shared::store::items::{self, Item, get_money, get_str, get_u64, opt_str};
use shared::store::wallet::{
    COUNTER_SK, INVOICE_SK, TOPUP_SK, WEBHOOK_EVENT_SK, invoice_counter_pk, ledger_pk, razorpay_order_gsi_pk, topup_pk,
    webhook_event_pk,
};
use shared::store::{Store, StoreError, WALLET_SK, cancellation_reasons, put_new, user_pk};
use shared::wallet::{GstSplit, financial_year, gst_inclusive_split, invoice_number};
use shared::{Money, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Failed,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Failed => "failed",
            Status::Completed => "completed",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [Status::Pending, Status::Failed, Status::Completed].into_iter().find(|v| v.as_str() == s)
    }
}

/// Our payment order for one Razorpay order.
#[derive(Debug, Clone)]
pub struct TopUp {
    pub id: String,
    pub user_id: UserId,
    pub amount: Money,
    /// The bonus promised when the top-up was created.
    pub bonus: Money,
    pub rule_id: Option<String>,
    pub first_recharge_only: bool,
    pub razorpay_order_id: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub credit: Option<CreditRecord>,
}

/// What a completed top-up records about its credit.
#[derive(Debug, Clone, Serialize)]
pub struct CreditRecord {
    pub payment_id: String,
    pub bonus_credited: Money,
    pub credited_by: String,
    pub completed_at: String,
    pub invoice: InvoiceView,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvoiceView {
    pub invoice_number: String,
    pub financial_year: String,
    pub taxable_value: Money,
    pub gst_rate_percent: Decimal,
    pub gst: Money,
    pub total: Money,
    pub gst_inclusive: bool,
}

/// The wallet as the credit reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Wallet {
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub total: Money,
    pub total_credited: Money,
    pub total_debited: Money,
    pub recharge_count: u64,
    #[serde(skip)]
    pub version: u64,
}

pub fn read_wallet(item: &Item) -> Result<Wallet, StoreError> {
    let real_cash = get_money(item, "real_cash")?;
    let bonus_cash = get_money(item, "bonus_cash")?;
    Ok(Wallet {
        real_cash,
        bonus_cash,
        total: real_cash.checked_add(bonus_cash).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        total_credited: get_money(item, "total_credited")?,
        total_debited: get_money(item, "total_debited")?,
        recharge_count: get_u64(item, "recharge_count")?,
        version: get_u64(item, "version")?,
    })
}

pub fn topup_item(t: &TopUp) -> Item {
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
    item.insert("razorpay_order_id".into(), items::s(&t.razorpay_order_id));
    item.insert("status".into(), items::s(t.status.as_str()));
    item.insert("created_at".into(), items::time(t.created_at));
    item.insert("GSI1PK".into(), items::s(razorpay_order_gsi_pk(&t.razorpay_order_id)));
    item.insert("GSI1SK".into(), items::s(TOPUP_SK));
    item
}

pub fn read_topup(item: &Item) -> Result<TopUp, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(what.to_owned());
    let status = Status::parse(get_str(item, "status")?).ok_or_else(|| corrupt("status"))?;
    let credit = if status == Status::Completed {
        Some(CreditRecord {
            payment_id: get_str(item, "payment_id")?.to_owned(),
            bonus_credited: get_money(item, "bonus_credited")?,
            credited_by: get_str(item, "credited_by")?.to_owned(),
            completed_at: get_str(item, "completed_at")?.to_owned(),
            invoice: InvoiceView {
                invoice_number: get_str(item, "invoice_number")?.to_owned(),
                financial_year: get_str(item, "financial_year")?.to_owned(),
                taxable_value: get_money(item, "taxable_value")?,
                gst_rate_percent: item
                    .get("gst_rate_percent")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| corrupt("gst_rate_percent"))?,
                gst: get_money(item, "gst")?,
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
        razorpay_order_id: get_str(item, "razorpay_order_id")?.to_owned(),
        status,
        created_at: items::get_time(item, "created_at")?,
        credit,
    })
}

/// One consistent `BatchGetItem` of `keys`; the items found, by `PK`.
pub async fn batch_get(store: &Store, keys: Vec<Item>) -> Result<HashMap<String, Item>, StoreError> {
    let request = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))?;
    let output = store
        .client
        .batch_get_item()
        .request_items(&store.table, request)
        .send()
        .await
        .map_err(StoreError::from_sdk)?;
    if output.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
        return Err(StoreError::Unavailable("BatchGetItem left keys unprocessed".into()));
    }
    let mut found = HashMap::new();
    for item in output.responses().and_then(|r| r.get(&store.table)).cloned().unwrap_or_default() {
        let pk = get_str(&item, "PK")?.to_owned();
        found.insert(pk, item);
    }
    Ok(found)
}

/// The top-up paid through Razorpay order `order_id` (GSI1, one Query).
pub async fn topup_by_order(store: &Store, order_id: &str) -> Result<Option<TopUp>, StoreError> {
    let output = store
        .client
        .query()
        .table_name(&store.table)
        .index_name("GSI1")
        .key_condition_expression("GSI1PK = :pk AND GSI1SK = :sk")
        .expression_attribute_values(":pk", items::s(razorpay_order_gsi_pk(order_id)))
        .expression_attribute_values(":sk", items::s(TOPUP_SK))
        .send()
        .await
        .map_err(StoreError::from_sdk)?;
    output.items().first().map(read_topup).transpose()
}

/// What triggered a credit.
#[derive(Debug, Clone)]
pub enum Source {
    Confirm,
    Webhook { event: String, event_id: String },
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::Confirm => "confirm",
            Source::Webhook { event, .. } => event,
        }
    }
}

/// What the credit's first read found.
pub struct CreditState {
    pub topup: TopUp,
    pub wallet: Wallet,
    /// The last invoice number given this financial year; `None`: none yet.
    pub invoice_seq: Option<u64>,
    pub financial_year: String,
    /// The webhook event was already processed.
    pub event_seen: bool,
}

/// Reads the top-up, the wallet, the invoice sequence and (for a webhook) the event record
/// in one `BatchGetItem`. `None`: no such top-up.
pub async fn credit_state(
    store: &Store,
    topup_id: &str,
    user: &UserId,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<Option<CreditState>, StoreError> {
    let fy = financial_year(now);
    let mut keys = vec![
        items::key(topup_pk(topup_id), TOPUP_SK),
        items::key(user_pk(user), WALLET_SK),
        items::key(invoice_counter_pk(&fy), COUNTER_SK),
    ];
    if let Source::Webhook { event_id, .. } = source {
        keys.push(items::key(webhook_event_pk("razorpay", event_id), WEBHOOK_EVENT_SK));
    }
    let found = batch_get(store, keys).await?;
    let Some(topup) = found.get(&topup_pk(topup_id)).map(read_topup).transpose()? else { return Ok(None) };
    if topup.user_id != *user {
        return Ok(None);
    }
    let wallet = found
        .get(&user_pk(user))
        .map(read_wallet)
        .transpose()?
        .ok_or_else(|| StoreError::Corrupt(format!("wallet of {user} is missing")))?;
    let invoice_seq = found.get(&invoice_counter_pk(&fy)).map(|c| get_u64(c, "seq")).transpose()?;
    let event_seen = match source {
        Source::Webhook { event_id, .. } => found.contains_key(&webhook_event_pk("razorpay", event_id)),
        Source::Confirm => false,
    };
    Ok(Some(CreditState { topup, wallet, invoice_seq, financial_year: fy, event_seen }))
}

/// The outcome of one credit attempt.
#[derive(Debug)]
pub enum Credit {
    Credited {
        wallet: Wallet,
        topup: Box<TopUp>,
    },
    /// Someone else completed this top-up (or processed this event) first: nothing to do.
    AlreadyDone,
    /// The wallet or the invoice sequence moved under us: read again and retry.
    Conflict,
}

pub struct CreditSettings<'a> {
    pub gst_rate_percent: Decimal,
    pub invoice_prefix: &'a str,
}

/// The one `TransactWriteItems` that credits a payment, all or nothing:
/// 0. the top-up, `pending`/`failed` → `completed` (the exactly-once guard);
/// 1. the wallet, conditioned on the `version` read, so the balances written are right;
/// 2. the invoice sequence, conditioned on the number read: numbers have no gaps and no
///    duplicates, which GST invoices need. (An `ADD` outside the transaction would return
///    the number but leave a gap whenever the credit then failed or was a duplicate, and
///    an `ADD` inside cannot return it.) The price is contention on one item per year,
///    resolved by retrying; fine at this volume;
/// 3. the invoice; 4. and 5. the ledger entries (real, then bonus if any), each with the
///    balances after it; 6. for a webhook, its event record (`seen_event_item`, with a TTL).
pub async fn credit(
    store: &Store,
    state: &CreditState,
    payment_id: &str,
    source: &Source,
    settings: &CreditSettings<'_>,
    now: DateTime<Utc>,
) -> Result<Credit, StoreError> {
    let t = &state.topup;
    let w = &state.wallet;
    // A first-recharge-only bonus is void if another recharge got in first.
    let bonus = if t.first_recharge_only && w.recharge_count > 0 { Money::ZERO } else { t.bonus };
    let overflow = |e: shared::money::MoneyError| StoreError::Other(e.to_string());
    let real_after = w.real_cash.checked_add(t.amount).map_err(overflow)?;
    let bonus_after = w.bonus_cash.checked_add(bonus).map_err(overflow)?;
    let credited_after = w.total_credited.checked_add(t.amount).and_then(|c| c.checked_add(bonus)).map_err(overflow)?;
    let seq = state.invoice_seq.unwrap_or(0) + 1;
    let number = invoice_number(settings.invoice_prefix, &state.financial_year, seq);
    let GstSplit { taxable_value, gst, total } = gst_inclusive_split(t.amount, settings.gst_rate_percent);
    let at = items::time(now);
    let table = &store.table;
    let update = |pk: String, sk: &str, expr: &str, cond: &str, values: Vec<(&str, AttributeValue)>| {
        let mut b = Update::builder()
            .table_name(table)
            .set_key(Some(items::key(pk, sk)))
            .update_expression(expr)
            .condition_expression(cond);
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        if expr.contains("#status") || cond.contains("#status") {
            b = b.expression_attribute_names("#status", "status");
        }
        TransactWriteItem::builder().update(b.build().expect("update is complete")).build()
    };

    let mut writes = vec![
        update(
            topup_pk(&t.id),
            TOPUP_SK,
            "SET #status = :completed, payment_id = :pay, bonus_credited = :bonus, credited_by = :by, \
             completed_at = :at, invoice_number = :inv, financial_year = :fy, taxable_value = :taxable, \
             gst = :gst, gst_rate_percent = :rate REMOVE failure_reason",
            "#status IN (:pending, :failed)",
            vec![
                (":completed", items::s("completed")),
                (":pending", items::s("pending")),
                (":failed", items::s("failed")),
                (":pay", items::s(payment_id)),
                (":bonus", items::money(bonus)),
                (":by", items::s(source.name())),
                (":at", at.clone()),
                (":inv", items::s(&number)),
                (":fy", items::s(&state.financial_year)),
                (":taxable", items::money(taxable_value)),
                (":gst", items::money(gst)),
                (":rate", items::n(settings.gst_rate_percent)),
            ],
        ),
        update(
            user_pk(&t.user_id),
            WALLET_SK,
            "SET real_cash = :real, bonus_cash = :bonus, total_credited = :credited, \
             recharge_count = :count, version = :next, updated_at = :at",
            "version = :version",
            vec![
                (":real", items::money(real_after)),
                (":bonus", items::money(bonus_after)),
                (":credited", items::money(credited_after)),
                (":count", items::n(w.recharge_count + 1)),
                (":next", items::n(w.version + 1)),
                (":version", items::n(w.version)),
                (":at", at.clone()),
            ],
        ),
    ];
    let counter_cond = if state.invoice_seq.is_some() { "seq = :prev" } else { "attribute_not_exists(PK)" };
    let mut counter_values = vec![(":seq", items::n(seq)), (":at", at.clone())];
    if let Some(prev) = state.invoice_seq {
        counter_values.push((":prev", items::n(prev)));
    }
    writes.push(update(
        invoice_counter_pk(&state.financial_year),
        COUNTER_SK,
        "SET seq = :seq, updated_at = :at",
        counter_cond,
        counter_values,
    ));

    let mut invoice = items::key(topup_pk(&t.id), INVOICE_SK);
    invoice.insert("entity".into(), items::s("invoice"));
    invoice.insert("invoice_number".into(), items::s(&number));
    invoice.insert("financial_year".into(), items::s(&state.financial_year));
    invoice.insert("top_up_id".into(), items::s(&t.id));
    invoice.insert("user_id".into(), items::s(t.user_id.as_str()));
    invoice.insert("payment_id".into(), items::s(payment_id));
    invoice.insert("description".into(), items::s("AstroKiran wallet recharge"));
    invoice.insert("taxable_value".into(), items::money(taxable_value));
    invoice.insert("gst_rate_percent".into(), items::n(settings.gst_rate_percent));
    invoice.insert("gst".into(), items::money(gst));
    invoice.insert("total".into(), items::money(total));
    invoice.insert("gst_inclusive".into(), AttributeValue::Bool(true));
    invoice.insert("issued_at".into(), at.clone());
    invoice.insert("GSI1PK".into(), items::s(format!("INVOICES#{}", state.financial_year)));
    invoice.insert("GSI1SK".into(), items::s(&number));
    writes.push(put_new(table, invoice));

    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut entries =
        vec![("top_up", t.amount.decimal(), Decimal::ZERO, false, format!("Wallet recharge, invoice {number}"))];
    if bonus > Money::ZERO {
        entries.push(("top_up_bonus", Decimal::ZERO, bonus.decimal(), true, "Bonus cash on recharge".to_owned()));
    }
    // Balances after each entry, in order: real first, then the bonus.
    let (mut real, mut bon) = (w.real_cash.decimal(), w.bonus_cash.decimal());
    for (n, (kind, real_delta, bonus_delta, promotional, description)) in entries.into_iter().enumerate() {
        real += real_delta;
        bon += bonus_delta;
        let mut e = items::key(ledger_pk(&t.user_id), format!("TXN#{stamp}#{}#{}", t.id, n + 1));
        e.insert("entity".into(), items::s("ledger_entry"));
        e.insert("entry_id".into(), items::s(format!("{}-{}", t.id, n + 1)));
        e.insert("type".into(), items::s(kind));
        e.insert("real_delta".into(), items::n(real_delta));
        e.insert("bonus_delta".into(), items::n(bonus_delta));
        e.insert("real_balance_after".into(), items::n(real));
        e.insert("bonus_balance_after".into(), items::n(bon));
        e.insert("reference_type".into(), items::s("top_up"));
        e.insert("reference_id".into(), items::s(&t.id));
        e.insert("invoice_number".into(), items::s(&number));
        e.insert("promotional".into(), AttributeValue::Bool(promotional));
        e.insert("description".into(), items::s(description));
        e.insert("created_at".into(), at.clone());
        writes.push(put_new(table, e));
    }
    let event_index = writes.len();
    if let Source::Webhook { event, event_id } = source {
        let mut e = shared::store::seen_event_item("razorpay", event_id, now);
        e.insert("event".into(), items::s(event));
        e.insert("top_up_id".into(), items::s(&t.id));
        writes.push(put_new(table, e));
    }

    match store.client.transact_write_items().set_transact_items(Some(writes)).send().await {
        Ok(_) => {
            let wallet = Wallet {
                real_cash: real_after,
                bonus_cash: bonus_after,
                total: real_after.checked_add(bonus_after).map_err(overflow)?,
                total_credited: credited_after,
                total_debited: w.total_debited,
                recharge_count: w.recharge_count + 1,
                version: w.version + 1,
            };
            let mut topup = t.clone();
            topup.status = Status::Completed;
            topup.credit = Some(CreditRecord {
                payment_id: payment_id.to_owned(),
                bonus_credited: bonus,
                credited_by: source.name().to_owned(),
                completed_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                invoice: InvoiceView {
                    invoice_number: number,
                    financial_year: state.financial_year.clone(),
                    taxable_value,
                    gst_rate_percent: settings.gst_rate_percent,
                    gst,
                    total,
                    gst_inclusive: true,
                },
            });
            Ok(Credit::Credited { wallet, topup: Box::new(topup) })
        }
        Err(err) => match cancellation_reasons(&err) {
            Some(reasons) => {
                let failed = |i: usize| reasons.get(i).map(String::as_str) == Some("ConditionalCheckFailed");
                if failed(0) || (event_index < reasons.len() && failed(event_index)) {
                    Ok(Credit::AlreadyDone)
                } else {
                    tracing::info!(top_up_id = %t.id, reasons = %reasons.join(","), "credit raced; retrying");
                    Ok(Credit::Conflict)
                }
            }
            None => Err(StoreError::from_sdk(err)),
        },
    }
}

/// `payment.failed`: a pending top-up becomes failed; a completed one is left alone.
pub async fn mark_failed(store: &Store, topup_id: &str, reason: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(items::key(topup_pk(topup_id), TOPUP_SK)))
        .update_expression("SET #status = :failed, failure_reason = :reason, failed_at = :at")
        .condition_expression("#status = :pending")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":failed", items::s("failed"))
        .expression_attribute_values(":pending", items::s("pending"))
        .expression_attribute_values(":reason", items::s(reason.chars().take(200).collect::<String>()))
        .expression_attribute_values(":at", items::time(now))
        .send()
        .await;
    match result.map_err(StoreError::from_sdk) {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
