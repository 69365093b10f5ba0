//! The local API Gateway (HTTP API, payload format 2.0): the template's routes, the
//! Cognito JWT authorizer checked as API Gateway checks it, and the claims passed on in
//! `requestContext.authorizer.jwt.claims` the same way.
//!
//! Functions are invoked as the Lambda runtime invokes them on AWS ([`invoke`]): the event
//! goes through lambda_http's own parsing into a `lambda_http::Request`, and the handler's
//! response through lambda_http's own conversion into the payload-2.0 response JSON, which
//! is turned into HTTP as API Gateway does.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context as LambdaContext, LambdaEvent, Service, service_fn};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::functions::HttpHandler;
use crate::template::HttpRoute;

pub struct Route {
    pub route: HttpRoute,
    pub handler: HttpHandler,
}

pub struct Gateway {
    pub routes: Vec<Route>,
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    keys: OnceCell<JwkSet>,
}

impl Gateway {
    pub fn new(routes: Vec<Route>, issuer: String, audience: String, jwks_url: String) -> Self {
        Self { routes, issuer, audience, jwks_url, keys: OnceCell::new() }
    }

    /// The route a request matches, and its path parameters, percent-decoded as an HTTP API
    /// hands them to Lambda (`/notifications/%F0%9D%95%BF` gives `id` = "𝕿").
    fn matching(&self, method: &Method, path: &str) -> Option<(&Route, HashMap<String, String>)> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        self.routes.iter().filter(|r| r.route.method == method.as_str()).find_map(|r| {
            let pattern: Vec<&str> = r.route.path.split('/').collect();
            if pattern.len() != parts.len() {
                return None;
            }
            let mut params = HashMap::new();
            for (p, actual) in pattern.iter().zip(&parts) {
                if let Some(name) = p.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                    if actual.is_empty() {
                        return None;
                    }
                    let decoded = percent_encoding::percent_decode_str(actual).decode_utf8_lossy();
                    params.insert(name.to_owned(), decoded.into_owned());
                } else if p != actual {
                    return None;
                }
            }
            Some((r, params))
        })
    }

    async fn verify(&self, headers: &HeaderMap) -> Result<Map<String, Value>> {
        let raw = headers.get("authorization").and_then(|v| v.to_str().ok()).context("no Authorization header")?;
        let token = raw.strip_prefix("Bearer ").unwrap_or(raw).trim();
        let keys = self
            .keys
            .get_or_try_init(|| async { reqwest::get(&self.jwks_url).await?.json::<JwkSet>().await })
            .await
            .context("fetching JWKS")?;
        let header = jsonwebtoken::decode_header(token)?;
        let jwk = keys.find(header.kid.as_deref().unwrap_or_default()).context("unknown signing key")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false; // id tokens carry `aud`, access tokens `client_id`: checked below
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims;
        let audience = claims.get("aud").or_else(|| claims.get("client_id")).and_then(Value::as_str);
        anyhow::ensure!(audience == Some(self.audience.as_str()), "token is for another client");
        Ok(claims)
    }
}

/// API Gateway hands claims to the function as strings; arrays become `[a b]`.
fn claims_as_strings(claims: Map<String, Value>) -> Map<String, Value> {
    claims
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Array(items) => {
                    format!(
                        "[{}]",
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
                other => other.to_string(),
            };
            (k, Value::String(text))
        })
        .collect()
}

pub async fn serve(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let Some((route, params)) = gw.matching(&method, &path) else {
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            json!({ "message": "Not Found" }).to_string(),
        )
            .into_response();
    };
    let authorizer = if route.route.authorized {
        match gw.verify(&headers).await {
            Ok(claims) => Some(json!({ "jwt": { "claims": claims_as_strings(claims), "scopes": null } })),
            Err(e) => {
                tracing::info!(route = %route.route.route_key(), reason = %e, "unauthorized");
                return (
                    StatusCode::UNAUTHORIZED,
                    [("content-type", "application/json")],
                    json!({ "message": "Unauthorized" }).to_string(),
                )
                    .into_response();
            }
        }
    } else {
        None
    };

    let event = api_event(&route.route, &method, &uri, &headers, params, authorizer, &body);
    match invoke(&route.handler, &event).await {
        Ok(resp) => to_http(resp),
        Err(e) => {
            tracing::error!(route = %route.route.route_key(), error = format!("{e:#}"), "invocation failed");
            internal_error()
        }
    }
}

