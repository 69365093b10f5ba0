//! Events between functions: one versioned JSON envelope, the catalogue of event types, and
//! one way for a queue consumer to report partial batch failures. Producers never send
//! events themselves: they write them to the outbox in the transaction that makes the change
//! ([`crate::store::Tx::outbox`]); the outbox relay publishes them to the events topic, which
//! fans them out by type to one queue per consumer.

use crate::domain::status::string_enum;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::money::Money;
use crate::domain::offer::{Milestone, Offer};
use crate::domain::user::{UserId, UserType};

/// `{ id, type, version, occurred_at, payload }`. The `id` is what consumers de-duplicate
/// on, so a producer that may run twice for one fact derives it from that fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P = serde_json::Value> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub payload: P,
}

string_enum!(
    /// Why a wallet changed (a refund or chargeback of a recharge): told to the customer.
    Cause {
        Refund => "refund",
        Chargeback => "chargeback",
        /// A dispute won or closed in our favour: what its chargeback took comes back.
        ChargebackReversed => "chargeback_reversed",
    }
);

/// A fact one function tells others about.
pub trait Event: Serialize + DeserializeOwned {
    const TYPE: &'static str;
    const VERSION: u32;
}

impl<P: Event> Envelope<P> {
    /// `id` and `occurred_at` come from the change the event reports (a top-up id, the time
    /// the transaction was built), never from the moment of sending: a producer that runs
    /// twice for one change must build the same envelope, so the outbox refuses the second.
    pub fn new(id: impl Into<String>, occurred_at: DateTime<Utc>, payload: P) -> Self {
        Self { id: id.into(), kind: P::TYPE.to_owned(), version: P::VERSION, occurred_at, payload }
    }
}

impl Envelope {
    /// The typed payload, if this envelope carries event `P` at its version.
    pub fn payload_as<P: Event>(&self) -> Option<Result<P, serde_json::Error>> {
        (self.kind == P::TYPE && self.version == P::VERSION).then(|| serde_json::from_value(self.payload.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub user_type: UserType,
    pub first_name: String,
}

impl UserRegistered {
    /// One user registers once, so the user names the event (and an account's deletion
    /// finds it to erase the name it carries).
    pub fn event_id(user: &UserId) -> String {
        format!("user-registered-{user}")
    }
}

impl Event for UserRegistered {
    const TYPE: &'static str = "UserRegistered";
    const VERSION: u32 = 1;
}

/// A top-up was credited to a wallet (once per payment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletCredited {
    pub user_id: UserId,
    pub top_up_id: String,
    pub amount: Money,
    pub bonus: Money,
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub invoice_number: String,
}

impl Event for WalletCredited {
    const TYPE: &'static str = "WalletCredited";
    const VERSION: u32 = 1;
}

/// A refund or chargeback took a recharge back from a wallet, or a won dispute gave it back
/// (once per refund, and per change of a dispute).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalletReversed {
    pub user_id: UserId,
    pub top_up_id: String,
    pub cause: Cause,
    /// The Razorpay refund or dispute.
    pub reference_id: String,
    /// Taken back (with what was owed instead), or given back.
    pub amount: Money,
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub debt: Money,
}

impl Event for WalletReversed {
    const TYPE: &'static str = "WalletReversed";
    const VERSION: u32 = 1;
}

/// Why a message did not parse, for the logs: what kind of error and where, never the text
/// around it (serde's own message quotes the offending value: a phone number, a name).
pub fn parse_problem(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

/// An astrologer's KYC status changed (for notifications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KycStatusChanged {
    pub astrologer_id: UserId,
    pub kyc_request_id: String,
    pub kyc_status: crate::domain::user::KycStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
}

impl Event for KycStatusChanged {
    const TYPE: &'static str = "KycStatusChanged";
    const VERSION: u32 = 1;
}

/// A consultation was booked and its price held (for both parties' notifications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultationBooked {
    pub booking_id: String,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    pub astrologer_name: String,
    pub mode: String,
    pub scheduled_at: DateTime<Utc>,
    pub minutes: u32,
    pub amount: Money,
}

impl Event for ConsultationBooked {
    const TYPE: &'static str = "ConsultationBooked";
    const VERSION: u32 = 1;
}

