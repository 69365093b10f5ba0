//! Consultations, promo codes and earnings: the store side of [`crate::domain::booking`].
//!
//! | route | calls |
//! |---|---|
//! | `POST /consultations` | 1 BatchGetItem (idempotency record, wallet, astrologer, promo code, the customer's uses of it), 1 TransactWriteItems (below); a lost race reads and writes again |
//! | `GET /consultations/{id}` | 1 GetItem |
//! | `GET /consultations` | 1 Query: GSI1 `CUSTCONS#{sub}` (customer) or GSI2 `ASTROCONS#{sub}` (astrologer), newest first |
//! | `POST /consultations/{id}/extend` | 1 GetItem (the consultation), 1 BatchGetItem (idempotency record, wallet, astrologer), 1 TransactWriteItems (the consultation's minutes and hold, conditioned on the minutes read; the wallet's hold; the astrologer's schedule; the idempotency record); a lost race reads and writes again |
//! | `POST /consultations/{id}/start` | 1 GetItem, 1 TransactWriteItems (the consultation `scheduled` → `in_progress`, moved to the sweep's `IN_PROGRESS` partition by booked end; a ConditionCheck that the astrologer is not suspended: a start racing a suspension cannot win) |
//! | `POST /consultations/{id}/complete`, `/cancel` | 1 GetItem, 1 BatchGetItem (wallet, earnings, astrologer), 1 TransactWriteItems |
//! | the sweep (every 5 minutes) | 2 Queries on `ConsultationsDue` (`SCHEDULED` started by now - no-show grace; `IN_PROGRESS` ended by now - overrun grace), one page of at most [`SWEEP_PAGE`] each, oldest first (the rest next run), then per consultation the closing's calls |
//! | suspension | Query GSI2 `ASTROCONS#{id}` filtered to scheduled and in progress (all pages), then per consultation the closing's calls |
//! | `GET /astrologers/me/earnings` | 1 GetItem (earnings), 1 Query (its ledger) |
//!
//! The booking transaction: `consultation` (`put_new`: a unique booking id), the customer's
//! `wallet` + `ledger` (the hold, conditioned on the wallet version), `astrologer` (the
//! schedule with this booking, conditioned on the schedule version read and on the
//! astrologer still being listed: two overlapping bookings cannot both commit, and a
//! suspension in between wins), `promo` and `promo_user` (usage counted against both
//! limits in their conditions), `idempotency`, and `outbox` (`ConsultationBooked`).
//!
//! The closing transaction: `consultation` (conditioned on the status read), the refund to
//! the customer's `wallet` + `ledger`, the astrologer's earnings, their `astrologer`
//! schedule, on a full refund `promo` and `promo_user` (the use given back to both limits,
//! once, as the status condition makes the whole closing once), and `outbox`.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::astrologers::{read_astrologer, schedule_json};
use super::idempotency::{read_record, record_key};
use super::items::{self, Item, get_money, get_str, get_time, get_u64, opt_str};
use super::keys::{
    ASTROLOGER_SK, CONSULTATION_SK, CONSULTATIONS_DUE, DUE_AT, DUE_IN_PROGRESS, DUE_PK, DUE_RINGING, DUE_SCHEDULED,
    GSI1, GSI2, LISTED, PROMO_CODE_SK, WALLET_SK, astrologer_consultations_gsi2pk, consultation_pk,
    customer_consultations_gsi1pk, earnings_pk, idempotency_pk, promo_code_pk, promo_usage_sk, user_pk,
};
use super::offers::{offer_keys, read_offer_state};
use super::wallet::{Account, read_open_wallet, read_wallet};
use super::{Store, StoreError, Tx, TxError};
use crate::domain::astrologer::{AstrologerRecord, Booked, Mode};
use crate::domain::booking::Party;
use crate::domain::booking::call::{ChannelAction, ChannelEvent, ChannelLog, MeterSource};
use crate::domain::booking::chat::Side;
use crate::domain::booking::session::{self, Attendance, EndReason, Join, Quality};
use crate::domain::booking::{
    BookingId, BookingPlan, ClosedEvent, Closing, Consultation, ConsultationStatus, DiscountKind, ExtensionPlan,
    OfferOutcome, Price, PromoCode,
};
use crate::domain::idempotency::{IdempotencyKey, StoredResponse};
use crate::domain::offer::OfferRead;
use crate::domain::user::UserId;
use crate::domain::wallet::{Hold, Posting, Wallet};

// ---------------------------------------------------------------- items

fn hold_values(item: &mut Item, prefix: &str, hold: Hold) {
    item.insert(format!("{prefix}_real"), items::money(hold.real));
    item.insert(format!("{prefix}_bonus"), items::money(hold.bonus));
}

fn read_hold(item: &Item, prefix: &str) -> Result<Hold, StoreError> {
    Ok(Hold { real: get_money(item, &format!("{prefix}_real"))?, bonus: get_money(item, &format!("{prefix}_bonus"))? })
}

