//! Store outages at the write of every money path: DynamoDB throttles the transaction for
//! all of the SDK's attempts; the transaction keeps losing races with others (more often
//! than the path retries); it times out before reaching the store. Each time the caller gets
//! a retryable 503, nothing is half-written. Then the worst case: the store applies the write
//! and its answer is lost (a timeout after the fact), once (the SDK's own retry sends the
//! write again) or on every attempt (the caller gets a 503 though the work is done). Either
//! way the retry (the app's, with the same idempotency key, or Razorpay's redelivery) finds
//! the work done and it happens exactly once. The pollers are off, so only the request under
//! test meets the fault.

use std::collections::BTreeMap;

use infra::LocalStack;
use infra::aws_endpoint::{Fault, Stall};
use integration_tests::*;
use serde_json::{Value, json};

/// The SDK's attempts per call (`shared::config`): a throttle fails every one of them.
const ATTEMPTS: usize = 3;

/// More conflicts than any path's own retries after a lost race (`store::retry::on_conflict`).
const CONFLICTS: usize = 20;

/// How often the answer to the write that the store applied is lost.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lost {
    /// Once: the SDK sends the write again, its conditions fail on the path's own write.
    Once,
    /// On every attempt: the caller gets a 503, and retries.
    EveryAttempt,
}

/// Failed TransactWriteItems, by how.
type Injected = BTreeMap<&'static str, usize>;

/// Sends `request` with the next `times` TransactWriteItems failing with `fault`.
async fn under_fault<F, Fut>(
    stack: &LocalStack,
    injected: &mut Injected,
    (kind, fault, times): (&'static str, Fault, usize),
    what: &str,
    request: &F,
) -> (u16, Value)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let met = stack.faults.injected("TransactWriteItems");
    stack.faults.fail_next("TransactWriteItems", times, fault);
    let answer = request().await;
    stack.faults.clear("TransactWriteItems");
    let met = stack.faults.injected("TransactWriteItems") - met;
    assert!(met > 0, "{what}, {kind}: the fault was met");
    *injected.entry(kind).or_default() += met;
    answer
}

/// Runs `request` under each store failure that must change nothing (503, nothing written),
/// then with the answer to its applied write `lost`, then on a good day if it still has to.
/// Returns the answer that completed it.
async fn outage_then_retry<F, Fut>(
    stack: &LocalStack,
    injected: &mut Injected,
    lost: Lost,
    what: &str,
    request: F,
) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let before = table_state(stack).await;
    for failure in [
        ("throttled", Fault::throttled(), ATTEMPTS),
        ("lost races", Fault::transaction_conflict(), CONFLICTS),
        ("timed out unapplied", Fault::timeout(Stall::BeforeApplying), ATTEMPTS),
    ] {
        let kind = failure.0;
        let (status, body) = under_fault(stack, injected, failure, what, &request).await;
        if status != 503 {
            let logs = captured_logs();
            let errors: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
            panic!("{what}, {kind}: {status} {body}\n{}", errors.join("\n"));
        }
        assert!(body["error"]["code"].is_string(), "{what}, {kind}: the error body: {body}");
        assert!(table_state(stack).await == before, "{what}, {kind}: nothing half-written");
    }
    let times = if lost == Lost::Once { 1 } else { ATTEMPTS };
    let failure = ("timed out applied", Fault::timeout(Stall::AfterApplying), times);
    let (status, body) = under_fault(stack, injected, failure, what, &request).await;
    assert!(table_state(stack).await != before, "{what}: the store applied the write");
    println!("  {what}: the answer to its applied write lost {lost:?}: {status}");
    match status {
        // The SDK's retry of the write met the write itself, and the path saw it was done.
        200..=299 if lost == Lost::Once => return body,
        503 => {}
        _ => panic!("{what}, the answer lost {lost:?}: {status} {body}"),
    }
    let (status, body) = request().await;
    assert!((200..300).contains(&status), "{what} retried: {status} {body}");
    body
}

#[tokio::test]
async fn every_money_path_answers_a_store_outage_with_503_writes_nothing_and_its_retry_completes_once() {
    every_money_path(Lost::EveryAttempt).await;
}

#[tokio::test]
async fn every_money_path_whose_write_answer_is_lost_once_completes_once() {
    every_money_path(Lost::Once).await;
}

