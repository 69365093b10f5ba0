//! Calls and video over Agora (issue 30) as their people notice them on the local stack: a
//! customer connects now for a video consultation, the astrologer accepts, each gets a token
//! for the channel (read back by Agora's own library), and Agora's stand-in reports who
//! joined and left. The bill follows Agora's view to the paisa: a drop and rejoin within the
//! grace is one session, a drop beyond it ends the session at the leave, replayed and late
//! events bill nothing twice, forged ones are refused. Without Agora's events, the app's own
//! joins decide, and the consultation says which.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::Utc;
use infra::LocalStack;
use infra::functions::Handler;
use infra::stubs::{AGORA_APP_CERTIFICATE, AGORA_APP_ID};
use integration_tests::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a money string: {v}")).parse().unwrap()
}

fn at(v: &Value) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

async fn sweep(stack: &LocalStack) -> Value {
    let Some(Handler::Scheduled(sweep)) = stack.handler("no-show-sweep") else { panic!("no sweep") };
    sweep(json!({})).await.unwrap()
}

async fn consultation(stack: &LocalStack, token: &str, id: &str) -> Value {
    let (status, c) = Api::new(stack).get(&format!("/consultations/{id}"), Some(token)).await;
    assert_eq!(status, 200, "{c}");
    c
}

async fn call_token(stack: &LocalStack, token: &str, id: &str) -> (u16, Value) {
    Api::new(stack).post_as(&format!("/consultations/{id}/call-token"), token, &[], json!({})).await
}

/// Agora's stand-in reports `uid` joining (or leaving) `channel` at `ts` (Unix seconds); the webhook's answer.
async fn report(stack: &LocalStack, channel: &str, uid: u32, join: bool, ts: i64) -> (String, Value) {
    let (notice, status, answer) = stack.stubs.agora.report(channel, uid, join, ts).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    (notice, serde_json::from_str(&answer).unwrap())
}

/// What Agora's own library (`agora-token` from npm, tests/agora/verify.js) reads in `token`
/// checked against `certificate`.
fn agora_reads(token: &str, certificate: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/agora/verify.js");
    let mut node = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/setup.sh installs Agora's library)");
    let line = json!({ "token": token, "app_certificate": certificate }).to_string();
    writeln!(node.stdin.take().unwrap(), "{line}").unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(out.status.success(), "verify.js failed: {}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap()
}

/// A customer with ₹1000 and an online astrologer at ₹12.50 a minute (chat and video); the
/// customer connects now for 10 minutes of `mode` and the astrologer accepts.
/// (customer token, astrologer token, booking id)
async fn accepted(stack: &LocalStack, mode: &str) -> (String, String, String) {
    let (customer, _) = topped_up_customer(stack, "1000").await;
    let (astrologer, astrologer_id) = bookable_astrologer(stack, "12.50").await;
    let key = format!("call-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": mode, "minutes": 10 });
    let (status, rung) = Api::new(stack).post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    assert_eq!((status, rung["status"].as_str()), (201, Some("ringing")), "{rung}");
    let id = rung["booking_id"].as_str().unwrap().to_owned();
    let (status, c) =
        Api::new(stack).post_as(&format!("/consultations/{id}/accept"), &astrologer, &[], json!({})).await;
    assert_eq!((status, c["status"].as_str()), (200, Some("in_progress")), "{c}");
    (customer, astrologer, id)
}

