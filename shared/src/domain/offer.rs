//! Offers (seed 003's offers domain): free minutes on a consultation, or a bonus percentage
//! on a recharge, for new customers, a segment, or those who reached a milestone (e.g. the
//! 3rd recharge: a milestone of 2 recharges, counted on the wallet itself). A recharge bonus
//! is **consumed** in the credit's transaction, with the payment (no reservation: nothing is
//! held before the money arrives). A booking **reserves** its offer in the
//! booking's transaction; a completed session **consumes** it (the consultation is then
//! `promotional`); a cancellation, a no-show, a decline, an expiry or a session nobody came
//! to **releases** it, and the customer may use it again. Who pays for free minutes is in
//! docs/money.md ("Offers"): the customer pays nothing for them, and the astrologer is paid
//! their share of them at their rate from the platform's promotions ledger.
//!
//! Each customer's behaviour (completed consultations, spend, recharges, last activity) is
//! kept by the `customer-progress` consumer, once per event; the segment is derived from it
//! and the thresholds (data: [`SegmentThresholds`]) whenever it is needed, so a customer
//! lapses by the calendar, not by an event.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::money::Money;
use crate::domain::status::string_enum;

string_enum!(
    /// Where a customer stands, derived from their behaviour and [`SegmentThresholds`].
    Segment {
        /// No consultation completed yet.
        New => "new",
        Active => "active",
        /// Nothing completed for `lapsed_after_days`.
        Lapsed => "lapsed",
        /// Spent at least `high_value_spend` on consultations, and not lapsed.
        HighValue => "high_value",
    }
);

/// The segment thresholds, as data (staff set them; these are the values until they do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SegmentThresholds {
    pub lapsed_after_days: u32,
    pub high_value_spend: Money,
}

impl Default for SegmentThresholds {
    fn default() -> Self {
        Self { lapsed_after_days: 30, high_value_spend: Money::from_paise(500_000) }
    }
}

string_enum!(
    /// What a milestone counts.
    MilestoneMetric {
        CompletedConsultations => "completed_consultations",
        Recharges => "recharges",
    }
);

/// Reached when the count of `metric` is at least `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    pub metric: MilestoneMetric,
    pub count: u32,
}

/// The counts the consumer records as reached (seed 003's `user_milestone_progress`), with
/// the event that reached each; an offer's milestone may be any count.
pub const MILESTONE_STEPS: [u32; 7] = [1, 3, 5, 10, 25, 50, 100];

/// A milestone reached, and the event that reached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneReached {
    pub milestone: Milestone,
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub reached_at: DateTime<Utc>,
    pub trigger_event: String,
}

/// One customer's behaviour (seed 003's `user_behavior_metrics`) and the offers they hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerProgress {
    /// Consultations completed with at least one minute billed.
    pub completed_consultations: u32,
    /// What completed consultations charged them.
    pub spend: Money,
    pub recharges: u32,
    pub last_activity: Option<DateTime<Utc>>,
    pub milestones: Vec<MilestoneReached>,
    /// Uses of each offer the customer holds (reserved or consumed; a release gives one back).
    pub offers_taken: BTreeMap<String, u32>,
    /// Bumped by every event counted (not by bookings): the consumer's write conditions on it.
    pub version: u64,
}

/// What the consumer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A consultation completed with `charged` billed (free minutes cost nothing).
    Completed {
        charged: Money,
    },
    Recharged,
}

impl CustomerProgress {
    pub fn count(&self, metric: MilestoneMetric) -> u32 {
        match metric {
            MilestoneMetric::CompletedConsultations => self.completed_consultations,
            MilestoneMetric::Recharges => self.recharges,
        }
    }

    pub fn taken(&self, offer_id: &str) -> u32 {
        self.offers_taken.get(offer_id).copied().unwrap_or(0)
    }

    /// The customer's segment at `now`.
    pub fn segment(&self, thresholds: &SegmentThresholds, now: DateTime<Utc>) -> Segment {
        let Some(last) = self.last_activity.filter(|_| self.completed_consultations > 0) else {
            return Segment::New;
        };
        if now - last >= Duration::days(i64::from(thresholds.lapsed_after_days)) {
            Segment::Lapsed
        } else if self.spend >= thresholds.high_value_spend {
            Segment::HighValue
        } else {
            Segment::Active
        }
    }

