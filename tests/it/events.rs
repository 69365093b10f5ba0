//! Every sample in `events/` runs through its function's handler, so
//! `sam local invoke <Function> -e events/<file>.json` never breaks silently. HTTP samples
//! go through lambda_http's own event parsing and response conversion, as on AWS.

use std::path::PathBuf;

use aws_lambda_events::encodings::Body;
use infra::functions::Handler;
use infra::gateway::invoke;
use integration_tests::*;
use serde_json::Value;

/// `events/<binary>[-case].json`, longest binary name first.
fn samples(binaries: &[String]) -> Vec<(PathBuf, String)> {
    let dir = infra::repo_root().join("events");
    let mut by_length = binaries.to_vec();
    by_length.sort_by_key(|b| std::cmp::Reverse(b.len()));
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            let binary = by_length
                .iter()
                .find(|b| stem == **b || stem.starts_with(&format!("{b}-")))
                .unwrap_or_else(|| panic!("{} names no function of template.yaml", p.display()))
                .clone();
            (p, binary)
        })
        .collect();
    // The trigger creates the user the other samples act as.
    out.sort_by_key(|(p, b)| (b != "post-confirmation", p.clone()));
    out
}

#[tokio::test]
async fn every_function_has_a_sample_and_every_sample_runs() {
    let stack = stack().await;
    let binaries: Vec<String> = stack.functions.iter().map(|(d, _)| d.binary.clone()).collect();
    let samples = samples(&binaries);
    for b in &binaries {
        assert!(samples.iter().any(|(_, s)| s == b), "function {b} has no sample in events/");
    }

    for (path, binary) in samples {
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match stack.handler(&binary).unwrap() {
            Handler::Http(h) => {
                let resp = invoke(h, &event).await.unwrap_or_else(|e| panic!("{name}: {e:#}"));
                assert!(resp.status_code < 500, "{name}: {}", resp.status_code);
                let Some(Body::Text(text)) = resp.body else { panic!("{name}: no body") };
                let body: Value = serde_json::from_str(&text).unwrap();
                if resp.status_code >= 400 {
                    assert!(body["error"]["code"].is_string(), "{name}: {body}");
                }
            }
            Handler::Trigger(h) => {
                // Pointed at this stack's pool, with the user Cognito would have.
                let sample = infra::samples::Sample { file: name.clone(), binary: binary.clone(), event };
                let event = infra::samples::as_sent_by(&stack, &sample).await.unwrap();
                assert_eq!(h(event.clone()).await.unwrap(), event, "{name}");
            }
            Handler::Scheduled(h) => {
                let report = h(event).await.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(report.is_object(), "{name}: {report}");
            }
            Handler::Stream(h) => {
                let resp = h(serde_json::from_value(event).unwrap()).await;
                assert!(resp.batch_item_failures.is_empty(), "{name}: {:?}", resp.batch_item_failures);
            }
            Handler::Sqs(h) => {
                let resp = h(serde_json::from_value(event).unwrap()).await;
                assert!(resp.batch_item_failures.is_empty(), "{name}: {:?}", resp.batch_item_failures);
            }
            Handler::Authorizer(h) => {
                // The sample's token was signed by no pool of this stack: refused, not failed.
                let refused = h(serde_json::from_value(event).unwrap()).await;
                assert_eq!(refused.err().as_deref(), Some("Unauthorized"), "{name}");
            }
            Handler::WebSocket(h) => {
                let resp = h(serde_json::from_value(event).unwrap()).await;
                assert!(resp.status_code < 500, "{name}: {}", resp.status_code);
            }
        }
    }
    // The profile sample acts as the user the trigger sample created.
    let me = std::fs::read_to_string(infra::repo_root().join("events/profile-get-me.json")).unwrap();
    let Handler::Http(profile) = stack.handler("profile").unwrap() else { panic!() };
    let resp = invoke(profile, &serde_json::from_str(&me).unwrap()).await.unwrap();
    assert_eq!(resp.status_code, 200);

    // The top-up samples act as that user too, against the local Razorpay stand-in, whose
    // webhook secret signed the webhook sample.
    let Handler::Http(top_up) = stack.handler("top-up").unwrap() else { panic!() };
    for (file, status) in [
        ("top-up-get-wallet.json", 200),
        ("top-up-list-transactions.json", 200),
        ("top-up-create.json", 201),
        ("top-up-razorpay-webhook.json", 200),
        // A refund of a payment on an order that is not ours: acknowledged, nothing changes.
        ("top-up-razorpay-refund.json", 200),
        ("top-up-confirm.json", 404),
    ] {
        let sample = std::fs::read_to_string(infra::repo_root().join("events").join(file)).unwrap();
        let resp = invoke(top_up, &serde_json::from_str(&sample).unwrap()).await.unwrap();
        assert_eq!(resp.status_code, status, "{file}: {:?}", resp.body);
    }

    // The operations samples act as staff on that user's wallet and on the rules, where the
    // sample's rule, created by the run above, now overlaps itself.
    let Handler::Http(operations) = stack.handler("operations").unwrap() else { panic!() };
    for (file, status) in [("operations-user-wallet.json", 200), ("operations-create-promotion-rule.json", 409)] {
        let sample = std::fs::read_to_string(infra::repo_root().join("events").join(file)).unwrap();
        let resp = invoke(operations, &serde_json::from_str(&sample).unwrap()).await.unwrap();
        assert_eq!(resp.status_code, status, "{file}: {:?}", resp.body);
    }
}