fn consultation_item(c: &Consultation) -> Item {
    let id = c.booking_id.as_str();
    let mut item = items::key(consultation_pk(id), CONSULTATION_SK);
    item.insert("entity".into(), items::s("consultation"));
    item.insert("booking_id".into(), items::s(id));
    item.insert("customer_id".into(), items::s(c.customer_id.as_str()));
    item.insert("astrologer_id".into(), items::s(c.astrologer_id.as_str()));
    item.insert("astrologer_name".into(), items::s(&c.astrologer_name));
    item.insert("mode".into(), items::s(c.mode.as_str()));
    item.insert("scheduled_at".into(), items::time(c.scheduled_at));
    item.insert("ends_at".into(), items::time(c.ends_at));
    item.insert("instant".into(), AttributeValue::Bool(c.instant));
    item.insert("rate_per_minute".into(), items::money(c.price.rate_per_minute));
    item.insert("minutes".into(), items::n(c.price.minutes));
    item.insert("gross".into(), items::money(c.price.gross));
    item.insert("discount".into(), items::money(c.price.discount));
    item.insert("amount".into(), items::money(c.price.amount));
    if let Some(share) = c.share_percent {
        item.insert("share_percent".into(), items::n(share));
    }
    if let Some(code) = &c.promo_code {
        item.insert("promo_code".into(), items::s(code));
    }
    if let Some(offer) = &c.offer_id {
        item.insert("offer_id".into(), items::s(offer));
        item.insert("free_minutes".into(), items::n(c.price.free_minutes));
        item.insert("free_value".into(), items::money(c.price.free_value));
    }
    if let Some(q) = &c.question {
        item.insert("question".into(), items::s(q));
    }
    hold_values(&mut item, "hold", c.hold);
    item.insert("status".into(), items::s(c.status.as_str()));
    item.insert("created_at".into(), items::time(c.created_at));
    item.insert("GSI1PK".into(), items::s(customer_consultations_gsi1pk(&c.customer_id)));
    item.insert("GSI1SK".into(), items::s(format!("{}#{id}", items::time_text(c.created_at))));
    item.insert("GSI2PK".into(), items::s(astrologer_consultations_gsi2pk(&c.astrologer_id)));
    item.insert("GSI2SK".into(), items::s(format!("{}#{id}", items::time_text(c.scheduled_at))));
    // The sweep finds it by when it is due: a ringing one by its ring's end, else by its start.
    match c.ring_expires_at {
        Some(at) => {
            item.insert("ring_expires_at".into(), items::time(at));
            item.insert(DUE_PK.into(), items::s(DUE_RINGING));
            item.insert(DUE_AT.into(), items::time(at));
        }
        None => {
            item.insert(DUE_PK.into(), items::s(DUE_SCHEDULED));
            item.insert(DUE_AT.into(), items::time(c.scheduled_at));
        }
    }
    item
}

/// The attributes of [`Attendance`], by party: (joined, seen).
fn attendance_names(party: Party) -> (&'static str, &'static str) {
    match party {
        Party::Customer => ("customer_joined_at", "customer_seen_at"),
        _ => ("astrologer_joined_at", "astrologer_seen_at"),
    }
}

pub(crate) fn read_consultation(item: &Item) -> Result<Consultation, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("consultation: {what}"));
    let opt_time = |name: &str| item.contains_key(name).then(|| get_time(item, name)).transpose();
    let status = ConsultationStatus::parse(get_str(item, "status")?).ok_or_else(|| corrupt("status"))?;
    let closing = if item.contains_key("charged_real") {
        Some(Closing {
            actual_minutes: get_u64(item, "actual_minutes").ok().map(|m| m as u32),
            measured_seconds: get_u64(item, "measured_seconds").ok().map(|m| m as u32),
            charged: read_hold(item, "charged")?,
            refunded: read_hold(item, "refunded")?,
            astrologer_earnings: get_money(item, "astrologer_earnings")?,
            platform_share: get_money(item, "platform_share")?,
            refund_percent: get_u64(item, "refund_percent").ok().map(|p| p as u32),
            free_minutes_used: get_u64(item, "free_minutes_used").map_or(0, |m| m as u32),
            promotional_earnings: items::money_or_zero(item, "promotional_earnings")?,
        })
    } else {
        None
    };
    let attendance = Attendance {
        customer_joined_at: opt_time("customer_joined_at")?,
        astrologer_joined_at: opt_time("astrologer_joined_at")?,
        customer_seen_at: opt_time("customer_seen_at")?,
        astrologer_seen_at: opt_time("astrologer_seen_at")?,
    };
    let mut c = Consultation {
        booking_id: BookingId::parse(get_str(item, "booking_id")?).ok_or_else(|| corrupt("booking_id"))?,
        customer_id: UserId::parse(get_str(item, "customer_id")?).map_err(|_| corrupt("customer_id"))?,
        astrologer_id: UserId::parse(get_str(item, "astrologer_id")?).map_err(|_| corrupt("astrologer_id"))?,
        astrologer_name: opt_str(item, "astrologer_name").unwrap_or_default().to_owned(),
        mode: Mode::parse(get_str(item, "mode")?).ok_or_else(|| corrupt("mode"))?,
        scheduled_at: get_time(item, "scheduled_at")?,
        ends_at: get_time(item, "ends_at")?,
        instant: item.get("instant").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        price: Price {
            rate_per_minute: get_money(item, "rate_per_minute")?,
            minutes: get_u64(item, "minutes")? as u32,
            gross: get_money(item, "gross")?,
            discount: get_money(item, "discount")?,
            free_minutes: get_u64(item, "free_minutes").map_or(0, |m| m as u32),
            free_value: items::money_or_zero(item, "free_value")?,
            amount: get_money(item, "amount")?,
        },
        share_percent: item
            .get("share_percent")
            .and_then(|v| v.as_n().ok())
            .map(|n| n.parse().map_err(|_| corrupt("share_percent")))
            .transpose()?,
        promo_code: opt_str(item, "promo_code").map(str::to_owned),
        offer_id: opt_str(item, "offer_id").map(str::to_owned),
        promotional: item.get("promotional").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        question: opt_str(item, "question").map(str::to_owned),
        hold: read_hold(item, "hold")?,
        status,
        created_at: get_time(item, "created_at")?,
        ring_expires_at: opt_time("ring_expires_at")?,
        started_at: opt_time("started_at")?,
        paid_until: None,
        meter_source: opt_str(item, "meter_source").and_then(MeterSource::parse),
        attendance,
        channel: read_channel(item)?,
        end_reason: opt_str(item, "end_reason").and_then(EndReason::parse),
        quality: None,
        closed_at: opt_time("closed_at")?,
        closing,
    };
    c.paid_until = session::paid_until(&c);
    if c.started_at.is_some() {
        let count = |name: &str| get_u64(item, name).map(|n| n as u32).unwrap_or(0);
        let first_reply = opt_time("astrologer_first_reply_at")?;
        c.quality = Some(Quality::of(&c, count("customer_messages"), count("astrologer_messages"), first_reply));
    }
    Ok(c)
}

