//! Every key of the table, built in one place (the table of items is in the module doc of
//! [`super`]). Outside identifiers are bounded before they get here (see [`bounded_id`]).

use crate::domain::phone::Phone;
use crate::domain::user::UserId;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";

/// The longest identifier from outside (a path parameter, a provider's id) that may go into
/// a key; every id we hand out is far shorter.
pub const MAX_ID_LEN: usize = 128;

/// Whether an identifier from outside (a path parameter, a provider's id) may become part of
/// a key: DynamoDB refuses partition keys over 2,048 bytes (moto does not), and our ids are
/// short ASCII.
pub fn bounded_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
}

// ---- a user's partition: `GET /me` reads it in one Query
pub fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}
pub const PROFILE_SK: &str = "PROFILE";
pub const WALLET_SK: &str = "WALLET";
pub const ASTROLOGER_SK: &str = "ASTROLOGER";

pub fn phone_pk(phone: &Phone) -> String {
    format!("PHONE#{}", phone.e164())
}
pub const PHONE_SK: &str = "PHONE";

// ---- the catalogue: three sparse GSIs over astrologer items. An item is in them while it
// has `CATALOGUE` (set on KYC approval, removed on suspension) and the sort attribute (set
// when the profile is saved): one attribute lists or unlists an astrologer everywhere.
pub const CATALOGUE: &str = "CATALOGUE";
pub const LISTED: &str = "LISTED";
pub const CATALOGUE_BY_PRICE: (&str, &str) = ("CatalogueByPrice", "CAT_PRICE");
pub const CATALOGUE_BY_RATING: (&str, &str) = ("CatalogueByRating", "CAT_RATING");
pub const CATALOGUE_BY_EXPERIENCE: (&str, &str) = ("CatalogueByExperience", "CAT_EXPERIENCE");
/// Rate in paise, zero-padded, so text order is price order; the id breaks ties.
pub fn price_sort_key(rate: crate::Money, id: &UserId) -> String {
    format!("{:012}#{id}", rate.paise())
}
/// Average in hundredths, then the number of reviews, so more reviews win a tie.
pub fn rating_sort_key(average_hundredths: u32, count: u64, id: &UserId) -> String {
    format!("{average_hundredths:03}#{count:010}#{id}")
}
pub fn experience_sort_key(years: u32, id: &UserId) -> String {
    format!("{years:03}#{id}")
}

// ---- SMS send counters (rate limits), one item per counter and window, TTL
pub fn sms_counter_pk(counter: &crate::domain::sms::SmsCounter) -> String {
    format!("SMSLIMIT#{}", counter.key_part())
}
pub fn sms_window_sk(window_start: i64) -> String {
    format!("WINDOW#{window_start}")
}

// ---- the wallet's ledger
pub fn ledger_pk(user: &UserId) -> String {
    format!("LEDGER#{user}")
}
pub const LEDGER_SK_PREFIX: &str = "TXN#";
/// Numbered by the wallet version the posting produced, then the entry's place in it, so
/// key order is posting order whatever the clocks say.
pub fn ledger_sk(sequence: u64, index: u32) -> String {
    format!("{LEDGER_SK_PREFIX}{sequence:012}#{index:02}")
}

/// An astrologer's earnings: a wallet of its own (real cash only) and its ledger, apart from
/// the customer wallet every user has.
pub fn earnings_pk(astrologer: &UserId) -> String {
    format!("EARNINGS#{astrologer}")
}
pub fn earnings_ledger_pk(astrologer: &UserId) -> String {
    format!("EARNLEDGER#{astrologer}")
}

