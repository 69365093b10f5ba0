//! Consultations: the state machine, pricing with promo codes, whether an astrologer can be
//! booked at a time, settlement with pro-rating and revenue share, and the refund policy.
//! Pure; the store writes what these functions decide in one transaction per change.
//!
//! ```text
//!             start (astrologer)            complete (astrologer or customer; sweep: paid time over, a party gone)
//! scheduled ───────────────────> in_progress ─────────────────────> completed
//!     │  │                           │  └── end (staff: suspension settles the minutes used) ─> completed
//!     │  │                           └── cancel (astrologer: all back) ─> cancelled
//!     │  └── cancel (customer: notice policy, all back once left waiting; astrologer, staff: all back) ─> cancelled
//!     └── nobody started it by the grace period (sweep: all back) ─────> no_show
//! ```
//!
//! Connecting now rings the astrologer first (`ringing`: accept, decline, or expire after a
//! minute; `crate::domain::session`). The meter runs from when both parties have joined.
//!
//! The cancellation policy, row by row, is the table in docs/money.md (section "Cancellation
//! policy"); `refunds_follow_the_policy_table` pins each row.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use self::call::{ChannelLog, MeterSource};
use self::session::{Attendance, EndReason, Quality, RING_FOR};
use crate::domain::astrologer::{AstrologerRecord, Booked, Mode};
use crate::domain::availability::{Interval, Presence};
use crate::domain::events::{
    ConsultationBooked, ConsultationCancelled, ConsultationCompleted, ConsultationStarted, Envelope,
};
use crate::domain::money::Money;
use crate::domain::offer::{CustomerProgress, Offer, OfferCounters, OfferRefusal, SegmentThresholds};
use crate::domain::status::string_enum;
use crate::domain::user::{UserId, UserType};
use crate::domain::wallet::{Hold, Movement, Posting, Reference, Wallet, WalletError};

pub mod call;
pub mod chat;
pub mod session;

