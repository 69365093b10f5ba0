//! Razorpay: the Orders and Payments APIs (Basic auth with the key id and secret, amounts in
//! integer paise), the checkout signature and the webhook payload.
//!
//! Orders are created with `payment_capture` (auto-capture): Razorpay captures a payment as
//! soon as it is authorised, so we never capture one ourselves. A wallet is credited only for
//! a payment Razorpay reports `captured`, for the top-up's order, amount and currency
//! ([`PaymentEntity::check`]).

use serde::{Deserialize, Serialize};

use crate::Money;
use crate::outbound::{Provider, ProviderError};
use crate::signature;

const PROVIDER: &str = "razorpay";

#[derive(Clone, Debug)]
pub struct Razorpay {
    pub base_url: String,
    pub key_id: String,
    pub key_secret: String,
    pub webhook_secret: String,
    api: Provider,
}

#[derive(Debug, Serialize)]
struct CreateOrder<'a> {
    amount: u64,
    currency: &'a str,
    receipt: &'a str,
    notes: serde_json::Value,
    /// 1: Razorpay captures each payment once authorised (see the module doc).
    payment_capture: u8,
}

/// The part of Razorpay's order entity we keep.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: String,
    pub amount: u64,
    pub currency: String,
}

impl Razorpay {
    pub fn new(base_url: &str, key_id: String, key_secret: String, webhook_secret: String) -> Self {
        let api = Provider::new(PROVIDER, base_url, &key_id, &key_secret);
        Self { base_url: base_url.trim_end_matches('/').to_owned(), key_id, key_secret, webhook_secret, api }
    }

    /// Creates an order for `amount`; `receipt` is our top-up id, `notes` our ids.
    pub async fn create_order(
        &self,
        amount: Money,
        receipt: &str,
        notes: serde_json::Value,
    ) -> Result<Order, ProviderError> {
        let body = CreateOrder { amount: amount.paise(), currency: "INR", receipt, notes, payment_capture: 1 };
        let reply = self.api.post_json("/v1/orders", &body).await?;
        if !reply.is_success() {
            // Razorpay's error body: { "error": { "code", "description", ... } }.
            let detail: String = String::from_utf8_lossy(&reply.body).chars().take(300).collect();
            return Err(reply.rejected(detail));
        }
        let order: Order = reply.json()?;
        if order.amount != amount.paise() || order.currency != "INR" || !order.id.starts_with("order_") {
            return Err(
                reply.rejected(format!("unexpected order {} for {} {}", order.id, order.amount, order.currency))
            );
        }
        Ok(order)
    }

    /// Razorpay's record of payment `id` (`GET /v1/payments/{id}`); `id` is a checked `pay_...`.
    pub async fn payment(&self, id: &str) -> Result<PaymentEntity, ProviderError> {
        let reply = self.api.get(&format!("/v1/payments/{id}")).await?;
        if !reply.is_success() {
            return Err(reply.rejected(String::from_utf8_lossy(&reply.body).chars().take(300).collect::<String>()));
        }
        reply.json()
    }

    /// Every refund of payment `id` (`GET /v1/payments/{id}/refunds`), oldest first.
    pub async fn payment_refunds(&self, id: &str) -> Result<Vec<RefundEntity>, ProviderError> {
        self.collection(&format!("/v1/payments/{id}/refunds")).await
    }

    /// Refunds `amount` of payment `id` (`POST /v1/payments/{id}/refund`, a normal-speed
    /// refund) with our `notes`, which say why (so a retry finds it in [`Self::payment_refunds`]).
    pub async fn create_refund(
        &self,
        id: &str,
        amount: Money,
        notes: serde_json::Value,
    ) -> Result<RefundEntity, ProviderError> {
        let body = serde_json::json!({ "amount": amount.paise(), "speed": "normal", "notes": notes });
        let reply = self.api.post_json(&format!("/v1/payments/{id}/refund"), &body).await?;
        if !reply.is_success() {
            return Err(reply.rejected(String::from_utf8_lossy(&reply.body).chars().take(300).collect::<String>()));
        }
        let refund: RefundEntity = reply.json()?;
        if refund.payment_id != id || refund.amount != amount.paise() || refund.currency != "INR" {
            return Err(reply.rejected(format!("unexpected refund {} of {}", refund.id, refund.amount)));
        }
        Ok(refund)
    }

    /// Every payment attempt on order `order_id` (`GET /v1/orders/{id}/payments`).
    pub async fn order_payments(&self, order_id: &str) -> Result<Vec<PaymentEntity>, ProviderError> {
        self.collection(&format!("/v1/orders/{order_id}/payments")).await
    }

