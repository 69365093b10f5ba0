//! Money: INR with at most 2 decimal places, never negative, never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is not a number")]
    NotANumber,
    #[error("amount has more than 2 decimal places")]
    TooPrecise,
    #[error("amount is negative")]
    Negative,
    #[error("amount is too large")]
    Overflow,
}

/// A non-negative INR amount with at most 2 decimal places (paise).
///
/// Always held at scale 2 so `500` and `500.00` are the same value and print the same.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    /// `0.00`: at scale 2 like every other `Money`, so it is sent as `"0.00"`, not `"0"`.
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative);
        }
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let mut at_scale_2 = normalized;
        at_scale_2.rescale(2);
        Ok(Self(at_scale_2))
    }

    pub fn from_paise(paise: u64) -> Self {
        Self(Decimal::new(paise as i64, 2))
    }

    /// Integer paise, as Razorpay wants amounts.
    pub fn paise(&self) -> u64 {
        let mut d = self.0;
        d.rescale(2);
        u64::try_from(d.mantissa()).unwrap_or(u64::MAX)
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0.checked_add(other.0).map(Money).ok_or(MoneyError::Overflow)
    }

    /// `None` when the result would be negative: a balance can never go below zero.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        (self.0 >= other.0).then(|| Money(self.0 - other.0))
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::new(plain_decimal(s)?)
    }
}

/// Plain notation only, as the contract's pattern writes money: digits, at most one point, a
/// leading minus (refused later, for `Money`, as negative). `Decimal`'s own parser also takes
/// `_` separators and a `+`, and we used to trim whitespace: the fuzz had `"\v 050000.00\r"` accepted.
fn plain_decimal(s: &str) -> Result<Decimal, MoneyError> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let plain = unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().filter(|&b| b == b'.').count() <= 1
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if !plain {
        return Err(MoneyError::NotANumber);
    }
    Decimal::from_str_exact(s).map_err(|_| MoneyError::NotANumber)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "₹{}", self.0)
    }
}

/// Serialised as a string (`"500.00"`) so no JSON client ever reads it as a float.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Accepts a JSON string (`"500.50"`) or a JSON number written with at most 2 decimals.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        let text = match &raw {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err(serde::de::Error::custom(MoneyError::NotANumber)),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A signed INR amount at 2 decimal places: a ledger entry's change to one bucket
/// (`-120.00` for a hold, `500.00` for a top-up). Balances are [`Money`], which is never
/// negative; only deltas are `Amount`s.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

impl Amount {
    /// `0.00`, at scale 2 (sent as `"0.00"`).
    pub const ZERO: Amount = Amount(Decimal::from_parts(0, 0, 0, false, 2));

    /// `value` at 2 places; more precision than paise is refused.
    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        let mut at_scale_2 = normalized;
        at_scale_2.rescale(2);
        Ok(Self(at_scale_2))
    }

    pub fn credit(m: Money) -> Self {
        Self(m.decimal())
    }

    pub fn debit(m: Money) -> Self {
        Self(-m.decimal())
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// The amount's size, as money.
    pub fn magnitude(&self) -> Money {
        Money(self.0.abs())
    }

    /// `balance + self`, or `None` when that would be negative or overflow.
    pub fn apply_to(self, balance: Money) -> Option<Money> {
        balance.0.checked_add(self.0).filter(|d| !d.is_sign_negative() || d.is_zero()).map(|d| {
            let mut d = d;
            d.rescale(2);
            Money(d)
        })
    }
}

impl FromStr for Amount {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::new(plain_decimal(s)?)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "₹{:+}", self.0)
    }
}

/// A string, like [`Money`]: `"-120.00"`.
impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn normalises_to_two_places() {
        assert_eq!(Money::new(dec!(500)).unwrap().to_string(), "500.00");
        assert_eq!(Money::new(dec!(100.5)).unwrap(), Money::new(dec!(100.50)).unwrap());
        assert_eq!(Money::new(dec!(1.230)).unwrap().to_string(), "1.23");
    }

    /// Found by schemathesis: a top-up without a bonus answered `"bonus": "0"`.
    #[test]
    fn zero_is_sent_with_two_decimals() {
        assert_eq!(serde_json::to_value(Money::ZERO).unwrap(), "0.00");
        assert_eq!(serde_json::to_value(Amount::ZERO).unwrap(), "0.00");
        assert_eq!(Money::ZERO, Money::from_paise(0));
        assert_eq!(Amount::ZERO, Amount::credit(Money::ZERO));
    }

    #[test]
    fn refuses_bad_amounts() {
        assert_eq!(Money::new(dec!(1.234)), Err(MoneyError::TooPrecise));
        assert_eq!(Money::new(dec!(-1)), Err(MoneyError::Negative));
        assert_eq!("abc".parse::<Money>(), Err(MoneyError::NotANumber));
        assert!(serde_json::from_str::<Money>("true").is_err());
        assert!(serde_json::from_str::<Money>("10.001").is_err());
        for text in [" 1.00", "1.00\n", "\u{b} 050000.00\r\u{c}", "+1.00", "1_000.00", "1.0.0", ".", "", "1e3"] {
            assert_eq!(text.parse::<Money>(), Err(MoneyError::NotANumber), "{text:?}");
            assert_eq!(text.parse::<Amount>(), Err(MoneyError::NotANumber), "{text:?}");
        }
        assert_eq!("-1.00".parse::<Money>(), Err(MoneyError::Negative));
        assert_eq!(
            "050000.00".parse::<Money>().unwrap().paise(),
            5_000_000,
            "the contract's pattern allows leading zeros"
        );
    }

    #[test]
    fn paise_round_trip() {
        assert_eq!(Money::from_paise(50_050).to_string(), "500.50");
        assert_eq!("500.5".parse::<Money>().unwrap().paise(), 50_050);
    }

    #[test]
    fn subtraction_never_goes_negative() {
        let five = Money::from_paise(500);
        assert_eq!(five.checked_sub(Money::from_paise(501)), None);
        assert_eq!(five.checked_sub(five), Some(Money::ZERO));
    }

    #[test]
    fn amounts_are_signed_and_never_take_a_balance_below_zero() {
        let ten = Money::from_paise(1000);
        assert_eq!(Amount::debit(ten).to_string(), "-10.00");
        assert_eq!(Amount::debit(ten).apply_to(ten), Some(Money::ZERO));
        assert_eq!(Amount::debit(Money::from_paise(1001)).apply_to(ten), None);
        assert_eq!(Amount::credit(ten).apply_to(ten), Some(Money::from_paise(2000)));
        assert_eq!("-1.5".parse::<Amount>().unwrap().magnitude(), Money::from_paise(150));
        assert!("1.001".parse::<Amount>().is_err());
    }

    proptest! {
        #[test]
        fn paise_and_strings_agree(p in 0u64..10_000_000_000) {
            let m = Money::from_paise(p);
            prop_assert_eq!(m.paise(), p);
            prop_assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
        }
    }
}
