//! Reviews of consultations and the astrologer's rating made of them.
//!
//! A customer reviews a consultation once, after it is completed: a [`Rating`] of 1 to 5
//! stars and an optional [`ReviewText`]. The rating shown in the catalogue is a weighted
//! average ([`RatingTotals`]): a verified review (of a paid, completed consultation) weighs
//! [`VERIFIED_WEIGHT`], any other [`UNVERIFIED_WEIGHT`] (seed 000: "verified reviews weighted
//! higher"); the plain number of reviews is kept beside it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::astrologer::RatingSummary;
use crate::domain::booking::{BookingId, Consultation, ConsultationStatus};
use crate::domain::events::{Envelope, ReviewSubmitted};
use crate::domain::money::Money;
use crate::domain::user::UserId;

/// Stars, 1 to 5; nothing else can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "u8")]
pub struct Rating(u8);

impl Rating {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 5;

    pub fn new(stars: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&stars).then_some(Self(stars))
    }

    pub fn stars(self) -> u8 {
        self.0
    }
}

impl From<Rating> for u8 {
    fn from(r: Rating) -> Self {
        r.0
    }
}

impl<'de> Deserialize<'de> for Rating {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `4.0` is 4 stars, as for every whole number in a body (`json::whole_number`).
        let stars: u64 = crate::domain::json::whole_number(d)
            .map_err(|_: D::Error| serde::de::Error::custom("must be a whole number from 1 to 5"))?;
        u8::try_from(stars)
            .ok()
            .and_then(Rating::new)
            .ok_or_else(|| serde::de::Error::custom("must be a whole number from 1 to 5"))
    }
}

/// At most this many characters of review text (as sent).
pub const MAX_TEXT_CHARS: usize = 1000;

/// What a customer wrote: trimmed, not empty, at most [`MAX_TEXT_CHARS`] characters, no
/// control characters but line breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewText(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidText {
    #[error("must be at most {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl ReviewText {
    /// `Ok(None)`: nothing but white space was written, which is no text.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidText> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        // Counted and checked as sent, as the contract's `maxLength` and pattern are.
        if raw.chars().count() > MAX_TEXT_CHARS {
            return Err(InvalidText::TooLong);
        }
        if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return Err(InvalidText::ControlCharacter);
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a consultation cannot be reviewed (besides not being the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReviewable {
    #[error("only a completed consultation can be reviewed")]
    NotCompleted,
}

/// Whether `c` may be reviewed now, and if so whether the review is verified: a completed
/// consultation the customer paid for (something was charged).
pub fn reviewable(c: &Consultation) -> Result<bool, NotReviewable> {
    if c.status != ConsultationStatus::Completed {
        return Err(NotReviewable::NotCompleted);
    }
    Ok(c.closing.is_some_and(|closing| closing.charged.total() > Money::ZERO))
}

/// A review as stored: one per consultation, its id the booking id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub booking_id: BookingId,
    pub astrologer_id: UserId,
    pub customer_id: UserId,
    /// Copied from the customer's profile when the review is written, so listing reviews
    /// reads nothing else; the only thing anyone else sees of the reviewer.
    pub reviewer_first_name: String,
    pub rating: Rating,
    pub text: Option<ReviewText>,
    /// Shown on the astrologer's public reviews (every review counts in the rating).
    pub public: bool,
    pub verified: bool,
    pub created_at: DateTime<Utc>,
}

impl Review {
    /// The event of its submission: one per consultation, as there is one review per consultation.
    pub fn submitted_event(&self) -> Envelope<ReviewSubmitted> {
        Envelope::new(
            format!("review-submitted-{}", self.booking_id.as_str()),
            self.created_at,
            ReviewSubmitted {
                booking_id: self.booking_id.as_str().to_owned(),
                customer_id: self.customer_id.clone(),
                astrologer_id: self.astrologer_id.clone(),
                rating: self.rating.stars(),
                verified: self.verified,
                public: self.public,
            },
        )
    }
}

pub const VERIFIED_WEIGHT: u64 = 2;
pub const UNVERIFIED_WEIGHT: u64 = 1;

/// The sums an astrologer's rating is made of; kept on the astrologer item so a new review
/// is added without reading the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RatingTotals {
    /// Sum of stars x weight.
    pub weighted_stars: u64,
    /// Sum of the weights.
    pub weight: u64,
    /// Reviews counted, whatever their weight.
    pub count: u64,
}

impl RatingTotals {
    /// The totals with one more review.
    pub fn with(self, rating: Rating, verified: bool) -> Self {
        let weight = if verified { VERIFIED_WEIGHT } else { UNVERIFIED_WEIGHT };
        Self {
            weighted_stars: self.weighted_stars + u64::from(rating.stars()) * weight,
            weight: self.weight + weight,
            count: self.count + 1,
        }
    }

