//! The PostConfirmation trigger: creates everything once, however often Cognito runs it,
//! puts the user in the group of their role, and returns the event it was given.

use aws_sdk_cognitoidentityprovider::Client as Cognito;
use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;
use infra::functions::Handler;
use integration_tests::*;
use serde_json::{Value, json};

/// A user created in the stack's pool, and the PostConfirmation event Cognito would send.
async fn confirmed_user(stack: &LocalStack, role: &str, source: &str) -> (Value, String) {
    let cognito = Cognito::new(&stack.sdk);
    let phone = random_phone();
    let created = cognito
        .admin_create_user()
        .user_pool_id(&stack.provisioned.user_pool_id)
        .username(&phone)
        .user_attributes(attr("phone_number", &phone))
        .user_attributes(attr("given_name", "Ravi"))
        .user_attributes(attr("family_name", "Shastri"))
        .user_attributes(attr("custom:user_type", role))
        .send()
        .await
        .unwrap();
    let user = created.user().unwrap();
    let sub = user.attributes().iter().find(|a| a.name() == "sub").and_then(|a| a.value()).unwrap().to_owned();
    let event = json!({
        "version": "1",
        "region": "ap-south-1",
        "userPoolId": stack.provisioned.user_pool_id,
        "userName": user.username().unwrap(),
        "triggerSource": source,
        "callerContext": { "awsSdkVersion": "aws-sdk-js-3", "clientId": stack.provisioned.user_pool_client_id },
        "request": { "userAttributes": {
            "sub": sub, "cognito:user_status": "CONFIRMED", "phone_number_verified": "true",
            "phone_number": phone, "given_name": "Ravi", "family_name": "Shastri", "custom:user_type": role,
        } },
        "response": {},
    });
    (event, sub)
}

fn attr(name: &str, value: &str) -> aws_sdk_cognitoidentityprovider::types::AttributeType {
    aws_sdk_cognitoidentityprovider::types::AttributeType::builder().name(name).value(value).build().unwrap()
}

async fn run(stack: &LocalStack, event: Value) -> Result<Value, String> {
    let Some(Handler::Trigger(trigger)) = stack.handler("post-confirmation") else { panic!("no trigger") };
    trigger(event).await
}

