//! Wallet top-up through the local Razorpay stand-in, end to end: real SDK clients against
//! moto, through the local API Gateway. Every test ends by checking the ledger invariant.

use std::time::Duration;

use infra::LocalStack;
use integration_tests::*;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::Money;
use shared::domain::promotion::PromotionRule;
use shared::store::Store;

fn store(stack: &LocalStack) -> Store {
    Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name())
}

async fn seed_rule(stack: &LocalStack, id: &str, min: &str, max: Option<&str>, percent: u32, first_only: bool) {
    let rule = PromotionRule {
        id: id.into(),
        name: format!("{percent}% on {min} to {max:?}"),
        min_amount: min.parse().unwrap(),
        max_amount: max.map(|m| m.parse().unwrap()),
        bonus_percent: Decimal::from(percent),
        first_recharge_only: first_only,
        active: true,
    };
    store(stack).put_promotion_rule(&rule).await.unwrap();
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a money string")).parse().unwrap()
}

fn key() -> String {
    format!("key-{}", rand::random::<u64>())
}

async fn create(api: &Api, token: &str, key: &str, body: Value) -> (u16, Value) {
    api.post_as("/wallet/top-ups", token, &[("idempotency-key", key)], body).await
}

/// Creates a top-up and returns the 201 body.
async fn new_topup(api: &Api, token: &str, amount: &str) -> Value {
    let (status, body) = create(api, token, &key(), json!({ "amount": amount })).await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn confirm(api: &Api, token: &str, id: &str, paid: &infra::stubs::razorpay::Paid) -> (u16, Value) {
    let body = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    api.post_as(&format!("/wallet/top-ups/{id}/confirm"), token, &[], body).await
}

async fn wallet(api: &Api, token: &str) -> Value {
    let (status, body) = api.get("/wallet", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn count(items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>], pk: &str) -> usize {
    items.iter().filter(|i| i["PK"].as_s().is_ok_and(|s| s.starts_with(pk))).count()
}

/// The DynamoDB calls a request made. The notifications consumer writes with
/// TransactWriteItems too, so the test lets each notification settle before it counts.
fn top_up_calls(stack: &LocalStack) -> Vec<String> {
    stack.calls.dynamodb()
}

/// `count` invoices, each number at most 16 characters (GST rule 46(b)), numbered 1, 2, 3...
/// within its series (`AK2627-7-000042`: financial year 2026-27, series 7, number 42).
async fn assert_gapless_invoice_series(stack: &LocalStack, count: usize) {
    let fy: String = shared::domain::invoice::financial_year(chrono::Utc::now())
        .chars()
        .filter(char::is_ascii_digit)
        .skip(2)
        .collect();
    let numbers: Vec<String> = all_items(stack)
        .await
        .iter()
        .filter(|i| i["SK"].as_s().is_ok_and(|s| s == "INVOICE"))
        .map(|i| i["invoice_number"].as_s().unwrap().clone())
        .collect();
    assert_eq!(numbers.len(), count, "{numbers:?}");
    let mut series: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for n in &numbers {
        assert!(n.len() <= 16 && n.starts_with(&format!("AK{fy}-")), "{n}");
        let (head, seq) = n.rsplit_once('-').unwrap();
        series.entry(head.to_owned()).or_default().push(seq.parse().unwrap());
    }
    for (head, mut seqs) in series {
        seqs.sort();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "series {head} has a gap or a duplicate");
    }
}

#[tokio::test]
async fn customer_tops_up_500_with_a_20_percent_rule_and_replays_change_nothing() {
    let stack = stack().await;
    seed_rule(&stack, "r20", "500", Some("10000"), 20, false).await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    assert_eq!(settled_inbox_count(&stack, &user, "UserRegistered").await, 1);

    let idem = key();
    stack.calls.clear();
    let (status, created) = create(&api, &token, &idem, json!({ "amount": 500 })).await;
    assert_eq!(status, 201, "{created}");
    assert!(top_up_calls(&stack).len() <= 3, "create: {:?}", top_up_calls(&stack));
    assert_eq!((dec(&created["amount"]), dec(&created["bonus"])), (Decimal::from(500), Decimal::from(100)));
    assert_eq!(created["status"], "pending");
    assert_eq!(created["promotion"]["rule_id"], "r20");
    let checkout = &created["checkout"];
    assert_eq!((checkout["amount"].as_u64(), checkout["currency"].as_str()), (Some(50_000), Some("INR")));
    assert_eq!(checkout["key"], infra::stubs::razorpay::KEY_ID);
    let order_id = checkout["order_id"].as_str().unwrap();
    let id = created["top_up_id"].as_str().unwrap();
    let order = stack.stubs.razorpay.order(order_id).unwrap();
    assert_eq!((order.amount, order.receipt.as_deref()), (50_000, Some(id)));
    assert_eq!(order.notes["user_id"], user.as_str());

    // A retried create returns the first answer and creates no second order.
    let (status, again) = create(&api, &token, &idem, json!({ "amount": 500 })).await;
    assert_eq!((status, &again), (201, &created));
    assert_eq!(stack.stubs.razorpay.order_count(), 1);

    // The customer pays; Razorpay sends payment.captured, then order.paid.
    let paid = stack.stubs.razorpay.pay(order_id, true).await.unwrap();
    let outcomes: Vec<_> = paid.webhooks.iter().map(|d| (d.status, d.response["status"].clone())).collect();
    assert_eq!(outcomes, vec![(200, json!("credited")), (200, json!("already_credited"))]);

    // The app's confirm arrives last and changes nothing.
    assert_eq!(settled_inbox_count(&stack, &user, "WalletCredited").await, 1);
    stack.calls.clear();
    let (status, confirmed) = confirm(&api, &token, id, &paid).await;
    assert_eq!(status, 200, "{confirmed}");
    assert!(top_up_calls(&stack).len() <= 3, "confirm: {:?}", top_up_calls(&stack));
    assert_eq!(confirmed["status"], "completed");
    assert_eq!(confirmed["payment_id"], paid.razorpay_payment_id.as_str());

    let w = wallet(&api, &token).await;
    assert_eq!(
        [&w["real_cash"], &w["bonus_cash"], &w["total"], &w["total_credited"], &w["total_debited"]].map(dec),
        [500, 100, 600, 600, 0].map(Decimal::from)
    );
    assert_eq!(w["recharge_count"], 1);

    let (status, ledger) = api.get("/wallet/transactions", Some(&token)).await;
    assert_eq!(status, 200, "{ledger}");
    let entries = ledger["transactions"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{ledger}");
    // Newest first: the bonus, then the real cash.
    assert_eq!((entries[0]["type"].as_str(), entries[0]["promotional"].as_bool()), (Some("top_up_bonus"), Some(true)));
    assert_eq!(
        [&entries[0]["bonus_delta"], &entries[0]["real_balance_after"], &entries[0]["bonus_balance_after"]].map(dec),
        [100, 500, 100].map(Decimal::from)
    );
    assert_eq!((entries[1]["type"].as_str(), entries[1]["promotional"].as_bool()), (Some("top_up"), Some(false)));
    assert_eq!(
        [&entries[1]["real_delta"], &entries[1]["real_balance_after"], &entries[1]["bonus_balance_after"]].map(dec),
        [500, 500, 0].map(Decimal::from)
    );
    assert!(entries.iter().all(|e| e["reference_id"] == id));
    assert!(ledger["next_cursor"].is_null());

    // The invoice: the first of its series this financial year, GST shown inside the ₹500,
    // split into CGST and SGST (the place of supply is the supplier's state), and what else
    // a GST invoice must carry.
    let (status, topup) = api.get(&format!("/wallet/top-ups/{id}"), Some(&token)).await;
    assert_eq!(status, 200, "{topup}");
    let invoice = &topup["invoice"];
    let number = invoice["invoice_number"].as_str().unwrap();
    assert!(number.len() <= 16 && number.ends_with("-000001"), "{number}");
    assert_eq!(
        [
            &invoice["taxable_value"],
            &invoice["gst"],
            &invoice["cgst"],
            &invoice["sgst"],
            &invoice["igst"],
            &invoice["total"]
        ]
        .map(dec),
        [
            Decimal::new(42373, 2),
            Decimal::new(7627, 2),
            Decimal::new(3813, 2),
            Decimal::new(3814, 2),
            Decimal::ZERO,
            Decimal::from(500)
        ]
    );
    assert_eq!(invoice["gst_rate_percent"], "18");
    assert_eq!(invoice["supplier_gstin"], "29ABCDE1234F1ZW");
    assert_eq!((&invoice["place_of_supply"], &invoice["sac_code"]), (&json!("29"), &json!("999799")));
    assert_eq!(entries[1]["invoice_number"], invoice["invoice_number"]);

    // Replaying the webhooks (same event ids, and new ones) and the confirm changes nothing.
    for event in ["payment.captured", "order.paid"] {
        let mut hook = stack.stubs.razorpay.webhook(event, order_id, &paid.razorpay_payment_id).unwrap();
        stack.calls.clear();
        let fresh = stack.stubs.razorpay.deliver(&hook).await.unwrap();
        assert_eq!((fresh.status, fresh.response["status"].as_str()), (200, Some("already_credited")));
        assert!(top_up_calls(&stack).len() <= 3, "webhook: {:?}", top_up_calls(&stack));
        hook.event_id = paid.webhooks[0].event_id.clone();
        let replay = stack.stubs.razorpay.deliver(&hook).await.unwrap();
        assert_eq!(replay.status, 200);
    }
    let replays = stack.stubs.razorpay.replay().await.unwrap();
    let outcomes: Vec<_> = replays.iter().map(|d| (d.status, d.response["status"].clone())).collect();
    assert!(outcomes.iter().all(|(s, o)| *s == 200 && (o == "duplicate" || o == "already_credited")), "{outcomes:?}");
    let (status, _) = confirm(&api, &token, id, &paid).await;
    assert_eq!(status, 200);
    assert_eq!(wallet(&api, &token).await, w);
    let items = all_items(&stack).await;
    assert_eq!(count(&items, "TOPUP#"), 2, "the top-up and its one invoice");
    assert_eq!(count(&items, "LEDGER#"), 2);
    assert_eq!(count(&items, "WEBHOOK#"), 1, "only the event that credited is remembered");
    assert_eq!(assert_ledger_balances(&stack).await, 2);

    // WalletCredited reaches the customer's inbox, once.
    assert_eq!(settled_inbox_count(&stack, &user, "WalletCredited").await, 1);
}

#[tokio::test]
async fn confirm_and_webhooks_racing_and_repeated_credit_once() {
    let stack = stack().await;
    seed_rule(&stack, "r20", "500", Some("10000"), 20, false).await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let created = new_topup(&api, &token, "1000").await;
    let id = created["top_up_id"].as_str().unwrap().to_owned();
    let order_id = created["checkout"]["order_id"].as_str().unwrap().to_owned();
    let rzp = stack.stubs.razorpay.clone();
    let paid = rzp.pay(&order_id, false).await.unwrap();

    let captured = rzp.webhook("payment.captured", &order_id, &paid.razorpay_payment_id).unwrap();
    let order_paid = rzp.webhook("order.paid", &order_id, &paid.razorpay_payment_id).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        for hook in [captured.clone(), order_paid.clone()] {
            let rzp = rzp.clone();
            tasks.push(tokio::spawn(async move {
                let d = rzp.deliver(&hook).await.unwrap();
                (d.status, d.response["status"].as_str().unwrap_or_default().to_owned())
            }));
        }
        let (api, token, id, paid) = (Api::new(&stack), token.clone(), id.clone(), paid.clone());
        tasks.push(tokio::spawn(async move {
            let (status, body) = confirm(&api, &token, &id, &paid).await;
            (status, body["status"].as_str().unwrap_or_default().to_owned())
        }));
    }
    let results: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert!(results.iter().all(|(status, _)| *status == 200), "{results:?}");
    let credited = results.iter().filter(|(_, s)| s == "credited").count();
    assert!(credited <= 1, "{results:?}");

    let w = wallet(&api, &token).await;
    assert_eq!([&w["real_cash"], &w["bonus_cash"]].map(dec), [1000, 200].map(Decimal::from));
    assert_eq!(w["recharge_count"], 1);
    let items = all_items(&stack).await;
    assert_eq!(count(&items, "LEDGER#"), 2);
    assert_eq!(items_with_sk(&items, "INVOICE"), 1);
    assert_eq!(assert_ledger_balances(&stack).await, 2);
}

#[tokio::test]
async fn invoice_numbers_are_sequential_without_gaps_across_customers() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (a, _) = customer(&stack).await;
    let (b, _) = customer(&stack).await;
    let mut orders = Vec::new();
    for (token, amount) in [(&a, "100"), (&b, "200"), (&a, "300"), (&b, "400")] {
        orders.push(new_topup(&api, token, amount).await["checkout"]["order_id"].as_str().unwrap().to_owned());
    }
    let rzp = stack.stubs.razorpay.clone();
    let paid = futures::future::join_all(orders.iter().map(|o| rzp.pay(o, true))).await;
    let credited: Vec<_> = paid.iter().map(|p| p.as_ref().unwrap().webhooks[0].response["status"].clone()).collect();
    assert_eq!(credited, vec![json!("credited"); 4], "{paid:?}");

    assert_gapless_invoice_series(&stack, 4).await;
    assert_eq!(
        [&wallet(&api, &a).await["real_cash"], &wallet(&api, &b).await["real_cash"]].map(dec),
        [Decimal::from(400), Decimal::from(600)]
    );
    assert_eq!(assert_ledger_balances(&stack).await, 4, "no rule: no bonus entries");
}

