//! Offers: definitions with their counters, reservations, each customer's progress and the
//! platform's promotions ledger (the store side of [`crate::domain::offer`]).
//!
//! | route or trigger | calls |
//! |---|---|
//! | `POST /admin/offers` | 1 TransactWriteItems (the offer `attribute_not_exists` + the audit entry) |
//! | `GET /admin/offers` | 1 Query: GSI1 `OFFERS` (all pages) |
//! | `POST /admin/offers/{id}/deactivate` | 1 TransactWriteItems (the offer, `active = true`, + the audit entry), 1 GetItem |
//! | `GET /admin/offers/{id}/report` | 1 GetItem (the counters are on the offer) |
//! | `PUT /admin/offer-segments` | 1 TransactWriteItems (the thresholds + the audit entry) |
//! | `GET /offers` | 1 Query (GSI1 `OFFERS`) and 1 BatchGetItem (the caller's progress, their wallet's recharge count, the thresholds), at once |
//! | `POST /consultations` with an offer | the booking's BatchGetItem reads the offer, the progress and the thresholds too; its transaction reserves (below) |
//! | customer-progress consumer | 1 BatchGetItem (the progress, the thresholds), 1 TransactWriteItems (the event's record `attribute_not_exists`, the progress conditioned on its `version`) |
//!
//! Reserving (in the booking's transaction): the offer's `taken` and `reservations` counted
//! (`active`, and `taken` under the total limit, in the condition), the customer's
//! `taken_{offer}` on their progress (under the per-customer limit), and the reservation
//! item. Settling (in the closing's transaction, once, as the closing is): the reservation
//! `reserved` → `consumed` or `released`; consumed: the offer's consumption counters and a
//! promotions ledger entry (`attribute_not_exists`) of what the promotions paid the
//! astrologer; released: `taken` given back to both limits. A recharge bonus is consumed by
//! the credit's transaction ([`Tx::consume_recharge_offer`]): `taken`, `consumptions` and
//! `bonus_spent` on the offer and the customer's uses, under the same two limits.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::items::{self, Item, get_money, get_str, get_time, get_u64, opt_str};
use super::keys::{
    GSI1, OFFER_SETTINGS_PK, OFFER_SK, OFFERS_GSI1PK, PROGRESS_SK, PROMOTIONS_PK, SEGMENTS_SK, offer_pk,
    offer_reservation_sk, offer_taken_attribute, progress_event_sk, progress_pk,
};
use super::tx::committed;
use super::{Store, StoreError, TTL_ATTRIBUTE, Tx, TxError};
use crate::domain::booking::{Consultation, OfferOutcome};
use crate::domain::events::{Envelope, OfferUnlocked};
use crate::domain::offer::{
    CustomerProgress, MilestoneReached, Offer, OfferCounters, OfferRead, Segment, SegmentThresholds,
};
use crate::domain::staff::AuditEntry;
use crate::domain::user::UserId;

/// How long the consumer remembers an event it counted: past SQS's longest retention (14 days).
const EVENT_RECORD_TTL: Duration = Duration::days(30);

// ---------------------------------------------------------------- items

fn offer_item(o: &Offer, created_at: DateTime<Utc>) -> Item {
    let mut item = items::key(offer_pk(&o.offer_id), OFFER_SK);
    item.insert("entity".into(), items::s("offer"));
    // The definition as one JSON document (staff read it back as it was given), the counters
    // as Numbers the transactions move.
    item.insert("definition".into(), items::s(serde_json::to_string(o).expect("an offer serializes")));
    item.insert("active".into(), AttributeValue::Bool(o.active));
    for counter in ["taken", "reservations", "consumptions", "releases", "free_minutes_spent"] {
        item.insert(counter.into(), items::n(0));
    }
    item.insert("promotions_spent".into(), items::money(crate::Money::ZERO));
    item.insert("bonus_spent".into(), items::money(crate::Money::ZERO));
    item.insert("created_at".into(), items::time(created_at));
    item.insert("GSI1PK".into(), items::s(OFFERS_GSI1PK));
    item.insert("GSI1SK".into(), items::s(format!("{}#{}", items::time_text(created_at), o.offer_id)));
    item
}

