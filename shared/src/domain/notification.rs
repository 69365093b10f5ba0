//! The in-app inbox and push devices, as the API names them: opaque notification ids and
//! page cursors (bounded and checked before any store call), and device tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::domain::status::string_enum;

/// Sort keys of notifications start with this (see `store::keys::notification_sk`).
const NOTIFICATION_SK_PREFIX: &str = "NOTIF#";
/// Longest id or cursor we hand out is far below these; anything longer is not ours.
pub const MAX_ID_CHARS: usize = 256;
const MAX_CURSOR_CHARS: usize = 1024;

fn base64url(raw: &str) -> bool {
    raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A notification's id in the API: its sort key and when it arrived, encoded, so clients
/// cannot build one for another partition (the partition is always the caller's). The
/// arrival is in the id so marking it read is one transaction: "read all" covers what had
/// arrived when it was pressed, and only the arrival says whether that includes this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationId {
    sk: String,
    arrived: String,
}

/// A time as the store writes it (`crate::domain::time::text`), and nothing else.
fn is_time_text(raw: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(raw).is_ok_and(|t| crate::domain::time::text(t.to_utc()) == raw)
}

impl NotificationId {
    pub fn new(sk: &str, arrived: &str) -> Self {
        Self { sk: sk.to_owned(), arrived: arrived.to_owned() }
    }

    /// An id this API handed out, or `None` (then no such notification exists).
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() || raw.len() > MAX_ID_CHARS || !base64url(raw) {
            return None;
        }
        let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (key, arrived) = decoded.rsplit_once('#')?;
        let (occurred, event) = key.split_once('#')?;
        let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        (printable(occurred) && printable(event) && is_time_text(arrived))
            .then(|| Self { sk: format!("{NOTIFICATION_SK_PREFIX}{key}"), arrived: arrived.to_owned() })
    }

    pub fn sk(&self) -> &str {
        &self.sk
    }

    /// When it arrived in the inbox, as stored.
    pub fn arrived(&self) -> &str {
        &self.arrived
    }

    pub fn encode(&self) -> String {
        let key = self.sk.strip_prefix(NOTIFICATION_SK_PREFIX).unwrap_or(&self.sk);
        URL_SAFE_NO_PAD.encode(format!("{key}#{}", self.arrived))
    }
}

/// Where the next page of an inbox starts, and what the first page read of the unread
/// counter (so every page answers from one Query; see `store::inbox`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCursor {
    /// The sort key of the last notification handed out.
    pub after: String,
    /// The read-all watermark the first page saw (an arrival time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_before: Option<String>,
    pub unread: u64,
}

impl InboxCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serialises"))
    }

    /// A cursor this API handed out, or `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.is_empty() || raw.len() > MAX_CURSOR_CHARS || !base64url(raw) {
            return None;
        }
        let cursor: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let is_sk = |sk: &str| sk.starts_with(NOTIFICATION_SK_PREFIX) && sk.bytes().all(|b| b.is_ascii_graphic());
        (is_sk(&cursor.after) && cursor.read_before.as_deref().is_none_or(is_time_text)).then_some(cursor)
    }
}

string_enum!(
    /// The push service a device token belongs to.
    DevicePlatform { Fcm => "fcm", Apns => "apns" }
);

/// A push token as the platform issued it: an FCM registration token (up to 512 characters
/// of `A-Z a-z 0-9 - _ : .`) or an APNs device token (64 to 200 hex digits, kept lower case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DeviceToken(String);

pub const MAX_FCM_TOKEN_CHARS: usize = 512;
pub const APNS_TOKEN_HEX_DIGITS: std::ops::RangeInclusive<usize> = 64..=200;
/// [`DeviceToken::parse`] as the API contract states it, per platform (a test holds them together).
pub const FCM_TOKEN_PATTERN: &str = "^[A-Za-z0-9_:.-]{1,512}$";
pub const APNS_TOKEN_PATTERN: &str = "^([0-9A-Fa-f]{2}){32,100}$";

