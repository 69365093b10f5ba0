//! Money invariants under random interleavings. Each run draws a few operations and starts
//! them all at once, a few milliseconds apart, against one local stack: top-ups whose
//! checkout confirmation and webhooks come duplicated, raced and reordered, some followed
//! (or overtaken) by a refund or a chargeback won, lost or left open; bookings for later with
//! their cancellations by either side and no-shows; connect-now requests accepted (racing
//! their expiry), declined, expired by the sweep or hung up, joined by the customer over a
//! real WebSocket, extended, and ended by both parties at once (HTTP `complete` or WebSocket
//! `end`), by the balance running out (the sweep racing a party's end) or by a lapse (the
//! sweep racing the silent party's join or heartbeat); other customers ringing an astrologer
//! already rung or in a session; and Razorpay redelivering everything the run sent. After
//! every run every invariant is checked over the whole table (`check_money`).
//!
//! The customer's join goes over a WebSocket, not a simulated write: the join is where the
//! meter starts (`join_session` and its `ConsultationStarted`), and a socket costs a few
//! milliseconds here. The test only moves time (a meter's start, a ring's end, a party's
//! last word) and never starts a meter itself, so `started_at` on a consultation is the
//! service's.
//!
//! `MONEY_RUNS` sets the number of runs (25 by default, CI's fast part; the reliability
//! command runs 1,000), `MONEY_SEED` the seed (random and printed by default), so a failure
//! can be replayed, and `MONEY_SECONDS` a time after which no new run starts. Runs are not
//! shrunk: they share the stack's accumulated state. A broken invariant is reported by the
//! run that broke it and the runs go on; the test fails at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{SecondsFormat, Timelike, Utc};
use futures::future::join_all;
use futures::{SinkExt, StreamExt};
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
use tokio_tungstenite::tungstenite::Message;

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
    /// The astrologer starts it (`/start`; a ringing one is accepted so).
    Start,
    /// The astrologer accepts a ringing request (`/accept`).
    Accept,
    /// The astrologer declines a ringing request (`/decline`).
    Decline,
    /// Nobody answered: its ring's end (and `DUE_AT`) is moved back and the sweep runs.
    Expire,
    /// The customer joins over a WebSocket (`join`): the second to join starts the meter.
    Join,
    /// The customer buys more minutes (`/extend`).
    Extend {
        minutes: u32,
    },
    /// A party ends it, over HTTP (`/complete`) or its WebSocket (`end`), the meter's start
    /// first moved `meter_minutes` back when the meter runs (the test cannot wait for minutes).
    End {
        by_customer: bool,
        socket: bool,
        meter_minutes: i64,
    },
    /// The paid minutes have run out (the meter's start moved back past them): the sweep and
    /// a party's end race.
    RunOut {
        by_customer: bool,
        socket: bool,
    },
    /// A party silent for 2 minutes of a session started `minutes_ago`: the sweep (a lapse)
    /// races that party coming back (a join, or a heartbeat).
    Lapse {
        customer: bool,
        heartbeat: bool,
        minutes_ago: i64,
    },
    /// Another customer connects now to this booking's astrologer: refused with 409 while
    /// this one rings or runs.
    RingBusy {
        customer: usize,
    },
    Cancel {
        by_customer: bool,
    },
    /// Nobody started it and its time has passed (moved back, booking time too): the
    /// customer gives up waiting and cancels.
    GiveUp,
    /// Nobody started it: its time is moved back past the grace period and the sweep runs.
    NoShow,
    /// Agora reports both parties in the call's channel `seconds_ago` (the astrologer 10 s
    /// before), each notice delivered `twice` at once if so, and with `leave` the customer
    /// out of the channel for good 90 s ago; the sweep races the last notice.
    Channel {
        leave: bool,
        twice: bool,
        seconds_ago: i64,
    },
}

