//! Refunds and chargebacks: `refund.processed` and `payment.dispute.*` take a recharge back
//! from its wallet, and a dispute won gives it back (the rules: `shared::domain::reversal`,
//! applied by `shared::app::top_up::reversal`). Exactly once per refund and per dispute stage,
//! however often and in whatever order Razorpay delivers them: Query (top-up by order),
//! BatchGetItem, TransactWriteItems. One that overtakes its payment's credit credits it first
//! (from Razorpay's record of the payment).

use shared::app::top_up::credit;
use shared::app::top_up::reversal::{ReversalOutcome, apply_to_credited, refund_request};
use shared::domain::reversal::{Request, dispute_stage};
use shared::domain::topup::{Source, Status};
use shared::providers::razorpay::{PaymentCheck, PaymentEntity, WebhookEvent};
use shared::{ApiError, Money};

use crate::{App, WebhookOutcome, topup_of_order, valid_payment_id};

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
    Ok(apply_to_credited(&app.store, &topup, &payment.id, &request).await?.into())
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

impl From<ReversalOutcome> for WebhookOutcome {
    fn from(outcome: ReversalOutcome) -> Self {
        match outcome {
            ReversalOutcome::Ignored => WebhookOutcome::Ignored,
            ReversalOutcome::Duplicate => WebhookOutcome::Duplicate,
            ReversalOutcome::Recorded => WebhookOutcome::Recorded,
            ReversalOutcome::Reversed => WebhookOutcome::Reversed,
            ReversalOutcome::Restored => WebhookOutcome::Restored,
        }
    }
}
