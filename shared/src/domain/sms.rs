//! Who may be sent an SMS code. Three public routes make Cognito send one, and an SMS costs
//! money (more to premium-rate destinations), so: only to the countries the product serves,
//! and at most so many per phone number and per source address in a window, counted in the
//! table ([`crate::store::Store::count_sms`]). Over a limit is `429 too_many_sms` with
//! `Retry-After`.
//!
//! The routes' counters count requests; Cognito can also be asked for codes straight (the
//! app client id is public), so the custom SMS sender trigger counts what is actually sent
//! to a number ([`SmsCounter::Delivered`]), whatever asked for it, and sends nothing past the
//! per-phone limit.

use std::net::IpAddr;

use crate::domain::phone::Phone;

/// The countries served and the send limits, from the function's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsPolicy {
    /// Calling codes with their `+` (`+91`). Calling codes are prefix-free, so a number is
    /// in a country exactly when it starts with its code.
    pub(crate) countries: Vec<String>,
    pub per_phone: u32,
    pub per_source: u32,
    pub window_seconds: u32,
}

impl SmsPolicy {
    /// Whether the product serves numbers like `phone`.
    pub fn serves(&self, phone: &Phone) -> bool {
        self.countries.iter().any(|code| phone.e164().starts_with(code.as_str()))
    }

    /// The calling codes served, for a message.
    pub fn countries(&self) -> &[String] {
        &self.countries
    }

    /// The window `now` (epoch seconds) falls in: its start, and the seconds until it ends.
    pub fn window(&self, now: i64) -> (i64, u64) {
        let length = i64::from(self.window_seconds);
        let start = now.div_euclid(length) * length;
        (start, (start + length - now) as u64)
    }
}

/// `+91`, or a comma-separated list of calling codes; `None` if any is not one.
pub fn parse_countries(raw: &str) -> Option<Vec<String>> {
    let codes: Vec<String> = raw.split(',').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    let valid = |c: &String| {
        c.strip_prefix('+').is_some_and(|d| (1..=3).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
            && !c.starts_with("+0")
    };
    (!codes.is_empty() && codes.iter().all(valid)).then_some(codes)
}

/// What one send is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsCounter {
    /// Requests for a code to the number, counted by the routes.
    Phone(Phone),
    /// Codes sent to the number, counted by the sender trigger: a counter of its own, as a
    /// request through a route is counted once there and once again when its SMS goes.
    Delivered(Phone),
    /// The caller's address as API Gateway saw it; an IPv6 address counts by its /64, since
    /// one subscriber is usually given a whole /64. Anything unreadable shares one counter.
    Source(String),
}

impl SmsCounter {
    pub fn source(raw: Option<&str>) -> Self {
        let bucket = match raw.and_then(|r| r.trim().parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            None => "unknown".to_owned(),
        };
        SmsCounter::Source(bucket)
    }

    /// The counter's name in its key: bounded, since both come from a parsed value. A phone
    /// number is kept only in its owner's record and its claim, so the counter names a hash
    /// of it (a table export or backup shows no numbers; the counter lives an hour).
    pub fn key_part(&self) -> String {
        let hashed = |phone: &Phone| crate::domain::idempotency::bytes_hash("sms-limit", phone.e164().as_bytes());
        match self {
            SmsCounter::Phone(phone) => format!("PHONE#{}", &hashed(phone)[..32]),
            SmsCounter::Delivered(phone) => format!("SENT#{}", &hashed(phone)[..32]),
            SmsCounter::Source(bucket) => format!("IP#{bucket}"),
        }
    }

    pub fn limit(&self, policy: &SmsPolicy) -> u32 {
        match self {
            SmsCounter::Phone(_) | SmsCounter::Delivered(_) => policy.per_phone,
            SmsCounter::Source(_) => policy.per_source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> SmsPolicy {
        SmsPolicy { countries: parse_countries("+91").unwrap(), per_phone: 5, per_source: 50, window_seconds: 3600 }
    }

    #[test]
    fn windows_are_fixed_and_say_how_long_is_left() {
        let p = policy();
        assert_eq!(p.window(7200), (7200, 3600));
        assert_eq!(p.window(7201), (7200, 3599));
        assert_eq!(p.window(10_799), (7200, 1));
    }

    #[test]
    fn source_counters_are_bounded_and_group_an_ipv6_subscriber() {
        assert_eq!(SmsCounter::source(Some("203.0.113.7")).key_part(), "IP#203.0.113.7");
        let phone = SmsCounter::Phone(Phone::parse("+919876543210").unwrap()).key_part();
        assert!(phone.starts_with("PHONE#") && phone.len() == 38 && !phone.contains("9876543210"), "{phone}");
        // Codes sent are counted apart from codes asked for, each send once.
        let sent = SmsCounter::Delivered(Phone::parse("+919876543210").unwrap()).key_part();
        assert!(sent.starts_with("SENT#") && sent[5..] == phone[6..], "{sent}");
        let a = SmsCounter::source(Some("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, SmsCounter::source(Some("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        assert_eq!(a.key_part(), "IP#2001:db8:1:2::/64");
        assert_eq!(SmsCounter::source(Some("::ffff:203.0.113.7")).key_part(), "IP#203.0.113.7");
        for junk in [None, Some(""), Some("x".repeat(5000).as_str()), Some("1.2.3.4#PHONE")] {
            assert_eq!(SmsCounter::source(junk).key_part(), "IP#unknown");
        }
    }
}
