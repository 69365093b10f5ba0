//! Scheduled reconciliation (every 5 minutes): a top-up still open [`RECONCILE_AFTER`] its
//! creation (the app was killed before confirming, and the webhook was lost or is late) is
//! settled from Razorpay's own record of its order's payments (`GET /v1/orders/{id}/payments`):
//! - a payment `captured` for the order's amount in INR: credited through the webhook's
//!   exactly-once path (`shared::app::top_up::credit`), so a confirm or webhook racing it changes nothing;
//! - a payment `authorized`: Razorpay captures it itself (orders auto-capture), so it waits;
//! - nothing captured or authorised [`ABANDONED_AFTER`] its creation: `failed`, and no longer
//!   asked about (a capture after that still credits it, through the webhook or the confirm).
//!
//! Razorpay down or an error on one top-up leaves it for the next run; the run stops starting
//! new ones after [`RUN_BUDGET`], oldest first, so it ends well within its timeout.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::ApiError;
pub use shared::app::top_up::App;
use shared::app::top_up::credit::{self, Credited};
use shared::domain::topup::{Source, TopUp};
use shared::providers::razorpay::PaymentCheck;
use shared::store::StoreError;

/// How long a customer has to finish the checkout and the app to confirm before we ask.
pub const RECONCILE_AFTER: chrono::Duration = chrono::Duration::minutes(5);
/// After this, a top-up with no captured or authorised payment is given up.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::hours(1);
/// Work started after this is left for the next run (the function's timeout is 60 s; each
/// top-up is one Razorpay call of at most 5 s plus two DynamoDB calls).
pub const RUN_BUDGET: Duration = Duration::from_secs(40);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Credited,
    AlreadyCredited,
    Waiting,
    Failed,
}

/// Handles the EventBridge schedule event (its content is not needed) and reports counts.
pub async fn handle(app: &App, _event: Value) -> Result<Value, StoreError> {
    let started = Instant::now();
    let now = Utc::now();
    let due = app.store.open_topups_created_by(now - RECONCILE_AFTER).await?;
    let (mut credited, mut already, mut waiting, mut failed, mut errors) = (0, 0, 0, 0, 0);
    for topup in &due {
        if started.elapsed() > RUN_BUDGET {
            waiting += 1;
            continue;
        }
        match reconcile(app, topup, now).await {
            Ok(Outcome::Credited) => credited += 1,
            Ok(Outcome::AlreadyCredited) => already += 1,
            Ok(Outcome::Waiting) => waiting += 1,
            Ok(Outcome::Failed) => failed += 1,
            Err(e) => {
                tracing::warn!(top_up_id = %topup.id, error = %e.message, "top-up not reconciled; next run");
                errors += 1;
            }
        }
    }
    tracing::info!(due = due.len(), credited, already, waiting, failed, errors, "top-up reconciliation");
    Ok(json!({ "due": due.len(), "credited": credited, "already_credited": already, "waiting": waiting,
        "failed": failed, "errors": errors }))
}

async fn reconcile(app: &App, topup: &TopUp, now: DateTime<Utc>) -> Result<Outcome, ApiError> {
    let order = &topup.razorpay_order_id;
    let payments = app.razorpay.get().await?.order_payments(order).await?;
    if let Some(paid) = payments.iter().find(|p| p.check(order, topup.amount) == PaymentCheck::Captured) {
        return Ok(match credit::credit_captured(app, topup, paid, &Source::Reconciliation).await? {
            Credited::Now => Outcome::Credited,
            Credited::Before | Credited::DuplicateEvent => Outcome::AlreadyCredited,
            Credited::NoTopUp => Outcome::Waiting,
        });
    }
    if let Some(odd) = payments.iter().find(|p| p.check(order, topup.amount) == PaymentCheck::Mismatch) {
        // Never credited; someone should look at it.
        tracing::error!(top_up_id = %topup.id, payment_id = %odd.id, paid = odd.amount, currency = %odd.currency,
            status = %odd.status, "a payment on the order is not for its amount in INR");
    }
    let in_flight = payments.iter().any(|p| p.status == "created" || p.status == "authorized");
    if in_flight || now - topup.created_at < ABANDONED_AFTER {
        return Ok(Outcome::Waiting);
    }
    let reason = if payments.is_empty() { "not paid within an hour" } else { "every payment attempt failed" };
    Ok(if app.store.close_unpaid_topup(topup, reason, now).await? {
        tracing::info!(top_up_id = %topup.id, reason, "top-up given up");
        Outcome::Failed
    } else {
        // Credited a moment ago.
        Outcome::AlreadyCredited
    })
}