/// Fifty customers paying at the same moment: every first webhook credits (no 503 for
/// Razorpay to retry), and no invoice number is given twice or skipped within its series.
#[tokio::test]
async fn fifty_concurrent_credits_all_succeed_with_gapless_invoice_series() {
    const CUSTOMERS: usize = 50;
    // Fifty sign-ups from one address would meet the per-address SMS limit.
    let stack = stack_with(|o| drop(o.parameters.insert("SmsLimitPerIp".into(), "1000".into()))).await;
    let api = Api::new(&stack);
    let customers = futures::future::join_all((0..CUSTOMERS).map(|_| customer(&stack))).await;
    let orders = futures::future::join_all(customers.iter().map(|(token, _)| new_topup(&api, token, "100"))).await;
    assert!(orders.iter().all(|o| o["bonus"] == "0.00"), "no bonus is \"0.00\" like every other amount");
    let rzp = stack.stubs.razorpay.clone();
    let paid =
        futures::future::join_all(orders.iter().map(|o| rzp.pay(o["checkout"]["order_id"].as_str().unwrap(), true)))
            .await;
    let statuses: Vec<u16> = paid.iter().map(|p| p.as_ref().unwrap().webhooks[0].status).collect();
    let refused = statuses.iter().filter(|s| **s != 200).count();
    println!("{CUSTOMERS} concurrent credits: {refused} first deliveries refused ({statuses:?})");
    assert_eq!(refused, 0, "every first delivery credits: {statuses:?}");

    assert_gapless_invoice_series(&stack, CUSTOMERS).await;
    assert_eq!(assert_ledger_balances(&stack).await, CUSTOMERS);
}

