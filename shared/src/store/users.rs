//! Users, their wallets and astrologer profiles.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::items::{self, Item, get_money, get_str, get_u64, opt_str};
use super::{Store, StoreError};
use crate::money::Money;
use crate::phone::Phone;
use crate::user::{KycStatus, ProfileStatus, UserId, UserType, VerificationStatus};

pub fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}
pub const PROFILE_SK: &str = "PROFILE";
pub const WALLET_SK: &str = "WALLET";
pub const ASTROLOGER_SK: &str = "ASTROLOGER";

pub fn phone_pk(phone: &Phone) -> String {
    format!("PHONE#{}", phone.e164())
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    /// A retried trigger or a second confirmation: everything already exists.
    AlreadyExisted,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRecord {
    pub user_id: UserId,
    #[serde(serialize_with = "serialize_phone_full")]
    pub phone_number: Phone,
    pub first_name: String,
    pub last_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub user_type: UserType,
    pub profile_status: ProfileStatus,
    pub created_at: String,
}

/// The owner sees their own number in full.
fn serialize_phone_full<S: serde::Serializer>(p: &Phone, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.e164())
}

#[derive(Debug, Clone, Serialize)]
pub struct WalletSummary {
    pub real_cash: Money,
    pub bonus_cash: Money,
    pub total: Money,
    pub recharge_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AstrologerSummary {
    pub kyc_status: KycStatus,
    pub verification_status: VerificationStatus,
}

/// Everything `GET /me` shows, read in one Query.
#[derive(Debug, Clone, Serialize)]
pub struct UserOverview {
    pub user: UserRecord,
    pub wallet: WalletSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub astrologer: Option<AstrologerSummary>,
}

/// A transaction Put that fails if the item exists.
pub fn put_new(table: &str, item: Item) -> TransactWriteItem {
    let put = Put::builder()
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(PK)")
        .table_name(table)
        .build()
        .expect("item and table are set");
    TransactWriteItem::builder().put(put).build()
}

impl Store {
    /// Creates the user, the phone claim, a zero wallet and (for astrologers) the profile
    /// with `kyc_status = not_started`, all or nothing, and at most once.
    pub async fn register(&self, user: &NewUser) -> Result<Registered, StoreError> {
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

        let mut phone = items::key(phone_pk(&user.phone), "PHONE");
        phone.insert("user_id".into(), items::s(user.id.as_str()));

        let mut wallet = items::key(&pk, WALLET_SK);
        wallet.insert("entity".into(), items::s("wallet"));
        for field in ["real_cash", "bonus_cash", "total_credited", "total_debited"] {
            wallet.insert(field.into(), items::money(Money::ZERO));
        }
        wallet.insert("recharge_count".into(), items::n(0));
        wallet.insert("version".into(), items::n(0));
        wallet.insert("created_at".into(), now.clone());

        let put = |item| put_new(&self.table, item);
        let mut writes = vec![put(profile), put(phone), put(wallet)];
        if user.user_type == UserType::Astrologer {
            let mut astro = items::key(&pk, ASTROLOGER_SK);
            astro.insert("entity".into(), items::s("astrologer"));
            astro.insert("user_id".into(), items::s(user.id.as_str()));
            astro.insert("display_name".into(), items::s(format!("{} {}", user.first_name, user.last_name)));
            astro.insert("kyc_status".into(), items::s(KycStatus::NotStarted.as_str()));
            astro.insert("verification_status".into(), items::s(VerificationStatus::Pending.as_str()));
            astro.insert("kyc_attempts".into(), items::n(0));
            astro.insert("created_at".into(), now);
            writes.push(put(astro));
        }

        let result = self.client.transact_write_items().set_transact_items(Some(writes)).send().await;
        match result {
            Ok(_) => Ok(Registered::Created),
            Err(err) => match cancellation_reasons(&err) {
                // The user item (index 0) exists: this registration already happened.
                Some(reasons) if reasons.first().map(String::as_str) == Some("ConditionalCheckFailed") => {
                    Ok(Registered::AlreadyExisted)
                }
                Some(reasons) => {
                    Err(StoreError::ConditionFailed(format!("registration refused: {}", reasons.join(","))))
                }
                None => Err(StoreError::from_sdk(err)),
            },
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
        let (mut user, mut wallet, mut astrologer) = (None, None, None);
        for item in &self.user_partition(id).await? {
            match get_str(item, "SK")? {
                PROFILE_SK => user = Some(read_user(item)?),
                WALLET_SK => wallet = Some(read_wallet(item)?),
                ASTROLOGER_SK => astrologer = Some(read_astrologer(item)?),
                _ => {}
            }
        }
        match (user, wallet) {
            (Some(user), Some(wallet)) => Ok(Some(UserOverview { user, wallet, astrologer })),
            (None, None) => Ok(None),
            _ => Err(StoreError::Corrupt(format!("user {id} is missing its profile or wallet"))),
        }
    }
}

/// The per-item reasons DynamoDB gives for a cancelled transaction, in request order.
pub fn cancellation_reasons<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect())
        }
        _ => None,
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
        user_type: UserType::parse(get_str(item, "user_type")?).map_err(|_| corrupt("user_type"))?,
        profile_status: ProfileStatus::parse(get_str(item, "profile_status")?)
            .ok_or_else(|| corrupt("profile_status"))?,
        created_at: get_str(item, "created_at")?.to_owned(),
    })
}

fn read_wallet(item: &Item) -> Result<WalletSummary, StoreError> {
    let real_cash = get_money(item, "real_cash")?;
    let bonus_cash = get_money(item, "bonus_cash")?;
    Ok(WalletSummary {
        real_cash,
        bonus_cash,
        total: real_cash.checked_add(bonus_cash).map_err(|_| corrupt("wallet total"))?,
        recharge_count: get_u64(item, "recharge_count")?,
    })
}

fn read_astrologer(item: &Item) -> Result<AstrologerSummary, StoreError> {
    Ok(AstrologerSummary {
        kyc_status: KycStatus::parse(get_str(item, "kyc_status")?).ok_or_else(|| corrupt("kyc_status"))?,
        verification_status: VerificationStatus::parse(get_str(item, "verification_status")?)
            .ok_or_else(|| corrupt("verification_status"))?,
    })
}
