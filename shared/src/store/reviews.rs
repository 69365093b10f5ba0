//! Reviews and the astrologer's rating aggregate: the store side of [`crate::domain::review`].
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | review | `REVIEW#{booking id}` | `REVIEW` | one per consultation; public ones carry GSI1 `ASTROREVIEWS#{astrologer}` / `{created_at}#{booking id}` |
//! | rating counted | `RATING_COUNTED#{booking id}` | `RATING_COUNTED` | the review is in the astrologer's aggregate (the consumer's de-duplication) |
//!
//! The aggregate lives on the astrologer item: `rating_weighted_stars`, `rating_weight`,
//! `rating_count`, `rating_hundredths` (what the catalogue shows), `rating_version`, and the
//! catalogue's sort key `CAT_RATING`.
//!
//! | route or trigger | calls |
//! |---|---|
//! | `POST /consultations/{id}/review` | 1 BatchGetItem (consultation + the customer's profile), 1 TransactWriteItems: `review` (`attribute_not_exists`), `consultation` (condition check: completed, the caller's), `outbox` (`ReviewSubmitted`) |
//! | `GET /astrologers/{id}/reviews` | 1 Query on GSI1 `ASTROREVIEWS#{id}`, newest first |
//! | rating consumer, per event | 1 GetItem (astrologer), 1 TransactWriteItems: `counted` (`attribute_not_exists`) + `astrologer` (conditioned on `rating_version`); a lost race reads and writes again |

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::consultations::read_consultation;
use super::items::{self, Item, get_str, get_time, get_u64, opt_str};
use super::keys::{
    ASTROLOGER_SK, CONSULTATION_SK, GSI1, PROFILE_SK, RATING_COUNTED_SK, REVIEW_SK, astrologer_reviews_gsi1pk,
    consultation_pk, rating_counted_pk, rating_sort_key, review_pk, user_pk,
};
use super::{Store, StoreError, TxError};
use crate::domain::booking::{BookingId, Consultation, ConsultationStatus};
use crate::domain::review::{Rating, RatingTotals, Review, ReviewText};
use crate::domain::user::UserId;

const CAT_RATING: &str = super::keys::CATALOGUE_BY_RATING.1;

fn review_item(r: &Review) -> Item {
    let id = r.booking_id.as_str();
    let mut item = items::key(review_pk(id), REVIEW_SK);
    item.insert("entity".into(), items::s("review"));
    item.insert("booking_id".into(), items::s(id));
    item.insert("astrologer_id".into(), items::s(r.astrologer_id.as_str()));
    item.insert("customer_id".into(), items::s(r.customer_id.as_str()));
    item.insert("reviewer_first_name".into(), items::s(&r.reviewer_first_name));
    item.insert("rating".into(), items::n(r.rating.stars()));
    if let Some(text) = &r.text {
        item.insert("text".into(), items::s(text.as_str()));
    }
    item.insert("public".into(), AttributeValue::Bool(r.public));
    item.insert("verified".into(), AttributeValue::Bool(r.verified));
    item.insert("created_at".into(), items::time(r.created_at));
    // Sparse: only public reviews are in the astrologer's list.
    if r.public {
        item.insert("GSI1PK".into(), items::s(astrologer_reviews_gsi1pk(&r.astrologer_id)));
        item.insert("GSI1SK".into(), items::s(format!("{}#{id}", items::time_text(r.created_at))));
    }
    item
}

fn read_review(item: &Item) -> Result<Review, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("review: {what}"));
    let flag = |name: &str| item.get(name).and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    Ok(Review {
        booking_id: BookingId::parse(get_str(item, "booking_id")?).ok_or_else(|| corrupt("booking_id"))?,
        astrologer_id: UserId::parse(get_str(item, "astrologer_id")?).map_err(|_| corrupt("astrologer_id"))?,
        customer_id: UserId::parse(get_str(item, "customer_id")?).map_err(|_| corrupt("customer_id"))?,
        reviewer_first_name: get_str(item, "reviewer_first_name")?.to_owned(),
        rating: u8::try_from(get_u64(item, "rating")?).ok().and_then(Rating::new).ok_or_else(|| corrupt("rating"))?,
        text: opt_str(item, "text").map(ReviewText::parse).transpose().map_err(|_| corrupt("text"))?.flatten(),
        public: flag("public"),
        verified: flag("verified"),
        created_at: get_time(item, "created_at")?,
    })
}