/// Invokes an HTTP function with a payload-2.0 event the way `lambda_http::run` does on
/// AWS: the event JSON is parsed into lambda_http's `LambdaRequest` and converted into a
/// `lambda_http::Request` by lambda_http's own adapter, and the handler's response is
/// converted by the same adapter into the response JSON the runtime returns to Lambda
/// (`{ statusCode, headers, body, isBase64Encoded, cookies }`), read back here as API
/// Gateway reads it.
pub async fn invoke(handler: &HttpHandler, event: &Value) -> Result<ApiGatewayV2httpResponse> {
    // The runtime gets the event as bytes; `LambdaRequest` only deserialises from JSON text.
    let bytes = serde_json::to_vec(event)?;
    let payload: LambdaRequest =
        serde_json::from_slice(&bytes).context("the event is not one lambda_http accepts (payload format 2.0)")?;
    let handler = handler.clone();
    let mut adapter = Adapter::from(service_fn(move |req: lambda_http::Request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    }));
    std::future::poll_fn(|cx| adapter.poll_ready(cx)).await?;
    let response = adapter.call(LambdaEvent::new(payload, LambdaContext::default())).await?;
    let returned = serde_json::to_vec(&response)?;
    serde_json::from_slice(&returned).context("the function returned a response API Gateway cannot read")
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "application/json")],
        json!({ "message": "Internal Server Error" }).to_string(),
    )
        .into_response()
}