async fn groups_of(stack: &LocalStack, username: &str) -> Vec<String> {
    Cognito::new(&stack.sdk)
        .admin_list_groups_for_user()
        .user_pool_id(&stack.provisioned.user_pool_id)
        .username(username)
        .send()
        .await
        .unwrap()
        .groups()
        .iter()
        .filter_map(|g| g.group_name().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn reruns_create_nothing_twice_and_return_the_event() {
    let stack = stack().await;
    let (event, sub) = confirmed_user(&stack, "astrologer", "PostConfirmation_ConfirmSignUp").await;
    for source in
        ["PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmForgotPassword"]
    {
        let mut again = event.clone();
        again["triggerSource"] = json!(source);
        assert_eq!(run(&stack, again.clone()).await.unwrap(), again, "returns the event unchanged");
    }
    let items = all_items(&stack).await;
    for sk in ["PROFILE", "WALLET", "ASTROLOGER", "PHONE"] {
        assert_eq!(items_with_sk(&items, sk), 1, "{sk}");
    }
    assert_eq!(groups_of(&stack, event["userName"].as_str().unwrap()).await, vec!["astrologer"]);
    // One event in the outbox, so one welcome, however often the trigger ran.
    assert_eq!(items_with_sk(&items, "OUTBOX"), 1);
    assert_eq!(settled_inbox_count(&stack, &sub, "UserRegistered").await, 1, "one welcome");
}

#[tokio::test]
async fn concurrent_runs_create_one_of_each() {
    let stack = stack().await;
    let (event, _) = confirmed_user(&stack, "user", "PostConfirmation_ConfirmSignUp").await;
    let results = futures_join(&stack, &event, 4).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let items = all_items(&stack).await;
    assert_eq!(
        (items_with_sk(&items, "PROFILE"), items_with_sk(&items, "WALLET"), items_with_sk(&items, "ASTROLOGER")),
        (1, 1, 0)
    );
    assert_eq!(groups_of(&stack, event["userName"].as_str().unwrap()).await, vec!["user"]);
}

async fn futures_join(stack: &LocalStack, event: &Value, n: usize) -> Vec<Result<Value, String>> {
    let Some(Handler::Trigger(trigger)) = stack.handler("post-confirmation") else { panic!() };
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(trigger(event.clone()))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn admin_role_is_refused_and_nothing_is_written() {
    let stack = stack().await;
    let (event, _) = confirmed_user(&stack, "admin", "PostConfirmation_ConfirmSignUp").await;
    let error = run(&stack, event.clone()).await.unwrap_err();
    assert!(error.contains("admin"), "{error}");
    assert!(all_items(&stack).await.is_empty());
    assert!(groups_of(&stack, event["userName"].as_str().unwrap()).await.is_empty());
}

#[tokio::test]
async fn malformed_events_fail_without_writing() {
    let stack = stack().await;
    let (event, _) = confirmed_user(&stack, "user", "PostConfirmation_ConfirmSignUp").await;
    let mut no_sub = event.clone();
    no_sub["request"]["userAttributes"].as_object_mut().unwrap().remove("sub");
    let mut bad_phone = event.clone();
    bad_phone["request"]["userAttributes"]["phone_number"] = json!("12345");
    for broken in [no_sub, bad_phone, json!({}), json!({ "request": "x" })] {
        assert!(run(&stack, broken).await.is_err());
    }
    assert!(all_items(&stack).await.is_empty());
}

#[tokio::test]
async fn a_phone_number_cannot_belong_to_two_users() {
    let stack = stack().await;
    let (first, _) = confirmed_user(&stack, "user", "PostConfirmation_ConfirmSignUp").await;
    run(&stack, first.clone()).await.unwrap();
    let (mut second, _) = confirmed_user(&stack, "user", "PostConfirmation_ConfirmSignUp").await;
    second["request"]["userAttributes"]["phone_number"] = first["request"]["userAttributes"]["phone_number"].clone();
    assert!(run(&stack, second).await.is_err());
    assert_eq!(
        items_with_sk(&all_items(&stack).await, "PROFILE"),
        1,
        "the transaction wrote nothing for the second user"
    );
}

/// A fault no retry gets past (the SDK retries throttling and 5xx by itself).
fn refused() -> infra::aws_endpoint::Fault {
    infra::aws_endpoint::Fault::new(400, "ValidationException", "injected")
}

/// Cognito confirmed the number, then the trigger failed (the store refused, or the group
/// could not be set): the sign-up still answers confirmed, and the first signed-in call
/// finishes the setup, once, however many such calls race.
#[tokio::test]
async fn a_setup_the_trigger_left_unfinished_is_finished_by_the_first_signed_in_call() {
    let stack = stack().await;
    let api = Api::new(&stack);
    // The store's fault goes last: there the racing calls' losing transaction is cancelled,
    // and moto undoes a cancelled transaction by putting back a copy of the table, whose
    // stream no longer reaches the relay; later welcomes would never arrive (moto only).
    for (role, operation) in [("astrologer", "AdminAddUserToGroup"), ("user", "TransactWriteItems")] {
        let phone = random_phone();
        let (status, signed_up) = api
            .post("/auth/signup", json!({ "phone": phone, "first_name": "Ravi", "last_name": "S", "user_type": role }))
            .await;
        assert_eq!(status, 201, "{signed_up}");
        let sub = signed_up["user_id"].as_str().unwrap().to_owned();
        stack.faults.fail_next(operation, 1, refused());
        let code = stack.outbox.latest_code(&phone).unwrap();
        let (status, body) = api.post("/auth/signup/confirm", json!({ "phone": phone, "code": code })).await;
        assert_eq!((status, stack.faults.injected(operation)), (200, 1), "{role}: {body}");

        let tokens = sign_in(&stack, &phone).await;
        let token = tokens["access_token"].as_str().unwrap();
        let (first, second) = tokio::join!(api.get("/me", Some(token)), api.get("/me", Some(token)));
        for (status, me) in [first, second] {
            assert_eq!((status, me["role"].as_str()), (200, Some(role)), "{role}: {me}");
            assert_eq!(me["wallet"]["total"], "0.00");
        }
        let mine: Vec<_> =
            all_items(&stack).await.into_iter().filter(|i| i["PK"].as_s().unwrap() == &format!("USER#{sub}")).collect();
        assert_eq!(items_with_sk(&mine, "PROFILE") + items_with_sk(&mine, "WALLET"), 2, "{role}");
        let username = Cognito::new(&stack.sdk)
            .admin_get_user()
            .user_pool_id(&stack.provisioned.user_pool_id)
            .username(&phone)
            .send()
            .await
            .unwrap()
            .username()
            .to_owned();
        assert_eq!(groups_of(&stack, &username).await, vec![role]);
        assert_eq!(settled_inbox_count(&stack, &sub, "UserRegistered").await, 1, "{role}: one welcome");
    }
}

/// Staff accounts an operator made (role `admin`, or no sign-up role at all) reset their
/// password like anyone: the trigger lets them through unchanged and writes nothing. Sign-up
/// still can never make one.
#[tokio::test]
async fn staff_accounts_pass_a_password_reset_unchanged() {
    let stack = stack().await;
    let (event, _) = confirmed_user(&stack, "admin", "PostConfirmation_ConfirmForgotPassword").await;
    let username = event["userName"].as_str().unwrap();
    Cognito::new(&stack.sdk)
        .admin_add_user_to_group()
        .user_pool_id(&stack.provisioned.user_pool_id)
        .username(username)
        .group_name("admin")
        .send()
        .await
        .unwrap();
    let mut no_role = event.clone();
    no_role["request"]["userAttributes"].as_object_mut().unwrap().remove("custom:user_type");
    for reset in [event.clone(), no_role] {
        assert_eq!(run(&stack, reset.clone()).await.unwrap(), reset, "returned unchanged");
    }
    assert_eq!(written_items(&stack).await, 0);
    assert_eq!(groups_of(&stack, username).await, vec!["admin"]);

    let mut sign_up = event.clone();
    sign_up["triggerSource"] = json!("PostConfirmation_ConfirmSignUp");
    assert!(run(&stack, sign_up).await.unwrap_err().contains("admin"));
    assert_eq!(written_items(&stack).await, 0);
}

/// The number's claim is held by an account Cognito no longer has (deleted, or the number
/// moved on to a new owner): Cognito has just confirmed the number for this user, so the
/// claim moves to them and the setup completes (the old account's record stays as it was).
#[tokio::test]
async fn a_stale_phone_claim_moves_to_the_user_cognito_confirmed() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let phone = random_phone();
    let gone = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .put_item()
        .table_name(stack.table_name())
        .item("PK", AttributeValue::S(format!("PHONE#{phone}")))
        .item("SK", AttributeValue::S("PHONE".into()))
        .item("user_id", AttributeValue::S(gone.into()))
        .send()
        .await
        .unwrap();
    let signed_up = sign_up(&stack, &phone, "user").await;
    let tokens = sign_in(&stack, &phone).await;
    let (status, me) = api.get("/me", tokens["access_token"].as_str()).await;
    assert_eq!((status, me["user"]["user_id"].clone()), (200, signed_up["user_id"].clone()), "{me}");
    let claim =
        all_items(&stack).await.into_iter().find(|i| i["PK"].as_s().unwrap() == &format!("PHONE#{phone}")).unwrap();
    assert_eq!(claim["user_id"].as_s().unwrap(), signed_up["user_id"].as_str().unwrap());
}
