//! The credit of a payment Razorpay captured, shared by the webhook, the confirm route, a
//! refund or dispute that overtook its payment, and the scheduled reconciliation
//! (`top-up-reconcile`): read, plan, write the one credit transaction
//! ([`crate::store::Store::credit`]), and read again after a lost race. Then, if Razorpay's
//! record shows refunds, each is taken back (once per refund id, as its own webhook would),
//! so a credit that arrives after its refund never leaves money Razorpay gave back.

use chrono::{DateTime, Utc};

use super::{App, CREDIT_ATTEMPTS, log_credit, reversal, wallet_busy};
use crate::domain::topup::{CreditPlan, CreditState, Source, Status, TopUp, plan_credit};
use crate::http::error::ApiError;
use crate::providers::razorpay::PaymentEntity;
use crate::store::retry::{self, Attempt};
use crate::store::topups::Credit;

/// What became of a captured payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credited {
    /// The wallet was credited.
    Now,
    /// The top-up was credited before (by the confirm, another event or the reconciliation).
    Before,
    /// This webhook event was handled before.
    DuplicateEvent,
    /// The top-up is gone (never happens: top-ups are not deleted).
    NoTopUp,
}

/// Credits `topup` for `payment`, Razorpay's own record (never a webhook's copy), which the
/// caller checked is captured for the top-up's order, amount and currency; then takes back
/// the refunds Razorpay reports. Exactly once, whoever else is crediting it.
pub async fn credit_captured(
    app: &App,
    topup: &TopUp,
    payment: &PaymentEntity,
    source: &Source,
) -> Result<Credited, ApiError> {
    let credited = credit_only(app, topup, payment, source).await?;
    if credited != Credited::NoTopUp {
        take_back_refunds(app, topup, payment).await?;
    }
    Ok(credited)
}

/// The credit alone (a refund or dispute that overtook its payment applies itself after it).
pub async fn credit_only(
    app: &App,
    topup: &TopUp,
    payment: &PaymentEntity,
    source: &Source,
) -> Result<Credited, ApiError> {
    retry::on_conflict(CREDIT_ATTEMPTS, wallet_busy, || async {
        let now = Utc::now();
        let Some(mut state) =
            app.store.credit_state(&topup.id, &topup.user_id, topup.offer_id.as_deref(), source, now).await?
        else {
            return Ok(Attempt::Done(Credited::NoTopUp));
        };
        if state.event_seen {
            return Ok(Attempt::Done(Credited::DuplicateEvent));
        }
        if state.topup.status == Status::Completed {
            return Ok(Attempt::Done(Credited::Before));
        }
        let plan = credit_plan(app, &mut state, payment, source, now).await?;
        Ok(match app.store.credit(&plan, source, now).await? {
            Credit::Credited => {
                log_credit(&plan.topup);
                Attempt::Done(Credited::Now)
            }
            Credit::AlreadyDone => Attempt::Done(Credited::Before),
            Credit::Conflict => Attempt::Conflict,
        })
    })
    .await
}

/// Every refund Razorpay reports for `payment`, applied to the credited `topup` (a refund
/// applied before changes nothing). Costs a Razorpay call only when something was refunded.
pub async fn take_back_refunds(app: &App, topup: &TopUp, payment: &PaymentEntity) -> Result<(), ApiError> {
    if payment.amount_refunded == 0 {
        return Ok(());
    }
    for refund in app.razorpay.get().await?.payment_refunds(&payment.id).await? {
        if let Some(request) = reversal::refund_request(&refund) {
            reversal::apply_to_credited(&app.store, topup, &payment.id, &request).await?;
        }
    }
    Ok(())
}

/// The credit `state` calls for, decided by the domain: a bonus quote that no longer held
/// when the customer paid is replaced by what the promotion rules say now (one Query, only
/// then); the offer the top-up names is read if `state` was read without it (the confirm
/// reads the top-up and the wallet before it knows of an offer: one BatchGetItem, only then).
pub async fn credit_plan(
    app: &App,
    state: &mut CreditState,
    payment: &PaymentEntity,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<CreditPlan, ApiError> {
    if let (Some(offer_id), None) = (&state.topup.offer_id, &state.offer) {
        state.offer = Some(app.store.offer_state(&state.topup.user_id, offer_id).await?);
    }
    let paid_at = payment.paid_at().unwrap_or(now);
    let rules = if state.topup.quote_holds(paid_at) { None } else { Some(app.store.promotion_rules().await?) };
    plan_credit(state, &payment.id, source, rules.as_deref(), &app.settings(), now)
        .map_err(|e| ApiError::internal(format!("credit not possible: {e}")))
}