// ---- consultations
pub fn consultation_pk(booking_id: &str) -> String {
    format!("CONSULTATION#{booking_id}")
}
pub const CONSULTATION_SK: &str = "CONSULTATION";
/// GSI1: a customer's consultations, newest first.
pub fn customer_consultations_gsi1pk(customer: &UserId) -> String {
    format!("CUSTCONS#{customer}")
}
/// GSI2: an astrologer's consultations, by scheduled time.
pub const GSI2: &str = "GSI2";
pub fn astrologer_consultations_gsi2pk(astrologer: &UserId) -> String {
    format!("ASTROCONS#{astrologer}")
}
/// `ConsultationsDue`: open consultations by when the sweep must look at them, for the
/// sweep (sparse: the attributes go when they close): `SCHEDULED` by start time while nobody
/// has started them (no-shows), `IN_PROGRESS` by booked end once started (overruns).
pub const CONSULTATIONS_DUE: &str = "ConsultationsDue";
pub const DUE_PK: &str = "DUE_PK";
pub const DUE_AT: &str = "DUE_AT";
pub const DUE_SCHEDULED: &str = "SCHEDULED";
pub const DUE_RINGING: &str = "RINGING";
pub const DUE_IN_PROGRESS: &str = "IN_PROGRESS";
/// A promo code, and one customer's uses of it (`USAGE#{sub}`) in the same partition.
pub fn promo_code_pk(code: &str) -> String {
    format!("PROMO#{code}")
}
pub const PROMO_CODE_SK: &str = "PROMO";
pub fn promo_usage_sk(user: &UserId) -> String {
    format!("USAGE#{user}")
}

// ---- in-app notifications
pub fn inbox_pk(user: &UserId) -> String {
    format!("INBOX#{user}")
}
pub fn notification_sk(occurred_at: &str, event_id: &str) -> String {
    format!("NOTIF#{occurred_at}#{event_id}")
}

// ---- KYC
pub fn kyc_request_pk(request_id: &str) -> String {
    format!("KYCREQ#{request_id}")
}
pub const KYC_REQUEST_SK: &str = "KYCREQ";
pub const KYC_REQUEST_PK_PREFIX: &str = "KYCREQ#";
/// GSI1 partition of requests still open, sorted by expiry, for the expiry sweep.
pub const KYC_OPEN_GSI1PK: &str = "KYC_OPEN";
pub fn kyc_audit_pk(astrologer: &UserId) -> String {
    format!("KYCAUDIT#{astrologer}")
}

// ---- provider webhooks seen (de-duplication, TTL)
pub fn webhook_event_pk(provider: &str, event_id: &str) -> String {
    format!("WEBHOOK#{provider}#{event_id}")
}
pub const WEBHOOK_EVENT_SK: &str = "WEBHOOK";

// ---- top-ups, invoices, promotion rules
pub fn topup_pk(id: &str) -> String {
    format!("TOPUP#{id}")
}
pub const TOPUP_SK: &str = "TOPUP";
pub const INVOICE_SK: &str = "INVOICE";
/// GSI1 key that finds a top-up by its Razorpay order id (webhooks only carry that).
pub fn razorpay_order_gsi1pk(order_id: &str) -> String {
    format!("RZP_ORDER#{order_id}")
}
/// GSI2 partition of top-ups not yet credited (pending, or failed by an attempt), by creation
/// time (`GSI2SK`), for the reconciliation; they leave it when credited or given up.
pub const OPEN_TOPUPS_GSI2PK: &str = "TOPUP_OPEN";
/// GSI1 partition of a financial year's invoices, sorted by number, for the accountants.
pub fn invoices_gsi1pk(financial_year: &str) -> String {
    format!("INVOICES#{financial_year}")
}
pub fn invoice_counter_pk(financial_year: &str, series: u8) -> String {
    format!("COUNTER#INVOICE#{financial_year}#{series:X}")
}
pub const COUNTER_SK: &str = "COUNTER";
/// A Razorpay refund applied to a wallet (each once), and a dispute's stage and what it holds.
pub fn refund_pk(refund_id: &str) -> String {
    format!("RZP_REFUND#{refund_id}")
}
pub fn dispute_pk(dispute_id: &str) -> String {
    format!("RZP_DISPUTE#{dispute_id}")
}
pub const REVERSAL_SK: &str = "REVERSAL";
pub const PROMO_RULES_PK: &str = "PROMO_RULES";
/// A customer's top-ups not yet credited nor given up (a String Set), bounded at creation.
pub fn open_topups_pk(user: &UserId) -> String {
    format!("OPEN_TOPUPS#{user}")
}
pub const OPEN_TOPUPS_SK: &str = "OPEN_TOPUPS";
/// The platform's ledger of recharge losses: money a refund or chargeback took back after it
/// was spent (paid out as earnings and the platform's share), owed by the customer's wallet.
pub const PLATFORM_LOSSES_PK: &str = "PLATFORM#RECHARGE_LOSSES";
pub fn promo_rule_sk(id: &str) -> String {
    format!("RULE#{id}")
}

