//! Consultations: the state machine, pricing with promo codes, whether an astrologer can be
//! booked at a time, settlement with pro-rating and revenue share, and the refund policy.
//! Pure; the store writes what these functions decide in one transaction per change.
//!
//! ```text
//!             start (astrologer)            complete (astrologer or customer; sweep at end + grace)
//! scheduled ───────────────────> in_progress ─────────────────────> completed
//!     │  │                           │  └── end (staff: suspension settles the minutes used) ─> completed
//!     │  │                           └── cancel (astrologer: all back) ─> cancelled
//!     │  └── cancel (customer: notice policy, all back once left waiting; astrologer, staff: all back) ─> cancelled
//!     └── nobody started it by the grace period (sweep: all back) ─────> no_show
//! ```
//!
//! The cancellation policy, row by row, is the README's table (section "Cancellation
//! policy"); `refunds_follow_the_policy_table` pins each row.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::astrologer::{AstrologerRecord, Booked, Mode};
use crate::availability::{Interval, Presence};
use crate::money::Money;
use crate::status::string_enum;
use crate::user::UserId;
use crate::wallet::Hold;

string_enum!(
    /// Where a consultation stands.
    ConsultationStatus {
        Scheduled => "scheduled",
        InProgress => "in_progress",
        Completed => "completed",
        Cancelled => "cancelled",
        NoShow => "no_show",
    }
);

/// Who asks for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Customer,
    Astrologer,
    /// The no-show sweep.
    System,
    /// Operations staff (suspending an astrologer ends their consultations): a scheduled one
    /// all back, one in progress settled for the minutes used.
    Staff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Complete,
    Cancel,
    NoShow,
    /// Staff stop whatever is open (a suspension): cancelled if not started, settled if started.
    End,
}

/// The state a transition leads to, or `None` when the state machine does not allow it.
pub fn transition(from: ConsultationStatus, action: Action, by: Party) -> Option<ConsultationStatus> {
    use ConsultationStatus::*;
    match (from, action, by) {
        (Scheduled, Action::Start, Party::Astrologer) => Some(InProgress),
        // The customer ends it too, and the sweep ends one left running past its booked end.
        (InProgress, Action::Complete, Party::Astrologer | Party::Customer | Party::System) => Some(Completed),
        (Scheduled, Action::Cancel, Party::Customer | Party::Astrologer | Party::Staff) => Some(Cancelled),
        (InProgress, Action::Cancel, Party::Astrologer) => Some(Cancelled),
        (Scheduled, Action::NoShow, Party::System) => Some(NoShow),
        (Scheduled, Action::End, Party::Staff) => Some(Cancelled),
        (InProgress, Action::End, Party::Staff) => Some(Completed),
        _ => None,
    }
}

/// Consultation lengths a customer may book, in minutes.
pub const MIN_MINUTES: u32 = 5;
pub const MAX_MINUTES: u32 = 120;
/// How far ahead a consultation may be scheduled.
pub const MAX_LEAD: Duration = Duration::days(30);
/// An astrologer may start this early, and is a no-show this long after the scheduled time.
pub const EARLY_START: Duration = Duration::minutes(5);
pub const NO_SHOW_GRACE: Duration = Duration::minutes(15);
/// A consultation still in progress this long after its booked end is ended by the sweep
/// (charged up to the booked end at most): no hold stays held forever.
pub const OVERRUN_GRACE: Duration = Duration::minutes(10);

/// Why a consultation cannot start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartRefusal {
    #[error("the consultation cannot start more than 5 minutes before its scheduled time")]
    TooEarly,
    #[error("the consultation can no longer start: its no-show grace period or its booked time has passed")]
    TooLate,
}

/// Whether a consultation booked for `[scheduled_at, ends_at)` may start at `now`: from
/// [`EARLY_START`] before its time until [`NO_SHOW_GRACE`] after it (when the sweep may
/// close it as a no-show), and never after its booked end (no minute could be billed).
pub fn may_start(scheduled_at: DateTime<Utc>, ends_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), StartRefusal> {
    if now < scheduled_at - EARLY_START {
        Err(StartRefusal::TooEarly)
    } else if now >= (scheduled_at + NO_SHOW_GRACE).min(ends_at) {
        Err(StartRefusal::TooLate)
    } else {
        Ok(())
    }
}

