//! In-app notifications: one item per event and recipient, keyed by the event, so a
//! redelivered event finds its notification already there; and, in the same partition, one
//! counter item (`SK = UNREAD`, which sorts after every `NOTIF#` key) holding the unread
//! count and the read-all watermark.
//!
//! Why a counter and a watermark: `GET /notifications` reads its page and the count in ONE
//! newest-first Query (the counter comes first), and "read all" is ONE UpdateItem (count to
//! 0, watermark `read_before` to now) however many notifications there are. The watermark is
//! an ARRIVAL time: "read all" covers what had arrived in the inbox when it was pressed, never
//! what arrives later, even for an event that happened before. A notification is read when
//! its `read` flag is set or its arrival (`created_at`) is at or below the watermark. Every
//! change to the count goes in the same transaction as the change to a notification,
//! conditioned on the watermark, so the count is the number of unread notifications:
//! - a new notification: put it + count + 1, unless the watermark already covers its arrival
//!   (only a "read all" from a faster clock can): then it is stored read, uncounted;
//! - mark one read: flag it (if it was unflagged and arrived when the id says) + count - 1,
//!   unless the watermark covers it. The arrival comes with the id (`NotificationId`), so
//!   this is one transaction; the item's own `created_at` is in its condition.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::keys::{INBOX_COUNTER_SK, SK, inbox_pk, notification_sk};
use super::{Store, StoreError, TxError};
use crate::domain::events::Envelope;
use crate::domain::notification::InboxCursor;
use crate::domain::user::UserId;

/// Labels of the two items of an inbox transaction.
const NOTIFICATION: &str = "notification";
const COUNTER: &str = "unread";
/// The counter changes only for notifications whose arrival the watermark does not cover.
const NOT_COVERED: &str = "attribute_not_exists(read_before) OR read_before < :arrived";

/// A notification as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNotification {
    pub sk: String,
    /// When it arrived (`created_at` as stored): part of its id.
    pub arrived: String,
    pub event_type: String,
    pub title: String,
    pub body: String,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// One page of an inbox, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxPage {
    pub notifications: Vec<StoredNotification>,
    pub unread: u64,
    /// The read-all watermark (an arrival time), if "read all" was ever pressed.
    pub read_before: Option<String>,
    /// The sort key to continue after; `None` on the last page.
    pub next_after: Option<String>,
}

/// What marking a notification read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRead {
    Marked,
    AlreadyRead,
    NotFound,
}

fn counter_key(user: &UserId) -> Item {
    items::key(inbox_pk(user), INBOX_COUNTER_SK)
}

