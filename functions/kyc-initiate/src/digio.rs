//! The one Digio call this function makes: create a KYC request from a template.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::outbound::ProviderError;

const PROVIDER: &str = "digio";

#[derive(Clone, Debug)]
pub struct Digio {
    pub http: reqwest::Client,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
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
    /// The request body we send, also recorded (redacted) in the audit log.
    pub fn request_body(&self, phone: &str, name: &str, reference_id: &str) -> Value {
        json!({
            "customer_identifier": phone,
            "customer_name": name,
            "template_name": self.template_name,
            "reference_id": reference_id,
            "notify_customer": false,
            "generate_access_token": true,
            "expire_in_days": shared::kyc::REQUEST_LIFETIME_DAYS,
        })
    }

    pub async fn create_request(&self, body: &Value) -> Result<CreatedRequest, ProviderError> {
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.client_id, self.client_secret));
        let url = format!("{}/client/kyc/v2/request/with_template", self.base_url.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .header("authorization", format!("Basic {auth}"))
            .json(body)
            .send()
            .await
            .map_err(|e| ProviderError::from_reqwest(PROVIDER, e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ProviderError::from_reqwest(PROVIDER, e))?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "no message".into());
            return Err(ProviderError::Rejected { provider: PROVIDER, status: status.as_u16(), detail });
        }
        let raw: Value = serde_json::from_str(&text).map_err(|e| ProviderError::Rejected {
            provider: PROVIDER,
            status: status.as_u16(),
            detail: format!("unreadable reply: {e}"),
        })?;
        let mut created: CreatedRequest = serde_json::from_value(raw.clone()).map_err(|e| ProviderError::Rejected {
            provider: PROVIDER,
            status: status.as_u16(),
            detail: format!("reply without a request id: {e}"),
        })?;
        created.raw = raw;
        Ok(created)
    }
}
