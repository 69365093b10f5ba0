//! Clients of the stack's WebSocket API, as the apps connect (the access token in the
//! `token` query parameter), and the Management API client its functions use.

use std::time::Duration;

use futures::StreamExt;
use infra::LocalStack;
use tokio_tungstenite::tungstenite::{self, Message};

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a connection to the stack's WebSocket API (at its stage path, as on AWS), with the
/// access token if given; the handshake's refusal as an error.
pub async fn open_socket(stack: &LocalStack, token: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let stage = &stack.envs["live-session"]["WEBSOCKET_ENDPOINT"];
    let stage = stage.rsplit('/').next().unwrap_or_default();
    let query = token.map(|t| format!("?token={}", form_urlencoded_value(t))).unwrap_or_default();
    let url = format!("{}/{stage}{query}", stack.ws_url);
    tokio_tungstenite::connect_async(url).await.map(|(socket, _)| socket)
}

/// Tokens are base64url and dots; anything else is escaped.
fn form_urlencoded_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The HTTP status a handshake was refused with; panics when it was not refused.
pub fn refused_status(result: Result<Socket, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the handshake failed without an answer: {other}"),
        Ok(_) => panic!("the connection was accepted"),
    }
}

/// The next text frame (pings skipped), within 5 seconds.
pub async fn next_text(socket: &mut Socket) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame within 5 s") {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("not a text frame: {other:?}"),
        }
    }
}

/// The Management API client as the live-session function makes it: the stack's SDK
/// configuration, its endpoint the function's `WEBSOCKET_ENDPOINT`.
pub fn management_api(stack: &LocalStack) -> aws_sdk_apigatewaymanagement::Client {
    let endpoint = &stack.envs["live-session"]["WEBSOCKET_ENDPOINT"];
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(&stack.sdk).endpoint_url(endpoint).build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// Sends `frame` as one text frame, as it is (a JSON object or anything else).
pub async fn send_frame(socket: &mut Socket, frame: &str) {
    futures::SinkExt::send(socket, Message::text(frame)).await.expect("the socket takes a frame");
}

/// Sends `message` as one text frame of JSON.
pub async fn send_json(socket: &mut Socket, message: &serde_json::Value) {
    send_frame(socket, &message.to_string()).await;
}

/// The next text frame as JSON, within 5 seconds.
pub async fn next_json(socket: &mut Socket) -> serde_json::Value {
    let text = next_text(socket).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The next server message of `kind` (its `type`), skipping others, within 5 seconds each.
pub async fn next_of_type(socket: &mut Socket, kind: &str) -> serde_json::Value {
    for _ in 0..20 {
        let message = next_json(socket).await;
        if message["type"] == kind {
            return message;
        }
    }
    panic!("no `{kind}` message among the next 20");
}

/// Waits `window` and panics on any text frame in it: for "happens once" and "reaches
/// nobody else" checks, the window long enough for a duplicate or a leak to arrive.
pub async fn expect_no_frame_within(socket: &mut Socket, window: Duration) {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("nothing expected within {window:?}, got {other:?}"),
        }
    }
}
