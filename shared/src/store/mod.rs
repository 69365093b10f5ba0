//! The DynamoDB store: one table, designed from its access patterns. This module is the only
//! code that talks to DynamoDB: its client is private, every key is built in [`keys`], and
//! every multi-item write is one labelled transaction ([`tx`]).
//!
//! # Keys
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | user | `USER#{sub}` | `PROFILE` | role, names, phone, profile status; gender, city, state, `birth` (JSON: the details as given); a deleted account's tombstone keeps only id, role, `profile_status = deleted`, `deleted_at` (see [`people`]) |
//! | wallet | `USER#{sub}` | `WALLET` | real and bonus cash as Numbers, lifetime totals, `version`; `closed_at` once its account is deleted (no hold or top-up after) |
//! | astrologer profile | `USER#{sub}` | `ASTROLOGER` | KYC and verification status |
//! | phone claim | `PHONE#{e164}` | `PHONE` | makes a phone number unique |
//! | ledger entry | `LEDGER#{sub}` | `TXN#{wallet version:012}#{n:02}` | deltas and balances after (Numbers), in posting order |
//! | platform loss entry | `PLATFORM#RECHARGE_LOSSES` | `{sub}#TXN#{wallet version:012}#{n:02}` | the wallet entry's `debt_delta`: a loss when a reversal leaves the wallet owing, a recovery when a credit pays it; the sum is every wallet's debt |
//! | notification | `INBOX#{sub}` | `NOTIF#{occurred_at}#{event id}` | written once per event and recipient |
//! | inbox counter | `INBOX#{sub}` | `UNREAD` | unread count and read-all watermark (see [`inbox`]) |
//! | push device | `DEVICES#{sub}` | `DEVICE#{platform}#{token}` | registered token; SNS endpoint ARN once made |
//! | push device set | `DEVICES#{sub}` | `SET` | version every registration conditions on (at most `MAX_DEVICES`; see [`devices`]) |
//! | push token owner | `DEVICETOKEN#{platform}#{token}` | `OWNER` | the one user a token belongs to |
//! | KYC request | `KYCREQ#{digio id}` | `KYCREQ` | status; `GSI1PK = KYC_OPEN`, `GSI1SK = expiry` while open |
//! | KYC audit entry | `KYCAUDIT#{sub}` | `{created_at}#{random}` | time-ordered per astrologer, redacted |
//! | webhook event seen | `WEBHOOK#{provider}#{event id}` | `WEBHOOK` | de-duplication, TTL 30 days |
//! | top-up (payment order) | `TOPUP#{id}` | `TOPUP` | status; `offer_id` of a recharge-bonus offer, `offer_bonus` once credited; GSI1 `RZP_ORDER#{razorpay order id}` / `TOPUP`; until credited or given up, GSI2 `TOPUP_OPEN` / created_at |
//! | invoice | `TOPUP#{id}` | `INVOICE` | GSI1 `INVOICES#{fy}` / invoice number |
//! | top-up reversed | `TOPUP#{id}` | `TOPUP` | `reversed_amount`, `reversed_bonus`: what refunds and disputes took back of it |
//! | refund applied | `RZP_REFUND#{refund id}` | `REVERSAL` | created once per Razorpay refund: its share, what it took, what it left owed |
//! | dispute | `RZP_DISPUTE#{dispute id}` | `REVERSAL` | stage rank, whether it holds money, its share, `version` (see [`reversals`]) |
//! | invoice sequence | `COUNTER#INVOICE#{fy}#{series}` | `COUNTER` | `seq`: last number of that series (0 to F) in the financial year |
//! | promotion rule | `PROMO_RULES` | `RULE#{id}` | min, max, percent, first-recharge-only, active |
//! | idempotency record | `IDEMPOTENCY#{sub}#{key}` | `IDEMPOTENCY` | request hash, first response, TTL 24h |
//! | outbox event | `OUTBOX#{event id}` | `OUTBOX` | the envelope; the stream carries it out; TTL 7 days |
//! | staff audit entry | `STAFFAUDIT#{id}` | `STAFFAUDIT` | who, what, target, why, when; GSI1 `STAFF_AUDIT` / time; created only |
//! | promotion rules' version | `PROMO_RULES` | `SET` | `version`, bumped by every staff rule creation |
//! | account deletion | `ERASURE#{sub}` | `ERASURE` | started, completed, what became of the money; no personal data (see [`people`]) |
//! | SMS send counter | `SMSLIMIT#PHONE#{sha-256 of e164, 32 hex}` or `SMSLIMIT#IP#{address or IPv6 /64}` | `WINDOW#{window start}` | `sends`; TTL a window after it ends (see [`sms_limits`]) |
//! | offer | `OFFER#{id}` | `OFFER` | the definition (JSON), `active`, counters (taken, reservations, consumptions, releases, free minutes and promotions spent, recharge bonus given); GSI1 `OFFERS` / created_at (see [`offers`]) |
//! | offer reservation | `OFFER#{id}` | `RESERVATION#{booking id}` | `reserved`, then `consumed` or `released`, once, by the closing |
//! | customer progress | `PROGRESS#{sub}` | `PROGRESS` | consultations, recharges, spend, last activity, segment, milestones reached, `taken_{offer id}` per offer, `version` |
//! | progress event counted | `PROGRESS#{sub}` | `EVENT#{event id}` | de-duplication of the progress consumer, TTL 30 days |
//! | promotions entry | `PLATFORM#PROMOTIONS` | `{booking id}` | what the promotions paid an astrologer for one consultation's free minutes |
//! | segment thresholds | `OFFER_SETTINGS` | `SEGMENTS` | lapsed after days, high-value spend |
//!
//! Only the user, wallet and astrologer items live under `USER#{sub}`, so `GET /me` is a
//! single Query. Put anything else that belongs to a user in a partition of its own.
//! The secondary indexes, as template.yaml's `AppTable` declares them (a test in
//! `infra/src/template.rs` holds this table and the template together):
//!
//! | index | partition key | sort key | projection | what it finds |
//! |---|---|---|---|---|
//! | `GSI1` | `GSI1PK` | `GSI1SK` | all | overloaded: a customer's consultations, open KYC requests by expiry, a top-up by Razorpay order, a year's invoices, promo codes, offers, the staff audit log, an astrologer's public reviews |
//! | `GSI2` | `GSI2PK` | `GSI2SK` | all | overloaded: an astrologer's consultations by time, open top-ups by creation |
//! | `ConsultationsDue` | `DUE_PK` | `DUE_AT` | all | sparse: consultations not started (by start) or in progress (by booked end), for the sweep |
//! | `CatalogueByPrice` | `CATALOGUE` | `CAT_PRICE` | catalogue card | sparse: listed astrologers by rate |
//! | `CatalogueByRating` | `CATALOGUE` | `CAT_RATING` | catalogue card | sparse: listed astrologers by rating |
//! | `CatalogueByExperience` | `CATALOGUE` | `CAT_EXPERIENCE` | catalogue card | sparse: listed astrologers by experience |
//!
//! `expires_at` (epoch seconds) is the TTL attribute for short-lived records. The table's
//! stream (new images) carries `OUTBOX#` inserts to the outbox relay.
//!
//! # Access patterns
//! | route or trigger | calls |
//! |---|---|
//! | post-confirmation | 1 TransactWriteItems: user + phone claim + wallet (+ astrologer) + `UserRegistered`, each `attribute_not_exists`; a claim held by another user: + 1 GetItem (its holder) and, when Cognito no longer gives the holder the number, the transaction again with the claim moved (`user_id = holder`) |
//! | `PATCH /me`, `GET /me/export`, `DELETE /me`, `GET /customers/{id}/birth-details` | see [`people`] |
//! | `GET /offers`, `/admin/offers*`, `PUT /admin/offer-segments`, the progress consumer | see [`offers`] |
//! | `GET /me` | 1 Query on `PK = USER#{sub}`; an account whose setup the trigger left unfinished: + the trigger's TransactWriteItems and 1 Query, once (see `shared::account`) |
//! | `POST /auth/signup`, `/auth/signup/resend`, `/auth/otp` | 2 conditional UpdateItems, concurrently (the number's and the source address's SMS counters: `ADD sends`, condition `sends < limit`) |
//! | notifications consumer | per recipient: 1 TransactWriteItems (the notification, `attribute_not_exists` = de-duplication, + unread count); with push on, 1 Query (devices), per new device 1 UpdateItem (its endpoint), per disabled one 1 TransactWriteItems (it and its owner item) |
//! | `GET /notifications` | 1 Query on `INBOX#{sub}`, newest first (the counter comes first on page one) |
//! | `POST /notifications/{id}/read` | 1 TransactWriteItems (flag + count); +1 GetItem when it was not unread |
//! | `POST /notifications/read-all` | 1 UpdateItem (count 0, arrival watermark now) |
//! | `POST /me/devices` | 1 Query (the caller's devices) and 1 GetItem (the token's owner), concurrently; 1 TransactWriteItems (device, owner, set version, the previous owner's device, devices dropped past the bound); nothing more when already theirs |
//! | `DELETE /me/devices/{token}` | 1 TransactWriteItems (the device, its owner item if the caller's) |
//! | `POST /astrologers/me/kyc` | 1 Query (user + astrologer), 1 conditional UpdateItem (claim), 1 TransactWriteItems (request, astrologer, superseded request, audit) |
//! | `GET /astrologers/me/kyc` | 1 Query |
//! | `POST /webhooks/digio` | 1 GetItem (request), 1 TransactWriteItems (de-dup, request, astrologer, user, audit, `KycStatusChanged`) |
//! | KYC expiry sweep | 1 Query on GSI1 (`KYC_OPEN`, expiry <= now), then per request the webhook's transaction |
//! | `POST /wallet/top-ups` | BatchGetItem (idempotency record + wallet), Query `PROMO_RULES`, TransactWriteItems (top-up + idempotency record) |
//! | `POST /wallet/top-ups/{id}/confirm` | BatchGetItem (top-up + wallet + invoice sequence), TransactWriteItems (the credit); Razorpay is asked between the two |
//! | `POST /webhooks/razorpay` | Query GSI1 `RZP_ORDER#{id}`, BatchGetItem (+ event record), TransactWriteItems; `payment.failed`: Query + conditional UpdateItem |
//! | `POST /webhooks/razorpay` refund or dispute | Query GSI1 `RZP_ORDER#{id}`, BatchGetItem (top-up + wallet + refund or dispute), TransactWriteItems (top-up's reversed share + wallet and ledger + refund or dispute + `WalletReversed`) |
//! | top-up reconciliation (every 5 min) | 1 Query on GSI2 (`TOPUP_OPEN`, created_at <= now - 5 min), then per top-up the webhook's credit (BatchGetItem + TransactWriteItems) or 1 conditional UpdateItem (given up) |
//! | `GET /wallet/top-ups/{id}` | 1 GetItem |
//! | `GET /wallet` | 1 GetItem |
//! | `GET /wallet/transactions` | 1 Query on `LEDGER#{sub}`, newest first, `Limit` + `ExclusiveStartKey` from the cursor |
//! | operations (`/admin/...`) | see [`staff`] |
//!
//! The credit transaction ([`topups`]) is what makes a payment credit exactly once; a credit
//! that loses a race on the wallet version or the invoice sequence reads again and retries
//! (each retry: 1 BatchGetItem + 1 TransactWriteItems). Every wallet change goes through
//! [`wallet`]: the wallet update conditioned on its version plus the ledger entries.
//! Every read-decide-write loop that meets a race reads and decides again through
//! [`retry::on_conflict`] (its module doc says what counts as a conflict).
//!
//! Reviews (`REVIEW#{booking id}`, public ones listed through GSI1 `ASTROREVIEWS#{astrologer}`)
//! and the rating aggregate's de-duplication (`RATING_COUNTED#{booking id}`): keys and calls
//! in [`reviews`].

