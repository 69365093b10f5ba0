//! The authorizer against tokens signed with fixed test keys (`testdata/`, test-only RSA
//! keys), the pool's JWKS served over HTTP by wiremock, so the real fetch path runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::jwks::{REFETCH_INTERVAL, RETRY_INTERVAL};

const POOL_ID: &str = "ap-south-1_TestPool1";
const ISSUER: &str = "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_TestPool1";
const CLIENT_ID: &str = "5k2t8qg0o8h1example0client";
const JWKS_PATH: &str = "/ap-south-1_TestPool1/.well-known/jwks.json";
const SUB: &str = "0c7b7a6e-1d2f-4c3b-9a8e-7f6d5c4b3a21";
const SAMPLE_EVENT: &str = include_str!("../../../events/connect-authorizer.json");

/// A signing key of the pool (or of no pool) and the `kid` it is published under.
struct TestKey {
    pem: &'static str,
    kid: &'static str,
}

const POOL_KEY_1: TestKey = TestKey { pem: include_str!("testdata/pool-key-1.pem"), kid: "pool-key-1" };
/// The key Cognito rotates to.
const POOL_KEY_2: TestKey = TestKey { pem: include_str!("testdata/pool-key-2.pem"), kid: "pool-key-2" };
/// A key the pool never published.
const STRANGER_KEY: &str = include_str!("testdata/stranger-key.pem");

impl TestKey {
    fn encoding_key(&self) -> EncodingKey {
        EncodingKey::from_rsa_pem(self.pem.as_bytes()).unwrap()
    }

    /// The public half as Cognito publishes it in the JWKS.
    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(), Algorithm::RS256).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        serde_json::to_value(jwk).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        sign_with(&self.encoding_key(), Algorithm::RS256, Some(self.kid), claims)
    }
}

