//! Stream consumer: publishes the transactional outbox. Every `OUTBOX#` item a transaction
//! inserts reaches this function through the table's stream; its envelope goes to the
//! events topic as is, with the event type as a message attribute that the consumers'
//! subscription filter policies route on.
//!
//! At least once: a record is checkpointed only when SNS accepted it and everything before
//! it. On a failure the response names the FIRST record not published
//! (`ReportBatchItemFailures`), so Lambda retries from there and skips nothing; records
//! after it that SNS did accept are published again, which consumers absorb because they
//! de-duplicate on the envelope id.

use std::collections::HashSet;

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_dynamo::AttributeValue;
use shared::config::{self, ConfigError};
use shared::domain::events::Envelope;
use shared::store::outbox::{ENVELOPE_ATTRIBUTE, EVENT_TYPE_ATTRIBUTE, is_outbox_pk};

/// SNS takes at most ten entries per `PublishBatch`.
pub const MAX_ENTRIES_PER_BATCH: usize = 10;
/// The message attribute SNS filter policies route on.
pub const EVENT_TYPE_MESSAGE_ATTRIBUTE: &str = "event_type";
/// The envelope id, for tracing a message without parsing its body.
pub const EVENT_ID_MESSAGE_ATTRIBUTE: &str = "event_id";

#[derive(Clone, Debug)]
pub struct App {
    pub sns: aws_sdk_sns::Client,
    pub topic_arn: String,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self { sns: aws_sdk_sns::Client::new(sdk), topic_arn: config::required(vars, "EVENTS_TOPIC_ARN")? })
    }
}

/// An outbox event to publish, and the stream record it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub sequence_number: String,
    pub event_id: String,
    pub event_type: String,
    pub envelope: String,
}

/// What the relay does with one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Not an outbox insert (another item, or an outbox item's update or TTL removal).
    Skip,
    Publish(Outgoing),
    /// An outbox insert the relay cannot publish. It fails the batch at this record rather
    /// than lose the event: after the retries it is reported to the on-failure destination.
    Malformed {
        sequence_number: String,
        problem: String,
    },
}

fn string<'a>(image: &'a serde_dynamo::Item, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// Picks the outbox inserts out of a stream batch.
pub fn select(record: &EventRecord) -> Selection {
    let change = &record.change;
    if record.event_name != "INSERT" || !string(&change.keys, "PK").is_some_and(is_outbox_pk) {
        return Selection::Skip;
    }
    let sequence_number = change.sequence_number.clone().unwrap_or_default();
    let malformed = |problem: String| Selection::Malformed { sequence_number: sequence_number.clone(), problem };
    let image = &change.new_image;
    let (Some(envelope), Some(event_type)) = (string(image, ENVELOPE_ATTRIBUTE), string(image, EVENT_TYPE_ATTRIBUTE))
    else {
        return malformed(format!("no {ENVELOPE_ATTRIBUTE} or {EVENT_TYPE_ATTRIBUTE} in the new image"));
    };
    // Consumers fail on anything that is not an envelope; better to stop it here.
    let parsed = match serde_json::from_str::<Envelope>(envelope) {
        Ok(parsed) => parsed,
        Err(e) => {
            return malformed(format!(
                "the envelope is not an event envelope: {}",
                shared::domain::events::parse_problem(&e)
            ));
        }
    };
    if event_type.is_empty() || parsed.kind != event_type {
        return malformed(format!("event_type {event_type:?} is not the envelope's type {:?}", parsed.kind));
    }
    Selection::Publish(Outgoing {
        sequence_number,
        event_id: parsed.id,
        event_type: event_type.to_owned(),
        envelope: envelope.to_owned(),
    })
}

/// Publishes a stream batch's outbox events in order and reports the first one that was not.
pub async fn handle(app: &App, event: Event) -> DynamoDbEventResponse {
    let mut outgoing = Vec::new();
    let mut first_malformed = None;
    for record in &event.records {
        match select(record) {
            Selection::Skip => {}
            Selection::Publish(o) => outgoing.push(o),
            Selection::Malformed { sequence_number, problem } => {
                tracing::error!(sequence_number = %sequence_number, %problem, "outbox record cannot be published");
                first_malformed = Some(sequence_number);
                break;
            }
        }
    }
    let mut first_failed = None;
    for chunk in outgoing.chunks(MAX_ENTRIES_PER_BATCH) {
        if let Some(i) = publish(app, chunk).await {
            first_failed = Some(chunk[i].sequence_number.clone());
            break;
        }
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = first_failed.or(first_malformed) {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

fn attribute(value: &str) -> Result<MessageAttributeValue, aws_sdk_sns::error::BuildError> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build()
}

fn entry(index: usize, o: &Outgoing) -> Result<PublishBatchRequestEntry, aws_sdk_sns::error::BuildError> {
    PublishBatchRequestEntry::builder()
        .id(index.to_string())
        .message(&o.envelope)
        .message_attributes(EVENT_TYPE_MESSAGE_ATTRIBUTE, attribute(&o.event_type)?)
        .message_attributes(EVENT_ID_MESSAGE_ATTRIBUTE, attribute(&o.event_id)?)
        .build()
}

/// One `PublishBatch` of at most ten entries (ids: their index in `chunk`); returns the
/// index of the first entry SNS did not accept.
async fn publish(app: &App, chunk: &[Outgoing]) -> Option<usize> {
    let entries = match chunk.iter().enumerate().map(|(i, o)| entry(i, o)).collect::<Result<Vec<_>, _>>() {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "could not build the publish request");
            return Some(0);
        }
    };
    let sent =
        app.sns.publish_batch().topic_arn(&app.topic_arn).set_publish_batch_request_entries(Some(entries)).send().await;
    let output = match sent {
        Ok(output) => output,
        Err(e) => {
            tracing::warn!(error = ?e, events = chunk.len(), "PublishBatch failed; the stream will retry");
            return Some(0);
        }
    };
    for failed in output.failed() {
        tracing::warn!(
            entry = failed.id(),
            code = failed.code(),
            sender_fault = failed.sender_fault(),
            message = failed.message().unwrap_or_default(),
            "event not published; the stream will retry"
        );
    }
    // Only what SNS confirms counts as published; an entry it neither accepts nor refuses
    // is retried too.
    let accepted: HashSet<usize> = output.successful().iter().filter_map(|s| s.id()?.parse().ok()).collect();
    for (i, o) in chunk.iter().enumerate().filter(|(i, _)| accepted.contains(i)) {
        tracing::info!(event_id = %o.event_id, event_type = %o.event_type, entry = i, "event published");
    }
    (0..chunk.len()).find(|i| !accepted.contains(i))
}
