//! Calls and video: Agora's own view of a consultation's channel (seed 003 `AgoraSession`),
//! from the channel events its Notification Center posts, and what the meter makes of it.
//! Pure; the `call-session` function records events, the sweep ends what is over.
//!
//! Agora posts each event at least once, late and in any order, and may give up. So the log
//! keeps every event once (by notice id) and is read in Agora's own order (its timestamp,
//! then the client's sequence), never in arrival order:
//!
//! - the meter starts when both parties are in the channel together, as Agora saw it (the
//!   consultation is then billed from Agora: `MeterSource::Agora`);
//! - a party whose last event is a leave has left; one gone longer than [`RECONNECT_GRACE`]
//!   ends the session, billed up to the leave (a drop and rejoin within it is one session);
//! - without Agora's events (none yet, or both never seen together), the app's own joins and
//!   heartbeats over the WebSocket decide (`session::due`, `MeterSource::App`).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::astrologer::Mode;
use crate::domain::booking::chat::Side;
use crate::domain::booking::{BookingId, Consultation, ConsultationStatus};
use crate::domain::status::string_enum;

/// How long a party may be out of the channel (a dropped network, an app restart) before
/// the session is over: the same minute a silent party gets in chat (`session::LAPSE_AFTER`,
/// not imported: the session reads this module).
pub const RECONNECT_GRACE: Duration = Duration::seconds(60);

/// Events kept per consultation: a call with 50 reconnections fits; past it, events are
/// acknowledged and dropped (logged), and the session is decided on what was kept.
pub const MAX_CHANNEL_EVENTS: usize = 100;

/// Agora's notice ids are short (`"2000001428:4330:107"`); anything longer is not one.
pub const MAX_NOTICE_ID_LEN: usize = 128;

/// Agora's limit on a channel name.
pub const MAX_CHANNEL_LEN: usize = 64;

const CHANNEL_PREFIX: &str = "ak-";

string_enum!(
    /// Whose view of the session the meter ran on.
    MeterSource {
        /// The parties' joins and heartbeats over the WebSocket API.
        App => "app",
        /// Agora's channel events.
        Agora => "agora",
    }
);

string_enum!(
    /// A party entering or leaving the channel.
    ChannelAction {
        Join => "join",
        Leave => "leave",
    }
);

/// The Agora channel of a consultation: one per consultation, named after it.
pub fn channel_name(booking: &BookingId) -> String {
    format!("{CHANNEL_PREFIX}{booking}")
}

/// The consultation a channel name belongs to (`None`: not one of ours).
pub fn booking_of_channel(channel: &str) -> Option<BookingId> {
    if channel.len() > MAX_CHANNEL_LEN {
        return None;
    }
    BookingId::parse(channel.strip_prefix(CHANNEL_PREFIX)?)
}

/// One channel event, as Agora reported it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelEvent {
    pub notice_id: String,
    pub side: Side,
    pub action: ChannelAction,
    /// When it happened, by Agora's clock (its `ts`).
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub at: DateTime<Utc>,
    /// The client's own sequence (Agora's `clientSeq`): orders one party's events within a second.
    pub seq: i64,
}

/// What Agora reported of a consultation's channel, every event once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelLog {
    pub events: Vec<ChannelEvent>,
}

impl ChannelLog {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn has(&self, notice_id: &str) -> bool {
        self.events.iter().any(|e| e.notice_id == notice_id)
    }

    /// The events in the order they happened (Agora's time, then the client's sequence).
    fn in_order(&self) -> Vec<&ChannelEvent> {
        let mut events: Vec<_> = self.events.iter().collect();
        events.sort_by(|a, b| (a.at, a.seq, &a.notice_id).cmp(&(b.at, b.seq, &b.notice_id)));
        events
    }

    /// The first moment both parties were in the channel together.
    pub fn both_in_since(&self) -> Option<DateTime<Utc>> {
        let (mut customer, mut astrologer) = (false, false);
        for e in self.in_order() {
            let inside = e.action == ChannelAction::Join;
            match e.side {
                Side::Customer => customer = inside,
                Side::Astrologer => astrologer = inside,
            }
            if customer && astrologer {
                return Some(e.at);
            }
        }
        None
    }

    /// When `side` left, if its last event is a leave (it is out of the channel now).
    pub fn out_since(&self, side: Side) -> Option<DateTime<Utc>> {
        let last = self.in_order().into_iter().rev().find(|e| e.side == side)?;
        (last.action == ChannelAction::Leave).then_some(last.at)
    }