/// `AT` and 8 digits: what customers read out to support.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BookingId(String);

impl BookingId {
    pub fn parse(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix("AT")?;
        (digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| Self(raw.to_owned()))
    }
    /// From a random number (any `u32`; reduced to 8 digits). Uniqueness is the store's
    /// `attribute_not_exists` on the consultation: a collision retries with a new number.
    pub fn from_number(n: u32) -> Self {
        Self(format!("AT{:08}", n % 100_000_000))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BookingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- promo codes

string_enum!(
    /// How a promo code reduces a price.
    DiscountKind { Percentage => "percentage", Fixed => "fixed" }
);

/// A promo code (seed 000's `PROMO_CODES`): data, not code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoCode {
    /// Upper case; codes are matched case-insensitively.
    pub code: String,
    pub kind: DiscountKind,
    /// A percentage (`20` = 20%) or an amount in INR.
    pub value: Decimal,
    /// For a percentage: the most it takes off.
    pub max_discount: Option<Money>,
    pub min_order: Money,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub valid_from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Uses across all customers; `None`: unlimited.
    pub usage_limit: Option<u64>,
    /// Uses per customer.
    pub per_user_limit: u64,
    /// Only customers of this type (seed: `applicable_user_type`); `None`: anyone.
    pub user_type: Option<crate::UserType>,
    pub active: bool,
}

/// Why a promo code does not apply; each says so to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PromoRefusal {
    #[error("this promo code does not exist or is no longer active")]
    Unknown,
    #[error("this promo code is not valid yet")]
    NotYetValid,
    #[error("this promo code has expired")]
    Expired,
    #[error("the order is below this promo code's minimum")]
    BelowMinimum,
    #[error("this promo code has been used up")]
    UsedUp,
    #[error("you have already used this promo code as often as it allows")]
    UsedByYou,
    #[error("this promo code is not for your account type")]
    NotForYou,
}

impl PromoCode {
    /// Codes are kept and looked up in upper case.
    pub fn normalize(code: &str) -> Option<String> {
        let code = code.trim().to_ascii_uppercase();
        (!code.is_empty()
            && code.len() <= 32
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        .then_some(code)
    }

    /// The discount on `gross` for a customer who used it `used_by_user` times, when it has
    /// been used `used_total` times. Never more than the order.
    pub fn discount(
        &self,
        gross: Money,
        now: DateTime<Utc>,
        user_type: crate::UserType,
        used_total: u64,
        used_by_user: u64,
    ) -> Result<Money, PromoRefusal> {
        if !self.active {
            return Err(PromoRefusal::Unknown);
        }
        if now < self.valid_from {
            return Err(PromoRefusal::NotYetValid);
        }
        if self.valid_until.is_some_and(|until| now >= until) {
            return Err(PromoRefusal::Expired);
        }
        if self.user_type.is_some_and(|t| t != user_type) {
            return Err(PromoRefusal::NotForYou);
        }
        if gross < self.min_order {
            return Err(PromoRefusal::BelowMinimum);
        }
        if self.usage_limit.is_some_and(|limit| used_total >= limit) {
            return Err(PromoRefusal::UsedUp);
        }
        if used_by_user >= self.per_user_limit {
            return Err(PromoRefusal::UsedByYou);
        }
        let raw = match self.kind {
            DiscountKind::Percentage => {
                let d = (gross.decimal() * self.value / Decimal::ONE_HUNDRED)
                    .round_dp_with_strategy(2, RoundingStrategy::ToZero);
                let d = Money::new(d).unwrap_or(Money::ZERO);
                self.max_discount.map_or(d, |cap| d.min(cap))
            }
            DiscountKind::Fixed => Money::new(self.value.round_dp(2)).unwrap_or(Money::ZERO),
        };
        Ok(raw.min(gross))
    }
}

// ---------------------------------------------------------------- pricing and booking

/// What a booking costs, fixed at booking time.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Price {
    pub rate_per_minute: Money,
    pub minutes: u32,
    pub gross: Money,
    pub discount: Money,
    /// What is held from the wallet: `gross - discount`.
    pub amount: Money,
}

