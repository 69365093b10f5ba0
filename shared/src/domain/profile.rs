//! What a person tells us about themself after sign-up (names, gender, city and state, and
//! their birth details, from which the chart basics are computed by [`chart`]), who may read
//! the birth details, and what deleting an account keeps.
//!
//! Birth details are the most personal thing we hold: they never go into a log line or an
//! event (their types have no `Debug` that shows them), and besides their owner only the
//! astrologer of one of their consultations reads them, from booking until
//! [`BIRTH_DETAILS_AFTER_END`] after it ends ([`astrologer_may_see`]), and staff with an audit
//! entry.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::booking::{Consultation, ConsultationStatus};
use crate::domain::chart::{self, BirthPlace, ChartBasics, ChartError};
use crate::domain::status::string_enum;
use crate::domain::user::{Email, PersonName, UserId};

string_enum!(
    /// As the production profile records it (seed 003 `CustomerProfile.gender`).
    Gender { Female => "female", Male => "male", Other => "other", Undisclosed => "undisclosed" }
);

/// A city or state as typed: trimmed, 1 to 60 characters, no control characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Locality(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 60 characters with no control characters")]
pub struct InvalidLocality;

impl Locality {
    pub fn parse(raw: &str) -> Result<Self, InvalidLocality> {
        let text = raw.trim();
        // Counted as sent (the contract's `maxLength`), not as trimmed.
        let ok = !text.is_empty() && raw.chars().count() <= 60 && !text.chars().any(char::is_control);
        ok.then(|| Self(text.to_owned())).ok_or(InvalidLocality)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Locality {
    type Error = InvalidLocality;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}
impl From<Locality> for String {
    fn from(l: Locality) -> Self {
        l.0
    }
}
/// Where someone lives is personal: logs show that it is set, not what it is.
impl fmt::Debug for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Locality(..)")
    }
}

/// The time of birth as the customer knows it: a clock time, or `"unknown"`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BirthTime {
    Known(NaiveTime),
    Unknown,
}

impl Serialize for BirthTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BirthTime::Known(t) => s.serialize_str(&t.format("%H:%M:%S").to_string()),
            BirthTime::Unknown => s.serialize_str("unknown"),
        }
    }
}
impl<'de> Deserialize<'de> for BirthTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "unknown" {
            return Ok(BirthTime::Unknown);
        }
        NaiveTime::parse_from_str(&raw, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(&raw, "%H:%M"))
            .map(BirthTime::Known)
            .map_err(|_| serde::de::Error::custom("must be a local time HH:MM or HH:MM:SS, or \"unknown\""))
    }
}

/// The place of birth as the app's place picker gives it.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlaceInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::place_name_input))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(minimum = -90, maximum = 90))]
    pub latitude: f64,
    #[cfg_attr(feature = "openapi", schema(minimum = -180, maximum = 180))]
    pub longitude: f64,
    /// An IANA time zone, e.g. `Asia/Kolkata`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::time_zone))]
    pub time_zone: String,
}

/// Birth details as a customer sends them (`PATCH /me`, `birth`).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BirthInput {
    /// 1900-01-01 to 2100-12-31.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::birth_date))]
    pub date: NaiveDate,
    /// Local clock time `HH:MM` or `HH:MM:SS`, or `unknown`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::birth_time))]
    pub time: BirthTime,
    pub place: PlaceInput,
}

/// Birth details that passed every check, with the chart computed from them: what is shown.
/// Built only by [`BirthInput::validate`], so a chart always belongs to its details; the store
/// keeps the details ([`BirthDetails::input`]) and computes the chart again when it reads them
/// (a few microseconds), so an improved computation reaches every profile.
#[derive(Clone, Serialize)]
pub struct BirthDetails {
    pub date: NaiveDate,
    pub time: BirthTime,
    pub place: PlaceInput,
    pub chart: ChartBasics,
}

/// Never the details themselves.
impl fmt::Debug for BirthDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthDetails(..)")
    }
}

impl BirthDetails {
    /// The details as given, to store.
    pub fn input(&self) -> BirthInput {
        BirthInput { date: self.date, time: self.time, place: self.place.clone() }
    }
}

impl BirthInput {
    /// Checks the place and the local time and computes the chart; the error names the field.
    pub fn validate(self) -> Result<BirthDetails, ChartError> {
        let place =
            BirthPlace::new(&self.place.name, self.place.latitude, self.place.longitude, &self.place.time_zone)?;
        let time = match self.time {
            BirthTime::Known(t) => Some(t),
            BirthTime::Unknown => None,
        };
        let chart = chart::chart_basics(self.date, time, &place)?;
        let place = PlaceInput { name: place.name.clone(), ..self.place };
        Ok(BirthDetails { date: self.date, time: self.time, place, chart })
    }
}

