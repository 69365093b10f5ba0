//! Money invariants under random interleavings. Each run draws a few operations and starts
//! them all at once, a few milliseconds apart, against one local stack: top-ups whose
//! checkout confirmation and webhooks come duplicated, raced and reordered, some followed
//! (or overtaken) by a refund or a chargeback won, lost or left open; bookings for now and for
//! later with their starts, completions, cancellations by either side and no-shows racing
//! one another; and Razorpay redelivering everything the run sent. After every run every
//! invariant is checked over the whole table (`check`).
//!
//! `MONEY_RUNS` sets the number of runs (25 by default, CI's fast part; the reliability
//! command runs 1,000) and `MONEY_SEED` the seed (random and printed by default), so a
//! failure can be replayed. Runs are not shrunk: they share the stack's accumulated state.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{SecondsFormat, Timelike, Utc};
use futures::future::join_all;
use infra::LocalStack;
use infra::functions::Handler;
use infra::moto::MotoServer;
use infra::stubs::razorpay::Webhook;
use integration_tests::money::check_money;
use integration_tests::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

const CUSTOMERS: usize = 3;
const ASTROLOGERS: usize = 2;
/// A fresh stack (table, queues, users) on a fresh moto this often: moto copies the whole
/// table for every transaction, so a table that only grows would make later runs ever slower.
const RUNS_PER_STACK: usize = 20;
/// A promo code every world has, with room for every run's uses: the check counts its uses
/// against the consultations that kept them.
const PROMO: &str = "INVARIANT5";

#[derive(Debug, Clone, Copy)]
enum Via {
    /// The app's checkout callback (`POST /wallet/top-ups/{id}/confirm`).
    Confirm,
    Captured,
    OrderPaid,
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Open,
    Won,
    Lost,
}

#[derive(Debug, Clone, Copy)]
enum Reversal {
    /// `percent` of the payment refunded, the webhook delivered `times`.
    Refund { percent: u64, times: usize },
    /// A chargeback; `reversed`: its outcome arrives before its opening.
    Chargeback { outcome: Outcome, reversed: bool },
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Start,
    /// Completed `minutes_ago` after it was started (its start is moved back).
    Complete {
        minutes_ago: i64,
    },
    Cancel {
        by_customer: bool,
    },
    /// Nobody started it and its time has passed (moved back, booking time too): the
    /// customer gives up waiting and cancels.
    GiveUp,
    /// Nobody started it: its time is moved back past the grace period and the sweep runs.
    NoShow,
}

#[derive(Debug, Clone)]
struct Booking {
    customer: usize,
    astrologer: usize,
    minutes: u32,
    in_hours: Option<i64>,
    /// With the world's promo code (`PROMO`).
    promo: bool,
    acts: Vec<(Act, u64)>,
}

#[derive(Debug, Clone)]
enum Op {
    TopUp {
        customer: usize,
        rupees: u32,
        deliveries: Vec<(Via, u64)>,
        reversal: Option<(Reversal, u64)>,
    },
    Book(Booking),
    /// Every webhook the run sent so far, delivered again.
    Redeliver,
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![Just(Via::Confirm), Just(Via::Captured), Just(Via::OrderPaid)]
}

fn reversal() -> impl Strategy<Value = Reversal> {
    let outcome = prop_oneof![Just(Outcome::Open), Just(Outcome::Won), Just(Outcome::Lost)];
    prop_oneof![
        (prop_oneof![Just(25u64), Just(50), Just(100)], 1usize..=2)
            .prop_map(|(percent, times)| Reversal::Refund { percent, times }),
        (outcome, any::<bool>()).prop_map(|(outcome, reversed)| Reversal::Chargeback { outcome, reversed }),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Start),
        2 => (1i64..=20).prop_map(|minutes_ago| Act::Complete { minutes_ago }),
        1 => any::<bool>().prop_map(|by_customer| Act::Cancel { by_customer }),
        1 => Just(Act::NoShow),
        1 => Just(Act::GiveUp),
    ]
}

