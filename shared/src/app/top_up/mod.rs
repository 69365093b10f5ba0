//! Wallet top-ups through Razorpay, for the two functions that credit them: `top-up` (its
//! routes and Razorpay's webhook) and `top-up-reconcile` (the scheduled settling of top-ups
//! left open). Both build the one [`App`] and credit through the one exactly-once path
//! ([`credit`]), which takes back refunds through [`reversal`].
//!
//! A credit or reversal that loses a race on the wallet version or the invoice sequence reads
//! again and retries (at most [`CREDIT_ATTEMPTS`] times); one that finds the top-up already
//! completed stops. Exactly-once is carried by the transaction's condition on the top-up's status.

pub mod credit;
pub mod reversal;

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::config::{self, ConfigError};
use crate::domain::invoice::{Gstin, valid_invoice_prefix};
use crate::domain::money::Money;
use crate::domain::topup::{CreditSettings, TopUp};
use crate::http::error::ApiError;
use crate::providers::razorpay::Razorpay;
use crate::secrets::OnFirstUse;
use crate::store::Store;
use crate::store::retry::{Exhausted, Retry};

/// How often a credit or a reversal reads and writes again after a lost race. More than the
/// default: every credit of a day shares one invoice counter, and with 5 attempts one of 50
/// customers paying at one moment got a 503 in one clean-clone CI run of three (2026-12-06).
pub const CREDIT_ATTEMPTS: Retry = Retry::attempts(8);
/// `TOPUP_MIN_AMOUNT` and `TOPUP_MAX_AMOUNT` when the template does not set them.
pub const DEFAULT_MIN_AMOUNT: &str = "10";
pub const DEFAULT_MAX_AMOUNT: &str = "50000";

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// Built by the first request that needs Razorpay (`crate::secrets::OnFirstUse`).
    pub razorpay: OnFirstUse<Razorpay>,
    pub gst_rate_percent: Decimal,
    pub min_amount: Money,
    pub max_amount: Money,
    pub invoice_prefix: String,
    pub supplier_gstin: Gstin,
    pub sac_code: String,
}

/// The variables naming the SecureString parameters of both functions (see `crate::secrets`).
pub const SECRETS: &[&str] = &["RAZORPAY_KEY_SECRET_PARAMETER", "RAZORPAY_WEBHOOK_SECRET_PARAMETER"];

/// The Razorpay client from `RAZORPAY_BASE_URL`, `RAZORPAY_KEY_ID` and the two secret
/// parameters ([`SECRETS`]), built by the first request that needs it.
pub fn razorpay_on_first_use(
    sdk: &aws_config::SdkConfig,
    vars: &impl config::Vars,
) -> Result<OnFirstUse<Razorpay>, ConfigError> {
    let base_url = config::optional(vars, "RAZORPAY_BASE_URL", "https://api.razorpay.com");
    let key_id = config::required(vars, "RAZORPAY_KEY_ID")?;
    OnFirstUse::new(sdk, vars, SECRETS, move |secrets| {
        Ok(Razorpay::new(
            &base_url,
            key_id.clone(),
            secrets.required("RAZORPAY_KEY_SECRET_PARAMETER")?,
            secrets.required("RAZORPAY_WEBHOOK_SECRET_PARAMETER")?,
        ))
    })
}

impl App {
    /// Cold start: the variables (the secrets are read by the first request that needs them).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        let razorpay = razorpay_on_first_use(sdk, vars)?;
        let decimal = |name: &'static str, default: &str| {
            Decimal::from_str(&config::optional(vars, name, default))
                .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })
        };
        let money = |name: &'static str, default: &str| {
            config::optional(vars, name, default)
                .parse::<Money>()
                .map_err(|e| ConfigError::Invalid { name, problem: e.to_string() })
        };
        let gst_rate_percent = decimal("GST_RATE_PERCENT", "18")?;
        if gst_rate_percent < Decimal::ZERO || gst_rate_percent > Decimal::ONE_HUNDRED {
            return Err(ConfigError::Invalid { name: "GST_RATE_PERCENT", problem: "must be 0 to 100".into() });
        }
        let (min_amount, max_amount) =
            (money("TOPUP_MIN_AMOUNT", DEFAULT_MIN_AMOUNT)?, money("TOPUP_MAX_AMOUNT", DEFAULT_MAX_AMOUNT)?);
        if min_amount < Money::from_paise(100) || max_amount < min_amount {
            return Err(ConfigError::Invalid {
                name: "TOPUP_MIN_AMOUNT",
                problem: "must be at least 1.00 (Razorpay's minimum) and at most TOPUP_MAX_AMOUNT".into(),
            });
        }
        let invoice_prefix = config::optional(vars, "INVOICE_PREFIX", "AK");
        if !valid_invoice_prefix(&invoice_prefix) {
            let problem = "must be 1 to 3 capital letters or digits (an invoice number has at most 16 characters)";
            return Err(ConfigError::Invalid { name: "INVOICE_PREFIX", problem: problem.into() });
        }
        let supplier_gstin = Gstin::parse(&config::required(vars, "SUPPLIER_GSTIN")?)
            .ok_or_else(|| ConfigError::Invalid { name: "SUPPLIER_GSTIN", problem: "is not a valid GSTIN".into() })?;
        let sac_code = config::optional(vars, "SAC_CODE", "999799");
        if sac_code.len() != 6 || !sac_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid { name: "SAC_CODE", problem: "must be a 6-digit SAC code".into() });
        }
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            razorpay,
            gst_rate_percent,
            min_amount,
            max_amount,
            invoice_prefix,
            supplier_gstin,
            sac_code,
        })
    }

    pub(crate) fn settings(&self) -> CreditSettings<'_> {
        CreditSettings {
            gst_rate_percent: self.gst_rate_percent,
            invoice_prefix: &self.invoice_prefix,
            supplier_gstin: &self.supplier_gstin,
            sac_code: &self.sac_code,
        }
    }
}

/// A credit or reversal that lost every race.
fn wallet_busy(_: Exhausted) -> ApiError {
    ApiError::unavailable("busy", "the wallet is busy; retry")
}

pub fn log_credit(topup: &TopUp) {
    if let Some(credit) = &topup.credit {
        tracing::info!(top_up_id = %topup.id, amount = %topup.amount, bonus = %credit.bonus_credited,
            credited_by = %credit.credited_by, "wallet credited");
    }
}
