//! Live consultations (issue 29) as their people notice them, through real WebSocket clients
//! on the local stack: a customer connects now, the astrologer is rung and accepts, both chat
//! while the server's meter runs, and the session ends by either party, by the balance or by
//! a party gone, billed to the paisa; rings declined or unanswered give everything back; and
//! an attacker's socket neither reaches nor learns of someone else's consultation, while
//! malformed frames are refused without dropping the connection.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{SecondsFormat, Utc};
use infra::LocalStack;
use infra::functions::Handler;
use integration_tests::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// Long enough for a duplicate or a leaked frame to arrive on the local stack.
const QUIET: Duration = Duration::from_secs(1);

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a money string: {v}")).parse().unwrap()
}

fn at(v: &Value) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap().to_utc()
}

async fn act(stack: &LocalStack, token: &str, id: &str, action: &str) -> (u16, Value) {
    Api::new(stack).post_as(&format!("/consultations/{id}/{action}"), token, &[], json!({})).await
}

/// Connect now: `minutes` of chat with `astrologer_id`, with an idempotency key.
async fn connect_now(stack: &LocalStack, token: &str, astrologer_id: &str, minutes: u32) -> (u16, Value) {
    let key = format!("connect-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": minutes });
    Api::new(stack).post_as("/consultations", token, &[("idempotency-key", &key)], body).await
}

async fn real_cash(stack: &LocalStack, token: &str) -> Decimal {
    dec(&Api::new(stack).get("/wallet", Some(token)).await.1["real_cash"])
}

async fn earned(stack: &LocalStack, token: &str) -> Decimal {
    dec(&Api::new(stack).get("/astrologers/me/earnings", Some(token)).await.1["balance"])
}

async fn consultation(stack: &LocalStack, token: &str, id: &str) -> Value {
    let (status, c) = Api::new(stack).get(&format!("/consultations/{id}"), Some(token)).await;
    assert_eq!(status, 200, "{c}");
    c
}

/// The JSON frames `socket` gets within `window`.
async fn frames_within(socket: &mut Socket, window: Duration) -> Vec<Value> {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(frame) = tokio::time::timeout_at(deadline, next_json(socket)).await {
        frames.push(frame);
    }
    frames
}

/// One run of the sweep, as its schedule runs it; its report.
async fn sweep(stack: &LocalStack) -> Value {
    let Some(Handler::Scheduled(sweep)) = stack.handler("no-show-sweep") else { panic!("no sweep") };
    sweep(json!({})).await.unwrap()
}

