//! The transactional outbox end to end: an `OUTBOX#` item in the table -> the table's stream
//! -> the relay -> the events topic -> the consumer's queue (by its filter policy) -> the
//! notifications consumer -> one inbox item, however often any step delivers it.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{TimeZone, Utc};
use infra::LocalStack;
use infra::aws_endpoint::Fault;
use integration_tests::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::domain::events::{Envelope, Event, KycStatusChanged, UserRegistered};
use shared::{KycStatus, UserId, UserType};

type Item = HashMap<String, AttributeValue>;

/// Long enough for a duplicate to show up after the first delivery: several stream and
/// queue poll rounds.
const SETTLE: Duration = Duration::from_secs(4);

fn new_user() -> UserId {
    UserId::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
}

fn welcome(user: &UserId) -> Envelope<UserRegistered> {
    // The time of the change, not of sending: a redelivery maps to the same inbox key.
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let payload = UserRegistered { user_id: user.clone(), user_type: UserType::User, first_name: "Asha".into() };
    Envelope::new(format!("user-registered-{user}"), at, payload)
}

/// The user's inbox once something arrived and nothing more did for [`SETTLE`].
async fn settled_inbox(stack: &LocalStack, user: &UserId) -> Vec<Item> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while notifications_of(stack, user).await.is_empty() {
        assert!(Instant::now() < deadline, "no notification for {user} within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(SETTLE).await;
    notifications_of(stack, user).await
}

#[tokio::test]
async fn an_outbox_item_becomes_exactly_one_notification() {
    let stack = stack().await;
    let user = new_user();
    write_outbox(&stack, &welcome(&user)).await;
    let inbox = settled_inbox(&stack, &user).await;
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0]["event_id"].as_s().unwrap(), &format!("user-registered-{user}"));
    assert_eq!(inbox[0]["title"].as_s().unwrap(), "Welcome to AstroKiran");
    assert_eq!(queue_depth(&stack, "NotificationsDeadLetterQueue").await, 0);
}

#[tokio::test]
async fn a_redelivered_event_is_consumed_and_notifies_once() {
    let stack = stack().await;
    let user = new_user();
    let envelope = welcome(&user);
    write_outbox(&stack, &envelope).await;
    let first = settled_inbox(&stack, &user).await;
    assert_eq!(first.len(), 1);

    // SNS and SQS deliver at least once: the same envelope again, on the consumer's queue.
    let body = serde_json::to_string(&envelope).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    sqs.send_message().queue_url(queue_url(&stack, "NotificationsQueue")).message_body(&body).send().await.unwrap();
    // Consumed as a success: deleted, not left to come back after the visibility timeout.
    let deadline = Instant::now() + Duration::from_secs(15);
    while queue_depth(&stack, "NotificationsQueue").await > 0 {
        assert!(Instant::now() < deadline, "the redelivered message was not consumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And straight through the handler: a redelivery reports no failure.
    let infra::functions::Handler::Sqs(notifications) = stack.handler("notifications").unwrap() else { panic!() };
    let event = serde_json::from_value(serde_json::json!({ "Records": [{
        "messageId": "redelivery", "body": body, "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {},
    }] }))
    .unwrap();
    assert!(notifications(event).await.batch_item_failures.is_empty(), "a redelivery is a success");

    let after = settled_inbox(&stack, &user).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["created_at"], first[0]["created_at"], "the first notification is kept, not rewritten");
    assert_eq!(queue_depth(&stack, "NotificationsDeadLetterQueue").await, 0);
}

#[tokio::test]
async fn an_event_is_delivered_once_after_publishing_failed() {
    let stack = stack().await;
    // SNS is down for the relay's first two calls: the stream mapping retries from the
    // failed record until the publish goes through.
    stack.faults.fail_next("PublishBatch", 2, Fault::sns_topic_not_found());
    let user = new_user();
    write_outbox(&stack, &welcome(&user)).await;
    let inbox = settled_inbox(&stack, &user).await;
    assert_eq!(stack.faults.injected("PublishBatch"), 2, "both injected failures were hit");
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(queue_depth(&stack, "OutboxRelayFailureQueue").await, 0, "within MaximumRetryAttempts");
}

/// A type no consumer of today subscribes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionBooked {
    session_id: String,
}