fn sign_with(key: &EncodingKey, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The claims of an access token Cognito issues to this app's client for a customer.
fn access_claims() -> Value {
    json!({
        "sub": SUB,
        "cognito:groups": ["user"],
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": "8b0c4c5e-3d5c-4a43-9c4c-5b0c2f1e0a11",
        "event_id": "2f7c1c3e-8f2a-4c1e-9a41-6f3a8d2b1c0e",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now() - 60,
        "exp": now() + 3600,
        "iat": now() - 60,
        "jti": "4a2a1c7e-9a8b-4c3d-8e2f-1a0b9c8d7e6f",
        "username": SUB,
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

/// The pool's JWKS endpoint, publishing `keys`.
async fn publish(server: &MockServer, keys: &[&TestKey]) {
    server.reset().await;
    let jwks = json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() });
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(server)
        .await;
}

async fn jwks_fetches(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn app(server: &MockServer) -> App {
    let vars: HashMap<String, String> = [
        ("USER_POOL_ID", POOL_ID.to_owned()),
        ("USER_POOL_CLIENT_ID", CLIENT_ID.to_owned()),
        ("JWKS_URL", format!("{}{JWKS_PATH}", server.uri())),
        ("TOKEN_ISSUER", ISSUER.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    App::from_env(&shared::config::aws_from(&vars), &vars).unwrap()
}

/// A pool publishing key 1, and the authorizer pointed at it.
async fn pool() -> (MockServer, App) {
    let server = MockServer::start().await;
    publish(&server, &[&POOL_KEY_1]).await;
    let app = app(&server);
    (server, app)
}

/// The sample `$connect` event (AWS's shape), carrying `token` in its query string.
fn connect_event(token: Option<&str>) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let mut event: Value = serde_json::from_str(SAMPLE_EVENT).unwrap();
    let query = match token {
        Some(token) => json!({ "token": token }),
        None => json!({}),
    };
    event["multiValueQueryStringParameters"] = json!({});
    event["queryStringParameters"] = query;
    serde_json::from_value(event).unwrap()
}

fn method_arn() -> String {
    connect_event(None).method_arn.unwrap()
}

/// Pretends the last JWKS fetch started `ago` earlier than it did.
async fn backdate_last_fetch(app: &App, ago: Duration) {
    let mut last_fetch = app.verifier.keys.last_fetch.lock().await;
    *last_fetch = last_fetch.map(|at| at.checked_sub(ago).unwrap());
}

#[tokio::test]
async fn a_valid_access_token_may_connect_as_its_sub_with_its_groups() {
    let (_server, app) = pool().await;
    let token = POOL_KEY_1.sign(&access_claims());

    let response = handle(&app, connect_event(Some(&token))).await.unwrap();

    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({
            "principalId": SUB,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{ "Action": ["execute-api:Invoke"], "Effect": "Allow", "Resource": [method_arn()] }],
            },
            "context": { "sub": SUB, "groups": "user" },
            "usageIdentifierKey": null,
        })
    );
}

#[tokio::test]
async fn every_group_reaches_the_context_space_separated_and_none_is_empty() {
    let (_server, app) = pool().await;
    for (groups, expected) in
        [(json!(["astrologer"]), "astrologer"), (json!(["astrologer", "admin"]), "astrologer admin"), (Value::Null, "")]
    {
        let token = POOL_KEY_1.sign(&with(access_claims(), json!({ "cognito:groups": groups })));
        let response = handle(&app, connect_event(Some(&token))).await.unwrap();
        assert_eq!(response.context, json!({ "sub": SUB, "groups": expected }), "groups {groups}");
    }
}

#[tokio::test]
async fn the_token_may_come_as_an_authorization_bearer_header_instead() {
    let (_server, app) = pool().await;
    let token = POOL_KEY_1.sign(&access_claims());
    let mut event = connect_event(None);
    event.headers.insert("authorization", format!("Bearer {token}").parse().unwrap());

    let response = handle(&app, event).await.unwrap();

    assert_eq!(response.principal_id.as_deref(), Some(SUB));
}

#[tokio::test]
async fn every_token_that_is_not_a_valid_access_token_of_this_pool_and_client_is_refused() {
    let (server, app) = pool().await;
    let good = POOL_KEY_1.sign(&access_claims());
    let stranger = TestKey { pem: STRANGER_KEY, kid: POOL_KEY_1.kid };
    let hmac_with_the_public_key = EncodingKey::from_secret(POOL_KEY_1.jwk()["n"].as_str().unwrap().as_bytes());
    // The header and signature of a good token around the claims of another user.
    let tampered = {
        let other = POOL_KEY_1.sign(&with(access_claims(), json!({ "sub": "9f9e9d9c-1111-4222-8333-444455556666" })));
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2])
    };
    let unsigned = {
        // {"alg":"none","typ":"JWT","kid":"pool-key-1"}
        const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIiwia2lkIjoicG9vbC1rZXktMSJ9";
        format!("{NONE_HEADER}.{}.", good.split('.').nth(1).unwrap())
    };
    let oversized = {
        // Validly signed: only its size refuses it.
        let groups: Vec<String> = (0..200).map(|i| format!("group-{i:03}")).collect();
        POOL_KEY_1.sign(&with(access_claims(), json!({ "cognito:groups": groups })))
    };
    assert!(oversized.len() > MAX_TOKEN_BYTES);

    type Expect = fn(&Refusal) -> bool;
    let cases: Vec<(&str, Option<String>, Expect)> = vec![
        ("no token", None, |r| matches!(r, Refusal::NoToken)),
        ("an empty token", Some(String::new()), |r| matches!(r, Refusal::NoToken)),
        ("not a JWT", Some("not-a-jwt".into()), |r| matches!(r, Refusal::Malformed(_))),
        ("three dots of nothing", Some("a.b.c".into()), |r| matches!(r, Refusal::Malformed(_))),
        ("alg none", Some(unsigned), |r| matches!(r, Refusal::Malformed(_))),
        (
            "HS256 keyed with the public key",
            Some(sign_with(&hmac_with_the_public_key, Algorithm::HS256, Some(POOL_KEY_1.kid), &access_claims())),
            |r| matches!(r, Refusal::Algorithm(Algorithm::HS256)),
        ),
        ("signed by another key under the pool's kid", Some(stranger.sign(&access_claims())), |r| {
            matches!(r, Refusal::Rejected(_))
        }),
        ("claims swapped under a good signature", Some(tampered), |r| matches!(r, Refusal::Rejected(_))),
        ("no kid", Some(sign_with(&POOL_KEY_1.encoding_key(), Algorithm::RS256, None, &access_claims())), |r| {
            matches!(r, Refusal::NoKeyId)
        }),
        ("expired an hour ago", Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "exp": now() - 3600 })))), |r| {
            matches!(r, Refusal::Rejected(_))
        }),
        // jsonwebtoken's default leeway (a minute) would let this one in.
        ("expired 20 seconds ago", Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "exp": now() - 20 })))), |r| {
            matches!(r, Refusal::Rejected(_))
        }),
        ("no exp", Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "exp": null })))), |r| {
            matches!(r, Refusal::Rejected(_))
        }),
        (
            "another pool's issuer",
            Some(POOL_KEY_1.sign(&with(
                access_claims(),
                json!({ "iss": "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_OtherPool" }),
            ))),
            |r| matches!(r, Refusal::Rejected(_)),
        ),
        ("another app client", Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "client_id": "another" })))), |r| {
            matches!(r, Refusal::Client)
        }),
        (
            "an ID token",
            Some(POOL_KEY_1.sign(&with(
                access_claims(),
                json!({ "token_use": "id", "aud": CLIENT_ID, "client_id": null, "email": "a@example.com" }),
            ))),
            |r| matches!(r, Refusal::Client),
        ),
        (
            "an ID token naming the client",
            Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "token_use": "id" })))),
            |r| matches!(r, Refusal::NotAnAccessToken(_)),
        ),
        ("no token_use", Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "token_use": null })))), |r| {
            matches!(r, Refusal::NotAnAccessToken(None))
        }),
        (
            "a sub that is not a user id",
            Some(POOL_KEY_1.sign(&with(access_claims(), json!({ "sub": "admin" })))),
            |r| matches!(r, Refusal::Subject),
        ),
        ("over 4 KiB", Some(oversized), |r| matches!(r, Refusal::Oversized(_))),
    ];

    for (case, token, expected_reason) in cases {
        let refusal = app.verifier.verify(token.as_deref()).await.expect_err(case);
        assert!(expected_reason(&refusal), "{case}: refused for another reason: {refusal}");
        assert!(handle(&app, connect_event(token.as_deref())).await.is_err(), "{case}: allowed by handle");
    }
    // The good token passes, so each case above fails for its own flaw alone.
    assert!(handle(&app, connect_event(Some(&good))).await.is_ok());
    assert_eq!(jwks_fetches(&server).await, 1, "bad tokens made the authorizer fetch the JWKS again");
}

