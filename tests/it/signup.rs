//! Phone-OTP sign-up and sign-in, end to end through the local API Gateway, the local
//! Cognito (moto plus SMS codes) and the post-confirmation trigger.

use integration_tests::*;
use serde_json::json;

#[tokio::test]
async fn customer_signs_up_signs_in_and_sees_their_zero_wallet() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let signed_up = sign_up(&stack, &phone, "user").await;
    assert_eq!(signed_up["code"]["destination"].as_str().unwrap().len(), phone.len());
    assert!(!signed_up.to_string().contains(&phone[3..9]), "the response masks the number");

    let tokens = sign_in(&stack, &phone).await;
    for token in ["access_token", "id_token"] {
        let (status, me) = api.get("/me", tokens[token].as_str()).await;
        assert_eq!(status, 200, "{token}: {me}");
        assert_eq!(me["role"], "user");
        assert_eq!(me["user"]["phone_number"], phone.as_str());
        assert_eq!(me["user"]["user_id"], signed_up["user_id"]);
        assert_eq!(me["user"]["profile_status"], "approved");
        assert_eq!(
            me["wallet"],
            json!({ "real_cash": "0.00", "bonus_cash": "0.00", "total": "0.00", "recharge_count": 0, "debt": "0.00" })
        );
        assert!(me.get("astrologer").is_none());
    }
}

#[tokio::test]
async fn astrologer_starts_pending_with_kyc_not_started() {
    let stack = stack().await;
    let phone = random_phone();
    sign_up(&stack, &phone, "astrologer").await;
    let tokens = sign_in(&stack, &phone).await;
    let (status, me) = Api::new(&stack).get("/me", tokens["access_token"].as_str()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "astrologer");
    assert_eq!(me["user"]["profile_status"], "pending");
    assert_eq!(me["astrologer"]["kyc_status"], "not_started");
    assert_eq!(me["astrologer"]["verification_status"], "pending");
}

#[tokio::test]
async fn wrong_code_is_refused_and_creates_nothing() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let (status, _) = api
        .post("/auth/signup", json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": "user" }))
        .await;
    assert_eq!(status, 201);
    let real = stack.outbox.latest_code(&phone).unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let (status, body) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": wrong })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("code_mismatch")), "{body}");
    assert_eq!(written_items(&stack).await, 0, "nothing is created before confirmation");

    // The right code still works, once.
    let (status, _) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": real })).await;
    assert_eq!(status, 200);
    // A second confirmation is answered as a wrong code is: "already confirmed" would tell
    // anyone which numbers are customers.
    let (status, body) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": real })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("code_mismatch")), "{body}");
    assert_eq!(items_with_sk(&all_items(&stack).await, "WALLET"), 1);
}

#[tokio::test]
async fn resend_sends_a_new_code_that_works() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    api.post("/auth/signup", json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": "user" })).await;
    let (status, _) = api.post("/auth/signup/resend", json!({ "phone": phone })).await;
    assert_eq!(status, 202);
    assert_eq!(stack.outbox.count_to(&phone), 2);
    let code = stack.outbox.latest_code(&phone).unwrap();
    let (status, body) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": code })).await;
    assert_eq!(status, 200, "{body}");
    // Resend for an unknown number looks like a success: no probing for numbers.
    let (status, _) = api.post("/auth/signup/resend", json!({ "phone": random_phone() })).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn admin_cannot_be_chosen_at_sign_up() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    for role in ["admin", "Admin", "superuser", ""] {
        let (status, body) = api
            .post("/auth/signup", json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": role }))
            .await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("user_type")), "{role}: {body}");
    }
    assert_eq!(stack.outbox.count_to(&phone), 0, "no Cognito user, no SMS");
}

#[tokio::test]
async fn a_phone_number_registers_once() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let first = sign_up(&stack, &phone, "user").await;
    let before = written_items(&stack).await;
    let (status, body) = api
        .post("/auth/signup", json!({ "phone": phone, "first_name": "X", "last_name": "Y", "user_type": "astrologer" }))
        .await;
    // Answered as a new sign-up (see below), but the account is the first one, unchanged.
    assert_eq!(status, 201, "{body}");
    assert_ne!(body["user_id"], first["user_id"]);
    assert_eq!(written_items(&stack).await, before);
    let tokens = sign_in(&stack, &phone).await;
    let (_, me) = api.get("/me", tokens["access_token"].as_str()).await;
    assert_eq!((me["role"].as_str(), me["user"]["first_name"].as_str()), (Some("user"), Some("Asha")), "{me}");
    assert_eq!(me["user"]["user_id"], first["user_id"]);
}

