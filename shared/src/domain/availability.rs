//! When an astrologer can be booked: weekly windows in their own time zone, and whether they
//! are online now. Pure: the arithmetic across time zones, weekday boundaries and daylight
//! saving lives here, with table-driven tests.
//!
//! Windows are kept as minutes of the local week (Monday 00:00 = 0), sorted and disjoint, so
//! "available at instant T" is one conversion and a binary search, and the next free slots
//! over 7 days are at most `8 x windows` intervals minus the booked ones.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::status::string_enum;

/// `[start, end)` in UTC.
pub type Interval = (DateTime<Utc>, DateTime<Utc>);

pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Kolkata;
/// More than anyone needs in a week (e.g. three windows every day), few enough to keep the
/// profile item small.
pub const MAX_WINDOWS: usize = 28;
const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// Why availability was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AvailabilityError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> AvailabilityError {
    AvailabilityError { field: field.into(), message: message.into() }
}

/// An IANA time zone name, e.g. `Asia/Kolkata`.
pub fn parse_time_zone(name: &str) -> Result<Tz, AvailabilityError> {
    name.parse::<Tz>().map_err(|_| refuse("time_zone", format!("{name:?} is not an IANA time zone name")))
}

/// One window as the app sends it: `{"weekday":"mon","start":"09:00","end":"13:30"}`.
/// `end` may be `"24:00"` (midnight at the end of the day).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::weekday))]
    pub weekday: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::window_start))]
    pub start: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::window_end))]
    pub end: String,
}

/// A weekly schedule, validated: windows in minutes of the local week, sorted, disjoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyAvailability {
    pub time_zone: Tz,
    /// `(start, end)` minutes of the week, `start < end`, each within one day.
    windows: Vec<(u32, u32)>,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// `"HH:MM"`, minute-aligned by construction; `24:00` only when `end_of_day`.
