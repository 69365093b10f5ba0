//! Push devices: the tokens a user's phones registered, in a partition of their own, each
//! with the SNS platform endpoint made for it once push is on.
//!
//! A token belongs to one user at a time: an owner item per token (`DEVICETOKEN#{platform}#
//! {token}`, `OWNER`) names its user, and registering a token another user holds moves it
//! (their device item goes in the same transaction, so they get no more pushes on it: the
//! phone changed hands, or someone else signed in on it). A user has at most
//! [`crate::domain::notification::MAX_DEVICES`]; the partition's `SET` item carries a version that
//! every registration conditions on, so racing registrations cannot pass the bound.
//!
//! | call | DynamoDB |
//! |---|---|
//! | register | 1 Query (the user's devices and set version) and 1 GetItem (the token's owner), concurrently; 1 TransactWriteItems (device, owner, set version, the previous owner's device, each dropped device and its owner); a lost race reads again |
//! | unregister (sign-out) | 1 TransactWriteItems (the device item under either platform's spelling, the owner items if theirs) |
//! | push: devices | 1 Query |

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::items::{self, Item};
use super::keys::{DEVICE_OWNER_SK, DEVICE_SK_PREFIX, DEVICES_SET_SK, SK, device_owner_pk, device_sk, devices_pk};
use super::retry::{self, Attempt, Retry};
use super::{Store, StoreError, TxError};
use crate::domain::notification::{DevicePlatform, DeviceToken, devices_to_drop};
use crate::domain::user::UserId;

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub platform: DevicePlatform,
    pub token: String,
    /// The SNS endpoint made for this token, once push has been sent to it.
    pub endpoint_arn: Option<String>,
    pub registered_at: DateTime<Utc>,
}

/// How a registration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRegistration {
    /// It is the caller's now; `moved`: another user had it (they no longer get pushes on it).
    Registered { moved: bool, dropped: Vec<DeviceRecord> },
    /// It was the caller's already; nothing written.
    AlreadyRegistered,
    /// The caller's account is deleted (or being deleted): nothing written, so a token that
    /// outlives its account leaves no new data under it.
    AccountDeleted,
}

fn device_key(user: &UserId, platform: DevicePlatform, token: &str) -> Item {
    items::key(devices_pk(user), device_sk(platform.as_str(), token))
}

fn owner_key(platform: DevicePlatform, token: &str) -> Item {
    items::key(device_owner_pk(platform.as_str(), token), DEVICE_OWNER_SK)
}

fn read_device(item: &Item) -> Result<DeviceRecord, StoreError> {
    let platform = items::get_str(item, "platform")?;
    Ok(DeviceRecord {
        platform: DevicePlatform::parse(platform)
            .ok_or_else(|| StoreError::Corrupt(format!("device platform {platform}")))?,
        token: items::get_str(item, "token")?.to_owned(),
        endpoint_arn: items::opt_str(item, "endpoint_arn").map(str::to_owned),
        registered_at: items::get_time(item, "registered_at")?,
    })
}

