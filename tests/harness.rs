//! Test harness: one moto server per test binary (started here, on a free loopback port),
//! a fresh local stack per test (its own table, queues and user pool), and small HTTP helpers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::types::AttributeValue;
use infra::moto::MotoServer;
use infra::{LocalStack, Options};
use rand::Rng;
use serde_json::{Value, json};

#[path = "common/load.rs"]
pub mod load;
#[path = "common/money.rs"]
pub mod money;

/// The moto endpoint shared by every test in this binary.
pub fn moto() -> &'static str {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    &MOTO.get_or_init(|| MotoServer::start().expect("moto_server starts (run scripts/setup.sh)")).endpoint
}

/// A local stack with resources of its own, on the shared moto.
pub async fn stack() -> LocalStack {
    stack_with(|_| {}).await
}

pub async fn stack_with(adjust: impl FnOnce(&mut Options)) -> LocalStack {
    let endpoint = tokio::task::spawn_blocking(moto).await.unwrap();
    stack_on(endpoint, adjust).await
}

/// A local stack on the given moto (a test that needs a moto of its own).
pub async fn stack_on(moto_endpoint: &str, adjust: impl FnOnce(&mut Options)) -> LocalStack {
    static N: AtomicUsize = AtomicUsize::new(0);
    capture_logs();
    let mut opts = Options::new(moto_endpoint, format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    adjust(&mut opts);
    LocalStack::start(opts).await.expect("local stack starts")
}

/// A phone number no other test uses.
pub fn random_phone() -> String {
    format!("+919{:09}", rand::rng().random_range(0..1_000_000_000u64))
}

pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(stack: &LocalStack) -> Self {
        Self { base: stack.api_url.clone(), http: reqwest::Client::new() }
    }

    async fn finish(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    /// Any request, with a bearer token and extra headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        Self::finish(req.send().await.unwrap()).await
    }

    /// POST as a signed-in user, with extra headers.
    pub async fn post_as(&self, path: &str, token: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(token), headers, Some(&body.to_string())).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::finish(req.send().await.unwrap()).await
    }
}

/// Signs up and confirms with the code from the local SMS outbox.
pub async fn sign_up(stack: &LocalStack, phone: &str, role: &str) -> Value {
    let api = Api::new(stack);
    let (status, body) = api
        .post("/auth/signup", json!({ "phone": phone, "first_name": "Asha", "last_name": "Rao", "user_type": role }))
        .await;
    assert_eq!(status, 201, "{body}");
    let code = stack.outbox.latest_code(phone).expect("an SMS code was sent");
    let (status, confirm) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": code })).await;
    assert_eq!(status, 200, "{confirm}");
    body
}

/// Signs in by SMS code and returns the tokens.
pub async fn sign_in(stack: &LocalStack, phone: &str) -> Value {
    let api = Api::new(stack);
    let (status, challenge) = api.post("/auth/otp", json!({ "phone": phone })).await;
    assert_eq!(status, 200, "{challenge}");
    let code = stack.outbox.latest_code(phone).expect("a sign-in code was sent");
    let (status, tokens) =
        api.post("/auth/otp/verify", json!({ "phone": phone, "session": challenge["session"], "code": code })).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// Every item in the stack's table, page by page: a Scan answers at most 1 MB, and after a
/// load run the table holds more (one page made the load run's checks miss ledger entries).
pub async fn all_items(stack: &LocalStack) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let pages = client.scan().table_name(stack.table_name()).into_paginator().items().send();
    pages.collect::<Result<Vec<_>, _>>().await.expect("the table scans")
}

/// Every record on the stream `arn` from its start (its first shard; moto makes one).
pub async fn stream_records(
    streams: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
) -> Vec<aws_sdk_dynamodbstreams::types::Record> {
    let iterator = trim_horizon_iterator(streams, arn).await;
    let records = streams.get_records().shard_iterator(iterator).send().await.unwrap();
    records.records.unwrap_or_default()
}

/// An iterator from the start of the stream `arn`'s first shard (moto makes one).
pub async fn trim_horizon_iterator(streams: &aws_sdk_dynamodbstreams::Client, arn: &str) -> String {
    let described = streams.describe_stream().stream_arn(arn).send().await.unwrap();
    let shard = described.stream_description().unwrap().shards()[0].shard_id().unwrap().to_owned();
    let opened = streams
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    opened.shard_iterator.unwrap()
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

pub fn items_with_sk(items: &[std::collections::HashMap<String, AttributeValue>], sk_prefix: &str) -> usize {
    items.iter().filter(|i| i.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|s| s.starts_with(sk_prefix))).count()
}

/// Everything the functions logged in this test binary, for asserting that no personal
/// data reaches the logs. The local Cognito's "SMS" lines are the stand-in phone, not a
/// function log, and are left out.
pub fn captured_logs() -> String {
    let lines = LOGS.get().map(|l| l.lock().unwrap().clone()).unwrap_or_default();
    String::from_utf8_lossy(&lines).lines().filter(|l| !l.contains("SMS: ")).collect::<Vec<_>>().join("\n")
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let buffer = LOGS.get_or_init(Arc::default).clone();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info,aws_config=warn,aws_smithy_runtime=warn")
        .with_writer(move || LogWriter(buffer.clone()))
        .try_init();
}

