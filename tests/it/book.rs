//! Paid consultations against moto through the local stack: booking holds the price once,
//! no double booking and no overdraft however requests race, promo limits hold, settlement
//! and refunds to the paisa, only the state machine's transitions, and nobody reads or
//! changes what is not theirs. After every test each ledger sums to its wallet.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use infra::LocalStack;
use infra::functions::Handler;
use integration_tests::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use shared::domain::booking::{DiscountKind, PromoCode};
use shared::store::Store;

fn key() -> String {
    format!("book-{}", rand::random::<u64>())
}

async fn book(stack: &LocalStack, token: &str, key: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as("/consultations", token, &[("idempotency-key", key)], body).await
}

/// As an app does: a 503 (busy, or a store timeout whose write may have committed) is
/// retried with the same key until there is an answer.
async fn book_retrying(stack: &LocalStack, token: &str, body: Value) -> (u16, Value) {
    let key = key();
    for _ in 0..30 {
        let (status, resp) = book(stack, token, &key, body.clone()).await;
        if status != 503 {
            return (status, resp);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    book(stack, token, &key, body).await
}

async fn act(stack: &LocalStack, token: &str, id: &str, action: &str) -> (u16, Value) {
    Api::new(stack).post_as(&format!("/consultations/{id}/{action}"), token, &[], json!({})).await
}

async fn wallet(stack: &LocalStack, token: &str) -> Value {
    Api::new(stack).get("/wallet", Some(token)).await.1
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a money string: {v}")).parse().unwrap()
}

fn store(stack: &LocalStack) -> Store {
    Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name())
}

#[tokio::test]
async fn book_start_complete_settles_to_the_paisa_with_a_promo_code() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "25").await;
    store(&stack)
        .create_promo_code(&PromoCode {
            code: "WELCOME10".into(),
            kind: DiscountKind::Percentage,
            value: Decimal::from(10),
            max_discount: Some("100".parse().unwrap()),
            min_order: "100".parse().unwrap(),
            valid_from: Utc::now() - chrono::Duration::days(1),
            valid_until: None,
            usage_limit: Some(100),
            per_user_limit: 1,
            user_type: Some(shared::UserType::User),
            active: true,
        })
        .await
        .unwrap();

    // 20 minutes at 25.00 = 500.00, less 10% = 450.00 held.
    let k = key();
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 20, "promo_code": "welcome10" });
    let (status, booked) = book(&stack, &customer, &k, body.clone()).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("AT") && id.len() == 10, "{id}");
    assert_eq!(
        (dec(&booked["price"]["discount"]), dec(&booked["price"]["amount"])),
        (Decimal::from(50), Decimal::from(450))
    );
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(550));
    // A retry with the same key is the same booking; a different body with it is refused.
    let (status, again) = book(&stack, &customer, &k, body.clone()).await;
    assert_eq!((status, &again["booking_id"]), (201, &booked["booking_id"]));
    let (status, reused) =
        book(&stack, &customer, &k, json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 21 })).await;
    assert_eq!((status, reused["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(550), "held once");

    let (status, started) = act(&stack, &astro, &id, "start").await;
    assert_eq!((status, started["status"].as_str()), (200, Some("in_progress")), "{started}");
    started_minutes_ago(&stack, &id, 7).await;
    let (status, done) = act(&stack, &astro, &id, "complete").await;
    assert_eq!(status, 200, "{done}");
    // 7 minutes (a started minute counts whole, so 7 or 8): 25.00 x m less m/20 of 50.00.
    let minutes = done["closing"]["actual_minutes"].as_u64().unwrap();
    assert!((7..=8).contains(&minutes), "{done}");
    let charged = Decimal::from(25 * minutes) - Decimal::from(50 * minutes) / Decimal::from(20);
    assert_eq!(dec(&done["closing"]["charged"]["real"]), charged);
    assert_eq!(dec(&done["closing"]["refunded"]["real"]), Decimal::from(450) - charged);
    let earnings = (charged * Decimal::from(70) / Decimal::from(100))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
    assert_eq!(dec(&done["closing"]["astrologer_earnings"]), earnings);
    assert_eq!(
        dec(&done["closing"]["astrologer_earnings"]) + dec(&done["closing"]["platform_share"]),
        charged,
        "conserved"
    );
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000) - charged);
    let (_, earned) = Api::new(&stack).get("/astrologers/me/earnings", Some(&astro)).await;
    assert_eq!((dec(&earned["balance"]), earned["entries"].as_array().unwrap().len()), (earnings, 1), "{earned}");

    // Completing again changes nothing; other transitions are refused.
    let (status, again) = act(&stack, &astro, &id, "complete").await;
    assert_eq!((status, &again["closing"]), (200, &done["closing"]));
    for (who, action) in [(&astro, "start"), (&customer, "cancel"), (&astro, "cancel")] {
        let (status, body) = act(&stack, who, &id, action).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("invalid_transition")), "{action}: {body}");
    }
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000) - charged);
    assert!(assert_ledger_balances(&stack).await >= 3);
    let earnings_account = shared::store::Account::Earnings(shared::UserId::parse(&astro_id).unwrap());
    let (w, ledger) = store(&stack).wallet_with_ledger(&earnings_account).await.unwrap().unwrap();
    shared::domain::wallet::check_ledger(&w, &ledger).unwrap();
    // Both parties hear about it, once.
    assert_eq!(settled_inbox_count(&stack, &astro_id, "ConsultationBooked").await, 1);
    assert_eq!(settled_inbox_count(&stack, &astro_id, "ConsultationCompleted").await, 1);
}

