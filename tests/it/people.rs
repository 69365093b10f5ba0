//! People's own data (issue 31) as they notice it on the local stack: a customer sets their
//! birth details and sees their rashi, nakshatra and lagna; the astrologer of their
//! consultation sees them while it is on and not a week after; staff see them with an audit
//! entry; no log line holds them. The customer exports everything, then deletes the account:
//! a future consultation is refunded, real cash goes back to the payment through Razorpay
//! (exactly once, even when the deletion is interrupted after asking for the refund), the old
//! token reaches nothing, no item holds their phone, names or birth details, every ledger
//! sums, and the number signs up afresh.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use infra::LocalStack;
use infra::aws_endpoint::Fault;
use integration_tests::*;
use serde_json::{Value, json};

/// A place name no fixture uses, so its absence from logs and items means something.
const PLACE: &str = "Shaniwar Peth, Pune";
const FIRST: &str = "Meenakshi";
const LAST: &str = "Venkataraman";
const EMAIL: &str = "meenakshi.v@example.in";

fn birth() -> Value {
    json!({ "date": "1990-04-12", "time": "06:30",
        "place": { "name": PLACE, "latitude": 18.5196, "longitude": 73.8553, "time_zone": "Asia/Kolkata" } })
}

async fn patch_me(stack: &LocalStack, token: &str, body: Value) -> (u16, Value) {
    Api::new(stack).send(reqwest::Method::PATCH, "/me", Some(token), &[], Some(&body.to_string())).await
}

async fn delete_me(stack: &LocalStack, token: &str) -> (u16, Value) {
    Api::new(stack).send(reqwest::Method::DELETE, "/me", Some(token), &[], None).await
}

/// Books `astrologer_id` for 10 minutes of chat a day from now; the booking id.
async fn book_tomorrow(stack: &LocalStack, token: &str, astrologer_id: &str) -> String {
    let at = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z").to_string();
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10, "scheduled_at": at,
        "question": "Will my career change this year?" });
    let key = format!("people-{}", rand::random::<u64>());
    let (status, booked) = Api::new(stack).post_as("/consultations", token, &[("idempotency-key", &key)], body).await;
    assert_eq!(status, 201, "{booked}");
    booked["booking_id"].as_str().unwrap().to_owned()
}

async fn birth_details_as(stack: &LocalStack, token: &str, customer: &str, booking: &str) -> (u16, Value) {
    Api::new(stack).get(&format!("/customers/{customer}/birth-details?consultation={booking}"), Some(token)).await
}

fn item_text(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    format!("{item:?}")
}

