use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = custom_sms_sender::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<Value>| async {
        custom_sms_sender::handle(&app, event.payload).await.map_err(Error::from)
    }))
    .await
}
