//! Astrologer video KYC through Digio, end to end: kyc-initiate, the local Digio, the
//! signed webhook, the expiry sweep, and the audit trail.

use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;
use infra::functions::Handler;
use integration_tests::*;
use serde_json::{Value, json};

/// An astrologer, signed up and signed in: (phone, access token, user id).
async fn astrologer_with_phone(stack: &LocalStack) -> (String, String, String) {
    let phone = random_phone();
    let signed_up = sign_up(stack, &phone, "astrologer").await;
    let tokens = sign_in(stack, &phone).await;
    (phone, tokens["access_token"].as_str().unwrap().to_owned(), signed_up["user_id"].as_str().unwrap().to_owned())
}

async fn post_kyc(stack: &LocalStack, token: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/astrologers/me/kyc", stack.api_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_kyc(stack: &LocalStack, token: &str) -> Value {
    let (status, body) = Api::new(stack).get("/astrologers/me/kyc", Some(token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The astrologer's KYC audit entries.
async fn audit_items(stack: &LocalStack, user_id: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let out = client
        .query()
        .table_name(stack.table_name())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("KYCAUDIT#{user_id}")))
        .send()
        .await
        .unwrap();
    out.items.unwrap_or_default()
}

async fn audit_types(stack: &LocalStack, user_id: &str) -> Vec<String> {
    audit_items(stack, user_id).await.iter().map(|i| i["event_type"].as_s().unwrap().clone()).collect()
}

fn request_id(body: &Value) -> String {
    body["request_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn astrologer_is_approved_and_becomes_bookable() {
    let stack = stack().await;
    let (phone, token, user_id) = astrologer_with_phone(&stack).await;
    let (status, started) = post_kyc(&stack, &token).await;
    assert_eq!(status, 201, "{started}");
    assert!(started["request_id"].as_str().unwrap().starts_with("KID"));
    assert!(started["access_token"].as_str().unwrap().starts_with("GWT"));
    assert_eq!(started["customer_identifier"], phone.as_str());
    assert_eq!((started["attempts_used"].as_u64(), started["attempts_left"].as_u64()), (Some(1), Some(3)));
    let expires: chrono::DateTime<chrono::Utc> = started["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - chrono::Utc::now()).num_hours();
    assert!((167..=168).contains(&days), "expires in 7 days, not {days} hours");

    let (status, reply) = stack.stubs.digio.approve(&request_id(&started)).await.unwrap();
    assert_eq!(status, 200, "{reply}");

    let kyc = get_kyc(&stack, &token).await;
    assert_eq!(
        (kyc["kyc_status"].as_str(), kyc["verification_status"].as_str()),
        (Some("completed"), Some("approved"))
    );
    assert!(kyc["verified_at"].is_string());
    assert!(kyc.get("access_token").is_none(), "the SDK token is not handed out once done");
    let (_, me) = Api::new(&stack).get("/me", Some(&token)).await;
    assert_eq!(me["user"]["profile_status"], "approved");
    assert!(shared::domain::kyc::astrologer_bookable(
        shared::ProfileStatus::parse(me["user"]["profile_status"].as_str().unwrap()).unwrap(),
        shared::KycStatus::parse(kyc["kyc_status"].as_str().unwrap()).unwrap(),
        shared::domain::user::VerificationStatus::parse(kyc["verification_status"].as_str().unwrap()).unwrap(),
    ));

    // Every step is in the audit log, in time order.
    assert_eq!(
        audit_types(&stack, &user_id).await,
        ["initiated", "digio_response", "webhook_received", "status_changed", "webhook_received", "status_changed"]
    );
    // The astrologer is told, once, through the events queue.
    let inbox = format!("INBOX#{user_id}");
    let mut titles = Vec::new();
    for _ in 0..50 {
        titles = all_items(&stack)
            .await
            .into_iter()
            .filter(|i| i["PK"].as_s().unwrap() == &inbox && is_notification(i))
            .map(|i| i["title"].as_s().unwrap().clone())
            .collect::<Vec<_>>();
        if titles.contains(&"KYC approved".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(titles.iter().filter(|t| *t == "KYC approved").count(), 1, "{titles:?}");

    // Approved is final: no new request.
    let (status, body) = post_kyc(&stack, &token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("kyc_already_completed")));
}

#[tokio::test]
async fn only_astrologers_and_only_signed_in() {
    let stack = stack().await;
    let phone = random_phone();
    sign_up(&stack, &phone, "user").await;
    let customer = sign_in(&stack, &phone).await;
    let token = customer["access_token"].as_str().unwrap();
    let (status, body) = post_kyc(&stack, token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")));
    assert_eq!(Api::new(&stack).get("/astrologers/me/kyc", Some(token)).await.0, 403);
    assert_eq!(Api::new(&stack).get("/astrologers/me/kyc", None).await.0, 401);
    assert_eq!(stack.stubs.digio.created(), 0);
}

#[tokio::test]
async fn a_live_request_is_handed_out_again_even_to_racing_calls() {
    let stack = stack().await;
    let (_, token, _) = astrologer_with_phone(&stack).await;
    let calls = (0..5).map(|_| post_kyc(&stack, &token));
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<_> = results
        .iter()
        .map(|(s, b)| {
            assert!(*s == 200 || *s == 201, "{s} {b}");
            request_id(b)
        })
        .collect();
    assert_eq!(ids.len(), 1, "one request for five racing calls");
    assert_eq!(stack.stubs.digio.created(), 1);
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "one of them created it");
    let (status, again) = post_kyc(&stack, &token).await;
    assert_eq!((status, request_id(&again)), (200, ids.into_iter().next().unwrap()));
    let read = get_kyc(&stack, &token).await;
    assert_eq!(read["attempts_used"], 1);
    // One timestamp format, whether the time was just made or read back.
    let created = &results.iter().find(|(s, _)| *s == 201).unwrap().1;
    let expires = created["expires_at"].as_str().unwrap();
    assert!(expires.len() == "2026-11-22T09:30:00.000Z".len() && expires.ends_with('Z'), "{expires}");
    assert_eq!((&again["expires_at"], &read["expires_at"]), (&created["expires_at"], &created["expires_at"]));
}

#[tokio::test]
async fn rejection_frees_a_retry_and_the_fifth_attempt_is_refused() {
    let stack = stack().await;
    let (_, token, _) = astrologer_with_phone(&stack).await;
    let mut previous = None;
    for attempt in 1..=4u64 {
        let (status, started) = post_kyc(&stack, &token).await;
        assert_eq!(status, 201, "attempt {attempt}: {started}");
        assert_eq!(started["attempts_used"].as_u64(), Some(attempt));
        assert_ne!(Some(request_id(&started)), previous, "a new request each time");
        previous = Some(request_id(&started));
        stack.stubs.digio.reject(&request_id(&started), "PAN name does not match").await.unwrap();
        let kyc = get_kyc(&stack, &token).await;
        assert_eq!(kyc["kyc_status"], "rejected");
        assert_eq!(kyc["rejection_reason"], "PAN name does not match");
        assert_eq!(kyc["attempts_left"].as_u64(), Some(4 - attempt));
    }
    let (status, body) = post_kyc(&stack, &token).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("kyc_retry_limit_reached")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("4 times"));
    assert_eq!(stack.stubs.digio.created(), 4);
}

#[tokio::test]
async fn webhooks_never_regress_and_apply_once() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, started) = post_kyc(&stack, &token).await;
    let kid = request_id(&started);
    let digio = &stack.stubs.digio;

    let completed = digio.event_body(&kid, "kyc.request.completed", "approval_pending", json!({})).unwrap();
    let approved = digio.event_body(&kid, "KYC_REQUEST_APPROVED", "approved", json!({})).unwrap();
    // Out of order: approved first, then the late completed.
    assert_eq!(digio.deliver(&approved).await.unwrap(), (200, r#"{"status":"applied"}"#.into()));
    assert_eq!(digio.deliver(&completed).await.unwrap(), (200, r#"{"status":"recorded"}"#.into()));
    // The same approved event again changes nothing, and writes nothing new.
    let audit_before = audit_types(&stack, &user_id).await.len();
    assert_eq!(digio.deliver(&approved).await.unwrap(), (200, r#"{"status":"duplicate"}"#.into()));
    assert_eq!(audit_types(&stack, &user_id).await.len(), audit_before);
    // A rejection after approval cannot undo it.
    let rejected = digio.event_body(&kid, "KYC_REQUEST_REJECTED", "rejected", json!({})).unwrap();
    assert_eq!(digio.deliver(&rejected).await.unwrap().0, 200);
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "completed");

    // Unknown request, unknown event type: acknowledged.
    let unknown =
        json!({ "id": "WHEx1", "event": "KYC_REQUEST_APPROVED", "payload": { "kyc_request": { "id": "KIDnope" } } })
            .to_string();
    assert_eq!(digio.deliver(&unknown).await.unwrap(), (200, r#"{"status":"ignored_unknown_request"}"#.into()));
    let other = digio.event_body(&kid, "kyc.action.completed", "approved", json!({})).unwrap();
    assert_eq!(digio.deliver(&other).await.unwrap(), (200, r#"{"status":"recorded"}"#.into()));
}

#[tokio::test]
async fn unsigned_or_tampered_webhooks_are_refused_and_change_nothing() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, started) = post_kyc(&stack, &token).await;
    let kid = request_id(&started);
    let digio = &stack.stubs.digio;
    let approved = digio.event_body(&kid, "KYC_REQUEST_APPROVED", "approved", json!({})).unwrap();
    let signature = digio.sign(&approved);
    let tampered = approved.replace("approved", "approved ");
    let items_before = written_items(&stack).await;

    let http = reqwest::Client::new();
    let url = format!("{}/webhooks/digio", stack.api_url);
    for (body, sig) in [
        (tampered.as_str(), Some(signature.as_str())),
        (approved.as_str(), None),
        (approved.as_str(), Some("not-hex")),
        (approved.as_str(), Some(&signature[..32])),
        (approved.as_str(), Some(&shared::signature::hmac_sha256_hex(b"wrong secret", approved.as_bytes()))),
    ] {
        let mut req = http.post(&url).body(body.to_owned());
        if let Some(sig) = sig {
            req = req.header("x-digio-checksum", sig);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature");
    }
    assert_eq!(written_items(&stack).await, items_before, "nothing written");
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "in_progress");
    assert_eq!(audit_types(&stack, &user_id).await, ["initiated", "digio_response"]);
}

#[tokio::test]
async fn an_expired_request_can_be_started_again_and_its_late_events_are_ignored() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, first) = post_kyc(&stack, &token).await;
    let old = request_id(&first);

    // Eight days pass: move the expiry into the past.
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    move_expiry(&stack, &user_id, &old, past, past).await;
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "expired", "read as expired before the sweep");

    let Some(Handler::Scheduled(sweep)) = stack.handler("kyc-expiry") else { panic!("no kyc-expiry") };
    let report = sweep(json!({ "source": "aws.events" })).await.unwrap();
    assert_eq!(report["expired"], 1, "{report}");
    let again = sweep(json!({})).await.unwrap();
    assert_eq!(again["due"], 0, "an expired request leaves the open index: {again}");
    assert!(audit_types(&stack, &user_id).await.contains(&"expired".to_owned()));

    let (status, second) = post_kyc(&stack, &token).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["attempts_used"], 2);
    assert_ne!(request_id(&second), old);
    // Digio approving the superseded request changes nothing.
    let late = stack.stubs.digio.approve(&old).await.unwrap();
    assert_eq!(late.0, 200);
    let kyc = get_kyc(&stack, &token).await;
    assert_eq!(
        (kyc["kyc_status"].as_str(), kyc["request_id"].as_str()),
        (Some("in_progress"), Some(request_id(&second).as_str()))
    );
}

#[tokio::test]
async fn no_full_pan_aadhaar_or_phone_is_kept_or_logged() {
    let stack = stack().await;
    let (phone, token, _) = astrologer_with_phone(&stack).await;
    let (_, started) = post_kyc(&stack, &token).await;
    stack.stubs.digio.approve(&request_id(&started)).await.unwrap();
    let items = format!("{:?}", all_items(&stack).await);
    for secret in ["AKRPR4321K", "123412341234"] {
        assert!(!items.contains(secret), "{secret} stored");
    }
    assert!(items.contains("321K") && items.contains("1234"), "the last 4 are kept");
    // The phone is only on the user record (and its uniqueness claim), not in the KYC data.
    let kyc_items: Vec<_> =
        all_items(&stack).await.into_iter().filter(|i| i["PK"].as_s().unwrap().starts_with("KYC")).collect();
    assert!(!format!("{kyc_items:?}").contains(&phone[3..]));
    let logs = captured_logs();
    for secret in ["AKRPR4321K", "123412341234", &phone[3..]] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
}

/// A reviewer's remarks and a rejection reason quoting the astrologer's PAN, Aadhaar number
/// and VID: none of the three is stored (anywhere in the table, outbox events included),
/// logged, or told to the astrologer; the last 4 of each and the rest of the words are.
#[tokio::test]
async fn numbers_in_digio_free_text_are_masked_everywhere() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, started) = post_kyc(&stack, &token).await;
    let kid = request_id(&started);
    let digio = &stack.stubs.digio;
    let free_text = json!({
        "rejection_reason": "Name on PAN bxqpk4821m differs from Aadhaar 7391 4820 5617",
        "remarks": "VID 6138-2947-5031-8264 expired; PAN BXQPK4821M",
        "actions": [{ "type": "selfie", "status": "rejected", "details": { "comment": "held card 739148205617" } }],
    });
    let rejected = digio.event_body(&kid, "KYC_REQUEST_REJECTED", "rejected", free_text).unwrap();
    assert_eq!(digio.deliver(&rejected).await.unwrap().0, 200);

    let kyc = get_kyc(&stack, &token).await;
    assert_eq!(
        kyc["rejection_reason"], "Name on PAN ******821m differs from Aadhaar ********5617",
        "the reason is kept, its numbers masked"
    );
    // The astrologer is told through the outbox, the relay and the notifications consumer.
    assert_eq!(settled_inbox_count(&stack, &user_id, "KycStatusChanged").await, 1);
    let items = all_items(&stack).await;
    assert!(items.iter().any(|i| i["PK"].as_s().unwrap().starts_with("OUTBOX#")), "the event is in the outbox");
    // Compared without case, spaces or hyphens: no grouping or case hides a number.
    let squeeze = |text: String| text.to_ascii_lowercase().replace([' ', '-'], "");
    let (stored, logged) = (squeeze(format!("{items:?}")), squeeze(captured_logs()));
    for number in ["bxqpk482", "73914820", "61382947503"] {
        assert!(!stored.contains(number), "{number} stored");
        assert!(!logged.contains(number), "{number} logged");
    }
    for kept in ["821m", "5617", "8264"] {
        assert!(stored.contains(kept), "the last 4 ({kept}) are kept");
    }
}

mod provider_failures {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    async fn stack_with_digio(server: &MockServer) -> LocalStack {
        let uri = server.uri();
        stack_with(|o| {
            o.parameters.insert("DigioBaseUrl".into(), uri);
        })
        .await
    }

    async fn assert_nothing_spent(stack: &LocalStack, token: &str, user_id: &str) {
        let kyc = get_kyc(stack, token).await;
        assert_eq!((kyc["kyc_status"].as_str(), kyc["attempts_used"].as_u64()), (Some("not_started"), Some(0)));
        assert!(all_items(stack).await.iter().all(|i| !i["PK"].as_s().unwrap().starts_with("KYCREQ")));
        assert_eq!(audit_types(stack, user_id).await.last().map(String::as_str), Some("failure"));
    }

    #[tokio::test]
    async fn digio_error_is_a_502_and_spends_no_attempt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/client/kyc/v2/request/with_template"))
            .respond_with(ResponseTemplate::new(500).set_body_json(json!({ "code": 500, "message": "internal" })))
            .mount(&server)
            .await;
        let stack = stack_with_digio(&server).await;
        let (_, token, user_id) = astrologer_with_phone(&stack).await;
        let (status, body) = post_kyc(&stack, &token).await;
        assert_eq!((status, body["error"]["code"].as_str()), (502, Some("digio_error")), "{body}");
        assert_nothing_spent(&stack, &token, &user_id).await;

        // Digio recovers: the next call is attempt 1.
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/client/kyc/v2/request/with_template"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({ "id": "KID1", "access_token": { "id": "GWT1" } })),
            )
            .mount(&server)
            .await;
        let (status, body) = post_kyc(&stack, &token).await;
        assert_eq!((status, body["attempts_used"].as_u64()), (201, Some(1)), "{body}");
    }

    #[tokio::test]
    async fn digio_slow_or_unreachable_is_a_503() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(8)))
            .mount(&server)
            .await;
        let stack = stack_with_digio(&server).await;
        let (_, token, user_id) = astrologer_with_phone(&stack).await;
        let (status, body) = post_kyc(&stack, &token).await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("digio_unavailable")), "{body}");
        assert_nothing_spent(&stack, &token, &user_id).await;

        let closed = stack_with(|o| {
            o.parameters.insert("DigioBaseUrl".into(), "http://127.0.0.1:9".into());
        })
        .await;
        let (_, token, user_id) = astrologer_with_phone(&closed).await;
        let (status, _) = post_kyc(&closed, &token).await;
        assert_eq!(status, 503);
        assert_nothing_spent(&closed, &token, &user_id).await;
    }

    #[tokio::test]
    async fn digio_reply_without_a_request_id_is_a_502() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
            .mount(&server)
            .await;
        let stack = stack_with_digio(&server).await;
        let (_, token, user_id) = astrologer_with_phone(&stack).await;
        assert_eq!(post_kyc(&stack, &token).await.0, 502);
        assert_nothing_spent(&stack, &token, &user_id).await;
    }
}

