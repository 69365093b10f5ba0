//! `make-staff +91XXXXXXXXXX`: makes a user of the running local stack operations staff
//! (Cognito group `admin`). Sign the number up through the API first (as a `user`); sign-up
//! itself can never make staff.

use anyhow::{Context, Result, bail};

#[tokio::main]
async fn main() -> Result<()> {
    let Some(raw) = std::env::args().nth(1) else {
        bail!("usage: cargo run -q -p infra --bin make-staff -- +919876543210");
    };
    let phone = shared::Phone::parse(&raw).map_err(|e| anyhow::anyhow!("{raw}: {e}"))?;
    // The endpoint the running stack wrote for `cargo lambda watch` (default port otherwise).
    let env_file = infra::repo_root().join(".local-stack/lambda.env");
    let endpoint = std::fs::read_to_string(&env_file)
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("AWS_ENDPOINT_URL=").map(str::to_owned)))
        .unwrap_or_else(|| "http://127.0.0.1:4566".into());
    let sdk = infra::local_sdk_config(&endpoint).await;
    let pools = aws_sdk_cognitoidentityprovider::Client::new(&sdk)
        .list_user_pools()
        .max_results(10)
        .send()
        .await
        .with_context(|| format!("is the local stack running (scripts/local-stack.sh)? {endpoint}"))?;
    let [pool] = pools.user_pools() else { bail!("expected the local stack's one user pool at {endpoint}") };
    let pool_id = pool.id().unwrap_or_default();
    infra::make_staff(&sdk, pool_id, &phone).await.with_context(|| format!("has {} signed up?", phone.masked()))?;
    println!("{} is staff (group admin) in user pool {pool_id}.", phone.masked());
    println!("Sign in again (POST /auth/otp, /auth/otp/verify): the new access_token opens /admin/*.");
    Ok(())
}
