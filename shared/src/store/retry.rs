//! Retry on conflict: the one loop every read-decide-write use case runs when its write
//! lost a race.
//!
//! # What counts as a conflict
//! A write cancelled on a condition that a fresh read can resolve: a version, a sequence or
//! a schedule moved between the read and the write (`version = :read` failed), or DynamoDB
//! cancelled the transaction because another one held the same items
//! (`TransactionConflict`). Reading again and deciding again either commits, or meets what
//! the winner wrote (already done, or now refused) and answers that.
//!
//! Not a conflict: a refusal that no re-read changes, decided by the domain or by a
//! condition that carries an invariant (insufficient balance, a second review, a
//! consultation not completed, an event already recorded). Those are the attempt's answer,
//! `Ok(Attempt::Done(..))` or `Err(..)`, never [`Attempt::Conflict`].
//!
//! # Use
//! ```ignore
//! retry::on_conflict(Retry::DEFAULT, |_| CloseError::Busy, || async {
//!     let read = store.read().await?;
//!     let plan = domain::plan(&read)?;
//!     Ok(match store.write(&plan).await? {
//!         Written::Yes => Attempt::Done(plan),
//!         Written::Moved => Attempt::Conflict,
//!     })
//! })
//! .await
//! ```
//! Each attempt reads again; between attempts a random pause, longer each time ([`pause`]).
//! When every attempt met a conflict, the caller's `exhausted` gives the error its users see
//! (a 503 `busy`, a queue message handed back).

use std::time::Duration;

/// How often to try. `attempts` includes the first; at least one is always made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: usize,
}

impl Retry {
    /// Enough for the races a request meets (two or three writers of one item at once).
    pub const DEFAULT: Retry = Retry { attempts: 5 };

    pub const fn attempts(attempts: usize) -> Self {
        Retry { attempts }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T> {
    /// Written, or found done or refused: the answer.
    Done(T),
    /// What was read moved underneath the write: read and decide again.
    Conflict,
}

/// Every attempt met a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("still conflicting after {attempts} attempts")]
pub struct Exhausted {
    pub attempts: usize,
}

/// Runs `attempt` until it is done or errs, at most `policy.attempts` times, pausing
/// ([`pause`]) after each conflict; `exhausted` makes the error when all met a conflict.
///
/// `attempt` is a closure returning a future, not an async closure: the futures of async
/// closures that borrow their captures are not provably `Send` (the Lambda runtime needs it).
pub async fn on_conflict<T, E, Fut>(
    policy: Retry,
    exhausted: impl FnOnce(Exhausted) -> E,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<Attempt<T>, E>>,
{
    let attempts = policy.attempts.max(1);
    for n in 0..attempts {
        if let Attempt::Done(done) = attempt().await? {
            return Ok(done);
        }
        // No pause after the last: nobody reads again.
        if n + 1 < attempts {
            pause(n).await;
        }
    }
    Err(exhausted(Exhausted { attempts }))
}

/// The pause after attempt `n` (0-based) met a conflict: random, so racing writers spread
/// out instead of colliding again, and longer with each attempt: 10 to 40 ms times `n + 1`.
pub async fn pause(n: usize) {
    tokio::time::sleep(pause_length(n, rand::random_range(10..=40))).await;
}

fn pause_length(n: usize, jitter_ms: u64) -> Duration {
    Duration::from_millis(jitter_ms * (n as u64 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[derive(Debug, PartialEq)]
    enum Failed {
        Busy(usize),
        Refused,
    }

    fn busy(e: Exhausted) -> Failed {
        Failed::Busy(e.attempts)
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_attempts_with_the_callers_error() {
        let mut calls = 0;
        let result: Result<(), _> = on_conflict(Retry::attempts(4), busy, || {
            calls += 1;
            async { Ok(Attempt::Conflict) }
        })
        .await;
        assert_eq!((result, calls), (Err(Failed::Busy(4)), 4));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_the_first_done() {
        let mut calls = 0;
        let result = on_conflict(Retry::DEFAULT, busy, || {
            calls += 1;
            let n = calls;
            async move { Ok(if n == 2 { Attempt::Done(n) } else { Attempt::Conflict }) }
        })
        .await;
        assert_eq!((result, calls), (Ok(2), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_passes_through_without_another_attempt() {
        let mut calls = 0;
        let result: Result<(), _> = on_conflict(Retry::DEFAULT, busy, || {
            calls += 1;
            async { Err(Failed::Refused) }
        })
        .await;
        assert_eq!((result, calls), (Err(Failed::Refused), 1));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_attempts_still_makes_one() {
        let result = on_conflict(Retry::attempts(0), busy, || async { Ok::<_, Failed>(Attempt::Done(7)) }).await;
        assert_eq!(result, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_between_attempts_grow_and_none_follows_the_last() {
        let start = Instant::now();
        let mut at = Vec::new();
        let _: Result<(), _> = on_conflict(Retry::DEFAULT, busy, || {
            at.push(start.elapsed());
            async { Ok(Attempt::Conflict) }
        })
        .await;
        let given_up = start.elapsed();
        assert_eq!(at.len(), 5);
        for (n, pair) in at.windows(2).enumerate() {
            let waited = pair[1] - pair[0];
            let k = n as u32 + 1;
            assert!(
                waited >= Duration::from_millis(10) * k && waited <= Duration::from_millis(40) * k,
                "pause {n}: {waited:?}"
            );
        }
        assert_eq!(given_up, at[4], "no pause after the last attempt");
    }

    #[test]
    fn pause_length_is_the_jitter_times_the_attempt() {
        assert_eq!(pause_length(0, 10), Duration::from_millis(10));
        assert_eq!(pause_length(0, 40), Duration::from_millis(40));
        assert_eq!(pause_length(4, 40), Duration::from_millis(200));
    }
}