#[tokio::test]
async fn bad_signatures_are_refused_and_write_nothing() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let created = new_topup(&api, &token, "500").await;
    let id = created["top_up_id"].as_str().unwrap();
    let order_id = created["checkout"]["order_id"].as_str().unwrap();
    let rzp = &stack.stubs.razorpay;
    let paid = rzp.pay(order_id, false).await.unwrap();
    let before = written_items(&stack).await;

    // Webhook: missing, wrong, signed with the wrong secret, or body altered after signing.
    let hook = rzp.webhook("payment.captured", order_id, &paid.razorpay_payment_id).unwrap();
    let path = "/webhooks/razorpay";
    let (status, body) = api.send(Method::POST, path, None, &[], Some(&hook.body)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_signature")), "{body}");
    let wrong_key = shared::signature::hmac_sha256_hex(b"not the secret", hook.body.as_bytes());
    let tampered = hook.body.replace("\"amount\":50000", "\"amount\":5000000");
    for (sig, body) in
        [("deadbeef", hook.body.as_str()), (wrong_key.as_str(), &hook.body), (&hook.signature, &tampered)]
    {
        let (status, resp) = api.send(Method::POST, path, None, &[("x-razorpay-signature", sig)], Some(body)).await;
        assert_eq!((status, resp["error"]["code"].as_str()), (401, Some("invalid_signature")), "{resp}");
    }

    // Confirm: a wrong signature, or the signature of another order (the attacker's own).
    let mut forged = paid.clone();
    forged.razorpay_signature = rzp.checkout_signature("order_someoneelse1", &paid.razorpay_payment_id);
    let (status, body) = confirm(&api, &token, id, &forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_signature")), "{body}");
    let other = new_topup(&api, &token, "500").await;
    let other_paid = rzp.pay(other["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
    let mut swapped = other_paid.clone();
    swapped.razorpay_order_id = order_id.to_owned(); // the order id sent is never trusted
    let (status, _) = confirm(&api, &token, id, &swapped).await;
    assert_eq!(status, 400);
    let mut bad_id = paid.clone();
    bad_id.razorpay_payment_id = "not-a-payment".into();
    let (status, body) = confirm(&api, &token, id, &bad_id).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("razorpay_payment_id")), "{body}");

    assert_eq!(
        written_items(&stack).await,
        before + 2,
        "only the second top-up and its idempotency record were written"
    );
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::ZERO);
    assert_eq!(assert_ledger_balances(&stack).await, 0);
}

#[tokio::test]
async fn bad_amounts_and_idempotency_misuse_are_refused_naming_the_field() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let before = written_items(&stack).await;
    for amount in [json!("abc"), json!(-5), json!("10.001"), json!(9.99), json!("50000.01"), json!(true), json!(null)] {
        let (status, body) = create(&api, &token, &key(), json!({ "amount": amount })).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("amount")), "{amount}: {body}");
    }
    let (status, body) = create(&api, &token, &key(), json!({})).await;
    assert_eq!(status, 400, "{body}");
    // serde would read `{"amount": "500.00"}` from `["500.00"]`: only an object is a body.
    let (status, body) = create(&api, &token, &key(), json!(["500.00"])).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_body")), "{body}");
    let (status, body) = api.post_as("/wallet/top-ups", &token, &[], json!({ "amount": "500" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("missing_idempotency_key")), "{body}");
    assert_eq!(written_items(&stack).await, before, "nothing written");
    assert_eq!(stack.stubs.razorpay.order_count(), 0, "Razorpay never asked");

    let k = key();
    let (status, _) = create(&api, &token, &k, json!({ "amount": "500" })).await;
    assert_eq!(status, 201);
    let (status, body) = create(&api, &token, &k, json!({ "amount": "600" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{body}");
    // A key is the caller's own: another customer's same key is a new request.
    let (other, _) = customer(&stack).await;
    let (status, _) = create(&api, &other, &k, json!({ "amount": "600" })).await;
    assert_eq!(status, 201);
    assert_eq!(stack.stubs.razorpay.order_count(), 2);

    // Concurrent requests with one key create one top-up.
    let k = key();
    let results = futures::future::join_all((0..4).map(|_| create(&api, &token, &k, json!({ "amount": "700" })))).await;
    let ids: std::collections::HashSet<_> = results.iter().map(|(s, b)| (*s, b["top_up_id"].clone())).collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert_eq!(count(&all_items(&stack).await, "TOPUP#"), 3);
}

/// A key stands for what was asked, however it was spelt; once its record has expired
/// (TTL deletes items days late) it is a new request, not a 409 on every retry.
#[tokio::test]
async fn an_idempotency_key_means_the_amount_not_its_spelling_and_expires_after_24_hours() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    let k = key();
    let (status, first) = create(&api, &token, &k, json!({ "amount": "500" })).await;
    assert_eq!(status, 201, "{first}");
    for same in [json!(500), json!("500.00"), json!(500.0)] {
        let (status, again) = create(&api, &token, &k, json!({ "amount": same })).await;
        assert_eq!((status, &again["top_up_id"]), (201, &first["top_up_id"]), "{same}: {again}");
    }
    assert_eq!(stack.stubs.razorpay.order_count(), 1);

    // The record's 24 hours are over, but TTL has not deleted it yet.
    let pk = shared::store::keys::idempotency_pk(&shared::UserId::parse(&user).unwrap(), &k);
    let past = (chrono::Utc::now() - chrono::Duration::seconds(10)).timestamp();
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(shared::store::keys::IDEMPOTENCY_SK.into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", aws_sdk_dynamodb::types::AttributeValue::N(past.to_string()))
        .send()
        .await
        .unwrap();
    let (status, fresh) = create(&api, &token, &k, json!({ "amount": "600" })).await;
    assert_eq!(status, 201, "an expired key starts afresh: {fresh}");
    assert_ne!(fresh["top_up_id"], first["top_up_id"]);
    assert_eq!(fresh["amount"], "600.00");
    // ... and is a live key again from then on.
    let (status, again) = create(&api, &token, &k, json!({ "amount": 600 })).await;
    assert_eq!((status, &again["top_up_id"]), (201, &fresh["top_up_id"]), "{again}");
    let (status, body) = create(&api, &token, &k, json!({ "amount": "500" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{body}");
    assert_eq!(stack.stubs.razorpay.order_count(), 2);
    assert_eq!(count(&all_items(&stack).await, "TOPUP#"), 2);
}

#[tokio::test]
async fn confirm_credits_only_what_razorpay_captured_for_the_order() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let rzp = &stack.stubs.razorpay;

    // Razorpay has only authorised the payment: the checkout signature is right, nothing is credited.
    let created = new_topup(&api, &token, "500").await;
    let (id, order) = (created["top_up_id"].as_str().unwrap(), created["checkout"]["order_id"].as_str().unwrap());
    assert!(rzp.order(order).unwrap().auto_capture, "orders are created with payment_capture");
    let authorized = rzp.authorize(order).unwrap();
    let before = written_items(&stack).await;
    let (status, body) = confirm(&api, &token, id, &authorized).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("payment_not_captured")), "{body}");

    // Razorpay's record of the payment says another amount, or another currency: not credited.
    let other = new_topup(&api, &token, "500").await;
    let other_id = other["top_up_id"].as_str().unwrap();
    let paid = rzp.pay(other["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
    rzp.update_payment(&paid.razorpay_payment_id, |p| p.amount = 100);
    let (status, body) = confirm(&api, &token, other_id, &paid).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("payment_mismatch")), "{body}");
    rzp.update_payment(&paid.razorpay_payment_id, |p| (p.amount, p.currency) = (50_000, "USD".into()));
    let (status, body) = confirm(&api, &token, other_id, &paid).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("payment_mismatch")), "{body}");
    assert_eq!(written_items(&stack).await, before + 2, "only the second top-up and its idempotency record");
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::ZERO);

    // Once Razorpay has captured it, the same confirm credits it, once.
    rzp.update_payment(&authorized.razorpay_payment_id, |p| p.status = "captured".into());
    let (status, body) = confirm(&api, &token, id, &authorized).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("completed")), "{body}");
    let (status, _) = confirm(&api, &token, id, &authorized).await;
    assert_eq!(status, 200);
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::from(500));
    assert_eq!(assert_ledger_balances(&stack).await, 1);
}

