//! `POST /webhooks/digio`: Digio's KYC events, verified, de-duplicated and applied.
//!
//! The signature (HMAC-SHA256 of the raw body, hex, `X-Digio-Checksum`) is checked before
//! anything is parsed or stored. Each event id is applied once; a request never moves
//! backwards (`shared::domain::kyc::next_request_status`); events for unknown or superseded
//! requests, and event types we do not act on, are recorded and acknowledged with 200.

use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::config::{self, ConfigError};
use shared::domain::kyc::{self, RequestStatus};
use shared::http::{self, Access, Request, Response, Route};
use shared::secrets::OnFirstUse;
use shared::store::keys::bounded_id;
use shared::store::retry::{self, Attempt, Retry};
use shared::store::{Applied, KycAuditEntry, KycEvent, Store, StoreError};
use shared::{ApiError, signature};

pub const SIGNATURE_HEADER: &str = "x-digio-checksum";
const SOURCE: &str = "digio";

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// Read by the first webhook (`shared::secrets::OnFirstUse`).
    pub webhook_secret: OnFirstUse<String>,
}

/// The variables naming this function's SecureString parameters (see `shared::secrets`).
pub const SECRETS: &[&str] = &["DIGIO_WEBHOOK_SECRET_PARAMETER"];

impl App {
    /// Cold start: the variables (the secret is read by the first webhook).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            webhook_secret: OnFirstUse::new(sdk, vars, SECRETS, |secrets| {
                secrets.required("DIGIO_WEBHOOK_SECRET_PARAMETER")
            })?,
        })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use shared::http::openapi::{
        self as doc, FunctionDoc, Operation, Request, STORE_UNAVAILABLE, error, schema, success,
    };
    FunctionDoc::new("digio-webhook", "Webhooks (called by providers)", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Webhook => Operation {
            summary: "Digio's KYC events (a callback Digio makes, not for apps)",
            description: "Digio calls this with `X-Digio-Checksum`: the hex HMAC-SHA256 of the raw body with the \
                          webhook secret, checked before anything is parsed. Each event id is applied once; \
                          events for unknown requests and event types we do not act on are acknowledged with 200.",
            request: Request::Signed {
                body: doc::body(digio_event_schema),
                signature_header: "X-Digio-Checksum",
                description: "hex HMAC-SHA256 of the raw body with the Digio webhook secret",
            },
            responses: vec![success(200, "Handled (or recorded, or a duplicate)", schema::<DigioAck>)],
            errors: vec![
                error(401, "invalid_signature", "`X-Digio-Checksum` is missing or does not match the body"),
                error(400, "invalid_body", "the (correctly signed) body is not JSON"),
                error(503, "busy", "the request kept changing underneath; Digio retries"),
            ],
            ..Operation::default()
        },
    })
}

/// The parts of Digio's event this function reads (the body is otherwise kept as sent).
#[cfg(feature = "openapi")]
fn digio_event_schema(registry: &mut shared::http::openapi::Registry) -> Value {
    registry.insert(
        "DigioEvent",
        json!({
            "type": "object",
            "description": "A Digio KYC webhook event. Read: `id` (the event id; without it the body's hash is), \
                            `event` (e.g. `KYC_REQUEST_APPROVED`), and `payload.kyc_request` (`id`, and \
                            `rejection_reason`/`reason`/`remarks` on a rejection) or `entity_id`.",
            "properties": {
                "id": { "type": "string" },
                "event": { "type": "string", "examples": ["KYC_REQUEST_APPROVED"] },
                "entity_id": { "type": "string", "examples": ["KID2501011200000001ABCDEFGHIJKLM"] },
                "payload": {
                    "type": "object",
                    "properties": { "kyc_request": { "type": "object", "properties": { "id": { "type": "string" } } } },
                },
            },
        }),
    );
    json!({ "$ref": "#/components/schemas/DigioEvent" })
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Webhook,
}

/// Every route of this function in `template.yaml`: public, authenticated by its signature.
pub const ROUTES: &[Route<Op>] = &[Route { key: "POST /webhooks/digio", access: Access::Public, handler: Op::Webhook }];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, _) = http::dispatch(ROUTES, req)?;
    match op {
        Op::Webhook => webhook(app, req).await,
    }
}

async fn webhook(app: &App, req: &Request) -> Result<Response, ApiError> {
    let body = http::raw_body(req)?;
    let secret = app.webhook_secret.get().await?;
    let signature_ok = http::header(req, SIGNATURE_HEADER)
        .is_some_and(|sig| signature::verify_hmac_sha256_hex(secret.as_bytes(), &body, sig));
    if !signature_ok {
        tracing::warn!("digio webhook with a missing or wrong signature refused");
        return Err(ApiError::unauthorized("invalid_signature", "the webhook signature is missing or wrong"));
    }
    let event: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("invalid_body", "the webhook body is not JSON"))?;
    let outcome = apply(app, &event, &body).await?;
    Ok(http::json(200, &DigioAck { status: outcome }))
}