#[tokio::test]
async fn fifty_racing_bookings_of_one_slot_make_one_consultation() {
    let stack = stack().await;
    let (_, astro_id) = bookable_astrologer(&stack, "10").await;
    let mut customers = Vec::new();
    for _ in 0..5 {
        customers.push(topped_up_customer(&stack, "5000").await.0);
    }
    let at = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z").to_string();
    let body = json!({ "astrologer_id": astro_id, "mode": "video", "minutes": 30, "scheduled_at": at });
    let requests = (0..50).map(|i| {
        let (stack, token, body) = (&stack, customers[i % 5].clone(), body.clone());
        async move { book_retrying(stack, &token, body).await }
    });
    let results = futures::future::join_all(requests).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    for (status, body) in &results {
        assert!(*status == 201 || (*status == 409 && body["error"]["code"] == "slot_taken"), "{status} {body}");
    }
    // An overlapping booking later is refused; the one right after it is fine.
    let token = &customers[0];
    let overlapping = json!({ "astrologer_id": astro_id, "mode": "video", "minutes": 30, "scheduled_at": at.replace("10:00", "10:29") });
    assert_eq!(book(&stack, token, &key(), overlapping).await.0, 409);
    let after = json!({ "astrologer_id": astro_id, "mode": "video", "minutes": 30, "scheduled_at": at.replace("10:00", "10:30") });
    assert_eq!(book(&stack, token, &key(), after).await.0, 201);
    let held: Decimal = {
        let mut total = Decimal::ZERO;
        for t in &customers {
            total += Decimal::from(5000) - dec(&wallet(&stack, t).await["real_cash"]);
        }
        total
    };
    assert_eq!(held, Decimal::from(600), "two bookings of 300.00 held, nothing else");
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn a_hundred_racing_bookings_never_overdraw_one_wallet() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "500").await;
    let mut astrologers = Vec::new();
    for _ in 0..3 {
        astrologers.push(bookable_astrologer(&stack, "10").await.1);
    }
    // Each booking holds 50.00 (5 minutes at 10.00), at different times: at most 10 fit.
    let requests = (0..100).map(|i| {
        let at = (Utc::now() + chrono::Duration::days(2) + chrono::Duration::minutes(10 * i as i64))
            .format("%Y-%m-%dT%H:%M:00Z")
            .to_string();
        let body = json!({ "astrologer_id": astrologers[i % 3], "mode": "chat", "minutes": 5, "scheduled_at": at });
        let (stack, token) = (&stack, customer.clone());
        async move { book_retrying(stack, &token, body).await }
    });
    let results = futures::future::join_all(requests).await;
    for (status, body) in &results {
        // 503: the wallet stayed too busy for this request's retries: a retryable answer.
        assert!([201, 402, 503].contains(status), "{status} {body}");
        if *status == 402 {
            assert_eq!(body["error"]["code"], "insufficient_balance");
            assert!(dec(&body["error"]["shortfall"]) > Decimal::ZERO, "{body}");
        }
    }
    // What the store holds, whatever the answers said (a timed-out write may have landed).
    let (_, list) = Api::new(&stack).get("/consultations?limit=100", Some(&customer)).await;
    let created = list["consultations"].as_array().unwrap().len();
    assert!(results.iter().filter(|(s, _)| *s == 201).count() <= created);
    let w = wallet(&stack, &customer).await;
    assert!((1..=10).contains(&created), "{created} bookings from 500.00");
    assert_eq!(dec(&w["real_cash"]), Decimal::from(500) - Decimal::from(50 * created as u64), "{w}");
    assert!(dec(&w["real_cash"]) >= Decimal::ZERO);
    assert_ledger_balances(&stack).await;

    // Not enough left: 402 with exactly the shortfall; top up and retry with the same key.
    let at = (Utc::now() + chrono::Duration::days(5)).format("%Y-%m-%dT08:00:00Z").to_string();
    let body = json!({ "astrologer_id": astrologers[0], "mode": "chat", "minutes": 120, "scheduled_at": at });
    let k = key();
    let (status, short) = book(&stack, &customer, &k, body.clone()).await;
    assert_eq!(status, 402, "{short}");
    assert_eq!(dec(&short["error"]["shortfall"]), Decimal::from(1200) - dec(&w["real_cash"]));
}

