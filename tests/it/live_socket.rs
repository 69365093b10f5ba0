//! The local stack's WebSocket API (template.yaml's `WebSocketApi`) as the apps meet it: the
//! real `$connect` authorizer decides before the upgrade, and the live-session function's
//! Management API calls (`PostToConnection`) reach the socket, through the real SDK client.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures::SinkExt;
use integration_tests::*;
use tokio_tungstenite::tungstenite::Message;

/// The stack's log lines of `route` invocations for connection `id`.
fn invocations(route: &str, id: &str) -> usize {
    captured_logs()
        .lines()
        .filter(|l| l.contains(r#""message":"websocket""#) && l.contains(&format!(r#""route":"{route}""#)))
        .filter(|l| l.contains(id))
        .count()
}

/// Waits until `$disconnect` ran for `id`, then checks it ran once.
async fn disconnected_once(id: &str) {
    for _ in 0..50 {
        if invocations("$disconnect", id) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(invocations("$disconnect", id), 1, "$disconnect runs once for {id}");
}

/// The one open connection's id.
fn only_connection(stack: &infra::LocalStack) -> String {
    let ids = stack.ws_connections.as_ref().expect("the template has a WebSocket API").ids();
    let [id] = ids.as_slice() else { panic!("one connection expected: {ids:?}") };
    id.clone()
}

#[tokio::test]
async fn a_connection_without_a_token_or_with_a_garbage_token_is_refused() {
    let stack = stack().await;
    assert_eq!(refused_status(open_socket(&stack, None).await), 401);
    assert_eq!(refused_status(open_socket(&stack, Some("garbage")).await), 401);
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    assert_eq!(refused_status(open_socket(&stack, Some(forged)).await), 401);
    assert_eq!(stack.ws_connections.as_ref().unwrap().count(), 0);
    assert_eq!(invocations("$connect", ""), 0, "$connect never ran for a refused caller");
}

#[tokio::test]
async fn post_to_connection_reaches_the_socket_until_the_client_goes() {
    let stack = stack().await;
    let (token, _) = customer(&stack).await;
    let mut socket = open_socket(&stack, Some(&token)).await.expect("a signed-in customer connects");
    let id = only_connection(&stack);
    assert_eq!(invocations("$connect", &id), 1);
    let management = management_api(&stack);

    let frame = r#"{"type":"message","text":"namaste"}"#;
    management.post_to_connection().connection_id(&id).data(Blob::new(frame)).send().await.unwrap();
    assert_eq!(next_text(&mut socket).await, frame);
    assert!(stack.calls.every().contains(&"execute-api:PostToConnection".to_owned()));

    let info = management.get_connection().connection_id(&id).send().await.unwrap();
    assert_eq!(info.identity().and_then(|i| i.source_ip()), Some("127.0.0.1"));
    assert!(info.connected_at().is_some() && info.last_active_at().is_some());

    // A message goes to its route with the connection's id.
    socket.send(Message::text(r#"{"action":"heartbeat"}"#)).await.unwrap();
    for _ in 0..50 {
        if invocations("heartbeat", &id) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(invocations("heartbeat", &id), 1);

    socket.close(None).await.unwrap();
    disconnected_once(&id).await;
    let gone = management.post_to_connection().connection_id(&id).data(Blob::new("late")).send().await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");
    let gone = management.get_connection().connection_id(&id).send().await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");
}

#[tokio::test]
async fn delete_connection_closes_the_socket_and_runs_disconnect_once() {
    let stack = stack().await;
    let (token, _) = customer(&stack).await;
    let mut socket = open_socket(&stack, Some(&token)).await.unwrap_or_else(|e| panic!("{e}: {}", captured_logs()));
    let id = only_connection(&stack);
    let management = management_api(&stack);
    management.delete_connection().connection_id(&id).send().await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut socket)).await.unwrap() {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("the socket is not closed: {other:?}"),
    }
    disconnected_once(&id).await;
    let gone = management.post_to_connection().connection_id(&id).data(Blob::new("late")).send().await.unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");
}

/// The whole loop: a message the live-session function refuses comes back on the same
/// socket, through the function's Management API client and the local endpoint; the
/// connection stays open for the next one.
#[tokio::test]
async fn the_function_answers_on_the_socket_through_the_management_api() {
    let stack = stack().await;
    let (token, _) = customer(&stack).await;
    let mut socket = open_socket(&stack, Some(&token)).await.unwrap_or_else(|e| panic!("{e}: {}", captured_logs()));
    for (body, code) in [(r#"{"action":"dance"}"#, "unknown_action"), ("not json", "invalid_message")] {
        socket.send(Message::text(body)).await.unwrap();
        let answer: serde_json::Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        assert_eq!((answer["type"].as_str(), answer["code"].as_str()), (Some("error"), Some(code)), "{body}: {answer}");
    }
    assert!(stack.calls.every().iter().filter(|c| *c == "execute-api:PostToConnection").count() >= 2);
}