/// The `200` answer: what became of the event.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct DigioAck {
    status: DigioOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
enum DigioOutcome {
    /// The request's status changed.
    Applied,
    /// Recorded; the status did not change (a superseded request, or an event that moves nothing).
    Recorded,
    /// This event id was handled before.
    Duplicate,
    /// No request of ours has this id; recorded and acknowledged.
    IgnoredUnknownRequest,
}

async fn apply(app: &App, event: &Value, body: &[u8]) -> Result<DigioOutcome, ApiError> {
    // Ids go into keys: an event id that could not be one (DynamoDB refuses a key over 2 KB,
    // and Digio would retry the 500 for a day) is de-duplicated by its hash instead, and a
    // request id that long is no request of ours.
    let event_id = match event.get("id").and_then(Value::as_str) {
        Some(id) if bounded_id(id) => id.to_owned(),
        Some(id) => hex::encode(Sha256::digest(id.as_bytes())),
        None => hex::encode(Sha256::digest(body)),
    };
    // Free text like any other: it is logged and audited.
    let name = kyc::redact_text(event.get("event").and_then(Value::as_str).unwrap_or_default());
    let name = name.as_str();
    let kyc_request = event.pointer("/payload/kyc_request").cloned().unwrap_or(Value::Null);
    let request_id = kyc_request
        .get("id")
        .or_else(|| event.get("entity_id"))
        .and_then(Value::as_str)
        .filter(|id| bounded_id(id))
        .unwrap_or_default()
        .to_owned();
    let reported = kyc::status_for_event(name);
    let now = Utc::now();

    // A status change can race another event for the same request: the transaction's
    // condition catches it, and we re-read and decide again.
    let busy = |_| ApiError::unavailable("busy", "the KYC request is changing; retry the webhook");
    retry::on_conflict(Retry::attempts(3), busy, || async {
        let Some(request) = app.store.kyc_request(&request_id).await? else {
            tracing::info!(event_id = %event_id, event = name, "digio event for an unknown request recorded");
            let first = app.store.record_unknown_kyc_event(SOURCE, &event_id, now).await?;
            return Ok(Attempt::Done(if first {
                DigioOutcome::IgnoredUnknownRequest
            } else {
                DigioOutcome::Duplicate
            }));
        };
        let next = reported.and_then(|s| kyc::next_request_status(request.status, s));
        let mut audit = vec![
            KycAuditEntry::new("webhook_received", &kyc::normalize_event_name(name), Some(&request_id))
                .data(json!({ "event_id": event_id, "event": kyc::redact(event) })),
        ];
        if let Some(next) = next.filter(|_| !request.superseded) {
            audit.push(KycAuditEntry::new("status_changed", next.as_str(), Some(&request_id)).data(json!({
                "from": request.status.as_str(), "to": next.as_str(), "event_id": event_id,
            })));
        }
        let rejection_reason = (next == Some(RequestStatus::Rejected)).then(|| rejection_reason(&kyc_request));
        let documents =
            matches!(next, Some(RequestStatus::Approved | RequestStatus::Rejected | RequestStatus::Completed))
                .then(|| kyc::masked_documents(&kyc_request));
        let applied = app
            .store
            .apply_kyc_event(KycEvent {
                source: SOURCE,
                event_id: &event_id,
                request: &request,
                next,
                rejection_reason,
                documents,
                audit,
                staff: None,
                now,
            })
            .await;
        match applied {
            Ok(Applied::Duplicate) => Ok(Attempt::Done(DigioOutcome::Duplicate)),
            Ok(Applied::Recorded) => Ok(Attempt::Done(DigioOutcome::Recorded)),
            Ok(Applied::Changed(_)) => Ok(Attempt::Done(DigioOutcome::Applied)),
            Err(StoreError::ConditionFailed(detail)) => {
                tracing::info!(%detail, "kyc request changed underneath; retrying");
                Ok(Attempt::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// The reviewer's words, redacted before they are cut to length (a cut could leave most of
/// a number no longer shaped like one).
fn rejection_reason(kyc_request: &Value) -> String {
    let reason = ["rejection_reason", "reason", "remarks"]
        .iter()
        .find_map(|k| kyc_request.get(*k).and_then(Value::as_str))
        .unwrap_or("rejected by the KYC reviewer");
    kyc::redact_text(reason).chars().take(500).collect()
}
