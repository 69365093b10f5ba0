//! The business: types that cannot hold invalid values and the rules as pure functions.
//! Nothing here imports the store, HTTP, AWS or the environment (checked by `crate::layers`
//! tests); a handler reads state through the store, asks a function here what to do, and
//! has the store write the answer.

pub mod astrologer;
pub mod availability;
pub mod booking;
pub mod chart;
pub mod events;
pub mod idempotency;
pub mod image;
pub mod invoice;
pub mod json;
pub mod kyc;
pub mod messages;
pub mod money;
pub mod notification;
pub mod offer;
pub mod phone;
pub mod profile;
pub mod promotion;
pub mod reversal;
pub mod review;
pub mod saved_replies;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod sms;
pub mod staff;
pub(crate) mod status;
pub mod time;
pub mod topup;
pub mod user;
pub mod wallet;
