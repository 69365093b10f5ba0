//! The event path: the outbox a producer writes, the table's stream, the queues and their
//! consumers.

use infra::LocalStack;
use serde_json::{Value, json};

/// What a producer's transaction adds: the outbox item, written straight to the table.
pub async fn write_outbox<P: shared::domain::events::Event>(
    stack: &LocalStack,
    envelope: &shared::domain::events::Envelope<P>,
) {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .put_item()
        .table_name(stack.table_name())
        .set_item(Some(shared::store::outbox::outbox_item(envelope)))
        .send()
        .await
        .unwrap();
}

/// Every record on the stream `arn` from its start (its first shard; moto makes one).
pub async fn stream_records(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    let iterator = trim_horizon_iterator(streams, arn).await;
    let records = streams.get_records().shard_iterator(iterator).send().await.unwrap();
    records.records.unwrap_or_default()
}

/// An iterator from the start of the stream `arn`'s first shard (moto makes one).
pub async fn trim_horizon_iterator(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> String {
    let described = streams.describe_stream().stream_arn(arn).send().await.unwrap();
    let shard = described.stream_description().unwrap().shards()[0].shard_id().unwrap().to_owned();
    let opened = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    opened.shard_iterator.unwrap()
}

/// The URL of the template queue `id` (its logical id) in this stack.
pub fn queue_url(stack: &LocalStack, id: &str) -> String {
    stack.provisioned.lookup(id, "Ref").unwrap_or_else(|| panic!("queue {id}"))
}

/// Messages in a queue, visible or in flight.
pub async fn queue_depth(stack: &LocalStack, id: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = aws_sdk_sqs::Client::new(&stack.sdk)
        .get_queue_attributes()
        .queue_url(queue_url(stack, id))
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

/// An SQS batch of `(message id, body)`, as Lambda hands a consumer.
pub fn sqs_event(messages: &[(&str, String)]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({ "messageId": id, "body": body, "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {} })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The stack's handler for the queue consumer `binary`, to call with [`sqs_event`]s.
pub fn sqs_consumer(stack: &LocalStack, binary: &str) -> infra::functions::SqsHandler {
    let Some(infra::functions::Handler::Sqs(h)) = stack.handler(binary) else { panic!("{binary} is no SQS consumer") };
    h.clone()
}

/// Waits (up to 20 s) until `check` holds.
pub async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "{what} within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
