//! Users, their wallets and astrologer profiles.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::items::{self, Item, get_str, opt_str};
use super::keys::{ASTROLOGER_SK, PHONE_SK, PROFILE_SK, WALLET_SK, phone_pk, user_pk};
use super::{Store, StoreError, TxError};
use crate::domain::events::{Envelope, UserRegistered};
use crate::domain::image::PictureKey;
use crate::domain::money::Money;
use crate::domain::phone::Phone;
use crate::domain::profile::{BirthDetails, Gender};
use crate::domain::user::{KycStatus, ProfileStatus, UserId, UserType, VerificationStatus};

/// A confirmed sign-up, as the post-confirmation trigger reads it off Cognito.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub phone: Phone,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub user_type: UserType,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Created,
    /// A retried trigger or a second confirmation: everything already exists.
    AlreadyExisted,
    /// The number's claim is this other user's: nothing was written (see
    /// `shared::account`, which decides whether the claim is stale).
    PhoneClaimedBy(UserId),
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRecord {
    pub user_id: UserId,
    #[serde(serialize_with = "serialize_phone_full")]
    pub phone_number: Phone,
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether `email` came back with its code (an email given at sign-up did not).
    pub email_verified: bool,
    /// A new email waiting for its code (`POST /me/email/verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_email: Option<String>,
    pub user_type: UserType,
    pub profile_status: ProfileStatus,
    #[cfg_attr(feature = "openapi", schema(format = DateTime))]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Birth details and the chart basics computed from them (`PATCH /me` sets them).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub birth: Option<BirthDetails>,
    /// The profile picture's key in the images bucket (`PUT /me/picture`); shown as `picture_url`.
    #[serde(skip)]
    pub picture_key: Option<PictureKey>,
    /// Where to fetch the profile picture: a presigned GET valid an hour, made for each read
    /// (never stored); read the profile again for a fresh one. Absent: no picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// The account's deletion has started (`DELETE /me`): nothing new is added to it.
    #[serde(skip)]
    pub deleting: bool,
}

/// The owner sees their own number in full.
fn serialize_phone_full<S: serde::Serializer>(p: &Phone, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.e164())
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WalletSummary {
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub total: Money,
    pub recharge_count: u64,
    /// Owed after a refund or chargeback (see `shared::wallet`): paid by the next credits.
    pub debt: Money,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AstrologerSummary {
    pub kyc_status: KycStatus,
    pub verification_status: VerificationStatus,
}

/// Everything `GET /me` shows, read in one Query.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserOverview {
    pub user: UserRecord,
    pub wallet: WalletSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub astrologer: Option<AstrologerSummary>,
}

/// A user partition as read: an account, a deleted one's tombstone, or nothing.
#[derive(Debug, Clone)]
pub enum UserLookup {
    Found(Box<UserOverview>),
    Deleted,
    Missing,
}

