//! Local stand-ins for the third parties (Digio, Razorpay, Agora's notifications): each answers the provider's API
//! on a loopback port and sends correctly signed webhooks to the local API, as the real
//! provider would. Each sets the template parameters that point the functions at it,
//! unless the caller set them already (a test may point a function at wiremock instead).

pub mod agora;
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
    pub agora: Arc<agora::AgoraStub>,
    pub razorpay: razorpay::RazorpayStub,
    /// Where the Razorpay stand-in listens.
    pub razorpay_url: String,
    /// The secrets the functions share with the stand-ins, by the template parameter that
    /// names each one's SSM parameter (the local stack stores them there).
    pub secrets: Vec<(String, String)>,
}

async fn listen(addr: &str) -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

fn param(parameters: &mut HashMap<String, String>, name: &str, value: impl Into<String>) -> String {
    parameters.entry(name.to_owned()).or_insert_with(|| value.into()).clone()
}

fn secret(secrets: &mut Vec<(String, String)>, parameter: &str, value: &str) -> String {
    secrets.push((parameter.to_owned(), value.to_owned()));
    value.to_owned()
}

/// Where each stand-in listens.
#[derive(Clone, Copy)]
pub struct StubAddrs<'a> {
    pub digio: &'a str,
    pub razorpay: &'a str,
    pub agora: &'a str,
}

/// The local Agora project: the App ID functions get, and the App Certificate their tokens
/// are signed with (32 hex digits, like a real one).
pub const AGORA_APP_ID: &str = "0123456789abcdef0123456789abcdef";
pub const AGORA_APP_CERTIFICATE: &str = "fedcba9876543210fedcba9876543210";

fn serve(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// Starts every stand-in; `parameters` receives their URLs and ids, [`Stubs::secrets`] the
/// local secrets. The
/// Digio, Razorpay and Agora stand-ins listen on `addrs` (port 0: any free port).
pub async fn start(
    api_url: &str,
    parameters: &mut HashMap<String, String>,
    addrs: &StubAddrs<'_>,
) -> Result<(Stubs, Vec<JoinHandle<()>>)> {
    let StubAddrs { digio: digio_addr, razorpay: razorpay_addr, agora: agora_addr } = *addrs;
    let mut secrets = Vec::new();
    let (listener, url) = listen(digio_addr).await?;
    param(parameters, "DigioBaseUrl", url.clone());
    let digio = Arc::new(digio::DigioStub::new(
        url,
        api_url,
        param(parameters, "DigioClientId", "local-digio-client"),
        secret(&mut secrets, "DigioClientSecretParameter", "local-digio-secret"),
        secret(&mut secrets, "DigioWebhookSecretParameter", "local-digio-webhook-secret"),
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
        secret(&mut secrets, "RazorpayKeySecretParameter", razorpay::KEY_SECRET),
        secret(&mut secrets, "RazorpayWebhookSecretParameter", razorpay::WEBHOOK_SECRET),
    );
    tasks.push(serve(listener, razorpay.router()));

    let (listener, url) = listen(agora_addr).await?;
    param(parameters, "AgoraAppId", AGORA_APP_ID);
    secret(&mut secrets, "AgoraAppCertificateParameter", AGORA_APP_CERTIFICATE);
    let agora = Arc::new(agora::AgoraStub::new(
        url,
        api_url,
        secret(&mut secrets, "AgoraNcsSecretParameter", "local-agora-ncs-secret"),
    ));
    let router =
        Router::new().route("/_local/channels/{name}/{action}", post(agora::control)).with_state(agora.clone());
    tasks.push(serve(listener, router));
    Ok((Stubs { digio, agora, razorpay, razorpay_url, secrets }, tasks))
}
