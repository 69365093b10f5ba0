//! The emulator itself: the five fixes `infra/moto_server.py` makes to moto hold, so the
//! rest of the suite tests our code against DynamoDB's transaction semantics, not moto's
//! gaps. Each test runs the raw SDK against a moto of its own.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ScalarAttributeType, StreamSpecification, StreamViewType,
    TransactWriteItem, Update,
};
use futures::FutureExt;
use infra::moto::MotoServer;

const TABLE: &str = "emulator";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s("A"))])
}

async fn moto_with_table() -> (MotoServer, aws_sdk_dynamodb::Client, aws_sdk_dynamodbstreams::Client) {
    let moto = tokio::task::spawn_blocking(MotoServer::start).await.unwrap().expect("moto starts");
    let sdk = infra::local_sdk_config(&moto.endpoint).await;
    let db = Client::new(&sdk);
    let attr = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build().unwrap()
    };
    let schema = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    db.create_table()
        .table_name(TABLE)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .key_schema(schema("pk", KeyType::Hash))
        .key_schema(schema("sk", KeyType::Range))
        .attribute_definitions(attr("g"))
        .attribute_definitions(attr("gs"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("G")
                .key_schema(schema("g", KeyType::Hash))
                .key_schema(schema("gs", KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (moto, db, aws_sdk_dynamodbstreams::Client::new(&sdk))
}

async fn put(db: &Client, pk: &str, balance: u32) {
    let mut item = key(pk);
    item.insert("balance".into(), AttributeValue::N(balance.to_string()));
    db.put_item().table_name(TABLE).set_item(Some(item)).send().await.unwrap();
}

async fn balance(db: &Client, pk: &str) -> Option<String> {
    let item = db.get_item().table_name(TABLE).set_key(Some(key(pk))).send().await.unwrap().item?;
    Some(item["balance"].as_n().unwrap().clone())
}

/// An Update adding 5 to `pk`'s balance.
fn add_five(pk: &str) -> TransactWriteItem {
    let update = Update::builder()
        .table_name(TABLE)
        .set_key(Some(key(pk)))
        .update_expression("ADD balance :five")
        .expression_attribute_values(":five", AttributeValue::N("5".into()))
        .build()
        .unwrap();
    TransactWriteItem::builder().update(update).build()
}

/// A condition on `pk` that fails: the item does not exist.
fn failing_check(pk: &str) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(TABLE)
        .set_key(Some(key(pk)))
        .condition_expression("attribute_exists(pk)")
        .build()
        .unwrap();
    TransactWriteItem::builder().condition_check(check).build()
}

async fn stream_records(streams: &aws_sdk_dynamodbstreams::Client, db: &Client) -> usize {
    let table = db.describe_table().table_name(TABLE).send().await.unwrap().table.unwrap();
    integration_tests::stream_records(streams, &table.latest_stream_arn.unwrap()).await.len()
}

/// Fix 3: the rollback copy deep-copies the items a transaction writes, so a cancelled one
/// undoes its update (made in place by moto), its put and its delete, and leaves no stream record.
#[tokio::test]
async fn cancelled_transaction_leaves_nothing_written() {
    let (_moto, db, streams) = moto_with_table().await;
    put(&db, "updated", 10).await;
    put(&db, "deleted", 1).await;
    let before = stream_records(&streams, &db).await;

    let mut new_item = key("created");
    new_item.insert("balance".into(), AttributeValue::N("7".into()));
    let delete = Delete::builder().table_name(TABLE).set_key(Some(key("deleted"))).build().unwrap();
    let cancelled = db
        .transact_write_items()
        .transact_items(add_five("updated"))
        .transact_items(
            TransactWriteItem::builder()
                .put(Put::builder().table_name(TABLE).set_item(Some(new_item)).build().unwrap())
                .build(),
        )
        .transact_items(TransactWriteItem::builder().delete(delete).build())
        .transact_items(failing_check("missing"))
        .send()
        .await;
    assert!(cancelled.is_err(), "the failing condition cancels the transaction");

    assert_eq!(balance(&db, "updated").await.as_deref(), Some("10"), "the update was rolled back");
    assert_eq!(balance(&db, "created").await, None, "the put was rolled back");
    assert_eq!(balance(&db, "deleted").await.as_deref(), Some("1"), "the delete was rolled back");
    assert_eq!(stream_records(&streams, &db).await, before, "no stream record of a cancelled write");

    // And one that commits still commits every write.
    db.transact_write_items().transact_items(add_five("updated")).send().await.unwrap();
    assert_eq!(balance(&db, "updated").await.as_deref(), Some("15"));
}

/// The stream's only shard, and an iterator on it from its start.
async fn open_iterator(streams: &aws_sdk_dynamodbstreams::Client, db: &Client) -> String {
    let table = db.describe_table().table_name(TABLE).send().await.unwrap().table.unwrap();
    integration_tests::trim_horizon_iterator(streams, &table.latest_stream_arn.unwrap()).await
}

/// What `iterator` reads: the keys of its records, and the iterator to read on with.
async fn read_on(streams: &aws_sdk_dynamodbstreams::Client, iterator: String) -> (Vec<String>, String) {
    let read = streams.get_records().shard_iterator(iterator).send().await.unwrap();
    let keys = read.records().iter().map(|r| r.dynamodb().unwrap().keys().unwrap()["pk"].as_s().unwrap().clone());
    (keys.collect(), read.next_shard_iterator.unwrap())
}

/// Fix 5: moto's rollback put a copy of the table in place with a stream shard of its own, so
/// an iterator opened before it (the stream poller's) never read another record. The table
/// keeps its shard: what is written after a cancelled transaction reaches the old iterator.
#[tokio::test]
async fn a_shard_iterator_reads_on_after_a_cancelled_transaction() {
    let (_moto, db, streams) = moto_with_table().await;
    let iterator = open_iterator(&streams, &db).await;
    put(&db, "before", 1).await;
    let (keys, iterator) = read_on(&streams, iterator).await;
    assert_eq!(keys, ["before"]);

    let cancelled =
        db.transact_write_items().transact_items(add_five("before")).transact_items(failing_check("missing"));
    assert!(cancelled.send().await.is_err(), "the failing condition cancels the transaction");
    put(&db, "after", 1).await;
    db.transact_write_items().transact_items(add_five("after")).send().await.unwrap();

    let (keys, iterator) = read_on(&streams, iterator).await;
    assert_eq!(
        keys,
        ["after", "after"],
        "the put and the committed update after the rollback, nothing of the cancelled one"
    );
    assert_eq!(read_on(&streams, iterator).await.0, Vec::<String>::new());
    assert_eq!(stream_records(&streams, &db).await, 3, "a fresh iterator reads the same");
}

/// Fix 2: a cancelled transaction restores its copy of the table; without one lock around
/// DynamoDB, writes other requests made meanwhile vanish with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_transaction_keeps_others_writes() {
    let (_moto, db, _) = moto_with_table().await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..40 {
                put(&db, &format!("w{writer}-{n}"), 1).await;
            }
        }));
    }
    for canceller in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..20 {
                // 24 updates, then a failing condition: a long transaction, then a rollback.
                let mut tx = db.transact_write_items();
                for i in 0..24 {
                    tx = tx.transact_items(add_five(&format!("c{canceller}-{n}-{i}")));
                }
                assert!(tx.transact_items(failing_check("missing")).send().await.is_err());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut lost = Vec::new();
    for writer in 0..8 {
        for n in 0..40 {
            if balance(&db, &format!("w{writer}-{n}")).await.is_none() {
                lost.push(format!("w{writer}-{n}"));
            }
        }
    }
    assert!(lost.is_empty(), "{} of 320 acknowledged puts lost: {lost:?}", lost.len());
}

