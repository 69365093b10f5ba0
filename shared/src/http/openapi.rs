//! The API contract's building blocks (feature `openapi`, enabled only by the `api-contract`
//! crate, so no Lambda binary links utoipa).
//!
//! Each HTTP function exposes `pub fn openapi() -> FunctionDoc`, built by [`FunctionDoc::new`]
//! from its own `ROUTES` table and an exhaustive `match` on its `Op`: a route cannot be added
//! to the table without the compiler asking for its [`Operation`]. Schemas come from the
//! request and response types themselves (`#[derive(utoipa::ToSchema)]`); what the route
//! table already says (security, path parameters) is derived, not written again.
//!
//! Errors are declared per route as [`ErrorCase`]s (status, `code`, meaning); the ones every
//! route of a kind can return (access, JSON body, `Idempotency-Key`, the store) are added
//! here, from the same facts the shared code acts on. The `api-contract` tests hold the
//! declarations against the code that constructs the errors.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use crate::http::{Access, Route};

// The domain types' hand-written schemas, for the functions' documents.
pub use crate::domain::schema::*;

/// The schemas a document refers to, by name (`#/components/schemas/{name}`).
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub schemas: BTreeMap<String, Value>,
}

impl Registry {
    /// Registers `schema` as `name`; two different schemas under one name are a bug
    /// (two types called alike in two functions): rename one.
    pub fn insert(&mut self, name: &str, schema: Value) {
        if let Some(existing) = self.schemas.get(name) {
            assert_eq!(existing, &schema, "two different schemas are called {name}: rename one of the types");
        }
        self.schemas.insert(name.to_owned(), schema);
    }
}

/// A schema in the document: a `$ref` to a registered component, or an inline schema.
pub type SchemaFn = fn(&mut Registry) -> Value;

/// `T`'s schema (and the schemas it uses) registered, and a `$ref` to it.
pub fn schema<T: utoipa::ToSchema>(registry: &mut Registry) -> Value {
    let mut used = Vec::new();
    T::schemas(&mut used);
    for (name, s) in used {
        registry.insert(&name, to_json(&s));
    }
    let name = T::name();
    registry.insert(&name, to_json(&T::schema()));
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn to_json(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).expect("a schema serialises")
}

/// An error a route can return: `{ "error": { "code", "message", "field"? } }` with `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ErrorCase {
    pub status: u16,
    pub code: &'static str,
    /// What it means for the app (shown in the document).
    pub meaning: &'static str,
}

pub const fn error(status: u16, code: &'static str, meaning: &'static str) -> ErrorCase {
    ErrorCase { status, code, meaning }
}

/// A request or response body.
#[derive(Clone, Copy)]
pub struct Body {
    pub schema: SchemaFn,
    pub example: Option<fn() -> Value>,
}

pub fn body(schema: SchemaFn) -> Body {
    Body { schema, example: None }
}

/// A successful response.
#[derive(Clone, Copy)]
pub struct Success {
    pub status: u16,
    pub description: &'static str,
    pub body: Body,
}

pub fn success(status: u16, description: &'static str, schema: SchemaFn) -> Success {
    Success { status, description, body: body(schema) }
}

/// A query or header parameter (path parameters come from the route key).
#[derive(Clone)]
pub struct Param {
    pub name: &'static str,
    /// `query`, `header` or `path` (a path parameter described in full, in place of the default).
    pub location: &'static str,
    pub required: bool,
    pub description: &'static str,
    pub schema: Value,
}

pub fn query(name: &'static str, description: &'static str, schema: Value) -> Param {
    Param { name, location: "query", required: false, description, schema }
}

/// A path parameter whose schema is not the default id's (1 to `MAX_ID_LEN` characters).
pub fn path(name: &'static str, description: &'static str, schema: Value) -> Param {
    Param { name, location: "path", required: true, description, schema }
}

pub fn header(name: &'static str, required: bool, description: &'static str, schema: Value) -> Param {
    Param { name, location: "header", required, description, schema }
}

/// How the route reads its body.
#[derive(Clone, Copy, Default)]
pub enum Request {
    /// No body is read.
    #[default]
    None,
    /// `shared::http::json_body`: 400 `invalid_body` / `invalid_field` when it does not parse.
    Json(Body),
    /// The raw bytes, verified by a signature header before anything is parsed (webhooks).
    Signed { body: Body, signature_header: &'static str, description: &'static str },
}

/// A callback the route sets off: a provider calling one of our webhook routes later.
#[derive(Clone, Copy)]
pub struct Callback {
    pub name: &'static str,
    /// The route key of the webhook route the provider calls (`POST /webhooks/digio`).
    pub route: &'static str,
    pub description: &'static str,
}

/// One operation: everything about a route that its table does not already say.
#[derive(Clone, Default)]
pub struct Operation {
    pub summary: &'static str,
    pub description: &'static str,
    pub request: Request,
    pub params: Vec<Param>,
    /// The route requires an `Idempotency-Key` header (`IdempotencyKey::required`).
    pub idempotency_key: bool,
    pub responses: Vec<Success>,
    /// The errors this route's own code returns (the common ones are added by [`FunctionDoc::new`]).
    pub errors: Vec<ErrorCase>,
    pub callbacks: Vec<Callback>,
}

