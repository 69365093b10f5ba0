//! What support staff read: a customer's money (a page of the ledger, with what can be
//! checked of it) and the staff audit log, each read audited (`crate::audited`).

use serde::Serialize;
use shared::domain::staff::{AuditEntry, StaffAction, audit_log_position, check_ledger_page};
use shared::domain::wallet::LedgerEntry;
use shared::http::{self, Request, Response, json};
use shared::store::keys::LEDGER_SK_PREFIX;
use shared::store::{Account, WalletSummary};
use shared::{ApiError, ProfileStatus, UserId, UserType};

use crate::{App, audited, limit, user_in_path};

/// Who the wallet belongs to, with the phone number masked.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct SupportUser {
    user_id: UserId,
    /// `+91******3210`: support confirms the last digits with the caller, never reads it out.
    phone_masked: String,
    first_name: String,
    last_name: String,
    user_type: UserType,
    profile_status: ProfileStatus,
}

/// What support can check of the page shown (`shared::domain::staff::check_ledger_page`): each
/// entry follows from the one before, and on the first page the newest entry agrees with the
/// balances. The whole ledger is never read here (it grows with every consultation); its sum
/// is the reliability suite's check.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct LedgerCheck {
    balanced: bool,
    /// What disagrees, when it does not balance.
    problem: Option<String>,
    /// Entries checked: the page's.
    entries_checked: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct UserWallet {
    user: SupportUser,
    wallet: WalletSummary,
    ledger_check: LedgerCheck,
    /// `limit` entries, newest first, after `cursor`.
    transactions: Vec<LedgerEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

pub(crate) async fn user_wallet(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let id = user_in_path(req, "user")?;
    let limit = limit(req)?;
    let after = http::query_param(req, "cursor").map(|c| http::decode_sk_cursor(c, LEDGER_SK_PREFIX)).transpose()?;
    let account = Account::Wallet(id.clone());
    let read = async {
        let (overview, wallet, page) = tokio::try_join!(
            app.store.user_overview(&id),
            app.store.account(&account),
            app.store.account_ledger_page(&account, limit, after.as_deref()),
        )?;
        Ok::<_, ApiError>((overview, wallet, page))
    };
    let (overview, wallet, page) = audited(app, staff, StaffAction::ViewUserWallet, format!("user:{id}"), read).await?;
    let (Some(overview), Some(wallet)) = (overview, wallet) else { return Err(ApiError::not_found("user")) };
    let check = check_ledger_page(after.is_none().then_some(&wallet), &page.entries);
    let ledger_check =
        LedgerCheck { balanced: check.is_ok(), problem: check.err(), entries_checked: page.entries.len() };
    let user = overview.user;
    Ok(json(
        200,
        &UserWallet {
            user: SupportUser {
                phone_masked: user.phone_number.masked(),
                user_id: user.user_id,
                first_name: user.first_name,
                last_name: user.last_name,
                user_type: user.user_type,
                profile_status: user.profile_status,
            },
            wallet: overview.wallet,
            ledger_check,
            transactions: page.entries,
            next_cursor: page.next.as_deref().map(http::encode_sk_cursor),
        },
    ))
}

/// A customer's birth details and chart, for staff helping them: the look is audited like
/// a change (`view_birth_details`), and the answer is the customer's own details only.
pub(crate) async fn birth_details(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let id = user_in_path(req, "user")?;
    let read = async { Ok::<_, ApiError>(app.store.customer_for_reading(&id).await?) };
    let found = audited(app, staff, StaffAction::ViewBirthDetails, format!("user:{id}"), read).await?;
    Ok(json(200, &found.ok_or_else(|| ApiError::not_found("customer"))?))
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct AuditLog {
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

pub(crate) async fn audit_log(app: &App, req: &Request, staff: &UserId) -> Result<Response, ApiError> {
    let limit = limit(req)?;
    let after = http::query_param(req, "cursor").map(|c| http::decode_sk_cursor(c, "")).transpose()?;
    let position = match &after {
        None => None,
        Some(sk) => Some(
            audit_log_position(sk)
                .ok_or_else(|| ApiError::invalid_field("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let read = async { Ok::<_, ApiError>(app.store.staff_audit_log(limit, position).await?) };
    let (entries, next) = audited(app, staff, StaffAction::ViewAuditLog, "audit_log", read).await?;
    Ok(json(200, &AuditLog { entries, next_cursor: next.as_deref().map(http::encode_sk_cursor) }))
}
