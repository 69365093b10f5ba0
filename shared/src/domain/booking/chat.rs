//! A live session's chat and the messages of the WebSocket API: what clients send
//! (`ClientMessage`, selected on `action` as API Gateway routes it) and what the server
//! pushes (`ServerMessage`, tagged by `type`); the keys of chat images. Pure types and checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::booking::{BookingId, Consultation, Party};
use crate::domain::image::{file_name, is_file_name};
use crate::domain::user::UserId;

/// The longest chat text, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// The longest client message id (the sender's own id, for de-duplicating retries).
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// The largest WebSocket message the session function reads (API Gateway allows 128 KiB;
/// the largest legitimate one, 2,000 characters of text, is under 8 KiB even as escapes).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// The largest chat image, in bytes (5 MiB).
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// A chat message as stored and delivered.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub message_id: String,
    pub booking_id: BookingId,
    /// `customer` or `astrologer`.
    pub from: Side,
    pub sender_id: UserId,
    /// Absent when the message is an image alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The image sent with it (uploaded through `POST /consultations/{id}/images`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_key: Option<ImageKey>,
    /// Where to fetch the image: a presigned GET valid 10 minutes, made for each read
    /// (never stored); read the messages again for a fresh one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The sender's own id for it: a resend with the same one is stored once.
    pub client_id: String,
    #[serde(serialize_with = "crate::domain::time::rfc3339")]
    pub sent_at: DateTime<Utc>,
}

crate::domain::status::string_enum!(
    /// Which side of a consultation someone is on.
    Side {
        Customer => "customer",
        Astrologer => "astrologer",
    }
);

impl Side {
    pub fn of(party: Party) -> Option<Self> {
        match party {
            Party::Customer => Some(Self::Customer),
            Party::Astrologer => Some(Self::Astrologer),
            _ => None,
        }
    }

    pub fn party(self) -> Party {
        match self {
            Self::Customer => Party::Customer,
            Self::Astrologer => Party::Astrologer,
        }
    }

    /// The other party's user id in `c`.
    pub fn other_in(self, c: &Consultation) -> &UserId {
        match self {
            Self::Customer => &c.astrologer_id,
            Self::Astrologer => &c.customer_id,
        }
    }
}

/// Why a chat message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("`text` must be 1 to 2000 characters, without control characters other than new lines")]
    Text,
    #[error("`client_id` must be 1 to 64 letters, digits, '-' or '_'")]
    ClientId,
    #[error("`image_key` is not one issued to you for an image in this consultation")]
    ImageKey,
    #[error("a message has `text`, an `image_key`, or both")]
    Empty,
}

/// What a chat image may be.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
}

impl ImageType {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }
}

/// Where a chat image lives in the images bucket: `chat/{booking_id}/{side}/{random}.{jpg|png}`.
/// The booking and the side in the key are what `send` checks: a key issued to one party of
/// one consultation is refused in any other's message.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^chat/AT[0-9]{8}/(customer|astrologer)/[0-9a-f]{32}\\.(jpg|png)$"))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ImageKey(String);

impl ImageKey {
    /// A new key for an image `side` uploads to `booking`'s chat; `random` is 128 random bits.
    pub fn new(booking: &BookingId, side: Side, random: u128, image: ImageType) -> Self {
        Self(format!("chat/{}/{}/{}", booking.as_str(), side.as_str(), file_name(random, image.extension())))
    }

    /// `raw` if it is a key of this shape for `booking` and `side`.
    pub fn parse_for(raw: &str, booking: &BookingId, side: Side) -> Result<Self, BadMessage> {
        let prefix = format!("chat/{}/{}/", booking.as_str(), side.as_str());
        let file = raw.strip_prefix(&prefix).ok_or(BadMessage::ImageKey)?;
        is_file_name(file, &["jpg", "png"]).then(|| Self(raw.to_owned())).ok_or(BadMessage::ImageKey)
    }

