//! `load`: the bounded load run of the reliability suite (docs/reliability.md). 200
//! customers and 20 astrologers on the local stack (real handlers, real SDK, moto, all on
//! 127.0.0.1); for a bounded time each customer, as an app would, tops up (the checkout
//! confirmation and Razorpay's webhook racing), books, sometimes cancels, and looks at its
//! wallet, ledger and bookings, retrying a 503 a few times with the same idempotency key.
//! Between two actions a customer thinks (`--think-seconds`, on average; 0: none), as people
//! do: without a pause, 200 customers ask more of moto (one Python process) than it can
//! serve, and the run measures moto's queue, not the code.
//! Then every money invariant is checked (`integration_tests::money`). Prints requests per
//! second, p50 and p99 per route, and every answer by status and error code; exits 1 on a
//! violation or on any 5xx but a retried 503.
//!
//! `cargo run --release -p integration-tests --bin load -- [--seconds N] [--customers N] [--astrologers N]
//! [--think-seconds N]`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::load::{Args, percentile, populated};
use integration_tests::money::check_money;
use integration_tests::*;
use rand::Rng;
use serde_json::{Value, json};

/// Every request's route, status (with its error code) and milliseconds, and the top-ups the
/// service acknowledged.
#[derive(Default)]
struct Record {
    requests: Mutex<Vec<(&'static str, String, f64)>>,
    acknowledged: Mutex<Vec<String>>,
}

impl Record {
    /// Sends `request` (labelled `route`) until it answers other than 503, at most 4 times.
    async fn call<F, Fut>(&self, route: &'static str, request: F) -> (u16, Value)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = (u16, Value)>,
    {
        let mut attempt = 0;
        loop {
            let t = Instant::now();
            let (status, body) = request().await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let answer = match body["error"]["code"].as_str() {
                Some(code) => format!("{status} {code}"),
                None => status.to_string(),
            };
            self.requests.lock().unwrap().push((route, answer, ms));
            attempt += 1;
            if status != 503 || attempt == 4 {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
    }
}

/// One customer's session until `deadline`.
async fn customer_session(
    stack: Arc<infra::LocalStack>,
    record: Arc<Record>,
    token: String,
    astrologers: Arc<Vec<String>>,
    think: Duration,
    deadline: Instant,
) {
    let api = Api::new(&stack);
    let rzp = &stack.stubs.razorpay;
    let base = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let mut broke = true;
    // Customers arrive over the first pause, not all in the same millisecond.
    let mut pause = think.mul_f64(rand::rng().random_range(0.0..1.0));
    loop {
        pause_until(pause, deadline).await;
        if Instant::now() >= deadline {
            return;
        }
        pause = think.mul_f64(rand::rng().random_range(0.5..1.5));
        let roll = rand::rng().random_range(0..100);
        if broke || roll < 10 {
            let key = format!("load-{}", rand::random::<u64>());
            let keyed = [("idempotency-key", key.as_str())];
            let amount = json!({ "amount": "1000" });
            let (status, created) = record
                .call("POST /wallet/top-ups", || api.post_as("/wallet/top-ups", &token, &keyed, amount.clone()))
                .await;
            if status != 201 {
                continue;
            }
            let (id, order) =
                (created["top_up_id"].as_str().unwrap(), created["checkout"]["order_id"].as_str().unwrap());
            let paid = rzp.pay(order, false).await.unwrap();
            let confirm = json!({
                "razorpay_order_id": paid.razorpay_order_id,
                "razorpay_payment_id": paid.razorpay_payment_id,
                "razorpay_signature": paid.razorpay_signature,
            });
            let path = format!("/wallet/top-ups/{id}/confirm");
            let hook = rzp.webhook("payment.captured", order, &paid.razorpay_payment_id).unwrap();
            let ((confirmed, _), (delivered, _)) = futures::join!(
                record.call("POST /wallet/top-ups/{id}/confirm", || api.post_as(&path, &token, &[], confirm.clone())),
                record.call("POST /webhooks/razorpay", || async {
                    let d = rzp.deliver(&hook).await.unwrap();
                    (d.status, d.response)
                }),
            );
            if confirmed == 200 || (200..300).contains(&delivered) {
                record.acknowledged.lock().unwrap().push(id.to_owned());
                broke = false;
            }
        } else if roll < 50 {
            let (who, slot) = {
                let mut rng = rand::rng();
                (rng.random_range(0..astrologers.len()), rng.random_range(0..200i64))
            };
            let at = (base + chrono::Duration::minutes(slot * 10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let body = json!({ "astrologer_id": astrologers[who], "mode": "chat", "minutes": 5, "scheduled_at": at });
            let key = format!("load-{}", rand::random::<u64>());
            let keyed = [("idempotency-key", key.as_str())];
            let (status, booked) = record
                .call("POST /consultations", || api.post_as("/consultations", &token, &keyed, body.clone()))
                .await;
            broke = status == 402;
            if status == 201 && roll % 4 == 0 {
                let path = format!("/consultations/{}/cancel", booked["booking_id"].as_str().unwrap());
                record.call("POST /consultations/{id}/cancel", || api.post_as(&path, &token, &[], json!({}))).await;
            }
        } else if roll < 75 {
            record.call("GET /wallet", || api.get("/wallet", Some(&token))).await;
        } else if roll < 90 {
            record.call("GET /consultations", || api.get("/consultations", Some(&token))).await;
        } else {
            record.call("GET /wallet/transactions", || api.get("/wallet/transactions", Some(&token))).await;
        }
    }
}

/// Sleeps `pause`, or until `deadline` if that comes first.
async fn pause_until(pause: Duration, deadline: Instant) {
    tokio::time::sleep_until((Instant::now() + pause).min(deadline).into()).await;
}

#[tokio::main]
async fn main() {
    let args = Args::parse(Args { seconds: 180, customers: 200, astrologers: 20, think_seconds: 30 });
    let (stack, astrologers, customers, setup) = populated(&args, true, |s| async move { customer(&s).await }).await;
    println!(
        "Load: {} customers top up, book {} astrologers (5-minute chats on 200 slots each), cancel some and read \
         their wallets, ledgers and bookings for {} s, thinking {} s between actions, on 127.0.0.1 (set up in {:.0} s)",
        args.customers, args.astrologers, args.seconds, args.think_seconds, setup
    );

    let record = Arc::new(Record::default());
    let astrologers = Arc::new(astrologers);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let think = Duration::from_secs(args.think_seconds);
    let sessions = customers.iter().map(|(token, _)| {
        let (stack, record, astrologers) = (stack.clone(), record.clone(), astrologers.clone());
        tokio::spawn(customer_session(stack, record, token.clone(), astrologers, think, deadline))
    });
    futures::future::join_all(sessions).await;
    let elapsed = started.elapsed().as_secs_f64();

    let requests = record.requests.lock().unwrap().clone();
    println!("  {} requests in {elapsed:.0} s = {:.1}/s", requests.len(), requests.len() as f64 / elapsed);
    let mut by_route: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut answers: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (route, answer, ms) in &requests {
        by_route.entry(route).or_default().push(*ms);
        *answers.entry(route).or_default().entry(answer).or_default() += 1;
    }
    println!("  {:<36} {:>7} {:>8} {:>8}  answers", "route", "count", "p50 ms", "p99 ms");
    for (route, ms) in &mut by_route {
        ms.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  {route:<36} {:>7} {:>8.0} {:>8.0}  {:?}",
            ms.len(),
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            answers[route]
        );
    }
    // A 503 is the retryable answer to contention; any other 5xx is a defect.
    let server_errors: usize = requests.iter().filter(|(_, a, _)| a.starts_with('5') && !a.starts_with("503")).count();

    let acknowledged = record.acknowledged.lock().unwrap().clone();
    let found = check_money(&stack, &acknowledged).await;
    println!(
        "  invariants: {} checked (every ledger, consultation, slot, credit, and {} acknowledged top-ups credited once); \
         5xx other than 503: {server_errors}; violations: {}",
        found.invariants,
        acknowledged.len(),
        found.violations.len()
    );
    for v in &found.violations {
        println!("    violation: {v}");
    }
    if !found.violations.is_empty() || server_errors > 0 {
        std::process::exit(1);
    }
}
