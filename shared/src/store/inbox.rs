//! In-app notifications: one item per event and recipient, keyed by the event, so a
//! redelivered event finds its notification already there.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::items;
use super::keys::{inbox_pk, notification_sk};
use super::{Store, StoreError};
use crate::events::Envelope;
use crate::user::UserId;

impl Store {
    /// Stores the notification `envelope` gives `user`. `Ok(false)`: it was already there
    /// (a redelivery), which is a success.
    pub async fn add_notification(
        &self,
        user: &UserId,
        envelope: &Envelope,
        title: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let occurred = envelope.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let mut item = items::key(inbox_pk(user), notification_sk(&occurred, &envelope.id));
        item.insert("entity".into(), items::s("notification"));
        item.insert("event_id".into(), items::s(&envelope.id));
        item.insert("event_type".into(), items::s(&envelope.kind));
        item.insert("title".into(), items::s(title));
        item.insert("body".into(), items::s(body));
        item.insert("read".into(), AttributeValue::Bool(false));
        item.insert("created_at".into(), items::time(now));
        self.put_once(item).await
    }
}