/// What happens to a booking: mostly a lifecycle (started and completed, or cancelled, or
/// nobody came), then perhaps one more act racing it; each with a jitter.
fn acts() -> impl Strategy<Value = Vec<(Act, u64)>> {
    let lifecycle = prop_oneof![
        3 => (1i64..=20).prop_map(|minutes_ago| vec![Act::Start, Act::Complete { minutes_ago }]),
        1 => any::<bool>().prop_map(|by_customer| vec![Act::Start, Act::Cancel { by_customer }]),
        1 => any::<bool>().prop_map(|by_customer| vec![Act::Cancel { by_customer }]),
        1 => Just(vec![Act::NoShow]),
        1 => Just(vec![Act::GiveUp]),
        1 => Just(vec![]),
    ];
    (lifecycle, option::weighted(0.3, act()), vec(0u64..20, 3)).prop_map(|(mut acts, extra, jitters)| {
        acts.extend(extra);
        acts.into_iter().zip(jitters).collect()
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CUSTOMERS, 2u32..=40, vec((via(), 0u64..30), 1..=4), option::weighted(0.4, (reversal(), 0u64..40)))
            .prop_map(|(customer, fifties, deliveries, reversal)| Op::TopUp {
                customer, rupees: fifties * 50, deliveries, reversal,
            }),
        4 => (0..CUSTOMERS, 0..ASTROLOGERS, 1u32..=6, option::weighted(0.3, 1i64..=72), any::<bool>(), acts())
            .prop_map(|(customer, astrologer, fives, in_hours, promo, acts)| Op::Book(Booking {
                customer, astrologer, minutes: fives * 5, in_hours, promo, acts,
            })),
        1 => Just(Op::Redeliver),
    ]
}

/// One run: operations with the milliseconds each waits before it begins.
fn run() -> impl Strategy<Value = Vec<(Op, u64)>> {
    vec((op(), 0u64..40), 1..=6)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A stack with its people: customers (token, id) and bookable astrologers (token, id).
struct World {
    stack: LocalStack,
    /// A moto of its own, stopped with the world (after the stack, whose pollers use it):
    /// moto's memory grows with every transaction on a table and deleting the table does not
    /// give it back (11 GiB after 7 minutes of runs on one moto, deleted tables and all).
    _moto: MotoServer,
    api: Api,
    customers: Vec<(String, String)>,
    astrologers: Vec<(String, String)>,
}

impl World {
    async fn new() -> Self {
        let moto = tokio::task::spawn_blocking(MotoServer::start).await.unwrap().expect("moto_server starts");
        let stack = stack_on(&moto.endpoint, |o| {
            // Only the money paths talk to moto; the promotion rule puts bonus cash in play.
            o.poll_queues = false;
            o.poll_streams = false;
            o.seed_promotion_rules = true;
        })
        .await;
        let api = Api::new(&stack);
        shared::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name())
            .create_promo_code(&shared::booking::PromoCode {
                code: PROMO.into(),
                kind: shared::booking::DiscountKind::Fixed,
                value: 5.into(),
                max_discount: None,
                min_order: shared::Money::ZERO,
                valid_from: Utc::now() - chrono::Duration::days(1),
                valid_until: None,
                usage_limit: None,
                per_user_limit: 100_000,
                user_type: None,
                active: true,
            })
            .await
            .unwrap();
        let mut customers = Vec::new();
        for _ in 0..CUSTOMERS {
            customers.push(customer(&stack).await);
        }
        let mut astrologers = Vec::new();
        for rate in ["10", "7.5"].iter().cycle().take(ASTROLOGERS) {
            astrologers.push(bookable_astrologer(&stack, rate).await);
        }
        Self { stack, _moto: moto, api, customers, astrologers }
    }
}

/// What a run saw, for the report and the checks.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    /// 503s the client retried, as an app does.
    retried: AtomicUsize,
    /// Answers no request may give: a 5xx other than 503.
    wrong: Mutex<Vec<String>>,
    /// Top-ups Razorpay took the money for, with whether any delivery was acknowledged.
    paid: Mutex<Vec<(String, bool)>>,
    webhooks: Mutex<Vec<Webhook>>,
    /// Answers by what was asked and status: shows the runs reached every path.
    answers: Mutex<BTreeMap<String, usize>>,
}