fn time(t: chrono::DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Sets each of `fields` (times of the consultation's item) to `seconds_ago`, as if the
/// session had gone on that long: the tests cannot wait for real minutes.
async fn set_times(stack: &LocalStack, id: &str, fields: &[(&str, i64)]) {
    let now = Utc::now();
    let mut update = consultation_update(stack, id);
    let mut sets = Vec::new();
    for (i, (field, seconds_ago)) in fields.iter().enumerate() {
        sets.push(format!("{field} = :t{i}"));
        update =
            update.expression_attribute_values(format!(":t{i}"), time(now - chrono::Duration::seconds(*seconds_ago)));
    }
    update.update_expression(format!("SET {}", sets.join(", "))).send().await.unwrap();
}

/// The meter started `seconds` ago (the customer joined then) and both were heard from just now.
async fn meter_started_seconds_ago(stack: &LocalStack, id: &str, seconds: i64) {
    set_times(
        stack,
        id,
        &[("started_at", seconds), ("customer_joined_at", seconds), ("customer_seen_at", 0), ("astrologer_seen_at", 0)],
    )
    .await;
}

fn send(id: &str, client_id: &str, text: &str) -> Value {
    json!({ "action": "send", "booking_id": id, "client_id": client_id, "text": text })
}

fn with_id(action: &str, id: &str) -> Value {
    json!({ "action": action, "booking_id": id })
}

/// `message` is an `error` with `code`, naming the booking `id` (if the frame named one).
fn assert_error(message: &Value, code: &str, id: Option<&str>, what: &str) {
    assert_eq!(
        (message["type"].as_str(), message["code"].as_str(), message["booking_id"].as_str()),
        (Some("error"), Some(code), id),
        "{what}: {message}"
    );
}

/// The two parties of a connect-now chat, each with an open socket.
struct Parties {
    customer: String,
    customer_id: String,
    astrologer: String,
    astrologer_id: String,
    customer_ws: Socket,
    astrologer_ws: Socket,
}

/// A customer with ₹1000 and an online astrologer at `rate` a minute, both connected.
async fn parties(stack: &LocalStack, rate: &str) -> Parties {
    let (customer, customer_id) = topped_up_customer(stack, "1000").await;
    let (astrologer, astrologer_id) = bookable_astrologer(stack, rate).await;
    let customer_ws = open_socket(stack, Some(&customer)).await.unwrap_or_else(|e| panic!("{e}: {}", captured_logs()));
    let astrologer_ws = open_socket(stack, Some(&astrologer)).await.unwrap();
    Parties { customer, customer_id, astrologer, astrologer_id, customer_ws, astrologer_ws }
}

impl Parties {
    /// The customer connects now for `minutes`: the request rings on the astrologer's
    /// socket, the customer's wallet holds the price. The booking id.
    async fn ring(&mut self, stack: &LocalStack, minutes: u32) -> String {
        let (status, ringing) = connect_now(stack, &self.customer, &self.astrologer_id, minutes).await;
        assert_eq!((status, ringing["status"].as_str()), (201, Some("ringing")), "{ringing}");
        let id = ringing["booking_id"].as_str().unwrap().to_owned();
        let ring = next_json(&mut self.astrologer_ws).await;
        assert_eq!(ring["type"], "ring", "{ring}");
        let rung = &ring["consultation"];
        assert_eq!(
            (rung["booking_id"].as_str(), rung["status"].as_str(), rung["customer_id"].as_str()),
            (Some(id.as_str()), Some("ringing"), Some(self.customer_id.as_str())),
            "{ring}"
        );
        assert_eq!(rung["price"]["minutes"], minutes, "{ring}");
        id
    }

    /// The astrologer accepts over HTTP (the customer's socket is told), then the customer
    /// joins: the meter starts and both sockets get the consultation with its paid end.
    /// The consultation as started.
    async fn accept_and_join(&mut self, stack: &LocalStack, id: &str) -> Value {
        let (status, accepted) = act(stack, &self.astrologer, id, "accept").await;
        assert_eq!((status, accepted["status"].as_str()), (200, Some("in_progress")), "{accepted}");
        let told = next_json(&mut self.customer_ws).await;
        assert_eq!(
            (told["type"].as_str(), told["consultation"]["status"].as_str()),
            (Some("consultation"), Some("in_progress"))
        );
        assert!(told["consultation"]["started_at"].is_null(), "the meter waits for the customer: {told}");

        let before = Utc::now();
        send_json(&mut self.customer_ws, &with_id("join", id)).await;
        let for_customer = next_json(&mut self.customer_ws).await;
        let for_astrologer = next_json(&mut self.astrologer_ws).await;
        assert_eq!(for_customer, for_astrologer, "both see the same session");
        assert_eq!(for_customer["type"], "consultation", "{for_customer}");
        let started = for_customer["consultation"].clone();
        let start = at(&started["started_at"]);
        assert!(start >= before - chrono::Duration::seconds(1) && start <= Utc::now(), "{started}");
        let minutes = started["price"]["minutes"].as_i64().unwrap();
        assert_eq!(at(&started["paid_until"]) - start, chrono::Duration::minutes(minutes), "{started}");
        started
    }

    /// Both sockets get the consultation as it ended (and only that); it, as the customer's got it.
    async fn both_told_of_the_end(&mut self) -> Value {
        let for_customer = next_json(&mut self.customer_ws).await;
        let for_astrologer = next_json(&mut self.astrologer_ws).await;
        assert_eq!(for_customer, for_astrologer);
        assert_eq!(
            (for_customer["type"].as_str(), for_customer["consultation"]["status"].as_str()),
            (Some("consultation"), Some("completed")),
            "{for_customer}"
        );
        for_customer["consultation"].clone()
    }
}

/// `from` sends `text` as `client_id`: acked to the sender, delivered to `to` as from `side`. Its id.
async fn exchange(from: &mut Socket, to: &mut Socket, id: &str, client_id: &str, text: &str, side: &str) -> String {
    send_json(from, &send(id, client_id, text)).await;
    let ack = next_json(from).await;
    assert_eq!((ack["type"].as_str(), ack["client_id"].as_str()), (Some("ack"), Some(client_id)), "{ack}");
    let message_id = ack["message_id"].as_str().unwrap().to_owned();
    let delivered = next_json(to).await;
    assert_eq!(delivered["type"], "message", "{delivered}");
    let m = &delivered["message"];
    assert_eq!(
        (m["message_id"].as_str(), m["booking_id"].as_str(), m["from"].as_str(), m["text"].as_str()),
        (Some(message_id.as_str()), Some(id), Some(side), Some(text)),
        "{delivered}"
    );
    message_id
}

/// A page of the chat as `token` reads it.
async fn messages_page(stack: &LocalStack, token: &str, id: &str, query: &str) -> (u16, Value) {
    Api::new(stack).get(&format!("/consultations/{id}/messages{query}"), Some(token)).await
}

/// Every message of the chat, `limit` a page, following the cursors.
async fn all_messages(stack: &LocalStack, token: &str, id: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut query = format!("?limit={limit}");
    for _ in 0..20 {
        let (status, page) = messages_page(stack, token, id, &query).await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        assert!(messages.len() <= limit, "{page}");
        all.extend(messages.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit={limit}&cursor={cursor}"),
            None => return all,
        }
    }
    panic!("the pages never end");
}

#[tokio::test]
async fn a_whole_chat_is_delivered_once_and_billed_to_the_paisa_when_the_balance_runs_out() {
    let stack = stack().await;
    let mut p = parties(&stack, "10").await;
    let id = p.ring(&stack, 5).await;
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(950), "5 minutes at ₹10 held");
    p.accept_and_join(&stack, &id).await;

    let (c, a) = (&mut p.customer_ws, &mut p.astrologer_ws);
    let first = exchange(c, a, &id, "c-1", "namaste, will I travel this year?", "customer").await;
    let reply = exchange(a, c, &id, "a-1", "namaste; tell me your birth time", "astrologer").await;
    // The customer's app lost the ack and resends: acked the same, neither delivered nor stored again.
    send_json(c, &send(&id, "c-1", "namaste, will I travel this year?")).await;
    let again = next_json(c).await;
    assert_eq!((again["type"].as_str(), again["message_id"].as_str()), (Some("ack"), Some(first.as_str())), "{again}");
    expect_no_frame_within(a, QUIET).await;
    let last = exchange(c, a, &id, "c-2", "6:40 in the morning", "customer").await;

    // Typing and read receipts reach the other party, from the side that sent them.
    send_json(c, &with_id("typing", &id)).await;
    let typing = next_json(a).await;
    assert_eq!((typing["type"].as_str(), typing["from"].as_str()), (Some("typing"), Some("customer")), "{typing}");
    send_json(a, &json!({ "action": "read", "booking_id": id, "message_id": last })).await;
    let read = next_json(c).await;
    assert_eq!(
        (read["type"].as_str(), read["from"].as_str(), read["message_id"].as_str(), read["booking_id"].as_str()),
        (Some("read"), Some("astrologer"), Some(last.as_str()), Some(id.as_str())),
        "{read}"
    );
    expect_no_frame_within(c, QUIET).await;

    // Both parties read the chat afterwards: each message once, oldest first, in pages.
    for token in [&p.customer, &p.astrologer] {
        let whole = all_messages(&stack, token, &id, 100).await;
        let ids: Vec<_> = whole.iter().map(|m| m["message_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [first.as_str(), reply.as_str(), last.as_str()], "{whole:?}");
        let sides: Vec<_> = whole.iter().map(|m| m["from"].as_str().unwrap()).collect();
        assert_eq!(sides, ["customer", "astrologer", "customer"]);
        assert_eq!(whole[0]["sender_id"].as_str(), Some(p.customer_id.as_str()));
        assert_eq!(whole[1]["sender_id"].as_str(), Some(p.astrologer_id.as_str()));
        assert_eq!(all_messages(&stack, token, &id, 2).await, whole, "two pages of 2 and 1");
        assert_eq!(all_messages(&stack, token, &id, 1).await, whole, "three pages of 1");
    }

    // The meter ran 6 minutes (both still here): the 5 paid minutes ran out a minute ago.
    meter_started_seconds_ago(&stack, &id, 360).await;
    let report = sweep(&stack).await;
    assert_eq!((report["ended"].as_u64(), report["failed"].as_u64()), (Some(1), Some(0)), "{report}");
    let ended = p.both_told_of_the_end().await;
    assert_eq!(ended["end_reason"], "balance", "{ended}");
    let closing = &ended["closing"];
    assert_eq!((closing["measured_seconds"].as_u64(), closing["actual_minutes"].as_u64()), (Some(300), Some(5)));
    assert_eq!(dec(&closing["charged"]["real"]), Decimal::from(50), "{ended}");
    assert_eq!(dec(&closing["astrologer_earnings"]), Decimal::from(35), "{ended}");
    let stored = consultation(&stack, &p.customer, &id).await;
    assert_eq!((&stored["end_reason"], &stored["closing"]), (&ended["end_reason"], &ended["closing"]), "as stored");
    assert_eq!(sweep(&stack).await["closed"], 0, "ended once");
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(950));
    assert_eq!(earned(&stack, &p.astrologer).await, "35.00".parse::<Decimal>().unwrap());
    assert_ledger_balances(&stack).await;

    // Over: sending is refused, and the connection still answers what comes next.
    send_json(&mut p.customer_ws, &send(&id, "c-3", "one more question")).await;
    assert_error(&next_json(&mut p.customer_ws).await, "not_live", Some(&id), "send after the end");
    expect_no_frame_within(&mut p.astrologer_ws, QUIET).await;
    send_json(&mut p.customer_ws, &with_id("typing", &id)).await;
    assert_error(&next_json(&mut p.customer_ws).await, "not_live", Some(&id), "typing after the end");
    assert_eq!(all_messages(&stack, &p.customer, &id, 100).await.len(), 3, "nothing stored after the end");
}

#[tokio::test]
async fn either_party_ends_the_session_over_the_socket_and_pays_the_minutes_measured() {
    let stack = stack().await;
    let mut p = parties(&stack, "10").await;

    // The customer leaves after 1 minute 40 seconds: 2 started minutes billed, the rest back.
    let id = p.ring(&stack, 5).await;
    p.accept_and_join(&stack, &id).await;
    meter_started_seconds_ago(&stack, &id, 100).await;
    send_json(&mut p.customer_ws, &with_id("end", &id)).await;
    let ended = p.both_told_of_the_end().await;
    assert_eq!(
        (ended["end_reason"].as_str(), ended["closing"]["actual_minutes"].as_u64()),
        (Some("customer"), Some(2))
    );
    let measured = ended["closing"]["measured_seconds"].as_u64().unwrap();
    assert!((100..110).contains(&measured), "{ended}");
    assert_eq!(dec(&ended["closing"]["charged"]["real"]), Decimal::from(20), "{ended}");
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(980));
    assert_eq!(earned(&stack, &p.astrologer).await, Decimal::from(14));
    // The parties see the session's quality as it ended: under two minutes measured is short,
    // on the end they are told of as on the consultation read afterwards.
    assert_eq!(consultation(&stack, &p.customer, &id).await["quality"]["short"], true);
    assert_eq!(ended["quality"]["short"], true, "the end pushed and answered says short too: {ended}");
    // Ending again (an app's retry) answers the session as it ended and bills nothing more.
    send_json(&mut p.customer_ws, &with_id("end", &id)).await;
    let again = next_json(&mut p.customer_ws).await;
    assert_eq!(again["consultation"], ended, "{again}");
    for frame in frames_within(&mut p.astrologer_ws, QUIET).await {
        assert_eq!(frame["consultation"], ended, "at most the same end again: {frame}");
    }
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(980));

    // The astrologer ends the next one after 30 seconds: a started minute is billed.
    let id = p.ring(&stack, 5).await;
    p.accept_and_join(&stack, &id).await;
    meter_started_seconds_ago(&stack, &id, 30).await;
    send_json(&mut p.astrologer_ws, &with_id("end", &id)).await;
    let ended = p.both_told_of_the_end().await;
    assert_eq!(
        (ended["end_reason"].as_str(), ended["closing"]["actual_minutes"].as_u64()),
        (Some("astrologer"), Some(1))
    );
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(970));
    assert_eq!(earned(&stack, &p.astrologer).await, Decimal::from(21));
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn a_customer_gone_for_a_minute_ends_the_session_billed_until_last_heard_from() {
    let stack = stack().await;
    let mut p = parties(&stack, "10").await;
    let id = p.ring(&stack, 10).await;
    p.accept_and_join(&stack, &id).await;
    // The meter started 4 minutes ago; the customer was last heard from 2 minutes ago, the
    // astrologer just now. (The socket stays open: an open connection is not a heartbeat.)
    set_times(
        &stack,
        &id,
        &[("started_at", 240), ("customer_joined_at", 240), ("customer_seen_at", 120), ("astrologer_seen_at", 0)],
    )
    .await;
    let report = sweep(&stack).await;
    assert_eq!(report["ended"], 1, "{report}");
    let ended = p.both_told_of_the_end().await;
    assert_eq!(ended["end_reason"], "lapse", "{ended}");
    assert_eq!(
        (ended["closing"]["measured_seconds"].as_u64(), ended["closing"]["actual_minutes"].as_u64()),
        (Some(120), Some(2)),
        "billed to the customer's last word, not to now nor to the paid end: {ended}"
    );
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(980));
    assert_eq!(earned(&stack, &p.astrologer).await, Decimal::from(14));
    assert_eq!(sweep(&stack).await["closed"], 0, "ended once");
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn a_ring_declined_or_unanswered_gives_everything_back_and_a_rung_astrologer_is_busy() {
    let stack = stack().await;
    let mut p = parties(&stack, "10").await;

    // Declined: all back, the customer's socket told.
    let id = p.ring(&stack, 10).await;
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(900));
    let (status, declined) = act(&stack, &p.astrologer, &id, "decline").await;
    assert_eq!((status, declined["status"].as_str()), (200, Some("declined")), "{declined}");
    let told = next_json(&mut p.customer_ws).await;
    assert_eq!(
        (told["type"].as_str(), told["consultation"]["status"].as_str()),
        (Some("consultation"), Some("declined"))
    );
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(1000), "all back");
    send_json(&mut p.customer_ws, &with_id("join", &id)).await;
    assert_error(&next_json(&mut p.customer_ws).await, "not_live", Some(&id), "joining a declined one");

    // While a request rings, another customer cannot ring the same astrologer.
    let id = p.ring(&stack, 10).await;
    let (other, _) = topped_up_customer(&stack, "500").await;
    let (status, busy) = connect_now(&stack, &other, &p.astrologer_id, 5).await;
    assert_eq!((status, busy["error"]["code"].as_str()), (409, Some("slot_taken")), "{busy}");
    assert_eq!(real_cash(&stack, &other).await, Decimal::from(500), "the second wallet is untouched");
    expect_no_frame_within(&mut p.astrologer_ws, QUIET).await;

    // Nobody answers within a minute: the sweep expires it, all back, both told.
    set_times(&stack, &id, &[("ring_expires_at", 1), ("DUE_AT", 1)]).await;
    let report = sweep(&stack).await;
    assert_eq!(report["expired"], 1, "{report}");
    let for_customer = next_json(&mut p.customer_ws).await;
    assert_eq!(for_customer["consultation"]["status"], "expired", "{for_customer}");
    assert_eq!(next_json(&mut p.astrologer_ws).await, for_customer);
    assert_eq!(consultation(&stack, &p.customer, &id).await["status"], "expired");
    assert_eq!(real_cash(&stack, &p.customer).await, Decimal::from(1000), "all back");
    assert_eq!(earned(&stack, &p.astrologer).await, Decimal::ZERO);
    let (status, late) = act(&stack, &p.astrologer, &id, "accept").await;
    assert_eq!(status, 409, "{late}");
    assert_ledger_balances(&stack).await;
}

