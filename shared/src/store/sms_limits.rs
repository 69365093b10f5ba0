//! SMS send counters (see [`crate::domain::sms`]): one item per counter and window, counted by one
//! conditional UpdateItem that refuses the send that would pass the limit, gone by TTL.

use super::items;
use super::keys::{sms_counter_pk, sms_window_sk};
use super::{Store, StoreError, TTL_ATTRIBUTE};
use crate::domain::sms::SmsCounter;

/// Kept a window past its end: DynamoDB deletes expired items late, and the key's window
/// start already keeps an old count from applying to a new window.
const GRACE_SECONDS: i64 = 3600;

impl Store {
    /// Counts one SMS against `counter` in the window starting at `window_start`, unless it
    /// has had `limit` already. `Ok(false)`: the limit is reached; nothing was counted.
    pub async fn count_sms(
        &self,
        counter: &SmsCounter,
        window_start: i64,
        window_seconds: u32,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let expires = window_start + i64::from(window_seconds) + GRACE_SECONDS;
        self.update_if(
            items::key(sms_counter_pk(counter), sms_window_sk(window_start)),
            &format!("ADD sends :one SET entity = :entity, {TTL_ATTRIBUTE} = :expires"),
            "attribute_not_exists(sends) OR sends < :limit",
            vec![
                (":one", items::n(1)),
                (":limit", items::n(limit)),
                (":entity", items::s("sms_counter")),
                (":expires", items::n(expires)),
            ],
        )
        .await
    }
}
