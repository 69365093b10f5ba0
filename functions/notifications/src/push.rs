//! Push: the channel a notification also goes out on, to the recipient's registered devices.
//! [`SnsPush`] is the AWS one (SNS mobile push: a platform endpoint per device token, made
//! once, then Publish to it). With no platform application configured there is no channel
//! and nothing claims to send.

use std::future::Future;
use std::pin::Pin;

use aws_sdk_sns::error::ProvideErrorMetadata;
use serde_json::json;
use shared::config::{self, ConfigError};
use shared::domain::messages::Message;
use shared::domain::notification::DevicePlatform;
use shared::store::DeviceRecord;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("no platform application for {0} devices")]
    Unsupported(&'static str),
    /// The push service says the token is no longer valid (the app was uninstalled).
    #[error("device no longer reachable: {0}")]
    Gone(String),
    #[error("push service refused or failed: {0}")]
    Service(String),
}

/// Delivers a message to one device.
pub trait PushChannel: Send + Sync + std::fmt::Debug {
    /// Sends `message` to `device`. `Ok(Some(arn))`: an endpoint was made for the device,
    /// for the caller to remember.
    fn send<'a>(
        &'a self,
        device: &'a DeviceRecord,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Option<String>, PushError>>;
}

/// SNS mobile push through one platform application (FCM as SNS's `GCM`, or APNs).
#[derive(Debug, Clone)]
pub struct SnsPush {
    client: aws_sdk_sns::Client,
    application_arn: String,
    platform: DevicePlatform,
}

pub const APPLICATION_VAR: &str = "PUSH_PLATFORM_APPLICATION_ARN";

impl SnsPush {
    /// The channel `PUSH_PLATFORM_APPLICATION_ARN` names, or `None` when it is empty (push off).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Option<Self>, ConfigError> {
        let arn = config::optional(vars, APPLICATION_VAR, "");
        if arn.is_empty() {
            return Ok(None);
        }
        let platform = application_platform(&arn).ok_or_else(|| ConfigError::Invalid {
            name: APPLICATION_VAR,
            problem: "not an SNS platform application ARN for GCM (FCM), APNS or APNS_SANDBOX".into(),
        })?;
        Ok(Some(Self { client: aws_sdk_sns::Client::new(sdk), application_arn: arn, platform }))
    }

    async fn endpoint(&self, device: &DeviceRecord) -> Result<(String, bool), PushError> {
        if let Some(arn) = &device.endpoint_arn {
            return Ok((arn.clone(), false));
        }
        // Idempotent in SNS: the same token on the same application gives the same endpoint.
        let made = self
            .client
            .create_platform_endpoint()
            .platform_application_arn(&self.application_arn)
            .token(&device.token)
            .send()
            .await
            .map_err(service_error)?;
        let arn = made.endpoint_arn.ok_or_else(|| PushError::Service("no endpoint ARN returned".into()))?;
        Ok((arn, true))
    }
}

impl PushChannel for SnsPush {
    fn send<'a>(
        &'a self,
        device: &'a DeviceRecord,
        message: &'a Message,
    ) -> BoxFuture<'a, Result<Option<String>, PushError>> {
        Box::pin(async move {
            if device.platform != self.platform {
                return Err(PushError::Unsupported(device.platform.as_str()));
            }
            let (arn, made) = self.endpoint(device).await?;
            self.client
                .publish()
                .target_arn(&arn)
                .message_structure("json")
                .message(sns_message(message))
                .send()
                .await
                .map_err(service_error)?;
            Ok(made.then_some(arn))
        })
    }
}

fn service_error<E: ProvideErrorMetadata + std::fmt::Debug, R>(err: aws_sdk_sns::error::SdkError<E, R>) -> PushError {
    match err.as_service_error() {
        Some(e) => {
            let detail = format!("{}: {}", e.code().unwrap_or("?"), e.message().unwrap_or(""));
            // SNS disables an endpoint when FCM or APNs report its token invalid.
            if e.code() == Some("EndpointDisabled") { PushError::Gone(detail) } else { PushError::Service(detail) }
        }
        None => PushError::Service("push service unreachable".into()),
    }
}

/// `arn:aws:sns:{region}:{account}:app/{GCM|APNS|APNS_SANDBOX}/{name}`.
fn application_platform(arn: &str) -> Option<DevicePlatform> {
    let resource = arn.strip_prefix("arn:")?.split(':').nth(4)?;
    match resource.strip_prefix("app/")?.split('/').next()? {
        "GCM" => Some(DevicePlatform::Fcm),
        "APNS" | "APNS_SANDBOX" => Some(DevicePlatform::Apns),
        _ => None,
    }
}

/// One message per platform, as SNS's `MessageStructure: json` wants it.
fn sns_message(m: &Message) -> String {
    let fcm = json!({ "notification": { "title": m.title, "body": m.body } }).to_string();
    let apns = json!({ "aps": { "alert": { "title": m.title, "body": m.body } } }).to_string();
    json!({ "default": m.body, "GCM": fcm, "APNS": apns, "APNS_SANDBOX": apns }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_says_which_devices_it_reaches() {
        let arn = |r: &str| format!("arn:aws:sns:ap-south-1:123456789012:{r}");
        assert_eq!(application_platform(&arn("app/GCM/astrokiran")), Some(DevicePlatform::Fcm));
        assert_eq!(application_platform(&arn("app/APNS_SANDBOX/astrokiran")), Some(DevicePlatform::Apns));
        for bad in [arn("app/ADM/x"), arn("topic"), "app/GCM/x".into(), String::new()] {
            assert_eq!(application_platform(&bad), None, "{bad}");
        }
    }

    #[test]
    fn each_platform_gets_its_own_payload() {
        let m = Message { title: "Consultation booked".into(), body: "Booking AT00000042.".into() };
        let v: serde_json::Value = serde_json::from_str(&sns_message(&m)).unwrap();
        let gcm: serde_json::Value = serde_json::from_str(v["GCM"].as_str().unwrap()).unwrap();
        assert_eq!(gcm["notification"]["title"], "Consultation booked");
        let apns: serde_json::Value = serde_json::from_str(v["APNS"].as_str().unwrap()).unwrap();
        assert_eq!(apns["aps"]["alert"]["body"], "Booking AT00000042.");
        assert_eq!(v["default"], "Booking AT00000042.");
    }
}
