//! Notifications end to end: every event a person should hear about becomes one in-app
//! notification per recipient (through the outbox, the topic's filter policy and the
//! consumer's queue), once however often it is delivered; poison messages fail alone; the
//! inbox routes page, count, mark read and keep to the caller's own; "read all" covers what had
//! arrived, not what arrives later; devices register once, a token belongs to one user, a
//! user keeps at most ten, and signing out stops the pushes;
//! push goes to SNS when it is on and never costs the in-app notification when it fails.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use infra::LocalStack;
use integration_tests::*;
use serde_json::{Value, json};
use shared::domain::events::{
    ConsultationBooked, ConsultationCancelled, ConsultationCompleted, Envelope, Event, KycStatusChanged,
    ReviewSubmitted, UserRegistered, WalletCredited,
};
use shared::{KycStatus, Money, UserId, UserType};

type Item = HashMap<String, AttributeValue>;

/// Long enough for a second delivery to show up: several stream and queue poll rounds.
const SETTLE: Duration = Duration::from_secs(4);

fn new_user() -> UserId {
    UserId::parse(&uuid::Uuid::new_v4().to_string()).unwrap()
}

/// A time in the past (before any "read all" a test does).
fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 22, 10, minute, 0).unwrap()
}

fn rupees(r: u64) -> Money {
    Money::from_paise(r * 100)
}

fn welcome(user: &UserId, user_type: UserType) -> Envelope<UserRegistered> {
    let payload = UserRegistered { user_id: user.clone(), user_type, first_name: "Asha".into() };
    Envelope::new(format!("user-registered-{user}"), at(0), payload)
}

fn credited(user: &UserId, n: u32, when: DateTime<Utc>) -> Envelope<WalletCredited> {
    let payload = WalletCredited {
        user_id: user.clone(),
        top_up_id: format!("tu_{n}"),
        amount: rupees(500),
        bonus: rupees(0),
        real_cash: rupees(500),
        bonus_cash: rupees(0),
        invoice_number: format!("AK/2026-27/{n:06}"),
    };
    Envelope::new(format!("wallet-credited-tu_{n}-{user}"), when, payload)
}

fn booked(customer: &UserId, astrologer: &UserId) -> Envelope<ConsultationBooked> {
    let payload = ConsultationBooked {
        booking_id: "AT00000042".into(),
        customer_id: customer.clone(),
        astrologer_id: astrologer.clone(),
        astrologer_name: "Pandit Ravi".into(),
        mode: "chat".into(),
        scheduled_at: at(30),
        minutes: 10,
        amount: rupees(100),
    };
    Envelope::new(format!("consultation-booked-{customer}"), at(1), payload)
}

/// The outbox items of one of each event a person hears about, between one customer and
/// one astrologer.
fn every_event(customer: &UserId, astrologer: &UserId) -> Vec<Item> {
    fn outbox<P: Event>(e: Envelope<P>) -> Item {
        shared::store::outbox::outbox_item(&e)
    }
    let kyc = KycStatusChanged {
        astrologer_id: astrologer.clone(),
        kyc_request_id: "KID1".into(),
        kyc_status: KycStatus::InProgress,
        rejection_reason: None,
    };
    let cancelled = ConsultationCancelled {
        booking_id: "AT00000043".into(),
        customer_id: customer.clone(),
        astrologer_id: astrologer.clone(),
        status: "no_show".into(),
        by: "system".into(),
        refunded: rupees(100),
    };
    let completed = ConsultationCompleted {
        booking_id: "AT00000042".into(),
        customer_id: customer.clone(),
        astrologer_id: astrologer.clone(),
        astrologer_name: "Pandit Ravi".into(),
        actual_minutes: 8,
        measured_seconds: 455,
        ended_by: "customer".into(),
        charged: rupees(80),
        refunded: rupees(20),
        astrologer_earnings: rupees(56),
    };
    let review = ReviewSubmitted {
        booking_id: "AT00000042".into(),
        customer_id: customer.clone(),
        astrologer_id: astrologer.clone(),
        rating: 4,
        verified: true,
        public: true,
    };
    let id = |kind: &str| format!("{kind}-{customer}");
    vec![
        outbox(welcome(customer, UserType::User)),
        outbox(welcome(astrologer, UserType::Astrologer)),
        outbox(Envelope::new(id("kyc"), at(2), kyc)),
        outbox(credited(customer, 1, at(3))),
        outbox(booked(customer, astrologer)),
        outbox(Envelope::new(id("cancelled"), at(4), cancelled)),
        outbox(Envelope::new(id("completed"), at(5), completed)),
        outbox(Envelope::new(id("reviewed"), at(6), review)),
    ]
}

