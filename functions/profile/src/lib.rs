//! A person's own data. `GET /me`: the caller's user record (with birth details and chart
//! basics), role and wallet summary, in one store call; the first call of a user whose account
//! setup the post-confirmation trigger left unfinished finishes it (`shared::app::account`),
//! once however many calls race. `PATCH /me` edits the profile and birth details (the chart
//! is computed from them: `shared::domain::profile`). `GET /me/export`: everything held about
//! the caller. `DELETE /me`: the account, the one way (`shared::app::erasure`).
//! `GET /customers/{id}/birth-details`: a customer's birth details, for the astrologer of
//! one of their consultations while `shared::domain::profile::astrologer_may_see` says so.
//! `POST /me/picture`, `PUT /me/picture`, `DELETE /me/picture`: a profile picture, uploaded
//! straight to the images bucket with a presigned PUT (`shared::app::images`), then set by
//! its key; `GET /me` shows it through a presigned GET.

use aws_sdk_cognitoidentityprovider::Client as CognitoClient;
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use shared::app::account::{self, SetupError};
use shared::app::erasure::{Erasure, ErasureError};
use shared::app::images::Images;
use shared::app::top_up::razorpay_on_first_use;
use shared::config::{self, ConfigError};
use shared::domain::booking::RevenueShare;
use shared::domain::image::{self, PictureKey, PictureType};
use shared::domain::profile::{self, ProfileEdit};
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::outbound::Http;
use shared::providers::razorpay::Razorpay;
use shared::secrets::OnFirstUse;
use shared::store::retry::{self, Attempt, Retry};
use shared::store::{Store, UserLookup, UserOverview};
use shared::{ApiError, UserId, UserType};

/// The caller's role (from the stored user, never from a client-writable attribute) and overview.
#[derive(serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct Me {
    role: UserType,
    #[serde(flatten)]
    overview: UserOverview,
}

/// Built once per cold start.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub cognito: CognitoClient,
    pub user_pool_id: String,
    /// For a deleted account's refunds; built by the first deletion that needs it.
    pub razorpay: OnFirstUse<Razorpay>,
    /// Consultations a deletion ends are settled like any other (all refunded).
    pub share: RevenueShare,
    /// Profile pictures: presigned uploads and views, and (through `http`) the checks and
    /// deletions this function sends the bucket itself.
    pub images: Images,
    pub http: Http,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig, vars: &impl config::Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::from_env(sdk, vars)?,
            cognito: CognitoClient::new(sdk),
            user_pool_id: config::required(vars, "USER_POOL_ID")?,
            razorpay: razorpay_on_first_use(sdk, vars)?,
            share: RevenueShare::from_env(vars)?,
            images: Images::from_env(sdk, vars)?,
            http: Http::new(),
        })
    }
}

