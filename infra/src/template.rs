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
        crate::event_filter::check_pattern(&pattern).with_context(|| format!("{id}: filter pattern {pattern}"))?;
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
    env.iter().map(|(name, value)| Ok((name.clone(), resolve(value, lookup).context(name.clone())?))).collect()
}

/// A plain value, `!Ref X`, `!GetAtt X.Attr` or `!Sub "...${X}...${X.Attr}..."`, with `lookup(id, attr)`
/// (`attr` is `"Ref"` for a `!Ref` and for `${X}`).
pub fn resolve(value: &Value, lookup: &dyn Fn(&str, &str) -> Option<String>) -> Result<String> {
    let (tag, target) = intrinsic(value).ok_or_else(|| anyhow!("unsupported value {value:?}"))?;
    let reference = |target: &str| match target.split_once('.') {
        Some((id, attr)) if !id.contains("::") => lookup(id, attr),
        _ => lookup(target, "Ref"),
    };
    let resolved = match tag.as_str() {
        "" => Some(target.clone()),
        "Ref" => lookup(&target, "Ref"),
        "GetAtt" => reference(&target),
        "Sub" => {
            let mut out = String::with_capacity(target.len());
            let mut rest = target.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').ok_or_else(|| anyhow!("unclosed ${{ in !Sub {target}"))? + start;
                let name = &rest[start + 2..end];
                out.push_str(
                    &reference(name).ok_or_else(|| anyhow!("cannot resolve ${{{name}}} of !Sub {target} locally"))?,
                );
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Some(out)
        }
        _ => None,
    };
    resolved.ok_or_else(|| anyhow!("cannot resolve !{tag} {target} locally"))
}

/// The template's WebSocket API (`AWS::ApiGatewayV2::Api`, `ProtocolType: WEBSOCKET`): its
/// routes and their functions, as API Gateway serves it.
#[derive(Debug, Clone)]
pub struct WebSocketApiDef {
    pub logical_id: String,
    /// The `StageName` of its stage (a value or a `!Ref` of a parameter), resolved by the caller.
    pub stage_name: Value,
    /// `$connect`, `$disconnect`, `$default` and the custom route keys.
    pub routes: Vec<WebSocketRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketRoute {
    pub key: String,
    /// Logical id of the function its `AWS_PROXY` integration invokes.
    pub function: String,
    /// A `REQUEST` authorizer (`AuthorizationType: CUSTOM`): `$connect` only, as in API Gateway.
    pub authorizer: Option<RequestAuthorizer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAuthorizer {
    /// Logical id of the authorizer function.
    pub function: String,
    /// Where the identity is read; a request missing any of them is refused (401) before the
    /// function runs, as API Gateway does.
    pub identity_source: Vec<IdentitySource>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// `route.request.querystring.<name>`
    QueryString(String),
    /// `route.request.header.<name>` (lower-cased: headers match case-insensitively).
    Header(String),
}

impl Template {
    /// The WebSocket API, if the template has one (the local stack serves one at most).
    pub fn websocket_api(&self) -> Result<Option<WebSocketApiDef>> {
        let apis: Vec<_> = self
            .of_kind("AWS::ApiGatewayV2::Api")
            .filter(|(_, r)| r.properties.get("ProtocolType").and_then(Value::as_str) == Some("WEBSOCKET"))
            .collect();
        let [(api_id, api)] = apis.as_slice() else {
            if apis.is_empty() {
                return Ok(None);
            }
            bail!("the local stack serves one WebSocket API; the template has {}", apis.len());
        };
        let selection = api.properties.get("RouteSelectionExpression").and_then(Value::as_str);
        if selection != Some("$request.body.action") {
            bail!(
                "{api_id}: RouteSelectionExpression {selection:?}: the local stack supports $request.body.action only"
            );
        }
        let of_api = |kind: &'static str| {
            self.of_kind(kind).filter(move |(_, r)| {
                r.properties.get("ApiId").and_then(referenced_id).as_deref() == Some(api_id.as_str())
            })
        };
        let stages: Vec<_> = of_api("AWS::ApiGatewayV2::Stage").collect();
        let [(stage_id, stage)] = stages.as_slice() else {
            bail!("{api_id}: one stage expected, found {}", stages.len())
        };
        let stage_name = stage.properties.get("StageName").cloned().ok_or_else(|| anyhow!("{stage_id}: StageName"))?;

        let mut routes = Vec::new();
        for (id, route) in of_api("AWS::ApiGatewayV2::Route") {
            let p = &route.properties;
            let key = p.get("RouteKey").and_then(Value::as_str).ok_or_else(|| anyhow!("{id}: RouteKey"))?.to_owned();
            let target = p.get("Target").and_then(intrinsic).ok_or_else(|| anyhow!("{id}: Target"))?;
            let integration = match (target.0.as_str(), target.1.strip_prefix("integrations/${")) {
                ("Sub", Some(rest)) => rest.strip_suffix('}').unwrap_or(rest).to_owned(),
                _ => bail!("{id}: Target must be !Sub integrations/${{Integration}}"),
            };
            let integration_props = &self
                .resources
                .get(&integration)
                .ok_or_else(|| anyhow!("{id}: no integration {integration}"))?
                .properties;
            if integration_props.get("IntegrationType").and_then(Value::as_str) != Some("AWS_PROXY") {
                bail!("{integration}: the local stack supports AWS_PROXY integrations only");
            }
            let function = invoked_function(integration_props.get("IntegrationUri"))
                .ok_or_else(|| anyhow!("{integration}: IntegrationUri must name ${{Function.Arn}}"))?;
            let authorizer = match p.get("AuthorizationType").and_then(Value::as_str).unwrap_or("NONE") {
                "NONE" => None,
                "CUSTOM" if key == "$connect" => {
                    let authorizer_id =
                        p.get("AuthorizerId").and_then(referenced_id).ok_or_else(|| anyhow!("{id}: AuthorizerId"))?;
                    Some(self.request_authorizer(&authorizer_id)?)
                }
                other => bail!("{id}: AuthorizationType {other} on {key} is not supported by the local stack"),
            };
            routes.push(WebSocketRoute { key, function, authorizer });
        }
        routes.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Some(WebSocketApiDef { logical_id: api_id.to_string(), stage_name, routes }))
    }

