//! Identifiers from outside never reach a key DynamoDB would refuse (2,048 bytes for a
//! partition key; moto accepts more, the store refuses them as DynamoDB does): every route's
//! path parameters and every webhook's ids, 3,000 characters long, get a 4xx with the error
//! body, or a 200 for a signed webhook that is not ours, never a 500 for a provider to retry.

use infra::LocalStack;
use integration_tests::*;
use serde_json::{Value, json};
use shared::UserType;
use shared::http::Access;

use crate::route_tables::route_tables;

const LONG: usize = 3000;

/// `path` with each `{param}` replaced by `value`.
fn filled(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').unwrap();
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out + rest
}

#[tokio::test]
async fn every_route_refuses_a_path_parameter_too_long_for_a_key() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, _) = customer(&stack).await;
    let (astrologer, _) = astrologer(&stack).await;
    let (admin, _) = staff(&stack).await;
    let long = "x".repeat(LONG);
    let mut checked = Vec::new();
    for (function, routes) in route_tables() {
        for (key, access) in routes {
            let (method, path) = key.split_once(' ').unwrap();
            if !path.contains('{') {
                continue;
            }
            let token = match access {
                Access::Public => None,
                Access::SignedIn | Access::Role(UserType::User) => Some(customer.as_str()),
                Access::Role(UserType::Astrologer) => Some(astrologer.as_str()),
                Access::Role(UserType::Admin) => Some(admin.as_str()),
            };
            let body = (method != "GET").then_some("{}");
            let headers = [("idempotency-key", "bounds-1")];
            let (status, answer) = api.send(method.parse().unwrap(), &filled(path, &long), token, &headers, body).await;
            assert!((400..500).contains(&status), "{function} {key}: {status} {answer}");
            assert!(answer["error"]["code"].is_string(), "{function} {key}: {answer}");
            checked.push(key);
        }
    }
    println!("{} routes with path parameters refuse a {LONG}-character id: {checked:?}", checked.len());
    assert!(checked.len() >= 10, "{checked:?}");
}

#[tokio::test]
async fn signed_webhooks_with_ids_too_long_for_a_key_are_answered_not_retried() {
    let stack = stack().await;
    let long = "K".repeat(LONG);
    let digio = &stack.stubs.digio;
    for event in [
        // An event id that long, for no request of ours.
        json!({ "id": long, "event": "KYC_REQUEST_COMPLETED", "payload": { "kyc_request": { "id": "KID1" } } }),
        // A request id that long.
        json!({ "id": "WHE1", "event": "KYC_REQUEST_COMPLETED", "payload": { "kyc_request": { "id": long } } }),
    ] {
        let (status, answer) = digio.deliver(&event.to_string()).await.unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["status"], "ignored_unknown_request");
    }
    // Delivered again, the long event id is the same event.
    let again = json!({ "id": long, "event": "KYC_REQUEST_COMPLETED", "payload": { "kyc_request": { "id": "KID1" } } });
    let (status, answer) = digio.deliver(&again.to_string()).await.unwrap();
    assert_eq!((status, serde_json::from_str::<Value>(&answer).unwrap()["status"].clone()), (200, json!("duplicate")));

    razorpay_unsigned_is_401(&stack).await;
}

async fn razorpay_unsigned_is_401(stack: &LocalStack) {
    let api = Api::new(stack);
    let body = json!({ "event": "payment.captured", "payload": {} }).to_string();
    let before = written_items(stack).await;
    let (status, answer) = api.send(reqwest::Method::POST, "/webhooks/razorpay", None, &[], Some(&body)).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("missing_signature")), "{answer}");
    assert_eq!(written_items(stack).await, before);
}