    /// The milestones reached since `before` (the same customer's progress, older).
    pub fn reached_since(&self, before: &CustomerProgress) -> &[MilestoneReached] {
        &self.milestones[before.milestones.len().min(self.milestones.len())..]
    }

    /// The progress with the recharges its wallet counts, which are exact where the progress
    /// may lag an event behind (a recharge milestone is judged on them).
    pub fn with_wallet_recharges(self, wallet_recharges: u64) -> Self {
        let recharges = self.recharges.max(u32::try_from(wallet_recharges).unwrap_or(u32::MAX));
        Self { recharges, ..self }
    }

    /// The progress after `activity` (event `event_id` at `at`): counts moved, the version
    /// bumped, and each of [`MILESTONE_STEPS`] newly reached recorded with the event.
    pub fn after(&self, activity: Activity, event_id: &str, at: DateTime<Utc>) -> CustomerProgress {
        let mut next = self.clone();
        match activity {
            Activity::Completed { charged } => {
                next.completed_consultations = next.completed_consultations.saturating_add(1);
                next.spend = next.spend.checked_add(charged).unwrap_or(next.spend);
            }
            Activity::Recharged => next.recharges = next.recharges.saturating_add(1),
        }
        next.last_activity = Some(self.last_activity.map_or(at, |last| last.max(at)));
        next.version = self.version + 1;
        for metric in MilestoneMetric::ALL {
            let (before, now) = (self.count(*metric), next.count(*metric));
            for count in MILESTONE_STEPS.into_iter().filter(|c| before < *c && *c <= now) {
                next.milestones.push(MilestoneReached {
                    milestone: Milestone { metric: *metric, count },
                    reached_at: at,
                    trigger_event: event_id.to_owned(),
                });
            }
        }
        next
    }
}

/// An offer definition (seed 003's `offer_definitions`), as staff create it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offer {
    pub offer_id: String,
    pub name: String,
    /// The first minutes of the consultation are free, up to this many; 0 for a recharge bonus.
    #[serde(default)]
    pub free_minutes: u32,
    /// A recharge bonus instead: this percentage of the recharge, as bonus cash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, examples("10")))]
    pub bonus_percent: Option<Decimal>,
    /// The most bonus one recharge gets from it; `None`: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bonus: Option<Money>,
    /// Only for a customer's first consultation (none completed yet).
    pub first_consultation_only: bool,
    /// Only once the customer reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestone: Option<Milestone>,
    /// Only customers in one of these segments; empty: every segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub valid_from: DateTime<Utc>,
    #[serde(default, serialize_with = "crate::domain::time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    pub per_customer_limit: u32,
    /// Uses across all customers (reserved or consumed); `None`: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_limit: Option<u64>,
    /// Only with astrologers who accept promotional offers.
    pub promotional_astrologers_only: bool,
    pub active: bool,
}

/// The most free minutes an offer gives.
pub const MAX_FREE_MINUTES: u32 = 60;

/// Why an offer does not apply; each says so to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    #[error("this offer does not exist or is no longer active")]
    Unknown,
    #[error("this offer has not started yet")]
    NotYetValid,
    #[error("this offer has ended")]
    Expired,
    #[error("this offer is for a customer's first consultation")]
    NotFirstConsultation,
    #[error("this offer unlocks at a milestone you have not reached yet")]
    MilestoneNotReached,
    #[error("this offer is not for your segment")]
    NotYourSegment,
    #[error("you have already used this offer as often as it allows")]
    UsedByYou,
    #[error("this offer has been used up")]
    UsedUp,
    #[error("this astrologer does not take part in promotional offers")]
    AstrologerNotTakingPart,
    #[error("an offer and a promo code cannot be combined")]
    WithPromoCode,
    #[error("this offer is a recharge bonus, not for a consultation")]
    NotForConsultations,
    #[error("this offer gives free minutes on a consultation, not a recharge bonus")]
    NotForRecharges,
}

