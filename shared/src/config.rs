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

/// The SDK configuration for a function: what Lambda gives and nothing more. Region from
/// `AWS_REGION`, credentials from the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
/// `AWS_SESSION_TOKEN` variables Lambda sets (no profile files, no STS, no IMDS: nothing is
/// read from disk or the network at init), the endpoint from `AWS_ENDPOINT_URL` when set
/// (the local stack), rustls with ring trusting only the roots AWS endpoints chain to
/// ([`crate::tls`]), and timeouts short enough that a slow dependency fails a request
/// instead of the Lambda running to its own timeout.
pub async fn aws() -> SdkConfig {
    aws_from(&ProcessEnv)
}

/// [`aws`] from the given variables.
pub fn aws_from(vars: &impl Vars) -> SdkConfig {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::identity::IdentityCache;
    use aws_credential_types::provider::SharedCredentialsProvider;

    let region = vars.var("AWS_REGION").or_else(|| vars.var("AWS_DEFAULT_REGION")).map(aws_config::Region::new);
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(retries())
        .identity_cache(IdentityCache::lazy().build())
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    builder.set_region(region);
    builder.set_endpoint_url(vars.var("AWS_ENDPOINT_URL").filter(|v| !v.trim().is_empty()));
    builder.build()
}

/// aws-config's full loader (profile files, the default credentials chain) with this
/// crate's HTTP client, timeouts and retries, for callers that set endpoint and credentials
/// themselves (the local stack and its tests). Functions use [`aws`].
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts())
        .retry_config(retries())
}

fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .tls_context(crate::tls::aws_context())
        .build_https()
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}
