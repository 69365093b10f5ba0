//! People's own data (issue 31): profile edits, who reads birth details, the export, and the
//! erasure of a deleted account.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | profile details | `USER#{sub}` | `PROFILE` | `gender`, `city`, `state`, `birth` (JSON text: details and the chart computed from them) on the user item |
//! | deleted user | `USER#{sub}` | `PROFILE` | what is left: id, role, `profile_status = deleted`, `deleted_at`; no phone, names, email or birth details |
//! | account deletion | `ERASURE#{sub}` | `ERASURE` | the deletion's progress and what it did with the money (no personal data): the audit entry, and what a retry resumes from |
//!
//! | profile picture | `USER#{sub}` | `PROFILE` and `ASTROLOGER` | `picture_key`, the object's key in the images bucket (`pictures/{sub}/...`); on the astrologer item too, for the catalogue |
//!
//! | route | calls |
//! |---|---|
//! | `PATCH /me` | 1 UpdateItem (conditioned on a live user) |
//! | `PUT /me/picture`, `DELETE /me/picture` | 1 Query (`GET /me`'s), 1 TransactWriteItems (user, and astrologer, items) conditioned on the key read, 1 Query (the answer, as `GET /me`) |
//! | `GET /customers/{id}/birth-details?consultation=` | 1 BatchGetItem (consultation + customer) |
//! | `GET /me/export` | 1 Query per partition the user owns, all pages; the top-ups their ledger names, BatchGetItem by 100 |
//! | `DELETE /me` | see `crate::app::erasure` |

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::items::{self, Item, get_str, opt_str};
use super::keys::{
    ASTROLOGER_SK, CONSULTATION_SK, DEVICE_OWNER_SK, PHONE_SK, PK, PROFILE_SK, REVIEW_SK, SK, TOPUP_SK, chat_pk,
    consultation_pk, device_owner_pk, devices_pk, inbox_pk, ledger_pk, phone_pk, review_pk, topup_pk, user_pk,
};
use super::{Store, StoreError, TxError};
use crate::domain::booking::Consultation;
use crate::domain::image::PictureKey;
use crate::domain::phone::Phone;
use crate::domain::profile::{BirthDetails, BirthInput, DELETED_USER_NAME, ValidEdit};
use crate::domain::user::UserId;

pub fn erasure_pk(user: &UserId) -> String {
    format!("ERASURE#{user}")
}
pub const ERASURE_SK: &str = "ERASURE";

/// A customer as their astrologer (or staff) reads them: first name and birth details.
#[derive(Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomerForReading {
    pub customer_id: UserId,
    pub first_name: String,
    /// Absent until the customer gives them.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub birth: Option<BirthDetails>,
}

/// The stored details, with their chart computed again.
pub(crate) fn read_birth(item: &Item) -> Result<Option<BirthDetails>, StoreError> {
    let corrupt = || StoreError::Corrupt("user: birth".into());
    opt_str(item, "birth")
        .map(|text| serde_json::from_str::<BirthInput>(text).map_err(|_| corrupt())?.validate().map_err(|_| corrupt()))
        .transpose()
}

fn read_for_reading(item: &Item) -> Result<Option<CustomerForReading>, StoreError> {
    if item.contains_key("deleted_at") {
        return Ok(None);
    }
    Ok(Some(CustomerForReading {
        customer_id: UserId::parse(get_str(item, "user_id")?).map_err(|_| StoreError::Corrupt("user_id".into()))?,
        first_name: get_str(item, "first_name")?.to_owned(),
        birth: read_birth(item)?,
    }))
}

/// Where a deletion stands (its `ERASURE#` item).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureRecord {
    pub user_id: UserId,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub started_at: String,
    /// Set once everything is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub completed_at: Option<String>,
    /// Every refund the deletion asked Razorpay for, recorded as soon as Razorpay made it.
    pub refunds: Vec<RefundMade>,
    /// What was done with the rest of the money, as `crate::app::erasure` states it (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub money: Option<Value>,
}

