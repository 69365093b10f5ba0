//! Setting up a confirmed account: the user, phone claim, zero wallet (and astrologer
//! profile) with their `UserRegistered` event, then the Cognito group of the role chosen at
//! sign-up. The post-confirmation trigger does it; when the trigger failed after Cognito
//! had confirmed the user (Cognito does not run it again), the first signed-in call finds
//! the account by its `sub` and does it then.
//!
//! A phone claim held by another user is moved to this one when Cognito no longer gives
//! the number to its holder (deleted account, recycled number).
//!
//! Every step can be run again, by anyone, at any time: the registration is one transaction
//! that commits at most once (a rerun finds the user and writes nothing), and adding a user
//! to a group they are in changes nothing. Two first calls racing both finish, and the
//! event is written once.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::Client as Cognito;
use chrono::Utc;

use crate::domain::events::{Envelope, UserRegistered};
use crate::store::{NewUser, Registered, Store, StoreError};
use crate::{Email, PersonName, Phone, UserId, UserType};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("attribute {0} is missing or invalid")]
    InvalidAttribute(&'static str),
    #[error("refusing role {0:?}: only user and astrologer can be chosen at sign-up")]
    RoleNotAllowed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cognito: {0}")]
    Cognito(String),
    #[error("the phone number is claimed by user {0}, who still has it in Cognito")]
    PhoneTaken(UserId),
}

/// A user of the pool as Cognito holds them: the username and attributes (`sub`, ...).
#[derive(Debug, Clone)]
pub struct CognitoUser {
    pub username: String,
    pub confirmed: bool,
    pub attributes: HashMap<String, String>,
}

/// The role chosen at sign-up: `custom:user_type` is immutable in the pool schema, so it is
/// what the user picked then. Refused: no self-service role (an operator's staff account).
pub fn sign_up_role(attributes: &HashMap<String, String>) -> Result<UserType, SetupError> {
    let raw = attributes.get("custom:user_type").map(String::as_str).unwrap_or("");
    UserType::parse_self_service(raw).map_err(|_| SetupError::RoleNotAllowed(raw.to_owned()))
}

/// The user to register, read off Cognito's attributes.
pub fn new_user(attributes: &HashMap<String, String>) -> Result<NewUser, SetupError> {
    let get = |name: &str| attributes.get(name).map(String::as_str).unwrap_or("");
    Ok(NewUser {
        id: UserId::parse(get("sub")).map_err(|_| SetupError::InvalidAttribute("sub"))?,
        phone: Phone::parse(get("phone_number")).map_err(|_| SetupError::InvalidAttribute("phone_number"))?,
        first_name: PersonName::parse(get("given_name"))
            .map_err(|_| SetupError::InvalidAttribute("given_name"))?
            .into(),
        last_name: PersonName::parse(get("family_name"))
            .map_err(|_| SetupError::InvalidAttribute("family_name"))?
            .into(),
        email: attributes.get("email").and_then(|e| Email::parse(e).ok()).map(String::from),
        user_type: sign_up_role(attributes)?,
        created_at: Utc::now(),
    })
}

/// Registers the user (at most once) and puts them in their role's group.
pub async fn finish_setup(
    store: &Store,
    cognito: &Cognito,
    pool_id: &str,
    username: &str,
    attributes: &HashMap<String, String>,
) -> Result<(NewUser, Registered), SetupError> {
    let user = new_user(attributes)?;
    let registered = Envelope::new(
        UserRegistered::event_id(&user.id),
        user.created_at,
        UserRegistered { user_id: user.id.clone(), user_type: user.user_type, first_name: user.first_name.clone() },
    );
    let mut outcome = store.register(&user, &registered, None).await?;
    if let Registered::PhoneClaimedBy(holder) = &outcome {
        // Cognito has just confirmed the number for this user, and gives a number to one
        // confirmed user only: the claim is stale (the account is gone, or the number moved
        // on) unless Cognito still gives the number to its holder.
        let holder_has_it = find_by_sub(cognito, pool_id, holder)
            .await?
            .is_some_and(|u| u.attributes.get("phone_number").map(String::as_str) == Some(user.phone.e164()));
        if holder_has_it {
            return Err(SetupError::PhoneTaken(holder.clone()));
        }
        tracing::warn!(user_id = %user.id, previous = %holder, "stale phone claim moves to the user Cognito confirmed");
        outcome = store.register(&user, &registered, Some(holder)).await?;
        if let Registered::PhoneClaimedBy(holder) = outcome {
            return Err(SetupError::PhoneTaken(holder));
        }
    }
    add_to_group(cognito, pool_id, username, user.user_type).await?;
    Ok((user, outcome))
}

pub async fn add_to_group(cognito: &Cognito, pool_id: &str, username: &str, role: UserType) -> Result<(), SetupError> {
    cognito
        .admin_add_user_to_group()
        .user_pool_id(pool_id)
        .username(username)
        .group_name(role.as_str())
        .send()
        .await
        .map_err(|e| SetupError::Cognito(format!("adding to group {}: {e:?}", role.as_str())))?;
    Ok(())
}

/// The pool's user with this `sub` (one ListUsers with a filter), if any.
pub async fn find_by_sub(cognito: &Cognito, pool_id: &str, sub: &UserId) -> Result<Option<CognitoUser>, SetupError> {
    let output = cognito
        .list_users()
        .user_pool_id(pool_id)
        // A UserId is a UUID: nothing in it can break out of the quotes.
        .filter(format!("sub = \"{sub}\""))
        .limit(1)
        .send()
        .await
        .map_err(|e| SetupError::Cognito(format!("finding the user: {e:?}")))?;
    Ok(output.users().first().map(|u| CognitoUser {
        username: u.username().unwrap_or_default().to_owned(),
        confirmed: u.user_status().is_some_and(|s| s.as_str() == "CONFIRMED"),
        attributes: u
            .attributes()
            .iter()
            .map(|a| (a.name().to_owned(), a.value().unwrap_or_default().to_owned()))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(role: &str) -> HashMap<String, String> {
        [
            ("sub", "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"),
            ("phone_number", "+919876543210"),
            ("given_name", "Ravi"),
            ("family_name", "Shastri"),
            ("custom:user_type", role),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn the_user_comes_from_the_attributes_and_admin_is_never_self_service() {
        let user = new_user(&attributes("astrologer")).unwrap();
        assert_eq!(
            (user.user_type, user.phone.e164(), user.first_name.as_str()),
            (UserType::Astrologer, "+919876543210", "Ravi")
        );
        assert!(matches!(new_user(&attributes("admin")), Err(SetupError::RoleNotAllowed(r)) if r == "admin"));
        let mut bad = attributes("user");
        bad.insert("phone_number".into(), "12345".into());
        assert!(matches!(new_user(&bad), Err(SetupError::InvalidAttribute("phone_number"))));
    }
}
