//! Refunds and chargebacks: `refund.processed` and `payment.dispute.*` take a recharge back
//! from its wallet, and a dispute won gives it back (the rules: `shared::reversal`). Exactly
//! once per refund and per dispute stage, however often and in whatever order Razorpay
//! delivers them: Query (top-up by order), BatchGetItem, TransactWriteItems. One that
//! overtakes its payment's credit credits it first (from Razorpay's record of the payment).

use chrono::Utc;
use shared::reversal::{Decision, Request, dispute_stage, plan};
use shared::store::reversals::Reversal;
use shared::topup::{Source, Status, TopUp};
use shared::{ApiError, Money};

use crate::razorpay::{PaymentCheck, PaymentEntity, RefundEntity, WebhookEvent};
use crate::{App, CREDIT_ATTEMPTS, WebhookOutcome, credit, topup_of_order, valid_payment_id};

/// `refund.processed`: the refund's share of the recharge leaves the wallet.
pub async fn refund(app: &App, event: &WebhookEvent, event_id: &str) -> Result<WebhookOutcome, ApiError> {
    let Some(refund) = event.payload.refund.as_ref().map(|r| &r.entity) else {
        return Ok(WebhookOutcome::Ignored);
    };
    let Some(request) = refund_request(refund) else {
        tracing::warn!(event = %event.event, "refund we cannot apply (id, currency or amount)");
        return Ok(WebhookOutcome::Ignored);
    };
    apply(app, event, event_id, &refund.payment_id, request).await
}

/// What a refund asks of the wallet; `None`: not one we can apply (id, currency or amount).
pub(crate) fn refund_request(refund: &RefundEntity) -> Option<Request> {
    (shared::store::keys::bounded_id(&refund.id) && refund.currency == "INR" && refund.amount > 0)
        .then(|| Request::Refund { id: refund.id.clone(), amount: Money::from_paise(refund.amount) })
}

/// `payment.dispute.*`: the entity's phase and status say whether the money is held back.
pub async fn dispute(app: &App, event: &WebhookEvent, event_id: &str) -> Result<WebhookOutcome, ApiError> {
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
    apply(app, event, event_id, &dispute.payment_id, request).await
}

async fn apply(
    app: &App,
    event: &WebhookEvent,
    event_id: &str,
    payment_id: &str,
    request: Request,
) -> Result<WebhookOutcome, ApiError> {
    let Some(payment) = payment_of(app, event, payment_id).await? else { return Ok(WebhookOutcome::Ignored) };
    let Some(order_id) = payment.order_id.as_deref() else { return Ok(WebhookOutcome::Ignored) };
    let Some(topup) = topup_of_order(app, order_id).await? else { return Ok(WebhookOutcome::Ignored) };
    if topup.status != Status::Completed {
        // The refund or dispute overtook its payment's credit (or the credit's webhook was
        // lost). Razorpay captured the money, so it is credited now, from Razorpay's own
        // record, and this event then takes its share back: the wallet ends at what Razorpay
        // kept, whatever order the events come in. Not captured: nothing to take back.
        if !valid_payment_id(&payment.id) {
            return Ok(WebhookOutcome::Ignored);
        }
        let record = app.razorpay.get().await?.payment(&payment.id).await?;
        if record.check(order_id, topup.amount) != PaymentCheck::Captured {
            tracing::warn!(top_up_id = %topup.id, status = %record.status, "refund or dispute of a payment not captured");
            return Ok(WebhookOutcome::Ignored);
        }
        let source = Source::Webhook { event: event.event.clone(), event_id: event_id.to_owned() };
        credit::credit_only(app, &topup, &record, &source).await?;
    }
    apply_to_credited(app, &topup, &payment.id, &request).await
}

/// Applies `request` to `topup`, credited by `payment_id`: a refund once per id, a dispute
/// once per stage.
pub(crate) async fn apply_to_credited(
    app: &App,
    topup: &TopUp,
    payment_id: &str,
    request: &Request,
) -> Result<WebhookOutcome, ApiError> {
    for _ in 0..CREDIT_ATTEMPTS {
        let now = Utc::now();
        let Some(state) = app.store.reversal_state(&topup.id, &topup.user_id, request).await? else {
            return Ok(WebhookOutcome::Ignored);
        };
        if state.topup.credit.as_ref().map(|c| c.payment_id.as_str()) != Some(payment_id) {
            // Another payment on the same order, never credited (a top-up is credited once),
            // or a top-up not credited at all.
            tracing::warn!(top_up_id = %topup.id, "refund or dispute of a payment that credited nothing; ignored");
            return Ok(WebhookOutcome::Ignored);
        }
        let decision = plan(&state, request, now).map_err(|e| ApiError::internal(format!("reversal: {e}")))?;
        let Decision::Apply(plan) = decision else { return Ok(WebhookOutcome::Duplicate) };
        match app.store.reverse(&state, request, &plan, now).await? {
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