#[tokio::test]
async fn promo_limits_hold_under_concurrency() {
    let stack = stack().await;
    let (_, astro_id) = bookable_astrologer(&stack, "10").await;
    store(&stack)
        .create_promo_code(&PromoCode {
            code: "FIRST3".into(),
            kind: DiscountKind::Fixed,
            value: Decimal::from(20),
            max_discount: None,
            min_order: "0".parse().unwrap(),
            valid_from: Utc::now() - chrono::Duration::days(1),
            valid_until: Some(Utc::now() + chrono::Duration::days(1)),
            usage_limit: Some(3),
            per_user_limit: 1,
            user_type: None,
            active: true,
        })
        .await
        .unwrap();
    let mut customers = Vec::new();
    for _ in 0..6 {
        customers.push(topped_up_customer(&stack, "1000").await.0);
    }
    let astro_id = &astro_id;
    let requests = customers.iter().enumerate().flat_map(|(i, token)| {
        (0..2).map(move |j| {
            let at = (Utc::now() + chrono::Duration::days(3) + chrono::Duration::minutes(20 * (i * 2 + j) as i64))
                .format("%Y-%m-%dT%H:%M:00Z")
                .to_string();
            let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": at, "promo_code": "FIRST3" });
            (token.clone(), body)
        })
    });
    let results = futures::future::join_all(requests.map(|(token, body)| {
        let stack = &stack;
        async move { book_retrying(stack, &token, body).await }
    }))
    .await;
    let discounted = results.iter().filter(|(s, b)| *s == 201 && b["price"]["discount"] == "20.00").count();
    assert_eq!(
        discounted,
        3,
        "{:?}",
        results.iter().map(|r| (r.0, r.1["error"]["message"].clone())).collect::<Vec<_>>()
    );
    for (status, body) in &results {
        assert!(
            *status == 201 || (*status == 422 && body["error"]["field"] == "promo_code") || *status == 503,
            "{status} {body}"
        );
    }
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn cancellations_refund_by_policy_and_no_shows_refund_all() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let in_days =
        |d: i64, h: &str| (Utc::now() + chrono::Duration::days(d)).format(&format!("%Y-%m-%dT{h}:00Z")).to_string();
    let scheduled =
        |at: String| json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": at });

    // The customer, with days of notice: all back.
    let (_, a) = book(&stack, &customer, &key(), scheduled(in_days(2, "09:00"))).await;
    let (status, cancelled) = act(&stack, &customer, a["booking_id"].as_str().unwrap(), "cancel").await;
    assert_eq!((status, cancelled["closing"]["refund_percent"].as_u64()), (200, Some(100)), "{cancelled}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000));

    // The astrologer, after it started: all back.
    let (_, b) =
        book(&stack, &customer, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 })).await;
    let b_id = b["booking_id"].as_str().unwrap();
    act(&stack, &astro, b_id, "start").await;
    let (status, by_astro) = act(&stack, &astro, b_id, "cancel").await;
    assert_eq!((status, by_astro["status"].as_str()), (200, Some("cancelled")), "{by_astro}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000));

    // Nobody started it by the grace period: the sweep closes it as a no-show, all back.
    let (_, c) = book(&stack, &customer, &key(), scheduled(in_days(4, "09:00"))).await;
    let c_id = c["booking_id"].as_str().unwrap().to_owned();
    let past = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("CONSULTATION#{c_id}")))
        .key("SK", AttributeValue::S("CONSULTATION".into()))
        .update_expression("SET scheduled_at = :past, DUE_AT = :past")
        .expression_attribute_values(":past", AttributeValue::S(past))
        .send()
        .await
        .unwrap();
    let Some(Handler::Scheduled(sweep)) = stack.handler("no-show-sweep") else { panic!("no sweep") };
    let report = sweep(json!({})).await.unwrap();
    assert_eq!(report["closed"], 1, "{report}");
    let report = sweep(json!({})).await.unwrap();
    assert_eq!(report["closed"], 0, "closed once: {report}");
    let (_, no_show) = Api::new(&stack).get(&format!("/consultations/{c_id}"), Some(&customer)).await;
    assert_eq!(no_show["status"], "no_show");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000));
    assert_ledger_balances(&stack).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn nobody_reads_or_changes_anothers_consultation_and_bad_input_is_4xx() {
    let stack = stack().await;
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let (other, _) = integration_tests::customer(&stack).await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let (other_astro, _) = bookable_astrologer(&stack, "10").await;
    // Tomorrow, so the instant bookings below do not collide with it.
    let tomorrow = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT06:00:00Z").to_string();
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": tomorrow });
    let (status, booked) = book(&stack, &customer, &key(), body).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap();
    for token in [&other, &other_astro] {
        let (status, _) = Api::new(&stack).get(&format!("/consultations/{id}"), Some(token)).await;
        assert_eq!(status, 404);
        for action in ["cancel", "start", "complete"] {
            let (status, _) = act(&stack, token, id, action).await;
            assert!([403, 404].contains(&status), "{action}: {status}");
        }
    }
    let (status, _) = act(&stack, &customer, id, "start").await;
    assert_eq!(status, 403, "a customer cannot start");
    let (_, mine) = Api::new(&stack).get("/consultations", Some(&customer)).await;
    assert_eq!(mine["consultations"][0]["booking_id"], id);
    let (_, theirs) = Api::new(&stack).get("/consultations", Some(&astro)).await;
    assert_eq!(theirs["consultations"][0]["customer_id"], customer_id);
    let (_, none) = Api::new(&stack).get("/consultations", Some(&other)).await;
    assert_eq!(none["consultations"], json!([]));

    let cases = [
        (json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 0 }), 400, "minutes"),
        (json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 121 }), 400, "minutes"),
        (json!({ "astrologer_id": astro_id, "mode": "fax", "minutes": 10 }), 400, "mode"),
        (json!({ "astrologer_id": "nope", "mode": "chat", "minutes": 10 }), 400, "astrologer_id"),
        (json!({ "astrologer_id": astro_id, "mode": "call", "minutes": 10 }), 422, "mode"),
        (
            json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": "2020-01-01T00:00:00Z" }),
            400,
            "scheduled_at",
        ),
        (
            json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "promo_code": "NOSUCH" }),
            422,
            "promo_code",
        ),
        (
            json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "question": "x".repeat(501) }),
            400,
            "question",
        ),
    ];
    for (body, status, field) in cases {
        let (got, resp) = book(&stack, &customer, &key(), body).await;
        assert_eq!((got, resp["error"]["field"].as_str()), (status, Some(field)), "{resp}");
    }
    let (status, resp) = Api::new(&stack)
        .send(reqwest::Method::POST, "/consultations", Some(&customer), &[("idempotency-key", "k1")], Some("[]"))
        .await;
    assert_eq!(status, 400, "{resp}");
    let (status, resp) =
        book(&stack, &astro, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 })).await;
    assert_eq!(status, 403, "astrologers do not book: {resp}");
    let (status, _) = Api::new(&stack).get("/consultations/AT00000000", Some(&customer)).await;
    assert_eq!(status, 404);
    let (status, _) = Api::new(&stack).get("/consultations?status=lost", Some(&customer)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn booking_keeps_to_its_store_round_trips() {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    stack.calls.clear();
    let (status, booked) =
        book(&stack, &customer, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 })).await;
    assert_eq!(status, 201, "{booked}");
    // Connecting now rings the astrologer: their open connections are read to push to.
    assert_eq!(stack.calls.dynamodb(), ["BatchGetItem", "TransactWriteItems", "Query"], "booking");
    let id = booked["booking_id"].as_str().unwrap();
    stack.calls.clear();
    Api::new(&stack).get(&format!("/consultations/{id}"), Some(&customer)).await;
    assert_eq!(stack.calls.dynamodb(), ["GetItem"]);
    stack.calls.clear();
    act(&stack, &astro, id, "start").await;
    assert_eq!(
        stack.calls.dynamodb(),
        ["GetItem", "TransactWriteItems", "Query"],
        "start (with the suspension check), then the customer told"
    );
    stack.calls.clear();
    let (status, _) = act(&stack, &astro, id, "complete").await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.calls.dynamodb(),
        ["GetItem", "BatchGetItem", "TransactWriteItems", "Query"],
        "complete, the customer told"
    );
}

