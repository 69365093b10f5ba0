//! A refund or dispute stage applied to a credited top-up (the rules:
//! `crate::domain::reversal`): by Razorpay's `refund.processed` and `payment.dispute.*`
//! webhooks, and by a credit that finds its payment refunded already ([`super::credit`]).
//! Exactly once per refund and per dispute stage: BatchGetItem, TransactWriteItems.

use chrono::Utc;

use super::{CREDIT_ATTEMPTS, wallet_busy};
use crate::domain::money::Money;
use crate::domain::reversal::{Decision, Request, plan};
use crate::domain::topup::TopUp;
use crate::http::error::ApiError;
use crate::providers::razorpay::RefundEntity;
use crate::store::Store;
use crate::store::retry::{self, Attempt};
use crate::store::reversals::Reversal;

/// What became of a refund or dispute stage (named as the webhook's answer names it, which
/// the log line of an applied reversal shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalOutcome {
    /// The top-up is gone, or its credit was not by this payment: nothing to take back.
    Ignored,
    /// This refund or dispute stage was applied before.
    Duplicate,
    /// A dispute moved to a stage that moves no money (or nothing was left to take back).
    Recorded,
    /// A refund or chargeback took the recharge's share back from the wallet.
    Reversed,
    /// A dispute won or closed gave it back.
    Restored,
}

/// What a refund asks of the wallet; `None`: not one we can apply (id, currency or amount).
pub fn refund_request(refund: &RefundEntity) -> Option<Request> {
    (crate::store::keys::bounded_id(&refund.id) && refund.currency == "INR" && refund.amount > 0)
        .then(|| Request::Refund { id: refund.id.clone(), amount: Money::from_paise(refund.amount) })
}

/// Applies `request` to `topup`, credited by `payment_id`: a refund once per id, a dispute
/// once per stage.
pub async fn apply_to_credited(
    store: &Store,
    topup: &TopUp,
    payment_id: &str,
    request: &Request,
) -> Result<ReversalOutcome, ApiError> {
    retry::on_conflict(CREDIT_ATTEMPTS, wallet_busy, || async {
        let now = Utc::now();
        let Some(state) = store.reversal_state(&topup.id, &topup.user_id, request).await? else {
            return Ok(Attempt::Done(ReversalOutcome::Ignored));
        };
        if state.topup.credit.as_ref().map(|c| c.payment_id.as_str()) != Some(payment_id) {
            // Another payment on the same order, never credited (a top-up is credited once),
            // or a top-up not credited at all.
            tracing::warn!(top_up_id = %topup.id, "refund or dispute of a payment that credited nothing; ignored");
            return Ok(Attempt::Done(ReversalOutcome::Ignored));
        }
        let decision = plan(&state, request, now).map_err(|e| ApiError::internal(format!("reversal: {e}")))?;
        let Decision::Apply(plan) = decision else { return Ok(Attempt::Done(ReversalOutcome::Duplicate)) };
        Ok(match store.reverse(&state, request, &plan, now).await? {
            Reversal::Applied => {
                let outcome = match &plan.posting {
                    None => ReversalOutcome::Recorded,
                    Some(_) if plan.reversed_after.total() < plan.reversed_read.total() => ReversalOutcome::Restored,
                    Some(_) => ReversalOutcome::Reversed,
                };
                if let Some(posting) = &plan.posting {
                    tracing::info!(top_up_id = %topup.id, outcome = ?outcome, debt = %posting.after.debt,
                        "wallet reversal applied");
                }
                Attempt::Done(outcome)
            }
            Reversal::AlreadyDone => Attempt::Done(ReversalOutcome::Duplicate),
            Reversal::Conflict => Attempt::Conflict,
        })
    })
    .await
}
