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

/// A schema written as JSON, for the few types whose serde form is hand-written
/// (`Money`, `Phone`, ...); a unit test serialises each such type and checks it against this.
pub fn json_schema(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema object")
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
/// A provider behind `shared::outbound::ProviderError` (`digio`, `razorpay`).
pub fn provider_errors(provider: &'static str) -> [ErrorCase; 2] {
    let (unavailable, rejected) = match provider {
        "digio" => ("digio_unavailable", "digio_error"),
        "razorpay" => ("razorpay_unavailable", "razorpay_error"),
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

// ------------------------------------------------------------------ hand-written serde forms

/// The schema of [`crate::Money`] as the API sends it: INR, a string with two decimals.
impl utoipa::PartialSchema for crate::Money {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": MONEY_PATTERN,
            "description": "INR as a string with exactly two decimals (never a JSON number)",
            "examples": ["500.00"],
        }))
    }
}
impl utoipa::ToSchema for crate::Money {}

pub const MONEY_PATTERN: &str = "^[0-9]+\\.[0-9]{2}$";
pub const AMOUNT_PATTERN: &str = "^-?[0-9]+\\.[0-9]{2}$";

/// What a request may send for an amount: what `Money`'s `Deserialize` accepts.
pub fn money_input() -> RefOr<Schema> {
    json_schema(json!({
        "description": "INR with at most two decimals: a string (`\"500\"`, `\"500.50\"`) or a JSON number written with at most two decimals",
        "anyOf": [
            { "type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$" },
            { "type": "number", "minimum": 0, "multipleOf": 0.01 },
        ],
        "examples": ["500.00"],
    }))
}

impl utoipa::PartialSchema for crate::money::Amount {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": "a signed INR change as a string with exactly two decimals",
            "examples": ["-120.00", "500.00"],
        }))
    }
}
impl utoipa::ToSchema for crate::money::Amount {}

/// `Phone::parse` on a number without formatting: E.164, and a +91 number is a 10-digit mobile.
pub const PHONE_PATTERN: &str = "^\\+(91[6-9][0-9]{9}|9[02-9][0-9]{6,13}|[1-8][0-9]{7,14})$";
/// `PersonName::parse`: something besides white space, and no control characters (Unicode `Cc`).
pub const NAME_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

impl utoipa::PartialSchema for crate::Phone {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string",
            "pattern": PHONE_PATTERN,
            "description": "E.164: `+`, country code and number (8 to 15 digits). An Indian (+91) number is a 10-digit mobile starting with 6 to 9. Spaces, hyphens and brackets are tolerated on input",
            "examples": ["+919876543210"],
        }))
    }
}
impl utoipa::ToSchema for crate::Phone {}

impl utoipa::PartialSchema for crate::UserId {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({ "type": "string", "format": "uuid", "description": "the user's id (Cognito `sub`)" }))
    }
}
impl utoipa::ToSchema for crate::UserId {}

impl utoipa::PartialSchema for crate::PersonName {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string", "minLength": 1, "maxLength": 50, "pattern": NAME_PATTERN,
            "description": "1 to 50 characters (after trimming), no control characters",
            "examples": ["Asha"],
        }))
    }
}
impl utoipa::ToSchema for crate::PersonName {}

impl utoipa::PartialSchema for crate::Email {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string", "format": "email", "maxLength": 254,
            "description": "`local@domain.tld`; stored lower-cased",
            "examples": ["asha@example.com"],
        }))
    }
}
impl utoipa::ToSchema for crate::Email {}

// ------------------------------------------------------------------ astrologer profile fields

/// `rate_per_minute`: what `Money` parses, within the default `RATE_MIN_PER_MINUTE`..
/// `RATE_MAX_PER_MINUTE` (5 to 1,000; a deployment may set others).
pub const RATE_PATTERN: &str = "^0*([5-9]|[1-9][0-9]{1,2})(\\.[0-9]{0,2})?$|^0*1000(\\.0{0,2})?$";

pub fn rate_per_minute() -> RefOr<Schema> {
    json_schema(json!({
        "description": "INR per minute, 5 to 1,000 (`RATE_MIN_PER_MINUTE`, `RATE_MAX_PER_MINUTE`), at most two decimals: a string or a JSON number",
        "anyOf": [
            { "type": "string", "pattern": RATE_PATTERN },
            { "type": "number", "minimum": 5, "maximum": 1000, "multipleOf": 0.01 },
        ],
        "examples": ["25.00"],
    }))
}

fn one_or_more_of(values: &[&str], description: &str) -> RefOr<Schema> {
    json_schema(json!({
        "type": "array", "minItems": 1, "description": description,
        "items": { "type": "string", "enum": values },
    }))
}