// ---------------------------------------------------------------- how consultations end

/// Moves a consultation's `fields` (RFC 3339 times) `seconds` back, as if that much time
/// had passed (the tests cannot wait); a field it does not have is left out.
async fn shift_back(stack: &LocalStack, id: &str, seconds: i64, fields: &[&str]) {
    let item = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .get_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("CONSULTATION#{id}")))
        .key("SK", AttributeValue::S("CONSULTATION".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("a booked consultation");
    let mut update = consultation_update(stack, id);
    let mut sets = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let Some(at) = item.get(*field).and_then(|v| v.as_s().ok()) else { continue };
        let at = chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc() - chrono::Duration::seconds(seconds);
        sets.push(format!("{field} = :t{i}"));
        update = update.expression_attribute_values(
            format!(":t{i}"),
            AttributeValue::S(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    update.update_expression(format!("SET {}", sets.join(", "))).send().await.unwrap();
}

/// Every time a consultation carries (the sweep's index key too).
const TIMES: &[&str] = &["created_at", "scheduled_at", "ends_at", "started_at", "ring_expires_at", "DUE_AT"];

/// One run of the sweep, as its schedule runs it; its report.
async fn sweep(stack: &LocalStack) -> Value {
    let Some(Handler::Scheduled(sweep)) = stack.handler("no-show-sweep") else { panic!("no sweep") };
    sweep(json!({})).await.unwrap()
}

async fn earned(stack: &LocalStack, astro: &str) -> Decimal {
    dec(&Api::new(stack).get("/astrologers/me/earnings", Some(astro)).await.1["balance"])
}

async fn once_per_customer_code(stack: &LocalStack, code: &str) {
    store(stack)
        .create_promo_code(&PromoCode {
            code: code.into(),
            kind: DiscountKind::Fixed,
            value: Decimal::from(10),
            max_discount: None,
            min_order: "0".parse().unwrap(),
            valid_from: Utc::now() - chrono::Duration::days(1),
            valid_until: None,
            usage_limit: Some(2),
            per_user_limit: 1,
            user_type: None,
            active: true,
        })
        .await
        .unwrap();
}

/// docs/money.md "Cancellation policy", row 4 (issue 27, item 2): an instant consultation the
/// astrologer never starts, cancelled by the customer 5.5 minutes later, gives all of it
/// back and earns the astrologer nothing; a scheduled one whose time has passed likewise.
#[tokio::test]
async fn a_customer_left_waiting_gets_everything_back_and_the_astrologer_earns_nothing() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "20").await;
    let (status, instant) =
        book(&stack, &customer, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 })).await;
    assert_eq!(status, 201, "{instant}");
    let id = instant["booking_id"].as_str().unwrap();
    shift_back(&stack, id, 330, TIMES).await;
    let (status, cancelled) = act(&stack, &customer, id, "cancel").await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        (cancelled["closing"]["refund_percent"].as_u64(), dec(&cancelled["closing"]["astrologer_earnings"])),
        (Some(100), Decimal::ZERO),
        "{cancelled}"
    );
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000));

    // Booked for tomorrow, a day ago: the time has come and gone, nobody started it.
    let at = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z").to_string();
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": at });
    let (_, later) = book(&stack, &customer, &key(), body).await;
    let id = later["booking_id"].as_str().unwrap();
    let until_start = (chrono::DateTime::parse_from_rfc3339(&at).unwrap().to_utc() - Utc::now()).num_seconds();
    shift_back(&stack, id, until_start + 60, TIMES).await;
    let (status, cancelled) = act(&stack, &customer, id, "cancel").await;
    assert_eq!((status, cancelled["closing"]["refund_percent"].as_u64()), (200, Some(100)), "{cancelled}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000));
    assert_eq!(earned(&stack, &astro).await, Decimal::ZERO);
    assert_ledger_balances(&stack).await;
}