/// The most items an export reads (about one Query page of 1 MB per 2,000 small items:
/// seconds, within the function's timeout).
pub const EXPORT_MAX_ITEMS: usize = 10_000;
/// The largest export answered: a synchronous Lambda response is at most 6 MB, and API
/// Gateway's headers and encoding need the rest.
pub const EXPORT_MAX_BYTES: usize = 5_500_000;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use serde_json::json;
    use shared::http::openapi::{
        FunctionDoc, INVALID_FIELD, NOT_FOUND, Operation, Param, Request, STORE_UNAVAILABLE, body, error,
        provider_errors, query, schema, success,
    };
    let deleted = error(401, ACCOUNT_DELETED, "this account was deleted (its token verifies until it expires)");
    let busy = error(503, "busy", "the picture kept changing underneath (another call set one); retry");
    FunctionDoc::new("profile", "Profile", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Me => Operation {
            summary: "The caller's profile, role and wallet summary",
            description: "`astrologer` is present for astrologers only. The first call of an account whose setup \
                          did not finish at confirmation finishes it (sign in again for a token with the role).",
            responses: vec![success(200, "The caller", schema::<Me>)],
            errors: vec![
                // A token of no customer or astrologer (an operator's staff account).
                NOT_FOUND,
                error(503, SETUP_UNAVAILABLE, "the account's setup could not be finished just now; retry shortly"),
                deleted,
            ],
            ..Operation::default()
        },
        Op::Edit => Operation {
            summary: "Edit one's names, gender, city, state and birth details",
            description: "Only the fields present change (none: the profile as it is). `birth.time` is a local clock time or `unknown`; \
                          `birth.place` comes from the app's place picker (latitude, longitude, IANA time zone). \
                          The chart basics (sidereal Lahiri Sun and Moon signs, the Moon's nakshatra and pada, and \
                          with a known time the lagna) are computed from them and answered with the profile. A \
                          local time the clocks skipped (a DST gap) is refused; one they repeated is read as the \
                          earlier. Birth details never reach logs or events.",
            request: Request::Json(body(schema::<profile::ProfileEdit>)),
            responses: vec![success(200, "The caller, as edited", schema::<Me>)],
            errors: vec![
                NOT_FOUND,
                INVALID_FIELD,
                deleted,
                error(409, "email_taken", "another account uses that email"),
                error(429, "too_many_codes", "too many codes asked for; later"),
                error(503, "email_unavailable", "Cognito did not answer; retry"),
            ],
            ..Operation::default()
        },
        Op::Delete => Operation {
            summary: "Delete one's account",
            description: "Needs a sign-in within the last 15 minutes. Refused while a consultation is in progress. \
                          Consultations not started are ended with everything held given back; real cash goes back \
                          to the recharges it came from through Razorpay refunds (newest first; a payment older \
                          than 180 days cannot be refunded and is kept for a payout by support, stated in \
                          `money.kept_for_payout`); bonus cash lapses. Names, phone, email, birth details, \
                          pictures, devices, notifications, chat text and the chat images they sent are erased; \
                          the ledger, top-ups, invoices and KYC audit stay under the user id; reviews stay, shown as a deleted user; the sign-in is \
                          removed, so the number can sign up again. Calling again resumes a deletion a fault \
                          interrupted, and answers a finished one as it was.",
            responses: vec![success(200, "The deletion's record", schema::<shared::store::people::ErasureRecord>)],
            errors: vec![
                NOT_FOUND,
                error(403, "sign_in_again", "the last sign-in is older than 15 minutes"),
                error(409, "consultation_in_progress", "a consultation is in progress: end it first"),
                error(409, "deletion_under_way", "another request is deleting the account; try again in a minute"),
                error(
                    503,
                    "deletion_unfinished",
                    "Razorpay, the sign-in service or the images bucket did not answer; call again",
                ),
            ],
            ..Operation::default()
        },
        Op::VerifyEmail => Operation {
            summary: "Verify the pending email with the code sent to it",
            description: "`PATCH /me` with `email` sends a 6-digit code to the new address (Cognito); the old \
                          email stays the account's until this call gives the code back.",
            request: Request::Json(body(schema::<VerifyEmailBody>)),
            responses: vec![success(200, "The caller, with the email verified", schema::<Me>)],
            errors: vec![
                NOT_FOUND,
                INVALID_FIELD,
                error(400, "code_mismatch", "not the code sent"),
                error(400, "code_expired", "the code expired, or none was sent"),
                error(409, "no_pending_email", "no email waits for a code"),
                error(429, "too_many_codes", "too many tries; later"),
                error(503, "email_unavailable", "Cognito did not answer; retry"),
            ],
            ..Operation::default()
        },
        Op::PictureUpload => Operation {
            summary: "A URL to upload a profile picture to",
            description: "Answers a presigned PUT for one new picture key, valid 5 minutes: send the bytes to \
                          `upload_url` with `method` and exactly the `headers` given (the content type and length \
                          asked for are signed: S3 refuses another type or size, another key, or a late upload). \
                          Then set it with `PUT /me/picture`. JPEG, PNG or WebP, at most 2 MiB.",
            request: Request::Json(body(schema::<PictureUploadBody>)),
            responses: vec![success(200, "Where and how to upload the picture", schema::<PictureUpload>)],
            errors: vec![
                NOT_FOUND,
                deleted,
                error(
                    400,
                    "invalid_field",
                    "`content_type` is not image/jpeg, image/png or image/webp, or `content_length` is not 1 to \
                     2097152 bytes",
                ),
            ],
            ..Operation::default()
        },
        Op::SetPicture => Operation {
            summary: "Set one's profile picture, uploaded through `POST /me/picture`",
            description: "`image_key` is one `POST /me/picture` issued to the caller, with the picture uploaded to \
                          it. The picture it replaces is deleted. `GET /me` shows it as `user.picture_url`, a \
                          presigned GET valid an hour, made for each read; an astrologer's shows on their catalogue \
                          card and public profile.",
            request: Request::Json(body(schema::<SetPictureBody>)),
            responses: vec![success(200, "The caller, with the picture", schema::<Me>)],
            errors: [
                vec![
                    NOT_FOUND,
                    deleted,
                    error(
                        400,
                        "invalid_field",
                        "`image_key` is not one issued to the caller, or nothing was uploaded to it",
                    ),
                    busy,
                ],
                provider_errors("s3").to_vec(),
            ]
            .concat(),
            ..Operation::default()
        },
        Op::DeletePicture => Operation {
            summary: "Remove one's profile picture",
            description: "It is deleted from the bucket too. Without a picture, answers the caller as they are.",
            responses: vec![success(200, "The caller, without a picture", schema::<Me>)],
            errors: vec![NOT_FOUND, deleted, busy],
            ..Operation::default()
        },
        Op::Export => Operation {
            summary: "Everything held about the caller, as one JSON document",
            description: "Profile and birth details, wallet and ledger (and earnings), top-ups and invoices, \
                          consultations and their chat, reviews, notifications, devices, KYC audit. At most \
                          10,000 items and 5.5 MB (a Lambda response's limit); beyond that, 413 (support exports \
                          it).",
            responses: vec![success(200, "The export", schema::<serde_json::Value>)],
            errors: vec![NOT_FOUND, deleted, error(413, "export_too_large", "more than one export carries")],
            ..Operation::default()
        },
        Op::CustomerBirthDetails => Operation {
            summary: "A customer's birth details and chart basics, for the astrologer of their consultation",
            description: "Only the astrologer of `consultation`, a consultation of this customer, from booking \
                          until 24 hours after it was completed; never for one cancelled or missed. Anyone else, \
                          or later, is answered 404.",
            params: vec![Param {
                required: true,
                ..query(
                    "consultation",
                    "the booking id of the consultation read for",
                    json!({ "type": "string", "minLength": 1, "maxLength": 128 }),
                )
            }],
            responses: vec![success(200, "The customer", schema::<shared::store::people::CustomerForReading>)],
            errors: vec![NOT_FOUND, INVALID_FIELD],
            ..Operation::default()
        },
    })
}