impl Offer {
    /// Offer ids are what staff were given at creation: `o_` and 12 hex digits.
    pub fn valid_id(id: &str) -> bool {
        id.len() == 14 && id.starts_with("o_") && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// Whether `customer` may use it at `now`, whoever the astrologer.
    pub fn check_customer(
        &self,
        customer: &CustomerProgress,
        thresholds: &SegmentThresholds,
        now: DateTime<Utc>,
    ) -> Result<(), OfferRefusal> {
        if !self.active {
            return Err(OfferRefusal::Unknown);
        }
        if now < self.valid_from {
            return Err(OfferRefusal::NotYetValid);
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(OfferRefusal::Expired);
        }
        if self.first_consultation_only && customer.completed_consultations > 0 {
            return Err(OfferRefusal::NotFirstConsultation);
        }
        if self.milestone.is_some_and(|m| customer.count(m.metric) < m.count) {
            return Err(OfferRefusal::MilestoneNotReached);
        }
        if !self.segments.is_empty() && !self.segments.contains(&customer.segment(thresholds, now)) {
            return Err(OfferRefusal::NotYourSegment);
        }
        if customer.taken(&self.offer_id) >= self.per_customer_limit {
            return Err(OfferRefusal::UsedByYou);
        }
        Ok(())
    }

    /// Whether it applies to a booking with an astrologer who does (or not) accept promotional
    /// offers, when it has been taken `taken_total` times; the free minutes of a booking of
    /// `minutes`.
    pub fn free_minutes_for(
        &self,
        customer: &CustomerProgress,
        thresholds: &SegmentThresholds,
        astrologer_accepts: bool,
        taken_total: u64,
        minutes: u32,
        now: DateTime<Utc>,
    ) -> Result<u32, OfferRefusal> {
        if self.is_recharge_bonus() {
            return Err(OfferRefusal::NotForConsultations);
        }
        self.check_customer(customer, thresholds, now)?;
        if self.promotional_astrologers_only && !astrologer_accepts {
            return Err(OfferRefusal::AstrologerNotTakingPart);
        }
        if self.total_limit.is_some_and(|limit| taken_total >= limit) {
            return Err(OfferRefusal::UsedUp);
        }
        Ok(self.free_minutes.min(minutes))
    }

    pub fn is_recharge_bonus(&self) -> bool {
        self.bonus_percent.is_some()
    }

    /// The bonus it gives a recharge of `amount` when it has been taken `taken_total` times:
    /// `bonus_percent` of it, rounded down to the paisa, at most `max_bonus`. `recharges`:
    /// the customer's recharges credited before this one, from their wallet (exact, where
    /// their progress may lag an event behind).
    pub fn recharge_bonus_for(
        &self,
        customer: &CustomerProgress,
        thresholds: &SegmentThresholds,
        recharges: u64,
        taken_total: u64,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Money, OfferRefusal> {
        let Some(percent) = self.bonus_percent else { return Err(OfferRefusal::NotForRecharges) };
        let customer = customer.clone().with_wallet_recharges(recharges);
        self.check_customer(&customer, thresholds, now)?;
        if self.total_limit.is_some_and(|limit| taken_total >= limit) {
            return Err(OfferRefusal::UsedUp);
        }
        let bonus = (amount.decimal() * percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
        let bonus = Money::new(bonus).unwrap_or(Money::ZERO);
        Ok(self.max_bonus.map_or(bonus, |cap| bonus.min(cap)))
    }
}

/// The offers among `offers` that `after` (the progress once an event is counted) unlocked
/// over `before`: those whose milestone the event crossed (any count, not only
/// [`MILESTONE_STEPS`]) and that the customer may now use (active, in their window and
/// segment, not used up by them or by all), each with its milestone.
pub fn unlocked<'a>(
    offers: &'a [(Offer, OfferCounters)],
    before: &CustomerProgress,
    after: &CustomerProgress,
    thresholds: &SegmentThresholds,
    now: DateTime<Utc>,
) -> Vec<(&'a Offer, Milestone)> {
    offers
        .iter()
        .filter(|(o, c)| o.total_limit.is_none_or(|limit| c.taken < limit))
        .filter_map(|(o, _)| Some((o, o.milestone?)))
        .filter(|(_, m)| before.count(m.metric) < m.count && m.count <= after.count(m.metric))
        .filter(|(o, _)| o.check_customer(after, thresholds, now).is_ok())
        .collect()
}

/// What a booking or a credit reads of the offer it names (in its one `BatchGetItem`).
#[derive(Debug, Clone, Default)]
pub struct OfferRead {
    /// `None`: no such offer.
    pub offer: Option<(Offer, OfferCounters)>,
    pub progress: CustomerProgress,
    pub thresholds: SegmentThresholds,
}

/// An offer as a customer sees it in `GET /offers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferForYou {
    pub offer_id: String,
    pub name: String,
    /// Free minutes on a consultation (0 for a recharge bonus).
    pub free_minutes: u32,
    /// A bonus on a recharge (`POST /wallet/top-ups` with `offer_id`): this percentage of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, examples("10")))]
    pub bonus_percent: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bonus: Option<Money>,
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt", skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Only with astrologers who accept promotional offers (the catalogue says which).
    pub promotional_astrologers_only: bool,
    /// Bookable now; `false`: locked until its milestone.
    pub available: bool,
    /// Where the customer stands on the milestone that unlocks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub milestone: Option<MilestoneProgress>,
    pub uses_left: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MilestoneProgress {
    pub metric: MilestoneMetric,
    pub count: u32,
    pub needed: u32,
}

/// The offers `customer` can use now, and those a milestone will unlock, newest first; an
/// offer that is over, used up, used by them or not for them is left out.
pub fn offers_for(
    offers: &[(Offer, OfferCounters)],
    customer: &CustomerProgress,
    thresholds: &SegmentThresholds,
    now: DateTime<Utc>,
) -> Vec<OfferForYou> {
    offers
        .iter()
        .rev()
        .filter(|(o, c)| o.total_limit.is_none_or(|limit| c.taken < limit))
        .filter_map(|(o, _)| {
            let available = match o.check_customer(customer, thresholds, now) {
                Ok(()) => true,
                Err(OfferRefusal::MilestoneNotReached) => false,
                Err(_) => return None,
            };
            Some(OfferForYou {
                offer_id: o.offer_id.clone(),
                name: o.name.clone(),
                free_minutes: o.free_minutes,
                bonus_percent: o.bonus_percent,
                max_bonus: o.max_bonus,
                valid_until: o.valid_until,
                promotional_astrologers_only: o.promotional_astrologers_only,
                available,
                milestone: o.milestone.map(|m| MilestoneProgress {
                    metric: m.metric,
                    count: customer.count(m.metric).min(m.count),
                    needed: m.count,
                }),
                uses_left: o.per_customer_limit.saturating_sub(customer.taken(&o.offer_id)),
            })
        })
        .collect()
}

/// Staff's checks on a new offer: the field at fault and why.
pub fn check_offer(o: &Offer) -> Result<(), (&'static str, &'static str)> {
    match o.bonus_percent {
        None if !(1..=MAX_FREE_MINUTES).contains(&o.free_minutes) => {
            return Err(("free_minutes", "must be 1 to 60 (or give bonus_percent for a recharge bonus)"));
        }
        None if o.max_bonus.is_some() => return Err(("max_bonus", "only with bonus_percent")),
        None => {}
        Some(_) if o.free_minutes != 0 => {
            return Err(("bonus_percent", "an offer gives free minutes or a recharge bonus, not both"));
        }
        Some(p) if p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED || p.scale() > 2 => {
            return Err(("bonus_percent", "must be above 0 and at most 100, at most 2 decimals"));
        }
        Some(_) if o.max_bonus.is_some_and(|m| m.is_zero()) => {
            return Err(("max_bonus", "must be above 0 (leave it out for no cap)"));
        }
        Some(_) => {}
    }
    if o.first_consultation_only && o.milestone.is_some_and(|m| m.metric == MilestoneMetric::CompletedConsultations) {
        return Err(("milestone", "a first-consultation offer cannot wait for completed consultations"));
    }
    if o.milestone.is_some_and(|m| m.count == 0 || m.count > 10_000) {
        return Err(("milestone.count", "must be 1 to 10000"));
    }
    if o.valid_until.is_some_and(|until| until <= o.valid_from) {
        return Err(("valid_until", "must be after valid_from"));
    }
    if o.per_customer_limit == 0 || o.per_customer_limit > 100 {
        return Err(("per_customer_limit", "must be 1 to 100"));
    }
    if o.total_limit == Some(0) {
        return Err(("total_limit", "must be at least 1 (leave it out for no limit)"));
    }
    Ok(())
}

/// What an offer did (seed 003's sample query 4): kept on the offer, moved by the booking and
/// closing transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferCounters {
    /// Reserved or consumed now: what the total limit counts.
    pub taken: u64,
    /// Reservations ever made.
    pub reservations: u64,
    pub consumptions: u64,
    pub releases: u64,
    pub free_minutes_spent: u64,
    /// What the promotions ledger paid astrologers for them.
    pub promotions_spent: Money,
    /// Bonus cash given on recharges.
    pub bonus_spent: Money,
}

/// An offer's effectiveness report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferReport {
    pub offer_id: String,
    pub name: String,
    pub reservations: u64,
    pub consumptions: u64,
    pub releases: u64,
    /// Reserved now, neither consumed nor released yet.
    pub open: u64,
    /// Consumptions per reservation, as a percentage with two decimals (`"0.00"` for none).
    #[cfg_attr(feature = "openapi", schema(value_type = String, examples("66.67")))]
    pub conversion_percent: Decimal,
    pub free_minutes_spent: u64,
    pub promotions_spent: Money,
    pub bonus_spent: Money,
}

