//! HTTP plumbing for API Gateway HTTP API (payload format 2.0) handlers: the caller's
//! identity from the JWT authorizer, JSON bodies, and JSON responses.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::user::{UserId, UserType};

pub type Request = ApiGatewayV2httpRequest;
pub type Response = ApiGatewayV2httpResponse;

/// `"POST /auth/signup"`: the template route that matched, which handlers dispatch on.
pub fn route_key(req: &Request) -> &str {
    req.route_key.as_deref().or(req.request_context.route_key.as_deref()).unwrap_or("")
}

/// A path parameter the route declares, e.g. `{id}`.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    req.path_parameters
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_field(name, "missing path parameter"))
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The raw body bytes, exactly as sent (webhook signatures are computed over these).
pub fn raw_body(req: &Request) -> Result<Vec<u8>, ApiError> {
    let body = req.body.as_deref().unwrap_or("");
    if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| ApiError::bad_request("invalid_body", "body is not valid base64"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// Parses a JSON body. Errors name the field at fault: `phone: phone number must be ...`.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = raw_body(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_body", "a JSON body is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::bad_request("invalid_body", format!("body is not the expected JSON: {inner}"))
        } else {
            // serde's own message ends with " at line L column C"; the field name says more.
            let message = inner.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            ApiError::invalid_field(path, message)
        }
    })
}

/// Who is calling: read from the claims API Gateway's JWT authorizer verified.
///
/// The role comes only from the `cognito:groups` claim, which only the post-confirmation
/// trigger (and admins) can change; never from a client-writable attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub groups: Vec<UserType>,
}

impl Caller {
    pub fn from_request(req: &Request) -> Result<Self, ApiError> {
        let claims = req
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "sign in first"))?;
        let user_id = claims
            .get("sub")
            .and_then(|sub| UserId::parse(sub).ok())
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "sign in first"))?;
        let groups = claims.get("cognito:groups").map(|raw| parse_groups_claim(raw)).unwrap_or_default();
        Ok(Self { user_id, groups })
    }

    pub fn has_role(&self, role: UserType) -> bool {
        self.groups.contains(&role)
    }

    pub fn require_role(&self, role: UserType) -> Result<(), ApiError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("only a(n) {} may do this", role.as_str())))
        }
    }
}

/// API Gateway flattens array claims to `[a b]`; a JSON array or a single name also occur.
fn parse_groups_claim(raw: &str) -> Vec<UserType> {
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list.iter().filter_map(|g| UserType::parse(g).ok()).collect();
    }
    raw.trim_matches(|c| c == '[' || c == ']')
        .split([' ', ','])
        .filter_map(|g| UserType::parse(g.trim()).ok())
        .collect()
}

/// A JSON response.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    let mut resp = Response::default();
    resp.status_code = i64::from(status);
    resp.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    resp.body = Some(Body::Text(text));
    resp
}

pub fn error_response(err: &ApiError) -> Response {
    json(err.status, &serde_json::json!({ "error": err }))
}

/// Turns a route's result into the response, logging server-side faults.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(resp) => resp,
        Err(err) => {
            if err.status >= 500 {
                tracing::error!(status = err.status, code = %err.code, "request failed");
            } else {
                tracing::info!(status = err.status, code = %err.code, "request refused");
            }
            error_response(&err)
        }
    }
}

/// The route is not one this function serves.
pub fn no_route(req: &Request) -> ApiError {
    ApiError::new(404, "no_route", format!("no route {}", route_key(req)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_claim_in_every_shape() {
        assert_eq!(parse_groups_claim("[astrologer]"), vec![UserType::Astrologer]);
        assert_eq!(parse_groups_claim("[user admin]"), vec![UserType::User, UserType::Admin]);
        assert_eq!(parse_groups_claim(r#"["user"]"#), vec![UserType::User]);
        assert_eq!(parse_groups_claim("user"), vec![UserType::User]);
        assert!(parse_groups_claim("[superuser]").is_empty());
    }

    #[test]
    fn body_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Body {
            phone: crate::Phone,
        }
        let mut req = Request::default();
        req.body = Some(r#"{"phone":"12"}"#.into());
        let err = json_body::<Body>(&req).unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (400, Some("phone")));
        req.body = Some("{not json".into());
        assert_eq!(json_body::<Body>(&req).unwrap_err().code, "invalid_body");
        req.body = None;
        assert_eq!(json_body::<Body>(&req).unwrap_err().code, "invalid_body");
        req.body = Some("{}".into());
        let err = json_body::<Body>(&req).unwrap_err();
        assert_eq!(err.status, 400, "{err:?}");
    }

    #[test]
    fn error_body_shape() {
        let resp = error_response(&ApiError::not_found("wallet"));
        assert_eq!(resp.status_code, 404);
        let Some(Body::Text(text)) = resp.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "wallet not found");
    }
}
