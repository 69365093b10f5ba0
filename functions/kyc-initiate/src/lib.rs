//! `POST /astrologers/me/kyc` starts (or hands out again) an astrologer's Digio video KYC;
//! `GET /astrologers/me/kyc` says where it stands.
//!
//! Rules (see `shared::domain::kyc`): astrologers only; a new request only from `not_started`,
//! `failed`, `rejected` or `expired`, at most 4 attempts in all; a live request is returned
//! again, even to two calls that race (a conditional claim lets exactly one create it).
//! A Digio failure spends no attempt and leaves only an audit entry behind.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::config::{self, ConfigError};
use shared::domain::kyc::{self, MAX_ATTEMPTS, StartDecision};
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::secrets::OnFirstUse;
use shared::store::{AstrologerKyc, KycAuditEntry, StartedRequest, Store};
use shared::{ApiError, KycStatus, UserType};

pub use shared::providers::digio::Digio;

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    /// Built by the first request that needs Digio (`shared::secrets::OnFirstUse`).
    pub digio: OnFirstUse<Digio>,
}

/// The variables naming this function's SecureString parameters (see `shared::secrets`).
pub const SECRETS: &[&str] = &["DIGIO_CLIENT_SECRET_PARAMETER"];

impl App {
    /// Cold start: the variables (the secret is read by the first request that needs it).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        let base_url = config::required(vars, "DIGIO_BASE_URL")?;
        let client_id = config::required(vars, "DIGIO_CLIENT_ID")?;
        let template_name = config::required(vars, "DIGIO_TEMPLATE_NAME")?;
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            digio: OnFirstUse::new(sdk, vars, SECRETS, move |secrets| {
                let secret = secrets.required("DIGIO_CLIENT_SECRET_PARAMETER")?;
                Ok(Digio::new(&base_url, &client_id, &secret, template_name.clone()))
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
        Callback, FunctionDoc, NOT_FOUND, Operation, STORE_UNAVAILABLE, error, schema, success,
    };
    let no_profile = NOT_FOUND;
    FunctionDoc::new("kyc-initiate", "Astrologer KYC", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Status => Operation {
            summary: "Where the caller's video KYC stands",
            description: "`access_token` and `customer_identifier` (for Digio's SDK) are present only while a \
                          request is live (`kyc_status` = `in_progress`).",
            responses: vec![success(200, "The KYC state", schema::<KycView>)],
            errors: vec![no_profile],
            ..Operation::default()
        },
        Op::Start => Operation {
            summary: "Start a video KYC (or get the live one again)",
            description: "Creates a Digio KYC request from `not_started`, `failed`, `rejected` or `expired`, at most \
                          4 attempts in all; a live request is returned again (200). Open Digio's SDK with \
                          `request_id`, `access_token` and `customer_identifier`; Digio then reports the outcome \
                          to `POST /webhooks/digio` (see the callback).",
            responses: vec![
                success(201, "A new KYC request was created", schema::<KycView>),
                success(200, "The live request, again", schema::<KycView>),
            ],
            errors: [
                vec![
                    no_profile,
                    error(403, "astrologer_suspended", "staff suspended the account"),
                    error(409, "kyc_already_completed", "the KYC is already approved"),
                    error(409, "kyc_retry_limit_reached", "all 4 attempts are used; contact support"),
                    error(
                        409,
                        "kyc_initiation_in_progress",
                        "another call is creating the request; retry in a few seconds",
                    ),
                ],
                shared::http::openapi::provider_errors("digio").to_vec(),
            ]
            .concat(),
            callbacks: vec![Callback {
                name: "digioKycEvents",
                route: "POST /webhooks/digio",
                description: "Digio reports the request's progress (completed, approved, rejected, expired) with a signed webhook",
            }],
            ..Operation::default()
        },
    })
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Status,
    Start,
}

/// Every route of this function in `template.yaml`: astrologers only.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /astrologers/me/kyc", access: Access::Role(UserType::Astrologer), handler: Op::Status },
    Route { key: "POST /astrologers/me/kyc", access: Access::Role(UserType::Astrologer), handler: Op::Start },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::Status => {
            let state = load(app, &caller).await?;
            Ok(json(200, &KycView::of(&state, Utc::now())))
        }
        Op::Start => start(app, &caller, req).await,
    }
}

async fn load(app: &App, caller: &Caller) -> Result<AstrologerKyc, ApiError> {
    app.store.astrologer_kyc(&caller.user_id).await?.ok_or_else(|| ApiError::not_found("astrologer profile"))
}

/// What the app shows, and what its Digio SDK needs.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct KycView {
    kyc_status: KycStatus,
    verification_status: shared::domain::user::VerificationStatus,
    attempts_used: u32,
    attempts_left: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "shared::domain::time::rfc3339_opt")]
    expires_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "shared::domain::time::rfc3339_opt")]
    verified_at: Option<DateTime<Utc>>,
}

