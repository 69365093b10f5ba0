//! `chat`: the live chat row of the benchmark (docs/benchmark.md). 50 customer/astrologer
//! pairs connect now through the local API (the customer asks, the astrologer accepts), each
//! party opens a socket on the local WebSocket API and joins, then every pair talks at once:
//! each message is written as a `send` frame on one party's socket and timed until its
//! `message` frame is read on the other's (the live-session function stores it, then pushes
//! it with `PostToConnection`); the other party answers, one message in flight per pair.
//! In the same run and at the same concurrency: a raw `PostToConnection` round trip (the
//! Management API client straight to a socket of the stack) and the send path's DynamoDB
//! calls replayed without the function; then every chat is read back with
//! `GET /consultations/{id}/messages`: each message stored exactly once. Everything on
//! 127.0.0.1, bounded in count and time. Not a test: times depend on the machine; the ratio
//! and "stored once" are the figures.
//! `cargo run -p integration-tests --bin chat -- [--sessions N] [--messages N]`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use infra::LocalStack;
use integration_tests::load::{Args, bounded, percentile, populated};
use integration_tests::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Raw `PostToConnection` round trips in all, spread over one socket per session.
const RAW_POSTS: usize = 3000;
/// Raw `PostToConnection` round trips on one socket, one at a time: the hop's own latency.
const RAW_POSTS_ALONE: usize = 1000;
/// Send paths' DynamoDB calls replayed one at a time: moto's own time for them.
const REPLAYS_ALONE: usize = 200;
/// How long a message may take to be delivered and acknowledged before it counts as lost.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(15);
/// The chat phase stops sending after this, whatever is left.
const CHAT_DEADLINE: Duration = Duration::from_secs(300);
/// Setup requests in flight at once (sign-ups, KYC, bookings, sockets).
const SETUP_WIDTH: usize = 4;
/// Times a message refused with an `error` is sent again with the same `client_id`.
const RESENDS: usize = 3;

