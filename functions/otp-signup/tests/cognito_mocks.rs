//! Cognito answers moto cannot give (expired codes, throttling, SMS failures, outages),
//! mocked with aws-smithy-mocks, through the real handler.

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::ErrorMetadata;
use aws_sdk_cognitoidentityprovider::operation::confirm_sign_up::ConfirmSignUpError;
use aws_sdk_cognitoidentityprovider::operation::initiate_auth::{InitiateAuthError, InitiateAuthOutput};
use aws_sdk_cognitoidentityprovider::operation::respond_to_auth_challenge::RespondToAuthChallengeError;
use aws_sdk_cognitoidentityprovider::operation::sign_up::SignUpError;
use aws_sdk_cognitoidentityprovider::types::ChallengeNameType;
use aws_sdk_cognitoidentityprovider::types::error::*;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use otp_signup::{App, handle};
use serde_json::{Value, json};
use shared::http::{Body, Request};

/// A modeled error carrying its code, as the SDK deserialises it from Cognito's reply.
macro_rules! err {
    ($op:ident, $variant:ident) => {
        $op::$variant($variant::builder().meta(ErrorMetadata::builder().code(stringify!($variant)).build()).build())
    };
}

/// The request lambda_http makes of API Gateway's event for `route`.
fn request(route: &str, body: Value) -> Request {
    let (method, path) = route.split_once(' ').unwrap();
    let event = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "content-type": "application/json" },
        "requestContext": { "routeKey": route, "stage": "$default", "http": { "method": method, "path": path } },
        "body": body.to_string(),
        "isBase64Encoded": false,
    });
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// A store whose SMS counters always have room (the limits are the integration tests').
fn store() -> shared::store::Store {
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    let counted = mock!(aws_sdk_dynamodb::Client::update_item).then_output(|| UpdateItemOutput::builder().build());
    shared::store::Store::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&counted]), "table")
}

