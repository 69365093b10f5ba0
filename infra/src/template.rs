//! Reads `template.yaml`: the one description of the stack that both AWS (through SAM)
//! and the local stack build from, so the two cannot drift.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_yaml::Value;

/// The resources the local stack builds, in template order.
#[derive(Debug, Clone)]
pub struct Template {
    pub resources: BTreeMap<String, Resource>,
    pub globals_env: BTreeMap<String, Value>,
    /// `Parameters` and their defaults (`None`: no default, the deployer must give one).
    pub parameters: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
}

/// A function as the template defines it.
#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// Global and own `Environment.Variables`, unresolved.
    pub env: BTreeMap<String, Value>,
    pub http_routes: Vec<HttpRoute>,
    /// Logical ids of the SQS queues it consumes.
    pub queues: Vec<String>,
    /// EventBridge schedule expressions (`rate(1 hour)`) that invoke it.
    pub schedules: Vec<String>,
    /// The table streams it consumes (`DynamoDB` events).
    pub streams: Vec<StreamSource>,
}

/// A `DynamoDB` event: the event source mapping the local stream poller plays.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// Logical id of the table whose stream it reads (`!GetAtt Table.StreamArn`).
    pub table: String,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: usize,
    /// `FilterCriteria.Filters[].Pattern`, parsed; a record matching any of them invokes
    /// the function, and none at all means every record does.
    pub filters: Vec<serde_json::Value>,
    /// `MaximumRetryAttempts`: retries of a failing batch before it is given up on;
    /// `None` (absent or -1): until the record leaves the stream.
    pub maximum_retry_attempts: Option<u32>,
    /// Logical id of the SQS queue of `DestinationConfig.OnFailure`.
    pub on_failure_queue: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
    /// `false` for `Auth: { Authorizer: NONE }`.
    pub authorized: bool,
}

impl HttpRoute {
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let doc: Value = serde_yaml::from_str(text).context("template.yaml is not YAML")?;
        let mut resources = BTreeMap::new();
        let map = doc.get("Resources").and_then(Value::as_mapping).ok_or_else(|| anyhow!("no Resources"))?;
        for (id, body) in map {
            let id = id.as_str().ok_or_else(|| anyhow!("resource id is not a string"))?.to_owned();
            let kind = body.get("Type").and_then(Value::as_str).unwrap_or_default().to_owned();
            resources.insert(
                id,
                Resource {
                    kind,
                    properties: body.get("Properties").cloned().unwrap_or(Value::Null),
                    metadata: body.get("Metadata").cloned().unwrap_or(Value::Null),
                },
            );
        }
        let globals_env = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .map(string_keyed)
            .unwrap_or_default();
        let parameters = doc
            .get("Parameters")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let default = v.get("Default").and_then(|d| intrinsic(d).map(|(_, s)| s));
                        Some((k.as_str()?.to_owned(), default))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self { resources, globals_env, parameters })
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        self.resources.iter().filter(move |(_, r)| r.kind == kind)
    }

    /// Every `AWS::Serverless::Function`, with its routes and queues.
    pub fn functions(&self) -> Result<Vec<FunctionDef>> {
        let mut out = Vec::new();
        for (id, res) in self.of_kind("AWS::Serverless::Function") {
            let binary = res
                .metadata
                .get("BuildProperties")
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("{id}: Metadata.BuildProperties.Binary is required"))?
                .to_owned();
            let mut env = self.globals_env.clone();
            if let Some(vars) = res.properties.get("Environment").and_then(|e| e.get("Variables")) {
                env.extend(string_keyed(vars));
            }
            let mut http_routes = Vec::new();
            let mut queues = Vec::new();
            let mut schedules = Vec::new();
            let mut streams = Vec::new();
            if let Some(events) = res.properties.get("Events").and_then(Value::as_mapping) {
                for (name, event) in events {
                    let props = event.get("Properties").cloned().unwrap_or(Value::Null);
                    match event.get("Type").and_then(Value::as_str) {
                        Some("HttpApi") => {
                            let field = |k: &str| {
                                props
                                    .get(k)
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                                    .ok_or_else(|| anyhow!("{id}.{name:?}: {k} missing"))
                            };
                            let authorizer =
                                props.get("Auth").and_then(|a| a.get("Authorizer")).and_then(Value::as_str);
                            http_routes.push(HttpRoute {
                                method: field("Method")?.to_uppercase(),
                                path: field("Path")?,
                                authorized: authorizer != Some("NONE"),
                            });
                        }
                        Some("SQS") => {
                            let queue = props.get("Queue").ok_or_else(|| anyhow!("{id}: SQS event without Queue"))?;
                            queues.push(
                                referenced_id(queue).ok_or_else(|| anyhow!("{id}: Queue must be !GetAtt Q.Arn"))?,
                            );
                        }
                        Some("Schedule") => {
                            let expr = props.get("Schedule").and_then(Value::as_str);
                            schedules
                                .push(expr.ok_or_else(|| anyhow!("{id}: Schedule without expression"))?.to_owned());
                        }
                        Some("DynamoDB") => streams.push(stream_source(id, &props)?),
                        Some(other) => bail!("{id}: event type {other} is not supported by the local stack"),
                        None => bail!("{id}: event without Type"),
                    }
                }
            }
            out.push(FunctionDef { logical_id: id.clone(), binary, env, http_routes, queues, schedules, streams });
        }
        Ok(out)
    }
}