/// How writing a review ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewWrite {
    Written,
    /// The consultation already has its review.
    AlreadyReviewed,
    /// The consultation is no longer completed and the caller's (it was when read).
    NotReviewable,
    /// Another transaction held the same items; nothing was written: try again.
    Conflict,
}

/// The astrologer's aggregate as read, for the conditional write that adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatingState {
    pub totals: RatingTotals,
    pub version: u64,
    /// The item has the catalogue's rating sort key (its profile was saved), so the key
    /// moves with the rating; without it the item must stay out of the sparse index.
    pub sortable: bool,
}

/// How adding a review to the aggregate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingWrite {
    Counted,
    /// This review was counted before (a redelivery): nothing changed.
    AlreadyCounted,
    /// The aggregate moved since it was read: read again.
    Moved,
}

impl Store {
    /// The consultation and the first name of `customer` (one BatchGetItem).
    pub async fn review_context(
        &self,
        booking: &BookingId,
        customer: &UserId,
    ) -> Result<(Option<Consultation>, Option<String>), StoreError> {
        let found = self
            .batch_get(vec![
                items::key(consultation_pk(booking.as_str()), CONSULTATION_SK),
                items::key(user_pk(customer), PROFILE_SK),
            ])
            .await?;
        let consultation = found.get(&consultation_pk(booking.as_str())).map(read_consultation).transpose()?;
        let first_name = found.get(&user_pk(customer)).and_then(|i| opt_str(i, "first_name")).map(str::to_owned);
        Ok((consultation, first_name))
    }

