//! Closing a consultation, the one way: complete (settle the minutes), cancel (refund by
//! policy), no-show (refund all) or a staff end (whichever of the first two its state
//! needs). Shared by the `book` function, the sweep and suspensions so money leaves a
//! consultation through one path: read (wallet, earnings, astrologer), let the domain
//! decide, write once (with the promo code's use given back on a full refund); a race
//! reads again.

use chrono::{DateTime, Utc};

use crate::booking::{self, Action, Consultation, ConsultationStatus, Party, RevenueShare, transition};
use crate::money::Money;
use crate::store::{Store, StoreError};
use crate::wallet::{Movement, Reference, WalletError};

/// Reads and writes again this many times when a race moved what was read.
pub const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// The state machine does not allow it from where the consultation stands.
    #[error("a {0} consultation cannot be {1}")]
    NotAllowed(&'static str, &'static str),
    #[error("no such consultation")]
    NotFound,
    #[error("the astrologer has not started this consultation yet")]
    TooEarly,
    #[error("the consultation kept changing; try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("wallet arithmetic refused: {0}")]
    Wallet(#[from] WalletError),
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Start => "started",
        Action::Complete => "completed",
        Action::Cancel => "cancelled",
        Action::NoShow => "closed as a no-show",
        Action::End => "ended",
    }
}

fn party_name(by: Party) -> &'static str {
    match by {
        Party::Customer => "customer",
        Party::Astrologer => "astrologer",
        Party::System => "system",
        Party::Staff => "staff",
    }
}

/// Completes, cancels, closes as no-show or ends `read` (as just read) for `by`; the
/// consultation as it ends. Closing one already in the state asked for returns it (a retry
/// is not an error). A race reads the consultation again.
pub async fn close(
    store: &Store,
    read: Consultation,
    action: Action,
    by: Party,
    share: RevenueShare,
) -> Result<Consultation, CloseError> {
    let id = read.booking_id.clone();
    let mut current = Some(read);
    for _ in 0..ATTEMPTS {
        let now = Utc::now();
        let c = match current.take() {
            Some(c) => c,
            None => store.consultation(&id).await?.ok_or(CloseError::NotFound)?,
        };
        let Some(to) = transition(c.status, action, by) else {
            let done = matches!(
                (action, c.status),
                (Action::Complete, ConsultationStatus::Completed)
                    | (Action::Cancel, ConsultationStatus::Cancelled)
                    | (Action::NoShow, ConsultationStatus::NoShow)
                    | (Action::End, ConsultationStatus::Completed | ConsultationStatus::Cancelled)
            );
            if done {
                return Ok(c);
            }
            return Err(CloseError::NotAllowed(c.status.as_str(), verb(action)));
        };
        if let Some(closed) = try_close(store, &c, to, by, share, now).await? {
            return Ok(closed);
        }
    }
    Err(CloseError::Busy)
}

/// One attempt: `None` when something read moved underneath.
async fn try_close(
    store: &Store,
    c: &Consultation,
    to: ConsultationStatus,
    by: Party,
    share: RevenueShare,
    now: DateTime<Utc>,
) -> Result<Option<Consultation>, CloseError> {
    let closing = booking::closing_for(c, to, by, share, now).ok_or(CloseError::TooEarly)?;
    let settles = to == ConsultationStatus::Completed;
    let (wallet, earnings, astrologer) = store.closing_state(c).await?;
    let reference = Reference::consultation(c.booking_id.as_str());
    let refund = (closing.refunded.total() > Money::ZERO)
        .then(|| {
            let movement = if settles {
                let note = format!("Unused minutes of consultation {}", c.booking_id);
                Movement::release(closing.refunded, reference.clone(), &note)
            } else {
                Movement::refund(
                    closing.refunded,
                    reference.clone(),
                    &format!("Refund of consultation {}", c.booking_id),
                )
            };
            wallet.post(vec![movement], now)
        })
        .transpose()?;
    let earned = (closing.astrologer_earnings > Money::ZERO)
        .then(|| earnings.post(vec![Movement::earning(closing.astrologer_earnings, c.booking_id.as_str())], now))
        .transpose()?;
    let schedule =
        astrologer.as_ref().map(|a| (booking::schedule_without(&a.booked, &c.booking_id, now), a.schedule_version));
    let written = store
        .close_consultation(
            c,
            to,
            &closing,
            refund.as_ref(),
            earned.as_ref(),
            schedule.as_ref().map(|(b, v)| (b.as_slice(), *v)),
            booking::promo_use_returned(c, &closing),
            party_name(by),
            now,
        )
        .await?;
    if !written {
        return Ok(None);
    }
    tracing::info!(booking_id = %c.booking_id, to = to.as_str(), by = party_name(by),
        charged = %closing.charged.total(), refunded = %closing.refunded.total(), "consultation closed");
    let mut closed = c.clone();
    closed.status = to;
    closed.closed_at = Some(now);
    closed.closing = Some(closing);
    Ok(Some(closed))
}
