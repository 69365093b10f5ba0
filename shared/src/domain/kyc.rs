//! Astrologer video KYC through Digio: the rules, as plain functions.
//!
//! A KYC *request* (one Digio `KID…`) moves forward only:
//! `in_progress` → `completed` (the astrologer finished, Digio reviews) → one of the
//! terminal states `approved`, `rejected`, `expired`, `failed`. Events arrive late and out of
//! order; [`next_request_status`] ignores anything that would move a request backwards or
//! out of a terminal state.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::status::string_enum;
use crate::domain::user::{KycStatus, ProfileStatus, UserId, VerificationStatus};

/// At most 3 retries after the first attempt.
pub const MAX_ATTEMPTS: u32 = 4;
/// A request not completed within 7 days of initiation expires.
pub const REQUEST_LIFETIME_DAYS: i64 = 7;

/// A request the astrologer completed but Digio has not decided this many days after its
/// expiry expires too, so the astrologer can start again instead of waiting forever (staff
/// can decide it by hand before then: `POST /admin/astrologers/{id}/kyc-decision`).
pub const REVIEW_DEADLINE_DAYS: i64 = 7;

pub fn expiry_for(initiated_at: DateTime<Utc>) -> DateTime<Utc> {
    initiated_at + Duration::days(REQUEST_LIFETIME_DAYS)
}

string_enum!(
    /// The state of one Digio KYC request.
    RequestStatus {
        InProgress => "in_progress",
        /// The astrologer finished the steps; Digio has not decided yet.
        Completed => "completed",
        Approved => "approved",
        Rejected => "rejected",
        Expired => "expired",
        Failed => "failed",
    }
);

impl RequestStatus {
    pub fn is_terminal(self) -> bool {
        self.rank() == 2
    }

    fn rank(self) -> u8 {
        match self {
            RequestStatus::InProgress => 0,
            RequestStatus::Completed => 1,
            _ => 2,
        }
    }

    /// What the astrologer's `kyc_status` becomes when their current request reaches this.
    pub fn astrologer_kyc_status(self) -> KycStatus {
        match self {
            RequestStatus::InProgress | RequestStatus::Completed => KycStatus::InProgress,
            RequestStatus::Approved => KycStatus::Completed,
            RequestStatus::Rejected => KycStatus::Rejected,
            RequestStatus::Expired => KycStatus::Expired,
            RequestStatus::Failed => KycStatus::Failed,
        }
    }
}

/// `Some(next)` when an event saying `incoming` moves a request at `current` forward;
/// `None` when it is stale, repeated, or the request is already terminal.
pub fn next_request_status(current: RequestStatus, incoming: RequestStatus) -> Option<RequestStatus> {
    (!current.is_terminal() && incoming.rank() > current.rank()).then_some(incoming)
}

/// A Digio event name, matched without regard to case or separator style:
/// `KYC_REQUEST_APPROVED`, `kyc.request.approved` and `Kyc-Request-Approved` are one event.
pub fn normalize_event_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace(['_', '-', ' ', '.'], ".")
}

/// The request status an event reports, or `None` for events we only record.
pub fn status_for_event(name: &str) -> Option<RequestStatus> {
    match normalize_event_name(name).as_str() {
        "kyc.request.completed" | "kyc.request.approval.pending" => Some(RequestStatus::Completed),
        "kyc.request.approved" | "kyc.request.auto.approved" => Some(RequestStatus::Approved),
        "kyc.request.rejected" => Some(RequestStatus::Rejected),
        "kyc.request.expired" => Some(RequestStatus::Expired),
        "kyc.request.failed" => Some(RequestStatus::Failed),
        _ => None,
    }
}

/// Whether an astrologer may start a new KYC request, given where they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartDecision {
    /// Create a new Digio request; this will be attempt number `attempt`.
    Create {
        attempt: u32,
    },
    /// A live request exists: hand it out again.
    ReturnLive,
    AlreadyVerified,
    LimitReached,
}

