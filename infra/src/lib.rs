//! The Docker-free local stack: moto for DynamoDB, SQS and Cognito, provisioned from
//! `template.yaml`; every function in-process behind a local API Gateway with the
//! template's routes and JWT authorizer; Cognito's missing behaviour (SMS codes,
//! triggers, `USER_AUTH`) played by [`aws_endpoint`]; queue consumers polled as Lambda would,
//! and stream consumers fed from the table's stream ([`stream_poller`]).

pub mod aws_endpoint;
pub mod docs;
pub mod event_filter;
pub mod functions;
pub mod gateway;
pub mod moto;
pub mod poller;
pub mod provision;
pub mod runtime_api;
pub mod samples;
pub mod stream_poller;
pub mod stubs;
pub mod template;
pub mod websocket;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use serde_yaml::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use aws_endpoint::{Faults, Outbox};
use functions::Handler;
use provision::Provisioned;
use template::Template;

pub const REGION: &str = "ap-south-1";

/// The repository root (where `template.yaml` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("infra/ is in the repo").to_owned()
}

/// SDK configuration for a local endpoint, with dummy credentials.
pub async fn local_sdk_config(endpoint: &str) -> SdkConfig {
    local_sdk(endpoint, true).await
}

/// [`local_sdk_config`]; `patient: false` keeps Lambda's timeouts (`shared::config`).
async fn local_sdk(endpoint: &str, patient: bool) -> SdkConfig {
    // moto runs one DynamoDB request at a time per stack (see `aws_endpoint::serve`) and a
    // transaction there costs tens of milliseconds, so under the race tests' load a request
    // waits seconds in line where DynamoDB would answer in milliseconds. Lambda's short
    // timeouts would then turn waiting into a retry storm of requests moto still has to
    // apply; locally the SDK waits instead, and only as long as a test can.
    let mut loader = shared::config::sdk_loader();
    if patient {
        loader = loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(2))
                .operation_attempt_timeout(std::time::Duration::from_secs(60))
                .operation_timeout(std::time::Duration::from_secs(120))
                .build(),
        );
    }
    loader
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "local-stack"))
        .load()
        .await
}

pub struct Options {
    pub moto_endpoint: String,
    /// Prefix of every resource name, so several stacks can share one emulator.
    pub prefix: String,
    pub api_addr: String,
    pub aws_addr: String,
    /// Where the template's WebSocket API listens (`ws://`).
    pub ws_addr: String,
    /// Where the Razorpay stand-in listens.
    pub digio_addr: String,
    pub razorpay_addr: String,
    /// Where Agora's notification stand-in listens.
    pub agora_addr: String,
    pub template: PathBuf,
    /// Poll the SQS queues into their consumers (tests may drive them by hand instead).
    pub poll_queues: bool,
    /// Feed the table's stream into its consumers (the outbox relay), as Lambda's
    /// DynamoDB event source mapping does.
    pub poll_streams: bool,
    /// Template parameter values; the stand-ins for third parties add theirs, and
    /// anything else falls back to the parameter's `Default`.
    pub parameters: HashMap<String, String>,
    /// Run scheduled functions this often (EventBridge's part); `None`: only when called.
    pub schedule_every: Option<std::time::Duration>,
    /// Seed the default promotion rule (20% bonus on ₹500 to ₹10,000), as the
    /// `local-stack` command does; tests seed the rules they need themselves.
    pub seed_promotion_rules: bool,
    /// The functions' SDK clients time out as in Lambda (`shared::config`: 3 s an attempt,
    /// 8 s a call) instead of waiting in moto's queue (`local_sdk_config`): for tests that
    /// hold requests past those timeouts (`aws_endpoint::Stall`).
    pub lambda_timeouts: bool,
}

impl Options {
    pub fn new(moto_endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            moto_endpoint: moto_endpoint.into(),
            prefix: prefix.into(),
            api_addr: "127.0.0.1:0".into(),
            aws_addr: "127.0.0.1:0".into(),
            ws_addr: "127.0.0.1:0".into(),
            digio_addr: "127.0.0.1:0".into(),
            razorpay_addr: "127.0.0.1:0".into(),
            agora_addr: "127.0.0.1:0".into(),
            template: repo_root().join("template.yaml"),
            poll_queues: true,
            poll_streams: true,
            parameters: HashMap::new(),
            schedule_every: None,
            seed_promotion_rules: false,
            lambda_timeouts: false,
        }
    }
}

