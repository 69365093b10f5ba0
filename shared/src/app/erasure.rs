//! Deleting an account (`DELETE /me`), the one way. Every step can be run again, so a call
//! that fails part-way is finished by the next (the client retries; nothing else is needed):
//!
//! 1. refused while a consultation is in progress (`InProgress`); the deletion's record
//!    (`ERASURE#{sub}`) is made and the user marked, and the wallet is closed: from then on
//!    it takes no hold and no top-up (`crate::store::wallet::read_open_wallet`);
//! 2. consultations not started are ended as staff end them: everything held goes back;
//! 3. real cash goes back to the payments it came from through Razorpay (newest first,
//!    [`plan_refunds`]); each refund is posted at once through the same exactly-once path as
//!    Razorpay's `refund.processed`, which later finds it applied. A refund made before a
//!    fault is found again by its notes, never made twice;
//! 4. bonus cash lapses (a `bonus_forfeited` ledger entry);
//! 5. their objects leave the images bucket: the chat images they sent and every picture
//!    under `pictures/{sub}/` (the one set, and any uploaded and never set), each with a
//!    presigned DELETE. Before the keys are erased, so a retry finds them again;
//! 6. personal data is erased (`Store::erase_personal_data`), the Cognito user signed out
//!    everywhere and deleted, so the number can sign up afresh;
//! 7. the record is completed: what happened to the money, with no personal data.
//!
//! The ledger, top-ups, invoices, earnings and KYC audit stay, under the user id, a random
//! UUID that names nobody once the user item is a tombstone.

use aws_sdk_cognitoidentityprovider::Client as Cognito;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::account;
use crate::app::closing::{self, CloseError};
use crate::app::images::Images;
use crate::app::top_up::CREDIT_ATTEMPTS;
use crate::app::top_up::reversal::{self, ReversalOutcome};
use crate::domain::booking::{Action, Consultation, ConsultationStatus, Party, RevenueShare};
use crate::domain::image::PictureKey;
use crate::domain::money::Money;
use crate::domain::profile::{RefundSource, plan_refunds};
use crate::domain::reversal::Request;
use crate::domain::user::UserId;
use crate::domain::wallet::Movement;
use crate::outbound::Http;
use crate::providers::razorpay::Razorpay;
use crate::secrets::OnFirstUse;
use crate::store::people::{ErasureRecord, RefundMade};
use crate::store::retry::{self, Attempt};
use crate::store::{Account, Store, StoreError, UserLookup};

/// What deleting an account needs.
pub struct Erasure<'a> {
    pub store: &'a Store,
    pub razorpay: &'a OnFirstUse<Razorpay>,
    pub cognito: &'a Cognito,
    pub user_pool_id: &'a str,
    pub share: RevenueShare,
    /// The images bucket, and the client its presigned deletions go out through.
    pub images: &'a Images,
    pub http: &'a Http,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("no such account")]
    NotFound,
    /// A consultation is in progress: end it first.
    #[error("consultation {0} is in progress")]
    InProgress(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("closing a consultation: {0}")]
    Close(#[from] CloseError),
    /// Razorpay or Cognito did not answer; the next call resumes.
    #[error("{0}")]
    Provider(String),
    #[error("the wallet kept changing")]
    Busy,
    /// Another call is deleting the account right now.
    #[error("another request is deleting this account")]
    UnderWay,
}

/// How long one call holds a deletion: longer than the function's timeout (29 s), so a
/// second call waits for the first to finish or die.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// The notes every refund of a deletion carries: how a retry finds the refund it made.
const REFUND_REASON: &str = "account_deletion";

