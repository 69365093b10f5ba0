//! The SMS policy as a function meets it: read from its environment, and its refusals as
//! API errors. The rules themselves are `crate::domain::sms`.

use crate::config::{self, ConfigError, Vars};
use crate::domain::phone::Phone;
use crate::domain::sms::{SmsPolicy, parse_countries};
use crate::http::error::ApiError;

pub const TOO_MANY_SMS: &str = "too_many_sms";

impl SmsPolicy {
    /// `SMS_COUNTRY_CODES` (`+91`, or a comma-separated list), `SMS_LIMIT_PER_PHONE`,
    /// `SMS_LIMIT_PER_IP` and `SMS_LIMIT_WINDOW_SECONDS`.
    pub fn from_env(vars: &impl Vars) -> Result<Self, ConfigError> {
        let codes = config::required(vars, "SMS_COUNTRY_CODES")?;
        let countries = parse_countries(&codes)
            .ok_or_else(|| ConfigError::Invalid { name: "SMS_COUNTRY_CODES", problem: format!("{codes:?}") })?;
        let number = |name: &'static str| -> Result<u32, ConfigError> {
            let raw = config::required(vars, name)?;
            raw.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::Invalid { name, problem: format!("{raw:?} is not a whole number above 0") })
        };
        Ok(Self {
            countries,
            per_phone: number("SMS_LIMIT_PER_PHONE")?,
            per_source: number("SMS_LIMIT_PER_IP")?,
            window_seconds: number("SMS_LIMIT_WINDOW_SECONDS")?,
        })
    }

    /// `400 invalid_field` (`phone`) for a number outside the countries served.
    pub fn check_country(&self, phone: &Phone) -> Result<(), ApiError> {
        if self.serves(phone) {
            return Ok(());
        }
        Err(ApiError::invalid_field("phone", format!("we serve numbers from {} only", self.countries().join(", "))))
    }
}

/// `429 too_many_sms`, to retry after `seconds`.
pub fn too_many_sms(seconds: u64) -> ApiError {
    ApiError::too_many(TOO_MANY_SMS, "too many codes were sent to this number or from this network; try again later")
        .retry_after(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn policy(codes: &str) -> Result<SmsPolicy, ConfigError> {
        let vars: HashMap<String, String> = [
            ("SMS_COUNTRY_CODES", codes),
            ("SMS_LIMIT_PER_PHONE", "5"),
            ("SMS_LIMIT_PER_IP", "50"),
            ("SMS_LIMIT_WINDOW_SECONDS", "3600"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        SmsPolicy::from_env(&vars)
    }

    #[test]
    fn only_the_countries_served() {
        let india = policy("+91").unwrap();
        assert!(india.check_country(&Phone::parse("+919876543210").unwrap()).is_ok());
        for other in ["+14155550123", "+447700900123", "+882345678901", "+9779812345678"] {
            let err = india.check_country(&Phone::parse(other).unwrap()).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (400, Some("phone")), "{other}");
        }
        let two = policy(" +91, +977 ").unwrap();
        assert!(two.check_country(&Phone::parse("+9779812345678").unwrap()).is_ok());
        for bad in ["", "91", "+", "+1234", "+0", "+91;+1", "+9a"] {
            assert!(policy(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn too_many_says_when_to_retry() {
        let err = too_many_sms(0);
        assert_eq!((err.status, err.code.as_str(), err.retry_after), (429, TOO_MANY_SMS, Some(1)));
    }
}