/// `PATCH /me`: only the fields present change. Nothing here can change a role, a phone
/// number or a status: those fields do not exist, and unknown fields are refused.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileEdit {
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::optional_person_name))]
    pub first_name: Option<PersonName>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::optional_person_name))]
    pub last_name: Option<PersonName>,
    /// A new email: kept as `pending_email` until the code sent to it comes back
    /// (`POST /me/email/verify`); only then is it the account's `email`, verified.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Email, max_length = 254))]
    pub email: Option<Email>,
    #[serde(default)]
    pub gender: Option<Gender>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::optional_locality))]
    pub city: Option<Locality>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::domain::schema::optional_locality))]
    pub state: Option<Locality>,
    #[serde(default)]
    pub birth: Option<BirthInput>,
}

/// An edit that passed every check: what the store writes.
#[derive(Clone, Default)]
pub struct ValidEdit {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub email: Option<Email>,
    pub gender: Option<Gender>,
    pub city: Option<Locality>,
    pub state: Option<Locality>,
    pub birth: Option<BirthDetails>,
}

/// Why an edit was refused: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EditError {
    pub field: String,
    pub problem: String,
}

impl ValidEdit {
    /// Whether it changes nothing (`{}`): answered with the profile as it is, nothing written.
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.email.is_none()
            && self.gender.is_none()
            && self.city.is_none()
            && self.state.is_none()
            && self.birth.is_none()
    }
}

impl ProfileEdit {
    pub fn validate(self) -> Result<ValidEdit, EditError> {
        let birth = self
            .birth
            .map(BirthInput::validate)
            .transpose()
            .map_err(|e| EditError { field: e.field().to_owned(), problem: e.to_string() })?;
        Ok(ValidEdit {
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            gender: self.gender,
            city: self.city,
            state: self.state,
            birth,
        })
    }
}

/// How long after a consultation ends its astrologer still sees the customer's birth
/// details: time to write up notes the customer asked for, not a standing file on them.
pub const BIRTH_DETAILS_AFTER_END: Duration = Duration::hours(24);

/// Whether `astrologer` may read the birth details of `c`'s customer at `now`: theirs, from
/// booking (scheduled, ringing, in progress) until [`BIRTH_DETAILS_AFTER_END`] after a
/// completed one ended; never for one cancelled, declined, expired or missed (no reading
/// took place).
pub fn astrologer_may_see(c: &Consultation, astrologer: &UserId, now: DateTime<Utc>) -> bool {
    if &c.astrologer_id != astrologer {
        return false;
    }
    match c.status {
        ConsultationStatus::Scheduled | ConsultationStatus::Ringing | ConsultationStatus::InProgress => true,
        ConsultationStatus::Completed => {
            let ended = c.closed_at.unwrap_or(c.ends_at);
            now < ended + BIRTH_DETAILS_AFTER_END
        }
        ConsultationStatus::Cancelled
        | ConsultationStatus::NoShow
        | ConsultationStatus::Declined
        | ConsultationStatus::Expired => false,
    }
}

/// What a deleted account's review shows instead of the reviewer's first name.
pub const DELETED_USER_NAME: &str = "Deleted user";

/// How recent the sign-in must be to delete an account: someone who picks up an unlocked
/// phone with a day-old session cannot erase its owner.
pub const DELETION_SIGN_IN_WITHIN: Duration = Duration::minutes(15);

/// Whether a token whose `auth_time` is `signed_in_at` may delete the account at `now`.
pub fn recent_enough_to_delete(signed_in_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    signed_in_at <= now + Duration::minutes(1) && now - signed_in_at <= DELETION_SIGN_IN_WITHIN
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edit(body: serde_json::Value) -> Result<ValidEdit, String> {
        let edit: ProfileEdit = serde_json::from_value(body).map_err(|e| e.to_string())?;
        edit.validate().map_err(|e| e.field)
    }

    fn birth(date: &str, time: &str, lat: f64, tz: &str) -> serde_json::Value {
        json!({ "birth": { "date": date, "time": time,
            "place": { "name": "Pune", "latitude": lat, "longitude": 73.8567, "time_zone": tz } } })
    }

    #[test]
    fn birth_details_are_checked_field_by_field_and_computed() {
        let ok = edit(birth("1990-04-12", "06:30", 18.5204, "Asia/Kolkata")).unwrap();
        let details = ok.birth.unwrap();
        assert!(details.chart.time_known);
        assert!(details.chart.lagna.is_some());
        let unknown = edit(birth("1990-04-12", "unknown", 18.5204, "Asia/Kolkata")).unwrap().birth.unwrap();
        assert!(!unknown.chart.time_known);
        assert!(unknown.chart.lagna.is_none());
        assert_eq!(edit(birth("1990-04-12", "06:30", 91.0, "Asia/Kolkata")).err().unwrap(), "birth.place.latitude");
        assert_eq!(edit(birth("1990-04-12", "06:30", 18.0, "Asia/Pune")).err().unwrap(), "birth.place.time_zone");
        assert_eq!(edit(birth("1850-01-01", "06:30", 18.0, "Asia/Kolkata")).err().unwrap(), "birth.date");
        // A time the clocks skipped.
        assert_eq!(edit(birth("2021-03-14", "02:30", 40.7, "America/New_York")).err().unwrap(), "birth.time");
        assert!(edit(birth("1990-04-12", "25:00", 18.0, "Asia/Kolkata")).is_err());
    }

    #[test]
    fn an_edit_cannot_name_a_role_or_nothing() {
        assert!(edit(json!({ "user_type": "admin" })).is_err());
        assert!(edit(json!({ "phone_number": "+919876543210" })).is_err());
        assert!(edit(json!({})).unwrap().is_empty());
        assert!(edit(json!({ "city": "  " })).is_err());
        assert!(edit(json!({ "gender": "female", "city": "Pune" })).is_ok());
    }

    #[test]
    fn birth_details_never_show_in_debug() {
        let details = edit(birth("1990-04-12", "06:30", 18.5204, "Asia/Kolkata")).unwrap().birth.unwrap();
        let shown = format!("{details:?} {:?}", Locality::parse("Pune").unwrap());
        assert!(!shown.contains("1990") && !shown.contains("Pune"), "{shown}");
    }

    #[test]
    fn recent_sign_in() {
        let now = Utc::now();
        assert!(recent_enough_to_delete(now - Duration::minutes(14), now));
        assert!(!recent_enough_to_delete(now - Duration::minutes(16), now));
    }
}