#[tokio::test]
async fn birth_details_give_the_chart_and_only_the_consultations_astrologer_sees_them_while_it_lasts() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;

    // Bad details are refused field by field; a client cannot make itself anything.
    let mut far_north = birth();
    far_north["place"]["latitude"] = json!(91.5);
    for (body, field) in [
        (json!({ "birth": far_north }), "birth.place.latitude"),
        (
            json!({ "birth": { "date": "1990-04-12", "time": "06:30", "place": { "name": PLACE, "latitude": 18.5,
            "longitude": 73.8, "time_zone": "Asia/Pune" } } }),
            "birth.place.time_zone",
        ),
        (
            json!({ "birth": { "date": "2021-03-14", "time": "02:30", "place": { "name": "New York", "latitude": 40.7,
            "longitude": -74.0, "time_zone": "America/New_York" } } }),
            "birth.time",
        ),
    ] {
        let (status, refused) = patch_me(&stack, &customer, body).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (400, Some(field)), "{refused}");
    }
    for forbidden in [json!({ "user_type": "admin" }), json!({ "profile_status": "approved" }), json!([])] {
        let (status, refused) = patch_me(&stack, &customer, forbidden).await;
        assert_eq!(status, 400, "{refused}");
    }

    // The customer sets them and sees the chart basics.
    let body = json!({ "first_name": FIRST, "last_name": LAST, "gender": "female", "city": "Pune",
        "state": "Maharashtra", "birth": birth() });
    let (status, me) = patch_me(&stack, &customer, body).await;
    assert_eq!(status, 200, "{me}");
    let chart = &me["user"]["birth"]["chart"];
    // 12 April 1990, 06:30 IST: the Sun at about 28° sidereal Pisces, the lagna rising in Pisces at dawn.
    assert_eq!(chart["sun_sign"], "meena", "{chart}");
    assert!(chart["moon_sign"].is_string() && chart["nakshatra"].is_string(), "{chart}");
    assert!((1..=4).contains(&chart["pada"].as_u64().unwrap()), "{chart}");
    assert_eq!(chart["lagna"], "meena", "{chart}");
    assert_eq!(me["user"]["first_name"], FIRST);
    let (status, again) = api.get("/me", Some(&customer)).await;
    assert_eq!((status, &again["user"]["birth"]["chart"]), (200, chart), "{again}");
    // A time not known: no lagna, and the Moon's sign says whether it changed that day.
    let mut unknown = birth();
    unknown["time"] = json!("unknown");
    let (status, me) = patch_me(&stack, &customer, json!({ "birth": unknown })).await;
    assert_eq!((status, &me["user"]["birth"]["chart"]["lagna"]), (200, &Value::Null), "{me}");
    assert_eq!(me["user"]["birth"]["chart"]["time_known"], false);
    let (status, _) = patch_me(&stack, &customer, json!({ "birth": birth() })).await;
    assert_eq!(status, 200);

    // The astrologer of a booked consultation sees them; another astrologer and the customer do not.
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let (stranger, _) = bookable_astrologer(&stack, "10").await;
    let booking = book_tomorrow(&stack, &customer, &astrologer_id).await;
    let (status, seen) = birth_details_as(&stack, &astrologer, &customer_id, &booking).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!((seen["first_name"].as_str(), &seen["birth"]["chart"]), (Some(FIRST), chart));
    assert!(seen.get("phone_number").is_none() && seen.get("last_name").is_none(), "{seen}");
    for who in [&stranger, &customer] {
        let (status, refused) = birth_details_as(&stack, who, &customer_id, &booking).await;
        assert_eq!(status, 404, "{refused}");
    }
    let (status, _) = birth_details_as(&stack, &astrologer, &customer_id, &"B".repeat(3000)).await;
    assert_eq!(status, 404);

    // Completed: still visible the next hours, not a week later.
    let done = completed_consultation(&stack, &customer, (&astrologer, &astrologer_id)).await;
    let (status, _) = birth_details_as(&stack, &astrologer, &customer_id, &done).await;
    assert_eq!(status, 200);
    let week_ago = (Utc::now() - chrono::Duration::days(7)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    consultation_update(&stack, &done)
        .update_expression("SET closed_at = :at, ends_at = :at")
        .expression_attribute_values(":at", AttributeValue::S(week_ago))
        .send()
        .await
        .unwrap();
    let (status, _) = birth_details_as(&stack, &astrologer, &customer_id, &done).await;
    assert_eq!(status, 404, "a week after it ended");
    // Cancelled: never.
    let (status, _) = api.post_as(&format!("/consultations/{booking}/cancel"), &customer, &[], json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = birth_details_as(&stack, &astrologer, &customer_id, &booking).await;
    assert_eq!(status, 404, "a cancelled consultation");

    // Staff see them, and the look is in the audit log.
    let (staff, _) = staff(&stack).await;
    let (status, seen) = api.get(&format!("/admin/users/{customer_id}/birth-details"), Some(&staff)).await;
    assert_eq!((status, &seen["birth"]["chart"]), (200, chart), "{seen}");
    let (status, log) = api.get("/admin/audit", Some(&staff)).await;
    assert_eq!(status, 200);
    let looked =
        log["entries"].as_array().unwrap().iter().any(|e| {
            e["action"] == "view_birth_details" && e["target"].as_str() == Some(&format!("user:{customer_id}"))
        });
    assert!(looked, "{log}");
    let (status, _) = api.get(&format!("/admin/users/{customer_id}/birth-details"), Some(&customer)).await;
    assert_eq!(status, 403);

    // Never in a log line.
    let logs = captured_logs();
    for secret in [PLACE, "1990-04-12", "18.5196"] {
        assert!(!logs.contains(secret), "the logs hold {secret}");
    }
}

#[tokio::test]
async fn a_customer_exports_then_deletes_their_account_and_nothing_of_them_is_left_but_the_books() {
    // The pollers off: only the deletion writes while the fault below counts writes.
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let (status, signed_up) = api
        .post("/auth/signup", json!({ "phone": phone, "first_name": FIRST, "last_name": LAST, "user_type": "user" }))
        .await;
    assert_eq!(status, 201, "{signed_up}");
    let code = stack.outbox.latest_code(&phone).unwrap();
    let (status, _) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": code })).await;
    assert_eq!(status, 200);
    let customer_id = signed_up["user_id"].as_str().unwrap().to_owned();
    let customer = sign_in(&stack, &phone).await["access_token"].as_str().unwrap().to_owned();
    top_up(&stack, &customer, "1000").await;
    let (status, _) = patch_me(&stack, &customer, json!({ "birth": birth(), "city": "Pune" })).await;
    assert_eq!(status, 200);

    // An email is the account's only once the code sent to it comes back.
    let (status, me) = patch_me(&stack, &customer, json!({ "email": EMAIL })).await;
    assert_eq!((status, me["user"]["pending_email"].as_str()), (200, Some(EMAIL)), "{me}");
    assert!(me["user"].get("email").is_none() && me["user"]["email_verified"] == false, "{me}");
    let verify = |code: &str| {
        let body = json!({ "code": code }).to_string();
        let (api, customer) = (Api::new(&stack), customer.clone());
        async move { api.send(reqwest::Method::POST, "/me/email/verify", Some(&customer), &[], Some(&body)).await }
    };
    let code = stack.outbox.latest_code(EMAIL).expect("a code was emailed");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, refused) = verify(wrong).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("code_mismatch")), "{refused}");
    let (status, me) = verify(&code).await;
    assert_eq!(
        (status, me["user"]["email"].as_str(), me["user"]["email_verified"].as_bool()),
        (200, Some(EMAIL), Some(true)),
        "{me}"
    );
    assert!(me["user"].get("pending_email").is_none(), "{me}");
    let (status, again) = verify(&code).await;
    assert_eq!(status, 400, "a code works once: {again}");

    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    // ₹30 spent on a completed consultation, ₹100 held by one tomorrow.
    let done = completed_consultation(&stack, &customer, (&astrologer, &astrologer_id)).await;
    let tomorrow = book_tomorrow(&stack, &customer, &astrologer_id).await;
    let (status, wallet) = api.get("/wallet", Some(&customer)).await;
    assert_eq!((status, wallet["real_cash"].as_str()), (200, Some("870.00")), "{wallet}");
    let (status, reviewed) = api
        .post_as(&format!("/consultations/{done}/review"), &customer, &[], json!({ "rating": 5, "text": "Wise words" }))
        .await;
    assert_eq!(status, 201, "{reviewed}");

    // The export holds everything: profile and birth details, ledger, top-up, consultations.
    let (status, export) = api.get("/me/export", Some(&customer)).await;
    assert_eq!(status, 200, "{export}");
    let text = export.to_string();
    for held in [PLACE, phone.as_str(), FIRST, EMAIL, done.as_str(), tomorrow.as_str()] {
        assert!(text.contains(held), "the export holds {held}");
    }
    assert!(export["ledger"].as_array().unwrap().len() >= 4, "{}", export["ledger"]);
    assert_eq!(export["top_ups"].as_array().unwrap().len(), 2, "the top-up and its invoice");
    assert!(!text.contains("\"PK\""), "keys are not data");

    // Interrupted after Razorpay was asked for the refund (its posting throttled): a 503, and
    // the next call finishes without asking again.
    let payment = {
        let items = all_items(&stack).await;
        let topup = items.iter().find(|i| i.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("TOPUP"));
        topup.unwrap().get("payment_id").unwrap().as_s().unwrap().clone()
    };
    // Its record and the end of tomorrow's consultation pass; every write after fails.
    stack.faults.fail_after("TransactWriteItems", 2, 50, Fault::throttled());
    let (status, paused) = delete_me(&stack, &customer).await;
    stack.faults.clear("TransactWriteItems");
    // `deletion_unfinished` or `store_unavailable`, by which write met the outage first.
    assert_eq!(status, 503, "{paused}");
    assert!(paused["error"]["code"].is_string(), "{paused}");
    assert_eq!(stack.stubs.razorpay.payment(&payment).unwrap().amount_refunded, 97_000, "asked before the fault");
    let (status, record) = delete_me(&stack, &customer).await;
    assert_eq!(status, 200, "{record}");
    assert!(record["completed_at"].is_string(), "{record}");
    let refunded = record["refunds"].as_array().unwrap();
    assert_eq!(refunded.len(), 1, "one refund, however many calls: {record}");
    // ₹870 left plus ₹100 given back from tomorrow's booking.
    assert_eq!(refunded[0]["amount"], "970.00", "{record}");
    assert_eq!(record["money"]["kept_for_payout"], "0.00");
    assert_eq!(stack.stubs.razorpay.payment(&payment).unwrap().amount_refunded, 97_000, "Razorpay refunded once");
    // Razorpay's own refund.processed arrives after: the refund is applied already.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (status, again) = delete_me(&stack, &customer).await;
    assert_eq!((status, &again), (200, &record), "a finished deletion answers as it was");

    // The old token reaches nothing of theirs.
    let (status, me) = api.get("/me", Some(&customer)).await;
    assert_eq!((status, me["error"]["code"].as_str()), (401, Some("account_deleted")), "{me}");
    let (status, _) = api.get("/wallet", Some(&customer)).await;
    assert_eq!(status, 404);
    let (status, _) = patch_me(&stack, &customer, json!({ "city": "Mumbai" })).await;
    assert_eq!(status, 401);
    let device = json!({ "platform": "fcm", "token": "dXJ0c2VjcmV0:APA91bH-example_token.1" });
    let (status, refused) = api.post_as("/me/devices", &customer, &[], device).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("account_deleted")), "{refused}");
    let key = format!("after-{}", rand::random::<u64>());
    let (status, _) =
        api.post_as("/wallet/top-ups", &customer, &[("idempotency-key", &key)], json!({ "amount": "100" })).await;
    assert_eq!(status, 404, "no top-up into a deleted account");
    let (status, c) = api.get(&format!("/consultations/{tomorrow}"), Some(&astrologer)).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    assert!(c.get("question").is_none(), "{c}");
    let (status, reviews) = api.get(&format!("/astrologers/{astrologer_id}/reviews"), Some(&astrologer)).await;
    assert_eq!(status, 200, "{reviews}");
    let review = &reviews["reviews"][0];
    assert_eq!(
        (review["reviewer_first_name"].as_str(), review["text"].as_str()),
        (Some("Deleted user"), Some("Wise words"))
    );

    // No item holds their phone, names or birth details; the books stay and sum.
    let items = all_items(&stack).await;
    for item in &items {
        let text = item_text(item);
        for personal in [phone.as_str(), FIRST, LAST, EMAIL, PLACE, "1990-04-12"] {
            assert!(!text.contains(personal), "an item still holds {personal}: {text}");
        }
    }
    let ledger = items.iter().filter(|i| item_text(i).contains(&format!("LEDGER#{customer_id}"))).count();
    assert!(ledger >= 6, "the ledger stays: {ledger} entries");
    assert!(assert_ledgers_in(&stack, &items).await >= 2);
    let wallet = items
        .iter()
        .find(|i| item_text(i).contains(&format!("USER#{customer_id}")) && item_text(i).contains("WALLET"))
        .unwrap();
    assert_eq!(wallet.get("real_cash").unwrap().as_n().unwrap().parse::<f64>().unwrap(), 0.0);
    assert!(wallet.contains_key("closed_at"));
    let logs = captured_logs();
    for personal in [phone.as_str(), PLACE, "1990-04-12", EMAIL] {
        assert!(!logs.contains(personal), "a log line holds {personal}");
    }

    // The number signs up afresh: a new account.
    let again = sign_up(&stack, &phone, "user").await;
    assert_ne!(again["user_id"].as_str().unwrap(), customer_id);
    let token = sign_in(&stack, &phone).await["access_token"].as_str().unwrap().to_owned();
    let (status, me) = api.get("/me", Some(&token)).await;
    assert_eq!((status, me["wallet"]["real_cash"].as_str()), (200, Some("0.00")), "{me}");
}

