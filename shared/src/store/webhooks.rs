//! Provider webhook events already seen: the record is written with `attribute_not_exists`
//! in the same transaction as the event's effect, so it is the de-duplication, and it
//! expires by TTL.

use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::keys::{WEBHOOK_EVENT_SK, webhook_event_pk};

/// Provider retries stop long before this.
const WEBHOOK_DEDUP_DAYS: i64 = 30;

pub(crate) fn seen_event_item(provider: &str, event_id: &str, now: DateTime<Utc>) -> Item {
    let mut item = items::key(webhook_event_pk(provider, event_id), WEBHOOK_EVENT_SK);
    item.insert("entity".into(), items::s("webhook_event"));
    item.insert(super::TTL_ATTRIBUTE.into(), items::n((now + chrono::Duration::days(WEBHOOK_DEDUP_DAYS)).timestamp()));
    item
}
