//! Queue consumer: turns domain events (`UserRegistered`, `WalletCredited`) into in-app
//! notifications in the user's inbox.
//!
//! Idempotent: the inbox item's key holds the event id and the time of the change the event
//! reports (`occurred_at`, never the time of sending), and is written with
//! `attribute_not_exists`, so a message delivered twice (the outbox relay, SNS and SQS all
//! deliver at least once) notifies once and the redelivery succeeds. Failures are reported
//! per message (`ReportBatchItemFailures`); SQS moves poison messages to the DLQ.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use shared::KycStatus;
use shared::config::{self, ConfigError};
use shared::events::{Envelope, KycStatusChanged, UserRegistered, WalletCredited, process_batch};
use shared::store::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)? })
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
    let malformed =
        |e: serde_json::Error| NotifyError::Malformed { kind: envelope.kind.clone(), detail: e.to_string() };
    let (user, title, body) = if let Some(payload) = envelope.payload_as::<UserRegistered>() {
        let p = payload.map_err(malformed)?;
        (p.user_id, "Welcome to AstroKiran".to_owned(), format!("Namaste {}, your account is ready.", p.first_name))
    } else if let Some(payload) = envelope.payload_as::<KycStatusChanged>() {
        let p = payload.map_err(malformed)?;
        let (title, body) = match p.kyc_status {
            KycStatus::Completed => {
                ("KYC approved".to_owned(), "Your profile is live: customers can now book you.".to_owned())
            }
            KycStatus::Rejected => (
                "KYC needs another try".to_owned(),
                format!("Reason: {}. You can start KYC again.", p.rejection_reason.as_deref().unwrap_or("not given")),
            ),
            KycStatus::Expired => ("KYC expired".to_owned(), "Your KYC link expired; you can start again.".to_owned()),
            other => ("KYC update".to_owned(), format!("Your KYC is now {}.", other.as_str())),
        };
        (p.astrologer_id, title, body)
    } else if let Some(payload) = envelope.payload_as::<WalletCredited>() {
        let p = payload.map_err(malformed)?;
        let bonus =
            if p.bonus > shared::Money::ZERO { format!(" plus ₹{} bonus cash", p.bonus) } else { String::new() };
        let body = format!("₹{} added to your wallet{bonus}. Invoice {}.", p.amount, p.invoice_number);
        (p.user_id, "Wallet recharged".to_owned(), body)
    } else {
        // Not ours to act on: acknowledge, so it does not clog the queue or the DLQ.
        tracing::info!(event_id = %envelope.id, event_type = %envelope.kind, "event ignored");
        return Ok(());
    };
    let written = app.store.add_notification(&user, &envelope, &title, &body, Utc::now()).await?;
    tracing::info!(event_id = %envelope.id, user_id = %user, first_delivery = written, "notification stored");
    Ok(())
}