/// A refund a deletion made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefundMade {
    pub refund_id: String,
    pub top_up_id: String,
    pub amount: crate::domain::money::Money,
}

impl Store {
    /// Applies a checked profile edit to a live user's item. `Ok(false)`: no such user, or
    /// one deleted.
    pub async fn update_profile(
        &self,
        user: &UserId,
        edit: &ValidEdit,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut sets = vec!["updated_at = :now".to_owned()];
        let mut values = vec![(":now", items::time(now))];
        let mut add = |name: &'static str, placeholder: &'static str, value: Option<AttributeValue>| {
            if let Some(value) = value {
                sets.push(format!("{name} = {placeholder}"));
                values.push((placeholder, value));
            }
        };
        add("#first_name", ":first", edit.first_name.as_ref().map(|n| items::s(n.as_str())));
        add("#last_name", ":last", edit.last_name.as_ref().map(|n| items::s(n.as_str())));
        add("#gender", ":gender", edit.gender.map(|g| items::s(g.as_str())));
        add("pending_email", ":pending_email", edit.email.as_ref().map(|e| items::s(e.as_str())));
        add("#city", ":city", edit.city.as_ref().map(|c| items::s(c.as_str())));
        add("#state", ":state", edit.state.as_ref().map(|s| items::s(s.as_str())));
        let birth = edit.birth.as_ref().map(|b| serde_json::to_string(&b.input()).map(items::s)).transpose();
        add("birth", ":birth", birth.map_err(|e| StoreError::Other(e.to_string()))?);
        self.update_if(
            items::key(user_pk(user), PROFILE_SK),
            &format!("SET {}", sets.join(", ")),
            "attribute_exists(PK) AND attribute_not_exists(deleted_at)",
            values,
        )
        .await
    }

    /// The pending email, verified: it becomes the account's email. `Ok(false)`: none was
    /// pending (or the account is gone).
    pub async fn confirm_email(&self, user: &UserId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.update_if(
            items::key(user_pk(user), PROFILE_SK),
            "SET email = pending_email, email_verified = :yes, updated_at = :now REMOVE pending_email",
            "attribute_exists(pending_email) AND attribute_not_exists(deleted_at)",
            vec![(":yes", AttributeValue::Bool(true)), (":now", items::time(now))],
        )
        .await
    }

