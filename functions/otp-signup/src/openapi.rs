//! This function's part of the API contract (see `shared::http::openapi`).

use serde_json::json;
use shared::http::openapi::{self as doc, ErrorCase, FunctionDoc, Operation, Request, error, schema, success};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::*;

/// Cognito's answers any route of this function can turn into (`cognito_errors::map_code`),
/// and the store's (the SMS counters).
const COGNITO: &[ErrorCase] = &[
    doc::STORE_UNAVAILABLE,
    error(503, "auth_unavailable", "sign-in (Cognito) is unreachable; retry shortly"),
    error(502, "auth_error", "sign-in failed unexpectedly; retry"),
    error(502, "account_setup_failed", "the account could not be set up after confirmation; retry"),
    error(502, "sms_delivery_failed", "the SMS could not be sent; check the number"),
    error(429, "too_many_requests", "too many requests; wait and retry"),
    error(429, "too_many_attempts", "too many wrong codes; wait, then request a new code"),
    error(400, "invalid_request", "sign-in refused the request as malformed"),
];

/// The routes that send an SMS code, over a number's or an address's limit (`shared::domain::sms`).
const TOO_MANY_SMS: ErrorCase = error(
    429,
    shared::app::sms::TOO_MANY_SMS,
    "too many codes for this number, or from this network, this hour; wait the `Retry-After` header's seconds",
);

pub fn openapi() -> FunctionDoc {
    FunctionDoc::new("otp-signup", "Sign-up and sign-in", ROUTES, COGNITO, |op| match op {
        Op::SignUp => Operation {
            summary: "Sign up with a phone number",
            description: "Creates the account (no password) and sends a 6-digit code by SMS; confirm it with \
                          `POST /auth/signup/confirm`. Locally the code appears in the stack's log. A number that \
                          is registered already gets the same answer and its account is left as it is; a sign-up \
                          still unconfirmed is replaced by this one (its code no longer works), so the code confirms \
                          the account its holder asked for, and this does not reveal who is registered.",
            request: Request::Json(doc::body(schema::<SignUpBody>)),
            responses: vec![success(201, "Signed up; a code was sent by SMS", schema::<SignedUp>)],
            errors: vec![TOO_MANY_SMS],
            ..Operation::default()
        },
        Op::Confirm => Operation {
            summary: "Confirm the sign-up with the SMS code",
            description: "Confirms the account; the user, wallet (and, for an astrologer, the profile) are created. \
                          A wrong or expired code, a number with no pending sign-up and one confirmed already all \
                          get the same `400 code_mismatch`.",
            request: Request::Json(doc::body(schema::<ConfirmBody>)),
            responses: vec![success(200, "Confirmed", schema::<Confirmed>)],
            errors: vec![error(
                400,
                "code_mismatch",
                "the code is wrong or has expired (or the number has no pending sign-up); request a new one, or sign in",
            )],
            ..Operation::default()
        },
        Op::Resend => Operation {
            summary: "Send the sign-up code again",
            description: "Answers the same whether or not the number has signed up.",
            request: Request::Json(doc::body(schema::<PhoneBody>)),
            responses: vec![success(
                202,
                "A new code was sent (if the number has a pending sign-up)",
                schema::<CodeResent>,
            )],
            errors: vec![TOO_MANY_SMS],
            ..Operation::default()
        },
        Op::StartSignIn => Operation {
            summary: "Start signing in: send a code by SMS",
            description: "Returns the session to verify the code with. An unknown number gets a session that looks \
                          the same and can never succeed, so this does not reveal who is registered.",
            request: Request::Json(doc::body(schema::<PhoneBody>)),
            responses: vec![success(200, "A code was sent", schema::<SignInChallenge>)],
            errors: vec![TOO_MANY_SMS],
            ..Operation::default()
        },
        Op::VerifySignIn => Operation {
            summary: "Finish signing in with the SMS code",
            description: "Returns Cognito's tokens: send `access_token` as `Authorization: Bearer …` to the other routes.",
            request: Request::Json(doc::body(schema::<VerifyBody>)),
            responses: vec![success(200, "Signed in", schema::<Tokens>)],
            errors: vec![error(
                401,
                cognito_errors::INVALID_CODE,
                "the code is wrong or expired, or the session is not valid",
            )],
            ..Operation::default()
        },
    })
}

/// `user_type` at sign-up: what `UserType::parse_self_service` accepts.
pub fn self_service_role() -> RefOr<Schema> {
    doc::json_schema(json!({ "type": "string", "enum": ["user", "astrologer"] }))
}

impl utoipa::PartialSchema for OtpCode {
    fn schema() -> RefOr<Schema> {
        // `OtpCode::try_from` trims, then wants exactly six ASCII digits.
        doc::json_schema(json!({
            "type": "string", "pattern": "^\\s*[0-9]{6}\\s*$",
            "description": "the 6-digit code from the SMS", "examples": ["123456"],
        }))
    }
}
impl utoipa::ToSchema for OtpCode {}

impl utoipa::PartialSchema for Session {
    fn schema() -> RefOr<Schema> {
        // `Session::try_from`: 1 to 4096 ASCII characters.
        doc::json_schema(json!({
            "type": "string", "minLength": 1, "maxLength": 4096, "pattern": "^[\\x00-\\x7F]+$",
            "description": "the `session` returned by `POST /auth/otp`",
        }))
    }
}
impl utoipa::ToSchema for Session {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written schemas accept exactly what the types accept, on a few samples.
    #[test]
    fn code_and_session_schemas_follow_the_types() {
        for (raw, ok) in [("123456", true), (" 123456 ", true), ("12345", false), ("12345a", false), ("1234567", false)]
        {
            assert_eq!(OtpCode::try_from(raw.to_owned()).is_ok(), ok, "{raw}");
            let trimmed = raw.trim();
            assert_eq!(trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()), ok, "{raw}");
        }
        assert!(Session::try_from(String::new()).is_err());
        assert!(Session::try_from(String::from("é")).is_err());
        assert!(Session::try_from("a".repeat(4097)).is_err());
        assert!(Session::try_from("a".repeat(4096)).is_ok());
    }
}
