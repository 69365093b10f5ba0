//! Live consultations over the WebSocket API. API Gateway routes each message on its
//! `action` (template.yaml: `WebSocketApi`); `$connect` ran the connect authorizer first,
//! whose context (`sub`, `groups`) comes with every message of the connection.
//!
//! - `$connect` / `$disconnect`: the caller's connection recorded / forgotten (pushes reach
//!   every open connection of a user: `shared::app::live`).
//! - `join`, `heartbeat`: the party is in the session (the meter starts when both have
//!   joined; a party silent for a minute has left: `shared::domain::booking::session`).
//! - `send`: a chat message (text, an image uploaded through `POST /consultations/{id}/images`,
//!   or both) stored once per sender's `client_id` while the session runs, acknowledged to the
//!   sender and delivered to the other party's connections, an image with a presigned GET.
//! - `typing`, `read`: delivered to the other party, not stored.
//! - `end`: either party ends the session, settled through the one closing path.
//! - `$default` (an unknown action, a body that is not a JSON object): refused with an
//!   `error` message; the connection stays open.
//!
//! Answers go back by `PostToConnection` (API Gateway ignores a route's own response
//! without a route response); a refusal is an `error` message, never a dropped connection.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use chrono::Utc;
use shared::UserId;
use shared::app::closing::{self, CloseError};
use shared::domain::booking::call::MeterSource;
use shared::domain::booking::chat::{self, ChatMessage, ClientMessage, MAX_FRAME_BYTES, ServerMessage, Side};
use shared::domain::booking::session::{self, NotLive};
use shared::domain::booking::{Action, BookingId, Consultation};
use shared::store::StoreError;
use shared::store::retry::{self, Attempt, Retry};
use shared::store::sessions::SendWrite;

pub use shared::app::images::ChatApp as App;

/// Who sent it: the connect authorizer's context, as API Gateway passes it on.
struct Sender {
    user: UserId,
    connection_id: String,
}

/// Why a message is refused (pushed back to the sender as an `error`).
struct Refusal {
    code: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store");
        Self::new("unavailable", "try again")
    }
}

impl From<NotLive> for Refusal {
    fn from(e: NotLive) -> Self {
        Self::new("not_live", e.to_string())
    }
}

fn status(code: i64) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = code;
    response
}

pub async fn handle(app: &App, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayProxyResponse {
    let ctx = &event.request_context;
    let route = ctx.route_key.as_deref().unwrap_or("$default");
    let user = ctx.authorizer.fields.get("sub").and_then(|v| v.as_str()).and_then(|s| UserId::parse(s).ok());
    let (Some(user), Some(connection_id)) = (user, ctx.connection_id.clone()) else {
        // Only a misconfigured API reaches here: every connection passed the authorizer.
        tracing::error!(route, "no caller or connection in the event");
        return status(403);
    };
    let sender = Sender { user, connection_id };
    match route {
        "$connect" => match app.store.add_connection(&sender.user, &sender.connection_id, Utc::now()).await {
            Ok(()) => status(200),
            Err(e) => {
                tracing::error!(error = %e, "connection not recorded");
                status(500)
            }
        },
        "$disconnect" => {
            if let Err(e) = app.store.remove_connection(&sender.user, &sender.connection_id).await {
                tracing::warn!(error = %e, "connection not removed; its TTL will");
            }
            status(200)
        }
        _ => {
            let body = event.body.as_deref().unwrap_or_default();
            let booking = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("booking_id").and_then(|b| b.as_str()).map(str::to_owned));
            if let Err(refusal) = on_message(app, &sender, body).await {
                let error = ServerMessage::error(refusal.code, refusal.message, booking.as_deref());
                app.push.to_connection(&sender.connection_id, &error).await;
            }
            status(200)
        }
    }
}