    /// Sets the user's profile picture (`None`: removes it) on their user item and, for an
    /// astrologer, on their astrologer item, which the catalogue reads (1 TransactWriteItems).
    /// Conditioned on the key read before (`previous`), so the picture a racing call replaced
    /// is the one the caller deletes from the bucket, and on no deletion having started (its
    /// clean-up lists the user's pictures once). `Ok(false)`: either moved, or no such user.
    pub async fn set_picture(
        &self,
        user: &UserId,
        astrologer: bool,
        previous: Option<&PictureKey>,
        key: Option<&PictureKey>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (user_change, astrologer_change) = match key {
            Some(_) => ("SET picture_key = :key, updated_at = :now", "SET picture_key = :key"),
            None => ("REMOVE picture_key SET updated_at = :now", "REMOVE picture_key"),
        };
        let key_value: Vec<_> = key.map(|k| (":key", items::s(k.as_str()))).into_iter().collect();
        let mut values = key_value.clone();
        values.push((":now", items::time(now)));
        let held = match previous {
            Some(previous) => {
                values.push((":previous", items::s(previous.as_str())));
                "picture_key = :previous"
            }
            None => "attribute_not_exists(picture_key)",
        };
        let mut tx = self.tx();
        tx.update(
            "user",
            items::key(user_pk(user), PROFILE_SK),
            user_change,
            &format!(
                "attribute_exists(PK) AND attribute_not_exists(deleted_at) \
                 AND attribute_not_exists(deletion_started_at) AND {held}"
            ),
            values,
        );
        if astrologer {
            let key = items::key(user_pk(user), ASTROLOGER_SK);
            tx.update("astrologer", key, astrologer_change, "attribute_exists(PK)", key_value);
        }
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// The consultation and its would-be customer, read together (1 BatchGetItem): the
    /// caller decides whether the astrologer may read them.
    pub async fn consultation_and_customer(
        &self,
        booking_id: &str,
        customer: &UserId,
    ) -> Result<(Option<Consultation>, Option<CustomerForReading>), StoreError> {
        let found = self
            .batch_get(vec![
                items::key(consultation_pk(booking_id), CONSULTATION_SK),
                items::key(user_pk(customer), PROFILE_SK),
            ])
            .await?;
        let consultation =
            found.get(&consultation_pk(booking_id)).map(super::consultations::read_consultation).transpose()?;
        let customer = found.get(&user_pk(customer)).map(read_for_reading).transpose()?.flatten();
        Ok((consultation, customer))
    }

    /// A customer's first name and birth details (1 GetItem), for staff.
    pub async fn customer_for_reading(&self, customer: &UserId) -> Result<Option<CustomerForReading>, StoreError> {
        match self.get(items::key(user_pk(customer), PROFILE_SK)).await? {
            Some(item) if item.get("user_type").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("user") => {
                read_for_reading(&item)
            }
            _ => Ok(None),
        }
    }

    // ------------------------------------------------------------------ export

    /// Every item of the table's partition `pk`, all pages, oldest sort key first.
    async fn partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(pk))
            .consistent_read(true);
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

    /// Everything held about `user`, item by item as JSON (keys and index attributes left
    /// out): their user partition, ledger (and earnings ledger), top-ups and invoices,
    /// consultations as customer and as astrologer with their chat, reviews, notifications,
    /// devices, KYC audit and a deletion's record. `max_items` bounds the work: beyond it the
    /// export is refused rather than cut short.
    pub async fn export(&self, user: &UserId, max_items: usize) -> Result<Option<Map<String, Value>>, StoreError> {
        let mut out = Map::new();
        let profile = self.partition(&user_pk(user)).await?;
        if profile.is_empty() {
            return Ok(None);
        }
        let mut count = 0usize;
        let mut counted = |n: usize| {
            count += n;
            if count > max_items {
                return Err(StoreError::Other(format!("export of more than {max_items} items")));
            }
            Ok(())
        };
        let section = |out: &mut Map<String, Value>,
                       name: &str,
                       found: Vec<Item>,
                       counted: &mut dyn FnMut(usize) -> Result<(), StoreError>| {
            counted(found.len())?;
            out.insert(name.to_owned(), Value::Array(found.iter().map(item_json).collect()));
            Ok::<(), StoreError>(())
        };
        let ledger = self.partition(&ledger_pk(user)).await?;
        let topup_ids: Vec<String> = ledger
            .iter()
            .filter(|e| opt_str(e, "reference_type") == Some("top_up"))
            .filter_map(|e| opt_str(e, "reference_id").map(str::to_owned))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        section(&mut out, "account", profile, &mut counted)?;
        section(&mut out, "ledger", ledger, &mut counted)?;
        section(
            &mut out,
            "earnings_ledger",
            self.partition(&super::keys::earnings_ledger_pk(user)).await?,
            &mut counted,
        )?;
        let mut topups = Vec::new();
        for chunk in topup_ids.chunks(50) {
            let keys = chunk
                .iter()
                .flat_map(|id| [items::key(topup_pk(id), TOPUP_SK), items::key(topup_pk(id), super::keys::INVOICE_SK)])
                .collect();
            topups.extend(self.batch_get_all(keys).await?);
        }
        section(&mut out, "top_ups", topups, &mut counted)?;
        let mut consultations = Vec::new();
        for as_astrologer in [false, true] {
            let mut after = None;
            loop {
                let (page, next) = self.consultations_of(user, as_astrologer, None, 100, after.as_deref()).await?;
                consultations.extend(page);
                if next.is_none() {
                    break;
                }
                after = next;
            }
        }
        let mut chats = Vec::new();
        let mut reviews = Vec::new();
        for c in &consultations {
            chats.extend(self.partition(&chat_pk(c.booking_id.as_str())).await?);
        }
        for chunk in consultations.chunks(100) {
            let keys = chunk.iter().map(|c| items::key(review_pk(c.booking_id.as_str()), REVIEW_SK)).collect();
            reviews.extend(self.batch_get_all(keys).await?);
        }
        counted(consultations.len())?;
        out.insert(
            "consultations".into(),
            serde_json::to_value(&consultations).map_err(|e| StoreError::Other(e.to_string()))?,
        );
        section(&mut out, "chat_messages", chats, &mut counted)?;
        section(&mut out, "reviews", reviews, &mut counted)?;
        section(&mut out, "notifications", self.partition(&inbox_pk(user)).await?, &mut counted)?;
        section(&mut out, "devices", self.partition(&devices_pk(user)).await?, &mut counted)?;
        section(&mut out, "kyc_audit", self.partition(&super::keys::kyc_audit_pk(user)).await?, &mut counted)?;
        section(&mut out, "account_deletion", self.partition(&erasure_pk(user)).await?, &mut counted)?;
        section(&mut out, "offer_progress", self.partition(&super::keys::progress_pk(user)).await?, &mut counted)?;
        Ok(Some(out))
    }

