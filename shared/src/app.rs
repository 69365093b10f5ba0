//! What a function keeps between invocations when that is only the store (and, for the
//! functions that close consultations, the revenue share): built once per cold start by
//! `main`, handed to every invocation. A function that needs more (a provider client, a
//! secret) has an `App` of its own.

use crate::booking::RevenueShare;
use crate::config::{ConfigError, Vars};
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
