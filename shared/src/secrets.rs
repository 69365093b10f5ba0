//! Third-party secrets (Digio, Razorpay) from SSM Parameter Store SecureString parameters,
//! read once at cold start in one `GetParameters` call and kept for the sandbox's lifetime.
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
//! A function names each secret by a variable holding the parameter's *name*
//! (`RAZORPAY_KEY_SECRET_PARAMETER=/astrokiran/dev/razorpay-key-secret`); the template sets
//! those from stack parameters and grants `ssm:GetParameters` on exactly them.

use std::collections::HashMap;

use aws_sdk_ssm::types::ParameterType;

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
    /// Reads the SecureString parameters the variables `names` name, in one call. An error
    /// names the variable: unset, its parameter missing or not a SecureString, or SSM
    /// unreachable (the cold start fails and Lambda retries it, rather than serving
    /// requests without the secret).
    pub async fn load(
        sdk: &aws_config::SdkConfig,
        vars: &impl Vars,
        names: &[&'static str],
    ) -> Result<Self, ConfigError> {
        assert!(names.len() <= MAX_PER_CALL, "one GetParameters call reads at most {MAX_PER_CALL} parameters");
        let mut by_parameter = HashMap::new();
        for name in names {
            by_parameter.insert(config::required(vars, name)?, *name);
        }
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
