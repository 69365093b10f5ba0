//! The AstroKiran domain crate.
//!
//! Types that cannot hold invalid values ([`Phone`], [`Money`], [`UserType`]), the business
//! rules as plain functions, and the plumbing every Lambda shares, written once:
//! configuration ([`config`]), the DynamoDB store ([`store`]), the event envelope and SQS
//! publisher ([`events`]), and HTTP ([`http`]: caller identity, JSON bodies, and the single
//! error-to-response mapping).
//!
//! `outbound` is a cargo feature (see `Cargo.toml`): only the functions that call third
//! parties link the outbound HTTPS client and its trust roots.

#[cfg(feature = "cognito")]
pub mod account;
pub mod app;
pub mod astrologer;
pub mod availability;
pub mod booking;
pub mod closing;
pub mod config;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod invoice;
pub mod kyc;
pub mod logging;
pub mod money;
#[cfg(feature = "openapi")]
pub mod openapi;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod phone;
pub mod promotion;
pub mod reversal;
pub mod review;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod signature;
pub mod sms;
pub mod staff;
mod status;
pub mod store;
pub mod time;
pub mod tls;
pub mod topup;
pub mod user;
pub mod wallet;

// issue 10: notifications
pub mod messages;
pub mod notification;

pub use error::ApiError;
pub use money::Money;
pub use phone::Phone;
pub use user::{Email, KycStatus, PersonName, ProfileStatus, UserId, UserType};
