//! HTTP plumbing for API Gateway HTTP API (payload format 2.0) handlers on `lambda_http`:
//! the route table every HTTP function declares, the caller's identity from the JWT
//! authorizer, JSON bodies, and JSON responses.
//!
//! A function declares its routes once, as data:
//!
//! ```ignore
//! pub const ROUTES: &[Route<Op>] = &[
//!     Route { key: "GET /me", access: Access::SignedIn, handler: Op::Me },
//! ];
//! ```
//!
//! and [`dispatch`] finds the request's route, enforces its [`Access`] in one place and
//! hands back the `Op` (which the function `match`es, exhaustively) and the caller.

use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod error;
pub mod idempotency;
#[cfg(feature = "openapi")]
pub mod openapi;

pub use lambda_http::{Body, Request, RequestExt};

use crate::domain::user::{UserId, UserType};
use crate::http::error::ApiError;

pub type Response = lambda_http::Response<Body>;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the template route has `Auth: { Authorizer: NONE }`; the handler gets no caller.
    Public,
    /// Any signed-in user (the JWT authorizer ran).
    SignedIn,
    /// A signed-in user in this role's Cognito group.
    Role(UserType),
}

/// One template route of a function: its route key (`"POST /wallet/top-ups/{id}/confirm"`,
/// exactly as in `template.yaml`), who may call it, and what the function does for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<H> {
    pub key: &'static str,
    pub access: Access,
    pub handler: H,
}

/// The route the request matched in `routes`, with its access enforced: `404 no_route` for
/// a route the table does not have, `401 unauthenticated` when a non-public route has no
/// verified caller, `403 forbidden` when a role-only route's caller lacks the role.
///
/// The caller is `Some` for every non-public route, `None` for public ones.
pub fn dispatch<H: Copy>(routes: &[Route<H>], req: &Request) -> Result<(H, Option<Caller>), ApiError> {
    let key = route_key(req);
    let route = routes.iter().find(|r| r.key == key).ok_or_else(|| no_route(req))?;
    let caller = match route.access {
        Access::Public => None,
        Access::SignedIn => Some(Caller::from_request(req)?),
        Access::Role(role) => {
            let caller = Caller::from_request(req)?;
            caller.require_role(role)?;
            Some(caller)
        }
    };
    Ok((route.handler, caller))
}

/// The caller [`dispatch`] found for a non-public route.
pub fn signed_in(caller: Option<Caller>) -> Result<Caller, ApiError> {
    caller.ok_or_else(unauthenticated)
}

fn unauthenticated() -> ApiError {
    ApiError::unauthorized("unauthenticated", "sign in first")
}

/// The API Gateway HTTP API request context lambda_http attached to the request.
fn context(req: &Request) -> Option<&ApiGatewayV2httpRequestContext> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => Some(ctx),
        #[allow(unreachable_patterns)] // other variants exist when a dependency enables other lambda_http features
        _ => None,
    }
}

/// `"POST /auth/signup"`: the template route that matched, which handlers dispatch on.
pub fn route_key(req: &Request) -> &str {
    context(req).and_then(|ctx| ctx.route_key.as_deref()).unwrap_or("")
}

/// The client's IP address as API Gateway saw it.
pub fn source_ip(req: &Request) -> Option<&str> {
    context(req).and_then(|ctx| ctx.http.source_ip.as_deref())
}

/// A path parameter the route declares, e.g. `{id}`.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    let value = req
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid_field(name, "missing path parameter"))?;
    // Every id we hand out is far shorter; the contract states the limit in characters (JSON
    // Schema's maxLength), and 128 of them, at most 512 bytes, stay well inside a key.
    if value.chars().count() > crate::store::keys::MAX_ID_LEN {
        return Err(ApiError::invalid_field(name, format!("at most {} characters", crate::store::keys::MAX_ID_LEN)));
    }
    Ok(value)
}

/// A query string parameter (the first, if repeated).
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|params| params.first(name))
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The raw body bytes, exactly as sent (webhook signatures are computed over these):
/// lambda_http has already decoded a base64-encoded body (`isBase64Encoded`) into
/// [`Body::Binary`]; a text body is its UTF-8 bytes.
pub fn raw_body(req: &Request) -> Result<Vec<u8>, ApiError> {
    Ok(req.body().as_ref().to_vec())
}

/// Parses a JSON body. Errors name the field at fault: `phone: phone number must be ...`.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_body", "a JSON body is required"));
    }
    // serde reads a struct from a JSON array by position (`["online"]` would pass for
    // `{"status":"online"}`): a body is a JSON object, nothing else.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
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

