//! Scheduled sweep: a scheduled consultation nobody started within the grace period after
//! its time is closed as `no_show` and fully refunded, through the same closing path as a
//! cancellation (`shared::closing`). Idempotent: a consultation that moved meanwhile is
//! left alone, and one already closed is not closed again.

use chrono::Utc;
use serde_json::{Value, json};
use shared::booking::{Action, NO_SHOW_GRACE, Party};
use shared::closing::{self, CloseError};
use shared::store::StoreError;

pub use shared::app::ClosingApp as App;

/// Handles the EventBridge schedule event (its content is not needed) and reports counts.
pub async fn handle(app: &App, _event: Value) -> Result<Value, StoreError> {
    let due = app.store.consultations_due_by(Utc::now() - NO_SHOW_GRACE).await?;
    let (mut closed, mut skipped, mut failed) = (0, 0, 0);
    for c in due.iter().cloned() {
        let id = c.booking_id.clone();
        match closing::close(&app.store, c, Action::NoShow, Party::System, app.share).await {
            Ok(_) => closed += 1,
            // Started or cancelled a moment ago (the index lags the table): nothing to do.
            Err(CloseError::NotAllowed(..)) => skipped += 1,
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "no-show not closed");
                failed += 1;
            }
        }
    }
    tracing::info!(due = due.len(), closed, skipped, failed, "no-show sweep");
    Ok(json!({ "due": due.len(), "closed": closed, "skipped": skipped, "failed": failed }))
}
