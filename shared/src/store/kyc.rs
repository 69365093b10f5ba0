//! KYC requests, the astrologer's KYC state, webhook de-duplication and the KYC audit log.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::items::{self, Item, get_str, get_time, opt_str};
use super::keys::{
    ASTROLOGER_SK, GSI1, KYC_OPEN_GSI1PK, KYC_REQUEST_PK_PREFIX, KYC_REQUEST_SK, PROFILE_SK, kyc_audit_pk,
    kyc_request_pk, user_pk,
};
use super::webhooks::seen_event_item;
use super::{Store, StoreError, TxError};
use crate::domain::kyc::{MaskedDocuments, RequestStatus};
use crate::domain::phone::Phone;
use crate::domain::user::{KycStatus, ProfileStatus, UserId, VerificationStatus};
/// How long an initiation may hold the astrologer's KYC before another may try.
const CLAIM_SECONDS: i64 = 30;

/// The astrologer's KYC state plus what initiation needs from the user record.
#[derive(Debug, Clone)]
pub struct AstrologerKyc {
    pub user_id: UserId,
    pub phone: Phone,
    pub name: String,
    pub status: KycStatus,
    pub verification_status: VerificationStatus,
    pub profile_status: ProfileStatus,
    /// Staff suspended them: no KYC can be started.
    pub suspended: bool,
    pub attempts: u32,
    pub request_id: Option<String>,
    /// Where the current request stands (`completed` = awaiting Digio's review).
    pub request_status: Option<RequestStatus>,
    pub reference_id: Option<String>,
    pub access_token: Option<String>,
    pub initiated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    /// Until when another initiation holds the claim.
    pub claimed_until: Option<i64>,
}

/// One Digio request as we track it.
#[derive(Debug, Clone)]
pub struct KycRequestRecord {
    pub request_id: String,
    pub astrologer_id: UserId,
    pub status: RequestStatus,
    pub expires_at: DateTime<Utc>,
    /// A newer request replaced this one: its events are recorded, not applied.
    pub superseded: bool,
}

/// A newly created Digio request, to record.
#[derive(Debug, Clone)]
pub struct StartedRequest {
    pub request_id: String,
    pub reference_id: String,
    pub access_token: Option<String>,
    pub initiated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempt: u32,
}

/// The most event data one audit entry keeps (a Digio KYC event is a few KB).
pub const MAX_AUDIT_DATA_BYTES: usize = 32 * 1024;

/// One KYC audit log entry (seed model `KYC_AUDIT_LOGS`). `data` must already be redacted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KycAuditEntry {
    pub at: DateTime<Utc>,
    pub event_type: String,
    pub event_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kyc_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The staff member who decided by hand (`None`: Digio decided).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<UserId>,
}

impl KycAuditEntry {
    pub fn new(event_type: &str, event_status: &str, kyc_request_id: Option<&str>) -> Self {
        Self {
            at: Utc::now(),
            event_type: event_type.into(),
            event_status: event_status.into(),
            kyc_request_id: kyc_request_id.map(str::to_owned),
            data: None,
            error_message: None,
            ip_address: None,
            user_agent: None,
            verified_by: None,
        }
    }
    pub fn verified_by(mut self, staff: &UserId) -> Self {
        self.verified_by = Some(staff.clone());
        self
    }
    /// The event's (redacted) data, unless it is larger than an audit entry keeps: then its
    /// size only. DynamoDB refuses an item over 400 KB, and a webhook whose audit entry
    /// cannot be written would fail, and be retried, forever.
    pub fn data(mut self, redacted: Value) -> Self {
        let size = redacted.to_string().len();
        self.data = Some(if size > MAX_AUDIT_DATA_BYTES {
            serde_json::json!({ "omitted": "larger than an audit entry keeps", "bytes": size })
        } else {
            redacted
        });
        self
    }
    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.error_message = Some(message.into());
        self
    }
    pub fn client(mut self, ip: Option<&str>, user_agent: Option<&str>) -> Self {
        self.ip_address = ip.map(str::to_owned);
        self.user_agent = user_agent.map(str::to_owned);
        self
    }

    fn item(&self, astrologer: &UserId) -> Item {
        let sk =
            format!("{}#{}", self.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let mut item = items::key(kyc_audit_pk(astrologer), sk);
        item.insert("entity".into(), items::s("kyc_audit"));
        item.insert("created_at".into(), items::time(self.at));
        item.insert("event_type".into(), items::s(&self.event_type));
        item.insert("event_status".into(), items::s(&self.event_status));
        let optional = [
            ("kyc_request_id", self.kyc_request_id.clone()),
            ("data", self.data.as_ref().map(Value::to_string)),
            ("error_message", self.error_message.clone()),
            ("ip_address", self.ip_address.clone()),
            ("user_agent", self.user_agent.clone()),
            ("verified_by", self.verified_by.as_ref().map(|s| s.as_str().to_owned())),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                item.insert(name.into(), items::s(v));
            }
        }
        item
    }
}

