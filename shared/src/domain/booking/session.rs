//! Live sessions: ringing an online astrologer, the parties joining, the meter the server
//! runs, and when a session ends by itself: the live part of a consultation. Pure; the
//! session functions and the sweep act on what these decide.
//!
//! ```text
//! connect now (customer) ─> ringing ──accept (astrologer)──> in_progress ──> completed
//!                              │ └─decline (astrologer)──> declined (all back)
//!                              ├─no answer in RING_FOR (sweep)──> expired (all back)
//!                              └─cancel (customer hangs up)──> cancelled (all back)
//! ```
//!
//! The meter runs on the server's clock from the moment both parties have joined (chat:
//! the astrologer's accept or start, and the customer's join) until the session ends:
//! either party ends it, the paid minutes run out, or a party has been gone (no join,
//! message or heartbeat) for [`LAPSE_AFTER`]. Billing is per started minute of measured
//! time, never more than the minutes held: `billed_minutes`.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::booking::call::{MeterSource, RECONNECT_GRACE};
use crate::domain::booking::{Consultation, ConsultationStatus, Party};
use crate::domain::status::string_enum;

/// How long an astrologer is rung before the request expires.
pub const RING_FOR: Duration = Duration::seconds(60);
/// A party silent this long (no connection, no heartbeat) has left: the session ends.
pub const LAPSE_AFTER: Duration = Duration::seconds(60);
/// Each party is warned this long before the paid minutes run out.
pub const WARN_BEFORE: Duration = Duration::seconds(60);
/// The sweep runs this often (template.yaml: `rate(1 minute)`), so a warning falls in
/// exactly one run's window: `(WARN_BEFORE, WARN_BEFORE + SWEEP_EVERY]` before the end.
pub const SWEEP_EVERY: Duration = Duration::seconds(60);

string_enum!(
    /// Who or what ended a session.
    EndReason {
        Customer => "customer",
        Astrologer => "astrologer",
        /// The paid minutes ran out.
        Balance => "balance",
        /// A party was gone for [`LAPSE_AFTER`].
        Lapse => "lapse",
        Staff => "staff",
    }
);

impl EndReason {
    /// The reason a party's own end gives.
    pub fn of(by: Party) -> Self {
        match by {
            Party::Customer => Self::Customer,
            Party::Astrologer => Self::Astrologer,
            Party::Staff => Self::Staff,
            Party::System => Self::Balance,
        }
    }
}

/// When each party joined the session and was last heard from (a join, a message, a heartbeat).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Attendance {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::domain::time::rfc3339_opt")]
    pub customer_joined_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::domain::time::rfc3339_opt")]
    pub astrologer_joined_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::domain::time::rfc3339_opt")]
    pub customer_seen_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::domain::time::rfc3339_opt")]
    pub astrologer_seen_at: Option<DateTime<Utc>>,
}

impl Attendance {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn joined_at(&self, party: Party) -> Option<DateTime<Utc>> {
        match party {
            Party::Customer => self.customer_joined_at,
            Party::Astrologer => self.astrologer_joined_at,
            _ => None,
        }
    }

    /// When `party` was last heard from (joined counts).
    pub fn last_seen(&self, party: Party) -> Option<DateTime<Utc>> {
        let seen = match party {
            Party::Customer => self.customer_seen_at,
            Party::Astrologer => self.astrologer_seen_at,
            _ => None,
        };
        seen.max(self.joined_at(party))
    }
}

/// A session's quality (seed 003 `QualityMetrics`), for its parties and staff: messages per
/// side, how soon the astrologer first answered once the meter ran, and whether it was short.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Quality {
    pub customer_messages: u32,
    pub astrologer_messages: u32,
    /// Seconds from the meter's start to the astrologer's first message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response_seconds: Option<u32>,
    /// Ended with under [`SHORT_SESSION`] measured.
    pub short: bool,
}

/// A session measured under this is flagged short (a dropped or abandoned one, mostly).
pub const SHORT_SESSION: Duration = Duration::seconds(120);

impl Quality {
    /// From the counts and first reply kept on the consultation, and its measured seconds once ended.
    pub fn of(
        c: &Consultation,
        customer_messages: u32,
        astrologer_messages: u32,
        first_reply: Option<DateTime<Utc>>,
    ) -> Self {
        let first_response_seconds = first_reply
            .zip(c.started_at)
            .map(|(reply, start)| u32::try_from((reply - start).num_seconds().max(0)).unwrap_or(u32::MAX));
        Self { customer_messages, astrologer_messages, first_response_seconds, short: false }.as_of(c)
    }