fn read_offer(item: &Item) -> Result<(Offer, OfferCounters), StoreError> {
    let mut offer: Offer = serde_json::from_str(get_str(item, "definition")?)
        .map_err(|e| StoreError::Corrupt(format!("offer definition: {e}")))?;
    offer.active = item.get("active").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    let counters = OfferCounters {
        taken: get_u64(item, "taken")?,
        reservations: get_u64(item, "reservations")?,
        consumptions: get_u64(item, "consumptions")?,
        releases: get_u64(item, "releases")?,
        free_minutes_spent: get_u64(item, "free_minutes_spent")?,
        promotions_spent: get_money(item, "promotions_spent")?,
        bonus_spent: items::money_or_zero(item, "bonus_spent")?,
    };
    Ok((offer, counters))
}

pub(crate) fn read_progress(item: &Item) -> Result<CustomerProgress, StoreError> {
    let count = |name: &str| get_u64(item, name).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let milestones: Vec<MilestoneReached> = match opt_str(item, "milestones") {
        Some(text) => serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("milestones: {e}")))?,
        None => Vec::new(),
    };
    let offers_taken = item
        .keys()
        .filter_map(|name| {
            let id = name.strip_prefix("taken_")?;
            Some((id.to_owned(), count(name)))
        })
        .collect();
    Ok(CustomerProgress {
        completed_consultations: count("completed_consultations"),
        spend: items::money_or_zero(item, "spend")?,
        recharges: count("recharges"),
        last_activity: item.contains_key("last_activity").then(|| get_time(item, "last_activity")).transpose()?,
        milestones,
        offers_taken,
        version: get_u64(item, "version").unwrap_or(0),
    })
}

fn read_thresholds(item: &Item) -> Result<SegmentThresholds, StoreError> {
    Ok(SegmentThresholds {
        lapsed_after_days: u32::try_from(get_u64(item, "lapsed_after_days")?).unwrap_or(u32::MAX),
        high_value_spend: get_money(item, "high_value_spend")?,
    })
}

/// What the booking reads of an offer, by key, in its `BatchGetItem`.
pub(crate) fn offer_keys(customer: &UserId, offer_id: &str) -> [Item; 3] {
    [
        items::key(offer_pk(offer_id), OFFER_SK),
        items::key(progress_pk(customer), PROGRESS_SK),
        items::key(OFFER_SETTINGS_PK, SEGMENTS_SK),
    ]
}

/// The offer, the customer's progress (empty if none yet) and the thresholds (the defaults
/// until staff set them) among `found`.
pub(crate) fn read_offer_state(found: &[Item], customer: &UserId, offer_id: &str) -> Result<OfferRead, StoreError> {
    let offer = found.iter().find(|i| is(i, &offer_pk(offer_id), OFFER_SK)).map(read_offer).transpose()?;
    let (progress, thresholds) = progress_and_thresholds(found, customer)?;
    Ok(OfferRead { offer, progress, thresholds })
}

fn is(item: &Item, pk: &str, sk: &str) -> bool {
    opt_str(item, "PK") == Some(pk) && opt_str(item, "SK") == Some(sk)
}

/// The customer's progress (empty if none yet) and the thresholds (the defaults until staff
/// set them) among `found`.
fn progress_and_thresholds(
    found: &[Item],
    customer: &UserId,
) -> Result<(CustomerProgress, SegmentThresholds), StoreError> {
    let progress = found.iter().find(|i| is(i, &progress_pk(customer), PROGRESS_SK));
    let thresholds = found.iter().find(|i| is(i, OFFER_SETTINGS_PK, SEGMENTS_SK));
    Ok((
        progress.map(read_progress).transpose()?.unwrap_or_default(),
        thresholds.map(read_thresholds).transpose()?.unwrap_or_default(),
    ))
}

/// One event counted into a customer's progress, as the consumer decided it.
#[derive(Debug)]
pub struct ProgressStep<'a> {
    pub event_id: &'a str,
    pub before: &'a CustomerProgress,
    pub after: &'a CustomerProgress,
    pub segment: Segment,
    /// The offers it unlocked, told to the customer.
    pub unlocked: Vec<Envelope<OfferUnlocked>>,
}

/// What a progress write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressWrite {
    Counted,
    /// The event was counted before (a redelivery): nothing written.
    AlreadyCounted,
    /// Another event moved the progress since it was read: read again.
    Moved,
}