/// A signed-up, signed-in customer: their access token and user id.
pub async fn customer(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "user").await;
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

/// A signed-up, signed-in astrologer: their access token and user id.
pub async fn astrologer(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "astrologer").await;
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

/// An astrologer whose KYC Digio approved (through the local Digio's signed webhooks).
pub async fn approved_astrologer(stack: &LocalStack) -> (String, String) {
    let (token, id) = astrologer(stack).await;
    let (status, started) =
        Api::new(stack).send(reqwest::Method::POST, "/astrologers/me/kyc", Some(&token), &[], None).await;
    assert_eq!(status, 201, "{started}");
    let (status, _) = stack.stubs.digio.approve(started["request_id"].as_str().unwrap()).await.unwrap();
    assert_eq!(status, 200);
    (token, id)
}

/// A customer with `amount` of real cash, topped up through the Razorpay stand-in and the
/// app's confirm call (no promotion rule is seeded in tests unless a test adds one).
pub async fn topped_up_customer(stack: &LocalStack, amount: &str) -> (String, String) {
    let (token, id) = customer(stack).await;
    let api = Api::new(stack);
    let key = format!("topup-{}", rand::random::<u64>());
    let (status, created) =
        api.post_as("/wallet/top-ups", &token, &[("idempotency-key", &key)], json!({ "amount": amount })).await;
    assert_eq!(status, 201, "{created}");
    let paid = stack.stubs.razorpay.pay(created["checkout"]["order_id"].as_str().unwrap(), false).await.unwrap();
    let body = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    let path = format!("/wallet/top-ups/{}/confirm", created["top_up_id"].as_str().unwrap());
    let (status, confirmed) = api.post_as(&path, &token, &[], body).await;
    assert_eq!(status, 200, "{confirmed}");
    (token, id)
}

/// An approved astrologer with a profile (`rate` per minute, chat and video), available
/// around the clock every day, and online.
pub async fn bookable_astrologer(stack: &LocalStack, rate: &str) -> (String, String) {
    let (token, id) = approved_astrologer(stack).await;
    let api = Api::new(stack);
    let put = async |path: &str, body: Value| {
        let (status, resp) = api.send(reqwest::Method::PUT, path, Some(&token), &[], Some(&body.to_string())).await;
        assert_eq!(status, 200, "{path}: {resp}");
    };
    put(
        "/astrologers/me/profile",
        json!({
            "display_name": "Acharya Asha", "experience_years": 10, "languages": ["hi"], "specialisations": ["vedic"],
            "rate_per_minute": rate, "modes": ["chat", "video"],
        }),
    )
    .await;
    let days: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "00:00", "end": "24:00" }))
        .collect();
    put("/astrologers/me/availability", json!({ "time_zone": "UTC", "windows": days })).await;
    put("/astrologers/me/presence", json!({ "status": "online" })).await;
    (token, id)
}

fn num(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> rust_decimal::Decimal {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a Number in {item:?}"))
}

/// The ledger invariant, checked over the whole table: for every wallet, its ledger entries
/// (in key order) sum to its real and bonus balances, each entry's balances-after are the
/// running sums, and nothing is negative; then the same through `shared::wallet::check_ledger`
/// (which also checks posting order and the lifetime totals). Returns the number of ledger entries checked.
pub async fn assert_ledger_balances(stack: &LocalStack) -> usize {
    assert_ledgers_in(stack, &all_items(stack).await).await
}

/// [`assert_ledger_balances`] over `items`, a scan of the whole table already made.
pub async fn assert_ledgers_in(
    stack: &LocalStack,
    items: &[std::collections::HashMap<String, AttributeValue>],
) -> usize {
    use rust_decimal::Decimal;
    let s = |i: &std::collections::HashMap<String, AttributeValue>, k: &str| {
        i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
    };
    let mut checked = 0;
    for wallet in items.iter().filter(|i| s(i, "SK") == "WALLET") {
        // A customer wallet (`USER#`, ledger `LEDGER#`) or an astrologer's earnings
        // (`EARNINGS#`, ledger `EARNLEDGER#`).
        let pk = s(wallet, "PK");
        let (user, ledger, account) = match pk.split_once('#') {
            Some(("USER", u)) => {
                (u.to_owned(), format!("LEDGER#{u}"), shared::store::Account::Wallet(shared::UserId::parse(u).unwrap()))
            }
            Some(("EARNINGS", u)) => (
                u.to_owned(),
                format!("EARNLEDGER#{u}"),
                shared::store::Account::Earnings(shared::UserId::parse(u).unwrap()),
            ),
            _ => panic!("a wallet under {pk}"),
        };
        let mut entries: Vec<_> = items.iter().filter(|i| s(i, "PK") == ledger).collect();
        entries.sort_by_key(|i| s(i, "SK"));
        let (mut real, mut bonus) = (Decimal::ZERO, Decimal::ZERO);
        for e in &entries {
            real += num(e, "real_delta");
            bonus += num(e, "bonus_delta");
            assert_eq!(num(e, "real_balance_after"), real, "real balance after {}", s(e, "SK"));
            assert_eq!(num(e, "bonus_balance_after"), bonus, "bonus balance after {}", s(e, "SK"));
            assert!(real >= Decimal::ZERO && bonus >= Decimal::ZERO, "negative balance at {}", s(e, "SK"));
        }
        assert_eq!(num(wallet, "real_cash"), real, "real cash of {user} is its ledger's sum");
        assert_eq!(num(wallet, "bonus_cash"), bonus, "bonus cash of {user} is its ledger's sum");
        for field in ["real_cash", "bonus_cash", "total_credited", "total_debited"] {
            assert!(num(wallet, field) >= Decimal::ZERO, "{field} of {user} is negative");
        }
        // The operators' check, through the store, agrees.
        let store = shared::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name());
        let (w, ledger) = store.wallet_with_ledger(&account).await.unwrap().unwrap();
        assert_eq!(ledger.len(), entries.len());
        shared::wallet::check_ledger(&w, &ledger).unwrap_or_else(|e| panic!("ledger of {pk}: {e}"));
        checked += entries.len();
    }
    checked
}

