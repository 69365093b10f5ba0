//! Structured JSON logs. Nothing here logs request bodies; types that hold personal data
//! ([`crate::Phone`]) mask themselves when formatted.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON lines on stdout, level from `RUST_LOG` (default `info`). Call once in `main`.
///
/// `RUST_LOG` takes `level` and `target=level` directives separated by commas
/// (`info,aws_smithy_runtime=warn`), parsed by [`Targets`]: no regex is compiled at init
/// or linked into the binary (EnvFilter's span and field filters are not supported).
pub fn init() {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line already
        .with_target(false);
    let _ = tracing_subscriber::registry().with(fmt).with(filter).try_init();
}

/// The filter `RUST_LOG` describes; unset or unreadable: `info`. Like EnvFilter, a value
/// with any directive that is not `level` or `target=level` is refused as a whole.
pub fn filter(directives: Option<&str>) -> Targets {
    directives
        .filter(|d| !d.trim().is_empty() && d.split(',').all(readable))
        .and_then(|d| d.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

fn readable(directive: &str) -> bool {
    let (target, level) = directive.trim().rsplit_once('=').unwrap_or(("", directive.trim()));
    target.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'))
        && level.parse::<LevelFilter>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::filter;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_by_target_without_regex() {
        let f = filter(Some("info,aws_smithy_runtime=warn"));
        assert!(f.would_enable("profile", &Level::INFO));
        assert!(!f.would_enable("profile", &Level::DEBUG));
        assert!(!f.would_enable("aws_smithy_runtime::client", &Level::INFO));
        assert!(f.would_enable("aws_smithy_runtime::client", &Level::WARN));
        assert!(f.would_enable("anything", &Level::INFO) && !filter(None).would_enable("x", &Level::DEBUG));
        assert!(filter(Some("not a [valid] directive")).would_enable("x", &Level::INFO));
    }
}
