//! Phone numbers in E.164, the only form the rest of the code ever sees.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number must be in E.164 form, e.g. +919876543210")]
    NotE164,
    #[error("an Indian mobile number has 10 digits and starts with 6, 7, 8 or 9")]
    InvalidIndianMobile,
}

/// A phone number in E.164 (`+` then 8 to 15 digits, no leading zero).
///
/// Indian (+91) numbers must be 10-digit mobiles. `Debug` and `Display` mask all but the
/// last four digits, so a `Phone` can never leak into a log by accident; the full number
/// is only available through [`Phone::e164`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses user input. Spaces, hyphens and brackets are tolerated as formatting.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let compact: String = input.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').ok_or(PhoneError::NotE164)?;
        let well_formed =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !well_formed {
            return Err(PhoneError::NotE164);
        }
        if let Some(national) = digits.strip_prefix("91")
            && !(national.len() == 10 && matches!(national.as_bytes()[0], b'6'..=b'9'))
        {
            return Err(PhoneError::InvalidIndianMobile);
        }
        Ok(Self(compact))
    }

    /// The full number, for Cognito and the store. Never log it.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// `+91******3210`: country code and last four digits only.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks any phone-like string, keeping a leading `+` and country code (2 digits) and the last 4 digits.
pub fn mask_phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Phone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Phone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_indian_mobile_and_formatting() {
        assert_eq!(Phone::parse("+919876543210").unwrap().e164(), "+919876543210");
        assert_eq!(Phone::parse(" +91 98765-43210 ").unwrap().e164(), "+919876543210");
        assert_eq!(Phone::parse("+14155550123").unwrap().e164(), "+14155550123");
    }

    #[test]
    fn refuses_what_is_not_e164() {
        for bad in ["", "9876543210", "+", "+0123456789", "+91abc", "+1234567", "+1234567890123456", "++919876543210"] {
            assert_eq!(Phone::parse(bad), Err(PhoneError::NotE164), "{bad}");
        }
    }

    #[test]
    fn refuses_indian_numbers_that_are_not_mobiles() {
        for bad in ["+915876543210", "+91987654321", "+9198765432101"] {
            assert_eq!(Phone::parse(bad), Err(PhoneError::InvalidIndianMobile), "{bad}");
        }
    }

    #[test]
    fn never_prints_the_full_number() {
        let phone = Phone::parse("+919876543210").unwrap();
        assert_eq!(phone.to_string(), "+91******3210");
        assert!(!format!("{phone:?}").contains("98765"));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,20}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert_eq!(Phone::parse(p.e164()).unwrap(), p);
            }
        }

        #[test]
        fn masking_hides_the_middle(n in 6_000_000_000u64..9_999_999_999u64) {
            let p = Phone::parse(&format!("+91{n}")).unwrap();
            let digits = n.to_string();
            prop_assert!(!p.masked().contains(&digits[..6]));
        }
    }
}
