//! One `TransactWriteItems`, built item by item. Every item carries a label, so a cancelled
//! transaction is read by name (`cancelled.failed("wallet")`), never by position.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::items::Item;
use super::{Store, StoreError};
use crate::domain::events::{Envelope, Event};

/// A transaction being built; [`Store::commit`] writes it all or nothing.
#[derive(Debug)]
pub struct Tx {
    table: String,
    writes: Vec<TransactWriteItem>,
    labels: Vec<&'static str>,
}

/// Why DynamoDB cancelled a transaction, by label: the labels whose condition failed and
/// whether another transaction was touching the same items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub condition_failed: Vec<&'static str>,
    pub conflict: bool,
}

impl Cancelled {
    /// The condition of an item with this label failed.
    pub fn failed(&self, label: &str) -> bool {
        self.condition_failed.contains(&label)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("transaction cancelled: {0:?}")]
    Cancelled(Cancelled),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            // A cancellation nobody handled: an invariant held, or a race worth retrying.
            TxError::Cancelled(c) if c.conflict && c.condition_failed.is_empty() => {
                StoreError::Unavailable("transaction conflict".into())
            }
            TxError::Cancelled(c) => StoreError::ConditionFailed(c.condition_failed.join(",")),
            TxError::Store(s) => s,
        }
    }
}

/// `#name` placeholders of an expression, each standing for the attribute `name` (so a
/// reserved word like `status` can be written `#status`).
pub(crate) fn placeholder_names(expressions: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for expr in expressions {
        let mut rest = *expr;
        while let Some(at) = rest.find('#') {
            let name: String = rest[at + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + 1 + name.len()..];
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

impl Tx {
    fn push(&mut self, label: &'static str, write: TransactWriteItem) -> &mut Self {
        self.writes.push(write);
        self.labels.push(label);
        self
    }

    /// Creates `item`; fails (as `label`) if an item with its key exists.
    pub(crate) fn put_new(&mut self, label: &'static str, item: Item) -> &mut Self {
        let put = Put::builder()
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .table_name(&self.table)
            .build()
            .expect("item and table are set");
        self.push(label, TransactWriteItem::builder().put(put).build())
    }

    /// Replaces the item at `item`'s key with `item` when `condition` holds (placeholders as
    /// in [`Tx::update`]).
    pub(crate) fn put_if(
        &mut self,
        label: &'static str,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> &mut Self {
        let mut b = Put::builder().set_item(Some(item)).condition_expression(condition).table_name(&self.table);
        for name in placeholder_names(&[condition]) {
            b = b.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        self.push(label, TransactWriteItem::builder().put(b.build().expect("item and table are set")).build())
    }

    /// Creates `item`, or replaces one whose TTL has passed but which DynamoDB has not yet
    /// deleted (that can take days); fails (as `label`) if a live item has its key.
    pub(crate) fn put_new_or_expired(&mut self, label: &'static str, item: Item, now: DateTime<Utc>) -> &mut Self {
        let put = Put::builder()
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":now", super::items::n(now.timestamp().max(0)))
            .table_name(&self.table)
            .build()
            .expect("item and table are set");
        self.push(label, TransactWriteItem::builder().put(put).build())
    }

    /// Updates the item at `key` when `condition` holds. `#name` in either expression
    /// stands for the attribute `name`; `values` are the `:value` placeholders.
    pub(crate) fn update(
        &mut self,
        label: &'static str,
        key: Item,
        expression: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> &mut Self {
        let mut b = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression(condition);
        for name in placeholder_names(&[expression, condition]) {
            b = b.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        self.push(label, TransactWriteItem::builder().update(b.build().expect("key and expression are set")).build())
    }

    /// The event that reports this transaction's change (label `outbox`): written with it
    /// or not at all, and at most once per event id.
    pub fn outbox<P: Event>(&mut self, envelope: &Envelope<P>) -> &mut Self {
        self.put_new("outbox", super::outbox::outbox_item(envelope))
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The labels, in order (for tests of what a transaction holds).
    pub fn labels(&self) -> &[&'static str] {
        &self.labels
    }
}

impl Tx {
    /// Deletes the item at `key` when `condition` holds (`None`: whether or not it exists).
    pub(crate) fn delete(
        &mut self,
        label: &'static str,
        key: Item,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> &mut Self {
        let mut b = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(condition.map(str::to_owned));
        for name in placeholder_names(&[condition.unwrap_or("")]) {
            b = b.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        let delete = b.build().expect("key and table are set");
        self.push(label, TransactWriteItem::builder().delete(delete).build())
    }

    /// Holds the transaction to `condition` on the item at `key` without writing it.
    pub(crate) fn check(
        &mut self,
        label: &'static str,
        key: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> &mut Self {
        let mut b =
            ConditionCheck::builder().table_name(&self.table).set_key(Some(key)).condition_expression(condition);
        for name in placeholder_names(&[condition]) {
            b = b.expression_attribute_names(format!("#{name}"), name);
        }
        for (k, v) in values {
            b = b.expression_attribute_values(k, v);
        }
        let check = b.build().expect("key and condition are set");
        self.push(label, TransactWriteItem::builder().condition_check(check).build())
    }
}

fn cancelled<R>(err: &SdkError<TransactWriteItemsError, R>, labels: &[&'static str]) -> Option<Cancelled> {
    let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() else {
        return None;
    };
    let mut out = Cancelled { condition_failed: Vec::new(), conflict: false };
    for (i, reason) in e.cancellation_reasons().iter().enumerate() {
        match reason.code() {
            Some("ConditionalCheckFailed") => out.condition_failed.extend(labels.get(i)),
            Some("TransactionConflict") => out.conflict = true,
            _ => {}
        }
    }
    Some(out)
}

impl Store {
    /// A new, empty transaction on this table.
    pub fn tx(&self) -> Tx {
        Tx { table: self.table.clone(), writes: Vec::new(), labels: Vec::new() }
    }

    /// Writes `tx` all or nothing (one `TransactWriteItems`).
    pub async fn commit(&self, tx: Tx) -> Result<(), TxError> {
        if tx.is_empty() {
            return Ok(());
        }
        for write in &tx.writes {
            let keys = [
                write.put().map(|p| p.item()),
                write.update().map(|u| u.key()),
                write.condition_check().map(|c| c.key()),
                write.delete().map(|d| d.key()),
            ];
            keys.into_iter().flatten().try_for_each(super::check_key_sizes)?;
        }
        match self.client.transact_write_items().set_transact_items(Some(tx.writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) => match cancelled(&err, &tx.labels) {
                Some(c) => Err(TxError::Cancelled(c)),
                None => Err(TxError::Store(StoreError::from_sdk(err))),
            },
        }
    }
}

/// `Ok(true)`: committed; `Ok(false)`: the condition on `label` did not hold (nothing written).
pub(crate) fn committed(result: Result<(), TxError>, label: &str) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(TxError::Cancelled(c)) if c.failed(label) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_their_attributes() {
        assert_eq!(
            placeholder_names(&["SET #status = :s, #name = :n", "#status IN (:a, :b) AND version = :v"]),
            ["status", "name"]
        );
        assert!(placeholder_names(&["SET a = :a", "attribute_not_exists(PK)"]).is_empty());
    }
}
