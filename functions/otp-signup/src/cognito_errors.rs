//! Cognito's errors, mapped to what the app should show. No route's answer tells whether a
//! phone number is registered: sign-in folds every "no" into one answer, sign-up answers a
//! taken number as a new one, and confirming or resending treats a customer's number as a
//! number nobody used.

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use shared::ApiError;

pub const INVALID_CODE: &str = "invalid_code";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SignUp,
    ConfirmSignUp,
    ResendCode,
    StartSignIn,
    VerifySignIn,
}

/// Cognito's "no", before it reaches the caller. The first two reveal who is registered, so
/// each route answers them as it answers the ordinary case; they never become an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such (confirmed) user for the number.
    UnknownUser,
    /// The number is registered already (pending or confirmed).
    Taken,
    /// Confirmed, but the post-confirmation trigger failed: the first signed-in call
    /// finishes the account's setup (`shared::app::account`).
    SetupUnfinished,
    /// What the caller sees.
    Error(ApiError),
}

impl Refusal {
    /// The caller's error, for the routes that never meet the hidden cases.
    pub fn into_error(self) -> ApiError {
        match self {
            Refusal::Error(err) => err,
            hidden => {
                tracing::error!(?hidden, "cognito answer reached a route that cannot hide it");
                ApiError::bad_gateway("auth_error", "sign-in failed; try again")
            }
        }
    }
}

/// A wrong, expired or unusable code on `POST /auth/signup/confirm`: one answer whether the
/// number is pending, confirmed already or unknown.
fn confirm_refused() -> ApiError {
    ApiError::bad_request("code_mismatch", "the code is wrong or has expired; check the SMS or request a new one")
}

pub fn map_error<E, R>(op: Operation, err: SdkError<E, R>) -> Refusal
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = match &err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("Unknown").to_owned(),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            tracing::warn!(?op, error = ?err, "cognito unreachable");
            return Refusal::Error(ApiError::unavailable(
                "auth_unavailable",
                "sign-in is unavailable right now; try again shortly",
            ));
        }
        other => {
            tracing::error!(?op, error = ?other, "cognito call failed");
            return Refusal::Error(ApiError::bad_gateway("auth_error", "sign-in failed; try again"));
        }
    };
    map_code(op, &code)
}

fn map_code(op: Operation, code: &str) -> Refusal {
    use Operation::*;
    Refusal::Error(match (op, code) {
        (SignUp, "UsernameExistsException" | "AliasExistsException") => return Refusal::Taken,
        (
            VerifySignIn,
            "CodeMismatchException" | "ExpiredCodeException" | "NotAuthorizedException" | "UserNotFoundException",
        ) => ApiError::unauthorized(INVALID_CODE, "the code is wrong or has expired; request a new one"),
        (StartSignIn, "UserNotFoundException" | "UserNotConfirmedException" | "NotAuthorizedException") => {
            return Refusal::UnknownUser;
        }
        // InvalidParameterException: the number is confirmed already, so no sign-up code to resend.
        (ResendCode, "UserNotFoundException" | "InvalidParameterException") => return Refusal::UnknownUser,
        (
            ConfirmSignUp,
            "CodeMismatchException"
            | "ExpiredCodeException"
            | "UserNotFoundException"
            | "NotAuthorizedException"
            | "AliasExistsException",
        ) => confirm_refused(),
        (ConfirmSignUp, "UserLambdaValidationException" | "UnexpectedLambdaException") => {
            return Refusal::SetupUnfinished;
        }
        (_, "TooManyFailedAttemptsException") => {
            ApiError::too_many("too_many_attempts", "too many wrong codes; wait a while and request a new one")
        }
        (_, "TooManyRequestsException" | "LimitExceededException") => {
            ApiError::too_many("too_many_requests", "too many requests; wait a while and try again")
        }
        (_, "CodeDeliveryFailureException") => {
            ApiError::bad_gateway("sms_delivery_failed", "the SMS could not be sent; check the number and try again")
        }
        (_, "InvalidParameterException") => {
            ApiError::bad_request("invalid_request", "the request was refused by sign-in")
        }
        (_, "UserLambdaValidationException" | "UnexpectedLambdaException") => {
            ApiError::bad_gateway("account_setup_failed", "we could not set up the account; try again")
        }
        (_, other) => {
            tracing::error!(?op, code = other, "unmapped cognito error");
            ApiError::bad_gateway("auth_error", "sign-in failed; try again")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_failures_are_indistinguishable() {
        let answers: Vec<_> =
            ["CodeMismatchException", "ExpiredCodeException", "NotAuthorizedException", "UserNotFoundException"]
                .iter()
                .map(|code| map_code(Operation::VerifySignIn, code))
                .collect();
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        assert!(matches!(&answers[0], Refusal::Error(e) if e.status == 401), "{answers:?}");
    }

    #[test]
    fn confirming_does_not_tell_a_customer_from_a_stranger() {
        let answers: Vec<_> = [
            "CodeMismatchException",
            "ExpiredCodeException",
            "UserNotFoundException",
            "NotAuthorizedException",
            "AliasExistsException",
        ]
        .iter()
        .map(|code| map_code(Operation::ConfirmSignUp, code))
        .collect();
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
        assert_eq!(answers[0], Refusal::Error(confirm_refused()));
    }

    #[test]
    fn nothing_maps_to_500() {
        for op in [
            Operation::SignUp,
            Operation::ConfirmSignUp,
            Operation::ResendCode,
            Operation::StartSignIn,
            Operation::VerifySignIn,
        ] {
            for code in ["Whatever", "InternalErrorException", "InvalidParameterException", "TooManyRequestsException"]
            {
                if let Refusal::Error(err) = map_code(op, code) {
                    assert!(err.status != 500);
                }
            }
        }
    }
}
