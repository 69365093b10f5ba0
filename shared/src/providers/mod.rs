//! The third parties we call, each a client over [`crate::outbound`] with its pure helpers
//! (signatures, payload shapes): Razorpay (payments) and Digio (video KYC). Here rather than
//! in a function so that every function using one shares it, and no function imports
//! another. A provider imports the domain and the plumbing, never the store or `app`.

pub mod digio;
pub mod razorpay;
