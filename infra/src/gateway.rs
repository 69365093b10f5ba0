//! The local API Gateway (HTTP API, payload format 2.0): the template's routes, the
//! Cognito JWT authorizer checked as API Gateway checks it, and the claims passed on in
//! `requestContext.authorizer.jwt.claims` the same way.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
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

    /// The route a request matches, and its path parameters.
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
                    params.insert(name.to_owned(), actual.to_string());
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
    let request = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("local gateway built a bad event: {e}"))
                .into_response();
        }
    };
    to_http((route.handler)(request).await)
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

fn to_http(resp: shared::http::Response) -> Response {
    let body = match resp.body {
        Some(LambdaBody::Text(t)) => Body::from(t),
        Some(LambdaBody::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(resp.status_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &resp.headers {
        out.headers_mut().insert(name, value.clone());
    }
    out
}
