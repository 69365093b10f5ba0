//! The emulators and the stack under test: one moto server per test binary (started here,
//! on a free loopback port) and a fresh local stack per test (its own table, queues and
//! user pool).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use infra::moto::MotoServer;
use infra::{LocalStack, Options};

use crate::logs::capture_logs;

/// The moto endpoint shared by every test in this binary.
pub fn moto() -> &'static str {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    &MOTO.get_or_init(|| MotoServer::start().expect("moto_server starts (run scripts/setup.sh)")).endpoint
}

/// A local stack with resources of its own, on the shared moto.
pub async fn stack() -> LocalStack {
    stack_with(|_| {}).await
}

pub async fn stack_with(adjust: impl FnOnce(&mut Options)) -> LocalStack {
    let endpoint = tokio::task::spawn_blocking(moto).await.unwrap();
    stack_on(endpoint, adjust).await
}

/// A local stack on the given moto (a test that needs a moto of its own).
pub async fn stack_on(moto_endpoint: &str, adjust: impl FnOnce(&mut Options)) -> LocalStack {
    static N: AtomicUsize = AtomicUsize::new(0);
    capture_logs();
    let mut opts = Options::new(moto_endpoint, format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    adjust(&mut opts);
    LocalStack::start(opts).await.expect("local stack starts")
}