impl Tx {
    /// Reserves `offer` for booking `c` (its free minutes): both limits in the conditions.
    pub(crate) fn reserve_offer(&mut self, offer: &Offer, c: &Consultation) -> &mut Self {
        self.offer_taken(offer, "reservations = reservations + :one", vec![]);
        self.customer_takes(offer, &c.customer_id);
        let mut reservation = items::key(offer_pk(&offer.offer_id), offer_reservation_sk(c.booking_id.as_str()));
        reservation.insert("entity".into(), items::s("offer_reservation"));
        reservation.insert("offer_id".into(), items::s(&offer.offer_id));
        reservation.insert("booking_id".into(), items::s(c.booking_id.as_str()));
        reservation.insert("customer_id".into(), items::s(c.customer_id.as_str()));
        reservation.insert("free_minutes".into(), items::n(c.price.free_minutes));
        reservation.insert("status".into(), items::s("reserved"));
        reservation.insert("created_at".into(), items::time(c.created_at));
        self.put_new("offer_reservation", reservation)
    }

    /// Consumes or releases the offer `c` reserved (in its closing's transaction, which
    /// happens once): the reservation conditioned on still being reserved.
    pub(crate) fn settle_offer(&mut self, c: &Consultation, outcome: &OfferOutcome, now: DateTime<Utc>) -> &mut Self {
        let (offer_id, to) = match outcome {
            OfferOutcome::Consumed { offer_id, .. } => (*offer_id, "consumed"),
            OfferOutcome::Released { offer_id } => (*offer_id, "released"),
        };
        self.update(
            "offer_reservation",
            items::key(offer_pk(offer_id), offer_reservation_sk(c.booking_id.as_str())),
            "SET #status = :to, settled_at = :now",
            "#status = :reserved",
            vec![(":to", items::s(to)), (":reserved", items::s("reserved")), (":now", items::time(now))],
        );
        let offer_key = items::key(offer_pk(offer_id), OFFER_SK);
        match outcome {
            OfferOutcome::Consumed { free_minutes, promotional_earnings, .. } => {
                self.update(
                    "offer",
                    offer_key,
                    "SET consumptions = consumptions + :one, free_minutes_spent = free_minutes_spent + :minutes, \
                     promotions_spent = promotions_spent + :paid",
                    "attribute_exists(PK)",
                    vec![
                        (":one", items::n(1)),
                        (":minutes", items::n(*free_minutes)),
                        (":paid", items::money(*promotional_earnings)),
                    ],
                );
                let mut entry = items::key(PROMOTIONS_PK, c.booking_id.as_str());
                entry.insert("entity".into(), items::s("promotion_entry"));
                entry.insert("offer_id".into(), items::s(offer_id));
                entry.insert("booking_id".into(), items::s(c.booking_id.as_str()));
                entry.insert("astrologer_id".into(), items::s(c.astrologer_id.as_str()));
                entry.insert("customer_id".into(), items::s(c.customer_id.as_str()));
                entry.insert("free_minutes".into(), items::n(*free_minutes));
                entry.insert("amount".into(), items::money(*promotional_earnings));
                entry.insert("created_at".into(), items::time(now));
                self.put_new("promotion_entry", entry);
            }
            OfferOutcome::Released { .. } => {
                let one = || vec![(":one", items::n(1))];
                self.update(
                    "offer",
                    offer_key,
                    "SET taken = taken - :one, releases = releases + :one",
                    "taken >= :one",
                    one(),
                );
                let taken = offer_taken_attribute(offer_id);
                self.update(
                    "offer_customer",
                    items::key(progress_pk(&c.customer_id), PROGRESS_SK),
                    &format!("SET #{taken} = #{taken} - :one"),
                    &format!("#{taken} >= :one"),
                    one(),
                );
            }
        }
        self
    }
}

impl Tx {
    /// Consumes recharge-bonus `offer` for `customer`'s top-up `top_up_id` (in the credit's
    /// transaction, which happens once): both limits in the conditions, as a reservation's.
    pub(crate) fn consume_recharge_offer(
        &mut self,
        offer: &Offer,
        customer: &UserId,
        top_up_id: &str,
        bonus: crate::Money,
    ) -> &mut Self {
        self.offer_taken(
            offer,
            "consumptions = consumptions + :one, bonus_spent = if_not_exists(bonus_spent, :nothing) + :bonus, \
             last_top_up_id = :top_up",
            vec![
                (":bonus", items::money(bonus)),
                (":nothing", items::money(crate::Money::ZERO)),
                (":top_up", items::s(top_up_id)),
            ],
        );
        self.customer_takes(offer, customer)
    }