fn stream_source(id: &str, props: &Value) -> Result<StreamSource> {
    let stream = props.get("Stream").ok_or_else(|| anyhow!("{id}: DynamoDB event without Stream"))?;
    let table = match intrinsic(stream) {
        Some((tag, target)) if tag == "GetAtt" && target.ends_with(".StreamArn") => {
            target.trim_end_matches(".StreamArn").to_owned()
        }
        _ => bail!("{id}: Stream must be !GetAtt Table.StreamArn"),
    };
    let mut filters = Vec::new();
    for filter in
        props.get("FilterCriteria").and_then(|f| f.get("Filters")).and_then(Value::as_sequence).into_iter().flatten()
    {
        let pattern =
            filter.get("Pattern").and_then(Value::as_str).ok_or_else(|| anyhow!("{id}: filter without Pattern"))?;
        let pattern: serde_json::Value =
            serde_json::from_str(pattern).with_context(|| format!("{id}: filter pattern is not JSON"))?;
        crate::stream_poller::check_pattern(&pattern).with_context(|| format!("{id}: filter pattern {pattern}"))?;
        filters.push(pattern);
    }
    let retries = props.get("MaximumRetryAttempts").and_then(Value::as_i64).unwrap_or(-1);
    Ok(StreamSource {
        table,
        starting_position: props.get("StartingPosition").and_then(Value::as_str).unwrap_or("LATEST").to_owned(),
        batch_size: props.get("BatchSize").and_then(Value::as_u64).unwrap_or(100) as usize,
        filters,
        maximum_retry_attempts: u32::try_from(retries).ok(),
        on_failure_queue: props
            .get("DestinationConfig")
            .and_then(|d| d.get("OnFailure"))
            .and_then(|f| f.get("Destination"))
            .and_then(referenced_id),
    })
}

fn string_keyed(v: &Value) -> BTreeMap<String, Value> {
    v.as_mapping()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
        .unwrap_or_default()
}

/// `!Ref X` → `("Ref", "X")`, `!GetAtt X.Arn` → `("GetAtt", "X.Arn")`, plain strings → `("", s)`.
pub fn intrinsic(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string().trim_start_matches('!').to_owned();
            t.value.as_str().map(|s| (tag, s.to_owned()))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            let tag = k.as_str()?.strip_prefix("Fn::").or(k.as_str())?.to_owned();
            v.as_str().map(|s| (tag, s.to_owned()))
        }
        Value::String(s) => Some((String::new(), s.clone())),
        Value::Number(n) => Some((String::new(), n.to_string())),
        Value::Bool(b) => Some((String::new(), b.to_string())),
        _ => None,
    }
}

/// The logical id a `!Ref` or `!GetAtt` points at.
pub fn referenced_id(v: &Value) -> Option<String> {
    let (tag, target) = intrinsic(v)?;
    match tag.as_str() {
        "Ref" => Some(target),
        "GetAtt" => target.split('.').next().map(str::to_owned),
        _ => None,
    }
}

/// Resolves function environment values against what was provisioned.
pub fn resolve_env(
    env: &BTreeMap<String, Value>,
    lookup: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<HashMap<String, String>> {
    env.iter()
        .map(|(name, value)| {
            let (tag, target) = intrinsic(value).ok_or_else(|| anyhow!("{name}: unsupported value {value:?}"))?;
            let resolved = match tag.as_str() {
                "" => Some(target.clone()),
                "Ref" => lookup(&target, "Ref"),
                "GetAtt" => {
                    let (id, attr) = target.split_once('.').unwrap_or((&target, ""));
                    lookup(id, attr)
                }
                _ => None,
            };
            resolved.map(|v| (name.clone(), v)).ok_or_else(|| anyhow!("{name}: cannot resolve !{tag} {target} locally"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notifications queue hears exactly the events someone is told about: one list
    /// (`shared::messages::NOTIFIED`), the filter policy checked against it.
    #[test]
    fn the_notifications_subscription_filters_on_the_notified_list() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let subscription = &t.resources["NotificationsSubscription"].properties;
        let mut filtered: Vec<&str> = subscription["FilterPolicy"]["event_type"]
            .as_sequence()
            .expect("an event_type filter")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut notified = shared::messages::NOTIFIED.to_vec();
        filtered.sort_unstable();
        notified.sort_unstable();
        assert_eq!(filtered, notified);
    }

    #[test]
    fn reads_routes_queues_and_env_from_the_real_template() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let fns = t.functions().unwrap();
        let signup = fns.iter().find(|f| f.binary == "otp-signup").unwrap();
        assert!(signup.http_routes.iter().any(|r| r.route_key() == "POST /auth/signup" && !r.authorized));
        let me = fns.iter().find(|f| f.binary == "profile").unwrap();
        assert!(me.http_routes.iter().all(|r| r.authorized));
        assert!(signup.env.contains_key("TABLE_NAME"), "globals are merged");
        let notifications = fns.iter().find(|f| f.binary == "notifications").unwrap();
        assert_eq!(notifications.queues, vec!["NotificationsQueue".to_owned()]);
        let relay = fns.iter().find(|f| f.binary == "outbox-relay").unwrap();
        let [stream] = relay.streams.as_slice() else { panic!("one stream source: {:?}", relay.streams) };
        assert_eq!((stream.table.as_str(), stream.starting_position.as_str()), ("AppTable", "TRIM_HORIZON"));
        assert_eq!(stream.filters.len(), 1);
        assert_eq!(stream.on_failure_queue.as_deref(), Some("OutboxRelayFailureQueue"));
    }
}
