//! Scheduled sweep (every 5 minutes), so nothing stays open forever:
//! - a scheduled consultation nobody started within the no-show grace after its time is
//!   closed as `no_show` and fully refunded;
//! - a consultation still in progress [`OVERRUN_GRACE`] after its booked end is completed,
//!   charged for the minutes up to its booked end at most (as a complete would settle them).
//!
//! Both go through the one closing path (`shared::closing`). Each kind is read one bounded
//! page at a time, oldest first (`SWEEP_PAGE`); what is left waits for the next run.
//! Idempotent: a consultation that moved meanwhile is left alone, and one already closed is
//! not closed again.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::booking::{Action, ConsultationStatus, NO_SHOW_GRACE, OVERRUN_GRACE, Party};
use shared::closing::{self, CloseError};
use shared::store::StoreError;

pub use shared::app::ClosingApp as App;

/// What one kind of sweep did.
#[derive(Default)]
struct Swept {
    due: usize,
    closed: usize,
    skipped: usize,
    failed: usize,
    /// More were due than one page: the next run takes them.
    more: bool,
}

/// Closes with `action` the consultations in `status` due by `cutoff` (one page of them).
async fn sweep(
    app: &App,
    status: ConsultationStatus,
    cutoff: DateTime<Utc>,
    action: Action,
) -> Result<Swept, StoreError> {
    let (due, more) = app.store.consultations_due(status, cutoff).await?;
    let mut s = Swept { due: due.len(), more, ..Swept::default() };
    for c in due {
        let id = c.booking_id.clone();
        match closing::close(&app.store, c, action, Party::System, app.share).await {
            Ok(_) => s.closed += 1,
            // Started, ended or cancelled a moment ago (the index lags the table): nothing to do.
            Err(CloseError::NotAllowed(..)) => s.skipped += 1,
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "consultation not swept");
                s.failed += 1;
            }
        }
    }
    Ok(s)
}

/// Handles the EventBridge schedule event (its content is not needed) and reports counts.
pub async fn handle(app: &App, _event: Value) -> Result<Value, StoreError> {
    let now = Utc::now();
    let no_shows = sweep(app, ConsultationStatus::Scheduled, now - NO_SHOW_GRACE, Action::NoShow).await?;
    let overruns = sweep(app, ConsultationStatus::InProgress, now - OVERRUN_GRACE, Action::Complete).await?;
    let [due, closed, skipped, failed] = [
        no_shows.due + overruns.due,
        no_shows.closed + overruns.closed,
        no_shows.skipped + overruns.skipped,
        no_shows.failed + overruns.failed,
    ];
    let more = no_shows.more || overruns.more;
    tracing::info!(due, closed, no_shows = no_shows.closed, overruns = overruns.closed, skipped, failed, more, "sweep");
    Ok(json!({
        "due": due, "closed": closed, "no_shows": no_shows.closed, "overruns": overruns.closed,
        "skipped": skipped, "failed": failed, "more": more,
    }))
}
