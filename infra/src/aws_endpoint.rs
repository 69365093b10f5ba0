//! The local AWS endpoint the functions talk to: moto for everything, plus the Cognito
//! behaviour moto lacks, played the way Cognito plays it:
//! - SignUp / ResendConfirmationCode send a 6-digit code "by SMS" (to the [`Outbox`] and the log);
//!   with a CustomSMSSender trigger in the pool's LambdaConfig, every SMS (sign-up, resend,
//!   sign-in, ForgotPassword) goes to that trigger instead, its code an AWS Encryption SDK
//!   message under the pool's KMS key, and what the trigger publishes to a phone number
//!   through SNS is the SMS sent;
//! - ConfirmSignUp checks that code, then runs the PostConfirmation trigger;
//! - InitiateAuth `USER_AUTH` + RespondToAuthChallenge `SMS_OTP` sign in with an SMS code
//!   and return moto-signed tokens;
//! - SignUp and UpdateUserAttributes write only the attributes the app client may write
//!   (its `WriteAttributes`), as Cognito checks and moto does not;
//! - UpdateUserAttributes with a new `email` sends a 6-digit code "by email" (to the
//!   [`Outbox`]) and keeps the old email until VerifyUserAttribute gives that code back, as
//!   a pool with `AttributesRequireVerificationBeforeUpdate: [email]` does (moto has neither).
//!
//! And the S3 behaviour moto lacks: a presigned request (SigV4 in the query string, as the
//! functions presign chat images) is checked as S3 checks it, its signature over the method,
//! the path, the query and the signed headers, and its expiry; moto takes any `Signature=` as
//! good. A refused one gets S3's 403.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_sdk_cognitoidentityprovider::Client as Cognito;
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};
use shared::domain::phone::mask_phone;

use crate::functions::TriggerHandler;

const SIGN_UP_CODE_TTL: Duration = Duration::from_secs(24 * 3600);
const SIGN_IN_SESSION_TTL: Duration = Duration::from_secs(180);
const MAX_WRONG_CODES: u32 = 3;

/// The SMS messages the local Cognito "sent".
#[derive(Default, Debug)]
pub struct Outbox {
    messages: Mutex<Vec<Sms>>,
}

#[derive(Debug, Clone)]
pub struct Sms {
    pub to: String,
    pub code: String,
    pub text: String,
}

impl Outbox {
    fn send(&self, to: &str, code: String, text: String) {
        tracing::info!(to = %mask_phone(to), "SMS: {text}");
        self.messages.lock().unwrap().push(Sms { to: to.to_owned(), code, text });
    }

    /// An email verification code (`to` is the address; the log shows its domain only).
    fn send_email(&self, to: &str, code: String) {
        let domain = to.rsplit('@').next().unwrap_or_default();
        tracing::info!(to = %format!("***@{domain}"), "EMAIL: your AstroKiran verification code is {code}");
        let text = format!("Your AstroKiran verification code is {code}");
        self.messages.lock().unwrap().push(Sms { to: to.to_owned(), code, text });
    }

    /// The last code sent to `phone` (or, by email, to an address).
    pub fn latest_code(&self, phone: &str) -> Option<String> {
        self.messages.lock().unwrap().iter().rev().find(|m| m.to == phone).map(|m| m.code.clone())
    }

    /// The text of the last SMS sent to `phone`.
    pub fn latest_text(&self, phone: &str) -> Option<String> {
        self.messages.lock().unwrap().iter().rev().find(|m| m.to == phone).map(|m| m.text.clone())
    }

    pub fn count_to(&self, phone: &str) -> usize {
        self.messages.lock().unwrap().iter().filter(|m| m.to == phone).count()
    }
}

/// The DynamoDB operations functions sent through this endpoint, in order, so tests can
/// hold a route to its round-trip budget.
#[derive(Default, Debug)]
pub struct CallLog {
    calls: Mutex<Vec<String>>,
    /// Every AWS call, DynamoDB included, as `service:Operation` (`sns:PublishBatch`).
    every: Mutex<Vec<String>>,
}

impl CallLog {
    fn record(&self, operation: &str) {
        self.calls.lock().unwrap().push(operation.to_owned());
    }