#[derive(Debug, Clone)]
struct Booking {
    customer: usize,
    astrologer: usize,
    minutes: u32,
    in_hours: Option<i64>,
    /// With the world's promo code (`PROMO`).
    promo: bool,
    /// A video call (Agora's channel events may bill it), else a chat.
    video: bool,
    /// Steps one after the other; the acts of a step start together, each after its jitter
    /// (milliseconds), and race.
    steps: Vec<Vec<(Act, u64)>>,
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

fn channel() -> impl Strategy<Value = Act> {
    (any::<bool>(), any::<bool>(), 100i64..=900).prop_map(|(leave, twice, seconds_ago)| Act::Channel {
        leave,
        twice,
        seconds_ago,
    })
}

fn end() -> impl Strategy<Value = Act> {
    (any::<bool>(), any::<bool>(), prop_oneof![Just(0i64), 1i64..=30])
        .prop_map(|(by_customer, socket, meter_minutes)| Act::End { by_customer, socket, meter_minutes })
}

/// An act that may race any step of any booking.
fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        1 => Just(Act::Start),
        1 => Just(Act::Accept),
        1 => Just(Act::Decline),
        1 => Just(Act::Expire),
        1 => Just(Act::Join),
        2 => (1u32..=10).prop_map(|minutes| Act::Extend { minutes }),
        2 => end(),
        2 => (0..CUSTOMERS).prop_map(|customer| Act::RingBusy { customer }),
        1 => any::<bool>().prop_map(|by_customer| Act::Cancel { by_customer }),
        1 => Just(Act::NoShow),
        1 => Just(Act::GiveUp),
        1 => channel(),
    ]
}

/// A connect-now request's life: answered or not, joined, ended by a party, by the balance or
/// by a lapse, with the races the brief of issue 29 names.
fn ringing_life() -> impl Strategy<Value = Vec<Vec<Act>>> {
    use Act::*;
    let both_end = (any::<bool>(), any::<bool>(), 0i64..=30).prop_map(|(a, b, meter_minutes)| {
        vec![
            End { by_customer: true, socket: a, meter_minutes },
            End { by_customer: false, socket: b, meter_minutes: 0 },
        ]
    });
    prop_oneof![
        1 => Just(vec![vec![Decline]]),
        1 => Just(vec![vec![Expire]]),
        1 => Just(vec![vec![Cancel { by_customer: true }]]),
        // Accept racing the ring's expiry; what was accepted runs and ends.
        2 => end().prop_map(|e| vec![vec![Accept, Expire], vec![Join], vec![e]]),
        3 => end().prop_map(|e| vec![vec![Accept], vec![Join], vec![e]]),
        2 => both_end.prop_map(|ends| vec![vec![Accept], vec![Join], ends]),
        2 => (any::<bool>(), any::<bool>())
            .prop_map(|(by_customer, socket)| vec![vec![Accept], vec![Join], vec![RunOut { by_customer, socket }]]),
        2 => (any::<bool>(), any::<bool>(), 2i64..=5).prop_map(|(customer, heartbeat, minutes_ago)| {
            vec![vec![Accept], vec![Join], vec![Lapse { customer, heartbeat, minutes_ago }]]
        }),
        // The customer joining (the meter's start) racing an end.
        1 => end().prop_map(|e| vec![vec![Accept], vec![Join, e]]),
        // Ended before the customer came: nothing billed.
        1 => end().prop_map(|e| vec![vec![Accept], vec![e]]),
        // A call billed from Agora's view (a chat ignores it), then ended; or Agora's events
        // racing the app's join.
        2 => (channel(), end()).prop_map(|(c, e)| vec![vec![Accept], vec![c], vec![e]]),
        1 => (channel(), end()).prop_map(|(c, e)| vec![vec![Accept], vec![Join, c], vec![e]]),
        // An extension racing the end.
        1 => ((1u32..=10), end()).prop_map(|(minutes, e)| vec![vec![Accept], vec![Join], vec![Extend { minutes }, e]]),
    ]
}