/// Agora's channel events as kept on the consultation (`agora_events`, a list of maps in
/// arrival order: `n` notice id, `p` side, `a` join or leave, `t` Agora's time, `s` the
/// client's sequence).
fn read_channel(item: &Item) -> Result<ChannelLog, StoreError> {
    let Some(list) = item.get(AGORA_EVENTS) else { return Ok(ChannelLog::default()) };
    let corrupt = || StoreError::Corrupt("consultation: agora_events".into());
    let list = list.as_l().map_err(|_| corrupt())?;
    let events = list
        .iter()
        .map(|v| {
            let m = v.as_m().map_err(|_| corrupt())?;
            Ok(ChannelEvent {
                notice_id: get_str(m, "n")?.to_owned(),
                side: Side::parse(get_str(m, "p")?).ok_or_else(corrupt)?,
                action: ChannelAction::parse(get_str(m, "a")?).ok_or_else(corrupt)?,
                at: get_time(m, "t")?,
                seq: m.get("s").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(ChannelLog { events })
}

pub(super) fn channel_event_value(e: &ChannelEvent) -> AttributeValue {
    AttributeValue::M(Item::from([
        ("n".to_owned(), items::s(&e.notice_id)),
        ("p".to_owned(), items::s(e.side.as_str())),
        ("a".to_owned(), items::s(e.action.as_str())),
        ("t".to_owned(), items::time(e.at)),
        ("s".to_owned(), items::n(e.seq)),
    ]))
}

/// The consultation attribute holding Agora's channel events, and the one counting them
/// (what a writer conditions on: a concurrent event or a closing reads again).
pub(super) const AGORA_EVENTS: &str = "agora_events";
pub(super) const AGORA_EVENT_COUNT: &str = "agora_event_count";

pub(crate) fn promo_item(p: &PromoCode) -> Item {
    let mut item = items::key(promo_code_pk(&p.code), PROMO_CODE_SK);
    item.insert("entity".into(), items::s("promo_code"));
    item.insert("code".into(), items::s(&p.code));
    item.insert("discount_type".into(), items::s(p.kind.as_str()));
    item.insert("discount_value".into(), items::n(p.value));
    if let Some(cap) = p.max_discount {
        item.insert("max_discount".into(), items::money(cap));
    }
    item.insert("min_order".into(), items::money(p.min_order));
    item.insert("valid_from".into(), items::time(p.valid_from));
    if let Some(until) = p.valid_until {
        item.insert("valid_until".into(), items::time(until));
    }
    if let Some(limit) = p.usage_limit {
        item.insert("usage_limit".into(), items::n(limit));
    }
    item.insert("per_user_limit".into(), items::n(p.per_user_limit));
    if let Some(t) = p.user_type {
        item.insert("user_type".into(), items::s(t.as_str()));
    }
    item.insert("active".into(), AttributeValue::Bool(p.active));
    item.insert("used_count".into(), items::n(0));
    item.insert("GSI1PK".into(), items::s(super::keys::PROMO_CODES_GSI1PK));
    item.insert("GSI1SK".into(), items::s(&p.code));
    item
}

pub(crate) fn read_promo(item: &Item) -> Result<(PromoCode, u64), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("promo code: {what}"));
    let opt_time = |name: &str| item.contains_key(name).then(|| get_time(item, name)).transpose();
    let code = PromoCode {
        code: get_str(item, "code")?.to_owned(),
        kind: DiscountKind::parse(get_str(item, "discount_type")?).ok_or_else(|| corrupt("discount_type"))?,
        value: item
            .get("discount_value")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| corrupt("discount_value"))?,
        max_discount: item.contains_key("max_discount").then(|| get_money(item, "max_discount")).transpose()?,
        min_order: get_money(item, "min_order")?,
        valid_from: get_time(item, "valid_from")?,
        valid_until: opt_time("valid_until")?,
        usage_limit: get_u64(item, "usage_limit").ok(),
        per_user_limit: get_u64(item, "per_user_limit")?,
        user_type: opt_str(item, "user_type")
            .map(|t| crate::UserType::parse(t).map_err(|_| corrupt("user_type")))
            .transpose()?,
        active: item.get("active").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
    };
    Ok((code, get_u64(item, "used_count").unwrap_or(0)))
}

// ---------------------------------------------------------------- booking

/// What a booking reads first, in one `BatchGetItem`.
#[derive(Debug)]
pub struct BookingRead {
    pub first_response: Option<StoredResponse>,
    pub wallet: Option<Wallet>,
    pub astrologer: Option<AstrologerRecord>,
    /// The code and how often it has been used in all.
    pub promo: Option<(PromoCode, u64)>,
    /// How often this customer has used it.
    pub promo_used_by_customer: u64,
    /// The offer asked for (`None` inside: no such offer), the customer's progress, the
    /// segment thresholds.
    pub offer: Option<OfferRead>,
}

/// How a booking transaction ended.
#[derive(Debug, PartialEq, Eq)]
pub enum BookingWrite {
    Booked,
    /// Another request with the same `Idempotency-Key` committed first.
    KeyTaken,
    /// Something read has moved (wallet, schedule, promo usage, the booking id): read again.
    Moved,
}

/// What a start wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWrite {
    Started,
    /// It was no longer scheduled (started, cancelled or closed a moment ago).
    Moved,
    /// The astrologer is suspended (a suspension won the race).
    Suspended,
}

