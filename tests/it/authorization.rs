//! Who may call what, over every private route of every HTTP function (the route tables):
//! tokens that must be refused (none, garbage, a tampered signature, expired, another
//! issuer, another app client), the wrong role, and another user's resources. Each is
//! refused, and nothing any refused request sends changes the table.
//!
//! Expired, wrong-issuer and wrong-audience tokens are signed with the user pool's own key
//! (moto's, which it publishes with its source), so only the claim under test is wrong: a
//! control token re-signed the same way with unchanged claims is accepted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};
use shared::UserType;
use shared::http::Access;

use crate::route_tables;

/// The private key moto signs Cognito tokens with (its source ships it as a JWK).
fn pool_signing_key() -> jsonwebtoken::EncodingKey {
    let python = infra::repo_root().join(".venv/bin/python");
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import gzip, os, moto.cognitoidp as c; \
             print(gzip.open(os.path.join(os.path.dirname(c.__file__), 'resources', 'jwks-private.json.gz')).read().decode())",
        ])
        .output()
        .expect("the venv's python runs");
    let jwk: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("moto's private JWK: {e}; {}", String::from_utf8_lossy(&out.stderr)));
    // moto publishes n, e and d only: the rsa crate recovers the primes PKCS#1 wants.
    let field = |name: &str| rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap());
    let private = rsa::RsaPrivateKey::from_components(field("n"), field("e"), field("d"), vec![]).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    jsonwebtoken::EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes())
}