pub fn price(rate_per_minute: Money, minutes: u32, discount: Money) -> Option<Price> {
    let gross = Money::new(rate_per_minute.decimal() * Decimal::from(minutes)).ok()?;
    let discount = discount.min(gross);
    Some(Price { rate_per_minute, minutes, gross, discount, amount: gross.checked_sub(discount)? })
}

/// Why an astrologer cannot be booked then; each is a 4xx that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotBookable {
    #[error("you cannot book yourself")]
    Yourself,
    #[error("this astrologer is not taking bookings")]
    NotListed,
    #[error("this astrologer does not offer that mode")]
    ModeNotOffered,
    #[error("this astrologer is not online for an instant consultation")]
    NotOnline,
    #[error("this astrologer is not available at that time")]
    OutsideAvailability,
    #[error("that time is in the past or too far ahead")]
    BadTime,
    #[error("that time is already booked")]
    SlotTaken,
    #[error("this astrologer's calendar is full (at most 1000 upcoming consultations); try a later day")]
    ScheduleFull,
}

/// Upcoming consultations one astrologer may hold at once. Their booked intervals live on
/// the astrologer's item (`store::astrologers`), rewritten by every booking: at most 37
/// bytes each, 1000 are 37 KB, a tenth of DynamoDB's 400 KB item limit (the profile and the
/// weekly availability beside them are bounded too), and far more than one person can
/// attend in the 30 days bookable ahead. Past ones are pruned by every write
/// ([`schedule_with`], [`schedule_without`]), so a full calendar frees itself as days pass.
pub const MAX_SCHEDULED: usize = 1000;

/// Checks that `customer` may book `astrologer` for `[start, start + minutes)`; `instant`:
/// now, which needs them online instead of inside a weekly window.
pub fn check_bookable(
    astrologer: &AstrologerRecord,
    customer: &UserId,
    mode: Mode,
    start: DateTime<Utc>,
    minutes: u32,
    instant: bool,
    now: DateTime<Utc>,
) -> Result<Interval, NotBookable> {
    if &astrologer.id == customer {
        return Err(NotBookable::Yourself);
    }
    let profile = astrologer.profile.as_ref().filter(|_| astrologer.visible()).ok_or(NotBookable::NotListed)?;
    if !profile.modes.contains(&mode) {
        return Err(NotBookable::ModeNotOffered);
    }
    let end = start + Duration::minutes(i64::from(minutes));
    if instant {
        if astrologer.presence_at(now) != Presence::Online {
            return Err(NotBookable::NotOnline);
        }
    } else {
        if start < now || start > now + MAX_LEAD {
            return Err(NotBookable::BadTime);
        }
        if !astrologer.availability.covers(start, end) {
            return Err(NotBookable::OutsideAvailability);
        }
    }
    if astrologer.booked.iter().any(|&(s, e, _)| s < end && e > start) {
        return Err(NotBookable::SlotTaken);
    }
    // Counted as `schedule_with` will write it: past bookings do not count.
    if astrologer.booked.iter().filter(|(_, e, _)| *e > now).count() >= MAX_SCHEDULED {
        return Err(NotBookable::ScheduleFull);
    }
    Ok((start, end))
}

/// The schedule after adding `interval` for `booking`: past bookings dropped, sorted.
pub fn schedule_with(booked: &[Booked], interval: Interval, booking: &BookingId, now: DateTime<Utc>) -> Vec<Booked> {
    let mut out: Vec<_> = booked.iter().filter(|(_, e, _)| *e > now).cloned().collect();
    out.push((interval.0, interval.1, booking.as_str().to_owned()));
    out.sort();
    out
}

/// The schedule without `booking` (cancelled or finished), past bookings dropped.
pub fn schedule_without(booked: &[Booked], booking: &BookingId, now: DateTime<Utc>) -> Vec<Booked> {
    booked.iter().filter(|(_, e, id)| *e > now && id != booking.as_str()).cloned().collect()
}

/// A consultation as stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consultation {
    pub booking_id: BookingId,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    pub astrologer_name: String,
    pub mode: Mode,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub scheduled_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub ends_at: DateTime<Utc>,
    /// Booked for now (the astrologer was online), not for a weekly window.
    pub instant: bool,
    pub price: Price,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// What the booking took from each bucket of the customer's wallet.
    pub hold: Hold,
    pub status: ConsultationStatus,
    #[serde(serialize_with = "crate::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing: Option<Closing>,
}

