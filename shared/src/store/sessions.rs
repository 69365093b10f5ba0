//! Live sessions: who has a WebSocket open, and each consultation's chat.
//!
//! | route or trigger | calls |
//! |---|---|
//! | `$connect` | 1 PutItem (the connection, TTL 2 hours: API Gateway's longest connection) |
//! | `$disconnect`, a push answered 410 | 1 DeleteItem |
//! | a push to a user | 1 Query `CONNS#{sub}` (then PostToConnection per connection) |
//! | `send` | 1 GetItem (the consultation), 1 TransactWriteItems: the message (its text, its image's key), its sender's id for it (`attribute_not_exists`: a resend is stored once), the consultation (running, the sender seen, their count); a resend: + 1 GetItem (the first one's id) |
//! | `POST /webhooks/agora` (a channel event) | 1 GetItem (the consultation), 1 UpdateItem: the event appended to `agora_events`, conditioned on the count read (a concurrent event reads again, so each notice is kept once), with the meter's start when Agora now sees both parties (a TransactWriteItems with the `ConsultationStarted` event when it is the first start) |
//! | `GET /consultations/{id}/messages` | 1 GetItem (the consultation: its parties), 1 Query `CHAT#{id}` from the cursor |

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::consultations::{AGORA_EVENT_COUNT, AGORA_EVENTS, channel_event_value};
use super::items::{self, Item, get_str, get_time, opt_str};
use super::keys::{
    CHAT_MESSAGE_SK_PREFIX, CONSULTATION_SK, MAX_CONNECTION_ID_LEN, chat_client_id_sk, chat_message_sk, chat_pk,
    connection_sk, connections_pk, consultation_pk,
};
use super::{Store, StoreError, TTL_ATTRIBUTE, TxError};
use crate::domain::booking::call::{ChannelEvent, MeterSource};
use crate::domain::booking::chat::{ChatMessage, ImageKey, Side};
use crate::domain::booking::session;
use crate::domain::booking::{BookingId, Consultation, ConsultationStatus};
use crate::domain::user::UserId;

/// API Gateway closes a WebSocket after 2 hours at the latest; its item goes then too.
pub const CONNECTION_LIFETIME: Duration = Duration::hours(2);

/// How storing a chat message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendWrite {
    Stored,
    /// The sender sent this `client_id` before: stored then, as `message_id`.
    Duplicate {
        message_id: String,
    },
    /// The session no longer runs (ended a moment ago).
    NotLive,
}

fn message_item(m: &ChatMessage) -> Item {
    let sent = items::time_text(m.sent_at);
    let mut item = items::key(chat_pk(m.booking_id.as_str()), chat_message_sk(&sent, &m.message_id));
    item.insert("entity".into(), items::s("chat_message"));
    item.insert("message_id".into(), items::s(&m.message_id));
    item.insert("booking_id".into(), items::s(m.booking_id.as_str()));
    item.insert("from".into(), items::s(m.from.as_str()));
    item.insert("sender_id".into(), items::s(m.sender_id.as_str()));
    if let Some(text) = &m.text {
        item.insert("text".into(), items::s(text));
    }
    if let Some(key) = &m.image_key {
        item.insert("image_key".into(), items::s(key.as_str()));
    }
    item.insert("client_id".into(), items::s(&m.client_id));
    item.insert("sent_at".into(), items::time(m.sent_at));
    item
}

fn read_message(item: &Item) -> Result<ChatMessage, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("chat message: {what}"));
    Ok(ChatMessage {
        message_id: get_str(item, "message_id")?.to_owned(),
        booking_id: BookingId::parse(get_str(item, "booking_id")?).ok_or_else(|| corrupt("booking_id"))?,
        from: Side::parse(get_str(item, "from")?).ok_or_else(|| corrupt("from"))?,
        sender_id: UserId::parse(get_str(item, "sender_id")?).map_err(|_| corrupt("sender_id"))?,
        text: opt_str(item, "text").map(str::to_owned),
        image_key: opt_str(item, "image_key")
            .map(|k| ImageKey::stored(k).ok_or_else(|| corrupt("image_key")))
            .transpose()?,
        // Made per read (a presigned GET), never stored.
        image_url: None,
        client_id: opt_str(item, "client_id").unwrap_or_default().to_owned(),
        sent_at: get_time(item, "sent_at")?,
    })
}