#[tokio::test]
async fn an_account_cannot_be_deleted_during_a_consultation() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, customer_id) = topped_up_customer(&stack, "500").await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let key = format!("live-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10 });
    let (status, rung) = api.post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    assert_eq!(status, 201, "{rung}");
    let id = rung["booking_id"].as_str().unwrap();
    let (status, _) = api.post_as(&format!("/consultations/{id}/accept"), &astrologer, &[], json!({})).await;
    assert_eq!(status, 200);
    for token in [&customer, &astrologer] {
        let (status, refused) = delete_me(&stack, token).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("consultation_in_progress")), "{refused}");
    }
    let (status, me) = api.get("/me", Some(&customer)).await;
    assert_eq!((status, me["user"]["user_id"].as_str()), (200, Some(customer_id.as_str())));
}

/// Writes `n` notifications of about `bytes` each into `user`'s inbox, straight into the
/// table (BatchWriteItem, 25 at a time): a long-standing customer's inbox.
async fn seed_inbox(stack: &LocalStack, user: &str, from: usize, n: usize, bytes: usize) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let body = "Your consultation with Acharya Asha is confirmed for tomorrow. ".repeat(bytes / 32 + 1);
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(25) {
        let writes = chunk
            .iter()
            .map(|i| {
                let item = [
                    ("PK", format!("INBOX#{user}")),
                    ("SK", format!("NOTIF#2026-01-01T00:00:00.{i:06}Z#ev-{i}")),
                    ("entity", "notification".into()),
                    ("title", "Consultation confirmed".into()),
                    ("body", body[..bytes].to_owned()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
                .collect();
                WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().unwrap()).build()
            })
            .collect();
        client.batch_write_item().request_items(stack.table_name(), writes).send().await.unwrap();
    }
}