    /// The earlier of the parties' leaves, if either is out now.
    pub fn first_out_since(&self) -> Option<DateTime<Utc>> {
        [Side::Customer, Side::Astrologer].into_iter().filter_map(|s| self.out_since(s)).min()
    }
}

/// What one new channel event changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Agora sent this notice before: nothing changes.
    Duplicate,
    /// The log is full ([`MAX_CHANNEL_EVENTS`]): acknowledged, not kept.
    Full,
    /// `c` is a chat: its meter is the app's alone.
    NotACall,
    /// Kept; `meter_starts`: the session now runs on Agora's view, its meter from then.
    Kept { meter_starts: Option<DateTime<Utc>> },
}

/// `event` arriving for `c` (any time: late, out of order, after the end).
pub fn record(c: &Consultation, event: &ChannelEvent) -> Recorded {
    // No token is issued for a chat's channel; should Agora report one, it bills nothing.
    if c.mode == Mode::Chat {
        return Recorded::NotACall;
    }
    if c.channel.has(&event.notice_id) {
        return Recorded::Duplicate;
    }
    if c.channel.events.len() >= MAX_CHANNEL_EVENTS {
        return Recorded::Full;
    }
    let mut log = c.channel.clone();
    log.events.push(event.clone());
    // Only a running session's meter moves; events after the end are kept for the record.
    let start = log.both_in_since().filter(|_| c.status == ConsultationStatus::InProgress);
    let moves = start.is_some() && (c.meter_source != Some(MeterSource::Agora) || c.started_at != start);
    Recorded::Kept { meter_starts: start.filter(|_| moves) }
}

