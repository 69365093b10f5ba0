//! Objects in the private images bucket: the random file name every key ends with, and
//! profile pictures (their types, sizes and keys). Chat images' keys are a consultation's
//! (`booking::chat::ImageKey`). Pure types and checks.

use serde::{Deserialize, Serialize};

use crate::domain::user::UserId;

/// The random part of a file name: 32 lower-case hex digits (a UUID's 128 bits).
const RANDOM_LEN: usize = 32;

/// `{random:032x}.{extension}`: a name no one can guess, so no one finds another's object.
pub fn file_name(random: u128, extension: &str) -> String {
    format!("{random:032x}.{extension}")
}

/// Whether `file` is a [`file_name`] with one of `extensions`.
pub fn is_file_name(file: &str, extensions: &[&str]) -> bool {
    file.split_once('.').is_some_and(|(random, extension)| {
        random.len() == RANDOM_LEN
            && random.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && extensions.contains(&extension)
    })
}

/// The largest profile picture, in bytes (2 MiB: a portrait the apps show at a few hundred
/// pixels needs no more).
pub const MAX_PICTURE_BYTES: u64 = 2 * 1024 * 1024;

/// What a profile picture may be.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PictureType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/webp")]
    Webp,
}

impl PictureType {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }
}

const PICTURE_EXTENSIONS: &[&str] = &["jpg", "png", "webp"];

/// A picture upload's size, if it may be uploaded: 1 byte to 2 MiB.
pub fn check_picture_size(size: u64) -> Result<u64, String> {
    (1..=MAX_PICTURE_BYTES)
        .contains(&size)
        .then_some(size)
        .ok_or_else(|| format!("must be 1 to {MAX_PICTURE_BYTES} bytes"))
}

/// Why a picture key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not a picture key issued to you by POST /me/picture")]
pub struct NotYourPicture;

/// Where a user's profile picture lives in the images bucket:
/// `pictures/{user_id}/{random}.{jpg|png|webp}`. The user in the key is what `PUT /me/picture`
/// checks: a key issued to one user is refused for any other.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^pictures/[0-9a-f-]{36}/[0-9a-f]{32}\\.(jpg|png|webp)$"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PictureKey(String);

impl PictureKey {
    /// A new key for a picture of `user`; `random` is 128 random bits.
    pub fn new(user: &UserId, random: u128, picture: PictureType) -> Self {
        Self(format!("{}{}", Self::prefix(user), file_name(random, picture.extension())))
    }

    /// Where every picture of `user` lives (the ones uploaded and never set too).
    pub fn prefix(user: &UserId) -> String {
        format!("pictures/{user}/")
    }

    /// `raw` if it is a key of this shape for `user`.
    pub fn parse_for(raw: &str, user: &UserId) -> Result<Self, NotYourPicture> {
        let file = raw.strip_prefix(&Self::prefix(user)).ok_or(NotYourPicture)?;
        is_file_name(file, PICTURE_EXTENSIONS).then(|| Self(raw.to_owned())).ok_or(NotYourPicture)
    }

    /// A key read back from the store (it passed [`Self::parse_for`] when set).
    pub fn stored(raw: &str) -> Option<Self> {
        raw.starts_with("pictures/").then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_key_is_its_owners_and_of_one_shape() {
        let asha = UserId::parse("5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let ravi = UserId::parse("6a1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        let key = PictureKey::new(&asha, 0xabc, PictureType::Webp);
        assert_eq!(key.as_str(), format!("pictures/{asha}/{:032x}.webp", 0xabc));
        assert_eq!(PictureKey::parse_for(key.as_str(), &asha), Ok(key.clone()));
        assert_eq!(PictureKey::parse_for(key.as_str(), &ravi), Err(NotYourPicture), "another user's");
        let hex = "0".repeat(32);
        for bad in [
            format!("pictures/{asha}/{hex}.gif"),
            format!("pictures/{asha}/{}.png", "0".repeat(31)),
            format!("pictures/{asha}/{}.png", "A".repeat(32)),
            format!("pictures/{asha}/../{hex}.png"),
            format!("pictures/{asha}/x/{hex}.png"),
            format!("chat/{asha}/{hex}.png"),
            format!("pictures/{asha}/{hex}.png.png"),
        ] {
            assert_eq!(PictureKey::parse_for(&bad, &asha), Err(NotYourPicture), "{bad}");
        }
        assert_eq!(check_picture_size(MAX_PICTURE_BYTES), Ok(MAX_PICTURE_BYTES));
        assert!(check_picture_size(MAX_PICTURE_BYTES + 1).is_err() && check_picture_size(0).is_err());
    }
}
