//! Top-up invoices: the GST split of a GST-inclusive amount, CGST+SGST or IGST by place of
//! supply, the supplier's GSTIN, and invoice numbers as GST rule 46(b) wants them: at most
//! 16 characters, consecutive within a series, unique in the financial year.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::domain::money::Money;

/// An invoice total split into taxable value and GST. The amount paid is GST-inclusive:
/// the customer pays ₹500 and gets ₹500 of wallet cash; the invoice shows the ₹423.73
/// taxable value and ₹76.27 GST at 18% that make it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GstSplit {
    pub taxable_value: Money,
    pub gst: Money,
    pub total: Money,
}

pub fn gst_inclusive_split(total: Money, rate_percent: Decimal) -> GstSplit {
    let divisor = Decimal::ONE + rate_percent / Decimal::ONE_HUNDRED;
    let taxable = (total.decimal() / divisor).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let taxable_value = Money::new(taxable).unwrap_or(Money::ZERO);
    // The GST is what is left, so the two always add up to what was paid.
    let gst = total.checked_sub(taxable_value).unwrap_or(Money::ZERO);
    GstSplit { taxable_value, gst, total }
}

/// India Standard Time, in which the financial year turns (1 April 00:00 IST).
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 1800).expect("IST is a valid offset")
}

/// The Indian financial year (April to March) of `at`, as `2025-26`.
pub fn financial_year(at: DateTime<Utc>) -> String {
    let local = at.with_timezone(&ist());
    let start = if local.month() >= 4 { local.year() } else { local.year() - 1 };
    format!("{start}-{:02}", (start + 1) % 100)
}

/// GST rule 46(b): an invoice number has at most 16 characters.
pub const MAX_INVOICE_NUMBER_LEN: usize = 16;

/// Invoices are numbered in this many series per financial year (rule 46(b) allows "one
/// or multiple series"). One counter for every credit made 45 of 50 simultaneous credits
/// fail on it; a credit draws one series at random, so racing credits rarely meet.
pub const INVOICE_SERIES: u8 = 16;