impl Event for SessionBooked {
    const TYPE: &'static str = "SessionBooked";
    const VERSION: u32 = 1;
}

/// Envelope types received from a queue until nothing more comes for a while.
async fn drain_types(sqs: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<String> {
    let mut types = Vec::new();
    let mut deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let received =
            sqs.receive_message().queue_url(url).max_number_of_messages(10).wait_time_seconds(1).send().await;
        for m in received.unwrap().messages() {
            // Raw delivery: the body is the envelope itself, not SNS's JSON wrapper.
            let envelope: Envelope<Value> = serde_json::from_str(m.body().unwrap()).expect("an envelope");
            types.push(envelope.kind);
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
        if types.len() >= expected && deadline > Instant::now() + SETTLE {
            deadline = Instant::now() + SETTLE;
        }
    }
    types.sort();
    types
}

#[tokio::test]
async fn a_consumer_queue_receives_only_the_types_its_filter_names() {
    // The consumers stay off so the queue keeps what the subscription routed to it.
    let stack = stack_with(|o| o.poll_queues = false).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    // An unfiltered subscriber, to see that the relay published every type.
    let all_url = sqs.create_queue().queue_name(format!("{}-all", stack.table_name())).send().await.unwrap();
    let all_url = all_url.queue_url().unwrap().to_owned();
    let all_arn = sqs
        .get_queue_attributes()
        .queue_url(&all_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    aws_sdk_sns::Client::new(&stack.sdk)
        .subscribe()
        .topic_arn(stack.provisioned.lookup("EventsTopic", "Ref").unwrap())
        .protocol("sqs")
        .endpoint(all_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let user = new_user();
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap();
    write_outbox(&stack, &welcome(&user)).await;
    let kyc = KycStatusChanged {
        astrologer_id: user.clone(),
        kyc_request_id: "KID1".into(),
        kyc_status: KycStatus::Completed,
        rejection_reason: None,
    };
    write_outbox(&stack, &Envelope::new("kyc-KID1-completed", at, kyc)).await;
    write_outbox(&stack, &Envelope::new("session-booked-1", at, SessionBooked { session_id: "S1".into() })).await;

    let everything = drain_types(&sqs, &all_url, 3).await;
    assert_eq!(everything, ["KycStatusChanged", "SessionBooked", "UserRegistered"], "the relay published all three");
    let routed = drain_types(&sqs, &queue_url(&stack, "NotificationsQueue"), 2).await;
    assert_eq!(routed, ["KycStatusChanged", "UserRegistered"], "only the types the filter policy names");
    let handled: BTreeSet<&str> = ["UserRegistered", "KycStatusChanged", "WalletCredited"].into();
    assert!(routed.iter().all(|t| handled.contains(t.as_str())));
}

#[tokio::test]
async fn a_batch_past_its_retries_goes_to_the_failure_queue_and_later_events_flow() {
    let stack = stack().await;
    // MaximumRetryAttempts is 10: the first attempt and ten retries all fail.
    stack.faults.fail_next("PublishBatch", 11, Fault::sns_topic_not_found());
    let (lost, next) = (new_user(), new_user());
    write_outbox(&stack, &welcome(&lost)).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = queue_url(&stack, "OutboxRelayFailureQueue");
    let deadline = Instant::now() + Duration::from_secs(40);
    let report = loop {
        assert!(Instant::now() < deadline, "no failure report within 40 s");
        let received = sqs.receive_message().queue_url(&url).wait_time_seconds(1).send().await.unwrap();
        if let Some(m) = received.messages().first() {
            break serde_json::from_str::<Value>(m.body().unwrap()).unwrap();
        }
    };
    assert_eq!(report["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(report["requestContext"]["approximateInvokeCount"], 11);
    assert_eq!(report["DDBStreamBatchInfo"]["streamArn"], stack.provisioned.lookup("AppTable", "StreamArn").unwrap());
    assert_eq!(stack.faults.injected("PublishBatch"), 11);

    // The shard is unblocked: the next event goes out; the given-up one stays in the report.
    write_outbox(&stack, &welcome(&next)).await;
    assert_eq!(settled_inbox(&stack, &next).await.len(), 1);
    assert!(notifications_of(&stack, &lost).await.is_empty());
}

/// The stream records of everything written to the table so far, as one Lambda batch.
async fn stream_batch(stack: &LocalStack) -> aws_lambda_events::dynamodb::Event {
    let streams = aws_sdk_dynamodbstreams::Client::new(&stack.sdk);
    let arn = stack.provisioned.lookup("AppTable", "StreamArn").unwrap();
    let records = stream_records(&streams, &arn).await;
    let records: Vec<Value> = records.iter().map(|r| infra::stream_poller::lambda_record(r, &arn)).collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn a_relay_failing_or_dying_mid_batch_loses_and_doubles_nothing() {
    // The relay is driven by hand with one batch of 15 events: SNS takes 10 per call.
    let stack = stack_with(|o| o.poll_streams = false).await;
    let users: Vec<UserId> = (0..15).map(|_| new_user()).collect();
    for user in &users {
        write_outbox(&stack, &welcome(user)).await;
    }
    let batch = stream_batch(&stack).await;
    assert_eq!(batch.records.len(), 15);
    let Some(infra::functions::Handler::Stream(relay)) = stack.handler("outbox-relay") else { panic!("no relay") };

    // The first ten go out, SNS fails the other five: the relay names the first of those,
    // and the event source mapping retries from it.
    stack.faults.fail_after("PublishBatch", 1, 1, Fault::sns_topic_not_found());
    let response = relay(batch.clone()).await;
    assert_eq!(stack.faults.injected("PublishBatch"), 1, "the fault was met");
    let failed: Vec<_> = response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, [batch.records[10].change.sequence_number.clone().unwrap()], "the first unpublished event");
    let mut retry = batch.clone();
    retry.records.drain(..10);
    assert!(relay(retry).await.batch_item_failures.is_empty());

    // A relay that dies after its first call (a timeout, a crash) reports nothing: Lambda
    // retries the whole batch, so the first ten go out twice.
    assert!(relay(batch).await.batch_item_failures.is_empty());

    // Every event reached its consumer once: one welcome each, nothing in a failure queue.
    let deadline = Instant::now() + Duration::from_secs(20);
    for user in &users {
        while notifications_of(&stack, user).await.is_empty() {
            assert!(Instant::now() < deadline, "no notification for {user} within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(SETTLE).await;
    for user in &users {
        let inbox = notifications_of(&stack, user).await;
        assert_eq!(inbox.len(), 1, "{user}: {inbox:?}");
    }
    assert_eq!(queue_depth(&stack, "NotificationsDeadLetterQueue").await, 0);
    println!(
        "outbox relay: 15 events, SNS failed after the first 10 then the relay died and was retried whole: \
         15 delivered once each, 0 lost, 0 doubled"
    );
}

/// A transaction inserting `envelope` into the outbox that is cancelled, as every lost race,
/// replay or `already_reviewed` is: its condition on an item that does not exist fails.
async fn cancelled_outbox_insert(stack: &LocalStack, envelope: &Envelope<UserRegistered>) {
    let table = stack.table_name();
    let item = shared::store::outbox::outbox_item(envelope);
    let put = Put::builder().table_name(&table).set_item(Some(item)).build().unwrap();
    let check = ConditionCheck::builder()
        .table_name(table)
        .key("PK", AttributeValue::S("CONFLICT#nobody".into()))
        .key("SK", AttributeValue::S("CONFLICT".into()))
        .condition_expression("attribute_exists(PK)")
        .build()
        .unwrap();
    let cancelled = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().put(put).build())
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .send()
        .await;
    assert!(cancelled.is_err(), "the transaction is cancelled");
}

/// Cancelled outbox inserts every 50 ms until `done`: the users whose events they would have made.
async fn conflicts_until(stack: &LocalStack, done: &AtomicBool) -> Vec<UserId> {
    let mut phantoms = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let user = new_user();
        cancelled_outbox_insert(stack, &welcome(&user)).await;
        phantoms.push(user);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phantoms
}

#[tokio::test]
async fn events_still_flow_after_a_cancelled_transaction() {
    let stack = stack().await;
    // One event through first: the stream mapping is reading the shard when the conflict comes.
    let (first, phantom, next) = (new_user(), new_user(), new_user());
    write_outbox(&stack, &welcome(&first)).await;
    assert_eq!(settled_inbox(&stack, &first).await.len(), 1);

    cancelled_outbox_insert(&stack, &welcome(&phantom)).await;
    write_outbox(&stack, &welcome(&next)).await;
    assert_eq!(settled_inbox(&stack, &next).await.len(), 1, "the event after the cancelled transaction");
    assert!(notifications_of(&stack, &phantom).await.is_empty(), "nothing of the cancelled transaction");
}

/// Twenty top-ups paid at once, five per customer (each customer's credits race on their
/// wallet), with cancelled transactions in flight throughout: every credit's `WalletCredited`
/// reaches its customer once, and no cancelled transaction's event reaches anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_top_ups_each_notify_once_with_conflicts_in_flight() {
    const CUSTOMERS: usize = 4;
    const EACH: usize = 5;
    let stack = stack().await;
    let api = Api::new(&stack);
    let customers = futures::future::join_all((0..CUSTOMERS).map(|_| customer(&stack))).await;
    let rzp = &stack.stubs.razorpay;
    let top_up = |token: String| {
        let api = &api;
        async move {
            let key = format!("conflicts-{}", rand::random::<u64>());
            let (status, created) =
                api.post_as("/wallet/top-ups", &token, &[("idempotency-key", &key)], json!({ "amount": "100" })).await;
            assert_eq!(status, 201, "{created}");
            let paid = rzp.pay(created["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
            let body = json!({
                "razorpay_order_id": paid.razorpay_order_id,
                "razorpay_payment_id": paid.razorpay_payment_id,
                "razorpay_signature": paid.razorpay_signature,
            });
            let path = format!("/wallet/top-ups/{}/confirm", created["top_up_id"].as_str().unwrap());
            // A lost race on the wallet is a 503 with nothing written: the app tries again.
            for attempt in 1.. {
                let (status, confirmed) = api.post_as(&path, &token, &[], body.clone()).await;
                if status != 503 || attempt == 10 {
                    assert_eq!(status, 200, "{confirmed}");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
        }
    };
    let done = AtomicBool::new(false);
    let top_ups = async {
        let all = customers.iter().flat_map(|(token, _)| std::iter::repeat_n(token.clone(), EACH));
        futures::future::join_all(all.map(top_up)).await;
        done.store(true, Ordering::Relaxed);
    };
    let ((), phantoms) = futures::join!(top_ups, conflicts_until(&stack, &done));
    assert!(!phantoms.is_empty());

    let mut credited = Vec::new();
    for (_, id) in &customers {
        credited.push(settled_inbox_count(&stack, id, "WalletCredited").await);
    }
    for user in &phantoms {
        assert!(notifications_of(&stack, user).await.is_empty(), "an event of a cancelled transaction");
    }
    println!(
        "outbox relay under conflicts: {} top-ups, {} cancelled transactions in flight: WalletCredited per customer {credited:?}",
        CUSTOMERS * EACH,
        phantoms.len()
    );
    assert_eq!(credited, [EACH; CUSTOMERS], "each credit notified once");
    assert_eq!(queue_depth(&stack, "NotificationsDeadLetterQueue").await, 0);
}
