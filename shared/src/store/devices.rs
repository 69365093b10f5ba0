//! Push devices: the tokens a user's phones registered, in a partition of their own, each
//! with the SNS platform endpoint made for it once push is on.

use chrono::{DateTime, Utc};

use super::items;
use super::keys::{device_sk, devices_pk};
use super::{Store, StoreError};
use crate::notification::{DevicePlatform, DeviceToken};
use crate::user::UserId;

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub platform: DevicePlatform,
    pub token: String,
    /// The SNS endpoint made for this token, once push has been sent to it.
    pub endpoint_arn: Option<String>,
}

impl Store {
    /// Registers `token` for `user` (1 conditional PutItem). `Ok(false)`: it was registered
    /// already, which is a success.
    pub async fn register_device(
        &self,
        user: &UserId,
        platform: DevicePlatform,
        token: &DeviceToken,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = items::key(devices_pk(user), device_sk(platform.as_str(), token.as_str()));
        item.insert("entity".into(), items::s("device"));
        item.insert("platform".into(), items::s(platform.as_str()));
        item.insert("token".into(), items::s(token.as_str()));
        item.insert("registered_at".into(), items::time(now));
        self.put_once(item).await
    }

    /// `user`'s devices (1 Query; a user has a handful).
    pub async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(devices_pk(user)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let platform = items::get_str(item, "platform")?;
                Ok(DeviceRecord {
                    platform: DevicePlatform::parse(platform)
                        .ok_or_else(|| StoreError::Corrupt(format!("device platform {platform}")))?,
                    token: items::get_str(item, "token")?.to_owned(),
                    endpoint_arn: items::opt_str(item, "endpoint_arn").map(str::to_owned),
                })
            })
            .collect()
    }

    /// Remembers the SNS endpoint made for a device (1 UpdateItem), so it is made once.
    pub async fn set_device_endpoint(
        &self,
        user: &UserId,
        device: &DeviceRecord,
        endpoint_arn: &str,
    ) -> Result<(), StoreError> {
        self.update_if(
            items::key(devices_pk(user), device_sk(device.platform.as_str(), &device.token)),
            "SET endpoint_arn = :arn",
            "attribute_exists(PK)",
            vec![(":arn", items::s(endpoint_arn))],
        )
        .await
        .map(|_| ())
    }

    /// Forgets a device whose token the push service no longer takes (the app was
    /// uninstalled): 1 DeleteItem.
    pub async fn remove_device(&self, user: &UserId, device: &DeviceRecord) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(items::key(devices_pk(user), device_sk(device.platform.as_str(), &device.token))))
            .send()
            .await
            .map_err(StoreError::from_sdk)
            .map(|_| ())
    }
}