/// How a consultation ended, in money.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Closing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_minutes: Option<u32>,
    pub charged: Hold,
    pub refunded: Hold,
    pub astrologer_earnings: Money,
    pub platform_share: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_percent: Option<u32>,
}

impl From<Settlement> for Closing {
    fn from(s: Settlement) -> Self {
        Self {
            actual_minutes: Some(s.actual_minutes),
            charged: s.charged,
            refunded: s.refunded,
            astrologer_earnings: s.astrologer_earnings,
            platform_share: s.platform_share,
            refund_percent: None,
        }
    }
}

impl From<Cancellation> for Closing {
    fn from(c: Cancellation) -> Self {
        Self {
            actual_minutes: None,
            charged: c.charged,
            refunded: c.refunded,
            astrologer_earnings: c.astrologer_earnings,
            platform_share: c.platform_share,
            refund_percent: Some(c.refund_percent),
        }
    }
}

impl Consultation {
    /// Which side of it `user` is on; `None`: not theirs.
    pub fn party(&self, user: &UserId) -> Option<Party> {
        if &self.customer_id == user {
            Some(Party::Customer)
        } else if &self.astrologer_id == user {
            Some(Party::Astrologer)
        } else {
            None
        }
    }
}

// ---------------------------------------------------------------- settlement and refunds

/// The revenue share, as a percentage of what the customer paid for the consultation.
///
/// Bonus cash counts towards earnings like real cash (seed 003: consultant wallets that
/// `accept_promotional_offers` are paid their `revenue_share` on promotional minutes too):
/// the platform, which gave the bonus away, bears its cost, so an astrologer earns the same
/// per minute whoever pays how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevenueShare {
    pub astrologer_percent: Decimal,
}

impl RevenueShare {
    /// `ASTROLOGER_SHARE_PERCENT` (0 to 100; 70 when unset), as the template gives it.
    pub fn from_env(vars: &impl crate::config::Vars) -> Result<Self, crate::config::ConfigError> {
        let name = "ASTROLOGER_SHARE_PERCENT";
        crate::config::optional(vars, name, "70")
            .parse::<Decimal>()
            .ok()
            .filter(|p| *p >= Decimal::ZERO && *p <= Decimal::ONE_HUNDRED)
            .map(|astrologer_percent| Self { astrologer_percent })
            .ok_or(crate::config::ConfigError::Invalid { name, problem: "must be 0 to 100".into() })
    }

    /// The astrologer's part of `charged`, rounded down to the paisa; the platform keeps the rest.
    pub fn split(&self, charged: Money) -> (Money, Money) {
        let share = (charged.decimal() * self.astrologer_percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, RoundingStrategy::ToZero);
        let astrologer = Money::new(share).unwrap_or(Money::ZERO).min(charged);
        (astrologer, charged.checked_sub(astrologer).unwrap_or(Money::ZERO))
    }
}

/// What completing a consultation settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settlement {
    pub actual_minutes: u32,
    /// What the customer pays: the actual minutes at the booked rate, less the discount
    /// pro-rated to them.
    pub charged: Hold,
    /// What goes back, to the buckets it came from.
    pub refunded: Hold,
    pub astrologer_earnings: Money,
    pub platform_share: Money,
}

/// Minutes from `started_at` to `now`, a started minute counting whole, never more than booked.
pub fn actual_minutes(started_at: DateTime<Utc>, now: DateTime<Utc>, booked: u32) -> u32 {
    let seconds = (now - started_at).num_seconds().max(0);
    let minutes = u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX);
    minutes.clamp(1, booked)
}

/// The minutes billed when a consultation started at `started_at` ends at `now`: the meter
/// stops at the booked end (`ends_at`), whoever ends it and however late.
pub fn billed_minutes(started_at: DateTime<Utc>, ends_at: DateTime<Utc>, booked: u32, now: DateTime<Utc>) -> u32 {
    actual_minutes(started_at, now.min(ends_at), booked)
}