/// The export's bound, as tested: 5,000 notifications of 250 bytes besides the account come
/// back in one document; 6 MB of them are refused with 413 rather than cut short.
#[tokio::test]
async fn a_heavy_users_export_comes_back_whole_and_one_past_the_bound_is_refused() {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let api = Api::new(&stack);
    let (customer, customer_id) = topped_up_customer(&stack, "500").await;
    seed_inbox(&stack, &customer_id, 0, 5_000, 250).await;
    let started = std::time::Instant::now();
    let (status, export) = api.get("/me/export", Some(&customer)).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{}", export["error"]);
    assert_eq!(export["notifications"].as_array().unwrap().len(), 5_000);
    println!("export of 5,000 notifications: {} bytes in {took:?} (debug build, moto)", export.to_string().len());

    seed_inbox(&stack, &customer_id, 5_000, 1_500, 4_000).await;
    let (status, refused) = api.get("/me/export", Some(&customer)).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (413, Some("export_too_large")), "{refused}");
}

#[tokio::test]
async fn an_astrologer_who_deletes_their_account_is_unlisted_and_their_customers_refunded() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let done = completed_consultation(&stack, &customer, (&astrologer, &astrologer_id)).await;
    let tomorrow = book_tomorrow(&stack, &customer, &astrologer_id).await;
    let (status, record) = delete_me(&stack, &astrologer).await;
    assert_eq!(status, 200, "{record}");

    // The customer gets back all that was held for tomorrow; the consultation shows no name.
    let (status, c) = api.get(&format!("/consultations/{tomorrow}"), Some(&customer)).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    assert_eq!(c["astrologer_name"], "Deleted astrologer");
    let (status, wallet) = api.get("/wallet", Some(&customer)).await;
    assert_eq!((status, wallet["real_cash"].as_str()), (200, Some("970.00")), "{wallet}");
    let (status, past) = api.get(&format!("/consultations/{done}"), Some(&customer)).await;
    assert_eq!((status, past["status"].as_str()), (200, Some("completed")), "{past}");

    // Gone from the catalogue; what they earned stays on the books.
    let (status, _) = api.get(&format!("/astrologers/{astrologer_id}"), Some(&customer)).await;
    assert_eq!(status, 404);
    let (status, page) = api.get("/astrologers", Some(&customer)).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.to_string().contains(&astrologer_id), "{page}");
    let items = all_items(&stack).await;
    let earnings = items.iter().find(|i| item_text(i).contains(&format!("EARNINGS#{astrologer_id}"))).unwrap();
    assert_eq!(earnings.get("real_cash").unwrap().as_n().unwrap().parse::<f64>().unwrap(), 21.0);
    assert!(assert_ledgers_in(&stack, &items).await >= 2);
}

/// A double tap: two deletions at once ask Razorpay for one refund, not two.
#[tokio::test]
async fn two_deletions_at_once_refund_once() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "500").await;
    let (first, second) = tokio::join!(delete_me(&stack, &customer), delete_me(&stack, &customer));
    let statuses = [first.0, second.0];
    assert!(statuses.contains(&200), "{first:?} {second:?}");
    for (status, body) in [&first, &second] {
        assert!(*status == 200 || (*status == 409 && body["error"]["code"] == "deletion_under_way"), "{status} {body}");
    }
    let (status, record) = delete_me(&stack, &customer).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["refunds"].as_array().unwrap().len(), 1, "{record}");
    let items = all_items(&stack).await;
    let topup = items.iter().find(|i| i.get("SK").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("TOPUP"));
    let payment = topup.unwrap().get("payment_id").unwrap().as_s().unwrap().clone();
    assert_eq!(stack.stubs.razorpay.payment(&payment).unwrap().amount_refunded, 50_000, "refunded once, in full");
}