async fn every_money_path(lost: Lost) {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
        o.lambda_timeouts = true;
    })
    .await;
    let api = Api::new(&stack);
    let rzp = stack.stubs.razorpay.clone();
    let (customer, _) = customer(&stack).await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let (mut paths, mut injected) = (0, Injected::new());

    // Creating a top-up (the app retries with the same key).
    let create =
        || api.post_as("/wallet/top-ups", &customer, &[("idempotency-key", "faults-1")], json!({ "amount": "1000" }));
    let created = outage_then_retry(&stack, &mut injected, lost, "create a top-up", create).await;
    paths += 1;
    let id = created["top_up_id"].as_str().unwrap().to_owned();
    let order = created["checkout"]["order_id"].as_str().unwrap().to_owned();

    // Confirming it.
    let paid = rzp.pay(&order, false).await.unwrap();
    let body = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    let path = format!("/wallet/top-ups/{id}/confirm");
    let confirmed =
        outage_then_retry(&stack, &mut injected, lost, "confirm", || api.post_as(&path, &customer, &[], body.clone()))
            .await;
    paths += 1;
    assert_eq!(confirmed["status"], "completed", "{confirmed}");

    // A webhook credit (Razorpay redelivers the same event).
    let (status, second) =
        api.post_as("/wallet/top-ups", &customer, &[("idempotency-key", "faults-2")], json!({ "amount": "500" })).await;
    assert_eq!(status, 201, "{second}");
    let order = second["checkout"]["order_id"].as_str().unwrap().to_owned();
    let payment = rzp.pay(&order, false).await.unwrap().razorpay_payment_id;
    let hook = rzp.webhook("payment.captured", &order, &payment).unwrap();
    let deliver = || async {
        let d = rzp.deliver(&hook).await.unwrap();
        (d.status, d.response)
    };
    let credited = outage_then_retry(&stack, &mut injected, lost, "payment.captured", deliver).await;
    paths += 1;
    // A delivery after a lost answer finds its own credit: the event or the top-up done before.
    assert!(
        ["credited", "duplicate", "already_credited"].contains(&credited["status"].as_str().unwrap()),
        "{credited}"
    );

    // Booking, completing and cancelling.
    let later_at = (chrono::Utc::now() + chrono::Duration::hours(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bodies = [
        ("faults-3", json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10 })),
        (
            "faults-4",
            json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10, "scheduled_at": later_at }),
        ),
    ];
    let book = |i: usize| {
        let (key, body) = &bodies[i];
        let (api, customer) = (&api, &customer);
        async move { api.post_as("/consultations", customer, &[("idempotency-key", key)], body.clone()).await }
    };
    let booked = outage_then_retry(&stack, &mut injected, lost, "book", || book(0)).await;
    paths += 1;
    let now_id = booked["booking_id"].as_str().unwrap().to_owned();
    let (status, started) = api.post_as(&format!("/consultations/{now_id}/start"), &astrologer, &[], json!({})).await;
    assert_eq!(status, 200, "{started}");
    started_minutes_ago(&stack, &now_id, 4).await;
    let complete = format!("/consultations/{now_id}/complete");
    let done = outage_then_retry(&stack, &mut injected, lost, "complete", || {
        api.post_as(&complete, &astrologer, &[], json!({}))
    })
    .await;
    paths += 1;
    assert_eq!(done["status"], "completed", "{done}");
    let later = outage_then_retry(&stack, &mut injected, lost, "book later", || book(1)).await;
    paths += 1;
    let cancel = format!("/consultations/{}/cancel", later["booking_id"].as_str().unwrap());
    let cancelled =
        outage_then_retry(&stack, &mut injected, lost, "cancel", || api.post_as(&cancel, &customer, &[], json!({})))
            .await;
    paths += 1;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    // A refund of the second recharge (Razorpay redelivers it).
    let refund = rzp.refund(&payment, 20_000).unwrap();
    let deliver = || async {
        let d = rzp.deliver(&refund).await.unwrap();
        (d.status, d.response)
    };
    let reversed = outage_then_retry(&stack, &mut injected, lost, "refund.processed", deliver).await;
    paths += 1;
    assert!(["reversed", "duplicate"].contains(&reversed["status"].as_str().unwrap()), "{reversed}");

    // Everything happened once: 1,000 + 500 credited, 200 refunded, the completed
    // consultation charged its 4 minutes, the cancelled one refunded by the policy.
    let (_, wallet) = api.get("/wallet", Some(&customer)).await;
    let (_, ledger) = api.get("/wallet/transactions?limit=100", Some(&customer)).await;
    let kinds: Vec<&str> =
        ledger["transactions"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "top_up").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "hold").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "reversal").count(), 1, "{kinds:?}");
    assert_eq!(wallet["recharge_count"], 2, "{wallet}");
    // The customer's entries and the astrologer's one earning, every ledger adding up.
    assert_eq!(assert_ledger_balances(&stack).await, kinds.len() + 1);
    println!(
        "faults: {paths} money paths, the answer to each applied write lost {lost:?}: {} TransactWriteItems failed \
         {injected:?}; every unapplied failure a 503 with nothing written, every retry completed once",
        injected.values().sum::<usize>()
    );
}
