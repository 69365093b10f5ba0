//! What people read: the one catalogue of notification texts. [`Notifiable`] is an event
//! someone should hear about, [`Notifiable::recipients`] says who (and as whom), and
//! [`message`] is a pure function from (event, recipient, language) to a title and a body.
//!
//! Statuses are never shown as stored (`in_progress`, `no_show`): each one has its own
//! sentence, so a new status is a compile error here, not a raw word on a phone. A second
//! language is a new [`Language`] arm.

use chrono::{DateTime, Utc};

use crate::domain::astrologer::Mode;
use crate::domain::booking::ConsultationStatus;
use crate::domain::events::{
    ConsultationBooked, ConsultationCancelled, ConsultationCompleted, Envelope, Event, KycStatusChanged, OfferUnlocked,
    ReviewSubmitted, UserRegistered, WalletCredited, WalletReversed,
};
use crate::domain::money::Money;
use crate::domain::offer::{Milestone, MilestoneMetric};
use crate::domain::user::{KycStatus, UserId, UserType};

/// The languages notifications are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    #[default]
    English,
}

/// The side of the marketplace a notification speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Customer,
    Astrologer,
}

impl Recipient {
    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Customer => "customer",
            Recipient::Astrologer => "astrologer",
        }
    }
}

/// Every event type someone is told about: the one list. The template's subscription of the
/// notifications queue filters on exactly these (checked by infra's template tests), and
/// [`Notifiable::from_envelope`] reads each of them (checked below).
pub const NOTIFIED: &[&str] = &[
    UserRegistered::TYPE,
    KycStatusChanged::TYPE,
    WalletCredited::TYPE,
    WalletReversed::TYPE,
    ConsultationBooked::TYPE,
    ConsultationCancelled::TYPE,
    ConsultationCompleted::TYPE,
    ReviewSubmitted::TYPE,
    OfferUnlocked::TYPE,
];

/// An event that somebody is told about, its payload read.
#[derive(Debug, Clone, PartialEq)]
pub enum Notifiable {
    Welcome(UserRegistered),
    Kyc(KycStatusChanged),
    WalletCredited(WalletCredited),
    Reversed(WalletReversed),
    Booked(ConsultationBooked),
    Cancelled(ConsultationCancelled),
    Completed(ConsultationCompleted),
    Reviewed(ReviewSubmitted),
    Unlocked(OfferUnlocked),
}

impl Notifiable {
    /// `None`: nobody is told about this event (type or version). `Some(Err)`: it is one of
    /// ours but its payload does not parse.
    pub fn from_envelope(envelope: &Envelope) -> Option<Result<Self, serde_json::Error>> {
        fn read<P: crate::domain::events::Event>(
            envelope: &Envelope,
            wrap: fn(P) -> Notifiable,
        ) -> Option<Result<Notifiable, serde_json::Error>> {
            envelope.payload_as::<P>().map(|p| p.map(wrap))
        }
        read(envelope, Notifiable::Welcome)
            .or_else(|| read(envelope, Notifiable::Kyc))
            .or_else(|| read(envelope, Notifiable::WalletCredited))
            .or_else(|| read(envelope, Notifiable::Reversed))
            .or_else(|| read(envelope, Notifiable::Booked))
            .or_else(|| read(envelope, Notifiable::Cancelled))
            .or_else(|| read(envelope, Notifiable::Completed))
            .or_else(|| read(envelope, Notifiable::Reviewed))
            .or_else(|| read(envelope, Notifiable::Unlocked))
    }

