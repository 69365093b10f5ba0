//! The API contract (`api-contract`) has exactly the template's HTTP routes: every template
//! route has an operation and every operation is a template route, with the template's auth.

use std::collections::BTreeSet;

use infra::template::Template;
use serde_json::Value;

fn template_routes() -> BTreeSet<(String, bool)> {
    let template = Template::load(&infra::repo_root().join("template.yaml")).unwrap();
    template
        .functions()
        .unwrap()
        .iter()
        .flat_map(|f| f.http_routes.iter().map(|r| (r.route_key(), r.authorized)))
        .collect()
}

/// What is wrong between the template's routes and the document (empty: nothing).
fn mismatches(routes: &BTreeSet<(String, bool)>, doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let operations = api_contract::operations(doc);
    for (key, authorized) in routes {
        if !operations.contains(key) {
            problems.push(format!("template route {key} has no operation"));
            continue;
        }
        let (method, path) = key.split_once(' ').unwrap();
        let security = &doc["paths"][path][method.to_lowercase()]["security"];
        let secured = security.as_array().is_some_and(|s| s.iter().any(|r| r.get("cognitoJwt").is_some()));
        if secured != *authorized {
            problems.push(format!("{key}: security {security} but the template says authorized={authorized}"));
        }
    }
    for key in &operations {
        if !routes.iter().any(|(k, _)| k == key) {
            problems.push(format!("operation {key} is no template route"));
        }
    }
    problems
}

#[test]
fn the_document_covers_exactly_the_template_routes() {
    let problems = mismatches(&template_routes(), &api_contract::document());
    assert!(problems.is_empty(), "the API contract and template.yaml disagree:\n{}", problems.join("\n"));
}

#[test]
fn every_kind_of_drift_is_caught() {
    let routes = template_routes();
    let doc = api_contract::document();

    let mut added = routes.clone();
    added.insert(("DELETE /me/devices".into(), true));
    assert_eq!(mismatches(&added, &doc), vec!["template route DELETE /me/devices has no operation"]);

    let mut removed = routes.clone();
    removed.retain(|(k, _)| k != "GET /wallet");
    assert_eq!(mismatches(&removed, &doc), vec!["operation GET /wallet is no template route"]);

    let mut opened = doc.clone();
    opened["paths"]["/me"]["get"]["security"] = serde_json::json!([]);
    assert_eq!(mismatches(&routes, &opened), vec!["GET /me: security [] but the template says authorized=true"]);
}

/// The document is OpenAPI 3.1, and every `$ref` in it resolves.
#[test]
fn the_document_is_openapi_3_1_and_its_references_resolve() {
    let doc = api_contract::document();
    assert_eq!(doc["openapi"], "3.1.0");
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

/// The local stack serves the document at /openapi.json and the Swagger UI page at /docs.
#[tokio::test]
async fn the_local_stack_serves_the_contract_and_its_page() {
    let stack = integration_tests::stack().await;
    let served: Value = reqwest::get(format!("{}/openapi.json", stack.api_url)).await.unwrap().json().await.unwrap();
    assert_eq!(served, api_contract::document());
    let page = reqwest::get(format!("{}/docs", stack.api_url)).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/openapi.json") && html.contains("/docs/swagger-ui-bundle.js"), "{html}");
    let refused = reqwest::get(format!("{}/docs/..%2Ftemplate.yaml", stack.api_url)).await.unwrap();
    assert_eq!(refused.status(), 404, "only the package's own files are served");
}

/// The WebSocket API's contract (AsyncAPI) lists a client message for exactly the template's
/// custom route keys, and every server message type; the local stack serves it.
#[tokio::test]
async fn the_websocket_contract_covers_exactly_the_template_route_keys() {
    let template = Template::load(&infra::repo_root().join("template.yaml")).unwrap();
    let api = template.websocket_api().unwrap().expect("a WebSocket API");
    let route_keys: BTreeSet<String> =
        api.routes.iter().map(|r| r.key.clone()).filter(|k| !k.starts_with('$')).collect();
    let doc = api_contract::asyncapi::document();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let actions: BTreeSet<String> = api_contract::asyncapi::client_actions(&doc).into_iter().collect();
    assert_eq!(actions, route_keys, "client messages == the template's route keys");
    let types: BTreeSet<String> = api_contract::asyncapi::server_types(&doc).into_iter().collect();
    for t in ["ring", "consultation", "message", "ack", "typing", "read", "ending", "error"] {
        assert!(types.contains(t), "server message {t} documented: {types:?}");
    }
    // Every payload requires its tag, and every reference resolves inside the document.
    for (id, message) in doc["components"]["messages"].as_object().unwrap() {
        let required = message["payload"]["required"].as_array().unwrap();
        assert!(required.iter().any(|r| r == "action" || r == "type"), "{id}: {message}");
    }
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(!doc.pointer(pointer).unwrap_or(&Value::Null).is_null(), "{r} resolves");
    }
    let stack = integration_tests::stack().await;
    let served: Value = reqwest::get(format!("{}/asyncapi.json", stack.api_url)).await.unwrap().json().await.unwrap();
    assert_eq!(served, doc);
}
