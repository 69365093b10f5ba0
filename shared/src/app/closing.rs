//! Closing a consultation, the one way: complete (settle the minutes the meter measured),
//! cancel (refund by policy), no-show, decline or expiry (refund all) or a staff end
//! (whichever of the first two its state needs). Shared by the `book` function, the sweep and suspensions so money leaves a
//! consultation through one path: read (wallet, earnings, astrologer), let the domain
//! decide, write once (with the promo code's use given back on a full refund); a race
//! reads again.

use chrono::{DateTime, Utc};

use crate::domain::booking::session::{self, Due, DueEnd, EndReason};
use crate::domain::booking::{self, Action, Consultation, ConsultationStatus, Party, RevenueShare, transition};
use crate::domain::money::Money;
use crate::domain::wallet::{Movement, Reference, WalletError};
use crate::store::retry::{self, Attempt, Retry};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// The state machine does not allow it from where the consultation stands.
    #[error("a {0} consultation cannot be {1}")]
    NotAllowed(&'static str, &'static str),
    #[error("no such consultation")]
    NotFound,
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
        Action::Accept => "accepted",
        Action::Decline => "declined",
        Action::Expire => "expired",
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

/// Completes, cancels, closes as no-show, declines, expires or ends `read` (as just read) for
/// `by` now; the consultation as it ends. Closing one already in the state asked for returns
/// it (a retry is not an error). A race reads the consultation again.
pub async fn close(
    store: &Store,
    read: Consultation,
    action: Action,
    by: Party,
    share: RevenueShare,
) -> Result<Consultation, CloseError> {
    close_at(store, read, action, by, share, None).await
}

/// [`close`], for a session that ended by itself (`due`: why, and when its meter stopped).
pub async fn close_at(
    store: &Store,
    read: Consultation,
    action: Action,
    by: Party,
    share: RevenueShare,
    due: Option<DueEnd>,
) -> Result<Consultation, CloseError> {
    let id = &read.booking_id.clone();
    // The first attempt decides on what the caller read; the others read again.
    let mut first = Some(read);
    let busy = |_| CloseError::Busy;
    retry::on_conflict(Retry::DEFAULT, busy, || {
        let read = first.take();
        async move {
            let c = match read {
                Some(c) => c,
                None => store.consultation(id).await?.ok_or(CloseError::NotFound)?,
            };
            decide_and_close(store, c, action, by, share, due).await
        }
    })
    .await
}

/// Closes `c` if the state machine allows it; a consultation already where `action` leads
/// is the answer as it is.
async fn decide_and_close(
    store: &Store,
    c: Consultation,
    action: Action,
    by: Party,
    share: RevenueShare,
    due: Option<DueEnd>,
) -> Result<Attempt<Consultation>, CloseError> {
    let Some(to) = transition(c.status, action, by) else {
        let done = matches!(
            (action, c.status),
            (Action::Complete, ConsultationStatus::Completed)
                | (Action::Cancel, ConsultationStatus::Cancelled)
                | (Action::NoShow, ConsultationStatus::NoShow)
                | (Action::Decline | Action::Cancel, ConsultationStatus::Declined)
                | (Action::Expire, ConsultationStatus::Expired)
                | (Action::End, ConsultationStatus::Completed | ConsultationStatus::Cancelled)
        );
        if done {
            return Ok(Attempt::Done(c));
        }
        return Err(CloseError::NotAllowed(c.status.as_str(), verb(action)));
    };
    let now = Utc::now();
    // A session ending by itself is judged again on what was just read: a party that came
    // back, or minutes bought, since the sweep looked, may mean it is not over.
    let due = match due {
        None => None,
        Some(_) => match session::due(&c, now) {
            Due::End(end) => Some(end),
            _ => return Err(CloseError::NotAllowed(c.status.as_str(), "ended: it is no longer due")),
        },
    };
    try_close(store, &c, to, by, share, due, now).await
}

/// One attempt: a conflict when something read moved underneath.
async fn try_close(
    store: &Store,
    c: &Consultation,
    to: ConsultationStatus,
    by: Party,
    share: RevenueShare,
    due: Option<DueEnd>,
    now: DateTime<Utc>,
) -> Result<Attempt<Consultation>, CloseError> {
    let meter_stop = due.map_or(now, |d| d.at);
    let closing = booking::closing_for(c, to, by, share, now, meter_stop);
    // A session that ran ends with its reason (who, or what: the balance, a lapse).
    let end_reason = (to == ConsultationStatus::Completed).then(|| due.map_or(EndReason::of(by), |d| d.reason));
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
        .then(|| earnings.post(booking::earning_movements(&closing, c.booking_id.as_str()), now))
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
            booking::offer_outcome(c, &closing).as_ref(),
            end_reason.map_or(party_name(by), EndReason::as_str),
            end_reason,
            now,
        )
        .await?;
    if !written {
        return Ok(Attempt::Conflict);
    }
    tracing::info!(booking_id = %c.booking_id, to = to.as_str(), by = party_name(by),
        charged = %closing.charged.total(), refunded = %closing.refunded.total(), "consultation closed");
    let mut closed = c.clone();
    closed.status = to;
    closed.closed_at = Some(now);
    closed.promotional = closing.free_minutes_used > 0;
    closed.closing = Some(closing);
    closed.end_reason = end_reason;
    // The quality read before the closing did not know how long the session was.
    closed.quality = closed.quality.map(|q| q.as_of(&closed));
    Ok(Attempt::Done(closed))
}