/// `kyc_status` as stored, with a request past its expiry read as expired (the sweep writes
/// that down later): one still `in_progress` at its expiry, one the astrologer completed but
/// Digio left undecided [`REVIEW_DEADLINE_DAYS`] after it.
pub fn effective_status(
    stored: KycStatus,
    request: Option<RequestStatus>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> KycStatus {
    match (stored, expires_at) {
        (KycStatus::InProgress, Some(expiry)) if expires(request.unwrap_or(RequestStatus::InProgress), expiry, now) => {
            KycStatus::Expired
        }
        _ => stored,
    }
}

/// Whether a request in `status`, expiring at `expires_at`, has expired by `now`.
pub fn expires(status: RequestStatus, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    match status {
        RequestStatus::InProgress => now >= expires_at,
        RequestStatus::Completed => now >= expires_at + Duration::days(REVIEW_DEADLINE_DAYS),
        _ => false,
    }
}

pub fn decide_start(status: KycStatus, attempts_used: u32) -> StartDecision {
    match status {
        KycStatus::InProgress => StartDecision::ReturnLive,
        KycStatus::Completed => StartDecision::AlreadyVerified,
        KycStatus::NotStarted | KycStatus::Failed | KycStatus::Rejected | KycStatus::Expired => {
            if attempts_used >= MAX_ATTEMPTS {
                StartDecision::LimitReached
            } else {
                StartDecision::Create { attempt: attempts_used + 1 }
            }
        }
    }
}

/// Only an approved, KYC-completed, not suspended astrologer can be booked.
pub fn astrologer_bookable(profile: ProfileStatus, kyc: KycStatus, verification: VerificationStatus) -> bool {
    profile == ProfileStatus::Approved && kyc == KycStatus::Completed && verification == VerificationStatus::Approved
}

/// Keeps the last 4 characters: `ABCDE1234F` → `******234F`.
pub fn last4(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| !c.is_whitespace()).collect();
    let keep = chars.len().min(4);
    let masked = chars.len().saturating_sub(keep);
    format!("{}{}", "*".repeat(masked), chars[chars.len() - keep..].iter().collect::<String>())
}

/// Whether `c` starts a PAN-shaped run: 5 letters, 4 digits, 1 letter, in either case.
fn pan_at(c: &[char]) -> bool {
    c.len() >= 10
        && c[..5].iter().all(char::is_ascii_alphabetic)
        && c[5..9].iter().all(char::is_ascii_digit)
        && c[9].is_ascii_alphabetic()
}

/// The digits of the number starting at `c[0]`, with a single space or hyphen allowed between
/// groups (`1234 5678 9012`, `1234-5678-9012-3456`), and how many characters it spans.
fn number_at(c: &[char]) -> (String, usize) {
    let (mut digits, mut end) = (String::new(), 0);
    while end < c.len() {
        if c[end].is_ascii_digit() {
            digits.push(c[end]);
            end += 1;
        } else if matches!(c[end], ' ' | '-') && !digits.is_empty() && c.get(end + 1).is_some_and(char::is_ascii_digit)
        {
            end += 1;
        } else {
            break;
        }
    }
    (digits, end)
}

/// The shortest run of digits read as an identity number: an Aadhaar number has 12, its
/// virtual id (VID) 16; any longer run is masked too, as it may hold one.
const IDENTITY_DIGITS: usize = 12;

/// Free text (a reviewer's remarks, a rejection reason) with every PAN-shaped
/// (`ABCDE1234F`, any case) and Aadhaar- or VID-shaped (12 or more digits, grouped by spaces
/// or hyphens or not) run cut to its last 4 characters: `PAN abcde1234f, Aadhaar 1234 5678
/// 9012` → `PAN ******234f, Aadhaar ********9012`. Everything else is kept as written. Masked
/// text has neither shape, so redacting it again changes nothing.
pub fn redact_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if pan_at(rest) {
            out.push_str(&last4(&rest[..10].iter().collect::<String>()));
            i += 10;
            continue;
        }
        if rest[0].is_ascii_digit() {
            let (digits, end) = number_at(rest);
            if digits.len() >= IDENTITY_DIGITS {
                out.push_str(&last4(&digits));
            } else {
                out.extend(&rest[..end]);
            }
            i += end;
            continue;
        }
        out.push(rest[0]);
        i += 1;
    }
    out
}

const SECRET_KEYS: &[&str] = &["token", "secret", "password", "authorization", "otp"];
/// What Digio reports about the person that the audit does not need at all.
const PERSONAL_KEYS: &[&str] = &["dob", "birth", "address", "father", "care_of", "pincode", "photo", "image"];
const DOCUMENT_NUMBER_KEYS: &[&str] = &["id_number", "document_number", "number", "aadhaar", "pan", "uid"];
const PHONE_KEYS: &[&str] = &["phone", "mobile", "customer_identifier"];

