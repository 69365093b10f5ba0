//! Phone-number sign-up and passwordless sign-in, with Cognito sending the SMS codes.
//!
//! | route | Cognito call |
//! |---|---|
//! | `POST /auth/signup` | SignUp (no password: the pool is passwordless) |
//! | `POST /auth/signup/confirm` | ConfirmSignUp; Cognito then runs the post-confirmation trigger |
//! | `POST /auth/signup/resend` | ResendConfirmationCode |
//! | `POST /auth/otp` | InitiateAuth `USER_AUTH`, preferring `SMS_OTP` |
//! | `POST /auth/otp/verify` | RespondToAuthChallenge `SMS_OTP` |
//!
//! A sign-up of a number with a sign-up still unconfirmed replaces it: the code goes to the
//! number, so whoever confirms holds the phone, and the account they confirm must be the one
//! they asked for, not one a stranger started for their number (a role and names chosen by
//! someone else).
//!
//! No route reveals whether a phone number is registered (see `cognito_errors`): sign-in
//! gives an unknown number a challenge that looks the same and fails every wrong answer the
//! same way; sign-up answers a taken number as a new one; confirming and resending answer a
//! customer's number as they answer a number nobody used.

mod cognito_errors;
#[cfg(feature = "openapi")]
mod openapi;

#[cfg(feature = "openapi")]
pub use openapi::openapi;

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, ChallengeNameType, UserStatusType};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use shared::app::sms::too_many_sms;
use shared::config::{self, ConfigError};
use shared::domain::sms::{SmsCounter, SmsPolicy};
use shared::http::{self, Access, Request, Response, Route, json, json_body};
use shared::store::Store;
use shared::{ApiError, Email, PersonName, Phone, UserType};

use cognito_errors::{Operation, Refusal, map_error};

/// Built once per cold start.
#[derive(Clone, Debug)]
pub struct App {
    pub cognito: Client,
    /// The user pool app client the mobile apps use: sign-in, and so their tokens.
    pub client_id: String,
    /// The backend's client for sign-up, the only one that may write the sign-up's attributes.
    pub sign_up_client_id: String,
    /// The pool, for replacing a stale unconfirmed sign-up (AdminGetUser, AdminDeleteUser).
    pub user_pool_id: String,
    /// Where the SMS send counters are kept.
    pub store: Store,
    pub sms: SmsPolicy,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            cognito: Client::new(sdk),
            client_id: config::required(vars, "USER_POOL_CLIENT_ID")?,
            sign_up_client_id: config::required(vars, "SIGN_UP_CLIENT_ID")?,
            user_pool_id: config::required(vars, "USER_POOL_ID")?,
            store: Store::from_env(sdk, vars)?,
            sms: SmsPolicy::from_env(vars)?,
        })
    }
}

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SignUp,
    Confirm,
    Resend,
    StartSignIn,
    VerifySignIn,
}

/// Every route of this function in `template.yaml`, all public (no token yet).
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /auth/signup", access: Access::Public, handler: Op::SignUp },
    Route { key: "POST /auth/signup/confirm", access: Access::Public, handler: Op::Confirm },
    Route { key: "POST /auth/signup/resend", access: Access::Public, handler: Op::Resend },
    Route { key: "POST /auth/otp", access: Access::Public, handler: Op::StartSignIn },
    Route { key: "POST /auth/otp/verify", access: Access::Public, handler: Op::VerifySignIn },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, _) = http::dispatch(ROUTES, req)?;
    match op {
        Op::SignUp => {
            let body: SignUpBody = json_body(req)?;
            may_send_sms(app, req, &body.phone).await?;
            sign_up(app, body).await
        }
        Op::Confirm => confirm(app, json_body(req)?).await,
        Op::Resend => {
            let body: PhoneBody = json_body(req)?;
            may_send_sms(app, req, &body.phone).await?;
            resend(app, body).await
        }
        Op::StartSignIn => {
            let body: PhoneBody = json_body(req)?;
            may_send_sms(app, req, &body.phone).await?;
            start_sign_in(app, body).await
        }
        Op::VerifySignIn => verify_sign_in(app, json_body(req)?).await,
    }
}

/// Before a route that makes Cognito send an SMS: the number is in a country served, and
/// neither it nor the caller's address has had its codes for this window. Counted whether
/// or not an SMS then goes (a taken or unknown number is counted as any other), so the
/// limit tells nobody anything. Both counters are counted at once; a refused send may still
/// have counted against the other one, which only ever holds back the sender.
async fn may_send_sms(app: &App, req: &Request, phone: &Phone) -> Result<(), ApiError> {
    app.sms.check_country(phone)?;
    let (window_start, retry_after) = app.sms.window(chrono::Utc::now().timestamp());
    let count = |counter: SmsCounter| async move {
        let limit = counter.limit(&app.sms);
        app.store.count_sms(&counter, window_start, app.sms.window_seconds, limit).await
    };
    let (number, source) =
        tokio::join!(count(SmsCounter::Phone(phone.clone())), count(SmsCounter::source(http::source_ip(req))));
    if !(number? && source?) {
        tracing::warn!(phone = %phone, "SMS limit reached");
        return Err(too_many_sms(retry_after));
    }
    Ok(())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    phone: Phone,
    first_name: PersonName,
    last_name: PersonName,
    /// `user` (a customer) or `astrologer`; `admin` is refused.
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::self_service_role))]
    user_type: String,
    #[serde(default)]
    email: Option<Email>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: Phone,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", schema(as = SignUpConfirmBody))]
