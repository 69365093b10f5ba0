//! The WebSocket API's contract: an AsyncAPI 3.0 document of every message a client sends
//! (`shared::domain::booking::chat::ClientMessage`, one per route key, selected on `action`)
//! and every message the server pushes (`ServerMessage`, told apart by `type`), generated
//! from those Rust types as the HTTP contract is. The local stack serves it at `/asyncapi.json`.

use serde_json::{Map, Value, json};
use shared::domain::booking::chat::{ClientMessage, ServerMessage};
use shared::http::openapi::{Registry, schema};

const DESCRIPTION: &str = "\
The live-session channel of AstroKiran: an API Gateway WebSocket API. Connect with the Cognito \
`access_token` as the `token` query parameter (`wss://{host}/{stage}?token=...`); a missing, \
expired or foreign token is refused with 401 before the upgrade. Send JSON objects whose `action` \
is one of the client messages below; the server answers only by pushing messages (tagged by \
`type`), to every open connection of the user concerned. A refused message is answered with an \
`error` message and the connection stays open. Send a `heartbeat` every 20 seconds or so while in \
a session: a party silent for 60 seconds has left, and the session ends.";

/// The variants of the tagged enum `name` in `registry`, by their tag's value.
fn variants(registry: &Registry, name: &str, tag: &str) -> Vec<(String, Value)> {
    let one_of = registry.schemas[name]["oneOf"].as_array().unwrap_or_else(|| panic!("{name} is a oneOf"));
    one_of
        .iter()
        .map(|variant| {
            let value = variant["properties"][tag]["enum"][0]
                .as_str()
                .unwrap_or_else(|| panic!("a variant of {name} without its {tag}: {variant}"))
                .to_owned();
            (value, variant.clone())
        })
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut registry = Registry::default();
    schema::<ClientMessage>(&mut registry);
    schema::<ServerMessage>(&mut registry);
    let client = variants(&registry, "ClientMessage", "action");
    let server = variants(&registry, "ServerMessage", "type");
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for (direction, list) in [("send", &client), ("receive", &server)] {
        for (name, payload) in list.iter() {
            let id = format!("{direction}_{name}");
            let description = payload["description"].as_str().unwrap_or_default().to_owned();
            messages.insert(
                id.clone(),
                json!({ "name": name, "title": name, "summary": description, "contentType": "application/json", "payload": payload }),
            );
            channel_messages.insert(id.clone(), json!({ "$ref": format!("#/components/messages/{id}") }));
            operations.insert(
                id.clone(),
                json!({
                    "action": direction,
                    "channel": { "$ref": "#/channels/session" },
                    "messages": [{ "$ref": format!("#/channels/session/messages/{id}") }],
                }),
            );
        }
    }
    let mut schemas = registry.schemas;
    // The messages carry their own payloads; the enums themselves are not needed.
    schemas.remove("ClientMessage");
    schemas.remove("ServerMessage");
    json!({
        "asyncapi": "3.0.0",
        "info": { "title": "AstroKiran live sessions", "version": env!("CARGO_PKG_VERSION"), "description": DESCRIPTION },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:3001", "protocol": "ws", "pathname": "/{stage}",
                "description": "the local stack (scripts/local-stack.sh)",
                "variables": { "stage": { "default": "dev" } },
            },
        },
        "channels": {
            "session": {
                "address": "/",
                "description": "One WebSocket per device; messages routed on `action` (API Gateway's route selection).",
                "messages": channel_messages,
                "bindings": { "ws": { "query": {
                    "type": "object", "required": ["token"],
                    "properties": { "token": { "type": "string", "description": "the Cognito access token" } },
                } } },
            },
        },
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

/// The client actions the document lists (each must be a route key of the WebSocket API).
pub fn client_actions(doc: &Value) -> Vec<String> {
    names(doc, "send")
}

/// The server message types the document lists.
pub fn server_types(doc: &Value) -> Vec<String> {
    names(doc, "receive")
}

fn names(doc: &Value, direction: &str) -> Vec<String> {
    let ops = doc["operations"].as_object().into_iter().flatten();
    ops.filter(|(_, op)| op["action"] == direction)
        .filter_map(|(id, _)| id.strip_prefix(&format!("{direction}_")).map(str::to_owned))
        .collect()
}