    /// A key read back from the store (it passed [`Self::parse_for`] when sent).
    pub fn stored(raw: &str) -> Option<Self> {
        raw.starts_with("chat/").then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an image upload asks for, if it may be uploaded: its type and its size (1 byte to 5 MiB).
pub fn check_image_size(size: u64) -> Result<u64, String> {
    (1..=MAX_IMAGE_BYTES).contains(&size).then_some(size).ok_or_else(|| format!("must be 1 to {MAX_IMAGE_BYTES} bytes"))
}

/// A message's content, if it may be sent by `side` in `booking`: the text (trimmed) and the
/// image key, at least one of them.
pub fn check_content(
    text: Option<&str>,
    image_key: Option<&str>,
    booking: &BookingId,
    side: Side,
) -> Result<(Option<String>, Option<ImageKey>), BadMessage> {
    let image_key = image_key.map(|k| ImageKey::parse_for(k, booking, side)).transpose()?;
    let text = match text {
        // Blank text beside an image is no text.
        Some(t) if image_key.is_some() && t.trim().is_empty() => None,
        Some(t) => Some(check_text(t)?),
        None => None,
    };
    if text.is_none() && image_key.is_none() {
        return Err(BadMessage::Empty);
    }
    Ok((text, image_key))
}

/// The text, trimmed, if it may be sent.
pub fn check_text(raw: &str) -> Result<String, BadMessage> {
    let text = raw.trim();
    // Length and characters as sent (what the contracts' `maxLength` and pattern check), not
    // as trimmed: a leading tab must not buy 2,000 more characters, nor a trailing `\r` pass.
    let ok = !text.is_empty()
        && raw.chars().count() <= MAX_TEXT_CHARS
        && raw.chars().all(|c| !c.is_control() || c == '\n' || c == '\t');
    ok.then(|| text.to_owned()).ok_or(BadMessage::Text)
}

pub fn check_client_id(id: &str) -> Result<(), BadMessage> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(()).ok_or(BadMessage::ClientId)
}

/// What a client sends on the WebSocket (its `action` is API Gateway's route key).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Join the session of a consultation in progress (again, after a reconnect).
    Join { booking_id: String },
    /// Still here (every 20 seconds or so; a party silent for 60 seconds has left).
    Heartbeat { booking_id: String },
    /// A chat message to the other party: text, an image uploaded through
    /// `POST /consultations/{id}/images` (its `image_key`), or both.
    Send {
        booking_id: String,
        client_id: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        image_key: Option<String>,
    },
    /// The sender is typing (delivered, not stored).
    Typing { booking_id: String },
    /// The sender has read up to `message_id` (delivered, not stored).
    Read { booking_id: String, message_id: String },
    /// End the session (either party): settled for the minutes measured.
    End { booking_id: String },
}

impl ClientMessage {
    pub fn booking_id(&self) -> &str {
        match self {
            Self::Join { booking_id }
            | Self::Heartbeat { booking_id }
            | Self::Send { booking_id, .. }
            | Self::Typing { booking_id }
            | Self::Read { booking_id, .. }
            | Self::End { booking_id } => booking_id,
        }
    }
}

/// What the server pushes to a party's connections.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// To an astrologer: a customer asks to connect now; accept or decline within a minute.
    Ring {
        consultation: Box<Consultation>,
    },
    /// The consultation changed (accepted, declined, expired, joined, started, ended): as it now is.
    Consultation {
        consultation: Box<Consultation>,
    },
    /// A chat message from the other party (or the sender's own, to their other devices).
    Message {
        message: ChatMessage,
    },
    /// The sender's message was stored (once, whatever the retries).
    Ack {
        client_id: String,
        message_id: String,
    },
    Typing {
        booking_id: String,
        from: Side,
    },
    Read {
        booking_id: String,
        from: Side,
        message_id: String,
    },
    /// The paid minutes run out in `seconds_left`: extend now to keep talking.
    Ending {
        booking_id: String,
        seconds_left: i64,
    },
    /// A message refused; the connection stays open.
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        booking_id: Option<String>,
    },
}

impl ServerMessage {
    pub fn consultation(c: &Consultation) -> Self {
        Self::Consultation { consultation: Box::new(c.clone()) }
    }

