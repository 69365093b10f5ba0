//! The API contract the mobile apps build against: one OpenAPI 3.1 document, merged from
//! every HTTP function's `openapi()` (its route table, its request and response types, its
//! errors; see `shared::http::openapi`). The local stack serves it at `/openapi.json` and `/docs`.
//!
//! Adding an HTTP function: give it the `openapi` feature and a `pub fn openapi()` like the
//! others, and list it in [`functions`]. Adding a route: add it to the function's `ROUTES`;
//! the compiler then asks for its `Operation` in the function's `openapi()`.

pub mod asyncapi;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use shared::http::Access;
use shared::http::openapi::{Documented, ErrorCase, FunctionDoc, Registry, Request};

/// Every HTTP function's part of the contract.
pub fn functions() -> Vec<FunctionDoc> {
    vec![
        otp_signup::openapi(),
        profile::openapi(),
        kyc_initiate::openapi(),
        digio_webhook::openapi(),
        call_session::openapi(),
        top_up::openapi(),
        astrologer_profile::openapi(),
        catalogue::openapi(),
        book::openapi(),
        operations::openapi(),
        inbox::openapi(),
        review::openapi(),
    ]
}

/// The whole document.
pub fn document() -> Value {
    document_of(&functions())
}

const DESCRIPTION: &str = "\
The AstroKiran API: one document for every route of the backend's API Gateway HTTP API, generated \
from the route tables and types the Lambda functions use.

* **Sign in**: `POST /auth/otp` then `POST /auth/otp/verify` return Cognito tokens; send the \
`access_token` as `Authorization: Bearer <token>` (the *Authorize* button here). Routes marked \
*astrologers only* also need the caller to be in the Cognito group `astrologer`.
* **Errors** are `{ \"error\": { \"code\", \"message\", \"field\"? } }`: `code` is stable and listed \
for every status of every route, `message` is for people, `field` names the request field at fault. \
A 4xx is something the caller can fix. API Gateway itself answers `401 {\"message\":\"Unauthorized\"}` \
for a missing or invalid token and `500 {\"message\":\"Internal Server Error\"}` if a function crashes.
* **Money** is INR as a string with two decimals (`\"500.00\"`), never a JSON number; requests may \
send a string or a number with at most two decimals. **Timestamps** are RFC 3339 (`2026-04-01T10:00:00.000Z`).
* **Idempotency-Key** (a UUID, say) is required on money-moving POSTs: a retry with the same key and \
body gets the first response again (header `Idempotent-Replayed: true`); the same key with another \
body gets `422 idempotency_key_reused`.
* **Pagination**: lists return `next_cursor`; pass it back as `cursor` for the next page (`null`: last page).
* **Webhooks** (`/webhooks/*`) are called by Digio and Razorpay, signed with an HMAC of the raw body; \
they are listed as the callbacks of the operations that set them off.";

/// The document for `functions` (tests build it from altered inputs).
pub fn document_of(functions: &[FunctionDoc]) -> Value {
    let mut registry = Registry::default();
    registry.insert("Error", error_schema(None));
    registry.insert(
        "GatewayMessage",
        json!({
            "type": "object", "required": ["message"], "additionalProperties": false,
            "description": "API Gateway's own answer (not a function's): `Unauthorized`, `Internal Server Error`",
            "properties": { "message": { "type": "string" } },
        }),
    );
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut tags = Vec::new();
    for function in functions {
        if !tags.iter().any(|t: &Value| t["name"] == function.tag) {
            tags.push(json!({ "name": function.tag }));
        }
        for route in &function.routes {
            let op = operation(function, route, &mut registry);
            paths.entry(route.path()).or_default().insert(route.method().to_lowercase(), op);
        }
    }
    let paths: Map<String, Value> = paths.into_iter().map(|(p, ops)| (p.to_owned(), Value::Object(ops))).collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "AstroKiran API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
        },
        "servers": [{ "url": "/", "description": "this server (the local stack serves the document next to the API)" }],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": registry.schemas,
            "securitySchemes": {
                "cognitoJwt": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "The Cognito `access_token` from `POST /auth/otp/verify`, checked by API Gateway's JWT authorizer (issuer, audience, expiry, signature).",
                },
            },
        },
    })
}

/// The error body, with `code` limited to `codes` when given.
fn error_schema(codes: Option<&[&str]>) -> Value {
    let mut code = json!({ "type": "string", "description": "stable, machine-readable" });
    if let Some(codes) = codes {
        code["enum"] = json!(codes);
    }
    json!({
        "type": "object", "required": ["error"], "additionalProperties": false,
        "properties": { "error": {
            "type": "object", "required": ["code", "message"], "additionalProperties": false,
            "properties": {
                "code": code,
                "message": { "type": "string", "description": "for people; may change" },
                "field": { "type": "string", "description": "the request field at fault, when there is one" },
                "shortfall": {
                    "type": "string", "pattern": shared::http::openapi::MONEY_PATTERN,
                    "description": "`insufficient_balance` only: how much more INR the wallet needs",
                },
            },
        } },
    })
}

fn operation_id(key: &str) -> String {
    key.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .replace("__", "_")
}

fn json_content(schema: Value, example: Option<Value>) -> Value {
    let mut media = json!({ "schema": schema });
    if let Some(e) = example {
        media["example"] = e;
    }
    json!({ "application/json": media })
}