/// Razorpay refunds a payment only within this long of it (its documented limit is six
/// months); real cash from older payments is paid out by support instead (stated in the
/// deletion's record as `kept_for_payout`).
pub const REFUNDABLE_FOR: Duration = Duration::days(180);

/// A credited recharge the deleted account's real cash can go back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSource {
    pub top_up_id: String,
    pub payment_id: String,
    pub paid_at: DateTime<Utc>,
    /// What Razorpay still holds of the payment (its amount less what was refunded).
    pub refundable: crate::domain::money::Money,
}

/// How a deleted account's real cash goes back: to the newest recharges first (the money
/// most recently paid in is the money not yet spent), each at most what is left of its
/// payment, never past [`REFUNDABLE_FOR`]. Returns the refunds and what no payment can take
/// (kept for a payout by support). Bonus cash is not refunded: it lapses.
pub fn plan_refunds(
    real_cash: crate::domain::money::Money,
    mut sources: Vec<RefundSource>,
    now: DateTime<Utc>,
) -> (Vec<(RefundSource, crate::domain::money::Money)>, crate::domain::money::Money) {
    use crate::domain::money::Money;
    sources.sort_by(|a, b| b.paid_at.cmp(&a.paid_at).then_with(|| a.top_up_id.cmp(&b.top_up_id)));
    let mut left = real_cash;
    let mut refunds = Vec::new();
    for source in sources {
        if left == Money::ZERO {
            break;
        }
        if now - source.paid_at > REFUNDABLE_FOR || source.refundable == Money::ZERO {
            continue;
        }
        let amount = left.min(source.refundable);
        left = left.checked_sub(amount).unwrap_or(Money::ZERO);
        refunds.push((source, amount));
    }
    (refunds, left)
}

#[cfg(test)]
mod refund_tests {
    use super::*;
    use crate::domain::money::Money;

    fn source(id: &str, days_ago: i64, paise: u64, now: DateTime<Utc>) -> RefundSource {
        RefundSource {
            top_up_id: id.into(),
            payment_id: format!("pay_{id}"),
            paid_at: now - Duration::days(days_ago),
            refundable: Money::from_paise(paise),
        }
    }

    #[test]
    fn newest_first_each_capped_old_ones_kept_for_payout() {
        let now = Utc::now();
        let sources = vec![source("old", 200, 100_000, now), source("a", 10, 50_000, now), source("b", 2, 30_000, now)];
        // ₹700 of real cash: ₹300 to b, ₹400 to a (of its ₹500); the 200-day-old payment is past refunds.
        let (refunds, kept) = plan_refunds(Money::from_paise(70_000), sources.clone(), now);
        let got: Vec<(&str, u64)> = refunds.iter().map(|(s, m)| (s.top_up_id.as_str(), m.paise())).collect();
        assert_eq!(got, vec![("b", 30_000), ("a", 40_000)]);
        assert_eq!(kept, Money::ZERO);
        // ₹1,000: ₹800 refunded, ₹200 only the old payment could take: kept for payout.
        let (refunds, kept) = plan_refunds(Money::from_paise(100_000), sources, now);
        assert_eq!(refunds.len(), 2);
        assert_eq!(kept, Money::from_paise(20_000));
        assert_eq!(plan_refunds(Money::ZERO, vec![source("a", 1, 5, now)], now).0.len(), 0);
    }
}