#[tokio::main]
async fn main() {
    let (sessions, messages) = parse_args();
    let started = Instant::now();
    // The load runs' stack (no pollers, no SMS limit) and topped-up customers; astrologers
    // are made here because the chat needs their tokens too.
    let no_astrologers = Args { seconds: 0, customers: sessions, astrologers: 0, think_seconds: 0 };
    let (stack, _, customers, _) =
        populated(&no_astrologers, false, |s| async move { topped_up_customer(&s, "5000").await }).await;
    let s = stack.clone();
    let astrologers = bounded(sessions, SETUP_WIDTH, move |_| {
        let s = s.clone();
        async move { bookable_astrologer(&s, "10").await }
    })
    .await;
    let people = Arc::new(customers.into_iter().zip(astrologers).collect::<Vec<_>>());
    let (s, p) = (stack.clone(), people.clone());
    let pairs = bounded(sessions, SETUP_WIDTH, move |i| {
        let (s, p) = (s.clone(), p.clone());
        async move { connect_pair(&s, &p[i].0, &p[i].1).await }
    })
    .await;
    println!(
        "Live chat delivery: {sessions} sessions (connect now, accepted, both joined), {messages} messages each, \
         the parties taking turns, one message in flight per session (set up in {:.0} s)",
        started.elapsed().as_secs_f64()
    );

    // The chat: every session at once.
    let calls_before = stack.calls.every().len();
    let chat_started = Instant::now();
    let deadline = chat_started + CHAT_DEADLINE;
    let mut set = tokio::task::JoinSet::new();
    for (i, pair) in pairs.into_iter().enumerate() {
        set.spawn(talk(i, pair, messages, deadline));
    }
    // The sockets stay open to the end: a closing one runs `$disconnect` (a DeleteItem) in
    // the chat's call log and beside the timed phases that follow.
    let (mut talks, _open): (Vec<Talk>, Vec<Pair>) = set.join_all().await.into_iter().unzip();
    talks.sort_by_key(|t| t.session);
    let chat_seconds = chat_started.elapsed().as_secs_f64();
    let calls = stack.calls.every()[calls_before..].to_vec();
    let sent: usize = talks.iter().map(|t| t.client_ids.len()).sum();
    let mut delivered: Vec<f64> = talks.iter().flat_map(|t| t.delivered_ms.iter().copied()).collect();
    delivered.sort_by(f64::total_cmp);
    let resent: usize = talks.iter().map(|t| t.resent).sum();
    let problems: Vec<&String> = talks.iter().flat_map(|t| &t.problems).collect();
    println!(
        "  delivered: {} of {sent} messages in {chat_seconds:.1} s ({resent} sent again after an error), send frame \
         written to message frame read: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delivered.len(),
        percentile(&delivered, 0.5),
        percentile(&delivered, 0.95),
        percentile(&delivered, 0.99),
        delivered.last().copied().unwrap_or(f64::NAN),
    );
    for p in problems.iter().take(5) {
        println!("    {p}");
    }
    let mut per_message: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &calls {
        *per_message.entry(c.as_str()).or_default() += 1;
    }
    let per_message: Vec<String> =
        per_message.iter().map(|(op, n)| format!("{op} {:.2}", *n as f64 / sent.max(1) as f64)).collect();
    println!("  AWS calls per message (the local AWS endpoint's log over the chat): {}", per_message.join(", "));

    let mut raw = raw_post_round_trips(&stack, &people, RAW_POSTS.div_ceil(sessions)).await;
    raw.sort_by(f64::total_cmp);
    let mut alone = raw_post_round_trips(&stack, &people[..1], RAW_POSTS_ALONE).await;
    alone.sort_by(f64::total_cmp);
    let (raw_p50, alone_p50) = (percentile(&raw, 0.5), percentile(&alone, 0.5));
    println!(
        "  raw PostToConnection (the stack's Management API client, post sent to frame read): {} round trips on \
         {sessions} sockets at once p50 {raw_p50:.2} ms, p99 {:.2} ms; {} on one socket one at a time p50 \
         {alone_p50:.2} ms, p99 {:.2} ms",
        raw.len(),
        percentile(&raw, 0.99),
        alone.len(),
        percentile(&alone, 0.99)
    );
    let delivered_p50 = percentile(&delivered, 0.5);
    println!(
        "  delivery p50 / raw PostToConnection p50: {:.1} at the same concurrency ({:.0} against one at a time)",
        delivered_p50 / raw_p50,
        delivered_p50 / alone_p50
    );

    let bookings: Vec<String> = talks.iter().map(|t| t.booking_id.clone()).collect();
    for (label, bookings, repeats) in [
        (format!("{sessions} at once"), &bookings[..], messages),
        ("one at a time".into(), &bookings[..1], REPLAYS_ALONE),
    ] {
        let store = replayed_store_calls(&stack, bookings, repeats, &label).await;
        println!(
            "  the send path's DynamoDB calls replayed without the function, {} times {label}: GetItem + 3-item \
             TransactWriteItems + Query p50 {:.1} ms, p99 {:.1} ms (p50 each: {:.1} + {:.1} + {:.1} ms)",
            store.len(),
            quantile(&store, |t| t.total, 0.5),
            quantile(&store, |t| t.total, 0.99),
            quantile(&store, |t| t.get_item, 0.5),
            quantile(&store, |t| t.transaction, 0.5),
            quantile(&store, |t| t.query, 0.5),
        );
    }

    let wrong = stored_once(&stack, &people, &talks).await;
    println!(
        "  stored once: {} ({sent} messages sent in {sessions} chats; each chat read back, counted, client_ids unique)",
        if wrong.is_empty() { "yes" } else { "no" }
    );
    for w in &wrong {
        println!("    {w}");
    }
    if !wrong.is_empty() {
        std::process::exit(1);
    }
}

/// `--sessions N --messages N` (1 to 200 each; 50 and 20 by default).
fn parse_args() -> (usize, usize) {
    let (mut sessions, mut messages) = (50, 20);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--sessions" => sessions = value.clamp(1, 200),
            "--messages" => messages = value.clamp(1, 200),
            other => panic!("unknown option {other}"),
        }
    }
    (sessions, messages)
}

/// One party's socket, split so both parties' frames can be awaited at once.
struct Party {
    sink: SplitSink<Socket, Message>,
    frames: SplitStream<Socket>,
}

