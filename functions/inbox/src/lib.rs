//! The caller's in-app inbox and push devices: `GET /notifications` (newest first, a page
//! and the unread count in one Query), `POST /notifications/{id}/read`,
//! `POST /notifications/read-all`, and `POST /me/devices`. Everything is the caller's own:
//! the partition comes from the token, never from the request, so someone else's
//! notification id is simply not found (404). Ids and cursors are opaque and checked
//! (`shared::notification`) before any store call. The counter and watermark behind the
//! unread count are explained in `shared::store::inbox`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::notification::{DevicePlatform, DeviceToken, InboxCursor, NotificationId};
use shared::store::{MarkRead, StoredNotification};

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 50;

pub use shared::app::StoreApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    MarkRead,
    ReadAll,
    RegisterDevice,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /notifications", access: Access::SignedIn, handler: Op::List },
    Route { key: "POST /notifications/{id}/read", access: Access::SignedIn, handler: Op::MarkRead },
    Route { key: "POST /notifications/read-all", access: Access::SignedIn, handler: Op::ReadAll },
    Route { key: "POST /me/devices", access: Access::SignedIn, handler: Op::RegisterDevice },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::List => list(app, req, &caller).await,
        Op::MarkRead => mark_read(app, req, &caller).await,
        Op::ReadAll => {
            app.store.mark_all_notifications_read(&caller.user_id, Utc::now()).await?;
            Ok(json(200, &AllRead { unread_count: 0 }))
        }
        Op::RegisterDevice => register_device(app, req, &caller).await,
    }
}

/// A notification as the app shows it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationView {
    /// Opaque; pass it to `POST /notifications/{id}/read`.
    id: String,
    /// The event it reports (`ConsultationBooked`, ...), for the app to pick an icon or screen.
    event_type: String,
    title: String,
    body: String,
    read: bool,
    /// When it arrived in the inbox.
    #[serde(serialize_with = "shared::time::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<StoredNotification> for NotificationView {
    fn from(n: StoredNotification) -> Self {
        Self {
            id: NotificationId::from_sk(&n.sk).encode(),
            event_type: n.event_type,
            title: n.title,
            body: n.body,
            read: n.read,
            created_at: n.created_at,
        }
    }
}

/// One page of the inbox, newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxPageView {
    notifications: Vec<NotificationView>,
    /// Unread notifications in the whole inbox (as of the first page, on later pages).
    unread_count: u64,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkedRead {
    id: String,
    read: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllRead {
    unread_count: u64,
}

fn limit(req: &Request) -> Result<usize, ApiError> {
    let Some(raw) = http::query_param(req, "limit") else { return Ok(DEFAULT_LIMIT) };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))
}

async fn list(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let limit = limit(req)?;
    let cursor = http::query_param(req, "cursor")
        .map(|raw| {
            InboxCursor::parse(raw)
                .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    let page = app.store.inbox_page(&caller.user_id, cursor.as_ref(), limit).await?;
    let next_cursor = page
        .next_after
        .map(|after| InboxCursor { after, read_upto: page.read_upto.clone(), unread: page.unread }.encode());
    let notifications = page.notifications.into_iter().map(NotificationView::from).collect();
    Ok(json(200, &InboxPageView { notifications, unread_count: page.unread, next_cursor }))
}

async fn mark_read(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let raw = http::path_param(req, "id")?;
    // An id we never handed out names nothing: no store call.
    let id = NotificationId::parse(raw).ok_or_else(|| ApiError::not_found("notification"))?;
    match app.store.mark_notification_read(&caller.user_id, id.sk()).await? {
        MarkRead::Marked | MarkRead::AlreadyRead => Ok(json(200, &MarkedRead { id: id.encode(), read: true })),
        MarkRead::NotFound => Err(ApiError::not_found("notification")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBody {
    platform: DevicePlatform,
    token: String,
}

/// Which tokens `DeviceToken::parse` takes depends on the platform: one schema per platform.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DeviceBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let body = |platform: &str, pattern: &str, description: &str| {
            serde_json::json!({
                "type": "object", "additionalProperties": false, "required": ["platform", "token"],
                "properties": {
                    "platform": { "type": "string", "enum": [platform] },
                    "token": { "type": "string", "pattern": pattern, "description": description },
                },
            })
        };
        shared::openapi::json_schema(serde_json::json!({
            "description": "A push token for the caller's device, as FCM or APNs issued it",
            "oneOf": [
                body("fcm", shared::notification::FCM_TOKEN_PATTERN, "the FCM registration token"),
                body("apns", shared::notification::APNS_TOKEN_PATTERN, "the APNs device token, hex"),
            ],
        }))
    }
}
#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DeviceBody {}

/// A registered device.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    platform: DevicePlatform,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    token: DeviceToken,
}

async fn register_device(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: DeviceBody = http::json_body(req)?;
    let token = DeviceToken::parse(body.platform, &body.token).map_err(|e| ApiError::invalid_field("token", e))?;
    let new = app.store.register_device(&caller.user_id, body.platform, &token, Utc::now()).await?;
    Ok(json(if new { 201 } else { 200 }, &DeviceView { platform: body.platform, token }))
}

/// This function's part of the API contract (see `shared::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::openapi::FunctionDoc {
    use serde_json::json as schema_json;
    use shared::openapi::{FunctionDoc, Operation, STORE_UNAVAILABLE, body, error, query, schema, success};
    FunctionDoc::new("inbox", "Notifications", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::List => Operation {
            summary: "The caller's notifications, newest first, a page at a time, with the unread count",
            description: "Pass the previous page's `next_cursor` as `cursor` for the next; it is `null` on the last. \
                          `unread_count` is the whole inbox's, read with the first page.",
            params: vec![
                query(
                    "limit",
                    "notifications per page (default 20)",
                    schema_json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }),
                ),
                query(
                    "cursor",
                    "`next_cursor` of the previous page, as returned (opaque)",
                    schema_json!({ "type": "string", "maxLength": 1024 }),
                ),
            ],
            responses: vec![success(200, "One page", schema::<InboxPageView>)],
            errors: vec![error(400, "invalid_field", "`limit` is not 1 to 50, or `cursor` is not one we returned")],
            ..Operation::default()
        },
        Op::MarkRead => Operation {
            summary: "Mark one notification read",
            description: "Idempotent: marking a read notification read again is a 200.",
            responses: vec![success(200, "It is read", schema::<MarkedRead>)],
            errors: vec![error(404, "not_found", "no such notification in the caller's inbox")],
            ..Operation::default()
        },
        Op::ReadAll => Operation {
            summary: "Mark every notification read",
            description: "Covers everything that happened up to now; later notifications arrive unread.",
            responses: vec![success(200, "All read", schema::<AllRead>)],
            ..Operation::default()
        },
        Op::RegisterDevice => Operation {
            summary: "Register this device for push notifications",
            description: "Registering the same token again is a 200 and changes nothing.",
            request: shared::openapi::Request::Json(body(schema::<DeviceBody>)),
            responses: vec![
                success(201, "Registered", schema::<DeviceView>),
                success(200, "Already registered", schema::<DeviceView>),
            ],
            ..Operation::default()
        },
    })
}
