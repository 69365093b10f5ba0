//! The OpenAPI schemas of the domain types whose serde form is hand-written (`Money`,
//! `Phone`, ids, ...) and the `schema_with` functions the domain types' derives name (feature
//! `openapi`, enabled only by the `api-contract` crate). Unit tests serialise each type and
//! check it against its schema, so the contract says what the code writes.

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

/// A schema written as JSON, for the few types whose serde form is hand-written
/// (`Money`, `Phone`, ...); a unit test serialises each such type and checks it against this.
pub fn json_schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema object")
}

/// The schema of [`crate::Money`] as the API sends it: INR, a string with two decimals.
impl utoipa::PartialSchema for crate::Money {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": "INR as a string with exactly two decimals (never a JSON number)",
            "examples": ["500.00"],
        }))
    }
}
impl utoipa::ToSchema for crate::Money {}

pub const MONEY_PATTERN: &str = "^[0-9]+\\.[0-9]{2}$";
pub const AMOUNT_PATTERN: &str = "^-?[0-9]+\\.[0-9]{2}$";

/// What a request may send for an amount: what `Money`'s `Deserialize` accepts.
pub fn money_input() -> RefOr<Schema> {
    json_schema(json!({
        "description": "INR with at most two decimals: a string (`\"500\"`, `\"500.50\"`) or a JSON number written with at most two decimals",
        "anyOf": [
            { "type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$" },
            { "type": "number", "minimum": 0, "multipleOf": 0.01 },
        ],
        "examples": ["500.00"],
    }))
}

impl utoipa::PartialSchema for crate::domain::money::Amount {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": "a signed INR change as a string with exactly two decimals",
            "examples": ["-120.00", "500.00"],
        }))
    }
}
impl utoipa::ToSchema for crate::domain::money::Amount {}

/// `Phone::parse` on a number without formatting: E.164, and a +91 number is a 10-digit mobile.
pub const PHONE_PATTERN: &str = "^\\+(91[6-9][0-9]{9}|9[02-9][0-9]{6,13}|[1-8][0-9]{7,14})$";
/// `PersonName::parse`: something besides white space, and no control characters (Unicode `Cc`).
pub const NAME_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

impl utoipa::PartialSchema for crate::Phone {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": PHONE_PATTERN,
            "description": "E.164: `+`, country code and number (8 to 15 digits). An Indian (+91) number is a 10-digit mobile starting with 6 to 9. Spaces, hyphens and brackets are tolerated on input",
            "examples": ["+919876543210"],
        }))
    }
}
impl utoipa::ToSchema for crate::Phone {}

impl utoipa::PartialSchema for crate::UserId {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({ "type": "string", "format": "uuid", "description": "the user's id (Cognito `sub`)" }))
    }
}
impl utoipa::ToSchema for crate::UserId {}

impl utoipa::PartialSchema for crate::PersonName {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string", "minLength": 1, "maxLength": 50, "pattern": NAME_PATTERN,
            "description": "1 to 50 characters, not only white space (which is trimmed), no control characters",
            "examples": ["Asha"],
        }))
    }
}
impl utoipa::ToSchema for crate::PersonName {}

impl utoipa::PartialSchema for crate::Email {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string", "format": "email", "maxLength": 254,
            "description": "`local@domain.tld`; stored lower-cased",
            "examples": ["asha@example.com"],
        }))
    }
}
impl utoipa::ToSchema for crate::Email {}

pub(crate) fn one_or_more_of(values: &[&str], description: &str) -> RefOr<Schema> {
    json_schema(json!({
        "type": "array", "minItems": 1, "description": description,
        "items": { "type": "string", "enum": values },
    }))
}

/// Text without control characters (a line break allowed where `multiline`), not only
/// white space where `required`.
pub(crate) fn text(max_chars: usize, required: bool, multiline: bool) -> RefOr<Schema> {
    let allowed = if multiline { "[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]" } else { "[^\\x00-\\x1f\\x7f-\\x9f]" };
    let pattern =
        if required { format!("^{allowed}*[^\\s\\x00-\\x1f\\x7f-\\x9f]{allowed}*$") } else { format!("^{allowed}*$") };
    json_schema(json!({
        "type": "string", "maxLength": max_chars, "pattern": pattern,
        "description": format!("at most {max_chars} characters, no control characters (white space around is trimmed)"),
    }))
}

/// `schema` or `null`: an optional field serde reads `null` in as absent.
fn or_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    let mut schema = serde_json::to_value(schema).expect("a schema serialises");
    schema["type"] = json!([schema["type"].clone(), "null"]);
    json_schema(schema)
}

/// An optional `PersonName` in a request: 1 to 50 characters, or `null`.
pub fn optional_person_name() -> RefOr<Schema> {
    or_null(text(50, true, false))
}

/// An optional `profile::Locality` (a city or state) in a request, or `null`.
pub fn optional_locality() -> RefOr<Schema> {
    or_null(text(60, true, false))
}

/// A birth place's name in a request.
pub fn place_name_input() -> RefOr<Schema> {
    text(crate::domain::chart::MAX_PLACE_NAME_CHARS, true, false)
}

