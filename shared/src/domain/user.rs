//! Users, roles and the statuses a profile moves through.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A user's id: the Cognito `sub`, a UUID.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user id must be a Cognito sub (a UUID)")]
pub struct InvalidUserId;

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        uuid::Uuid::parse_str(raw).map(|u| Self(u.hyphenated().to_string())).map_err(|_| InvalidUserId)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<UserId> for String {
    fn from(id: UserId) -> Self {
        id.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

/// The role a user has. It is also the name of the Cognito group the user is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    User,
    Astrologer,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserTypeError {
    #[error("user_type must be \"user\" or \"astrologer\"")]
    NotSelfService,
    #[error("unknown user type")]
    Unknown,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::User => "user",
            UserType::Astrologer => "astrologer",
            UserType::Admin => "admin",
        }
    }

    /// Any role, as stored or as a Cognito group name.
    pub fn parse(raw: &str) -> Result<Self, UserTypeError> {
        match raw {
            "user" => Ok(UserType::User),
            "astrologer" => Ok(UserType::Astrologer),
            "admin" => Ok(UserType::Admin),
            _ => Err(UserTypeError::Unknown),
        }
    }

    /// A role someone may choose for themself at sign-up: never `admin`.
    pub fn parse_self_service(raw: &str) -> Result<Self, UserTypeError> {
        match Self::parse(raw) {
            Ok(UserType::Admin) | Err(_) => Err(UserTypeError::NotSelfService),
            Ok(role) => Ok(role),
        }
    }
}

use crate::domain::status::string_enum;

string_enum!(
    /// Whether a user may use the marketplace; astrologers start `pending` until KYC approves them.
    ProfileStatus { Pending => "pending", Approved => "approved", Rejected => "rejected", Suspended => "suspended" }
);

string_enum!(
    /// Where an astrologer's Digio video KYC stands.
    KycStatus {
        NotStarted => "not_started",
        InProgress => "in_progress",
        Completed => "completed",
        Failed => "failed",
        Rejected => "rejected",
        Expired => "expired",
    }
);

string_enum!(
    /// The admin-facing verification outcome, set together with `kyc_status = completed`.
    VerificationStatus { Pending => "pending", Approved => "approved", Rejected => "rejected" }
);

impl ProfileStatus {
    /// Customers are usable at once; astrologers wait for KYC approval.
    pub fn initial_for(role: UserType) -> Self {
        match role {
            UserType::Astrologer => ProfileStatus::Pending,
            UserType::User | UserType::Admin => ProfileStatus::Approved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_can_never_be_chosen() {
        assert_eq!(UserType::parse_self_service("admin"), Err(UserTypeError::NotSelfService));
        assert_eq!(UserType::parse_self_service("Admin"), Err(UserTypeError::NotSelfService));
        assert_eq!(UserType::parse_self_service("astrologer"), Ok(UserType::Astrologer));
        assert_eq!(UserType::parse("admin"), Ok(UserType::Admin));
    }

    #[test]
    fn user_id_is_a_uuid() {
        assert!(UserId::parse("not-a-uuid").is_err());
        let id = UserId::parse("0C7B7A6E-1D2F-4C3B-9A8E-7F6D5C4B3A21").unwrap();
        assert_eq!(id.as_str(), "0c7b7a6e-1d2f-4c3b-9a8e-7f6d5c4b3a21");
    }

    #[test]
    fn statuses_round_trip() {
        for s in ["not_started", "in_progress", "completed", "failed", "rejected", "expired"] {
            assert_eq!(KycStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ProfileStatus::initial_for(UserType::Astrologer), ProfileStatus::Pending);
    }
}

/// A first or last name: trimmed, 1 to 50 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 50 characters with no control characters")]
pub struct InvalidName;

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, InvalidName> {
        let name = raw.trim();
        // Counted as sent (the contract's `maxLength`), not as trimmed.
        let ok = !name.is_empty() && raw.chars().count() <= 50 && !name.chars().any(char::is_control);
        ok.then(|| Self(name.to_owned())).ok_or(InvalidName)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for PersonName {
    type Error = InvalidName;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}
impl From<PersonName> for String {
    fn from(n: PersonName) -> Self {
        n.0
    }
}

/// An email address in the plain `local@domain.tld` form, lower-cased, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an email address like name@example.com")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                && !domain.starts_with('.') && !domain.ends_with('.'));
        valid.then_some(Self(email)).ok_or(InvalidEmail)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Email {
    type Error = InvalidEmail;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}
impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_and_emails() {
        assert_eq!(PersonName::parse("  Asha ").unwrap().as_str(), "Asha");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(51)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert_eq!(Email::parse("Asha@Example.com").unwrap().as_str(), "asha@example.com");
        for bad in ["asha", "asha@", "@x.com", "a@b", "a b@c.com", "a@b@c.com", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