#[tokio::test]
async fn a_video_call_is_billed_from_agoras_channel_events_to_the_paisa() {
    let stack = stack().await;
    let (customer, astrologer, id) = accepted(&stack, "video").await;
    assert_eq!(dec(&Api::new(&stack).get("/wallet", Some(&customer)).await.1["real_cash"]), Decimal::from(875));

    // Each party's token: the consultation's channel, their own uid, good until the paid end
    // at the latest; Agora's own library reads exactly that, signed with our certificate.
    let before = Utc::now();
    let (status, mine) = call_token(&stack, &customer, &id).await;
    assert_eq!(status, 200, "{mine}");
    let (_, theirs) = call_token(&stack, &astrologer, &id).await;
    let channel = mine["channel"].as_str().unwrap().to_owned();
    assert_eq!((mine["app_id"].as_str(), theirs["channel"].as_str()), (Some(AGORA_APP_ID), Some(channel.as_str())));
    let (customer_uid, astrologer_uid) = (mine["uid"].as_u64().unwrap() as u32, theirs["uid"].as_u64().unwrap() as u32);
    assert_ne!(customer_uid, astrologer_uid);
    assert_eq!(call_token(&stack, &customer, &id).await.1["uid"], mine["uid"], "a party's uid is stable");
    let expires = at(&mine["expires_at"]);
    assert!(expires - before <= chrono::Duration::minutes(10) + chrono::Duration::seconds(2), "{mine}");
    let read = agora_reads(mine["token"].as_str().unwrap(), AGORA_APP_CERTIFICATE);
    assert_eq!(read["signature_valid"], true, "{read}");
    assert_eq!((read["app_id"].as_str(), read["channel"].as_str()), (Some(AGORA_APP_ID), Some(channel.as_str())));
    let valid_for = read["expire"].as_i64().unwrap();
    assert_eq!(read["issue_ts"].as_i64().unwrap() + valid_for, expires.timestamp(), "{read}");
    for privilege in ["1", "2", "3", "4"] {
        assert_eq!(read["privileges"][privilege].as_i64(), Some(valid_for), "join and publish until then: {read}");
    }
    assert_eq!(read["uid"].as_str(), Some(customer_uid.to_string().as_str()), "{read}");
    let forged = agora_reads(mine["token"].as_str().unwrap(), "00000000000000000000000000000000");
    assert_eq!(forged["signature_valid"], false, "{forged}");

    // One clock for every report, so the seconds between them are exact.
    let t0 = Utc::now().timestamp();
    // Agora reports: the astrologer in 400 s ago, the customer 390 s ago (the meter's start).
    let (_, first) = report(&stack, &channel, astrologer_uid, true, t0 - 400).await;
    assert_eq!(first["status"], "recorded");
    let (joined, second) = report(&stack, &channel, customer_uid, true, t0 - 390).await;
    assert_eq!(second["status"], "meter_started");
    let c = consultation(&stack, &customer, &id).await;
    let start = at(&c["started_at"]);
    let joined_at = serde_json::from_str::<Value>(&joined).unwrap()["payload"]["ts"].as_i64().unwrap();
    assert_eq!(start.timestamp(), joined_at, "the customer's join, by Agora's clock: {c}");
    assert_eq!(c["billed_from"], "agora", "{c}");

    // Agora resends a notice: acknowledged, changes nothing. A forged one is refused.
    let (status, again) = stack.stubs.agora.deliver(&joined).await.unwrap();
    assert_eq!((status, again.contains("duplicate")), (200, true), "{again}");
    let forged = joined.replace(&customer_uid.to_string(), &astrologer_uid.to_string());
    let signed_for_another = [("agora-signature-v2", stack.stubs.agora.sign(&joined))];
    let headers: Vec<_> = signed_for_another.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) =
        Api::new(&stack).send(reqwest::Method::POST, "/webhooks/agora", None, &headers, Some(&forged)).await;
    assert_eq!(status, 401, "a body the signature was not made for");
    // Ids no channel or notice could have are refused before anything is read.
    let long = stack.stubs.agora.notice(&"a".repeat(3000), customer_uid, 107, Utc::now().timestamp());
    let (status, _) = stack.stubs.agora.deliver(&long).await.unwrap();
    assert_eq!(status, 400);
    let long_id = joined.replacen("\"noticeId\":\"", &format!("\"noticeId\":\"{}", "9".repeat(3000)), 1);
    let (status, _) = stack.stubs.agora.deliver(&long_id).await.unwrap();
    assert_eq!(status, 400);

    // The customer's network drops for 40 s (within the grace): one session, the sweep leaves it.
    report(&stack, &channel, customer_uid, false, t0 - 300).await;
    report(&stack, &channel, customer_uid, true, t0 - 260).await;
    sweep(&stack).await;
    assert_eq!(consultation(&stack, &customer, &id).await["status"], "in_progress");
    // Then the customer leaves for good 90 s ago: the sweep ends it, billed to the leave:
    // 390 - 90 = 300 s measured, 5 minutes at ₹12.50.
    report(&stack, &channel, customer_uid, false, t0 - 90).await;
    sweep(&stack).await;
    let c = consultation(&stack, &customer, &id).await;
    assert_eq!((c["status"].as_str(), c["end_reason"].as_str()), (Some("completed"), Some("lapse")), "{c}");
    let closing = &c["closing"];
    assert_eq!((closing["measured_seconds"].as_u64(), closing["actual_minutes"].as_u64()), (Some(300), Some(5)));
    assert_eq!(dec(&closing["charged"]["real"]), "62.50".parse().unwrap(), "{c}");
    assert_eq!(dec(&closing["astrologer_earnings"]), "43.75".parse().unwrap(), "70% of ₹62.50");
    assert_eq!(dec(&Api::new(&stack).get("/wallet", Some(&customer)).await.1["real_cash"]), "937.50".parse().unwrap());
    let earned = Api::new(&stack).get("/astrologers/me/earnings", Some(&astrologer)).await.1;
    assert_eq!(dec(&earned["balance"]), "43.75".parse().unwrap(), "{earned}");
    assert_eq!(c["channel"]["events"].as_array().unwrap().len(), 5, "every join and leave once: {c}");

    // After the end: a late event is kept for the record and bills nothing; no token either.
    let (_, late) = report(&stack, &channel, customer_uid, true, t0).await;
    assert_eq!(late["status"], "recorded");
    sweep(&stack).await;
    let after = consultation(&stack, &customer, &id).await;
    assert_eq!((&after["closing"], after["channel"]["events"].as_array().unwrap().len()), (&c["closing"], 6));
    assert_eq!(dec(&Api::new(&stack).get("/wallet", Some(&customer)).await.1["real_cash"]), "937.50".parse().unwrap());
    let (status, refused) = call_token(&stack, &customer, &id).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("not_live")), "{refused}");
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn nobody_gets_a_token_for_a_call_that_is_not_theirs_or_not_a_call() {
    let stack = stack().await;
    let (_, astrologer, id) = accepted(&stack, "video").await;
    let (stranger, _) = topped_up_customer(&stack, "100").await;
    let (status, body) = call_token(&stack, &stranger, &id).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "someone else's: {body}");
    let (status, _) = call_token(&stack, &stranger, "AT00000000").await;
    assert_eq!(status, 404);
    let (status, body) = call_token(&stack, &stranger, &"9".repeat(3000)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("id")), "bounded before the store: {body}");
    // A chat runs over the WebSocket API; a ringing call is not running yet.
    let (_, _, chat) = accepted(&stack, "chat").await;
    let (status, body) = call_token(&stack, &astrologer, &chat).await;
    assert_eq!(status, 404, "not this astrologer's chat: {body}");
    let (customer, astrologer_id) =
        (topped_up_customer(&stack, "1000").await.0, bookable_astrologer(&stack, "10").await.1);
    let key = format!("ring-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "video", "minutes": 5 });
    let (_, rung) = Api::new(&stack).post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    let (status, body) = call_token(&stack, &customer, rung["booking_id"].as_str().unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_live")), "ringing: {body}");
}

#[tokio::test]
async fn without_agoras_events_the_apps_joins_bill_the_call_and_it_says_so() {
    let stack = stack().await;
    let (customer, astrologer, id) = accepted(&stack, "video").await;
    let mut customer_ws = open_socket(&stack, Some(&customer)).await.unwrap();
    let mut astrologer_ws = open_socket(&stack, Some(&astrologer)).await.unwrap();
    for ws in [&mut astrologer_ws, &mut customer_ws] {
        send_json(ws, &json!({ "action": "join", "booking_id": id })).await;
    }
    let started = next_json(&mut customer_ws).await;
    let started =
        if started["consultation"]["started_at"].is_null() { next_json(&mut customer_ws).await } else { started };
    assert_eq!(started["consultation"]["billed_from"], "app", "{started}");
    // Agora reported only the astrologer: the app's view still bills it.
    let (_, astrologer_token) = call_token(&stack, &astrologer, &id).await;
    let channel = astrologer_token["channel"].as_str().unwrap();
    let t0 = Utc::now().timestamp();
    let (_, answer) = report(&stack, channel, astrologer_token["uid"].as_u64().unwrap() as u32, true, t0).await;
    assert_eq!(answer["status"], "recorded");
    let (status, ended) =
        Api::new(&stack).post_as(&format!("/consultations/{id}/complete"), &customer, &[], json!({})).await;
    assert_eq!(
        (status, ended["status"].as_str(), ended["billed_from"].as_str()),
        (200, Some("completed"), Some("app"))
    );
    assert_eq!(ended["closing"]["actual_minutes"], 1, "a started minute: {ended}");
    assert_ledger_balances(&stack).await;
}