const SETUP_UNAVAILABLE: &str = "setup_unavailable";

/// `POST /me/email/verify`'s body.
#[derive(serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct VerifyEmailBody {
    /// The 6 digits sent to the pending email.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{6}$"))]
    code: String,
}

/// What this function does for each of its template routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Me,
    Edit,
    Delete,
    Export,
    VerifyEmail,
    CustomerBirthDetails,
    PictureUpload,
    SetPicture,
    DeletePicture,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "GET /me", access: Access::SignedIn, handler: Op::Me },
    Route { key: "PATCH /me", access: Access::SignedIn, handler: Op::Edit },
    Route { key: "DELETE /me", access: Access::SignedIn, handler: Op::Delete },
    Route { key: "GET /me/export", access: Access::SignedIn, handler: Op::Export },
    Route { key: "POST /me/email/verify", access: Access::SignedIn, handler: Op::VerifyEmail },
    Route { key: "GET /customers/{id}/birth-details", access: Access::SignedIn, handler: Op::CustomerBirthDetails },
    Route { key: "POST /me/picture", access: Access::SignedIn, handler: Op::PictureUpload },
    Route { key: "PUT /me/picture", access: Access::SignedIn, handler: Op::SetPicture },
    Route { key: "DELETE /me/picture", access: Access::SignedIn, handler: Op::DeletePicture },
];

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::Me => me(app, caller).await,
        Op::Edit => edit(app, req, &caller).await,
        Op::Delete => delete(app, req, &caller).await,
        Op::Export => export(app, &caller).await,
        Op::VerifyEmail => verify_email(app, req, &caller).await,
        Op::CustomerBirthDetails => customer_birth_details(app, req, &caller).await,
        Op::PictureUpload => picture_upload(app, req, &caller).await,
        Op::SetPicture => set_picture(app, req, &caller).await,
        Op::DeletePicture => change_picture(app, &caller, None).await,
    }
}

