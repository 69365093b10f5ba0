//! The transactional outbox: an event is one more item in the transaction that makes the
//! change it reports, so a committed change always has its event and a rolled-back one never
//! does. The table's stream carries `OUTBOX#` inserts to the relay, which publishes them to
//! the events topic; SNS fans them out by `event_type` to one queue per consumer.
//!
//! Item: `PK = OUTBOX#{event id}`, `SK = OUTBOX`, the envelope as JSON text, and a TTL: the
//! stream has carried it long before it expires. Written with `attribute_not_exists`, so the
//! same change (the same event id) can never yield two events.

use chrono::Duration;

use super::StoreError;
use super::items::{self, Item, get_str};
use super::keys::{OUTBOX_SK, outbox_pk};
use crate::domain::events::{Envelope, Event};

/// Long enough for any stream retry (24 h of stream retention) and an operator's look.
pub const OUTBOX_TTL: Duration = Duration::days(7);
/// The attribute holding the envelope JSON, which the relay publishes as is.
pub const ENVELOPE_ATTRIBUTE: &str = "envelope";
/// The attribute holding the event type, which SNS filter policies route on.
pub const EVENT_TYPE_ATTRIBUTE: &str = "event_type";

/// Whether a stream record's key is an outbox item (the relay skips everything else).
pub fn is_outbox_pk(pk: &str) -> bool {
    pk.starts_with("OUTBOX#")
}

/// The outbox item for `envelope`.
pub fn outbox_item<P: Event>(envelope: &Envelope<P>) -> Item {
    let mut item = items::key(outbox_pk(&envelope.id), OUTBOX_SK);
    item.insert("entity".into(), items::s("outbox_event"));
    item.insert("event_id".into(), items::s(&envelope.id));
    item.insert(EVENT_TYPE_ATTRIBUTE.into(), items::s(&envelope.kind));
    // An envelope of our own types always serialises; `{}` would fail the consumer loudly.
    item.insert(ENVELOPE_ATTRIBUTE.into(), items::s(serde_json::to_string(envelope).unwrap_or_else(|_| "{}".into())));
    item.insert("occurred_at".into(), items::time(envelope.occurred_at));
    item.insert(super::TTL_ATTRIBUTE.into(), items::n((envelope.occurred_at + OUTBOX_TTL).timestamp()));
    item
}

/// The envelope text and event type an outbox item carries.
pub fn read_outbox_item(item: &Item) -> Result<(String, String), StoreError> {
    Ok((get_str(item, ENVELOPE_ATTRIBUTE)?.to_owned(), get_str(item, EVENT_TYPE_ATTRIBUTE)?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::UserRegistered;
    use crate::domain::user::{UserId, UserType};
    use chrono::TimeZone;

    #[test]
    fn the_same_change_builds_the_same_item() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
        let user = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let event = || {
            let payload =
                UserRegistered { user_id: user.clone(), user_type: UserType::User, first_name: "Asha".into() };
            Envelope::new(format!("user-registered-{user}"), at, payload)
        };
        let (a, b) = (outbox_item(&event()), outbox_item(&event()));
        assert_eq!(a, b);
        let (envelope, kind) = read_outbox_item(&a).unwrap();
        assert_eq!(kind, "UserRegistered");
        let back: Envelope = serde_json::from_str(&envelope).unwrap();
        assert_eq!((back.id.as_str(), back.occurred_at), (format!("user-registered-{user}").as_str(), at));
        assert!(is_outbox_pk(get_str(&a, "PK").unwrap()));
    }
}
