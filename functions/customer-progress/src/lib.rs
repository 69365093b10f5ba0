//! Queue consumer: keeps each customer's behaviour (completed consultations, spend,
//! recharges, last activity), segment and milestones, from `ConsultationCompleted` and
//! `WalletCredited`: what offers are for (`shared::domain::offer`). A milestone reached is
//! recorded with the event that reached it, and unlocks the offers waiting for it: each
//! offer unlocked for the customer is told to them (`OfferUnlocked` in the outbox, in the same
//! transaction, so once). The offers are read once per message (1 Query of GSI1).
//!
//! Once per event, whatever the deliveries: each event is one transaction of the record that
//! it was counted (`attribute_not_exists`, keyed by the event) and the customer's new
//! progress, conditioned on the version read just before. A redelivery meets the record and
//! changes nothing; two events of one customer at once: the second reads again.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use shared::UserId;
use shared::app::consumer::process_batch;
use shared::domain::events::{ConsultationCompleted, Envelope, OfferUnlocked, WalletCredited, parse_problem};
use shared::domain::offer::{Activity, unlocked};
use shared::store::StoreError;
use shared::store::offers::{ProgressStep, ProgressWrite};
use shared::store::retry::{self, Attempt, Retry};

/// Reads and writes again this many times while other events move the same customer's
/// progress; past it the message goes back to the queue and comes again later.
const ATTEMPTS: Retry = Retry::attempts(12);

pub use shared::app::StoreApp as App;

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// Only where it failed and how, never the payload's values.
    #[error("malformed {kind} payload ({problem})")]
    Malformed { kind: String, problem: String },
    #[error("progress still busy after {} attempts", .0.attempts)]
    Busy(retry::Exhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    process_batch(event, |envelope| count(app, envelope)).await
}

/// The customer and what they did, if the event is one this consumer counts.
fn activity(envelope: &Envelope) -> Result<Option<(UserId, Activity)>, ProgressError> {
    let malformed =
        |e: serde_json::Error| ProgressError::Malformed { kind: envelope.kind.clone(), problem: parse_problem(&e) };
    if let Some(completed) = envelope.payload_as::<ConsultationCompleted>() {
        let c = completed.map_err(malformed)?;
        // A session nobody came to (no minute billed) is not a consultation had.
        return Ok((c.actual_minutes > 0).then_some((c.customer_id, Activity::Completed { charged: c.charged })));
    }
    if let Some(credited) = envelope.payload_as::<WalletCredited>() {
        return Ok(Some((credited.map_err(malformed)?.user_id, Activity::Recharged)));
    }
    Ok(None)
}

async fn count(app: &App, envelope: Envelope) -> Result<(), ProgressError> {
    let Some((customer, activity)) = activity(&envelope)? else {
        // Not ours to act on: acknowledge, so it does not clog the queue or the DLQ.
        tracing::info!(event_id = %envelope.id, event_type = %envelope.kind, "event ignored");
        return Ok(());
    };
    let offers = app.store.offers().await?;
    retry::on_conflict(ATTEMPTS, ProgressError::Busy, || async {
        let now = Utc::now();
        let (before, thresholds) = app.store.progress_state(&customer).await?;
        let after = before.after(activity, &envelope.id, envelope.occurred_at);
        let step = ProgressStep {
            event_id: &envelope.id,
            before: &before,
            after: &after,
            segment: after.segment(&thresholds, now),
            unlocked: unlocked(&offers, &before, &after, &thresholds, now)
                .into_iter()
                .map(|(offer, milestone)| OfferUnlocked::envelope(&customer, offer, milestone, envelope.occurred_at))
                .collect(),
        };
        let written = app.store.count_progress(&customer, &step, now).await?;
        Ok(match written {
            ProgressWrite::Counted => {
                for m in after.reached_since(&before) {
                    let (metric, count) = (m.milestone.metric.as_str(), m.milestone.count);
                    tracing::info!(event_id = %envelope.id, metric, count, "milestone reached");
                }
                for e in &step.unlocked {
                    tracing::info!(event_id = %envelope.id, offer_id = %e.payload.offer_id, "offer unlocked");
                }
                tracing::info!(event_id = %envelope.id, segment = step.segment.as_str(), "progress counted");
                Attempt::Done(())
            }
            ProgressWrite::AlreadyCounted => {
                tracing::info!(event_id = %envelope.id, "counted before; redelivery acknowledged");
                Attempt::Done(())
            }
            ProgressWrite::Moved => Attempt::Conflict,
        })
    })
    .await
}