/// A deleted account's token still verifies until it expires (API Gateway's JWT authorizer
/// does not ask Cognito); what it reaches answers this.
fn account_deleted() -> ApiError {
    ApiError::unauthorized(ACCOUNT_DELETED, "this account was deleted")
}
const ACCOUNT_DELETED: &str = "account_deleted";

async fn edit(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let edit: ProfileEdit = http::json_body(req)?;
    let edit = edit.validate().map_err(|e| ApiError::invalid_field(e.field, e.problem))?;
    if let Some(email) = &edit.email {
        // Cognito sends the code to the new address and keeps the old one until it comes back.
        app.cognito
            .update_user_attributes()
            .access_token(access_token(req)?)
            .user_attributes(attribute("email", email.as_str())?)
            .send()
            .await
            .map_err(|e| cognito_refusal(e.into_service_error().meta().code()))?;
    }
    if !edit.is_empty() && !app.store.update_profile(&caller.user_id, &edit, Utc::now()).await? {
        return Err(match app.store.user_lookup(&caller.user_id).await? {
            UserLookup::Deleted => account_deleted(),
            _ => ApiError::not_found("user"),
        });
    }
    me(app, caller.clone()).await
}

/// `POST /me/email/verify`: the code sent to the pending email makes it the account's.
async fn verify_email(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: VerifyEmailBody = http::json_body(req)?;
    if body.code.len() != 6 || !body.code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field("code", "must be the 6 digits sent by email"));
    }
    app.cognito
        .verify_user_attribute()
        .access_token(access_token(req)?)
        .attribute_name("email")
        .code(&body.code)
        .send()
        .await
        .map_err(|e| cognito_refusal(e.into_service_error().meta().code()))?;
    if !app.store.confirm_email(&caller.user_id, Utc::now()).await? {
        return Err(ApiError::conflict("no_pending_email", "no email is waiting for a code; set one with PATCH /me"));
    }
    me(app, caller.clone()).await
}

/// The caller's own access token: Cognito's user-attribute calls act as the user.
fn access_token(req: &Request) -> Result<&str, ApiError> {
    http::header(req, "authorization")
        .map(|h| h.strip_prefix("Bearer ").unwrap_or(h).trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("unauthenticated", "an access token is required"))
}

fn attribute(name: &str, value: &str) -> Result<AttributeType, ApiError> {
    AttributeType::builder().name(name).value(value).build().map_err(ApiError::internal)
}

/// What Cognito's refusal of a code (or of sending one) means to the caller.
fn cognito_refusal(code: Option<&str>) -> ApiError {
    match code {
        Some("CodeMismatchException") => ApiError::bad_request("code_mismatch", "that code is not the one sent"),
        Some("ExpiredCodeException") => {
            ApiError::bad_request("code_expired", "the code has expired or none was sent; set the email again")
        }
        Some("LimitExceededException" | "TooManyRequestsException" | "CodeDeliveryFailureException") => {
            ApiError::too_many("too_many_codes", "too many codes asked for or tried; try again later")
        }
        Some("AliasExistsException") => ApiError::conflict("email_taken", "another account uses that email"),
        Some("NotAuthorizedException") => ApiError::unauthorized("unauthenticated", "sign in again"),
        other => {
            tracing::warn!(code = ?other, "cognito refused an email change");
            ApiError::unavailable("email_unavailable", "the email could not be changed just now; retry shortly")
        }
    }
}

async fn export(app: &App, caller: &Caller) -> Result<Response, ApiError> {
    if let UserLookup::Deleted = app.store.user_lookup(&caller.user_id).await? {
        return Err(account_deleted());
    }
    let document = app.store.export(&caller.user_id, EXPORT_MAX_ITEMS).await.map_err(|e| match e {
        shared::store::StoreError::Other(detail) if detail.starts_with("export of more than") => too_large(),
        other => other.into(),
    })?;
    let Some(mut document) = document else { return Err(ApiError::not_found("user")) };
    document.insert("exported_at".into(), serde_json::Value::String(Utc::now().to_rfc3339()));
    let response = json(200, &document);
    if response.body().as_ref().len() > EXPORT_MAX_BYTES {
        return Err(too_large());
    }
    Ok(response)
}

fn too_large() -> ApiError {
    ApiError::new(413, "export_too_large", "this account holds more than one export carries; ask support")
}