struct ConfirmBody {
    phone: Phone,
    code: OtpCode,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    phone: Phone,
    session: Session,
    code: OtpCode,
}

/// The 6-digit code Cognito sends by SMS.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct OtpCode(String);

impl TryFrom<String> for OtpCode {
    type Error = &'static str;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let code = raw.trim();
        (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
            .then(|| OtpCode(code.to_owned()))
            .ok_or("must be the 6-digit code from the SMS")
    }
}

/// The opaque sign-in session Cognito issued with the challenge.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Session(String);

impl TryFrom<String> for Session {
    type Error = &'static str;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        (!raw.is_empty() && raw.len() <= 4096 && raw.is_ascii())
            .then_some(Session(raw))
            .ok_or("must be the session returned by POST /auth/otp")
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct CodeSent {
    /// Where the code went, masked (`+91******3210`).
    destination: String,
    /// Always `SMS`.
    delivery_medium: &'static str,
}

/// `201` of `POST /auth/signup`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct SignedUp<'a> {
    user_id: &'a str,
    user_type: UserType,
    /// `false` until the SMS code is confirmed.
    confirmed: bool,
    code: CodeSent,
}

/// `200` of `POST /auth/signup/confirm`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Confirmed {
    confirmed: bool,
}

/// `202` of `POST /auth/signup/resend`: the same whether or not the number is registered.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct CodeResent {
    code: CodeSent,
}

/// `200` of `POST /auth/otp`: an unknown number gets one that looks the same.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct SignInChallenge {
    /// Always `SMS_OTP`.
    challenge: &'static str,
    /// Send it back with the code to `POST /auth/otp/verify`.
    session: String,
    code: CodeSent,
}

/// `200` of `POST /auth/otp/verify`: Cognito's tokens. Send `access_token` as
/// `Authorization: Bearer <access_token>`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Tokens<'a> {
    id_token: Option<&'a str>,
    access_token: Option<&'a str>,
    refresh_token: Option<&'a str>,
    /// Seconds the access token is valid for.
    expires_in: i32,
    token_type: &'a str,
}

fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder().name(name).value(value).build().expect("name and value are set")
}

async fn sign_up(app: &App, body: SignUpBody) -> Result<Response, ApiError> {
    let role = UserType::parse_self_service(&body.user_type).map_err(|e| ApiError::invalid_field("user_type", e))?;
    let mut attributes = vec![
        attribute("phone_number", body.phone.e164()),
        attribute("given_name", body.first_name.as_str()),
        attribute("family_name", body.last_name.as_str()),
        attribute("custom:user_type", role.as_str()),
    ];
    if let Some(email) = &body.email {
        attributes.push(attribute("email", email.as_str()));
    }
    let mut created = cognito_sign_up(app, &body.phone, &attributes).await?;
    if created.is_none() && replace_unconfirmed(app, &body.phone).await {
        created = cognito_sign_up(app, &body.phone, &attributes).await?;
    }
    // A confirmed number is answered as a new one, with an id that names nobody, and is
    // left as it is (no code: it has none to confirm).
    let (user_id, confirmed) = created.unwrap_or_else(|| (uuid::Uuid::new_v4().to_string(), false));
    tracing::info!(phone = %body.phone, role = role.as_str(), "sign-up started");
    Ok(json(
        201,
        &SignedUp {
            user_id: &user_id,
            user_type: role,
            confirmed,
            code: CodeSent { destination: body.phone.masked(), delivery_medium: "SMS" },
        },
    ))
}

/// Cognito's SignUp (which sends the code): the new user's id and whether it is confirmed,
/// or `None` when the number is taken.
async fn cognito_sign_up(
    app: &App,
    phone: &Phone,
    attributes: &[AttributeType],
) -> Result<Option<(String, bool)>, ApiError> {
    let result = app
        .cognito
        .sign_up()
        .client_id(&app.sign_up_client_id)
        .username(phone.e164())
        .set_user_attributes(Some(attributes.to_vec()))
        .send()
        .await;
    match result {
        Ok(output) => Ok(Some((output.user_sub().to_owned(), output.user_confirmed()))),
        Err(e) => match map_error(Operation::SignUp, e) {
            Refusal::Taken => Ok(None),
            other => Err(other.into_error()),
        },
    }
}