#[tokio::test]
async fn kyc_routes_keep_to_their_store_round_trips() {
    // No queue polling, so only the route under test talks to DynamoDB.
    let stack = stack_with(|o| o.poll_queues = false).await;
    let (_, token, _) = astrologer_with_phone(&stack).await;

    stack.calls.clear();
    let (_, started) = post_kyc(&stack, &token).await;
    assert_eq!(stack.calls.dynamodb(), ["Query", "UpdateItem", "TransactWriteItems"], "initiation");

    stack.calls.clear();
    get_kyc(&stack, &token).await;
    assert_eq!(stack.calls.dynamodb(), ["Query"], "GET /astrologers/me/kyc");

    stack.calls.clear();
    stack.stubs.digio.complete(&request_id(&started)).await.unwrap();
    assert_eq!(stack.calls.dynamodb(), ["GetItem", "TransactWriteItems"], "webhook");

    stack.calls.clear();
    Api::new(&stack).get("/me", Some(&token)).await;
    assert_eq!(stack.calls.dynamodb(), ["Query"], "GET /me");
}

/// Digio's events are audited by field name whatever the type (a numeric Aadhaar number,
/// a date of birth, an address), and an event too large for an audit entry is acknowledged,
/// not failed for Digio to retry for a day.
#[tokio::test]
async fn events_are_audited_without_personal_data_and_a_huge_one_is_still_acknowledged() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, started) = post_kyc(&stack, &token).await;
    let kid = request_id(&started);
    let digio = &stack.stubs.digio;
    let personal = json!({ "id_number": 123456789012u64, "dob": "1990-01-31", "address": { "line1": "12 MG Road" } });
    let completed = digio.event_body(&kid, "KYC_REQUEST_COMPLETED", "approval_pending", personal).unwrap();
    assert_eq!(digio.deliver(&completed).await.unwrap().0, 200);
    let huge = json!({ "notes": "x".repeat(450 * 1024) });
    let approved = digio.event_body(&kid, "KYC_REQUEST_APPROVED", "approved", huge).unwrap();
    let (status, answer) = digio.deliver(&approved).await.unwrap();
    assert_eq!((status, answer.as_str()), (200, r#"{"status":"applied"}"#));

    let text = format!("{:?}", audit_items(&stack, &user_id).await);
    for personal in ["123456789012", "5678", "1990-01-31", "MG Road"] {
        // As a value of its own, not inside an id or a time the stack drew at random.
        let alone = regex::Regex::new(&format!("(^|[^0-9a-fA-F]){personal}([^0-9a-fA-F]|$)")).unwrap();
        assert!(!alone.is_match(&text), "{personal} in the audit log");
    }
    assert!(text.contains("9012"), "the last 4 stay: {text:.300}");
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "completed");
}