fn minute_of_day(text: &str, end_of_day: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end_of_day => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn hh_mm(minute_of_day: u32) -> String {
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

impl WeeklyAvailability {
    /// Validates windows from the app; errors name the window (`windows[2].end`).
    pub fn parse(time_zone: Tz, input: &[WindowInput]) -> Result<Self, AvailabilityError> {
        if input.len() > MAX_WINDOWS {
            return Err(refuse("windows", format!("at most {MAX_WINDOWS} windows")));
        }
        let mut windows = Vec::with_capacity(input.len());
        for (i, w) in input.iter().enumerate() {
            let field = |name: &str| format!("windows[{i}].{name}");
            let day = WEEKDAYS
                .iter()
                .position(|(name, _)| w.weekday.eq_ignore_ascii_case(name))
                .ok_or_else(|| refuse(field("weekday"), "must be one of mon, tue, wed, thu, fri, sat, sun"))?
                as u32;
            let start = minute_of_day(&w.start, false)
                .ok_or_else(|| refuse(field("start"), "must be a time HH:MM from 00:00 to 23:59"))?;
            let end = minute_of_day(&w.end, true)
                .ok_or_else(|| refuse(field("end"), "must be a time HH:MM from 00:01 to 24:00"))?;
            if end <= start {
                return Err(refuse(field("end"), "must be after start"));
            }
            windows.push((day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + end, i));
        }
        windows.sort_unstable();
        for pair in windows.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(refuse(format!("windows[{}]", pair[1].2), format!("overlaps windows[{}]", pair[0].2)));
            }
        }
        Ok(Self { time_zone, windows: windows.into_iter().map(|(s, e, _)| (s, e)).collect() })
    }

    /// No windows at all: bookable only for instant consultations, when online.
    pub fn none() -> Self {
        Self { time_zone: DEFAULT_TIME_ZONE, windows: Vec::new() }
    }

    /// The windows as minutes of the week, for storage.
    pub fn minutes(&self) -> &[(u32, u32)] {
        &self.windows
    }

    /// Back from storage; `None` if what was stored is not a valid schedule.
    pub fn from_minutes(time_zone: Tz, minutes: Vec<(u32, u32)>) -> Option<Self> {
        let valid = minutes
            .iter()
            .all(|&(s, e)| s < e && e <= MINUTES_PER_WEEK && s / MINUTES_PER_DAY == (e - 1) / MINUTES_PER_DAY)
            && minutes.windows(2).all(|p| p[0].1 <= p[1].0);
        valid.then_some(Self { time_zone, windows: minutes })
    }

    /// The windows as the app sends them.
    pub fn as_input(&self) -> Vec<WindowInput> {
        self.windows
            .iter()
            .map(|&(s, e)| {
                let day = s / MINUTES_PER_DAY;
                WindowInput {
                    weekday: WEEKDAYS[day as usize].0.to_owned(),
                    start: hh_mm(s - day * MINUTES_PER_DAY),
                    end: hh_mm(e - day * MINUTES_PER_DAY),
                }
            })
            .collect()
    }

    /// Every window occurrence overlapping `[from, to)`, as UTC instants, in order. Local
    /// times that do not exist (a daylight-saving gap) start at the gap's end.
    pub fn occurrences(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Interval> {
        let tz = self.time_zone;
        let first_day = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let mut out = Vec::new();
        let mut day = first_day;
        while let Some(midnight) = local_instant(tz, day, 0) {
            if midnight >= to {
                break;
            }
            let dow = day.weekday().num_days_from_monday();
            for &(s, e) in self.windows.iter().filter(|(s, _)| s / MINUTES_PER_DAY == dow) {
                let base = dow * MINUTES_PER_DAY;
                let (Some(start), Some(end)) = (local_instant(tz, day, s - base), local_instant(tz, day, e - base))
                else {
                    continue;
                };
                if end > from && start < to && start < end {
                    out.push((start.max(from), end.min(to)));
                }
            }
            day = day.succ_opt().unwrap_or(day);
            if day == first_day {
                break;
            }
        }
        out
    }

    /// Whether `[start, end)` lies inside the windows. Windows that touch (one day's 24:00
    /// and the next day's 00:00) are one stretch of time: a consultation may run past midnight.
    pub fn covers(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let mut occurrences = self.occurrences(start, end);
        occurrences.sort_unstable();
        let mut covered_until = start;
        for (s, e) in occurrences {
            if s > covered_until {
                break;
            }
            covered_until = covered_until.max(e);
        }
        covered_until >= end
    }
}

/// The instant of `minute` minutes after local midnight of `day` in `tz`.
fn local_instant(tz: Tz, day: NaiveDate, minute: u32) -> Option<DateTime<Utc>> {
    let (days, minute) = (minute / MINUTES_PER_DAY, minute % MINUTES_PER_DAY);
    let day = day.checked_add_days(chrono::Days::new(days.into()))?;
    let naive = day.and_time(NaiveTime::from_hms_opt(minute / 60, minute % 60, 0)?);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        // In a gap: the first instant after it.
        LocalResult::None => (1..=180).find_map(|m| match tz.from_local_datetime(&(naive + Duration::minutes(m))) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => None,
        }),
    }
}

/// `free` minus `booked`: the free intervals left, in order, dropping any shorter than
/// `min_minutes`. Both lists are sorted by start; `booked` may overlap itself.
pub fn free_slots(free: &[Interval], booked: &[Interval], min_minutes: i64) -> Vec<Interval> {
    let mut out = Vec::new();
    for &(mut start, end) in free {
        for &(b_start, b_end) in booked {
            if b_start >= end || b_end <= start {
                continue;
            }
            if b_start > start {
                out.push((start, b_start));
            }
            start = start.max(b_end);
        }
        if start < end {
            out.push((start, end));
        }
    }
    out.retain(|(s, e)| *e - *s >= Duration::minutes(min_minutes));
    out
}

string_enum!(
    /// Whether an astrologer takes instant consultations right now.
    Presence { Online => "online", Busy => "busy", Offline => "offline" }
);

/// How long `online` lasts without a heartbeat: a crashed app stops being bookable this
/// long after its last renewal.
pub const PRESENCE_TTL: Duration = Duration::minutes(5);