/// A running local stack; its servers and pollers stop when it is dropped.
pub struct LocalStack {
    pub api_url: String,
    /// The template's WebSocket API (`ws://127.0.0.1:<port>`; clients may add `/<stage>`);
    /// empty when the template has none.
    pub ws_url: String,
    /// Its open connections (the Management API's view).
    pub ws_connections: Option<Arc<websocket::Connections>>,
    /// The AWS endpoint functions use (moto plus local Cognito behaviour).
    pub aws_endpoint: String,
    pub provisioned: Provisioned,
    pub outbox: Arc<Outbox>,
    /// SDK configuration pointing at [`Self::aws_endpoint`].
    pub sdk: SdkConfig,
    pub functions: Vec<(template::FunctionDef, Handler)>,
    /// Each function's `Environment.Variables` as the template resolves them here, by binary.
    pub envs: HashMap<String, HashMap<String, String>>,
    /// The template parameters this stack was built with (the stand-ins' URLs and secrets).
    pub parameters: HashMap<String, String>,
    /// The local stand-ins for Digio and Razorpay.
    pub stubs: stubs::Stubs,
    /// The DynamoDB operations the functions made, for round-trip budgets in tests.
    pub calls: Arc<aws_endpoint::CallLog>,
    /// Failures the AWS endpoint injects into the functions' requests.
    pub faults: Arc<Faults>,
    /// The ARN of the key the local Cognito encrypts SMS codes with, when the pool has a
    /// CustomSMSSender trigger.
    pub sms_key: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        // Connections outlive the server's task: close them, so their $disconnect runs.
        if let Some(connections) = &self.ws_connections {
            connections.close_all();
        }
    }
}