// ---- operations staff
/// GSI1 partition of every promo code, by code, for staff to list them with their usage.
pub const PROMO_CODES_GSI1PK: &str = "PROMO_CODES";
/// The promotion rules' version: every staff create or deactivation of a rule conditions on
/// it and bumps it, so two racing changes cannot both pass the overlap check.
pub const PROMO_RULES_SET_SK: &str = "SET";
/// Astrologer attribute present while suspended; its value stands in for `CATALOGUE` when a
/// KYC approval lands during a suspension (see `Store::apply_kyc_event`).
pub const SUSPENDED: &str = "SUSPENDED";
/// A staff audit entry: written once, by its own id, in the change's transaction.
pub fn staff_audit_pk(audit_id: &str) -> String {
    format!("STAFFAUDIT#{audit_id}")
}
pub const STAFF_AUDIT_SK: &str = "STAFFAUDIT";
/// GSI1 partition of the staff audit log, by time.
pub const STAFF_AUDIT_GSI1PK: &str = "STAFF_AUDIT";

// ---- idempotency records and the outbox
pub fn idempotency_pk(user: &UserId, key: &str) -> String {
    format!("IDEMPOTENCY#{user}#{key}")
}
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
pub const OUTBOX_SK: &str = "OUTBOX";
pub fn outbox_pk(event_id: &str) -> String {
    format!("OUTBOX#{event_id}")
}

// ---- the inbox's unread counter and read-all watermark, and push devices (issue 10)
/// Sorts after every `NOTIF#` key, so a newest-first Query of an inbox meets it first.
pub const INBOX_COUNTER_SK: &str = "UNREAD";
pub fn devices_pk(user: &UserId) -> String {
    format!("DEVICES#{user}")
}
pub fn device_sk(platform: &str, token: &str) -> String {
    format!("DEVICE#{platform}#{token}")
}
pub const DEVICE_SK_PREFIX: &str = "DEVICE#";
/// The user's device set: its version orders their registrations (the bound on devices).
pub const DEVICES_SET_SK: &str = "SET";
/// Who a push token belongs to: one user at a time.
pub fn device_owner_pk(platform: &str, token: &str) -> String {
    format!("DEVICETOKEN#{platform}#{token}")
}
pub const DEVICE_OWNER_SK: &str = "OWNER";
// ---- reviews and the rating aggregate
/// One review per consultation: keyed by the booking id, so a second is refused by condition.
pub fn review_pk(booking_id: &str) -> String {
    format!("REVIEW#{booking_id}")
}
pub const REVIEW_SK: &str = "REVIEW";
/// GSI1: an astrologer's public reviews, newest first (`GSI1SK` = created_at#booking id).
pub fn astrologer_reviews_gsi1pk(astrologer: &UserId) -> String {
    format!("ASTROREVIEWS#{astrologer}")
}
/// The rating consumer's record that a review is in the astrologer's aggregate.
pub fn rating_counted_pk(booking_id: &str) -> String {
    format!("RATING_COUNTED#{booking_id}")
}
pub const RATING_COUNTED_SK: &str = "RATING_COUNTED";

