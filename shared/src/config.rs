//! Configuration from the environment, and the AWS SDK configuration every function
//! builds once at cold start.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::{Builder, tls};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {problem}")]
    Invalid { name: &'static str, problem: String },
}

/// Where a function reads its settings: the process environment on Lambda, the
/// template's resolved `Environment.Variables` in the local stack.
pub trait Vars {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Vars for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A required variable; the error names it.
pub fn required(vars: &impl Vars, name: &'static str) -> Result<String, ConfigError> {
    vars.var(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
}

/// An optional variable with a default.
pub fn optional(vars: &impl Vars, name: &'static str, default: &str) -> String {
    vars.var(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// The SDK configuration: region and credentials from the Lambda environment, the
/// endpoint from `AWS_ENDPOINT_URL` when set (the local stack), rustls with ring,
/// and timeouts short enough that a slow dependency fails a request instead of the
/// Lambda running to its own timeout.
pub async fn aws() -> SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`aws`], for callers (the local stack) that set endpoint and credentials.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    let http_client =
        Builder::new().tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}