    /// The items of a Razorpay collection (`{ "entity": "collection", "items": [...] }`).
    async fn collection<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ProviderError> {
        #[derive(Deserialize)]
        struct Collection<T> {
            items: Vec<T>,
        }
        let reply = self.api.get(path).await?;
        if !reply.is_success() {
            return Err(reply.rejected(String::from_utf8_lossy(&reply.body).chars().take(300).collect::<String>()));
        }
        Ok(reply.json::<Collection<T>>()?.items)
    }

    /// Our notes on order `order_id` (the top-up it was created for), asked of Razorpay
    /// (`GET /v1/orders/{id}`): `None` when Razorpay does not know the order or another
    /// integration on the account made it.
    pub async fn order_notes(&self, order_id: &str) -> Result<Option<OrderNotes>, ProviderError> {
        #[derive(Deserialize)]
        struct FetchedOrder {
            notes: Option<OrderNotes>,
        }
        let reply = self.api.get(&format!("/v1/orders/{order_id}")).await?;
        // Razorpay answers an unknown id with 400 BAD_REQUEST_ERROR.
        if reply.status == 400 || reply.status == 404 {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(reply.rejected(String::from_utf8_lossy(&reply.body).chars().take(300).collect::<String>()));
        }
        // `notes` is `[]` on an order without notes: not one of ours.
        Ok(serde_json::from_slice::<FetchedOrder>(&reply.body).ok().and_then(|o| o.notes))
    }

    /// The checkout signature: HMAC-SHA256 of `order_id|payment_id` with the key secret,
    /// where the order id is the one we stored, never one the client sends.
    pub fn checkout_signature_valid(&self, stored_order_id: &str, payment_id: &str, signature_hex: &str) -> bool {
        let message = format!("{stored_order_id}|{payment_id}");
        signature::verify_hmac_sha256_hex(self.key_secret.as_bytes(), message.as_bytes(), signature_hex)
    }

    /// `X-Razorpay-Signature`: HMAC-SHA256 of the raw body with the webhook secret.
    pub fn webhook_signature_valid(&self, raw_body: &[u8], signature_hex: &str) -> bool {
        signature::verify_hmac_sha256_hex(self.webhook_secret.as_bytes(), raw_body, signature_hex)
    }
}

/// The notes `create_order` puts on our orders.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderNotes {
    pub top_up_id: String,
    pub user_id: String,
}

/// A webhook event, as much of it as we act on.
#[derive(Debug, Deserialize)]
pub struct WebhookEvent {
    pub event: String,
    #[serde(default)]
    pub payload: WebhookPayload,
}

#[derive(Debug, Default, Deserialize)]
pub struct WebhookPayload {
    pub payment: Option<Wrapped<PaymentEntity>>,
    pub order: Option<Wrapped<OrderEntity>>,
    pub refund: Option<Wrapped<RefundEntity>>,
    pub dispute: Option<Wrapped<DisputeEntity>>,
}

/// A refund of a payment (`refund.processed`).
#[derive(Debug, Clone, Deserialize)]
pub struct RefundEntity {
    pub id: String,
    pub payment_id: String,
    pub amount: u64,
    pub currency: String,
    /// The merchant's notes on the refund (ours name why we refunded).
    #[serde(default)]
    pub notes: serde_json::Value,
}

/// A dispute of a payment (`payment.dispute.*`): its `phase` and `status` say where it stands.
#[derive(Debug, Clone, Deserialize)]
pub struct DisputeEntity {
    pub id: String,
    pub payment_id: String,
    pub amount: u64,
    pub currency: String,
    pub phase: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct Wrapped<T> {
    pub entity: T,
}

/// A payment, as a webhook carries it and as the Payments API answers.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentEntity {
    pub id: String,
    pub order_id: Option<String>,
    pub amount: u64,
    pub currency: String,
    pub status: String,
    #[serde(default)]
    pub error_description: Option<String>,
    /// Paise refunded so far: a credit takes back what Razorpay already gave back.
    #[serde(default)]
    pub amount_refunded: u64,
    /// Unix seconds: when the customer paid, which decides whether the bonus quote held.
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// What a payment means for a top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentCheck {
    /// Captured, for the top-up's order, amount and currency: the wallet may be credited.
    Captured,
    /// For the top-up, but not (or not yet) captured: `created`, `authorized`, `failed`, `refunded`.
    NotCaptured,
    /// For another order, amount or currency: never credits.
    Mismatch,
}

