//! What the load-driving binaries (`contention`, `load`) share: their bounded options, a
//! bounded fan-out and percentiles.

use std::sync::Arc;
use std::time::Instant;

use infra::LocalStack;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// A load run's size; every value is clamped, so a run is never open-ended.
pub struct Args {
    pub seconds: u64,
    pub customers: usize,
    pub astrologers: usize,
    /// A customer's pause between two actions, on average (0: none, as fast as answers come).
    pub think_seconds: u64,
}

impl Args {
    /// `--seconds N --customers N --astrologers N --think-seconds N`, each defaulting to `defaults`.
    pub fn parse(defaults: Args) -> Args {
        let mut a = defaults;
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value: u64 = it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{flag} needs a number"));
            match flag.as_str() {
                "--seconds" => a.seconds = value.clamp(1, 300),
                "--customers" => a.customers = value.clamp(1, 200) as usize,
                "--astrologers" => a.astrologers = value.clamp(1, 50) as usize,
                "--think-seconds" => a.think_seconds = value.min(120),
                other => panic!("unknown option {other}"),
            }
        }
        a
    }
}

/// The `p` quantile (0 to 1) of sorted values; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `make` for `0..n`, at most `width` at a time; the results in order.
pub async fn bounded<T: Send + 'static, F>(n: usize, width: usize, make: impl Fn(usize) -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
{
    let gate = Arc::new(Semaphore::new(width));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (gate, job) = (gate.clone(), make(i));
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            (i, job.await)
        });
    }
    let mut out: Vec<(usize, T)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

/// A local stack for a load run, with its astrologers (ids; bookable, 10.00 a minute) and
/// customers (token, id) made by `customer`, four at a time; and the seconds that took. The
/// pollers are off (only the paths measured talk to moto, which serves everyone from one
/// process) and so is the SMS limit; `promotions`: the default promotion rule is seeded.
pub async fn populated<F, Fut>(
    args: &Args,
    promotions: bool,
    customer: F,
) -> (Arc<LocalStack>, Vec<String>, Vec<(String, String)>, f64)
where
    F: Fn(Arc<LocalStack>) -> Fut,
    Fut: std::future::Future<Output = (String, String)> + Send + 'static,
{
    let stack = Arc::new(
        crate::stack_with(|o| {
            o.poll_queues = false;
            o.poll_streams = false;
            o.seed_promotion_rules = promotions;
            drop(o.parameters.insert("SmsLimitPerIp".into(), "100000".into()));
        })
        .await,
    );
    let t = Instant::now();
    let s = stack.clone();
    let astrologers = bounded(args.astrologers, 4, move |_| {
        let s = s.clone();
        async move { crate::bookable_astrologer(&s, "10").await.1 }
    })
    .await;
    let customers = bounded(args.customers, 4, |_| customer(stack.clone())).await;
    (stack, astrologers, customers, t.elapsed().as_secs_f64())
}