/// One documented route: its table entry and its operation, with every error it can return.
#[derive(Clone)]
pub struct Documented {
    pub key: &'static str,
    pub access: Access,
    pub operation: Operation,
}

impl Documented {
    pub fn method(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(m, _)| m)
    }
    pub fn path(&self) -> &'static str {
        self.key.split_once(' ').map_or(self.key, |(_, p)| p)
    }
    /// `{id}` in `/wallet/top-ups/{id}`.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path().split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
    }
}

/// A function's part of the contract.
#[derive(Clone)]
pub struct FunctionDoc {
    /// The template function's binary (`top-up`).
    pub binary: &'static str,
    /// The group its operations are listed under.
    pub tag: &'static str,
    pub routes: Vec<Documented>,
}

/// Every route can fail on our side.
pub const INTERNAL: ErrorCase = error(500, "internal", "a fault on our side; the detail is in our logs. Retry later");
/// Routes that read or write the table.
pub const STORE_UNAVAILABLE: ErrorCase =
    error(503, "store_unavailable", "the database is throttling or unreachable; retry shortly");
pub const UNAUTHENTICATED: ErrorCase =
    error(401, "unauthenticated", "no verified caller: send `Authorization: Bearer <access token>`");
pub const FORBIDDEN: ErrorCase = error(403, "forbidden", "signed in, but not in the role this route is for");
pub const INVALID_BODY: ErrorCase = error(400, "invalid_body", "the body is missing or is not the JSON expected");
pub const INVALID_FIELD: ErrorCase =
    error(400, "invalid_field", "a field (named in `field`) is missing or invalid; `message` says why");
pub const NOT_FOUND: ErrorCase = error(404, "not_found", "the thing asked for does not exist (or is not yours)");
/// `IdempotencyKey::required`.
pub const IDEMPOTENCY: [ErrorCase; 4] = [
    error(400, "missing_idempotency_key", "send an `Idempotency-Key` header"),
    error(400, "invalid_field", "`Idempotency-Key` is malformed (`field`: `Idempotency-Key`)"),
    error(422, "idempotency_key_reused", "this key was used for a different request; use a new key"),
    error(409, "idempotency_conflict", "a request with this key is still in progress; retry"),
];
/// A provider behind `shared::outbound::ProviderError` (`digio`, `razorpay`, `s3`: the
/// images bucket's own requests).
pub fn provider_errors(provider: &'static str) -> [ErrorCase; 2] {
    let (unavailable, rejected) = match provider {
        "digio" => ("digio_unavailable", "digio_error"),
        "razorpay" => ("razorpay_unavailable", "razorpay_error"),
        "s3" => ("s3_unavailable", "s3_error"),
        other => panic!("no provider {other}"),
    };
    [
        error(503, unavailable, "the provider is unreachable or too slow; nothing was changed, retry shortly"),
        error(502, rejected, "the provider refused the request; nothing was changed, retry"),
    ]
}

impl FunctionDoc {
    /// The function's routes, in table order, each with its operation from `operation` and
    /// the errors the shared code adds: `common` (e.g. [`STORE_UNAVAILABLE`]) and
    /// [`INTERNAL`] everywhere; `401 unauthenticated` behind the JWT authorizer;
    /// `403 forbidden` for a role's routes; `400 invalid_body`/`invalid_field` for JSON bodies;
    /// [`IDEMPOTENCY`] where the key is required; `400 invalid_field` for path parameters.
    pub fn new<H: Copy>(
        binary: &'static str,
        tag: &'static str,
        routes: &[Route<H>],
        common: &[ErrorCase],
        operation: impl Fn(H) -> Operation,
    ) -> Self {
        let routes = routes
            .iter()
            .map(|route| {
                let mut op = operation(route.handler);
                let mut errors = op.errors.clone();
                errors.push(INTERNAL);
                errors.extend_from_slice(common);
                match route.access {
                    Access::Public => {}
                    Access::SignedIn => errors.push(UNAUTHENTICATED),
                    Access::Role(_) => errors.extend([UNAUTHENTICATED, FORBIDDEN]),
                }
                if matches!(op.request, Request::Json(_)) {
                    errors.extend([INVALID_BODY, INVALID_FIELD]);
                }
                if op.idempotency_key {
                    errors.extend(IDEMPOTENCY);
                }
                if route.key.contains('{') {
                    errors.push(error(400, "invalid_field", "a path parameter is missing"));
                }
                // One entry per (status, code): the first meaning given wins.
                let mut seen = std::collections::BTreeSet::new();
                errors.retain(|e| seen.insert((e.status, e.code)));
                errors.sort_by_key(|e| (e.status, e.code));
                op.errors = errors;
                Documented { key: route.key, access: route.access, operation: op }
            })
            .collect();
        Self { binary, tag, routes }
    }
}
