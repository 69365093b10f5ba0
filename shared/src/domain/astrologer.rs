//! An astrologer's public profile and the rules for what they may set: the fixed lists of
//! languages and specialisations (kept here, once), modes, the rate bounds, a bounded bio,
//! education and certifications. The picture is uploaded, not pasted (`POST /me/picture`;
//! its key: `crate::domain::image`). Pure; errors name the field.

use serde::{Deserialize, Serialize};

use crate::domain::money::Money;
use crate::domain::status::string_enum;

string_enum!(
    /// How a consultation is held.
    Mode { Chat => "chat", Call => "call", Video => "video" }
);

/// Languages an astrologer may consult in (ISO 639-1 codes; the apps show the names).
pub const LANGUAGES: &[&str] = &["as", "bn", "en", "gu", "hi", "kn", "ml", "mr", "or", "pa", "sa", "ta", "te", "ur"];

/// Specialisations, as seed 000's skills and the production catalogue name them.
pub const SPECIALISATIONS: &[&str] = &[
    "face_reading",
    "kp",
    "lal_kitab",
    "nadi",
    "numerology",
    "palmistry",
    "prashna",
    "psychic",
    "tarot",
    "vastu",
    "vedic",
    "western",
];

pub const MAX_BIO_CHARS: usize = 2000;
pub const MAX_DISPLAY_NAME_CHARS: usize = 60;
pub const MAX_EXPERIENCE_YEARS: u32 = 80;
pub const MAX_EDUCATION_CHARS: usize = 200;
pub const MAX_CERTIFICATIONS: usize = 10;
pub const MAX_CERTIFICATION_CHARS: usize = 100;

/// Why a profile was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ProfileError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> ProfileError {
    ProfileError { field: field.into(), message: message.into() }
}

/// The per-minute rates an astrologer may charge (configuration, see template.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBounds {
    pub min: Money,
    pub max: Money,
}

/// What `PUT /astrologers/me/profile` sends.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::display_name))]
    pub display_name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::bio))]
    pub bio: String,
    #[serde(deserialize_with = "crate::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(maximum = 80))]
    pub experience_years: u32,
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::languages))]
    pub languages: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::specialisations))]
    pub specialisations: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::rate_per_minute))]
    pub rate_per_minute: Money,
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::modes))]
    pub modes: Vec<Mode>,
    /// Degrees and schooling, one line (empty or absent: none).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::education))]
    pub education: String,
    /// Certificates held, in the order shown (absent: none).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = profile_schema::certifications))]
    pub certifications: Vec<String>,
    /// No longer accepted (a picture is uploaded): read only to refuse it by name rather
    /// than as an unknown field, for apps that still send it. Not in the contract.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub picture_url: Option<serde::de::IgnoredAny>,
}

/// A profile that keeps every rule.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub display_name: String,
    pub bio: String,
    pub experience_years: u32,
    pub languages: Vec<String>,
    pub specialisations: Vec<String>,
    pub rate_per_minute: Money,
    pub modes: Vec<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub education: Option<String>,
    pub certifications: Vec<String>,
}