impl KycView {
    fn of(state: &AstrologerKyc, now: DateTime<Utc>) -> Self {
        let status = kyc::effective_status(state.status, state.request_status, state.expires_at, now);
        let live = status == KycStatus::InProgress;
        Self {
            kyc_status: status,
            verification_status: state.verification_status,
            attempts_used: state.attempts,
            attempts_left: MAX_ATTEMPTS.saturating_sub(state.attempts),
            request_id: state.request_id.clone(),
            // The SDK needs these only while the request is live.
            customer_identifier: live.then(|| state.phone.e164().to_owned()),
            access_token: live.then(|| state.access_token.clone()).flatten().filter(|t| !t.is_empty()),
            expires_at: state.expires_at,
            rejection_reason: state.rejection_reason.clone(),
            verified_at: state.verified_at,
        }
    }
}

/// How long a losing racer waits for the winner's request before giving up.
const WAIT_FOR_LIVE: Duration = Duration::from_secs(6);

async fn start(app: &App, caller: &Caller, req: &Request) -> Result<Response, ApiError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_LIVE;
    loop {
        let state = load(app, caller).await?;
        if state.suspended {
            return Err(ApiError::new(403, "astrologer_suspended", "your account is suspended; contact support"));
        }
        let now = Utc::now();
        let status = kyc::effective_status(state.status, state.request_status, state.expires_at, now);
        let attempt = match kyc::decide_start(status, state.attempts) {
            StartDecision::ReturnLive => return Ok(json(200, &KycView::of(&state, now))),
            StartDecision::AlreadyVerified => {
                return Err(ApiError::conflict("kyc_already_completed", "your KYC is already approved"));
            }
            StartDecision::LimitReached => {
                return Err(ApiError::conflict(
                    "kyc_retry_limit_reached",
                    format!(
                        "KYC can be attempted at most {MAX_ATTEMPTS} times (3 retries) and all have been used; contact support"
                    ),
                ));
            }
            StartDecision::Create { attempt } => attempt,
        };
        // Before the claim, so a failed read of the secret leaves no claim behind.
        let digio = app.digio.get().await?;
        let token = uuid::Uuid::new_v4().to_string();
        let held_by_other = state.claimed_until.is_some_and(|until| until >= now.timestamp());
        if !held_by_other && app.store.claim_kyc_start(&state, &token, now).await? {
            return create(app, digio, &state, &token, attempt, req).await;
        }
        // Another initiation is creating the request: wait for it and hand that one out.
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(
                "kyc_initiation_in_progress",
                "a KYC request is being created; try again in a few seconds",
            ));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn create(
    app: &App,
    digio: &Digio,
    state: &AstrologerKyc,
    token: &str,
    attempt: u32,
    req: &Request,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let reference_id = format!("AKYC-{}", uuid::Uuid::new_v4().simple());
    let body = digio.request_body(state.phone.e164(), &state.name, &reference_id);
    let ip = http::source_ip(req);
    let user_agent = http::header(req, "user-agent");
    let initiated = KycAuditEntry::new("initiated", "requested", None).data(kyc::redact(&body)).client(ip, user_agent);

    let created = match digio.create_request(&body).await {
        Ok(created) => created,
        Err(err) => {
            let audit =
                KycAuditEntry::new("failure", "digio_error", None).error(err.to_string()).client(ip, user_agent);
            app.store.release_kyc_claim(&state.user_id, token, &audit).await?;
            return Err(err.into());
        }
    };
    let started = StartedRequest {
        request_id: created.id.clone(),
        reference_id,
        access_token: created.access_token.as_ref().map(|t| t.id.clone()),
        initiated_at: now,
        expires_at: kyc::expiry_for(now),
        attempt,
    };
    let response_entry =
        KycAuditEntry::new("digio_response", "created", Some(&created.id)).data(kyc::redact(&created.raw));
    let mut initiated = initiated;
    initiated.kyc_request_id = Some(created.id.clone());
    app.store.record_kyc_started(state, token, &started, &[initiated, response_entry]).await?;
    tracing::info!(astrologer = %state.user_id, kyc_request_id = %created.id, attempt, "kyc initiated");

    let mut view = KycView::of(state, now);
    view.kyc_status = KycStatus::InProgress;
    view.attempts_used = attempt;
    view.attempts_left = MAX_ATTEMPTS - attempt;
    view.request_id = Some(started.request_id);
    view.customer_identifier = Some(state.phone.e164().to_owned());
    view.access_token = started.access_token;
    view.expires_at = Some(started.expires_at);
    view.rejection_reason = None;
    Ok(json(201, &view))
}