    /// The weighted average in hundredths of a star, half up (4.565 shows as 4.57); 0
    /// without reviews.
    pub fn average_hundredths(&self) -> u32 {
        if self.weight == 0 {
            return 0;
        }
        // round(100 * stars / weight) = floor((200 * stars + weight) / (2 * weight)); at most 500.
        ((200 * self.weighted_stars + self.weight) / (2 * self.weight)) as u32
    }

    pub fn summary(&self) -> RatingSummary {
        RatingSummary { average_hundredths: self.average_hundredths(), count: self.count }
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use serde_json::json;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    impl utoipa::PartialSchema for super::Rating {
        fn schema() -> RefOr<Schema> {
            crate::domain::schema::json_schema(json!({
                "type": "integer", "minimum": super::Rating::MIN, "maximum": super::Rating::MAX,
                "description": "stars, 1 to 5",
            }))
        }
    }
    impl utoipa::ToSchema for super::Rating {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rating_is_one_to_five_stars() {
        for (json, stars) in [
            ("1", Some(1)),
            ("5", Some(5)),
            ("4.0", Some(4)),
            ("0", None),
            ("6", None),
            ("-1", None),
            ("300", None),
            ("4.5", None),
            ("\"4\"", None),
        ] {
            let parsed = serde_json::from_str::<Rating>(json).ok().map(Rating::stars);
            assert_eq!(parsed, stars, "{json}");
        }
        assert_eq!(serde_json::to_string(&Rating::new(4).unwrap()).unwrap(), "4");
        assert!(Rating::new(0).is_none() && Rating::new(6).is_none());
    }

    #[test]
    fn review_text_is_trimmed_and_bounded() {
        let long = "a".repeat(MAX_TEXT_CHARS);
        let too_long = "é".repeat(MAX_TEXT_CHARS + 1);
        let cases: [(&str, Result<Option<&str>, InvalidText>); 7] = [
            ("  Very helpful.  ", Ok(Some("Very helpful."))),
            ("   \n ", Ok(None)),
            ("", Ok(None)),
            ("Line one\r\nline two", Ok(Some("Line one\r\nline two"))),
            ("bell\u{7}", Err(InvalidText::ControlCharacter)),
            (&long, Ok(Some(&long))),
            (&too_long, Err(InvalidText::TooLong)),
        ];
        for (raw, expected) in cases {
            let parsed = ReviewText::parse(raw);
            assert_eq!(
                parsed.as_ref().map(|t| t.as_ref().map(ReviewText::as_str)),
                expected.as_ref().copied(),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn verified_reviews_weigh_twice_and_the_average_rounds_half_up() {
        let r = |s| Rating::new(s).unwrap();
        // (reviews as (stars, verified), average in hundredths, count)
        type Case = (&'static [(u8, bool)], u32, u64);
        let cases: &[Case] = &[
            (&[], 0, 0),
            (&[(5, true)], 500, 1),
            (&[(1, false)], 100, 1),
            // (5*2 + 1*1) / 3 = 3.666..
            (&[(5, true), (1, false)], 367, 2),
            // unweighted the same reviews would be 3.00
            (&[(5, false), (1, false)], 300, 2),
            // (4*2 + 5*1) / 3 = 4.333..
            (&[(4, true), (5, false)], 433, 2),
            // (3*2 + 4*2 + 4 + 5 + 5 + 5 + 5 + 4) / 10 = 4.2
            (&[(3, true), (4, true), (4, false), (5, false), (5, false), (5, false), (5, false), (4, false)], 420, 8),
            // (2*2 + 7 * 3) / 9 = 2.777.. rounds up
            (&[(2, true), (3, false), (3, false), (3, false), (3, false), (3, false), (3, false), (3, false)], 278, 8),
            // (5*2 + 5*2 + 3 + 2 + 2 + 2) / 8 = 3.625: an exact half rounds up
            (&[(5, true), (5, true), (3, false), (2, false), (2, false), (2, false)], 363, 6),
            // (1*2 + 1 + 2) / 4 = 1.25
            (&[(1, true), (1, false), (2, false)], 125, 3),
        ];
        for (reviews, average, count) in cases {
            let totals = reviews.iter().fold(RatingTotals::default(), |t, (s, v)| t.with(r(*s), *v));
            assert_eq!((totals.average_hundredths(), totals.count), (*average, *count), "{reviews:?}");
            assert_eq!(totals.summary(), RatingSummary { average_hundredths: *average, count: *count });
        }
        // Order does not matter (messages arrive in any order).
        let a = RatingTotals::default().with(r(5), true).with(r(2), false);
        let b = RatingTotals::default().with(r(2), false).with(r(5), true);
        assert_eq!(a, b);
    }
}