/// Someone who signs up with another person's number, never confirming (they never see the
/// code), does not decide what that person's account will be: the owner's own sign-up,
/// answered as any other, is the one their code confirms.
#[tokio::test]
async fn a_stale_sign_up_of_someone_elses_number_does_not_shape_their_account() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let victim = random_phone();
    let mallory =
        json!({ "phone": victim, "first_name": "Mallory", "last_name": "Attacker", "user_type": "astrologer" });
    let (status, _) = api.post("/auth/signup", mallory).await;
    assert_eq!(status, 201);
    let mallorys_code = stack.outbox.latest_code(&victim).unwrap();

    let owner = json!({ "phone": victim, "first_name": "Priya", "last_name": "Sharma", "user_type": "user" });
    let (status, signed_up) = api.post("/auth/signup", owner).await;
    let (fresh_status, fresh) = api
        .post(
            "/auth/signup",
            json!({ "phone": random_phone(), "first_name": "A", "last_name": "B", "user_type": "user" }),
        )
        .await;
    assert_eq!((status, fresh_status), (201, 201), "{signed_up}");
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&signed_up), keys(&fresh), "answered as a number nobody used");
    assert_eq!((signed_up["user_type"].as_str(), signed_up["confirmed"].as_bool()), (Some("user"), Some(false)));

    // The code of the stale sign-up no longer confirms anything; the owner's code does.
    let code = stack.outbox.latest_code(&victim).unwrap();
    if code != mallorys_code {
        let (status, _) = api.post("/auth/signup/confirm", json!({ "phone": victim, "code": mallorys_code })).await;
        assert_eq!(status, 400, "the stale sign-up's code");
    }
    let (status, body) = api.post("/auth/signup/confirm", json!({ "phone": victim, "code": code })).await;
    assert_eq!(status, 200, "{body}");
    let tokens = sign_in(&stack, &victim).await;
    let (status, me) = api.get("/me", tokens["access_token"].as_str()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["role"].as_str(), me["user"]["first_name"].as_str(), me["user"]["last_name"].as_str()),
        (Some("user"), Some("Priya"), Some("Sharma")),
        "{me}"
    );
    assert_eq!(me["user"]["user_id"], signed_up["user_id"], "the id the owner's sign-up was given");
    assert!(me.get("astrologer").is_none(), "{me}");
}

