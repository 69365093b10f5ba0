//! Every function of the template, built in-process from its crate's `App` and `handle`,
//! with the environment variables the template gives it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Result, bail};
use aws_config::SdkConfig;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayProxyResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::streams::DynamoDbEventResponse;
use serde_json::Value;
use shared::http::{Request, Response};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// An HTTP function's handler: the `lambda_http::Request` lambda_http makes of API Gateway's
/// event, and the `Response` it turns back into API Gateway's (see [`crate::gateway::invoke`]).
pub type HttpHandler = Arc<dyn Fn(Request) -> BoxFuture<Response> + Send + Sync>;
pub type SqsHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<SqsBatchResponse> + Send + Sync>;
pub type StreamHandler = Arc<dyn Fn(StreamEvent) -> BoxFuture<DynamoDbEventResponse> + Send + Sync>;
/// Any function invoked with a JSON event that returns JSON: Cognito triggers, schedules.
pub type TriggerHandler = Arc<dyn Fn(Value) -> BoxFuture<Result<Value, String>> + Send + Sync>;
/// A WebSocket API's `REQUEST` authorizer: `Err` is its refusal (API Gateway's 401).
pub type AuthorizerHandler = Arc<
    dyn Fn(
            ApiGatewayCustomAuthorizerRequestTypeRequest,
        ) -> BoxFuture<Result<ApiGatewayCustomAuthorizerResponse, String>>
        + Send
        + Sync,
>;
/// A WebSocket route's function (`$connect`, `$disconnect`, `$default`, custom routes).
pub type WebSocketHandler =
    Arc<dyn Fn(ApiGatewayWebsocketProxyRequest) -> BoxFuture<ApiGatewayProxyResponse> + Send + Sync>;

#[derive(Clone)]
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
    /// Invoked by Cognito (PostConfirmation, CustomSMSSender).
    Trigger(TriggerHandler),
    /// Invoked by an EventBridge schedule.
    Scheduled(TriggerHandler),
    /// Invoked with DynamoDB stream batches.
    Stream(StreamHandler),
    /// Invoked by the WebSocket API on `$connect`, before the connection is accepted.
    Authorizer(AuthorizerHandler),
    /// Invoked by the WebSocket API for its routes.
    WebSocket(WebSocketHandler),
}

macro_rules! handler {
    ($variant:ident, $app:expr, |$a:ident, $event:ident| $body:expr) => {{
        let app = Arc::new($app);
        Handler::$variant(Arc::new(move |$event| {
            let $a = app.clone();
            Box::pin(async move { $body })
        }))
    }};
}

/// The handler for a template function's binary, after its cold start (functions with
/// secrets read them from SSM on first use); an error names a variable the template does not give it, or
/// a binary the local stack does not know.
pub async fn build(binary: &str, sdk: &SdkConfig, env: &HashMap<String, String>) -> Result<Handler> {
    Ok(match binary {
        "otp-signup" => {
            handler!(Http, otp_signup::App::from_env(sdk, env)?, |app, req| otp_signup::handle(&app, req).await)
        }
        "profile" => handler!(Http, profile::App::from_env(sdk, env)?, |app, req| profile::handle(&app, req).await),
        "top-up" => handler!(Http, top_up::App::from_env(sdk, env)?, |app, req| top_up::handle(&app, req).await),
        "top-up-reconcile" => handler!(Scheduled, top_up_reconcile::App::from_env(sdk, env)?, |app, event| {
            top_up_reconcile::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "astrologer-profile" => handler!(Http, astrologer_profile::App::from_env(sdk, env)?, |app, req| {
            astrologer_profile::handle(&app, req).await
        }),
        "book" => handler!(Http, book::App::from_env(sdk, env)?, |app, req| book::handle(&app, req).await),
        "no-show-sweep" => handler!(Scheduled, no_show_sweep::App::from_env(sdk, env)?, |app, event| {
            no_show_sweep::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "catalogue" => {
            handler!(Http, catalogue::App::from_env(sdk, env)?, |app, req| catalogue::handle(&app, req).await)
        }
        "post-confirmation" => handler!(Trigger, post_confirmation::App::from_env(sdk, env)?, |app, event| {
            post_confirmation::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "custom-sms-sender" => handler!(Trigger, custom_sms_sender::App::from_env(sdk, env)?, |app, event| {
            custom_sms_sender::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "kyc-initiate" => {
            handler!(Http, kyc_initiate::App::from_env(sdk, env)?, |app, req| kyc_initiate::handle(&app, req).await)
        }
        "digio-webhook" => {
            handler!(Http, digio_webhook::App::from_env(sdk, env)?, |app, req| digio_webhook::handle(&app, req).await)
        }
        "call-session" => {
            handler!(Http, call_session::App::from_env(sdk, env)?, |app, req| call_session::handle(&app, req).await)
        }
        "kyc-expiry" => handler!(Scheduled, kyc_expiry::App::from_env(sdk, env)?, |app, event| {
            kyc_expiry::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "notifications" => {
            handler!(Sqs, notifications::App::from_env(sdk, env)?, |app, event| notifications::handle(&app, event)
                .await)
        }
        "outbox-relay" => {
            handler!(Stream, outbox_relay::App::from_env(sdk, env)?, |app, event| outbox_relay::handle(&app, event)
                .await)
        }
        "operations" => {
            handler!(Http, operations::App::from_env(sdk, env)?, |app, req| operations::handle(&app, req).await)
        }
        "inbox" => handler!(Http, inbox::App::from_env(sdk, env)?, |app, req| inbox::handle(&app, req).await),
        "review" => handler!(Http, review::App::from_env(sdk, env)?, |app, req| review::handle(&app, req).await),
        "rating-aggregator" => handler!(Sqs, rating_aggregator::App::from_env(sdk, env)?, |app, event| {
            rating_aggregator::handle(&app, event).await
        }),
        "customer-progress" => handler!(Sqs, customer_progress::App::from_env(sdk, env)?, |app, event| {
            customer_progress::handle(&app, event).await
        }),
        "connect-authorizer" => handler!(Authorizer, connect_authorizer::App::from_env(sdk, env)?, |app, event| {
            connect_authorizer::handle(&app, event).await.map_err(|e| e.to_string())
        }),
        "live-session" => {
            handler!(WebSocket, live_session::App::from_env(sdk, env)?, |app, event| live_session::handle(&app, event)
                .await)
        }
        other => bail!("template function binary {other:?} has no handler in infra/src/functions.rs"),
    })
}