    // ------------------------------------------------------------------ erasure

    pub async fn erasure(&self, user: &UserId) -> Result<Option<ErasureRecord>, StoreError> {
        self.get(items::key(erasure_pk(user), ERASURE_SK)).await?.as_ref().map(read_erasure).transpose()
    }

    /// Starts a deletion once: its record, and the mark on the user item (which `PATCH /me`
    /// and the money routes refuse from then on). A deletion already started is returned.
    pub async fn start_erasure(&self, user: &UserId, now: DateTime<Utc>) -> Result<ErasureRecord, StoreError> {
        let mut record = items::key(erasure_pk(user), ERASURE_SK);
        record.insert("entity".into(), items::s("account_deletion"));
        record.insert("user_id".into(), items::s(user.as_str()));
        record.insert("started_at".into(), items::time(now));
        record.insert("refunds".into(), AttributeValue::M(Default::default()));
        let mut tx = self.tx();
        tx.put_new("erasure", record);
        tx.update(
            "user",
            items::key(user_pk(user), PROFILE_SK),
            "SET deletion_started_at = :now",
            "attribute_exists(PK)",
            vec![(":now", items::time(now))],
        );
        match self.commit(tx).await {
            Ok(()) | Err(TxError::Cancelled(_)) => {}
            Err(TxError::Store(e)) => return Err(e),
        }
        self.erasure(user).await?.ok_or_else(|| StoreError::ConditionFailed("no such user".into()))
    }

    /// Holds the deletion for this call until `until` (a conditional UpdateItem): a second
    /// call meanwhile (a double tap) must not ask Razorpay for the same refund again. A call
    /// that died leaves the lease to lapse. `Ok(false)`: another call holds it.
    pub async fn lease_erasure(
        &self,
        user: &UserId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.update_if(
            items::key(erasure_pk(user), ERASURE_SK),
            "SET lease_until = :until",
            "attribute_exists(PK) AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            vec![(":until", items::time(until)), (":now", items::time(now))],
        )
        .await
    }

    /// Lets the deletion go (done).
    pub async fn end_erasure_lease(&self, user: &UserId) -> Result<(), StoreError> {
        self.update_if(items::key(erasure_pk(user), ERASURE_SK), "REMOVE lease_until", "attribute_exists(PK)", vec![])
            .await?;
        Ok(())
    }

