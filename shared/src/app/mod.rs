//! What a function keeps between invocations when that is only the store (and, for the
//! functions that close consultations, the revenue share): built once per cold start by
//! `main`, handed to every invocation. A function that needs more (a provider client, a
//! secret) has an `App` of its own, or shares one (`top_up::App`: top-up and its
//! reconciliation).

#[cfg(feature = "cognito")]
pub mod account;
pub mod closing;
pub mod consumer;
// Deleting an account: Cognito, Razorpay's refunds and the secrets they need, the images
// bucket's objects.
#[cfg(all(feature = "cognito", feature = "outbound", feature = "secrets", feature = "images"))]
pub mod erasure;
#[cfg(feature = "images")]
pub mod images;
#[cfg(feature = "live")]
pub mod live;
pub mod sms;
// Razorpay's client (`outbound`) and its secrets, read on first use (`secrets`).
#[cfg(all(feature = "outbound", feature = "secrets"))]
pub mod top_up;

use crate::config::{self, ConfigError, Vars};
use crate::domain::booking::RevenueShare;
use crate::store::Store;

/// `pub use shared::app::StoreApp as App;` in a function that only reads and writes the table.
#[derive(Clone, Debug)]
pub struct StoreApp {
    pub store: Store,
}

impl StoreApp {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)? })
    }
}

/// A function that closes consultations (`shared::closing`), which settles with the revenue share.
#[derive(Clone, Debug)]
pub struct ClosingApp {
    pub store: Store,
    pub share: RevenueShare,
}

impl ClosingApp {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)?, share: RevenueShare::from_env(vars)? })
    }
}

impl RevenueShare {
    /// `ASTROLOGER_SHARE_PERCENT` (0 to 100; 70 when unset), as the template gives it.
    pub fn from_env(vars: &impl Vars) -> Result<Self, ConfigError> {
        let name = "ASTROLOGER_SHARE_PERCENT";
        config::optional(vars, name, "70")
            .parse()
            .ok()
            .and_then(RevenueShare::new)
            .ok_or(ConfigError::Invalid { name, problem: "must be 0 to 100".into() })
    }
}
