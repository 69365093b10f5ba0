//! Scheduled sweep: a KYC request not completed 7 days after initiation becomes `expired`,
//! so the astrologer can start again (within the retry limit) without anyone stepping in; so
//! does one completed but left undecided by Digio a week after that (it stays in the open
//! index until then, so the sweep sees it again each hour).
//!
//! Idempotent: each request's expiry is applied under the event id `expiry`, once; a request
//! that reached a terminal state in the meantime is left alone.

use chrono::Utc;
use serde_json::{Value, json};
use shared::domain::kyc::{self, RequestStatus};
use shared::store::{Applied, KycAuditEntry, KycEvent, StoreError};

pub use shared::app::StoreApp as App;

/// Handles the EventBridge schedule event (its content is not needed) and reports counts.
pub async fn handle(app: &App, _event: Value) -> Result<Value, StoreError> {
    let now = Utc::now();
    let due = app.store.kyc_requests_expired_by(now).await?;
    let (mut expired, mut skipped, mut failed) = (0, 0, 0);
    for request in &due {
        // A request completed by the astrologer and awaiting Digio's review gets a week more.
        let next = kyc::expires(request.status, request.expires_at, now).then_some(RequestStatus::Expired);
        let audit = vec![KycAuditEntry::new("expired", "expired", Some(&request.request_id)).data(json!({
            "expires_at": request.expires_at, "from": request.status.as_str(),
        }))];
        let event = KycEvent {
            source: "expiry",
            event_id: &request.request_id,
            request,
            next,
            rejection_reason: None,
            documents: None,
            audit,
            staff: None,
            now,
        };
        match app.store.apply_kyc_event(event).await {
            Ok(Applied::Changed(_)) => expired += 1,
            Ok(_) => skipped += 1,
            // Changed underneath (e.g. approved a moment ago): the next sweep decides again.
            Err(e) => {
                tracing::warn!(kyc_request_id = %request.request_id, error = %e, "expiry not applied");
                failed += 1;
            }
        }
    }
    tracing::info!(due = due.len(), expired, skipped, failed, "kyc expiry sweep");
    Ok(json!({ "due": due.len(), "expired": expired, "skipped": skipped, "failed": failed }))
}