impl OfferReport {
    pub fn of(offer: &Offer, c: &OfferCounters) -> Self {
        let conversion_percent = if c.reservations == 0 {
            Decimal::new(0, 2)
        } else {
            (Decimal::from(c.consumptions) * Decimal::ONE_HUNDRED / Decimal::from(c.reservations)).round_dp(2)
        };
        // Always two places: `"50.00"`, as money is sent.
        let mut conversion_percent = conversion_percent;
        conversion_percent.rescale(2);
        Self {
            offer_id: offer.offer_id.clone(),
            name: offer.name.clone(),
            reservations: c.reservations,
            consumptions: c.consumptions,
            releases: c.releases,
            open: c.reservations.saturating_sub(c.consumptions + c.releases),
            conversion_percent,
            free_minutes_spent: c.free_minutes_spent,
            promotions_spent: c.promotions_spent,
            bonus_spent: c.bonus_spent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn offer() -> Offer {
        Offer {
            offer_id: "o_0123456789ab".into(),
            name: "First 5 minutes free".into(),
            free_minutes: 5,
            bonus_percent: None,
            max_bonus: None,
            first_consultation_only: true,
            milestone: None,
            segments: vec![],
            valid_from: utc("2026-12-01T00:00:00Z"),
            valid_until: Some(utc("2027-01-01T00:00:00Z")),
            per_customer_limit: 1,
            total_limit: Some(2),
            promotional_astrologers_only: true,
            active: true,
        }
    }

    #[test]
    fn an_offer_is_unlocked_by_the_event_that_crosses_its_milestone_once() {
        let at = utc("2026-12-06T10:00:00Z");
        let loyal = Offer {
            first_consultation_only: false,
            milestone: Some(Milestone { metric: MilestoneMetric::CompletedConsultations, count: 2 }),
            ..offer()
        };
        let offers = [(loyal.clone(), OfferCounters::default())];
        let t = SegmentThresholds::default();
        let done =
            |p: &CustomerProgress, e: &str| p.after(Activity::Completed { charged: Money::from_paise(100) }, e, at);
        let one = done(&CustomerProgress::default(), "c1");
        let two = done(&one, "c2");
        let three = done(&two, "c3");
        assert!(unlocked(&offers, &CustomerProgress::default(), &one, &t, at).is_empty());
        let found: Vec<_> =
            unlocked(&offers, &one, &two, &t, at).into_iter().map(|(o, m)| (o.offer_id.clone(), m.count)).collect();
        assert_eq!(found, [(loyal.offer_id.clone(), 2)], "2 is not a milestone step, and still unlocks");
        assert!(unlocked(&offers, &two, &three, &t, at).is_empty(), "told once");
        let recharged = one.after(Activity::Recharged, "r1", at);
        assert!(unlocked(&offers, &one, &recharged, &t, at).is_empty(), "another metric");
        let gone = [(Offer { active: false, ..loyal.clone() }, OfferCounters::default())];
        assert!(unlocked(&gone, &one, &two, &t, at).is_empty());
        let used_up = [(loyal.clone(), OfferCounters { taken: 2, ..OfferCounters::default() })];
        assert!(unlocked(&used_up, &one, &two, &t, at).is_empty());
    }

    #[test]
    fn milestones_are_reached_once_with_their_event() {
        let at = utc("2026-12-06T10:00:00Z");
        let mut p = CustomerProgress::default();
        for n in 1..=5 {
            p = p.after(Activity::Completed { charged: Money::from_paise(10_000) }, &format!("e{n}"), at);
        }
        let reached: Vec<_> = p.milestones.iter().map(|m| (m.milestone.count, m.trigger_event.as_str())).collect();
        assert_eq!(reached, [(1, "e1"), (3, "e3"), (5, "e5")]);
        assert_eq!((p.completed_consultations, p.spend, p.version), (5, Money::from_paise(50_000), 5));
        let p = p.after(Activity::Recharged, "r1", at);
        assert_eq!(p.milestones.last().unwrap().milestone, Milestone { metric: MilestoneMetric::Recharges, count: 1 });
        assert_eq!(p.milestones.len(), 4);
    }

    #[test]
    fn segments_follow_the_thresholds_and_the_calendar() {
        let t = SegmentThresholds::default();
        let at = utc("2026-12-06T10:00:00Z");
        let mut p = CustomerProgress::default();
        assert_eq!(p.segment(&t, at), Segment::New);
        p = p.after(Activity::Recharged, "r", at);
        assert_eq!(p.segment(&t, at), Segment::New, "a recharge alone is not a consultation");
        p = p.after(Activity::Completed { charged: Money::from_paise(499_999) }, "c1", at);
        assert_eq!(p.segment(&t, at), Segment::Active);
        p = p.after(Activity::Completed { charged: Money::from_paise(1) }, "c2", at);
        assert_eq!(p.segment(&t, at), Segment::HighValue);
        assert_eq!(p.segment(&t, at + Duration::days(30) - Duration::seconds(1)), Segment::HighValue);
        assert_eq!(p.segment(&t, at + Duration::days(30)), Segment::Lapsed);
    }

    #[test]
    fn every_refusal_and_the_free_minutes() {
        let t = SegmentThresholds::default();
        let now = utc("2026-12-06T10:00:00Z");
        let o = offer();
        let new = CustomerProgress::default();
        assert_eq!(o.free_minutes_for(&new, &t, true, 0, 10, now), Ok(5));
        assert_eq!(o.free_minutes_for(&new, &t, true, 1, 3, now), Ok(3), "never more than booked");
        assert_eq!(o.free_minutes_for(&new, &t, false, 0, 10, now), Err(OfferRefusal::AstrologerNotTakingPart));
        assert_eq!(o.free_minutes_for(&new, &t, true, 2, 10, now), Err(OfferRefusal::UsedUp));
        assert_eq!(o.check_customer(&new, &t, utc("2026-11-30T23:59:59Z")), Err(OfferRefusal::NotYetValid));
        assert_eq!(o.check_customer(&new, &t, utc("2027-01-01T00:00:00Z")), Err(OfferRefusal::Expired));
        let mut held = new.clone();
        held.offers_taken.insert(o.offer_id.clone(), 1);
        assert_eq!(o.check_customer(&held, &t, now), Err(OfferRefusal::UsedByYou));
        let one = new.after(Activity::Completed { charged: Money::from_paise(1) }, "c", now);
        assert_eq!(o.check_customer(&one, &t, now), Err(OfferRefusal::NotFirstConsultation));
        let inactive = Offer { active: false, ..offer() };
        assert_eq!(inactive.check_customer(&new, &t, now), Err(OfferRefusal::Unknown));
        let loyal = Offer {
            first_consultation_only: false,
            milestone: Some(Milestone { metric: MilestoneMetric::CompletedConsultations, count: 2 }),
            ..offer()
        };
        assert_eq!(loyal.check_customer(&one, &t, now), Err(OfferRefusal::MilestoneNotReached));
        let two = one.after(Activity::Completed { charged: Money::from_paise(1) }, "d", now);
        assert_eq!(loyal.check_customer(&two, &t, now), Ok(()));
        let lapsed_only =
            Offer { first_consultation_only: false, segments: vec![Segment::Lapsed], valid_until: None, ..offer() };
        assert_eq!(lapsed_only.check_customer(&two, &t, now), Err(OfferRefusal::NotYourSegment));
        assert_eq!(lapsed_only.check_customer(&two, &t, now + Duration::days(31)), Ok(()));
    }

    #[test]
    fn a_customer_sees_what_they_can_use_and_what_a_milestone_unlocks() {
        let t = SegmentThresholds::default();
        let now = utc("2026-12-06T10:00:00Z");
        let first = offer();
        let loyal = Offer {
            offer_id: "o_00000000000b".into(),
            first_consultation_only: false,
            milestone: Some(Milestone { metric: MilestoneMetric::CompletedConsultations, count: 5 }),
            ..offer()
        };
        let gone = Offer { offer_id: "o_00000000000c".into(), first_consultation_only: false, ..offer() };
        let used_up = OfferCounters { taken: 2, ..OfferCounters::default() };
        let offers = vec![(first, OfferCounters::default()), (loyal, OfferCounters::default()), (gone, used_up)];
        let new = CustomerProgress::default();
        let listed: Vec<_> =
            offers_for(&offers, &new, &t, now).into_iter().map(|o| (o.offer_id, o.available)).collect();
        assert_eq!(listed, [("o_00000000000b".to_owned(), false), ("o_0123456789ab".to_owned(), true)]);
        let mut five = new.clone();
        for n in 0..5 {
            five = five.after(Activity::Completed { charged: Money::from_paise(1) }, &n.to_string(), now);
        }
        let listed = offers_for(&offers, &five, &t, now);
        assert_eq!(listed.len(), 1, "no longer a first consultation");
        assert!(listed[0].available);
        assert_eq!(
            listed[0].milestone,
            Some(MilestoneProgress { metric: MilestoneMetric::CompletedConsultations, count: 5, needed: 5 })
        );
    }

    #[test]
    fn staff_checks_and_the_report() {
        assert_eq!(check_offer(&offer()), Ok(()));
        assert_eq!(check_offer(&Offer { free_minutes: 0, ..offer() }).unwrap_err().0, "free_minutes");
        assert_eq!(check_offer(&Offer { free_minutes: 61, ..offer() }).unwrap_err().0, "free_minutes");
        let both = Offer {
            milestone: Some(Milestone { metric: MilestoneMetric::CompletedConsultations, count: 5 }),
            ..offer()
        };
        assert_eq!(check_offer(&both).unwrap_err().0, "milestone");
        assert_eq!(
            check_offer(&Offer { valid_until: Some(offer().valid_from), ..offer() }).unwrap_err().0,
            "valid_until"
        );
        assert_eq!(check_offer(&Offer { per_customer_limit: 0, ..offer() }).unwrap_err().0, "per_customer_limit");
        assert_eq!(check_offer(&Offer { total_limit: Some(0), ..offer() }).unwrap_err().0, "total_limit");
        // A recharge bonus: a percentage instead of free minutes, never both; not for a booking.
        let bonus = Offer { free_minutes: 0, bonus_percent: Some(Decimal::new(1050, 2)), ..offer() };
        assert_eq!(check_offer(&bonus), Ok(()));
        assert_eq!(check_offer(&Offer { free_minutes: 5, ..bonus.clone() }).unwrap_err().0, "bonus_percent");
        assert_eq!(
            check_offer(&Offer { bonus_percent: Some(Decimal::new(1001, 3)), ..bonus.clone() }).unwrap_err().0,
            "bonus_percent"
        );
        assert_eq!(
            check_offer(&Offer { bonus_percent: Some(Decimal::new(101, 0)), ..bonus.clone() }).unwrap_err().0,
            "bonus_percent"
        );
        assert_eq!(
            check_offer(&Offer { max_bonus: Some(Money::from_paise(100)), ..offer() }).unwrap_err().0,
            "max_bonus"
        );
        assert_eq!(check_offer(&Offer { max_bonus: Some(Money::ZERO), ..bonus.clone() }).unwrap_err().0, "max_bonus");
        let t = SegmentThresholds::default();
        let now = bonus.valid_from;
        let new = CustomerProgress::default();
        assert_eq!(bonus.free_minutes_for(&new, &t, true, 0, 10, now), Err(OfferRefusal::NotForConsultations));
        assert_eq!(
            offer().recharge_bonus_for(&new, &t, 0, 0, Money::from_paise(100), now),
            Err(OfferRefusal::NotForRecharges)
        );
        assert!(Offer::valid_id("o_0123456789ab") && !Offer::valid_id("o_0123456789aZ") && !Offer::valid_id("x"));
        let counters = OfferCounters {
            taken: 2,
            reservations: 3,
            consumptions: 2,
            releases: 1,
            free_minutes_spent: 8,
            promotions_spent: Money::from_paise(11_200),
            bonus_spent: Money::ZERO,
        };
        let report = OfferReport::of(&offer(), &counters);
        assert_eq!((report.open, report.conversion_percent.to_string()), (0, "66.67".to_owned()));
        assert_eq!(OfferReport::of(&offer(), &OfferCounters::default()).conversion_percent.to_string(), "0.00");
        let half = OfferCounters { reservations: 2, consumptions: 1, ..counters };
        assert_eq!(OfferReport::of(&offer(), &half).conversion_percent.to_string(), "50.00");
    }
}