    /// The same counts, with `short` as `c` (just closed, or still running) says.
    pub fn as_of(self, c: &Consultation) -> Self {
        let measured = c.closing.and_then(|closing| closing.measured_seconds);
        Self { short: measured.is_some_and(|m| i64::from(m) < SHORT_SESSION.num_seconds()), ..self }
    }
}

/// What a join changes: the party's join time (kept if it joined before) and, when this join
/// completes the pair, the meter's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    pub party: Party,
    pub at: DateTime<Utc>,
    /// `Some(now)`: both have now joined and the meter starts.
    pub meter_starts: Option<DateTime<Utc>>,
}

/// Why a party cannot join (or send, or heartbeat) now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotLive {
    #[error("the astrologer has not accepted or started this consultation yet")]
    NotOpen,
    #[error("this consultation has ended")]
    Ended,
    #[error("the paid minutes of this consultation have run out")]
    PaidTimeOver,
}

/// Whether `c` is a session `party` may be in at `now` (join, send, heartbeat).
pub fn check_live(c: &Consultation, now: DateTime<Utc>) -> Result<(), NotLive> {
    match c.status {
        ConsultationStatus::InProgress => {}
        ConsultationStatus::Scheduled | ConsultationStatus::Ringing => return Err(NotLive::NotOpen),
        _ => return Err(NotLive::Ended),
    }
    match paid_until(c) {
        Some(end) if now >= end => Err(NotLive::PaidTimeOver),
        _ => Ok(()),
    }
}

/// `party` joining `c` at `now`.
pub fn join(c: &Consultation, party: Party, now: DateTime<Utc>) -> Result<Join, NotLive> {
    check_live(c, now)?;
    let at = c.attendance.joined_at(party).unwrap_or(now);
    let other = match party {
        Party::Customer => Party::Astrologer,
        _ => Party::Customer,
    };
    let meter_starts = (c.started_at.is_none() && c.attendance.joined_at(other).is_some()).then_some(now);
    Ok(Join { party, at, meter_starts })
}

/// When the paid minutes run out: the meter's start plus the minutes held, and for a
/// scheduled consultation never past its booked end (the astrologer's next booking may
/// follow). `None` while the meter has not started.
pub fn paid_until(c: &Consultation) -> Option<DateTime<Utc>> {
    let started = c.started_at?;
    let end = started + Duration::minutes(i64::from(c.price.minutes));
    Some(if c.instant { end } else { end.min(c.ends_at) })
}

/// Seconds the meter ran from `started_at` to `end` (0 if the meter never started).
pub fn measured_seconds(c: &Consultation, end: DateTime<Utc>) -> u32 {
    let Some(started) = c.started_at else { return 0 };
    let end = paid_until(c).map_or(end, |paid| end.min(paid));
    u32::try_from((end - started).num_seconds().max(0)).unwrap_or(u32::MAX)
}

/// Minutes billed for `seconds` of measured time: a started minute counts whole (a session
/// whose meter started bills at least one), never more than the `held` minutes; a session
/// whose meter never started (a party never came) bills none.
pub fn billed_minutes(meter_started: bool, seconds: u32, held: u32) -> u32 {
    if !meter_started {
        return 0;
    }
    seconds.div_ceil(60).clamp(1, held.max(1)).min(held)
}

/// How a session ends by itself, and when its meter stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueEnd {
    pub reason: EndReason,
    /// Billing stops here (the paid end, or when the gone party was last heard from).
    pub at: DateTime<Utc>,
}

/// What the sweep does with `c` at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Ringing unanswered past [`RING_FOR`]: expire it.
    Expire,
    /// In progress and over: end it.
    End(DueEnd),
    /// The paid minutes run out within the warning window of this run: tell both.
    Warn {
        seconds_left: i64,
    },
    Nothing,
}