/// A claim of the caller's verified token (`auth_time`, ...), as API Gateway hands it over.
pub fn claim<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    context(req)
        .and_then(|ctx| ctx.authorizer.as_ref())
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get(name))
        .map(String::as_str)
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
        let claims = context(req)
            .and_then(|ctx| ctx.authorizer.as_ref())
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims)
            .ok_or_else(unauthenticated)?;
        let user_id = claims.get("sub").and_then(|sub| UserId::parse(sub).ok()).ok_or_else(unauthenticated)?;
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
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    let mut resp = Response::new(Body::Text(text));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

pub fn error_response(err: &ApiError) -> Response {
    let mut resp = json(err.status, &serde_json::json!({ "error": err }));
    if let Some(seconds) = err.retry_after {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    resp
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

/// `limit` from the query string: a whole number from 1 to `max`, `default` when absent;
/// anything else is `400 invalid_field`.
pub fn limit_param(req: &Request, default: i32, max: i32) -> Result<i32, ApiError> {
    match query_param(req, "limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a whole number from 1 to {max}"))),
    }
}

/// An opaque page cursor standing for a sort key (URL-safe base64 of `{"sk": ...}`): the
/// partition is always the route's own, so the key is all a cursor carries.
pub fn encode_sk_cursor(sk: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::json!({ "sk": sk }).to_string())
}