/// For a session billed from Agora: when it ended because a party left and did not come
/// back within the grace, as of `now` (the leave is where billing stops).
pub fn left_for_good(c: &Consultation, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if c.meter_source != Some(MeterSource::Agora) {
        return None;
    }
    c.channel.first_out_since().filter(|out| now >= *out + RECONNECT_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::booking::session::{self, Due, DueEnd, EndReason};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-12-05T{s}Z")).unwrap().into()
    }

    fn ev(id: &str, side: Side, action: ChannelAction, at: &str) -> ChannelEvent {
        ChannelEvent { notice_id: id.into(), side, action, at: t(at), seq: 0 }
    }

    use ChannelAction::{Join, Leave};
    use Side::{Astrologer, Customer};

    /// A video call of 10 minutes at ₹10 the astrologer accepted at 10:00:20.
    fn call() -> Consultation {
        let mut c = session::tests::running();
        c.mode = Mode::Video;
        c.started_at = None;
        c.attendance = Default::default();
        c
    }

    /// Applies each event as the webhook would: recorded, and the meter moved when it says.
    fn apply(c: &mut Consultation, events: &[ChannelEvent]) {
        for e in events {
            if let Recorded::Kept { meter_starts } = record(c, e) {
                c.channel.events.push(e.clone());
                if let Some(start) = meter_starts {
                    c.started_at = Some(start);
                    c.meter_source = Some(MeterSource::Agora);
                    c.paid_until = session::paid_until(c);
                }
            }
        }
    }

    #[test]
    fn channels_are_named_after_their_consultation_and_nothing_else_maps_back() {
        let b = BookingId::from_number(7);
        assert_eq!(booking_of_channel(&channel_name(&b)), Some(b));
        assert_eq!(booking_of_channel("someone-elses"), None);
        assert_eq!(booking_of_channel(&format!("ak-{}", "9".repeat(3000))), None);
        assert!(channel_name(&BookingId::from_number(u32::MAX)).len() <= MAX_CHANNEL_LEN);
    }

    #[test]
    fn the_meter_starts_when_both_are_in_the_channel_however_late_the_events_come() {
        let mut c = call();
        // The astrologer's join arrives after the customer's, which happened later.
        apply(&mut c, &[ev("n2", Customer, Join, "10:00:40")]);
        assert_eq!(c.started_at, None, "one party alone");
        apply(&mut c, &[ev("n1", Astrologer, Join, "10:00:25")]);
        assert_eq!((c.started_at, c.meter_source), (Some(t("10:00:40")), Some(MeterSource::Agora)));
        assert_eq!(c.paid_until, Some(t("10:10:40")));
        // Replayed: nothing changes.
        assert_eq!(record(&c, &ev("n1", Astrologer, Join, "10:00:25")), Recorded::Duplicate);
        // A start the app's WebSocket joins made is replaced by Agora's.
        let mut c = call();
        c.started_at = Some(t("10:00:30"));
        c.meter_source = Some(MeterSource::App);
        apply(&mut c, &[ev("a", Astrologer, Join, "10:00:31"), ev("b", Customer, Join, "10:00:33")]);
        assert_eq!((c.started_at, c.meter_source), (Some(t("10:00:33")), Some(MeterSource::Agora)));
    }

    #[test]
    fn a_drop_within_the_grace_is_one_session_and_a_longer_one_ends_it_at_the_leave() {
        let mut c = call();
        apply(
            &mut c,
            &[
                ev("1", Astrologer, Join, "10:00:30"),
                ev("2", Customer, Join, "10:01:00"),
                ev("3", Customer, Leave, "10:03:00"),
                ev("4", Customer, Join, "10:03:50"),
            ],
        );
        assert_eq!(c.started_at, Some(t("10:01:00")), "the rejoin does not restart the meter");
        assert_eq!(session::due(&c, t("10:05:00")), Due::Nothing, "back within the grace");
        // The astrologer drops at 10:06:00 and does not come back.
        apply(&mut c, &[ev("5", Astrologer, Leave, "10:06:00")]);
        assert_eq!(session::due(&c, t("10:06:59")), Due::Nothing, "still within the grace");
        let end = DueEnd { reason: EndReason::Lapse, at: t("10:06:00") };
        assert_eq!(session::due(&c, t("10:07:00")), Due::End(end));
        assert_eq!(session::measured_seconds(&c, end.at), 300, "10:01:00 to 10:06:00");
        assert_eq!(session::billed_minutes(true, 300, 10), 5);
    }

    #[test]
    fn events_out_of_order_are_read_in_agoras_order() {
        let mut c = call();
        // The leave arrives before the join it follows (same second: the client's sequence decides).
        let mut leave = ev("l", Customer, Leave, "10:02:00");
        leave.seq = 2;
        let mut join = ev("j", Customer, Join, "10:02:00");
        join.seq = 1;
        apply(&mut c, &[ev("a", Astrologer, Join, "10:00:00"), ev("c", Customer, Join, "10:00:10"), leave, join]);
        assert_eq!(c.channel.out_since(Customer), Some(t("10:02:00")), "the leave came last");
        assert_eq!(c.channel.out_since(Astrologer), None);
    }

    #[test]
    fn the_app_decides_without_agoras_events_and_events_after_the_end_move_nothing() {
        // Agora reported only the astrologer: the app's view stands (its heartbeats).
        let mut c = session::tests::running();
        c.mode = Mode::Call;
        c.meter_source = Some(MeterSource::App);
        apply(&mut c, &[ev("a", Astrologer, Join, "10:00:20"), ev("b", Astrologer, Leave, "10:00:50")]);
        assert_eq!(c.meter_source, Some(MeterSource::App));
        assert_eq!(left_for_good(&c, t("10:05:00")), None, "Agora never saw them together");
        // After the end: kept, the meter untouched.
        let mut done = call();
        done.status = ConsultationStatus::Completed;
        assert_eq!(record(&done, &ev("x", Customer, Join, "10:20:00")), Recorded::Kept { meter_starts: None });
        apply(&mut done, &[ev("x", Customer, Join, "10:20:00"), ev("y", Astrologer, Join, "10:20:01")]);
        assert_eq!(done.started_at, None);
        // A chat's meter is never Agora's.
        let chat = session::tests::running();
        assert_eq!(record(&chat, &ev("z", Customer, Join, "10:00:00")), Recorded::NotACall);
    }

    #[test]
    fn a_call_gets_the_grace_a_chat_gets() {
        assert_eq!(RECONNECT_GRACE, session::LAPSE_AFTER);
    }

    #[test]
    fn the_log_is_bounded() {
        let mut c = call();
        for i in 0..MAX_CHANNEL_EVENTS {
            c.channel.events.push(ev(&i.to_string(), Customer, Join, "10:00:00"));
        }
        assert_eq!(record(&c, &ev("one-more", Customer, Leave, "10:01:00")), Recorded::Full);
    }
}
