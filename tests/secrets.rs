//! Third-party secrets (Digio, Razorpay) reach the functions from SSM SecureString
//! parameters, read once per cold start, and never through the functions' environment,
//! where anyone allowed to read a function's configuration would see them.

use aws_sdk_ssm::types::ParameterType;
use infra::stubs::razorpay;
use integration_tests::*;

#[tokio::test]
async fn no_function_is_given_a_secret_in_its_environment() {
    let stack = stack().await;
    let digio = &stack.stubs.digio;
    let secrets = [razorpay::KEY_SECRET, razorpay::WEBHOOK_SECRET, &digio.client_secret, &digio.webhook_secret];
    for (binary, env) in &stack.envs {
        for (name, value) in env {
            assert!(!secrets.contains(&value.as_str()), "{binary}: {name} holds a secret in plain text");
        }
    }
    let template = std::fs::read_to_string(infra::repo_root().join("template.yaml")).unwrap();
    assert!(!template.contains("NoEcho"), "a NoEcho parameter is a secret the template hands out as a variable");
}

#[tokio::test]
async fn secrets_come_from_secure_string_parameters_read_once_per_cold_start() {
    let stack = stack().await;
    // The local stack cold-started every function: those with secrets read them in one call each.
    let reads = |calls: Vec<String>| calls.into_iter().filter(|c| c.starts_with("ssm:")).collect::<Vec<_>>();
    assert_eq!(
        reads(stack.calls.every()),
        ["ssm:GetParameters"; 4],
        "top-up, top-up-reconcile, kyc-initiate, digio-webhook"
    );

    let ssm = aws_sdk_ssm::Client::new(&stack.sdk);
    let mut named = 0;
    for (binary, env) in &stack.envs {
        for (name, parameter) in env.iter().filter(|(name, _)| name.ends_with("_SECRET_PARAMETER")) {
            let out = ssm.get_parameter().name(parameter).with_decryption(true).send().await.unwrap();
            let p = out.parameter().unwrap();
            assert_eq!(p.r#type(), Some(&ParameterType::SecureString), "{binary}: {name} = {parameter}");
            named += 1;
        }
    }
    // Razorpay's key and webhook secrets (top-up and the reconciliation), Digio's client and
    // webhook secrets.
    assert_eq!(named, 6);

    // The secrets work: checkout signature and webhooks (Razorpay), Basic auth and signed
    // webhooks (Digio); and nothing reads SSM again while serving.
    stack.calls.clear();
    let (token, _) = topped_up_customer(&stack, "500").await;
    let (status, wallet) = Api::new(&stack).get("/wallet", Some(&token)).await;
    assert_eq!((status, wallet["real_cash"].as_str()), (200, Some("500.00")), "{wallet}");
    approved_astrologer(&stack).await;
    assert_eq!(reads(stack.calls.every()), Vec::<String>::new());
}

#[tokio::test]
async fn a_secret_missing_or_stored_in_plain_text_stops_the_cold_start_naming_it() {
    let stack = stack().await;
    let ssm = aws_sdk_ssm::Client::new(&stack.sdk);
    let plain = format!("/{}/plain-text-secret", stack.table_name());
    ssm.put_parameter()
        .name(&plain)
        .value(razorpay::WEBHOOK_SECRET)
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    for (parameter, problem) in [(plain.as_str(), "must be a SecureString"), ("/nowhere/secret", "does not exist")] {
        let mut env = stack.envs["top-up"].clone();
        env.insert("RAZORPAY_WEBHOOK_SECRET_PARAMETER".into(), parameter.into());
        let Err(e) = infra::functions::build("top-up", &stack.sdk, &env).await else {
            panic!("top-up started with {parameter}")
        };
        let e = format!("{e:#}");
        assert!(e.contains("RAZORPAY_WEBHOOK_SECRET_PARAMETER") && e.contains(problem), "{e}");
    }
}