    /// Who is told, and as whom: both parties of a booking, a cancellation and a completion.
    pub fn recipients(&self) -> Vec<(UserId, Recipient)> {
        use Recipient::{Astrologer, Customer};
        match self {
            Notifiable::Welcome(p) => {
                let side = if p.user_type == UserType::Astrologer { Astrologer } else { Customer };
                vec![(p.user_id.clone(), side)]
            }
            Notifiable::Kyc(p) => vec![(p.astrologer_id.clone(), Astrologer)],
            Notifiable::WalletCredited(p) => vec![(p.user_id.clone(), Customer)],
            Notifiable::Reversed(p) => vec![(p.user_id.clone(), Customer)],
            Notifiable::Booked(ConsultationBooked { customer_id, astrologer_id, .. })
            | Notifiable::Cancelled(ConsultationCancelled { customer_id, astrologer_id, .. })
            | Notifiable::Completed(ConsultationCompleted { customer_id, astrologer_id, .. }) => {
                vec![(customer_id.clone(), Customer), (astrologer_id.clone(), Astrologer)]
            }
            Notifiable::Reviewed(p) => vec![(p.astrologer_id.clone(), Astrologer)],
            Notifiable::Unlocked(p) => vec![(p.user_id.clone(), Customer)],
        }
    }
}

/// A notification's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub body: String,
}

fn msg(title: &str, body: String) -> Message {
    Message { title: title.to_owned(), body }
}

/// The title and body `to` reads about `event`, in `language`.
pub fn message(event: &Notifiable, to: Recipient, language: Language) -> Message {
    match language {
        Language::English => english(event, to),
    }
}

fn english(event: &Notifiable, to: Recipient) -> Message {
    use Recipient::{Astrologer, Customer};
    match event {
        Notifiable::Welcome(p) => {
            let next = match to {
                Customer => "Top up your wallet to book your first consultation.",
                Astrologer => "Complete your video KYC to get listed.",
            };
            msg("Welcome to AstroKiran", format!("Namaste {}, your account is ready. {next}", p.first_name))
        }
        Notifiable::Kyc(p) => match p.kyc_status {
            KycStatus::NotStarted => msg("KYC not started", "Start your video KYC to get listed.".into()),
            KycStatus::InProgress => msg(
                "KYC under review",
                "Your video KYC is with our verification partner. We will tell you as soon as it is decided.".into(),
            ),
            KycStatus::Completed => msg("KYC approved", "Your profile is live: customers can now book you.".into()),
            KycStatus::Failed => {
                msg("KYC could not be completed", "Something went wrong in your video KYC. You can start again.".into())
            }
            KycStatus::Rejected => {
                let reason = p.rejection_reason.as_deref().map(readable).filter(|r| !r.is_empty());
                let reason = reason.map_or_else(|| "no reason was given".to_owned(), |r| format!("reason: {r}"));
                msg("KYC needs another try", format!("Your KYC was not approved ({reason}). You can start KYC again."))
            }
            KycStatus::Expired => msg("KYC expired", "Your KYC link expired; you can start again.".into()),
        },
        Notifiable::WalletCredited(p) => {
            let bonus = if p.bonus > Money::ZERO { format!(" plus ₹{} bonus cash", p.bonus) } else { String::new() };
            msg("Wallet recharged", format!("₹{} added to your wallet{bonus}. Invoice {}.", p.amount, p.invoice_number))
        }
        Notifiable::Reversed(p) => reversed(p),
        Notifiable::Booked(p) => {
            let what = format!("{}-minute {}", p.minutes, mode_words(&p.mode));
            let when = india_time(p.scheduled_at);
            match to {
                Customer => msg(
                    "Consultation booked",
                    format!(
                        "Your {what} with {} is booked for {when}. ₹{} is held from your wallet. Booking {}.",
                        p.astrologer_name, p.amount, p.booking_id
                    ),
                ),
                Astrologer => msg(
                    "New booking",
                    format!("A customer booked a {what} with you for {when}. Booking {}.", p.booking_id),
                ),
            }
        }
        Notifiable::Cancelled(p) => cancelled(p, to),
        Notifiable::Completed(p) => match to {
            Customer => {
                let back = if p.refunded > Money::ZERO {
                    format!(" ₹{} of the amount held is back in your wallet.", p.refunded)
                } else {
                    String::new()
                };
                msg(
                    "How was your consultation?",
                    format!(
                        "Your consultation with {} is over: {} min, ₹{} charged.{back} Rate it to help others choose.",
                        p.astrologer_name, p.actual_minutes, p.charged
                    ),
                )
            }
            Astrologer => msg(
                "Consultation completed",
                format!(
                    "You earned ₹{} for consultation {} ({} min).",
                    p.astrologer_earnings, p.booking_id, p.actual_minutes
                ),
            ),
        },
        Notifiable::Reviewed(p) => {
            let stars = p.rating.clamp(1, 5);
            msg("New review", format!("A customer rated consultation {} {stars} out of 5.", p.booking_id))
        }
        Notifiable::Unlocked(p) => {
            let what = match p.bonus_percent {
                Some(percent) => format!("{}% extra on your next recharge", percent.normalize()),
                None if p.free_minutes == 1 => "the first minute of your next consultation free".to_owned(),
                None => format!("the first {} minutes of your next consultation free", p.free_minutes),
            };
            msg("Offer unlocked", format!("{}: {} gives you {what}.", reached(p.milestone), p.name))
        }
    }
}