/// Fix 1: moto does not keep every object it ever made (a whole table per transaction); its
/// dashboard, which lists what it keeps, stays empty however many transactions run.
#[tokio::test]
async fn memory_stays_flat_under_transactions() {
    let (moto, db, _) = moto_with_table().await;
    for n in 0..20 {
        put(&db, &format!("p{n}"), 1).await;
        db.transact_write_items().transact_items(add_five(&format!("p{n}"))).send().await.unwrap();
    }
    let kept: serde_json::Value =
        reqwest::get(format!("{}/moto-api/data.json", moto.endpoint)).await.unwrap().json().await.unwrap();
    let tables = kept["dynamodb"]["Table"].as_array().map_or(0, Vec::len);
    let items = kept["dynamodb"]["Item"].as_array().map_or(0, Vec::len);
    assert_eq!((tables, items), (0, 0), "moto kept {tables} table copies and {items} items");
}

/// Fix 4: a Query reads its partition (or walks the items once, on an index) instead of
/// sorting the table first; it still answers every item of the partition, in key order, in
/// either direction and across pages.
#[tokio::test]
async fn queries_answer_in_key_order() {
    let (_moto, db, _) = moto_with_table().await;
    for (pk, sk, gs) in [("q", "a", "9"), ("p", "c", "2"), ("o", "z", "1"), ("p", "a", "3"), ("p", "b", "0")] {
        let item = HashMap::from([
            ("pk".to_owned(), s(pk)),
            ("sk".to_owned(), s(sk)),
            ("g".to_owned(), s("G")),
            ("gs".to_owned(), s(gs)),
        ]);
        db.put_item().table_name(TABLE).set_item(Some(item)).send().await.unwrap();
    }
    let query = |index: Option<&str>, forward: bool| {
        let (attr, value, sort) = if index.is_some() { ("g", "G", "gs") } else { ("pk", "p", "sk") };
        db.query()
            .table_name(TABLE)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#h = :h")
            .expression_attribute_names("#h", attr)
            .expression_attribute_values(":h", s(value))
            .scan_index_forward(forward)
            .limit(2)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .map(move |items| items.unwrap().iter().map(|i| i[sort].as_s().unwrap().clone()).collect::<Vec<_>>())
    };
    assert_eq!(query(None, true).await, ["a", "b", "c"]);
    assert_eq!(query(None, false).await, ["c", "b", "a"]);
    assert_eq!(query(Some("G"), true).await, ["0", "1", "2", "3", "9"]);
    assert_eq!(query(Some("G"), false).await, ["9", "3", "2", "1", "0"]);
}