/// A copy of provider data safe to store and log: secrets, tokens, date of birth and address
/// removed, phone numbers masked, and every PAN- or Aadhaar-shaped number, whole value or
/// inside free text ([`redact_text`]), cut to its last 4. By field name whatever the value's
/// type: a numeric `id_number` is still a document number.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(key, v)| (key.clone(), redact_field(key, v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_text(s)),
        other => other.clone(),
    }
}

fn redact_field(key: &str, value: &Value) -> Value {
    let key = key.to_ascii_lowercase();
    let key_is = |words: &[&str]| words.iter().any(|w| key.contains(w));
    let scalar = match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match scalar {
        _ if value.is_null() => Value::Null,
        _ if key_is(SECRET_KEYS) || key_is(PERSONAL_KEYS) => Value::String("[redacted]".into()),
        Some(s) if key_is(DOCUMENT_NUMBER_KEYS) => Value::String(last4(&s)),
        Some(s) if key_is(PHONE_KEYS) => Value::String(crate::domain::phone::mask_phone(&s)),
        _ => redact(value),
    }
}

/// The masked document facts kept on the profile: last 4 of PAN and Aadhaar, name on the
/// document, each step's status, and the liveness result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaskedDocuments {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pan: Option<MaskedDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aadhaar: Option<MaskedDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MaskedDocument {
    pub last4: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Reads what Digio reports in `kyc_request.actions[]` into [`MaskedDocuments`].
pub fn masked_documents(kyc_request: &Value) -> MaskedDocuments {
    let mut out = MaskedDocuments::default();
    let Some(actions) = kyc_request.get("actions").and_then(Value::as_array) else {
        return out;
    };
    for action in actions {
        // Digio's own words, kept as free text: redacted like any other.
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(redact_text);
        let status = text(action.get("status"));
        let details = action.get("details").cloned().unwrap_or(Value::Null);
        for (key, slot) in [("pan", &mut out.pan), ("aadhaar", &mut out.aadhaar)] {
            if let Some(doc) = details.get(key) {
                let number =
                    doc.get("id_number").or_else(|| doc.get("number")).and_then(Value::as_str).unwrap_or_default();
                *slot =
                    Some(MaskedDocument { last4: last4(number), name: text(doc.get("name")), status: status.clone() });
            }
        }
        let liveness = details
            .get("liveness")
            .and_then(|l| l.get("result").or(Some(l)))
            .and_then(Value::as_str)
            .or_else(|| details.get("liveness_result").and_then(Value::as_str));
        if let Some(result) = liveness {
            out.liveness = Some(redact_text(result));
        }
    }
    out
}