/// `user`'s notifications by event type, once `expected` arrived and nothing more did for [`SETTLE`].
async fn settled(stack: &LocalStack, user: &UserId, expected: usize) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while notifications_of(stack, user).await.len() < expected {
        assert!(Instant::now() < deadline, "{user}: {:?}", notifications_of(stack, user).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let mut by_type = BTreeMap::new();
    for item in notifications_of(stack, user).await {
        *by_type.entry(item["event_type"].as_s().unwrap().clone()).or_default() += 1;
    }
    by_type
}

/// The unread count as stored (the counter item of the inbox).
async fn stored_unread(stack: &LocalStack, user: &UserId) -> i64 {
    let pk = format!("INBOX#{user}");
    let counter = all_items(stack)
        .await
        .into_iter()
        .find(|i| i["PK"].as_s().is_ok_and(|s| *s == pk) && i["SK"].as_s().is_ok_and(|s| s == "UNREAD"));
    counter.map_or(0, |c| c["unread"].as_n().unwrap().parse().unwrap())
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test]
async fn every_event_reaches_the_right_inboxes_once_through_the_topic() {
    let stack = stack().await;
    let (customer, astrologer) = (new_user(), new_user());
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    for item in every_event(&customer, &astrologer) {
        dynamodb.put_item().table_name(stack.table_name()).set_item(Some(item)).send().await.unwrap();
    }
    let theirs = settled(&stack, &customer, 5).await;
    assert_eq!(
        theirs,
        counts(&[
            ("ConsultationBooked", 1),
            ("ConsultationCancelled", 1),
            ("ConsultationCompleted", 1),
            ("UserRegistered", 1),
            ("WalletCredited", 1)
        ])
    );
    let astrologers = settled(&stack, &astrologer, 6).await;
    assert_eq!(
        astrologers,
        counts(&[
            ("ConsultationBooked", 1),
            ("ConsultationCancelled", 1),
            ("ConsultationCompleted", 1),
            ("KycStatusChanged", 1),
            ("ReviewSubmitted", 1),
            ("UserRegistered", 1)
        ])
    );
    // Each side reads its own text, and no raw status word.
    let title = |items: &[Item], kind: &str| {
        items.iter().find(|i| i["event_type"].as_s().unwrap() == kind).map(|i| i["title"].as_s().unwrap().clone())
    };
    let (c, a) = (notifications_of(&stack, &customer).await, notifications_of(&stack, &astrologer).await);
    assert_eq!(title(&c, "ConsultationBooked").as_deref(), Some("Consultation booked"));
    assert_eq!(title(&a, "ConsultationBooked").as_deref(), Some("New booking"));
    assert_eq!(title(&c, "ConsultationCompleted").as_deref(), Some("How was your consultation?"));
    assert_eq!(title(&a, "ConsultationCompleted").as_deref(), Some("Consultation completed"));
    assert_eq!(title(&a, "KycStatusChanged").as_deref(), Some("KYC under review"));
    for item in c.iter().chain(&a) {
        let body = item["body"].as_s().unwrap();
        assert!(!body.contains("in_progress") && !body.contains("no_show") && !body.contains('_'), "{body}");
    }
    assert_eq!((stored_unread(&stack, &customer).await, stored_unread(&stack, &astrologer).await), (5, 6));
}

#[tokio::test]
async fn the_same_message_delivered_twice_notifies_each_party_once() {
    let stack = stack().await;
    let (customer, astrologer) = (new_user(), new_user());
    let body = serde_json::to_string(&booked(&customer, &astrologer)).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let queue = stack.provisioned.lookup("NotificationsQueue", "Ref").unwrap();
    for _ in 0..2 {
        sqs.send_message().queue_url(&queue).message_body(&body).send().await.unwrap();
    }
    assert_eq!(settled(&stack, &customer, 1).await, counts(&[("ConsultationBooked", 1)]));
    assert_eq!(settled(&stack, &astrologer, 1).await, counts(&[("ConsultationBooked", 1)]));
    assert_eq!((stored_unread(&stack, &customer).await, stored_unread(&stack, &astrologer).await), (1, 1));
}

#[tokio::test]
async fn poison_messages_fail_alone_and_the_rest_of_the_batch_is_notified() {
    let stack = stack_with(|o| o.poll_queues = false).await;
    let (customer, astrologer) = (new_user(), new_user());
    let good = serde_json::to_string(&booked(&customer, &astrologer)).unwrap();
    let mut malformed: Value = serde_json::from_str(&good).unwrap();
    malformed["id"] = json!("malformed");
    malformed["payload"]["customer_id"] = json!("not a user id");
    let mut unknown: Value = serde_json::from_str(&good).unwrap();
    unknown["type"] = json!("SomethingNobodyIsToldAbout");
    let review = Envelope::new(
        "reviewed",
        at(9),
        ReviewSubmitted {
            booking_id: "AT00000042".into(),
            customer_id: customer.clone(),
            astrologer_id: astrologer.clone(),
            rating: 5,
            verified: true,
            public: true,
        },
    );
    let batch = sqs_event(&[
        ("m1", good),
        ("m2", malformed.to_string()),
        ("m3", "{not an envelope".into()),
        ("m4", unknown.to_string()),
        ("m5", serde_json::to_string(&review).unwrap()),
    ]);
    let response = sqs_consumer(&stack, "notifications")(batch).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m2", "m3"], "only the poison messages come back");
    println!("notifications consumer: a batch of 5 with 2 poison messages reports exactly those 2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(settled(&stack, &customer, 1).await, counts(&[("ConsultationBooked", 1)]));
    assert_eq!(settled(&stack, &astrologer, 2).await, counts(&[("ConsultationBooked", 1), ("ReviewSubmitted", 1)]));
}

/// A signed-in customer without the welcome notification (no queue polling), and their id.
async fn quiet_customer(stack: &LocalStack) -> (String, UserId) {
    let (token, id) = customer(stack).await;
    (token, UserId::parse(&id).unwrap())
}

async fn deliver(stack: &LocalStack, envelopes: &[Envelope<WalletCredited>]) {
    let messages: Vec<_> =
        envelopes.iter().enumerate().map(|(i, e)| (format!("m{i}"), serde_json::to_string(e).unwrap())).collect();
    let refs: Vec<_> = messages.iter().map(|(id, body)| (id.as_str(), body.clone())).collect();
    assert!(sqs_consumer(stack, "notifications")(sqs_event(&refs)).await.batch_item_failures.is_empty());
}

fn invoices(page: &Value) -> Vec<String> {
    page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["body"].as_str().unwrap().split("Invoice ").nth(1).unwrap().trim_end_matches('.').to_owned())
        .collect()
}

#[tokio::test]
async fn the_inbox_pages_newest_first_counts_unread_and_marks_read() {
    let stack = stack_with(|o| o.poll_queues = false).await;
    let api = Api::new(&stack);
    let (token, me) = quiet_customer(&stack).await;
    let (other_token, _) = quiet_customer(&stack).await;
    deliver(&stack, &(1..=5).map(|n| credited(&me, n, at(n))).collect::<Vec<_>>()).await;

    stack.calls.clear();
    let (status, first) = api.get("/notifications?limit=2", Some(&token)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(stack.calls.dynamodb(), ["Query"], "a page and the unread count in one call");
    assert_eq!(invoices(&first), ["AK/2026-27/000005", "AK/2026-27/000004"]);
    assert_eq!(first["unread_count"], 5);
    assert!(
        first["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"] == false && n["event_type"] == "WalletCredited")
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    stack.calls.clear();
    let (_, second) = api.get(&format!("/notifications?limit=2&cursor={cursor}"), Some(&token)).await;
    assert_eq!(stack.calls.dynamodb(), ["Query"]);
    assert_eq!(
        (invoices(&second), &second["unread_count"]),
        (vec!["AK/2026-27/000003".into(), "AK/2026-27/000002".into()], &json!(5))
    );
    let (_, last) = api
        .get(&format!("/notifications?limit=2&cursor={}", second["next_cursor"].as_str().unwrap()), Some(&token))
        .await;
    assert_eq!(invoices(&last), ["AK/2026-27/000001"]);
    assert!(last["next_cursor"].is_null(), "{last}");

    // Mark one read, twice: one decrement.
    let fourth = first["notifications"][1]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        stack.calls.clear();
        let (status, marked) = api.post_as(&format!("/notifications/{fourth}/read"), &token, &[], json!({})).await;
        assert_eq!((status, &marked["read"]), (200, &json!(true)), "{marked}");
    }
    assert_eq!(stack.calls.dynamodb(), ["TransactWriteItems", "GetItem"], "already read: the flag, then a look");
    let (_, page) = api.get("/notifications", Some(&token)).await;
    assert_eq!(page["unread_count"], 4);
    let read: Vec<bool> =
        page["notifications"].as_array().unwrap().iter().map(|n| n["read"].as_bool().unwrap()).collect();
    assert_eq!(read, [false, true, false, false, false]);

    // Nobody else reaches it, and ids we never issued name nothing.
    let (status, body) = api.post_as(&format!("/notifications/{fourth}/read"), &other_token, &[], json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (_, theirs) = api.get("/notifications", Some(&other_token)).await;
    assert_eq!((theirs["notifications"].as_array().unwrap().len(), &theirs["unread_count"]), (0, &json!(0)));
    stack.calls.clear();
    for (bad, refused) in [("nope!", 404), ("AAAA", 404), (&*"A".repeat(300), 400)] {
        let (status, _) = api.post_as(&format!("/notifications/{bad}/read"), &token, &[], json!({})).await;
        assert_eq!(status, refused, "{bad}");
    }
    assert!(stack.calls.dynamodb().is_empty(), "checked before any store call: {:?}", stack.calls.dynamodb());
    for query in ["limit=0", "limit=51", "limit=x", "cursor=forged", "cursor=e30"] {
        let (status, body) = api.get(&format!("/notifications?{query}"), Some(&token)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_field")), "{query}");
    }

    // Read all: one call, everything read, the count 0.
    stack.calls.clear();
    let (status, all) = api.post_as("/notifications/read-all", &token, &[], json!({})).await;
    assert_eq!((status, &all["unread_count"]), (200, &json!(0)));
    assert_eq!(stack.calls.dynamodb(), ["UpdateItem"]);
    let (_, page) = api.get("/notifications", Some(&token)).await;
    assert_eq!(page["unread_count"], 0);
    assert!(page["notifications"].as_array().unwrap().iter().all(|n| n["read"] == true), "{page}");
    // Marking one of them read again changes nothing.
    let (status, _) = api
        .post_as(
            &format!("/notifications/{}/read", page["notifications"][4]["id"].as_str().unwrap()),
            &token,
            &[],
            json!({}),
        )
        .await;
    assert_eq!(status, 200);

    // "Read all" covered what had arrived when it was pressed: whatever arrives later is
    // unread, a later event and an event that happened before the press (delivered late) alike.
    deliver(&stack, &[credited(&me, 6, Utc::now() + chrono::Duration::seconds(5)), credited(&me, 7, at(7))]).await;
    let (_, page) = api.get("/notifications", Some(&token)).await;
    assert_eq!(page["unread_count"], 2, "{page}");
    let unread: Vec<_> = page["notifications"].as_array().unwrap().iter().filter(|n| n["read"] == false).collect();
    assert_eq!(invoices(&json!({ "notifications": unread })), ["AK/2026-27/000006", "AK/2026-27/000007"]);
    assert_eq!(stored_unread(&stack, &me).await, 2);
    // The late one is marked read on its own (one transaction), and the count follows.
    let late = unread[1]["id"].as_str().unwrap().to_owned();
    stack.calls.clear();
    let (status, _) = api.post_as(&format!("/notifications/{late}/read"), &token, &[], json!({})).await;
    assert_eq!((status, stack.calls.dynamodb()), (200, vec!["TransactWriteItems".to_owned()]));
    let (_, page) = api.get("/notifications", Some(&token)).await;
    assert_eq!(page["unread_count"], 1, "{page}");
    assert_eq!(stored_unread(&stack, &me).await, 1);
}

#[tokio::test]
async fn devices_register_once_and_bad_tokens_are_refused() {
    let stack = stack_with(|o| o.poll_queues = false).await;
    let api = Api::new(&stack);
    let (token, me) = quiet_customer(&stack).await;
    let fcm = "dXJ0c2VjcmV0:APA91bH-example_token.1";
    let long = "a".repeat(513);
    let short_apns = "ab".repeat(31);
    for (body, field) in [
        (r#"{}"#.to_owned(), None),
        (json!({ "platform": "sms", "token": fcm }).to_string(), Some("platform")),
        (json!({ "platform": "fcm", "token": "has space" }).to_string(), Some("token")),
        (json!({ "platform": "fcm", "token": long }).to_string(), Some("token")),
        (json!({ "platform": "apns", "token": short_apns }).to_string(), Some("token")),
        (json!({ "platform": "fcm", "token": fcm, "extra": 1 }).to_string(), None),
        (json!(["fcm", fcm]).to_string(), None),
    ] {
        let (status, resp) = api.send(reqwest::Method::POST, "/me/devices", Some(&token), &[], Some(&body)).await;
        assert_eq!(status, 400, "{body}: {resp}");
        if field.is_some() {
            assert_eq!(resp["error"]["field"].as_str(), field, "{body}: {resp}");
        }
    }
    stack.calls.clear();
    let (status, first) = api.post_as("/me/devices", &token, &[], json!({ "platform": "fcm", "token": fcm })).await;
    assert_eq!((status, &first["token"]), (201, &json!(fcm)), "{first}");
    let mut calls = stack.calls.dynamodb();
    calls[..2].sort();
    assert_eq!(calls, ["GetItem", "Query", "TransactWriteItems"], "devices and owner read together, then one write");
    stack.calls.clear();
    let (status, again) = api.post_as("/me/devices", &token, &[], json!({ "platform": "fcm", "token": fcm })).await;
    assert_eq!((status, &again), (200, &first));
    assert!(!stack.calls.dynamodb().contains(&"TransactWriteItems".to_owned()), "already theirs: nothing written");
    // An APNs token is kept in one case, so the same token in another case is the same device.
    let apns = "AB".repeat(32);
    let (status, _) = api.post_as("/me/devices", &token, &[], json!({ "platform": "apns", "token": apns })).await;
    assert_eq!(status, 201);
    let (status, _) =
        api.post_as("/me/devices", &token, &[], json!({ "platform": "apns", "token": apns.to_lowercase() })).await;
    assert_eq!(status, 200);
    let devices = store(&stack).devices(&me).await.unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let (status, _) = api
        .send(
            reqwest::Method::POST,
            "/me/devices",
            None,
            &[],
            Some(&json!({ "platform": "fcm", "token": fcm }).to_string()),
        )
        .await;
    assert_eq!(status, 401);
}

/// A push service that records which tokens it was asked to reach.
#[derive(Debug, Default)]
struct PushRecorder(std::sync::Mutex<Vec<String>>);

impl notifications::push::PushChannel for PushRecorder {
    fn send<'a>(
        &'a self,
        device: &'a shared::store::DeviceRecord,
        _: &'a shared::domain::messages::Message,
    ) -> notifications::push::BoxFuture<'a, Result<Option<String>, notifications::push::PushError>> {
        self.0.lock().unwrap().push(device.token.clone());
        Box::pin(async { Ok(None) })
    }
}

/// The tokens a push of a notification to `user` reaches.
async fn pushed_to(stack: &LocalStack, user: &UserId, n: u32) -> Vec<String> {
    let recorder = Arc::new(PushRecorder::default());
    let app = notifications::App { store: store(stack), push: Some(recorder.clone()) };
    let event = sqs_event(&[("m", serde_json::to_string(&credited(user, n, at(n))).unwrap())]);
    assert!(notifications::handle(&app, event).await.batch_item_failures.is_empty());
    let mut tokens = recorder.0.lock().unwrap().clone();
    tokens.sort();
    tokens
}

async fn tokens_of(stack: &LocalStack, user: &UserId) -> Vec<String> {
    let mut tokens: Vec<_> = store(stack).devices(user).await.unwrap().into_iter().map(|d| d.token).collect();
    tokens.sort();
    tokens
}

#[tokio::test]
async fn a_push_token_belongs_to_one_user_who_keeps_at_most_ten_and_can_sign_it_out() {
    let stack = stack_with(|o| o.poll_queues = false).await;
    let api = Api::new(&stack);
    let (alice, alice_id) = quiet_customer(&stack).await;
    let (bob, bob_id) = quiet_customer(&stack).await;
    let register = async |who: &str, token: &str| {
        let (status, body) = api.post_as("/me/devices", who, &[], json!({ "platform": "fcm", "token": token })).await;
        assert!(status == 201 || status == 200, "{token}: {status} {body}");
        status
    };

    // The phone changes hands: Bob signs in on the device Alice used. It is his now, and a
    // notification for Alice no longer reaches it.
    register(&alice, "shared-phone").await;
    assert_eq!(pushed_to(&stack, &alice_id, 1).await, ["shared-phone"]);
    assert_eq!(register(&bob, "shared-phone").await, 201);
    assert!(pushed_to(&stack, &alice_id, 2).await.is_empty(), "Alice's notification reaches Bob's phone");
    assert_eq!(pushed_to(&stack, &bob_id, 3).await, ["shared-phone"]);
    assert!(tokens_of(&stack, &alice_id).await.is_empty());

    // Bob registers eleven more devices, one after another: he keeps the ten newest.
    for n in 1..=11 {
        register(&bob, &format!("bob-device-{n:02}")).await;
    }
    let expected: Vec<String> = (2..=11).map(|n| format!("bob-device-{n:02}")).collect();
    assert_eq!(tokens_of(&stack, &bob_id).await, expected, "the oldest two dropped");
    assert_eq!(pushed_to(&stack, &bob_id, 4).await, expected);
    // Racing registrations cannot pass the bound either.
    let names: Vec<String> = (0..4).map(|n| format!("bob-race-{n}")).collect();
    futures::future::join_all(names.iter().map(|name| register(&bob, name))).await;
    let after = tokens_of(&stack, &bob_id).await;
    assert_eq!(after.len(), shared::domain::notification::MAX_DEVICES, "{after:?}");
    assert!((0..4).all(|n| after.contains(&format!("bob-race-{n}"))), "{after:?}");

    // Signing out: one write; the device gets no more pushes; again is the same answer.
    for _ in 0..2 {
        stack.calls.clear();
        let (status, body) = api.send(reqwest::Method::DELETE, "/me/devices/bob-race-0", Some(&bob), &[], None).await;
        assert_eq!((status, &body), (200, &json!({ "registered": false })));
        assert_eq!(stack.calls.dynamodb(), ["TransactWriteItems"]);
    }
    assert!(!pushed_to(&stack, &bob_id, 5).await.contains(&"bob-race-0".to_owned()));
    // Alice cannot sign Bob's device out: the same answer, and it stays his.
    let (status, _) = api.send(reqwest::Method::DELETE, "/me/devices/bob-race-1", Some(&alice), &[], None).await;
    assert_eq!(status, 200);
    assert!(tokens_of(&stack, &bob_id).await.contains(&"bob-race-1".to_owned()));
    // Signed out, the token is free: Alice registering it takes nothing from anyone.
    assert_eq!(register(&alice, "bob-race-0").await, 201);
    // A long FCM token (past the 128 characters of ids) signs out; nonsense is a 400 naming it.
    let long = format!("dXJ0c2VjcmV0:APA91b{}", "x".repeat(300));
    register(&alice, &long).await;
    let (status, _) = api.send(reqwest::Method::DELETE, &format!("/me/devices/{long}"), Some(&alice), &[], None).await;
    assert_eq!(status, 200);
    assert_eq!(tokens_of(&stack, &alice_id).await, ["bob-race-0"]);
    let (status, body) =
        api.send(reqwest::Method::DELETE, "/me/devices/not%20a%20token", Some(&alice), &[], None).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("token")), "{body}");
    let (status, _) = api.send(reqwest::Method::DELETE, "/me/devices/bob-race-1", None, &[], None).await;
    assert_eq!(status, 401);
}