impl Erasure<'_> {
    /// Deletes `user`'s account (see the module doc). A deletion already complete is
    /// returned as it was.
    pub async fn delete_account(&self, user: &UserId, now: DateTime<Utc>) -> Result<ErasureRecord, ErasureError> {
        match self.store.user_lookup(user).await? {
            UserLookup::Missing => return Err(ErasureError::NotFound),
            UserLookup::Deleted => {
                if let Some(done) = self.store.erasure(user).await?.filter(|r| r.completed_at.is_some()) {
                    return Ok(done);
                }
            }
            UserLookup::Found(_) => {}
        }
        let consultations = self.consultations_of_either_side(user).await?;
        if let Some(live) = consultations.iter().find(|c| c.status == ConsultationStatus::InProgress) {
            return Err(ErasureError::InProgress(live.booking_id.as_str().to_owned()));
        }
        self.store.start_erasure(user, now).await?;
        if !self.store.lease_erasure(user, now, now + LEASE).await? {
            return Err(ErasureError::UnderWay);
        }
        let done = self.delete_leased(user, &consultations, now).await;
        // Let go at once, done or not (a retry resumes); a call that died lets the lease lapse.
        if let Err(e) = self.store.end_erasure_lease(user).await {
            tracing::warn!(error = %e, "the deletion's lease is left to lapse");
        }
        done?;
        tracing::info!(user_id = %user, "account deleted");
        self.store.erasure(user).await?.ok_or(ErasureError::NotFound)
    }

    /// Steps 1 (the wallet closed) to 6, under the lease.
    async fn delete_leased(
        &self,
        user: &UserId,
        consultations: &[Consultation],
        now: DateTime<Utc>,
    ) -> Result<(), ErasureError> {
        self.store.close_wallet(user, now).await?;
        for c in consultations
            .iter()
            .filter(|c| matches!(c.status, ConsultationStatus::Scheduled | ConsultationStatus::Ringing))
        {
            closing::close(self.store, c.clone(), Action::End, Party::Staff, self.share).await?;
        }
        let money = self.settle_money(user, now).await?;
        self.store.record_erasure_money(user, &money).await?;
        // The closings above changed statuses, not who took part: the list read holds.
        self.delete_objects(user, consultations).await?;
        self.store.erase_personal_data(user, consultations, now).await?;
        self.remove_sign_in(user).await?;
        self.store.complete_erasure(user, Utc::now()).await?;
        Ok(())
    }

    /// Step 5: the chat images `user` sent and every picture of theirs, deleted from the bucket.
    /// Each request is signed as it goes (the steps before may have taken a while).
    async fn delete_objects(&self, user: &UserId, consultations: &[Consultation]) -> Result<(), ErasureError> {
        let s3 = |e: crate::outbound::ProviderError| ErasureError::Provider(format!("images bucket: {e}"));
        let mut keys = self.store.sent_image_keys(user, consultations).await?;
        keys.extend(self.images.list_keys(self.http, &PictureKey::prefix(user), Utc::now()).await.map_err(s3)?);
        for key in &keys {
            self.images.delete_object(self.http, key, Utc::now()).await.map_err(s3)?;
        }
        tracing::info!(user_id = %user, objects = keys.len(), "images deleted");
        Ok(())
    }

    /// Every consultation of `user`, as customer and as astrologer (all pages).
    async fn consultations_of_either_side(&self, user: &UserId) -> Result<Vec<Consultation>, StoreError> {
        let mut all = Vec::new();
        for as_astrologer in [false, true] {
            let mut after: Option<String> = None;
            loop {
                let (page, next) =
                    self.store.consultations_of(user, as_astrologer, None, 100, after.as_deref()).await?;
                all.extend(page);
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        Ok(all)
    }

    /// Steps 3 and 4: refunds, then the bonus lapses. Returns what was done, for the record.
    async fn settle_money(&self, user: &UserId, now: DateTime<Utc>) -> Result<serde_json::Value, ErasureError> {
        let account = Account::Wallet(user.clone());
        let wallet = self.store.account(&account).await?.ok_or(ErasureError::NotFound)?;
        let mut kept = Money::ZERO;
        if wallet.real_cash > Money::ZERO {
            let razorpay = self.razorpay.get().await.map_err(|e| ErasureError::Provider(e.to_string()))?;
            let mut sources = Vec::new();
            for top_up_id in self.store.credited_top_ups(user).await? {
                let Some(topup) = self.store.topup(&top_up_id, user).await? else { continue };
                let Some(credit) = &topup.credit else { continue };
                let payment = razorpay.payment(&credit.payment_id).await.map_err(razorpay_error)?;
                let paid_at = payment.paid_at().unwrap_or(topup.created_at);
                // A refund this deletion made before a fault is posted (once), never made again.
                for r in razorpay.payment_refunds(&credit.payment_id).await.map_err(razorpay_error)? {
                    if r.notes.get("reason").and_then(|v| v.as_str()) == Some(REFUND_REASON)
                        && let Some(request) = reversal::refund_request(&r)
                    {
                        let made = RefundMade {
                            refund_id: r.id,
                            top_up_id: top_up_id.clone(),
                            amount: Money::from_paise(r.amount),
                        };
                        self.store.record_erasure_refund(user, &made).await?;
                        self.post_refund(&topup, &credit.payment_id, &request).await?;
                    }
                }
                sources.push(RefundSource {
                    top_up_id: top_up_id.clone(),
                    payment_id: credit.payment_id.clone(),
                    paid_at,
                    refundable: Money::from_paise(payment.amount.saturating_sub(payment.amount_refunded)),
                });
            }
            // What is left after any earlier refunds were posted.
            let wallet = self.store.account(&account).await?.ok_or(ErasureError::NotFound)?;
            let (refunds, left) = plan_refunds(wallet.real_cash, sources, now);
            kept = left;
            for (source, amount) in refunds {
                let notes = json!({ "reason": REFUND_REASON, "top_up_id": source.top_up_id });
                let refund = razorpay.create_refund(&source.payment_id, amount, notes).await.map_err(razorpay_error)?;
                // Recorded before it is posted: once posted, the wallet no longer says it was made.
                let made = RefundMade { refund_id: refund.id.clone(), top_up_id: source.top_up_id.clone(), amount };
                self.store.record_erasure_refund(user, &made).await?;
                let Some(topup) = self.store.topup(&source.top_up_id, user).await? else { continue };
                if let Some(request) = reversal::refund_request(&refund) {
                    self.post_refund(&topup, &source.payment_id, &request).await?;
                }
            }
        }
        let forfeited = self.forfeit_bonus(user, now).await?;
        let wallet = self.store.account(&account).await?.ok_or(ErasureError::NotFound)?;
        Ok(json!({
            "bonus_forfeited": forfeited,
            // Real cash no payment could take back (older than Razorpay refunds): support pays it out.
            "kept_for_payout": kept.max(wallet.real_cash),
            "debt": wallet.debt,
        }))
    }

    async fn post_refund(
        &self,
        topup: &crate::domain::topup::TopUp,
        payment_id: &str,
        request: &Request,
    ) -> Result<ReversalOutcome, ErasureError> {
        reversal::apply_to_credited(self.store, topup, payment_id, request)
            .await
            .map_err(|e| ErasureError::Provider(format!("posting the refund: {}", e.message)))
    }

    /// The bonus cash left lapses, in one posting (a race reads again).
    async fn forfeit_bonus(&self, user: &UserId, now: DateTime<Utc>) -> Result<Money, ErasureError> {
        let account = Account::Wallet(user.clone());
        retry::on_conflict(
            CREDIT_ATTEMPTS,
            |_| ErasureError::Busy,
            || async {
                let Some(wallet) = self.store.account(&account).await? else { return Ok(Attempt::Done(Money::ZERO)) };
                // Once lapsed, nothing is left to lapse: a retry posts nothing.
                if wallet.bonus_cash == Money::ZERO {
                    return Ok(Attempt::Done(Money::ZERO));
                }
                let movement = Movement::bonus_forfeited(wallet.bonus_cash, user.as_str());
                let posting = wallet.post(vec![movement], now).map_err(|e| ErasureError::Provider(e.to_string()))?;
                Ok(if self.store.post(&account, &posting).await? {
                    Attempt::Done(wallet.bonus_cash)
                } else {
                    Attempt::Conflict
                })
            },
        )
        .await
    }

    /// Signs the user out everywhere and deletes them from the pool (already gone: done).
    async fn remove_sign_in(&self, user: &UserId) -> Result<(), ErasureError> {
        let found = account::find_by_sub(self.cognito, self.user_pool_id, user)
            .await
            .map_err(|e| ErasureError::Provider(e.to_string()))?;
        let Some(cognito_user) = found else { return Ok(()) };
        let cognito_error = |e| ErasureError::Provider(format!("cognito: {e}"));
        self.cognito
            .admin_user_global_sign_out()
            .user_pool_id(self.user_pool_id)
            .username(&cognito_user.username)
            .send()
            .await
            .map_err(|e| cognito_error(format!("{e:?}")))?;
        self.cognito
            .admin_delete_user()
            .user_pool_id(self.user_pool_id)
            .username(&cognito_user.username)
            .send()
            .await
            .map_err(|e| cognito_error(format!("{e:?}")))?;
        Ok(())
    }
}

fn razorpay_error(e: crate::outbound::ProviderError) -> ErasureError {
    ErasureError::Provider(format!("razorpay: {e}"))
}