    /// `offer` taken once more (label `offer`), with `also` set: conditioned on it being
    /// active and under its total limit.
    fn offer_taken(&mut self, offer: &Offer, also: &str, mut values: Vec<(&str, AttributeValue)>) -> &mut Self {
        let mut condition = "active = :yes".to_owned();
        values.extend([(":yes", AttributeValue::Bool(true)), (":one", items::n(1))]);
        if let Some(limit) = offer.total_limit {
            condition.push_str(" AND taken < :limit");
            values.push((":limit", items::n(limit)));
        }
        let update = format!("SET taken = taken + :one, {also}");
        self.update("offer", items::key(offer_pk(&offer.offer_id), OFFER_SK), &update, &condition, values)
    }

    /// `customer`'s uses of `offer` counted on their progress (label `offer_customer`),
    /// conditioned on the per-customer limit.
    fn customer_takes(&mut self, offer: &Offer, customer: &UserId) -> &mut Self {
        let taken = offer_taken_attribute(&offer.offer_id);
        self.update(
            "offer_customer",
            items::key(progress_pk(customer), PROGRESS_SK),
            &format!("SET #{taken} = if_not_exists(#{taken}, :zero) + :one, entity = :entity, user_id = :user"),
            &format!("attribute_not_exists(#{taken}) OR #{taken} < :per_customer"),
            vec![
                (":zero", items::n(0)),
                (":one", items::n(1)),
                (":per_customer", items::n(offer.per_customer_limit)),
                (":entity", items::s("customer_progress")),
                (":user", items::s(customer.as_str())),
            ],
        )
    }
}

impl Store {
    /// The offer `offer_id`, `customer`'s progress and the thresholds (one BatchGetItem), as
    /// a top-up's creation quotes it.
    pub async fn offer_state(&self, customer: &UserId, offer_id: &str) -> Result<OfferRead, StoreError> {
        read_offer_state(&self.batch_get_all(offer_keys(customer, offer_id).to_vec()).await?, customer, offer_id)
    }

