//! The template's WebSocket API as API Gateway serves it, with its functions in-process:
//! - the upgrade request runs the `$connect` route's `REQUEST` authorizer (a missing identity
//!   source is a 401 without calling it; its refusal a 401, a policy that does not allow
//!   the connect ARN a 403), then the `$connect` function (non-2xx refuses the connection);
//! - each message goes to the route its body's `action` names (`$request.body.action`), else
//!   `$default`, with what the authorizer returned as `requestContext.authorizer`; one
//!   connection's messages in order, connections side by side; over 128 KiB, close 1009;
//! - the client closing or the socket dropping runs `$disconnect` once;
//! - the API Gateway Management API (`POST`/`GET`/`DELETE {stage}/@connections/{id}`) is
//!   served on the local AWS endpoint, where the functions' `WEBSOCKET_ENDPOINT` points
//!   ([`Connections::router`]).
//!
//! A connection's socket is written by a task of its own, fed by an unbounded channel: a
//! `PostToConnection` queues its frame and answers without waiting on the socket or on a
//! route still running, and no lock is held across an await.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::iam::IamPolicyEffect;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::aws_endpoint::CallLog;
use crate::functions::{AuthorizerHandler, WebSocketHandler};
use crate::template::IdentitySource;

/// API Gateway's limit on a WebSocket message, either way.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Frames up to this size are read, so a message over [`MAX_MESSAGE_BYTES`] gets API
/// Gateway's close 1009 rather than a broken socket; beyond it the socket just drops.
const MAX_READ_BYTES: usize = 1024 * 1024;
/// WebSocket close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_NO_STATUS: u16 = 1005;
const CLOSE_ABNORMAL: u16 = 1006;
const CLOSE_TOO_BIG: u16 = 1009;

/// The open connections, by id: what the Management API reaches.
pub struct Connections {
    stage: String,
    open: Mutex<HashMap<String, Connection>>,
    calls: Arc<CallLog>,
}

struct Connection {
    outgoing: mpsc::UnboundedSender<Message>,
    connected_at: i64,
    last_active_at: Arc<AtomicI64>,
    source_ip: String,
    user_agent: String,
}

impl Connections {
    pub fn new(stage: String, calls: Arc<CallLog>) -> Arc<Self> {
        Arc::new(Self { stage, open: Mutex::default(), calls })
    }

