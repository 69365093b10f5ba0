//! This function's part of the API contract (see `shared::http::openapi`).

use serde_json::{Value, json};
use shared::domain::wallet::WalletView;
use shared::http::openapi::{
    self as doc, Callback, FunctionDoc, NOT_FOUND, Operation, Registry, Request, STORE_UNAVAILABLE, error, query,
    schema, success,
};

use super::*;
use crate::transactions::{MAX_LIMIT, Page};

const BUSY: shared::http::openapi::ErrorCase = error(503, "busy", "the wallet kept changing underneath; retry");

pub fn openapi() -> FunctionDoc {
    FunctionDoc::new("top-up", "Wallet", ROUTES, &[STORE_UNAVAILABLE], |op| {
        match op {
        Op::Create => Operation {
            summary: "Start a wallet top-up (creates a Razorpay order)",
            description: "Quotes the promotion bonus (and the bonus of the recharge offer named by `offer_id`, \
                          applied by the credit if the offer still holds then) and creates the Razorpay order; open Razorpay's checkout with \
                          `checkout`. The wallet is credited once, by whichever comes first: `POST \
                          /wallet/top-ups/{id}/confirm` or Razorpay's webhook (see the callback). Nothing is \
                          written if Razorpay is down.",
            request: Request::Json(doc::body(schema::<CreateBody>)),
            idempotency_key: true,
            responses: vec![success(201, "The top-up and the checkout options", schema::<Created>)],
            errors: [
                vec![
                    error(404, "not_found", "the caller has no wallet (account setup did not finish)"),
                    error(
                        422,
                        "offer_refused",
                        "the offer is unknown, over, used up, not a recharge bonus or not for the caller (milestone, segment)",
                    ),
                    error(
                        409,
                        "too_many_open_top_ups",
                        "the caller already has 5 top-ups awaiting payment (each is given up an hour after creation)",
                    ),
                ],
                doc::provider_errors("razorpay").to_vec(),
            ]
            .concat(),
            callbacks: vec![Callback {
                name: "razorpayPayment",
                route: "POST /webhooks/razorpay",
                description: "Razorpay reports `payment.captured`, `order.paid` and `payment.failed` with a signed webhook",
            }],
            ..Operation::default()
        },
        Op::Confirm => Operation {
            summary: "Confirm a payment with what the checkout returned",
            description: "Checks `razorpay_signature` against the stored order, asks Razorpay for the payment \
                          (orders are created with auto-capture: it must be `captured`, for this order's amount \
                          in INR) and credits the wallet exactly once (a repeat, or a confirm after the webhook, \
                          changes nothing and answers the same).",
            request: Request::Json(doc::body(schema::<ConfirmBody>)),
            responses: vec![success(200, "The completed top-up and the wallet", schema::<TopUpView>)],
            errors: [
                vec![
                    error(404, "not_found", "no such top-up of the caller's"),
                    error(400, "invalid_signature", "`razorpay_signature` does not match the order and payment"),
                    error(
                        409,
                        "payment_not_captured",
                        "Razorpay has not captured the payment (yet): nothing credited; the webhook or the \
                     reconciliation credits it once captured, or confirm again",
                    ),
                    error(409, "payment_mismatch", "Razorpay's payment is for another order, amount or currency"),
                    BUSY,
                ],
                doc::provider_errors("razorpay").to_vec(),
            ]
            .concat(),
            ..Operation::default()
        },
        Op::GetTopUp => Operation {
            summary: "One of the caller's top-ups",
            responses: vec![success(200, "The top-up (with its invoice once completed)", schema::<TopUpView>)],
            errors: vec![error(404, "not_found", "no such top-up of the caller's")],
            ..Operation::default()
        },
        Op::Wallet => Operation {
            summary: "The caller's wallet",
            responses: vec![success(200, "Balances and lifetime totals", schema::<WalletView>)],
            errors: vec![NOT_FOUND],
            ..Operation::default()
        },
        Op::Transactions => Operation {
            summary: "The caller's ledger, newest first, a page at a time",
            description: "Pass the previous page's `next_cursor` as `cursor` for the next; it is `null` on the last.",
            params: vec![
                query(
                    "limit",
                    "entries per page (default 20)",
                    json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": transactions::DEFAULT_LIMIT }),
                ),
                query(
                    "cursor",
                    "`next_cursor` of the previous page, as returned (opaque)",
                    json!({ "type": "string", "maxLength": 512 }),
                ),
            ],
            responses: vec![success(200, "One page", schema::<Page>)],
            errors: vec![error(400, "invalid_field", "`limit` is not 1 to 100, or `cursor` is not one we returned")],
            ..Operation::default()
        },
        Op::Webhook => Operation {
            summary: "Razorpay's payment events (a callback Razorpay makes, not for apps)",
            description: "Razorpay calls this with `X-Razorpay-Signature`: the hex HMAC-SHA256 of the raw body with \
                          the webhook secret, checked before anything is parsed. `X-Razorpay-Event-Id` (the same on \
                          every retry of one event) makes retries change nothing. Events for orders that are not \
                          ours (or for no order), and other event types, are acknowledged with 200 `ignored`; \
                          an order of ours whose top-up is not visible yet gets a 503, so Razorpay retries it. \
                          `refund.processed` and `payment.dispute.*` take the recharge's share back from the \
                          wallet (what was spent becomes debt) and a won dispute gives it back, once each.",
            request: Request::Signed {
                body: doc::body(razorpay_event_schema),
                signature_header: "X-Razorpay-Signature",
                description: "hex HMAC-SHA256 of the raw body with the Razorpay webhook secret",
            },
            params: vec![doc::header(
                "X-Razorpay-Event-Id",
                false,
                "Razorpay's event id, the same on every retry (without it the body identifies the event)",
                json!({ "type": "string", "maxLength": 128 }),
            )],
            responses: vec![success(200, "Handled", schema::<WebhookAck>)],
            errors: [
                vec![
                    error(401, "missing_signature", "`X-Razorpay-Signature` is missing"),
                    error(401, "invalid_signature", "`X-Razorpay-Signature` does not match the body"),
                    error(400, "invalid_body", "the (correctly signed) body is not a Razorpay event"),
                    error(
                        503,
                        "top_up_not_found_yet",
                        "Razorpay says the order is ours but its top-up is not visible yet: retry",
                    ),
                    BUSY,
                ],
                doc::provider_errors("razorpay").to_vec(),
            ]
            .concat(),
            ..Operation::default()
        },
    }
    })
}

