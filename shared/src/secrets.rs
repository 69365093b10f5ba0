//! Third-party secrets (Digio, Razorpay) from SSM Parameter Store SecureString parameters,
//! read in one `GetParameters` call by the first request that needs them, and kept for the
//! sandbox's lifetime ([`OnFirstUse`]).
//!
//! Why this way: in environment variables a secret is readable by anyone who may read the
//! function's configuration (and sits in plain text in every CloudFormation change set);
//! a SecureString is encrypted with KMS and readable only with `ssm:GetParameters` on that
//! parameter. SSM rather than Secrets Manager: no monthly charge per secret and up to ten
//! parameters in one call. The SDK client rather than the Parameters and Secrets Lambda
//! Extension: no layer to pin per region, no second process in the sandbox, one round trip
//! for all of a function's secrets instead of one per secret, and the local stack serves it
//! from moto like any other AWS call. Only the functions that hold secrets link it (this
//! module is the `secrets` feature). A rotated secret reaches each sandbox at its next cold
//! start (publish a new version, or update the function, to force one).
//!
//! Why on first use and not at cold start: the read is a network round trip (about 11 ms to
//! the local endpoint, more to SSM), and before the first `/next` it made these functions'
//! cold start 4x a bare runtime's (docs/benchmark.md, "Measured"). Read by the first request instead,
//! it is paid once per sandbox, only by a route that needs a secret (not by `GET
//! /wallet/top-ups/{id}`, say), and a failed read is retried by the next request instead of
//! failing the sandbox's init. The variables are still checked at cold start, so a missing
//! one still stops it; a parameter that is missing, empty or not a SecureString fails the
//! requests that need it with a 500 whose log line names the variable.
//!
//! A function names each secret by a variable holding the parameter's *name*
//! (`RAZORPAY_KEY_SECRET_PARAMETER=/astrokiran/dev/razorpay-key-secret`); the template sets
//! those from stack parameters and grants `ssm:GetParameters` on exactly them.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_ssm::types::ParameterType;
use tokio::sync::OnceCell;

use crate::ApiError;
use crate::config::{self, ConfigError, Vars};

/// GetParameters reads at most ten names per call.
const MAX_PER_CALL: usize = 10;

/// A function's secrets, by the variable that names each one's parameter.
#[derive(Clone, Default)]
pub struct Secrets {
    values: HashMap<&'static str, String>,
}

// Never print a secret, not even in a debug log of the App holding it.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("names", &self.values.keys().collect::<Vec<_>>()).finish()
    }
}

impl Secrets {
    /// Reads the SecureString parameters `by_parameter` names (parameter name -> the variable
    /// that named it), in one call. An error names the variable: its parameter missing, empty
    /// or not a SecureString, or SSM unreachable.
    async fn load(
        sdk: &aws_config::SdkConfig,
        by_parameter: &HashMap<String, &'static str>,
        names: &[&'static str],
    ) -> Result<Self, ConfigError> {
        if by_parameter.is_empty() {
            return Ok(Self::default());
        }
        let first = names[0];
        let out = aws_sdk_ssm::Client::new(sdk)
            .get_parameters()
            .set_names(Some(by_parameter.keys().cloned().collect()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| ConfigError::Invalid {
                name: first,
                problem: format!("reading secrets from SSM: {}", aws_sdk_ssm::error::DisplayErrorContext(e)),
            })?;
        if let Some(missing) = out.invalid_parameters().first() {
            let name = by_parameter.get(missing).copied().unwrap_or(first);
            return Err(ConfigError::Invalid { name, problem: format!("SSM parameter {missing} does not exist") });
        }
        let mut values = HashMap::new();
        for p in out.parameters() {
            let Some(name) = p.name().and_then(|n| by_parameter.get(n)).copied() else { continue };
            // A plain String parameter would put the secret where any reader of the account's
            // parameters sees it: refuse it rather than run with it.
            if p.r#type() != Some(&ParameterType::SecureString) {
                return Err(ConfigError::Invalid { name, problem: "the SSM parameter must be a SecureString".into() });
            }
            match p.value().filter(|v| !v.trim().is_empty()) {
                Some(v) => values.insert(name, v.to_owned()),
                None => return Err(ConfigError::Invalid { name, problem: "the SSM parameter is empty".into() }),
            };
        }
        for name in names {
            if !values.contains_key(name) {
                return Err(ConfigError::Invalid { name, problem: "SSM did not return its parameter".into() });
            }
        }
        Ok(Self { values })
    }

    /// The secret whose parameter the variable `name` names (one of those loaded).
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.values.get(name).cloned().ok_or(ConfigError::Missing(name))
    }
}

/// A client built from the function's secrets by the first request that needs it (see the
/// module doc for why not at cold start), then shared by every request of the sandbox.
/// Clones share it.
pub struct OnFirstUse<T>(Arc<Lazy<T>>);

type Build<T> = Box<dyn Fn(&Secrets) -> Result<T, ConfigError> + Send + Sync>;

struct Lazy<T> {
    sdk: aws_config::SdkConfig,
    names: Vec<&'static str>,
    /// Parameter name -> the variable that names it.
    by_parameter: HashMap<String, &'static str>,
    build: Build<T>,
    value: OnceCell<T>,
}

impl<T> Clone for OnFirstUse<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for OnFirstUse<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnFirstUse")
            .field("secrets", &self.0.names)
            .field("loaded", &self.0.value.initialized())
            .finish()
    }
}

impl<T> OnFirstUse<T> {
    /// At cold start: checks that the variables `names` are set (an error names the first
    /// one that is not); no network. `build` makes the client from the secrets once read.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        vars: &impl Vars,
        names: &[&'static str],
        build: impl Fn(&Secrets) -> Result<T, ConfigError> + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        assert!(names.len() <= MAX_PER_CALL, "one GetParameters call reads at most {MAX_PER_CALL} parameters");
        let mut by_parameter = HashMap::new();
        for name in names {
            by_parameter.insert(config::required(vars, name)?, *name);
        }
        Ok(Self(Arc::new(Lazy {
            sdk: sdk.clone(),
            names: names.to_vec(),
            by_parameter,
            build: Box::new(build),
            value: OnceCell::new(),
        })))
    }

    /// The client, reading the secrets first if no request has yet. Requests racing to be
    /// first wait for one read; a failed read is not kept, so the next request tries again.
    pub async fn try_get(&self) -> Result<&T, ConfigError> {
        let lazy = &*self.0;
        lazy.value
            .get_or_try_init(|| async {
                (lazy.build)(&Secrets::load(&lazy.sdk, &lazy.by_parameter, &lazy.names).await?)
            })
            .await
    }

    /// [`Self::try_get`] for a route: a failure is a 500 whose log line names the variable.
    pub async fn get(&self) -> Result<&T, ApiError> {
        self.try_get().await.map_err(|e| ApiError::internal(format!("the function's secrets: {e}")))
    }
}
