use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = digio_webhook::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|req: Request| async { Ok::<_, Error>(digio_webhook::handle(&app, req).await) })).await
}
