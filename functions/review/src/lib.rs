//! Reviews. A customer reviews a consultation of theirs once it is completed: 1 to 5 stars,
//! optional text, public or not (`POST /consultations/{id}/review`), written with its
//! `ReviewSubmitted` event in one transaction that also holds the consultation to being
//! completed and theirs, and refuses a second review however requests race. Anyone signed in
//! reads an astrologer's public reviews, newest first, the reviewer shown by first name
//! only (`GET /astrologers/{id}/reviews`). The rating aggregate is the `rating-aggregator`
//! consumer's. Rules: `shared::domain::review`; writes: `shared::store::reviews`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::domain::booking::BookingId;
use shared::domain::review::{self, NotReviewable, Rating, Review, ReviewText};
use shared::http::{self, Access, Caller, Request, Response, Route, json};
use shared::store::retry::{self, Attempt, Retry};
use shared::store::reviews::ReviewWrite;
use shared::{ApiError, UserId, UserType};

/// Writes again this many times when DynamoDB reports another transaction on the same items.
const WRITE_ATTEMPTS: Retry = Retry::attempts(3);
pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 50;
/// A cursor is `{created_at}#{booking id}`, far shorter than this.
const MAX_CURSOR_CHARS: usize = 64;
const NOT_COMPLETED: &str = "not_completed";
const ALREADY_REVIEWED: &str = "already_reviewed";

pub use shared::app::StoreApp as App;

pub async fn handle(app: &App, req: Request) -> Response {
    http::respond(route(app, &req).await)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Submit,
    List,
}

/// Every route of this function in `template.yaml`.
pub const ROUTES: &[Route<Op>] = &[
    Route { key: "POST /consultations/{id}/review", access: Access::Role(UserType::User), handler: Op::Submit },
    // Signed in, like the catalogue the reviews belong to.
    Route { key: "GET /astrologers/{id}/reviews", access: Access::SignedIn, handler: Op::List },
];

/// This function's part of the API contract (see `shared::http::openapi`).
#[cfg(feature = "openapi")]
pub fn openapi() -> shared::http::openapi::FunctionDoc {
    use serde_json::json;
    use shared::http::openapi::{
        FunctionDoc, Operation, Request, STORE_UNAVAILABLE, body, error, query, schema, success,
    };
    FunctionDoc::new("review", "Reviews", ROUTES, &[STORE_UNAVAILABLE], |op| match op {
        Op::Submit => Operation {
            summary: "Review one of the caller's completed consultations",
            description: "Once per consultation: a second review, even sent at the same moment, gets `409 \
                          already_reviewed`. `text` is trimmed (1,000 characters at most); `public` (default \
                          `true`) shows the review on the astrologer's reviews, and every review counts in the \
                          astrologer's rating shortly after. A review of a paid consultation is `verified` and \
                          weighs twice as much in the rating.",
            request: Request::Json(body(schema::<ReviewBody>)),
            responses: vec![success(201, "The review", schema::<SubmittedReview>)],
            errors: vec![
                error(404, "not_found", "no such consultation of the caller's"),
                error(409, NOT_COMPLETED, "the consultation is not completed (yet)"),
                error(409, ALREADY_REVIEWED, "the consultation has its review already"),
                error(503, "busy", "the consultation was being written at the same time; retry"),
            ],
            ..Operation::default()
        },
        Op::List => Operation {
            summary: "An astrologer's public reviews, newest first, a page at a time",
            description: "Reviewers are shown by first name only. An id that is no astrologer's has no reviews \
                          (an empty list). Pass the previous page's `next_cursor` as `cursor` for the next; it is \
                          `null` on the last.",
            params: vec![
                query(
                    "limit",
                    "reviews per page (default 20)",
                    json!({ "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }),
                ),
                query(
                    "cursor",
                    "`next_cursor` of the previous page, as returned (opaque)",
                    json!({ "type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$" }),
                ),
            ],
            responses: vec![success(200, "One page", schema::<ReviewPage>)],
            errors: vec![
                error(404, "not_found", "the id is not an astrologer id"),
                error(400, "invalid_field", "`limit` is not 1 to 50, or `cursor` is not one we returned"),
            ],
            ..Operation::default()
        },
    })
}

async fn route(app: &App, req: &Request) -> Result<Response, ApiError> {
    let (op, caller) = http::dispatch(ROUTES, req)?;
    let caller = http::signed_in(caller)?;
    match op {
        Op::Submit => submit(app, req, &caller).await,
        Op::List => list(app, req).await,
    }
}

// ---------------------------------------------------------------- writing a review

fn public_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    rating: Rating,
    /// Trimmed; at most 1,000 characters, no control characters but line breaks.
    #[serde(default)]
    // The pattern: what `ReviewText::parse` accepts, no control characters but line breaks.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 1000, pattern = "^[^\\x00-\\x09\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$")
    )]
    text: Option<String>,
    /// Shown on the astrologer's public reviews (default `true`).
    #[serde(default = "public_by_default")]
    public: bool,
}

/// The caller's review, as written.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct SubmittedReview {
    /// The booking id: one review per consultation.
    review_id: String,
    astrologer_id: UserId,
    rating: Rating,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    public: bool,
    /// Of a paid, completed consultation: weighs more in the rating.
    verified: bool,
    #[serde(serialize_with = "shared::domain::time::rfc3339")]
    created_at: DateTime<Utc>,
}

