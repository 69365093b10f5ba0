//! Queue consumer: counts each `ReviewSubmitted` once into the astrologer's rating, the
//! weighted average the catalogue shows and sorts by (`shared::domain::review::RatingTotals`).
//!
//! Once per review, whatever the deliveries: each event is one transaction of the record
//! that the review was counted (`attribute_not_exists`, keyed by the review) and the
//! astrologer's new totals, conditioned on the aggregate's version read just before. A
//! redelivery meets the record and changes nothing; a consumer that lost a race with
//! another (two reviews of one astrologer at once) reads again and retries. Failures are
//! reported per message (`ReportBatchItemFailures`); SQS moves poison messages to the DLQ.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use shared::app::consumer::process_batch;
use shared::domain::events::{Envelope, ReviewSubmitted};
use shared::domain::review::Rating;
use shared::store::StoreError;
use shared::store::retry::{self, Attempt, Retry};
use shared::store::reviews::RatingWrite;

/// Reads and writes again this many times while other consumers move the same aggregate;
/// past it the message goes back to the queue and comes again later.
const ATTEMPTS: Retry = Retry::attempts(12);

pub use shared::app::StoreApp as App;

#[derive(Debug, thiserror::Error)]
pub enum RatingError {
    /// Only where it failed and how, never the payload's values (they name people).
    #[error("malformed {kind} payload ({problem})")]
    Malformed { kind: String, problem: String },
    #[error("astrologer of review {0} not found")]
    UnknownAstrologer(String),
    #[error("aggregate still busy after {} attempts", .0.attempts)]
    Busy(retry::Exhausted),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    process_batch(event, |envelope| count(app, envelope)).await
}

fn malformed(kind: &str, problem: String) -> RatingError {
    RatingError::Malformed { kind: kind.to_owned(), problem }
}

async fn count(app: &App, envelope: Envelope) -> Result<(), RatingError> {
    let Some(payload) = envelope.payload_as::<ReviewSubmitted>() else {
        // Not ours to act on: acknowledge, so it does not clog the queue or the DLQ.
        tracing::info!(event_id = %envelope.id, event_type = %envelope.kind, "event ignored");
        return Ok(());
    };
    let review = payload.map_err(|e| malformed(&envelope.kind, shared::domain::events::parse_problem(&e)))?;
    let rating = Rating::new(review.rating).ok_or_else(|| malformed(&envelope.kind, "rating out of range".into()))?;
    retry::on_conflict(ATTEMPTS, RatingError::Busy, || async {
        let state = app
            .store
            .rating_state(&review.astrologer_id)
            .await?
            .ok_or_else(|| RatingError::UnknownAstrologer(review.booking_id.clone()))?;
        let totals = state.totals.with(rating, review.verified);
        let now = Utc::now();
        let written = app
            .store
            .count_rating(&review.astrologer_id, &review.booking_id, &envelope.id, &state, totals, now)
            .await?;
        Ok(match written {
            RatingWrite::Counted => {
                tracing::info!(event_id = %envelope.id, count = totals.count, "review counted");
                Attempt::Done(())
            }
            RatingWrite::AlreadyCounted => {
                tracing::info!(event_id = %envelope.id, "review counted before; redelivery acknowledged");
                Attempt::Done(())
            }
            // Another consumer moved this astrologer's aggregate: read again.
            RatingWrite::Moved => Attempt::Conflict,
        })
    })
    .await
}