/// Issue 27, item 3: the customer ends a consultation in progress and pays the minutes so
/// far; the sweep ends one still running 10 minutes after its booked end, billed up to that
/// end; a start after the no-show grace is refused.
#[tokio::test]
async fn consultations_in_progress_end_by_the_customer_or_the_sweep_and_late_starts_are_refused() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let instant = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 20 });

    let (_, a) = book(&stack, &customer, &key(), instant.clone()).await;
    let a_id = a["booking_id"].as_str().unwrap();
    assert_eq!(act(&stack, &astro, a_id, "start").await.0, 200);
    started_minutes_ago(&stack, a_id, 6).await;
    let (status, ended) = act(&stack, &customer, a_id, "complete").await;
    assert_eq!((status, ended["status"].as_str()), (200, Some("completed")), "{ended}");
    let minutes = ended["closing"]["actual_minutes"].as_u64().unwrap();
    assert!((6..=7).contains(&minutes), "{ended}");
    assert_eq!(dec(&ended["closing"]["charged"]["real"]), Decimal::from(10 * minutes));
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000 - 10 * minutes));
    // The customer still cannot cancel one in progress (they end it) nor start one.
    let (_, b) = book(&stack, &customer, &key(), instant.clone()).await;
    let b_id = b["booking_id"].as_str().unwrap();
    assert_eq!(act(&stack, &customer, b_id, "start").await.0, 403);
    assert_eq!(act(&stack, &astro, b_id, "start").await.0, 200);
    let (status, refused) = act(&stack, &customer, b_id, "cancel").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("invalid_transition")), "{refused}");

    // Connected now, the meter started 30 minutes ago and left running: the 20 minutes held
    // ran out 10 minutes ago; the sweep ends it for the balance, billed 20 minutes, no more.
    shift_back(&stack, b_id, 35 * 60, TIMES).await;
    started_minutes_ago(&stack, b_id, 30).await;
    let report = sweep(&stack).await;
    assert_eq!((report["ended"].as_u64(), report["no_shows"].as_u64()), (Some(1), Some(0)), "{report}");
    let (_, swept) = Api::new(&stack).get(&format!("/consultations/{b_id}"), Some(&customer)).await;
    assert_eq!((swept["status"].as_str(), swept["closing"]["actual_minutes"].as_u64()), (Some("completed"), Some(20)));
    assert_eq!(
        (swept["end_reason"].as_str(), swept["closing"]["measured_seconds"].as_u64()),
        (Some("balance"), Some(1200))
    );
    assert_eq!(dec(&swept["closing"]["charged"]["real"]), Decimal::from(200), "{swept}");
    assert_eq!(sweep(&stack).await["closed"], 0, "swept once");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(1000 - 10 * minutes - 200));

    // A connect-now request rings for a minute: after it, nobody can answer it, and the sweep
    // expires it with everything back.
    let (_, c) = book(&stack, &customer, &key(), instant).await;
    let c_id = c["booking_id"].as_str().unwrap();
    let before = dec(&wallet(&stack, &customer).await["real_cash"]);
    shift_back(&stack, c_id, 61, TIMES).await;
    let (status, late) = act(&stack, &astro, c_id, "start").await;
    assert_eq!((status, late["error"]["code"].as_str()), (409, Some("expired")), "{late}");
    let report = sweep(&stack).await;
    assert_eq!((report["expired"].as_u64(), report["no_shows"].as_u64()), (Some(1), Some(0)), "{report}");
    let (_, expired) = Api::new(&stack).get(&format!("/consultations/{c_id}"), Some(&customer)).await;
    assert_eq!(expired["status"], "expired", "{expired}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), before + Decimal::from(200), "all back");
    // A scheduled one, past its no-show grace (15 minutes after its time), cannot start either.
    let at = (Utc::now() + chrono::Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let scheduled = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 20, "scheduled_at": at });
    let (status, d) = book(&stack, &customer, &key(), scheduled).await;
    assert_eq!(status, 201, "{d}");
    let d_id = d["booking_id"].as_str().unwrap();
    shift_back(&stack, d_id, 3 * 3600 + 16 * 60, TIMES).await;
    let (status, late) = act(&stack, &astro, d_id, "start").await;
    assert_eq!((status, late["error"]["code"].as_str()), (409, Some("too_late")), "{late}");
    let report = sweep(&stack).await;
    assert_eq!(report["no_shows"], 1, "{report}");
    assert_ledger_balances(&stack).await;
}