impl Store {
    /// Appends Agora's `event` to `c`'s channel log (as read: `Ok(false)` when the log or the
    /// meter moved meanwhile, to read again), starting the meter from Agora's view at
    /// `meter_starts` when given.
    pub async fn record_channel_event(
        &self,
        c: &Consultation,
        event: &ChannelEvent,
        meter_starts: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let count = c.channel.events.len();
        let mut set = format!(
            "SET {AGORA_EVENTS} = list_append(if_not_exists({AGORA_EVENTS}, :none), :event), {AGORA_EVENT_COUNT} = :count"
        );
        let mut condition = if count == 0 {
            format!("attribute_not_exists({AGORA_EVENT_COUNT})")
        } else {
            format!("{AGORA_EVENT_COUNT} = :count_read")
        };
        let mut values = vec![
            (":none", AttributeValue::L(vec![])),
            (":event", AttributeValue::L(vec![channel_event_value(event)])),
            (":count", items::n(count + 1)),
        ];
        if count > 0 {
            values.push((":count_read", items::n(count)));
        }
        let key = items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK);
        let Some(start) = meter_starts else {
            return self.update_if(key, &set, &condition, values).await;
        };
        let mut started = c.clone();
        started.started_at = Some(start);
        set.push_str(", started_at = :start, DUE_AT = :paid, meter_source = :agora");
        values.push((":start", items::time(start)));
        values.push((":paid", items::time(session::paid_until(&started).unwrap_or(start))));
        values.push((":agora", items::s(MeterSource::Agora.as_str())));
        values.push((":live", items::s(ConsultationStatus::InProgress.as_str())));
        condition.push_str(" AND #status = :live");
        match c.started_at {
            Some(read) => {
                condition.push_str(" AND started_at = :started_read");
                values.push((":started_read", items::time(read)));
                self.update_if(key, &set, &condition, values).await
            }
            // The meter's first start is an event, written with it once.
            None => {
                condition.push_str(" AND attribute_not_exists(started_at)");
                let mut tx = self.tx();
                tx.update("consultation", key, &set, &condition, values);
                tx.outbox(&c.started_event(start));
                match self.commit(tx).await {
                    Ok(()) => Ok(true),
                    Err(TxError::Cancelled(_)) => Ok(false),
                    Err(TxError::Store(e)) => Err(e),
                }
            }
        }
    }

    /// Records `user`'s new WebSocket connection (one PutItem).
    pub async fn add_connection(
        &self,
        user: &UserId,
        connection_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if connection_id.is_empty() || connection_id.len() > MAX_CONNECTION_ID_LEN {
            return Err(StoreError::Other("not a connection id".into()));
        }
        let mut item = items::key(connections_pk(user), connection_sk(connection_id));
        item.insert("entity".into(), items::s("connection"));
        item.insert("connection_id".into(), items::s(connection_id));
        item.insert("connected_at".into(), items::time(now));
        item.insert(TTL_ATTRIBUTE.into(), items::n((now + CONNECTION_LIFETIME).timestamp()));
        self.put(item).await
    }

    /// Forgets a connection (closed, or gone: API Gateway answered 410). One DeleteItem.
    pub async fn remove_connection(&self, user: &UserId, connection_id: &str) -> Result<(), StoreError> {
        if connection_id.len() > MAX_CONNECTION_ID_LEN {
            return Ok(());
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(connections_pk(user), connection_sk(connection_id))))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// `user`'s open connections (one Query; expired ones filtered, as TTL deletion lags).
    pub async fn connections_of(&self, user: &UserId, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":pk", items::s(connections_pk(user)))
            .expression_attribute_values(":now", items::n(now.timestamp()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(output.items().iter().filter_map(|i| opt_str(i, "connection_id").map(str::to_owned)).collect())
    }

    /// Stores `m` in `c`'s chat once per sender's `client_id`, while the session runs,
    /// counting it and marking the sender seen (one transaction).
    pub async fn send_message(&self, c: &Consultation, m: &ChatMessage) -> Result<SendWrite, StoreError> {
        let side = m.from.as_str();
        let mut client_id = items::key(chat_pk(c.booking_id.as_str()), chat_client_id_sk(side, &m.client_id));
        client_id.insert("message_id".into(), items::s(&m.message_id));
        let mut tx = self.tx();
        tx.put_new("message", message_item(m));
        tx.put_new("client_id", client_id);
        let mut set =
            format!("SET {side}_seen_at = :now, {side}_messages = if_not_exists({side}_messages, :zero) + :one");
        if m.from == Side::Astrologer {
            set.push_str(", astrologer_first_reply_at = if_not_exists(astrologer_first_reply_at, :now)");
        }
        tx.update(
            "consultation",
            items::key(consultation_pk(c.booking_id.as_str()), CONSULTATION_SK),
            &set,
            "#status = :live",
            vec![
                (":live", items::s(ConsultationStatus::InProgress.as_str())),
                (":now", items::time(m.sent_at)),
                (":zero", items::n(0)),
                (":one", items::n(1)),
            ],
        );
        match self.commit(tx).await {
            Ok(()) => Ok(SendWrite::Stored),
            Err(TxError::Cancelled(cancelled)) if cancelled.failed("client_id") => {
                let key = items::key(chat_pk(c.booking_id.as_str()), chat_client_id_sk(side, &m.client_id));
                let first = self.get(key).await?;
                let message_id = first.as_ref().and_then(|i| opt_str(i, "message_id")).unwrap_or_default();
                Ok(SendWrite::Duplicate { message_id: message_id.to_owned() })
            }
            Err(TxError::Cancelled(_)) => Ok(SendWrite::NotLive),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// A page of `booking`'s chat, oldest first, after the sort key `after`; the last key
    /// read when there is more.
    pub async fn messages(
        &self,
        booking: &BookingId,
        limit: i32,
        after: Option<&str>,
    ) -> Result<(Vec<ChatMessage>, Option<String>), StoreError> {
        let pk = chat_pk(booking.as_str());
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", items::s(&pk))
            .expression_attribute_values(":prefix", items::s(CHAT_MESSAGE_SK_PREFIX))
            .limit(limit);
        if let Some(sk) = after {
            request = request.set_exclusive_start_key(Some(Item::from([
                ("PK".to_owned(), items::s(&pk)),
                ("SK".to_owned(), AttributeValue::S(sk.to_owned())),
            ])));
        }
        let output = request.send().await.map_err(StoreError::from_sdk)?;
        let list = output.items().iter().map(read_message).collect::<Result<Vec<_>, _>>()?;
        let next = output.last_evaluated_key().and_then(|k| k.get("SK")).and_then(|v| v.as_s().ok()).cloned();
        Ok((list, next))
    }
}