/// The presence that holds at `now`: a stored `online` whose heartbeat lapsed is `offline`.
pub fn effective_presence(stored: Presence, online_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Presence {
    match stored {
        Presence::Online if online_until.is_none_or(|until| until <= now) => Presence::Offline,
        other => other,
    }
}

/// Minutes since local midnight of an instant in `tz` (for display).
pub fn local_hh_mm(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{:02}:{:02}", local.hour(), local.minute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(day: &str, start: &str, end: &str) -> WindowInput {
        WindowInput { weekday: day.into(), start: start.into(), end: end.into() }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn bad_windows_are_refused_naming_the_window() {
        let tz = DEFAULT_TIME_ZONE;
        let cases: &[(&[WindowInput], &str)] = &[
            (&[w("mon", "09:00", "09:00")], "windows[0].end"),
            (&[w("mon", "9:00", "10:00")], "windows[0].start"),
            (&[w("mon", "09:00", "24:01")], "windows[0].end"),
            (&[w("mon", "24:00", "24:00")], "windows[0].start"),
            (&[w("funday", "09:00", "10:00")], "windows[0].weekday"),
            (&[w("tue", "09:00", "12:00"), w("tue", "11:59", "13:00")], "windows[1]"),
            (&[w("tue", "11:59", "13:00"), w("tue", "09:00", "12:00")], "windows[0]"),
        ];
        for (input, field) in cases {
            assert_eq!(WeeklyAvailability::parse(tz, input).unwrap_err().field, *field, "{input:?}");
        }
        // Touching windows and a window to midnight are fine.
        let ok = WeeklyAvailability::parse(tz, &[w("tue", "12:00", "24:00"), w("TUE", "09:00", "12:00")]).unwrap();
        assert_eq!(ok.as_input(), [w("tue", "09:00", "12:00"), w("tue", "12:00", "24:00")]);
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert_eq!(parse_time_zone("Europe/London").unwrap(), chrono_tz::Europe::London);
        let too_many: Vec<_> = (0..29).map(|i| w("wed", &format!("{:02}:00", i % 24), "23:59")).collect();
        assert_eq!(WeeklyAvailability::parse(tz, &too_many).unwrap_err().field, "windows");
    }

    #[test]
    fn instants_are_checked_in_the_astrologers_time_zone() {
        // Monday 09:00-13:00 in Kolkata is 03:30-07:30 UTC.
        let a = WeeklyAvailability::parse(DEFAULT_TIME_ZONE, &[w("mon", "09:00", "13:00")]).unwrap();
        let cases = [
            ("2026-11-23T03:30:00Z", "2026-11-23T04:00:00Z", true),
            ("2026-11-23T07:00:00Z", "2026-11-23T07:30:00Z", true),
            ("2026-11-23T07:00:00Z", "2026-11-23T07:31:00Z", false),
            ("2026-11-23T03:29:00Z", "2026-11-23T04:00:00Z", false),
            ("2026-11-24T03:30:00Z", "2026-11-24T04:00:00Z", false), // Tuesday
            ("2026-11-30T04:00:00Z", "2026-11-30T05:00:00Z", true),  // next Monday
        ];
        for (start, end, expected) in cases {
            assert_eq!(a.covers(utc(start), utc(end)), expected, "{start}..{end}");
        }
    }

    /// A consultation may run past midnight when the next day's window starts at 00:00, and
    /// across touching windows of one day; a gap of a minute is not availability.
    #[test]
    fn touching_windows_are_one_stretch_of_time() {
        let utc_tz = chrono_tz::UTC;
        let nights =
            WeeklyAvailability::parse(utc_tz, &[w("sun", "20:00", "24:00"), w("mon", "00:00", "02:00")]).unwrap();
        // 2026-11-29 is a Sunday.
        assert!(nights.covers(utc("2026-11-29T23:55:00Z"), utc("2026-11-30T00:05:00Z")));
        assert!(nights.covers(utc("2026-11-29T20:00:00Z"), utc("2026-11-30T02:00:00Z")));
        assert!(!nights.covers(utc("2026-11-30T01:55:00Z"), utc("2026-11-30T02:05:00Z")));
        let split =
            WeeklyAvailability::parse(utc_tz, &[w("tue", "09:00", "12:00"), w("tue", "12:00", "13:00")]).unwrap();
        assert!(split.covers(utc("2026-12-01T11:30:00Z"), utc("2026-12-01T12:30:00Z")));
        let gap = WeeklyAvailability::parse(utc_tz, &[w("sun", "20:00", "23:59"), w("mon", "00:00", "02:00")]).unwrap();
        assert!(!gap.covers(utc("2026-11-29T23:55:00Z"), utc("2026-11-30T00:05:00Z")));
        assert!(gap.covers(utc("2026-11-30T00:00:00Z"), utc("2026-11-30T00:05:00Z")));
    }

    #[test]
    fn weekday_boundaries_and_daylight_saving() {
        // Sunday 23:00-24:00 in Kolkata is Sunday 17:30-18:30 UTC.
        let late = WeeklyAvailability::parse(DEFAULT_TIME_ZONE, &[w("sun", "23:00", "24:00")]).unwrap();
        assert!(late.covers(utc("2026-11-29T17:30:00Z"), utc("2026-11-29T18:30:00Z")));
        // New York, Sunday 01:00-04:00 local: on the day clocks go forward it lasts 2 hours.
        let ny = WeeklyAvailability::parse(chrono_tz::America::New_York, &[w("sun", "01:00", "04:00")]).unwrap();
        let occ = ny.occurrences(utc("2026-03-08T00:00:00Z"), utc("2026-03-09T00:00:00Z"));
        assert_eq!(occ, [(utc("2026-03-08T06:00:00Z"), utc("2026-03-08T08:00:00Z"))]);
        let occ = ny.occurrences(utc("2026-03-15T00:00:00Z"), utc("2026-03-16T00:00:00Z"));
        assert_eq!(occ, [(utc("2026-03-15T05:00:00Z"), utc("2026-03-15T08:00:00Z"))]);
    }

    #[test]
    fn free_slots_are_the_windows_minus_bookings() {
        let free = [(utc("2026-11-23T03:30:00Z"), utc("2026-11-23T07:30:00Z"))];
        let booked = [
            (utc("2026-11-23T03:00:00Z"), utc("2026-11-23T04:00:00Z")),
            (utc("2026-11-23T05:00:00Z"), utc("2026-11-23T05:10:00Z")),
            (utc("2026-11-23T05:05:00Z"), utc("2026-11-23T05:20:00Z")),
            (utc("2026-11-23T07:25:00Z"), utc("2026-11-23T08:00:00Z")),
        ];
        assert_eq!(
            free_slots(&free, &booked, 15),
            [
                (utc("2026-11-23T04:00:00Z"), utc("2026-11-23T05:00:00Z")),
                (utc("2026-11-23T05:20:00Z"), utc("2026-11-23T07:25:00Z")),
            ]
        );
        assert_eq!(free_slots(&free, &[], 15), free);
    }

    #[test]
    fn online_lapses_without_a_heartbeat() {
        let now = utc("2026-11-23T05:00:00Z");
        assert_eq!(effective_presence(Presence::Online, Some(now + Duration::minutes(1)), now), Presence::Online);
        assert_eq!(effective_presence(Presence::Online, Some(now), now), Presence::Offline);
        assert_eq!(effective_presence(Presence::Online, None, now), Presence::Offline);
        assert_eq!(effective_presence(Presence::Busy, None, now), Presence::Busy);
    }

    #[test]
    fn stored_minutes_round_trip_and_bad_ones_are_refused() {
        let a = WeeklyAvailability::parse(DEFAULT_TIME_ZONE, &[w("fri", "18:00", "21:30")]).unwrap();
        assert_eq!(WeeklyAvailability::from_minutes(a.time_zone, a.minutes().to_vec()), Some(a));
        assert!(WeeklyAvailability::from_minutes(DEFAULT_TIME_ZONE, vec![(100, 50)]).is_none());
        assert!(WeeklyAvailability::from_minutes(DEFAULT_TIME_ZONE, vec![(1400, 1500)]).is_none());
    }
}
