//! Plays Lambda's DynamoDB Streams event source mapping: reads every shard of a table's
//! stream from `StartingPosition`, drops the records the mapping's `FilterCriteria` does not
//! match, invokes the function with batches of at most `BatchSize`, and checkpoints a batch
//! only as far as the function says (`ReportBatchItemFailures`): on a reported failure it
//! reads again from that sequence number, so nothing after it is skipped. Past
//! `MaximumRetryAttempts` it gives the batch up, reports it to the `OnFailure` queue the way
//! Lambda does (`DDBStreamBatchInfo`) and goes on after it. An idle shard is read through a
//! fresh iterator from the last record delivered, not through the one its last empty read
//! returned ([`Position::reopens`]): an iterator that has gone stale cannot starve the mapping.
//!
//! Not played: `BisectBatchOnFunctionError` (the relay reports partial failures, so a retry
//! starts at the failed record anyway), batching windows, parallelization, record age.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::event_filter::matches_any;
use crate::functions::StreamHandler;
use crate::template::StreamSource;

const IDLE: Duration = Duration::from_millis(200);

/// Where an event source mapping is to read a shard from next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Start(ShardIteratorType),
    At(String),
    After(String),
}

impl Position {
    /// Whether an idle shard is read through a fresh iterator from here rather than the one
    /// the last read returned. moto's rollback of a cancelled transaction used to swap the
    /// table's stream shard, and the old iterator then read nothing, ever again (every event
    /// after the first conflict was lost). A fresh iterator from the last sequence number
    /// delivered costs one call and reads exactly what follows it. From `LATEST` no record has
    /// been read yet and a fresh iterator would skip what arrived meanwhile: that one is kept.
    fn reopens(&self) -> bool {
        !matches!(self, Position::Start(ShardIteratorType::Latest))
    }
}

struct Shard {
    id: String,
    position: Position,
    /// The iterator `GetRecords` returned, while reading on in order.
    iterator: Option<String>,
    /// Failed invocations of the batch starting at this sequence number.
    failures: (String, u32),
}

/// The mapping of one function to one stream.
pub struct Mapping {
    pub function: String,
    pub stream_arn: String,
    pub source: StreamSource,
    pub handler: StreamHandler,
    /// SQS for the `OnFailure` queue: its client and URL.
    pub on_failure: Option<(aws_sdk_sqs::Client, String)>,
}

pub async fn poll(streams: aws_sdk_dynamodbstreams::Client, mapping: Mapping) {
    let mut shards: Vec<Shard> = Vec::new();
    loop {
        match poll_once(&streams, &mapping, &mut shards).await {
            Ok(0) => tokio::time::sleep(IDLE).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(stream = %mapping.stream_arn, error = ?e, "stream poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One `GetRecords` round over every shard; returns how many records it read.
async fn poll_once(
    streams: &aws_sdk_dynamodbstreams::Client,
    mapping: &Mapping,
    shards: &mut Vec<Shard>,
) -> Result<usize> {
    let described = streams.describe_stream().stream_arn(&mapping.stream_arn).send().await?;
    let start = ShardIteratorType::from(mapping.source.starting_position.as_str());
    for shard in described.stream_description().map(|d| d.shards()).unwrap_or_default() {
        let id = shard.shard_id().unwrap_or_default();
        if !shards.iter().any(|s| s.id == id) {
            shards.push(Shard {
                id: id.to_owned(),
                position: Position::Start(start.clone()),
                iterator: None,
                failures: (String::new(), 0),
            });
        }
    }
    let mut read = 0;
    for shard in shards.iter_mut() {
        read += poll_shard(streams, mapping, shard).await?;
    }
    Ok(read)
}

async fn poll_shard(streams: &aws_sdk_dynamodbstreams::Client, mapping: &Mapping, shard: &mut Shard) -> Result<usize> {
    let iterator = match shard.iterator.take() {
        Some(iterator) => iterator,
        None => {
            let request = streams.get_shard_iterator().stream_arn(&mapping.stream_arn).shard_id(&shard.id);
            let request = match &shard.position {
                Position::Start(kind) => request.shard_iterator_type(kind.clone()),
                Position::At(sequence) => {
                    request.shard_iterator_type(ShardIteratorType::AtSequenceNumber).sequence_number(sequence)
                }
                Position::After(sequence) => {
                    request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
                }
            };
            request.send().await?.shard_iterator.ok_or_else(|| anyhow!("no shard iterator"))?
        }
    };
    let output = streams.get_records().shard_iterator(iterator).limit(1000).send().await?;
    let records = output.records();
    let next = output.next_shard_iterator().map(str::to_owned);
    if records.is_empty() {
        shard.iterator = next.filter(|_| !shard.position.reopens());
        return Ok(0);
    }
    let events: Vec<Value> = records.iter().map(|r| lambda_record(r, &mapping.stream_arn)).collect();
    let matching: Vec<Value> = events.into_iter().filter(|e| matches_any(&mapping.source.filters, e)).collect();
    for batch in matching.chunks(mapping.source.batch_size.max(1)) {
        let event: Event = serde_json::from_value(json!({ "Records": batch }))?;
        let response = (mapping.handler)(event).await;
        let Some(failure) = response.batch_item_failures.first() else { continue };
        let sequences: Vec<&str> = batch.iter().filter_map(|r| r["dynamodb"]["SequenceNumber"].as_str()).collect();
        // Lambda treats an identifier that names no record of the batch as the whole batch failing.
        let from = failure
            .item_identifier
            .as_deref()
            .filter(|id| sequences.contains(id))
            .or(sequences.first().copied())
            .unwrap_or_default()
            .to_owned();
        let attempts = if shard.failures.0 == from { shard.failures.1 + 1 } else { 1 };
        shard.failures = (from.clone(), attempts);
        let retries_left = mapping.source.maximum_retry_attempts.is_none_or(|max| attempts <= max);
        if retries_left {
            tracing::info!(function = %mapping.function, sequence_number = %from, attempts, "batch failed; retrying from the failed record");
            shard.position = Position::At(from);
            tokio::time::sleep(IDLE * attempts.min(10)).await;
            return Ok(records.len());
        }
        tracing::error!(function = %mapping.function, sequence_number = %from, attempts, "retries exhausted; batch given up");
        report_failure(mapping, &shard.id, &from, sequences.last().copied().unwrap_or_default(), attempts).await;
        // Lambda moves past the batch; later batches of this read go on.
    }
    shard.failures = (String::new(), 0);
    shard.iterator = next;
    if let Some(last) = records.last().and_then(|r| r.dynamodb()).and_then(|r| r.sequence_number()) {
        shard.position = Position::After(last.to_owned());
    }
    Ok(records.len())
}

/// What Lambda sends the `OnFailure` destination of a stream mapping.
async fn report_failure(mapping: &Mapping, shard_id: &str, first: &str, last: &str, attempts: u32) {
    let Some((sqs, url)) = &mapping.on_failure else { return };
    let body = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": format!("arn:aws:lambda:{}:{}:function:{}", crate::REGION, crate::provision::ACCOUNT_ID, mapping.function),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": attempts,
        },
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "" },
        "version": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first,
            "endSequenceNumber": last,
            "streamArn": mapping.stream_arn,
        },
    });
    if let Err(e) = sqs.send_message().queue_url(url).message_body(body.to_string()).send().await {
        tracing::warn!(error = ?e, "could not report the failed batch to the on-failure queue");
    }
}

