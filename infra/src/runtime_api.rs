//! A Lambda Runtime API emulator (`/2018-06-01/runtime/...`) and a runner for a function's
//! real binary behind it: what Lambda does with a `provided.al2023` bootstrap, on 127.0.0.1.
//! The benchmark (`bench` binary) and the events test drive the release and debug binaries
//! through it, with the environment the template gives each function.
//!
//! The runner also reads what the benchmark reports about the process from `/proc`: on-CPU
//! time of all its threads (`schedstat`, nanoseconds) and peak RSS (`VmHWM`).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

const PREFIX: &str = "/2018-06-01/runtime";

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Value),
    /// `/invocation/{id}/error`: the runtime's error report (`errorType`, `errorMessage`).
    Error(Value),
}

impl Outcome {
    pub fn response(self) -> Result<Value> {
        match self {
            Outcome::Response(v) => Ok(v),
            Outcome::Error(e) => Err(anyhow!("the function reported an error: {e}")),
        }
    }
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<(String, Bytes)>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When each `GET /next` arrived.
    nexts: Mutex<Vec<Instant>>,
    next_arrived: Notify,
    init_error: Mutex<Option<Value>>,
}

/// One emulated Runtime API, for one process.
#[derive(Clone)]
pub struct RuntimeApi {
    inner: Arc<Inner>,
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl RuntimeApi {
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let inner = Arc::new(Inner::default());
        let router = axum::Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { inner, address, task: Arc::new(task) })
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&self, event: &Value) -> Result<Outcome> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(id.clone(), tx);
        self.inner.queue.lock().unwrap().push_back((id, Bytes::from(serde_json::to_vec(event)?)));
        self.inner.queued.notify_one();
        rx.await.map_err(|_| anyhow!("the runtime API stopped before the function answered"))
    }

    /// Waits until the function has asked for its `n`th invocation (1: init is over).
    pub async fn nexts(&self, n: usize) -> Instant {
        loop {
            let notified = self.inner.next_arrived.notified();
            if let Some(at) = self.inner.nexts.lock().unwrap().get(n - 1) {
                return *at;
            }
            notified.await;
        }
    }

    /// What the function reported to `/init/error`, if it failed to start.
    pub fn init_error(&self) -> Option<Value> {
        self.inner.init_error.lock().unwrap().clone()
    }
}

fn lambda_headers(id: &str) -> [(&'static str, String); 4] {
    let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
        + Duration::from_secs(10);
    [
        ("lambda-runtime-aws-request-id", id.to_owned()),
        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
        ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:ap-south-1:123456789012:function:local".to_owned()),
        ("lambda-runtime-trace-id", format!("Root=1-00000000-{};Sampled=0", &id.replace('-', "")[..24])),
    ]
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner.nexts.lock().unwrap().push(Instant::now());
    inner.next_arrived.notify_waiters();
    loop {
        let notified = inner.queued.notified();
        if let Some((id, body)) = inner.queue.lock().unwrap().pop_front() {
            let mut resp = (StatusCode::OK, [("content-type", "application/json")], body).into_response();
            for (name, value) in lambda_headers(&id) {
                resp.headers_mut().insert(name, value.parse().expect("header value"));
            }
            return resp;
        }
        notified.await;
    }
}

fn finish(inner: &Inner, id: &str, outcome: Outcome) -> Response {
    match inner.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
        }
        None => (StatusCode::BAD_REQUEST, "{\"errorMessage\":\"unknown request id\"}").into_response(),
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    finish(&inner, &id, Outcome::Response(json_of(&body)))
}

async fn error(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    finish(&inner, &id, Outcome::Error(json_of(&body)))
}

async fn init_error(State(inner): State<Arc<Inner>>, _headers: HeaderMap, body: Bytes) -> Response {
    *inner.init_error.lock().unwrap() = Some(json_of(&body));
    inner.next_arrived.notify_waiters();
    (StatusCode::ACCEPTED, "{\"status\":\"OK\"}").into_response()
}

/// A function's binary running behind its own [`RuntimeApi`]; killed when dropped.
pub struct Process {
    pub api: RuntimeApi,
    pub child: Child,
    pub pid: u32,
    pub spawned: Instant,
}

/// The variables Lambda sets for every function, besides the template's.
pub fn lambda_env(function: &str, memory_mb: u32, aws_endpoint: &str) -> HashMap<String, String> {
    [
        ("AWS_REGION", crate::REGION),
        ("AWS_DEFAULT_REGION", crate::REGION),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_SESSION_TOKEN", "local"),
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "local"),
        ("AWS_ENDPOINT_URL", aws_endpoint),
        ("LAMBDA_TASK_ROOT", "/var/task"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(), memory_mb.to_string())])
    .collect()
}

impl Process {
    /// Starts `binary` with exactly `env` (nothing inherited but `PATH`), its logs discarded
    /// unless `show_logs`.
    pub async fn spawn(binary: &Path, env: &HashMap<String, String>, show_logs: bool) -> Result<Self> {
        let api = RuntimeApi::start().await?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if !show_logs {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let spawned = Instant::now();
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("{} exited at once", binary.display()))?;
        Ok(Self { api, child, pid, spawned })
    }

    /// Waits for the first `/next` (init done); fails when the function reports an init
    /// error, exits, or takes longer than `limit`.
    pub async fn ready(&mut self, limit: Duration) -> Result<Instant> {
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        tokio::select! {
            at = self.api.nexts(1) => {
                if let Some(e) = self.api.init_error() { bail!("init failed: {e}") }
                Ok(at)
            }
            status = self.child.wait() => bail!("exited during init ({:?}); init error: {:?}", status?, self.api.init_error()),
            _ = &mut deadline => bail!("no /next within {limit:?}"),
        }
    }

    /// Invokes once and waits for the answer (at most `limit`).
    pub async fn invoke(&mut self, event: &Value, limit: Duration) -> Result<Outcome> {
        tokio::select! {
            out = tokio::time::timeout(limit, self.api.invoke(event)) => out.map_err(|_| anyhow!("no answer within {limit:?}"))?,
            status = self.child.wait() => bail!("the function exited ({:?})", status?),
        }
    }

    /// On-CPU time of all the process's threads so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid)
    }

    /// Peak resident set size, bytes.
    pub fn peak_rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }
}

/// Sum of `/proc/<pid>/task/*/schedstat`'s first field (ns on CPU) of every live thread.
pub fn cpu_of(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let ns: u64 = tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    Duration::from_nanos(ns)
}