/// A client message: parsed (only a JSON object with a known `action` and its fields), then acted on.
async fn on_message(app: &App, sender: &Sender, body: &str) -> Result<(), Refusal> {
    if body.len() > MAX_FRAME_BYTES {
        return Err(Refusal::new("too_large", format!("a message is at most {MAX_FRAME_BYTES} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|_| Refusal::new("invalid_message", "a message is a JSON object"))?;
    if !value.is_object() {
        return Err(Refusal::new("invalid_message", "a message is a JSON object"));
    }
    let message: ClientMessage = serde_json::from_value(value).map_err(|e| {
        let text = e.to_string();
        if text.contains("unknown variant") || text.contains("missing field `action`") {
            Refusal::new("unknown_action", "`action` is one of join, heartbeat, send, typing, read, end")
        } else {
            Refusal::new("invalid_message", text)
        }
    })?;
    let (c, side) = own_consultation(app, sender, message.booking_id()).await?;
    match message {
        ClientMessage::Join { .. } => join(app, c, side).await,
        ClientMessage::Heartbeat { .. } => {
            session::check_live(&c, Utc::now())?;
            if !app.store.seen_in_session(&c, side.party(), Utc::now()).await? {
                return Err(NotLive::Ended.into());
            }
            Ok(())
        }
        ClientMessage::Send { client_id, text, image_key, .. } => {
            send(app, sender, &c, side, client_id, text.as_deref(), image_key.as_deref()).await
        }
        ClientMessage::Typing { booking_id } => {
            session::check_live(&c, Utc::now())?;
            let typing = ServerMessage::Typing { booking_id, from: side };
            app.push.to_user(&app.store, side.other_in(&c), &typing).await;
            Ok(())
        }
        ClientMessage::Read { booking_id, message_id } => {
            if message_id.len() > 64 {
                return Err(Refusal::new("invalid_message", "`message_id` is not one of this chat's"));
            }
            let read = ServerMessage::Read { booking_id, from: side, message_id };
            app.push.to_user(&app.store, side.other_in(&c), &read).await;
            Ok(())
        }
        ClientMessage::End { .. } => {
            let ended = closing::close(&app.store, c, Action::Complete, side.party(), app.share).await.map_err(
                |e| match e {
                    CloseError::NotAllowed(..) => Refusal::new("not_live", e.to_string()),
                    CloseError::Store(s) => s.into(),
                    other => Refusal::new("unavailable", other.to_string()),
                },
            )?;
            app.tell_both(&ended).await;
            Ok(())
        }
    }
}

/// The consultation named, if the sender is one of its two parties (else `not_found`: nobody
/// learns that someone else's exists).
async fn own_consultation(app: &App, sender: &Sender, booking_id: &str) -> Result<(Consultation, Side), Refusal> {
    let not_found = || Refusal::new("not_found", "no such consultation of yours");
    let id = BookingId::parse(booking_id).ok_or_else(not_found)?;
    let c = app.store.consultation(&id).await?.ok_or_else(not_found)?;
    let side = c.party(&sender.user).and_then(Side::of).ok_or_else(not_found)?;
    Ok((c, side))
}

/// The party joins; the second to join starts the meter. A join racing the other's reads again.
async fn join(app: &App, read: Consultation, side: Side) -> Result<(), Refusal> {
    let id = read.booking_id.clone();
    let mut first = Some(read);
    let busy = |_| Refusal::new("unavailable", "the session kept changing; join again");
    let joined = retry::on_conflict(Retry::DEFAULT, busy, || {
        let read = first.take();
        let id = id.clone();
        async move {
            let c = match read {
                Some(c) => c,
                None => app.store.consultation(&id).await?.ok_or_else(|| Refusal::new("not_found", "gone"))?,
            };
            let now = Utc::now();
            let join = session::join(&c, side.party(), now)?;
            if !app.store.join_session(&c, &join, now).await? {
                return Ok(Attempt::Conflict);
            }
            let mut joined = c;
            if let Some(start) = join.meter_starts {
                joined.started_at = Some(start);
                joined.meter_source = Some(MeterSource::App);
                joined.paid_until = session::paid_until(&joined);
                tracing::info!(booking_id = %joined.booking_id, "both joined: the meter runs");
            }
            Ok(Attempt::Done(joined))
        }
    })
    .await?;
    app.tell_both(&joined).await;
    Ok(())
}

async fn send(
    app: &App,
    sender: &Sender,
    c: &Consultation,
    side: Side,
    client_id: String,
    text: Option<&str>,
    image_key: Option<&str>,
) -> Result<(), Refusal> {
    let now = Utc::now();
    session::check_live(c, now)?;
    // An image key must be one issued to this sender's side of this consultation.
    let (text, image_key) = chat::check_content(text, image_key, &c.booking_id, side)
        .map_err(|e| Refusal::new("invalid_field", e.to_string()))?;
    chat::check_client_id(&client_id).map_err(|e| Refusal::new("invalid_field", e.to_string()))?;
    let message = ChatMessage {
        message_id: uuid::Uuid::new_v4().simple().to_string(),
        booking_id: c.booking_id.clone(),
        from: side,
        sender_id: sender.user.clone(),
        text,
        image_key,
        image_url: None,
        client_id: client_id.clone(),
        sent_at: now,
    };
    let message_id = match app.store.send_message(c, &message).await? {
        SendWrite::Stored => {
            let mut pushed = message.clone();
            app.images.with_image_urls(std::slice::from_mut(&mut pushed), now).await;
            let delivered =
                app.push.to_user(&app.store, side.other_in(c), &ServerMessage::Message { message: pushed }).await;
            tracing::info!(booking_id = %c.booking_id, from = side.as_str(), delivered, "chat message");
            message.message_id
        }
        // A resend (the ack was lost): acknowledged again, not stored or delivered twice.
        SendWrite::Duplicate { message_id } => message_id,
        SendWrite::NotLive => return Err(NotLive::Ended.into()),
    };
    app.push.to_connection(&sender.connection_id, &ServerMessage::Ack { client_id, message_id }).await;
    Ok(())
}
