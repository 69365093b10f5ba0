//! What support staff read: a customer's money (with the ledger check) and the staff audit log.

use serde::Serialize;
use shared::http::{Request, Response, json};
use shared::staff::AuditEntry;
use shared::store::{Account, WalletSummary};
use shared::wallet::{LedgerEntry, check_ledger};
use shared::{ApiError, ProfileStatus, UserId, UserType};

use crate::{App, limit, user_in_path};

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

/// Whether the ledger sums to the balances (`shared::wallet::check_ledger`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct LedgerCheck {
    balanced: bool,
    /// What disagrees, when it does not balance.
    problem: Option<String>,
    /// Entries checked: the whole ledger.
    entries_checked: usize,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct UserWallet {
    user: SupportUser,
    wallet: WalletSummary,
    ledger_check: LedgerCheck,
    /// The newest `limit` entries, newest first.
    transactions: Vec<LedgerEntry>,
}

pub(crate) async fn user_wallet(app: &App, req: &Request) -> Result<Response, ApiError> {
    let id = user_in_path(req, "user")?;
    let limit = limit(req)? as usize;
    let overview = app.store.user_overview(&id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let (wallet, ledger) =
        app.store.wallet_with_ledger(&Account::Wallet(id)).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let check = check_ledger(&wallet, &ledger);
    let ledger_check = LedgerCheck {
        balanced: check.is_ok(),
        problem: check.err().map(|e| e.to_string()),
        entries_checked: ledger.len(),
    };
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
            transactions: ledger.into_iter().rev().take(limit).collect(),
        },
    ))
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct AuditLog {
    entries: Vec<AuditEntry>,
}

pub(crate) async fn audit_log(app: &App, req: &Request) -> Result<Response, ApiError> {
    Ok(json(200, &AuditLog { entries: app.store.staff_audit_log(limit(req)?).await? }))
}
