//! The third parties we work with. Razorpay (payments) and Digio (video KYC), feature
//! `outbound`: each a client over `crate::outbound` with its pure helpers (signatures, payload
//! shapes). Agora (calls), feature `agora`: tokens we sign ourselves, no HTTP client. Here
//! rather than in a function so that every function using one shares it, and no function
//! imports another. A provider imports the domain and the plumbing, never the store or `app`.

#[cfg(feature = "agora")]
pub mod agora;
#[cfg(feature = "outbound")]
pub mod digio;
#[cfg(feature = "outbound")]
pub mod razorpay;
