//! `contention`: the booking row of the benchmark (docs/benchmark.md). 50 customers book
//! 10 astrologers at once through the local API (the real handlers, the real SDK, moto),
//! for a bounded time; next to it, in alternating windows, the raw rate of a transaction of
//! the same shape (6 items, two of them conditioned on a version) against the same moto at
//! the same concurrency, without contention; then every money invariant is checked. Everything on
//! 127.0.0.1. Not a test: rates depend on the machine; the ratio and the violations are the
//! figures. `cargo run -p integration-tests --bin contention -- [--seconds N] [--customers N]
//! [--astrologers N]`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use integration_tests::load::{Args, percentile, populated};
use integration_tests::*;
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::json;
use tokio::task::JoinSet;

#[tokio::main]
async fn main() {
    let args = Args::parse(Args { seconds: 20, customers: 50, astrologers: 10, think_seconds: 0 });
    let (stack, astrologers, customers, setup) =
        populated(&args, false, |s| async move { topped_up_customer(&s, "5000").await }).await;
    println!(
        "Booking contention: {} customers (5,000.00 each) book {} astrologers for {} s, 5-minute chats at 10.00/min \
         on 100 slots each (set up in {:.0} s)",
        args.customers, args.astrologers, args.seconds, setup
    );

    // Both rates are measured in alternating windows: moto copies a table for every
    // transaction, so its speed falls as the table grows, and a ratio of two phases run one
    // after the other would credit whichever ran first.
    let base: DateTime<Utc> =
        (Utc::now() + chrono::Duration::days(2)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let astrologers = Arc::new(astrologers);
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let window = Duration::from_secs_f64(args.seconds as f64 / ROUNDS as f64);
    let (mut outcomes, mut api_time, mut raw, mut raw_time) = (Vec::new(), 0.0, 0usize, 0.0);
    for round in 0..ROUNDS {
        let started = Instant::now();
        outcomes.extend(book_for(&stack, &customers, &astrologers, base, window).await);
        api_time += started.elapsed().as_secs_f64();
        let started = Instant::now();
        raw += raw_for(&client, &stack.table_name(), args.customers, round, window).await;
        raw_time += started.elapsed().as_secs_f64();
    }
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for (o, _) in &outcomes {
        *by_outcome.entry(o.as_str()).or_default() += 1;
    }
    let mut booked_ms: Vec<f64> = outcomes.iter().filter(|(o, _)| o == "booked").map(|(_, ms)| *ms).collect();
    booked_ms.sort_by(|a, b| a.total_cmp(b));
    let booked = booked_ms.len();
    let api_rate = booked as f64 / api_time;
    println!(
        "  through the API:   {booked} bookings in {api_time:.1} s = {api_rate:.1}/s (p50 {:.0} ms, p99 {:.0} ms); \
         every answer: {by_outcome:?}",
        percentile(&booked_ms, 0.5),
        percentile(&booked_ms, 0.99)
    );
    let raw_rate = raw as f64 / raw_time;
    println!(
        "  raw transactions:  {raw} of the same shape in {raw_time:.1} s = {raw_rate:.1}/s, same concurrency, \
         no contention ({ROUNDS} alternating windows each)"
    );
    println!("  booking rate / raw rate: {:.2}", api_rate / raw_rate);

    // Every money invariant, after the run.
    let found = integration_tests::money::check_money(&stack, &[]).await;
    let mut violations = found.violations;
    let items = all_items(&stack).await;
    let consultations: Vec<_> = items
        .iter()
        .filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).is_some_and(|e| e == "consultation"))
        .collect();
    let text = |i: &HashMap<String, AttributeValue>, k: &str| {
        i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let number = |i: &HashMap<String, AttributeValue>, k: &str| {
        i.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<Decimal>().ok()).unwrap_or_default()
    };
    if consultations.len() != booked {
        violations.push(format!("{} consultations stored, {booked} bookings answered 201", consultations.len()));
    }
    let mut slots: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut held: HashMap<String, Decimal> = HashMap::new();
    for c in &consultations {
        *slots.entry((text(c, "astrologer_id"), text(c, "scheduled_at"))).or_default() += 1;
        *held.entry(text(c, "customer_id")).or_default() += number(c, "amount");
    }
    let doubled = slots.values().filter(|n| **n > 1).count();
    if doubled > 0 {
        violations.push(format!("{doubled} slots booked twice"));
    }
    for (_, customer) in &customers {
        let wallet =
            items.iter().find(|i| text(i, "PK") == format!("USER#{customer}") && text(i, "SK") == "WALLET").unwrap();
        // Nothing but holds debits a wallet in this run.
        let spent = number(wallet, "total_debited");
        let expected = held.get(customer).copied().unwrap_or_default();
        if spent != expected {
            violations.push(format!("customer {customer}: {spent} left the wallet, consultations hold {expected}"));
        }
        if number(wallet, "real_cash") < Decimal::ZERO || number(wallet, "bonus_cash") < Decimal::ZERO {
            violations.push(format!("customer {customer}: a balance below zero"));
        }
    }
    println!(
        "  invariants: {} checked (every ledger, consultation, slot and credit), each of {} bookings stored, \
         held = debited per customer: violations {}",
        found.invariants,
        booked,
        violations.len()
    );
    for v in &violations {
        println!("    violation: {v}");
    }
    if !violations.is_empty() {
        std::process::exit(1);
    }
}

