//! Every sample in `events/` through its function's real binary over the Lambda Runtime
//! API (the repo's emulator, `infra::runtime_api`), with the environment the template gives
//! it and the local stack's AWS endpoint behind it: what `cargo lambda invoke` and
//! `sam local invoke` do, so the samples and the binaries' `main` cannot break silently.
//! Debug binaries: `cargo build --workspace --bins --tests`, a no-op after scripts/test.sh
//! has built the same selection (the same selection, so features unify the same way).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use infra::runtime_api::{Outcome, Process, lambda_env};
use infra::samples;
use integration_tests::*;
use serde_json::Value;

/// The directory of the workspace's debug binaries, built if they are not yet.
fn built_binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
        .current_dir(infra::repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build failed");
    // target/debug/deps/it-<hash> -> target/debug
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_owned()
}

#[tokio::test]
async fn every_sample_runs_through_its_real_binary() {
    let dir = tokio::task::spawn_blocking(built_binaries).await.unwrap();
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
        o.seed_promotion_rules = true;
    })
    .await;
    let binaries: Vec<String> = stack.functions.iter().map(|(d, _)| d.binary.clone()).collect();
    let samples = samples::all(&binaries).unwrap();
    let mut processes: HashMap<String, Process> = HashMap::new();
    let mut calls: HashMap<String, Vec<String>> = HashMap::new();
    for sample in &samples {
        let name = &sample.file;
        if !processes.contains_key(&sample.binary) {
            let mut env = lambda_env(&sample.binary, 128, &stack.aws_endpoint);
            env.extend(stack.envs[&sample.binary].clone());
            let mut p = Process::spawn(&dir.join(&sample.binary), &env, false).await.unwrap();
            p.ready(Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{}: {e:#}", sample.binary));
            processes.insert(sample.binary.clone(), p);
        }
        let event = samples::as_sent_by(&stack, sample).await.unwrap();
        stack.calls.clear();
        let outcome = processes.get_mut(&sample.binary).unwrap().invoke(&event, Duration::from_secs(30)).await;
        let outcome = outcome.unwrap_or_else(|e| panic!("{name}: {e:#}"));
        calls.insert(name.clone(), stack.calls.every());
        if sample.binary == "connect-authorizer" {
            // Its sample's token is a placeholder: refused as API Gateway expects a refusal
            // (an error named exactly "Unauthorized", which it answers 401).
            let Outcome::Error(error) = &outcome else { panic!("{name}: {outcome:?}") };
            assert_eq!(error["errorMessage"], "Unauthorized", "{name}");
            continue;
        }
        let Outcome::Response(resp) = outcome else { panic!("{name}: {outcome:?}") };
        if let Some(status) = resp.get("statusCode") {
            let status = status.as_u64().unwrap();
            assert!(status < 500, "{name}: {resp}");
            // A WebSocket route answers by PostToConnection: its response may have no body.
            if let Some(body) = resp.get("body").and_then(Value::as_str) {
                let body: Value = serde_json::from_str(body).unwrap();
                assert!(status < 400 || body["error"]["code"].is_string(), "{name}: {body}");
            }
        } else if event.get("triggerSource").is_some() {
            assert_eq!(resp, event, "{name}: a Cognito trigger answers with its event");
        } else if let Some(failures) = resp.get("batchItemFailures") {
            assert_eq!(failures.as_array().map(Vec::len), Some(0), "{name}: {resp}");
        }
    }
    // Round trips are deterministic: the read routes make one DynamoDB call each, and the
    // trigger one transaction plus the group.
    let one = |file: &str| calls[file].clone();
    assert_eq!(one("profile-get-me.json"), ["dynamodb:Query"]);
    assert_eq!(one("post-confirmation.json"), ["dynamodb:TransactWriteItems", "cognito-idp:AdminAddUserToGroup"]);
}
