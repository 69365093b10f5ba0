//! The WebSocket API's `$connect` authorizer. WebSocket APIs have no JWT authorizer, so this
//! REQUEST authorizer verifies the caller's Cognito access token itself (the `token` query
//! parameter, as browsers cannot set headers on a WebSocket; or `Authorization: Bearer`):
//! RS256 against the pool's JWKS, the issuer, the app client, `token_use` and the expiry.
//! An allowed caller's `sub` and groups become the authorizer context that API Gateway hands
//! to every later message of the connection (`requestContext.authorizer`).

mod jwks;
mod token;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use serde_json::json;
use shared::config::{self, ConfigError, Vars};

pub use token::MAX_TOKEN_BYTES;
use token::{Caller, Refusal, Verifier};

pub struct App {
    verifier: Verifier,
}

impl App {
    pub fn from_env(_sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        let pool_id = config::required(vars, "USER_POOL_ID")?;
        let client_id = config::required(vars, "USER_POOL_CLIENT_ID")?;
        let jwks_url = config::required(vars, "JWKS_URL")?;
        let issuer = config::required(vars, "TOKEN_ISSUER")?;
        // A stage pointed at another pool's issuer would refuse everyone: say so at cold start.
        if !issuer.ends_with(&format!("/{pool_id}")) {
            return Err(ConfigError::Invalid {
                name: "TOKEN_ISSUER",
                problem: format!("{issuer} is not the issuer of user pool {pool_id}"),
            });
        }
        Ok(Self { verifier: Verifier::new(issuer, client_id, jwks::Jwks::new(&jwks_url)) })
    }
}

/// The refusal: a Lambda authorizer failing with exactly "Unauthorized" is API Gateway's 401.
#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unauthorized")
    }
}

impl std::error::Error for Unauthorized {}

pub async fn handle(
    app: &App,
    event: ApiGatewayCustomAuthorizerRequestTypeRequest,
) -> Result<ApiGatewayCustomAuthorizerResponse, Unauthorized> {
    let decision = match &event.method_arn {
        None => Err(Refusal::NoMethodArn),
        Some(method_arn) => app.verifier.verify(presented_token(&event)).await.map(|caller| allow(caller, method_arn)),
    };
    decision.map_err(|refusal| {
        tracing::info!(reason = %refusal, "connection refused");
        Unauthorized
    })
}

/// The `token` query parameter, else an `Authorization: Bearer` header.
fn presented_token(event: &ApiGatewayCustomAuthorizerRequestTypeRequest) -> Option<&str> {
    let from_header = || {
        let value = event.headers.get("authorization")?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token)
    };
    event.query_string_parameters.first("token").or_else(from_header)
}

/// Allowed to open this connection (the `$connect` method ARN, nothing wider), as `sub`.
fn allow(caller: Caller, method_arn: &str) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![method_arn.to_owned()];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];

    let sub = caller.sub.to_string();
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    // The context's values must be strings, numbers or booleans: the groups space-separated.
    response.context = json!({ "sub": sub, "groups": caller.groups.join(" ") });
    response.principal_id = Some(sub);
    response.policy_document = policy;
    response
}

#[cfg(test)]
mod tests;