    /// The operations recorded so far (e.g. `["BatchGetItem", "TransactWriteItems"]`).
    pub fn dynamodb(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Every call through the endpoint, `service:Operation`, in order (the benchmark's
    /// round trips per route).
    pub fn every(&self) -> Vec<String> {
        self.every.lock().unwrap().clone()
    }

    pub(crate) fn record_any(&self, service: &str, operation: &str) {
        self.every.lock().unwrap().push(format!("{service}:{operation}"));
    }

    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
        self.every.lock().unwrap().clear();
    }
}

/// Failures to inject: the next requests of an operation (`PublishBatch`, `PutItem`) get an
/// error instead of reaching moto, so tests can watch a function and its event source
/// recover from an outage.
#[derive(Default, Debug)]
pub struct Faults {
    /// Per operation: requests still to let through, then requests to fail, and how.
    pending: Mutex<HashMap<String, (usize, usize, Fault)>>,
    injected: Mutex<HashMap<String, usize>>,
}

/// The error an injected failure answers with.
#[derive(Debug, Clone)]
pub struct Fault {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// A `TransactionCanceledException`'s reasons, one code per item, as DynamoDB sends them.
    pub cancellation_reasons: Vec<String>,
    /// Held past the caller's timeout instead of answered at once (then answered with the
    /// error above, to nobody).
    pub stall: Option<Stall>,
}

/// A request the endpoint holds for [`STALL`], past the SDK's 3 s attempt timeout
/// (`shared::config`): the caller sees a timeout, not an answer. Start the stack with
/// [`crate::Options::lambda_timeouts`], or the local stack's patient timeouts wait it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// moto never sees the request: nothing happened.
    BeforeApplying,
    /// moto applies the request and the answer is lost: the write happened, and the caller
    /// cannot know it. Its retry must find the work done, not do it again. DynamoDB only.
    AfterApplying,
}

/// How long a stalled request is held: longer than one SDK attempt may take.
pub const STALL: Duration = Duration::from_secs(4);

impl Fault {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        Self { status, code: code.into(), message: message.into(), cancellation_reasons: Vec::new(), stall: None }
    }

    /// A request that times out: held past the caller's timeout, `stall`ed before or after moto
    /// applied it.
    pub fn timeout(stall: Stall) -> Self {
        Self { stall: Some(stall), ..Self::new(504, "GatewayTimeout", "injected: answered after the caller gave up") }
    }

    /// SNS's answer for a topic that does not exist (not retried by the SDK).
    pub fn sns_topic_not_found() -> Self {
        Self::new(404, "NotFound", "Topic does not exist")
    }

    /// What DynamoDB answers a table or a partition over its throughput.
    pub fn throttled() -> Self {
        Self::new(400, "ProvisionedThroughputExceededException", "injected")
    }

    /// A transaction that lost a race with another on one of its items (not retried by the
    /// SDK: the caller reads again and decides).
    pub fn transaction_conflict() -> Self {
        let mut fault = Self::new(
            400,
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        );
        fault.cancellation_reasons = vec!["TransactionConflict".into()];
        fault
    }
}

impl Faults {
    /// The next `times` requests of `operation` fail with `fault`.
    pub fn fail_next(&self, operation: &str, times: usize, fault: Fault) {
        self.fail_after(operation, 0, times, fault);
    }

    /// The next `pass` requests of `operation` go through, then `times` fail with `fault`:
    /// an outage in the middle of a batch.
    pub fn fail_after(&self, operation: &str, pass: usize, times: usize, fault: Fault) {
        self.pending.lock().unwrap().insert(operation.to_owned(), (pass, times, fault));
    }

    /// No more failures of `operation`, whatever was still to come.
    pub fn clear(&self, operation: &str) {
        self.pending.lock().unwrap().remove(operation);
    }

    /// How many requests of `operation` were failed so far.
    pub fn injected(&self, operation: &str) -> usize {
        self.injected.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    fn take(&self, operation: &str) -> Option<Fault> {
        let mut pending = self.pending.lock().unwrap();
        let (pass, left, fault) = pending.get_mut(operation)?;
        if *pass > 0 {
            *pass -= 1;
            return None;
        }
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            pending.remove(operation);
        }
        *self.injected.lock().unwrap().entry(operation.to_owned()).or_default() += 1;
        Some(fault)
    }
}

/// The operation of a request: the `X-Amz-Target` suffix (JSON protocols) or the `Action`
/// form field (query protocol: SNS).
/// The service a request is signed for (the credential scope of its SigV4 signature).
fn service_of(headers: &HeaderMap) -> &'static str {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ["sns", "sqs", "sts", "dynamodb", "cognito-idp"]
        .into_iter()
        .find(|svc| auth.contains(&format!("/{svc}/aws4_request")))
        .unwrap_or("other")
}

fn operation_of(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if let Some(t) = target {
        return t.rsplit('.').next().map(str::to_owned);
    }
    form_urlencoded::parse(body).find(|(k, _)| k == "Action").map(|(_, v)| v.into_owned())
}