impl DeviceToken {
    pub fn parse(platform: DevicePlatform, raw: &str) -> Result<Self, &'static str> {
        match platform {
            DevicePlatform::Fcm => {
                let ok = !raw.is_empty()
                    && raw.len() <= MAX_FCM_TOKEN_CHARS
                    && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
                ok.then(|| Self(raw.to_owned()))
                    .ok_or("an FCM token is 1 to 512 characters of letters, digits and - _ : .")
            }
            DevicePlatform::Apns => {
                // Whole bytes of hex: what `hex::decode` reads.
                let ok = APNS_TOKEN_HEX_DIGITS.contains(&raw.len()) && hex::decode(raw).is_ok();
                ok.then(|| Self(raw.to_ascii_lowercase())).ok_or("an APNs token is 64 to 200 hex digits")
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many devices a user may have registered for push at once: more phones and tablets
/// than anyone signs in on. Registering one more drops the least recently registered (a phone
/// lost or reset cannot sign out, so refusing would leave the user stuck with it).
pub const MAX_DEVICES: usize = 10;

/// Registering one more device to `registered` (each with when it was registered): the ones
/// to drop, oldest first, so the user keeps at most [`MAX_DEVICES`] with the new one.
pub fn devices_to_drop<T: Clone>(registered: &[(chrono::DateTime<chrono::Utc>, T)]) -> Vec<T> {
    let mut by_age: Vec<_> = registered.iter().collect();
    by_age.sort_by_key(|(at, _)| *at);
    let excess = (registered.len() + 1).saturating_sub(MAX_DEVICES);
    by_age.into_iter().take(excess).map(|(_, device)| device.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_ids_round_trip_and_anything_else_is_nothing() {
        let sk = "NOTIF#2026-11-22T13:00:00.000Z#consultation-booked-AT00000042";
        let id = NotificationId::new(sk, "2026-11-22T13:00:01.250Z");
        assert!(id.encode().len() < 120 && base64url(&id.encode()));
        let back = NotificationId::parse(&id.encode()).unwrap();
        assert_eq!((back.sk(), back.arrived()), (sk, "2026-11-22T13:00:01.250Z"));
        let no_hash = URL_SAFE_NO_PAD.encode("2026-11-22");
        let control = URL_SAFE_NO_PAD.encode("a#b\nc#2026-11-22T13:00:01.250Z");
        // An id without its arrival (as handed out before arrivals were in ids), or with
        // something else in its place, names nothing.
        let no_arrival = URL_SAFE_NO_PAD.encode("2026-11-22T13:00:00.000Z#e1");
        let bad_arrival = URL_SAFE_NO_PAD.encode("2026-11-22T13:00:00.000Z#e1#2026-11-22T13:00:01Z");
        for bad in [
            "",
            "a+b",
            "x/y",
            "%%",
            &"A".repeat(MAX_ID_CHARS + 1),
            &no_hash,
            &control,
            "_-_-",
            &no_arrival,
            &bad_arrival,
        ] {
            assert!(NotificationId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let cursor = InboxCursor {
            after: "NOTIF#2026-11-22T13:00:00.000Z#e1".into(),
            read_before: Some("2026-11-22T12:00:00.000Z".into()),
            unread: 3,
        };
        assert_eq!(InboxCursor::parse(&cursor.encode()), Some(cursor.clone()));
        let elsewhere = InboxCursor { after: "TXN#1".into(), ..cursor.clone() };
        let old_watermark = InboxCursor { read_before: Some("NOTIF#2026-11-22T12:00:00.000Z#~".into()), ..cursor };
        for bad in [
            elsewhere.encode(),
            old_watermark.encode(),
            "e30".into(),
            "not base64!".into(),
            "A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            assert!(InboxCursor::parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn one_device_too_many_drops_the_oldest() {
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let devices =
            |n: usize| -> Vec<_> { (0..n).rev().map(|i| (t0 + chrono::Duration::minutes(i as i64), i)).collect() };
        assert!(devices_to_drop(&devices(MAX_DEVICES - 1)).is_empty(), "the tenth fits");
        assert_eq!(devices_to_drop(&devices(MAX_DEVICES)), [0], "the eleventh drops the oldest");
        assert_eq!(devices_to_drop(&devices(MAX_DEVICES + 2)), [0, 1, 2], "back to the bound");
    }

    #[test]
    fn device_tokens_by_platform() {
        let fcm = "dXJ0c2VjcmV0:APA91bH-token_with.all-the_chars";
        assert_eq!(DeviceToken::parse(DevicePlatform::Fcm, fcm).unwrap().as_str(), fcm);
        let apns = "AB".repeat(32);
        assert_eq!(DeviceToken::parse(DevicePlatform::Apns, &apns).unwrap().as_str(), "ab".repeat(32));
        let cases: &[(DevicePlatform, &str)] = &[
            (DevicePlatform::Fcm, ""),
            (DevicePlatform::Fcm, "has space"),
            (DevicePlatform::Fcm, "slash/y"),
            (DevicePlatform::Fcm, &"a".repeat(MAX_FCM_TOKEN_CHARS + 1)),
            (DevicePlatform::Apns, &"a".repeat(63)),
            (DevicePlatform::Apns, &"a".repeat(65)),
            (DevicePlatform::Apns, &"g".repeat(64)),
            (DevicePlatform::Apns, &"a".repeat(202)),
        ];
        for (platform, raw) in cases {
            assert!(DeviceToken::parse(*platform, raw).is_err(), "{platform:?} {raw:?}");
        }
        // The contract's patterns say the same as the parser.
        let fcm_pattern = regex::Regex::new(FCM_TOKEN_PATTERN).unwrap();
        let apns_pattern = regex::Regex::new(APNS_TOKEN_PATTERN).unwrap();
        let good: &[(DevicePlatform, &str)] = &[(DevicePlatform::Fcm, fcm), (DevicePlatform::Apns, &apns)];
        for (platform, raw) in cases.iter().chain(good) {
            let pattern = if *platform == DevicePlatform::Fcm { &fcm_pattern } else { &apns_pattern };
            assert_eq!(pattern.is_match(raw), DeviceToken::parse(*platform, raw).is_ok(), "{platform:?} {raw:?}");
        }
    }
}
