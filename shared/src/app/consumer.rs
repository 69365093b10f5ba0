//! What every consumer of the events topic's queues runs: a batch of SQS messages, each an
//! event envelope, with partial batch failures.

use std::future::Future;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use crate::domain::events::{Envelope, parse_problem};

/// Runs `handle` on every message of a batch and reports the ones that failed, so SQS
/// redelivers only those (`ReportBatchItemFailures`). A message that is not an envelope
/// fails too, and after `maxReceiveCount` goes to the dead-letter queue.
pub async fn process_batch<F, Fut, E>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(Envelope) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let outcome = match serde_json::from_str::<Envelope>(message.body.as_deref().unwrap_or("")) {
            Ok(envelope) => handle(envelope).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("not an event envelope: {}", parse_problem(&e))),
        };
        if let Err(error) = outcome {
            tracing::warn!(message_id = %id, %error, "message failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
