//! Creates the table (with its stream), queues, topic, subscriptions, buckets and user pool that
//! `template.yaml` declares, in the emulator.
//! The local stack and the tests both provision through here.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeDataType, ExplicitAuthFlowsType, PasswordPolicyType, SchemaAttributeType, StringAttributeConstraintsType,
    UserPoolPolicyType, UsernameAttributeType, VerifiedAttributeType,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml::Value;

use crate::template::{Template, intrinsic, referenced_id};

pub const ACCOUNT_ID: &str = "123456789012";

/// What was made for each logical id: its `Ref` value and its attributes.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub region: String,
    pub refs: HashMap<String, String>,
    pub attrs: HashMap<(String, String), String>,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
}

impl Provisioned {
    /// What the `!Ref` in property `key` of `props` resolved to.
    fn referenced(&self, props: &Value, key: &str) -> Option<String> {
        props.get(key).and_then(referenced_id).and_then(|r| self.refs.get(&r).cloned())
    }

    pub fn lookup(&self, id: &str, attr: &str) -> Option<String> {
        if attr == "Ref" {
            self.refs.get(id).cloned()
        } else {
            self.attrs.get(&(id.to_owned(), attr.to_owned())).cloned()
        }
    }

    /// A property value: a plain string, or a `!Ref` / `!GetAtt` of something made already.
    fn resolve(&self, v: &Value) -> Option<String> {
        let (tag, target) = intrinsic(v)?;
        match tag.as_str() {
            "" => Some(target),
            "Ref" => self.lookup(&target, "Ref"),
            "GetAtt" => target.split_once('.').and_then(|(id, attr)| self.lookup(id, attr)),
            _ => None,
        }
    }
}

fn str_prop<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn seq<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_sequence).into_iter().flatten()
}