mod astrologers;
pub mod consultations;
mod devices;
pub mod idempotency;
mod inbox;
pub(crate) mod items;
pub mod keys;
mod kyc;
pub mod offers;
pub mod outbox;
pub mod people;
pub mod retry;
pub mod reversals;
pub mod reviews;
pub mod sessions;
mod sms_limits;
pub mod staff;
pub mod topups;
pub mod tx;
mod users;
pub mod wallet;
mod webhooks;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::KeysAndAttributes;

pub use astrologers::{CatalogueCursor, CataloguePage};
pub use devices::{DeviceRecord, DeviceRegistration};
pub use inbox::{InboxPage, MarkRead, StoredNotification};
pub use keys::{PK, SK};
pub use kyc::{Applied, AstrologerKyc, KycAuditEntry, KycEvent, KycRequestRecord, StartedRequest};
pub use tx::{Cancelled, Tx, TxError};
pub use users::{AstrologerSummary, NewUser, Registered, UserLookup, UserOverview, UserRecord, WalletSummary};
pub use wallet::Account;

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

/// DynamoDB refuses a partition key longer than 2,048 bytes and a sort key longer than 1,024,
/// in the table and in its indexes; moto does not. The store refuses them the same way before
/// sending, so a test against moto sees the 500 production would: every identifier from
/// outside must be bounded before it reaches a key.
fn check_key_sizes(item: &items::Item) -> Result<(), StoreError> {
    // And an item over 400 KB (roughly as DynamoDB counts: names and values).
    let size: usize = item.iter().map(|(name, value)| name.len() + attribute_size(value)).sum();
    if size > 400 * 1024 {
        return Err(StoreError::Other(format!("item size {size} exceeds DynamoDB's 400 KB")));
    }
    for (name, value) in item {
        let limit = match name.as_str() {
            "PK" | "GSI1PK" | "GSI2PK" | "GSI3PK" => 2048,
            "SK" | "GSI1SK" | "GSI2SK" | "GSI3SK" => 1024,
            _ => continue,
        };
        if let Ok(text) = value.as_s()
            && text.len() > limit
        {
            return Err(StoreError::Other(format!("size of {name} exceeds DynamoDB's {limit} bytes")));
        }
    }
    Ok(())
}