string_enum!(
    /// Where a consultation stands.
    ConsultationStatus {
        Scheduled => "scheduled",
        /// Connect now: the astrologer is being rung.
        Ringing => "ringing",
        InProgress => "in_progress",
        Completed => "completed",
        Cancelled => "cancelled",
        NoShow => "no_show",
        /// The astrologer declined a connect-now request (all back).
        Declined => "declined",
        /// Nobody answered a connect-now request within a minute (all back).
        Expired => "expired",
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
    /// The astrologer answers a ringing request: the session opens (they have joined).
    Accept,
    Decline,
    /// The sweep: a ringing request nobody answered.
    Expire,
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
        // Starting a ringing one is accepting it (the astrologer opens the session either way).
        (Ringing, Action::Accept | Action::Start, Party::Astrologer) => Some(InProgress),
        // An astrologer cancelling a request that rings is declining it.
        (Ringing, Action::Decline | Action::Cancel, Party::Astrologer) => Some(Declined),
        (Ringing, Action::Expire, Party::System) => Some(Expired),
        // The customer hangs up while it rings; a suspension ends it too.
        (Ringing, Action::Cancel, Party::Customer) | (Ringing, Action::End, Party::Staff) => Some(Cancelled),
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
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub valid_from: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt")]
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
    /// The first minutes an offer makes free (`crate::domain::offer`): the customer pays
    /// nothing for them; the platform's promotions pay the astrologer's share of them.
    #[serde(skip_serializing_if = "is_zero")]
    pub free_minutes: u32,
    /// What the free minutes are worth at the rate.
    #[serde(skip_serializing_if = "Money::is_zero")]
    pub free_value: Money,
    /// What is held from the wallet: `gross - free_value - discount`.
    pub amount: Money,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

pub fn price(rate_per_minute: Money, minutes: u32, discount: Money) -> Option<Price> {
    price_with_free(rate_per_minute, minutes, 0, discount)
}

/// The price of `minutes` at `rate_per_minute`, the first `free_minutes` free (at most all
/// of them), less `discount` (at most what is left).
pub fn price_with_free(rate_per_minute: Money, minutes: u32, free_minutes: u32, discount: Money) -> Option<Price> {
    let free_minutes = free_minutes.min(minutes);
    let gross = Money::new(rate_per_minute.decimal() * Decimal::from(minutes)).ok()?;
    let free_value = Money::new(rate_per_minute.decimal() * Decimal::from(free_minutes)).ok()?;
    let payable = gross.checked_sub(free_value)?;
    let discount = discount.min(payable);
    Some(Price {
        rate_per_minute,
        minutes,
        gross,
        discount,
        free_minutes,
        free_value,
        amount: payable.checked_sub(discount)?,
    })
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
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub scheduled_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub ends_at: DateTime<Utc>,
    /// Booked for now (the astrologer was online), not for a weekly window.
    pub instant: bool,
    pub price: Price,
    /// The astrologer's share of what is charged, as it stood when this was booked (their
    /// own, set by staff, or the platform's). `None` on consultations booked before shares
    /// were per astrologer: the platform's share at settlement.
    #[serde(rename = "astrologer_share_percent", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub share_percent: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    /// The offer whose free minutes it reserved (`price.free_minutes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    /// Completed with an offer's free minutes used: the promotions paid for some of it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub promotional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// What the booking took from each bucket of the customer's wallet.
    pub hold: Hold,
    pub status: ConsultationStatus,
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub created_at: DateTime<Utc>,
    /// Ringing: the astrologer must answer by then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt")]
    pub ring_expires_at: Option<DateTime<Utc>>,
    /// When the meter started: both parties had joined (`attendance`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// The meter stops here at the latest: `started_at` plus the minutes held.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt")]
    pub paid_until: Option<DateTime<Utc>>,
    /// Whose view the meter runs on (a call or video: Agora's channel events when it has
    /// them, else the app's joins and heartbeats; chat: the app's).
    #[serde(rename = "billed_from", skip_serializing_if = "Option::is_none")]
    pub meter_source: Option<MeterSource>,
    #[serde(skip_serializing_if = "Attendance::is_empty")]
    pub attendance: Attendance,
    /// Calls and video: Agora's channel events (seed 003 `AgoraSession`).
    #[serde(skip_serializing_if = "ChannelLog::is_empty")]
    pub channel: ChannelLog,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    /// Live sessions only: messages per side, first response, short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::domain::time::rfc3339_opt")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closing: Option<Closing>,
}

/// How a consultation ended, in money.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Closing {
    /// The minutes billed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_minutes: Option<u32>,
    /// What the server's meter measured, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_seconds: Option<u32>,
    pub charged: Hold,
    pub refunded: Hold,
    /// Everything the astrologer earned, `promotional_earnings` included.
    pub astrologer_earnings: Money,
    /// Of the charge, what the platform kept.
    pub platform_share: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_percent: Option<u32>,
    /// An offer's free minutes the session used.
    #[serde(skip_serializing_if = "is_zero")]
    pub free_minutes_used: u32,
    /// The part of `astrologer_earnings` the platform's promotions paid (their share of the
    /// free minutes), not the customer: charged + promotional = earnings + platform share.
    #[serde(skip_serializing_if = "Money::is_zero")]
    pub promotional_earnings: Money,
}

impl From<Settlement> for Closing {
    fn from(s: Settlement) -> Self {
        Self {
            actual_minutes: Some(s.actual_minutes),
            measured_seconds: None,
            charged: s.charged,
            refunded: s.refunded,
            astrologer_earnings: s.astrologer_earnings,
            platform_share: s.platform_share,
            refund_percent: None,
            free_minutes_used: s.free_minutes_used,
            promotional_earnings: s.promotional_earnings,
        }
    }
}

impl From<Cancellation> for Closing {
    fn from(c: Cancellation) -> Self {
        Self {
            actual_minutes: None,
            measured_seconds: None,
            charged: c.charged,
            refunded: c.refunded,
            astrologer_earnings: c.astrologer_earnings,
            platform_share: c.platform_share,
            refund_percent: Some(c.refund_percent),
            free_minutes_used: 0,
            promotional_earnings: Money::ZERO,
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

impl Consultation {
    /// The event of its booking (its id derived from the booking, so a rerun builds the same).
    pub fn booked_event(&self) -> Envelope<ConsultationBooked> {
        Envelope::new(
            format!("consultation-booked-{}", self.booking_id),
            self.created_at,
            ConsultationBooked {
                booking_id: self.booking_id.to_string(),
                customer_id: self.customer_id.clone(),
                astrologer_id: self.astrologer_id.clone(),
                astrologer_name: self.astrologer_name.clone(),
                mode: self.mode.as_str().to_owned(),
                scheduled_at: self.scheduled_at,
                minutes: self.price.minutes,
                amount: self.price.amount,
            },
        )
    }

    /// The event of its meter starting at `at` (its id derived from the booking: once).
    pub fn started_event(&self, at: DateTime<Utc>) -> Envelope<ConsultationStarted> {
        Envelope::new(
            format!("consultation-started-{}", self.booking_id),
            at,
            ConsultationStarted {
                booking_id: self.booking_id.to_string(),
                customer_id: self.customer_id.clone(),
                astrologer_id: self.astrologer_id.clone(),
                mode: self.mode.as_str().to_owned(),
                started_at: at,
                minutes: self.price.minutes,
            },
        )
    }

    /// The event of its closing as `to` (by `by`: who or what closed it).
    pub fn closed_event(&self, to: ConsultationStatus, closing: &Closing, by: &str, now: DateTime<Utc>) -> ClosedEvent {
        let id = self.booking_id.to_string();
        if to == ConsultationStatus::Completed {
            ClosedEvent::Completed(Envelope::new(
                format!("consultation-completed-{id}"),
                now,
                ConsultationCompleted {
                    booking_id: id,
                    customer_id: self.customer_id.clone(),
                    astrologer_id: self.astrologer_id.clone(),
                    astrologer_name: self.astrologer_name.clone(),
                    actual_minutes: closing.actual_minutes.unwrap_or(0),
                    measured_seconds: closing.measured_seconds.unwrap_or(0),
                    ended_by: by.to_owned(),
                    charged: closing.charged.total(),
                    refunded: closing.refunded.total(),
                    astrologer_earnings: closing.astrologer_earnings,
                },
            ))
        } else {
            ClosedEvent::Cancelled(Envelope::new(
                format!("consultation-closed-{id}"),
                now,
                ConsultationCancelled {
                    booking_id: id,
                    customer_id: self.customer_id.clone(),
                    astrologer_id: self.astrologer_id.clone(),
                    status: to.as_str().to_owned(),
                    by: by.to_owned(),
                    refunded: closing.refunded.total(),
                },
            ))
        }
    }
}

/// The event a closing writes: completed, or ended without the consultation (cancelled, no-show).
#[derive(Debug, Clone, PartialEq)]
pub enum ClosedEvent {
    Completed(Envelope<ConsultationCompleted>),
    Cancelled(Envelope<ConsultationCancelled>),
}

// ---------------------------------------------------------------- booking

/// The longest question a customer may send with a booking.
pub const MAX_QUESTION_CHARS: usize = 500;

/// A booking request, its fields checked (the handler parsed the JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub customer: UserId,
    pub astrologer_id: UserId,
    pub mode: Mode,
    pub minutes: u32,
    /// `None`: now (instant), which needs the astrologer online.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Normalized ([`PromoCode::normalize`]).
    pub promo_code: Option<String>,
    /// An offer's id ([`Offer::valid_id`]): its free minutes, reserved with the booking.
    pub offer_id: Option<String>,
    /// Trimmed; `None` when blank.
    pub question: Option<String>,
}

/// A request field that cannot be accepted: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    pub field: &'static str,
    pub problem: String,
}

impl BookingRequest {
    pub fn new(
        customer: UserId,
        astrologer_id: UserId,
        mode: Mode,
        minutes: u32,
        scheduled_at: Option<DateTime<Utc>>,
        promo_code: Option<&str>,
        question: Option<&str>,
    ) -> Result<Self, InvalidField> {
        let invalid = |field, problem: String| InvalidField { field, problem };
        if !(MIN_MINUTES..=MAX_MINUTES).contains(&minutes) {
            return Err(invalid("minutes", format!("must be {MIN_MINUTES} to {MAX_MINUTES}")));
        }
        let question = question.map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned);
        if question.as_ref().is_some_and(|q| q.chars().count() > MAX_QUESTION_CHARS || q.chars().any(char::is_control))
        {
            return Err(invalid("question", format!("at most {MAX_QUESTION_CHARS} characters of text")));
        }
        let promo_code = promo_code
            .map(|c| PromoCode::normalize(c).ok_or_else(|| invalid("promo_code", "is not a promo code".into())))
            .transpose()?;
        Ok(Self { customer, astrologer_id, mode, minutes, scheduled_at, promo_code, offer_id: None, question })
    }

    /// The request with the offer asked for (`None`: none).
    pub fn with_offer(self, offer_id: Option<&str>) -> Result<Self, InvalidField> {
        let Some(id) = offer_id else { return Ok(self) };
        if !Offer::valid_id(id) {
            return Err(InvalidField { field: "offer_id", problem: "is not an offer's id".into() });
        }
        Ok(Self { offer_id: Some(id.to_owned()), ..self })
    }
}

/// The offer a booking asks for, as read with the rest.
#[derive(Debug, Clone, Copy)]
pub struct OfferState<'a> {
    /// `None`: no such offer.
    pub offer: Option<&'a (Offer, OfferCounters)>,
    pub progress: &'a CustomerProgress,
    pub thresholds: SegmentThresholds,
}