/// A stream record as Lambda hands it to the function.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut change = Map::new();
    if let Some(r) = record.dynamodb() {
        if let Some(t) = r.approximate_creation_date_time() {
            change.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        for (name, image) in [("Keys", r.keys()), ("NewImage", r.new_image()), ("OldImage", r.old_image())] {
            if let Some(image) = image {
                change.insert(name.into(), item_json(image));
            }
        }
        change.insert("SequenceNumber".into(), json!(r.sequence_number()));
        change.insert("SizeBytes".into(), json!(r.size_bytes().unwrap_or_default()));
        if let Some(v) = r.stream_view_type() {
            change.insert("StreamViewType".into(), json!(v.as_str()));
        }
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": crate::REGION,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

/// An attribute value in DynamoDB JSON (`{"S": "x"}`), as stream events carry it.
fn attribute_json(v: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(s) => json!({ "SS": s }),
        AttributeValue::Ns(n) => json!({ "NS": n }),
        AttributeValue::Bs(b) => json!({ "BS": b.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_filter::{check_pattern, matches};

    #[test]
    fn the_templates_outbox_filter() {
        let pattern: Value = serde_json::from_str(
            r#"{"eventName": ["INSERT"], "dynamodb": {"Keys": {"PK": {"S": [{"prefix": "OUTBOX#"}]}}}}"#,
        )
        .unwrap();
        check_pattern(&pattern).unwrap();
        let record = |name: &str, pk: &str| json!({ "eventName": name, "dynamodb": { "Keys": { "PK": { "S": pk } } } });
        assert!(matches(&pattern, &record("INSERT", "OUTBOX#e1")));
        assert!(!matches(&pattern, &record("MODIFY", "OUTBOX#e1")));
        assert!(!matches(&pattern, &record("REMOVE", "OUTBOX#e1")));
        assert!(!matches(&pattern, &record("INSERT", "USER#1")));
        assert!(!matches(&pattern, &json!({ "eventName": "INSERT" })));
        assert!(matches_any(&[], &record("INSERT", "USER#1")));
    }

    #[test]
    fn exists_anything_but_and_unknown_operators() {
        let p = json!({ "a": [{ "exists": false }], "b": [{ "anything-but": ["x"] }] });
        check_pattern(&p).unwrap();
        assert!(matches(&p, &json!({ "b": "y" })));
        assert!(!matches(&p, &json!({ "a": 1, "b": "y" })));
        assert!(!matches(&p, &json!({ "b": "x" })));
        assert!(check_pattern(&json!({ "a": [{ "numeric": [">", 1] }] })).is_err());
    }
}
