//! Every error a function's code can construct is in the document, under one of that
//! function's routes, with the same status. The errors are found in the function crate's
//! source: `ApiError` constructors with their codes (literals or `const`s), and the shared
//! helpers whose errors reach the caller (`json_body`, `path_param`, `IdempotencyKey`,
//! `ProviderError`, the store). Runtime conformance (the code per route and status) is what
//! schemathesis checks against the local stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Errors = BTreeSet<(u16, String)>;

fn crate_dir(binary: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("functions").join(binary).join("src")
}

/// The crate's source, whitespace collapsed, without `#[cfg(test)]` modules' bodies
/// (tests construct errors to compare with).
fn source(binary: &str) -> String {
    let mut text = String::new();
    let mut files: Vec<_> = std::fs::read_dir(crate_dir(binary)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "rs")) {
        let body = std::fs::read_to_string(&file).unwrap();
        let body = body.split("#[cfg(test)]\nmod tests").next().unwrap();
        text.push_str(body);
        text.push('\n');
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `const NAME: &str = "value";` in the source.
fn consts(src: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for part in src.split("const ").skip(1) {
        let Some((name, rest)) = part.split_once(": &str = \"") else { continue };
        if let Some((value, _)) = rest.split_once('"') {
            out.insert(name.trim().to_owned(), value.to_owned());
        }
    }
    out
}

/// The first argument after `prefix`, as a code: a literal, or a `const` by (path) name.
fn code_args(src: &str, prefix: &str, consts: &BTreeMap<String, String>) -> Vec<String> {
    src.split(prefix).skip(1).map(|part| code_arg(part, prefix, consts)).collect()
}

/// The code at the start of `arg`: a literal, or a `const` by (path) name.
fn code_arg(arg: &str, context: &str, consts: &BTreeMap<String, String>) -> String {
    let arg = arg.trim_start();
    if let Some(lit) = arg.strip_prefix('"') {
        lit.split('"').next().unwrap().to_owned()
    } else {
        let ident: String = arg.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let name = ident.rsplit("::").next().unwrap();
        consts.get(name).cloned().unwrap_or_else(|| panic!("cannot read the code in `{context}{ident}`"))
    }
}

/// Every (status, code) the function's source can return to a caller.
pub fn constructed(src: &str) -> Errors {
    let consts = consts(src);
    let mut out = Errors::new();
    for (ctor, status) in [
        ("ApiError::bad_request(", 400),
        ("ApiError::unauthorized(", 401),
        ("ApiError::conflict(", 409),
        ("ApiError::too_many(", 429),
        ("ApiError::bad_gateway(", 502),
        ("ApiError::unavailable(", 503),
    ] {
        for code in code_args(src, ctor, &consts) {
            out.insert((status, code));
        }
    }
    for part in src.split("ApiError::new(").skip(1) {
        let (status, rest) = part.split_once(',').unwrap();
        let code = code_arg(rest, "ApiError::new(..,", &consts);
        out.insert((status.trim().parse().unwrap(), code));
    }
    for (marker, status, code) in [
        ("ApiError::invalid_field(", 400, "invalid_field"),
        ("ApiError::not_found(", 404, "not_found"),
        ("ApiError::insufficient_balance(", 402, "insufficient_balance"),
        ("ApiError::forbidden(", 403, "forbidden"),
        ("ApiError::internal(", 500, "internal"),
        ("json_body", 400, "invalid_body"),
        ("json_body", 400, "invalid_field"),
        ("path_param(", 400, "invalid_field"),
        ("limit_param(", 400, "invalid_field"),
        ("IdempotencyKey::required(", 400, "missing_idempotency_key"),
        ("IdempotencyKey::required(", 400, "invalid_field"),
        ("IdempotencyKey::required(", 422, "idempotency_key_reused"),
        ("IdempotencyKey::required(", 409, "idempotency_conflict"),
        ("Store", 503, "store_unavailable"),
        ("Store", 500, "internal"),
        ("signed_in(", 401, "unauthenticated"),
        ("too_many_sms(", 429, "too_many_sms"),
        ("Access::Role(", 403, "forbidden"),
    ] {
        if src.contains(marker) {
            out.insert((status, code.to_owned()));
        }
    }
    if src.contains("ProviderError") {
        let provider = consts.get("PROVIDER").expect("a provider client names its PROVIDER");
        out.insert((503, format!("{provider}_unavailable")));
        out.insert((502, format!("{provider}_error")));
    }
    // `no_route` (404) is unreachable: API Gateway only invokes a function for its template
    // routes, and tests/routes.rs holds every ROUTES table to the template.
    out
}

/// Every (status, code) the document lists under the function's routes.
fn documented(doc: &serde_json::Value, function: &shared::http::openapi::FunctionDoc) -> Errors {
    function.routes.iter().flat_map(|r| api_contract::documented_errors(doc, r.method(), r.path())).collect()
}

/// What the function can return that the document does not list.
fn missing(doc: &serde_json::Value, function: &shared::http::openapi::FunctionDoc, src: &str) -> Vec<String> {
    let listed = documented(doc, function);
    constructed(src)
        .into_iter()
        .filter(|e| !listed.contains(e))
        .map(|(status, code)| format!("{}: {status} {code} is not in the document", function.binary))
        .collect()
}

#[test]
fn every_error_a_function_constructs_is_documented() {
    let doc = api_contract::document();
    let mut problems = Vec::new();
    for function in api_contract::functions() {
        let src = source(function.binary);
        assert!(constructed(&src).len() > 2, "{}: the scan found its errors", function.binary);
        problems.extend(missing(&doc, &function, &src));
    }
    assert!(problems.is_empty(), "errors the handlers return but the document omits:\n{}", problems.join("\n"));
}

/// The check catches an undocumented error, in each way one can appear.
#[test]
fn an_undocumented_error_is_caught() {
    let doc = api_contract::document();
    let top_up = api_contract::functions().into_iter().find(|f| f.binary == "top-up").unwrap();
    let src = source("top-up");
    assert!(missing(&doc, &top_up, &src).is_empty());

    let added = format!("{src} Err(ApiError::conflict(\"wallet_frozen\", \"frozen\"))");
    assert_eq!(missing(&doc, &top_up, &added), vec!["top-up: 409 wallet_frozen is not in the document"]);
    let by_const = format!("{src} const FROZEN: &str = \"wallet_frozen\"; ApiError::new(423, FROZEN, \"x\")");
    assert_eq!(missing(&doc, &top_up, &by_const), vec!["top-up: 423 wallet_frozen is not in the document"]);
    let other_status = format!("{src} ApiError::unavailable(\"razorpay_error\", \"x\")");
    assert_eq!(missing(&doc, &top_up, &other_status), vec!["top-up: 503 razorpay_error is not in the document"]);

    // A route that stops declaring an error its code returns.
    let mut dropped = top_up.clone();
    for route in &mut dropped.routes {
        route.operation.errors.retain(|e| e.code != "missing_signature");
    }
    let doc = api_contract::document_of(&[dropped.clone()]);
    assert_eq!(missing(&doc, &dropped, &src), vec!["top-up: 401 missing_signature is not in the document"]);
}