/// Issue 29: suspending an astrologer while a customer's request rings ends the request
/// with everything back (it is open, as a scheduled or running one is).
#[tokio::test]
async fn a_suspension_ends_a_request_that_rings() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (customer, _) = topped_up_customer(&stack, "500").await;
    let (_, astro_id) = bookable_astrologer(&stack, "10").await;
    let (status, ringing) =
        book(&stack, &customer, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 })).await;
    assert_eq!((status, ringing["status"].as_str()), (201, Some("ringing")), "{ringing}");
    let path = format!("/admin/astrologers/{astro_id}/suspend");
    let (status, suspended) = Api::new(&stack).post_as(&path, &staff, &[], json!({ "reason": "complaints" })).await;
    assert_eq!(status, 200, "{suspended}");
    let cancelled = suspended["cancelled"].as_array().unwrap();
    assert_eq!((cancelled.len(), cancelled[0]["status"].as_str()), (1, Some("cancelled")), "{suspended}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(500), "all back");
    assert_ledger_balances(&stack).await;
}

/// Issue 29: the customer extends a running session; short of money it is a 402 with the
/// shortfall, and after a top-up the same key extends it once.
#[tokio::test]
async fn a_session_is_extended_once_per_key_and_402_until_topped_up() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "100").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let (status, booked) =
        book(&stack, &customer, &key(), json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 5 })).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap();
    let extend = |key: &str, minutes: u32| {
        let (path, key, token) = (format!("/consultations/{id}/extend"), key.to_owned(), customer.clone());
        let stack = &stack;
        async move {
            Api::new(stack).post_as(&path, &token, &[("idempotency-key", &key)], json!({ "minutes": minutes })).await
        }
    };
    let (status, early) = extend("x-0", 5).await;
    assert_eq!((status, early["error"]["code"].as_str()), (409, Some("not_live")), "ringing: nothing to extend yet");
    assert_eq!(act(&stack, &astro, id, "accept").await.0, 200);
    started_minutes_ago(&stack, id, 2).await;

    let (status, short) = extend("x-1", 10).await;
    assert_eq!((status, short["error"]["code"].as_str()), (402, Some("insufficient_balance")), "{short}");
    assert_eq!(dec(&short["error"]["shortfall"]), Decimal::from(50), "₹100 asked, ₹50 left");
    integration_tests::top_up(&stack, &customer, "60").await;
    let (status, extended) = extend("x-1", 10).await;
    assert_eq!((status, extended["price"]["minutes"].as_u64()), (200, Some(15)), "{extended}");
    assert_eq!(dec(&extended["hold"]["real"]), Decimal::from(150));
    let paid_until = |c: &Value| chrono::DateTime::parse_from_rfc3339(c["paid_until"].as_str().unwrap()).unwrap();
    let started = chrono::DateTime::parse_from_rfc3339(extended["started_at"].as_str().unwrap()).unwrap();
    assert_eq!(paid_until(&extended) - started, chrono::Duration::minutes(15));
    let (status, again) = extend("x-1", 10).await;
    assert_eq!((status, &again), (200, &extended), "the same key answers the same, held once");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(10));
    let (status, too_long) = extend("x-2", 110).await;
    assert_eq!((status, too_long["error"]["field"].as_str()), (400, Some("minutes")), "{too_long}");
    // Settled on the extended hold: 2 measured minutes (whole seconds) charged, the rest back.
    let (status, done) = act(&stack, &customer, id, "complete").await;
    assert_eq!((status, done["closing"]["actual_minutes"].as_u64()), (200, Some(2)), "{done}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(160 - 20));
    assert_ledger_balances(&stack).await;
}

