//! Record selection and failure reporting through the real handler, with SNS mocked
//! (aws-smithy-mocks): what is published, in which calls, and which sequence number a
//! failure names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::dynamodb::Event;
use aws_sdk_sns::Client;
use aws_sdk_sns::operation::publish_batch::{PublishBatchError, PublishBatchInput, PublishBatchOutput};
use aws_sdk_sns::types::error::NotFoundException;
use aws_sdk_sns::types::{BatchResultErrorEntry, PublishBatchResultEntry};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::TimeZone;
use outbox_relay::{App, Outgoing, Selection, handle, select};
use serde_json::{Value, json};
use shared::domain::events::{Envelope, UserRegistered};
use shared::domain::user::{UserId, UserType};
use shared::store::outbox::outbox_item;

const TOPIC: &str = "arn:aws:sns:ap-south-1:123456789012:events";

fn envelope(n: usize) -> Envelope<UserRegistered> {
    let at = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let user = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
    Envelope::new(
        format!("user-registered-{n}"),
        at,
        UserRegistered { user_id: user, user_type: UserType::User, first_name: "Asha".into() },
    )
}

/// An outbox item (strings and numbers only) as the stream's DynamoDB JSON.
fn dynamo_json(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Value {
    let attribute = |(k, v): (&String, &aws_sdk_dynamodb::types::AttributeValue)| {
        let v = match (v.as_s(), v.as_n()) {
            (Ok(s), _) => json!({ "S": s }),
            (_, Ok(n)) => json!({ "N": n }),
            _ => panic!("{k}: only S and N in outbox items"),
        };
        (k.clone(), v)
    };
    Value::Object(item.iter().map(attribute).collect())
}

fn record(event_name: &str, sequence: usize, image: Value) -> Value {
    let keys = json!({ "PK": image["PK"].clone(), "SK": image["SK"].clone() });
    json!({
        "eventID": format!("e{sequence}"),
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": "ap-south-1",
        "eventSourceARN": "arn:aws:dynamodb:ap-south-1:123456789012:table/t/stream/2026",
        "dynamodb": {
            "Keys": keys,
            "NewImage": image,
            "SequenceNumber": sequence.to_string(),
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    })
}

fn outbox_insert(sequence: usize) -> Value {
    record("INSERT", sequence, dynamo_json(&outbox_item(&envelope(sequence))))
}

fn other_insert(sequence: usize) -> Value {
    record("INSERT", sequence, json!({ "PK": { "S": "USER#1" }, "SK": { "S": "PROFILE" } }))
}

fn event(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn one(record: Value) -> Selection {
    select(&event(vec![record]).records[0])
}

/// Every request the mock saw.
type Seen = Arc<Mutex<Vec<PublishBatchInput>>>;

fn accept_all(req: &PublishBatchInput) -> PublishBatchOutput {
    let ok = req
        .publish_batch_request_entries()
        .iter()
        .map(|e| PublishBatchResultEntry::builder().id(e.id()).message_id(format!("m-{}", e.id())).build());
    PublishBatchOutput::builder().set_successful(Some(ok.collect())).build()
}

/// A rule that records the request and answers `answer(request)`.
fn recording(seen: &Seen, answer: impl Fn(&PublishBatchInput) -> PublishBatchOutput + Send + Sync + 'static) -> Rule {
    let seen = seen.clone();
    mock!(Client::publish_batch).then_compute_output(move |req| {
        seen.lock().unwrap().push(req.clone());
        answer(req)
    })
}

/// Runs the handler; one rule answers every call, several answer one call each in turn.
async fn run(rules: &[&Rule], records: Vec<Value>) -> Vec<String> {
    let mode = if rules.len() == 1 { RuleMode::MatchAny } else { RuleMode::Sequential };
    let sns = mock_client!(aws_sdk_sns, mode, rules);
    let response = handle(&App { sns, topic_arn: TOPIC.into() }, event(records)).await;
    response.batch_item_failures.into_iter().map(|f| f.item_identifier.unwrap()).collect()
}

fn published(seen: &Seen) -> Vec<Vec<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.publish_batch_request_entries()
                .iter()
                .map(|e| serde_json::from_str::<Value>(e.message()).unwrap()["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn only_outbox_inserts_are_selected() {
    let Selection::Publish(Outgoing { sequence_number, event_id, event_type, envelope: text }) = one(outbox_insert(7))
    else {
        panic!("an outbox insert is published")
    };
    assert_eq!(
        (sequence_number.as_str(), event_id.as_str(), event_type.as_str()),
        ("7", "user-registered-7", "UserRegistered")
    );
    assert_eq!(text, serde_json::to_string(&envelope(7)).unwrap(), "the envelope goes out as written");

    assert_eq!(one(other_insert(1)), Selection::Skip, "not an outbox item");
    let image = dynamo_json(&outbox_item(&envelope(2)));
    assert_eq!(one(record("MODIFY", 2, image.clone())), Selection::Skip, "an update is not a new event");
    assert_eq!(one(record("REMOVE", 3, image)), Selection::Skip, "nor is the TTL removing the item");
}

#[test]
fn an_outbox_insert_without_an_envelope_is_malformed() {
    let image = json!({ "PK": { "S": "OUTBOX#x" }, "SK": { "S": "OUTBOX" }, "event_type": { "S": "UserRegistered" } });
    assert!(
        matches!(one(record("INSERT", 4, image)), Selection::Malformed { sequence_number, .. } if sequence_number == "4")
    );
    let image = json!({ "PK": { "S": "OUTBOX#x" }, "SK": { "S": "OUTBOX" }, "event_type": { "S": "UserRegistered" },
        "envelope": { "S": "not json" } });
    assert!(matches!(one(record("INSERT", 5, image)), Selection::Malformed { .. }));
}

#[tokio::test]
async fn publishes_in_batches_of_ten_with_the_type_attribute() {
    let seen = Seen::default();
    let rule = recording(&seen, accept_all);
    let mut records: Vec<Value> = (1..=12).map(outbox_insert).collect();
    records.insert(3, other_insert(100));
    assert_eq!(run(&[&rule], records).await, Vec::<String>::new());
    let calls = published(&seen);
    assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 2], "PublishBatch takes ten at most");
    assert_eq!(calls.concat(), (1..=12).map(|n| format!("user-registered-{n}")).collect::<Vec<_>>(), "in stream order");
    let first = &seen.lock().unwrap()[0];
    assert_eq!(first.topic_arn(), Some(TOPIC));
    let entry = &first.publish_batch_request_entries()[0];
    let attrs = entry.message_attributes().unwrap();
    assert_eq!(attrs["event_type"].data_type(), "String");
    assert_eq!(attrs["event_type"].string_value(), Some("UserRegistered"));
    assert_eq!(attrs["event_id"].string_value(), Some("user-registered-1"));
    let ids: Vec<&str> = first.publish_batch_request_entries().iter().map(|e| e.id()).collect();
    assert_eq!(ids, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn nothing_to_publish_makes_no_call() {
    let seen = Seen::default();
    let rule = recording(&seen, accept_all);
    assert!(run(&[&rule], vec![other_insert(1), other_insert(2)]).await.is_empty());
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn a_refused_entry_reports_the_first_refused_record() {
    // SNS refuses entries 2 and 4 of the batch (stream records 3 and 5): Lambda must retry
    // from record 3, so nothing after it is skipped.
    let seen = Seen::default();
    let rule = recording(&seen, |req| {
        let mut out = PublishBatchOutput::builder();
        for e in req.publish_batch_request_entries() {
            if e.id() == "2" || e.id() == "4" {
                out = out.failed(
                    BatchResultErrorEntry::builder()
                        .id(e.id())
                        .code("InternalError")
                        .sender_fault(false)
                        .build()
                        .unwrap(),
                );
            } else {
                out = out.successful(PublishBatchResultEntry::builder().id(e.id()).build());
            }
        }
        out.build()
    });
    assert_eq!(run(&[&rule], (1..=6).map(outbox_insert).collect()).await, vec!["3".to_owned()]);
}

#[tokio::test]
async fn a_failed_call_reports_its_first_record_and_stops() {
    // The first batch of ten goes out, the second fails: retry from record 11, and do not
    // go on to publish the third batch ahead of it.
    let seen = Seen::default();
    let ok = recording(&seen, accept_all);
    let down = mock!(Client::publish_batch)
        .then_error(|| PublishBatchError::NotFoundException(NotFoundException::builder().message("no topic").build()));
    let later = recording(&seen, accept_all);
    let failures = run(&[&ok, &down, &later], (1..=25).map(outbox_insert).collect()).await;
    assert_eq!(failures, vec!["11".to_owned()]);
    assert_eq!((ok.num_calls(), down.num_calls(), later.num_calls()), (1, 1, 0));
}

#[tokio::test]
async fn an_entry_sns_does_not_answer_for_counts_as_failed() {
    let seen = Seen::default();
    let rule = recording(&seen, |req| {
        let first = &req.publish_batch_request_entries()[0];
        PublishBatchOutput::builder().successful(PublishBatchResultEntry::builder().id(first.id()).build()).build()
    });
    assert_eq!(run(&[&rule], (1..=3).map(outbox_insert).collect()).await, vec!["2".to_owned()]);
}

#[tokio::test]
async fn a_malformed_record_fails_there_after_publishing_what_came_before() {
    let seen = Seen::default();
    let rule = recording(&seen, accept_all);
    let bad = record("INSERT", 3, json!({ "PK": { "S": "OUTBOX#bad" }, "SK": { "S": "OUTBOX" } }));
    let failures = run(&[&rule], vec![outbox_insert(1), outbox_insert(2), bad, outbox_insert(4)]).await;
    assert_eq!(failures, vec!["3".to_owned()]);
    assert_eq!(published(&seen), vec![vec!["user-registered-1".to_owned(), "user-registered-2".to_owned()]]);
}