impl Tally {
    /// Sends `request` until it answers something other than 503, at most `attempts` times,
    /// pausing longer each time.
    async fn call<F, Fut>(&self, what: &str, attempts: u32, request: F) -> (u16, Value)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = (u16, Value)>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let (status, body) = request().await;
            if status == 503 && attempt < attempts {
                self.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20u64 << attempt.min(5))).await;
                continue;
            }
            *self.answers.lock().unwrap().entry(format!("{what} {status}")).or_default() += 1;
            // A 503 is the documented answer to losing races, with nothing written: the
            // invariants judge what it left behind. Any other 5xx is a defect.
            if status >= 500 && status != 503 {
                self.wrong.lock().unwrap().push(format!("{what}: {status} {body}"));
            }
            return (status, body);
        }
    }

    /// POSTs `body` as `token` (with an idempotency key, if any), retrying 503s.
    async fn post(
        &self,
        w: &World,
        what: &str,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Value,
    ) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        // An app retries a few times, then tells its user to try again.
        self.call(what, 5, || w.api.post_as(path, token, &headers, body.clone())).await
    }

    async fn deliver(&self, world: &World, what: &str, hook: &Webhook) -> u16 {
        self.webhooks.lock().unwrap().push(hook.clone());
        let rzp = &world.stack.stubs.razorpay;
        // Razorpay retries a webhook for hours: a 503 (a lost race on the wallet) is
        // delivered again (here for about 5 s).
        self.call(what, 12, || async {
            let d = rzp.deliver(hook).await.unwrap();
            (d.status, d.response)
        })
        .await
        .0
    }
}

async fn top_up(
    w: &World,
    t: &Tally,
    customer: usize,
    rupees: u32,
    deliveries: &[(Via, u64)],
    reversal: Option<(Reversal, u64)>,
) {
    let (token, _) = &w.customers[customer];
    let key = format!("inv-{}", rand::random::<u64>());
    let body = json!({ "amount": rupees.to_string() });
    let (status, created) = t.post(w, "create top-up", "/wallet/top-ups", token, Some(&key), body).await;
    if status != 201 {
        return;
    }
    let (id, order) = (created["top_up_id"].as_str().unwrap(), created["checkout"]["order_id"].as_str().unwrap());
    let rzp = &w.stack.stubs.razorpay;
    let paid = rzp.pay(order, false).await.unwrap();
    let payment = paid.razorpay_payment_id.clone();
    let confirm = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    let confirm_path = format!("/wallet/top-ups/{id}/confirm");
    let credits = deliveries.iter().map(|&(via, delay)| {
        let (confirm, confirm_path, payment) = (&confirm, &confirm_path, &payment);
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let status = match via {
                Via::Confirm => t.post(w, "confirm", confirm_path, token, None, confirm.clone()).await.0,
                Via::Captured | Via::OrderPaid => {
                    let event = if matches!(via, Via::Captured) { "payment.captured" } else { "order.paid" };
                    t.deliver(w, event, &rzp.webhook(event, order, payment).unwrap()).await
                }
            };
            (200..300).contains(&status)
        }
    });
    let reverse = async {
        let Some((reversal, delay)) = reversal else { return };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        match reversal {
            Reversal::Refund { percent, times } => {
                let paise = u64::from(rupees) * percent;
                let hook = rzp.refund(&payment, paise).unwrap();
                for _ in 0..times {
                    t.deliver(w, "refund.processed", &hook).await;
                }
            }
            Reversal::Chargeback { outcome, reversed } => {
                let dispute = format!("disp_{}", rand::random::<u32>());
                let opened = rzp.dispute("payment.dispute.created", &payment, &dispute, "chargeback", "open").unwrap();
                let closed = match outcome {
                    Outcome::Open => None,
                    Outcome::Won => Some(rzp.dispute("payment.dispute.won", &payment, &dispute, "chargeback", "won")),
                    Outcome::Lost => {
                        Some(rzp.dispute("payment.dispute.lost", &payment, &dispute, "chargeback", "lost"))
                    }
                };
                let mut hooks = vec![opened];
                hooks.extend(closed.map(Result::unwrap));
                if reversed {
                    hooks.reverse();
                }
                for hook in &hooks {
                    t.deliver(w, &hook.event, hook).await;
                }
            }
        }
    };
    let (acknowledged, ()) = futures::join!(join_all(credits), reverse);
    t.paid.lock().unwrap().push((id.to_owned(), acknowledged.iter().any(|ok| *ok)));
}

