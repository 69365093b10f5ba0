//! Pushing to the parties of live sessions over the WebSocket API: API Gateway's Management
//! API (`PostToConnection`) to every open connection of a user; a connection API Gateway
//! says is gone (410) is forgotten. A push is a courtesy on top of the store: a client that
//! missed one (offline, reconnecting) reads the consultation and its messages again, so a
//! failed push is logged, never an error of the change that caused it.

use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use chrono::Utc;

use crate::config::{self, ConfigError, Vars};
use crate::domain::booking::chat::ServerMessage;
use crate::domain::user::UserId;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct Push {
    client: Client,
}

/// What one push to a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// API Gateway no longer has it (410).
    Gone,
    Failed,
}

impl Push {
    /// The Management API at `WEBSOCKET_ENDPOINT` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        let endpoint = config::required(vars, "WEBSOCKET_ENDPOINT")?;
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).endpoint_url(endpoint).build();
        Ok(Self { client: Client::from_conf(conf) })
    }

    /// `message` to one connection.
    pub async fn to_connection(&self, connection_id: &str, message: &ServerMessage) -> Delivery {
        let body = serde_json::to_vec(message).expect("server messages serialize");
        match self.client.post_to_connection().connection_id(connection_id).data(Blob::new(body)).send().await {
            Ok(_) => Delivery::Delivered,
            Err(e) if matches!(e.as_service_error(), Some(PostToConnectionError::GoneException(_))) => Delivery::Gone,
            Err(e) => {
                tracing::warn!(connection_id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "push failed");
                Delivery::Failed
            }
        }
    }

    /// `message` to every open connection of `user` (one per device: a handful, pushed in
    /// turn); how many it reached. Connections gone are removed from the store.
    pub async fn to_user(&self, store: &Store, user: &UserId, message: &ServerMessage) -> usize {
        let connections = match store.connections_of(user, Utc::now()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%user, error = %e, "connections not read; push skipped");
                return 0;
            }
        };
        let mut delivered = 0;
        for id in &connections {
            match self.to_connection(id, message).await {
                Delivery::Delivered => delivered += 1,
                Delivery::Gone => {
                    if let Err(e) = store.remove_connection(user, id).await {
                        tracing::warn!(connection_id = %id, error = %e, "gone connection not removed");
                    }
                }
                Delivery::Failed => {}
            }
        }
        delivered
    }
}

/// A function that changes live sessions and tells their parties: the store, the revenue
/// share (closing settles with it) and the push.
#[derive(Clone, Debug)]
pub struct SessionApp {
    pub store: Store,
    pub share: crate::domain::booking::RevenueShare,
    pub push: Push,
}

impl SessionApp {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            share: crate::domain::booking::RevenueShare::from_env(vars)?,
            push: Push::from_env(sdk, vars)?,
        })
    }

    /// The party other than `by` gets `c` as it now is (`by` has it in their answer).
    pub async fn tell_other(&self, c: &crate::domain::booking::Consultation, by: crate::domain::booking::Party) {
        let other = if by == crate::domain::booking::Party::Customer { &c.astrologer_id } else { &c.customer_id };
        self.push.to_user(&self.store, other, &ServerMessage::consultation(c)).await;
    }

    /// Both parties' connections get `c` as it now is.
    pub async fn tell_both(&self, c: &crate::domain::booking::Consultation) {
        let update = ServerMessage::consultation(c);
        self.push.to_user(&self.store, &c.customer_id, &update).await;
        self.push.to_user(&self.store, &c.astrologer_id, &update).await;
    }
}