/// The sort key a cursor from [`encode_sk_cursor`] stands for, when it starts with `prefix`;
/// anything we did not hand out is `400 invalid_field` on `cursor`.
pub fn decode_sk_cursor(cursor: &str, prefix: &str) -> Result<String, ApiError> {
    use base64::Engine;
    let bad = || ApiError::invalid_field("cursor", "is not a cursor this API returned");
    if cursor.len() > 512 {
        return Err(bad());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let sk = value.get("sk").and_then(|v| v.as_str()).ok_or_else(bad)?;
    if !sk.starts_with(prefix) || sk.len() > 200 {
        return Err(bad());
    }
    Ok(sk.to_owned())
}

/// The route is not one this function serves.
pub fn no_route(req: &Request) -> ApiError {
    ApiError::new(404, "no_route", format!("no route {}", route_key(req)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription};

    use super::*;
    use crate::domain::json::whole_number;

    const SUB: &str = "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

    #[test]
    fn a_whole_number_may_be_written_with_a_decimal_point() {
        #[derive(serde::Deserialize, Debug)]
        struct Booking {
            #[serde(deserialize_with = "whole_number")]
            minutes: u32,
        }
        let minutes = |raw: &str| json_body::<Booking>(&request("POST /x", Body::from(raw), None)).map(|b| b.minutes);
        assert_eq!(minutes(r#"{"minutes":36}"#).unwrap(), 36);
        assert_eq!(minutes(r#"{"minutes":36.0}"#).unwrap(), 36);
        assert_eq!(minutes(r#"{"minutes":3.6e1}"#).unwrap(), 36);
        for refused in [r#"{"minutes":36.5}"#, r#"{"minutes":-1}"#, r#"{"minutes":"36"}"#, r#"{"minutes":4294967296}"#]
        {
            assert_eq!(minutes(refused).unwrap_err().field.as_deref(), Some("minutes"), "{refused}");
        }
    }

    /// A request as lambda_http builds one from an HTTP API event for `route_key`.
    fn request(route_key: &str, body: Body, claims: Option<&[(&str, &str)]>) -> Request {
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.route_key = Some(route_key.to_owned());
        if let Some(claims) = claims {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            ctx.authorizer = Some(authorizer);
        }
        ::http::Request::builder()
            .method(route_key.split(' ').next().unwrap_or("GET"))
            .body(body)
            .unwrap()
            .with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

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
        let req = |body: lambda_http::Body| request("POST /x", body, None);
        let err = json_body::<Body>(&req(r#"{"phone":"12"}"#.into())).unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (400, Some("phone")));
        assert_eq!(json_body::<Body>(&req("{not json".into())).unwrap_err().code, "invalid_body");
        assert_eq!(json_body::<Body>(&req(lambda_http::Body::Empty)).unwrap_err().code, "invalid_body");
        let err = json_body::<Body>(&req("{}".into())).unwrap_err();
        assert_eq!(err.status, 400, "{err:?}");
        // A base64-encoded body arrives decoded, as Binary: the same bytes, the same errors.
        let err = json_body::<Body>(&req(lambda_http::Body::Binary(br#"{"phone":"12"}"#.to_vec()))).unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (400, Some("phone")));
        // Only an object is a body: serde alone would read the struct from an array.
        for not_an_object in [r#"["+919876543210"]"#, " \"x\"", "42", "null"] {
            let err = json_body::<Body>(&req(not_an_object.into())).unwrap_err();
            assert_eq!((err.status, err.code.as_str()), (400, "invalid_body"), "{not_an_object}");
        }
        assert!(json_body::<Body>(&req(" \n{\"phone\":\"+919876543210\"}".into())).is_ok());
    }

    #[test]
    fn raw_body_is_the_bytes_sent_text_or_binary() {
        let binary = vec![0xff, 0x00, b'{'];
        assert_eq!(raw_body(&request("POST /x", Body::Binary(binary.clone()), None)).unwrap(), binary);
        assert_eq!(raw_body(&request("POST /x", "héllo".into(), None)).unwrap(), "héllo".as_bytes());
        assert!(raw_body(&request("POST /x", Body::Empty, None)).unwrap().is_empty());
    }

    #[test]
    fn path_and_query_parameters() {
        let req = request("GET /wallet/top-ups/{id}", Body::Empty, None)
            .with_path_parameters(HashMap::from([("id".to_owned(), "tu_1".to_owned())]))
            .with_query_string_parameters(HashMap::from([("limit".to_owned(), "5".to_owned())]));
        assert_eq!(path_param(&req, "id").unwrap(), "tu_1");
        assert_eq!(path_param(&req, "other").unwrap_err().field.as_deref(), Some("other"));
        assert_eq!(query_param(&req, "limit"), Some("5"));
        assert_eq!(query_param(&req, "cursor"), None);
        // The limit is 128 characters, as the contract's maxLength counts them, not bytes.
        let with_id = |id: String| {
            request("GET /x/{id}", Body::Empty, None).with_path_parameters(HashMap::from([("id".to_owned(), id)]))
        };
        assert!(path_param(&with_id("𝄞".repeat(128)), "id").is_ok());
        let err = path_param(&with_id("a".repeat(129)), "id").unwrap_err();
        assert_eq!((err.status, err.field.as_deref()), (400, Some("id")));
        assert_eq!(route_key(&req), "GET /wallet/top-ups/{id}");
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        Open,
        Mine,
        Stars,
    }

    const ROUTES: &[Route<Op>] = &[
        Route { key: "POST /open", access: Access::Public, handler: Op::Open },
        Route { key: "GET /mine", access: Access::SignedIn, handler: Op::Mine },
        Route { key: "POST /stars", access: Access::Role(UserType::Astrologer), handler: Op::Stars },
    ];

    #[test]
    fn dispatch_finds_the_route_and_enforces_its_access() {
        let user: &[(&str, &str)] = &[("sub", SUB), ("cognito:groups", "[user]")];
        let astrologer: &[(&str, &str)] = &[("sub", SUB), ("cognito:groups", "[astrologer]")];
        let status = |r: Result<(Op, Option<Caller>), ApiError>| r.map_err(|e| (e.status, e.code));

        assert_eq!(status(dispatch(ROUTES, &request("POST /open", Body::Empty, None))), Ok((Op::Open, None)));
        let (op, caller) = dispatch(ROUTES, &request("POST /open", Body::Empty, Some(user))).unwrap();
        assert_eq!((op, caller), (Op::Open, None), "public routes get no caller");

        let err = dispatch(ROUTES, &request("GET /mine", Body::Empty, None)).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (401, "unauthenticated"));
        let (op, caller) = dispatch(ROUTES, &request("GET /mine", Body::Empty, Some(user))).unwrap();
        assert_eq!((op, signed_in(caller).unwrap().user_id.as_str()), (Op::Mine, SUB));

        let err = dispatch(ROUTES, &request("POST /stars", Body::Empty, None)).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (401, "unauthenticated"));
        let err = dispatch(ROUTES, &request("POST /stars", Body::Empty, Some(user))).unwrap_err();
        let expected = Caller { user_id: UserId::parse(SUB).unwrap(), groups: vec![UserType::User] }
            .require_role(UserType::Astrologer)
            .unwrap_err();
        assert_eq!(err, expected);
        assert_eq!(err.status, 403);
        let (op, caller) = dispatch(ROUTES, &request("POST /stars", Body::Empty, Some(astrologer))).unwrap();
        assert_eq!((op, caller.unwrap().groups), (Op::Stars, vec![UserType::Astrologer]));

        let err = dispatch(ROUTES, &request("GET /elsewhere", Body::Empty, Some(user))).unwrap_err();
        assert_eq!((err.status, err.code.as_str(), err.message.as_str()), (404, "no_route", "no route GET /elsewhere"));
        assert_eq!(signed_in(None).unwrap_err().status, 401);
    }

    #[test]
    fn error_body_shape() {
        let resp = error_response(&ApiError::not_found("wallet"));
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
        let Body::Text(text) = resp.body() else { panic!() };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "wallet not found");
    }
}