    /// Writes `review` with its event, if the consultation has no review yet and is still
    /// completed and the customer's (one TransactWriteItems).
    pub async fn submit_review(&self, review: &Review) -> Result<ReviewWrite, StoreError> {
        let id = review.booking_id.as_str();
        let mut tx = self.tx();
        tx.put_new("review", review_item(review));
        tx.check(
            "consultation",
            items::key(consultation_pk(id), CONSULTATION_SK),
            "#status = :completed AND customer_id = :customer",
            vec![
                (":completed", items::s(ConsultationStatus::Completed.as_str())),
                (":customer", items::s(review.customer_id.as_str())),
            ],
        );
        tx.outbox(&review.submitted_event());
        match self.commit(tx).await {
            Ok(()) => Ok(ReviewWrite::Written),
            // The review's own key decides a race: the loser finds it (or its event) there.
            Err(TxError::Cancelled(c)) if c.failed("review") || c.failed("outbox") => Ok(ReviewWrite::AlreadyReviewed),
            Err(TxError::Cancelled(c)) if c.failed("consultation") => Ok(ReviewWrite::NotReviewable),
            Err(TxError::Cancelled(_)) => Ok(ReviewWrite::Conflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    /// A page of `astrologer`'s public reviews, newest first (one Query on GSI1). `after`:
    /// the `GSI1SK` the previous page ended at.
    pub async fn public_reviews(
        &self,
        astrologer: &UserId,
        limit: i32,
        after: Option<&str>,
    ) -> Result<(Vec<Review>, Option<String>), StoreError> {
        let pk = astrologer_reviews_gsi1pk(astrologer);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", items::s(&pk))
            .scan_index_forward(false)
            .limit(limit);
        if let Some(sk) = after {
            // The booking id ends the index's sort key and names the review's table key.
            let booking = sk.rsplit('#').next().unwrap_or_default();
            request = request.set_exclusive_start_key(Some(Item::from([
                ("PK".to_owned(), items::s(review_pk(booking))),
                ("SK".to_owned(), items::s(REVIEW_SK)),
                ("GSI1PK".to_owned(), items::s(&pk)),
                ("GSI1SK".to_owned(), items::s(sk)),
            ])));
        }
        let output = request.send().await.map_err(StoreError::from_sdk)?;
        let reviews = output.items().iter().map(read_review).collect::<Result<Vec<_>, _>>()?;
        let next = output.last_evaluated_key().and_then(|k| k.get("GSI1SK")).and_then(|v| v.as_s().ok()).cloned();
        Ok((reviews, next))
    }

    /// The astrologer's rating aggregate (one consistent GetItem); `None`: no such astrologer.
    pub async fn rating_state(&self, astrologer: &UserId) -> Result<Option<RatingState>, StoreError> {
        let Some(item) = self.get(items::key(user_pk(astrologer), ASTROLOGER_SK)).await? else {
            return Ok(None);
        };
        let number = |name: &str| get_u64(&item, name).unwrap_or(0);
        Ok(Some(RatingState {
            totals: RatingTotals {
                weighted_stars: number("rating_weighted_stars"),
                weight: number("rating_weight"),
                count: number("rating_count"),
            },
            version: number("rating_version"),
            sortable: item.contains_key(CAT_RATING),
        }))
    }

    /// Puts `totals` (the state read plus review `booking_id`) on the astrologer, once per
    /// review: the record that it was counted and the aggregate, conditioned on the version
    /// read, in one TransactWriteItems.
    pub async fn count_rating(
        &self,
        astrologer: &UserId,
        booking_id: &str,
        event_id: &str,
        read: &RatingState,
        totals: RatingTotals,
        now: DateTime<Utc>,
    ) -> Result<RatingWrite, StoreError> {
        let mut tx = self.tx();
        let mut counted = items::key(rating_counted_pk(booking_id), RATING_COUNTED_SK);
        counted.insert("entity".into(), items::s("rating_counted"));
        counted.insert("astrologer_id".into(), items::s(astrologer.as_str()));
        counted.insert("event_id".into(), items::s(event_id));
        counted.insert("counted_at".into(), items::time(now));
        tx.put_new("counted", counted);

        let summary = totals.summary();
        let mut set = String::from(
            "SET rating_weighted_stars = :stars, rating_weight = :weight, rating_count = :count, \
             rating_hundredths = :average, rating_version = :next",
        );
        let mut values = vec![
            (":stars", items::n(totals.weighted_stars)),
            (":weight", items::n(totals.weight)),
            (":count", items::n(totals.count)),
            (":average", items::n(summary.average_hundredths)),
            (":next", items::n(read.version + 1)),
        ];
        let mut condition = String::from("attribute_exists(PK)");
        condition.push_str(if read.version == 0 {
            " AND attribute_not_exists(rating_version)"
        } else {
            " AND rating_version = :version"
        });
        if read.version > 0 {
            values.push((":version", items::n(read.version)));
        }
        // The sort key moves with the rating, in its own format, only where it already is:
        // setting it on an astrologer without a profile would list them by rating.
        if read.sortable {
            set.push_str(&format!(", {CAT_RATING} = :sort_key"));
            values
                .push((":sort_key", items::s(rating_sort_key(summary.average_hundredths, summary.count, astrologer))));
            condition.push_str(&format!(" AND attribute_exists({CAT_RATING})"));
        } else {
            condition.push_str(&format!(" AND attribute_not_exists({CAT_RATING})"));
        }
        tx.update("astrologer", items::key(user_pk(astrologer), ASTROLOGER_SK), &set, &condition, values);
        match self.commit(tx).await {
            Ok(()) => Ok(RatingWrite::Counted),
            Err(TxError::Cancelled(c)) if c.failed("counted") => Ok(RatingWrite::AlreadyCounted),
            Err(TxError::Cancelled(_)) => Ok(RatingWrite::Moved),
            Err(TxError::Store(e)) => Err(e),
        }
    }
}