/// A live session's meter started: both parties had joined (not notified: for the record
/// and for analytics, e.g. time from booking to talking).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultationStarted {
    pub booking_id: String,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    /// The minutes held when it started.
    pub minutes: u32,
}

impl Event for ConsultationStarted {
    const TYPE: &'static str = "ConsultationStarted";
    const VERSION: u32 = 1;
}

/// A consultation ended and was settled (the customer may now review it): what the meter
/// measured, what was billed, who or what ended it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultationCompleted {
    pub booking_id: String,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    pub astrologer_name: String,
    /// The minutes billed.
    pub actual_minutes: u32,
    /// What the server's meter measured (0: a party never came).
    #[serde(default)]
    pub measured_seconds: u32,
    /// Who or what ended it: `customer`, `astrologer`, `balance`, `lapse`, `staff`.
    #[serde(default)]
    pub ended_by: String,
    pub charged: Money,
    pub refunded: Money,
    pub astrologer_earnings: Money,
}

impl Event for ConsultationCompleted {
    const TYPE: &'static str = "ConsultationCompleted";
    const VERSION: u32 = 1;
}

/// A consultation was cancelled or closed as a no-show, and refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsultationCancelled {
    pub booking_id: String,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    /// `cancelled` or `no_show`.
    pub status: String,
    /// `customer`, `astrologer` or `system`.
    pub by: String,
    pub refunded: Money,
}

impl Event for ConsultationCancelled {
    const TYPE: &'static str = "ConsultationCancelled";
    const VERSION: u32 = 1;
}

/// A customer reviewed a completed consultation (for the rating aggregate and the
/// astrologer's notification). One per consultation: the review's id is the booking id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewSubmitted {
    pub booking_id: String,
    pub customer_id: UserId,
    pub astrologer_id: UserId,
    /// 1 to 5.
    pub rating: u8,
    /// A paid, completed consultation (always true for reviews written through the app).
    pub verified: bool,
    pub public: bool,
}

impl Event for ReviewSubmitted {
    const TYPE: &'static str = "ReviewSubmitted";
    const VERSION: u32 = 1;
}

/// A milestone the customer reached unlocked an offer for them (told, so they know to use
/// it). Once per customer and offer: the id names both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferUnlocked {
    pub user_id: UserId,
    pub offer_id: String,
    pub name: String,
    /// Free minutes on a consultation; 0 for a recharge bonus.
    pub free_minutes: u32,
    /// A recharge bonus: this percent of a recharge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bonus_percent: Option<rust_decimal::Decimal>,
    pub milestone: Milestone,
}

impl Event for OfferUnlocked {
    const TYPE: &'static str = "OfferUnlocked";
    const VERSION: u32 = 1;
}

impl OfferUnlocked {
    /// The event of `offer` unlocked for `user` by a milestone reached at `at`.
    pub fn envelope(user: &UserId, offer: &Offer, milestone: Milestone, at: DateTime<Utc>) -> Envelope<Self> {
        Envelope::new(
            format!("offer-unlocked-{}-{user}", offer.offer_id),
            at,
            OfferUnlocked {
                user_id: user.clone(),
                offer_id: offer.offer_id.clone(),
                name: offer.name.clone(),
                free_minutes: offer.free_minutes,
                bonus_percent: offer.bonus_percent,
                milestone,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message that is not an envelope is described without quoting what it holds.
    #[test]
    fn parse_problems_never_quote_the_message() {
        for body in [
            r#"{"id": 919876543210, "type": "UserRegistered"}"#,
            r#"{"id":"e1","type":"X","version":"+919876543210","occurred_at":"2026-01-01T00:00:00Z","payload":{}}"#,
            r#"{"id":"e1","type":919876543210,"version":1,"occurred_at":"2026-01-01T00:00:00Z","payload":{}}"#,
            "+919876543210",
        ] {
            let e = serde_json::from_str::<Envelope>(body).unwrap_err();
            assert!(e.to_string().contains("9876543210") || body.starts_with('+'), "serde quotes it: {e}");
            let problem = parse_problem(&e);
            assert!(!problem.contains("9876543210"), "{problem}");
            assert!(problem.contains("line 1"), "{problem}");
        }
    }
}