    pub fn error(code: &str, message: impl Into<String>, booking_id: Option<&str>) -> Self {
        Self::Error { code: code.into(), message: message.into(), booking_id: booking_id.map(str::to_owned) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_is_one_to_2000_characters_without_control_characters() {
        assert_eq!(check_text("  namaste \n"), Ok("namaste".into()));
        assert_eq!(check_text("line one\nline two"), Ok("line one\nline two".into()));
        assert_eq!(check_text(&"अ".repeat(2000)).map(|t| t.chars().count()), Ok(2000));
        for bad in ["", "   ", &"a".repeat(2001), "bell\u{7}", "nul\0"] {
            assert_eq!(check_text(bad), Err(BadMessage::Text), "{bad:?}");
        }
        assert_eq!(check_client_id("m-1_a"), Ok(()));
        for bad in ["", "a b", &"x".repeat(65), "é"] {
            assert_eq!(check_client_id(bad), Err(BadMessage::ClientId), "{bad:?}");
        }
    }

    #[test]
    fn client_messages_are_json_objects_with_a_known_action_and_nothing_else() {
        let send: ClientMessage =
            serde_json::from_str(r#"{"action":"send","booking_id":"AT00000001","client_id":"c1","text":"hi"}"#)
                .unwrap();
        assert_eq!(send.booking_id(), "AT00000001");
        for bad in [
            r#"["send","AT00000001"]"#,
            r#"{"action":"fly","booking_id":"AT00000001"}"#,
            r#"{"action":"join","booking_id":"AT00000001","role":"staff"}"#,
            r#"{"action":"send","booking_id":"AT00000001"}"#,
            r#"{"action":"send","booking_id":"AT00000001","client_id":"c1","image":"x"}"#,
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    fn booking(n: u32) -> BookingId {
        BookingId::from_number(n)
    }

    #[test]
    fn an_image_key_names_its_booking_and_side_and_nothing_else_passes() {
        let (mine, other) = (booking(1), booking(2));
        let key = ImageKey::new(&mine, Side::Customer, 0xabc, ImageType::Png);
        assert_eq!(key.as_str(), format!("chat/{}/customer/{:032x}.png", mine.as_str(), 0xabc));
        assert_eq!(ImageKey::parse_for(key.as_str(), &mine, Side::Customer), Ok(key.clone()));
        let jpeg = ImageKey::new(&mine, Side::Astrologer, u128::MAX, ImageType::Jpeg);
        assert_eq!(ImageKey::parse_for(jpeg.as_str(), &mine, Side::Astrologer), Ok(jpeg.clone()));
        // Another booking's key, the other side's, or not a key we issue.
        assert_eq!(ImageKey::parse_for(key.as_str(), &other, Side::Customer), Err(BadMessage::ImageKey));
        assert_eq!(ImageKey::parse_for(key.as_str(), &mine, Side::Astrologer), Err(BadMessage::ImageKey));
        let prefix = format!("chat/{}/customer/", mine.as_str());
        for bad in [
            format!("{prefix}{}.gif", "a".repeat(32)),
            format!("{prefix}{}.png", "a".repeat(31)),
            format!("{prefix}{}.png", "A".repeat(32)),
            format!("{prefix}{}.png.png", "a".repeat(32)),
            format!("{prefix}../{}.png", "a".repeat(29)),
            format!("{prefix}{}", "a".repeat(32)),
            format!("/{prefix}{}.png", "a".repeat(32)),
            String::new(),
        ] {
            assert_eq!(ImageKey::parse_for(&bad, &mine, Side::Customer), Err(BadMessage::ImageKey), "{bad}");
        }
    }

    #[test]
    fn a_message_is_text_an_image_or_both() {
        let b = booking(7);
        let key = ImageKey::new(&b, Side::Customer, 1, ImageType::Jpeg);
        let k = Some(key.as_str());
        assert_eq!(check_content(Some(" hi "), None, &b, Side::Customer), Ok((Some("hi".into()), None)));
        assert_eq!(check_content(None, k, &b, Side::Customer), Ok((None, Some(key.clone()))));
        assert_eq!(check_content(Some("  "), k, &b, Side::Customer), Ok((None, Some(key.clone()))));
        assert_eq!(check_content(Some("look"), k, &b, Side::Customer), Ok((Some("look".into()), Some(key.clone()))));
        assert_eq!(check_content(None, None, &b, Side::Customer), Err(BadMessage::Empty));
        assert_eq!(check_content(Some(" "), None, &b, Side::Customer), Err(BadMessage::Text));
        assert_eq!(check_content(Some("hi"), k, &b, Side::Astrologer), Err(BadMessage::ImageKey));
        assert_eq!(check_image_size(1), Ok(1));
        assert_eq!(check_image_size(MAX_IMAGE_BYTES), Ok(MAX_IMAGE_BYTES));
        assert!(check_image_size(0).is_err() && check_image_size(MAX_IMAGE_BYTES + 1).is_err());
    }
}