// ---- live sessions: WebSocket connections and chat (issue 29)
/// A user's open WebSocket connections (the items expire with API Gateway's 2-hour limit).
pub fn connections_pk(user: &UserId) -> String {
    format!("CONNS#{user}")
}
pub fn connection_sk(connection_id: &str) -> String {
    format!("CONN#{connection_id}")
}
/// API Gateway's connection ids are about 16 characters; anything longer is not one.
pub const MAX_CONNECTION_ID_LEN: usize = 64;
/// A consultation's chat: its messages in time order, and the senders' ids seen.
pub fn chat_pk(booking_id: &str) -> String {
    format!("CHAT#{booking_id}")
}
pub const CHAT_MESSAGE_SK_PREFIX: &str = "MSG#";
pub fn chat_message_sk(sent_at: &str, message_id: &str) -> String {
    format!("{CHAT_MESSAGE_SK_PREFIX}{sent_at}#{message_id}")
}
pub fn chat_client_id_sk(side: &str, client_id: &str) -> String {
    format!("CLIENTMSG#{side}#{client_id}")
}
/// An astrologer's saved replies: one item, read and replaced whole.
pub fn saved_replies_pk(astrologer: &UserId) -> String {
    format!("SAVEDREPLIES#{astrologer}")
}
pub const SAVED_REPLIES_SK: &str = "SAVEDREPLIES";

// ---- offers (issue 33): definitions with their counters, reservations, each customer's
// progress, the platform's promotions ledger
pub fn offer_pk(offer_id: &str) -> String {
    format!("OFFER#{offer_id}")
}
pub const OFFER_SK: &str = "OFFER";
/// A booking's reservation of an offer, in the offer's partition.
pub fn offer_reservation_sk(booking_id: &str) -> String {
    format!("RESERVATION#{booking_id}")
}
/// GSI1 partition of every offer, by creation.
pub const OFFERS_GSI1PK: &str = "OFFERS";
/// A customer's behaviour and the offers they hold (`crate::domain::offer::CustomerProgress`).
pub fn progress_pk(user: &UserId) -> String {
    format!("PROGRESS#{user}")
}
pub const PROGRESS_SK: &str = "PROGRESS";
/// An event the progress consumer counted (de-duplication, TTL), beside the progress.
pub fn progress_event_sk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}
/// The attribute of the progress item counting a customer's uses of one offer.
pub fn offer_taken_attribute(offer_id: &str) -> String {
    format!("taken_{offer_id}")
}
/// The platform's promotions ledger: what it paid astrologers for free minutes, one entry
/// per promotional consultation (`SK` the booking id).
pub const PROMOTIONS_PK: &str = "PLATFORM#PROMOTIONS";
/// The segment thresholds staff set (`crate::domain::offer::SegmentThresholds`).
pub const OFFER_SETTINGS_PK: &str = "OFFER_SETTINGS";
pub const SEGMENTS_SK: &str = "SEGMENTS";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys_sort_in_posting_order() {
        let mut keys = vec![ledger_sk(10, 1), ledger_sk(9, 2), ledger_sk(9, 1), ledger_sk(100, 1)];
        keys.sort();
        assert_eq!(keys, [ledger_sk(9, 1), ledger_sk(9, 2), ledger_sk(10, 1), ledger_sk(100, 1)]);
    }

    #[test]
    fn catalogue_keys_sort_as_their_values() {
        let id = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let rate = |p| price_sort_key(crate::Money::from_paise(p), &id);
        assert!(rate(999) < rate(1000) && rate(1000) < rate(100_000));
        assert!(rating_sort_key(450, 99, &id) < rating_sort_key(450, 100, &id));
        assert!(rating_sort_key(450, 100, &id) < rating_sort_key(500, 1, &id));
        assert!(experience_sort_key(9, &id) < experience_sort_key(10, &id));
    }

    #[test]
    fn outside_ids_are_bounded() {
        assert!(bounded_id("tu_0123abc") && bounded_id("order_Abc.1:2-3"));
        for bad in ["", "a b", "x#y", "é", &"a".repeat(129)] {
            assert!(!bounded_id(bad), "{bad:?}");
        }
    }
}
