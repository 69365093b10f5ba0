//! Test harness, by concern: the emulators and a fresh local stack per test (`stack`), the
//! HTTP client (`api`), the people and things a test starts from (`fixtures`), what the
//! table holds (`table`), the ledger and money checks (`ledger`, `money`), the event path
//! (`streams`), WebSocket clients (`sockets`), the functions' logs (`logs`) and the load runs' plumbing (`load`). Every
//! public name is re-exported here, so a test needs `use integration_tests::*` only.

mod api;
mod fixtures;
mod ledger;
pub mod load;
mod logs;
pub mod money;
mod sockets;
mod stack;
mod streams;
mod table;

pub use api::Api;
pub use fixtures::{
    approved_astrologer, astrologer, bookable_astrologer, completed_consultation, consultation_update, customer,
    random_phone, sign_in, sign_up, staff, started_minutes_ago, top_up, topped_up_customer,
};
pub use ledger::{assert_ledger_balances, assert_ledgers_in};
pub use logs::captured_logs;
pub use sockets::{
    Socket, expect_no_frame_within, management_api, next_json, next_of_type, next_text, open_socket, refused_status,
    send_frame, send_json,
};
pub use stack::{moto, stack, stack_on, stack_with};
pub use streams::{
    eventually, queue_depth, queue_url, sqs_consumer, sqs_event, stream_records, trim_horizon_iterator, write_outbox,
};
pub use table::{
    all_items, is_notification, items_under, items_with_sk, notifications_of, settled_inbox_count, table_state,
    written_items,
};
