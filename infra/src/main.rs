//! `local-stack`: the whole backend on 127.0.0.1, no Docker, no AWS account.

use anyhow::Result;
use infra::{LocalStack, Options, moto::MotoServer};

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let api_port = std::env::var("API_PORT").unwrap_or_else(|_| "3000".into());
    let aws_port = std::env::var("AWS_PORT").unwrap_or_else(|_| "4566".into());
    let ws_port = std::env::var("WS_PORT").unwrap_or_else(|_| "3001".into());
    let razorpay_port = std::env::var("RAZORPAY_PORT").unwrap_or_else(|_| "3100".into());
    let digio_port = std::env::var("DIGIO_PORT").unwrap_or_else(|_| "3200".into());
    let agora_port = std::env::var("AGORA_PORT").unwrap_or_else(|_| "3300".into());
    // A port in use is named with the variable that moves it, before anything starts.
    for (var, port) in [
        ("API_PORT", &api_port),
        ("AWS_PORT", &aws_port),
        ("WS_PORT", &ws_port),
        ("RAZORPAY_PORT", &razorpay_port),
        ("DIGIO_PORT", &digio_port),
        ("AGORA_PORT", &agora_port),
    ] {
        if let Err(e) = std::net::TcpListener::bind(format!("127.0.0.1:{port}")) {
            eprintln!("local-stack: port {port} ({var}) is not free: {e}.");
            eprintln!(
                "  Stop whatever holds it (another local stack?) or choose another: {var}=<port> scripts/local-stack.sh"
            );
            std::process::exit(1);
        }
    }

    let moto = match std::env::var("MOTO_ENDPOINT") {
        Ok(_) => None,
        Err(_) => Some(tokio::task::spawn_blocking(MotoServer::start).await??),
    };
    let moto_endpoint = std::env::var("MOTO_ENDPOINT")
        .unwrap_or_else(|_| moto.as_ref().map(|m| m.endpoint.clone()).unwrap_or_default());
    let mut opts = Options::new(moto_endpoint.clone(), "astrokiran-local");
    opts.api_addr = format!("127.0.0.1:{api_port}");
    opts.aws_addr = format!("127.0.0.1:{aws_port}");
    opts.ws_addr = format!("127.0.0.1:{ws_port}");
    let every: u64 = std::env::var("LOCAL_SCHEDULE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    opts.schedule_every = Some(std::time::Duration::from_secs(every));
    opts.razorpay_addr = format!("127.0.0.1:{razorpay_port}");
    opts.digio_addr = format!("127.0.0.1:{digio_port}");
    opts.agora_addr = format!("127.0.0.1:{agora_port}");
    opts.seed_promotion_rules = true;
    let stack = LocalStack::start(opts).await?;

    let sam_dir = infra::repo_root().join(".local-stack");
    stack.write_sam_files(&sam_dir)?;
    let p = &stack.provisioned;
    let api = &stack.api_url;
    println!();
    println!("  Routes (template.yaml):");
    for (def, _) in &stack.functions {
        for r in &def.http_routes {
            println!(
                "    {:<7} {:<32} -> {}{}",
                r.method,
                r.path,
                def.logical_id,
                if r.authorized { "  (JWT)" } else { "" }
            );
        }
        for q in &def.queues {
            println!("    SQS     {:<32} -> {}", q, def.logical_id);
        }
        for s in &def.streams {
            println!("    stream  {:<32} -> {}", format!("{}.StreamArn", s.table), def.logical_id);
        }
        for schedule in &def.schedules {
            println!("    every   {:<32} -> {} (locally every {every}s)", schedule, def.logical_id);
        }
    }
    if let Some(api) = infra::template::Template::load(&infra::repo_root().join("template.yaml"))?.websocket_api()? {
        for route in &api.routes {
            let auth = route.authorizer.as_ref().map(|a| format!("  ({})", a.function)).unwrap_or_default();
            println!("    ws      {:<32} -> {}{auth}", route.key, route.function);
        }
    }
    println!("  table {}  user pool {}  app client {}", stack.table_name(), p.user_pool_id, p.user_pool_client_id);
    println!("  promotion rule seeded: {}", infra::default_promotion_rule().name);
    println!();
    println!("================================================================================");
    println!(" AstroKiran local stack is ready.");
    println!();
    println!("   API                  {api}");
    println!("   API contract (try it) {api}/docs        (OpenAPI 3.1: {api}/openapi.json)");
    if !stack.ws_url.is_empty() {
        println!(
            "   WebSocket API        {}   (?token=<access_token>; PostToConnection at the AWS endpoint)",
            stack.ws_url
        );
    }
    println!("   AWS endpoint         {}   (moto + local Cognito; moto itself at {moto_endpoint})", stack.aws_endpoint);
    println!("   local Digio          {}   (approve a KYC: POST /_local/kyc/<KID>/approve)", stack.stubs.digio.url);
    println!(
        "   Razorpay stand-in    {}   (pay an order: POST /_local/orders/<order_id>/pay)",
        stack.stubs.razorpay_url
    );
    println!(
        "   Agora notifications  {}   (a party joins a call: POST /_local/channels/<channel>/join {{\"uid\": N}})",
        stack.stubs.agora.url
    );
    println!("   sam local invoke files {0}/env-vars.json, {0}/parameter-overrides", sam_dir.display());
    println!();
    println!(" Sign in (README: \"Walk the sign-up with curl\"):");
    println!(
        "   1. POST {api}/auth/signup   {{\"phone\":\"+919876543210\",\"first_name\":\"Asha\",\"last_name\":\"Rao\",\"user_type\":\"user\"}}"
    );
    println!("   2. POST {api}/auth/signup/confirm with the code from the 'SMS:' line below");
    println!("   3. POST {api}/auth/otp, then /auth/otp/verify with the new code: copy access_token");
    println!("   4. On {api}/docs press Authorize, paste the access_token, and try any route.");
    println!(" SMS codes appear below as 'SMS: ...' lines. Stop with Ctrl-C.");
    println!("================================================================================");
    println!();

    tokio::signal::ctrl_c().await?;
    drop(stack);
    drop(moto);
    Ok(())
}