/// What an attacker can see of the sign-up routes is the same for a customer's number, a
/// pending sign-up and a number nobody used: status and body (but for the number's own
/// masked digits and a fresh-looking id).
#[tokio::test]
async fn sign_up_routes_do_not_reveal_which_numbers_are_customers() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let customer = random_phone();
    sign_up(&stack, &customer, "user").await;
    let pending = random_phone();
    let (status, _) = api
        .post("/auth/signup", json!({ "phone": pending, "first_name": "P", "last_name": "Q", "user_type": "user" }))
        .await;
    assert_eq!(status, 201);
    let before = written_items(&stack).await;
    let sms_to_pending = stack.outbox.count_to(&pending);

    // Only the number's own digits may differ; a user id is any UUID.
    let shape = |(status, mut body): (u16, serde_json::Value)| {
        if let Some(id) = body.get_mut("user_id") {
            let text = id.as_str().unwrap_or_default();
            assert!(text.len() == 36 && text.matches('-').count() == 4, "{text}");
            *id = json!("<uuid>");
        }
        if let Some(masked) = body.pointer_mut("/code/destination") {
            *masked = json!("<masked>");
        }
        (status, body)
    };
    let sign_up_as = |phone: String| {
        let api = &api;
        async move {
            api.post(
                "/auth/signup",
                json!({ "phone": phone, "first_name": "Mallory", "last_name": "M", "user_type": "astrologer" }),
            )
            .await
        }
    };
    let numbers = [customer.clone(), pending.clone(), random_phone()];
    let mut answers = Vec::new();
    for phone in &numbers {
        answers.push(shape(sign_up_as(phone.clone()).await));
    }
    assert_eq!(answers[0].0, 201, "{answers:?}");
    assert!(answers.iter().all(|a| *a == answers[0]), "sign-up: {answers:#?}");

    let mut answers = Vec::new();
    for phone in [&customer, &pending, &random_phone()] {
        answers.push(shape(api.post("/auth/signup/resend", json!({ "phone": phone })).await));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    assert!(answers.iter().all(|a| *a == answers[0]), "resend: {answers:#?}");

    let mut answers = Vec::new();
    for phone in [&customer, &pending, &random_phone()] {
        answers.push(api.post("/auth/signup/confirm", json!({ "phone": phone, "code": "000000" })).await);
    }
    assert_eq!(answers[0].0, 400, "{answers:?}");
    assert!(answers.iter().all(|a| *a == answers[0]), "confirm: {answers:#?}");

    // Nothing changed for the customer: their account is as it was. The pending sign-up was
    // replaced by the latest one (a new code each time, as a real sign-up is sent): whoever
    // holds the phone confirms the sign-up they made last (see the stale sign-up test).
    assert_eq!(written_items(&stack).await, before);
    assert!(stack.outbox.count_to(&pending) > sms_to_pending);
    let code = stack.outbox.latest_code(&pending).unwrap();
    let (status, _) = api.post("/auth/signup/confirm", json!({ "phone": pending, "code": code })).await;
    assert_eq!(status, 200);
    for (phone, role, name) in [(&customer, "user", "Asha"), (&pending, "astrologer", "Mallory")] {
        let tokens = sign_in(&stack, phone).await;
        let (_, me) = api.get("/me", tokens["access_token"].as_str()).await;
        assert_eq!((me["role"].as_str(), me["user"]["first_name"].as_str()), (Some(role), Some(name)), "{me}");
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_an_error_body_never_a_5xx() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let cases = [
        (
            "/auth/signup",
            r#"{"phone":"9876543210","first_name":"A","last_name":"B","user_type":"user"}"#,
            Some("phone"),
        ),
        ("/auth/signup", r#"{"phone":"+91123","first_name":"A","last_name":"B","user_type":"user"}"#, Some("phone")),
        (
            "/auth/signup",
            r#"{"phone":"+915876543210","first_name":"A","last_name":"B","user_type":"user"}"#,
            Some("phone"),
        ),
        ("/auth/signup", r#"{"phone":12345,"first_name":"A","last_name":"B","user_type":"user"}"#, Some("phone")),
        (
            "/auth/signup",
            r#"{"phone":"+919876543210","first_name":"","last_name":"B","user_type":"user"}"#,
            Some("first_name"),
        ),
        (
            "/auth/signup",
            r#"{"phone":"+919876543210","first_name":"A","last_name":"B","user_type":"user","email":"nope"}"#,
            Some("email"),
        ),
        (
            "/auth/signup",
            r#"{"phone":"+919876543210","first_name":"A","last_name":"B","user_type":"user","role":"admin"}"#,
            None,
        ),
        ("/auth/signup", r#"{"phone":"+919876543210""#, None),
        ("/auth/signup", "", None),
        ("/auth/signup", "[]", None),
        ("/auth/signup", "null", None),
        ("/auth/signup/confirm", r#"{"phone":"+919876543210","code":"12345"}"#, Some("code")),
        ("/auth/signup/confirm", r#"{"phone":"+919876543210","code":"abcdef"}"#, Some("code")),
        ("/auth/signup/confirm", r#"{"phone":"+919876543210"}"#, None),
        ("/auth/otp", r#"{"phone":"+91 98765"}"#, Some("phone")),
        ("/auth/otp/verify", r#"{"phone":"+919876543210","session":"","code":"123456"}"#, Some("session")),
        ("/auth/otp/verify", r#"{"phone":"+919876543210","session":"s","code":"1234567"}"#, Some("code")),
    ];
    for (path, body, field) in cases {
        let (status, reply) = api.post_raw(path, body).await;
        assert!((400..500).contains(&status), "{path} {body}: {status} {reply}");
        assert!(reply["error"]["code"].is_string() && reply["error"]["message"].is_string(), "{path} {body}: {reply}");
        if let Some(field) = field {
            assert_eq!(reply["error"]["field"], field, "{path} {body}: {reply}");
        }
    }
    // Unconfirmed numbers do not reach the store.
    assert!(all_items(&stack).await.is_empty());
}

#[tokio::test]
async fn sign_in_does_not_reveal_whether_a_number_is_registered() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let known = random_phone();
    sign_up(&stack, &known, "user").await;
    let unknown = random_phone();

    let (s1, known_reply) = api.post("/auth/otp", json!({ "phone": known })).await;
    let (s2, unknown_reply) = api.post("/auth/otp", json!({ "phone": unknown })).await;
    assert_eq!((s1, s2), (200, 200));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&known_reply), keys(&unknown_reply));
    assert_eq!(known_reply["code"]["delivery_medium"], unknown_reply["code"]["delivery_medium"]);

    // A wrong code for the known number and any code for the unknown one fail alike.
    let real = stack.outbox.latest_code(&known).unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    let (s1, r1) =
        api.post("/auth/otp/verify", json!({ "phone": known, "session": known_reply["session"], "code": wrong })).await;
    let (s2, r2) = api
        .post("/auth/otp/verify", json!({ "phone": unknown, "session": unknown_reply["session"], "code": "123456" }))
        .await;
    assert_eq!((s1, &r1), (s2, &r2));
    assert_eq!(s1, 401);
    assert_eq!(stack.outbox.count_to(&unknown), 0);
}

#[tokio::test]
async fn sign_in_code_gets_three_tries_then_the_session_is_dead() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    sign_up(&stack, &phone, "user").await;
    let (_, challenge) = api.post("/auth/otp", json!({ "phone": phone })).await;
    let real = stack.outbox.latest_code(&phone).unwrap();
    let wrong = if real == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let (status, _) = api
            .post("/auth/otp/verify", json!({ "phone": phone, "session": challenge["session"], "code": wrong }))
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) =
        api.post("/auth/otp/verify", json!({ "phone": phone, "session": challenge["session"], "code": real })).await;
    assert_eq!(status, 401, "the right code after three wrong ones is too late");
}

#[tokio::test]
async fn private_routes_need_a_valid_token() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    sign_up(&stack, &phone, "user").await;
    let tokens = sign_in(&stack, &phone).await;
    let token = tokens["access_token"].as_str().unwrap();

    assert_eq!(api.get("/me", None).await.0, 401);
    assert_eq!(api.get("/me", Some("not-a-jwt")).await.0, 401);
    // Flip one character of the signature.
    let mut forged = token.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(api.get("/me", Some(&forged)).await.0, 401);
    // A token from another user pool (another stack on the same emulator) is refused.
    let other = stack_with(|_| {}).await;
    let other_phone = random_phone();
    sign_up(&other, &other_phone, "user").await;
    let foreign = sign_in(&other, &other_phone).await;
    assert_eq!(api.get("/me", foreign["access_token"].as_str()).await.0, 401);
    assert_eq!(api.get("/me", Some(token)).await.0, 200);
}

#[tokio::test]
async fn welcome_notification_arrives_once() {
    let stack = stack().await;
    let phone = random_phone();
    let user = sign_up(&stack, &phone, "user").await;
    let pk = format!("INBOX#{}", user["user_id"].as_str().unwrap());
    let mut found = 0;
    for _ in 0..50 {
        found = all_items(&stack).await.iter().filter(|i| i["PK"].as_s().unwrap() == &pk && is_notification(i)).count();
        if found > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(found, 1, "the queue consumer wrote the welcome notification");
}

#[tokio::test]
async fn logs_hold_no_phone_numbers_or_codes() {
    let stack = stack().await;
    let phone = random_phone();
    sign_up(&stack, &phone, "astrologer").await;
    let tokens = sign_in(&stack, &phone).await;
    Api::new(&stack).get("/me", tokens["access_token"].as_str()).await;
    let code = stack.outbox.latest_code(&phone).unwrap();
    let logs = captured_logs();
    assert!(logs.contains("sign-up confirmed"), "logs were captured");
    assert!(!logs.contains(&phone[3..]), "a phone number reached the logs");
    assert!(!logs.contains(&format!("\"{code}\"")) && !logs.contains(&format!(" {code}")), "an OTP reached the logs");
    assert!(!logs.contains(tokens["access_token"].as_str().unwrap()), "a token reached the logs");
}

/// A POST that also returns the `Retry-After` header.
async fn post_with_retry_after(
    api: &Api,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value, Option<u64>) {
    let resp = reqwest::Client::new().post(format!("{}{path}", api.base)).json(&body).send().await.unwrap();
    let retry = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (resp.status().as_u16(), resp.json().await.unwrap(), retry)
}

#[tokio::test]
async fn codes_go_only_to_the_countries_served() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let abroad = "+14155550123"; // well-formed, but not a country the product serves
    for (path, body) in [
        ("/auth/signup", json!({ "phone": abroad, "first_name": "A", "last_name": "B", "user_type": "user" })),
        ("/auth/signup/resend", json!({ "phone": abroad })),
        ("/auth/otp", json!({ "phone": abroad })),
    ] {
        let (status, reply) = api.post(path, body).await;
        assert_eq!((status, reply["error"]["field"].as_str()), (400, Some("phone")), "{path}: {reply}");
    }
    assert_eq!(stack.outbox.count_to(abroad), 0, "no SMS abroad");
    // The countries are the template's parameter: a stack serving +1 too sends there.
    let wider = stack_with(|o| {
        o.parameters.insert("SmsCountryCodes".into(), "+91,+1".into());
    })
    .await;
    let (status, reply) = Api::new(&wider).post("/auth/otp", json!({ "phone": abroad })).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn codes_to_one_number_are_limited_and_say_when_to_retry() {
    let stack = stack_with(|o| {
        o.parameters.insert("SmsLimitPerPhone".into(), "3".into());
    })
    .await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let signup = json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": "user" });
    assert_eq!(api.post("/auth/signup", signup).await.0, 201);
    assert_eq!(api.post("/auth/signup/resend", json!({ "phone": phone })).await.0, 202);
    assert_eq!(api.post("/auth/otp", json!({ "phone": phone })).await.0, 200);
    for path in ["/auth/signup/resend", "/auth/otp"] {
        let (status, reply, retry) = post_with_retry_after(&api, path, json!({ "phone": phone })).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (429, Some("too_many_sms")), "{path}: {reply}");
        assert!(retry.is_some_and(|s| (1..=3600).contains(&s)), "{path}: Retry-After {retry:?}");
    }
    assert_eq!(stack.outbox.count_to(&phone), 2, "sign-up and resend codes only");
    // Another number is not held back by this one.
    assert_eq!(api.post("/auth/otp", json!({ "phone": random_phone() })).await.0, 200);
    // The counter is one item with a TTL.
    use shared::{domain::sms::SmsCounter, store::keys::sms_counter_pk};
    assert!(
        !all_items(&stack).await.iter().any(|i| i["PK"].as_s().unwrap().contains(&phone[3..])),
        "no number in a key"
    );
    let counters: Vec<_> = all_items(&stack)
        .await
        .into_iter()
        .filter(|i| {
            i["PK"].as_s().unwrap() == &sms_counter_pk(&SmsCounter::Phone(shared::Phone::parse(&phone).unwrap()))
        })
        .collect();
    assert_eq!(counters.len(), 1, "{counters:?}");
    assert_eq!(counters[0]["sends"].as_n().unwrap(), "3");
    assert!(counters[0].contains_key("expires_at"));
}

#[tokio::test]
async fn codes_from_one_address_are_limited() {
    let stack = stack_with(|o| {
        o.parameters.insert("SmsLimitPerIp".into(), "3".into());
    })
    .await;
    let api = Api::new(&stack);
    for _ in 0..3 {
        assert_eq!(api.post("/auth/otp", json!({ "phone": random_phone() })).await.0, 200);
    }
    let phone = random_phone();
    let signup = json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": "user" });
    let (status, reply, retry) = post_with_retry_after(&api, "/auth/signup", signup).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (429, Some("too_many_sms")), "{reply}");
    assert!(retry.is_some_and(|s| (1..=3600).contains(&s)), "Retry-After {retry:?}");
    assert_eq!(stack.outbox.count_to(&phone), 0);
}

/// The app's access token cannot rewrite what the backend relies on straight in Cognito
/// (the number behind the phone claim, the names on the stored user): edits go through the API.
#[tokio::test]
async fn the_app_cannot_write_phone_or_names_into_cognito() {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    let stack = stack().await;
    let phone = random_phone();
    sign_up(&stack, &phone, "user").await;
    let tokens = sign_in(&stack, &phone).await;
    let token = tokens["access_token"].as_str().unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk);
    for (name, value) in
        [("phone_number", random_phone()), ("given_name", "Mallory".into()), ("family_name", "M".into())]
    {
        let result = cognito
            .update_user_attributes()
            .access_token(token)
            .user_attributes(AttributeType::builder().name(name).value(value).build().unwrap())
            .send()
            .await;
        let err = result.expect_err(name);
        assert!(err.as_service_error().is_some_and(|e| e.is_not_authorized_exception()), "{name}: {err:?}");
    }
    let user =
        cognito.admin_get_user().user_pool_id(&stack.provisioned.user_pool_id).username(&phone).send().await.unwrap();
    let attr =
        |n: &str| user.user_attributes().iter().find(|a| a.name() == n).and_then(|a| a.value()).map(str::to_owned);
    assert_eq!((attr("phone_number"), attr("given_name")), (Some(phone.clone()), Some("Asha".into())));
}

/// The app client id is public (every token carries it), so anyone can ask Cognito for codes
/// straight, past the routes' counters. Every SMS Cognito sends goes through the custom SMS
/// sender trigger, which sends none to a number past its limit, whatever asked.
#[tokio::test]
async fn codes_asked_of_cognito_straight_are_limited_too() {
    let stack = stack_with(|o| {
        o.parameters.insert("SmsLimitPerPhone".into(), "3".into());
    })
    .await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let signup = json!({ "phone": phone, "first_name": "A", "last_name": "B", "user_type": "user" });
    assert_eq!(api.post("/auth/signup", signup).await.0, 201);
    // Straight at Cognito, with the apps' client id, as an attacker would.
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk);
    let client_id = &stack.provisioned.user_pool_client_id;
    for _ in 0..5 {
        cognito.resend_confirmation_code().client_id(client_id).username(&phone).send().await.unwrap();
    }
    assert_eq!(stack.outbox.count_to(&phone), 3, "the limit, then nothing");
    // Sign-in and password-reset codes of a customer asked of Cognito straight, likewise.
    let customer = random_phone();
    sign_up(&stack, &customer, "user").await;
    for _ in 0..3 {
        use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
        let started = cognito
            .initiate_auth()
            .client_id(client_id)
            .auth_flow(AuthFlowType::UserAuth)
            .auth_parameters("USERNAME", &customer)
            .auth_parameters("PREFERRED_CHALLENGE", "SMS_OTP")
            .send()
            .await;
        started.unwrap();
        cognito.forgot_password().client_id(client_id).username(&customer).send().await.unwrap();
    }
    assert_eq!(stack.outbox.count_to(&customer), 3);
    // Each code sent went out through SNS, one Publish each.
    let published = stack.calls.every().iter().filter(|c| *c == "sns:Publish").count();
    assert_eq!(published, 6, "{:?}", stack.calls.every());
}

/// `code` sealed by the AWS Encryption SDK itself (Python, from .venv), as Cognito seals the
/// codes it hands the custom SMS sender: a KMS master key (the pool's `KMSKeyID`, on this
/// stack's moto) and the encryption context `userpool-id`. `suite` is an algorithm suite id in
/// hex, or `default` (0x0578, signed); `frame_length` 0 is non-framed content.
async fn esdk_encrypt(stack: &infra::LocalStack, code: &str, suite: &str, frame_length: u32) -> Vec<u8> {
    const SCRIPT: &str = "
import base64, sys
import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
key, pool, code, suite, frame_length = sys.argv[1:]
# Format 1.0 suites (older pools) are written only under the policy that forbids commitment.
policy = CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT if suite == '0378' else CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
extra = {} if suite == 'default' else {'algorithm': Algorithm.get_by_id(int(suite, 16))}
sealed, header = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy).encrypt(
    source=code.encode(),
    key_provider=aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key]),
    encryption_context={'userpool-id': pool},
    frame_length=int(frame_length),
    **extra,
)
assert suite == 'default' or header.algorithm.algorithm_id == int(suite, 16)
print(base64.b64encode(sealed).decode())
";
    let mut python = std::process::Command::new(infra::repo_root().join(".venv/bin/python"));
    python
        .args(["-c", SCRIPT, stack.sms_key.as_deref().unwrap(), &stack.provisioned.user_pool_id, code, suite])
        .arg(frame_length.to_string())
        .env("AWS_ENDPOINT_URL", &stack.aws_endpoint)
        .env("AWS_DEFAULT_REGION", "ap-south-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE");
    // Off the test's runtime, which serves the AWS endpoint the SDK calls.
    let out = tokio::task::spawn_blocking(move || python.output()).await.unwrap().expect("the venv's python runs");
    assert!(out.status.success(), "the Encryption SDK: {}", String::from_utf8_lossy(&out.stderr));
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
}