    fn request_authorizer(&self, id: &str) -> Result<RequestAuthorizer> {
        let p = &self.resources.get(id).ok_or_else(|| anyhow!("no authorizer {id}"))?.properties;
        if p.get("AuthorizerType").and_then(Value::as_str) != Some("REQUEST") {
            bail!("{id}: the local stack supports REQUEST authorizers only");
        }
        let function = invoked_function(p.get("AuthorizerUri"))
            .ok_or_else(|| anyhow!("{id}: AuthorizerUri must name ${{Function.Arn}}"))?;
        let identity_source = p
            .get("IdentitySource")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|source| {
                let source = source.as_str().unwrap_or_default();
                if let Some(name) = source.strip_prefix("route.request.querystring.") {
                    Ok(IdentitySource::QueryString(name.to_owned()))
                } else if let Some(name) = source.strip_prefix("route.request.header.") {
                    Ok(IdentitySource::Header(name.to_ascii_lowercase()))
                } else {
                    bail!("{id}: identity source {source:?} is not supported by the local stack")
                }
            })
            .collect::<Result<_>>()?;
        Ok(RequestAuthorizer { function, identity_source })
    }
}

/// The function of a Lambda integration URI,
/// `!Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Function.Arn}/invocations`.
fn invoked_function(uri: Option<&Value>) -> Option<String> {
    let (tag, text) = intrinsic(uri?)?;
    let function = text.split_once("/functions/${")?.1.split_once(".Arn}/invocations")?.0;
    (tag == "Sub").then(|| function.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notifications queue hears exactly the events someone is told about: one list
    /// (`shared::domain::messages::NOTIFIED`), the filter policy checked against it.
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
        let mut notified = shared::domain::messages::NOTIFIED.to_vec();
        filtered.sort_unstable();
        notified.sort_unstable();
        assert_eq!(filtered, notified);
    }

    /// The store's index table (its module doc) is the template's indexes, row for row:
    /// name, keys and projection; and the index names the store's code uses exist.
    #[test]
    fn the_stores_index_table_is_the_templates_indexes() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let indexes = t.resources["AppTable"].properties["GlobalSecondaryIndexes"].as_sequence().unwrap();
        let key = |index: &serde_yaml::Value, kind: &str| -> String {
            let schema = index["KeySchema"].as_sequence().unwrap();
            let found = schema.iter().find(|k| k["KeyType"].as_str() == Some(kind)).unwrap();
            found["AttributeName"].as_str().unwrap().to_owned()
        };
        let mut in_template: Vec<String> = indexes
            .iter()
            .map(|index| {
                let projection = match index["Projection"]["ProjectionType"].as_str().unwrap() {
                    "ALL" => "all",
                    "INCLUDE" => "catalogue card",
                    other => panic!("projection {other}: name it in the store's table"),
                };
                let name = index["IndexName"].as_str().unwrap();
                format!("`{name}` | `{}` | `{}` | {projection}", key(index, "HASH"), key(index, "RANGE"))
            })
            .collect();
        let doc = std::fs::read_to_string(crate::repo_root().join("shared/src/store/mod.rs")).unwrap();
        let mut in_doc: Vec<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `"))
            .filter(|row| row.split(" | ").count() == 5)
            .map(|row| format!("`{}", row.split(" | ").take(4).collect::<Vec<_>>().join(" | ")))
            .collect();
        in_template.sort();
        in_doc.sort();
        assert_eq!(in_doc, in_template, "the store's index table against template.yaml");
        use shared::store::keys;
        let names: Vec<&str> = indexes.iter().map(|i| i["IndexName"].as_str().unwrap()).collect();
        for used in [
            keys::GSI1,
            keys::GSI2,
            keys::CONSULTATIONS_DUE,
            keys::CATALOGUE_BY_PRICE.0,
            keys::CATALOGUE_BY_RATING.0,
            keys::CATALOGUE_BY_EXPERIENCE.0,
        ] {
            assert!(names.contains(&used), "{used} is not an index of the template");
        }
    }

    #[test]
    fn reads_the_websocket_api_from_the_real_template() {
        let t = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        let api = t.websocket_api().unwrap().expect("a WebSocket API");
        assert_eq!(api.logical_id, "WebSocketApi");
        let keys: Vec<&str> = api.routes.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["$connect", "$default", "$disconnect", "end", "heartbeat", "join", "read", "send", "typing"]);
        assert!(api.routes.iter().all(|r| r.function == "LiveSessionFunction"), "{:?}", api.routes);
        let connect = &api.routes[0];
        assert_eq!(
            connect.authorizer,
            Some(RequestAuthorizer {
                function: "ConnectAuthorizerFunction".into(),
                identity_source: vec![IdentitySource::QueryString("token".into())],
            })
        );
        assert!(api.routes[1..].iter().all(|r| r.authorizer.is_none()), "only $connect is authorized");
        let stage = resolve(&api.stage_name, &|id, attr| (id == "Stage" && attr == "Ref").then(|| "dev".to_owned()));
        assert_eq!(stage.unwrap(), "dev");
    }

    #[test]
    fn routes_on_anything_but_the_body_action_are_refused() {
        let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).unwrap();
        let changed = text
            .replace("RouteSelectionExpression: $request.body.action", "RouteSelectionExpression: $request.body.type");
        assert_ne!(changed, text);
        let err = Template::parse(&changed).unwrap().websocket_api().unwrap_err();
        assert!(err.to_string().contains("$request.body.action only"), "{err}");
    }

    #[test]
    fn sub_resolves_references_and_attributes() {
        let lookup = |id: &str, attr: &str| match (id, attr) {
            ("AWS::Region", "Ref") => Some("ap-south-1".to_owned()),
            ("Api", "Ref") => Some("abc123".to_owned()),
            ("Fn", "Arn") => Some("arn:fn".to_owned()),
            _ => None,
        };
        let sub: Value =
            serde_yaml::from_str("!Sub https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Fn.Arn}/x").unwrap();
        assert_eq!(resolve(&sub, &lookup).unwrap(), "https://abc123.execute-api.ap-south-1.amazonaws.com/arn:fn/x");
        let unknown: Value = serde_yaml::from_str("!Sub a-${Nothing}").unwrap();
        assert!(resolve(&unknown, &lookup).unwrap_err().to_string().contains("${Nothing}"));
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