fn store(stack: &LocalStack) -> shared::store::Store {
    shared::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name())
}

/// A push service that is down.
#[derive(Debug)]
struct PushDown;

impl notifications::push::PushChannel for PushDown {
    fn send<'a>(
        &'a self,
        _: &'a shared::store::DeviceRecord,
        _: &'a shared::domain::messages::Message,
    ) -> notifications::push::BoxFuture<'a, Result<Option<String>, notifications::push::PushError>> {
        Box::pin(async { Err(notifications::push::PushError::Service("ServiceUnavailable: down".into())) })
    }
}

#[tokio::test]
async fn a_failed_push_keeps_the_notification_and_the_batch() {
    let stack = stack_with(|o| o.poll_queues = false).await;
    let (token, me) = quiet_customer(&stack).await;
    let (status, _) =
        Api::new(&stack).post_as("/me/devices", &token, &[], json!({ "platform": "fcm", "token": "tok-1" })).await;
    assert_eq!(status, 201);
    let app = notifications::App { store: store(&stack), push: Some(Arc::new(PushDown)) };
    let event = sqs_event(&[("m1", serde_json::to_string(&credited(&me, 1, at(1))).unwrap())]);
    assert!(notifications::handle(&app, event).await.batch_item_failures.is_empty(), "a push failure is not retried");
    assert_eq!(notifications_of(&stack, &me).await.len(), 1, "the in-app notification is kept");
    assert!(captured_logs().contains("push failed"));
    assert!(captured_logs().contains("push is off"), "the stacks without a platform application say so at init");
}