async fn delete(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let now = Utc::now();
    let signed_in_at = http::claim(req, "auth_time")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    if !signed_in_at.is_some_and(|at| profile::recent_enough_to_delete(at, now)) {
        return Err(ApiError::new(
            403,
            "sign_in_again",
            format!(
                "deleting an account needs a sign-in within the last {} minutes",
                profile::DELETION_SIGN_IN_WITHIN.num_minutes()
            ),
        ));
    }
    let erasure = Erasure {
        store: &app.store,
        razorpay: &app.razorpay,
        cognito: &app.cognito,
        user_pool_id: &app.user_pool_id,
        share: app.share,
        images: &app.images,
        http: &app.http,
    };
    match erasure.delete_account(&caller.user_id, now).await {
        Ok(record) => Ok(json(200, &record)),
        Err(ErasureError::NotFound) => Err(ApiError::not_found("user")),
        Err(ErasureError::InProgress(id)) => Err(ApiError::conflict(
            "consultation_in_progress",
            format!("consultation {id} is in progress; end it, then delete the account"),
        )),
        Err(ErasureError::Store(e)) => Err(e.into()),
        Err(ErasureError::UnderWay) => Err(ApiError::conflict(
            "deletion_under_way",
            "another request is deleting this account; try again in a minute",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "account deletion paused; the next call resumes it");
            Err(ApiError::unavailable("deletion_unfinished", "the deletion is under way; call again to finish it"))
        }
    }
}

async fn customer_birth_details(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let customer = UserId::parse(http::path_param(req, "id")?).map_err(|_| ApiError::not_found("customer"))?;
    let booking = http::query_param(req, "consultation")
        .ok_or_else(|| ApiError::invalid_field("consultation", "is required: the booking id you read for"))?;
    if !shared::store::keys::bounded_id(booking) {
        return Err(ApiError::not_found("consultation"));
    }
    let (consultation, found) = app.store.consultation_and_customer(booking, &customer).await?;
    let Some(c) = consultation.filter(|c| c.customer_id == customer) else {
        return Err(ApiError::not_found("consultation"));
    };
    // Strangers and the customer's past astrologers alike see nothing.
    if !profile::astrologer_may_see(&c, &caller.user_id, Utc::now()) {
        return Err(ApiError::not_found("consultation"));
    }
    let found = found.ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(json(200, &found))
}