impl PaymentEntity {
    /// When the customer paid, if Razorpay says.
    pub fn paid_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.created_at.and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
    }

    /// Whether this payment pays the top-up made as `order_id` for `amount` INR.
    pub fn check(&self, order_id: &str, amount: Money) -> PaymentCheck {
        if self.order_id.as_deref() != Some(order_id) || self.amount != amount.paise() || self.currency != "INR" {
            PaymentCheck::Mismatch
        } else if self.status == "captured" || self.status == "refunded" {
            // A refunded payment was captured first: it is credited, and its refunds taken back.
            PaymentCheck::Captured
        } else {
            PaymentCheck::NotCaptured
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct OrderEntity {
    pub id: String,
}

impl WebhookEvent {
    /// The Razorpay order this event is about.
    pub fn order_id(&self) -> Option<&str> {
        self.payload
            .payment
            .as_ref()
            .and_then(|p| p.entity.order_id.as_deref())
            .or_else(|| self.payload.order.as_ref().map(|o| o.entity.id.as_str()))
    }

    pub fn payment(&self) -> Option<&PaymentEntity> {
        self.payload.payment.as_ref().map(|p| &p.entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Razorpay {
        Razorpay::new("http://x", "rzp_test_key".into(), "key_secret_123".into(), "webhook_secret_456".into())
    }

    // Computed independently of this code, with
    // `printf '%s' 'order_IluGWxBm9U8zJ8|pay_IH4NVgf4Dreq1l' | openssl dgst -sha256 -hmac key_secret_123`.
    const CHECKOUT_SIG: &str = "29b7bf3b675dd354a3d13ad13692066ef12a6240cf2230c72b4b3baaa7f42baa";

    #[test]
    fn checkout_signature_vector() {
        let c = client();
        assert!(c.checkout_signature_valid("order_IluGWxBm9U8zJ8", "pay_IH4NVgf4Dreq1l", CHECKOUT_SIG));
        assert!(!c.checkout_signature_valid("order_OTHER", "pay_IH4NVgf4Dreq1l", CHECKOUT_SIG));
        assert!(!c.checkout_signature_valid("order_IluGWxBm9U8zJ8", "pay_other", CHECKOUT_SIG));
        assert!(!c.checkout_signature_valid("order_IluGWxBm9U8zJ8", "pay_IH4NVgf4Dreq1l", ""));
    }

    // `printf '%s' '{"event":"payment.captured"}' | openssl dgst -sha256 -hmac webhook_secret_456`.
    const WEBHOOK_SIG: &str = "2f69a2b7b4ffb4f5bb72dac3b4e6a69210a6fde5917a8d204e0cb4ef8de67139";

    #[test]
    fn webhook_signature_vector() {
        let c = client();
        assert!(c.webhook_signature_valid(br#"{"event":"payment.captured"}"#, WEBHOOK_SIG));
        assert!(!c.webhook_signature_valid(br#"{"event":"payment.captured" }"#, WEBHOOK_SIG));
        assert!(!c.webhook_signature_valid(br#"{"event":"payment.captured"}"#, CHECKOUT_SIG));
    }

    #[test]
    fn only_a_captured_payment_for_the_order_amount_and_currency_pays() {
        let payment = |order: &str, amount: u64, currency: &str, status: &str| PaymentEntity {
            id: "pay_1".into(),
            order_id: Some(order.into()),
            amount,
            currency: currency.into(),
            status: status.into(),
            error_description: None,
            amount_refunded: 0,
            created_at: None,
        };
        let amount: Money = "500".parse().unwrap();
        for status in ["captured", "refunded"] {
            assert_eq!(payment("order_1", 50_000, "INR", status).check("order_1", amount), PaymentCheck::Captured);
        }
        for status in ["created", "authorized", "failed"] {
            assert_eq!(payment("order_1", 50_000, "INR", status).check("order_1", amount), PaymentCheck::NotCaptured);
        }
        for other in [payment("order_2", 50_000, "INR", "captured"), payment("order_1", 49_999, "INR", "captured")] {
            assert_eq!(other.check("order_1", amount), PaymentCheck::Mismatch);
        }
        assert_eq!(payment("order_1", 50_000, "USD", "captured").check("order_1", amount), PaymentCheck::Mismatch);
        let mut no_order = payment("order_1", 50_000, "INR", "captured");
        no_order.order_id = None;
        assert_eq!(no_order.check("order_1", amount), PaymentCheck::Mismatch);
    }

    #[test]
    fn reads_the_order_id_from_either_entity() {
        let captured: WebhookEvent = serde_json::from_str(
            r#"{"entity":"event","event":"payment.captured","contains":["payment"],"payload":{"payment":{"entity":
            {"id":"pay_1","entity":"payment","amount":50000,"currency":"INR","status":"captured","order_id":"order_1"}}}}"#,
        )
        .unwrap();
        assert_eq!(captured.order_id(), Some("order_1"));
        let paid: WebhookEvent = serde_json::from_str(
            r#"{"event":"order.paid","payload":{"order":{"entity":{"id":"order_2","amount":50000}}}}"#,
        )
        .unwrap();
        assert_eq!(paid.order_id(), Some("order_2"));
    }
}
