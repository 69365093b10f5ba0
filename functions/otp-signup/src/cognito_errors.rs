//! Cognito's errors, mapped to what the app should show. Sign-in folds every "no" into one
//! answer so it cannot be used to learn which phone numbers are registered.

use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use shared::ApiError;

/// Internal marker: the user does not exist (callers that must not reveal it catch this).
pub const UNKNOWN_USER: &str = "user_not_found";
pub const INVALID_CODE: &str = "invalid_code";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SignUp,
    ConfirmSignUp,
    ResendCode,
    StartSignIn,
    VerifySignIn,
}

pub fn map_error<E, R>(op: Operation, err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = match &err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("Unknown").to_owned(),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            tracing::warn!(?op, error = ?err, "cognito unreachable");
            return ApiError::unavailable("auth_unavailable", "sign-in is unavailable right now; try again shortly");
        }
        other => {
            tracing::error!(?op, error = ?other, "cognito call failed");
            return ApiError::bad_gateway("auth_error", "sign-in failed; try again");
        }
    };
    map_code(op, &code)
}

fn map_code(op: Operation, code: &str) -> ApiError {
    use Operation::*;
    match (op, code) {
        (SignUp, "UsernameExistsException" | "AliasExistsException") => {
            ApiError::conflict("phone_already_registered", "this phone number is already registered; sign in instead")
        }
        (
            VerifySignIn,
            "CodeMismatchException" | "ExpiredCodeException" | "NotAuthorizedException" | "UserNotFoundException",
        ) => ApiError::unauthorized(INVALID_CODE, "the code is wrong or has expired; request a new one"),
        (StartSignIn, "UserNotFoundException" | "UserNotConfirmedException" | "NotAuthorizedException") => {
            ApiError::new(404, UNKNOWN_USER, "no such user")
        }
        (ResendCode, "UserNotFoundException") => ApiError::new(404, UNKNOWN_USER, "no such user"),
        (ResendCode, "InvalidParameterException") => {
            ApiError::conflict("already_confirmed", "this phone number is already confirmed; sign in instead")
        }
        (ConfirmSignUp, "CodeMismatchException") => {
            ApiError::bad_request("code_mismatch", "the code is wrong; check the SMS and try again")
        }
        (ConfirmSignUp, "ExpiredCodeException") => {
            ApiError::bad_request("code_expired", "the code has expired; request a new one")
        }
        (ConfirmSignUp, "UserNotFoundException") => {
            ApiError::new(404, UNKNOWN_USER, "no sign-up for this phone number; sign up first")
        }
        (ConfirmSignUp, "NotAuthorizedException") => {
            ApiError::conflict("already_confirmed", "this phone number is already confirmed; sign in instead")
        }
        (ConfirmSignUp, "AliasExistsException") => {
            ApiError::conflict("phone_already_registered", "this phone number is already registered; sign in instead")
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
    }
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
        assert_eq!(answers[0].status, 401);
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
                assert!(map_code(op, code).status != 500);
            }
        }
    }
}
