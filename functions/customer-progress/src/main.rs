// The runtime's future nests the SDK's, the retry's and the batch's: deeper than the default
// 128 layout queries.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = customer_progress::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(customer_progress::handle(&app, event.payload).await)
    }))
    .await
}