/// The custom SMS sender run as Cognito runs it, on `sealed` for `phone`.
async fn send_sealed(stack: &infra::LocalStack, phone: &str, sealed: &[u8]) -> Result<serde_json::Value, String> {
    use base64::Engine;
    let Some(infra::functions::Handler::Trigger(trigger)) = stack.handler("custom-sms-sender") else {
        panic!("no custom SMS sender")
    };
    trigger(json!({
        "version": "1",
        "region": "ap-south-1",
        "userPoolId": stack.provisioned.user_pool_id,
        "userName": uuid::Uuid::new_v4().to_string(),
        "triggerSource": "CustomSMSSender_SignUp",
        "callerContext": { "awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": stack.provisioned.user_pool_client_id },
        "request": {
            "type": "customSMSSenderRequestV1",
            "code": base64::engine::general_purpose::STANDARD.encode(sealed),
            "clientMetadata": {},
            "userAttributes": { "phone_number": phone, "phone_number_verified": "false" }
        },
        "response": {}
    }))
    .await
}

/// Cognito hands the trigger the code as an AWS Encryption SDK message, not a bare KMS
/// ciphertext: what the SDK itself writes (Cognito's default signed suite, the unsigned
/// committing one, an older pool's format 1.0 suite; one frame, several, or none) reaches the
/// number. The SDK's frames are multiples of 128 bytes, so several frames take a secret longer
/// than a code.
#[tokio::test]
async fn the_sms_sender_opens_codes_sealed_by_the_encryption_sdk() {
    let stack = stack().await;
    let code = || format!("{:06}", rand::random_range(0..1_000_000));
    let cases = [
        ("default", 4096, code()),
        ("0478", 4096, code()),
        ("0378", 4096, code()),
        ("default", 0, code()),
        ("default", 128, format!("{}-", code()).repeat(40)),
    ];
    for (suite, frame_length, secret) in cases {
        let phone = random_phone();
        let sealed = esdk_encrypt(&stack, &secret, suite, frame_length).await;
        let case = format!("suite {suite}, frames of {frame_length}");
        send_sealed(&stack, &phone, &sealed).await.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(stack.outbox.count_to(&phone), 1, "{case}");
        assert_eq!(stack.outbox.latest_text(&phone), Some(format!("Your AstroKiran code is {secret}")), "{case}");
    }
}