pub fn languages() -> RefOr<Schema> {
    one_or_more_of(crate::astrologer::LANGUAGES, "ISO 639-1 codes (the apps show the names); duplicates are dropped")
}

pub fn specialisations() -> RefOr<Schema> {
    one_or_more_of(crate::astrologer::SPECIALISATIONS, "duplicates are dropped")
}

pub fn modes() -> RefOr<Schema> {
    let modes: Vec<&str> = crate::astrologer::Mode::ALL.iter().map(|m| m.as_str()).collect();
    one_or_more_of(&modes, "how the astrologer consults; duplicates are dropped")
}

/// Text without control characters (a line break allowed where `multiline`), not only
/// white space where `required`.
fn text(max_chars: usize, required: bool, multiline: bool) -> RefOr<Schema> {
    let allowed = if multiline { "[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]" } else { "[^\\x00-\\x1f\\x7f-\\x9f]" };
    let pattern =
        if required { format!("^{allowed}*[^\\s\\x00-\\x1f\\x7f-\\x9f]{allowed}*$") } else { format!("^{allowed}*$") };
    json_schema(json!({
        "type": "string", "maxLength": max_chars, "pattern": pattern,
        "description": format!("at most {max_chars} characters after trimming, no control characters"),
    }))
}

pub fn display_name() -> RefOr<Schema> {
    text(crate::astrologer::MAX_DISPLAY_NAME_CHARS, true, false)
}

pub fn bio() -> RefOr<Schema> {
    text(crate::astrologer::MAX_BIO_CHARS, false, true)
}

/// `ProfileInput::validate`: https, a host, printable ASCII, at most 500 characters; empty: none.
pub const PICTURE_URL_PATTERN: &str = "^\\s*(https://[!-.0-~][!-~]{0,491})?\\s*$";

pub fn picture_url() -> RefOr<Schema> {
    json_schema(json!({
        "type": ["string", "null"], "pattern": PICTURE_URL_PATTERN,
        "description": "an https:// URL of at most 500 characters (empty or null: no picture)",
    }))
}

/// Every name `parse_time_zone` accepts (IANA, as chrono-tz spells them).
pub fn time_zone() -> RefOr<Schema> {
    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    json_schema(json!({
        "type": "string", "enum": names, "default": "Asia/Kolkata",
        "description": "an IANA time zone name",
    }))
}

/// [`time_zone`] or `null` (the default), in a request body.
pub fn optional_time_zone() -> RefOr<Schema> {
    let mut schema = serde_json::to_value(time_zone()).expect("a schema serialises");
    schema["type"] = json!(["string", "null"]);
    schema["enum"].as_array_mut().expect("an enum").push(Value::Null);
    json_schema(schema)
}

pub fn weekday() -> RefOr<Schema> {
    json_schema(json!({ "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] }))
}

pub const WINDOW_START_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
pub const WINDOW_END_PATTERN: &str = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

pub fn window_start() -> RefOr<Schema> {
    json_schema(
        json!({ "type": "string", "pattern": WINDOW_START_PATTERN, "description": "local time HH:MM", "examples": ["09:00"] }),
    )
}

pub fn window_end() -> RefOr<Schema> {
    json_schema(
        json!({ "type": "string", "pattern": WINDOW_END_PATTERN, "description": "local time HH:MM after `start`; 24:00 is the end of the day", "examples": ["13:30"] }),
    )
}

/// `BookingId::parse`: `AT` and 8 digits.
pub const BOOKING_ID_PATTERN: &str = "^AT[0-9]{8}$";

impl utoipa::PartialSchema for crate::booking::BookingId {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "string", "pattern": BOOKING_ID_PATTERN,
            "description": "the consultation's id: `AT` and 8 digits, what a customer reads out to support",
            "examples": ["AT01234567"],
        }))
    }
}
impl utoipa::ToSchema for crate::booking::BookingId {}

impl utoipa::PartialSchema for crate::astrologer::RatingSummary {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "object", "required": ["average", "count"], "additionalProperties": false,
            "description": "the average rating shown (verified reviews weigh more) and how many reviews make it",
            "properties": {
                "average": { "type": "string", "pattern": "^[0-5]\\.[0-9]{2}$", "examples": ["4.57"], "description": "0.00 until the first review" },
                "count": { "type": "integer", "minimum": 0 },
            },
        }))
    }
}
impl utoipa::ToSchema for crate::astrologer::RatingSummary {}