#[tokio::test]
async fn someone_elses_top_up_is_not_found() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (alice, _) = customer(&stack).await;
    let (mallory, _) = customer(&stack).await;
    let created = new_topup(&api, &alice, "500").await;
    let id = created["top_up_id"].as_str().unwrap();
    let paid = stack.stubs.razorpay.pay(created["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
    let (status, body) = confirm(&api, &mallory, id, &paid).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, _) = api.get(&format!("/wallet/top-ups/{id}"), Some(&mallory)).await;
    assert_eq!(status, 404);
    assert_eq!(dec(&wallet(&api, &mallory).await["real_cash"]), Decimal::ZERO);
    assert_eq!(dec(&wallet(&api, &alice).await["real_cash"]), Decimal::ZERO, "not credited to anyone");
    let (status, _) = api.get("/wallet", None).await;
    assert_eq!(status, 401);
    let (status, _) = confirm(&api, &alice, id, &paid).await;
    assert_eq!(status, 200, "the owner still can");
    assert_eq!(assert_ledger_balances(&stack).await, 1);
}

#[tokio::test]
async fn payment_failed_and_captured_in_either_order() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let rzp = &stack.stubs.razorpay;

    // A failed attempt, then a successful one: credited.
    let first = new_topup(&api, &token, "250").await;
    let order = first["checkout"]["order_id"].as_str().unwrap();
    let failed = rzp.fail(order).await.unwrap();
    assert_eq!((failed.status, failed.response["status"].as_str()), (200, Some("failed")));
    let (_, t) = api.get(&format!("/wallet/top-ups/{}", first["top_up_id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(t["status"], "failed");
    let paid = rzp.pay(order, true).await.unwrap();
    assert_eq!(paid.webhooks[0].response["status"], "credited");

    // A success, then a late payment.failed: nothing changes.
    let second = new_topup(&api, &token, "100").await;
    let order = second["checkout"]["order_id"].as_str().unwrap();
    rzp.pay(order, true).await.unwrap();
    let late = rzp.fail(order).await.unwrap();
    assert_eq!((late.status, late.response["status"].as_str()), (200, Some("ignored")));
    let (_, t) = api.get(&format!("/wallet/top-ups/{}", second["top_up_id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(t["status"], "completed");

    let w = wallet(&api, &token).await;
    assert_eq!((dec(&w["real_cash"]), &w["recharge_count"]), (Decimal::from(350), &json!(2)));
    // Events for orders that are not ours are acknowledged and ignored.
    let unknown = json!({ "event": "payment.captured", "payload": { "payment": { "entity": {
        "id": "pay_x", "order_id": "order_notours", "amount": 100, "currency": "INR", "status": "captured" } } } })
    .to_string();
    let sig = shared::signature::hmac_sha256_hex(infra::stubs::razorpay::WEBHOOK_SECRET.as_bytes(), unknown.as_bytes());
    let (status, body) =
        api.send(Method::POST, "/webhooks/razorpay", None, &[("x-razorpay-signature", &sig)], Some(&unknown)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
    assert_eq!(assert_ledger_balances(&stack).await, 2);
}

#[tokio::test]
async fn promotion_rules_at_their_edges() {
    let stack = stack().await;
    seed_rule(&stack, "mid", "500", Some("10000"), 20, false).await;
    seed_rule(&stack, "big", "10000.01", None, 25, false).await;
    seed_rule(&stack, "welcome", "100", Some("499.99"), 50, true).await;
    let api = Api::new(&stack);
    // Three customers: each holds at most 5 open top-ups (`MAX_OPEN_TOPUPS`).
    let (a, b, token) = (customer(&stack).await.0, customer(&stack).await.0, customer(&stack).await.0);
    let quote = |token: &str, amount: &'static str| {
        let (api, token) = (&api, token.to_owned());
        async move {
            let token = &token;
            let body = new_topup(api, token, amount).await;
            (dec(&body["bonus"]), body["promotion"]["rule_id"].as_str().map(str::to_owned))
        }
    };
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    assert_eq!(quote(&a, "99.99").await, (Decimal::ZERO, None));
    assert_eq!(quote(&a, "100").await, (d("50"), Some("welcome".into())));
    assert_eq!(quote(&a, "499.99").await, (d("249.99"), Some("welcome".into())), "rounded down to the paisa");
    assert_eq!(quote(&b, "500").await, (d("100"), Some("mid".into())));
    assert_eq!(quote(&b, "10000").await, (d("2000"), Some("mid".into())));
    assert_eq!(quote(&b, "10000.01").await, (d("2500"), Some("big".into())));

    // The welcome rule is for the first recharge only: once one is credited, it is gone,
    // and a second first-recharge quote paid afterwards gets the best rule that still holds
    // for it (10% on 100 to 499.99), not nothing.
    seed_rule(&stack, "small", "100", Some("499.99"), 10, false).await;
    let first = new_topup(&api, &token, "200").await;
    let second = new_topup(&api, &token, "200").await;
    assert_eq!(dec(&second["bonus"]), d("100"));
    for t in [&first, &second] {
        stack.stubs.razorpay.pay(t["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    }
    let w = wallet(&api, &token).await;
    assert_eq!([&w["real_cash"], &w["bonus_cash"]].map(dec), [d("400"), d("120")]);
    let (_, credited) =
        api.get(&format!("/wallet/top-ups/{}", second["top_up_id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(credited["bonus"], "20.00", "{credited}");
    assert_eq!(quote(&token, "200").await, (d("20"), Some("small".into())));
    assert_eq!(assert_ledger_balances(&stack).await, 4);
}

#[tokio::test]
async fn the_ledger_pages_newest_first_with_an_opaque_cursor() {
    let stack = stack().await;
    seed_rule(&stack, "r10", "100", None, 10, false).await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    for amount in ["100", "200", "300"] {
        let t = new_topup(&api, &token, amount).await;
        stack.stubs.razorpay.pay(t["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    }
    let (status, page1) = api.get("/wallet/transactions?limit=4", Some(&token)).await;
    assert_eq!(status, 200, "{page1}");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (status, page2) = api.get(&format!("/wallet/transactions?limit=4&cursor={cursor}"), Some(&token)).await;
    assert_eq!(status, 200, "{page2}");
    let all: Vec<&Value> =
        page1["transactions"].as_array().unwrap().iter().chain(page2["transactions"].as_array().unwrap()).collect();
    assert_eq!(all.len(), 6);
    let real: Vec<Decimal> = all.iter().map(|e| dec(&e["real_balance_after"])).collect();
    assert_eq!(real, [600, 600, 300, 300, 100, 100].map(Decimal::from), "newest first");
    assert!(
        page2["next_cursor"].is_null() || {
            let (_, page3) = api
                .get(&format!("/wallet/transactions?cursor={}", page2["next_cursor"].as_str().unwrap()), Some(&token))
                .await;
            page3["transactions"].as_array().unwrap().is_empty()
        }
    );

    for bad in ["cursor=garbage!", "cursor=eyJzayI6IlBST0ZJTEUifQ", "limit=0", "limit=101", "limit=ten"] {
        let (status, body) = api.get(&format!("/wallet/transactions?{bad}"), Some(&token)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Another customer's cursor only ever reads the caller's own ledger.
    let (other, _) = customer(&stack).await;
    let (status, theirs) = api.get(&format!("/wallet/transactions?cursor={cursor}"), Some(&other)).await;
    assert_eq!((status, theirs["transactions"].as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(assert_ledger_balances(&stack).await, 6);
}

#[tokio::test]
async fn razorpay_down_or_slow_gives_502_or_503_and_writes_nothing() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let razorpay = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "error": { "code": "SERVER_ERROR" } })))
        .up_to_n_times(1)
        .mount(&razorpay)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(ResponseTemplate::new(200).set_delay(shared::outbound::REQUEST_TIMEOUT + Duration::from_secs(1)))
        .mount(&razorpay)
        .await;
    let uri = razorpay.uri();
    let stack = stack_with(|o| {
        o.parameters.insert("RazorpayBaseUrl".into(), uri);
    })
    .await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let before = written_items(&stack).await;

    let (status, body) = create(&api, &token, &key(), json!({ "amount": "500" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("razorpay_error")), "{body}");
    let (status, body) = create(&api, &token, &key(), json!({ "amount": "500" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("razorpay_unavailable")), "{body}");
    drop(razorpay); // nothing listens any more
    let (status, _) = create(&api, &token, &key(), json!({ "amount": "500" })).await;
    assert_eq!(status, 503);
    assert_eq!(written_items(&stack).await, before, "no top-up and no idempotency record");
    assert_eq!(assert_ledger_balances(&stack).await, 0);
    let _ = Money::ZERO;
}

/// POSTs `body` to the webhook, signed as Razorpay signs it.
async fn signed_webhook(api: &Api, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let sig = shared::signature::hmac_sha256_hex(infra::stubs::razorpay::WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    api.send(Method::POST, "/webhooks/razorpay", None, &[("x-razorpay-signature", &sig)], Some(&body)).await
}

/// Sets attributes of a top-up item as time or a lagging index would have them.
async fn set_topup_attributes(stack: &LocalStack, id: &str, expression: &str, values: &[(&str, &str)]) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut update = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("TOPUP#{id}")))
        .key("SK", AttributeValue::S("TOPUP".into()))
        .update_expression(expression);
    for (name, value) in values {
        update = update.expression_attribute_values(*name, AttributeValue::S((*value).to_owned()));
    }
    update.send().await.unwrap();
}

#[tokio::test]
async fn webhooks_not_ours_are_acknowledged_and_ours_not_found_yet_are_retried() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    let rzp = &stack.stubs.razorpay;
    let before = written_items(&stack).await;

    // A payment not made against an order (a payment link, another integration on the
    // account): acknowledged, or Razorpay would retry it for a day and disable the webhook.
    for event in ["payment.captured", "payment.failed"] {
        let no_order = json!({ "event": event, "payload": { "payment": { "entity": {
            "id": "pay_noorder000001", "amount": 50000, "currency": "INR", "status": "captured" } } } });
        let (status, body) = signed_webhook(&api, &no_order).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ignored")), "{event}: {body}");
    }
    // An order of another deployment on the same Razorpay account (its notes name a top-up
    // this table does not have): acknowledged too, not retried for a day.
    let foreign: Value = reqwest::Client::new()
        .post(format!("{}/v1/orders", stack.stubs.razorpay_url))
        .basic_auth(infra::stubs::razorpay::KEY_ID, Some(infra::stubs::razorpay::KEY_SECRET))
        .json(&json!({ "amount": 50_000, "currency": "INR", "receipt": "tu_elsewhere", "payment_capture": 1,
            "notes": { "top_up_id": "tu_elsewhere", "user_id": user } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid = rzp.pay(foreign["id"].as_str().unwrap(), true).await.unwrap();
    let outcomes: Vec<_> = paid.webhooks.iter().map(|d| (d.status, d.response["status"].clone())).collect();
    assert_eq!(outcomes, vec![(200, json!("ignored")); 2]);
    assert_eq!(written_items(&stack).await, before, "nothing changed");

    // One of our orders whose top-up the index does not show yet (GSI1 is eventually
    // consistent): not acknowledged, so Razorpay retries it instead of it being lost.
    let created = new_topup(&api, &token, "500").await;
    let (id, order) = (created["top_up_id"].as_str().unwrap(), created["checkout"]["order_id"].as_str().unwrap());
    set_topup_attributes(&stack, id, "REMOVE GSI1PK, GSI1SK", &[]).await;
    let paid = rzp.pay(order, true).await.unwrap();
    assert!(paid.webhooks.iter().all(|d| d.status >= 500), "{:?}", paid.webhooks);
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::ZERO);

    // The index catches up; Razorpay's retries credit it, once.
    let order_key = format!("RZP_ORDER#{order}");
    set_topup_attributes(&stack, id, "SET GSI1PK = :pk, GSI1SK = :sk", &[(":pk", &order_key), (":sk", "TOPUP")]).await;
    let retried = rzp.replay().await.unwrap();
    let outcomes: Vec<_> = retried.iter().map(|d| (d.status, d.response["status"].clone())).collect();
    // Every webhook so far: the foreign order's two, then ours.
    assert_eq!(outcomes[2..], [(200, json!("credited")), (200, json!("already_credited"))]);
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::from(500));
    assert_eq!(assert_ledger_balances(&stack).await, 1);
}

#[tokio::test]
async fn a_killed_app_and_a_lost_webhook_end_credited_once_by_the_reconciliation() {
    let stack = stack().await;
    seed_rule(&stack, "r20", "100", Some("10000"), 20, false).await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    let rzp = &stack.stubs.razorpay;
    let Some(infra::functions::Handler::Scheduled(reconcile)) = stack.handler("top-up-reconcile") else {
        panic!("no top-up-reconcile function")
    };
    let ago = |minutes: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let topup = |amount: &'static str| {
        let (api, token) = (&api, &token);
        async move {
            let t = new_topup(api, token, amount).await;
            (t["top_up_id"].as_str().unwrap().to_owned(), t["checkout"]["order_id"].as_str().unwrap().to_owned())
        }
    };
    let status_of = |id: String| {
        let (api, token) = (&api, &token);
        async move { api.get(&format!("/wallet/top-ups/{id}"), Some(token)).await.1 }
    };

    // Paid and captured, but the app was killed before confirming and every webhook was lost.
    let (paid_id, paid_order) = topup("500").await;
    let paid = rzp.pay(&paid_order, false).await.unwrap();
    // Authorised, not captured yet: Razorpay captures it itself, so it waits.
    let (authorized_id, authorized_order) = topup("200").await;
    let authorized = rzp.authorize(&authorized_order).unwrap();
    // Abandoned: no payment an hour and more after it was made; and one whose attempt failed.
    let (abandoned_id, _) = topup("300").await;
    let (failed_id, failed_order) = topup("400").await;
    rzp.fail(&failed_order).await.unwrap();
    // Made a minute ago: the customer may still be paying; not asked about yet.
    let (recent_id, recent_order) = topup("600").await;
    let recent = rzp.pay(&recent_order, false).await.unwrap();
    for (id, minutes) in [(&paid_id, 6), (&authorized_id, 6), (&abandoned_id, 61), (&failed_id, 90), (&recent_id, 1)] {
        // As if created that long ago (the reconciliation finds top-ups by creation time).
        let at = ago(minutes);
        set_topup_attributes(&stack, id, "SET created_at = :at, GSI2SK = :at", &[(":at", &at)]).await;
    }

    stack.calls.clear();
    let report = reconcile(json!({})).await.unwrap();
    assert_eq!(
        report,
        json!({ "due": 4, "credited": 1, "already_credited": 0, "waiting": 1, "failed": 2, "errors": 0 })
    );
    // One Query of the open top-ups (no Scan), then per top-up the credit or the give-up.
    let calls = top_up_calls(&stack);
    assert_eq!(calls.iter().filter(|c| c.contains("Query")).count(), 1, "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("Scan")), "{calls:?}");
    let credited = status_of(paid_id.clone()).await;
    assert_eq!(
        (credited["status"].as_str(), credited["payment_id"].as_str()),
        (Some("completed"), Some(paid.razorpay_payment_id.as_str()))
    );
    for (id, status) in
        [(&authorized_id, "pending"), (&abandoned_id, "failed"), (&failed_id, "failed"), (&recent_id, "pending")]
    {
        assert_eq!(status_of(id.clone()).await["status"], status, "{id}");
    }
    let w = wallet(&api, &token).await;
    assert_eq!([&w["real_cash"], &w["bonus_cash"]].map(dec), [500, 100].map(Decimal::from));

    // The late webhook, the confirm and another run change nothing.
    let late =
        rzp.deliver(&rzp.webhook("payment.captured", &paid_order, &paid.razorpay_payment_id).unwrap()).await.unwrap();
    assert_eq!((late.status, late.response["status"].as_str()), (200, Some("already_credited")));
    let (status, _) = confirm(&api, &token, &paid_id, &paid).await;
    assert_eq!(status, 200);
    let report = reconcile(json!({})).await.unwrap();
    assert_eq!(
        report,
        json!({ "due": 1, "credited": 0, "already_credited": 0, "waiting": 1, "failed": 0, "errors": 0 })
    );
    assert_eq!(wallet(&api, &token).await, w);

    // Razorpay captures the authorised payment (its webhooks lost too): the next run credits it.
    rzp.update_payment(&authorized.razorpay_payment_id, |p| p.status = "captured".into());
    let report = reconcile(json!({})).await.unwrap();
    assert_eq!(report["credited"], 1, "{report}");
    // The recent one, once old enough.
    let at = ago(6);
    set_topup_attributes(&stack, &recent_id, "SET created_at = :at, GSI2SK = :at", &[(":at", &at)]).await;
    let report = reconcile(json!({})).await.unwrap();
    assert_eq!(
        report,
        json!({ "due": 1, "credited": 1, "already_credited": 0, "waiting": 0, "failed": 0, "errors": 0 })
    );
    let _ = recent;
    let w = wallet(&api, &token).await;
    assert_eq!([&w["real_cash"], &w["bonus_cash"]].map(dec), [1300, 260].map(Decimal::from));
    assert_eq!(w["recharge_count"], 3);
    assert_eq!(assert_ledger_balances(&stack).await, 6);
    assert_eq!(settled_inbox_count(&stack, &user, "WalletCredited").await, 3);
}

#[tokio::test]
async fn razorpay_down_on_confirm_or_reconciliation_credits_nothing_and_leaves_it_open() {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let razorpay = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "id": "order_down0000000001", "entity": "order", "amount": 50_000, "currency": "INR" }),
        ))
        .mount(&razorpay)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/payments/"))
        .respond_with(ResponseTemplate::new(200).set_delay(shared::outbound::REQUEST_TIMEOUT + Duration::from_secs(1)))
        .mount(&razorpay)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/orders/.*/payments$"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&razorpay)
        .await;
    let uri = razorpay.uri();
    let stack = stack_with(|o| {
        o.parameters.insert("RazorpayBaseUrl".into(), uri);
    })
    .await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let created = new_topup(&api, &token, "500").await;
    let id = created["top_up_id"].as_str().unwrap();
    let payment_id = "pay_down000000000001";
    let paid = infra::stubs::razorpay::Paid {
        razorpay_order_id: "order_down0000000001".into(),
        razorpay_payment_id: payment_id.into(),
        razorpay_signature: stack.stubs.razorpay.checkout_signature("order_down0000000001", payment_id),
        webhooks: Vec::new(),
    };
    let (status, body) = confirm(&api, &token, id, &paid).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("razorpay_unavailable")), "{body}");

    let at = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    set_topup_attributes(&stack, id, "SET created_at = :at, GSI2SK = :at", &[(":at", &at)]).await;
    let Some(infra::functions::Handler::Scheduled(reconcile)) = stack.handler("top-up-reconcile") else { panic!() };
    let report = reconcile(json!({})).await.unwrap();
    assert_eq!((report["due"].as_u64(), report["errors"].as_u64()), (Some(1), Some(1)), "{report}");
    let (_, topup) = api.get(&format!("/wallet/top-ups/{id}"), Some(&token)).await;
    assert_eq!(topup["status"], "pending", "left for the next run");
    assert_eq!(dec(&wallet(&api, &token).await["real_cash"]), Decimal::ZERO);
    assert_eq!(assert_ledger_balances(&stack).await, 0);
}

/// A top-up of `amount` paid and credited through Razorpay's webhooks: its payment id.
async fn paid_topup(stack: &LocalStack, api: &Api, token: &str, amount: &str) -> String {
    let created = new_topup(api, token, amount).await;
    let paid = stack.stubs.razorpay.pay(created["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    assert_eq!(paid.webhooks[0].response["status"], "credited", "{:?}", paid.webhooks);
    paid.razorpay_payment_id
}

/// `[real_cash, bonus_cash, debt]` of the caller's wallet.
async fn balances(api: &Api, token: &str) -> [Decimal; 3] {
    let w = wallet(api, token).await;
    [&w["real_cash"], &w["bonus_cash"], &w["debt"]].map(dec)
}

fn rupees<const N: usize>(values: [i64; N]) -> [Decimal; N] {
    values.map(Decimal::from)
}

#[tokio::test]
async fn a_refund_takes_the_recharge_back_once_and_what_was_spent_is_a_debt_the_next_recharge_pays() {
    let stack = stack().await;
    seed_rule(&stack, "r20", "500", Some("10000"), 20, false).await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    let rzp = stack.stubs.razorpay.clone();
    let payment = paid_topup(&stack, &api, &token, "1000").await;
    assert_eq!(balances(&api, &token).await, rupees([1000, 200, 0]));

    // 500 is spent on a consultation (bonus cash first): 700 of real cash is left.
    let (_, astrologer) = bookable_astrologer(&stack, "25").await;
    let booking = json!({ "astrologer_id": astrologer, "mode": "chat", "minutes": 20 });
    let (status, booked) = api.post_as("/consultations", &token, &[("idempotency-key", &key())], booking.clone()).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(balances(&api, &token).await, rupees([700, 0, 0]));

    // The whole recharge is refunded, and Razorpay delivers the event five times at once:
    // its 1,000 and the 200 bonus it added leave the wallet once; 500 of it was spent, so
    // the wallet takes the 700 there is and owes the rest. Nothing goes below zero.
    let refund = rzp.refund(&payment, 100_000).unwrap();
    let deliveries = futures::future::join_all((0..5).map(|_| rzp.deliver(&refund))).await;
    let mut outcomes: Vec<_> =
        deliveries.into_iter().map(|d| d.unwrap()).map(|d| (d.status, d.response["status"].clone())).collect();
    outcomes.sort_by_key(|(_, o)| o.to_string());
    assert_eq!(outcomes, [vec![(200, json!("duplicate")); 4], vec![(200, json!("reversed"))]].concat());
    assert_eq!(balances(&api, &token).await, rupees([0, 0, 500]));
    let later = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let booking = json!({ "astrologer_id": astrologer, "mode": "chat", "minutes": 5, "scheduled_at": later });
    let (status, refused) = api.post_as("/consultations", &token, &[("idempotency-key", &key())], booking).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (402, Some("insufficient_balance")), "{refused}");
    assert_eq!(settled_inbox_count(&stack, &user, "WalletReversed").await, 1);

    // The next recharge (600, 20% bonus) pays the debt first, in the same transaction.
    paid_topup(&stack, &api, &token, "600").await;
    assert_eq!(balances(&api, &token).await, rupees([100, 120, 0]));
    let (status, page) = api.get("/wallet/transactions?limit=3", Some(&token)).await;
    assert_eq!(status, 200, "{page}");
    let kinds: Vec<_> = page["transactions"].as_array().unwrap().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, [json!("debt_settlement"), json!("top_up_bonus"), json!("top_up")]);
    let settlement = &page["transactions"][0];
    assert_eq!((dec(&settlement["real_delta"]), dec(&settlement["debt_after"])), (Decimal::from(-500), Decimal::ZERO));

    // The astrologer keeps the 500 they earned; the platform carried it as a loss until
    // the debt was paid, in a ledger of its own: a loss of 500, then its recovery.
    let losses: Vec<(String, Decimal)> = all_items(&stack)
        .await
        .iter()
        .filter(|i| i["PK"].as_s().unwrap() == "PLATFORM#RECHARGE_LOSSES")
        .map(|i| (i["type"].as_s().unwrap().clone(), i["amount"].as_n().unwrap().parse().unwrap()))
        .collect();
    assert_eq!(losses, [("loss".to_owned(), Decimal::from(500)), ("recovery".to_owned(), Decimal::from(-500))]);
    let found = integration_tests::money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:?}", found.violations);

    // Replayed later, the refund still changes nothing.
    let again = rzp.deliver(&refund).await.unwrap();
    assert_eq!((again.status, again.response["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(balances(&api, &token).await, rupees([100, 120, 0]));
    assert_eq!(assert_ledger_balances(&stack).await, 7);
}

#[tokio::test]
async fn a_chargeback_holds_the_recharge_back_until_the_dispute_is_won_in_whatever_order_events_come() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, user) = customer(&stack).await;
    let rzp = stack.stubs.razorpay.clone();
    let payment = paid_topup(&stack, &api, &token, "500").await;
    let dispute = |event: &str, id: &str, phase: &str, status: &str| rzp.dispute(event, &payment, id, phase, status);
    let deliver = async |hook: Result<infra::stubs::razorpay::Webhook, _>| {
        let d = rzp.deliver(&hook.unwrap()).await.unwrap();
        (d.status, d.response["status"].as_str().unwrap_or_default().to_owned())
    };
    let ok = |outcome: &str| (200, outcome.to_owned());

    // The customer's bank disputes the recharge: the 500 is held back while it lasts.
    assert_eq!(deliver(dispute("payment.dispute.created", "disp_A1", "chargeback", "open")).await, ok("reversed"));
    assert_eq!(balances(&api, &token).await, rupees([0, 0, 0]));
    // The customer hears of it (and the notifications consumer's writes are done before
    // this test counts the webhook's own calls).
    assert_eq!(settled_inbox_count(&stack, &user, "WalletReversed").await, 1);
    stack.calls.clear();
    let review = dispute("payment.dispute.under_review", "disp_A1", "chargeback", "under_review");
    assert_eq!(deliver(review).await, ok("recorded"));
    let calls = top_up_calls(&stack);
    assert_eq!(calls.len(), 3, "Query, BatchGetItem, TransactWriteItems: {calls:?}");
    // A late copy of an earlier stage changes nothing.
    assert_eq!(deliver(dispute("payment.dispute.created", "disp_A1", "chargeback", "open")).await, ok("duplicate"));
    // Won: the 500 comes back, once.
    assert_eq!(deliver(dispute("payment.dispute.won", "disp_A1", "chargeback", "won")).await, ok("restored"));
    assert_eq!(deliver(dispute("payment.dispute.won", "disp_A1", "chargeback", "won")).await, ok("duplicate"));
    assert_eq!(balances(&api, &token).await, rupees([500, 0, 0]));

    // Another dispute whose `won` arrives before its `created`: the wallet never moves.
    assert_eq!(deliver(dispute("payment.dispute.won", "disp_B2", "chargeback", "won")).await, ok("recorded"));
    assert_eq!(deliver(dispute("payment.dispute.created", "disp_B2", "chargeback", "open")).await, ok("duplicate"));
    assert_eq!(balances(&api, &token).await, rupees([500, 0, 0]));

    // A dispute lost stays taken back; a phase we do not know is acknowledged and ignored.
    assert_eq!(deliver(dispute("payment.dispute.created", "disp_C3", "fraud", "open")).await, ok("reversed"));
    assert_eq!(deliver(dispute("payment.dispute.lost", "disp_C3", "fraud", "lost")).await, ok("recorded"));
    assert_eq!(deliver(dispute("payment.dispute.created", "disp_D4", "mystery", "open")).await, ok("ignored"));
    assert_eq!(balances(&api, &token).await, rupees([0, 0, 0]));
    assert_eq!(assert_ledger_balances(&stack).await, 4);
}

/// The app's order id and Razorpay's payment, paid at the stand-in with no webhook sent.
async fn paid_quietly(stack: &LocalStack, api: &Api, token: &str, amount: &str) -> (Value, String) {
    let created = new_topup(api, token, amount).await;
    let order = created["checkout"]["order_id"].as_str().unwrap().to_owned();
    let paid = stack.stubs.razorpay.pay(&order, false).await.unwrap();
    (created, paid.razorpay_payment_id)
}

#[tokio::test]
async fn a_refund_or_chargeback_that_overtakes_its_credit_leaves_what_razorpay_kept_whatever_comes_later() {
    let stack = stack().await;
    seed_rule(&stack, "r20", "500", Some("10000"), 20, false).await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let rzp = stack.stubs.razorpay.clone();
    let outcome = async |hook: &infra::stubs::razorpay::Webhook| {
        let d = rzp.deliver(hook).await.unwrap();
        (d.status, d.response["status"].as_str().unwrap_or_default().to_owned())
    };

    // Paid, refunded in full at Razorpay, and the refund's event comes first: the payment is
    // credited from Razorpay's record and taken straight back. The capture that Razorpay
    // retries afterwards (its copy still says `captured`) credits nothing more.
    let (created, payment) = paid_quietly(&stack, &api, &token, "500").await;
    let order = created["checkout"]["order_id"].as_str().unwrap();
    let refund = rzp.refund(&payment, 50_000).unwrap();
    assert_eq!(outcome(&refund).await, (200, "reversed".to_owned()));
    assert_eq!(balances(&api, &token).await, rupees([0, 0, 0]));
    for event in ["payment.captured", "order.paid"] {
        let late = rzp.webhook(event, order, &payment).unwrap();
        assert_eq!(outcome(&late).await, (200, "already_credited".to_owned()), "{event}");
    }
    assert_eq!(outcome(&refund).await, (200, "duplicate".to_owned()));
    assert_eq!(balances(&api, &token).await, rupees([0, 0, 0]));

    // Half refunded and the refund's event lost: a stale `payment.captured` credits the
    // payment and takes back the refund Razorpay reports, once however often it comes.
    let (created, payment) = paid_quietly(&stack, &api, &token, "1000").await;
    let order = created["checkout"]["order_id"].as_str().unwrap();
    let _lost = rzp.refund(&payment, 50_000).unwrap();
    let stale = rzp.webhook("payment.captured", order, &payment).unwrap();
    assert_eq!(outcome(&stale).await, (200, "credited".to_owned()));
    assert_eq!(outcome(&rzp.webhook("order.paid", order, &payment).unwrap()).await.1, "already_credited");
    assert_eq!(balances(&api, &token).await, rupees([500, 100, 0]));

    // A chargeback opened and lost before the credit: nothing stays in the wallet.
    let (created, payment) = paid_quietly(&stack, &api, &token, "600").await;
    let order = created["checkout"]["order_id"].as_str().unwrap();
    let lost = rzp.dispute("payment.dispute.lost", &payment, "disp_E5", "chargeback", "lost").unwrap();
    assert_eq!(outcome(&lost).await, (200, "reversed".to_owned()));
    let opened = rzp.dispute("payment.dispute.created", &payment, "disp_E5", "chargeback", "open").unwrap();
    assert_eq!(outcome(&opened).await, (200, "duplicate".to_owned()));
    assert_eq!(outcome(&rzp.webhook("payment.captured", order, &payment).unwrap()).await.1, "already_credited");
    assert_eq!(balances(&api, &token).await, rupees([500, 100, 0]));

    // The books from Razorpay's side: what each top-up left in the wallet is what Razorpay kept.
    let found = integration_tests::money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:?}", found.violations);
}

#[tokio::test]
async fn a_bonus_quote_holds_thirty_minutes_then_the_rules_at_payment_time_apply() {
    let stack = stack().await;
    seed_rule(&stack, "r50", "100", None, 50, false).await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let rzp = stack.stubs.razorpay.clone();

    // Quoted 50 % while the rule ran; staff switch it off; paid 31 minutes later: no bonus.
    let late = new_topup(&api, &token, "40000").await;
    assert_eq!(dec(&late["bonus"]), Decimal::from(20_000));
    let on_time = new_topup(&api, &token, "1000").await;
    let rules = store(&stack).promotion_rules().await.unwrap();
    let mut off = rules.into_iter().find(|r| r.id == "r50").unwrap();
    off.active = false;
    store(&stack).put_promotion_rule(&off).await.unwrap();
    let created_at =
        (chrono::Utc::now() - chrono::Duration::minutes(31)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    set_topup_attributes(&stack, late["top_up_id"].as_str().unwrap(), "SET created_at = :t", &[(":t", &created_at)])
        .await;
    let paid = rzp.pay(late["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    assert_eq!(paid.webhooks[0].response["status"], "credited");
    assert_eq!(balances(&api, &token).await, rupees([40_000, 0, 0]));
    // Within its 30 minutes, the quote is honoured though the rule is off now.
    let paid = rzp.pay(on_time["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    assert_eq!(paid.webhooks[0].response["status"], "credited");
    assert_eq!(balances(&api, &token).await, rupees([41_000, 500, 0]));
    let (_, view) = api.get(&format!("/wallet/top-ups/{}", late["top_up_id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(dec(&view["bonus"]), Decimal::ZERO, "{view}");
    assert_eq!(assert_ledger_balances(&stack).await, 3);
}

#[tokio::test]
async fn a_customer_holds_at_most_five_open_top_ups_and_paying_one_frees_its_place() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (token, _) = customer(&stack).await;
    let rzp = stack.stubs.razorpay.clone();
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(new_topup(&api, &token, "100").await);
    }
    // Six more at once: every one refused, before Razorpay is asked for an order.
    let orders = rzp.order_count();
    let refused = futures::future::join_all(
        (0..6).map(|_| async { create(&api, &token, &key(), json!({ "amount": "100" })).await }),
    )
    .await;
    for (status, body) in &refused {
        assert_eq!((*status, body["error"]["code"].as_str()), (409, Some("too_many_open_top_ups")), "{body}");
    }
    assert_eq!(rzp.order_count(), orders);
    // Paying one frees its place, once.
    let paid = rzp.pay(open[0]["checkout"]["order_id"].as_str().unwrap(), true).await.unwrap();
    assert_eq!(paid.webhooks[0].response["status"], "credited");
    let raced = futures::future::join_all(
        (0..3).map(|_| async { create(&api, &token, &key(), json!({ "amount": "100" })).await }),
    )
    .await;
    assert_eq!(raced.iter().filter(|(status, _)| *status == 201).count(), 1, "{raced:?}");
    assert_eq!(assert_ledger_balances(&stack).await, 1);
}
