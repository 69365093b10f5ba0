//! Cognito PostConfirmation trigger: creates the user, a zero wallet and (for astrologers)
//! the astrologer profile and the `UserRegistered` event in one transaction, then puts the
//! user in the Cognito group of their role.
//!
//! Cognito runs it again on retries, on a second confirmation and after
//! `ConfirmForgotPassword`; every step is idempotent, so a rerun creates nothing twice and
//! announces nothing twice (the event is written with the user, or not at all).
//! It returns the event exactly as it was given, as Cognito requires.

use aws_sdk_cognitoidentityprovider::Client as CognitoClient;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use shared::config::{self, ConfigError};
use shared::events::{Envelope, UserRegistered};
use shared::store::{NewUser, Registered, Store, StoreError};
use shared::{Email, PersonName, Phone, UserId, UserType};

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
    #[error("refusing role {0:?}: only user and astrologer can be chosen at sign-up")]
    RoleNotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not add the user to group {group}: {detail}")]
    Group { group: &'static str, detail: String },
}

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
    let user = new_user(&parsed.request.user_attributes)?;

    // One user registers once, so the user names the event.
    let registered = Envelope::new(
        format!("user-registered-{}", user.id),
        user.created_at,
        UserRegistered { user_id: user.id.clone(), user_type: user.user_type, first_name: user.first_name.clone() },
    );
    let outcome = app.store.register(&user, &registered).await?;
    app.cognito
        .admin_add_user_to_group()
        .user_pool_id(&parsed.user_pool_id)
        .username(&parsed.user_name)
        .group_name(user.user_type.as_str())
        .send()
        .await
        .map_err(|e| TriggerError::Group { group: user.user_type.as_str(), detail: format!("{e:?}") })?;

    tracing::info!(
        user_id = %user.id,
        role = user.user_type.as_str(),
        trigger = %parsed.trigger_source,
        created = outcome == Registered::Created,
        "user registered"
    );
    Ok(event)
}

fn new_user(attributes: &std::collections::HashMap<String, String>) -> Result<NewUser, TriggerError> {
    let get = |name: &str| attributes.get(name).map(String::as_str).unwrap_or("");
    let invalid = |what: &str| TriggerError::InvalidEvent(format!("attribute {what} is missing or invalid"));
    let role_attr = get("custom:user_type");
    // custom:user_type is immutable in the pool schema, so it is the role chosen at sign-up.
    let user_type =
        UserType::parse_self_service(role_attr).map_err(|_| TriggerError::RoleNotAllowed(role_attr.to_owned()))?;
    Ok(NewUser {
        id: UserId::parse(get("sub")).map_err(|_| invalid("sub"))?,
        phone: Phone::parse(get("phone_number")).map_err(|_| invalid("phone_number"))?,
        first_name: PersonName::parse(get("given_name")).map_err(|_| invalid("given_name"))?.into(),
        last_name: PersonName::parse(get("family_name")).map_err(|_| invalid("family_name"))?.into(),
        email: attributes.get("email").and_then(|e| Email::parse(e).ok()).map(String::from),
        user_type,
        created_at: Utc::now(),
    })
}