/// The event that reports request `request_id` of `astrologer` moving to `next`. A request
/// reaches each status at most once (the store conditions the move on the status read), so
/// the status names the change.
pub fn status_changed_event(
    astrologer: &UserId,
    request_id: &str,
    next: RequestStatus,
    rejection_reason: Option<String>,
    at: chrono::DateTime<chrono::Utc>,
) -> crate::domain::events::Envelope<crate::domain::events::KycStatusChanged> {
    crate::domain::events::Envelope::new(
        format!("kyc-{request_id}-{}", next.as_str()),
        at,
        crate::domain::events::KycStatusChanged {
            astrologer_id: astrologer.clone(),
            kyc_request_id: request_id.to_owned(),
            kyc_status: next.astrologer_kyc_status(),
            rejection_reason,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn requests_only_move_forward() {
        assert_eq!(next_request_status(InProgress, Completed), Some(Completed));
        assert_eq!(next_request_status(InProgress, Approved), Some(Approved));
        assert_eq!(next_request_status(Completed, Approved), Some(Approved));
        assert_eq!(next_request_status(Approved, Completed), None, "a late completed after approved");
        assert_eq!(next_request_status(Approved, Rejected), None, "terminal stays terminal");
        assert_eq!(next_request_status(Rejected, Approved), None);
        assert_eq!(next_request_status(Expired, Approved), None);
        assert_eq!(next_request_status(Completed, Completed), None);
        assert_eq!(next_request_status(InProgress, InProgress), None);
    }

    #[test]
    fn event_names_match_in_any_style() {
        for name in ["KYC_REQUEST_APPROVED", "kyc.request.approved", "Kyc-Request-Approved", " kyc_request.APPROVED "] {
            assert_eq!(status_for_event(name), Some(Approved), "{name}");
        }
        assert_eq!(status_for_event("KYC_REQUEST_REJECTED"), Some(Rejected));
        assert_eq!(status_for_event("kyc.action.completed"), None);
    }

    #[test]
    fn start_rules() {
        assert_eq!(decide_start(KycStatus::NotStarted, 0), StartDecision::Create { attempt: 1 });
        assert_eq!(decide_start(KycStatus::Rejected, 3), StartDecision::Create { attempt: 4 });
        assert_eq!(decide_start(KycStatus::Rejected, 4), StartDecision::LimitReached);
        assert_eq!(decide_start(KycStatus::InProgress, 1), StartDecision::ReturnLive);
        assert_eq!(decide_start(KycStatus::Completed, 1), StartDecision::AlreadyVerified);
        let now = Utc::now();
        let live = Some(InProgress);
        assert_eq!(effective_status(KycStatus::InProgress, live, Some(now), now), KycStatus::Expired);
        assert_eq!(effective_status(KycStatus::InProgress, live, Some(expiry_for(now)), now), KycStatus::InProgress);
        assert_eq!(effective_status(KycStatus::InProgress, Some(Completed), Some(now), now), KycStatus::InProgress);
        // Completed but undecided a week past its expiry: expired, so the astrologer can go on.
        let review_over = now - Duration::days(REVIEW_DEADLINE_DAYS);
        assert_eq!(
            effective_status(KycStatus::InProgress, Some(Completed), Some(review_over), now),
            KycStatus::Expired
        );
        let still_waiting = review_over + Duration::seconds(1);
        assert_eq!(
            effective_status(KycStatus::InProgress, Some(Completed), Some(still_waiting), now),
            KycStatus::InProgress
        );
        assert!(!expires(RequestStatus::Approved, review_over, now));
    }

    #[test]
    fn redaction_keeps_last_four_and_drops_secrets() {
        let raw = json!({
            "customer_identifier": "+919876543210",
            "access_token": { "id": "GWT123" },
            "actions": [{ "details": {
                "pan": { "id_number": "ABCDE1234F", "name": "Asha Rao" },
                "aadhaar": { "id_number": "1234 5678 9012" },
                "note": "ABCDE1234F", "other": "123456789012"
            }}]
        });
        let text = redact(&raw).to_string();
        for secret in ["ABCDE1234F", "ABCDE", "123456789012", "5678", "9876543210", "GWT123"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("234F") && text.contains("9012") && text.contains("Asha Rao"));

        // By field name, whatever the type: numbers, and objects under personal fields.
        let raw = json!({ "aadhaar": { "id_number": 123456789012u64 }, "mobile": 919876543210u64,
            "dob": "1990-01-31", "address": { "line1": "12 MG Road", "pincode": 560001 }, "date_of_birth": 19900131,
            "access_token": ["GWT9"], "status": "approved", "attempts": 2 });
        let text = redact(&raw).to_string();
        for secret in ["123456789012", "5678", "9876543210", "1990", "MG Road", "560001", "GWT9"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("9012") && text.contains("approved") && text.contains(r#""attempts":2"#), "{text}");
    }

    #[test]
    fn free_text_keeps_the_last_four_of_pan_and_aadhaar_shaped_runs() {
        let cases = [
            ("PAN ABCDE1234F does not match", "PAN ******234F does not match"),
            ("pan abcde1234f, lower case", "pan ******234f, lower case"),
            ("Aadhaar 1234 5678 9012.", "Aadhaar ********9012."),
            ("aadhaar:1234-5678-9012", "aadhaar:********9012"),
            ("uid 123456789012 blurred", "uid ********9012 blurred"),
            ("VID 9876 5432 1098 7654 expired", "VID ************7654 expired"),
            ("ref XABCDE1234FY", "ref X******234FY"),
            ("both:ABCDE1234F/123456789012", "both:******234F/********9012"),
            // Not shaped like either: dates, amounts, short numbers, near-PANs.
            ("retry on 2026-11-22 at 10:30, fee 1500", "retry on 2026-11-22 at 10:30, fee 1500"),
            ("ABCD1234F and ABCDE123F and 12345678901", "ABCD1234F and ABCDE123F and 12345678901"),
            ("नाम मेल नहीं खाता ABCDE1234F", "नाम मेल नहीं खाता ******234F"),
            ("", ""),
        ];
        for (raw, redacted) in cases {
            assert_eq!(redact_text(raw), redacted, "{raw}");
        }
    }

    #[test]
    fn redaction_reaches_free_text_inside_provider_data() {
        let raw = json!({ "remarks": "PAN ABCDE1234F, Aadhaar 1234 5678 9012", "created_at": 1764000000000u64 });
        let text = redact(&raw).to_string();
        assert!(!text.contains("ABCDE1234F") && !text.contains("1234 5678"), "{text}");
        assert!(text.contains("******234F") && text.contains("********9012"), "{text}");
        assert!(text.contains("1764000000000"), "numbers outside document fields are kept: {text}");
    }

    /// A PAN: 5 letters, 4 digits, 1 letter, in any case.
    fn pan() -> impl Strategy<Value = String> {
        "[A-Za-z]{5}[0-9]{4}[A-Za-z]"
    }

    /// An Aadhaar number (12 digits) or VID (16), plain or grouped by 4 with spaces or hyphens.
    fn aadhaar() -> impl Strategy<Value = String> {
        (prop_oneof![Just(3usize), Just(4usize)], "[0-9]{16}", prop_oneof![Just(""), Just(" "), Just("-")]).prop_map(
            |(groups, digits, sep)| {
                digits.as_bytes()[..groups * 4]
                    .chunks(4)
                    .map(|g| std::str::from_utf8(g).unwrap())
                    .collect::<Vec<_>>()
                    .join(sep)
            },
        )
    }

    /// Text around a number: anything that does not run on into it (a letter before a PAN, a
    /// digit or separator around a number, would make a longer run).
    fn around() -> impl Strategy<Value = String> {
        "[ .,:;()/A-Za-z\\u{0900}-\\u{097F}]{0,12}"
    }

    proptest! {
        #[test]
        fn no_number_survives_and_its_last_four_do(
            before in around(), after in around(), number in prop_oneof![pan(), aadhaar()]
        ) {
            let text = format!("{before} {number} {after}");
            let redacted = redact_text(&text);
            let plain: String = number.chars().filter(char::is_ascii_alphanumeric).collect();
            let squeezed: String = redacted.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
            prop_assert!(!squeezed.to_ascii_lowercase().contains(&plain[..plain.len() - 4].to_ascii_lowercase()), "{text} -> {redacted}");
            prop_assert!(redacted.contains(&plain[plain.len() - 4..]), "the last 4 are kept: {redacted}");
            prop_assert!(redacted.starts_with(&before) && redacted.ends_with(&after), "the rest is kept: {redacted}");
            prop_assert_eq!(redact_text(&redacted), redacted.clone(), "redacting twice changes nothing");
        }

        #[test]
        fn text_without_such_numbers_is_kept(text in "[ -~\\u{0900}-\\u{097F}]{0,60}") {
            let has_pan = (0..text.len()).any(|i| text.is_char_boundary(i) && pan_at(&text[i..].chars().collect::<Vec<_>>()));
            let digits_run = text.split(|c: char| !(c.is_ascii_digit() || c == ' ' || c == '-')).any(|run| run.chars().filter(char::is_ascii_digit).count() >= IDENTITY_DIGITS);
            prop_assume!(!has_pan && !digits_run);
            prop_assert_eq!(redact_text(&text), text);
        }
    }

    #[test]
    fn masked_documents_from_actions() {
        let req = json!({ "actions": [
            { "type": "digilocker", "status": "approved", "details": { "pan": { "id_number": "ABCDE1234F", "name": "Asha" }, "aadhaar": { "id_number": "123456789012" } } },
            { "type": "selfie", "status": "approved", "details": { "liveness": { "result": "passed" } } }
        ]});
        let docs = masked_documents(&req);
        assert_eq!(docs.pan.unwrap().last4, "******234F");
        assert_eq!(docs.aadhaar.unwrap().last4, "********9012");
        assert_eq!(docs.liveness.as_deref(), Some("passed"));
    }

    #[test]
    fn only_fully_approved_astrologers_are_bookable() {
        use KycStatus as K;
        use ProfileStatus as P;
        use VerificationStatus as V;
        assert!(astrologer_bookable(P::Approved, K::Completed, V::Approved));
        assert!(!astrologer_bookable(P::Suspended, K::Completed, V::Approved));
        assert!(!astrologer_bookable(P::Pending, K::InProgress, V::Pending));
        assert!(!astrologer_bookable(P::Approved, K::Completed, V::Pending));
    }
}