/// Sets a request's expiry (on the request and the astrologer) and its place in the open
/// index, as if time had passed.
async fn move_expiry(
    stack: &LocalStack,
    user_id: &str,
    kid: &str,
    expires: chrono::DateTime<chrono::Utc>,
    due: chrono::DateTime<chrono::Utc>,
) {
    let text =
        |t: chrono::DateTime<chrono::Utc>| AttributeValue::S(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let key = |pk: String, sk: &str| {
        std::collections::HashMap::from([
            ("PK".to_owned(), AttributeValue::S(pk)),
            ("SK".to_owned(), AttributeValue::S(sk.into())),
        ])
    };
    client
        .update_item()
        .table_name(stack.table_name())
        .set_key(Some(key(format!("KYCREQ#{kid}"), "KYCREQ")))
        .update_expression("SET GSI1SK = :due, expires_at_time = :exp")
        .expression_attribute_values(":due", text(due))
        .expression_attribute_values(":exp", text(expires))
        .send()
        .await
        .unwrap();
    client
        .update_item()
        .table_name(stack.table_name())
        .set_key(Some(key(format!("USER#{user_id}"), "ASTROLOGER")))
        .update_expression("SET kyc_expires_at = :exp")
        .expression_attribute_values(":exp", text(expires))
        .send()
        .await
        .unwrap();
}

/// A request the astrologer completed but Digio never decided is not "in progress" forever:
/// a week past its expiry it expires, and the astrologer can start again.
#[tokio::test]
async fn a_completed_request_digio_never_decides_expires_a_week_after_its_expiry() {
    let stack = stack().await;
    let (_, token, user_id) = astrologer_with_phone(&stack).await;
    let (_, first) = post_kyc(&stack, &token).await;
    let old = request_id(&first);
    assert_eq!(stack.stubs.digio.complete(&old).await.unwrap().0, 200);
    let Some(Handler::Scheduled(sweep)) = stack.handler("kyc-expiry") else { panic!("no kyc-expiry") };
    let now = chrono::Utc::now();
    let days = chrono::Duration::days;

    // Its expiry passed a day ago: awaiting review, a week more.
    move_expiry(&stack, &user_id, &old, now - days(1), now + days(6)).await;
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "in_progress");
    assert_eq!(sweep(json!({})).await.unwrap()["due"], 0);

    // Eight days past its expiry: expired, by the read and by the sweep.
    move_expiry(&stack, &user_id, &old, now - days(8), now - days(1)).await;
    assert_eq!(get_kyc(&stack, &token).await["kyc_status"], "expired");
    let report = sweep(json!({})).await.unwrap();
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(sweep(json!({})).await.unwrap()["due"], 0, "out of the open index");
    let (status, second) = post_kyc(&stack, &token).await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(request_id(&second), old);
}