/// `values`, each from `allowed`, lower-cased, de-duplicated, sorted; 1 to `allowed.len()`.
fn from_list(field: &str, values: &[String], allowed: &[&str]) -> Result<Vec<String>, ProfileError> {
    if values.is_empty() {
        return Err(refuse(field, "choose at least one"));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let v = v.trim().to_ascii_lowercase();
        if !allowed.contains(&v.as_str()) {
            let shown: String = v.chars().take(40).collect();
            return Err(refuse(
                format!("{field}[{i}]"),
                format!("unknown value {shown:?}; one of {}", allowed.join(", ")),
            ));
        }
        out.push(v);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn clean_text(field: &str, text: &str, max_chars: usize, required: bool) -> Result<String, ProfileError> {
    let text = text.trim();
    if required && text.is_empty() {
        return Err(refuse(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(refuse(field, format!("at most {max_chars} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(refuse(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// [`clean_text`] on one line.
fn clean_line(field: &str, text: &str, max_chars: usize, required: bool) -> Result<String, ProfileError> {
    if text.trim().contains('\n') {
        return Err(refuse(field, "must be one line"));
    }
    clean_text(field, text, max_chars, required)
}

/// Each certification one line of 1 to 100 characters, duplicates dropped, at most 10.
fn certifications(raw: &[String]) -> Result<Vec<String>, ProfileError> {
    if raw.len() > MAX_CERTIFICATIONS {
        return Err(refuse("certifications", format!("at most {MAX_CERTIFICATIONS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, c) in raw.iter().enumerate() {
        let c = clean_line(&format!("certifications[{i}]"), c, MAX_CERTIFICATION_CHARS, true)?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

impl ProfileInput {
    pub fn validate(self, bounds: RateBounds) -> Result<Profile, ProfileError> {
        if self.picture_url.is_some() {
            return Err(refuse(
                "picture_url",
                "is no longer set here: upload the picture (POST /me/picture for an upload URL, then PUT /me/picture)",
            ));
        }
        if self.rate_per_minute < bounds.min || self.rate_per_minute > bounds.max {
            return Err(refuse("rate_per_minute", format!("must be between {} and {} INR", bounds.min, bounds.max)));
        }
        if self.experience_years > MAX_EXPERIENCE_YEARS {
            return Err(refuse("experience_years", format!("at most {MAX_EXPERIENCE_YEARS}")));
        }
        let mut modes = self.modes;
        modes.sort_by_key(|m| m.as_str());
        modes.dedup();
        if modes.is_empty() {
            return Err(refuse("modes", "offer at least one of chat, call, video"));
        }
        Ok(Profile {
            display_name: clean_text("display_name", &self.display_name, MAX_DISPLAY_NAME_CHARS, true)?,
            bio: clean_text("bio", &self.bio, MAX_BIO_CHARS, false)?,
            experience_years: self.experience_years,
            languages: from_list("languages", &self.languages, LANGUAGES)?,
            specialisations: from_list("specialisations", &self.specialisations, SPECIALISATIONS)?,
            rate_per_minute: self.rate_per_minute,
            modes,
            education: Some(clean_line("education", &self.education, MAX_EDUCATION_CHARS, false)?)
                .filter(|e| !e.is_empty()),
            certifications: certifications(&self.certifications)?,
        })
    }
}

/// The average rating shown, in hundredths (4.57 stars = 457), and how many reviews make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RatingSummary {
    pub average_hundredths: u32,
    pub count: u64,
}

impl Serialize for RatingSummary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("RatingSummary", 2)?;
        let average = rust_decimal::Decimal::new(i64::from(self.average_hundredths), 2);
        out.serialize_field("average", &average.to_string())?;
        out.serialize_field("count", &self.count)?;
        out.end()
    }
}

/// A booked interval of an astrologer's time and the consultation that holds it.
pub type Booked = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, String);

/// Everything the astrologer's item says about what can be booked.
#[derive(Debug, Clone, PartialEq)]
pub struct AstrologerRecord {
    pub id: crate::UserId,
    /// `None` until the astrologer first saves a profile.
    pub profile: Option<Profile>,
    /// Their profile picture (`PUT /me/picture`), set with or without a profile.
    pub picture_key: Option<crate::domain::image::PictureKey>,
    pub availability: crate::domain::availability::WeeklyAvailability,
    pub presence: crate::domain::availability::Presence,
    pub online_until: Option<chrono::DateTime<chrono::Utc>>,
    pub rating: RatingSummary,
    /// Booked consultations still to come, `[start, end)` and the booking id, sorted: the
    /// time no one else can book.
    pub booked: Vec<Booked>,
    /// Bumped by every booking and cancellation: a booking is conditioned on the version it
    /// read, so two overlapping bookings can never both commit.
    pub schedule_version: u64,
    /// In the catalogue: approved by KYC and not suspended.
    pub listed: bool,
    pub kyc_status: crate::KycStatus,
    pub verification_status: crate::domain::user::VerificationStatus,
    /// Their share of what customers are charged, set by staff; `None`: the platform's.
    pub revenue_share_percent: Option<rust_decimal::Decimal>,
    /// Whether they take part in promotional offers (seed 003's `accepts_promotional_offers`).
    pub accepts_promotional_offers: bool,
}

impl AstrologerRecord {
    /// The presence that holds at `now` (an `online` whose heartbeat lapsed is `offline`).
    pub fn presence_at(&self, now: chrono::DateTime<chrono::Utc>) -> crate::domain::availability::Presence {
        crate::domain::availability::effective_presence(self.presence, self.online_until, now)
    }

    /// The booked intervals, without their ids.
    pub fn booked_intervals(&self) -> Vec<crate::domain::availability::Interval> {
        self.booked.iter().map(|(s, e, _)| (*s, *e)).collect()
    }

    /// Customers may see and book this astrologer: listed and with a profile.
    pub fn visible(&self) -> bool {
        self.listed && self.profile.is_some()
    }
}

string_enum!(
    /// How the catalogue is ordered.
    CatalogueSort {
        PriceAsc => "price_asc",
        PriceDesc => "price_desc",
        Rating => "rating",
        Experience => "experience",
    }
);

/// What `GET /astrologers` asks for (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueQuery {
    pub sort: CatalogueSort,
    pub language: Option<String>,
    pub specialisation: Option<String>,
    pub mode: Option<Mode>,
    pub online_now: bool,
    pub limit: usize,
}

impl CatalogueQuery {
    /// Reads the query string's filters, each checked against the same lists the profile is.
    pub fn parse(
        sort: Option<&str>,
        language: Option<&str>,
        specialisation: Option<&str>,
        mode: Option<&str>,
        online: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Self, ProfileError> {
        let one_of = |field: &str, v: Option<&str>, allowed: &[&str]| -> Result<Option<String>, ProfileError> {
            v.map(|v| {
                let v = v.trim().to_ascii_lowercase();
                if allowed.contains(&v.as_str()) {
                    Ok(v)
                } else {
                    Err(refuse(field, format!("one of {}", allowed.join(", "))))
                }
            })
            .transpose()
        };
        let sorts: Vec<&str> = CatalogueSort::ALL.iter().map(|s| s.as_str()).collect();
        let modes: Vec<&str> = Mode::ALL.iter().map(|m| m.as_str()).collect();
        let limit = match limit {
            None => 20,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .ok_or_else(|| refuse("limit", "a whole number from 1 to 50"))?,
        };
        let online_now = match online {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(refuse("online", "true or false")),
        };
        Ok(Self {
            sort: one_of("sort", sort, &sorts)?.and_then(|s| CatalogueSort::parse(&s)).unwrap_or(CatalogueSort::Rating),
            language: one_of("language", language, LANGUAGES)?,
            specialisation: one_of("specialisation", specialisation, SPECIALISATIONS)?,
            mode: one_of("mode", mode, &modes)?.and_then(|m| Mode::parse(&m)),
            online_now,
            limit,
        })
    }
}

/// The schemas of the profile's fields, as `ProfileInput`'s derive names them (feature
/// `openapi`), beside the limits they state.
#[cfg(feature = "openapi")]
pub mod profile_schema {
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::domain::schema::{json_schema, one_or_more_of, text};

    /// `rate_per_minute`: what `Money` parses, within the default `RATE_MIN_PER_MINUTE`..
    /// `RATE_MAX_PER_MINUTE` (5 to 1,000; a deployment may set others).
    pub const RATE_PATTERN: &str = "^0*([5-9]|[1-9][0-9]{1,2})(\\.[0-9]{0,2})?$|^0*1000(\\.0{0,2})?$";

    pub fn rate_per_minute() -> RefOr<Schema> {
        json_schema(json!({
            "description": "INR per minute, 5 to 1,000 (`RATE_MIN_PER_MINUTE`, `RATE_MAX_PER_MINUTE`), at most two decimals: a string or a JSON number",
            "anyOf": [
                { "type": "string", "pattern": RATE_PATTERN },
                { "type": "number", "minimum": 5, "maximum": 1000, "multipleOf": 0.01 },
            ],
            "examples": ["25.00"],
        }))
    }

    pub fn languages() -> RefOr<Schema> {
        one_or_more_of(super::LANGUAGES, "ISO 639-1 codes (the apps show the names); duplicates are dropped")
    }

    pub fn specialisations() -> RefOr<Schema> {
        one_or_more_of(super::SPECIALISATIONS, "duplicates are dropped")
    }

    pub fn modes() -> RefOr<Schema> {
        let modes: Vec<&str> = super::Mode::ALL.iter().map(|m| m.as_str()).collect();
        one_or_more_of(&modes, "how the astrologer consults; duplicates are dropped")
    }

    pub fn display_name() -> RefOr<Schema> {
        text(super::MAX_DISPLAY_NAME_CHARS, true, false)
    }

    pub fn bio() -> RefOr<Schema> {
        text(super::MAX_BIO_CHARS, false, true)
    }

    pub fn education() -> RefOr<Schema> {
        text(super::MAX_EDUCATION_CHARS, false, false)
    }

    pub fn certifications() -> RefOr<Schema> {
        let item =
            serde_json::to_value(text(super::MAX_CERTIFICATION_CHARS, true, false)).expect("a schema serialises");
        json_schema(json!({
            "type": "array", "maxItems": super::MAX_CERTIFICATIONS, "items": item,
            "description": "certificates held, in the order shown; duplicates are dropped",
        }))
    }
}

#[cfg(feature = "openapi")]
mod openapi_schema {
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::domain::schema::json_schema;

    impl utoipa::PartialSchema for crate::domain::astrologer::RatingSummary {
        fn schema() -> RefOr<Schema> {
            json_schema(json!({
                "type": "object", "required": ["average", "count"], "additionalProperties": false,
                "description": "the average rating shown (verified reviews weigh more) and how many reviews make it",
                "properties": {
                    "average": { "type": "string", "pattern": "^[0-5]\\.[0-9]{2}$", "examples": ["4.57"], "description": "0.00 until the first review" },
                    "count": { "type": "integer", "minimum": 0 },
                },
            }))
        }
    }
    impl utoipa::ToSchema for crate::domain::astrologer::RatingSummary {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> RateBounds {
        RateBounds { min: "5".parse().unwrap(), max: "500".parse().unwrap() }
    }

    fn input() -> ProfileInput {
        ProfileInput {
            display_name: "  Acharya Asha ".into(),
            bio: "Vedic astrologer.\nTwenty years.".into(),
            experience_years: 20,
            languages: vec!["hi".into(), "EN".into(), "hi".into()],
            specialisations: vec!["vedic".into(), "tarot".into()],
            rate_per_minute: "25".parse().unwrap(),
            modes: vec![Mode::Video, Mode::Chat, Mode::Chat],
            education: " M.A. Jyotish, Banaras Hindu University ".into(),
            certifications: vec!["Jyotish Visharad".into(), " KP Level 2 ".into(), "Jyotish Visharad".into()],
            picture_url: None,
        }
    }

    #[test]
    fn catalogue_queries_are_checked_against_the_same_lists() {
        let q = CatalogueQuery::parse(Some("price_desc"), Some("HI"), None, Some("video"), Some("true"), Some("5"))
            .unwrap();
        assert_eq!(
            (q.sort, q.language.as_deref(), q.mode, q.online_now, q.limit),
            (CatalogueSort::PriceDesc, Some("hi"), Some(Mode::Video), true, 5)
        );
        let d = CatalogueQuery::parse(None, None, None, None, None, None).unwrap();
        assert_eq!((d.sort, d.limit, d.online_now), (CatalogueSort::Rating, 20, false));
        let bad = [
            (Some("cheapest"), None, None, None, None, "sort"),
            (None, Some("klingon"), None, None, None, "language"),
            (None, None, Some("x"), None, None, "specialisation"),
            (None, None, None, Some("fax"), None, "mode"),
            (None, None, None, None, Some("51"), "limit"),
        ];
        for (sort, lang, spec, mode, limit, field) in bad {
            assert_eq!(CatalogueQuery::parse(sort, lang, spec, mode, None, limit).unwrap_err().field, field);
        }
        assert_eq!(CatalogueQuery::parse(None, None, None, None, Some("yes"), None).unwrap_err().field, "online");
        let r = RatingSummary { average_hundredths: 457, count: 12 };
        assert_eq!(serde_json::to_value(r).unwrap(), serde_json::json!({ "average": "4.57", "count": 12 }));
    }

    #[test]
    fn a_good_profile_is_cleaned() {
        let p = input().validate(bounds()).unwrap();
        assert_eq!(p.display_name, "Acharya Asha");
        assert_eq!(p.languages, ["en", "hi"]);
        assert_eq!(p.specialisations, ["tarot", "vedic"]);
        assert_eq!(p.modes, [Mode::Chat, Mode::Video]);
        assert_eq!(p.education.as_deref(), Some("M.A. Jyotish, Banaras Hindu University"));
        assert_eq!(p.certifications, ["Jyotish Visharad", "KP Level 2"], "trimmed, once each, in order");
        let none = ProfileInput { education: "  ".into(), certifications: vec![], ..input() };
        let p = none.validate(bounds()).unwrap();
        assert_eq!((p.education, p.certifications), (None, vec![]));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Edit = fn(&mut ProfileInput);
        let cases: &[(Edit, &str)] = &[
            (|p| p.rate_per_minute = "4.99".parse().unwrap(), "rate_per_minute"),
            (|p| p.rate_per_minute = "500.01".parse().unwrap(), "rate_per_minute"),
            (|p| p.languages = vec!["en".into(), "klingon".into()], "languages[1]"),
            (|p| p.languages = vec![], "languages"),
            (|p| p.specialisations = vec!["astrology-ish".into()], "specialisations[0]"),
            (|p| p.bio = "x".repeat(10_000), "bio"),
            (|p| p.display_name = "   ".into(), "display_name"),
            (|p| p.display_name = "a\u{0}b".into(), "display_name"),
            (|p| p.experience_years = 81, "experience_years"),
            (|p| p.modes = vec![], "modes"),
            (|p| p.picture_url = Some(serde::de::IgnoredAny), "picture_url"),
            (|p| p.education = "x".repeat(MAX_EDUCATION_CHARS + 1), "education"),
            (|p| p.education = "M.A.\nB.A.".into(), "education"),
            (|p| p.education = "M.A.\u{7}".into(), "education"),
            (|p| p.certifications = vec!["c".into(); MAX_CERTIFICATIONS + 1], "certifications"),
            (|p| p.certifications = vec!["ok".into(), "  ".into()], "certifications[1]"),
            (|p| p.certifications = vec!["x".repeat(MAX_CERTIFICATION_CHARS + 1)], "certifications[0]"),
            (|p| p.certifications = vec!["a\nb".into()], "certifications[0]"),
        ];
        for (edit, field) in cases {
            let mut p = input();
            edit(&mut p);
            assert_eq!(p.validate(bounds()).unwrap_err().field, *field);
        }
        // Edges are inside.
        let mut p = input();
        p.rate_per_minute = "500".parse().unwrap();
        p.bio = "x".repeat(MAX_BIO_CHARS);
        p.education = "x".repeat(MAX_EDUCATION_CHARS);
        p.certifications = (0..MAX_CERTIFICATIONS).map(|i| format!("{i:0>100}")).collect();
        let p = p.validate(bounds()).unwrap();
        assert_eq!((p.education.unwrap().len(), p.certifications.len()), (MAX_EDUCATION_CHARS, MAX_CERTIFICATIONS));
    }

    #[test]
    fn a_pasted_picture_url_is_refused_by_name_and_null_is_none() {
        let body = |extra: &str| {
            format!(
                r#"{{"display_name":"Asha","experience_years":1,"languages":["hi"],"specialisations":["vedic"],
                    "rate_per_minute":"25","modes":["chat"]{extra}}}"#
            )
        };
        let pasted: ProfileInput = serde_json::from_str(&body(r#","picture_url":"https://cdn/a.jpg""#)).unwrap();
        let refused = pasted.validate(bounds()).unwrap_err();
        assert_eq!(refused.field, "picture_url");
        assert!(refused.message.contains("/me/picture"), "{refused}");
        let null: ProfileInput = serde_json::from_str(&body(r#","picture_url":null"#)).unwrap();
        assert!(null.validate(bounds()).is_ok());
    }
}
