use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::http::Request;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = top_up::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<Request>| async { Ok::<_, Error>(top_up::handle(&app, event.payload).await) }))
        .await
}