/// An injected failure, in the request's protocol.
fn fault_response(fault: &Fault, json_protocol: bool) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
    if json_protocol {
        let mut body = json!({ "__type": fault.code, "message": fault.message });
        if !fault.cancellation_reasons.is_empty() {
            let reasons: Vec<_> = fault.cancellation_reasons.iter().map(|code| json!({ "Code": code })).collect();
            body["CancellationReasons"] = json!(reasons);
        }
        let body = body.to_string();
        return (
            status,
            [("content-type", "application/x-amz-json-1.0"), ("x-amzn-errortype", fault.code.as_str())],
            body,
        )
            .into_response();
    }
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>injected</RequestId></ErrorResponse>",
        fault.code, fault.message
    );
    (status, [("content-type", "text/xml")], body).into_response()
}

/// The secret of the access key the local stack gives its functions (`local_sdk` in lib.rs:
/// `local` / `local`); S3 knows no other.
const LOCAL_ACCESS_KEY: (&str, &str) = ("local", "local");

/// The query parameters of a presigned request that are the signature itself, not signed.
const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// S3's error document.
fn s3_error(code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (StatusCode::FORBIDDEN, [("content-type", "application/xml")], body).into_response()
}

/// S3's refusal of a presigned S3 request whose signature or expiry does not hold; `None`
/// for one that does, and for every other request. The signature is computed again over
/// what arrived (the method, the path, the query without the signature's own parameters,
/// the headers it names) with the same time, and compared.
pub fn presigned_s3_refusal(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Response> {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let query: HashMap<String, String> = form_urlencoded::parse(uri.query()?.as_bytes()).into_owned().collect();
    let credential = query.get("X-Amz-Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.get(3) != Some(&"s3") || query.get("X-Amz-Algorithm").map(String::as_str) != Some("AWS4-HMAC-SHA256") {
        return None;
    }
    let malformed = || Some(s3_error("AuthorizationQueryParametersError", "the presigned query is malformed"));
    let (Some(date), Some(expires), Some(signed), Some(signature), Some(region)) = (
        query.get("X-Amz-Date"),
        query.get("X-Amz-Expires").and_then(|e| e.parse::<i64>().ok()),
        query.get("X-Amz-SignedHeaders"),
        query.get("X-Amz-Signature"),
        scope.get(2),
    ) else {
        return malformed();
    };
    let Ok(signed_at) = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ") else { return malformed() };
    let signed_at = signed_at.and_utc();
    if now > signed_at + chrono::Duration::seconds(expires) {
        return Some(s3_error("AccessDenied", "Request has expired"));
    }
    if scope[0] != LOCAL_ACCESS_KEY.0 {
        return Some(s3_error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ));
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let rest: Vec<String> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .filter(|(k, _)| !PRESIGN_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| format!("{}={}", urlencode(&k), urlencode(&v)))
        .collect();
    let url = format!("http://{host}{}{}{}", uri.path(), if rest.is_empty() { "" } else { "?" }, rest.join("&"));
    let signed_headers: Vec<(&str, &str)> = signed
        .split(';')
        .filter(|name| *name != "host")
        .filter_map(|name| Some((name, headers.get(name)?.to_str().ok()?)))
        .collect();
    let identity =
        aws_sdk_dynamodb::config::Credentials::new(LOCAL_ACCESS_KEY.0, LOCAL_ACCESS_KEY.1, None, None, "local").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires.max(0) as u64));
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(signed_at.into())
        .settings(settings)
        .build()
        .ok()?
        .into();
    let request =
        SignableRequest::new(method.as_str(), url, signed_headers.into_iter(), SignableBody::UnsignedPayload).ok()?;
    let expected = sign(request, &params).ok()?.signature().to_owned();
    // A signed header missing from the request fails here too: it was signed with a value.
    let all_present = signed.split(';').all(|name| headers.contains_key(name));
    (!all_present || expected != *signature).then(|| {
        s3_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    })
}

/// RFC 3986 percent-encoding of a query name or value, as SigV4 canonicalises it.
fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

struct PendingCode {
    code: String,
    issued: Instant,
    wrong: u32,
}

struct SignInSession {
    username: String,
    code: PendingCode,
}

pub struct LocalCognito {
    pub moto: String,
    pub pool_id: OnceLock<String>,
    pub client_id: OnceLock<String>,
    pub post_confirmation: OnceLock<TriggerHandler>,
    /// The pool's CustomSMSSender trigger and the ARN of the KMS key it decrypts codes with.
    pub custom_sms_sender: OnceLock<TriggerHandler>,
    pub sms_key: OnceLock<String>,
    pub outbox: Arc<Outbox>,
    pub calls: Arc<CallLog>,
    pub faults: Arc<Faults>,
    /// moto applies a transaction item by item and undoes a cancelled one by restoring a
    /// copy of the whole table, so concurrent requests could see a half-applied transaction
    /// or lose writes made meanwhile. DynamoDB transactions are serializable; to behave
    /// like it, this endpoint sends one DynamoDB request at a time to moto (tables are per
    /// stack, so a per-stack lock is enough).
    dynamodb: tokio::sync::Mutex<()>,
    cognito: Cognito,
    kms: aws_sdk_kms::Client,
    http: reqwest::Client,
    sign_up_codes: Mutex<HashMap<String, PendingCode>>,
    sessions: Mutex<HashMap<String, SignInSession>>,
    /// By username: the email waiting for its code.
    email_codes: Mutex<HashMap<String, (String, PendingCode)>>,
}