    /// Creates an offer with its audit entry; `false`: its id exists (nothing written).
    pub async fn create_offer(&self, offer: &Offer, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.put_new("offer", offer_item(offer, audit.at));
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "offer")
    }

    /// One offer and its counters (one GetItem).
    pub async fn offer(&self, offer_id: &str) -> Result<Option<(Offer, OfferCounters)>, StoreError> {
        self.get(items::key(offer_pk(offer_id), OFFER_SK)).await?.as_ref().map(read_offer).transpose()
    }

    /// Every offer with its counters, oldest first (Query GSI1, all pages).
    pub async fn offers(&self) -> Result<Vec<(Offer, OfferCounters)>, StoreError> {
        let found = self.index_items_upto(GSI1, ("GSI1PK", OFFERS_GSI1PK), ("GSI1SK", "~".into())).await?;
        found.iter().map(read_offer).collect()
    }

    /// Deactivates an active offer with its audit entry; `false`: missing or already inactive.
    /// Its reservations stand: they are consumed or released as their consultations end.
    pub async fn deactivate_offer(&self, offer_id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.update(
            "offer",
            items::key(offer_pk(offer_id), OFFER_SK),
            "SET active = :no",
            "active = :yes",
            vec![(":no", AttributeValue::Bool(false)), (":yes", AttributeValue::Bool(true))],
        );
        tx.staff_audit(audit);
        committed(self.commit(tx).await, "offer")
    }

    /// Sets the segment thresholds with the audit entry.
    pub async fn set_segment_thresholds(&self, t: &SegmentThresholds, audit: &AuditEntry) -> Result<(), StoreError> {
        let mut tx = self.tx();
        tx.update(
            "segments",
            items::key(OFFER_SETTINGS_PK, SEGMENTS_SK),
            "SET entity = :entity, lapsed_after_days = :days, high_value_spend = :spend, updated_at = :at",
            "attribute_not_exists(PK) OR entity = :entity",
            vec![
                (":entity", items::s("segment_thresholds")),
                (":days", items::n(t.lapsed_after_days)),
                (":spend", items::money(t.high_value_spend)),
                (":at", items::time(audit.at)),
            ],
        );
        tx.staff_audit(audit);
        self.commit(tx).await.map_err(StoreError::from)
    }

    /// Every offer, `user`'s progress (with their wallet's recharge count) and the
    /// thresholds: one Query and one BatchGetItem, at once.
    pub async fn offers_for(
        &self,
        user: &UserId,
    ) -> Result<(Vec<(Offer, OfferCounters)>, CustomerProgress, SegmentThresholds), StoreError> {
        let keys = vec![
            items::key(progress_pk(user), PROGRESS_SK),
            items::key(OFFER_SETTINGS_PK, SEGMENTS_SK),
            items::key(super::keys::user_pk(user), super::keys::WALLET_SK),
        ];
        let (offers, found) = tokio::try_join!(self.offers(), self.batch_get_all(keys))?;
        let (progress, thresholds) = progress_and_thresholds(&found, user)?;
        let wallet = found.iter().find(|i| is(i, &super::keys::user_pk(user), super::keys::WALLET_SK));
        let recharges = wallet.map(super::wallet::read_wallet).transpose()?.map_or(0, |w| w.recharge_count);
        Ok((offers, progress.with_wallet_recharges(recharges), thresholds))
    }

    /// A customer's progress (empty before anything was counted) and the segment thresholds:
    /// one BatchGetItem.
    pub async fn progress_state(&self, user: &UserId) -> Result<(CustomerProgress, SegmentThresholds), StoreError> {
        let keys = vec![items::key(progress_pk(user), PROGRESS_SK), items::key(OFFER_SETTINGS_PK, SEGMENTS_SK)];
        progress_and_thresholds(&self.batch_get_all(keys).await?, user)
    }

    /// Counts `step.event_id` into `user`'s progress: `step.after`, conditioned on the version
    /// of `step.before` (bookings move only the offers taken, not the version), with the
    /// event's record (`attribute_not_exists`: once per event) and an `OfferUnlocked` in the
    /// outbox for each offer it unlocked.
    pub async fn count_progress(
        &self,
        user: &UserId,
        step: &ProgressStep<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProgressWrite, StoreError> {
        let ProgressStep { event_id, before, after, segment, unlocked } = step;
        let mut record = items::key(progress_pk(user), progress_event_sk(event_id));
        record.insert("entity".into(), items::s("progress_event"));
        record.insert(TTL_ATTRIBUTE.into(), items::n((now + EVENT_RECORD_TTL).timestamp()));
        let mut tx = self.tx();
        tx.put_new("event", record);
        let milestones = serde_json::to_string(&after.milestones).expect("milestones serialize");
        let mut values = vec![
            (":entity", items::s("customer_progress")),
            (":user", items::s(user.as_str())),
            (":completed", items::n(after.completed_consultations)),
            (":spend", items::money(after.spend)),
            (":recharges", items::n(after.recharges)),
            (":milestones", items::s(milestones)),
            (":segment", items::s(segment.as_str())),
            (":next", items::n(after.version)),
            (":now", items::time(now)),
        ];
        let mut set = String::from(
            "SET entity = :entity, user_id = :user, completed_consultations = :completed, spend = :spend, \
             recharges = :recharges, milestones = :milestones, #segment = :segment, version = :next, updated_at = :now",
        );
        if let Some(at) = after.last_activity {
            set.push_str(", last_activity = :last");
            values.push((":last", items::time(at)));
        }
        let condition = if before.version == 0 {
            "attribute_not_exists(version)"
        } else {
            values.push((":version", items::n(before.version)));
            "version = :version"
        };
        tx.update("progress", items::key(progress_pk(user), PROGRESS_SK), &set, condition, values);
        for event in unlocked.iter() {
            tx.outbox(event);
        }
        match self.commit(tx).await {
            Ok(()) => Ok(ProgressWrite::Counted),
            Err(TxError::Cancelled(c)) if c.failed("event") => Ok(ProgressWrite::AlreadyCounted),
            Err(TxError::Cancelled(_)) => Ok(ProgressWrite::Moved),
            Err(TxError::Store(e)) => Err(e),
        }
    }
}
