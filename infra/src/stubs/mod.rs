//! Local stand-ins for the third parties (Digio, Razorpay): each answers the provider's API
//! on a loopback port and sends correctly signed webhooks to the local API, as the real
//! provider would. Each sets the template parameters that point the functions at it,
//! unless the caller set them already (a test may point a function at wiremock instead).

pub mod digio;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Handles to the running stand-ins, for tests and the CLI to drive them.
#[derive(Clone)]
pub struct Stubs {
    pub digio: Arc<digio::DigioStub>,
}

async fn listen() -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn param(parameters: &mut HashMap<String, String>, name: &str, value: impl Into<String>) -> String {
    parameters.entry(name.to_owned()).or_insert_with(|| value.into()).clone()
}

/// Starts every stand-in; `parameters` receives their URLs and the local secrets.
pub async fn start(api_url: &str, parameters: &mut HashMap<String, String>) -> Result<(Stubs, Vec<JoinHandle<()>>)> {
    let (listener, url) = listen().await?;
    param(parameters, "DigioBaseUrl", url.clone());
    let digio = Arc::new(digio::DigioStub::new(
        url,
        api_url,
        param(parameters, "DigioClientId", "local-digio-client"),
        param(parameters, "DigioClientSecret", "local-digio-secret"),
        param(parameters, "DigioWebhookSecret", "local-digio-webhook-secret"),
    ));
    let router = Router::new()
        .route("/client/kyc/v2/request/with_template", post(digio::create_request))
        .route("/_local/kyc/{id}/{action}", post(digio::control))
        .with_state(digio.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((Stubs { digio }, vec![task]))
}
