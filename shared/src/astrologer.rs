//! An astrologer's public profile and the rules for what they may set: the fixed lists of
//! languages and specialisations (kept here, once), modes, the rate bounds, a bounded bio,
//! an https picture. Pure; errors name the field.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::status::string_enum;

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
pub const MAX_PICTURE_URL_LEN: usize = 500;

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub display_name: String,
    #[serde(default)]
    pub bio: String,
    pub experience_years: u32,
    pub languages: Vec<String>,
    pub specialisations: Vec<String>,
    pub rate_per_minute: Money,
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub picture_url: Option<String>,
}

/// A profile that keeps every rule.
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
    pub picture_url: Option<String>,
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

impl ProfileInput {
    pub fn validate(self, bounds: RateBounds) -> Result<Profile, ProfileError> {
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
        let picture_url = match self.picture_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let valid = url.len() <= MAX_PICTURE_URL_LEN
                    && url.strip_prefix("https://").is_some_and(|rest| {
                        !rest.is_empty() && !rest.starts_with('/') && url.chars().all(|c| c.is_ascii_graphic())
                    });
                if !valid {
                    return Err(refuse(
                        "picture_url",
                        format!("must be an https:// URL of at most {MAX_PICTURE_URL_LEN} characters"),
                    ));
                }
                Some(url.to_owned())
            }
        };
        Ok(Profile {
            display_name: clean_text("display_name", &self.display_name, MAX_DISPLAY_NAME_CHARS, true)?,
            bio: clean_text("bio", &self.bio, MAX_BIO_CHARS, false)?,
            experience_years: self.experience_years,
            languages: from_list("languages", &self.languages, LANGUAGES)?,
            specialisations: from_list("specialisations", &self.specialisations, SPECIALISATIONS)?,
            rate_per_minute: self.rate_per_minute,
            modes,
            picture_url,
        })
    }
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
            picture_url: Some("https://cdn.astrokiran.in/a.jpg".into()),
        }
    }

    #[test]
    fn a_good_profile_is_cleaned() {
        let p = input().validate(bounds()).unwrap();
        assert_eq!(p.display_name, "Acharya Asha");
        assert_eq!(p.languages, ["en", "hi"]);
        assert_eq!(p.specialisations, ["tarot", "vedic"]);
        assert_eq!(p.modes, [Mode::Chat, Mode::Video]);
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
            (|p| p.picture_url = Some("http://cdn/a.jpg".into()), "picture_url"),
            (|p| p.picture_url = Some("https://".into()), "picture_url"),
            (|p| p.picture_url = Some("https://a b".into()), "picture_url"),
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
        p.picture_url = Some(" ".into());
        assert!(p.validate(bounds()).unwrap().picture_url.is_none());
    }
}
