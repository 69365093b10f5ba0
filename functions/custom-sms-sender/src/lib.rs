//! Cognito custom SMS sender trigger: Cognito hands every SMS it would send (sign-up and
//! resent codes, sign-in codes, password reset, attribute verification) to this function
//! instead of sending it. The app client id is public, so anyone can ask Cognito for a code
//! straight, past otp-signup's counters; here every code is counted against its number
//! (`SmsCounter::Delivered`, the per-phone limit of `shared::domain::sms`) and sent through SNS only
//! under the limit. Over it, or to a country not served, nothing is sent (and it is logged).
//!
//! Cognito encrypts the code with the AWS Encryption SDK under the user pool's KMS key
//! (`KMSKeyID` in its LambdaConfig): an ESDK message whose data key KMS wrapped, bound to an
//! encryption context (`userpool-id`, and the signing key). [`esdk`] parses and checks the
//! message; the data key is unwrapped here with `kms:Decrypt`. A code that cannot be
//! decrypted fails the invocation (so the function's Errors alarm fires), and nothing is sent.

pub mod esdk;

use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use shared::Phone;
use shared::config::{self, ConfigError};
use shared::domain::sms::{SmsCounter, SmsPolicy};
use shared::store::Store;

#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub kms: aws_sdk_kms::Client,
    pub sns: aws_sdk_sns::Client,
    pub sms: SmsPolicy,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            kms: aws_sdk_kms::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            sms: SmsPolicy::from_env(vars)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("not a CustomSMSSender event: {0}")]
    InvalidEvent(String),
    #[error("the code could not be decrypted: {0}")]
    Decrypt(String),
    #[error("counting the SMS failed: {0}")]
    Count(#[from] shared::store::StoreError),
    #[error("SNS did not take the SMS: {0}")]
    Publish(String),
}

/// The part of the event this trigger reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderEvent {
    trigger_source: String,
    request: SenderRequest,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SenderRequest {
    /// Base64 of the encrypted code.
    code: String,
    user_attributes: std::collections::HashMap<String, String>,
}

/// What happened to one SMS, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// The number has had its codes for this window.
    OverLimit,
    /// Not a country served (or no usable number): nobody pays for it.
    NotServed,
}

/// The message text for a trigger source, as the user pool's messages were.
pub fn message(trigger_source: &str, code: &str) -> String {
    match trigger_source {
        "CustomSMSSender_Authentication" => format!("Your AstroKiran sign-in code is {code}"),
        _ => format!("Your AstroKiran code is {code}"),
    }
}

/// Returns the event as it was given (Cognito reads nothing back).
pub async fn handle(app: &App, event: Value) -> Result<Value, SenderError> {
    let parsed: SenderEvent =
        serde_json::from_value(event.clone()).map_err(|e| SenderError::InvalidEvent(e.to_string()))?;
    let outcome = send(app, &parsed).await?;
    tracing::info!(trigger = %parsed.trigger_source, ?outcome, "SMS");
    Ok(event)
}

async fn send(app: &App, event: &SenderEvent) -> Result<Outcome, SenderError> {
    let raw = event.request.user_attributes.get("phone_number").map(String::as_str).unwrap_or_default();
    let Some(phone) = Phone::parse(raw).ok().filter(|p| app.sms.check_country(p).is_ok()) else {
        tracing::warn!(trigger = %event.trigger_source, "SMS to a number not served: nothing sent");
        return Ok(Outcome::NotServed);
    };
    let (window_start, _) = app.sms.window(chrono::Utc::now().timestamp());
    let counter = SmsCounter::Delivered(phone.clone());
    if !app.store.count_sms(&counter, window_start, app.sms.window_seconds, counter.limit(&app.sms)).await? {
        tracing::warn!(phone = %phone, trigger = %event.trigger_source, "SMS limit reached: nothing sent");
        return Ok(Outcome::OverLimit);
    }
    let code = decrypt_code(app, &event.request.code).await?;
    app.sns
        .publish()
        .phone_number(phone.e164())
        .message(message(&event.trigger_source, &code))
        .message_attributes("AWS.SNS.SMS.SMSType", sms_attribute("Transactional"))
        .send()
        .await
        .map_err(|e| SenderError::Publish(e.into_service_error().to_string()))?;
    Ok(Outcome::Sent)
}

fn sms_attribute(value: &str) -> aws_sdk_sns::types::MessageAttributeValue {
    aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

/// The code in clear: the message's KMS data key unwrapped under the message's encryption
/// context (KMS refuses any other), then the message checked and opened with it.
async fn decrypt_code(app: &App, encrypted: &str) -> Result<String, SenderError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encrypted)
        .map_err(|e| SenderError::Decrypt(format!("not base64: {e}")))?;
    let message = esdk::Message::parse(&bytes).map_err(|e| SenderError::Decrypt(e.to_string()))?;
    let wrapped = message.kms_data_key().map_err(|e| SenderError::Decrypt(e.to_string()))?;
    let key_id = String::from_utf8(wrapped.provider_info.clone())
        .map_err(|_| SenderError::Decrypt("the KMS key id is not text".into()))?;
    let output = app
        .kms
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(Blob::new(wrapped.ciphertext.clone()))
        .set_encryption_context(Some(message.context.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| SenderError::Decrypt(e.into_service_error().to_string()))?;
    let data_key = output.plaintext().ok_or_else(|| SenderError::Decrypt("no plaintext".into()))?;
    let plain = message.decrypt(data_key.as_ref()).map_err(|e| SenderError::Decrypt(e.to_string()))?;
    String::from_utf8(plain).map_err(|_| SenderError::Decrypt("not text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_codes_say_so() {
        assert_eq!(message("CustomSMSSender_Authentication", "123456"), "Your AstroKiran sign-in code is 123456");
        for source in ["CustomSMSSender_SignUp", "CustomSMSSender_ResendCode", "CustomSMSSender_ForgotPassword"] {
            assert_eq!(message(source, "123456"), "Your AstroKiran code is 123456");
        }
    }
}