/// What a booking decides on, as read (in one `BatchGetItem`).
#[derive(Debug, Clone, Copy)]
pub struct BookingState<'a> {
    pub wallet: &'a Wallet,
    pub astrologer: &'a AstrologerRecord,
    /// The platform's share, for an astrologer with none of their own.
    pub default_share: RevenueShare,
    /// The promo code asked for, and how often it has been used in all.
    pub promo: Option<&'a (PromoCode, u64)>,
    /// How often this customer has used it.
    pub promo_used_by_customer: u64,
    /// When the request names an offer.
    pub offer: Option<OfferState<'a>>,
}

/// Everything a booking writes, in one transaction: the consultation, the hold on the
/// wallet, the astrologer's schedule (conditioned on the version read), the promo code's use
/// and the event.
#[derive(Debug, Clone)]
pub struct BookingPlan {
    pub consultation: Consultation,
    pub posting: Posting,
    pub schedule: Vec<Booked>,
    pub schedule_version_read: u64,
    /// The code whose use this booking counts (only when it gave a discount).
    pub promo: Option<PromoCode>,
    /// The offer this booking reserves (its free minutes are the price's).
    pub offer: Option<Offer>,
    pub event: Envelope<ConsultationBooked>,
}

/// Why a booking is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookingRefusal {
    NotBookable(NotBookable),
    Promo(PromoRefusal),
    Offer(OfferRefusal),
    /// The wallet cannot hold the price (`Insufficient` says by how much).
    Wallet(WalletError),
    /// Rate times minutes does not fit in `Money`.
    PriceTooLarge,
}

impl From<NotBookable> for BookingRefusal {
    fn from(e: NotBookable) -> Self {
        Self::NotBookable(e)
    }
}
impl From<PromoRefusal> for BookingRefusal {
    fn from(e: PromoRefusal) -> Self {
        Self::Promo(e)
    }
}
impl From<OfferRefusal> for BookingRefusal {
    fn from(e: OfferRefusal) -> Self {
        Self::Offer(e)
    }
}
impl From<WalletError> for BookingRefusal {
    fn from(e: WalletError) -> Self {
        Self::Wallet(e)
    }
}

/// What booking `request` as consultation `id` at `now` writes, or why it is refused:
/// bookable at that time, priced (less the promo code's discount), held from the wallet
/// (bonus cash first).
pub fn plan(
    state: &BookingState,
    request: &BookingRequest,
    id: BookingId,
    now: DateTime<Utc>,
) -> Result<BookingPlan, BookingRefusal> {
    let astrologer = state.astrologer;
    let instant = request.scheduled_at.is_none();
    let start = request.scheduled_at.unwrap_or(now);
    let interval = check_bookable(astrologer, &request.customer, request.mode, start, request.minutes, instant, now)?;
    let profile = astrologer.profile.as_ref().ok_or(NotBookable::NotListed)?;
    let gross =
        price(profile.rate_per_minute, request.minutes, Money::ZERO).ok_or(BookingRefusal::PriceTooLarge)?.gross;
    // Both are well formed, so the refusal is the offer's (422), not the body's.
    if request.offer_id.is_some() && request.promo_code.is_some() {
        return Err(OfferRefusal::WithPromoCode.into());
    }
    let discount = match (&request.promo_code, state.promo) {
        (None, _) => Money::ZERO,
        (Some(_), None) => return Err(PromoRefusal::Unknown.into()),
        (Some(_), Some((promo, used))) => {
            promo.discount(gross, now, UserType::User, *used, state.promo_used_by_customer)?
        }
    };
    let free_minutes = match (&request.offer_id, state.offer) {
        (None, _) => 0,
        (Some(_), None | Some(OfferState { offer: None, .. })) => return Err(OfferRefusal::Unknown.into()),
        (Some(_), Some(OfferState { offer: Some((offer, counters)), progress, thresholds })) => offer
            .free_minutes_for(
                progress,
                &thresholds,
                astrologer.accepts_promotional_offers,
                counters.taken,
                request.minutes,
                now,
            )?,
    };
    let price = price_with_free(profile.rate_per_minute, request.minutes, free_minutes, discount)
        .ok_or(BookingRefusal::PriceTooLarge)?;
    let hold = state.wallet.hold(price.amount)?;
    let note = format!("Consultation {id} with {}", profile.display_name);
    let posting = state.wallet.post(vec![Movement::hold(hold, Reference::consultation(id.as_str()), &note)], now)?;
    let consultation = Consultation {
        booking_id: id.clone(),
        customer_id: request.customer.clone(),
        astrologer_id: astrologer.id.clone(),
        astrologer_name: profile.display_name.clone(),
        mode: request.mode,
        scheduled_at: interval.0,
        ends_at: interval.1,
        instant,
        price,
        // Settled at the rate in force now, whatever staff set later.
        share_percent: Some(astrologer.revenue_share_percent.unwrap_or(state.default_share.astrologer_percent)),
        promo_code: request.promo_code.clone().filter(|_| discount > Money::ZERO),
        offer_id: request.offer_id.clone().filter(|_| free_minutes > 0),
        promotional: false,
        question: request.question.clone(),
        hold,
        // Connect now rings the astrologer, who answers within a minute.
        status: if instant { ConsultationStatus::Ringing } else { ConsultationStatus::Scheduled },
        created_at: now,
        ring_expires_at: instant.then(|| now + RING_FOR),
        started_at: None,
        paid_until: None,
        meter_source: None,
        attendance: Attendance::default(),
        channel: ChannelLog::default(),
        end_reason: None,
        quality: None,
        closed_at: None,
        closing: None,
    };
    Ok(BookingPlan {
        schedule: schedule_with(&astrologer.booked, interval, &id, now),
        schedule_version_read: astrologer.schedule_version,
        promo: state.promo.map(|(p, _)| p.clone()).filter(|_| consultation.promo_code.is_some()),
        offer: state.offer.and_then(|o| o.offer).map(|(o, _)| o.clone()).filter(|_| consultation.offer_id.is_some()),
        event: consultation.booked_event(),
        posting,
        consultation,
    })
}