fn serve(listener: TcpListener, router: axum::Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

impl LocalStack {
    pub async fn start(mut opts: Options) -> Result<Self> {
        let template = Template::load(&opts.template)?;
        // Bind the API first: the stand-ins need its address to send webhooks to.
        let api_listener =
            TcpListener::bind(&opts.api_addr).await.with_context(|| format!("binding {}", opts.api_addr))?;
        let api_url = format!("http://{}", api_listener.local_addr()?);
        let (stubs, stub_tasks) = {
            let addrs =
                stubs::StubAddrs { digio: &opts.digio_addr, razorpay: &opts.razorpay_addr, agora: &opts.agora_addr };
            stubs::start(&api_url, &mut opts.parameters, &addrs).await?
        };
        let moto_sdk = local_sdk_config(&opts.moto_endpoint).await;
        let provisioned = provision::provision(&moto_sdk, &template, &opts.prefix).await?;
        store_secrets(&moto_sdk, &stubs.secrets, &mut opts).await?;

        let outbox = Arc::new(Outbox::default());
        let cognito = Arc::new(aws_endpoint::LocalCognito::new(opts.moto_endpoint.clone(), &moto_sdk, outbox.clone()));
        let _ = cognito.pool_id.set(provisioned.user_pool_id.clone());
        let _ = cognito.client_id.set(provisioned.user_pool_client_id.clone());
        let aws_listener =
            TcpListener::bind(&opts.aws_addr).await.with_context(|| format!("binding {}", opts.aws_addr))?;
        let aws_endpoint = format!("http://{}", aws_listener.local_addr()?);
        opts.parameters.entry("AwsEndpointUrl".into()).or_insert_with(|| aws_endpoint.clone());
        let lookup = |id: &str, attr: &str| {
            provisioned.lookup(id, attr).or_else(|| match (id, attr) {
                ("AWS::Region", "Ref") => Some(REGION.to_owned()),
                ("AWS::AccountId", "Ref") => Some(provision::ACCOUNT_ID.to_owned()),
                (_, "Ref") => {
                    opts.parameters.get(id).cloned().or_else(|| template.parameters.get(id).cloned().flatten())
                }
                _ => None,
            })
        };
        let websocket_api = template.websocket_api()?;
        let ws_connections = match &websocket_api {
            Some(api) => Some(websocket::Connections::new(
                template::resolve(&api.stage_name, &lookup).context("the WebSocket API's stage")?,
                cognito.calls.clone(),
            )),
            None => None,
        };
        // The AWS endpoint: the Management API of the WebSocket API, and moto with the local
        // Cognito behind everything else.
        let mut aws_router = axum::Router::new().fallback(aws_endpoint::serve).with_state(cognito.clone());
        if let Some(connections) = &ws_connections {
            aws_router = connections.router().merge(aws_router);
        }
        let mut tasks = stub_tasks;
        tasks.push(serve(aws_listener, aws_router));

        let sdk = local_sdk(&aws_endpoint, !opts.lambda_timeouts).await;
        let mut functions = Vec::new();
        let mut envs = HashMap::new();
        for def in template.functions()? {
            let mut env = template::resolve_env(&def.env, &lookup)
                .with_context(|| format!("environment of {}", def.logical_id))?;
            for value in env.values_mut() {
                if let Some(local) = local_url(value, &aws_endpoint) {
                    *value = local;
                }
            }
            let handler = functions::build(&def.binary, &sdk, &env)
                .await
                .with_context(|| format!("function {}", def.logical_id))?;
            envs.insert(def.binary.clone(), env);
            functions.push((def, handler));
        }

        // Cognito invokes the functions the user pool's LambdaConfig names.
        let lambda_config = |path: &[&str]| {
            template.of_kind("AWS::Cognito::UserPool").find_map(|(_, r)| {
                let mut v = r.properties.get("LambdaConfig")?;
                for key in path {
                    v = v.get(key)?;
                }
                template::referenced_id(v)
            })
        };
        if let Some(id) = lambda_config(&["CustomSMSSender", "LambdaArn"]) {
            match functions.iter().find(|(d, _)| d.logical_id == id) {
                Some((_, Handler::Trigger(h))) => {
                    let _ = cognito.custom_sms_sender.set(h.clone());
                }
                _ => return Err(anyhow!("CustomSMSSender names {id}, which is not a trigger function")),
            }
            let key = lambda_config(&["KMSKeyID"]).and_then(|k| provisioned.lookup(&k, "Arn"));
            let _ = cognito.sms_key.set(key.ok_or_else(|| anyhow!("CustomSMSSender without a KMSKeyID"))?);
        }
        let trigger_id = lambda_config(&["PostConfirmation"]);
        if let Some(id) = trigger_id {
            match functions.iter().find(|(d, _)| d.logical_id == id) {
                Some((_, Handler::Trigger(h))) => {
                    let _ = cognito.post_confirmation.set(h.clone());
                }
                _ => return Err(anyhow!("PostConfirmation names {id}, which is not a trigger function")),
            }
        }

        let mut routes = Vec::new();
        for (def, handler) in &functions {
            for route in &def.http_routes {
                let Handler::Http(h) = handler else {
                    return Err(anyhow!("{} has HTTP routes but is not an HTTP function", def.logical_id));
                };
                routes.push(gateway::Route { route: route.clone(), handler: h.clone() });
            }
        }
        let ws_url = match (&websocket_api, &ws_connections) {
            (Some(api), Some(connections)) => {
                let socket_api = socket_api(api, &functions, &provisioned, connections.clone())?;
                let listener =
                    TcpListener::bind(&opts.ws_addr).await.with_context(|| format!("binding {}", opts.ws_addr))?;
                let url = format!("ws://{}", listener.local_addr()?);
                let service = socket_api.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
                tasks.push(tokio::spawn(async move {
                    let _ = axum::serve(listener, service).await;
                }));
                url
            }
            _ => String::new(),
        };

        let pool = &provisioned.user_pool_id;
        let gw = gateway::Gateway::new(
            routes,
            format!("https://cognito-idp.{REGION}.amazonaws.com/{pool}"),
            provisioned.user_pool_client_id.clone(),
            format!("{}/{pool}/.well-known/jwks.json", opts.moto_endpoint),
        );
        // The listener bound first, whose address the stand-ins send their webhooks to.
        // Plus the API contract at /openapi.json and /docs (local only; API Gateway has neither).
        let api = docs::router(api_contract::document())
            .merge(axum::Router::new().fallback(gateway::serve).with_state(Arc::new(gw)));
        tasks.push(serve(api_listener, api));

        if opts.poll_queues {
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            for (def, handler) in &functions {
                if let Handler::Sqs(h) = handler {
                    for queue in &def.queues {
                        let url = provisioned.lookup(queue, "Ref").ok_or_else(|| anyhow!("queue {queue}"))?;
                        let arn = provisioned.lookup(queue, "Arn").unwrap_or_default();
                        tasks.push(tokio::spawn(poller::poll(sqs.clone(), url, arn, h.clone())));
                    }
                }
            }
        }

        if opts.poll_streams {
            let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            for (def, handler) in &functions {
                let Handler::Stream(h) = handler else { continue };
                for source in &def.streams {
                    let stream_arn = provisioned
                        .lookup(&source.table, "StreamArn")
                        .ok_or_else(|| anyhow!("{}: table {} has no stream", def.logical_id, source.table))?;
                    let on_failure = match &source.on_failure_queue {
                        Some(q) => {
                            Some((sqs.clone(), provisioned.lookup(q, "Ref").ok_or_else(|| anyhow!("queue {q}"))?))
                        }
                        None => None,
                    };
                    let mapping = stream_poller::Mapping {
                        function: def.logical_id.clone(),
                        stream_arn,
                        source: source.clone(),
                        handler: h.clone(),
                        on_failure,
                    };
                    tasks.push(tokio::spawn(stream_poller::poll(streams.clone(), mapping)));
                }
            }
        }

        if let Some(every) = opts.schedule_every {
            for (def, handler) in &functions {
                if let (Handler::Scheduled(h), false) = (handler, def.schedules.is_empty()) {
                    tasks.push(tokio::spawn(run_schedule(def.logical_id.clone(), every, h.clone())));
                }
            }
        }

        if opts.seed_promotion_rules {
            let store = shared::store::Store::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                provisioned.lookup("AppTable", "Ref").unwrap_or_default(),
            );
            store.put_promotion_rule(&default_promotion_rule()).await.context("seeding the promotion rule")?;
        }

        let calls = cognito.calls.clone();
        let faults = cognito.faults.clone();
        let parameters = opts.parameters.clone();
        Ok(Self {
            api_url,
            ws_url,
            ws_connections,
            aws_endpoint,
            provisioned,
            outbox,
            sdk,
            functions,
            envs,
            parameters,
            stubs,
            calls,
            faults,
            sms_key: cognito.sms_key.get().cloned(),
            tasks,
        })
    }

    /// `code` as Cognito hands it to the CustomSMSSender trigger (for its sample event).
    pub async fn encrypt_sms_code(&self, code: &str) -> Result<String> {
        let key = self.sms_key.as_deref().ok_or_else(|| anyhow!("the pool has no CustomSMSSender key"))?;
        aws_endpoint::encrypt_sms_code(&aws_sdk_kms::Client::new(&self.sdk), key, &self.provisioned.user_pool_id, code)
            .await
    }

    /// For `cargo lambda watch` against this stack: `lambda.env`. For `sam local invoke`: `env-vars.json` (every function's
    /// variables by logical id, `AWS_ENDPOINT_URL` as a container on the host network reaches
    /// it) and `parameter-overrides` (every parameter the template needs a value for), in `dir`.
    pub fn write_sam_files(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut vars = serde_json::Map::new();
        for (def, _) in &self.functions {
            let mut env = self.envs.get(&def.binary).cloned().unwrap_or_default();
            env.insert("AWS_ENDPOINT_URL".into(), self.aws_endpoint.clone());
            vars.insert(def.logical_id.clone(), serde_json::to_value(env)?);
        }
        std::fs::write(dir.join("env-vars.json"), serde_json::to_string_pretty(&vars)?)?;
        // `cargo lambda watch --env-file`: one file for all functions (their variables do not
        // clash), plus what Lambda itself would set.
        let mut merged: std::collections::BTreeMap<String, String> =
            runtime_api::lambda_env("local", 128, &self.aws_endpoint).into_iter().collect();
        merged.retain(|k, _| k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_"));
        for env in self.envs.values() {
            merged.extend(env.clone());
        }
        merged.insert("AWS_ENDPOINT_URL".into(), self.aws_endpoint.clone());
        let dotenv: String = merged.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(dir.join("lambda.env"), dotenv)?;
        let template = Template::load(&repo_root().join("template.yaml"))?;
        let mut overrides: Vec<String> = template
            .parameters
            .iter()
            .filter_map(|(name, default)| {
                self.parameters
                    .get(name)
                    .cloned()
                    .or_else(|| default.is_none().then(|| "local".to_owned()))
                    .map(|v| format!("{name}={v}"))
            })
            .collect();
        overrides.sort();
        std::fs::write(dir.join("parameter-overrides"), overrides.join(" ") + "\n")?;
        Ok(())
    }

    pub fn table_name(&self) -> String {
        self.provisioned.lookup("AppTable", "Ref").unwrap_or_default()
    }

    pub fn handler(&self, binary: &str) -> Option<&Handler> {
        self.functions.iter().find(|(d, _)| d.binary == binary).map(|(_, h)| h)
    }
}

/// A URL in a function's environment that the function calls itself, not through an SDK
/// client (which `AWS_ENDPOINT_URL` points at the local AWS endpoint already): a user pool's
/// JWKS, and an `execute-api` endpoint (the WebSocket API's Management API). The local AWS
/// endpoint answers the same path: the Management API itself, and the JWKS from moto, which
/// publishes each pool's keys there. Other AWS URLs (a token issuer) are names, kept as they are.
fn local_url(value: &str, aws_endpoint: &str) -> Option<String> {
    let (host, path) = value.strip_prefix("https://")?.split_once('/')?;
    let called = host.contains(".execute-api.") || path.ends_with("/.well-known/jwks.json");
    (host.ends_with(".amazonaws.com") && called).then(|| format!("{aws_endpoint}/{path}"))
}

/// The WebSocket API with its routes' and authorizer's in-process functions.
fn socket_api(
    api: &template::WebSocketApiDef,
    functions: &[(template::FunctionDef, Handler)],
    provisioned: &Provisioned,
    connections: Arc<websocket::Connections>,
) -> Result<Arc<websocket::SocketApi>> {
    let handler = |id: &str| functions.iter().find(|(d, _)| d.logical_id == id).map(|(_, h)| h);
    let mut routes = Vec::new();
    let mut authorizer = None;
    for route in &api.routes {
        let Some(Handler::WebSocket(h)) = handler(&route.function) else {
            return Err(anyhow!("route {} names {}, which is not a WebSocket function", route.key, route.function));
        };
        routes.push(websocket::Route { key: route.key.clone(), function: route.function.clone(), handler: h.clone() });
        if let Some(a) = &route.authorizer {
            let Some(Handler::Authorizer(h)) = handler(&a.function) else {
                return Err(anyhow!("{} authorizes {}, but is not an authorizer function", a.function, route.key));
            };
            authorizer = Some(websocket::Authorizer {
                function: a.function.clone(),
                identity_source: a.identity_source.clone(),
                handler: h.clone(),
            });
        }
    }
    let api_id = provisioned.lookup(&api.logical_id, "Ref").ok_or_else(|| anyhow!("{} has no id", api.logical_id))?;
    Ok(websocket::SocketApi::new(api_id, routes, authorizer, connections))
}

/// The stand-ins' secrets as a deployer stores them: SecureString parameters, named by the
/// template parameters the functions' `*_PARAMETER` variables come from (under the stack's
/// prefix, as stacks share one moto), unless the caller named them already.
async fn store_secrets(moto: &SdkConfig, secrets: &[(String, String)], opts: &mut Options) -> Result<()> {
    let ssm = aws_sdk_ssm::Client::new(moto);
    for (parameter, value) in secrets {
        let name =
            opts.parameters.entry(parameter.clone()).or_insert_with(|| format!("/{}/{parameter}", opts.prefix)).clone();
        ssm.put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .with_context(|| format!("storing the secret {name}"))?;
    }
    Ok(())
}

/// Plays EventBridge: invokes a scheduled function every `every`, with a scheduled event.
async fn run_schedule(name: String, every: std::time::Duration, handler: functions::TriggerHandler) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        let event = serde_json::json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": provision::ACCOUNT_ID, "time": chrono::Utc::now().to_rfc3339(),
            "region": REGION, "resources": [], "detail": {},
        });
        match handler(event).await {
            Ok(result) => tracing::info!(function = %name, %result, "scheduled run"),
            Err(e) => tracing::warn!(function = %name, error = %e, "scheduled run failed"),
        }
    }
}

