//! The DynamoDB store: one table, designed from its access patterns.
//!
//! # Keys
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | user | `USER#{sub}` | `PROFILE` | role, names, phone, profile status |
//! | wallet | `USER#{sub}` | `WALLET` | real and bonus cash as Numbers |
//! | astrologer profile | `USER#{sub}` | `ASTROLOGER` | KYC and verification status |
//! | phone claim | `PHONE#{e164}` | `PHONE` | makes a phone number unique |
//! | notification | `INBOX#{sub}` | `NOTIF#{occurred_at}#{event id}` | written once per event |
//! | KYC request | `KYCREQ#{digio id}` | `KYCREQ` | status; `GSI1PK = KYC_OPEN`, `GSI1SK = expiry` while open |
//! | KYC audit entry | `KYCAUDIT#{sub}` | `{created_at}#{random}` | time-ordered per astrologer, redacted |
//! | webhook event seen | `WEBHOOK#{provider}#{event id}` | `WEBHOOK` | de-duplication, TTL 30 days |
//! | top-up (payment order) | `TOPUP#{id}` | `TOPUP` | status; GSI1 `RZP_ORDER#{razorpay order id}` / `TOPUP` |
//! | invoice | `TOPUP#{id}` | `INVOICE` | GSI1 `INVOICES#{fy}` / invoice number |
//! | invoice sequence | `COUNTER#INVOICE#{fy}` | `COUNTER` | `seq`: last number of the financial year |
//! | ledger entry | `LEDGER#{sub}` | `TXN#{at}#{top-up id}#{n}` | deltas and balances after (Numbers) |
//! | promotion rule | `PROMO_RULES` | `RULE#{id}` | min, max, percent, first-recharge-only, active |
//! | idempotency record | `IDEMPOTENCY#{sub}#{key}` | `IDEMPOTENCY` | request hash, first response, TTL 24h |
//!
//! Only the user, wallet and astrologer items live under `USER#{sub}`, so `GET /me` is a
//! single Query. Put anything else that belongs to a user in a partition of its own.
//! `GSI1` (`GSI1PK`, `GSI1SK`) is the one secondary index, overloaded per item type;
//! `expires_at` (epoch seconds) is the TTL attribute for short-lived records.
//!
//! # Access patterns
//! | route or trigger | calls |
//! |---|---|
//! | post-confirmation | 1 TransactWriteItems: user + phone claim + wallet (+ astrologer), each `attribute_not_exists` |
//! | `GET /me` | 1 Query on `PK = USER#{sub}` |
//! | notifications consumer | 1 conditional PutItem per event (the condition is the de-duplication) |
//! | `POST /astrologers/me/kyc` | 1 Query (user + astrologer), 1 conditional UpdateItem (claim), 1 TransactWriteItems (request, astrologer, superseded request, audit) |
//! | `GET /astrologers/me/kyc` | 1 Query |
//! | `POST /webhooks/digio` | 1 GetItem (request), 1 TransactWriteItems (de-dup, request, astrologer, user, audit) |
//! | KYC expiry sweep | 1 Query on GSI1 (`KYC_OPEN`, expiry <= now), then per request the webhook's transaction |
//! | `POST /wallet/top-ups` | BatchGetItem (idempotency record + wallet), Query `PROMO_RULES`, TransactWriteItems (top-up + idempotency record) |
//! | `POST /wallet/top-ups/{id}/confirm` | BatchGetItem (top-up + wallet + invoice sequence), TransactWriteItems (the credit) |
//! | `POST /webhooks/razorpay` | Query GSI1 `RZP_ORDER#{id}`, BatchGetItem (+ event record), TransactWriteItems; `payment.failed`: Query + conditional UpdateItem |
//! | `GET /wallet/top-ups/{id}` | 1 GetItem |
//! | `GET /wallet` | 1 GetItem |
//! | `GET /wallet/transactions` | 1 Query on `LEDGER#{sub}`, newest first, `Limit` + `ExclusiveStartKey` from the cursor |
//!
//! The credit transaction (see `functions/top-up/src/store.rs`) is what makes a payment
//! credit exactly once; a credit that loses a race on the wallet version or the invoice
//! sequence reads again and retries (each retry: 1 BatchGetItem + 1 TransactWriteItems).

pub mod items;
pub mod outbox;
mod kyc;
mod users;
pub mod wallet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

pub use kyc::{Applied, AstrologerKyc, KycAuditEntry, KycEvent, KycRequestRecord, StartedRequest, seen_event_item};
pub use users::{
    AstrologerSummary, NewUser, Registered, UserOverview, UserRecord, WALLET_SK, WalletSummary, cancellation_reasons,
    put_new, user_pk,
};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const TTL_ATTRIBUTE: &str = "expires_at";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, timed out or unreachable: worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A condition that carries an invariant failed.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// An item does not have the shape the code wrote.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// Classifies any SDK error: transport faults and throttling are `Unavailable`.
    pub fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreError::Unavailable(format!("{err:?}")),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("");
                let message = service.err().message().unwrap_or("").to_owned();
                match code {
                    "ConditionalCheckFailedException" => StoreError::ConditionFailed(message),
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable" => StoreError::Unavailable(format!("{code}: {message}")),
                    _ => StoreError::Other(format!("{code}: {message}")),
                }
            }
            _ => StoreError::Other(format!("{err:?}")),
        }
    }
}

/// The table and the client for it; built once per cold start.
#[derive(Clone, Debug)]
pub struct Store {
    pub client: Client,
    pub table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The table named by `TABLE_NAME`.
    pub fn from_env(
        sdk: &aws_config::SdkConfig,
        vars: &impl crate::config::Vars,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self::new(Client::new(sdk), crate::config::required(vars, "TABLE_NAME")?))
    }

    /// Writes all or nothing, for callers that need no cancellation reasons.
    pub async fn transact(&self, writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>) -> Result<(), StoreError> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Writes `item` unless an item with its key exists. `Ok(false)` means it was already
    /// there: the conditional write is the de-duplication.
    pub async fn put_once(&self, item: items::Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}