// ---------------------------------------------------------------- extending a session

/// Everything extending a session writes, in one transaction: the consultation with more
/// minutes (conditioned on the minutes read), the added hold, the astrologer's schedule
/// (conditioned on its version).
#[derive(Debug, Clone)]
pub struct ExtensionPlan {
    pub consultation: Consultation,
    pub minutes_read: u32,
    pub posting: Posting,
    pub schedule: Vec<Booked>,
    pub schedule_version_read: u64,
}

/// Why a session cannot be extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionRefusal {
    #[error(transparent)]
    NotLive(#[from] session::NotLive),
    #[error("a consultation is at most 120 minutes")]
    TooLong,
    #[error("the astrologer is booked right after this consultation")]
    SlotTaken,
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// Extending `c` (in progress, as read) by `extra` minutes at `now`: held from `wallet` at
/// the booked rate (the promo code's discount stays what it was, earned per minute over all
/// the minutes), the astrologer's time claimed `extra` minutes further.
pub fn plan_extension(
    c: &Consultation,
    wallet: &Wallet,
    astrologer: &AstrologerRecord,
    extra: u32,
    now: DateTime<Utc>,
) -> Result<ExtensionPlan, ExtensionRefusal> {
    session::check_live(c, now)?;
    let minutes = c.price.minutes.checked_add(extra).filter(|m| *m <= MAX_MINUTES).ok_or(ExtensionRefusal::TooLong)?;
    let cost = price(c.price.rate_per_minute, extra, Money::ZERO).ok_or(ExtensionRefusal::TooLong)?.gross;
    let added = wallet.hold(cost)?;
    // The claim on the astrologer's time ends `extra` minutes later than the session would.
    let end_before = c.paid_until.unwrap_or(c.ends_at).max(c.ends_at);
    let end = end_before + Duration::minutes(i64::from(extra));
    if astrologer.booked.iter().any(|(s, e, id)| id != c.booking_id.as_str() && *s < end && *e > end_before) {
        return Err(ExtensionRefusal::SlotTaken);
    }
    let note = format!("Consultation {} extended by {extra} minutes", c.booking_id);
    let posting =
        wallet.post(vec![Movement::hold(added, Reference::consultation(c.booking_id.as_str()), &note)], now)?;
    let mut extended = c.clone();
    extended.price.minutes = minutes;
    extended.price.gross = c.price.gross.checked_add(cost).map_err(|_| ExtensionRefusal::TooLong)?;
    extended.price.amount = c.price.amount.checked_add(cost).map_err(|_| ExtensionRefusal::TooLong)?;
    extended.hold = Hold {
        real: c.hold.real.checked_add(added.real).map_err(|_| WalletError::Overflow)?,
        bonus: c.hold.bonus.checked_add(added.bonus).map_err(|_| WalletError::Overflow)?,
    };
    extended.ends_at = end;
    extended.paid_until = session::paid_until(&extended);
    let schedule = schedule_with(
        &schedule_without(&astrologer.booked, &c.booking_id, now),
        (c.scheduled_at, end),
        &c.booking_id,
        now,
    );
    Ok(ExtensionPlan {
        consultation: extended,
        minutes_read: c.price.minutes,
        posting,
        schedule,
        schedule_version_read: astrologer.schedule_version,
    })
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

impl Consultation {
    /// The share this consultation settles at: the one agreed at booking, else `default`.
    pub fn share(&self, default: RevenueShare) -> RevenueShare {
        self.share_percent.and_then(RevenueShare::new).unwrap_or(default)
    }
}

impl RevenueShare {
    /// A percentage as staff send it: `"80"`, `"72.5"`; 0 to 100, at most two decimals.
    pub fn parse_percent(raw: &str) -> Option<Decimal> {
        let percent: Decimal = raw.parse().ok()?;
        (percent.scale() <= 2 && Self::new(percent).is_some()).then_some(percent.normalize())
    }

    /// An astrologer's share of what is charged, 0 to 100 percent.
    pub fn new(astrologer_percent: Decimal) -> Option<Self> {
        (astrologer_percent >= Decimal::ZERO && astrologer_percent <= Decimal::ONE_HUNDRED)
            .then_some(Self { astrologer_percent })
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
    /// The first minutes, free by an offer, up to the price's `free_minutes`.
    pub free_minutes_used: u32,
    /// The astrologer's share of the free minutes at the rate, paid by the promotions.
    pub promotional_earnings: Money,
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

pub fn settle(price: &Price, hold: Hold, actual_minutes: u32, share: RevenueShare) -> Settlement {
    let actual = actual_minutes.min(price.minutes);
    // Free minutes come first: a session shorter than them costs the customer nothing.
    let free_minutes_used = price.free_minutes.min(actual);
    let paid = actual - free_minutes_used;
    let gross = price.rate_per_minute.decimal() * Decimal::from(paid);
    // The discount is earned per paid minute: the customer keeps the same rate they were quoted.
    let paid_booked = price.minutes.saturating_sub(price.free_minutes).max(1);
    let discount = (price.discount.decimal() * Decimal::from(paid) / Decimal::from(paid_booked))
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    let due = Money::new(gross - discount).unwrap_or(Money::ZERO).min(hold.total());
    let (charged, refunded) = hold.split(due);
    let (paid_earnings, platform_share) = share.split(charged.total());
    let free_value =
        Money::new(price.rate_per_minute.decimal() * Decimal::from(free_minutes_used)).unwrap_or(Money::ZERO);
    let (promotional_earnings, _) = share.split(free_value);
    Settlement {
        actual_minutes: actual,
        free_minutes_used,
        promotional_earnings,
        charged,
        refunded,
        astrologer_earnings: paid_earnings.checked_add(promotional_earnings).unwrap_or(paid_earnings),
        platform_share,
    }
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

/// How ending `c` as `to` (by `by`, at `now`, its meter stopped at `meter_stop`) moves its
/// money: completed settles the minutes the server measured (none if the meter never
/// started: a party never came); declined, expired, cancelled or no-show refunds by the policy.
pub fn closing_for(
    c: &Consultation,
    to: ConsultationStatus,
    by: Party,
    share: RevenueShare,
    now: DateTime<Utc>,
    meter_stop: DateTime<Utc>,
) -> Closing {
    let share = c.share(share);
    if to == ConsultationStatus::Completed {
        let seconds = session::measured_seconds(c, meter_stop);
        let minutes = session::billed_minutes(c.started_at.is_some(), seconds, c.price.minutes);
        Closing { measured_seconds: Some(seconds), ..settle(&c.price, c.hold, minutes, share).into() }
    } else {
        cancel(c.hold, refund_percent(by, c.created_at, c.scheduled_at, now), share).into()
    }
}

/// The promo code whose use comes back (both limits) when `c` ends with `closing`: only a
/// full refund or a session whose meter never started (a party never came) gives it back; a
/// consultation that ran or charged anything used it.
pub fn promo_use_returned<'a>(c: &'a Consultation, closing: &Closing) -> Option<&'a str> {
    // Not "charged nothing": a free (fully discounted) consultation held and used the code too.
    c.promo_code.as_deref().filter(|_| closing.refund_percent == Some(100) || closing.actual_minutes == Some(0))
}

/// What a closing credits the astrologer's earnings: their share of the charge, and of the
/// free minutes (paid by the promotions), as separate entries.
pub fn earning_movements(closing: &Closing, booking_id: &str) -> Vec<Movement> {
    let paid = closing.astrologer_earnings.checked_sub(closing.promotional_earnings).unwrap_or(Money::ZERO);
    let mut movements = Vec::new();
    if paid > Money::ZERO {
        movements.push(Movement::earning(paid, booking_id));
    }
    if closing.promotional_earnings > Money::ZERO {
        movements.push(Movement::promotional_earning(closing.promotional_earnings, booking_id));
    }
    movements
}

/// What becomes of the offer `c` reserved when it ends with `closing`: consumed by a session
/// that used its free minutes (the consultation is then promotional), released by anything
/// else (cancelled, no-show, declined, expired, nobody came), to be used again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferOutcome<'a> {
    Consumed { offer_id: &'a str, free_minutes: u32, promotional_earnings: Money },
    Released { offer_id: &'a str },
}

pub fn offer_outcome<'a>(c: &'a Consultation, closing: &Closing) -> Option<OfferOutcome<'a>> {
    let offer_id = c.offer_id.as_deref()?;
    Some(if closing.free_minutes_used > 0 {
        OfferOutcome::Consumed {
            offer_id,
            free_minutes: closing.free_minutes_used,
            promotional_earnings: closing.promotional_earnings,
        }
    } else {
        OfferOutcome::Released { offer_id }
    })
}

pub fn cancel(hold: Hold, refund_percent: u32, share: RevenueShare) -> Cancellation {
    let refund = (hold.total().decimal() * Decimal::from(refund_percent.min(100)) / Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(2, RoundingStrategy::ToZero);
    let kept = hold.total().checked_sub(Money::new(refund).unwrap_or(Money::ZERO)).unwrap_or(Money::ZERO);
    let (charged, refunded) = hold.split(kept);
    let (astrologer_earnings, platform_share) = share.split(charged.total());
    Cancellation { refund_percent, charged, refunded, astrologer_earnings, platform_share }
}

/// `BookingId::parse`: `AT` and 8 digits.
pub const BOOKING_ID_PATTERN: &str = "^AT[0-9]{8}$";

#[cfg(feature = "openapi")]
mod openapi_schema {
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use super::BOOKING_ID_PATTERN;
    use crate::domain::schema::json_schema;

    impl utoipa::PartialSchema for crate::domain::booking::BookingId {
        fn schema() -> RefOr<Schema> {
            json_schema(json!({
                "type": "string", "pattern": BOOKING_ID_PATTERN,
                "description": "the consultation's id: `AT` and 8 digits, what a customer reads out to support",
                "examples": ["AT01234567"],
            }))
        }
    }
    impl utoipa::ToSchema for crate::domain::booking::BookingId {}
}

#[cfg(test)]
mod tests {
    use super::*;

    use rust_decimal_macros::dec;

    const SEVENTY: RevenueShare = RevenueShare { astrologer_percent: dec!(70) };

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn only_the_state_machines_transitions_are_allowed() {
        use ConsultationStatus::*;
        let actions = [
            Action::Start,
            Action::Accept,
            Action::Decline,
            Action::Expire,
            Action::Complete,
            Action::Cancel,
            Action::NoShow,
            Action::End,
        ];
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
                (Ringing, Action::Start, Party::Astrologer, InProgress),
                (Ringing, Action::Accept, Party::Astrologer, InProgress),
                (Ringing, Action::Decline, Party::Astrologer, Declined),
                (Ringing, Action::Expire, Party::System, Expired),
                (Ringing, Action::Cancel, Party::Customer, Cancelled),
                (Ringing, Action::Cancel, Party::Astrologer, Declined),
                (Ringing, Action::End, Party::Staff, Cancelled),
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
            share_percent: None,
            promo_code: Some("ONCE".into()),
            offer_id: None,
            promotional: false,
            question: None,
            hold: Hold { real: m("150"), bonus: m("50") },
            status: if started_at.is_some() { ConsultationStatus::InProgress } else { ConsultationStatus::Scheduled },
            created_at: utc("2026-11-22T08:00:00Z"),
            ring_expires_at: None,
            started_at,
            paid_until: None,
            meter_source: None,
            attendance: Attendance::default(),
            channel: ChannelLog::default(),
            end_reason: None,
            quality: None,
            closed_at: None,
            closing: None,
        }
    }

    /// Every row of docs/money.md's "Cancellation policy" table, in its order: who, what, from
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
        // Connect now, ringing since 08:00; and a session the astrologer opened that the
        // customer never joined (no meter).
        let ringing = |now| {
            let (mut c, now) = instant(now);
            c.status = Ringing;
            c.ring_expires_at = Some(utc("2026-11-22T08:01:00Z"));
            (c, now)
        };
        let unmetered = |now| {
            let mut c = consultation(noon, None);
            c.status = InProgress;
            c.attendance.astrologer_joined_at = Some(noon);
            (c, now)
        };
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
            // 12. the astrologer declines a ringing request (or cancels it)
            (ringing(at("08:00:30")), Party::Astrologer, Action::Decline, Declined, Percent(100), false, true),
            (ringing(at("08:00:30")), Party::Astrologer, Action::Cancel, Declined, Percent(100), false, true),
            // 13. the customer hangs up while it rings
            (ringing(at("08:00:10")), Party::Customer, Action::Cancel, Cancelled, Percent(100), false, true),
            // 14. the sweep: unanswered for a minute
            (ringing(at("08:01:00")), Party::System, Action::Expire, Expired, Percent(100), false, true),
            // 15. ended with the meter never started: nothing billed
            (unmetered(at("12:03:00")), Party::Customer, Action::Complete, Completed, Minutes(0), false, true),
            (unmetered(at("12:03:00")), Party::System, Action::Complete, Completed, Minutes(0), false, true),
        ];
        for (n, ((c, now), by, action, to, money, earns, promo_back)) in rows.into_iter().enumerate() {
            let row = format!("row {n}: {by:?} {action:?} at {now}");
            assert_eq!(transition(c.status, action, by), Some(to), "{row}");
            let closing = closing_for(&c, to, by, share, now, now);
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

    // ------------------------------------------------------------ plan: what a booking writes

    const CUSTOMER: &str = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    const ASTROLOGER: &str = "6a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

    fn id(raw: &str) -> UserId {
        UserId::parse(raw).unwrap()
    }

    /// Online now, chat and call at 25.00 a minute, one consultation already booked tomorrow.
    fn online_astrologer(now: DateTime<Utc>) -> AstrologerRecord {
        AstrologerRecord {
            id: id(ASTROLOGER),
            profile: Some(crate::domain::astrologer::Profile {
                display_name: "Acharya Asha".into(),
                bio: String::new(),
                experience_years: 10,
                languages: vec!["hi".into()],
                specialisations: vec!["vedic".into()],
                rate_per_minute: m("25"),
                modes: vec![Mode::Chat, Mode::Call],
                education: None,
                certifications: vec![],
            }),
            picture_key: None,
            availability: crate::domain::availability::WeeklyAvailability::none(),
            presence: Presence::Online,
            online_until: Some(now + Duration::minutes(5)),
            rating: Default::default(),
            booked: vec![(
                now + Duration::days(1),
                now + Duration::days(1) + Duration::minutes(30),
                "AT00000001".into(),
            )],
            schedule_version: 7,
            listed: true,
            kyc_status: crate::KycStatus::Completed,
            verification_status: crate::domain::user::VerificationStatus::Approved,
            revenue_share_percent: None,
            accepts_promotional_offers: true,
        }
    }

    fn funded(real: &str, bonus: &str) -> Wallet {
        let movements = vec![Movement::top_up(m(real), "tu_1", "AK/1"), Movement::top_up_bonus(m(bonus), "tu_1")];
        Wallet::empty().post(movements, utc("2026-11-01T00:00:00Z")).unwrap().after
    }

    fn request(minutes: u32, promo_code: Option<&str>) -> BookingRequest {
        BookingRequest::new(id(CUSTOMER), id(ASTROLOGER), Mode::Chat, minutes, None, promo_code, Some("  career?  "))
            .unwrap()
    }

    #[test]
    fn an_extension_holds_more_minutes_moves_the_paid_end_and_is_refused_past_the_limits() {
        let now = utc("2026-11-22T10:00:00Z");
        let (wallet, astrologer) = (funded("1000", "0"), online_astrologer(now));
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: None,
            promo_used_by_customer: 0,
            offer: None,
        };
        let booked = plan(&state, &request(10, None), BookingId::from_number(42), now).unwrap();
        let mut astrologer = astrologer.clone();
        astrologer.booked = booked.schedule.clone();
        let wallet = booked.posting.after.clone();
        let mut c = booked.consultation.clone();
        c.status = ConsultationStatus::InProgress;
        c.attendance.astrologer_joined_at = Some(now + Duration::seconds(10));
        c.attendance.customer_joined_at = Some(now + Duration::seconds(20));
        c.started_at = Some(now + Duration::seconds(20));
        c.paid_until = session::paid_until(&c);
        let at = now + Duration::minutes(8);

        let x = plan_extension(&c, &wallet, &astrologer, 5, at).unwrap();
        assert_eq!((x.consultation.price.minutes, x.consultation.price.amount), (15, m("375")), "5 more at 25.00");
        assert_eq!(x.consultation.hold.total(), m("375"));
        assert_eq!(x.posting.after.real_cash, m("625"), "1000 - 250 - 125");
        assert_eq!(x.consultation.paid_until, Some(now + Duration::seconds(20) + Duration::minutes(15)));
        assert_eq!(x.minutes_read, 10, "conditioned on the minutes read");
        assert!(x.schedule.iter().any(|(_, e, id)| id == "AT00000042" && *e >= x.consultation.paid_until.unwrap()));

        let poor = funded("100", "0");
        assert_eq!(
            plan_extension(&c, &poor, &astrologer, 5, at).unwrap_err(),
            ExtensionRefusal::Wallet(WalletError::Insufficient { shortfall: m("25") })
        );
        assert_eq!(plan_extension(&c, &wallet, &astrologer, 111, at).unwrap_err(), ExtensionRefusal::TooLong);
        let mut next = astrologer.clone();
        next.booked.push((c.paid_until.unwrap() + Duration::minutes(2), now + Duration::hours(1), "AT00000099".into()));
        assert_eq!(plan_extension(&c, &wallet, &next, 5, at).unwrap_err(), ExtensionRefusal::SlotTaken);
        let over = now + Duration::minutes(11);
        assert_eq!(
            plan_extension(&c, &wallet, &astrologer, 5, over).unwrap_err(),
            ExtensionRefusal::NotLive(session::NotLive::PaidTimeOver),
            "the paid time ran out: too late to extend"
        );
    }

    #[test]
    fn a_consultation_settles_at_the_share_in_force_when_it_was_booked() {
        let now = utc("2026-11-22T10:00:00Z");
        let wallet = funded("1000", "0");
        let platform_terms = online_astrologer(now);
        let own_terms = AstrologerRecord { revenue_share_percent: Some(dec!(80)), ..platform_terms.clone() };
        let book = |astrologer: &AstrologerRecord, n: u32| {
            let state = BookingState {
                wallet: &wallet,
                astrologer,
                default_share: SEVENTY,
                promo: None,
                promo_used_by_customer: 0,
                offer: None,
            };
            plan(&state, &request(10, None), BookingId::from_number(n), now).unwrap().consultation
        };
        let (platforms, own) = (book(&platform_terms, 8), book(&own_terms, 9));
        assert_eq!((platforms.share_percent, own.share_percent), (Some(dec!(70)), Some(dec!(80))));
        // Whatever the platform's share is at settlement, each keeps its own.
        let later = RevenueShare { astrologer_percent: dec!(60) };
        assert_eq!(own.share(later).split(m("100.00")), (m("80.00"), m("20.00")));
        assert_eq!(platforms.share(later).split(m("100.00")), (m("70.00"), m("30.00")));
        // Booked before shares were per astrologer: the platform's share at settlement.
        let old = Consultation { share_percent: None, ..own };
        assert_eq!(old.share(later).split(m("100.00")), (m("60.00"), m("40.00")));
    }

    #[test]
    fn a_booking_holds_the_price_bonus_first_claims_the_time_and_tells_others() {
        let now = utc("2026-11-22T10:00:00Z");
        let (wallet, astrologer) = (funded("450", "100"), online_astrologer(now));
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: None,
            promo_used_by_customer: 0,
            offer: None,
        };
        let plan = plan(&state, &request(20, None), BookingId::from_number(42), now).unwrap();
        let c = &plan.consultation;
        assert_eq!((c.price.gross, c.price.amount), (m("500"), m("500")));
        assert_eq!(c.hold, Hold { real: m("400"), bonus: m("100") }, "bonus cash first");
        assert_eq!((plan.posting.after.real_cash, plan.posting.after.bonus_cash), (m("50"), m("0")));
        assert_eq!(plan.posting.before_version, wallet.version);
        assert_eq!((c.scheduled_at, c.ends_at, c.instant), (now, now + Duration::minutes(20), true));
        assert_eq!(
            (c.status, c.question.as_deref(), c.promo_code.as_deref()),
            (ConsultationStatus::Ringing, Some("career?"), None)
        );
        assert_eq!(c.ring_expires_at, Some(now + session::RING_FOR), "the astrologer is rung for a minute");
        // The schedule written keeps tomorrow's booking and adds this one, on the version read.
        assert_eq!(plan.schedule.len(), 2);
        assert!(plan.schedule.contains(&(now, now + Duration::minutes(20), "AT00000042".into())));
        assert_eq!(plan.schedule_version_read, 7);
        assert_eq!(plan.promo, None);
        assert_eq!(plan.event.id, "consultation-booked-AT00000042");
        assert_eq!((plan.event.payload.amount, plan.event.payload.minutes), (m("500"), 20));
        assert_eq!(plan.event, c.booked_event(), "a rerun builds the same event");
    }

    #[test]
    fn a_promo_code_takes_its_discount_and_counts_its_use_only_when_it_applies() {
        let now = utc("2026-11-22T10:00:00Z");
        let (wallet, astrologer) = (funded("1000", "0"), online_astrologer(now));
        let code = (promo(DiscountKind::Percentage, dec!(12.5)), 3);
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: Some(&code),
            promo_used_by_customer: 0,
            offer: None,
        };
        let plan = plan(&state, &request(20, Some(" welcome50 ")), BookingId::from_number(1), now).unwrap();
        assert_eq!((plan.consultation.price.discount, plan.consultation.price.amount), (m("62.50"), m("437.50")));
        assert_eq!(plan.consultation.promo_code.as_deref(), Some("WELCOME50"));
        assert_eq!(plan.promo.as_ref().map(|p| p.code.as_str()), Some("WELCOME50"));

        // Below the code's minimum order: refused, not silently ignored.
        let small = plan_err(&state, &request(5, Some("WELCOME50")), now);
        assert_eq!(small, BookingRefusal::Promo(PromoRefusal::BelowMinimum));
        let used = BookingState { promo_used_by_customer: 1, ..state };
        assert_eq!(
            plan_err(&used, &request(20, Some("WELCOME50")), now),
            BookingRefusal::Promo(PromoRefusal::UsedByYou)
        );
        let unknown = BookingState { promo: None, ..state };
        assert_eq!(plan_err(&unknown, &request(20, Some("NOPE")), now), BookingRefusal::Promo(PromoRefusal::Unknown));
    }

    #[test]
    fn an_offer_makes_the_first_minutes_free_and_is_refused_where_it_does_not_apply() {
        use crate::domain::offer::{CustomerProgress, Offer, OfferCounters, OfferRefusal, SegmentThresholds};
        let now = utc("2026-11-22T10:00:00Z");
        let (wallet, mut astrologer) = (funded("1000", "0"), online_astrologer(now));
        astrologer.accepts_promotional_offers = true;
        let offer = Offer {
            offer_id: "o_0123456789ab".into(),
            name: "First 5 minutes free".into(),
            free_minutes: 5,
            bonus_percent: None,
            max_bonus: None,
            first_consultation_only: true,
            milestone: None,
            segments: vec![],
            valid_from: utc("2026-11-01T00:00:00Z"),
            valid_until: None,
            per_customer_limit: 1,
            total_limit: None,
            promotional_astrologers_only: true,
            active: true,
        };
        let found = (offer.clone(), OfferCounters::default());
        let progress = CustomerProgress::default();
        let offered = OfferState { offer: Some(&found), progress: &progress, thresholds: SegmentThresholds::default() };
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: None,
            promo_used_by_customer: 0,
            offer: Some(offered),
        };
        let with_offer = |minutes| request(minutes, None).with_offer(Some("o_0123456789ab")).unwrap();
        let plan = plan(&state, &with_offer(12), BookingId::from_number(1), now).unwrap();
        let p = plan.consultation.price;
        assert_eq!((p.gross, p.free_minutes, p.free_value, p.amount), (m("300"), 5, m("125"), m("175")));
        assert_eq!(plan.consultation.hold.total(), m("175"), "only the paid minutes are held");
        assert_eq!(plan.offer.as_ref().map(|o| o.offer_id.as_str()), Some("o_0123456789ab"));
        assert_eq!(plan.consultation.offer_id.as_deref(), Some("o_0123456789ab"));
        // All five minutes free: nothing held, the offer still reserved.
        let free = super::plan(&state, &with_offer(5), BookingId::from_number(2), now).unwrap();
        assert_eq!((free.consultation.price.amount, free.offer.is_some()), (m("0"), true));

        let mut not_taking_part = astrologer.clone();
        not_taking_part.accepts_promotional_offers = false;
        let refused = plan_err(&BookingState { astrologer: &not_taking_part, ..state }, &with_offer(12), now);
        assert_eq!(refused, BookingRefusal::Offer(OfferRefusal::AstrologerNotTakingPart));
        let missing = BookingState { offer: Some(OfferState { offer: None, ..offered }), ..state };
        assert_eq!(plan_err(&missing, &with_offer(12), now), BookingRefusal::Offer(OfferRefusal::Unknown));
        let both = request(12, Some("WELCOME50")).with_offer(Some("o_0123456789ab")).unwrap();
        assert_eq!(plan_err(&state, &both, now), BookingRefusal::Offer(OfferRefusal::WithPromoCode));
        assert!(request(12, None).with_offer(Some("o_nothex")).is_err());
    }

    #[test]
    fn free_minutes_come_first_and_the_promotions_pay_the_astrologers_share_of_them() {
        // ₹12.34 a minute, 10 booked, the first 5 free, 70 % to the astrologer.
        let p = price_with_free(m("12.34"), 10, 5, Money::ZERO).unwrap();
        assert_eq!((p.gross, p.free_value, p.amount), (m("123.40"), m("61.70"), m("61.70")));
        let hold = Hold { real: m("61.70"), bonus: Money::ZERO };
        // Three minutes: all free. The customer pays nothing, the astrologer earns 70 % of ₹37.02.
        let short = settle(&p, hold, 3, SEVENTY);
        assert_eq!((short.free_minutes_used, short.charged.total(), short.refunded.total()), (3, m("0"), m("61.70")));
        assert_eq!(
            (short.promotional_earnings, short.astrologer_earnings, short.platform_share),
            (m("25.91"), m("25.91"), m("0"))
        );
        // Eight minutes: five free, three paid.
        let long = settle(&p, hold, 8, SEVENTY);
        assert_eq!((long.free_minutes_used, long.charged.total(), long.refunded.total()), (5, m("37.02"), m("24.68")));
        assert_eq!(long.promotional_earnings, m("43.19"));
        assert_eq!((long.astrologer_earnings, long.platform_share), (m("69.10"), m("11.11")));
        // The books: what the customer was charged plus what the promotions paid is what
        // the astrologer earned plus the platform's share.
        for s in [short, long] {
            assert_eq!(
                s.charged.total().checked_add(s.promotional_earnings).unwrap(),
                s.astrologer_earnings.checked_add(s.platform_share).unwrap()
            );
        }
        let closing: Closing = long.into();
        let entries = earning_movements(&closing, "AT00000001");
        let kinds: Vec<_> = entries.iter().map(|e| (e.kind, e.real.magnitude())).collect();
        assert_eq!(
            kinds,
            [
                (crate::domain::wallet::EntryKind::Earning, m("25.91")),
                (crate::domain::wallet::EntryKind::PromotionalEarning, m("43.19"))
            ]
        );
    }

    fn plan_err(state: &BookingState, request: &BookingRequest, now: DateTime<Utc>) -> BookingRefusal {
        plan(state, request, BookingId::from_number(9), now).unwrap_err()
    }

    #[test]
    fn a_booking_is_refused_for_the_balance_the_time_or_the_astrologer() {
        let now = utc("2026-11-22T10:00:00Z");
        let (rich, astrologer) = (funded("10000", "0"), online_astrologer(now));
        let state = BookingState {
            wallet: &rich,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: None,
            promo_used_by_customer: 0,
            offer: None,
        };

        let poor = funded("100", "20");
        let short = plan_err(&BookingState { wallet: &poor, ..state }, &request(10, None), now);
        assert_eq!(short, BookingRefusal::Wallet(WalletError::Insufficient { shortfall: m("130") }));

        let offline = AstrologerRecord { online_until: Some(now - Duration::seconds(1)), ..astrologer.clone() };
        let gone = plan_err(&BookingState { astrologer: &offline, ..state }, &request(10, None), now);
        assert_eq!(gone, BookingRefusal::NotBookable(NotBookable::NotOnline));

        let busy = AstrologerRecord {
            booked: vec![(now - Duration::minutes(5), now + Duration::minutes(5), "AT00000002".into())],
            ..astrologer.clone()
        };
        let taken = plan_err(&BookingState { astrologer: &busy, ..state }, &request(10, None), now);
        assert_eq!(taken, BookingRefusal::NotBookable(NotBookable::SlotTaken));

        let video = BookingRequest { mode: Mode::Video, ..request(10, None) };
        assert_eq!(plan_err(&state, &video, now), BookingRefusal::NotBookable(NotBookable::ModeNotOffered));
        let yourself = BookingRequest { customer: id(ASTROLOGER), ..request(10, None) };
        assert_eq!(plan_err(&state, &yourself, now), BookingRefusal::NotBookable(NotBookable::Yourself));
        let unlisted = AstrologerRecord { listed: false, ..astrologer.clone() };
        let hidden = plan_err(&BookingState { astrologer: &unlisted, ..state }, &request(10, None), now);
        assert_eq!(hidden, BookingRefusal::NotBookable(NotBookable::NotListed));
    }

    #[test]
    fn a_booking_request_names_the_field_it_refuses() {
        let new = |minutes, promo: Option<&str>, question: Option<&str>| {
            BookingRequest::new(id(CUSTOMER), id(ASTROLOGER), Mode::Chat, minutes, None, promo, question)
        };
        for minutes in [0, 4, 121] {
            assert_eq!(new(minutes, None, None).unwrap_err().field, "minutes", "{minutes}");
        }
        assert!(new(5, None, None).is_ok() && new(120, None, None).is_ok());
        let long = "x".repeat(MAX_QUESTION_CHARS + 1);
        for question in [long.as_str(), "line\u{7}bell"] {
            assert_eq!(new(10, None, Some(question)).unwrap_err().field, "question");
        }
        assert_eq!(new(10, None, Some("   ")).unwrap().question, None);
        assert_eq!(new(10, Some("not a code!"), None).unwrap_err().field, "promo_code");
        assert_eq!(new(10, Some(" welcome50 "), None).unwrap().promo_code.as_deref(), Some("WELCOME50"));
    }

    #[test]
    fn a_closing_tells_what_it_charged_or_who_ended_it() {
        let now = utc("2026-11-22T10:00:00Z");
        let (wallet, astrologer) = (funded("1000", "0"), online_astrologer(now));
        let state = BookingState {
            wallet: &wallet,
            astrologer: &astrologer,
            default_share: SEVENTY,
            promo: None,
            promo_used_by_customer: 0,
            offer: None,
        };
        let c = plan(&state, &request(20, None), BookingId::from_number(5), now).unwrap().consultation;
        let settled: Closing = settle(&c.price, c.hold, 7, RevenueShare::new(dec!(70)).unwrap()).into();
        match c.closed_event(ConsultationStatus::Completed, &settled, "customer", now) {
            ClosedEvent::Completed(e) => {
                assert_eq!(e.id, "consultation-completed-AT00000005");
                assert_eq!((e.payload.actual_minutes, e.payload.charged, e.payload.refunded), (7, m("175"), m("325")));
                assert_eq!(e.payload.astrologer_earnings, m("122.50"));
            }
            other => panic!("{other:?}"),
        }
        let cancelled: Closing = cancel(c.hold, 100, RevenueShare::new(dec!(70)).unwrap()).into();
        match c.closed_event(ConsultationStatus::NoShow, &cancelled, "system", now) {
            ClosedEvent::Cancelled(e) => {
                assert_eq!(e.id, "consultation-closed-AT00000005");
                assert_eq!(
                    (e.payload.status.as_str(), e.payload.by.as_str(), e.payload.refunded),
                    ("no_show", "system", m("500"))
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