/// Log lines written while `f` runs on this thread.
async fn logs_of<F: std::future::Future>(f: F) -> (F::Output, String) {
    let lines = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = {
        let lines = lines.clone();
        move || LogLines(lines.clone())
    };
    let subscriber = tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish();
    let output = {
        let _guard = tracing::subscriber::set_default(subscriber);
        // A callsite first reached by another test's thread, with no subscriber there, may
        // have cached "never" while this one was being set: ask every callsite again (a
        // refusal line went missing once in a clean-clone CI run, 2026-12-06).
        tracing::callsite::rebuild_interest_cache();
        f.await
    };
    let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
    (output, text)
}

struct LogLines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_refusal_is_logged_at_info_with_its_reason_and_without_the_token() {
    let (_server, app) = pool().await;
    for (token, reason) in [
        (POOL_KEY_1.sign(&with(access_claims(), json!({ "client_id": "another" }))), "another app client"),
        (POOL_KEY_1.sign(&with(access_claims(), json!({ "exp": now() - 3600 }))), "ExpiredSignature"),
    ] {
        let (decision, logs) = logs_of(handle(&app, connect_event(Some(&token)))).await;

        assert!(decision.is_err());
        let refusal = logs.lines().find(|l| l.contains("connection refused")).unwrap_or_else(|| panic!("{logs}"));
        assert!(refusal.contains("INFO") && refusal.contains(reason), "{refusal}");
        for part in token.split('.') {
            assert!(!logs.contains(part), "the token is in the logs: {logs}");
        }
    }
}

#[tokio::test]
async fn an_event_without_a_method_arn_is_refused() {
    let (_server, app) = pool().await;
    let mut event = connect_event(Some(&POOL_KEY_1.sign(&access_claims())));
    event.method_arn = None;
    assert!(handle(&app, event).await.is_err());
}

#[tokio::test]
async fn the_sample_event_is_refused_for_its_placeholder_token() {
    let (_server, app) = pool().await;
    let event: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_str(SAMPLE_EVENT).unwrap();
    assert!(event.method_arn.as_deref().is_some_and(|arn| arn.ends_with("/$connect")));
    assert!(handle(&app, event).await.is_err());
}