impl Store {
    /// Creates the user, the phone claim, a zero wallet, (for astrologers) the profile with
    /// `kyc_status = not_started` and the `registered` event, all or nothing, and at most once.
    /// `take_claim_from`: the phone claim is moved from that user (conditioned on it still
    /// being theirs) instead of made new.
    pub async fn register(
        &self,
        user: &NewUser,
        registered: &Envelope<UserRegistered>,
        take_claim_from: Option<&UserId>,
    ) -> Result<Registered, StoreError> {
        let pk = user_pk(&user.id);
        let now = items::time(user.created_at);

        let mut profile = items::key(&pk, PROFILE_SK);
        profile.insert("entity".into(), items::s("user"));
        profile.insert("user_id".into(), items::s(user.id.as_str()));
        profile.insert("phone_number".into(), items::s(user.phone.e164()));
        profile.insert("first_name".into(), items::s(&user.first_name));
        profile.insert("last_name".into(), items::s(&user.last_name));
        if let Some(email) = &user.email {
            profile.insert("email".into(), items::s(email));
        }
        profile.insert("user_type".into(), items::s(user.user_type.as_str()));
        let status = ProfileStatus::initial_for(user.user_type);
        profile.insert("profile_status".into(), items::s(status.as_str()));
        profile.insert("is_phone_verified".into(), AttributeValue::Bool(true));
        profile.insert("created_at".into(), now.clone());
        profile.insert("updated_at".into(), now.clone());

        let claim_key = items::key(phone_pk(&user.phone), PHONE_SK);
        let mut tx = self.tx();
        tx.put_new("user", profile);
        match take_claim_from {
            None => {
                let mut phone = claim_key.clone();
                phone.insert("user_id".into(), items::s(user.id.as_str()));
                tx.put_new("phone", phone);
            }
            Some(previous) => {
                tx.update(
                    "phone",
                    claim_key.clone(),
                    "SET user_id = :id, previous_user_id = :previous",
                    "user_id = :previous",
                    vec![(":id", items::s(user.id.as_str())), (":previous", items::s(previous.as_str()))],
                );
            }
        }
        tx.put_new("wallet", super::wallet::new_wallet_item(&user.id, user.created_at));
        if user.user_type == UserType::Astrologer {
            let mut astro = items::key(&pk, ASTROLOGER_SK);
            astro.insert("entity".into(), items::s("astrologer"));
            astro.insert("user_id".into(), items::s(user.id.as_str()));
            astro.insert("display_name".into(), items::s(format!("{} {}", user.first_name, user.last_name)));
            astro.insert("kyc_status".into(), items::s(KycStatus::NotStarted.as_str()));
            astro.insert("verification_status".into(), items::s(VerificationStatus::Pending.as_str()));
            astro.insert("kyc_attempts".into(), items::n(0));
            astro.insert("created_at".into(), now);
            tx.put_new("astrologer", astro);
        }
        tx.outbox(registered);

        match self.commit(tx).await {
            Ok(()) => Ok(Registered::Created),
            // The user exists: this registration already happened, event and all.
            Err(TxError::Cancelled(c)) if c.failed("user") => Ok(Registered::AlreadyExisted),
            Err(TxError::Cancelled(c)) if c.failed("phone") => {
                let holder = self.get(claim_key).await?.map(|item| get_str(&item, "user_id").map(str::to_owned));
                match holder.transpose()?.map(|id| UserId::parse(&id)) {
                    Some(Ok(holder)) => Ok(Registered::PhoneClaimedBy(holder)),
                    _ => Err(StoreError::ConditionFailed("registration refused: the phone claim changed".into())),
                }
            }
            Err(TxError::Cancelled(c)) => {
                Err(StoreError::ConditionFailed(format!("registration refused: {:?}", c.condition_failed)))
            }
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// Every item under `USER#{sub}` (user, wallet, astrologer profile): one strongly
    /// consistent Query.
    pub async fn user_partition(&self, id: &UserId) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", items::s(user_pk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(output.items.unwrap_or_default())
    }

    /// The user, wallet and astrologer profile in one Query. `None`: no such user.
    pub async fn user_overview(&self, id: &UserId) -> Result<Option<UserOverview>, StoreError> {
        match self.user_lookup(id).await? {
            UserLookup::Found(overview) => Ok(Some(*overview)),
            UserLookup::Missing | UserLookup::Deleted => Ok(None),
        }
    }

    /// [`Store::user_overview`], telling a deleted account from one never made (one Query).
    pub async fn user_lookup(&self, id: &UserId) -> Result<UserLookup, StoreError> {
        let (mut user, mut wallet, mut astrologer) = (None, None, None);
        for item in &self.user_partition(id).await? {
            match get_str(item, "SK")? {
                PROFILE_SK if item.contains_key("deleted_at") => return Ok(UserLookup::Deleted),
                PROFILE_SK => user = Some(read_user(item)?),
                WALLET_SK => wallet = Some(read_wallet(item)?),
                ASTROLOGER_SK => astrologer = Some(read_astrologer(item)?),
                _ => {}
            }
        }
        match (user, wallet) {
            (Some(user), Some(wallet)) => Ok(UserLookup::Found(Box::new(UserOverview { user, wallet, astrologer }))),
            (None, None) => Ok(UserLookup::Missing),
            _ => Err(StoreError::Corrupt(format!("user {id} is missing its profile or wallet"))),
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn read_user(item: &Item) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        user_id: UserId::parse(get_str(item, "user_id")?).map_err(|_| corrupt("user_id"))?,
        phone_number: Phone::parse(get_str(item, "phone_number")?).map_err(|_| corrupt("phone_number"))?,
        first_name: get_str(item, "first_name")?.to_owned(),
        last_name: get_str(item, "last_name")?.to_owned(),
        email: opt_str(item, "email").map(str::to_owned),
        email_verified: item.get("email_verified").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false),
        pending_email: opt_str(item, "pending_email").map(str::to_owned),
        user_type: UserType::parse(get_str(item, "user_type")?).map_err(|_| corrupt("user_type"))?,
        profile_status: ProfileStatus::parse(get_str(item, "profile_status")?)
            .ok_or_else(|| corrupt("profile_status"))?,
        created_at: get_str(item, "created_at")?.to_owned(),
        gender: opt_str(item, "gender").and_then(Gender::parse),
        city: opt_str(item, "city").map(str::to_owned),
        state: opt_str(item, "state").map(str::to_owned),
        birth: super::people::read_birth(item)?,
        picture_key: opt_str(item, "picture_key").and_then(PictureKey::stored),
        picture_url: None,
        deleting: item.contains_key("deletion_started_at"),
    })
}

fn read_wallet(item: &Item) -> Result<WalletSummary, StoreError> {
    let w = super::wallet::read_wallet(item)?;
    Ok(WalletSummary {
        real_cash: w.real_cash,
        bonus_cash: w.bonus_cash,
        total: w.total(),
        recharge_count: w.recharge_count,
        debt: w.debt,
    })
}

fn read_astrologer(item: &Item) -> Result<AstrologerSummary, StoreError> {
    Ok(AstrologerSummary {
        kyc_status: KycStatus::parse(get_str(item, "kyc_status")?).ok_or_else(|| corrupt("kyc_status"))?,
        verification_status: VerificationStatus::parse(get_str(item, "verification_status")?)
            .ok_or_else(|| corrupt("verification_status"))?,
    })
}