/// "You completed your 5th consultation", "You made your 3rd recharge".
fn reached(m: Milestone) -> String {
    let suffix = match (m.count % 100, m.count % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    let nth = if m.count == 1 { "first".to_owned() } else { format!("{}{suffix}", m.count) };
    match m.metric {
        MilestoneMetric::CompletedConsultations => format!("You completed your {nth} consultation"),
        MilestoneMetric::Recharges => format!("You made your {nth} recharge"),
    }
}

fn reversed(p: &WalletReversed) -> Message {
    use crate::domain::reversal::Cause;
    let owed = if p.debt > Money::ZERO {
        format!(" Your wallet owes ₹{}: your next recharge pays it first.", p.debt)
    } else {
        String::new()
    };
    match p.cause {
        Cause::Refund => msg(
            "Recharge refunded",
            format!("₹{} of a recharge is refunded to your payment method, so it leaves your wallet.{owed}", p.amount),
        ),
        Cause::Chargeback => msg(
            "Recharge disputed",
            format!(
                "Your bank disputed a recharge, so ₹{} is taken back from your wallet while the dispute lasts.{owed}",
                p.amount
            ),
        ),
        Cause::ChargebackReversed => msg(
            "Wallet restored",
            format!("The dispute about your recharge is closed: ₹{} is back in your wallet.", p.amount),
        ),
    }
}

/// Who closed a consultation, as the event says (`customer`, `astrologer`, `staff`, `system`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClosedBy {
    Customer,
    Astrologer,
    /// Operations, when an astrologer is suspended.
    Staff,
    Other,
}