fn operation(function: &FunctionDoc, route: &Documented, registry: &mut Registry) -> Value {
    let op = &route.operation;
    let access = match route.access {
        Access::Public => "Public (no token).".to_owned(),
        Access::SignedIn => "Signed in: `Authorization: Bearer <access token>`.".to_owned(),
        Access::Role(role) => format!(
            "Signed in, {}s only (Cognito group `{}`); anyone else gets `403 forbidden`.",
            role.as_str(),
            role.as_str()
        ),
    };
    let mut description = String::new();
    if !op.description.is_empty() {
        description.push_str(op.description);
        description.push_str("\n\n");
    }
    description.push_str(&format!("**Access:** {access}"));

    let described = |name: &str| op.params.iter().any(|p| p.location == "path" && p.name == name);
    let mut params: Vec<Value> = route
        .path_params()
        .into_iter()
        .filter(|name| !described(name))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true,
                "schema": { "type": "string", "minLength": 1, "maxLength": shared::store::keys::MAX_ID_LEN } })
        })
        .collect();
    if op.idempotency_key {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": true,
            "description": "1 to 128 of letters, digits, `-`, `_`, `.`, `:` (a UUID is best); a retry with the same key and body gets the first response",
            "schema": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$" },
        }));
    }
    if let Request::Signed { signature_header, description, .. } = op.request {
        params.push(json!({
            "name": signature_header, "in": "header", "required": true, "description": description,
            "schema": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$" },
        }));
    }
    for p in &op.params {
        params.push(json!({
            "name": p.name, "in": p.location, "required": p.required, "description": p.description, "schema": p.schema,
        }));
    }

    let mut out = json!({
        "operationId": operation_id(route.key),
        "tags": [function.tag],
        "summary": op.summary,
        "description": description,
        "x-function": function.binary,
        "x-access": match route.access {
            Access::Public => "public".to_owned(),
            Access::SignedIn => "signed-in".to_owned(),
            Access::Role(role) => format!("role:{}", role.as_str()),
        },
        "security": if route.access == Access::Public { json!([]) } else { json!([{ "cognitoJwt": [] }]) },
    });
    if !params.is_empty() {
        out["parameters"] = json!(params);
    }
    match op.request {
        Request::None => {}
        Request::Json(body) => {
            let schema = (body.schema)(registry);
            out["requestBody"] =
                json!({ "required": true, "content": json_content(schema, body.example.map(|e| e())) });
        }
        Request::Signed { body, .. } => {
            let schema = (body.schema)(registry);
            out["requestBody"] = json!({
                "required": true,
                "description": "The provider's event, exactly as sent: the signature is over these bytes.",
                "content": json_content(schema, body.example.map(|e| e())),
            });
        }
    }

    let mut responses = Map::new();
    for success in &op.responses {
        let schema = (success.body.schema)(registry);
        let mut response = json!({
            "description": success.description,
            "content": json_content(schema, success.body.example.map(|e| e())),
        });
        if op.idempotency_key {
            response["headers"] = json!({ "Idempotent-Replayed": {
                "description": "`true` when this is the stored first response to the same `Idempotency-Key`",
                "schema": { "type": "string", "enum": ["true"] },
            } });
        }
        responses.insert(success.status.to_string(), response);
    }
    let mut by_status: BTreeMap<u16, Vec<&ErrorCase>> = BTreeMap::new();
    for e in &op.errors {
        by_status.entry(e.status).or_default().push(e);
    }
    for (status, cases) in by_status {
        let codes: Vec<&str> = cases.iter().map(|c| c.code).collect::<BTreeSet<_>>().into_iter().collect();
        let mut text = String::from("| code | meaning |\n|---|---|\n");
        for c in &cases {
            text.push_str(&format!("| `{}` | {} |\n", c.code, c.meaning));
        }
        let mut schema = error_schema(Some(&codes));
        let gateway = status == 500 || (status == 401 && route.access != Access::Public);
        if gateway {
            text.push_str(
                "\nOr API Gateway's own `{\"message\": …}` (a missing or invalid token; a crashed function).\n",
            );
            schema = json!({ "anyOf": [schema, { "$ref": "#/components/schemas/GatewayMessage" }] });
        }
        responses.insert(status.to_string(), json!({ "description": text, "content": json_content(schema, None) }));
    }
    out["responses"] = Value::Object(responses);

    if !op.callbacks.is_empty() {
        let mut callbacks = Map::new();
        for cb in &op.callbacks {
            let (method, path) = cb.route.split_once(' ').expect("a route key");
            let pointer = path.replace('~', "~0").replace('/', "~1");
            callbacks.insert(
                cb.name.to_owned(),
                json!({ path: {
                    "description": cb.description,
                    "$ref": format!("#/paths/{pointer}"),
                    "x-method": method.to_lowercase(),
                } }),
            );
        }
        out["callbacks"] = Value::Object(callbacks);
    }
    out
}

/// The (status, code) pairs the document lists for an operation.
pub fn documented_errors(doc: &Value, method: &str, path: &str) -> BTreeSet<(u16, String)> {
    let mut out = BTreeSet::new();
    let Some(responses) = doc["paths"][path][method.to_lowercase()]["responses"].as_object() else {
        return out;
    };
    for (status, response) in responses {
        let schema = &response["content"]["application/json"]["schema"];
        let candidates: Vec<&Value> = match schema["anyOf"].as_array() {
            Some(list) => list.iter().collect(),
            None => vec![schema],
        };
        for s in candidates {
            for code in s["properties"]["error"]["properties"]["code"]["enum"].as_array().into_iter().flatten() {
                out.insert((status.parse().unwrap_or(0), code.as_str().unwrap_or_default().to_owned()));
            }
        }
    }
    out
}

/// Every (method, path) the document has an operation for, as route keys (`GET /me`).
pub fn operations(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    out
}
