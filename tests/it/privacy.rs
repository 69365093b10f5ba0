//! After a whole journey (sign-ups by SMS code, a recharge, a video KYC whose Digio event
//! carries a full Aadhaar and PAN, a paid consultation, a review, the notifications), the
//! table and the functions' logs hold: no phone number outside its owner's record and its
//! uniqueness claim, no SMS code, no full Aadhaar or PAN, no token, no secret.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::*;
use serde_json::json;

type Item = HashMap<String, AttributeValue>;

/// Every string in an item, with the attribute path it sits at.
fn strings(item: &Item) -> Vec<(String, String)> {
    fn walk(path: &str, v: &AttributeValue, out: &mut Vec<(String, String)>) {
        match v {
            AttributeValue::S(s) => out.push((path.to_owned(), s.clone())),
            AttributeValue::N(n) => out.push((path.to_owned(), n.clone())),
            AttributeValue::L(l) => l.iter().for_each(|v| walk(path, v, out)),
            AttributeValue::M(m) => m.iter().for_each(|(k, v)| walk(&format!("{path}.{k}"), v, out)),
            AttributeValue::Ss(l) | AttributeValue::Ns(l) => {
                l.iter().for_each(|s| out.push((path.to_owned(), s.clone())))
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in item {
        walk(k, v, &mut out);
    }
    out
}

fn text(item: &Item, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

#[tokio::test]
async fn after_a_whole_journey_the_table_and_logs_hold_no_phone_code_id_number_token_or_secret() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let astrologer = bookable_astrologer(&stack, "20").await;
    let booking = completed_consultation(&stack, &customer, (&astrologer.0, &astrologer.1)).await;
    let (status, review) = api
        .post_as(
            &format!("/consultations/{booking}/review"),
            &customer,
            &[],
            json!({ "rating": 5, "text": "Clear and kind" }),
        )
        .await;
    assert_eq!(status, 201, "{review}");
    assert!(settled_inbox_count(&stack, &customer_id, "ConsultationCompleted").await >= 1);

    let items = all_items(&stack).await;
    // The phone numbers, from where they belong: each user's record.
    let phones: Vec<String> = items
        .iter()
        .filter(|i| text(i, "SK") == "PROFILE")
        .map(|i| text(i, "phone_number"))
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(phones.len(), 2, "a customer and an astrologer");
    let national = |p: &str| p.trim_start_matches("+91").to_owned();
    let codes: Vec<String> = phones.iter().filter_map(|p| stack.outbox.latest_code(p)).collect();
    assert_eq!(codes.len(), 2);
    let tokens = [customer.as_str(), astrologer.0.as_str()];
    let secrets = [
        infra::stubs::razorpay::KEY_SECRET,
        infra::stubs::razorpay::WEBHOOK_SECRET,
        stack.stubs.digio.client_secret.as_str(),
        stack.stubs.digio.webhook_secret.as_str(),
    ];
    // What the Digio stand-in's approval carries (infra/src/stubs/digio.rs).
    let (aadhaar, pan) = ("123412341234", "AKRPR4321K");

    let mut found = Vec::new();
    let mut checked = 0;
    for item in &items {
        let (pk, sk) = (text(item, "PK"), text(item, "SK"));
        let own_record = (pk.starts_with("USER#") && sk == "PROFILE") || pk.starts_with("PHONE#");
        for (path, value) in strings(item) {
            checked += 1;
            let at = format!("{pk} / {sk} .{path}");
            if !own_record && phones.iter().any(|p| value.contains(&national(p))) {
                found.push(format!("a phone number at {at}"));
            }
            if codes.iter().any(|c| value == *c || value.contains(&format!("\"{c}\""))) {
                found.push(format!("an SMS code at {at}"));
            }
            if value.contains(aadhaar) || value.contains(pan) {
                found.push(format!("a full Aadhaar or PAN at {at}"));
            }
            if value.contains("eyJ") || tokens.iter().any(|t| value.contains(&t[20..60])) {
                found.push(format!("a token at {at}"));
            }
            if secrets.iter().any(|s| !s.is_empty() && value.contains(s)) {
                found.push(format!("a secret at {at}"));
            }
        }
    }
    let logs = captured_logs();
    for (n, line) in logs.lines().enumerate() {
        let what = [
            phones.iter().any(|p| line.contains(&national(p))).then_some("a phone number"),
            codes.iter().any(|c| line.contains(&format!("\"{c}\""))).then_some("an SMS code"),
            (line.contains(aadhaar) || line.contains(pan)).then_some("a full Aadhaar or PAN"),
            (line.contains("eyJ") || tokens.iter().any(|t| line.contains(&t[20..60]))).then_some("a token"),
            secrets.iter().any(|s| !s.is_empty() && line.contains(s)).then_some("a secret"),
        ];
        found.extend(what.into_iter().flatten().map(|w| format!("{w} in log line {n}: {line}")));
    }
    assert!(logs.lines().count() > 20, "the functions logged the journey");
    assert!(
        found.is_empty(),
        "{} findings over {checked} values and {} log lines:\n{}",
        found.len(),
        logs.lines().count(),
        found.join("\n")
    );
    println!(
        "privacy: {checked} table values and {} log lines after the whole journey: no phone, SMS code, full \
         Aadhaar or PAN, token or secret out of place",
        logs.lines().count()
    );
}