pub fn settle(price: &Price, hold: Hold, actual_minutes: u32, share: RevenueShare) -> Settlement {
    let actual = actual_minutes.min(price.minutes);
    let gross = price.rate_per_minute.decimal() * Decimal::from(actual);
    // The discount is earned per minute: the customer keeps the same rate they were quoted.
    let discount = (price.discount.decimal() * Decimal::from(actual) / Decimal::from(price.minutes.max(1)))
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    let due = Money::new(gross - discount).unwrap_or(Money::ZERO).min(hold.total());
    let (charged, refunded) = hold.split(due);
    let (astrologer_earnings, platform_share) = share.split(charged.total());
    Settlement { actual_minutes: actual, charged, refunded, astrologer_earnings, platform_share }
}

/// What a cancellation keeps and gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cancellation {
    pub refund_percent: u32,
    pub charged: Hold,
    pub refunded: Hold,
    pub astrologer_earnings: Money,
    pub platform_share: Money,
}

/// Customers get everything back when they cancel at least this long before the start, or
/// within [`CHANGE_OF_MIND`] of booking, or once the start has passed without the astrologer
/// starting (left waiting: a customer can only cancel a consultation not started; an instant
/// one's start is its booking); otherwise half. An astrologer's or staff's cancellation and a
/// no-show give everything back.
pub const FULL_REFUND_NOTICE: Duration = Duration::hours(2);
pub const CHANGE_OF_MIND: Duration = Duration::minutes(5);
pub const LATE_CANCEL_REFUND_PERCENT: u32 = 50;

pub fn refund_percent(by: Party, booked_at: DateTime<Utc>, scheduled_at: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
    match by {
        Party::Astrologer | Party::System | Party::Staff => 100,
        Party::Customer
            if scheduled_at - now >= FULL_REFUND_NOTICE || now - booked_at <= CHANGE_OF_MIND || now >= scheduled_at =>
        {
            100
        }
        Party::Customer => LATE_CANCEL_REFUND_PERCENT,
    }
}

/// How ending `c` as `to` (by `by`, at `now`) moves its money: completed settles the
/// minutes billed (`None` if it never started); cancelled or no-show refunds by the policy.
pub fn closing_for(
    c: &Consultation,
    to: ConsultationStatus,
    by: Party,
    share: RevenueShare,
    now: DateTime<Utc>,
) -> Option<Closing> {
    if to == ConsultationStatus::Completed {
        let minutes = billed_minutes(c.started_at?, c.ends_at, c.price.minutes, now);
        Some(settle(&c.price, c.hold, minutes, share).into())
    } else {
        Some(cancel(c.hold, refund_percent(by, c.created_at, c.scheduled_at, now), share).into())
    }
}

/// The promo code whose use comes back (both limits) when `c` ends with `closing`: only a
/// full refund gives it back; a consultation that charged anything used it.
pub fn promo_use_returned<'a>(c: &'a Consultation, closing: &Closing) -> Option<&'a str> {
    c.promo_code.as_deref().filter(|_| closing.refund_percent == Some(100))
}