/// The rule the `local-stack` command seeds: 20% bonus cash on recharges of ₹500 to ₹10,000.
pub fn default_promotion_rule() -> shared::domain::promotion::PromotionRule {
    shared::domain::promotion::PromotionRule {
        id: "recharge-20".into(),
        name: "20% bonus on recharges of ₹500 to ₹10,000".into(),
        min_amount: shared::Money::from_paise(50_000),
        max_amount: Some(shared::Money::from_paise(1_000_000)),
        bonus_percent: rust_decimal::Decimal::from(20),
        first_recharge_only: false,
        active: true,
    }
}

/// Makes the signed-up user with this phone number (their Cognito user name) operations
/// staff: a member of the group `admin`, as an operator does on AWS with
/// `aws cognito-idp admin-add-user-to-group`. Sign-up never does this. Their next sign-in's
/// token carries the group.
pub async fn make_staff(sdk: &SdkConfig, user_pool_id: &str, phone: &shared::Phone) -> Result<()> {
    aws_sdk_cognitoidentityprovider::Client::new(sdk)
        .admin_add_user_to_group()
        .user_pool_id(user_pool_id)
        .username(phone.e164())
        .group_name(shared::UserType::Admin.as_str())
        .send()
        .await?;
    Ok(())
}

/// `Value` is re-exported for callers that inspect the template.
pub type YamlValue = Value;
