//! Local stand-ins for the third parties (Digio, Razorpay): each answers the provider's API
//! on a loopback port and sends correctly signed webhooks to the local API, as the real
//! provider would. Each sets the template parameters that point the functions at it,
//! unless the caller set them already (a test may point a function at wiremock instead).

pub mod digio;
pub mod razorpay;

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
    pub razorpay: razorpay::RazorpayStub,
    /// Where the Razorpay stand-in listens.
    pub razorpay_url: String,
}

async fn listen(addr: &str) -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn param(parameters: &mut HashMap<String, String>, name: &str, value: impl Into<String>) -> String {
    parameters.entry(name.to_owned()).or_insert_with(|| value.into()).clone()
}

fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// Starts every stand-in; `parameters` receives their URLs and the local secrets. The
/// Digio and Razorpay stand-ins listen on `digio_addr` and `razorpay_addr` (port 0: any free port).
pub async fn start(
    api_url: &str,
    parameters: &mut HashMap<String, String>,
    digio_addr: &str,
    razorpay_addr: &str,
) -> Result<(Stubs, Vec<JoinHandle<()>>)> {
    let (listener, url) = listen(digio_addr).await?;
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
    let mut tasks = vec![serve(listener, router)];

    let (listener, razorpay_url) = listen(razorpay_addr).await?;
    param(parameters, "RazorpayBaseUrl", razorpay_url.clone());
    let razorpay = razorpay::RazorpayStub::new(
        api_url,
        param(parameters, "RazorpayKeyId", razorpay::KEY_ID),
        param(parameters, "RazorpayKeySecret", razorpay::KEY_SECRET),
        param(parameters, "RazorpayWebhookSecret", razorpay::WEBHOOK_SECRET),
    );
    tasks.push(serve(listener, razorpay.router()));
    Ok((Stubs { digio, razorpay, razorpay_url }, tasks))
}