pub fn cancel(hold: Hold, refund_percent: u32, share: RevenueShare) -> Cancellation {
    let refund = (hold.total().decimal() * Decimal::from(refund_percent.min(100)) / Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    let kept = hold.total().checked_sub(Money::new(refund).unwrap_or(Money::ZERO)).unwrap_or(Money::ZERO);
    let (charged, refunded) = hold.split(kept);
    let (astrologer_earnings, platform_share) = share.split(charged.total());
    Cancellation { refund_percent, charged, refunded, astrologer_earnings, platform_share }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn only_the_state_machines_transitions_are_allowed() {
        use ConsultationStatus::*;
        let actions = [Action::Start, Action::Complete, Action::Cancel, Action::NoShow, Action::End];
        let parties = [Party::Customer, Party::Astrologer, Party::System, Party::Staff];
        let mut allowed = Vec::new();
        for from in ConsultationStatus::ALL {
            for action in actions {
                for by in parties {
                    if let Some(to) = transition(*from, action, by) {
                        allowed.push((*from, action, by, to));
                    }
                }
            }
        }
        assert_eq!(
            allowed,
            [
                (Scheduled, Action::Start, Party::Astrologer, InProgress),
                (Scheduled, Action::Cancel, Party::Customer, Cancelled),
                (Scheduled, Action::Cancel, Party::Astrologer, Cancelled),
                (Scheduled, Action::Cancel, Party::Staff, Cancelled),
                (Scheduled, Action::NoShow, Party::System, NoShow),
                (Scheduled, Action::End, Party::Staff, Cancelled),
                (InProgress, Action::Complete, Party::Customer, Completed),
                (InProgress, Action::Complete, Party::Astrologer, Completed),
                (InProgress, Action::Complete, Party::System, Completed),
                (InProgress, Action::Cancel, Party::Astrologer, Cancelled),
                (InProgress, Action::End, Party::Staff, Completed),
            ]
        );
    }

    #[test]
    fn booking_ids_are_at_and_8_digits() {
        assert_eq!(BookingId::from_number(42).as_str(), "AT00000042");
        assert_eq!(BookingId::from_number(u32::MAX).as_str(), "AT94967295");
        assert!(BookingId::parse("AT12345678").is_some());
        for bad in ["AT1234567", "AT123456789", "at12345678", "AT1234567x", ""] {
            assert!(BookingId::parse(bad).is_none(), "{bad}");
        }
    }

    fn promo(kind: DiscountKind, value: Decimal) -> PromoCode {
        PromoCode {
            code: "WELCOME50".into(),
            kind,
            value,
            max_discount: Some(m("100")),
            min_order: m("200"),
            valid_from: utc("2026-11-01T00:00:00Z"),
            valid_until: Some(utc("2026-12-01T00:00:00Z")),
            usage_limit: Some(100),
            per_user_limit: 1,
            user_type: Some(crate::UserType::User),
            active: true,
        }
    }

    #[test]
    fn promo_codes_to_the_paisa_and_every_refusal() {
        let now = utc("2026-11-22T10:00:00Z");
        let user = crate::UserType::User;
        let pct = promo(DiscountKind::Percentage, dec!(12.5));
        let cases = [
            (m("200"), m("25")),       // at the minimum
            (m("333.33"), m("41.66")), // rounded down
            (m("1000"), m("100")),     // capped
        ];
        for (gross, discount) in cases {
            assert_eq!(pct.discount(gross, now, user, 0, 0), Ok(discount), "{gross}");
        }
        let fixed = promo(DiscountKind::Fixed, dec!(250));
        assert_eq!(fixed.discount(m("240"), now, user, 0, 0), Ok(m("240")), "never more than the order");
        let refusals = [
            (pct.discount(m("199.99"), now, user, 0, 0), PromoRefusal::BelowMinimum),
            (pct.discount(m("500"), utc("2026-10-31T23:59:59Z"), user, 0, 0), PromoRefusal::NotYetValid),
            (pct.discount(m("500"), utc("2026-12-01T00:00:00Z"), user, 0, 0), PromoRefusal::Expired),
            (pct.discount(m("500"), now, user, 100, 0), PromoRefusal::UsedUp),
            (pct.discount(m("500"), now, user, 99, 1), PromoRefusal::UsedByYou),
            (pct.discount(m("500"), now, crate::UserType::Astrologer, 0, 0), PromoRefusal::NotForYou),
            (PromoCode { active: false, ..pct.clone() }.discount(m("500"), now, user, 0, 0), PromoRefusal::Unknown),
        ];
        for (got, want) in refusals {
            assert_eq!(got, Err(want));
        }
        assert_eq!(pct.discount(m("500"), now, user, 99, 0), Ok(m("62.5")));
        assert_eq!(PromoCode::normalize(" welcome50 ").as_deref(), Some("WELCOME50"));
        assert!(PromoCode::normalize("no spaces").is_none() && PromoCode::normalize(&"A".repeat(33)).is_none());
    }

    #[test]
    fn settlement_pro_rates_the_discount_and_refunds_to_the_buckets() {
        // 20 minutes at 25.00 = 500.00, less 50.00: 450.00 held, 100.00 of it bonus.
        let p = price(m("25"), 20, m("50")).unwrap();
        assert_eq!((p.gross, p.amount), (m("500"), m("450")));
        let hold = Hold { real: m("350"), bonus: m("100") };
        let share = RevenueShare { astrologer_percent: dec!(70) };
        // 7 minutes: 175.00 less 7/20 of 50.00 = 17.50, so 157.50; bonus is used first.
        let s = settle(&p, hold, 7, share);
        assert_eq!(s.charged, Hold { real: m("57.5"), bonus: m("100") });
        assert_eq!(s.refunded, Hold { real: m("292.5"), bonus: m("0") });
        assert_eq!((s.astrologer_earnings, s.platform_share), (m("110.25"), m("47.25")));
        // Every minute: exactly what was held, nothing back.
        let all = settle(&p, hold, 25, share);
        assert_eq!((all.actual_minutes, all.charged, all.refunded.total()), (20, hold, Money::ZERO));
        // Odd paise: the astrologer's share rounds down, the platform gets the paisa.
        let odd = RevenueShare { astrologer_percent: dec!(70) }.split(m("0.05"));
        assert_eq!(odd, (m("0.03"), m("0.02")));
    }

    #[test]
    fn actual_minutes_count_started_minutes_and_never_exceed_the_booking() {
        let start = utc("2026-11-22T10:00:00Z");
        let cases = [(0, 1), (1, 1), (60, 1), (61, 2), (599, 10), (10_000, 30)];
        for (seconds, minutes) in cases {
            assert_eq!(actual_minutes(start, start + Duration::seconds(seconds), 30), minutes, "{seconds}s");
        }
    }

    /// A consultation of 20 minutes at 10.00 (200.00 held, 50.00 of it bonus) with a promo
    /// code, booked at 08:00 for `scheduled_at`.
    fn consultation(scheduled_at: DateTime<Utc>, started_at: Option<DateTime<Utc>>) -> Consultation {
        let customer = UserId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let astrologer = UserId::parse("22222222-2222-4222-8222-222222222222").unwrap();
        Consultation {
            booking_id: BookingId::from_number(1),
            customer_id: customer,
            astrologer_id: astrologer,
            astrologer_name: "A".into(),
            mode: Mode::Chat,
            scheduled_at,
            ends_at: scheduled_at + Duration::minutes(20),
            instant: false,
            price: price(m("10"), 20, Money::ZERO).unwrap(),
            promo_code: Some("ONCE".into()),
            question: None,
            hold: Hold { real: m("150"), bonus: m("50") },
            status: if started_at.is_some() { ConsultationStatus::InProgress } else { ConsultationStatus::Scheduled },
            created_at: utc("2026-11-22T08:00:00Z"),
            started_at,
            closed_at: None,
            closing: None,
        }
    }

    /// Every row of the README's "Cancellation policy" table, in its order: who, what, from
    /// when, at what time; then the status it ends in, the percent refunded (for a
    /// settlement: the minutes billed), whether the astrologer earns, whether the promo
    /// code's use comes back.
    #[test]
    fn refunds_follow_the_policy_table() {
        use ConsultationStatus::*;
        let share = RevenueShare { astrologer_percent: dec!(70) };
        let noon = utc("2026-11-22T12:00:00Z");
        let at = |t: &str| utc(&format!("2026-11-22T{t}Z"));
        // An instant consultation: booked for the moment it was booked.
        let instant = |now| {
            let mut c = consultation(utc("2026-11-22T08:00:00Z"), None);
            c.instant = true;
            (c, now)
        };
        let scheduled = |now| (consultation(noon, None), now);
        let started = |started: &str, now| (consultation(noon, Some(at(started))), now);
        /// The percent refunded, or the minutes billed.
        enum Outcome {
            Percent(u32),
            Minutes(u32),
        }
        use Outcome::*;
        #[rustfmt::skip]
        let rows = [
            // 1. customer, 2 hours' notice or more
            (scheduled(at("10:00:00")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            // 2. customer, within 5 minutes of booking
            (scheduled(at("08:05:00")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            // 3. customer, late notice before the start
            (scheduled(at("10:00:01")), Party::Customer, Action::Cancel, Cancelled, Percent(50), true, false),
            (scheduled(at("11:59:59")), Party::Customer, Action::Cancel, Cancelled, Percent(50), true, false),
            // 4. customer left waiting: the start has passed, the astrologer has not started
            (scheduled(at("12:00:00")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            (scheduled(at("12:14:00")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            (instant(at("08:05:30")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            // 5. customer ends it in progress: the minutes so far
            (started("12:00:00", at("12:06:30")), Party::Customer, Action::Complete, Completed, Minutes(7), true, false),
            // 6. astrologer cancels, before or after starting
            (scheduled(at("11:59:00")), Party::Astrologer, Action::Cancel, Cancelled, Percent(100), false, true),
            (started("12:00:00", at("12:05:00")), Party::Astrologer, Action::Cancel, Cancelled, Percent(100), false, true),
            // 7. astrologer completes: the minutes used, never past the booked end
            (started("12:00:00", at("12:09:10")), Party::Astrologer, Action::Complete, Completed, Minutes(10), true, false),
            (started("12:10:00", at("18:00:00")), Party::Astrologer, Action::Complete, Completed, Minutes(10), true, false),
            // 8. staff (suspension), not started
            (scheduled(at("11:59:00")), Party::Staff, Action::End, Cancelled, Percent(100), false, true),
            // 9. staff (suspension), in progress: the minutes so far
            (started("12:00:00", at("12:03:00")), Party::Staff, Action::End, Completed, Minutes(3), true, false),
            // 10. the sweep: nobody started it
            (scheduled(at("12:15:00")), Party::System, Action::NoShow, NoShow, Percent(100), false, true),
            // 11. the sweep: still in progress after the booked end, billed up to it
            (started("12:05:00", at("12:30:00")), Party::System, Action::Complete, Completed, Minutes(15), true, false),
        ];
        for (n, ((c, now), by, action, to, money, earns, promo_back)) in rows.into_iter().enumerate() {
            let row = format!("row {n}: {by:?} {action:?} at {now}");
            assert_eq!(transition(c.status, action, by), Some(to), "{row}");
            let closing = closing_for(&c, to, by, share, now).unwrap();
            assert_eq!(
                closing.charged.total().checked_add(closing.refunded.total()).ok(),
                Some(c.hold.total()),
                "{row}"
            );
            match money {
                Percent(p) => assert_eq!(closing.refund_percent, Some(p), "{row}"),
                Minutes(minutes) => {
                    assert_eq!(closing.actual_minutes, Some(minutes), "{row}");
                    assert_eq!(closing.charged.total(), m(&(10 * minutes).to_string()), "{row}");
                }
            }
            assert_eq!(closing.astrologer_earnings > Money::ZERO, earns, "{row}");
            assert_eq!(promo_use_returned(&c, &closing), promo_back.then_some("ONCE"), "{row}");
        }
        // The customer cannot cancel one in progress (they end it), nor anyone close one twice.
        assert_eq!(transition(InProgress, Action::Cancel, Party::Customer), None);
        let half = cancel(Hold { real: m("100.01"), bonus: m("50") }, 50, share);
        assert_eq!(half.refunded.total().checked_add(half.charged.total()).unwrap(), m("150.01"));
        assert_eq!(half.refunded, Hold { real: m("75"), bonus: m("0") });
        assert_eq!(half.charged, Hold { real: m("25.01"), bonus: m("50") });
        let all = cancel(Hold { real: m("10"), bonus: m("5") }, 100, share);
        assert_eq!((all.charged.total(), all.refunded), (Money::ZERO, Hold { real: m("10"), bonus: m("5") }));
    }

    #[test]
    fn a_start_is_refused_before_the_early_window_and_after_the_no_show_grace_or_the_booked_end() {
        let at = utc("2026-11-22T12:00:00Z");
        let long = at + Duration::minutes(60);
        let cases = [
            (at - Duration::minutes(6), long, Err(StartRefusal::TooEarly)),
            (at - EARLY_START, long, Ok(())),
            (at + NO_SHOW_GRACE - Duration::seconds(1), long, Ok(())),
            (at + NO_SHOW_GRACE, long, Err(StartRefusal::TooLate)),
            // A 10-minute booking cannot start at its end: no minute could be billed.
            (at + Duration::minutes(10), at + Duration::minutes(10), Err(StartRefusal::TooLate)),
        ];
        for (now, ends_at, want) in cases {
            assert_eq!(may_start(at, ends_at, now), want, "at {now}");
        }
    }
}