impl LocalCognito {
    pub fn new(moto: String, moto_sdk: &aws_config::SdkConfig, outbox: Arc<Outbox>) -> Self {
        Self {
            moto,
            pool_id: OnceLock::new(),
            client_id: OnceLock::new(),
            post_confirmation: OnceLock::new(),
            custom_sms_sender: OnceLock::new(),
            sms_key: OnceLock::new(),
            kms: aws_sdk_kms::Client::new(moto_sdk),
            outbox,
            calls: Arc::default(),
            faults: Arc::default(),
            dynamodb: tokio::sync::Mutex::new(()),
            cognito: Cognito::new(moto_sdk),
            http: reqwest::Client::new(),
            sign_up_codes: Mutex::default(),
            sessions: Mutex::default(),
            email_codes: Mutex::default(),
        }
    }

    fn pool(&self) -> &str {
        self.pool_id.get().map(String::as_str).unwrap_or_default()
    }
}

fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000))
}

/// A Cognito error on the wire: `{"__type": ..., "message": ...}`.
fn cognito_error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1"), ("x-amzn-errortype", kind)],
        json!({ "__type": kind, "message": message }).to_string(),
    )
        .into_response()
}

fn cognito_ok(body: Value) -> Response {
    (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], body.to_string()).into_response()
}

pub async fn serve(
    State(local): State<Arc<LocalCognito>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = presigned_s3_refusal(&method, &uri, &headers, chrono::Utc::now()) {
        return refused;
    }
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let fault = operation_of(&headers, &body).and_then(|op| local.faults.take(&op));
    if let Some(fault) = &fault {
        tracing::info!(code = %fault.code, stall = ?fault.stall, "injected failure");
        match fault.stall {
            None => return fault_response(fault, !target.is_empty()),
            Some(Stall::BeforeApplying) => {
                tokio::time::sleep(STALL).await;
                return fault_response(fault, !target.is_empty());
            }
            Some(Stall::AfterApplying) => {} // below: applied, then held
        }
    }
    let operation = target.strip_prefix("AWSCognitoIdentityProviderService.");
    let service = match target.split_once('.').map(|(prefix, _)| prefix) {
        Some("DynamoDB_20120810") => "dynamodb",
        Some("DynamoDBStreams_20120810") => "dynamodbstreams",
        Some("AWSCognitoIdentityProviderService") => "cognito-idp",
        Some("AmazonSQS") => "sqs",
        Some("AmazonSSM") => "ssm",
        _ => service_of(&headers),
    };
    if let Some(op) = operation_of(&headers, &body) {
        if service == "sns" && op == "Publish" {
            local.record_sms(&body);
        }
        local.calls.record_any(service, &op);
    }
    if let Some(dynamodb) = target.strip_prefix("DynamoDB_20120810.") {
        local.calls.record(dynamodb);
        // In a task of its own: a client that times out drops this handler, and with it a
        // lock held here, while moto is still applying the request; the next request would
        // then run inside moto beside it and break its transactions' isolation (seen as a
        // double booking under load). The task holds the lock until moto has answered.
        let local = local.clone();
        let forwarded = tokio::spawn(async move {
            let _one_at_a_time = local.dynamodb.lock().await;
            local.forward(method, &uri, &headers, body).await
        });
        let answer = forwarded.await.unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response());
        if let Some(lost) = fault {
            // Applied; the answer goes nowhere (the caller has given up by the time it comes).
            tokio::time::sleep(STALL).await;
            return fault_response(&lost, true);
        }
        return answer;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let result = match operation {
        Some("SignUp") => local.sign_up(request, &headers, &uri).await,
        Some("UpdateUserAttributes") => match local.unwritable(&request).await {
            Ok(Some(refused)) => Ok(refused),
            Ok(None) => local.update_attributes(request, method, &uri, &headers).await,
            Err(e) => Err(e),
        },
        Some("VerifyUserAttribute") => local.verify_attribute(request).await,
        Some("ConfirmSignUp") => local.confirm_sign_up(request).await,
        Some("ResendConfirmationCode") => local.resend(request).await,
        Some("ForgotPassword") => local.forgot_password(request).await,
        Some("InitiateAuth") if request["AuthFlow"] == "USER_AUTH" => local.start_sign_in(request).await,
        Some("RespondToAuthChallenge") if request["ChallengeName"] == "SMS_OTP" => local.finish_sign_in(request).await,
        _ => Ok(local.forward(method, &uri, &headers, body).await),
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "local cognito failed");
        cognito_error("InternalErrorException", &e.to_string())
    })
}