    /// The Management API: `{stage}/@connections/{connectionId}`, as the SDK's
    /// `aws-sdk-apigatewaymanagement` calls it with its endpoint at `{endpoint}/{stage}`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/{stage}/@connections/{connection_id}",
                axum::routing::post(post_to_connection).get(get_connection).delete(delete_connection),
            )
            .with_state(self.clone())
    }

    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.open.lock().unwrap().len()
    }

    /// The ids of the open connections (what `$connect` was told), for tests.
    pub fn ids(&self) -> Vec<String> {
        self.open.lock().unwrap().keys().cloned().collect()
    }

    /// Closes every connection (1001, going away): the stack is stopping.
    pub fn close_all(&self) {
        for (_, connection) in self.open.lock().unwrap().drain() {
            let _ = connection.outgoing.send(close(CLOSE_GOING_AWAY, "Going away"));
        }
    }

    /// Queues `message` on the connection; `false`: no such connection (any more).
    fn send(&self, id: &str, message: Message) -> bool {
        self.open.lock().unwrap().get(id).is_some_and(|c| c.outgoing.send(message).is_ok())
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

/// A Management API error as the SDK reads it (restJson1: the `x-amzn-errortype` header).
fn management_error(status: StatusCode, kind: &str, message: Option<&str>) -> Response {
    (
        status,
        [("content-type", "application/json"), ("x-amzn-errortype", kind)],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    management_error(StatusCode::GONE, "GoneException", None)
}

fn wrong_stage() -> Response {
    management_error(StatusCode::FORBIDDEN, "ForbiddenException", Some("Forbidden"))
}

async fn post_to_connection(
    State(connections): State<Arc<Connections>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    connections.calls.record_any("execute-api", "PostToConnection");
    if stage != connections.stage {
        return wrong_stage();
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return management_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", Some("Message too long"));
    }
    // Text when it is UTF-8 (what the functions send: JSON), without a copy.
    let message = match Utf8Bytes::try_from(body) {
        Ok(text) => Message::Text(text),
        Err(_) => return management_error(StatusCode::BAD_REQUEST, "BadRequestException", Some("Data is not UTF-8")),
    };
    if connections.send(&id, message) { StatusCode::OK.into_response() } else { gone() }
}

async fn get_connection(
    State(connections): State<Arc<Connections>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    connections.calls.record_any("execute-api", "GetConnection");
    if stage != connections.stage {
        return wrong_stage();
    }
    let info = connections.open.lock().unwrap().get(&id).map(|c| {
        json!({
            "connectedAt": iso8601(c.connected_at),
            "identity": { "sourceIp": c.source_ip, "userAgent": c.user_agent },
            "lastActiveAt": iso8601(c.last_active_at.load(Ordering::Relaxed)),
        })
    });
    match info {
        Some(info) => ([("content-type", "application/json")], info.to_string()).into_response(),
        None => gone(),
    }
}

async fn delete_connection(
    State(connections): State<Arc<Connections>>,
    Path((stage, id)): Path<(String, String)>,
) -> Response {
    connections.calls.record_any("execute-api", "DeleteConnection");
    if stage != connections.stage {
        return wrong_stage();
    }
    // Gone for the Management API at once; the connection's task closes the socket and runs
    // $disconnect.
    match connections.open.lock().unwrap().remove(&id) {
        Some(connection) => {
            let _ = connection.outgoing.send(close(CLOSE_NORMAL, ""));
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}

fn iso8601(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An id in API Gateway's look (`L0SM9cOFvHcCIhw=`): 10 random bytes, base64.
fn new_id() -> String {
    base64::engine::general_purpose::URL_SAFE.encode(rand::rng().random::<[u8; 10]>())
}

/// A route and the function it invokes.
pub struct Route {
    pub key: String,
    pub function: String,
    pub handler: WebSocketHandler,
}

/// The `$connect` route's `REQUEST` authorizer.
pub struct Authorizer {
    pub function: String,
    pub identity_source: Vec<IdentitySource>,
    pub handler: AuthorizerHandler,
}

/// The WebSocket API: its routes, the `$connect` authorizer and the open connections.
pub struct SocketApi {
    pub api_id: String,
    routes: HashMap<String, Route>,
    authorizer: Option<Authorizer>,
    pub connections: Arc<Connections>,
}

/// A connection the authorizer and `$connect` let in.
struct Accepted {
    id: String,
    connected_at: i64,
    domain_name: String,
    source_ip: String,
    user_agent: String,
    /// `requestContext.authorizer`: the authorizer's context and principal id.
    authorizer: Value,
    last_active_at: Arc<AtomicI64>,
}

impl SocketApi {
    pub fn new(
        api_id: String,
        routes: Vec<Route>,
        authorizer: Option<Authorizer>,
        connections: Arc<Connections>,
    ) -> Arc<Self> {
        let routes = routes.into_iter().map(|r| (r.key.clone(), r)).collect();
        Arc::new(Self { api_id, routes, authorizer, connections })
    }

    fn stage(&self) -> &str {
        &self.connections.stage
    }

    /// The server: every path is the API (clients connect to `/` or `/{stage}`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().fallback(upgrade).with_state(self.clone())
    }

    /// The request context every event of a connection carries.
    fn context(&self, conn: &Accepted, route_key: &str, event_type: &str) -> Value {
        let now = chrono::Utc::now();
        let mut context = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": new_id(),
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": self.stage(),
            "connectedAt": conn.connected_at,
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": { "sourceIp": conn.source_ip, "userAgent": conn.user_agent },
            "requestId": new_id(),
            "domainName": conn.domain_name,
            "connectionId": conn.id,
            "apiId": self.api_id,
        });
        if !conn.authorizer.is_null() {
            context["authorizer"] = conn.authorizer.clone();
        }
        context
    }

    /// Invokes a route's function; its status code (500 when the event does not parse).
    async fn invoke(&self, route: &Route, conn_id: &str, event: Value) -> i64 {
        let started = Instant::now();
        let status = match serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(event) {
            Ok(request) => (route.handler)(request).await.status_code,
            Err(e) => {
                tracing::error!(route = %route.key, error = %e, "the WebSocket event does not parse");
                500
            }
        };
        tracing::info!(
            route = %route.key,
            function = %route.function,
            connection = %conn_id,
            status,
            ms = started.elapsed().as_millis() as u64,
            "websocket"
        );
        status
    }

    /// The authorizer's verdict on an upgrade request: `Ok(requestContext.authorizer)` or the refusal.
    async fn authorize(
        &self,
        conn_id: &str,
        uri: &Uri,
        headers: &HeaderMap,
        base: &Accepted,
    ) -> Result<Value, Response> {
        let Some(authorizer) = &self.authorizer else { return Ok(Value::Null) };
        let query = query_map(uri);
        let present = authorizer.identity_source.iter().all(|source| match source {
            IdentitySource::QueryString(name) => query.get(name).and_then(Value::as_str).is_some_and(|v| !v.is_empty()),
            IdentitySource::Header(name) => headers.get(name).is_some_and(|v| !v.is_empty()),
        });
        if !present {
            tracing::info!(route = "$connect", reason = "no identity source", "unauthorized");
            return Err(refusal(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        let method_arn = format!(
            "arn:aws:execute-api:{}:{}:{}/{}/$connect",
            crate::REGION,
            crate::provision::ACCOUNT_ID,
            self.api_id,
            self.stage()
        );
        let (single, multi) = header_maps(headers);
        let multi_query: Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
        let context = self.context(base, "$connect", "CONNECT");
        let event = json!({
            "type": "REQUEST",
            "methodArn": method_arn,
            "headers": single,
            "multiValueHeaders": multi,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "stageVariables": {},
            "requestContext": context,
        });
        let request: ApiGatewayCustomAuthorizerRequestTypeRequest = serde_json::from_value(event).map_err(|e| {
            tracing::error!(error = %e, "the authorizer event does not parse");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })?;
        let started = Instant::now();
        let verdict = (authorizer.handler)(request).await;
        let ms = started.elapsed().as_millis() as u64;
        let response = match verdict {
            Ok(response) => response,
            Err(reason) => {
                tracing::info!(function = %authorizer.function, connection = %conn_id, %reason, ms, "unauthorized");
                return Err(refusal(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
        };
        if !allows(&response, &method_arn) {
            tracing::info!(function = %authorizer.function, connection = %conn_id, ms, "forbidden by the policy");
            return Err(refusal(StatusCode::FORBIDDEN, "Forbidden"));
        }
        tracing::info!(function = %authorizer.function, connection = %conn_id, ms, "authorized");
        // API Gateway hands the context's values and the principal to every route.
        let mut fields = match response.context {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        fields.insert("principalId".into(), json!(response.principal_id.unwrap_or_default()));
        fields.insert("integrationLatency".into(), json!(ms));
        Ok(Value::Object(fields))
    }

    /// Reads the connection's messages in order until it ends, then runs `$disconnect`.
    async fn run(self: Arc<Self>, socket: WebSocket, conn: Accepted) {
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queued) = mpsc::unbounded_channel::<Message>();
        self.connections.open.lock().unwrap().insert(
            conn.id.clone(),
            Connection {
                outgoing: outgoing.clone(),
                connected_at: conn.connected_at,
                last_active_at: conn.last_active_at.clone(),
                source_ip: conn.source_ip.clone(),
                user_agent: conn.user_agent.clone(),
            },
        );
        let mut writer = tokio::spawn(async move {
            while let Some(message) = queued.recv().await {
                let closing = match &message {
                    Message::Close(frame) => Some(frame.as_ref().map_or(CLOSE_NO_STATUS, |f| f.code)),
                    _ => None,
                };
                if sink.send(message).await.is_err() {
                    return CLOSE_ABNORMAL;
                }
                if let Some(code) = closing {
                    return code;
                }
            }
            // Every sender gone: the reader is done. Flushes the answer to a client's close.
            let _ = sink.close().await;
            CLOSE_NORMAL
        });
        let mut writer_done = false;
        let (code, reason): (u16, Cow<'static, str>) = loop {
            let frame = tokio::select! {
                frame = stream.next() => frame,
                // Closed from this side (DeleteConnection, the stack stopping) or unwritable.
                code = &mut writer => {
                    writer_done = true;
                    break (code.unwrap_or(CLOSE_ABNORMAL), "Connection closed by the server".into());
                }
            };
            let message = match frame {
                None | Some(Err(_)) => break (CLOSE_ABNORMAL, "Going away".into()),
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(f) => (f.code, Cow::Owned(f.reason.as_str().to_owned())),
                        None => (CLOSE_NO_STATUS, "".into()),
                    };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => message,
            };
            let (size, (text, is_base64)) = match message {
                // Binary frames go to the function base64-encoded, as API Gateway sends them.
                Message::Binary(bytes) => {
                    (bytes.len(), (Utf8Bytes::from(base64::engine::general_purpose::STANDARD.encode(&bytes)), true))
                }
                Message::Text(text) => (text.len(), (text, false)),
                _ => continue,
            };
            if size > MAX_MESSAGE_BYTES {
                let _ = outgoing.send(close(CLOSE_TOO_BIG, "Message too big"));
                break (CLOSE_TOO_BIG, "Message too big".into());
            }
            conn.last_active_at.store(now_ms(), Ordering::Relaxed);
            self.message(&conn, text.as_str(), is_base64, &outgoing).await;
        };
        self.connections.open.lock().unwrap().remove(&conn.id);
        drop(outgoing);
        if !writer_done {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
        }
        if let Some(route) = self.routes.get("$disconnect") {
            let mut context = self.context(&conn, "$disconnect", "DISCONNECT");
            context["disconnectStatusCode"] = json!(code);
            context["disconnectReason"] = json!(reason);
            let event =
                json!({ "headers": {}, "multiValueHeaders": {}, "requestContext": context, "isBase64Encoded": false });
            self.invoke(route, &conn.id, event).await;
        }
    }

    /// One message: its route by the body's `action` (`$request.body.action`), else `$default`.
    async fn message(&self, conn: &Accepted, body: &str, is_base64: bool, outgoing: &mpsc::UnboundedSender<Message>) {
        #[derive(serde::Deserialize)]
        struct Selection<'a> {
            #[serde(borrow)]
            action: Option<Cow<'a, str>>,
        }
        // A JSON object only (serde would read a struct from an array too).
        let object = !is_base64 && body.trim_start().starts_with('{');
        let action = if object { serde_json::from_str::<Selection>(body).ok().and_then(|s| s.action) } else { None };
        let route = action.as_deref().and_then(|a| self.routes.get(a)).or_else(|| self.routes.get("$default"));
        let Some(route) = route else {
            // API Gateway's answer to a message no route takes.
            let answer = json!({ "message": "Forbidden", "connectionId": conn.id, "requestId": new_id() });
            let _ = outgoing.send(Message::Text(answer.to_string().into()));
            return;
        };
        let mut context = self.context(conn, &route.key, "MESSAGE");
        context["messageId"] = json!(new_id());
        let event = json!({ "requestContext": context, "body": body, "isBase64Encoded": is_base64 });
        self.invoke(route, &conn.id, event).await;
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "message": message }).to_string()).into_response()
}

fn query_map(uri: &Uri) -> Map<String, Value> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
        })
        .unwrap_or_default()
}

/// `headers` and `multiValueHeaders` of an event.
fn header_maps(headers: &HeaderMap) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi = Map::new();
    for (name, value) in headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        single.insert(name.as_str().to_owned(), json!(value));
        match multi.entry(name.as_str().to_owned()).or_insert_with(|| json!([])) {
            Value::Array(values) => values.push(json!(value)),
            _ => unreachable!("inserted as an array"),
        }
    }
    (single, multi)
}

