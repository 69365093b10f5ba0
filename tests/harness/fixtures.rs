//! The people and things a test starts from, made through the API as a client would: users
//! signed up and in, astrologers approved and bookable, wallets topped up, consultations
//! completed (and moved in time, as the tests cannot wait for real minutes).

use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;
use rand::Rng;
use serde_json::{Value, json};

use crate::api::Api;

/// A phone number no other test uses.
pub fn random_phone() -> String {
    format!("+919{:09}", rand::rng().random_range(0..1_000_000_000u64))
}

/// Signs up and confirms with the code from the local SMS outbox.
pub async fn sign_up(stack: &LocalStack, phone: &str, role: &str) -> Value {
    let api = Api::new(stack);
    let (status, body) = api
        .post("/auth/signup", json!({ "phone": phone, "first_name": "Asha", "last_name": "Rao", "user_type": role }))
        .await;
    assert_eq!(status, 201, "{body}");
    let code = stack.outbox.latest_code(phone).expect("an SMS code was sent");
    let (status, confirm) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": code })).await;
    assert_eq!(status, 200, "{confirm}");
    body
}

/// Signs in by SMS code and returns the tokens.
pub async fn sign_in(stack: &LocalStack, phone: &str) -> Value {
    let api = Api::new(stack);
    let (status, challenge) = api.post("/auth/otp", json!({ "phone": phone })).await;
    assert_eq!(status, 200, "{challenge}");
    let code = stack.outbox.latest_code(phone).expect("a sign-in code was sent");
    let (status, tokens) =
        api.post("/auth/otp/verify", json!({ "phone": phone, "session": challenge["session"], "code": code })).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// A signed-up, signed-in customer: their access token and user id.
pub async fn customer(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "user").await;
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

/// A signed-up, signed-in astrologer: their access token and user id.
pub async fn astrologer(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "astrologer").await;
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

/// An astrologer whose KYC Digio approved (through the local Digio's signed webhooks).
pub async fn approved_astrologer(stack: &LocalStack) -> (String, String) {
    let (token, id) = astrologer(stack).await;
    let (status, started) =
        Api::new(stack).send(reqwest::Method::POST, "/astrologers/me/kyc", Some(&token), &[], None).await;
    assert_eq!(status, 201, "{started}");
    let (status, _) = stack.stubs.digio.approve(started["request_id"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 200);
    (token, id)
}

/// A customer with `amount` of real cash, topped up through the Razorpay stand-in and the
/// app's confirm call (no promotion rule is seeded in tests unless a test adds one).
pub async fn topped_up_customer(stack: &LocalStack, amount: &str) -> (String, String) {
    let (token, id) = customer(stack).await;
    top_up(stack, &token, amount).await;
    (token, id)
}

/// The customer `token` tops up `amount` through the Razorpay stand-in and the confirm call.
pub async fn top_up(stack: &LocalStack, token: &str, amount: &str) {
    let token = token.to_owned();
    let api = Api::new(stack);
    let key = format!("topup-{}", rand::random::<u64>());
    let (status, created) =
        api.post_as("/wallet/top-ups", &token, &[("idempotency-key", &key)], json!({ "amount": amount })).await;
    assert_eq!(status, 201, "{created}");
    let paid = stack.stubs.razorpay.pay(created["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
    let body = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    let path = format!("/wallet/top-ups/{}/confirm", created["top_up_id"].as_str().unwrap());
    let (status, confirmed) = api.post_as(&path, &token, &[], body).await;
    assert_eq!(status, 200, "{confirmed}");
}

/// An approved astrologer with a profile (`rate` per minute, chat and video), available
/// around the clock every day, and online.
pub async fn bookable_astrologer(stack: &LocalStack, rate: &str) -> (String, String) {
    let (token, id) = approved_astrologer(stack).await;
    let api = Api::new(stack);
    let put = async |path: &str, body: Value| {
        let (status, resp) = api.send(reqwest::Method::PUT, path, Some(&token), &[], Some(&body.to_string())).await;
        assert_eq!(status, 200, "{path}: {resp}");
    };
    put(
        "/astrologers/me/profile",
        json!({
            "display_name": "Acharya Asha", "experience_years": 10, "languages": ["hi"], "specialisations": ["vedic"],
            "rate_per_minute": rate, "modes": ["chat", "video"],
        }),
    )
    .await;
    let days: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": "24:00" }))
        .collect();
    put("/astrologers/me/availability", json!({ "time_zone": "UTC", "windows": days })).await;
    put("/astrologers/me/presence", json!({ "status": "online" })).await;
    (token, id)
}

/// Operations staff: a customer signed up as anyone can, then added to the Cognito group
/// `admin` as an operator would (`infra::make_staff`), then signed in again so the token
/// carries the group. Their access token and user id.
pub async fn staff(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "user").await;
    let parsed = shared::Phone::parse(&phone).unwrap();
    infra::make_staff(&stack.sdk, &stack.provisioned.user_pool_id, &parsed).await.expect("added to the admin group");
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

/// A consultation `customer` booked with `astrologer` (chat, 10 minutes), started and
/// completed by the astrologer after 3 charged minutes: what a customer may review.
/// Returns the booking id.
pub async fn completed_consultation(stack: &LocalStack, customer: &str, astrologer: (&str, &str)) -> String {
    let api = Api::new(stack);
    let (token, astrologer_id) = astrologer;
    let key = format!("book-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10 });
    let (status, booked) = api.post_as("/consultations", customer, &[("idempotency-key", &key)], body).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap().to_owned();
    let (status, started) = api.post_as(&format!("/consultations/{id}/start"), token, &[], json!({})).await;
    assert_eq!(status, 200, "{started}");
    started_minutes_ago(stack, &id, 3).await;
    let (status, done) = api.post_as(&format!("/consultations/{id}/complete"), token, &[], json!({})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")), "{done}");
    id
}

/// An UpdateItem on a consultation's item, for tests that move its times.
pub fn consultation_update(
    stack: &LocalStack,
    id: &str,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("CONSULTATION#{id}")))
        .key("SK", AttributeValue::S("CONSULTATION".into()))
}

/// Makes a session the astrologer opened one whose meter started `minutes` ago, less 30
/// seconds (the customer joined then; both heard from just now): the tests cannot wait for
/// real minutes. Billed per started minute, it is `minutes` whether the test completes it at
/// once or 29 seconds later on a loaded machine (a 2-minute session measured 121 s once, so 3).
pub async fn started_minutes_ago(stack: &LocalStack, id: &str, minutes: i64) {
    let text =
        |t: chrono::DateTime<chrono::Utc>| AttributeValue::S(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let now = chrono::Utc::now();
    consultation_update(stack, id)
        .update_expression(
            "SET started_at = :at, customer_joined_at = :at, customer_seen_at = :now, astrologer_seen_at = :now",
        )
        .expression_attribute_values(
            ":at",
            text(now - chrono::Duration::minutes(minutes) + chrono::Duration::seconds(30)),
        )
        .expression_attribute_values(":now", text(now))
        .send()
        .await
        .unwrap();
}