/// A message changed on the way (one byte of the encrypted code, or of the signature) fails
/// the invocation, and no SMS goes out.
#[tokio::test]
async fn a_tampered_code_message_sends_nothing() {
    let stack = stack().await;
    let sealed = esdk_encrypt(&stack, "482913", "default", 4096).await;
    // The footer: the signature's length (u16), then the DER signature (a SEQUENCE, 0x30).
    let n = sealed.len();
    let signature_len = (90..110)
        .find(|&l| sealed[n - l - 2..n - l] == (l as u16).to_be_bytes() && sealed[n - l] == 0x30)
        .expect("a P-384 signature at the end");
    // The encrypted code is the last bytes of the body before its 16-byte tag.
    let last_code_byte = n - signature_len - 2 - 16 - 1;
    let control = random_phone();
    send_sealed(&stack, &control, &sealed).await.unwrap();
    assert_eq!(stack.outbox.latest_code(&control).as_deref(), Some("482913"), "the untampered message");
    for (what, at) in [("the encrypted code", last_code_byte), ("the signature", n - 1)] {
        let mut tampered = sealed.clone();
        tampered[at] ^= 0x01;
        let phone = random_phone();
        let sent = send_sealed(&stack, &phone, &tampered).await;
        assert!(sent.is_err(), "{what} flipped: {sent:?}");
        assert_eq!(stack.outbox.count_to(&phone), 0, "{what} flipped: an SMS went out");
    }
}