/// Deletes the number's user if it is an unconfirmed sign-up (nobody has shown they hold the
/// number, so nothing of it is anyone's yet; its code dies with it). `true`: deleted, sign up
/// again. Any other user (a customer, staff an operator made) is left alone, and so is a
/// failure: the caller then gets the taken-number answer, which changes nothing.
async fn replace_unconfirmed(app: &App, phone: &Phone) -> bool {
    let user = app.cognito.admin_get_user().user_pool_id(&app.user_pool_id).username(phone.e164()).send().await;
    match user {
        Ok(user) if user.user_status() == Some(&UserStatusType::Unconfirmed) => {}
        Ok(_) => return false,
        Err(e) => {
            tracing::info!(error = %e.into_service_error(), "no user to replace for a taken number");
            return false;
        }
    }
    let deleted = app.cognito.admin_delete_user().user_pool_id(&app.user_pool_id).username(phone.e164()).send().await;
    match deleted {
        Ok(_) => {
            tracing::info!(phone = %phone, "unconfirmed sign-up replaced");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e.into_service_error(), "unconfirmed sign-up not replaced");
            false
        }
    }
}

async fn confirm(app: &App, body: ConfirmBody) -> Result<Response, ApiError> {
    let result = app
        .cognito
        .confirm_sign_up()
        .client_id(&app.sign_up_client_id)
        .username(body.phone.e164())
        .confirmation_code(&body.code.0)
        .send()
        .await;
    match result {
        Ok(_) => tracing::info!(phone = %body.phone, "sign-up confirmed"),
        Err(e) => match map_error(Operation::ConfirmSignUp, e) {
            // Cognito confirmed the number before its trigger failed; the first signed-in
            // call finishes the setup, so the sign-up is done as far as the app is concerned.
            Refusal::SetupUnfinished => tracing::warn!(phone = %body.phone, "sign-up confirmed, setup unfinished"),
            other => return Err(other.into_error()),
        },
    }
    Ok(json(200, &Confirmed { confirmed: true }))
}

async fn resend(app: &App, body: PhoneBody) -> Result<Response, ApiError> {
    match app
        .cognito
        .resend_confirmation_code()
        .client_id(&app.sign_up_client_id)
        .username(body.phone.e164())
        .send()
        .await
    {
        Ok(_) => {}
        // Unknown or confirmed already: answered as if sent, so resend cannot probe for numbers.
        Err(e) => match map_error(Operation::ResendCode, e) {
            Refusal::UnknownUser => {}
            other => return Err(other.into_error()),
        },
    }
    Ok(json(202, &CodeResent { code: CodeSent { destination: body.phone.masked(), delivery_medium: "SMS" } }))
}

async fn start_sign_in(app: &App, body: PhoneBody) -> Result<Response, ApiError> {
    let result = app
        .cognito
        .initiate_auth()
        .client_id(&app.client_id)
        .auth_flow(AuthFlowType::UserAuth)
        .auth_parameters("USERNAME", body.phone.e164())
        .auth_parameters("PREFERRED_CHALLENGE", "SMS_OTP")
        .send()
        .await;
    let session = match result {
        Ok(output) if output.challenge_name() == Some(&ChallengeNameType::SmsOtp) => {
            output.session().unwrap_or_default().to_owned()
        }
        Ok(output) => {
            return Err(ApiError::internal(format!("unexpected challenge {:?}", output.challenge_name())));
        }
        Err(e) => match map_error(Operation::StartSignIn, e) {
            // Unknown or unconfirmed number: a session that looks real and can never succeed.
            Refusal::UnknownUser => decoy_session(),
            other => return Err(other.into_error()),
        },
    };
    tracing::info!(phone = %body.phone, "sign-in code requested");
    Ok(json(
        200,
        &SignInChallenge {
            challenge: "SMS_OTP",
            session,
            code: CodeSent { destination: body.phone.masked(), delivery_medium: "SMS" },
        },
    ))
}

fn decoy_session() -> String {
    let mut bytes = [0u8; 690];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn verify_sign_in(app: &App, body: VerifyBody) -> Result<Response, ApiError> {
    let output = app
        .cognito
        .respond_to_auth_challenge()
        .client_id(&app.client_id)
        .challenge_name(ChallengeNameType::SmsOtp)
        .session(&body.session.0)
        .challenge_responses("USERNAME", body.phone.e164())
        .challenge_responses("SMS_OTP_CODE", &body.code.0)
        .send()
        .await
        .map_err(|e| map_error(Operation::VerifySignIn, e).into_error())?;
    let tokens = output
        .authentication_result()
        .ok_or_else(|| ApiError::unauthorized(cognito_errors::INVALID_CODE, "the code is wrong or has expired"))?;
    tracing::info!(phone = %body.phone, "signed in");
    Ok(json(
        200,
        &Tokens {
            id_token: tokens.id_token(),
            access_token: tokens.access_token(),
            refresh_token: tokens.refresh_token(),
            expires_in: tokens.expires_in(),
            token_type: tokens.token_type().unwrap_or("Bearer"),
        },
    ))
}