/// A birth date: a calendar date from 1900 to 2100 (`chart::FIRST_DATE` to `LAST_DATE`).
pub fn birth_date() -> RefOr<Schema> {
    json_schema(json!({
        "type": "string", "format": "date", "pattern": "^(19[0-9]{2}|20[0-9]{2}|2100)-",
        "description": "YYYY-MM-DD, from 1900-01-01 to 2100-12-31",
    }))
}

/// A birth time: a local clock time, or `unknown`.
pub fn birth_time() -> RefOr<Schema> {
    json_schema(json!({
        "type": "string", "pattern": "^(unknown|([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)$",
        "description": "the local time HH:MM or HH:MM:SS, or `unknown`",
    }))
}

/// Every name `parse_time_zone` accepts (IANA, as chrono-tz spells them).
pub fn time_zone() -> RefOr<Schema> {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    json_schema(json!({
        "type": "string", "enum": names, "default": "Asia/Kolkata",
        "description": "an IANA time zone name",
    }))
}

/// [`time_zone`] or `null` (the default), in a request body.
pub fn optional_time_zone() -> RefOr<Schema> {
    let mut schema = serde_json::to_value(time_zone()).expect("a schema serialises");
    schema["type"] = json!(["string", "null"]);
    schema["enum"].as_array_mut().expect("an enum").push(Value::Null);
    json_schema(schema)
}

