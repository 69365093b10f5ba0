//! The API contract next to the local API: `GET /openapi.json` (the `api-contract`
//! document) and `GET /docs`, Swagger UI from the pinned `swagger-ui-dist` package that
//! `scripts/setup.sh` installs into `.venv/swagger-ui/` (offline: nothing from a CDN).
//! These two paths are the local stack's own; API Gateway has no such routes.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where `scripts/setup.sh` installs `swagger-ui-dist`.
pub fn swagger_ui_dir() -> PathBuf {
    crate::repo_root().join(".venv/swagger-ui/node_modules/swagger-ui-dist")
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>AstroKiran API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <noscript>The API contract is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    if (typeof SwaggerUIBundle === "undefined") {
      document.getElementById("swagger-ui").innerHTML =
        "<p>Swagger UI is not installed: run <code>scripts/setup.sh</code> (it needs npm). " +
        "The contract itself is at <a href=\"/openapi.json\">/openapi.json</a>.</p>";
    } else {
      SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", persistAuthorization: true,
                        tryItOutEnabled: true, displayOperationId: false });
    }
  </script>
</body>
</html>
"##;

pub fn router(document: serde_json::Value) -> axum::Router {
    let document = Arc::new(serde_json::to_string(&document).expect("the document serialises"));
    // The WebSocket API's messages (AsyncAPI 3.0), beside the HTTP contract.
    let live = Arc::new(serde_json::to_string(&api_contract::asyncapi::document()).expect("the document serialises"));
    axum::Router::new()
        .route(
            "/asyncapi.json",
            get(move || {
                let live = live.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], live.as_str().to_owned()) }
            }),
        )
        .route("/openapi.json", get(openapi))
        .route("/docs", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/docs/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route("/docs/{file}", get(asset))
        .with_state(document)
}

async fn openapi(State(document): State<Arc<String>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.as_str().to_owned()).into_response()
}

/// A file of the Swagger UI package (only plain file names: no path traversal).
async fn asset(Path(file): Path<String>) -> Response {
    let content_type = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("png") => "image/png",
        Some("map") => "application/json",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if !file.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || file.starts_with('.') {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(swagger_ui_dir().join(&file)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "swagger-ui-dist is not installed: run scripts/setup.sh").into_response(),
    }
}
