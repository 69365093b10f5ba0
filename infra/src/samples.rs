//! The AWS-shaped sample events in `events/`, named `<binary>[-case].json`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::LocalStack;

/// One sample: its file name, the binary it is for, and the event.
#[derive(Debug, Clone)]
pub struct Sample {
    pub file: String,
    pub binary: String,
    pub event: Value,
}

/// Every sample, the `post-confirmation` ones first (the trigger creates the user the other
/// samples act as), then by file name. An error names a file no binary matches.
pub fn all(binaries: &[String]) -> Result<Vec<Sample>> {
    let dir = crate::repo_root().join("events");
    let mut by_length = binaries.to_vec();
    by_length.sort_by_key(|b| std::cmp::Reverse(b.len()));
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
        let binary = by_length
            .iter()
            .find(|b| stem == **b || stem.starts_with(&format!("{b}-")))
            .ok_or_else(|| anyhow!("{} names no function of template.yaml", path.display()))?
            .clone();
        let text = std::fs::read_to_string(&path)?;
        let event = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        out.push(Sample { file: path.file_name().unwrap_or_default().to_string_lossy().into(), binary, event });
    }
    out.sort_by_key(|s| (s.binary != "post-confirmation", s.file.clone()));
    Ok(out)
}

/// A Cognito trigger sample as this stack's user pool would send it: Cognito fills in the
/// pool's id and the user's name, and the user exists in the pool before the trigger runs.
/// Other samples are returned unchanged.
pub async fn as_sent_by(stack: &LocalStack, sample: &Sample) -> Result<Value> {
    let mut event = sample.event.clone();
    if event.get("triggerSource").is_none() || event.get("userPoolId").is_none() {
        return Ok(event);
    }
    let phone = event["request"]["userAttributes"]["phone_number"]
        .as_str()
        .ok_or_else(|| anyhow!("{}: no phone_number attribute", sample.file))?
        .to_owned();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk);
    let pool = &stack.provisioned.user_pool_id;
    let username = match cognito.admin_get_user().user_pool_id(pool).username(&phone).send().await {
        Ok(user) => user.username().to_owned(),
        Err(_) => {
            let phone_attr = aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                .name("phone_number")
                .value(&phone)
                .build()?;
            let created = cognito
                .admin_create_user()
                .user_pool_id(pool)
                .username(&phone)
                .user_attributes(phone_attr)
                .send()
                .await
                .context("creating the trigger sample's user")?;
            created.user().and_then(|u| u.username()).unwrap_or_default().to_owned()
        }
    };
    event["userPoolId"] = Value::String(pool.clone());
    event["userName"] = Value::String(username);
    if event["triggerSource"].as_str().is_some_and(|t| t.starts_with("CustomSMSSender_")) {
        // The code sealed with this stack's key, as Cognito would send it.
        event["request"]["code"] = Value::String(stack.encrypt_sms_code("123456").await?);
    }
    Ok(event)
}
