//! The functions' logs, captured per test, for asserting that no personal data reaches them.
//!
//! Per test, not per binary: the integration tests share one binary, and a test asserts
//! about its own journey. A tokio test runs on a single-threaded runtime on its own
//! thread, and its stack (the gateway, the handlers, the pollers) runs on that runtime, so
//! what is logged on a test's thread is what its functions logged.

use std::cell::RefCell;

thread_local! {
    static LOGS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Everything the functions logged in this test. The local Cognito's "SMS" lines are the
/// stand-in phone, not a function log, and are left out.
pub fn captured_logs() -> String {
    let lines = LOGS.with(|l| l.borrow().clone());
    String::from_utf8_lossy(&lines).lines().filter(|l| !l.contains("SMS: ")).collect::<Vec<_>>().join("\n")
}

/// Appends to the logs of the thread that logs.
struct ThisThread;

impl std::io::Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A thread logging while it exits has no buffer left; its lines are nobody's.
        let _ = LOGS.try_with(|l| l.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per process; later calls do nothing).
pub(crate) fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info,aws_config=warn,aws_smithy_runtime=warn")
        .with_writer(|| ThisThread)
        .try_init();
}