/// Operations staff: a customer signed up as anyone can, then added to the Cognito group
/// `admin` as an operator would (`infra::make_staff`), then signed in again so the token
/// carries the group. Their access token and user id.
pub async fn staff(stack: &LocalStack) -> (String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "user").await;
    let parsed = shared::Phone::parse(&phone).unwrap();
    infra::make_staff(&stack.sdk, &stack.provisioned.user_pool_id, &parsed).await.expect("added to the admin group");
    let tokens = sign_in(stack, &phone).await;
    (tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

// ---- issue 10: notifications

/// What a producer's transaction adds: the outbox item, written straight to the table.
pub async fn write_outbox<P: shared::events::Event>(stack: &LocalStack, envelope: &shared::events::Envelope<P>) {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .put_item()
        .table_name(stack.table_name())
        .set_item(Some(shared::store::outbox::outbox_item(envelope)))
        .send()
        .await
        .unwrap();
}

/// A consultation `customer` booked with `astrologer` (chat, 10 minutes), started and
/// completed by the astrologer after 3 charged minutes: what a customer may review.
/// Returns the booking id.
pub async fn completed_consultation(stack: &LocalStack, customer: &str, astrologer: (&str, &str)) -> String {
    let api = Api::new(stack);
    let (token, astrologer_id) = astrologer;
    let key = format!("book-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10 });
    let (status, booked) = api.post_as("/consultations", customer, &[("idempotency-key", &key)], body).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap().to_owned();
    let (status, started) = api.post_as(&format!("/consultations/{id}/start"), token, &[], json!({})).await;
    assert_eq!(status, 200, "{started}");
    started_minutes_ago(stack, &id, 3).await;
    let (status, done) = api.post_as(&format!("/consultations/{id}/complete"), token, &[], json!({})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("completed")), "{done}");
    id
}

/// An UpdateItem on a consultation's item, for tests that move its times.
pub fn consultation_update(
    stack: &LocalStack,
    id: &str,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("CONSULTATION#{id}")))
        .key("SK", AttributeValue::S("CONSULTATION".into()))
}

/// Moves a consultation's start back by `minutes` (the tests cannot wait for real minutes).
pub async fn started_minutes_ago(stack: &LocalStack, id: &str, minutes: i64) {
    let at =
        (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    consultation_update(stack, id)
        .update_expression("SET started_at = :at")
        .expression_attribute_values(":at", AttributeValue::S(at))
        .send()
        .await
        .unwrap();
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

/// The URL of the template queue `id` (its logical id) in this stack.
pub fn queue_url(stack: &LocalStack, id: &str) -> String {
    stack.provisioned.lookup(id, "Ref").unwrap_or_else(|| panic!("queue {id}"))
}

/// Messages in a queue, visible or in flight.
pub async fn queue_depth(stack: &LocalStack, id: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = aws_sdk_sqs::Client::new(&stack.sdk)
        .get_queue_attributes()
        .queue_url(queue_url(stack, id))
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    [QueueAttributeName::ApproximateNumberOfMessages, QueueAttributeName::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|a| attrs.get(a).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}

/// An SQS batch of `(message id, body)`, as Lambda hands a consumer.
pub fn sqs_event(messages: &[(&str, String)]) -> aws_lambda_events::sqs::SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({ "messageId": id, "body": body, "eventSource": "aws:sqs", "attributes": {}, "messageAttributes": {} })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// The stack's handler for the queue consumer `binary`, to call with [`sqs_event`]s.
pub fn sqs_consumer(stack: &LocalStack, binary: &str) -> infra::functions::SqsHandler {
    let Some(infra::functions::Handler::Sqs(h)) = stack.handler(binary) else { panic!("{binary} is no SQS consumer") };
    h.clone()
}
