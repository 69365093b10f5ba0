//! An astrologer's saved replies (seed 003 `guide.saved_messages`): a few texts they send
//! often ("Please share your date, time and place of birth."), kept for their chat screen.

use serde::Serialize;

use crate::domain::booking::chat::{BadMessage, check_text};

/// At most this many, each a chat text (1 to 2,000 characters).
pub const MAX_SAVED_REPLIES: usize = 20;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SavedReplies {
    pub replies: Vec<String>,
}

/// Why a list of saved replies is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadReplies {
    #[error("at most 20 saved replies")]
    TooMany,
    #[error("reply {0}: {1}")]
    Reply(usize, BadMessage),
}

impl SavedReplies {
    /// The replies as they will be kept: each trimmed and checked as a chat text, duplicates dropped.
    pub fn parse(raw: &[String]) -> Result<Self, BadReplies> {
        if raw.len() > MAX_SAVED_REPLIES {
            return Err(BadReplies::TooMany);
        }
        let mut replies: Vec<String> = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let text = check_text(r).map_err(|e| BadReplies::Reply(i, e))?;
            if !replies.contains(&text) {
                replies.push(text);
            }
        }
        Ok(Self { replies })
    }
}

/// What `booking::chat::check_text` accepts: something that is not white space, and no
/// control characters but tabs and new lines (2,000 characters at most, counted as sent).
pub const CHAT_TEXT_PATTERN: &str =
    "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$";

/// A saved replies request: up to 20 chat texts.
#[cfg(feature = "openapi")]
pub fn input_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    crate::domain::schema::json_schema(serde_json::json!({
        "type": "array",
        "maxItems": MAX_SAVED_REPLIES,
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": crate::domain::booking::chat::MAX_TEXT_CHARS,
            "pattern": CHAT_TEXT_PATTERN,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_replies_are_up_to_20_chat_texts_trimmed_once_each() {
        let got =
            SavedReplies::parse(&[" Namaste ".into(), "Namaste".into(), "Share your birth time.".into()]).unwrap();
        assert_eq!(got.replies, ["Namaste", "Share your birth time."]);
        assert_eq!(SavedReplies::parse(&vec!["x".to_owned(); 21]), Err(BadReplies::TooMany));
        assert_eq!(SavedReplies::parse(&["ok".into(), "  ".into()]), Err(BadReplies::Reply(1, BadMessage::Text)));
        assert_eq!(SavedReplies::parse(&[]).unwrap().replies, Vec::<String>::new());
    }
}