#[tokio::test]
async fn an_attacker_reaches_nothing_of_anothers_chat_and_bad_frames_are_refused_on_a_working_connection() {
    let stack = stack().await;
    let mut p = parties(&stack, "10").await;
    let id = p.ring(&stack, 10).await;
    // Another astrologer cannot answer someone else's ring.
    let (intruder, _) = astrologer(&stack).await;
    for action in ["accept", "decline"] {
        let (status, refused) = act(&stack, &intruder, &id, action).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (404, Some("not_found")), "{action}: {refused}");
    }
    p.accept_and_join(&stack, &id).await;
    let mine = exchange(&mut p.customer_ws, &mut p.astrologer_ws, &id, "c-1", "private", "customer").await;

    // A third user's socket: every action on the consultation is not_found, and nothing
    // reaches the parties or changes the session.
    let (attacker, _) = customer(&stack).await;
    let mut attacker_ws = open_socket(&stack, Some(&attacker)).await.unwrap();
    for message in [
        with_id("join", &id),
        with_id("heartbeat", &id),
        send(&id, "x-1", "hello from outside"),
        with_id("typing", &id),
        json!({ "action": "read", "booking_id": id, "message_id": mine }),
        with_id("end", &id),
    ] {
        send_json(&mut attacker_ws, &message).await;
        assert_error(&next_json(&mut attacker_ws).await, "not_found", Some(&id), &message.to_string());
    }
    send_json(&mut attacker_ws, &with_id("join", "../CONSULTATION#x")).await;
    assert_error(&next_json(&mut attacker_ws).await, "not_found", Some("../CONSULTATION#x"), "not an id");
    expect_no_frame_within(&mut p.customer_ws, QUIET).await;
    expect_no_frame_within(&mut p.astrologer_ws, QUIET).await;
    let (status, page) = messages_page(&stack, &attacker, &id, "").await;
    assert_eq!((status, page["error"]["code"].as_str()), (404, Some("not_found")), "{page}");
    assert_eq!(consultation(&stack, &p.customer, &id).await["status"], "in_progress", "the attacker's end did nothing");
    assert_eq!(all_messages(&stack, &p.customer, &id, 100).await.len(), 1, "nothing stored from outside");

    // Malformed frames on a party's own connection: each refused, and the next message on the
    // same connection still goes through.
    let too_long = "a".repeat(2001);
    let frame_20_kb = send(&id, "c-big", &"b".repeat(20 * 1024)).to_string();
    let bad: [(String, &str, Option<&str>); 9] = [
        ("[]".into(), "invalid_message", None),
        (r#""x""#.into(), "invalid_message", None),
        ("42".into(), "invalid_message", None),
        ("{not json".into(), "invalid_message", None),
        (with_id("fly", &id).to_string(), "unknown_action", Some(&id)),
        (
            json!({ "action": "send", "booking_id": id, "text": "no client id" }).to_string(),
            "invalid_message",
            Some(&id),
        ),
        (json!({ "action": "join", "booking_id": id, "role": "staff" }).to_string(), "invalid_message", Some(&id)),
        (send(&id, "c-long", &too_long).to_string(), "invalid_field", Some(&id)),
        (frame_20_kb, "too_large", Some(&id)),
    ];
    for (frame, code, booking) in &bad {
        send_frame(&mut p.customer_ws, frame).await;
        assert_error(&next_json(&mut p.customer_ws).await, code, *booking, &frame[..frame.len().min(80)]);
        send_json(&mut p.customer_ws, &with_id("typing", &id)).await;
        let typing = next_json(&mut p.astrologer_ws).await;
        assert_eq!(
            typing["type"],
            "typing",
            "the connection still works after {}: {typing}",
            &frame[..frame.len().min(80)]
        );
    }
    // 2,000 characters (6,000 bytes of Devanagari) is the longest text, and passes.
    let longest = "अ".repeat(2000);
    exchange(&mut p.customer_ws, &mut p.astrologer_ws, &id, "c-2", &longest, "customer").await;
    assert_eq!(all_messages(&stack, &p.astrologer, &id, 100).await.len(), 2, "no refused frame was stored");
}
