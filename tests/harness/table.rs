//! What the stack's table holds: every item, what the requests under test wrote, and the
//! notifications the consumers wrote.

use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;

/// Every item in the stack's table, page by page: a Scan answers at most 1 MB, and after a
/// load run the table holds more (one page made the load run's checks miss ledger entries).
pub async fn all_items(stack: &LocalStack) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let pages = client.scan().table_name(stack.table_name()).into_paginator().items().send();
    pages.collect::<Result<Vec<_>, _>>().await.expect("the table scans")
}

/// The items the requests under test can have written: everything but the in-app
/// notifications, which the consumers write later, whenever the events of earlier requests
/// (a sign-up's welcome) arrive, and the SMS send counters every code request counts on.
async fn request_items(stack: &LocalStack) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let mut items = all_items(stack).await;
    items.retain(|i| {
        !i.get("PK")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with("INBOX#") || pk.starts_with("SMSLIMIT#"))
    });
    items
}

/// How many items the requests under test have written ([`request_items`]).
pub async fn written_items(stack: &LocalStack) -> usize {
    request_items(stack).await.len()
}

/// Every item the requests under test can have written, each attribute by attribute and in
/// key order: equal before and after only when nothing was put, updated or deleted.
pub async fn table_state(stack: &LocalStack) -> Vec<String> {
    let mut state: Vec<String> = request_items(stack)
        .await
        .into_iter()
        .map(|item| format!("{:?}", item.into_iter().collect::<std::collections::BTreeMap<_, _>>()))
        .collect();
    state.sort();
    state
}

pub fn items_with_sk(items: &[std::collections::HashMap<String, AttributeValue>], sk_prefix: &str) -> usize {
    items.iter().filter(|i| i.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|s| s.starts_with(sk_prefix))).count()
}

/// Whether an item is a notification (its inbox partition also holds the unread counter).
pub fn is_notification(item: &std::collections::HashMap<String, AttributeValue>) -> bool {
    item.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk.starts_with("NOTIF#"))
}

/// `user`'s notifications (not the unread counter beside them).
pub async fn notifications_of(
    stack: &LocalStack,
    user: &impl std::fmt::Display,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let pk = format!("INBOX#{user}");
    all_items(stack)
        .await
        .into_iter()
        .filter(|i| i["PK"].as_s().is_ok_and(|s| *s == pk) && is_notification(i))
        .collect()
}

/// How many notifications of `event_type` `user` has, once the first has arrived (up to 15 s)
/// and long enough after it (3 s: the stream, the relay, SNS and the queue, several times
/// over) for a second one to have shown up.
pub async fn settled_inbox_count(stack: &LocalStack, user: &str, event_type: &str) -> usize {
    let count = || async {
        all_items(stack)
            .await
            .iter()
            .filter(|i| i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| *pk == format!("INBOX#{user}")))
            .filter(|i| is_notification(i))
            .filter(|i| i.get("event_type").and_then(|v| v.as_s().ok()).is_some_and(|t| t == event_type))
            .count()
    };
    for _ in 0..75 {
        if count().await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    count().await
}

/// Every item whose partition key starts with `pk_prefix`.
pub async fn items_under(
    stack: &LocalStack,
    pk_prefix: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    all_items(stack)
        .await
        .into_iter()
        .filter(|i| i.get("PK").and_then(|v| v.as_s().ok()).is_some_and(|pk| pk.starts_with(pk_prefix)))
        .collect()
}