impl LocalCognito {
    async fn forward(&self, method: Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> Response {
        let url = format!("{}{}", self.moto, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        let mut request = self.http.request(method, url).body(body);
        for (name, value) in headers {
            // moto picks the service by the SigV4 `Authorization` header; another scheme (an
            // HTTP client's Basic auth on a public endpoint such as a pool's JWKS, which AWS
            // ignores there) would misroute the request.
            let not_sigv4 = name == "authorization" && !value.as_bytes().starts_with(b"AWS4-");
            if name != "host" && name != "content-length" && !not_sigv4 {
                request = request.header(name, value);
            }
        }
        match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = resp.bytes().await.unwrap_or_default();
                let mut out = Response::new(Body::from(bytes));
                *out.status_mut() = status;
                for (name, value) in &headers {
                    if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                        out.headers_mut().insert(name, value.clone());
                    }
                }
                out
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }

    /// `None` when the user does not exist; else (status, attributes with `cognito:username`).
    async fn user(&self, username: &str) -> Result<Option<(String, HashMap<String, String>)>> {
        match self.cognito.admin_get_user().user_pool_id(self.pool()).username(username).send().await {
            Ok(u) => {
                let mut attrs: HashMap<String, String> = u
                    .user_attributes()
                    .iter()
                    .map(|a| (a.name().to_owned(), a.value().unwrap_or_default().to_owned()))
                    .collect();
                attrs.insert("cognito:username".into(), u.username().to_owned());
                let status = u.user_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
                Ok(Some((status, attrs)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_user_not_found_exception()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Cognito's refusal when the request writes an attribute its app client may not (the
    /// client named by `ClientId`, or the one that issued `AccessToken`); `None`: allowed.
    async fn unwritable(&self, request: &Value) -> Result<Option<Response>> {
        let client_id = match request["ClientId"].as_str() {
            Some(id) => id.to_owned(),
            None => token_client_id(request["AccessToken"].as_str().unwrap_or_default()).unwrap_or_default(),
        };
        let client =
            self.cognito.describe_user_pool_client().user_pool_id(self.pool()).client_id(client_id).send().await;
        let Some(client) = client.ok().and_then(|c| c.user_pool_client) else { return Ok(None) };
        // No list at all means every standard attribute, as in Cognito.
        let writable = client.write_attributes();
        if writable.is_empty() {
            return Ok(None);
        }
        let asked = request["UserAttributes"].as_array().cloned().unwrap_or_default();
        let refused = asked.iter().filter_map(|a| a["Name"].as_str()).any(|name| !writable.iter().any(|w| w == name));
        Ok(refused
            .then(|| cognito_error("NotAuthorizedException", "A client attempted to write unauthorized attribute")))
    }

    /// UpdateUserAttributes: a new `email` waits for its code (sent "by email"); the rest is
    /// moto's.
    async fn update_attributes(
        &self,
        mut request: Value,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Response> {
        let Some(username) = token_claim(request["AccessToken"].as_str().unwrap_or_default(), "username") else {
            return Ok(cognito_error("NotAuthorizedException", "Invalid Access Token"));
        };
        let mut attributes = request["UserAttributes"].as_array().cloned().unwrap_or_default();
        let email =
            attributes.iter().find(|a| a["Name"] == "email").and_then(|a| a["Value"].as_str()).map(str::to_owned);
        attributes.retain(|a| a["Name"] != "email");
        let mut details = Vec::new();
        if let Some(email) = email {
            let code = new_code();
            self.outbox.send_email(&email, code.clone());
            let domain = email.rsplit('@').next().unwrap_or_default().to_owned();
            self.email_codes
                .lock()
                .unwrap()
                .insert(username, (email, PendingCode { code, issued: Instant::now(), wrong: 0 }));
            details.push(
                json!({ "Destination": format!("***@{domain}"), "DeliveryMedium": "EMAIL", "AttributeName": "email" }),
            );
        }
        if !attributes.is_empty() {
            request["UserAttributes"] = Value::Array(attributes);
            let response = self.forward(method, uri, headers, Bytes::from(request.to_string())).await;
            if !response.status().is_success() {
                return Ok(response);
            }
        }
        Ok(cognito_ok(json!({ "CodeDeliveryDetailsList": details })))
    }

    /// VerifyUserAttribute for `email`: the code sent for it sets it, verified.
    async fn verify_attribute(&self, request: Value) -> Result<Response> {
        let Some(username) = token_claim(request["AccessToken"].as_str().unwrap_or_default(), "username") else {
            return Ok(cognito_error("NotAuthorizedException", "Invalid Access Token"));
        };
        if request["AttributeName"] != "email" {
            return Ok(cognito_error("InvalidParameterException", "only email is verified by code here"));
        }
        let given = request["Code"].as_str().unwrap_or_default();
        let email = {
            let mut codes = self.email_codes.lock().unwrap();
            let Some((email, pending)) = codes.get_mut(&username) else {
                return Ok(cognito_error(
                    "ExpiredCodeException",
                    "Invalid code provided, please request a code again.",
                ));
            };
            if pending.issued.elapsed() > SIGN_UP_CODE_TTL {
                codes.remove(&username);
                return Ok(cognito_error(
                    "ExpiredCodeException",
                    "Invalid code provided, please request a code again.",
                ));
            }
            if pending.code != given {
                pending.wrong += 1;
                if pending.wrong >= MAX_WRONG_CODES + 2 {
                    codes.remove(&username);
                    return Ok(cognito_error(
                        "LimitExceededException",
                        "Attempt limit exceeded, please try after some time.",
                    ));
                }
                return Ok(cognito_error(
                    "CodeMismatchException",
                    "Invalid verification code provided, please try again.",
                ));
            }
            let email = email.clone();
            codes.remove(&username);
            email
        };
        let attribute = |name: &str, value: &str| {
            aws_sdk_cognitoidentityprovider::types::AttributeType::builder().name(name).value(value).build()
        };
        self.cognito
            .admin_update_user_attributes()
            .user_pool_id(self.pool())
            .username(&username)
            .user_attributes(attribute("email", &email)?)
            .user_attributes(attribute("email_verified", "true")?)
            .send()
            .await?;
        Ok(cognito_ok(json!({})))
    }

    async fn sign_up(&self, mut request: Value, headers: &HeaderMap, uri: &Uri) -> Result<Response> {
        if let Some(refused) = self.unwritable(&request).await? {
            return Ok(refused);
        }
        // Passwordless sign-up: moto insists on a password, so give it one nobody knows.
        if request.get("Password").is_none() {
            request["Password"] = json!(format!("Lp1{}", uuid::Uuid::new_v4().simple()).to_uppercase() + "x");
        }
        let username = request["Username"].as_str().unwrap_or_default().to_owned();
        let body = Bytes::from(request.to_string());
        let response = self.forward(Method::POST, uri, headers, body).await;
        if response.status().is_success() {
            self.send_sign_up_code(&username, "CustomSMSSender_SignUp").await?;
        }
        Ok(response)
    }

    async fn send_sign_up_code(&self, phone: &str, source: &str) -> Result<()> {
        let code = new_code();
        self.sign_up_codes
            .lock()
            .unwrap()
            .insert(phone.to_owned(), PendingCode { code: code.clone(), issued: Instant::now(), wrong: 0 });
        self.send_sms(phone, source, code, "Your AstroKiran code is").await
    }

    /// Sends `code` as Cognito would: through the pool's CustomSMSSender trigger when it has
    /// one (whose SNS publish then reaches the [`Outbox`], see [`serve`]), else straight.
    async fn send_sms(&self, phone: &str, source: &str, code: String, text: &str) -> Result<()> {
        let (Some(trigger), Some(key)) = (self.custom_sms_sender.get(), self.sms_key.get()) else {
            self.outbox.send(phone, code.clone(), format!("{text} {code}"));
            return Ok(());
        };
        let encrypted = encrypt_sms_code(&self.kms, key, self.pool(), &code).await?;
        let (_, attributes) = self.user(phone).await?.unwrap_or_default();
        let mut event = trigger_event(self.pool(), source, self.client_id.get(), &attributes);
        event["request"]["userAttributes"]["phone_number"] = json!(phone);
        event["request"]["userAttributes"].as_object_mut().map(|a| a.remove("cognito:user_status"));
        event["request"]["type"] = json!("customSMSSenderRequestV1");
        event["request"]["code"] = json!(encrypted);
        event["request"]["clientMetadata"] = json!({});
        // Cognito answers the caller as sent whatever the trigger did; a failing trigger is
        // the caller's CodeDeliveryFailure.
        trigger(event).await.map_err(|e| anyhow::anyhow!("CustomSMSSender failed: {e}"))?;
        Ok(())
    }

    async fn confirm_sign_up(&self, request: Value) -> Result<Response> {
        let username = request["Username"].as_str().unwrap_or_default();
        let given = request["ConfirmationCode"].as_str().unwrap_or_default();
        let Some((status, attributes)) = self.user(username).await? else {
            return Ok(cognito_error("UserNotFoundException", "Username/client id combination not found."));
        };
        if status == "CONFIRMED" {
            return Ok(cognito_error(
                "NotAuthorizedException",
                "User cannot be confirmed. Current status is CONFIRMED",
            ));
        }
        {
            let mut codes = self.sign_up_codes.lock().unwrap();
            let Some(pending) = codes.get_mut(username) else {
                return Ok(cognito_error(
                    "ExpiredCodeException",
                    "Invalid code provided, please request a code again.",
                ));
            };
            if pending.issued.elapsed() > SIGN_UP_CODE_TTL {
                codes.remove(username);
                return Ok(cognito_error(
                    "ExpiredCodeException",
                    "Invalid code provided, please request a code again.",
                ));
            }
            if pending.code != given {
                pending.wrong += 1;
                if pending.wrong >= MAX_WRONG_CODES + 2 {
                    codes.remove(username);
                    return Ok(cognito_error("TooManyFailedAttemptsException", "Too many failed attempts."));
                }
                return Ok(cognito_error(
                    "CodeMismatchException",
                    "Invalid verification code provided, please try again.",
                ));
            }
            codes.remove(username);
        }
        self.cognito.admin_confirm_sign_up().user_pool_id(self.pool()).username(username).send().await?;
        if let Some(trigger) = self.post_confirmation.get() {
            let event = trigger_event(self.pool(), "PostConfirmation_ConfirmSignUp", self.client_id.get(), &attributes);
            if let Err(e) = trigger(event).await {
                return Ok(cognito_error(
                    "UserLambdaValidationException",
                    &format!("PostConfirmation failed with error {e}."),
                ));
            }
        }
        Ok(cognito_ok(json!({})))
    }

    async fn resend(&self, request: Value) -> Result<Response> {
        let username = request["Username"].as_str().unwrap_or_default();
        match self.user(username).await? {
            None => Ok(cognito_error("UserNotFoundException", "Username/client id combination not found.")),
            Some((status, _)) if status == "CONFIRMED" => {
                Ok(cognito_error("InvalidParameterException", "User is already confirmed."))
            }
            Some(_) => {
                self.send_sign_up_code(username, "CustomSMSSender_ResendCode").await?;
                Ok(cognito_ok(json!({ "CodeDeliveryDetails": delivery(username) })))
            }
        }
    }

    /// A password-reset code by SMS, for a confirmed user (the pool is passwordless, so no
    /// route uses it and ConfirmForgotPassword is not played; it is here because anyone can
    /// call it, and it sends an SMS). Unknown numbers get the same answer, as the app client
    /// prevents user existence errors.
    async fn forgot_password(&self, request: Value) -> Result<Response> {
        let username = request["Username"].as_str().unwrap_or_default();
        if let Some((status, _)) = self.user(username).await?
            && status == "CONFIRMED"
        {
            self.send_sms(username, "CustomSMSSender_ForgotPassword", new_code(), "Your AstroKiran code is").await?;
        }
        Ok(cognito_ok(json!({ "CodeDeliveryDetails": delivery(username) })))
    }

    /// An SNS Publish to a phone number (the SMS sender trigger's): the SMS, in the outbox.
    fn record_sms(&self, body: &[u8]) {
        let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
        let (Some(to), Some(text)) = (form.get("PhoneNumber"), form.get("Message")) else { return };
        let code = text.split(|c: char| !c.is_ascii_digit()).rfind(|w| w.len() == 6).unwrap_or_default();
        self.outbox.send(to, code.to_owned(), text.clone());
    }

    async fn start_sign_in(&self, request: Value) -> Result<Response> {
        let username = request["AuthParameters"]["USERNAME"].as_str().unwrap_or_default();
        match self.user(username).await? {
            None => return Ok(cognito_error("UserNotFoundException", "User does not exist.")),
            Some((status, _)) if status != "CONFIRMED" => {
                return Ok(cognito_error("UserNotConfirmedException", "User is not confirmed."));
            }
            Some(_) => {}
        }
        let code = new_code();
        let session = format!("local-{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.sessions.lock().unwrap().insert(
            session.clone(),
            SignInSession {
                username: username.to_owned(),
                code: PendingCode { code: code.clone(), issued: Instant::now(), wrong: 0 },
            },
        );
        self.send_sms(username, "CustomSMSSender_Authentication", code, "Your AstroKiran sign-in code is").await?;
        Ok(cognito_ok(json!({
            "ChallengeName": "SMS_OTP",
            "Session": session,
            "ChallengeParameters": {
                "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
                "CODE_DELIVERY_DESTINATION": mask_phone(username),
            }
        })))
    }

    async fn finish_sign_in(&self, request: Value) -> Result<Response> {
        let session_id = request["Session"].as_str().unwrap_or_default();
        let username = request["ChallengeResponses"]["USERNAME"].as_str().unwrap_or_default();
        let given = request["ChallengeResponses"]["SMS_OTP_CODE"].as_str().unwrap_or_default();
        {
            let mut sessions = self.sessions.lock().unwrap();
            let valid = sessions
                .get(session_id)
                .is_some_and(|s| s.username == username && s.code.issued.elapsed() <= SIGN_IN_SESSION_TTL);
            if !valid {
                sessions.remove(session_id);
                return Ok(cognito_error(
                    "NotAuthorizedException",
                    "Invalid session for the user, session is expired.",
                ));
            }
            let session = sessions.get_mut(session_id).expect("checked above");
            if session.code.code != given {
                session.code.wrong += 1;
                if session.code.wrong >= MAX_WRONG_CODES {
                    sessions.remove(session_id);
                }
                return Ok(cognito_error("CodeMismatchException", "Invalid code or auth state for the user."));
            }
            sessions.remove(session_id);
        }
        // moto cannot sign in without a password: set a throwaway one and use the admin flow.
        let password = format!("Tmp{}x", uuid::Uuid::new_v4().simple()).to_uppercase() + "z";
        self.cognito
            .admin_set_user_password()
            .user_pool_id(self.pool())
            .username(username)
            .password(&password)
            .permanent(true)
            .send()
            .await?;
        let auth = self
            .cognito
            .admin_initiate_auth()
            .user_pool_id(self.pool())
            .client_id(self.client_id.get().map(String::as_str).unwrap_or_default())
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await?;
        let tokens = auth.authentication_result().ok_or_else(|| anyhow::anyhow!("moto returned no tokens"))?;
        Ok(cognito_ok(json!({
            "ChallengeParameters": {},
            "AuthenticationResult": {
                "AccessToken": tokens.access_token(),
                "IdToken": tokens.id_token(),
                "RefreshToken": tokens.refresh_token(),
                "ExpiresIn": tokens.expires_in(),
                "TokenType": tokens.token_type().unwrap_or("Bearer"),
            }
        })))
    }
}

/// A code as Cognito hands it to the CustomSMSSender trigger: base64 of an AWS Encryption SDK
/// message (suite 0x0578, Cognito's default) whose data key KMS generated under `key` and the
/// message's encryption context (`userpool-id`, and the signing key), so the local stack runs
/// the deployed trigger's decryption.
pub async fn encrypt_sms_code(kms: &aws_sdk_kms::Client, key: &str, pool_id: &str, code: &str) -> Result<String> {
    use base64::Engine;
    use custom_sms_sender::esdk::{EncryptedDataKey, Encryptor, KMS_PROVIDER};
    let encryptor = Encryptor::new([("userpool-id".to_string(), pool_id.to_string())].into());
    let generated = kms
        .generate_data_key()
        .key_id(key)
        .number_of_bytes(32)
        .set_encryption_context(Some(encryptor.context().clone().into_iter().collect()))
        .send()
        .await?;
    let data_key: [u8; 32] = generated
        .plaintext
        .as_ref()
        .and_then(|p| p.as_ref().try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("KMS returned no 32-byte data key"))?;
    let wrapped = EncryptedDataKey {
        provider_id: KMS_PROVIDER.into(),
        provider_info: key.as_bytes().to_vec(),
        ciphertext: generated
            .ciphertext_blob
            .ok_or_else(|| anyhow::anyhow!("KMS returned no ciphertext"))?
            .into_inner(),
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(encryptor.seal(&data_key, &wrapped, code.as_bytes())))
}

/// The `client_id` claim of an access token (moto's tokens are JWTs).
fn token_client_id(token: &str) -> Option<String> {
    token_claim(token, "client_id")
}

/// A claim of a token moto signed (read, not verified: moto checks the token itself).
fn token_claim(token: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?[name].as_str().map(str::to_owned)
}

fn delivery(phone: &str) -> Value {
    json!({ "Destination": mask_phone(phone), "DeliveryMedium": "SMS", "AttributeName": "phone_number" })
}

/// The event Cognito sends a PostConfirmation trigger.
pub fn trigger_event(
    pool_id: &str,
    source: &str,
    client_id: Option<&String>,
    attributes: &HashMap<String, String>,
) -> Value {
    let mut attrs = attributes.clone();
    attrs.remove("cognito:username");
    attrs.insert("cognito:user_status".into(), "CONFIRMED".into());
    json!({
        "version": "1",
        "region": "ap-south-1",
        "userPoolId": pool_id,
        "userName": attributes.get("cognito:username").cloned().unwrap_or_default(),
        "triggerSource": source,
        "callerContext": { "awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": client_id },
        "request": { "userAttributes": attrs },
        "response": {}
    })
}