/// When `c` must end at `now`, if it must: the paid minutes ran out, or a party has been
/// silent for [`LAPSE_AFTER`] (one who never joined counts from the other's join).
pub fn due(c: &Consultation, now: DateTime<Utc>) -> Due {
    match c.status {
        ConsultationStatus::Ringing => {
            return if c.ring_expires_at.is_some_and(|at| now >= at) { Due::Expire } else { Due::Nothing };
        }
        ConsultationStatus::InProgress => {}
        _ => return Due::Nothing,
    }
    let lapse = if c.meter_source == Some(MeterSource::Agora) {
        // Billed from Agora's view: a party out of the channel past the grace has left (the
        // app's heartbeats do not count: a call goes on with the app in the background).
        c.channel.first_out_since().map(|since| (since + RECONNECT_GRACE, since))
    } else {
        let a = &c.attendance;
        // The earliest a party went silent: its last word, or for one never come, the other's join.
        let first_join = a.customer_joined_at.into_iter().chain(a.astrologer_joined_at).min();
        let gone_since = [Party::Customer, Party::Astrologer]
            .into_iter()
            .filter_map(|p| a.last_seen(p).or(first_join))
            .min()
            .filter(|_| first_join.is_some());
        gone_since.map(|since| (since + LAPSE_AFTER, since))
    };
    let paid = paid_until(c);
    // Whichever came first: the paid time running out, or a party counting as gone.
    let lapse = lapse.filter(|(at, _)| now >= *at);
    match (lapse, paid) {
        (Some((gone_at, since)), paid) if paid.is_none_or(|paid| gone_at < paid) => {
            return Due::End(DueEnd { reason: EndReason::Lapse, at: since.max(c.started_at.unwrap_or(since)) });
        }
        _ => {}
    }
    if let Some(paid) = paid {
        if now >= paid {
            return Due::End(DueEnd { reason: EndReason::Balance, at: paid });
        }
        let left = paid - now;
        if left > WARN_BEFORE && left <= WARN_BEFORE + SWEEP_EVERY {
            return Due::Warn { seconds_left: left.num_seconds() };
        }
    }
    Due::Nothing
}