fn attribute_size(value: &aws_sdk_dynamodb::types::AttributeValue) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) | A::N(s) => s.len(),
        A::B(b) => b.as_ref().len(),
        A::L(list) => list.iter().map(attribute_size).sum(),
        A::M(map) => map.iter().map(|(k, v)| k.len() + attribute_size(v)).sum(),
        A::Ss(set) | A::Ns(set) => set.iter().map(String::len).sum(),
        _ => 1,
    }
}

/// The table and the client for it; built once per cold start.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
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

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// One strongly consistent GetItem.
    async fn get(&self, key: items::Item) -> Result<Option<items::Item>, StoreError> {
        check_key_sizes(&key)?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(output.item)
    }

    /// One consistent `BatchGetItem` of `keys`; the items found, by `PK` (for keys whose
    /// partitions differ).
    async fn batch_get(
        &self,
        keys: Vec<items::Item>,
    ) -> Result<std::collections::HashMap<String, items::Item>, StoreError> {
        by_pk(self.batch_get_all(keys).await?)
    }

    /// One consistent `BatchGetItem` of `keys`; the items found, in no particular order.
    async fn batch_get_all(&self, keys: Vec<items::Item>) -> Result<Vec<items::Item>, StoreError> {
        keys.iter().try_for_each(check_key_sizes)?;
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        if output.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable("BatchGetItem left keys unprocessed".into()));
        }
        Ok(output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default())
    }

    /// Every item of an index partition whose sort key is at most `upto` (all pages): the
    /// sweeps' "what is due by now". Indexes are eventually consistent, so callers re-check
    /// in the condition of whatever they write.
    async fn index_items_upto(
        &self,
        index: &str,
        (pk_attr, pk): (&str, &str),
        (sk_attr, upto): (&str, String),
    ) -> Result<Vec<items::Item>, StoreError> {
        let key = format!("{pk_attr} = :pk AND {sk_attr} <= :upto");
        self.index_items(index, &key, None, vec![(":pk", items::s(pk)), (":upto", items::s(upto))]).await
    }

    /// Every item of an index that `key_condition` (and `filter`, if any) selects, all
    /// pages (placeholders as in [`Tx::update`]).
    async fn index_items(
        &self,
        index: &str,
        key_condition: &str,
        filter: Option<&str>,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<Vec<items::Item>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(key_condition)
            .set_filter_expression(filter.map(str::to_owned));
        for name in tx::placeholder_names(&[key_condition, filter.unwrap_or_default()]) {
            request = request.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            request = request.expression_attribute_values(k, v);
        }
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = request.clone().set_exclusive_start_key(start).send().await.map_err(StoreError::from_sdk)?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// One conditional UpdateItem (placeholders as in [`Tx::update`]). `Ok(false)`: the
    /// condition did not hold and nothing changed.
    async fn update_if(
        &self,
        key: items::Item,
        expression: &str,
        condition: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition);
        for name in tx::placeholder_names(&[expression, condition]) {
            request = request.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            request = request.expression_attribute_values(k, v);
        }
        match request.send().await.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `item`, replacing any item with its key (one PutItem): for items only their
    /// owner writes, whole (a connection, saved replies).
    async fn put(&self, item: items::Item) -> Result<(), StoreError> {
        check_key_sizes(&item)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Writes `item` unless an item with its key exists. `Ok(false)` means it was already
    /// there: the conditional write is the de-duplication.
    async fn put_once(&self, item: items::Item) -> Result<bool, StoreError> {
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

/// `items` by their `PK` (for items whose partitions differ).
fn by_pk(items: Vec<items::Item>) -> Result<std::collections::HashMap<String, items::Item>, StoreError> {
    items.into_iter().map(|item| Ok((items::get_str(&item, PK)?.to_owned(), item))).collect()
}