/// A GSI's `Projection` as the template declares it (`ALL` when absent).
fn projection(index: &Value) -> Projection {
    let p = index.get("Projection");
    let kind = p.and_then(|p| str_prop(p, "ProjectionType")).unwrap_or("ALL");
    let attributes: Vec<String> = p
        .map(|p| seq(p, "NonKeyAttributes").filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    Projection::builder()
        .projection_type(ProjectionType::from(kind))
        .set_non_key_attributes((!attributes.is_empty()).then_some(attributes))
        .build()
}

/// Provisions every resource, names prefixed with `prefix` so stacks can share one emulator.
pub async fn provision(sdk: &SdkConfig, template: &Template, prefix: &str) -> Result<Provisioned> {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "ap-south-1".into());
    let mut out = Provisioned { region: region.clone(), ..Default::default() };

    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    for (id, res) in template.of_kind("AWS::DynamoDB::Table") {
        let name = format!("{prefix}-{id}");
        let stream =
            create_table(&dynamo, &name, &res.properties).await.with_context(|| format!("creating table {id}"))?;
        out.attrs.insert((id.clone(), "Arn".into()), format!("arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{name}"));
        if let Some(stream) = stream {
            out.attrs.insert((id.clone(), "StreamArn".into()), stream);
        }
        out.refs.insert(id.clone(), name);
    }

    // Queues without a redrive policy first: they are the dead-letter targets.
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut queues: Vec<_> = template.of_kind("AWS::SQS::Queue").collect();
    queues.sort_by_key(|(_, r)| r.properties.get("RedrivePolicy").is_some());
    for (id, res) in queues {
        let name = format!("{prefix}-{id}");
        let mut request = sqs.create_queue().queue_name(&name);
        for (key, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ] {
            if let Some(v) = res.properties.get(key) {
                let v = crate::template::intrinsic(v).map(|(_, v)| v).unwrap_or_default();
                request = request.attributes(attr, v);
            }
        }
        if let Some(redrive) = res.properties.get("RedrivePolicy") {
            let target = redrive
                .get("deadLetterTargetArn")
                .and_then(referenced_id)
                .ok_or_else(|| anyhow!("{id}: deadLetterTargetArn"))?;
            let arn = out.lookup(&target, "Arn").ok_or_else(|| anyhow!("{id}: DLQ {target} not made yet"))?;
            let max = redrive.get("maxReceiveCount").and_then(Value::as_u64).unwrap_or(5);
            request = request.attributes(
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max }).to_string(),
            );
        }
        let url = request.send().await.with_context(|| format!("creating queue {id}"))?.queue_url.unwrap_or_default();
        out.attrs.insert((id.clone(), "Arn".into()), format!("arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"));
        out.attrs.insert((id.clone(), "QueueName".into()), name);
        out.attrs.insert((id.clone(), "QueueUrl".into()), url.clone());
        out.refs.insert(id.clone(), url);
    }

    // Symmetric keys (the custom SMS sender's): moto encrypts and decrypts with them.
    let kms = aws_sdk_kms::Client::new(sdk);
    for (id, _) in template.of_kind("AWS::KMS::Key") {
        let key = kms.create_key().description(format!("{prefix}-{id}")).send().await;
        let key = key.with_context(|| format!("creating key {id}"))?.key_metadata.ok_or_else(|| anyhow!("{id}"))?;
        out.attrs.insert((id.clone(), "Arn".into()), key.arn.unwrap_or_default());
        out.refs.insert(id.clone(), key.key_id);
    }

    let sns = aws_sdk_sns::Client::new(sdk);
    for (id, res) in template.of_kind("AWS::SNS::Topic") {
        let name = format!("{prefix}-{id}");
        let mut request = sns.create_topic().name(&name);
        if let Some(key) = res.properties.get("KmsMasterKeyId").and_then(|v| out.resolve(v)) {
            request = request.attributes("KmsMasterKeyId", key);
        }
        let arn = request.send().await.with_context(|| format!("creating topic {id}"))?.topic_arn.unwrap_or_default();
        out.attrs.insert((id.clone(), "TopicArn".into()), arn.clone());
        out.attrs.insert((id.clone(), "TopicName".into()), name);
        out.refs.insert(id.clone(), arn);
    }
    // moto delivers to the queues itself, applying each subscription's filter policy and
    // raw delivery, as SNS does.
    for (id, res) in template.of_kind("AWS::SNS::Subscription") {
        let p = &res.properties;
        let resolved = |key: &str| p.get(key).and_then(|v| out.resolve(v)).ok_or_else(|| anyhow!("{id}: {key}"));
        let mut request = sns
            .subscribe()
            .topic_arn(resolved("TopicArn")?)
            .protocol(resolved("Protocol")?)
            .endpoint(resolved("Endpoint")?);
        for key in ["RawMessageDelivery", "FilterPolicyScope"] {
            if let Some(v) = p.get(key).and_then(|v| out.resolve(v)) {
                request = request.attributes(key, v);
            }
        }
        if let Some(policy) = p.get("FilterPolicy") {
            request = request.attributes("FilterPolicy", serde_json::to_string(policy)?);
        }
        let arn = request
            .return_subscription_arn(true)
            .send()
            .await
            .with_context(|| format!("creating subscription {id}"))?
            .subscription_arn
            .unwrap_or_default();
        out.refs.insert(id.clone(), arn);
    }
    // AWS::SQS::QueuePolicy: moto does not enforce queue policies, so none are made.

    // Buckets: made empty and private (moto refuses an anonymous read of a private object).
    // Their encryption, public access block and lifecycle change nothing a test could see in
    // moto, so they are not played; the presigned requests' checks are the local AWS
    // endpoint's (`aws_endpoint::presigned_s3_refusal`).
    let endpoint = sdk.endpoint_url().ok_or_else(|| anyhow!("no emulator endpoint"))?.trim_end_matches('/');
    for (id, _) in template.of_kind("AWS::S3::Bucket") {
        let name = bucket_name(prefix, id);
        let location = format!(
            "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
        );
        let created = reqwest::Client::new().put(format!("{endpoint}/{name}")).body(location).send().await;
        let status = created.with_context(|| format!("creating bucket {id}"))?.status();
        if !status.is_success() {
            return Err(anyhow!("creating bucket {id}: {status}"));
        }
        out.attrs.insert((id.clone(), "Arn".into()), format!("arn:aws:s3:::{name}"));
        out.refs.insert(id.clone(), name);
    }

    // WebSocket APIs are served by the local stack itself (crate::websocket), not by the
    // emulator: an id as API Gateway gives one (10 lower-case letters and digits), for the
    // functions' `!Sub` of their endpoint.
    for (id, _) in template.of_kind("AWS::ApiGatewayV2::Api") {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::rng();
        let api_id: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        out.refs.insert(id.clone(), api_id);
    }

    let cognito = aws_sdk_cognitoidentityprovider::Client::new(sdk);
    for (id, res) in template.of_kind("AWS::Cognito::UserPool") {
        let pool_id = create_user_pool(&cognito, &format!("{prefix}-{id}"), &res.properties)
            .await
            .with_context(|| format!("creating user pool {id}"))?;
        out.attrs.insert(
            (id.clone(), "Arn".into()),
            format!("arn:aws:cognito-idp:{region}:{ACCOUNT_ID}:userpool/{pool_id}"),
        );
        out.refs.insert(id.clone(), pool_id.clone());
        out.user_pool_id = pool_id;
    }
    for (id, res) in template.of_kind("AWS::Cognito::UserPoolClient") {
        let p = &res.properties;
        let pool = out.referenced(p, "UserPoolId").ok_or_else(|| anyhow!("{id}: UserPoolId"))?;
        let flows = seq(p, "ExplicitAuthFlows").filter_map(Value::as_str).map(ExplicitAuthFlowsType::from).collect();
        let strings = |k| seq(p, k).filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>();
        let client = cognito
            .create_user_pool_client()
            .user_pool_id(&pool)
            .client_name(str_prop(p, "ClientName").unwrap_or(id))
            .generate_secret(false)
            .set_explicit_auth_flows(Some(flows))
            .set_read_attributes(Some(strings("ReadAttributes")))
            .set_write_attributes(Some(strings("WriteAttributes")))
            .send()
            .await
            .with_context(|| format!("creating user pool client {id}"))?;
        let client_id = client.user_pool_client().and_then(|c| c.client_id()).unwrap_or_default().to_owned();
        out.refs.insert(id.clone(), client_id.clone());
        // The apps' client is the one they sign in with (USER_AUTH); the template may have
        // others (the backend's sign-up client) that never issue a token.
        if seq(p, "ExplicitAuthFlows").any(|f| f.as_str() == Some("ALLOW_USER_AUTH")) {
            out.user_pool_client_id = client_id;
        }
    }
    for (id, res) in template.of_kind("AWS::Cognito::UserPoolGroup") {
        let p = &res.properties;
        let pool = out.referenced(p, "UserPoolId").ok_or_else(|| anyhow!("{id}: UserPoolId"))?;
        let name = str_prop(p, "GroupName").ok_or_else(|| anyhow!("{id}: GroupName"))?;
        cognito
            .create_group()
            .user_pool_id(pool)
            .group_name(name)
            .send()
            .await
            .with_context(|| format!("creating group {id}"))?;
        out.refs.insert(id.clone(), name.to_owned());
    }
    Ok(out)
}

