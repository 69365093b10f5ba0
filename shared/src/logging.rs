//! Structured JSON logs. Nothing here logs request bodies; types that hold personal data
//! ([`crate::Phone`]) mask themselves when formatted.

use tracing_subscriber::EnvFilter;

/// JSON lines on stdout, level from `RUST_LOG` (default `info`). Call once in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line already
        .with_target(false)
        .try_init();
}