/// Issue 27, item 4: a use of a once-per-customer code comes back when the consultation
/// ends with a full refund, and is kept when it charged anything.
#[tokio::test]
async fn a_promo_codes_use_comes_back_with_a_full_refund() {
    let stack = stack().await;
    once_per_customer_code(&stack, "ONCE").await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "promo_code": "once" });
    let (status, first) = book(&stack, &customer, &key(), body.clone()).await;
    assert_eq!((status, dec(&first["price"]["discount"])), (201, Decimal::from(10)), "{first}");
    let id = first["booking_id"].as_str().unwrap();
    assert_eq!(act(&stack, &astro, id, "cancel").await.0, 200);

    let (status, again) = book(&stack, &customer, &key(), body.clone()).await;
    assert_eq!((status, dec(&again["price"]["discount"])), (201, Decimal::from(10)), "{again}");
    // This one is used: started and ended, so the code is spent for this customer.
    let id = again["booking_id"].as_str().unwrap();
    assert_eq!(act(&stack, &astro, id, "start").await.0, 200);
    started_minutes_ago(&stack, id, 1).await;
    assert_eq!(act(&stack, &customer, id, "complete").await.0, 200);
    let (status, refused) = book(&stack, &customer, &key(), body).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("promo_code_refused")), "{refused}");
    // Both counts: one use of its total of 2, by this customer.
    let items = all_items(&stack).await;
    let uses = |sk: &str, attr: &str| {
        items
            .iter()
            .find(|i| i["PK"].as_s().unwrap() == "PROMO#ONCE" && i["SK"].as_s().unwrap().starts_with(sk))
            .map(|i| i[attr].as_n().unwrap().to_owned())
    };
    assert_eq!((uses("PROMO", "used_count"), uses("USAGE#", "uses")), (Some("1".into()), Some("1".into())));
    assert_ledger_balances(&stack).await;
}

