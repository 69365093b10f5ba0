//! Reviews and the rating against moto through the local stack: only a consultation's
//! customer reviews it, only once it is completed, once however requests race; public
//! reviews list newest first by first name only; and the rating consumer counts each review
//! once however often it is delivered and however many consumers race, with verified
//! reviews weighing more, and the catalogue shows and sorts by the result.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::Utc;
use infra::{LocalStack, Options};
use integration_tests::*;
use serde_json::{Value, json};
use shared::UserId;
use shared::domain::events::{Envelope, ReviewSubmitted};
use shared::domain::review::{Rating, RatingTotals};
use shared::store::Store;
use shared::store::keys::rating_sort_key;

/// Long enough for a second delivery to show up: several stream and queue poll rounds.
const SETTLE: Duration = Duration::from_secs(4);

fn quiet(o: &mut Options) {
    o.poll_queues = false;
    o.poll_streams = false;
}

async fn review(stack: &LocalStack, token: &str, id: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as(&format!("/consultations/{id}/review"), token, &[], body).await
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

fn store(stack: &LocalStack) -> Store {
    Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name())
}

/// The astrologer's rating as the catalogue shows it: `(average, count)`.
async fn shown_rating(stack: &LocalStack, token: &str, astrologer: &str) -> (String, u64) {
    let (status, body) = Api::new(stack).get(&format!("/astrologers/{astrologer}"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    let rating = &body["astrologer"]["rating"];
    (rating["average"].as_str().unwrap().to_owned(), rating["count"].as_u64().unwrap())
}

fn envelope(
    booking: &str,
    customer: &UserId,
    astrologer: &UserId,
    stars: u8,
    verified: bool,
) -> Envelope<ReviewSubmitted> {
    let payload = ReviewSubmitted {
        booking_id: booking.to_owned(),
        customer_id: customer.clone(),
        astrologer_id: astrologer.clone(),
        rating: stars,
        verified,
        public: true,
    };
    Envelope::new(format!("review-submitted-{booking}"), Utc::now(), payload)
}

#[tokio::test]
async fn only_the_customer_reviews_a_completed_consultation_and_only_once() {
    let stack = stack_with(quiet).await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;

    // Booked for tomorrow, not completed: 409.
    let at = (Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z").to_string();
    let (status, booked) = Api::new(&stack)
        .post_as(
            "/consultations",
            &customer,
            &[("idempotency-key", "review-pending")],
            json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "scheduled_at": at }),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let (status, body) =
        review(&stack, &customer, booked["booking_id"].as_str().unwrap(), json!({ "rating": 5 })).await;
    assert_eq!((status, code(&body)), (409, Some("not_completed")), "{body}");

    let id = completed_consultation(&stack, &customer, (&astro, &astro_id)).await;
    // Someone else's, unknown or malformed: 404 alike; the astrologer is no customer: 403.
    let (other, _) = integration_tests::customer(&stack).await;
    for (token, path_id) in [(&other, id.as_str()), (&customer, "AT99999999"), (&customer, "not-a-booking")] {
        let (status, body) = review(&stack, token, path_id, json!({ "rating": 5 })).await;
        assert_eq!((status, code(&body)), (404, Some("not_found")), "{path_id}: {body}");
    }
    let (status, _) = review(&stack, &astro, &id, json!({ "rating": 5 })).await;
    assert_eq!(status, 403);
    // Bad input: 400 naming the field, and nothing written.
    for (body, field) in [
        (json!({ "rating": 0 }), "rating"),
        (json!({ "rating": 6 }), "rating"),
        (json!({ "rating": 4.5 }), "rating"),
        (json!({ "rating": "5" }), "rating"),
        (json!({ "rating": 5, "text": "x".repeat(1001) }), "text"),
        (json!({ "rating": 5, "text": "ring\u{7}" }), "text"),
        (json!({ "rating": 5, "public": "yes" }), "public"),
    ] {
        let (status, resp) = review(&stack, &customer, &id, body.clone()).await;
        assert_eq!((status, resp["error"]["field"].as_str()), (400, Some(field)), "{body}: {resp}");
    }
    for body in [json!({ "text": "Good" }), json!([5])] {
        let (status, resp) = review(&stack, &customer, &id, body).await;
        assert_eq!((status, code(&resp)), (400, Some("invalid_body")), "{resp}");
    }
    assert!(items_under(&stack, "REVIEW#").await.is_empty(), "refusals write nothing");

    stack.calls.clear();
    let (status, written) =
        review(&stack, &customer, &id, json!({ "rating": 4, "text": "  Calm and clear.\n", "public": true })).await;
    assert_eq!(status, 201, "{written}");
    assert_eq!(stack.calls.dynamodb(), ["BatchGetItem", "TransactWriteItems"], "two round trips");
    assert_eq!(written["review_id"], id.as_str());
    assert_eq!(written["rating"], 4);
    assert_eq!(written["text"], "Calm and clear.", "trimmed");
    assert_eq!(written["verified"], true, "a paid, completed consultation");
    assert_eq!(written["astrologer_id"], astro_id.as_str());

    // Once: the same or another rating again is refused, and the first stands.
    for rating in [4, 1] {
        let (status, body) = review(&stack, &customer, &id, json!({ "rating": rating })).await;
        assert_eq!((status, code(&body)), (409, Some("already_reviewed")), "{body}");
    }
    let stored = items_under(&stack, "REVIEW#").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["rating"].as_n().unwrap(), "4");
    assert_eq!(stored[0]["reviewer_first_name"].as_s().unwrap(), "Asha");
    assert_eq!(items_under(&stack, &format!("OUTBOX#review-submitted-{id}")).await.len(), 1, "one event");
}

#[tokio::test]
async fn two_racing_reviews_of_one_consultation_make_one() {
    let stack = stack_with(quiet).await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let id = completed_consultation(&stack, &customer, (&astro, &astro_id)).await;

    let requests = (1..=8u8).map(|i| {
        let (stack, customer, id) = (&stack, &customer, &id);
        async move { (i % 5 + 1, review(stack, customer, id, json!({ "rating": i % 5 + 1 })).await) }
    });
    let results = futures::future::join_all(requests).await;
    let won: Vec<u8> = results.iter().filter(|(_, (s, _))| *s == 201).map(|(r, _)| *r).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for (_, (status, body)) in &results {
        assert!(*status == 201 || (*status == 409 && code(body) == Some("already_reviewed")), "{status} {body}");
    }
    let stored = items_under(&stack, "REVIEW#").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["rating"].as_n().unwrap(), &won[0].to_string(), "the winner's review is the one kept");
    assert_eq!(items_under(&stack, "OUTBOX#review-submitted-").await.len(), 1, "one event");
}

