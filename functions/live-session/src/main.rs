use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = live_session::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async {
        Ok::<_, Error>(live_session::handle(&app, event.payload).await)
    }))
    .await
}