#[cfg(test)]
pub(crate) mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::domain::astrologer::Mode;
    use crate::domain::booking::{BookingId, price};
    use crate::domain::money::Money;
    use crate::domain::user::UserId;
    use crate::domain::wallet::Hold;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-05T{s}Z")).unwrap().into()
    }

    /// A connect-now chat of 10 minutes at ₹10, rung at 10:00:00.
    fn rung() -> Consultation {
        let m = |v| Money::new(v).unwrap();
        Consultation {
            booking_id: BookingId::from_number(7),
            customer_id: UserId::parse("11111111-1111-4111-8111-111111111111").unwrap(),
            astrologer_id: UserId::parse("22222222-2222-4222-8222-222222222222").unwrap(),
            astrologer_name: "A".into(),
            mode: Mode::Chat,
            scheduled_at: t("10:00:00"),
            ends_at: t("10:10:00"),
            instant: true,
            price: price(m(dec!(10)), 10, Money::ZERO).unwrap(),
            share_percent: None,
            promo_code: None,
            offer_id: None,
            promotional: false,
            question: None,
            hold: Hold { real: m(dec!(100)), bonus: Money::ZERO },
            status: ConsultationStatus::Ringing,
            created_at: t("10:00:00"),
            ring_expires_at: Some(t("10:01:00")),
            started_at: None,
            paid_until: None,
            meter_source: None,
            attendance: Attendance::default(),
            channel: Default::default(),
            end_reason: None,
            quality: None,
            closed_at: None,
            closing: None,
        }
    }

    /// Accepted at 10:00:20, the customer joined at 10:00:30 (the meter's start).
    pub(crate) fn running() -> Consultation {
        let mut c = rung();
        c.status = ConsultationStatus::InProgress;
        c.ring_expires_at = None;
        c.attendance.astrologer_joined_at = Some(t("10:00:20"));
        c.attendance.customer_joined_at = Some(t("10:00:30"));
        c.started_at = Some(t("10:00:30"));
        c.meter_source = Some(MeterSource::App);
        c
    }

    #[test]
    fn the_meter_starts_when_the_second_party_joins_and_not_before() {
        let mut c = rung();
        assert_eq!(join(&c, Party::Customer, t("10:00:05")), Err(NotLive::NotOpen), "nobody joins a ringing one");
        c.status = ConsultationStatus::InProgress;
        c.attendance.astrologer_joined_at = Some(t("10:00:20"));
        let j = join(&c, Party::Customer, t("10:00:30")).unwrap();
        assert_eq!((j.at, j.meter_starts), (t("10:00:30"), Some(t("10:00:30"))));
        // The astrologer joining again (a reconnect) keeps their first join and starts nothing.
        let j = join(&c, Party::Astrologer, t("10:00:40")).unwrap();
        assert_eq!((j.at, j.meter_starts), (t("10:00:20"), None));
        let c = running();
        assert_eq!(join(&c, Party::Customer, t("10:03:00")).unwrap().meter_starts, None, "it started already");
        assert_eq!(paid_until(&c), Some(t("10:10:30")), "ten paid minutes from the meter's start");
        assert_eq!(check_live(&c, t("10:10:30")), Err(NotLive::PaidTimeOver));
    }

    #[test]
    fn quality_counts_messages_times_the_first_answer_and_flags_short_sessions() {
        let mut c = running();
        let q = Quality::of(&c, 4, 3, Some(t("10:01:15")));
        assert_eq!(
            (q.customer_messages, q.astrologer_messages, q.first_response_seconds, q.short),
            (4, 3, Some(45), false)
        );
        c.closing = Some(crate::domain::booking::Closing {
            actual_minutes: Some(2),
            measured_seconds: Some(119),
            charged: Hold::default(),
            refunded: Hold::default(),
            astrologer_earnings: Money::ZERO,
            platform_share: Money::ZERO,
            refund_percent: None,
            free_minutes_used: 0,
            promotional_earnings: Money::ZERO,
        });
        assert!(Quality::of(&c, 1, 0, None).short, "under two minutes measured");
        assert_eq!(Quality::of(&c, 1, 0, None).first_response_seconds, None, "never answered");
    }

    #[test]
    fn billing_counts_started_minutes_of_measured_time_never_more_than_held() {
        let c = running();
        let cases =
            [("10:00:30", 0, 1), ("10:01:30", 60, 1), ("10:01:31", 61, 2), ("10:07:00", 390, 7), ("11:00:00", 600, 10)];
        for (end, seconds, minutes) in cases {
            let measured = measured_seconds(&c, t(end));
            assert_eq!((measured, billed_minutes(true, measured, 10)), (seconds, minutes), "ended {end}");
        }
        assert_eq!(measured_seconds(&rung(), t("10:05:00")), 0, "no meter, nothing measured");
        assert_eq!(billed_minutes(false, 0, 10), 0, "a party never came: nothing billed");
    }

    #[test]
    fn a_session_ends_by_itself_when_the_ring_expires_the_paid_time_ends_or_a_party_is_gone() {
        assert_eq!(due(&rung(), t("10:00:59")), Due::Nothing);
        assert_eq!(due(&rung(), t("10:01:00")), Due::Expire);
        let mut c = running();
        c.attendance.customer_seen_at = Some(t("10:09:30"));
        c.attendance.astrologer_seen_at = Some(t("10:09:40"));
        assert_eq!(due(&c, t("10:08:40")), Due::Warn { seconds_left: 110 }, "in this run's warning window");
        assert_eq!(due(&c, t("10:09:40")), Due::Nothing, "warned by the previous run");
        assert_eq!(due(&c, t("10:10:30")), Due::End(DueEnd { reason: EndReason::Balance, at: t("10:10:30") }));
        // The customer went quiet at 10:04:00: gone at 10:05:00, billed to 10:04:00.
        c.attendance.customer_seen_at = Some(t("10:04:00"));
        assert_eq!(due(&c, t("10:04:59")), Due::Nothing, "a minute's grace to reconnect");
        assert_eq!(due(&c, t("10:05:00")), Due::End(DueEnd { reason: EndReason::Lapse, at: t("10:04:00") }));
        // The astrologer accepted but the customer never joined: over a minute later, nothing billed.
        let mut c = rung();
        c.status = ConsultationStatus::InProgress;
        c.attendance.astrologer_joined_at = Some(t("10:00:20"));
        c.attendance.astrologer_seen_at = Some(t("10:01:15"));
        match due(&c, t("10:01:20")) {
            Due::End(end) => assert_eq!((end.reason, measured_seconds(&c, end.at)), (EndReason::Lapse, 0)),
            other => panic!("{other:?}"),
        }
    }
}