#[tokio::test]
async fn public_reviews_list_newest_first_a_page_at_a_time_by_first_name_only() {
    let stack = stack_with(quiet).await;
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let mut ids = Vec::new();
    for (rating, public) in [(5, true), (1, false), (3, true)] {
        let id = completed_consultation(&stack, &customer, (&astro, &astro_id)).await;
        let (status, body) =
            review(&stack, &customer, &id, json!({ "rating": rating, "text": "Helpful", "public": public })).await;
        assert_eq!(status, 201, "{body}");
        ids.push(id);
    }

    let api = Api::new(&stack);
    let mut listed = Vec::new();
    let mut path = format!("/astrologers/{astro_id}/reviews?limit=1");
    for _ in 0..5 {
        stack.calls.clear();
        let (status, page) = api.get(&path, Some(&customer)).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(stack.calls.dynamodb(), ["Query"], "one round trip a page");
        let text = page.to_string();
        for private in ["Rao", customer_id.as_str(), "customer_id", "+91"] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        let reviews = page["reviews"].as_array().unwrap();
        assert!(reviews.len() <= 1);
        for r in reviews {
            assert_eq!(r["reviewer_first_name"], "Asha");
            assert_eq!((r["verified"].as_bool(), r["text"].as_str()), (Some(true), Some("Helpful")));
            listed.push((r["review_id"].as_str().unwrap().to_owned(), r["rating"].as_u64().unwrap()));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/astrologers/{astro_id}/reviews?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(listed, [(ids[2].clone(), 3), (ids[0].clone(), 5)], "public ones, newest first");

    // All on one page; someone with no reviews has an empty list.
    let (_, page) = api.get(&format!("/astrologers/{astro_id}/reviews"), Some(&customer)).await;
    assert_eq!((page["reviews"].as_array().unwrap().len(), &page["next_cursor"]), (2, &Value::Null));
    let nobody = uuid::Uuid::new_v4();
    let (status, page) = api.get(&format!("/astrologers/{nobody}/reviews"), Some(&customer)).await;
    assert_eq!((status, page["reviews"].as_array().map(Vec::len)), (200, Some(0)), "{page}");
    for (path, status, field) in [
        ("/astrologers/not-a-uuid/reviews", 404, None),
        (&*format!("/astrologers/{astro_id}/reviews?cursor=bm9wZQ"), 400, Some("cursor")),
        (&*format!("/astrologers/{astro_id}/reviews?limit=0"), 400, Some("limit")),
        (&*format!("/astrologers/{astro_id}/reviews?limit=51"), 400, Some("limit")),
    ] {
        let (got, body) = api.get(path, Some(&customer)).await;
        assert_eq!((got, body["error"]["field"].as_str()), (status, field), "{path}: {body}");
    }
}

#[tokio::test]
async fn a_review_moves_the_rating_once_and_the_catalogue_sorts_by_it() {
    let stack = stack().await;
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let (astro_a, a) = bookable_astrologer(&stack, "10").await;
    let (astro_b, b) = bookable_astrologer(&stack, "10").await;
    let on_a = completed_consultation(&stack, &customer, (&astro_a, &a)).await;
    let on_b = completed_consultation(&stack, &customer, (&astro_b, &b)).await;
    // B first with 3 stars, then A with 5: A must end up ahead of B by rating.
    assert_eq!(review(&stack, &customer, &on_b, json!({ "rating": 3 })).await.0, 201);
    assert_eq!(review(&stack, &customer, &on_a, json!({ "rating": 5, "public": false })).await.0, 201);

    eventually("both ratings counted", async || {
        shown_rating(&stack, &customer, &a).await.1 == 1 && shown_rating(&stack, &customer, &b).await.1 == 1
    })
    .await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(shown_rating(&stack, &customer, &a).await, ("5.00".to_owned(), 1), "counted once");
    assert_eq!(shown_rating(&stack, &customer, &b).await, ("3.00".to_owned(), 1));

    let (status, catalogue) = Api::new(&stack).get("/astrologers?sort=rating", Some(&customer)).await;
    assert_eq!(status, 200, "{catalogue}");
    let order: Vec<(&str, &str)> = catalogue["astrologers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["astrologer_id"].as_str().unwrap(), c["rating"]["average"].as_str().unwrap()))
        .collect();
    assert_eq!(order, [(a.as_str(), "5.00"), (b.as_str(), "3.00")]);

    // SNS and SQS deliver at least once: A's event again, through its queue and straight
    // through the consumer, changes nothing.
    let (customer_id, a_id) = (UserId::parse(&customer_id).unwrap(), UserId::parse(&a).unwrap());
    let again = serde_json::to_string(&envelope(&on_a, &customer_id, &a_id, 5, true)).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    sqs.send_message().queue_url(queue_url(&stack, "RatingQueue")).message_body(&again).send().await.unwrap();
    let response = sqs_consumer(&stack, "rating-aggregator")(sqs_event(&[("redelivery", again)])).await;
    assert!(response.batch_item_failures.is_empty(), "a redelivery is a success");
    eventually("the redelivery consumed", async || queue_depth(&stack, "RatingQueue").await == 0).await;
    tokio::time::sleep(SETTLE).await;
    assert_eq!(shown_rating(&stack, &customer, &a).await, ("5.00".to_owned(), 1), "still once");
    assert_eq!(items_under(&stack, "RATING_COUNTED#").await.len(), 2);
    assert_eq!(queue_depth(&stack, "RatingDeadLetterQueue").await, 0);
}

#[tokio::test]
async fn racing_consumers_count_every_review_once_with_verified_ones_weighing_more() {
    let stack = stack_with(quiet).await;
    let (token, astro) = bookable_astrologer(&stack, "10").await;
    let astro_id = UserId::parse(&astro).unwrap();
    let customer = UserId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let reviews = [
        (5, true),
        (4, false),
        (3, true),
        (5, false),
        (2, true),
        (4, true),
        (1, false),
        (5, true),
        (3, false),
        (4, true),
    ];
    let bodies: Vec<(String, String)> = reviews
        .iter()
        .enumerate()
        .map(|(i, (stars, verified))| {
            let booking = format!("AT1000000{i}");
            let body = serde_json::to_string(&envelope(&booking, &customer, &astro_id, *stars, *verified)).unwrap();
            (booking, body)
        })
        .collect();
    // Every review delivered twice, all twenty deliveries at once, each its own batch (as
    // concurrent Lambda invocations get them).
    let handler = sqs_consumer(&stack, "rating-aggregator");
    let mut pending: Vec<(String, String)> = bodies.iter().chain(bodies.iter()).cloned().collect();
    for _ in 0..5 {
        let runs = pending.iter().map(|(id, body)| {
            let handler = handler.clone();
            let (id, body) = (id.clone(), body.clone());
            async move { (handler(sqs_event(&[(&id, body.clone())])).await.batch_item_failures.is_empty(), id, body) }
        });
        // What failed comes again, as SQS redelivers it.
        pending =
            futures::future::join_all(runs).await.into_iter().filter(|(ok, ..)| !ok).map(|(_, i, b)| (i, b)).collect();
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "still failing after five deliveries: {pending:?}");

    let expected = reviews.iter().fold(RatingTotals::default(), |t, (s, v)| t.with(Rating::new(*s).unwrap(), *v));
    // (5+3+2+4+5+4)*2 + (4+5+1+3) = 46 + 13 = 59 over 6*2 + 4 = 16: 3.6875 -> 3.69
    assert_eq!(expected.average_hundredths(), 369);
    let state = store(&stack).rating_state(&astro_id).await.unwrap().unwrap();
    assert_eq!((state.totals, state.version), (expected, 10), "each review once");
    assert_eq!(shown_rating(&stack, &token, &astro).await, ("3.69".to_owned(), 10));
    let item = items_under(&stack, &format!("USER#{astro}")).await;
    let astrologer = item.iter().find(|i| i["SK"].as_s().unwrap() == "ASTROLOGER").unwrap();
    assert_eq!(astrologer["CAT_RATING"].as_s().unwrap(), &rating_sort_key(369, 10, &astro_id), "the catalogue's order");
    assert_eq!(items_under(&stack, "RATING_COUNTED#").await.len(), 10);

    // An astrologer without a profile is counted but stays out of the catalogue's index.
    let (_, unlisted) = approved_astrologer(&stack).await;
    let unlisted_id = UserId::parse(&unlisted).unwrap();
    let body = serde_json::to_string(&envelope("AT20000000", &customer, &unlisted_id, 4, true)).unwrap();
    for _ in 0..2 {
        stack.calls.clear();
        assert!(handler(sqs_event(&[("m", body.clone())])).await.batch_item_failures.is_empty());
        assert_eq!(stack.calls.dynamodb(), ["GetItem", "TransactWriteItems"], "two round trips an event");
    }
    let state = store(&stack).rating_state(&unlisted_id).await.unwrap().unwrap();
    assert_eq!((state.totals.count, state.sortable), (1, false));
    let (_, catalogue) = Api::new(&stack).get("/astrologers?sort=rating", Some(&token)).await;
    assert!(!catalogue.to_string().contains(&unlisted), "{catalogue}");
}

#[tokio::test]
async fn a_poison_message_fails_alone_and_ends_in_the_dead_letter_queue() {
    let stack = stack().await;
    let (token, astro) = bookable_astrologer(&stack, "10").await;
    let astro_id = UserId::parse(&astro).unwrap();
    let customer = UserId::parse(&uuid::Uuid::new_v4().to_string()).unwrap();
    let good = serde_json::to_string(&envelope("AT30000001", &customer, &astro_id, 4, true)).unwrap();
    let mut bad_payload: Value = serde_json::to_value(envelope("AT30000002", &customer, &astro_id, 4, true)).unwrap();
    // Values that must never reach a log line.
    bad_payload["payload"]["rating"] = json!("Priya 9876543210");
    let not_an_envelope = "Priya +919876543210 loved it".to_owned();
    let other_type = json!({ "id": "x-1", "type": "SomethingElse", "version": 1, "occurred_at": "2026-11-22T10:00:00Z", "payload": {} });
    let out_of_range = serde_json::to_string(&envelope("AT30000003", &customer, &astro_id, 9, true)).unwrap();

    let response = sqs_consumer(&stack, "rating-aggregator")(sqs_event(&[
        ("good", good),
        ("bad-payload", bad_payload.to_string()),
        ("not-an-envelope", not_an_envelope.clone()),
        ("other-type", other_type.to_string()),
        ("out-of-range", out_of_range),
    ]))
    .await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["bad-payload", "not-an-envelope", "out-of-range"], "only the poison ones");
    assert_eq!(shown_rating(&stack, &token, &astro).await, ("4.00".to_owned(), 1), "the good one counted");
    assert!(!captured_logs().contains("9876543210"), "no payload values in the logs");

    // Through the queue: SQS hands it back after each failure, and after the template's
    // maxReceiveCount (5) moves it to the dead-letter queue; nothing is counted twice.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let url = queue_url(&stack, "RatingQueue");
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap();
    // A receive already waiting took the old timeout with it: let it end first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sqs.send_message().queue_url(&url).message_body(bad_payload.to_string()).send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while queue_depth(&stack, "RatingDeadLetterQueue").await == 0 {
        assert!(Instant::now() < deadline, "the poison message did not reach the DLQ within 40 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(queue_depth(&stack, "RatingQueue").await, 0);
    assert_eq!(shown_rating(&stack, &token, &astro).await, ("4.00".to_owned(), 1));
    assert!(!captured_logs().contains("9876543210"));
}
