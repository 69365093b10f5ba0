use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = connect_authorizer::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async {
        connect_authorizer::handle(&app, event.payload).await.map_err(Error::from)
    }))
    .await
}
