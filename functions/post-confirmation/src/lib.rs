//! Cognito PostConfirmation trigger: sets the account up (`shared::app::account`): the user, a
//! zero wallet and (for astrologers) the astrologer profile and the `UserRegistered` event in
//! one transaction, then the Cognito group of their role.
//!
//! Cognito runs it again on retries, on a second confirmation and after
//! `ConfirmForgotPassword`; every step is idempotent, so a rerun creates nothing twice and
//! announces nothing twice (the event is written with the user, or not at all). If it
//! fails after Cognito confirmed the user, the first signed-in call (`GET /me`) finishes it.
//! It returns the event exactly as it was given, as Cognito requires.

use aws_sdk_cognitoidentityprovider::Client as CognitoClient;
use serde::Deserialize;
use serde_json::Value;
use shared::app::account::{self, SetupError};
use shared::config::{self, ConfigError};
use shared::store::{Registered, Store};

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub cognito: CognitoClient,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)?, cognito: CognitoClient::new(sdk) })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("not a PostConfirmation event: {0}")]
    InvalidEvent(String),
    #[error(transparent)]
    Setup(#[from] SetupError),
}

const FORGOT_PASSWORD: &str = "PostConfirmation_ConfirmForgotPassword";

/// The part of the event this trigger reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerEvent {
    trigger_source: String,
    user_pool_id: String,
    user_name: String,
    request: TriggerRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerRequest {
    user_attributes: std::collections::HashMap<String, String>,
}

pub async fn handle(app: &App, event: Value) -> Result<Value, TriggerError> {
    let parsed: TriggerEvent =
        serde_json::from_value(event.clone()).map_err(|e| TriggerError::InvalidEvent(e.to_string()))?;
    let attributes = &parsed.request.user_attributes;
    // A password reset sets nothing up for an account with no sign-up role: staff made by an
    // operator (sign-up itself never makes one: there the role is refused).
    if parsed.trigger_source == FORGOT_PASSWORD && account::sign_up_role(attributes).is_err() {
        tracing::info!(trigger = %parsed.trigger_source, "password reset of a staff account: nothing to set up");
        return Ok(event);
    }
    let (user, outcome) =
        account::finish_setup(&app.store, &app.cognito, &parsed.user_pool_id, &parsed.user_name, attributes).await?;
    tracing::info!(
        user_id = %user.id,
        role = user.user_type.as_str(),
        trigger = %parsed.trigger_source,
        created = outcome == Registered::Created,
        "user registered"
    );
    Ok(event)
}
