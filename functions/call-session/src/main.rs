use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let app = call_session::App::from_env(&shared::config::aws().await, &shared::config::ProcessEnv)?;
    run(service_fn(|req: Request| async { Ok::<_, Error>(call_session::handle(&app, req).await) })).await
}