/// Moves a started consultation's start `minutes` back; nothing if it has not started.
async fn backdate_start(stack: &LocalStack, id: &str, minutes: i64) {
    let at = (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let _ = consultation_update(stack, id)
        .update_expression("SET started_at = :at")
        .condition_expression("attribute_exists(started_at)")
        .expression_attribute_values(":at", AttributeValue::S(at))
        .send()
        .await;
}

/// Moves a consultation nobody started back past the no-show grace period (its end too, so
/// the interval it held keeps its length, and its booking time, so it is waited for rather
/// than just booked). The slot it was booked for stays on the item
/// (`booked_from`, `booked_until`, test-only): the moved interval is the test's, and may land
/// on another consultation of the astrologer's (found at run 74 of 1,000), so the
/// double-booking check reads the slot the app accepted.
async fn backdate_schedule(stack: &LocalStack, id: &str) {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let key = |k: &str| AttributeValue::S(k.to_owned());
    let read = client
        .get_item()
        .table_name(stack.table_name())
        .key("PK", key(&format!("CONSULTATION#{id}")))
        .key("SK", key("CONSULTATION"))
        .send()
        .await
        .unwrap();
    let item = read.item().expect("a booked consultation");
    let at = |k: &str| chrono::DateTime::parse_from_rfc3339(item[k].as_s().unwrap()).unwrap().to_utc();
    let shift = Utc::now() - chrono::Duration::minutes(30) - at("scheduled_at");
    let text = |t: chrono::DateTime<Utc>| AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let _ = consultation_update(stack, id)
        .update_expression(
            "SET scheduled_at = :start, DUE_AT = :start, ends_at = :end, created_at = :created, \
             booked_from = if_not_exists(booked_from, :from), booked_until = if_not_exists(booked_until, :until)",
        )
        .condition_expression("#status = :scheduled")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":start", text(at("scheduled_at") + shift))
        .expression_attribute_values(":end", text(at("ends_at") + shift))
        .expression_attribute_values(":created", text(at("created_at") + shift))
        .expression_attribute_values(":from", item["scheduled_at"].clone())
        .expression_attribute_values(":until", item["ends_at"].clone())
        .expression_attribute_values(":scheduled", AttributeValue::S("scheduled".into()))
        .send()
        .await;
}