fn claims_of(token: &str) -> serde_json::Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn signed(claims: &serde_json::Map<String, Value>, key: &jsonwebtoken::EncodingKey) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("dummy".into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// `{name}` path parameters filled in (the gateway refuses before any handler runs).
fn concrete(path: &str, fill: &str) -> String {
    path.split('/').map(|seg| if seg.starts_with('{') { fill } else { seg }).collect::<Vec<_>>().join("/")
}

async fn call(api: &Api, key: &str, token: Option<&str>, fill: &str) -> (u16, Value) {
    let (method, path) = key.split_once(' ').unwrap();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let body = (method != Method::GET).then(|| "{}".to_owned());
    api.send(method, &concrete(path, fill), token, &[], body.as_deref()).await
}

/// The table's items, once the asynchronous work of the setup (outbox, notifications) is done.
async fn settled_items(stack: &infra::LocalStack) -> Vec<String> {
    let mut last = table_state(stack).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let now = table_state(stack).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test]
async fn every_private_route_refuses_bad_tokens_the_wrong_role_and_other_peoples_things() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (alice, alice_id) = topped_up_customer(&stack, "1000").await;
    let (bob, _) = customer(&stack).await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let (staff, _) = staff(&stack).await;
    let key = pool_signing_key();

    // Alice's things: a top-up, a consultation, a notification.
    let (status, topup) =
        api.post_as("/wallet/top-ups", &alice, &[("idempotency-key", "authz-1")], json!({ "amount": "500" })).await;
    assert_eq!(status, 201, "{topup}");
    let topup_id = topup["top_up_id"].as_str().unwrap().to_owned();
    let booking = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 5 });
    let (status, booked) = api.post_as("/consultations", &alice, &[("idempotency-key", "authz-2")], booking).await;
    assert_eq!(status, 201, "{booked}");
    let booking_id = booked["booking_id"].as_str().unwrap().to_owned();
    assert_eq!(settled_inbox_count(&stack, &alice_id, "WalletCredited").await, 1);
    let (_, inbox) = api.get("/notifications", Some(&alice)).await;
    let notification_id = inbox["notifications"][0]["id"].as_str().unwrap_or_default().to_owned();
    assert!(!notification_id.is_empty(), "{inbox}");

    // Tokens: the control is Alice's claims re-signed, and must pass.
    let claims = claims_of(&alice);
    let with = |name: &str, value: Value| {
        let mut c = claims.clone();
        c.insert(name.to_owned(), value);
        signed(&c, &key)
    };
    let control = signed(&claims, &key);
    assert_eq!(api.get("/me", Some(&control)).await.0, 200, "a re-signed token with the same claims passes");
    let now = chrono::Utc::now().timestamp();
    let mut tampered = alice.clone();
    let middle = tampered.find('.').unwrap() + 5;
    let flipped = if &tampered[middle..=middle] == "A" { "B" } else { "A" };
    tampered.replace_range(middle..=middle, flipped);
    let refused_tokens: Vec<(&str, Option<String>)> = vec![
        ("none", None),
        ("garbage", Some("not-a-token".into())),
        ("tampered", Some(tampered)),
        ("expired", Some(with("exp", json!(now - 60)))),
        ("another issuer", Some(with("iss", json!(format!("{}x", claims["iss"].as_str().unwrap()))))),
        ("another app client", Some(with("client_id", json!("another-app-client")))),
    ];

    let before = settled_items(&stack).await;
    let mut cases = 0;
    let mut wrong = Vec::new();
    let tables = route_tables::route_tables();
    for (binary, routes) in &tables {
        for (route, access) in routes {
            if *access == Access::Public {
                continue;
            }
            // Alice's own ids, so a refusal is never for want of a real thing.
            let fill = if route.contains("top-ups") { &topup_id } else { &booking_id };
            for (kind, token) in &refused_tokens {
                cases += 1;
                let (status, body) = call(&api, route, token.as_deref(), fill).await;
                if status != 401 || body != json!({ "message": "Unauthorized" }) {
                    wrong.push(format!("{binary} {route} with {kind}: {status} {body}"));
                }
            }
            // The wrong role: each role-only route, with every other role's token.
            if let Access::Role(role) = access {
                // The staff account signed up as a customer first: it is in both groups.
                let people = [
                    ("customer", &alice, &[UserType::User][..]),
                    ("astrologer", &astrologer, &[UserType::Astrologer][..]),
                    ("staff", &staff, &[UserType::User, UserType::Admin][..]),
                ];
                for (who, token, groups) in people {
                    if groups.contains(role) {
                        continue;
                    }
                    cases += 1;
                    let (status, body) = call(&api, route, Some(token), fill).await;
                    if status != 403 || body["error"]["code"] != "forbidden" {
                        wrong.push(format!("{binary} {route} as {who}: {status} {body}"));
                    }
                }
            }
        }
    }

    // Another user's things: Bob asks for, and acts on, Alice's.
    let theirs: Vec<(Method, String, Value)> = vec![
        (Method::GET, format!("/wallet/top-ups/{topup_id}"), Value::Null),
        (
            Method::POST,
            format!("/wallet/top-ups/{topup_id}/confirm"),
            json!({ "razorpay_payment_id": "pay_x1", "razorpay_signature": "00" }),
        ),
        (Method::GET, format!("/consultations/{booking_id}"), Value::Null),
        (Method::POST, format!("/consultations/{booking_id}/cancel"), json!({})),
        (Method::POST, format!("/notifications/{notification_id}/read"), json!({})),
    ];
    for (method, path, body) in &theirs {
        cases += 1;
        let body = (!body.is_null()).then(|| body.to_string());
        let (status, resp) = api.send(method.clone(), path, Some(&bob), &[], body.as_deref()).await;
        if status != 404 {
            wrong.push(format!("Bob {method} {path}: {status} {resp}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {cases} cases not refused as they should be:\n{}", wrong.len(), wrong.join("\n"));
    assert!(table_state(&stack).await == before, "a refused request changed the table");
    // Alice's things are as she left them.
    let (_, mine) = api.get(&format!("/consultations/{booking_id}"), Some(&alice)).await;
    assert_eq!(mine["status"], "ringing", "{mine}");
    let (_, read) = api.get("/notifications", Some(&alice)).await;
    assert_eq!(read["notifications"][0]["read"], false);
    assert!(cases > 150, "{cases} cases");
    println!("authorization matrix: {cases} cases over {} functions, all refused", tables.len());
}