impl Store {
    /// Registers `token` for `user`, moving it from any other user and dropping `user`'s
    /// oldest devices beyond the bound, in one transaction (see the module doc).
    pub async fn register_device(
        &self,
        user: &UserId,
        platform: DevicePlatform,
        token: &DeviceToken,
        now: DateTime<Utc>,
    ) -> Result<DeviceRegistration, StoreError> {
        let me = &items::s(user.as_str());
        // Racing registrations of one user retry, then answer busy.
        let busy = |_| StoreError::Unavailable("the devices kept changing during registration".into());
        retry::on_conflict(Retry::DEFAULT, busy, || async move {
            let (partition, owner) =
                tokio::try_join!(self.device_partition(user), self.get(owner_key(platform, token.as_str())))?;
            let (devices, version) = partition;
            let owner = owner.as_ref().and_then(|o| items::opt_str(o, "user_id")).map(str::to_owned);
            let mine = |d: &DeviceRecord| d.platform == platform && d.token == token.as_str();
            let listed = devices.iter().any(mine);
            if owner.as_deref() == Some(user.as_str()) && listed {
                return Ok(Attempt::Done(DeviceRegistration::AlreadyRegistered));
            }
            let others: Vec<_> = devices.iter().filter(|d| !mine(d)).map(|d| (d.registered_at, d.clone())).collect();
            let dropped = devices_to_drop(&others);

            let mut tx = self.tx();
            // Listed without an owner item: registered before tokens had owners; it stays.
            if !listed {
                let mut device = device_key(user, platform, token.as_str());
                device.insert("entity".into(), items::s("device"));
                device.insert("platform".into(), items::s(platform.as_str()));
                device.insert("token".into(), items::s(token.as_str()));
                device.insert("registered_at".into(), items::time(now));
                tx.put_new("device", device);
            }
            let (condition, mut values) = match &owner {
                Some(previous) => ("user_id = :previous", vec![(":previous", items::s(previous))]),
                None => ("attribute_not_exists(PK)", vec![]),
            };
            values.extend([(":me", me.clone()), (":at", items::time(now))]);
            tx.update(
                "owner",
                owner_key(platform, token.as_str()),
                "SET user_id = :me, registered_at = :at",
                condition,
                values,
            );
            tx.update(
                "devices",
                items::key(devices_pk(user), DEVICES_SET_SK),
                "SET version = :next",
                "attribute_not_exists(version) OR version = :read",
                vec![(":next", items::n(version + 1)), (":read", items::n(version))],
            );
            let moved = owner.as_ref().filter(|o| o.as_str() != user.as_str()).and_then(|o| UserId::parse(o).ok());
            if let Some(previous) = &moved {
                tx.delete("previous", device_key(previous, platform, token.as_str()), None, vec![]);
            }
            for d in &dropped {
                tx.delete("dropped", device_key(user, d.platform, &d.token), None, vec![]);
                // Its owner item too, unless the token has moved to someone else since.
                tx.delete(
                    "dropped_owner",
                    owner_key(d.platform, &d.token),
                    Some("attribute_not_exists(PK) OR user_id = :me"),
                    vec![(":me", me.clone())],
                );
            }
            tx.check(
                "user",
                items::key(super::keys::user_pk(user), super::keys::PROFILE_SK),
                "attribute_not_exists(deleted_at) AND attribute_not_exists(deletion_started_at)",
                vec![],
            );
            match self.commit(tx).await {
                Ok(()) => Ok(Attempt::Done(DeviceRegistration::Registered { moved: moved.is_some(), dropped })),
                Err(TxError::Cancelled(c)) if c.failed("user") => Ok(Attempt::Done(DeviceRegistration::AccountDeleted)),
                // A registration (of this user, or of this token elsewhere) got in first.
                Err(TxError::Cancelled(_)) => Ok(Attempt::Conflict),
                Err(TxError::Store(e)) => Err(e),
            }
        })
        .await
    }

    /// Forgets `token` for `user` (sign-out): 1 TransactWriteItems, however the token is
    /// spelt for either platform. A token that is not theirs (someone else's, or nobody's)
    /// changes nothing. `Ok(false)`: someone else holds it.
    pub async fn unregister_device(&self, user: &UserId, raw_token: &str) -> Result<bool, StoreError> {
        let me = items::s(user.as_str());
        let mut tx = self.tx();
        for platform in [DevicePlatform::Fcm, DevicePlatform::Apns] {
            let Ok(token) = DeviceToken::parse(platform, raw_token) else { continue };
            tx.delete("device", device_key(user, platform, token.as_str()), None, vec![]);
            tx.delete(
                "owner",
                owner_key(platform, token.as_str()),
                Some("attribute_not_exists(PK) OR user_id = :me"),
                vec![(":me", me.clone())],
            );
        }
        match self.commit(tx).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(c)) if c.failed("owner") => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `user`'s devices (1 Query; at most `MAX_DEVICES`).
    pub async fn devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self.device_partition(user).await?.0)
    }

    /// `user`'s devices and their set's version (1 Query of the partition).
    async fn device_partition(&self, user: &UserId) -> Result<(Vec<DeviceRecord>, u64), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(devices_pk(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let (mut devices, mut version) = (Vec::new(), 0);
        for item in output.items() {
            match items::get_str(item, SK)? {
                DEVICES_SET_SK => version = items::get_u64(item, "version")?,
                sk if sk.starts_with(DEVICE_SK_PREFIX) => devices.push(read_device(item)?),
                _ => {}
            }
        }
        Ok((devices, version))
    }

    /// Remembers the SNS endpoint made for a device (1 UpdateItem), so it is made once.
    pub async fn set_device_endpoint(
        &self,
        user: &UserId,
        device: &DeviceRecord,
        endpoint_arn: &str,
    ) -> Result<(), StoreError> {
        self.update_if(
            device_key(user, device.platform, &device.token),
            "SET endpoint_arn = :arn",
            "attribute_exists(PK)",
            vec![(":arn", items::s(endpoint_arn))],
        )
        .await
        .map(|_| ())
    }

    /// Forgets a device whose token the push service no longer takes (the app was
    /// uninstalled): 1 TransactWriteItems (the device, and its owner item if still theirs).
    pub async fn remove_device(&self, user: &UserId, device: &DeviceRecord) -> Result<(), StoreError> {
        let mut tx = self.tx();
        tx.delete("device", device_key(user, device.platform, &device.token), None, vec![]).delete(
            "owner",
            owner_key(device.platform, &device.token),
            Some("attribute_not_exists(PK) OR user_id = :me"),
            vec![(":me", AttributeValue::S(user.as_str().to_owned()))],
        );
        match self.commit(tx).await {
            Ok(()) => Ok(()),
            // It moved to someone else meanwhile, and its move took this device item with it.
            Err(TxError::Cancelled(c)) if c.failed("owner") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
