//! `bench`: cold starts, warm requests, memory, AWS round trips and zip sizes of every
//! function's release binary, next to a bare `lambda_runtime` hello-world built with the
//! same profile. Run it through `scripts/bench.sh` (which builds what it measures); see
//! docs/benchmark.md. Everything runs on 127.0.0.1: moto behind the local stack's AWS endpoint,
//! each binary behind its own Runtime API emulator ([`infra::runtime_api`]), fed the
//! samples in `events/` with the environment the template gives it.
//!
//! Options: `--cold N` cold starts per function (default 21), `--warm N` warm requests per
//! function (default 200), `--bin DIR` where the release binaries are (default
//! `$CARGO_TARGET_DIR/release`), `--zips DIR` where `cargo lambda build` put the zips
//! (default `$CARGO_TARGET_DIR/lambda`), `--only a,b` some functions only, `--set NAME=VALUE` a variable for every
//! function on top of the template's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use infra::runtime_api::{Outcome, Process, lambda_env};
use infra::{LocalStack, Options, moto::MotoServer, samples};
use serde_json::{Value, json};

const HELLO: &str = "bench-hello";
const READY_LIMIT: Duration = Duration::from_secs(10);
const INVOKE_LIMIT: Duration = Duration::from_secs(15);

struct Args {
    cold: usize,
    warm: usize,
    bin_dir: PathBuf,
    zip_dir: PathBuf,
    only: Option<Vec<String>>,
    /// `--set K=V`: a variable every function gets on top of the template's (experiments,
    /// e.g. `--set RUST_LOG=warn`).
    set: Vec<(String, String)>,
}

fn args() -> Result<Args> {
    let target =
        std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| infra::repo_root().join("target"));
    let mut a = Args {
        cold: 21,
        warm: 200,
        bin_dir: target.join("release"),
        zip_dir: target.join("lambda"),
        only: None,
        set: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--cold" => a.cold = value()?.parse::<usize>()?.clamp(1, 200),
            "--warm" => a.warm = value()?.parse::<usize>()?.clamp(1, 5000),
            "--bin" => a.bin_dir = value()?.into(),
            "--zips" => a.zip_dir = value()?.into(),
            "--set" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').context("--set takes NAME=VALUE")?;
                a.set.push((k.to_owned(), v.to_owned()));
            }
            "--only" => a.only = Some(value()?.split(',').map(str::to_owned).collect()),
            other => bail!("unknown option {other} (see the top of infra/src/bin/bench.rs)"),
        }
    }
    Ok(a)
}

#[derive(Default)]
struct Row {
    init: Vec<f64>,
    init_cpu: Vec<f64>,
    first_response: Vec<f64>,
    rss: Vec<f64>,
    warm_latency: Vec<f64>,
    warm_cpu_per_request: f64,
    zip: Option<u64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn summary(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(v) => match v.get("statusCode") {
            Some(code) => format!("HTTP {code}"),
            None if v.get("batchItemFailures").is_some_and(|f| f.as_array().is_some_and(|a| !a.is_empty())) => {
                "batch failures".into()
            }
            None => "ok".into(),
        },
        Outcome::Error(e) => format!("error {}", e["errorType"].as_str().unwrap_or("?")),
    }
}

