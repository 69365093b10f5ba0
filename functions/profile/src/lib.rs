//! `GET /me`: the caller's user record, role and wallet summary, in one store call.

use shared::config::{self, ConfigError};
use shared::http::{self, Caller, Request, Response, json, route_key};
use shared::store::Store;
use shared::store::UserOverview;
use shared::{ApiError, UserType};

/// The caller's role (from the stored user, never from a client-writable attribute) and overview.
#[derive(serde::Serialize)]
struct Me {
    role: UserType,
    #[serde(flatten)]
    overview: UserOverview,
}

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self { store: Store::from_env(sdk, vars)? })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    match route_key(req) {
        "GET /me" => me(app, Caller::from_request(req)?).await,
        _ => Err(http::no_route(req)),
    }
}

async fn me(app: &App, caller: Caller) -> Result<Response, ApiError> {
    // A token whose account setup never finished (the trigger failed) has no record yet.
    let overview = app.store.user_overview(&caller.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(json(200, &Me { role: overview.user.user_type, overview }))
}
