//! The credit of a payment Razorpay captured, shared by the webhook and the scheduled
//! reconciliation (`top-up-reconcile`): read, plan, write the one credit transaction
//! ([`shared::store::Store::credit`]), and read again after a lost race.

use chrono::Utc;
use shared::ApiError;
use shared::store::topups::Credit;
use shared::topup::{Source, Status, TopUp};

use crate::{App, CREDIT_ATTEMPTS, credit_plan, log_credit};

/// What became of a captured payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    /// The wallet was credited.
    Now,
    /// The top-up was credited before (by the confirm, another event or the reconciliation).
    Before,
    /// This webhook event was handled before.
    DuplicateEvent,
    /// The top-up is gone (never happens: top-ups are not deleted).
    NoTopUp,
}

/// Credits `topup` for `payment_id`, which the caller checked Razorpay captured for the
/// top-up's order, amount and currency. Exactly once, whoever else is crediting it.
pub async fn credit_captured(
    app: &App,
    topup: &TopUp,
    payment_id: &str,
    source: &Source,
) -> Result<Credited, ApiError> {
    for attempt in 0..CREDIT_ATTEMPTS {
        let now = Utc::now();
        let Some(state) = app.store.credit_state(&topup.id, &topup.user_id, source, now).await? else {
            return Ok(Credited::NoTopUp);
        };
        if state.event_seen {
            return Ok(Credited::DuplicateEvent);
        }
        if state.topup.status == Status::Completed {
            return Ok(Credited::Before);
        }
        let plan = credit_plan(app, &state, payment_id, source, now)?;
        match app.store.credit(&plan, source, now).await? {
            Credit::Credited => {
                log_credit(&plan.topup);
                return Ok(Credited::Now);
            }
            Credit::AlreadyDone => return Ok(Credited::Before),
            Credit::Conflict => shared::store::pause_after_conflict(attempt).await,
        }
    }
    Err(ApiError::unavailable("busy", "the wallet is busy; retry"))
}