/// Issue 27, item 10: a suspension ends the astrologer's consultations in progress, settled
/// for the minutes used as a staff close, and a start cannot win against it.
#[tokio::test]
async fn a_suspension_ends_consultations_in_progress_and_a_racing_start_never_wins() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (customer, _) = topped_up_customer(&stack, "5000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let instant = |astro_id: &str| json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 30 });
    let (_, running) = book(&stack, &customer, &key(), instant(&astro_id)).await;
    let id = running["booking_id"].as_str().unwrap();
    assert_eq!(act(&stack, &astro, id, "start").await.0, 200);
    started_minutes_ago(&stack, id, 4).await;
    let suspend = |id: String| {
        let (stack, staff) = (&stack, &staff);
        async move {
            let path = format!("/admin/astrologers/{id}/suspend");
            Api::new(stack).post_as(&path, staff, &[], json!({ "reason": "complaints" })).await
        }
    };
    let (status, suspended) = suspend(astro_id.clone()).await;
    assert_eq!(status, 200, "{suspended}");
    let ended = suspended["ended"].as_array().unwrap();
    assert_eq!((ended.len(), ended[0]["booking_id"].as_str()), (1, Some(id)), "{suspended}");
    let minutes = ended[0]["closing"]["actual_minutes"].as_u64().unwrap();
    assert!((4..=5).contains(&minutes), "{suspended}");
    assert_eq!(dec(&wallet(&stack, &customer).await["real_cash"]), Decimal::from(5000 - 10 * minutes));
    assert_eq!(earned(&stack, &astro).await, Decimal::from(7 * minutes));
    let event = all_items(&stack)
        .await
        .into_iter()
        .find(|i| i["PK"].as_s().unwrap() == &format!("OUTBOX#consultation-completed-{id}"))
        .expect("the completion's event");
    assert!(event.contains_key("SK"));

    // Starts racing suspensions, one per astrologer: whichever lands first, nothing stays
    // open and no start answered 200 is left running.
    let mut pairs = Vec::new();
    for _ in 0..4 {
        let (token, astro_id) = bookable_astrologer(&stack, "10").await;
        let (status, c) = book(&stack, &customer, &key(), instant(&astro_id)).await;
        assert_eq!(status, 201, "{c}");
        pairs.push((token, astro_id, c["booking_id"].as_str().unwrap().to_owned()));
    }
    let stack = &stack;
    let races = pairs.iter().map(|(token, astro_id, id)| {
        let suspend = suspend(astro_id.clone());
        async move { tokio::join!(act(stack, token, id, "start"), suspend) }
    });
    for ((started, start_body), (suspended, body)) in futures::future::join_all(races).await {
        assert!([200, 403, 409].contains(&started), "{started} {start_body}");
        assert_eq!(suspended, 200, "{body}");
    }
    for (_, _, id) in &pairs {
        let (_, c) = Api::new(stack).get(&format!("/consultations/{id}"), Some(&customer)).await;
        assert!(["cancelled", "completed"].contains(&c["status"].as_str().unwrap()), "left open: {c}");
    }
    // Once suspended, a start is refused outright, whatever the consultation's state says.
    let (token, astro_id) = bookable_astrologer(stack, "10").await;
    let (_, c) = book(stack, &customer, &key(), instant(&astro_id)).await;
    let c_id = c["booking_id"].as_str().unwrap();
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("USER#{astro_id}")))
        .key("SK", AttributeValue::S("ASTROLOGER".into()))
        .update_expression("SET suspended = :s")
        .expression_attribute_values(":s", AttributeValue::S("SUSPENDED".into()))
        .send()
        .await
        .unwrap();
    let (status, refused) = act(stack, &token, c_id, "start").await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("astrologer_suspended")), "{refused}");
    assert_ledger_balances(stack).await;
}
