//! `GET /me`: the caller's user record, role and wallet summary, in one store call. The
//! first call of a user whose account setup the post-confirmation trigger left unfinished
//! finishes it (`shared::app::account`), once however many calls race.

use aws_sdk_cognitoidentityprovider::Client as CognitoClient;
use shared::app::account::{self, SetupError};
use shared::config::{self, ConfigError};
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::store::{Store, UserOverview};
use shared::{ApiError, UserType};

/// The caller's role (from the stored user, never from a client-writable attribute) and overview.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Me {
    role: UserType,
    #[serde(flatten)]
    overview: UserOverview,
}

/// Built once per cold start.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub cognito: CognitoClient,
    pub user_pool_id: String,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            cognito: CognitoClient::new(sdk),
            user_pool_id: config::required(vars, "USER_POOL_ID")?,
        })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use shared::http::openapi::{FunctionDoc, NOT_FOUND, Operation, STORE_UNAVAILABLE, error, schema, success};
    FunctionDoc::new("profile", "Profile", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Me => Operation {
            summary: "The caller's profile, role and wallet summary",
            description: "`astrologer` is present for astrologers only. The first call of an account whose setup \
                          did not finish at confirmation finishes it (sign in again for a token with the role).",
            responses: vec![success(200, "The caller", schema::<Me>)],
            errors: vec![
                // A token of no customer or astrologer (an operator's staff account).
                NOT_FOUND,
                error(503, SETUP_UNAVAILABLE, "the account's setup could not be finished just now; retry shortly"),
            ],
            ..Operation::default()
        },
    })
}

const SETUP_UNAVAILABLE: &str = "setup_unavailable";

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Me,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[Route { key: "GET /me", access: Access::SignedIn, handler: Op::Me }];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    match op {
        Op::Me => me(app, http::signed_in(caller)?).await,
    }
}

async fn me(app: &App, caller: Caller) -> Result<Response, ApiError> {
    let overview = match app.store.user_overview(&caller.user_id).await? {
        Some(overview) => {
            // Registered, but the trigger failed before the group: add it (a no-op when
            // it is there and only the token predates it).
            if !caller.has_role(overview.user.user_type) {
                let user = account::find_by_sub(&app.cognito, &app.user_pool_id, &caller.user_id)
                    .await
                    .map_err(setup_error)?
                    .ok_or_else(|| ApiError::not_found("user"))?;
                account::add_to_group(&app.cognito, &app.user_pool_id, &user.username, overview.user.user_type)
                    .await
                    .map_err(setup_error)?;
            }
            overview
        }
        None => {
            finish_setup(app, &caller).await?;
            app.store.user_overview(&caller.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?
        }
    };
    Ok(json(200, &Me { role: overview.user.user_type, overview }))
}

/// A confirmed user with no record: the trigger failed after Cognito confirmed them.
async fn finish_setup(app: &App, caller: &Caller) -> Result<(), ApiError> {
    let found = account::find_by_sub(&app.cognito, &app.user_pool_id, &caller.user_id).await.map_err(setup_error)?;
    let Some(user) = found.filter(|u| u.confirmed) else { return Err(ApiError::not_found("user")) };
    match account::finish_setup(&app.store, &app.cognito, &app.user_pool_id, &user.username, &user.attributes).await {
        Ok((_, outcome)) => {
            tracing::info!(user_id = %caller.user_id, ?outcome, "unfinished account setup finished");
            Ok(())
        }
        // Staff an operator created: no customer or astrologer record to make.
        Err(SetupError::RoleNotAllowed(_)) => Err(ApiError::not_found("user")),
        Err(e) => Err(setup_error(e)),
    }
}

fn setup_error(e: SetupError) -> ApiError {
    match e {
        SetupError::Store(store) => store.into(),
        SetupError::Cognito(detail) => {
            tracing::warn!(error = %detail, "account setup unavailable");
            ApiError::unavailable(SETUP_UNAVAILABLE, "your account is still being set up; try again shortly")
        }
        other => ApiError::internal(other),
    }
}