/// Windows per phase (see the comment in `main`).
const ROUNDS: usize = 4;

/// Every customer books again and again for `window`, as an app does (a 503 retried with
/// the same key, a few times). Each booking's outcome and milliseconds.
async fn book_for(
    stack: &Arc<infra::LocalStack>,
    customers: &[(String, String)],
    astrologers: &Arc<Vec<String>>,
    base: DateTime<Utc>,
    window: Duration,
) -> Vec<(String, f64)> {
    let deadline = Instant::now() + window;
    let mut set = JoinSet::new();
    for (token, _) in customers {
        let (stack, astrologers, token) = (stack.clone(), astrologers.clone(), token.clone());
        set.spawn(async move {
            let api = Api::new(&stack);
            let mut outcomes: Vec<(String, f64)> = Vec::new();
            while Instant::now() < deadline {
                let (who, slot) = {
                    let mut rng = rand::rng();
                    (rng.random_range(0..astrologers.len()), rng.random_range(0..100i64))
                };
                let at =
                    (base + chrono::Duration::minutes(slot * 10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let body =
                    json!({ "astrologer_id": astrologers[who], "mode": "chat", "minutes": 5, "scheduled_at": at });
                let key = format!("load-{}", rand::random::<u64>());
                let t = Instant::now();
                let mut outcome = String::new();
                for attempt in 0..5 {
                    let (status, resp) =
                        api.post_as("/consultations", &token, &[("idempotency-key", &key)], body.clone()).await;
                    outcome = match status {
                        201 => "booked".into(),
                        _ => resp["error"]["code"].as_str().map_or(format!("{status}"), |c| format!("{status} {c}")),
                    };
                    if status != 503 || attempt == 4 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                outcomes.push((outcome, t.elapsed().as_secs_f64() * 1000.0));
            }
            outcomes
        });
    }
    set.join_all().await.into_iter().flatten().collect()
}

/// The booking transaction's shape (consultation, wallet conditioned on its version, ledger
/// entry, astrologer schedule conditioned on its version, idempotency record, outbox event),
/// `writers` at once, each on keys of its own, for `window`. How many succeeded.
async fn raw_for(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    writers: usize,
    round: usize,
    window: Duration,
) -> usize {
    let deadline = Instant::now() + window;
    let mut set = JoinSet::new();
    for writer in 0..writers {
        let (client, table) = (client.clone(), table.to_owned());
        set.spawn(async move {
            let s = |v: String| AttributeValue::S(v);
            let put = |pk: String| {
                let item = HashMap::from([
                    ("PK".to_owned(), s(pk)),
                    ("SK".to_owned(), s("RAW".into())),
                    ("payload".to_owned(), s("x".repeat(300))),
                ]);
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(PK)");
                TransactWriteItem::builder().put(put.build().unwrap()).build()
            };
            let versioned = |pk: String, version: u64| {
                let update = Update::builder()
                    .table_name(&table)
                    .key("PK", s(pk))
                    .key("SK", s("RAW".into()))
                    .update_expression("SET version = :next")
                    .condition_expression("attribute_not_exists(version) OR version = :read")
                    .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
                    .expression_attribute_values(":read", AttributeValue::N(version.to_string()));
                TransactWriteItem::builder().update(update.build().unwrap()).build()
            };
            let (mut done, mut version) = (0usize, 0u64);
            while Instant::now() < deadline {
                let n = rand::random::<u64>();
                let items = vec![
                    put(format!("RAW#C#{n}")),
                    versioned(format!("RAW#W#{round}-{writer}"), version),
                    put(format!("RAW#L#{n}")),
                    versioned(format!("RAW#A#{round}-{writer}"), version),
                    put(format!("RAW#I#{n}")),
                    put(format!("RAW#O#{n}")),
                ];
                if client.transact_write_items().set_transact_items(Some(items)).send().await.is_ok() {
                    done += 1;
                    version += 1;
                }
            }
            done
        });
    }
    set.join_all().await.into_iter().sum()
}