/// The payload-format-2.0 event API Gateway would send.
fn api_event(
    route: &HttpRoute,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    params: HashMap<String, String>,
    authorizer: Option<Value>,
    body: &Bytes,
) -> Value {
    let mut header_map = Map::new();
    for (name, value) in headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(existing)) => *existing = format!("{existing},{value}"),
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let query: Map<String, Value> = uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
        })
        .unwrap_or_default();
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(body)), true),
    };
    let now = chrono::Utc::now();
    let mut context = json!({
        "accountId": crate::provision::ACCOUNT_ID,
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": method.as_str(),
            "path": uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default(),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route.route_key(),
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(a) = authorizer {
        context["authorizer"] = a;
    }
    json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or_default(),
        "headers": header_map,
        "queryStringParameters": query,
        "pathParameters": params,
        "requestContext": context,
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The HTTP response API Gateway makes of a function's payload-2.0 response: the body
/// base64-decoded when `isBase64Encoded`, each of `cookies` a `Set-Cookie` header.
fn to_http(resp: ApiGatewayV2httpResponse) -> Response {
    let text: &[u8] = resp.body.as_deref().unwrap_or_default();
    let body = if resp.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "the function's base64 body does not decode");
                return internal_error();
            }
        }
    } else {
        text.to_vec()
    };
    let Ok(status) = u16::try_from(resp.status_code).map_err(drop).and_then(|s| StatusCode::from_u16(s).map_err(drop))
    else {
        tracing::error!(status = resp.status_code, "the function returned an invalid status code");
        return internal_error();
    };
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (name, value) in resp.headers.iter().chain(resp.multi_value_headers.iter()) {
        out.headers_mut().append(name, value.clone());
    }
    for cookie in &resp.cookies {
        if let Ok(value) = cookie.parse() {
            out.headers_mut().append(axum::http::header::SET_COOKIE, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::http::Body as LambdaBody;

    use crate::functions::BoxFuture;

    fn event(body: &[u8]) -> Value {
        let route = HttpRoute { method: "POST".into(), path: "/webhooks/{name}".into(), authorized: false };
        let uri: Uri = "/webhooks/digio?x=1&x=2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-signature", "abc".parse().unwrap());
        let params = HashMap::from([("name".to_owned(), "digio".to_owned())]);
        api_event(&route, &Method::POST, &uri, &headers, params, None, &Bytes::copy_from_slice(body))
    }

    /// Echoes what lambda_http handed the function, as text or (for binary input) bytes.
    fn echo() -> HttpHandler {
        Arc::new(|req: lambda_http::Request| {
            Box::pin(async move {
                let seen = json!({
                    "route_key": shared::http::route_key(&req),
                    "name": shared::http::path_param(&req, "name").ok(),
                    "x": shared::http::query_param(&req, "x"),
                    "signature": shared::http::header(&req, "x-signature"),
                    "method": req.method().as_str(),
                    "binary": matches!(req.body(), LambdaBody::Binary(_)),
                    "raw": shared::http::raw_body(&req).unwrap(),
                });
                let mut resp = shared::http::json(207, &seen);
                resp.headers_mut().append("set-cookie", "a=1".parse().unwrap());
                resp
            }) as BoxFuture<_>
        })
    }

    #[test]
    fn path_parameters_are_percent_decoded_as_api_gateway_does() {
        let route = HttpRoute { method: "POST".into(), path: "/notifications/{id}/read".into(), authorized: true };
        let gw = Gateway::new(vec![Route { route, handler: echo() }], String::new(), String::new(), String::new());
        let (_, params) = gw.matching(&Method::POST, "/notifications/%F0%9D%95%BF%20a%2Fb/read").unwrap();
        assert_eq!(params["id"], "𝕿 a/b");
    }

    #[tokio::test]
    async fn functions_see_the_event_as_lambda_http_parses_it() {
        let text = br#"{"a": 1}"#;
        let resp = invoke(&echo(), &event(text)).await.unwrap();
        assert_eq!(resp.status_code, 207);
        assert_eq!(resp.cookies, vec!["a=1".to_owned()], "Set-Cookie goes to `cookies` in payload 2.0");
        let seen: Value = serde_json::from_slice(resp.body.as_deref().unwrap()).unwrap();
        assert_eq!(seen["route_key"], "POST /webhooks/{name}");
        assert_eq!(seen["name"], "digio");
        assert_eq!(seen["x"], "1");
        assert_eq!(seen["signature"], "abc");
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["binary"], false);
        assert_eq!(seen["raw"], json!(text.to_vec()));

        // Not UTF-8: sent base64-encoded, handed over decoded, byte for byte.
        let bytes = [0xff, 0xfe, b'{', 0x00];
        let resp = invoke(&echo(), &event(&bytes)).await.unwrap();
        let seen: Value = serde_json::from_slice(resp.body.as_deref().unwrap()).unwrap();
        assert_eq!((seen["binary"].clone(), seen["raw"].clone()), (json!(true), json!(bytes.to_vec())));

        let http = to_http(invoke(&echo(), &event(text)).await.unwrap());
        assert_eq!(http.status(), 207);
        assert_eq!(http.headers()["content-type"], "application/json");
        assert_eq!(http.headers()["set-cookie"], "a=1");
    }

    #[tokio::test]
    async fn binary_responses_are_base64_encoded_and_decoded_again() {
        let handler: HttpHandler = Arc::new(|_req| {
            Box::pin(async {
                let mut resp = shared::http::Response::new(LambdaBody::Binary(vec![0x89, b'P', b'N', b'G']));
                resp.headers_mut().insert("content-type", "image/png".parse().unwrap());
                resp
            }) as BoxFuture<_>
        });
        let resp = invoke(&handler, &event(b"")).await.unwrap();
        assert!(resp.is_base64_encoded);
        let http = to_http(resp);
        let bytes = axum::body::to_bytes(http.into_body(), 1024).await.unwrap();
        assert_eq!(&bytes[..], &[0x89, b'P', b'N', b'G']);
    }
}
