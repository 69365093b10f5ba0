//! Top-up invoices: the GST split of a GST-inclusive amount and the Indian financial year
//! invoices are numbered in.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::money::Money;

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

/// `AK/2025-26/000042`: the prefix, the financial year and the sequence within it.
pub fn invoice_number(prefix: &str, financial_year: &str, sequence: u64) -> String {
    format!("{prefix}/{financial_year}/{sequence:06}")
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
        assert_eq!(invoice_number("AK", "2025-26", 42), "AK/2025-26/000042");
    }
}