/// Counts like `2 dynamodb:GetItem, sns:PublishBatch`, in first-call order.
fn counted(calls: &[String]) -> String {
    let mut order: Vec<&String> = Vec::new();
    let mut n: BTreeMap<&String, usize> = BTreeMap::new();
    for c in calls {
        if !n.contains_key(c) {
            order.push(c);
        }
        *n.entry(c).or_default() += 1;
    }
    if order.is_empty() {
        return "none".into();
    }
    order.iter().map(|c| if n[c] > 1 { format!("{}x {c}", n[c]) } else { (*c).clone() }).collect::<Vec<_>>().join(", ")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let moto = tokio::task::spawn_blocking(MotoServer::start).await??;
    let mut opts = Options::new(moto.endpoint.clone(), format!("bench-{}", std::process::id()));
    // Only the functions under test call AWS, so the call log is theirs alone.
    opts.poll_queues = false;
    opts.poll_streams = false;
    opts.seed_promotion_rules = true;
    let stack = LocalStack::start(opts).await?;

    let mut binaries: Vec<String> = stack.functions.iter().map(|(d, _)| d.binary.clone()).collect();
    let all_samples = samples::all(&binaries)?;
    if let Some(only) = &args.only {
        binaries.retain(|b| only.contains(b));
    }
    let mut samples_by_binary: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for sample in &all_samples {
        let event = samples::as_sent_by(&stack, sample).await?;
        samples_by_binary.entry(sample.binary.clone()).or_default().push((sample.file.clone(), event));
    }
    let env_of = |binary: &str| {
        let mut env = lambda_env(binary, 128, &stack.aws_endpoint);
        env.extend(stack.envs.get(binary).cloned().unwrap_or_default());
        env.extend(args.set.iter().cloned());
        env
    };
    let exe = |binary: &str| {
        let path = args.bin_dir.join(binary);
        if path.exists() {
            Ok(path)
        } else {
            bail!("{} is missing: run scripts/bench.sh (it builds first)", path.display())
        }
    };

    // 1. Round trips: every sample once, in order, each function in a fresh process.
    println!("AWS calls per sample (first run, in order; the local AWS endpoint's call log):");
    let mut route_rows = Vec::new();
    for binary in &binaries {
        let mut p = Process::spawn(&exe(binary)?, &env_of(binary), false).await?;
        p.ready(READY_LIMIT).await.with_context(|| format!("{binary} did not start"))?;
        for (file, event) in samples_by_binary.get(binary).into_iter().flatten() {
            stack.calls.clear();
            let outcome = p.invoke(event, INVOKE_LIMIT).await.with_context(|| file.clone())?;
            let calls = stack.calls.every();
            println!("  {file:<40} {:<16} {}", summary(&outcome), counted(&calls));
            route_rows.push((file.clone(), calls.len()));
        }
    }
    println!();

    // 2. Cold starts and warm requests, hello first.
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let hello_event = vec![("hello".to_owned(), json!({ "hello": "world" }))];
    let mut order = vec![HELLO.to_owned()];
    order.extend(binaries.iter().cloned());
    for binary in &order {
        let (path, env, events) = if binary == HELLO {
            (exe(HELLO)?, lambda_env(HELLO, 128, &stack.aws_endpoint), &hello_event)
        } else {
            (exe(binary)?, env_of(binary), samples_by_binary.get(binary).context("no sample")?)
        };
        let mut row = Row::default();
        for _ in 0..args.cold {
            let mut p = Process::spawn(&path, &env, false).await?;
            let at = p.ready(READY_LIMIT).await.with_context(|| format!("{binary} did not start"))?;
            row.init.push(ms(at - p.spawned));
            row.init_cpu.push(ms(p.cpu()));
            p.invoke(&events[0].1, INVOKE_LIMIT).await?;
            row.first_response.push(ms(p.spawned.elapsed()));
            row.rss.push(p.peak_rss() as f64 / (1024.0 * 1024.0));
        }
        let mut p = Process::spawn(&path, &env, false).await?;
        p.ready(READY_LIMIT).await?;
        for (_, event) in events.iter().cycle().take(events.len() * 2) {
            p.invoke(event, INVOKE_LIMIT).await?; // warm up: connections, caches
        }
        let cpu_before = p.cpu();
        for (_, event) in events.iter().cycle().take(args.warm) {
            let t = Instant::now();
            p.invoke(event, INVOKE_LIMIT).await?;
            row.warm_latency.push(ms(t.elapsed()));
        }
        row.warm_cpu_per_request = ms(p.cpu() - cpu_before) / args.warm as f64;
        row.rss.push(p.peak_rss() as f64 / (1024.0 * 1024.0));
        row.zip = std::fs::metadata(args.zip_dir.join(binary).join("bootstrap.zip")).ok().map(|m| m.len());
        rows.insert(binary.clone(), row);
    }

    let hello = &rows[HELLO];
    let (h_init, h_cpu, h_warm_cpu) = (median(&hello.init), median(&hello.init_cpu), hello.warm_cpu_per_request);
    println!(
        "Cold start: {} spawns per function, medians. Warm: {} requests per function over its samples. \
         CPU: on-CPU time of all the process's threads. Zip: arm64, cargo lambda build --release --arm64.",
        args.cold, args.warm
    );
    println!(
        "{:<18} {:>9} {:>6} {:>9} {:>6} {:>9} {:>8} {:>9} {:>9} {:>10} {:>8}",
        "function",
        "to /next",
        "xhello",
        "init CPU",
        "xhello",
        "1st resp",
        "peak RSS",
        "warm p50",
        "CPU/req",
        "-hello",
        "zip"
    );
    for binary in &order {
        let r = &rows[binary];
        let (init, cpu) = (median(&r.init), median(&r.init_cpu));
        let rss = r.rss.iter().cloned().fold(0.0, f64::max);
        println!(
            "{:<18} {:>7.2}ms {:>5.2}x {:>7.2}ms {:>5.2}x {:>7.2}ms {:>6.1}MiB {:>7.3}ms {:>7.3}ms {:>8.3}ms {:>8}",
            binary,
            init,
            init / h_init,
            cpu,
            cpu / h_cpu,
            median(&r.first_response),
            rss,
            median(&r.warm_latency),
            r.warm_cpu_per_request,
            r.warm_cpu_per_request - h_warm_cpu,
            r.zip.map_or("-".into(), |z| format!("{:.2}MiB", z as f64 / (1024.0 * 1024.0))),
        );
    }
    let worst = |f: &dyn Fn(&Row) -> f64| order.iter().filter(|b| *b != HELLO).map(|b| f(&rows[b])).fold(0.0, f64::max);
    println!();
    println!(
        "targets: to /next <= 2x hello: worst {:.2}x | init CPU <= 2.5x hello: worst {:.2}x | peak RSS <= 12 MiB: worst {:.1} MiB | \
         zip <= 2 MiB: worst {} | CPU/req - hello <= 0.3 ms: worst {:.3} ms",
        worst(&|r| median(&r.init)) / h_init,
        worst(&|r| median(&r.init_cpu)) / h_cpu,
        worst(&|r| r.rss.iter().cloned().fold(0.0, f64::max)),
        rows.iter()
            .filter(|(b, _)| *b != HELLO)
            .filter_map(|(_, r)| r.zip)
            .max()
            .map_or("- (no zips found)".into(), |z| format!("{:.2} MiB", z as f64 / (1024.0 * 1024.0))),
        worst(&|r| r.warm_cpu_per_request - h_warm_cpu),
    );
    drop(stack);
    drop(moto);
    Ok(())
}