pub fn weekday() -> RefOr<Schema> {
    json_schema(json!({ "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] }))
}

pub const WINDOW_START_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
pub const WINDOW_END_PATTERN: &str = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

pub fn window_start() -> RefOr<Schema> {
    json_schema(
        json!({ "type": "string", "pattern": WINDOW_START_PATTERN, "description": "local time HH:MM", "examples": ["09:00"] }),
    )
}

pub fn window_end() -> RefOr<Schema> {
    json_schema(
        json!({ "type": "string", "pattern": WINDOW_END_PATTERN, "description": "local time HH:MM after `start`; 24:00 is the end of the day", "examples": ["13:30"] }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::astrologer::profile_schema::{RATE_PATTERN, certifications, display_name};
    use crate::domain::booking::BOOKING_ID_PATTERN;

    /// The hand-written schemas say what the hand-written serde code writes.
    #[test]
    fn hand_written_schemas_match_what_is_serialised() {
        let pattern = |s: RefOr<Schema>| serde_json::to_value(s).unwrap()["pattern"].as_str().unwrap().to_owned();
        let matches = |pat: &str, text: &str| simple_regex(pat, text);
        use utoipa::PartialSchema;
        for paise in [0u64, 5, 100, 50_050, 123_456_789] {
            let text = serde_json::to_value(crate::Money::from_paise(paise)).unwrap();
            assert!(matches(&pattern(crate::Money::schema()), text.as_str().unwrap()), "{text}");
            let signed = crate::domain::money::Amount::debit(crate::Money::from_paise(paise));
            let text = serde_json::to_value(signed).unwrap();
            assert!(matches(&pattern(crate::domain::money::Amount::schema()), text.as_str().unwrap()), "{text}");
        }
        for zero in [
            serde_json::to_value(crate::Money::ZERO).unwrap(),
            serde_json::to_value(crate::domain::money::Amount::ZERO).unwrap(),
        ] {
            assert!(matches(MONEY_PATTERN, zero.as_str().unwrap()), "{zero}");
        }
        let phone = crate::Phone::parse("+91 98765-43210").unwrap();
        assert!(matches(PHONE_PATTERN, serde_json::to_value(&phone).unwrap().as_str().unwrap()));

        let entry = crate::domain::wallet::LedgerEntry {
            sequence: 7,
            index: 2,
            kind: crate::domain::wallet::EntryKind::ALL[0],
            real_delta: crate::domain::money::Amount::credit(crate::Money::from_paise(50_000)),
            bonus_delta: crate::domain::money::Amount::ZERO,
            debt_delta: crate::domain::money::Amount::ZERO,
            real_balance_after: crate::Money::from_paise(50_000),
            bonus_balance_after: crate::Money::ZERO,
            debt_after: crate::Money::ZERO,
            reference: crate::domain::wallet::Reference::top_up("tu_1"),
            description: "Wallet recharge".into(),
            invoice_number: Some("AK2627-0-000001".into()),
            created_at: chrono::Utc::now(),
        };
        let value = serde_json::to_value(&entry).unwrap();
        let schema = serde_json::to_value(crate::domain::wallet::LedgerEntry::schema()).unwrap();
        let written: std::collections::BTreeSet<_> = value.as_object().unwrap().keys().cloned().collect();
        let declared: std::collections::BTreeSet<_> =
            schema["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(written, declared, "LedgerEntry's Serialize and its schema name the same fields");
        for required in schema["required"].as_array().unwrap() {
            assert!(written.contains(required.as_str().unwrap()), "{required} is written");
        }
        assert!(matches(
            schema["properties"]["entry_id"]["pattern"].as_str().unwrap(),
            value["entry_id"].as_str().unwrap()
        ));
        chrono::DateTime::parse_from_rfc3339(value["created_at"].as_str().unwrap()).expect("RFC 3339");

        let id = serde_json::to_value(crate::domain::booking::BookingId::from_number(1234)).unwrap();
        assert!(matches(BOOKING_ID_PATTERN, id.as_str().unwrap()), "{id}");
        let rating_schema = serde_json::to_value(crate::domain::astrologer::RatingSummary::schema()).unwrap();
        for (average_hundredths, count) in [(0, 0), (457, 12), (500, 1)] {
            let value =
                serde_json::to_value(crate::domain::astrologer::RatingSummary { average_hundredths, count }).unwrap();
            let average = value["average"].as_str().unwrap();
            assert!(matches(rating_schema["properties"]["average"]["pattern"].as_str().unwrap(), average), "{average}");
            assert_eq!(value.as_object().unwrap().len(), 2);
        }
    }

    /// The profile's field schemas accept what `ProfileInput::validate` and
    /// `WeeklyAvailability::parse` accept (with the default rate bounds), on samples.
    #[test]
    fn profile_patterns_follow_the_validation() {
        use crate::domain::astrologer::{Mode, ProfileInput, RateBounds};
        let bounds = RateBounds { min: "5".parse().unwrap(), max: "1000".parse().unwrap() };
        let input = |rate: crate::Money, name: &str, education: &str, certification: &str| ProfileInput {
            display_name: name.into(),
            bio: String::new(),
            experience_years: 3,
            languages: vec!["hi".into()],
            specialisations: vec!["vedic".into()],
            rate_per_minute: rate,
            modes: vec![Mode::Chat],
            education: education.into(),
            certifications: vec![certification.into()],
            picture_url: None,
        };
        for raw in
            ["5", "5.00", "4.99", "5.5", "010", "999.99", "1000", "1000.00", "1000.01", "1001", "0", " 25 ", "+25"]
        {
            let accepted =
                raw.parse::<crate::Money>().is_ok_and(|m| input(m, "Asha", "", "KP").validate(bounds).is_ok());
            assert_eq!(simple_regex(RATE_PATTERN, raw), accepted, "rate {raw:?}");
        }
        let pattern =
            |schema: RefOr<Schema>| serde_json::to_value(schema).unwrap()["pattern"].as_str().unwrap().to_owned();
        let name = pattern(display_name());
        for raw in ["Asha", " Asha ", "", "   ", "A\u{7}"] {
            let accepted = input("25".parse().unwrap(), raw, "", "KP").validate(bounds).is_ok();
            assert_eq!(simple_regex(&name, raw), accepted, "display_name {raw:?}");
        }
        let education = pattern(crate::domain::astrologer::profile_schema::education());
        let certification =
            serde_json::to_value(certifications()).unwrap()["items"]["pattern"].as_str().unwrap().to_owned();
        for raw in ["M.A. Jyotish", " BHU ", "", "   ", "M.A.\nB.A.", "A\u{7}"] {
            let accepted = input("25".parse().unwrap(), "Asha", raw, "KP").validate(bounds).is_ok();
            assert_eq!(simple_regex(&education, raw), accepted, "education {raw:?}");
            let accepted = input("25".parse().unwrap(), "Asha", "", raw).validate(bounds).is_ok();
            assert_eq!(simple_regex(&certification, raw), accepted, "certification {raw:?}");
        }
        for (start, end) in
            [("09:00", "13:30"), ("00:00", "24:00"), ("24:00", "24:00"), ("9:00", "10:00"), ("23:59", "23:60")]
        {
            let window = crate::domain::availability::WindowInput {
                weekday: "mon".into(),
                start: start.into(),
                end: end.into(),
            };
            let accepted =
                crate::domain::availability::WeeklyAvailability::parse(chrono_tz::Asia::Kolkata, &[window]).is_ok();
            let matched = simple_regex(WINDOW_START_PATTERN, start) && simple_regex(WINDOW_END_PATTERN, end);
            assert_eq!(matched, accepted, "window {start}-{end}");
        }
    }

    fn simple_regex(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    /// The phone and name patterns accept what `Phone::parse` and `PersonName::parse` accept.
    #[test]
    fn phone_and_name_patterns_follow_the_parsers() {
        for raw in [
            "+919876543210",
            "+916000000000",
            "+915876543210",
            "+91987654321",
            "+9198765432101",
            "+911772438",
            "+14155550100",
            "+4915112345678",
            "+12345678",
            "+1234567",
            "+0123456789",
            "+971501234567",
            "+9123456789012",
            "+123456789012345",
            "+1234567890123456",
            "919876543210",
            "+92300123456",
        ] {
            assert_eq!(crate::Phone::parse(raw).is_ok(), simple_regex(PHONE_PATTERN, raw), "{raw}");
        }
        for raw in ["Asha", "Rao ", " ", "", "a\u{0}b", "a\u{85}b", "a\u{7f}", "Ōshima", "\t", "x y"] {
            let by_pattern = simple_regex(NAME_PATTERN, raw) && raw.chars().count() <= 50;
            assert_eq!(crate::PersonName::parse(raw).is_ok(), by_pattern, "{raw:?}");
        }
    }
}