/// Whether the authorizer's policy lets `method_arn` be invoked: an `Allow` matching it and
/// no `Deny` matching it (`*` and `?` wildcards, as IAM matches resources).
fn allows(response: &ApiGatewayCustomAuthorizerResponse, method_arn: &str) -> bool {
    let matching = |effect: IamPolicyEffect| {
        response.policy_document.statement.iter().any(|s| {
            s.effect == effect
                && s.action.iter().any(|a| wildcard(a, "execute-api:Invoke"))
                && s.resource.iter().any(|r| wildcard(r, method_arn))
        })
    };
    matching(IamPolicyEffect::Allow) && !matching(IamPolicyEffect::Deny)
}

fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => {
            (0..=text.len()).filter(|&i| text.is_char_boundary(i)).any(|i| wildcard(&pattern[1..], &text[i..]))
        }
        Some(c) => {
            let mut rest = text.chars();
            match rest.next() {
                Some(t) if c == '?' || c == t => wildcard(&pattern[c.len_utf8()..], rest.as_str()),
                _ => false,
            }
        }
    }
}

/// The upgrade request: authorizer, `$connect`, then the socket.
async fn upgrade(
    State(api): State<Arc<SocketApi>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    if !path.is_empty() && path.trim_start_matches('/') != api.stage() {
        return refusal(StatusCode::FORBIDDEN, "Forbidden");
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let connected_at = now_ms();
    let mut conn = Accepted {
        id: new_id(),
        connected_at,
        domain_name: header("host"),
        source_ip: peer.ip().to_string(),
        user_agent: header("user-agent"),
        authorizer: Value::Null,
        last_active_at: Arc::new(AtomicI64::new(connected_at)),
    };
    conn.authorizer = match api.authorize(&conn.id, &uri, &headers, &conn).await {
        Ok(authorizer) => authorizer,
        Err(refused) => return refused,
    };
    if let Some(route) = api.routes.get("$connect") {
        let (single, multi) = header_maps(&headers);
        let query = query_map(&uri);
        let multi_query: Map<String, Value> = query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
        let event = json!({
            "headers": single,
            "multiValueHeaders": multi,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "requestContext": api.context(&conn, "$connect", "CONNECT"),
            "isBase64Encoded": false,
        });
        let status = api.invoke(route, &conn.id, event).await;
        if !(200..300).contains(&status) {
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return refusal(status, "Forbidden");
        }
    }
    let api = api.clone();
    upgrade.max_message_size(MAX_READ_BYTES).on_upgrade(move |socket| api.run(socket, conn))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_lambda_events::apigw::{ApiGatewayCustomAuthorizerPolicy, ApiGatewayProxyResponse};
    use aws_lambda_events::iam::IamPolicyStatement;
    use tokio_tungstenite::tungstenite::{self, Message as ClientMessage};

    use super::*;

    type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    /// A socket API on free ports, its functions stubs: the authorizer lets `good` in with a
    /// context (`deny`: a Deny policy; anything else: refused) and the route function records
    /// every event it gets, refusing `$connect` when the query asks it to.
    struct Harness {
        ws_url: String,
        endpoint: String,
        events: mpsc::UnboundedReceiver<Value>,
        authorizer_calls: Arc<AtomicI64>,
        connections: Arc<Connections>,
    }

    fn policy(effect: IamPolicyEffect, resource: &str) -> ApiGatewayCustomAuthorizerPolicy {
        let mut statement = IamPolicyStatement::default();
        statement.action = vec!["execute-api:Invoke".into()];
        statement.effect = effect;
        statement.resource = vec![resource.into()];
        let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
        policy.statement = vec![statement];
        policy
    }

    async fn harness() -> Harness {
        let (seen, events) = mpsc::unbounded_channel();
        let route: WebSocketHandler = Arc::new(move |request: ApiGatewayWebsocketProxyRequest| {
            let seen = seen.clone();
            Box::pin(async move {
                let refuse = request.query_string_parameters.first("refuse").is_some();
                let _ = seen.send(serde_json::to_value(&request).unwrap());
                let mut response = ApiGatewayProxyResponse::default();
                response.status_code = if refuse { 403 } else { 200 };
                response
            })
        });
        let authorizer_calls = Arc::new(AtomicI64::new(0));
        let calls = authorizer_calls.clone();
        let authorizer: AuthorizerHandler = Arc::new(move |request: ApiGatewayCustomAuthorizerRequestTypeRequest| {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let token = request.query_string_parameters.first("token").unwrap_or_default().to_owned();
                let arn = request.method_arn.clone().unwrap_or_default();
                let effect = match token.as_str() {
                    "good" => IamPolicyEffect::Allow,
                    "deny" => IamPolicyEffect::Deny,
                    _ => return Err("Unauthorized".to_owned()),
                };
                let mut response = ApiGatewayCustomAuthorizerResponse::default();
                response.principal_id = Some("user-1".into());
                response.policy_document = policy(effect, &arn);
                response.context = json!({ "sub": "user-1", "groups": "user" });
                Ok(response)
            })
        });
        let connections = Connections::new("dev".into(), Arc::default());
        let routes = ["$connect", "$disconnect", "$default", "send"]
            .map(|key| Route { key: key.into(), function: "Live".into(), handler: route.clone() })
            .into_iter()
            .collect();
        let identity_source = vec![IdentitySource::QueryString("token".into())];
        let authorizer = Authorizer { function: "Authorizer".into(), identity_source, handler: authorizer };
        let api = SocketApi::new("abcde12345".into(), routes, Some(authorizer), connections.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ws_url = format!("ws://{}", listener.local_addr().unwrap());
        let service = api.router().into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/dev", listener.local_addr().unwrap());
        let management = connections.router();
        tokio::spawn(async move { axum::serve(listener, management).await });
        Harness { ws_url, endpoint, events, authorizer_calls, connections }
    }

    impl Harness {
        async fn connect(&self, query: &str) -> Result<Client, tungstenite::Error> {
            tokio_tungstenite::connect_async(format!("{}/dev?{query}", self.ws_url)).await.map(|(client, _)| client)
        }

        async fn event(&mut self) -> Value {
            tokio::time::timeout(Duration::from_secs(5), self.events.recv()).await.expect("an event").unwrap()
        }

        async fn no_more_events(&mut self) {
            let more = tokio::time::timeout(Duration::from_millis(300), self.events.recv()).await;
            assert!(more.is_err(), "one event too many: {more:?}");
        }
    }

    fn refused_status(result: Result<Client, tungstenite::Error>) -> u16 {
        match result {
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            other => panic!("not refused: {:?}", other.map(|_| "connected")),
        }
    }

    async fn next_text(client: &mut Client) -> String {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("a frame") {
                Some(Ok(ClientMessage::Text(text))) => return text.to_string(),
                Some(Ok(ClientMessage::Ping(_) | ClientMessage::Pong(_))) => continue,
                other => panic!("not a text frame: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_authorizer_decides_before_the_upgrade() {
        let mut h = harness().await;
        // No token: API Gateway refuses without calling the authorizer.
        assert_eq!(refused_status(h.connect("").await), 401);
        assert_eq!(refused_status(h.connect("token=").await), 401);
        assert_eq!(h.authorizer_calls.load(Ordering::SeqCst), 0);
        assert_eq!(refused_status(h.connect("token=garbage").await), 401);
        assert_eq!(refused_status(h.connect("token=deny").await), 403);
        assert_eq!(h.authorizer_calls.load(Ordering::SeqCst), 2);
        // Allowed by the authorizer, refused by $connect's function.
        assert_eq!(refused_status(h.connect("token=good&refuse=1").await), 403);
        let connect = h.event().await;
        assert_eq!(connect["requestContext"]["routeKey"], "$connect");
        h.no_more_events().await; // no $disconnect for a connection that never was
        assert_eq!(h.connections.count(), 0);
    }

    #[tokio::test]
    async fn messages_go_to_the_route_their_action_names_with_the_authorizers_context() {
        let mut h = harness().await;
        let mut client = h.connect("token=good").await.unwrap();
        let connect = h.event().await;
        let context = &connect["requestContext"];
        assert_eq!((context["routeKey"].as_str(), context["eventType"].as_str()), (Some("$connect"), Some("CONNECT")));
        let request: ApiGatewayWebsocketProxyRequest = serde_json::from_value(connect.clone()).unwrap();
        assert_eq!(request.query_string_parameters.first("token"), Some("good"));
        let id = context["connectionId"].as_str().unwrap().to_owned();
        assert!(id.len() == 16 && id.ends_with('='), "API Gateway's look: {id}");
        assert_eq!(context["authorizer"]["sub"], "user-1");
        assert_eq!(context["authorizer"]["principalId"], "user-1");
        assert_eq!((context["apiId"].as_str(), context["stage"].as_str()), (Some("abcde12345"), Some("dev")));

        for (body, route) in [
            (r#"{"action":"send","text":"namaste"}"#, "send"),
            (r#"{"action":"unknown"}"#, "$default"),
            (r#"{"action":5}"#, "$default"),
            ("not json", "$default"),
            (r#"["send"]"#, "$default"),
        ] {
            client.send(ClientMessage::text(body)).await.unwrap();
            let event = h.event().await;
            let context = &event["requestContext"];
            assert_eq!(context["routeKey"], route, "{body}");
            assert_eq!(context["eventType"], "MESSAGE");
            assert_eq!(context["connectionId"], id.as_str());
            assert!(context["messageId"].is_string());
            assert_eq!(context["authorizer"]["groups"], "user", "every route sees the authorizer's context");
            assert_eq!(event["body"], body);
        }
        client.close(None).await.unwrap();
        let disconnect = h.event().await;
        assert_eq!(disconnect["requestContext"]["eventType"], "DISCONNECT");
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1005);
        assert_eq!(disconnect["requestContext"]["connectionId"], id.as_str());
        h.no_more_events().await;
    }

    #[tokio::test]
    async fn one_connections_messages_arrive_in_order() {
        let mut h = harness().await;
        let mut client = h.connect("token=good").await.unwrap();
        h.event().await;
        for n in 0..50 {
            client.send(ClientMessage::text(format!(r#"{{"action":"send","n":{n}}}"#))).await.unwrap();
        }
        for n in 0..50 {
            let body: Value = serde_json::from_str(h.event().await["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["n"], n);
        }
    }

    #[tokio::test]
    async fn the_management_api_posts_to_reads_and_deletes_a_connection() {
        let mut h = harness().await;
        let mut client = h.connect("token=good").await.unwrap();
        let id = h.event().await["requestContext"]["connectionId"].as_str().unwrap().to_owned();
        // The SDK percent-encodes the id in the path (`=` as %3D).
        let url = format!("{}/@connections/{}", h.endpoint, id.replace('=', "%3D"));
        let http = reqwest::Client::new();
        let posted = http.post(&url).body(r#"{"type":"message"}"#).send().await.unwrap();
        assert_eq!(posted.status(), 200);
        assert_eq!(next_text(&mut client).await, r#"{"type":"message"}"#);

        let info: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["identity"]["sourceIp"], "127.0.0.1");
        assert!(info["connectedAt"].as_str().unwrap().ends_with('Z'), "ISO 8601: {info}");
        assert!(info["lastActiveAt"].is_string());

        let too_big = http.post(&url).body(vec![b'a'; MAX_MESSAGE_BYTES + 1]).send().await.unwrap();
        assert_eq!(too_big.status(), 413);
        let wrong_stage = http.post(url.replace("/dev/", "/prod/")).body("x").send().await.unwrap();
        assert_eq!(wrong_stage.status(), 403);

        let deleted = http.delete(&url).send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        match tokio::time::timeout(Duration::from_secs(5), client.next()).await.unwrap() {
            Some(Ok(ClientMessage::Close(frame))) => assert_eq!(frame.map(|f| u16::from(f.code)), Some(1000)),
            other => panic!("not closed: {other:?}"),
        }
        let disconnect = h.event().await;
        assert_eq!(disconnect["requestContext"]["routeKey"], "$disconnect");
        h.no_more_events().await;

        let gone = http.post(&url).body("late").send().await.unwrap();
        assert_eq!(gone.status(), 410);
        assert_eq!(gone.headers()["x-amzn-errortype"], "GoneException");
        assert_eq!(http.get(&url).send().await.unwrap().status(), 410);
        assert_eq!(http.delete(&url).send().await.unwrap().status(), 410);
    }

    #[tokio::test]
    async fn a_message_over_128_kib_closes_the_connection_with_1009() {
        let mut h = harness().await;
        let mut client = h.connect("token=good").await.unwrap();
        h.event().await;
        client.send(ClientMessage::text("a".repeat(MAX_MESSAGE_BYTES))).await.unwrap();
        assert_eq!(h.event().await["requestContext"]["routeKey"], "$default", "128 KiB is allowed");
        client.send(ClientMessage::text("a".repeat(MAX_MESSAGE_BYTES + 1))).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(5), client.next()).await.unwrap() {
            Some(Ok(ClientMessage::Close(frame))) => assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009)),
            other => panic!("not closed: {other:?}"),
        }
        let disconnect = h.event().await;
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1009);
        h.no_more_events().await;
    }

    #[tokio::test]
    async fn a_dropped_socket_runs_disconnect_once() {
        let mut h = harness().await;
        let client = h.connect("token=good").await.unwrap();
        let id = h.event().await["requestContext"]["connectionId"].clone();
        drop(client); // no close frame: the TCP connection just ends
        let disconnect = h.event().await;
        assert_eq!(disconnect["requestContext"]["connectionId"], id);
        assert_eq!(disconnect["requestContext"]["disconnectStatusCode"], 1006);
        h.no_more_events().await;
        assert_eq!(h.connections.count(), 0);
    }

    #[tokio::test]
    async fn connections_run_side_by_side() {
        // A route that holds the first connection's message does not hold the second's.
        let mut h = harness().await;
        let mut first = h.connect("token=good").await.unwrap();
        let mut second = h.connect("token=good").await.unwrap();
        h.event().await;
        h.event().await;
        first.send(ClientMessage::text("one")).await.unwrap();
        second.send(ClientMessage::text("two")).await.unwrap();
        let mut bodies = [h.event().await["body"].clone(), h.event().await["body"].clone()];
        bodies.sort_by_key(|b| b.to_string());
        assert_eq!(bodies, [json!("one"), json!("two")]);
    }

    #[test]
    fn policies_match_resources_with_wildcards() {
        let arn = "arn:aws:execute-api:ap-south-1:123456789012:abc/dev/$connect";
        let allow = |resource: &str| {
            let mut response = ApiGatewayCustomAuthorizerResponse::default();
            response.policy_document = policy(IamPolicyEffect::Allow, resource);
            allows(&response, arn)
        };
        assert!(allow(arn));
        assert!(allow("arn:aws:execute-api:ap-south-1:123456789012:abc/*"));
        assert!(allow("arn:aws:execute-api:*:*:abc/dev/?connect"));
        assert!(!allow("arn:aws:execute-api:ap-south-1:123456789012:abc/prod/*"));
        assert!(!allow("arn:aws:execute-api:ap-south-1:123456789012:other/*"));
        let mut both = ApiGatewayCustomAuthorizerResponse::default();
        both.policy_document = policy(IamPolicyEffect::Allow, "*");
        both.policy_document.statement.extend(policy(IamPolicyEffect::Deny, arn).statement);
        assert!(!allows(&both, arn), "a matching Deny wins");
    }
}
