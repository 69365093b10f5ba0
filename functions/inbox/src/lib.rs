//! The caller's in-app inbox and push devices: `GET /notifications` (newest first, a page
//! and the unread count in one Query), `POST /notifications/{id}/read`,
//! `POST /notifications/read-all`, `POST /me/devices` and `DELETE /me/devices/{token}`
//! (sign-out; a token belongs to one user, and a user has at most `MAX_DEVICES`, see
//! `shared::store::devices`). Everything is the caller's own:
//! the partition comes from the token, never from the request, so someone else's
//! notification id is simply not found (404). Ids and cursors are opaque and checked
//! (`shared::domain::notification`) before any store call. The counter and watermark behind the
//! unread count are explained in `shared::store::inbox`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::domain::notification::{DevicePlatform, DeviceToken, InboxCursor, MAX_ID_CHARS, NotificationId};
use shared::http::{self, Access, Caller, Request, RequestExt, Response, Route, json};
use shared::store::{DeviceRegistration, MarkRead, StoredNotification};

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
    UnregisterDevice,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /notifications", access: Access::SignedIn, handler: Op::List },
    Route { key: "POST /notifications/{id}/read", access: Access::SignedIn, handler: Op::MarkRead },
    Route { key: "POST /notifications/read-all", access: Access::SignedIn, handler: Op::ReadAll },
    Route { key: "POST /me/devices", access: Access::SignedIn, handler: Op::RegisterDevice },
    Route { key: "DELETE /me/devices/{token}", access: Access::SignedIn, handler: Op::UnregisterDevice },
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
        Op::UnregisterDevice => unregister_device(app, req, &caller).await,
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
    #[serde(serialize_with = "shared::domain::time::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<StoredNotification> for NotificationView {
    fn from(n: StoredNotification) -> Self {
        Self {
            id: NotificationId::new(&n.sk, &n.arrived).encode(),
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
        .map(|after| InboxCursor { after, read_before: page.read_before.clone(), unread: page.unread }.encode());
    let notifications = page.notifications.into_iter().map(NotificationView::from).collect();
    Ok(json(200, &InboxPageView { notifications, unread_count: page.unread, next_cursor }))
}

async fn mark_read(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    // Ids carry their arrival and outgrow `http::path_param`'s 128: bounded here instead.
    let raw = req.path_parameters_ref().and_then(|p| p.first("id")).unwrap_or_default();
    if raw.len() > MAX_ID_CHARS {
        return Err(ApiError::invalid_field("id", format!("at most {MAX_ID_CHARS} characters")));
    }
    // An id we never handed out names nothing: no store call.
    let id = NotificationId::parse(raw).ok_or_else(|| ApiError::not_found("notification"))?;
    match app.store.mark_notification_read(&caller.user_id, id.sk(), id.arrived()).await? {
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
        shared::http::openapi::json_schema(serde_json::json!({
            "description": "A push token for the caller's device, as FCM or APNs issued it",
            "oneOf": [
                body("fcm", shared::domain::notification::FCM_TOKEN_PATTERN, "the FCM registration token"),
                body("apns", shared::domain::notification::APNS_TOKEN_PATTERN, "the APNs device token, hex"),
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
    let status = match app.store.register_device(&caller.user_id, body.platform, &token, Utc::now()).await? {
        DeviceRegistration::Registered { moved, dropped } => {
            // Counts only: tokens are credentials of a kind and stay out of logs.
            tracing::info!(moved, dropped = dropped.len(), "device registered");
            201
        }
        DeviceRegistration::AlreadyRegistered => 200,
        DeviceRegistration::AccountDeleted => {
            return Err(ApiError::unauthorized("account_deleted", "this account was deleted"));
        }
    };
    Ok(json(status, &DeviceView { platform: body.platform, token }))
}

/// What signing out of a device leaves.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceSignedOut {
    /// Always `false`: this device gets no more pushes for the caller.
    registered: bool,
}

/// Longest token either platform issues (FCM's); path ids elsewhere are shorter, so this
/// route reads its parameter itself instead of through `http::path_param`'s id bound.
const MAX_TOKEN_CHARS: usize = shared::domain::notification::MAX_FCM_TOKEN_CHARS;

async fn unregister_device(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let refused = || ApiError::invalid_field("token", "is not an FCM or APNs token");
    let raw = req.path_parameters_ref().and_then(|p| p.first("token")).ok_or_else(refused)?;
    let valid = |platform| DeviceToken::parse(platform, raw).is_ok();
    if raw.len() > MAX_TOKEN_CHARS || !(valid(DevicePlatform::Fcm) || valid(DevicePlatform::Apns)) {
        return Err(refused());
    }
    // The same answer whether the token was theirs, nobody's or someone else's: signing out
    // tells nobody who else holds a token.
    app.store.unregister_device(&caller.user_id, raw).await?;
    Ok(json(200, &DeviceSignedOut { registered: false }))
}

/// The contract states the bound in words.
#[cfg(feature = "openapi")]
const _: () = assert!(shared::domain::notification::MAX_DEVICES == 10, "the contract says 10 devices");

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use serde_json::json as schema_json;
    use shared::http::openapi::{FunctionDoc, Operation, STORE_UNAVAILABLE, body, error, query, schema, success};
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
            params: vec![shared::http::openapi::path(
                "id",
                "a notification's `id`, as listed (opaque)",
                schema_json!({ "type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS }),
            )],
            responses: vec![success(200, "It is read", schema::<MarkedRead>)],
            errors: vec![
                error(404, "not_found", "no such notification in the caller's inbox"),
                error(400, "invalid_field", "`id` is longer than any id we hand out"),
            ],
            ..Operation::default()
        },
        Op::ReadAll => Operation {
            summary: "Mark every notification read",
            description: "Covers every notification that has arrived up to now; whatever arrives later is unread, \
                          even for an event that happened before.",
            responses: vec![success(200, "All read", schema::<AllRead>)],
            ..Operation::default()
        },
        Op::RegisterDevice => Operation {
            summary: "Register this device for push notifications",
            description: concat!(
                "Registering the same token again is a 200 and changes nothing. A token belongs to one user: ",
                "registering one another user registered moves it (they get no more pushes on it). A user has at ",
                "most 10 devices (`MAX_DEVICES`): registering an eleventh drops the least recently registered."
            ),
            request: shared::http::openapi::Request::Json(body(schema::<DeviceBody>)),
            responses: vec![
                success(201, "Registered", schema::<DeviceView>),
                success(200, "Already registered", schema::<DeviceView>),
            ],
            errors: vec![error(
                401,
                "account_deleted",
                "this account was deleted (its token verifies until it expires)",
            )],
            ..Operation::default()
        },
        Op::UnregisterDevice => Operation {
            summary: "Sign this device out of push notifications",
            description: "Idempotent, and the same 200 whether the token was the caller's, nobody's or another \
                          user's (theirs stays theirs).",
            params: vec![shared::http::openapi::path(
                "token",
                "the device's FCM or APNs token, as registered",
                schema_json!({ "type": "string", "minLength": 1, "maxLength": MAX_TOKEN_CHARS,
                               "pattern": "^[A-Za-z0-9_:.-]+$" }),
            )],
            responses: vec![success(200, "Signed out", schema::<DeviceSignedOut>)],
            errors: vec![error(400, "invalid_field", "`token` is not an FCM or APNs token")],
            ..Operation::default()
        },
    })
}