#[tokio::test]
async fn the_jwks_is_fetched_once_for_many_connections_even_concurrent_first_ones() {
    let (server, app) = pool().await;
    let app = Arc::new(app);
    let token = POOL_KEY_1.sign(&access_claims());

    let first_ones: Vec<_> = (0..8)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { handle(&app, connect_event(Some(&token))).await.is_ok() })
        })
        .collect();
    for connection in first_ones {
        assert!(connection.await.unwrap());
    }
    for _ in 0..20 {
        assert!(handle(&app, connect_event(Some(&token))).await.is_ok());
    }

    assert_eq!(jwks_fetches(&server).await, 1);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_on_first_sight_and_accepted() {
    let (server, app) = pool().await;
    assert!(handle(&app, connect_event(Some(&POOL_KEY_1.sign(&access_claims())))).await.is_ok());
    publish(&server, &[&POOL_KEY_1, &POOL_KEY_2]).await; // resets the request count too
    backdate_last_fetch(&app, REFETCH_INTERVAL).await;

    let response = handle(&app, connect_event(Some(&POOL_KEY_2.sign(&access_claims())))).await;

    assert!(response.is_ok(), "a token signed with the rotated key was refused");
    assert_eq!(jwks_fetches(&server).await, 1);
    // Both keys stay trusted while the pool publishes both.
    assert!(handle(&app, connect_event(Some(&POOL_KEY_1.sign(&access_claims())))).await.is_ok());
    assert_eq!(jwks_fetches(&server).await, 1);
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_a_minute() {
    let (server, app) = pool().await;
    assert!(handle(&app, connect_event(Some(&POOL_KEY_1.sign(&access_claims())))).await.is_ok());
    backdate_last_fetch(&app, REFETCH_INTERVAL).await;
    let made_up_kid = |i: usize| {
        sign_with(&POOL_KEY_1.encoding_key(), Algorithm::RS256, Some(&format!("made-up-{i}")), &access_claims())
    };

    for i in 0..50 {
        let refusal = app.verifier.verify(Some(&made_up_kid(i))).await.unwrap_err();
        assert!(matches!(refusal, Refusal::UnknownKey), "{refusal}");
    }
    assert_eq!(jwks_fetches(&server).await, 2, "a flood of unknown kids: one refetch, not one each");

    // A key published within that minute is seen once the minute has passed.
    publish(&server, &[&POOL_KEY_1, &POOL_KEY_2]).await;
    let rotated = POOL_KEY_2.sign(&access_claims());
    backdate_last_fetch(&app, REFETCH_INTERVAL - Duration::from_secs(5)).await;
    assert!(handle(&app, connect_event(Some(&rotated))).await.is_err(), "refetched within the minute");
    assert_eq!(jwks_fetches(&server).await, 0);
    backdate_last_fetch(&app, Duration::from_secs(5)).await;
    assert!(handle(&app, connect_event(Some(&rotated))).await.is_ok());
    assert_eq!(jwks_fetches(&server).await, 1);
}

#[tokio::test]
async fn a_failed_jwks_fetch_refuses_and_is_retried_after_a_few_seconds() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).and(path(JWKS_PATH)).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let app = app(&server);
    let token = POOL_KEY_1.sign(&access_claims());

    for _ in 0..5 {
        let refusal = app.verifier.verify(Some(&token)).await.unwrap_err();
        assert!(matches!(refusal, Refusal::KeysUnavailable(_)), "{refusal}");
    }
    assert_eq!(jwks_fetches(&server).await, 1, "retried at once");

    publish(&server, &[&POOL_KEY_1]).await;
    backdate_last_fetch(&app, RETRY_INTERVAL).await;
    assert!(handle(&app, connect_event(Some(&token))).await.is_ok());
    assert_eq!(jwks_fetches(&server).await, 1);
}

#[tokio::test]
async fn keys_the_pool_no_longer_publishes_are_no_longer_trusted() {
    let (server, app) = pool().await;
    let old = POOL_KEY_1.sign(&access_claims());
    assert!(handle(&app, connect_event(Some(&old))).await.is_ok());
    publish(&server, &[&POOL_KEY_2]).await;
    backdate_last_fetch(&app, REFETCH_INTERVAL).await;

    assert!(handle(&app, connect_event(Some(&POOL_KEY_2.sign(&access_claims())))).await.is_ok());

    assert!(handle(&app, connect_event(Some(&old))).await.is_err());
}

#[tokio::test]
async fn keys_of_other_types_in_the_jwks_do_not_hide_the_pool_key() {
    let server = MockServer::start().await;
    let jwks = json!({ "keys": [
        { "kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        { "kty": "OKP", "crv": "X448", "kid": "unknown-curve", "x": "AAAA" },
        POOL_KEY_1.jwk(),
    ]});
    Mock::given(method("GET"))
        .and(path(JWKS_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(&server)
        .await;
    let app = app(&server);

    assert!(handle(&app, connect_event(Some(&POOL_KEY_1.sign(&access_claims())))).await.is_ok());
}

#[test]
fn an_issuer_of_another_pool_is_a_configuration_error() {
    let vars: HashMap<String, String> = [
        ("USER_POOL_ID", POOL_ID),
        ("USER_POOL_CLIENT_ID", CLIENT_ID),
        ("JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ("TOKEN_ISSUER", "https://cognito-idp.ap-south-1.amazonaws.com/ap-south-1_OtherPool"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sdk = shared::config::aws_from(&vars);
    assert!(matches!(App::from_env(&sdk, &vars), Err(ConfigError::Invalid { name: "TOKEN_ISSUER", .. })));
    let mut missing = vars.clone();
    missing.remove("JWKS_URL");
    assert!(matches!(App::from_env(&sdk, &missing), Err(ConfigError::Missing("JWKS_URL"))));
}
