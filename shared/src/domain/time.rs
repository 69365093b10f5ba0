//! One timestamp format in every response: RFC 3339 in UTC to the millisecond
//! (`2026-11-22T09:30:00.000Z`), as the store writes them, whatever precision the clock had
//! (chrono's own serialisation prints nanoseconds for a fresh `Utc::now()` and milliseconds
//! for a time read back). Use on every `DateTime` field a response carries:
//! `#[serde(serialize_with = "crate::domain::time::rfc3339")]`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text(*at))
}

pub fn rfc3339_opt<S: Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct View {
        #[serde(serialize_with = "rfc3339")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "rfc3339_opt")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn nanoseconds_whole_seconds_and_none_all_print_one_way() {
        let fresh = Utc.timestamp_opt(1_795_000_000, 123_456_789).unwrap();
        let whole = Utc.timestamp_opt(1_795_000_000, 0).unwrap();
        let json = serde_json::to_value(View { at: fresh, until: Some(whole) }).unwrap();
        assert_eq!(json, serde_json::json!({ "at": "2026-11-18T11:06:40.123Z", "until": "2026-11-18T11:06:40.000Z" }));
        let json = serde_json::to_value(View { at: whole, until: None }).unwrap();
        assert_eq!(json["until"], serde_json::Value::Null);
    }
}