/// The most consultations of one kind (no-shows, overruns) a sweep run closes: its Query
/// reads one page of them, and the next run, 5 minutes later, the rest.
pub const SWEEP_PAGE: i32 = 100;

impl Store {
    pub async fn booking_state(
        &self,
        key: &IdempotencyKey,
        astrologer: &UserId,
        promo_code: Option<&str>,
        offer_id: Option<&str>,
    ) -> Result<BookingRead, StoreError> {
        let customer = &key.user;
        let mut keys = vec![
            record_key(key),
            items::key(user_pk(customer), WALLET_SK),
            items::key(user_pk(astrologer), ASTROLOGER_SK),
        ];
        if let Some(code) = promo_code {
            keys.push(items::key(promo_code_pk(code), PROMO_CODE_SK));
            keys.push(items::key(promo_code_pk(code), promo_usage_sk(customer)));
        }
        if let Some(id) = offer_id {
            keys.extend(offer_keys(customer, id));
        }
        // Two items share a partition here (the promo code and its usage): read by full key.
        let found = self.batch_get_all(keys).await?;
        let by =
            |pk: &str, sk: &str| found.iter().find(|i| opt_str(i, "PK") == Some(pk) && opt_str(i, "SK") == Some(sk));
        let idem_pk = idempotency_pk(&key.user, &key.key);
        let mut state = BookingRead {
            first_response: by(&idem_pk, super::keys::IDEMPOTENCY_SK).map(read_record).transpose()?,
            wallet: by(&user_pk(customer), WALLET_SK).map(read_open_wallet).transpose()?.flatten(),
            astrologer: by(&user_pk(astrologer), ASTROLOGER_SK).map(read_astrologer).transpose()?,
            promo: None,
            promo_used_by_customer: 0,
            offer: offer_id.map(|id| read_offer_state(&found, customer, id)).transpose()?,
        };
        if let Some(code) = promo_code {
            state.promo = by(&promo_code_pk(code), PROMO_CODE_SK).map(read_promo).transpose()?;
            state.promo_used_by_customer = by(&promo_code_pk(code), &promo_usage_sk(customer))
                .map(|i| get_u64(i, "uses").unwrap_or(0))
                .unwrap_or(0);
        }
        Ok(state)
    }