async fn book(w: &World, t: &Tally, b: &Booking) {
    let Booking { customer, astrologer, minutes, in_hours, promo, ref acts } = *b;
    let (token, _) = &w.customers[customer];
    let (astro_token, astrologer_id) = &w.astrologers[astrologer];
    let mut body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": minutes });
    if promo {
        body["promo_code"] = json!(PROMO);
    }
    if let Some(hours) = in_hours {
        let at = (Utc::now() + chrono::Duration::hours(hours)).with_minute(0).unwrap().with_second(0).unwrap();
        body["scheduled_at"] = json!(at.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    let key = format!("inv-{}", rand::random::<u64>());
    let (status, booked) = t.post(w, "book", "/consultations", token, Some(&key), body).await;
    if status != 201 {
        return;
    }
    let id = booked["booking_id"].as_str().unwrap();
    // Each act a little after the one drawn before it, so most follow the drawn order and
    // neighbours race.
    let acts = acts.iter().enumerate().map(|(i, &(act, jitter))| async move {
        tokio::time::sleep(Duration::from_millis(i as u64 * 15 + jitter)).await;
        let path = |action: &str| format!("/consultations/{id}/{action}");
        match act {
            Act::Start => {
                t.post(w, "start", &path("start"), astro_token, None, json!({})).await;
            }
            Act::Complete { minutes_ago } => {
                backdate_start(&w.stack, id, minutes_ago).await;
                t.post(w, "complete", &path("complete"), astro_token, None, json!({})).await;
            }
            Act::Cancel { by_customer } => {
                let who = if by_customer { token } else { astro_token };
                t.post(w, "cancel", &path("cancel"), who, None, json!({})).await;
            }
            Act::GiveUp => {
                backdate_schedule(&w.stack, id).await;
                t.post(w, "give up", &path("cancel"), token, None, json!({})).await;
            }
            Act::NoShow => {
                backdate_schedule(&w.stack, id).await;
                let Some(Handler::Scheduled(sweep)) = w.stack.handler("no-show-sweep") else { panic!("no sweep") };
                t.requests.fetch_add(1, Ordering::Relaxed);
                match sweep(json!({})).await {
                    Ok(report) => {
                        let closed = report["closed"].as_u64().unwrap_or_default() as usize;
                        *t.answers.lock().unwrap().entry("no-shows closed".into()).or_default() += closed;
                    }
                    Err(e) => t.wrong.lock().unwrap().push(format!("no-show sweep: {e}")),
                }
            }
        }
    });
    join_all(acts).await;
}

async fn execute(w: &World, t: &Tally, ops: &[(Op, u64)]) {
    let ops = ops.iter().map(|(op, delay)| async move {
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        match op {
            Op::TopUp { customer, rupees, deliveries, reversal } => {
                top_up(w, t, *customer, *rupees, deliveries, *reversal).await
            }
            Op::Book(booking) => book(w, t, booking).await,
            Op::Redeliver => {
                let sent: Vec<Webhook> = t.webhooks.lock().unwrap().clone();
                for hook in &sent {
                    t.deliver(w, "redelivery", hook).await;
                }
            }
        }
    });
    join_all(ops).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_adds_up_after_random_interleavings_of_every_money_path() {
    let runs = env_number("MONEY_RUNS", 25) as usize;
    let seed = env_number("MONEY_SEED", rand::random::<u32>().into());
    println!("money invariants: {runs} runs, seed {seed} (MONEY_SEED={seed} MONEY_RUNS={runs} replays them)");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let started = Instant::now();
    let (mut ops, mut checked) = (0, 0);
    let tally = Tally::default();
    let mut world: Option<World> = None;
    let mut times = [0.0f64; 3];
    for n in 0..runs {
        if n % RUNS_PER_STACK == 0 {
            let t = Instant::now();
            drop(world.take());
            world = Some(World::new().await);
            times[0] += t.elapsed().as_secs_f64();
        }
        let w = world.as_ref().unwrap();
        let run = run().new_tree(&mut runner).unwrap().current();
        ops += run.len();
        tally.webhooks.lock().unwrap().clear();
        tally.paid.lock().unwrap().clear();
        let t = Instant::now();
        execute(w, &tally, &run).await;
        times[1] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let acknowledged: Vec<String> =
            tally.paid.lock().unwrap().iter().filter(|(_, ok)| *ok).map(|(id, _)| id.clone()).collect();
        let found = check_money(&w.stack, &acknowledged).await;
        times[2] += t.elapsed().as_secs_f64();
        checked += found.invariants;
        let wrong: Vec<String> = tally.wrong.lock().unwrap().drain(..).chain(found.violations).collect();
        assert!(wrong.is_empty(), "run {n} (seed {seed}) broke an invariant:\n{}\nthe run: {run:#?}", wrong.join("\n"));
    }
    println!(
        "money invariants: {runs} runs, {ops} operations, {} requests ({} 503s retried), {checked} invariants checked, \
         violations: 0 ({:.0} s)",
        tally.requests.load(Ordering::Relaxed),
        tally.retried.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    println!("  answers: {:?}", tally.answers.lock().unwrap());
    println!("  seconds setting up stacks, running, checking: {times:.0?}");
}