async fn me(app: &App, caller: Caller) -> Result<Response, ApiError> {
    let overview = match app.store.user_lookup(&caller.user_id).await? {
        UserLookup::Deleted => return Err(account_deleted()),
        UserLookup::Found(overview) => {
            // Registered, but the trigger failed before the group: add it (a no-op when
            // it is there and only the token predates it).
            if !caller.has_role(overview.user.user_type) {
                let user = account::find_by_sub(&app.cognito, &app.user_pool_id, &caller.user_id)
                    .await
                    .map_err(setup_error)?
                    .ok_or_else(|| ApiError::not_found("user"))?;
                account::add_to_group(&app.cognito, &app.user_pool_id, &user.username, overview.user.user_type)
                    .await
                    .map_err(setup_error)?;
            }
            overview
        }
        UserLookup::Missing => {
            finish_setup(app, &caller).await?;
            app.store.user_overview(&caller.user_id).await?.map(Box::new).ok_or_else(|| ApiError::not_found("user"))?
        }
    };
    let mut overview = *overview;
    overview.user.picture_url = app.images.picture_url_or_none(overview.user.picture_key.as_ref(), Utc::now()).await;
    Ok(json(200, &Me { role: overview.user.user_type, overview }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct PictureUploadBody {
    content_type: PictureType,
    /// The picture's exact size in bytes (S3 refuses an upload of any other).
    #[serde(deserialize_with = "shared::domain::json::whole_number")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 2097152))]
    content_length: u64,
}

/// A presigned upload of one profile picture.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct PictureUpload {
    /// What to send to `PUT /me/picture` once uploaded.
    image_key: PictureKey,
    upload_url: String,
    /// Always `PUT`.
    method: &'static str,
    /// Send exactly these (they are signed).
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    headers: std::collections::BTreeMap<&'static str, String>,
    expires_at: DateTime<Utc>,
}

/// The caller's live account: a deleted one (or one being deleted) takes nothing new.
async fn live_account(app: &App, caller: &Caller) -> Result<Box<UserOverview>, ApiError> {
    match app.store.user_lookup(&caller.user_id).await? {
        UserLookup::Found(overview) if !overview.user.deleting => Ok(overview),
        UserLookup::Found(_) | UserLookup::Deleted => Err(account_deleted()),
        UserLookup::Missing => Err(ApiError::not_found("user")),
    }
}

/// A presigned PUT of a new picture key under the caller's own prefix.
async fn picture_upload(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: PictureUploadBody = http::json_body(req)?;
    let size = image::check_picture_size(body.content_length)
        .map_err(|problem| ApiError::invalid_field("content_length", problem))?;
    live_account(app, caller).await?;
    let key = PictureKey::new(&caller.user_id, rand::rng().random(), body.content_type);
    let now = Utc::now();
    let upload = app
        .images
        .upload_url(key.as_str(), body.content_type.content_type(), size, now)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(size, "picture upload URL");
    Ok(json(
        200,
        &PictureUpload {
            image_key: key,
            upload_url: upload.url,
            method: "PUT",
            headers: upload.headers,
            expires_at: upload.expires_at,
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct SetPictureBody {
    /// The `image_key` `POST /me/picture` answered, once the picture is uploaded to it.
    #[cfg_attr(feature = "openapi", schema(value_type = PictureKey))]
    image_key: String,
}

/// Sets an uploaded picture of the caller's own.
async fn set_picture(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let body: SetPictureBody = http::json_body(req)?;
    let key = PictureKey::parse_for(&body.image_key, &caller.user_id)
        .map_err(|problem| ApiError::invalid_field("image_key", problem))?;
    // Never a key that shows nothing: the upload must have landed.
    if !app.images.object_exists(&app.http, key.as_str(), Utc::now()).await? {
        return Err(ApiError::invalid_field(
            "image_key",
            "nothing was uploaded to it: PUT the picture to upload_url first",
        ));
    }
    change_picture(app, caller, Some(key)).await
}

/// Sets (`Some`) or removes the caller's picture, then deletes the one it replaced from the
/// bucket; answers the caller as `GET /me` does.
async fn change_picture(app: &App, caller: &Caller, key: Option<PictureKey>) -> Result<Response, ApiError> {
    let busy = |_| ApiError::unavailable("busy", "the picture kept changing; retry");
    let replaced = retry::on_conflict(Retry::DEFAULT, busy, || async {
        let overview = live_account(app, caller).await?;
        let previous = overview.user.picture_key.clone();
        if previous == key {
            return Ok(Attempt::Done(None));
        }
        let astrologer = overview.astrologer.is_some();
        let set =
            app.store.set_picture(&caller.user_id, astrologer, previous.as_ref(), key.as_ref(), Utc::now()).await?;
        Ok(if set { Attempt::Done(previous) } else { Attempt::Conflict })
    })
    .await?;
    // No one is shown the old picture any more; one not deleted now (logged) costs storage
    // only, and goes with the account.
    if let Some(old) = replaced
        && let Err(e) = app.images.delete_object(&app.http, old.as_str(), Utc::now()).await
    {
        tracing::warn!(error = %e, "a replaced picture was not deleted");
    }
    me(app, caller.clone()).await
}

/// A confirmed user with no record: the trigger failed after Cognito confirmed them.
async fn finish_setup(app: &App, caller: &Caller) -> Result<(), ApiError> {
    let found = account::find_by_sub(&app.cognito, &app.user_pool_id, &caller.user_id).await.map_err(setup_error)?;
    let Some(user) = found.filter(|u| u.confirmed) else { return Err(ApiError::not_found("user")) };
    match account::finish_setup(&app.store, &app.cognito, &app.user_pool_id, &user.username, &user.attributes).await {
        Ok((_, outcome)) => {
            tracing::info!(user_id = %caller.user_id, ?outcome, "unfinished account setup finished");
            Ok(())
        }
        // Staff an operator created: no customer or astrologer record to make.
        Err(SetupError::RoleNotAllowed(_)) => Err(ApiError::not_found("user")),
        Err(e) => Err(setup_error(e)),
    }
}

fn setup_error(e: SetupError) -> ApiError {
    match e {
        SetupError::Store(store) => store.into(),
        SetupError::Cognito(detail) => {
            tracing::warn!(error = %detail, "account setup unavailable");
            ApiError::unavailable(SETUP_UNAVAILABLE, "your account is still being set up; try again shortly")
        }
        other => ApiError::internal(other),
    }
}
