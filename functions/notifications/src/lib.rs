//! Queue consumer: turns every domain event a person should hear about into one in-app
//! notification per recipient (both parties of a booking, a cancellation, a completion),
//! with the texts of `shared::domain::messages`, and pushes it to the recipient's devices when push
//! is on.
//!
//! Idempotent per (event, recipient): the inbox item's key holds the recipient, the event id
//! and the time of the change the event reports (`occurred_at`, never the time of sending),
//! and is written with `attribute_not_exists`, so a message delivered twice (the outbox
//! relay, SNS and SQS all deliver at least once) notifies once and the redelivery succeeds.
//! A message whose second recipient could not be written fails and comes back; the first
//! recipient's notification is then found, not written again.
//!
//! Push is best effort, after the in-app notification is stored: a push failure is logged and
//! never fails the message (the notification is already in the inbox, and retrying the
//! message would not push again: only a first write pushes). So a device gets a push at most
//! once per notification, and may miss one.
//!
//! Failures are reported per message (`ReportBatchItemFailures`); SQS moves poison messages
//! to the DLQ.

pub mod push;

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use shared::UserId;
use shared::app::consumer::process_batch;
use shared::config::{self, ConfigError};
use shared::domain::events::Envelope;
use shared::domain::messages::{Language, Message, Notifiable, message};
use shared::store::{Store, StoreError};

use crate::push::{PushChannel, PushError, SnsPush};

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// `None`: push is off (no platform application configured).
    pub push: Option<Arc<dyn PushChannel>>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        let push = SnsPush::from_env(sdk, vars)?;
        if push.is_none() {
            tracing::info!(
                "push is off ({} is empty): notifications go to the in-app inbox only",
                push::APPLICATION_VAR
            );
        }
        Ok(Self { store: Store::from_env(sdk, vars)?, push: push.map(|p| Arc::new(p) as Arc<dyn PushChannel>) })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("malformed {kind} payload: {detail}")]
    Malformed { kind: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    process_batch(event, |envelope| notify(app, envelope)).await
}

async fn notify(app: &App, envelope: Envelope) -> Result<(), NotifyError> {
    let Some(event) = Notifiable::from_envelope(&envelope) else {
        // Not ours to act on: acknowledge, so it does not clog the queue or the DLQ.
        tracing::info!(event_id = %envelope.id, event_type = %envelope.kind, "event ignored");
        return Ok(());
    };
    let event = event.map_err(|e| NotifyError::Malformed {
        kind: envelope.kind.clone(),
        detail: shared::domain::events::parse_problem(&e),
    })?;
    for (user, to) in event.recipients() {
        let text = message(&event, to, Language::English);
        let first = app.store.add_notification(&user, &envelope, &text.title, &text.body, Utc::now()).await?;
        tracing::info!(event_id = %envelope.id, user_id = %user, recipient = to.as_str(), first_delivery = first, "notification stored");
        if let (true, Some(channel)) = (first, &app.push) {
            push_to_devices(&app.store, channel.as_ref(), &user, &text).await;
        }
    }
    Ok(())
}

/// Pushes `text` to every device of `user`; failures are logged, never returned.
async fn push_to_devices(store: &Store, channel: &dyn PushChannel, user: &UserId, text: &Message) {
    let devices = match store.devices(user).await {
        Ok(devices) => devices,
        Err(error) => {
            tracing::warn!(user_id = %user, %error, "push skipped: devices could not be read");
            return;
        }
    };
    for device in &devices {
        match channel.send(device, text).await {
            Ok(made) => {
                tracing::info!(user_id = %user, platform = device.platform.as_str(), "push sent");
                let remembered = match made {
                    Some(arn) => store.set_device_endpoint(user, device, &arn).await,
                    None => Ok(()),
                };
                if let Err(error) = remembered {
                    tracing::warn!(user_id = %user, %error, "push endpoint not remembered; made again next time");
                }
            }
            Err(error @ PushError::Gone(_)) => {
                tracing::info!(user_id = %user, platform = device.platform.as_str(), %error, "push failed; device removed");
                if let Err(error) = store.remove_device(user, device).await {
                    tracing::warn!(user_id = %user, %error, "unreachable device not removed; tried again next time");
                }
            }
            Err(error) => tracing::warn!(user_id = %user, platform = device.platform.as_str(), %error, "push failed"),
        }
    }
}