impl utoipa::PartialSchema for crate::wallet::LedgerEntry {
    fn schema() -> RefOr<Schema> {
        json_schema(json!({
            "type": "object",
            "description": "One ledger entry: a change to the real or bonus cash or the debt, and the balances after it",
            "required": ["entry_id", "type", "real_delta", "bonus_delta", "real_balance_after", "bonus_balance_after",
                         "debt_delta", "debt_after", "reference_type", "reference_id", "promotional", "description",
                         "created_at"],
            "properties": {
                "entry_id": { "type": "string", "pattern": "^[0-9]{12}-[0-9]+$", "description": "unique in the wallet, in posting order" },
                "type": { "$ref": "#/components/schemas/EntryKind" },
                "real_delta": { "$ref": "#/components/schemas/Amount" },
                "bonus_delta": { "$ref": "#/components/schemas/Amount" },
                "real_balance_after": { "$ref": "#/components/schemas/Money" },
                "bonus_balance_after": { "$ref": "#/components/schemas/Money" },
                "debt_delta": { "$ref": "#/components/schemas/Amount" },
                "debt_after": { "$ref": "#/components/schemas/Money", "description": "owed after a refund or chargeback took back money already spent" },
                "reference_type": { "$ref": "#/components/schemas/ReferenceKind" },
                "reference_id": { "type": "string" },
                "invoice_number": { "type": "string", "description": "only on entries with an invoice" },
                "promotional": { "type": "boolean", "description": "bonus cash (not withdrawable)" },
                "description": { "type": "string" },
                "created_at": { "type": "string", "format": "date-time" },
            },
            "additionalProperties": false,
        }))
    }
}
impl utoipa::ToSchema for crate::wallet::LedgerEntry {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("EntryKind".into(), crate::wallet::EntryKind::schema()));
        schemas.push(("ReferenceKind".into(), crate::wallet::ReferenceKind::schema()));
        schemas.push(("Amount".into(), crate::money::Amount::schema()));
        schemas.push(("Money".into(), crate::Money::schema()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written schemas say what the hand-written serde code writes.
    #[test]
    fn hand_written_schemas_match_what_is_serialised() {
        let pattern = |s: RefOr<Schema>| serde_json::to_value(s).unwrap()["pattern"].as_str().unwrap().to_owned();
        let matches = |pat: &str, text: &str| simple_regex(pat, text);
        use utoipa::PartialSchema;
        for paise in [0u64, 5, 100, 50_050, 123_456_789] {
            let text = serde_json::to_value(crate::Money::from_paise(paise)).unwrap();
            assert!(matches(&pattern(crate::Money::schema()), text.as_str().unwrap()), "{text}");
            let signed = crate::money::Amount::debit(crate::Money::from_paise(paise));
            let text = serde_json::to_value(signed).unwrap();
            assert!(matches(&pattern(crate::money::Amount::schema()), text.as_str().unwrap()), "{text}");
        }
        for zero in [
            serde_json::to_value(crate::Money::ZERO).unwrap(),
            serde_json::to_value(crate::money::Amount::ZERO).unwrap(),
        ] {
            assert!(matches(MONEY_PATTERN, zero.as_str().unwrap()), "{zero}");
        }
        let phone = crate::Phone::parse("+91 98765-43210").unwrap();
        assert!(matches(PHONE_PATTERN, serde_json::to_value(&phone).unwrap().as_str().unwrap()));

        let entry = crate::wallet::LedgerEntry {
            sequence: 7,
            index: 2,
            kind: crate::wallet::EntryKind::ALL[0],
            real_delta: crate::money::Amount::credit(crate::Money::from_paise(50_000)),
            bonus_delta: crate::money::Amount::ZERO,
            debt_delta: crate::money::Amount::ZERO,
            real_balance_after: crate::Money::from_paise(50_000),
            bonus_balance_after: crate::Money::ZERO,
            debt_after: crate::Money::ZERO,
            reference: crate::wallet::Reference::top_up("tu_1"),
            description: "Wallet recharge".into(),
            invoice_number: Some("AK2627-0-000001".into()),
            created_at: chrono::Utc::now(),
        };
        let value = serde_json::to_value(&entry).unwrap();
        let schema = serde_json::to_value(crate::wallet::LedgerEntry::schema()).unwrap();
        let written: std::collections::BTreeSet<_> = value.as_object().unwrap().keys().cloned().collect();
        let declared: std::collections::BTreeSet<_> =
            schema["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(written, declared, "LedgerEntry's Serialize and its schema name the same fields");
        for required in schema["required"].as_array().unwrap() {
            assert!(written.contains(required.as_str().unwrap()), "{required} is written");
        }
        assert!(matches(
            schema["properties"]["entry_id"]["pattern"].as_str().unwrap(),
            value["entry_id"].as_str().unwrap()
        ));
        chrono::DateTime::parse_from_rfc3339(value["created_at"].as_str().unwrap()).expect("RFC 3339");

        let id = serde_json::to_value(crate::booking::BookingId::from_number(1234)).unwrap();
        assert!(matches(BOOKING_ID_PATTERN, id.as_str().unwrap()), "{id}");
        let rating_schema = serde_json::to_value(crate::astrologer::RatingSummary::schema()).unwrap();
        for (average_hundredths, count) in [(0, 0), (457, 12), (500, 1)] {
            let value = serde_json::to_value(crate::astrologer::RatingSummary { average_hundredths, count }).unwrap();
            let average = value["average"].as_str().unwrap();
            assert!(matches(rating_schema["properties"]["average"]["pattern"].as_str().unwrap(), average), "{average}");
            assert_eq!(value.as_object().unwrap().len(), 2);
        }
    }

    /// The profile's field schemas accept what `ProfileInput::validate` and
    /// `WeeklyAvailability::parse` accept (with the default rate bounds), on samples.
    #[test]
    fn profile_patterns_follow_the_validation() {
        use crate::astrologer::{Mode, ProfileInput, RateBounds};
        let bounds = RateBounds { min: "5".parse().unwrap(), max: "1000".parse().unwrap() };
        let input = |rate: crate::Money, picture: &str, name: &str| ProfileInput {
            display_name: name.into(),
            bio: String::new(),
            experience_years: 3,
            languages: vec!["hi".into()],
            specialisations: vec!["vedic".into()],
            rate_per_minute: rate,
            modes: vec![Mode::Chat],
            picture_url: Some(picture.into()),
        };
        let ok_picture = "https://cdn.example.com/a.jpg";
        for raw in
            ["5", "5.00", "4.99", "5.5", "010", "999.99", "1000", "1000.00", "1000.01", "1001", "0", " 25 ", "+25"]
        {
            let accepted =
                raw.parse::<crate::Money>().is_ok_and(|m| input(m, ok_picture, "Asha").validate(bounds).is_ok());
            assert_eq!(simple_regex(RATE_PATTERN, raw), accepted, "rate {raw:?}");
        }
        let long = format!("https://{}", "a".repeat(492));
        for raw in [ok_picture, "", "  ", "http://x.com", "https://", "https:///x", "https://a b", &long, &long[..499]]
        {
            let accepted = input("25".parse().unwrap(), raw, "Asha").validate(bounds).is_ok();
            assert_eq!(simple_regex(PICTURE_URL_PATTERN, raw), accepted, "picture {raw:?}");
        }
        let name = serde_json::to_value(display_name()).unwrap()["pattern"].as_str().unwrap().to_owned();
        for raw in ["Asha", " Asha ", "", "   ", "A\u{7}"] {
            let accepted = input("25".parse().unwrap(), ok_picture, raw).validate(bounds).is_ok();
            assert_eq!(simple_regex(&name, raw), accepted, "display_name {raw:?}");
        }
        for (start, end) in
            [("09:00", "13:30"), ("00:00", "24:00"), ("24:00", "24:00"), ("9:00", "10:00"), ("23:59", "23:60")]
        {
            let window =
                crate::availability::WindowInput { weekday: "mon".into(), start: start.into(), end: end.into() };
            let accepted = crate::availability::WeeklyAvailability::parse(chrono_tz::Asia::Kolkata, &[window]).is_ok();
            let matched = simple_regex(WINDOW_START_PATTERN, start) && simple_regex(WINDOW_END_PATTERN, end);
            assert_eq!(matched, accepted, "window {start}-{end}");
        }
    }

    fn simple_regex(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    /// The phone and name patterns accept what `Phone::parse` and `PersonName::parse` accept.
    #[test]
    fn phone_and_name_patterns_follow_the_parsers() {
        for raw in [
            "+919876543210",
            "+916000000000",
            "+915876543210",
            "+91987654321",
            "+9198765432101",
            "+911772438",
            "+14155550100",
            "+4915112345678",
            "+12345678",
            "+1234567",
            "+0123456789",
            "+971501234567",
            "+9123456789012",
            "+123456789012345",
            "+1234567890123456",
            "919876543210",
            "+92300123456",
        ] {
            assert_eq!(crate::Phone::parse(raw).is_ok(), simple_regex(PHONE_PATTERN, raw), "{raw}");
        }
        for raw in ["Asha", "Rao ", " ", "", "a\u{0}b", "a\u{85}b", "a\u{7f}", "Ōshima", "\t", "x y"] {
            let by_pattern = simple_regex(NAME_PATTERN, raw) && raw.chars().count() <= 50;
            assert_eq!(crate::PersonName::parse(raw).is_ok(), by_pattern, "{raw:?}");
        }
    }
}