    pub async fn book(
        &self,
        plan: &BookingPlan,
        key: &IdempotencyKey,
        first_response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<BookingWrite, StoreError> {
        let c = &plan.consultation;
        let mut tx = self.tx();
        tx.put_new("consultation", consultation_item(c));
        tx.posting(&Account::Wallet(c.customer_id.clone()), &plan.posting);
        schedule_update(&mut tx, &c.astrologer_id, &plan.schedule, plan.schedule_version_read, true, None);
        if let Some(promo) = &plan.promo {
            let (condition, mut values) = match promo.usage_limit {
                Some(limit) => ("active = :yes AND used_count < :limit", vec![(":limit", items::n(limit))]),
                None => ("active = :yes", vec![]),
            };
            values.extend([(":yes", AttributeValue::Bool(true)), (":one", items::n(1))]);
            tx.update(
                "promo",
                items::key(promo_code_pk(&promo.code), PROMO_CODE_SK),
                "SET used_count = used_count + :one",
                condition,
                values,
            );
            tx.update(
                "promo_user",
                items::key(promo_code_pk(&promo.code), promo_usage_sk(&c.customer_id)),
                "SET uses = if_not_exists(uses, :zero) + :one, entity = :entity",
                "attribute_not_exists(uses) OR uses < :per_user",
                vec![
                    (":zero", items::n(0)),
                    (":one", items::n(1)),
                    (":per_user", items::n(promo.per_user_limit)),
                    (":entity", items::s("promo_usage")),
                ],
            );
        }
        if let Some(offer) = &plan.offer {
            tx.reserve_offer(offer, c);
        }
        tx.idempotency(key, first_response, now);
        tx.outbox(&plan.event);
        self.commit_keyed(tx).await
    }

    /// Commits a write that carries an idempotency record: who won, or that something read moved.
    async fn commit_keyed(&self, tx: Tx) -> Result<BookingWrite, StoreError> {
        match self.commit(tx).await {
            Ok(()) => Ok(BookingWrite::Booked),
            Err(TxError::Cancelled(c)) if c.failed("idempotency") => Ok(BookingWrite::KeyTaken),
            Err(TxError::Cancelled(c)) => {
                tracing::info!(cancelled = ?c, "raced; reading again");
                Ok(BookingWrite::Moved)
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// What extending `c` reads, in one `BatchGetItem`: the first response to `key`, the
    /// customer's wallet, the astrologer.
    pub async fn extension_state(
        &self,
        key: &IdempotencyKey,
        c: &Consultation,
    ) -> Result<(Option<StoredResponse>, Option<Wallet>, Option<AstrologerRecord>), StoreError> {
        let found = self
            .batch_get_all(vec![
                record_key(key),
                items::key(user_pk(&c.customer_id), WALLET_SK),
                items::key(user_pk(&c.astrologer_id), ASTROLOGER_SK),
            ])
            .await?;
        let by =
            |pk: &str, sk: &str| found.iter().find(|i| opt_str(i, "PK") == Some(pk) && opt_str(i, "SK") == Some(sk));
        Ok((
            by(&idempotency_pk(&key.user, &key.key), super::keys::IDEMPOTENCY_SK).map(read_record).transpose()?,
            by(&user_pk(&c.customer_id), WALLET_SK).map(read_open_wallet).transpose()?.flatten(),
            by(&user_pk(&c.astrologer_id), ASTROLOGER_SK).map(read_astrologer).transpose()?,
        ))
    }

    /// Writes `plan` (one transaction): more minutes on the consultation while it runs and
    /// still has the minutes read, the added hold, the astrologer's schedule, the first response.
    pub async fn extend(
        &self,
        plan: &ExtensionPlan,
        key: &IdempotencyKey,
        first_response: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<BookingWrite, StoreError> {
        let c = &plan.consultation;
        let mut tx = self.tx();
        let mut values = vec![
            (":live", items::s(ConsultationStatus::InProgress.as_str())),
            (":read", items::n(plan.minutes_read)),
            (":minutes", items::n(c.price.minutes)),
            (":gross", items::money(c.price.gross)),
            (":amount", items::money(c.price.amount)),
            (":hold_real", items::money(c.hold.real)),
            (":hold_bonus", items::money(c.hold.bonus)),
            (":ends_at", items::time(c.ends_at)),
        ];
        let mut set = String::from(
            "SET minutes = :minutes, gross = :gross, amount = :amount, hold_real = :hold_real, \
             hold_bonus = :hold_bonus, ends_at = :ends_at",
        );
        if let Some(paid) = c.paid_until {
            set.push_str(", DUE_AT = :paid");
            values.push((":paid", items::time(paid)));
        }
        tx.update(
            "consultation",
            items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK),
            &set,
            "#status = :live AND minutes = :read",
            values,
        );
        tx.posting(&Account::Wallet(c.customer_id.clone()), &plan.posting);
        schedule_update(&mut tx, &c.astrologer_id, &plan.schedule, plan.schedule_version_read, false, None);
        tx.idempotency(key, first_response, now);
        self.commit_keyed(tx).await
    }

    /// Creates a promo code (operations and tests); `false` if the code exists.
    pub async fn create_promo_code(&self, promo: &PromoCode) -> Result<bool, StoreError> {
        self.put_once(promo_item(promo)).await
    }

    // ------------------------------------------------------------ reads

    pub async fn consultation(&self, id: &BookingId) -> Result<Option<Consultation>, StoreError> {
        self.get(items::key(consultation_pk(id.as_str()), CONSULTATION_SK))
            .await?
            .as_ref()
            .map(read_consultation)
            .transpose()
    }

    /// A page of `user`'s consultations as customer or astrologer, newest first (one Query).
    pub async fn consultations_of(
        &self,
        user: &UserId,
        as_astrologer: bool,
        status: Option<ConsultationStatus>,
        limit: i32,
        after: Option<&str>,
    ) -> Result<(Vec<Consultation>, Option<String>), StoreError> {
        let (index, pk_attr, sk_attr, pk) = if as_astrologer {
            (GSI2, "GSI2PK", "GSI2SK", astrologer_consultations_gsi2pk(user))
        } else {
            (GSI1, "GSI1PK", "GSI1SK", customer_consultations_gsi1pk(user))
        };
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(format!("{pk_attr} = :pk"))
            .expression_attribute_values(":pk", items::s(&pk))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(status) = status {
            request = request
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", items::s(status.as_str()));
        }
        if let Some(sk) = after {
            // The booking id ends the index's sort key, and names the table key.
            let id = sk.rsplit('#').next().unwrap_or_default();
            request = request.set_exclusive_start_key(Some(Item::from([
                ("PK".to_owned(), items::s(consultation_pk(id))),
                ("SK".to_owned(), items::s(CONSULTATION_SK)),
                (pk_attr.to_owned(), items::s(&pk)),
                (sk_attr.to_owned(), items::s(sk)),
            ])));
        }
        let output = request.send().await.map_err(StoreError::from_sdk)?;
        let list = output.items().iter().map(read_consultation).collect::<Result<Vec<_>, _>>()?;
        let next = output.last_evaluated_key().and_then(|k| k.get(sk_attr)).and_then(|v| v.as_s().ok()).cloned();
        Ok((list, next))
    }

    /// The oldest open consultations in `status` due at or before `cutoff` for the sweep
    /// (scheduled: by start; in progress: by booked end), at most [`SWEEP_PAGE`] (one
    /// Query); `true` with them when more are due (the next run takes them).
    pub async fn consultations_due(
        &self,
        status: ConsultationStatus,
        cutoff: DateTime<Utc>,
    ) -> Result<(Vec<Consultation>, bool), StoreError> {
        let partition = match status {
            ConsultationStatus::Scheduled => DUE_SCHEDULED,
            ConsultationStatus::Ringing => DUE_RINGING,
            ConsultationStatus::InProgress => DUE_IN_PROGRESS,
            _ => return Ok((Vec::new(), false)),
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CONSULTATIONS_DUE)
            .key_condition_expression(format!("{DUE_PK} = :pk AND {DUE_AT} <= :cutoff"))
            .expression_attribute_values(":pk", items::s(partition))
            .expression_attribute_values(":cutoff", items::s(items::time_text(cutoff)))
            .limit(SWEEP_PAGE)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let due = output.items().iter().map(read_consultation).collect::<Result<Vec<_>, _>>()?;
        Ok((due, output.last_evaluated_key().is_some()))
    }

    /// Every consultation in progress (all pages of the sweep's `IN_PROGRESS` partition): a
    /// session can lapse whatever its paid end, so the sweep looks at each of them every run.
    pub async fn consultations_in_progress(&self) -> Result<Vec<Consultation>, StoreError> {
        let all = self
            .index_items(CONSULTATIONS_DUE, &format!("{DUE_PK} = :pk"), None, vec![(":pk", items::s(DUE_IN_PROGRESS))])
            .await?;
        all.iter().map(read_consultation).collect()
    }

    /// The astrologer's scheduled, ringing and in-progress consultations in their consultations index
    /// (GSI2, eventually consistent: a caller that must not miss one also reads the schedule
    /// on the astrologer's item).
    pub async fn open_consultations_of(&self, astrologer: &UserId) -> Result<Vec<Consultation>, StoreError> {
        let open = self
            .index_items(
                GSI2,
                "GSI2PK = :pk",
                Some("#status IN (:scheduled, :ringing, :in_progress)"),
                vec![
                    (":pk", items::s(astrologer_consultations_gsi2pk(astrologer))),
                    (":scheduled", items::s(ConsultationStatus::Scheduled.as_str())),
                    (":ringing", items::s(ConsultationStatus::Ringing.as_str())),
                    (":in_progress", items::s(ConsultationStatus::InProgress.as_str())),
                ],
            )
            .await?;
        open.iter().map(read_consultation).collect()
    }

    // ------------------------------------------------------------ lifecycle

    /// The astrologer opens the session (`scheduled` started, or `ringing` accepted before
    /// the ring ended) → `in_progress`, the astrologer joined, on the sweep's `IN_PROGRESS`
    /// partition, while the astrologer is not suspended, in one transaction.
    pub async fn open_session(&self, c: &Consultation, now: DateTime<Utc>) -> Result<StartWrite, StoreError> {
        let mut tx = self.tx();
        let mut condition = String::from("#status = :from");
        let mut values = vec![
            (":started", items::s(ConsultationStatus::InProgress.as_str())),
            (":from", items::s(c.status.as_str())),
            (":now", items::time(now)),
            (":due", items::s(DUE_IN_PROGRESS)),
            (":ends_at", items::time(c.ends_at)),
        ];
        if c.status == ConsultationStatus::Ringing {
            condition.push_str(" AND ring_expires_at > :now_text");
            values.push((":now_text", items::s(items::time_text(now))));
        }
        tx.update(
            "consultation",
            items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK),
            "SET #status = :started, astrologer_joined_at = :now, astrologer_seen_at = :now, DUE_PK = :due, \
             DUE_AT = :ends_at REMOVE ring_expires_at",
            &condition,
            values,
        );
        tx.check(
            "astrologer",
            items::key(user_pk(&c.astrologer_id), ASTROLOGER_SK),
            "attribute_exists(PK) AND attribute_not_exists(suspended)",
            vec![],
        );
        match self.commit(tx).await {
            Ok(()) => Ok(StartWrite::Started),
            Err(TxError::Cancelled(c)) if c.failed("astrologer") => Ok(StartWrite::Suspended),
            Err(TxError::Cancelled(_)) => Ok(StartWrite::Moved),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Records `join` (one conditional UpdateItem): the party's join and, when it completes
    /// the pair, the meter's start with its `ConsultationStarted` (then one transaction). `Ok(false)`: the consultation moved (ended, or the other
    /// party joined at the same moment): read again.
    pub async fn join_session(&self, c: &Consultation, join: &Join, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let (joined, seen) = attendance_names(join.party);
        let other = match join.party {
            Party::Customer => attendance_names(Party::Astrologer).0,
            _ => attendance_names(Party::Customer).0,
        };
        let mut values = vec![
            (":live", items::s(ConsultationStatus::InProgress.as_str())),
            (":at", items::time(join.at)),
            (":now", items::time(now)),
        ];
        let (expression, condition) = match join.meter_starts {
            Some(start) => {
                let mut started = c.clone();
                started.started_at = Some(start);
                let paid = session::paid_until(&started).unwrap_or(start);
                values.push((":start", items::time(start)));
                values.push((":paid", items::time(paid)));
                values.push((":app", items::s(MeterSource::App.as_str())));
                (
                    format!(
                        "SET {joined} = :at, {seen} = :now, started_at = :start, DUE_AT = :paid, meter_source = :app"
                    ),
                    format!("#status = :live AND attribute_exists({other}) AND attribute_not_exists(started_at)"),
                )
            }
            // The other has not joined: if they join meanwhile, this must start the meter instead.
            None => (
                format!("SET {joined} = :at, {seen} = :now"),
                format!("#status = :live AND (attribute_not_exists({other}) OR attribute_exists(started_at))"),
            ),
        };
        let key = items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK);
        let Some(start) = join.meter_starts else {
            return self.update_if(key, &expression, &condition, values).await;
        };
        // The meter's start is an event: written with it, once.
        let mut tx = self.tx();
        tx.update("consultation", key, &expression, &condition, values);
        tx.outbox(&c.started_event(start));
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// `party` was heard from at `now` (a heartbeat or a message): one UpdateItem while the
    /// session runs. `Ok(false)`: it no longer runs.
    pub async fn seen_in_session(
        &self,
        c: &Consultation,
        party: Party,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (_, seen) = attendance_names(party);
        let key = items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK);
        let values = vec![(":live", items::s(ConsultationStatus::InProgress.as_str())), (":now", items::time(now))];
        self.update_if(key, &format!("SET {seen} = :now"), "#status = :live", values).await
    }

    /// The customer's wallet, the astrologer's earnings and the astrologer (one BatchGetItem).
    pub async fn closing_state(
        &self,
        c: &Consultation,
    ) -> Result<(Wallet, Wallet, Option<AstrologerRecord>), StoreError> {
        let found = self
            .batch_get(vec![
                items::key(user_pk(&c.customer_id), WALLET_SK),
                items::key(earnings_pk(&c.astrologer_id), WALLET_SK),
                items::key(user_pk(&c.astrologer_id), ASTROLOGER_SK),
            ])
            .await?;
        let wallet = found
            .get(&user_pk(&c.customer_id))
            .filter(|i| opt_str(i, "SK") == Some(WALLET_SK))
            .map(read_wallet)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt(format!("wallet of {} is missing", c.customer_id)))?;
        let earnings =
            found.get(&earnings_pk(&c.astrologer_id)).map(read_wallet).transpose()?.unwrap_or_else(Wallet::empty);
        let astrologer = found
            .get(&user_pk(&c.astrologer_id))
            .filter(|i| opt_str(i, "SK") == Some(ASTROLOGER_SK))
            .map(read_astrologer)
            .transpose()?;
        Ok((wallet, earnings, astrologer))
    }

    /// Closes a consultation (completed, cancelled or no-show) all at once: its status and
    /// money, the refund to the customer, the astrologer's earnings, their schedule, the
    /// promo code's use given back (`promo_back`), and the event. `Ok(false)`: something
    /// read has moved; read again.
    #[allow(clippy::too_many_arguments)]
    pub async fn close_consultation(
        &self,
        c: &Consultation,
        to: ConsultationStatus,
        closing: &Closing,
        refund: Option<&Posting>,
        earnings: Option<&Posting>,
        schedule: Option<(&[Booked], u64)>,
        promo_back: Option<&str>,
        offer: Option<&OfferOutcome<'_>>,
        by: &str,
        end_reason: Option<EndReason>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        let mut set = vec![
            "#status = :to",
            "closed_at = :now",
            "charged_real = :charged_real",
            "charged_bonus = :charged_bonus",
            "refunded_real = :refunded_real",
            "refunded_bonus = :refunded_bonus",
            "astrologer_earnings = :earnings",
            "platform_share = :platform",
            "closed_by = :by",
        ];
        let mut values = vec![
            (":to", items::s(to.as_str())),
            (":from", items::s(c.status.as_str())),
            (":now", items::time(now)),
            (":charged_real", items::money(closing.charged.real)),
            (":charged_bonus", items::money(closing.charged.bonus)),
            (":refunded_real", items::money(closing.refunded.real)),
            (":refunded_bonus", items::money(closing.refunded.bonus)),
            (":earnings", items::money(closing.astrologer_earnings)),
            (":platform", items::money(closing.platform_share)),
            (":by", items::s(by)),
        ];
        if let Some(m) = closing.actual_minutes {
            set.push("actual_minutes = :minutes");
            values.push((":minutes", items::n(m)));
        }
        if let Some(seconds) = closing.measured_seconds {
            set.push("measured_seconds = :seconds");
            values.push((":seconds", items::n(seconds)));
        }
        if let Some(reason) = end_reason {
            set.push("end_reason = :reason");
            values.push((":reason", items::s(reason.as_str())));
        }
        if let Some(p) = closing.refund_percent {
            set.push("refund_percent = :percent");
            values.push((":percent", items::n(p)));
        }
        if closing.free_minutes_used > 0 {
            set.extend(["free_minutes_used = :free", "promotional_earnings = :promotional", "promotional = :yes"]);
            values.extend([
                (":free", items::n(closing.free_minutes_used)),
                (":promotional", items::money(closing.promotional_earnings)),
                (":yes", AttributeValue::Bool(true)),
            ]);
        }
        // The closing was computed from this read: the meter's start, the minutes held and (for
        // a lapse) when each party was last heard from. A join, an extension or a reconnect
        // that commits in between makes this fail, and the closing reads and decides again.
        let mut condition = vec!["#status = :from".to_owned(), "minutes = :minutes_read".to_owned()];
        values.push((":minutes_read", items::n(c.price.minutes)));
        let mut as_read = |(name, placeholder): (&str, &'static str), at: Option<DateTime<Utc>>| match at {
            Some(t) => {
                condition.push(format!("{name} = {placeholder}"));
                values.push((placeholder, items::time(t)));
            }
            None => condition.push(format!("attribute_not_exists({name})")),
        };
        as_read(("started_at", ":started_read"), c.started_at);
        if end_reason == Some(EndReason::Lapse) {
            as_read(("customer_seen_at", ":customer_seen_read"), c.attendance.customer_seen_at);
            as_read(("astrologer_seen_at", ":astrologer_seen_read"), c.attendance.astrologer_seen_at);
            // Billed from Agora: a rejoin Agora reported in between means it is not over.
            if !c.channel.is_empty() {
                condition.push(format!("{AGORA_EVENT_COUNT} = :agora_events_read"));
                values.push((":agora_events_read", items::n(c.channel.events.len())));
            }
        }
        tx.update(
            "consultation",
            items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK),
            &format!("SET {} REMOVE DUE_PK, DUE_AT", set.join(", ")),
            &condition.join(" AND "),
            values,
        );
        if let Some(p) = refund {
            tx.posting(&Account::Wallet(c.customer_id.clone()), p);
        }
        if let Some(p) = earnings {
            tx.posting(&Account::Earnings(c.astrologer_id.clone()), p);
        }
        if let Some((booked, version)) = schedule {
            let completed = (to == ConsultationStatus::Completed).then_some(());
            schedule_update(&mut tx, &c.astrologer_id, booked, version, false, completed);
        }
        if let Some(code) = promo_back {
            // The booking counted this use in its own transaction, so both counts hold it.
            let one = || vec![(":one", items::n(1))];
            tx.update(
                "promo",
                items::key(promo_code_pk(code), PROMO_CODE_SK),
                "SET used_count = used_count - :one",
                "used_count >= :one",
                one(),
            );
            tx.update(
                "promo_user",
                items::key(promo_code_pk(code), promo_usage_sk(&c.customer_id)),
                "SET uses = uses - :one",
                "uses >= :one",
                one(),
            );
        }
        if let Some(outcome) = offer {
            tx.settle_offer(c, outcome, now);
        }
        match c.closed_event(to, closing, by, now) {
            ClosedEvent::Completed(event) => tx.outbox(&event),
            ClosedEvent::Cancelled(event) => tx.outbox(&event),
        };
        let id = c.booking_id.to_string();
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(cancelled)) => {
                tracing::info!(booking_id = %id, cancelled = ?cancelled, "closing raced; reading again");
                Ok(false)
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }
}

/// The astrologer's schedule as `booked`, conditioned on the version read (and, for a new
/// booking, on the astrologer still being listed); a completion also counts the consultation.
fn schedule_update(
    tx: &mut Tx,
    astrologer: &UserId,
    booked: &[Booked],
    version: u64,
    booking: bool,
    completed: Option<()>,
) {
    let mut condition = String::from("(attribute_not_exists(schedule_version) OR schedule_version = :version)");
    let mut values = vec![
        (":schedule", items::s(schedule_json(booked))),
        (":version", items::n(version)),
        (":next", items::n(version + 1)),
    ];
    if booking {
        condition.push_str(" AND CATALOGUE = :listed");
        values.push((":listed", items::s(LISTED)));
    }
    let mut expression = String::from("SET schedule = :schedule, schedule_version = :next");
    if completed.is_some() {
        expression.push_str(", consultation_count = if_not_exists(consultation_count, :zero) + :one");
        values.extend([(":zero", items::n(0)), (":one", items::n(1))]);
    }
    tx.update("astrologer", items::key(user_pk(astrologer), ASTROLOGER_SK), &expression, &condition, values);
}
