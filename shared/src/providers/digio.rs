//! Digio: the one call we make, creating a video KYC request from a template (`kyc-initiate`).
//! Digio's webhook (`digio-webhook`) needs no client: only `crate::signature` and the KYC rules.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::outbound::{Provider, ProviderError};

const PROVIDER: &str = "digio";

#[derive(Clone, Debug)]
pub struct Digio {
    pub api: Provider,
    pub template_name: String,
}

/// What Digio returns for a new request (only what we use).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedRequest {
    /// `KID…`
    pub id: String,
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    /// The full reply, for the (redacted) audit log.
    #[serde(skip)]
    pub raw: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccessToken {
    /// `GWT…`
    pub id: String,
}

impl Digio {
    pub fn new(base_url: &str, client_id: &str, client_secret: &str, template_name: String) -> Self {
        Self { api: Provider::new(PROVIDER, base_url, client_id, client_secret), template_name }
    }

    /// The request body we send, also recorded (redacted) in the audit log.
    pub fn request_body(&self, phone: &str, name: &str, reference_id: &str) -> Value {
        json!({
            "customer_identifier": phone,
            "customer_name": name,
            "template_name": self.template_name,
            "reference_id": reference_id,
            "notify_customer": false,
            "generate_access_token": true,
            "expire_in_days": crate::domain::kyc::REQUEST_LIFETIME_DAYS,
        })
    }

    pub async fn create_request(&self, body: &Value) -> Result<CreatedRequest, ProviderError> {
        let reply = self.api.post_json("/client/kyc/v2/request/with_template", body).await?;
        if !reply.is_success() {
            let detail = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "no message".into());
            return Err(reply.rejected(detail));
        }
        let raw: Value = reply.json()?;
        let mut created: CreatedRequest = serde_json::from_value(raw.clone())
            .map_err(|e| reply.rejected(format!("reply without a request id: {e}")))?;
        created.raw = raw;
        Ok(created)
    }
}