async fn submit(app: &App, req: &Request, caller: &Caller) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("consultation");
    let booking = BookingId::parse(http::path_param(req, "id")?).ok_or_else(not_found)?;
    let body: ReviewBody = http::json_body(req)?;
    let text = body
        .text
        .as_deref()
        .map(ReviewText::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("text", e))?
        .flatten();

    let (consultation, first_name) = app.store.review_context(&booking, &caller.user_id).await?;
    let consultation = consultation.filter(|c| c.customer_id == caller.user_id).ok_or_else(not_found)?;
    let verified = review::reviewable(&consultation).map_err(|e| match e {
        NotReviewable::NotCompleted => ApiError::conflict(NOT_COMPLETED, e.to_string()),
    })?;
    // A customer whose account setup never finished has no profile (and no consultation).
    let reviewer_first_name = first_name.ok_or_else(|| ApiError::not_found("user"))?;
    let review = Review {
        booking_id: booking,
        astrologer_id: consultation.astrologer_id,
        customer_id: caller.user_id.clone(),
        reviewer_first_name,
        rating: body.rating,
        text,
        public: body.public,
        verified,
        // To the millisecond, as stored, so this answer and later reads agree.
        created_at: DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now),
    };
    let busy = |_| ApiError::unavailable("busy", "the consultation is busy; try again");
    retry::on_conflict(WRITE_ATTEMPTS, busy, || async {
        match app.store.submit_review(&review).await? {
            ReviewWrite::Written => Ok(Attempt::Done(())),
            ReviewWrite::AlreadyReviewed => {
                Err(ApiError::conflict(ALREADY_REVIEWED, "this consultation has its review already"))
            }
            ReviewWrite::NotReviewable => {
                Err(ApiError::conflict(NOT_COMPLETED, "only a completed consultation can be reviewed"))
            }
            // Another transaction held the consultation or the review: the next attempt
            // commits or meets the review that won.
            ReviewWrite::Conflict => Ok(Attempt::Conflict),
        }
    })
    .await?;
    tracing::info!(booking_id = %review.booking_id, rating = review.rating.stars(), "review written");
    Ok(json(
        201,
        &SubmittedReview {
            review_id: review.booking_id.to_string(),
            astrologer_id: review.astrologer_id,
            rating: review.rating,
            text: review.text.map(|t| t.as_str().to_owned()),
            public: review.public,
            verified: review.verified,
            created_at: review.created_at,
        },
    ))
}

// ---------------------------------------------------------------- reading reviews

/// A public review as anyone sees it: the reviewer's first name, nothing else of theirs.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct PublicReview {
    review_id: String,
    rating: Rating,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    reviewer_first_name: String,
    verified: bool,
    #[serde(serialize_with = "shared::domain::time::rfc3339")]
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct ReviewPage {
    reviews: Vec<PublicReview>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// The index key a page ended at, from a cursor we handed out: `{created_at}#{booking id}`.
fn read_cursor(raw: &str) -> Result<String, ApiError> {
    let refused = || ApiError::invalid_field("cursor", "is not a cursor this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| refused())?;
    let key = String::from_utf8(bytes).map_err(|_| refused())?;
    let (at, booking) = key.split_once('#').ok_or_else(refused)?;
    let well_formed = key.len() <= MAX_CURSOR_CHARS
        && DateTime::parse_from_rfc3339(at).is_ok()
        && at.ends_with('Z')
        && BookingId::parse(booking).is_some();
    well_formed.then_some(key).ok_or_else(refused)
}

fn page_size(req: &Request) -> Result<i32, ApiError> {
    let Some(raw) = http::query_param(req, "limit") else { return Ok(DEFAULT_LIMIT) };
    raw.parse::<i32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))
}

async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let astrologer = UserId::parse(http::path_param(req, "id")?).map_err(|_| ApiError::not_found("astrologer"))?;
    let limit = page_size(req)?;
    let after = http::query_param(req, "cursor").map(read_cursor).transpose()?;
    let (reviews, next) = app.store.public_reviews(&astrologer, limit, after.as_deref()).await?;
    let reviews = reviews
        .into_iter()
        .map(|r| PublicReview {
            review_id: r.booking_id.to_string(),
            rating: r.rating,
            text: r.text.map(|t| t.as_str().to_owned()),
            reviewer_first_name: r.reviewer_first_name,
            verified: r.verified,
            created_at: r.created_at,
        })
        .collect();
    Ok(json(200, &ReviewPage { reviews, next_cursor: next.map(|n| URL_SAFE_NO_PAD.encode(n)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cursors_of_our_shape_pass() {
        let ours = URL_SAFE_NO_PAD.encode("2026-11-22T10:00:00.000Z#AT00000042");
        assert_eq!(read_cursor(&ours).unwrap(), "2026-11-22T10:00:00.000Z#AT00000042");
        for bad in [
            "not base64!".to_owned(),
            URL_SAFE_NO_PAD.encode("2026-11-22T10:00:00.000Z"),
            URL_SAFE_NO_PAD.encode("yesterday#AT00000042"),
            URL_SAFE_NO_PAD.encode("2026-11-22T10:00:00.000Z#REVIEW#AT00000042"),
            URL_SAFE_NO_PAD.encode(format!("2026-11-22T10:00:00.000Z#AT{}", "1".repeat(100))),
        ] {
            let err = read_cursor(&bad).unwrap_err();
            assert_eq!((err.status, err.field.as_deref()), (400, Some("cursor")), "{bad}");
        }
    }
}