/// A consultation booked for later: mostly cancelled or nobody came (the suite cannot wait
/// hours for its time, so a start is refused as too early).
fn scheduled_life() -> impl Strategy<Value = Vec<Vec<Act>>> {
    use Act::*;
    prop_oneof![
        1 => end().prop_map(|e| vec![vec![Start], vec![e]]),
        2 => any::<bool>().prop_map(|by_customer| vec![vec![Cancel { by_customer }]]),
        1 => Just(vec![vec![NoShow]]),
        1 => Just(vec![vec![GiveUp]]),
        1 => Just(vec![]),
    ]
}

/// A life, perhaps one more act racing one of its steps, and each act's jitter.
fn with_extra(life: impl Strategy<Value = Vec<Vec<Act>>>) -> impl Strategy<Value = Vec<Vec<(Act, u64)>>> {
    (life, option::weighted(0.4, (act(), 0usize..4)), vec(0u64..20, 8)).prop_map(|(mut steps, extra, jitters)| {
        if let Some((act, at)) = extra {
            match steps.len() {
                0 => steps.push(vec![act]),
                n => steps[at % n].push(act),
            }
        }
        let mut jitter = jitters.into_iter().cycle();
        steps.into_iter().map(|s| s.into_iter().map(|a| (a, jitter.next().unwrap_or(0))).collect()).collect()
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..CUSTOMERS, 2u32..=40, vec((via(), 0u64..30), 1..=4), option::weighted(0.4, (reversal(), 0u64..40)))
            .prop_map(|(customer, fifties, deliveries, reversal)| Op::TopUp {
                customer, rupees: fifties * 50, deliveries, reversal,
            }),
        3 => (0..CUSTOMERS, 0..ASTROLOGERS, 1u32..=6, any::<bool>(), any::<bool>(), with_extra(ringing_life()))
            .prop_map(|(customer, astrologer, fives, promo, video, steps)| Op::Book(Booking {
                customer, astrologer, minutes: fives * 5, in_hours: None, promo, video, steps,
            })),
        1 => (0..CUSTOMERS, 0..ASTROLOGERS, 1u32..=6, 1i64..=72, any::<bool>(), with_extra(scheduled_life()))
            .prop_map(|(customer, astrologer, fives, in_hours, promo, steps)| Op::Book(Booking {
                customer, astrologer, minutes: fives * 5, in_hours: Some(in_hours), promo, video: false, steps,
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
            .create_promo_code(&shared::domain::booking::PromoCode {
                code: PROMO.into(),
                kind: shared::domain::booking::DiscountKind::Fixed,
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

    /// Every astrologer online again: `online` lapses after `PRESENCE_TTL` without a
    /// heartbeat, and connect-now needs it.
    async fn keep_online(&self) {
        for (token, _) in &self.astrologers {
            let body = json!({ "status": "online" }).to_string();
            let (status, answer) =
                self.api.send(reqwest::Method::PUT, "/astrologers/me/presence", Some(token), &[], Some(&body)).await;
            assert_eq!(status, 200, "presence: {answer}");
        }
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

    /// An Agora channel notice delivered (Agora retries a 5xx too).
    async fn notify(&self, world: &World, notice: &str) -> u16 {
        self.call("agora", 12, || async {
            let (status, body) = world.stack.stubs.agora.deliver(notice).await.unwrap();
            (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
        })
        .await
        .0
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

fn stamp(t: chrono::DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Sets `set` on a consultation in `status` (and, for `in_progress`, only once the meter
/// runs: the test moves time, it never starts a meter itself); nothing otherwise.
async fn rewrite(stack: &LocalStack, id: &str, status: &str, set: &str, values: Vec<(&str, AttributeValue)>) {
    let meter = if status == "in_progress" { " AND attribute_exists(started_at)" } else { "" };
    let mut update = consultation_update(stack, id)
        .update_expression(set)
        .condition_expression(format!("#status = :status{meter}"))
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":status", AttributeValue::S(status.into()));
    for (name, value) in values {
        update = update.expression_attribute_values(name, value);
    }
    let _ = update.send().await;
}

/// The meter of a running session started `ago` ago (the customer joined then), both parties
/// heard from just now: the test cannot wait for real minutes.
async fn backdate_meter(stack: &LocalStack, id: &str, ago: chrono::Duration) {
    let now = Utc::now();
    let set = "SET started_at = :at, customer_joined_at = :at, customer_seen_at = :now, astrologer_seen_at = :now";
    rewrite(stack, id, "in_progress", set, vec![(":at", stamp(now - ago)), (":now", stamp(now))]).await;
}

/// A running session that started `minutes_ago` minutes ago, where one party (the customer,
/// or the astrologer) was last heard from 2 minutes ago and the other just now.
async fn backdate_lapse(stack: &LocalStack, id: &str, customer_gone: bool, minutes_ago: i64) {
    let now = Utc::now();
    let (gone, here) = if customer_gone { ("customer", "astrologer") } else { ("astrologer", "customer") };
    let set = format!(
        "SET started_at = :at, customer_joined_at = :at, astrologer_joined_at = :at, \
         {gone}_seen_at = :gone, {here}_seen_at = :now"
    );
    let values = vec![
        (":at", stamp(now - chrono::Duration::minutes(minutes_ago))),
        (":gone", stamp(now - chrono::Duration::minutes(2))),
        (":now", stamp(now)),
    ];
    rewrite(stack, id, "in_progress", &set, values).await;
}

/// A ringing request's minute is over (its ring's end and its place in the sweep's index).
async fn expire_ring(stack: &LocalStack, id: &str) {
    let past = stamp(Utc::now() - chrono::Duration::seconds(1));
    rewrite(stack, id, "ringing", "SET ring_expires_at = :past, DUE_AT = :past", vec![(":past", past)]).await;
}

/// The consultation's status as stored now.
async fn status_of(stack: &LocalStack, id: &str) -> String {
    let read = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .get_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("CONSULTATION#{id}")))
        .key("SK", AttributeValue::S("CONSULTATION".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    read.item().and_then(|i| i.get("status")).and_then(|s| s.as_s().ok()).cloned().unwrap_or_default()
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

/// The sweep, run by hand (EventBridge would, every minute).
async fn sweep(w: &World, t: &Tally) {
    let Some(Handler::Scheduled(sweep)) = w.stack.handler("no-show-sweep") else { panic!("no sweep") };
    t.requests.fetch_add(1, Ordering::Relaxed);
    match sweep(json!({})).await {
        Ok(report) => {
            let mut answers = t.answers.lock().unwrap();
            for (what, field) in [("no-shows closed", "no_shows"), ("expired", "expired"), ("sessions ended", "ended")]
            {
                *answers.entry(format!("sweep: {what}")).or_default() +=
                    report[field].as_u64().unwrap_or_default() as usize;
            }
        }
        Err(e) => t.wrong.lock().unwrap().push(format!("sweep: {e}")),
    }
}

/// The answer about booking `id` on `socket` (the consultation as it now is, or a refusal),
/// other traffic skipped, within `wait`.
async fn answer_about(socket: &mut Socket, id: &str, wait: Duration) -> String {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let text = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return "no answer".into(),
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return "closed".into(),
        };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        match v["type"].as_str() {
            Some("error") if v["booking_id"] == id => return format!("refused {}", v["code"].as_str().unwrap_or("?")),
            Some("consultation") if v["consultation"]["booking_id"] == id => {
                return format!("-> {}", v["consultation"]["status"].as_str().unwrap_or("?"));
            }
            _ => continue,
        }
    }
}

/// `action` on booking `id` sent over a new WebSocket of `token`'s, as the apps do; waits for
/// the answer at most `wait` (a heartbeat is answered only when refused).
async fn over_socket(w: &World, t: &Tally, token: &str, id: &str, action: &str, wait: Duration) {
    t.requests.fetch_add(1, Ordering::Relaxed);
    let answer = match open_socket(&w.stack, Some(token)).await {
        Err(e) => {
            t.wrong.lock().unwrap().push(format!("{action}: the WebSocket did not open: {e}"));
            "no socket".to_owned()
        }
        Ok(mut socket) => {
            let message = json!({ "action": action, "booking_id": id }).to_string();
            let answer = match socket.send(Message::text(message)).await {
                Ok(()) => answer_about(&mut socket, id, wait).await,
                Err(e) => format!("not sent: {e}"),
            };
            let _ = socket.close(None).await;
            answer
        }
    };
    *t.answers.lock().unwrap().entry(format!("ws {action} {answer}")).or_default() += 1;
}

async fn book(w: &World, t: &Tally, b: &Booking) {
    let Booking { customer, astrologer, minutes, in_hours, promo, video, ref steps } = *b;
    let (token, customer_id) = &w.customers[customer];
    let (astro_token, astrologer_id) = &w.astrologers[astrologer];
    let mode = if video { "video" } else { "chat" };
    let mut body = json!({ "astrologer_id": astrologer_id, "mode": mode, "minutes": minutes });
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
    let path = |action: &str| format!("/consultations/{id}/{action}");
    let end = async |by_customer: bool, socket: bool| {
        let who = if by_customer { token } else { astro_token };
        if socket {
            over_socket(w, t, who, id, "end", Duration::from_secs(3)).await;
        } else {
            t.post(w, "end", &path("complete"), who, None, json!({})).await;
        }
    };
    let act = async |act: Act| match act {
        Act::Start => {
            t.post(w, "start", &path("start"), astro_token, None, json!({})).await;
        }
        Act::Accept => {
            t.post(w, "accept", &path("accept"), astro_token, None, json!({})).await;
        }
        Act::Decline => {
            t.post(w, "decline", &path("decline"), astro_token, None, json!({})).await;
        }
        Act::Expire => {
            expire_ring(&w.stack, id).await;
            sweep(w, t).await;
        }
        Act::Join => over_socket(w, t, token, id, "join", Duration::from_secs(3)).await,
        Act::Channel { leave, twice, seconds_ago } => {
            use infra::stubs::agora::{USER_JOINED, USER_LEFT};
            use shared::providers::agora::uid_of;
            let (agora, channel, now) = (&w.stack.stubs.agora, format!("ak-{id}"), Utc::now().timestamp());
            let mut notices = vec![
                agora.notice(&channel, uid_of(astrologer_id), USER_JOINED, now - seconds_ago - 10),
                agora.notice(&channel, uid_of(customer_id), USER_JOINED, now - seconds_ago),
            ];
            if leave {
                notices.push(agora.notice(&channel, uid_of(customer_id), USER_LEFT, now - 90));
            }
            let last = notices.pop().unwrap();
            for notice in &notices {
                join_all((0..if twice { 2 } else { 1 }).map(|_| t.notify(w, notice))).await;
            }
            let last = join_all((0..if twice { 2 } else { 1 }).map(|_| t.notify(w, &last)));
            futures::join!(last, sweep(w, t));
        }
        Act::Extend { minutes } => {
            let key = format!("inv-{}", rand::random::<u64>());
            t.post(w, "extend", &path("extend"), token, Some(&key), json!({ "minutes": minutes })).await;
        }
        Act::End { by_customer, socket, meter_minutes } => {
            if meter_minutes > 0 {
                backdate_meter(&w.stack, id, chrono::Duration::minutes(meter_minutes)).await;
            }
            end(by_customer, socket).await;
        }
        Act::RunOut { by_customer, socket } => {
            let past_any_paid_end = chrono::Duration::minutes(i64::from(shared::domain::booking::MAX_MINUTES) + 1);
            backdate_meter(&w.stack, id, past_any_paid_end).await;
            futures::join!(sweep(w, t), end(by_customer, socket));
        }
        Act::Lapse { customer: customer_gone, heartbeat, minutes_ago } => {
            backdate_lapse(&w.stack, id, customer_gone, minutes_ago).await;
            let who = if customer_gone { token } else { astro_token };
            let action = if heartbeat { "heartbeat" } else { "join" };
            let wait = Duration::from_millis(if heartbeat { 500 } else { 3000 });
            futures::join!(sweep(w, t), over_socket(w, t, who, id, action, wait));
        }
        Act::RingBusy { customer: other } => {
            let other = if other == customer { (other + 1) % CUSTOMERS } else { other };
            let busy = |s: &str| s == "ringing" || s == "in_progress";
            let before = status_of(&w.stack, id).await;
            let key = format!("inv-{}", rand::random::<u64>());
            let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 5 });
            let (status, rung) =
                t.post(w, "ring busy", "/consultations", &w.customers[other].0, Some(&key), body).await;
            let after = status_of(&w.stack, id).await;
            if status == 201 {
                if busy(&before) && busy(&after) {
                    t.wrong.lock().unwrap().push(format!(
                        "{} rang astrologer {astrologer_id} while {id} was {before} then {after}",
                        rung["booking_id"]
                    ));
                }
                // It rings: hang it up, so the astrologer is free for the next runs.
                if let Some(second) = rung["booking_id"].as_str() {
                    let decline = format!("/consultations/{second}/decline");
                    t.post(w, "hang up", &decline, astro_token, None, json!({})).await;
                }
            }
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
            sweep(w, t).await;
        }
    };
    // Each step's acts start together, a few milliseconds apart, and race.
    for step in steps {
        join_all(step.iter().map(|&(a, jitter)| async move {
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            act(a).await
        }))
        .await;
    }
    // A request left ringing or a session left running is ended, so the astrologer is free
    // for the next runs (the world keeps its astrologers for `RUNS_PER_STACK` runs).
    match status_of(&w.stack, id).await.as_str() {
        "ringing" => act(Act::Decline).await,
        "in_progress" => end(false, false).await,
        _ => {}
    }
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
    // No new run starts after this many seconds (the runs done are reported).
    let budget = Duration::from_secs(env_number("MONEY_SECONDS", u64::MAX / 4));
    println!("money invariants: {runs} runs, seed {seed} (MONEY_SEED={seed} MONEY_RUNS={runs} replays them)");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let started = Instant::now();
    let (mut ops, mut checked) = (0, 0);
    let tally = Tally::default();
    let mut world: Option<World> = None;
    let mut times = [0.0f64; 3];
    let (mut done, mut broken, mut reported) = (0, Vec::new(), std::collections::HashSet::new());
    for n in 0..runs {
        if started.elapsed() >= budget {
            println!("money invariants: stopped after {n} of {runs} runs (MONEY_SECONDS)");
            break;
        }
        if n % RUNS_PER_STACK == 0 {
            let t = Instant::now();
            drop(world.take());
            world = Some(World::new().await);
            times[0] += t.elapsed().as_secs_f64();
        }
        let w = world.as_ref().unwrap();
        w.keep_online().await;
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
        // A violation stays in the table for the world's later runs: each is reported once,
        // by the run that made it, and the runs go on so one defect does not hide the next.
        let wrong: Vec<String> = tally
            .wrong
            .lock()
            .unwrap()
            .drain(..)
            .chain(found.violations)
            .filter(|violation| reported.insert(violation.clone()))
            .collect();
        if !wrong.is_empty() {
            println!("run {n} (seed {seed}) broke an invariant:\n{}\nthe run: {run:?}", wrong.join("\n"));
            broken.push(n);
        }
        done += 1;
    }
    println!(
        "money invariants: {done} runs, {ops} operations, {} requests ({} 503s retried), {checked} invariants checked, \
         violations: {} in runs {broken:?} ({:.0} s)",
        tally.requests.load(Ordering::Relaxed),
        tally.retried.load(Ordering::Relaxed),
        reported.len(),
        started.elapsed().as_secs_f64()
    );
    println!("  answers: {:?}", tally.answers.lock().unwrap());
    println!("  seconds setting up stacks, running, checking: {times:.0?}");
    assert!(broken.is_empty(), "runs {broken:?} (seed {seed}) broke an invariant: see above");
}