fn cancelled(p: &ConsultationCancelled, to: Recipient) -> Message {
    use Recipient::{Astrologer, Customer};
    let by = match p.by.as_str() {
        "customer" => ClosedBy::Customer,
        "astrologer" => ClosedBy::Astrologer,
        "staff" => ClosedBy::Staff,
        _ => ClosedBy::Other,
    };
    let id = &p.booking_id;
    let refund = if p.refunded > Money::ZERO {
        format!("₹{} is back in your wallet.", p.refunded)
    } else {
        "No refund is due under the cancellation policy.".to_owned()
    };
    match (ConsultationStatus::parse(&p.status), by, to) {
        (Some(ConsultationStatus::NoShow), _, Customer) => msg(
            "Consultation not held",
            format!("Consultation {id} was not started in time, so it was closed. {refund}"),
        ),
        (Some(ConsultationStatus::NoShow), _, Astrologer) => msg(
            "Missed consultation",
            format!("Consultation {id} was not started in time, so it was closed and the customer refunded."),
        ),
        (Some(ConsultationStatus::Declined), _, Customer) => {
            msg("Astrologer unavailable", format!("Your astrologer could not take consultation {id} now. {refund}"))
        }
        (Some(ConsultationStatus::Declined), _, Astrologer) => {
            msg("Request declined", format!("You declined consultation {id}. The customer gets everything back."))
        }
        (Some(ConsultationStatus::Expired), _, Customer) => msg(
            "No answer",
            format!("Your astrologer did not answer in time, so consultation {id} was not held. {refund}"),
        ),
        (Some(ConsultationStatus::Expired), _, Astrologer) => {
            msg("Missed request", format!("You did not answer consultation request {id} within a minute."))
        }
        (_, ClosedBy::Customer, Customer) => {
            msg("Consultation cancelled", format!("You cancelled consultation {id}. {refund}"))
        }
        (_, ClosedBy::Customer, Astrologer) => {
            msg("Booking cancelled", format!("The customer cancelled consultation {id}. Your time is free again."))
        }
        (_, ClosedBy::Astrologer, Customer) => {
            msg("Consultation cancelled", format!("Your astrologer cancelled consultation {id}. {refund}"))
        }
        (_, ClosedBy::Astrologer, Astrologer) => msg(
            "Consultation cancelled",
            format!("You cancelled consultation {id}. The customer gets back everything they paid."),
        ),
        (_, ClosedBy::Staff, Customer) => msg(
            "Consultation cancelled",
            format!("Your astrologer is no longer available, so we cancelled consultation {id}. {refund}"),
        ),
        (_, ClosedBy::Staff, Astrologer) => msg(
            "Consultation cancelled",
            format!("AstroKiran cancelled consultation {id} while your profile is suspended."),
        ),
        (_, ClosedBy::Other, Customer) => {
            msg("Consultation cancelled", format!("Consultation {id} was cancelled. {refund}"))
        }
        (_, ClosedBy::Other, Astrologer) => msg("Consultation cancelled", format!("Consultation {id} was cancelled.")),
    }
}

/// The mode as a person says it ("chat", "video call"); an unknown one says nothing raw.
fn mode_words(raw: &str) -> &'static str {
    match Mode::parse(raw) {
        Some(Mode::Chat) => "chat",
        Some(Mode::Call) => "call",
        Some(Mode::Video) => "video call",
        None => "consultation",
    }
}

/// A time as customers in India read it: `Sun 22 Nov, 6:30 PM IST`.
fn india_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Asia::Kolkata).format("%a %-d %b, %-I:%M %p IST").to_string()
}

