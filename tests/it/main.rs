//! The integration tests, one module per area, in one test binary: each binary would link
//! infra and through it every function and SDK again, and start a moto of its own.
//!
//! Each test still gets a local stack of its own (its own table, queues and user pool) on
//! the binary's moto, and reads only its own logs (`captured_logs`), so the modules do not
//! see each other. Run one area with `cargo test -p integration-tests --test it -- book::`.

mod authorization;
mod book;
mod bounds;
mod call;
mod catalogue;
mod chat_images;
mod contract;
mod emulator;
mod events;
mod faults;
mod iam;
mod invariants;
mod kyc;
mod live_chat;
mod live_socket;
mod notifications;
mod observability;
mod offers;
mod operations;
mod outbox;
mod people;
mod pictures;
mod post_confirmation;
mod privacy;
mod review;
mod route_tables;
mod routes;
mod runtime_api;
mod secrets;
mod signup;
mod test_targets;
mod top_up;
