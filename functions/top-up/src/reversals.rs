//! Refunds and chargebacks: `refund.processed` and `payment.dispute.*` take a recharge back
//! from its wallet, and a dispute won gives it back (the rules: `shared::reversal`). Exactly
//! once per refund and per dispute stage, however often and in whatever order Razorpay
//! delivers them: Query (top-up by order), BatchGetItem, TransactWriteItems.

use chrono::Utc;
use shared::reversal::{Decision, Request, dispute_stage, plan};
use shared::store::reversals::Reversal;
use shared::topup::Status;
use shared::{ApiError, Money};

use crate::razorpay::{PaymentEntity, WebhookEvent};
use crate::{App, CREDIT_ATTEMPTS, WebhookOutcome, topup_of_order, valid_payment_id};

/// `refund.processed`: the refund's share of the recharge leaves the wallet.
pub async fn refund(app: &App, event: &WebhookEvent) -> Result<WebhookOutcome, ApiError> {
    let Some(refund) = event.payload.refund.as_ref().map(|r| &r.entity) else {
        return Ok(WebhookOutcome::Ignored);
    };
    if !shared::store::keys::bounded_id(&refund.id) || refund.currency != "INR" || refund.amount == 0 {
        tracing::warn!(event = %event.event, "refund we cannot apply (id, currency or amount)");
        return Ok(WebhookOutcome::Ignored);
    }
    let request = Request::Refund { id: refund.id.clone(), amount: Money::from_paise(refund.amount) };
    apply(app, event, &refund.payment_id, request).await
}

/// `payment.dispute.*`: the entity's phase and status say whether the money is held back.
pub async fn dispute(app: &App, event: &WebhookEvent) -> Result<WebhookOutcome, ApiError> {
    let Some(dispute) = event.payload.dispute.as_ref().map(|d| &d.entity) else {
        return Ok(WebhookOutcome::Ignored);
    };
    let Some(stage) = dispute_stage(&dispute.phase, &dispute.status) else {
        tracing::warn!(phase = %dispute.phase, status = %dispute.status, "dispute stage we do not know; ignored");
        return Ok(WebhookOutcome::Ignored);
    };
    if !shared::store::keys::bounded_id(&dispute.id) || dispute.currency != "INR" {
        tracing::warn!(event = %event.event, "dispute we cannot apply (id or currency)");
        return Ok(WebhookOutcome::Ignored);
    }
    let request = Request::Dispute { id: dispute.id.clone(), amount: Money::from_paise(dispute.amount), stage };
    apply(app, event, &dispute.payment_id, request).await
}

async fn apply(
    app: &App,
    event: &WebhookEvent,
    payment_id: &str,
    request: Request,
) -> Result<WebhookOutcome, ApiError> {
    let Some(payment) = payment_of(app, event, payment_id).await? else { return Ok(WebhookOutcome::Ignored) };
    let Some(order_id) = payment.order_id.as_deref() else { return Ok(WebhookOutcome::Ignored) };
    let Some(topup) = topup_of_order(app, order_id).await? else { return Ok(WebhookOutcome::Ignored) };
    if topup.status != Status::Completed {
        if payment.status == "captured" {
            // Captured but not credited yet (a lost webhook): the reconciliation credits it
            // within minutes, and Razorpay's retry of this event then takes its share back.
            return Err(ApiError::unavailable("top_up_not_credited_yet", "the top-up is not credited yet; retry"));
        }
        // Refunded in full before any credit: nothing reached the wallet, nothing ever will.
        return Ok(WebhookOutcome::Ignored);
    }
    if topup.credit.as_ref().map(|c| c.payment_id.as_str()) != Some(payment.id.as_str()) {
        // Another payment on the same order, never credited (a top-up is credited once).
        tracing::warn!(top_up_id = %topup.id, "refund or dispute of a payment that credited nothing; ignored");
        return Ok(WebhookOutcome::Ignored);
    }
    for _ in 0..CREDIT_ATTEMPTS {
        let now = Utc::now();
        let Some(state) = app.store.reversal_state(&topup.id, &topup.user_id, &request).await? else {
            return Ok(WebhookOutcome::Ignored);
        };
        let decision = plan(&state, &request, now).map_err(|e| ApiError::internal(format!("reversal: {e}")))?;
        let Decision::Apply(plan) = decision else { return Ok(WebhookOutcome::Duplicate) };
        match app.store.reverse(&state, &request, &plan, now).await? {
            Reversal::Applied => {
                let outcome = match &plan.posting {
                    None => WebhookOutcome::Recorded,
                    Some(_) if plan.reversed_after.total() < plan.reversed_read.total() => WebhookOutcome::Restored,
                    Some(_) => WebhookOutcome::Reversed,
                };
                if let Some(posting) = &plan.posting {
                    tracing::info!(top_up_id = %topup.id, outcome = ?outcome, debt = %posting.after.debt,
                        "wallet reversal applied");
                }
                return Ok(outcome);
            }
            Reversal::AlreadyDone => return Ok(WebhookOutcome::Duplicate),
            Reversal::Conflict => continue,
        }
    }
    Err(ApiError::unavailable("busy", "the wallet is busy; retry"))
}

/// The payment refunded or disputed: as the event carries it, or asked of Razorpay.
async fn payment_of(app: &App, event: &WebhookEvent, payment_id: &str) -> Result<Option<PaymentEntity>, ApiError> {
    if let Some(payment) = event.payment().filter(|p| p.id == payment_id) {
        return Ok(Some(payment.clone()));
    }
    if !valid_payment_id(payment_id) {
        return Ok(None);
    }
    Ok(Some(app.razorpay.get().await?.payment(payment_id).await?))
}