/// A provider's reason code (`face_mismatch`) as words, bounded.
fn readable(reason: &str) -> String {
    let words: String = reason.chars().map(|c| if c == '_' || c.is_control() { ' ' } else { c }).take(200).collect();
    words.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn every_notified_type_is_read_and_no_other() {
        let envelope = |kind: &str, version| Envelope {
            id: "e".into(),
            kind: kind.into(),
            version,
            occurred_at: Utc::now(),
            payload: serde_json::json!({}),
        };
        // An empty payload of a type we read is ours but does not parse: Some(Err).
        for kind in NOTIFIED {
            assert!(matches!(Notifiable::from_envelope(&envelope(kind, 1)), Some(Err(_))), "{kind} is not read");
        }
        for other in ["ConsultationStarted", "ReviewCounted", "Unknown"] {
            assert!(Notifiable::from_envelope(&envelope(other, 1)).is_none(), "{other} is read but not listed");
        }
    }

    const CUSTOMER: &str = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    const ASTROLOGER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

    fn id(raw: &str) -> UserId {
        UserId::parse(raw).unwrap()
    }
    fn rupees(r: u64) -> Money {
        Money::from_paise(r * 100)
    }
    fn envelope<P: crate::domain::events::Event>(payload: P) -> Envelope {
        let typed = Envelope::new("ev-1", Utc.with_ymd_and_hms(2026, 11, 22, 13, 0, 0).unwrap(), payload);
        serde_json::from_value(serde_json::to_value(typed).unwrap()).unwrap()
    }

    fn booked() -> ConsultationBooked {
        ConsultationBooked {
            booking_id: "AT00000042".into(),
            customer_id: id(CUSTOMER),
            astrologer_id: id(ASTROLOGER),
            astrologer_name: "Pandit Ravi".into(),
            mode: "video".into(),
            scheduled_at: Utc.with_ymd_and_hms(2026, 11, 22, 13, 0, 0).unwrap(),
            minutes: 15,
            amount: rupees(450),
        }
    }
    fn cancelled_by(status: &str, by: &str, refunded: u64) -> ConsultationCancelled {
        ConsultationCancelled {
            booking_id: "AT00000042".into(),
            customer_id: id(CUSTOMER),
            astrologer_id: id(ASTROLOGER),
            status: status.into(),
            by: by.into(),
            refunded: rupees(refunded),
        }
    }
    fn completed() -> ConsultationCompleted {
        ConsultationCompleted {
            booking_id: "AT00000042".into(),
            customer_id: id(CUSTOMER),
            astrologer_id: id(ASTROLOGER),
            astrologer_name: "Pandit Ravi".into(),
            actual_minutes: 12,
            measured_seconds: 690,
            ended_by: "customer".into(),
            charged: rupees(360),
            refunded: rupees(90),
            astrologer_earnings: rupees(252),
        }
    }
    fn kyc(status: KycStatus, reason: Option<&str>) -> KycStatusChanged {
        KycStatusChanged {
            astrologer_id: id(ASTROLOGER),
            kyc_request_id: "KID1".into(),
            kyc_status: status,
            rejection_reason: reason.map(str::to_owned),
        }
    }

    fn reversed(cause: crate::domain::reversal::Cause, debt: u64) -> WalletReversed {
        WalletReversed {
            user_id: id(CUSTOMER),
            top_up_id: "tu_1".into(),
            cause,
            reference_id: "rfnd_1".into(),
            amount: rupees(500),
            real_cash: rupees(0),
            bonus_cash: rupees(0),
            debt: rupees(debt),
        }
    }

    /// Every event we notify about, in every status it can carry.
    fn every_event() -> Vec<Notifiable> {
        let mut events = vec![
            Notifiable::Welcome(UserRegistered {
                user_id: id(CUSTOMER),
                user_type: UserType::User,
                first_name: "Asha".into(),
            }),
            Notifiable::Welcome(UserRegistered {
                user_id: id(ASTROLOGER),
                user_type: UserType::Astrologer,
                first_name: "Ravi".into(),
            }),
            Notifiable::WalletCredited(WalletCredited {
                user_id: id(CUSTOMER),
                top_up_id: "tu_1".into(),
                amount: rupees(500),
                bonus: rupees(100),
                real_cash: rupees(500),
                bonus_cash: rupees(100),
                invoice_number: "AK2627-0-000001".into(),
            }),
            Notifiable::Booked(booked()),
            Notifiable::Completed(completed()),
            Notifiable::Reviewed(ReviewSubmitted {
                booking_id: "AT00000042".into(),
                customer_id: id(CUSTOMER),
                astrologer_id: id(ASTROLOGER),
                rating: 5,
                verified: true,
                public: true,
            }),
            Notifiable::Unlocked(unlocked(3, None, 23)),
            Notifiable::Unlocked(unlocked(0, Some(rust_decimal::Decimal::new(1050, 2)), 1)),
        ];
        for status in KycStatus::ALL {
            events.push(Notifiable::Kyc(kyc(*status, Some("face_mismatch"))));
        }
        for cause in crate::domain::reversal::Cause::ALL {
            for debt in [0, 250] {
                events.push(Notifiable::Reversed(reversed(*cause, debt)));
            }
        }
        for status in ConsultationStatus::ALL {
            for by in ["customer", "astrologer", "staff", "system", "someone_else"] {
                events.push(Notifiable::Cancelled(cancelled_by(status.as_str(), by, 100)));
            }
        }
        events
    }

    #[test]
    fn each_event_reaches_the_right_people() {
        let customer = (id(CUSTOMER), Recipient::Customer);
        let astrologer = (id(ASTROLOGER), Recipient::Astrologer);
        let both = vec![customer.clone(), astrologer.clone()];
        let cases: Vec<(Notifiable, Vec<(UserId, Recipient)>)> = vec![
            (every_event()[0].clone(), vec![customer.clone()]),
            (every_event()[1].clone(), vec![astrologer.clone()]),
            (every_event()[2].clone(), vec![customer.clone()]),
            (Notifiable::Booked(booked()), both.clone()),
            (Notifiable::Cancelled(cancelled_by("no_show", "system", 450)), both.clone()),
            (Notifiable::Cancelled(cancelled_by("cancelled", "customer", 0)), both.clone()),
            (Notifiable::Cancelled(cancelled_by("declined", "astrologer", 450)), both.clone()),
            (Notifiable::Cancelled(cancelled_by("expired", "system", 450)), both.clone()),
            (Notifiable::Completed(completed()), both),
            (every_event()[5].clone(), vec![astrologer.clone()]),
            (Notifiable::Kyc(kyc(KycStatus::Completed, None)), vec![astrologer]),
            (Notifiable::Reversed(reversed(crate::domain::reversal::Cause::Refund, 0)), vec![customer.clone()]),
        ];
        for (event, expected) in cases {
            assert_eq!(event.recipients(), expected, "{event:?}");
        }
    }

    #[test]
    fn the_texts_people_read() {
        let en = |e: &Notifiable, to| message(e, to, Language::English);
        use Recipient::{Astrologer, Customer};
        let cases: Vec<(Notifiable, Recipient, &str, &str)> = vec![
            (
                Notifiable::Kyc(kyc(KycStatus::InProgress, None)),
                Astrologer,
                "KYC under review",
                "Your video KYC is with our verification partner. We will tell you as soon as it is decided.",
            ),
            (
                Notifiable::Kyc(kyc(KycStatus::Rejected, Some("face_mismatch"))),
                Astrologer,
                "KYC needs another try",
                "Your KYC was not approved (reason: face mismatch). You can start KYC again.",
            ),
            (
                Notifiable::Booked(booked()),
                Customer,
                "Consultation booked",
                "Your 15-minute video call with Pandit Ravi is booked for Sun 22 Nov, 6:30 PM IST. ₹450.00 is held from your wallet. Booking AT00000042.",
            ),
            (
                Notifiable::Booked(booked()),
                Astrologer,
                "New booking",
                "A customer booked a 15-minute video call with you for Sun 22 Nov, 6:30 PM IST. Booking AT00000042.",
            ),
            (
                Notifiable::Cancelled(cancelled_by("cancelled", "customer", 0)),
                Customer,
                "Consultation cancelled",
                "You cancelled consultation AT00000042. No refund is due under the cancellation policy.",
            ),
            (
                Notifiable::Cancelled(cancelled_by("cancelled", "astrologer", 450)),
                Customer,
                "Consultation cancelled",
                "Your astrologer cancelled consultation AT00000042. ₹450.00 is back in your wallet.",
            ),
            (
                Notifiable::Cancelled(cancelled_by("no_show", "system", 450)),
                Customer,
                "Consultation not held",
                "Consultation AT00000042 was not started in time, so it was closed. ₹450.00 is back in your wallet.",
            ),
            (
                Notifiable::Cancelled(cancelled_by("no_show", "system", 450)),
                Astrologer,
                "Missed consultation",
                "Consultation AT00000042 was not started in time, so it was closed and the customer refunded.",
            ),
            (
                Notifiable::Completed(completed()),
                Customer,
                "How was your consultation?",
                "Your consultation with Pandit Ravi is over: 12 min, ₹360.00 charged. ₹90.00 of the amount held is back in your wallet. Rate it to help others choose.",
            ),
            (
                Notifiable::Reversed(reversed(crate::domain::reversal::Cause::Refund, 250)),
                Customer,
                "Recharge refunded",
                "₹500.00 of a recharge is refunded to your payment method, so it leaves your wallet. Your wallet owes ₹250.00: your next recharge pays it first.",
            ),
            (
                Notifiable::Reversed(reversed(crate::domain::reversal::Cause::Chargeback, 0)),
                Customer,
                "Recharge disputed",
                "Your bank disputed a recharge, so ₹500.00 is taken back from your wallet while the dispute lasts.",
            ),
            (
                Notifiable::Reversed(reversed(crate::domain::reversal::Cause::ChargebackReversed, 0)),
                Customer,
                "Wallet restored",
                "The dispute about your recharge is closed: ₹500.00 is back in your wallet.",
            ),
            (
                Notifiable::Completed(completed()),
                Astrologer,
                "Consultation completed",
                "You earned ₹252.00 for consultation AT00000042 (12 min).",
            ),
        ];
        for (event, to, title, body) in cases {
            assert_eq!(en(&event, to), Message { title: title.into(), body: body.into() }, "{event:?} to {to:?}");
        }
    }

    #[test]
    fn no_raw_status_or_snake_case_word_ever_appears() {
        let snake = regex::Regex::new(r"[A-Za-z0-9]+_[A-Za-z0-9_]+").unwrap();
        let raw_words: Vec<&str> = KycStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(ConsultationStatus::ALL.iter().map(|s| s.as_str()))
            .filter(|w| w.contains('_'))
            .collect();
        for event in every_event() {
            for to in [Recipient::Customer, Recipient::Astrologer] {
                let m = message(&event, to, Language::English);
                for text in [&m.title, &m.body] {
                    assert!(!snake.is_match(text), "{text:?} for {event:?}");
                    assert!(raw_words.iter().all(|w| !text.contains(w)), "{text:?}");
                    assert!(!text.trim().is_empty() && !text.contains("{}"), "{text:?}");
                }
            }
        }
    }

    fn unlocked(free_minutes: u32, bonus_percent: Option<rust_decimal::Decimal>, count: u32) -> OfferUnlocked {
        let metric =
            if bonus_percent.is_some() { MilestoneMetric::Recharges } else { MilestoneMetric::CompletedConsultations };
        OfferUnlocked {
            user_id: id(CUSTOMER),
            offer_id: "o_0123456789ab".into(),
            name: "Loyalty".into(),
            free_minutes,
            bonus_percent,
            milestone: Milestone { metric, count },
        }
    }

    #[test]
    fn an_unlocked_offer_says_what_was_reached_and_what_it_gives() {
        let en = |e: OfferUnlocked| message(&Notifiable::Unlocked(e), Recipient::Customer, Language::English).body;
        assert_eq!(
            en(unlocked(3, None, 23)),
            "You completed your 23rd consultation: Loyalty gives you the first 3 minutes of your next consultation free."
        );
        assert_eq!(
            en(unlocked(0, Some(rust_decimal::Decimal::new(1050, 2)), 1)),
            "You made your first recharge: Loyalty gives you 10.5% extra on your next recharge."
        );
        assert!(
            en(unlocked(1, None, 11))
                .starts_with("You completed your 11th consultation: Loyalty gives you the first minute")
        );
        assert_eq!(Notifiable::Unlocked(unlocked(1, None, 5)).recipients(), vec![(id(CUSTOMER), Recipient::Customer)]);
    }

    #[test]
    fn envelopes_become_events_or_are_ignored() {
        let e = envelope(booked());
        assert_eq!(Notifiable::from_envelope(&e).unwrap().unwrap(), Notifiable::Booked(booked()));
        let mut malformed = e.clone();
        malformed.payload["customer_id"] = serde_json::json!("not a user");
        assert!(Notifiable::from_envelope(&malformed).unwrap().is_err());
        let mut other = e.clone();
        other.kind = "SomethingElse".into();
        assert!(Notifiable::from_envelope(&other).is_none());
        let mut newer = e;
        newer.version = 2;
        assert!(Notifiable::from_envelope(&newer).is_none(), "a version we do not know is not guessed at");
    }
}