impl Store {
    /// Stores the notification `envelope` gives `user` (1 TransactWriteItems: it and the
    /// unread count). `Ok(false)`: it was already there (a redelivery), which is a success.
    pub async fn add_notification(
        &self,
        user: &UserId,
        envelope: &Envelope,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sk = notification_sk(&items::time_text(envelope.occurred_at), &envelope.id);
        let arrived = items::time_text(now);
        let mut item = items::key(inbox_pk(user), &sk);
        item.insert("entity".into(), items::s("notification"));
        item.insert("event_id".into(), items::s(&envelope.id));
        item.insert("event_type".into(), items::s(&envelope.kind));
        item.insert("title".into(), items::s(title));
        item.insert("body".into(), items::s(body));
        item.insert("read".into(), AttributeValue::Bool(false));
        item.insert("created_at".into(), items::s(&arrived));
        let mut tx = self.tx();
        tx.put_new(NOTIFICATION, item.clone()).update(
            COUNTER,
            counter_key(user),
            "ADD unread :one",
            NOT_COVERED,
            vec![(":one", items::n(1)), (":arrived", items::s(&arrived))],
        );
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(c)) if c.failed(NOTIFICATION) => Ok(false),
            // A "read all" stamped later than this arrival (another clock) covers it: it is
            // stored (read, by the watermark), not counted.
            Err(TxError::Cancelled(c)) if c.failed(COUNTER) => self.put_once(item).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` of `user`'s notifications, newest first, after `cursor`: 1 Query. The
    /// first page reads the counter with the notifications; later pages carry what it said
    /// in their cursor.
    pub async fn inbox_page(
        &self,
        user: &UserId,
        cursor: Option<&InboxCursor>,
        limit: usize,
    ) -> Result<InboxPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .expression_attribute_values(":pk", items::s(inbox_pk(user)));
        query = match cursor {
            // The counter, the page, and one more to know whether there is a next page.
            None => query.key_condition_expression("PK = :pk").limit(limit as i32 + 2),
            Some(c) => query
                .key_condition_expression("PK = :pk AND begins_with(SK, :notif)")
                .expression_attribute_values(":notif", items::s("NOTIF#"))
                .set_exclusive_start_key(Some(items::key(inbox_pk(user), &c.after)))
                .limit(limit as i32 + 1),
        };
        let output = query.send().await.map_err(StoreError::from_sdk)?;
        let (mut unread, mut read_before) = cursor.map(|c| (c.unread, c.read_before.clone())).unwrap_or_default();
        let mut notifications = Vec::new();
        for item in output.items.unwrap_or_default() {
            let sk = items::get_str(&item, SK)?;
            if sk == INBOX_COUNTER_SK {
                // Never below zero, whatever happened to the count.
                let count = item.get("unread").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
                unread = count.unwrap_or(0).max(0) as u64;
                read_before = items::opt_str(&item, "read_before").map(str::to_owned);
                continue;
            }
            let arrived = items::get_str(&item, "created_at")?;
            let covered = read_before.as_deref().is_some_and(|w| arrived <= w);
            notifications.push(StoredNotification {
                sk: sk.to_owned(),
                arrived: arrived.to_owned(),
                event_type: items::get_str(&item, "event_type")?.to_owned(),
                title: items::get_str(&item, "title")?.to_owned(),
                body: items::get_str(&item, "body")?.to_owned(),
                read: covered || item.get("read").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
                created_at: items::get_time(&item, "created_at")?,
            });
        }
        let next_after = (notifications.len() > limit).then(|| {
            notifications.truncate(limit);
            notifications.last().map(|n| n.sk.clone())
        });
        Ok(InboxPage { notifications, unread, read_before, next_after: next_after.flatten() })
    }

    /// Marks `user`'s notification `sk`, which arrived at `arrived` (both from its id), read:
    /// 1 TransactWriteItems (the flag and the count); 1 GetItem more when it was not there
    /// unread as the id says, to tell "already read" from "no such".
    pub async fn mark_notification_read(&self, user: &UserId, sk: &str, arrived: &str) -> Result<MarkRead, StoreError> {
        let key = items::key(inbox_pk(user), sk);
        let mut tx = self.tx();
        tx.update(
            NOTIFICATION,
            key.clone(),
            "SET #read = :true",
            "attribute_exists(PK) AND #read = :false AND created_at = :arrived",
            vec![
                (":true", AttributeValue::Bool(true)),
                (":false", AttributeValue::Bool(false)),
                (":arrived", items::s(arrived)),
            ],
        )
        .update(
            COUNTER,
            counter_key(user),
            "ADD unread :minus_one",
            NOT_COVERED,
            vec![(":minus_one", items::n(-1)), (":arrived", items::s(arrived))],
        );
        match self.commit(tx).await {
            Ok(()) => Ok(MarkRead::Marked),
            Err(TxError::Cancelled(c)) if c.failed(NOTIFICATION) => Ok(match self.get(key).await? {
                // An arrival the notification does not have: not an id we handed out.
                Some(item) if items::opt_str(&item, "created_at") == Some(arrived) => MarkRead::AlreadyRead,
                _ => MarkRead::NotFound,
            }),
            Err(TxError::Cancelled(c)) if c.failed(COUNTER) => Ok(MarkRead::AlreadyRead),
            Err(e) => Err(e.into()),
        }
    }

    /// Marks everything that has arrived up to now read: 1 UpdateItem of the counter (count
    /// 0, watermark now). What arrives later is unread, whenever its event happened.
    pub async fn mark_all_notifications_read(&self, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        // The watermark only moves forward (a slower clock cannot take reads back).
        self.update_if(
            counter_key(user),
            "SET unread = :zero, read_before = :now",
            "attribute_not_exists(read_before) OR read_before < :now",
            vec![(":zero", items::n(0)), (":now", items::s(items::time_text(now)))],
        )
        .await
        .map(|_| ())
    }
}