/// An invoice prefix leaves room for the rest of the number: 1 to 3 capitals or digits.
pub fn valid_invoice_prefix(prefix: &str) -> bool {
    (1..=3).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `AK2627-7-000042`: the prefix, the financial year 2026-27, the series (hex) and the
/// number within it. `None` when it would exceed 16 characters (a million invoices in one
/// series, or a prefix [`valid_invoice_prefix`] refuses).
pub fn invoice_number(prefix: &str, financial_year: &str, series: u8, sequence: u64) -> Option<String> {
    let year: String = financial_year.chars().filter(char::is_ascii_digit).skip(2).collect();
    let number = format!("{prefix}{year}-{series:X}-{sequence:06}");
    (number.len() <= MAX_INVOICE_NUMBER_LEN).then_some(number)
}

/// A GSTIN: state code, PAN, entity number, `Z`, check character (mod 36).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gstin(String);

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

impl Gstin {
    pub fn parse(raw: &str) -> Option<Self> {
        let g = raw.trim().to_ascii_uppercase();
        let b = g.as_bytes();
        let shape = b.len() == 15
            && b[..2].iter().all(u8::is_ascii_digit)
            && b[2..7].iter().all(u8::is_ascii_uppercase)
            && b[7..11].iter().all(u8::is_ascii_digit)
            && b[11].is_ascii_uppercase()
            && b[12].is_ascii_alphanumeric()
            && b[13] == b'Z';
        if !shape {
            return None;
        }
        let mut sum = 0;
        for (i, c) in b[..14].iter().enumerate() {
            let product = BASE36.iter().position(|x| x == c)? * if i % 2 == 0 { 1 } else { 2 };
            sum += product / 36 + product % 36;
        }
        (b[14] == BASE36[(36 - sum % 36) % 36]).then_some(Self(g))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-digit GST state code the supplier is registered in (`29`: Karnataka).
    pub fn state_code(&self) -> &str {
        &self.0[..2]
    }
}

/// The GST an invoice charges, as the law splits it: CGST and SGST (half each) when the
/// place of supply is the supplier's state, IGST when it is another. The parts add up to
/// `gst` exactly; an odd paisa goes to SGST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxLines {
    pub cgst: Money,
    pub sgst: Money,
    pub igst: Money,
}

pub fn tax_lines(gst: Money, supplier_state: &str, place_of_supply: &str) -> TaxLines {
    if supplier_state != place_of_supply {
        return TaxLines { cgst: Money::ZERO, sgst: Money::ZERO, igst: gst };
    }
    let cgst = Money::from_paise(gst.paise() / 2);
    TaxLines { cgst, sgst: gst.checked_sub(cgst).unwrap_or(Money::ZERO), igst: Money::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn money(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn gst_is_inside_the_amount_and_adds_up() {
        let s = gst_inclusive_split(money("500"), dec!(18));
        assert_eq!((s.taxable_value, s.gst), (money("423.73"), money("76.27")));
        for total in ["1", "0.01", "118", "999.99", "100000"] {
            let s = gst_inclusive_split(money(total), dec!(18));
            assert_eq!(s.taxable_value.checked_add(s.gst).unwrap(), money(total));
        }
        assert_eq!(gst_inclusive_split(money("118"), dec!(18)).taxable_value, money("100"));
        assert_eq!(gst_inclusive_split(money("50"), dec!(0)).gst, Money::ZERO);
    }

    #[test]
    fn financial_year_turns_on_1_april_ist() {
        let utc = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
        assert_eq!(financial_year(utc(2026, 3, 31, 18, 29)), "2025-26"); // 23:59 IST on 31 March
        assert_eq!(financial_year(utc(2026, 3, 31, 18, 30)), "2026-27"); // 00:00 IST on 1 April
        assert_eq!(financial_year(utc(2026, 1, 15, 0, 0)), "2025-26");
        assert_eq!(financial_year(utc(2099, 12, 1, 0, 0)), "2099-00");
    }

    #[test]
    fn invoice_numbers_fit_16_characters_or_are_refused() {
        assert_eq!(invoice_number("AK", "2025-26", 7, 42).as_deref(), Some("AK2526-7-000042"));
        assert_eq!(invoice_number("AKR", "2099-00", 15, 999_999).as_deref(), Some("AKR9900-F-999999"));
        assert_eq!(invoice_number("AKR", "2025-26", 0, 1_000_000), None, "17 characters");
        for series in 0..INVOICE_SERIES {
            assert!(invoice_number("ABC", "2025-26", series, 999_999).is_some());
        }
        assert!(valid_invoice_prefix("AK") && valid_invoice_prefix("A1"));
        for bad in ["", "ak", "ABCD", "A/K", "A K"] {
            assert!(!valid_invoice_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn gstins_are_checked_to_the_check_character() {
        let g = Gstin::parse("27aapfu0939f1zv").unwrap();
        assert_eq!((g.as_str(), g.state_code()), ("27AAPFU0939F1ZV", "27"));
        assert!(Gstin::parse("29AAGCB7383J1Z4").is_some());
        for bad in ["27AAPFU0939F1ZW", "27AAPFU0939F1Z", "2XAAPFU0939F1ZV", "27AAPFU0939F1YV", ""] {
            assert!(Gstin::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn gst_is_cgst_and_sgst_inside_the_state_and_igst_across() {
        let inside = tax_lines(money("76.27"), "29", "29");
        assert_eq!((inside.cgst, inside.sgst, inside.igst), (money("38.13"), money("38.14"), Money::ZERO));
        let across = tax_lines(money("76.27"), "29", "27");
        assert_eq!((across.cgst, across.sgst, across.igst), (Money::ZERO, Money::ZERO, money("76.27")));
        for gst in ["0", "0.01", "1.00", "99.99"] {
            let t = tax_lines(money(gst), "07", "07");
            assert_eq!(t.cgst.checked_add(t.sgst).unwrap(), money(gst));
        }
    }
}