/// What applying a provider event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event id was seen before: nothing changed.
    Duplicate,
    /// Recorded; the request's status did not change (stale, unknown or superseded).
    Recorded,
    /// The request (and, if current, the astrologer) moved to this status.
    Changed(RequestStatus),
}

/// An event for one request, to apply at most once.
pub struct KycEvent<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
    pub request: &'a KycRequestRecord,
    /// `None`: record only.
    pub next: Option<RequestStatus>,
    pub rejection_reason: Option<String>,
    pub documents: Option<MaskedDocuments>,
    pub audit: Vec<KycAuditEntry>,
    /// A decision staff made by hand: its staff audit entry, written in the same
    /// transaction, and `verified_by` on the astrologer. `None` for Digio's own events.
    pub staff: Option<&'a crate::domain::staff::AuditEntry>,
    pub now: DateTime<Utc>,
}

fn opt_time(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    item.contains_key(name).then(|| get_time(item, name).ok()).flatten()
}

impl Store {
    /// The astrologer's KYC state and phone, in one Query of the user's partition.
    pub async fn astrologer_kyc(&self, id: &UserId) -> Result<Option<AstrologerKyc>, StoreError> {
        let partition = self.user_partition(id).await?;
        let find = |sk: &str| partition.iter().find(|i| opt_str(i, "SK") == Some(sk));
        let (Some(user), Some(astro)) = (find(PROFILE_SK), find(ASTROLOGER_SK)) else {
            return Ok(None);
        };
        let corrupt = |what: &str| StoreError::Corrupt(format!("astrologer {id}: {what}"));
        Ok(Some(AstrologerKyc {
            user_id: id.clone(),
            phone: Phone::parse(get_str(user, "phone_number")?).map_err(|_| corrupt("phone_number"))?,
            name: format!("{} {}", get_str(user, "first_name")?, get_str(user, "last_name")?),
            profile_status: ProfileStatus::parse(get_str(user, "profile_status")?)
                .ok_or_else(|| corrupt("profile_status"))?,
            suspended: astro.contains_key("suspended"),
            status: KycStatus::parse(get_str(astro, "kyc_status")?).ok_or_else(|| corrupt("kyc_status"))?,
            verification_status: VerificationStatus::parse(get_str(astro, "verification_status")?)
                .ok_or_else(|| corrupt("verification_status"))?,
            attempts: items::get_u64(astro, "kyc_attempts").unwrap_or(0) as u32,
            request_id: opt_str(astro, "kyc_request_id").map(str::to_owned),
            request_status: opt_str(astro, "kyc_request_status").and_then(RequestStatus::parse),
            reference_id: opt_str(astro, "kyc_reference_id").map(str::to_owned),
            access_token: opt_str(astro, "kyc_access_token").map(str::to_owned),
            initiated_at: opt_time(astro, "kyc_initiated_at"),
            expires_at: opt_time(astro, "kyc_expires_at"),
            rejection_reason: opt_str(astro, "kyc_rejection_reason").map(str::to_owned),
            verified_at: opt_time(astro, "verified_at"),
            claimed_until: astro.get("kyc_claimed_until").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()),
        }))
    }

    /// Claims the right to create a request, if nothing changed since `seen` and nobody else
    /// holds the claim. Two racing initiations: exactly one gets `true`.
    pub async fn claim_kyc_start(
        &self,
        seen: &AstrologerKyc,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_if(
            items::key(user_pk(&seen.user_id), ASTROLOGER_SK),
            "SET kyc_claim = :token, kyc_claimed_until = :until",
            "kyc_status = :status AND kyc_attempts = :attempts \
             AND (attribute_not_exists(kyc_claimed_until) OR kyc_claimed_until < :now)",
            vec![
                (":token", items::s(token)),
                (":until", items::n(now.timestamp() + CLAIM_SECONDS)),
                (":status", items::s(seen.status.as_str())),
                (":attempts", items::n(seen.attempts)),
                (":now", items::n(now.timestamp())),
            ],
        )
        .await
    }

    /// Records a created request and releases the claim, all at once: the astrologer moves
    /// to `in_progress`, the previous request (if any) is superseded, the audit is written.
    pub async fn record_kyc_started(
        &self,
        seen: &AstrologerKyc,
        token: &str,
        started: &StartedRequest,
        audit: &[KycAuditEntry],
    ) -> Result<(), StoreError> {
        let mut tx = self.tx();
        tx.update(
            "astrologer",
            items::key(user_pk(&seen.user_id), ASTROLOGER_SK),
            "SET kyc_status = :in_progress, kyc_request_status = :in_progress, kyc_request_id = :kid, \
             kyc_reference_id = :ref, kyc_initiated_at = :at, kyc_expires_at = :exp, kyc_attempts = :attempt, \
             kyc_access_token = :token_value, updated_at = :at \
             REMOVE kyc_claim, kyc_claimed_until, kyc_rejection_reason",
            "kyc_claim = :claim",
            vec![
                (":in_progress", items::s(KycStatus::InProgress.as_str())),
                (":kid", items::s(&started.request_id)),
                (":ref", items::s(&started.reference_id)),
                (":at", items::time(started.initiated_at)),
                (":exp", items::time(started.expires_at)),
                (":attempt", items::n(started.attempt)),
                (":token_value", items::s(started.access_token.clone().unwrap_or_default())),
                (":claim", items::s(token)),
            ],
        );

        let mut request = items::key(kyc_request_pk(&started.request_id), KYC_REQUEST_SK);
        request.insert("entity".into(), items::s("kyc_request"));
        request.insert("astrologer_id".into(), items::s(seen.user_id.as_str()));
        request.insert("reference_id".into(), items::s(&started.reference_id));
        request.insert("status".into(), items::s(RequestStatus::InProgress.as_str()));
        request.insert("initiated_at".into(), items::time(started.initiated_at));
        request.insert("expires_at_time".into(), items::time(started.expires_at));
        request.insert("GSI1PK".into(), items::s(KYC_OPEN_GSI1PK));
        request.insert("GSI1SK".into(), items::time(started.expires_at));
        tx.put_new("kyc_request", request);

        if let Some(previous) = &seen.request_id {
            tx.update(
                "superseded_request",
                items::key(kyc_request_pk(previous), KYC_REQUEST_SK),
                "SET superseded = :yes REMOVE GSI1PK, GSI1SK",
                "attribute_exists(PK)",
                vec![(":yes", AttributeValue::Bool(true))],
            );
        }
        for a in audit {
            tx.put_new("audit", a.item(&seen.user_id));
        }
        Ok(self.commit(tx).await?)
    }

    /// Gives the claim back after a failed initiation, with the failure in the audit log;
    /// the attempt is not counted.
    pub async fn release_kyc_claim(
        &self,
        astrologer: &UserId,
        token: &str,
        audit: &KycAuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.tx();
        tx.update(
            "astrologer",
            items::key(user_pk(astrologer), ASTROLOGER_SK),
            "REMOVE kyc_claim, kyc_claimed_until",
            "kyc_claim = :claim",
            vec![(":claim", items::s(token))],
        )
        .put_new("audit", audit.item(astrologer));
        Ok(self.commit(tx).await?)
    }

    pub async fn kyc_request(&self, request_id: &str) -> Result<Option<KycRequestRecord>, StoreError> {
        self.get(items::key(kyc_request_pk(request_id), KYC_REQUEST_SK)).await?.as_ref().map(read_request).transpose()
    }

    /// Open requests whose expiry has passed (GSI1, so eventually consistent: the apply
    /// step re-checks the status in its condition).
    pub async fn kyc_requests_expired_by(&self, now: DateTime<Utc>) -> Result<Vec<KycRequestRecord>, StoreError> {
        let due = self.index_items_upto(GSI1, ("GSI1PK", KYC_OPEN_GSI1PK), ("GSI1SK", items::time_text(now))).await?;
        due.iter().map(read_request).collect()
    }

    /// Applies a provider event at most once: de-duplication record, audit entries, the
    /// status change of the request, the astrologer and (on approval) the user, and the
    /// change's event, in one transaction.
    pub async fn apply_kyc_event(&self, event: KycEvent<'_>) -> Result<Applied, StoreError> {
        let request = event.request;
        let astrologer = &request.astrologer_id;
        let now = items::time(event.now);
        let mut dedup = seen_event_item(event.source, event.event_id, event.now);
        dedup.insert("kyc_request_id".into(), items::s(&request.request_id));
        let mut tx = self.tx();
        tx.put_new("webhook_event", dedup);

        let next = event.next.filter(|_| !request.superseded);
        if let Some(next) = next {
            // Out of the open-requests index once decided; a completed request stays in it,
            // due when Digio's review is overdue (`kyc::expires`).
            let mut values = vec![
                (":next", items::s(next.as_str())),
                (":current", items::s(request.status.as_str())),
                (":now", now.clone()),
            ];
            let expression = if next == RequestStatus::Completed {
                let review_due = request.expires_at + chrono::Duration::days(crate::domain::kyc::REVIEW_DEADLINE_DAYS);
                values.push((":due", items::time(review_due)));
                "SET #status = :next, updated_at = :now, GSI1SK = :due"
            } else {
                "SET #status = :next, updated_at = :now REMOVE GSI1PK, GSI1SK"
            };
            tx.update(
                "kyc_request",
                items::key(kyc_request_pk(&request.request_id), KYC_REQUEST_SK),
                expression,
                "#status = :current",
                values,
            );

            let mut set = vec!["kyc_status = :kyc", "kyc_request_status = :next", "updated_at = :now"];
            let mut values = vec![
                (":next", items::s(next.as_str())),
                (":kyc", items::s(next.astrologer_kyc_status().as_str())),
                (":now", now.clone()),
                (":kid", items::s(&request.request_id)),
            ];
            if next == RequestStatus::Approved {
                // Approval lists the astrologer in the catalogue (shown once a profile is saved),
                // unless staff suspended them: then `CATALOGUE` takes the `suspended` value, a
                // partition no catalogue query reads, and reinstating lists them. One
                // expression, so a suspension racing the approval still wins.
                set.extend([
                    "verification_status = :approved",
                    "verified_at = :now",
                    "kyc_completed_at = :now",
                    "CATALOGUE = if_not_exists(suspended, :listed)",
                ]);
                values.push((":approved", items::s(VerificationStatus::Approved.as_str())));
                values.push((":listed", items::s(super::keys::LISTED)));
            }
            // Whoever decided (Digio or staff) wrote free text: no PAN or Aadhaar number in it
            // is stored or put in the event.
            let reason = event.rejection_reason.as_deref().map(crate::domain::kyc::redact_text);
            if let Some(reason) = &reason {
                set.push("kyc_rejection_reason = :reason");
                values.push((":reason", items::s(reason)));
            }
            if let Some(staff) = event.staff {
                set.push("verified_by = :staff");
                values.push((":staff", items::s(staff.staff_id.as_str())));
            }
            if let Some(docs) = &event.documents {
                set.push("kyc_documents = :docs");
                values.push((":docs", items::s(serde_json::to_string(docs).unwrap_or_default())));
            }
            tx.update(
                "astrologer",
                items::key(user_pk(astrologer), ASTROLOGER_SK),
                &format!("SET {}", set.join(", ")),
                "kyc_request_id = :kid",
                values,
            );

            if next == RequestStatus::Approved {
                tx.update(
                    "user",
                    items::key(user_pk(astrologer), PROFILE_SK),
                    // A suspension stays visible: the user item carries `suspended` while it lasts.
                    "SET profile_status = if_not_exists(suspended, :approved), updated_at = :now",
                    "attribute_exists(PK)",
                    vec![(":approved", items::s(ProfileStatus::Approved.as_str())), (":now", now.clone())],
                );
            }
            tx.outbox(&crate::domain::kyc::status_changed_event(
                astrologer,
                &request.request_id,
                next,
                reason,
                event.now,
            ));
        }
        for a in &event.audit {
            tx.put_new("audit", a.item(astrologer));
        }
        if let Some(staff) = event.staff {
            tx.staff_audit(staff);
        }

        match self.commit(tx).await {
            Ok(()) => Ok(next.map_or(Applied::Recorded, Applied::Changed)),
            Err(TxError::Cancelled(c)) if c.failed("webhook_event") => Ok(Applied::Duplicate),
            Err(e) => Err(StoreError::from(e)),
        }
    }

    /// Records an event that names no request we know (nothing else to change).
    pub async fn record_unknown_kyc_event(
        &self,
        source: &str,
        event_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut dedup = seen_event_item(source, event_id, now);
        dedup.insert("outcome".into(), items::s("unknown_request"));
        self.put_once(dedup).await
    }
}

fn read_request(item: &Item) -> Result<KycRequestRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("kyc request: {what}"));
    Ok(KycRequestRecord {
        request_id: get_str(item, super::keys::PK)?.trim_start_matches(KYC_REQUEST_PK_PREFIX).to_owned(),
        astrologer_id: UserId::parse(get_str(item, "astrologer_id")?).map_err(|_| corrupt("astrologer_id"))?,
        status: RequestStatus::parse(get_str(item, "status")?).ok_or_else(|| corrupt("status"))?,
        expires_at: get_time(item, "expires_at_time")?,
        superseded: item.get("superseded").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
    })
}
