//! Scheduled sweep (every minute), so nothing stays open forever:
//! - a connect-now request the astrologer did not answer within a minute expires (all back);
//! - a live session ends by itself when its paid minutes run out or a party has been gone
//!   for a minute (billed up to then: `shared::domain::booking::session::due`), and both
//!   parties are warned in the run before the paid minutes run out;
//! - a scheduled consultation nobody started within the no-show grace after its time is
//!   closed as `no_show` and fully refunded;
//! - a consultation still in progress [`OVERRUN_GRACE`] after its booked end, with no meter
//!   to say otherwise, is completed.
//!
//! Everything closes through the one closing path (`shared::app::closing`) and both parties
//! are told. Expiries and no-shows are read one bounded page at a time, oldest first
//! (`SWEEP_PAGE`); what is left waits for the next run. Idempotent: a consultation that moved
//! meanwhile is left alone, and one already closed is not closed again.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::app::closing::{self, CloseError};
use shared::domain::booking::chat::ServerMessage;
use shared::domain::booking::session::{self, Due, DueEnd};
use shared::domain::booking::{Action, Consultation, ConsultationStatus, NO_SHOW_GRACE, OVERRUN_GRACE, Party};
use shared::store::StoreError;

pub use shared::app::live::SessionApp as App;

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

impl Swept {
    /// Closes `c` with `action` (its meter stopped as `end` says, if it ran) and tells both parties.
    async fn close(&mut self, app: &App, c: Consultation, action: Action, end: Option<DueEnd>) {
        self.due += 1;
        let id = c.booking_id.clone();
        match closing::close_at(&app.store, c, action, Party::System, app.share, end).await {
            Ok(closed) => {
                self.closed += 1;
                app.tell_both(&closed).await;
            }
            // Started, ended or cancelled a moment ago (the index lags the table): nothing to do.
            Err(CloseError::NotAllowed(..)) => self.skipped += 1,
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "consultation not swept");
                self.failed += 1;
            }
        }
    }
}

/// Closes with `action` the consultations in `status` due by `cutoff` (one page of them).
async fn sweep(
    app: &App,
    status: ConsultationStatus,
    cutoff: DateTime<Utc>,
    action: Action,
) -> Result<Swept, StoreError> {
    let (due, more) = app.store.consultations_due(status, cutoff).await?;
    let mut s = Swept { more, ..Swept::default() };
    for c in due {
        s.close(app, c, action, None).await;
    }
    Ok(s)
}

/// Ends the live sessions that are over, and warns those about to run out.
async fn sessions(app: &App, now: DateTime<Utc>) -> Result<(Swept, usize), StoreError> {
    let mut s = Swept::default();
    let mut warned = 0;
    for c in app.store.consultations_in_progress().await? {
        match session::due(&c, now) {
            Due::End(end) => s.close(app, c, Action::Complete, Some(end)).await,
            Due::Warn { seconds_left } => {
                let ending = ServerMessage::Ending { booking_id: c.booking_id.to_string(), seconds_left };
                app.push.to_user(&app.store, &c.customer_id, &ending).await;
                app.push.to_user(&app.store, &c.astrologer_id, &ending).await;
                warned += 1;
            }
            Due::Nothing | Due::Expire if !c.instant && now >= c.ends_at + OVERRUN_GRACE => {
                s.close(app, c, Action::Complete, None).await;
            }
            Due::Nothing | Due::Expire => {}
        }
    }
    Ok((s, warned))
}

/// Handles the EventBridge schedule event (its content is not needed) and reports counts.
pub async fn handle(app: &App, _event: Value) -> Result<Value, StoreError> {
    let now = Utc::now();
    let expired = sweep(app, ConsultationStatus::Ringing, now, Action::Expire).await?;
    let no_shows = sweep(app, ConsultationStatus::Scheduled, now - NO_SHOW_GRACE, Action::NoShow).await?;
    let (ended, warned) = sessions(app, now).await?;
    let all = [&expired, &no_shows, &ended];
    let sum = |f: fn(&Swept) -> usize| all.iter().map(|s| f(s)).sum::<usize>();
    let (due, closed, skipped, failed) = (sum(|s| s.due), sum(|s| s.closed), sum(|s| s.skipped), sum(|s| s.failed));
    let more = all.iter().any(|s| s.more);
    tracing::info!(
        due,
        closed,
        expired = expired.closed,
        no_shows = no_shows.closed,
        ended = ended.closed,
        warned,
        skipped,
        failed,
        more,
        "sweep"
    );
    Ok(json!({
        "due": due, "closed": closed, "expired": expired.closed, "no_shows": no_shows.closed,
        "ended": ended.closed, "overruns": ended.closed, "warned": warned,
        "skipped": skipped, "failed": failed, "more": more,
    }))
}