#[tokio::test]
async fn push_goes_through_sns_to_each_registered_device_once() {
    // The platform application exists before the stack, as it would on AWS.
    let sns =
        aws_sdk_sns::Client::new(&infra::local_sdk_config(tokio::task::spawn_blocking(moto).await.unwrap()).await);
    let application = sns
        .create_platform_application()
        .name(format!("astrokiran-{}", uuid::Uuid::new_v4().simple()))
        .platform("GCM")
        .attributes("PlatformCredential", "fcm-server-key")
        .send()
        .await
        .unwrap()
        .platform_application_arn
        .unwrap();
    let arn = application.clone();
    let stack = stack_with(move |o| {
        o.poll_queues = false;
        o.parameters.insert("PushPlatformApplicationArn".into(), arn);
    })
    .await;
    let (token, me) = quiet_customer(&stack).await;
    let device = "fcm-device-token-1";
    let (status, _) =
        Api::new(&stack).post_as("/me/devices", &token, &[], json!({ "platform": "fcm", "token": device })).await;
    assert_eq!(status, 201);

    let handler = sqs_consumer(&stack, "notifications");
    for n in 1..=2 {
        let event = sqs_event(&[("m", serde_json::to_string(&credited(&me, n, at(n))).unwrap())]);
        assert!(handler(event).await.batch_item_failures.is_empty());
    }
    // One endpoint for the device, made once and remembered on it.
    let endpoints =
        sns.list_endpoints_by_platform_application().platform_application_arn(&application).send().await.unwrap();
    let tokens: Vec<_> = endpoints.endpoints().iter().filter_map(|e| e.attributes()?.get("Token").cloned()).collect();
    assert_eq!(tokens, [device]);
    let remembered = store(&stack).devices(&me).await.unwrap();
    assert_eq!(remembered[0].endpoint_arn.as_deref(), endpoints.endpoints()[0].endpoint_arn());

    // The device's endpoint is disabled (the app was uninstalled): the notification still lands.
    sns.set_endpoint_attributes()
        .endpoint_arn(endpoints.endpoints()[0].endpoint_arn().unwrap())
        .attributes("Enabled", "false")
        .send()
        .await
        .unwrap();
    let event = sqs_event(&[("m", serde_json::to_string(&credited(&me, 3, at(3))).unwrap())]);
    assert!(handler(event).await.batch_item_failures.is_empty());
    assert_eq!(notifications_of(&stack, &me).await.len(), 3);
    let refused =
        captured_logs().lines().filter(|l| l.contains("push failed") && l.contains("EndpointDisabled")).count();
    assert_eq!(refused, 1, "SNS refused the disabled endpoint, and it was logged");
    assert!(store(&stack).devices(&me).await.unwrap().is_empty(), "a device SNS no longer reaches is forgotten");
}
