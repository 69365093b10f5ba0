//! Third-party secrets (Digio, Razorpay, Agora) reach the functions from SSM SecureString
//! parameters, read once per sandbox by the first request that needs them, and never through the functions' environment,
//! where anyone allowed to read a function's configuration would see them.

use aws_sdk_ssm::types::ParameterType;
use infra::stubs::razorpay;
use integration_tests::*;

#[tokio::test]
async fn no_function_is_given_a_secret_in_its_environment() {
    let stack = stack().await;
    let digio = &stack.stubs.digio;
    let secrets = [
        razorpay::KEY_SECRET,
        razorpay::WEBHOOK_SECRET,
        &digio.client_secret,
        &digio.webhook_secret,
        infra::stubs::AGORA_APP_CERTIFICATE,
        &stack.stubs.agora.ncs_secret,
    ];
    for (binary, env) in &stack.envs {
        for (name, value) in env {
            assert!(!secrets.contains(&value.as_str()), "{binary}: {name} holds a secret in plain text");
        }
    }
    let template = std::fs::read_to_string(infra::repo_root().join("template.yaml")).unwrap();
    assert!(!template.contains("NoEcho"), "a NoEcho parameter is a secret the template hands out as a variable");
}

#[tokio::test]
async fn secrets_come_from_secure_string_parameters_read_once_per_sandbox_by_the_first_request_needing_them() {
    let stack = stack().await;
    let reads = |calls: Vec<String>| calls.into_iter().filter(|c| c.starts_with("ssm:")).collect::<Vec<_>>();
    // The local stack cold-started every function: none read a secret before a request needed it.
    assert_eq!(reads(stack.calls.every()), Vec::<String>::new(), "a cold start read SSM");

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
    // Razorpay's key and webhook secrets (top-up, the reconciliation, and profile for a
    // deleted account's refunds), Digio's client and webhook secrets, Agora's App
    // Certificate and NCS secret.
    assert_eq!(named, 10);

    // The secrets work: checkout signature and webhooks (Razorpay), Basic auth and signed
    // webhooks (Digio), each function reading its own once, in one call.
    stack.calls.clear();
    let (token, _) = topped_up_customer(&stack, "500").await;
    let (status, wallet) = Api::new(&stack).get("/wallet", Some(&token)).await;
    assert_eq!((status, wallet["real_cash"].as_str()), (200, Some("500.00")), "{wallet}");
    approved_astrologer(&stack).await;
    assert_eq!(reads(stack.calls.every()), ["ssm:GetParameters"; 3], "top-up, kyc-initiate, digio-webhook");

    // And never again while the sandbox lives.
    stack.calls.clear();
    topped_up_customer(&stack, "300").await;
    approved_astrologer(&stack).await;
    assert_eq!(reads(stack.calls.every()), Vec::<String>::new());
}

#[tokio::test]
async fn a_secret_missing_or_in_plain_text_fails_the_requests_needing_it_naming_it_until_it_is_fixed() {
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
    let missing = format!("/{}/not-yet-stored", stack.table_name());
    for (parameter, problem) in [(plain.as_str(), "must be a SecureString"), (missing.as_str(), "does not exist")] {
        let mut env = stack.envs["top-up"].clone();
        env.insert("RAZORPAY_WEBHOOK_SECRET_PARAMETER".into(), parameter.into());
        let app = top_up::App::from_env(&stack.sdk, &env).expect("the cold start reads no secret");
        let Err(e) = app.razorpay.try_get().await else { panic!("top-up read a secret from {parameter}") };
        let e = e.to_string();
        assert!(e.contains("RAZORPAY_WEBHOOK_SECRET_PARAMETER") && e.contains(problem), "{e}");
        assert_eq!(app.razorpay.get().await.unwrap_err().status, 500);

        // A failed read is not kept: once the parameter is stored, the next request succeeds.
        ssm.put_parameter()
            .name(parameter)
            .value(razorpay::WEBHOOK_SECRET)
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
        let razorpay = app.razorpay.try_get().await.expect("the secret, now stored");
        assert_eq!(razorpay.webhook_secret, razorpay::WEBHOOK_SECRET);
    }

    // A variable the template should set but does not still stops the cold start, naming it.
    let mut env = stack.envs["top-up"].clone();
    env.remove("RAZORPAY_WEBHOOK_SECRET_PARAMETER");
    let Err(e) = top_up::App::from_env(&stack.sdk, &env) else { panic!("top-up started without its variable") };
    assert!(e.to_string().contains("RAZORPAY_WEBHOOK_SECRET_PARAMETER"), "{e}");
}