    /// Records a refund as soon as Razorpay made it (once per refund id).
    pub async fn record_erasure_refund(&self, user: &UserId, refund: &RefundMade) -> Result<(), StoreError> {
        let entry = AttributeValue::M(
            [("top_up_id".to_owned(), items::s(&refund.top_up_id)), ("amount".to_owned(), items::money(refund.amount))]
                .into(),
        );
        // `refunds.#refund_id`: the id is Razorpay's `rfnd_...` (checked by `refund_request`).
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::key(erasure_pk(user), ERASURE_SK)))
            .update_expression("SET refunds.#id = :entry")
            .condition_expression("attribute_exists(refunds)")
            .expression_attribute_names("#id", &refund.refund_id)
            .expression_attribute_values(":entry", entry)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Records what the deletion did with the money (once; a retry keeps the first).
    pub async fn record_erasure_money(&self, user: &UserId, money: &Value) -> Result<(), StoreError> {
        self.update_if(
            items::key(erasure_pk(user), ERASURE_SK),
            "SET #money = :money",
            "attribute_exists(PK) AND attribute_not_exists(#money)",
            vec![(":money", items::s(money.to_string()))],
        )
        .await?;
        Ok(())
    }

    /// The chat messages `user` sent in `consultation` and not yet erased.
    async fn sent_messages(&self, user: &UserId, consultation: &Consultation) -> Result<Vec<Item>, StoreError> {
        let messages = self.partition(&chat_pk(consultation.booking_id.as_str())).await?;
        Ok(messages
            .into_iter()
            .filter(|m| opt_str(m, "sender_id") == Some(user.as_str()) && !m.contains_key("erased_at"))
            .collect())
    }

    /// The keys of the chat images `user` sent in `consultations` that their messages still
    /// name: what a deletion removes from the bucket before [`Store::erase_personal_data`]
    /// forgets the keys (1 Query per consultation, all pages).
    pub async fn sent_image_keys(
        &self,
        user: &UserId,
        consultations: &[Consultation],
    ) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for c in consultations {
            for message in self.sent_messages(user, c).await? {
                keys.extend(opt_str(&message, "image_key").map(str::to_owned));
            }
        }
        Ok(keys)
    }

    /// Erases the personal data of `user`, in this order so a fault part-way is finished by
    /// the next attempt: chat text and images' keys they sent, the questions they asked, the
    /// name on their reviews and (an astrologer's) on their consultations, devices, inbox,
    /// connections and saved replies; then, all at once, the user item becomes a tombstone
    /// (without the picture's key, as without every other attribute but id, role and
    /// status), the phone claim goes (so the number can sign up afresh) and an astrologer's
    /// profile is unlisted and emptied (its picture's key too). The objects those keys name
    /// are the caller's to delete first (`crate::app::erasure`).
    pub async fn erase_personal_data(
        &self,
        user: &UserId,
        consultations: &[Consultation],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for c in consultations {
            let id = c.booking_id.as_str();
            for message in self.sent_messages(user, c).await? {
                let key = items::key(get_str(&message, PK)?, get_str(&message, SK)?);
                self.update_if(
                    key,
                    "REMOVE #text, image_key SET erased_at = :now",
                    "attribute_exists(PK)",
                    vec![(":now", items::time(now))],
                )
                .await?;
            }
            if &c.customer_id == user {
                self.update_if(
                    items::key(consultation_pk(id), CONSULTATION_SK),
                    "REMOVE question",
                    "attribute_exists(PK)",
                    vec![],
                )
                .await?;
                self.update_if(
                    items::key(review_pk(id), REVIEW_SK),
                    "SET reviewer_first_name = :name",
                    "attribute_exists(PK)",
                    vec![(":name", items::s(DELETED_USER_NAME))],
                )
                .await?;
            } else {
                self.update_if(
                    items::key(consultation_pk(id), CONSULTATION_SK),
                    "SET astrologer_name = :name",
                    "attribute_exists(PK)",
                    vec![(":name", items::s(DELETED_ASTROLOGER_NAME))],
                )
                .await?;
            }
        }
        // Devices: the token's owner item goes too when it is still theirs.
        for device in self.partition(&devices_pk(user)).await? {
            if let Some(rest) = get_str(&device, SK)?.strip_prefix(super::keys::DEVICE_SK_PREFIX)
                && let Some((platform, token)) = rest.split_once('#')
            {
                self.delete_if(
                    items::key(device_owner_pk(platform, token), DEVICE_OWNER_SK),
                    "user_id = :id",
                    vec![(":id", items::s(user.as_str()))],
                )
                .await?;
            }
        }
        // The sign-up's event carries the first name (its TTL is days; it was delivered long ago).
        let registered = super::keys::outbox_pk(&crate::domain::events::UserRegistered::event_id(user));
        self.delete_all(vec![items::key(registered, super::keys::OUTBOX_SK)]).await?;
        for pk in [
            devices_pk(user),
            inbox_pk(user),
            super::keys::connections_pk(user),
            super::keys::saved_replies_pk(user),
            super::keys::progress_pk(user),
        ] {
            let keys: Vec<Item> = self
                .partition(&pk)
                .await?
                .iter()
                .map(|i| Ok(items::key(get_str(i, PK)?, get_str(i, SK)?)))
                .collect::<Result<_, StoreError>>()?;
            self.delete_all(keys).await?;
        }

        // The identity itself, all at once.
        let account = self.user_partition(user).await?;
        let Some(profile) = account.iter().find(|i| opt_str(i, SK) == Some(PROFILE_SK)) else {
            return Ok(());
        };
        if profile.contains_key("deleted_at") {
            return Ok(());
        }
        let mut tombstone = items::key(user_pk(user), PROFILE_SK);
        for keep in ["entity", "user_id", "user_type", "created_at"] {
            if let Some(v) = profile.get(keep) {
                tombstone.insert(keep.into(), v.clone());
            }
        }
        tombstone.insert("profile_status".into(), items::s("deleted"));
        tombstone.insert("deleted_at".into(), items::time(now));
        let mut tx = self.tx();
        tx.put_if("user", tombstone, "user_id = :id", vec![(":id", items::s(user.as_str()))]);
        if let Some(phone) = opt_str(profile, "phone_number").and_then(|p| Phone::parse(p).ok()) {
            tx.delete(
                "phone",
                items::key(phone_pk(&phone), PHONE_SK),
                Some("user_id = :id"),
                vec![(":id", items::s(user.as_str()))],
            );
        }
        if let Some(astrologer) = account.iter().find(|i| opt_str(i, SK) == Some(ASTROLOGER_SK)) {
            let mut emptied = items::key(user_pk(user), ASTROLOGER_SK);
            for keep in ["entity", "user_id", "kyc_status", "verification_status", "kyc_attempts", "created_at"] {
                if let Some(v) = astrologer.get(keep) {
                    emptied.insert(keep.into(), v.clone());
                }
            }
            emptied.insert("display_name".into(), items::s(DELETED_ASTROLOGER_NAME));
            emptied.insert("deleted_at".into(), items::time(now));
            tx.put_if("astrologer", emptied, "attribute_exists(PK)", vec![]);
        }
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            // The phone claim moved on (a stale claim taken by a new sign-up): erase without it.
            Err(TxError::Cancelled(c)) if c.failed("phone") => {
                Err(StoreError::ConditionFailed("phone claim changed during deletion; retry".into()))
            }
            Err(TxError::Cancelled(c)) => {
                Err(StoreError::ConditionFailed(format!("erasure: {:?}", c.condition_failed)))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Closes the wallet of a deleted account: no hold or top-up from now on. The version
    /// moves, so a booking that read the wallet open a moment ago fails its condition and
    /// reads it closed. Once only.
    pub async fn close_wallet(&self, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_if(
            items::key(user_pk(user), super::keys::WALLET_SK),
            "SET closed_at = :now, version = version + :one",
            "attribute_exists(PK) AND attribute_not_exists(closed_at)",
            vec![(":now", items::time(now)), (":one", items::n(1))],
        )
        .await?;
        Ok(())
    }

    /// Posts `posting` to `account` alone. `Ok(false)`: the account moved since it was read.
    pub async fn post(
        &self,
        account: &super::Account,
        posting: &crate::domain::wallet::Posting,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.posting(account, posting);
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// The top-ups credited to `user`'s wallet, as its ledger names them (all pages).
    pub async fn credited_top_ups(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = Vec::new();
        for entry in self.partition(&ledger_pk(user)).await? {
            if opt_str(&entry, "type") == Some("top_up")
                && let Some(id) = opt_str(&entry, "reference_id")
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }

    /// Marks the deletion done.
    pub async fn complete_erasure(&self, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_if(
            items::key(erasure_pk(user), ERASURE_SK),
            "SET completed_at = if_not_exists(completed_at, :now)",
            "attribute_exists(PK)",
            vec![(":now", items::time(now))],
        )
        .await?;
        Ok(())
    }

    async fn delete_if(
        &self,
        key: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tx();
        tx.delete("item", key, Some(condition), values);
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(_)) => Ok(false),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Deletes `keys` (BatchWriteItem, 25 at a time, unprocessed ones sent again).
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    WriteRequest::builder()
                        .delete_request(DeleteRequest::builder().set_key(Some(k.clone())).build().expect("key is set"))
                        .build()
                })
                .collect();
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                pending = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable("BatchWriteItem left deletes unprocessed".into()));
            }
        }
        Ok(())
    }
}