/// `amount` of `POST /wallet/top-ups`: what `Money` parses, within the default
/// `TOPUP_MIN_AMOUNT`..`TOPUP_MAX_AMOUNT` (10 to 50,000; a deployment may set others).
pub const AMOUNT_PATTERN: &str =
    "^0*(1[0-9]|[2-9][0-9]|[1-9][0-9]{2,3}|[1-4][0-9]{4})(\\.[0-9]{0,2})?$|^0*50000(\\.0{0,2})?$";

pub fn amount() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    doc::json_schema(json!({
        "description": "INR to add, 10 to 50,000 (`TOPUP_MIN_AMOUNT`, `TOPUP_MAX_AMOUNT`), at most two decimals: a string (`\"500\"`, `\"500.50\"`) or a JSON number",
        "anyOf": [
            { "type": "string", "pattern": AMOUNT_PATTERN },
            { "type": "number", "minimum": 10, "maximum": 50000, "multipleOf": 0.01 },
        ],
        "examples": ["500.00"],
    }))
}

/// What `razorpay::WebhookEvent` reads of Razorpay's event.
fn razorpay_event_schema(registry: &mut Registry) -> Value {
    let entity = |props: Value, required: Value| {
        json!({ "type": "object", "required": ["entity"], "properties": {
            "entity": { "type": "object", "required": required, "properties": props } } })
    };
    registry.insert(
        "RazorpayEvent",
        json!({
            "type": "object",
            "description": "A Razorpay webhook event (`payment.captured`, `order.paid`, `payment.failed`, `refund.processed`, `payment.dispute.*`; others are ignored).",
            "required": ["event"],
            "properties": {
                "event": { "type": "string", "examples": ["payment.captured"] },
                "payload": { "type": "object", "properties": {
                    "payment": entity(json!({
                        "id": { "type": "string" }, "order_id": { "type": ["string", "null"] },
                        "amount": { "type": "integer", "minimum": 0, "description": "paise" },
                        "currency": { "type": "string" }, "status": { "type": "string" },
                        "error_description": { "type": ["string", "null"] },
                    }), json!(["id", "amount", "currency", "status"])),
                    "order": entity(json!({ "id": { "type": "string" } }), json!(["id"])),
                    "refund": entity(json!({
                        "id": { "type": "string" }, "payment_id": { "type": "string" },
                        "amount": { "type": "integer", "minimum": 0, "description": "paise" },
                        "currency": { "type": "string" },
                    }), json!(["id", "payment_id", "amount", "currency"])),
                    "dispute": entity(json!({
                        "id": { "type": "string" }, "payment_id": { "type": "string" },
                        "amount": { "type": "integer", "minimum": 0, "description": "paise" },
                        "currency": { "type": "string" },
                        "phase": { "type": "string", "examples": ["chargeback"] },
                        "status": { "type": "string", "examples": ["open", "under_review", "won", "lost", "closed"] },
                    }), json!(["id", "payment_id", "amount", "currency", "phase", "status"])),
                } },
            },
        }),
    );
    json!({ "$ref": "#/components/schemas/RazorpayEvent" })
}

#[cfg(test)]
mod tests {
    use shared::app::top_up::{DEFAULT_MAX_AMOUNT, DEFAULT_MIN_AMOUNT};

    use super::*;

    /// The amount schema accepts what `create` accepts (with the default limits), on samples.
    #[test]
    fn amount_schema_follows_money_and_the_default_limits() {
        let (min, max): (Money, Money) = (DEFAULT_MIN_AMOUNT.parse().unwrap(), DEFAULT_MAX_AMOUNT.parse().unwrap());
        let pattern = regex::Regex::new(AMOUNT_PATTERN).unwrap();
        for raw in [
            "10", "10.00", "9.99", "10.5", "10.", "010", "500", " 500 ", "49999.99", "50000", "50000.00", "50000.01",
            "50001", "100000", "1e3", "+500", "-500", ".5", "500.001", "abc", "", "0", "12345", "99999",
        ] {
            let accepted = raw.parse::<Money>().is_ok_and(|m| m >= min && m <= max);
            assert_eq!(pattern.is_match(raw), accepted, "{raw:?}");
        }
        assert_eq!(json!(10), json!(min.decimal().to_string().parse::<f64>().unwrap() as i64));
    }

    #[test]
    fn payment_id_pattern_follows_the_check() {
        let pattern = regex::Regex::new("^pay_[A-Za-z0-9_]{0,60}$").unwrap();
        for raw in [
            "pay_1",
            "pay_",
            "pay_a-b",
            &format!("pay_{}", "a".repeat(60)),
            &format!("pay_{}", "a".repeat(61)),
            "order_1",
        ] {
            assert_eq!(pattern.is_match(raw), valid_payment_id(raw), "{raw}");
        }
    }
}
