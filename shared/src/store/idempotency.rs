//! The store side of [`crate::domain::idempotency`]: the record's item, read with the route's first
//! read and written in the route's transaction (label `idempotency`).

use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::keys::{IDEMPOTENCY_SK, idempotency_pk};
use super::{Store, StoreError, Tx};
use crate::domain::idempotency::{IdempotencyKey, StoredResponse, TTL};

pub(crate) fn record_key(key: &IdempotencyKey) -> Item {
    items::key(idempotency_pk(&key.user, &key.key), IDEMPOTENCY_SK)
}

pub(crate) fn read_record(item: &Item) -> Result<StoredResponse, StoreError> {
    Ok(StoredResponse {
        request_hash: items::opt_str(item, "request_hash").unwrap_or_default().to_owned(),
        status: items::get_u64(item, "response_status")? as u16,
        body: items::get_str(item, "response_body")?.to_owned(),
        expires_at: items::get_u64(item, super::TTL_ATTRIBUTE).ok(),
    })
}

impl Tx {
    /// The record of `key`'s first response; fails as `idempotency` when another request
    /// with the key got there first. An expired record is replaced: it no longer counts
    /// ([`IdempotencyKey::replay`] ignores it), so it must not block the new first response.
    pub fn idempotency(&mut self, key: &IdempotencyKey, first: &StoredResponse, now: DateTime<Utc>) -> &mut Self {
        let mut item = record_key(key);
        item.insert("entity".into(), items::s("idempotency"));
        item.insert("request_hash".into(), items::s(&first.request_hash));
        item.insert("response_status".into(), items::n(first.status));
        item.insert("response_body".into(), items::s(&first.body));
        item.insert("created_at".into(), items::time(now));
        item.insert(
            super::TTL_ATTRIBUTE.into(),
            items::n(first.expires_at.unwrap_or_else(|| (now + TTL).timestamp().max(0) as u64)),
        );
        self.put_new_or_expired("idempotency", item, now)
    }
}

impl Store {
    /// The record of `key`, if any (one consistent GetItem).
    pub async fn idempotency_record(&self, key: &IdempotencyKey) -> Result<Option<StoredResponse>, StoreError> {
        self.get(record_key(key)).await?.as_ref().map(read_record).transpose()
    }

    /// The idempotency record, the caller's wallet and one more item (of another partition),
    /// in one `BatchGetItem`.
    pub(crate) async fn idempotency_record_and_wallet_with(
        &self,
        key: &IdempotencyKey,
        extra: items::Item,
    ) -> Result<(Option<StoredResponse>, Option<crate::domain::wallet::Wallet>, Option<items::Item>), StoreError> {
        let wallet_key = items::key(super::keys::user_pk(&key.user), super::keys::WALLET_SK);
        let extra_pk = items::get_str(&extra, super::PK)?.to_owned();
        let mut found = self.batch_get(vec![record_key(key), wallet_key, extra]).await?;
        let record = found.get(&idempotency_pk(&key.user, &key.key)).map(read_record).transpose()?;
        let wallet =
            found.get(&super::keys::user_pk(&key.user)).map(super::wallet::read_open_wallet).transpose()?.flatten();
        Ok((record, wallet, found.remove(&extra_pk)))
    }
}