async fn call(cognito: Client, route: &str, body: Value) -> (i64, Value) {
    let vars: std::collections::HashMap<String, String> = [
        ("SMS_COUNTRY_CODES", "+91"),
        ("SMS_LIMIT_PER_PHONE", "5"),
        ("SMS_LIMIT_PER_IP", "50"),
        ("SMS_LIMIT_WINDOW_SECONDS", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sms = shared::domain::sms::SmsPolicy::from_env(&vars).unwrap();
    let app = App {
        cognito,
        client_id: "client".into(),
        sign_up_client_id: "sign-up".into(),
        user_pool_id: "pool".into(),
        store: store(),
        sms,
    };
    let resp = handle(&app, request(route, body)).await;
    let Body::Text(text) = resp.body() else { panic!("no body") };
    (i64::from(resp.status().as_u16()), serde_json::from_str(text).unwrap())
}

/// An error Cognito returns, and the status and code the app should see.
type Case<E> = (fn() -> E, i64, &'static str);

const PHONE: &str = "+919876543210";

#[tokio::test]
async fn sign_up_errors() {
    let signup = json!({ "phone": PHONE, "first_name": "A", "last_name": "B", "user_type": "user" });
    let cases: Vec<Case<SignUpError>> = vec![
        (|| err!(SignUpError, CodeDeliveryFailureException), 502, "sms_delivery_failed"),
        (|| err!(SignUpError, TooManyRequestsException), 429, "too_many_requests"),
        (|| err!(SignUpError, LimitExceededException), 429, "too_many_requests"),
        (|| err!(SignUpError, InvalidParameterException), 400, "invalid_request"),
    ];
    for (error, status, code) in cases {
        let rule = mock!(Client::sign_up).then_error(error);
        let client = mock_client!(aws_sdk_cognitoidentityprovider, RuleMode::Sequential, [&rule]);
        let (got, body) = call(client, "POST /auth/signup", signup.clone()).await;
        assert_eq!((got, body["error"]["code"].as_str().unwrap()), (status, code), "{body}");
    }
}

#[tokio::test]
async fn confirm_errors() {
    let confirm = json!({ "phone": PHONE, "code": "123456" });
    let cases: Vec<Case<ConfirmSignUpError>> = vec![
        (|| err!(ConfirmSignUpError, ExpiredCodeException), 400, "code_mismatch"),
        (|| err!(ConfirmSignUpError, CodeMismatchException), 400, "code_mismatch"),
        (|| err!(ConfirmSignUpError, TooManyFailedAttemptsException), 429, "too_many_attempts"),
        (|| err!(ConfirmSignUpError, UserNotFoundException), 400, "code_mismatch"),
        (|| err!(ConfirmSignUpError, NotAuthorizedException), 400, "code_mismatch"),
    ];
    for (error, status, code) in cases {
        let rule = mock!(Client::confirm_sign_up).then_error(error);
        let client = mock_client!(aws_sdk_cognitoidentityprovider, RuleMode::Sequential, [&rule]);
        let (got, body) = call(client, "POST /auth/signup/confirm", confirm.clone()).await;
        assert_eq!((got, body["error"]["code"].as_str().unwrap()), (status, code), "{body}");
    }
}

#[tokio::test]
async fn unknown_number_gets_a_challenge_shaped_like_a_real_one() {
    let real = mock!(Client::initiate_auth).then_output(|| {
        InitiateAuthOutput::builder().challenge_name(ChallengeNameType::SmsOtp).session("AYABe-real-session").build()
    });
    let (s1, known) =
        call(mock_client!(aws_sdk_cognitoidentityprovider, [&real]), "POST /auth/otp", json!({ "phone": PHONE })).await;
    for error in [
        (|| err!(InitiateAuthError, UserNotFoundException)) as fn() -> InitiateAuthError,
        (|| err!(InitiateAuthError, UserNotConfirmedException)) as fn() -> InitiateAuthError,
        (|| err!(InitiateAuthError, NotAuthorizedException)) as fn() -> InitiateAuthError,
    ] {
        let rule = mock!(Client::initiate_auth).then_error(error);
        let (s2, unknown) =
            call(mock_client!(aws_sdk_cognitoidentityprovider, [&rule]), "POST /auth/otp", json!({ "phone": PHONE }))
                .await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(known["code"], unknown["code"]);
        assert_eq!(known["challenge"], unknown["challenge"]);
        assert!(unknown["session"].as_str().unwrap().len() > 100);
    }
}

#[tokio::test]
async fn every_failed_verification_looks_the_same() {
    let verify = json!({ "phone": PHONE, "session": "AYABe-session", "code": "123456" });
    let mut bodies = Vec::new();
    for error in [
        (|| err!(RespondToAuthChallengeError, CodeMismatchException)) as fn() -> RespondToAuthChallengeError,
        (|| err!(RespondToAuthChallengeError, ExpiredCodeException)) as fn() -> RespondToAuthChallengeError,
        (|| err!(RespondToAuthChallengeError, NotAuthorizedException)) as fn() -> RespondToAuthChallengeError,
        (|| err!(RespondToAuthChallengeError, UserNotFoundException)) as fn() -> RespondToAuthChallengeError,
    ] {
        let rule = mock!(Client::respond_to_auth_challenge).then_error(error);
        bodies.push(
            call(mock_client!(aws_sdk_cognitoidentityprovider, [&rule]), "POST /auth/otp/verify", verify.clone()).await,
        );
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    assert_eq!(bodies[0].0, 401);

    let throttled = mock!(Client::respond_to_auth_challenge)
        .then_error(|| err!(RespondToAuthChallengeError, TooManyRequestsException));
    let (status, body) =
        call(mock_client!(aws_sdk_cognitoidentityprovider, [&throttled]), "POST /auth/otp/verify", verify).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (429, "too_many_requests"));
}

#[tokio::test]
async fn cognito_unreachable_is_a_503_on_every_route() {
    // A closed loopback port: the SDK's dispatch fails fast, as in an outage.
    let sdk = shared::config::sdk_loader()
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_sdk_cognitoidentityprovider::config::Region::new("ap-south-1"))
        .credentials_provider(aws_sdk_cognitoidentityprovider::config::Credentials::new("a", "b", None, None, "test"))
        .load()
        .await;
    let client = Client::new(&sdk);
    for (route, body) in [
        ("POST /auth/signup", json!({ "phone": PHONE, "first_name": "A", "last_name": "B", "user_type": "user" })),
        ("POST /auth/signup/confirm", json!({ "phone": PHONE, "code": "123456" })),
        ("POST /auth/signup/resend", json!({ "phone": PHONE })),
        ("POST /auth/otp", json!({ "phone": PHONE })),
        ("POST /auth/otp/verify", json!({ "phone": PHONE, "session": "s", "code": "123456" })),
    ] {
        let (status, reply) = call(client.clone(), route, body).await;
        assert_eq!((status, reply["error"]["code"].as_str().unwrap()), (503, "auth_unavailable"), "{route}");
    }
}

#[tokio::test]
async fn unknown_route_is_a_404() {
    let rule = mock!(Client::sign_up).then_error(|| err!(SignUpError, UsernameExistsException));
    let (status, body) =
        call(mock_client!(aws_sdk_cognitoidentityprovider, [&rule]), "DELETE /auth/signup", json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (404, "no_route"));
}

#[tokio::test]
async fn a_taken_number_is_answered_as_a_new_sign_up() {
    use aws_sdk_cognitoidentityprovider::operation::admin_delete_user::AdminDeleteUserOutput;
    use aws_sdk_cognitoidentityprovider::operation::admin_get_user::AdminGetUserOutput;
    use aws_sdk_cognitoidentityprovider::operation::sign_up::SignUpOutput;
    use aws_sdk_cognitoidentityprovider::types::UserStatusType;
    let signup = json!({ "phone": PHONE, "first_name": "A", "last_name": "B", "user_type": "user" });
    let fresh = mock!(Client::sign_up).then_output(|| {
        SignUpOutput::builder().user_sub("0b7f5e1c-6a3d-4e2f-9c1b-2d3e4f5a6b7c").user_confirmed(false).build().unwrap()
    });
    let (status, new) =
        call(mock_client!(aws_sdk_cognitoidentityprovider, [&fresh]), "POST /auth/signup", signup.clone()).await;
    assert_eq!(status, 201, "{new}");
    // Taken by a customer: left alone (not deleted, no code), and nothing says so.
    let taken = mock!(Client::sign_up).then_error(|| err!(SignUpError, UsernameExistsException));
    let confirmed = mock!(Client::admin_get_user).then_output(|| {
        AdminGetUserOutput::builder().username(PHONE).user_status(UserStatusType::Confirmed).build().unwrap()
    });
    let delete = mock!(Client::admin_delete_user).then_output(|| AdminDeleteUserOutput::builder().build());
    let client = mock_client!(aws_sdk_cognitoidentityprovider, RuleMode::MatchAny, [&taken, &confirmed, &delete]);
    let (status, old) = call(client, "POST /auth/signup", signup).await;
    assert_eq!(status, 201, "{old}");
    assert_eq!((taken.num_calls(), confirmed.num_calls(), delete.num_calls()), (1, 1, 0));
    let without_id = |mut v: Value| {
        v["user_id"] = json!(null);
        v
    };
    assert_ne!(old["user_id"], new["user_id"]);
    assert_eq!(old["user_id"].as_str().unwrap().len(), 36);
    assert_eq!(without_id(old), without_id(new));
}