/// What a deleted astrologer's consultations and profile show.
pub const DELETED_ASTROLOGER_NAME: &str = "Deleted astrologer";

fn read_erasure(item: &Item) -> Result<ErasureRecord, StoreError> {
    Ok(ErasureRecord {
        user_id: UserId::parse(get_str(item, "user_id")?).map_err(|_| StoreError::Corrupt("erasure user_id".into()))?,
        started_at: get_str(item, "started_at")?.to_owned(),
        completed_at: opt_str(item, "completed_at").map(str::to_owned),
        refunds: read_refunds(item)?,
        money: opt_str(item, "money").and_then(|m| serde_json::from_str(m).ok()),
    })
}

fn read_refunds(item: &Item) -> Result<Vec<RefundMade>, StoreError> {
    let Some(AttributeValue::M(refunds)) = item.get("refunds") else { return Ok(Vec::new()) };
    let mut out: Vec<RefundMade> = refunds
        .iter()
        .map(|(id, entry)| {
            let entry = entry.as_m().map_err(|_| StoreError::Corrupt("erasure refund".into()))?;
            Ok(RefundMade {
                refund_id: id.clone(),
                top_up_id: get_str(entry, "top_up_id")?.to_owned(),
                amount: items::get_money(entry, "amount")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    out.sort_by(|a, b| a.refund_id.cmp(&b.refund_id));
    Ok(out)
}

/// An item as the export shows it: every attribute but the keys and index attributes,
/// Numbers as their decimal text (money stays exact), maps and lists as JSON.
fn item_json(item: &Item) -> Value {
    let hidden = |name: &str| {
        matches!(name, "PK" | "SK" | "DUE_PK" | "DUE_AT")
            || name.starts_with("GSI")
            || name.starts_with("CAT_")
            || name == "CATALOGUE"
    };
    let mut sorted: Vec<(&String, &AttributeValue)> = item.iter().filter(|(k, _)| !hidden(k)).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => Value::String(s.clone()),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(list) => Value::Array(list.iter().map(attribute_json).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<_, _>>())
        }
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => set.iter().cloned().map(Value::String).collect(),
        _ => Value::Null,
    }
}
