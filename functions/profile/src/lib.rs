//! `GET /me`: the caller's user record, role and wallet summary, in one store call.

use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::store::UserOverview;
use shared::{ApiError, UserType};

/// The caller's role (from the stored user, never from a client-writable attribute) and overview.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Me {
    role: UserType,
    #[serde(flatten)]
    overview: UserOverview,
}

pub use shared::app::StoreApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::openapi::FunctionDoc {
    use shared::openapi::{FunctionDoc, NOT_FOUND, Operation, STORE_UNAVAILABLE, schema, success};
    FunctionDoc::new("profile", "Profile", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Me => Operation {
            summary: "The caller's profile, role and wallet summary",
            description: "`astrologer` is present for astrologers only.",
            responses: vec![success(200, "The caller", schema::<Me>)],
            // A token whose account setup never finished has no user record yet.
            errors: vec![NOT_FOUND],
            ..Operation::default()
        },
    })
}

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
    // A token whose account setup never finished (the trigger failed) has no record yet.
    let overview = app.store.user_overview(&caller.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(json(200, &Me { role: overview.user.user_type, overview }))
}