impl Party {
    async fn open(stack: &LocalStack, token: &str) -> Party {
        let socket = open_socket(stack, Some(token)).await.expect("a signed-in party connects");
        let (sink, frames) = socket.split();
        Party { sink, frames }
    }

    async fn send(&mut self, frame: &Value) {
        self.sink.send(Message::text(frame.to_string())).await.expect("the socket takes a frame");
    }

    /// The next JSON frame (pings skipped); `None` when the socket closed or broke.
    async fn next(&mut self) -> Option<Value> {
        loop {
            match self.frames.next().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Frames until one `wanted`, within 10 seconds.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            loop {
                match self.next().await {
                    Some(v) if wanted(&v) => return v,
                    Some(_) => continue,
                    None => panic!("the socket closed while waiting for {what}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.unwrap_or_else(|_| panic!("no {what} in 10 s"))
    }
}

/// A live session: its id and both parties' sockets, joined.
struct Pair {
    booking_id: String,
    customer: Party,
    astrologer: Party,
}

/// The customer connects now (10 minutes at 10.00), the astrologer accepts, both open a
/// socket and join; returns once both sockets were told the meter runs.
async fn connect_pair(stack: &LocalStack, customer: &(String, String), astrologer: &(String, String)) -> Pair {
    let api = Api::new(stack);
    let key = format!("chat-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer.1, "mode": "chat", "minutes": 10 });
    let (status, asked) = api.post_as("/consultations", &customer.0, &[("idempotency-key", &key)], body).await;
    assert_eq!((status, asked["status"].as_str()), (201, Some("ringing")), "{asked}");
    let booking_id = asked["booking_id"].as_str().unwrap().to_owned();
    let (status, accepted) =
        api.post_as(&format!("/consultations/{booking_id}/accept"), &astrologer.0, &[], json!({})).await;
    assert_eq!(status, 200, "{accepted}");
    let mut pair = Pair {
        customer: Party::open(stack, &customer.0).await,
        astrologer: Party::open(stack, &astrologer.0).await,
        booking_id,
    };
    let join = json!({ "action": "join", "booking_id": pair.booking_id });
    let meter_runs = |v: &Value| v["type"] == "consultation" && !v["consultation"]["started_at"].is_null();
    pair.astrologer.send(&join).await;
    pair.astrologer.until("the astrologer's join", |v| v["type"] == "consultation").await;
    pair.customer.send(&join).await;
    pair.customer.until("the meter's start (customer)", meter_runs).await;
    pair.astrologer.until("the meter's start (astrologer)", meter_runs).await;
    pair
}

/// What one session's chat came to.
struct Talk {
    session: usize,
    booking_id: String,
    /// Every message sent (whether or not it arrived), by its `client_id`.
    client_ids: Vec<String>,
    delivered_ms: Vec<f64>,
    resent: usize,
    problems: Vec<String>,
}

/// `messages` turns, customer first: each message timed until the other party reads it,
/// the next sent once the sender has its ack. The sockets come back, still open.
async fn talk(session: usize, mut pair: Pair, messages: usize, deadline: Instant) -> (Talk, Pair) {
    let mut talk = Talk {
        session,
        booking_id: pair.booking_id.clone(),
        client_ids: Vec::new(),
        delivered_ms: Vec::new(),
        resent: 0,
        problems: Vec::new(),
    };
    for turn in 0..messages {
        if Instant::now() >= deadline {
            talk.problems.push(format!("session {session}: stopped at the deadline after {turn} messages"));
            break;
        }
        let (from, to) = if turn % 2 == 0 {
            (&mut pair.customer, &mut pair.astrologer)
        } else {
            (&mut pair.astrologer, &mut pair.customer)
        };
        let client_id = format!("s{session}-m{turn}");
        talk.client_ids.push(client_id.clone());
        let frame = json!({
            "action": "send", "booking_id": pair.booking_id, "client_id": client_id,
            "text": format!("turn {turn} of session {session}: how do the planets look this week?"),
        });
        match tokio::time::timeout(MESSAGE_TIMEOUT, one_message(from, to, &frame, &client_id)).await {
            Ok(Ok((ms, resent))) => {
                talk.delivered_ms.push(ms);
                talk.resent += resent;
            }
            Ok(Err(e)) => talk.problems.push(format!("session {session}, {client_id}: {e}")),
            Err(_) => talk.problems.push(format!("session {session}, {client_id}: not delivered and acknowledged")),
        }
    }
    (talk, pair)
}

/// Writes `frame` on `from`; reads both sockets until the `message` for `client_id` arrives
/// on `to` and its `ack` on `from` (an `error` instead: sent again, as an app would, with the
/// same `client_id`). Milliseconds from the first write to the `message` frame, and resends.
async fn one_message(from: &mut Party, to: &mut Party, frame: &Value, client_id: &str) -> Result<(f64, usize), String> {
    let started = Instant::now();
    from.send(frame).await;
    let (mut delivered, mut acked, mut resent) = (None, false, 0);
    while delivered.is_none() || !acked {
        tokio::select! {
            v = to.next() => {
                let v = v.ok_or("the receiver's socket closed")?;
                if v["type"] == "message" && v["message"]["client_id"] == client_id && delivered.is_none() {
                    delivered = Some(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            v = from.next() => {
                let v = v.ok_or("the sender's socket closed")?;
                match v["type"].as_str() {
                    Some("ack") if v["client_id"] == client_id => acked = true,
                    Some("error") if resent < RESENDS => {
                        resent += 1;
                        from.send(frame).await;
                    }
                    Some("error") => return Err(format!("refused {} times: {v}", RESENDS + 1)),
                    _ => {}
                }
            }
        }
    }
    Ok((delivered.unwrap_or_default(), resent))
}

/// `per_socket` raw round trips on each of one new socket per customer of `people`, all
/// sockets at once: the stack's Management API client posts a frame, the time until the
/// socket reads it. Milliseconds, every round trip.
async fn raw_post_round_trips(stack: &Arc<LocalStack>, people: &[PeopleOf], per_socket: usize) -> Vec<f64> {
    let registry = stack.ws_connections.clone().expect("the template has a WebSocket API");
    // One at a time, so each new connection id is the socket just opened.
    let mut sockets = Vec::new();
    for (customer, _) in people {
        let before: HashSet<String> = registry.ids().into_iter().collect();
        let socket = open_socket(stack, Some(&customer.0)).await.expect("a customer connects");
        // The stack registers a connection as the upgrade completes, maybe just after the
        // client has seen it.
        let mut new = Vec::new();
        for _ in 0..100 {
            new = registry.ids().into_iter().filter(|id| !before.contains(id)).collect();
            if !new.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let [id] = new.as_slice() else { panic!("one new connection expected: {new:?}") };
        sockets.push((id.clone(), socket));
    }
    let management = management_api(stack);
    let mut set = tokio::task::JoinSet::new();
    for (n, (id, mut socket)) in sockets.into_iter().enumerate() {
        let management = management.clone();
        set.spawn(async move {
            let mut times = Vec::with_capacity(per_socket);
            for i in 0..per_socket {
                let frame = format!(r#"{{"type":"raw","socket":{n},"n":{i}}}"#);
                let started = Instant::now();
                management
                    .post_to_connection()
                    .connection_id(&id)
                    .data(Blob::new(frame.clone()))
                    .send()
                    .await
                    .expect("PostToConnection to an open socket");
                // Anything else pushed to the customer's connections is skipped.
                while next_text(&mut socket).await != frame {}
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

/// A customer and an astrologer: (access token, user id) each.
type PeopleOf = ((String, String), (String, String));

/// Milliseconds of one replayed send path: its three DynamoDB calls, and in all.
#[derive(Clone, Copy)]
struct StoreTimes {
    get_item: f64,
    transaction: f64,
    query: f64,
    total: f64,
}

/// The DynamoDB calls the live-session function makes before it pushes a message (read the
/// consultation; store the message, its client id and the consultation's counters in one
/// transaction; read the other party's connections), made by each session at once through the
/// same local AWS endpoint, `repeats` times for each of `bookings` at once, without the
/// WebSocket, the function or the push. Its own items are keyed by `run`.
async fn replayed_store_calls(
    stack: &Arc<LocalStack>,
    bookings: &[String],
    repeats: usize,
    run: &str,
) -> Vec<StoreTimes> {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.table_name();
    let s = |v: String| AttributeValue::S(v);
    let mut set = tokio::task::JoinSet::new();
    for (n, booking) in bookings.iter().cloned().enumerate() {
        let (client, table) = (client.clone(), table.clone());
        let n = format!("{run}#{n}");
        set.spawn(async move {
            let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
            let mut times = Vec::with_capacity(repeats);
            for i in 0..repeats {
                let started = Instant::now();
                client
                    .get_item()
                    .table_name(&table)
                    .key("PK", s(format!("CONSULTATION#{booking}")))
                    .key("SK", s("CONSULTATION".into()))
                    .send()
                    .await
                    .expect("GetItem");
                let get_item = ms(started);
                let put = |pk: String| {
                    let item = std::collections::HashMap::from([
                        ("PK".to_owned(), s(pk)),
                        ("SK".to_owned(), s(format!("RAW#{i}"))),
                        ("payload".to_owned(), s("x".repeat(300))),
                    ]);
                    let put = Put::builder()
                        .table_name(&table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(PK)");
                    TransactWriteItem::builder().put(put.build().unwrap()).build()
                };
                let counters = Update::builder()
                    .table_name(&table)
                    .key("PK", s(format!("RAW#SESSION#{n}")))
                    .key("SK", s("RAW".into()))
                    .update_expression("SET messages = if_not_exists(messages, :zero) + :one, live = :live")
                    .condition_expression("attribute_not_exists(live) OR live = :live")
                    .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .expression_attribute_values(":live", s("in_progress".into()));
                let items = vec![
                    put(format!("RAW#CHAT#{n}")),
                    put(format!("RAW#CLIENTID#{n}")),
                    TransactWriteItem::builder().update(counters.build().unwrap()).build(),
                ];
                let t = Instant::now();
                client.transact_write_items().set_transact_items(Some(items)).send().await.expect("the transaction");
                let transaction = ms(t);
                let t = Instant::now();
                client
                    .query()
                    .table_name(&table)
                    .key_condition_expression("PK = :pk")
                    .expression_attribute_values(":pk", s(format!("RAW#CONNS#{n}")))
                    .send()
                    .await
                    .expect("Query");
                times.push(StoreTimes { get_item, transaction, query: ms(t), total: ms(started) });
            }
            times
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

/// The `p` quantile of one field of `times`.
fn quantile(times: &[StoreTimes], field: impl Fn(&StoreTimes) -> f64, p: f64) -> f64 {
    let mut values: Vec<f64> = times.iter().map(field).collect();
    values.sort_by(f64::total_cmp);
    percentile(&values, p)
}

/// Every chat read back by its customer (every page): one stored message per `client_id`
/// sent, none twice, nothing else. What is wrong, per session.
async fn stored_once(stack: &Arc<LocalStack>, people: &[PeopleOf], talks: &[Talk]) -> Vec<String> {
    let api = Api::new(stack);
    let mut wrong = Vec::new();
    for ((customer, _), talk) in people.iter().zip(talks) {
        let mut stored: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/consultations/{}/messages?limit=100", talk.booking_id);
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, page) = api.get(&path, Some(&customer.0)).await;
            if status != 200 {
                wrong.push(format!("{}: GET messages answered {status}: {page}", talk.booking_id));
                break;
            }
            let ids = page["messages"].as_array().into_iter().flatten();
            stored.extend(ids.map(|m| m["client_id"].as_str().unwrap_or_default().to_owned()));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<&String> = stored.iter().collect();
        let expected: HashSet<&String> = talk.client_ids.iter().collect();
        if stored.len() != talk.client_ids.len() || unique.len() != stored.len() || unique != expected {
            wrong.push(format!(
                "{}: {} sent, {} stored, {} distinct client_ids, same set: {}",
                talk.booking_id,
                talk.client_ids.len(),
                stored.len(),
                unique.len(),
                unique == expected
            ));
        }
    }
    wrong
}