/// A bucket name S3 accepts (lower case, digits and '-', at most 63 characters) from the
/// stack's prefix and the logical id.
fn bucket_name(prefix: &str, id: &str) -> String {
    let name: String = format!("{prefix}-{id}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.chars().take(63).collect::<String>().trim_matches('-').to_owned()
}

/// Creates a table; returns its stream's ARN when it has one.
async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, p: &Value) -> Result<Option<String>> {
    let key_schema = |v: &Value| -> Result<Vec<KeySchemaElement>> {
        seq(v, "KeySchema")
            .map(|k| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(str_prop(k, "AttributeName").unwrap_or_default())
                    .key_type(KeyType::from(str_prop(k, "KeyType").unwrap_or_default()))
                    .build()?)
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(p)?));
    for a in seq(p, "AttributeDefinitions") {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(str_prop(a, "AttributeName").unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(str_prop(a, "AttributeType").unwrap_or_default()))
                .build()?,
        );
    }
    for g in seq(p, "GlobalSecondaryIndexes") {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_prop(g, "IndexName").unwrap_or_default())
                .set_key_schema(Some(key_schema(g)?))
                .projection(projection(g))
                .build()?,
        );
    }
    if let Some(view) = p.get("StreamSpecification").and_then(|s| str_prop(s, "StreamViewType")) {
        request = request.stream_specification(
            StreamSpecification::builder().stream_enabled(true).stream_view_type(StreamViewType::from(view)).build()?,
        );
    }
    let created = request.send().await?;
    let stream = created.table_description().and_then(|t| t.latest_stream_arn()).map(str::to_owned);
    if let Some(ttl) = p.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(str_prop(ttl, "AttributeName").unwrap_or_default())
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(stream)
}

async fn create_user_pool(client: &aws_sdk_cognitoidentityprovider::Client, name: &str, p: &Value) -> Result<String> {
    let mut schema = Vec::new();
    for s in seq(p, "Schema") {
        let mut attr = SchemaAttributeType::builder()
            .name(str_prop(s, "Name").unwrap_or_default())
            .attribute_data_type(AttributeDataType::from(str_prop(s, "AttributeDataType").unwrap_or("String")))
            .mutable(s.get("Mutable").and_then(Value::as_bool).unwrap_or(true))
            .required(s.get("Required").and_then(Value::as_bool).unwrap_or(false));
        if let Some(c) = s.get("StringAttributeConstraints") {
            attr = attr.string_attribute_constraints(
                StringAttributeConstraintsType::builder()
                    .set_min_length(str_prop(c, "MinLength").map(str::to_owned))
                    .set_max_length(str_prop(c, "MaxLength").map(str::to_owned))
                    .build(),
            );
        }
        schema.push(attr.build());
    }
    let pw = p.get("Policies").and_then(|x| x.get("PasswordPolicy"));
    let flag = |k: &str| pw.and_then(|x| x.get(k)).and_then(Value::as_bool).unwrap_or(false);
    let policy = PasswordPolicyType::builder()
        .minimum_length(pw.and_then(|x| x.get("MinimumLength")).and_then(Value::as_i64).unwrap_or(8) as i32)
        .require_lowercase(flag("RequireLowercase"))
        .require_uppercase(flag("RequireUppercase"))
        .require_numbers(flag("RequireNumbers"))
        .require_symbols(flag("RequireSymbols"))
        .build();
    let output = client
        .create_user_pool()
        .pool_name(name)
        .set_username_attributes(Some(
            seq(p, "UsernameAttributes").filter_map(Value::as_str).map(UsernameAttributeType::from).collect(),
        ))
        .set_auto_verified_attributes(Some(
            seq(p, "AutoVerifiedAttributes").filter_map(Value::as_str).map(VerifiedAttributeType::from).collect(),
        ))
        .set_schema(Some(schema))
        .policies(UserPoolPolicyType::builder().password_policy(policy).build())
        .send()
        .await?;
    Ok(output.user_pool().and_then(|u| u.id()).unwrap_or_default().to_owned())
}
