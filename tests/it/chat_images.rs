//! Chat images (issue 29) against the local stack: an upload URL for a party of a running
//! session, the bytes PUT straight to the private bucket, the key sent over the WebSocket
//! API, and the other party fetching the image through a presigned GET, pushed and listed.
//!
//! moto checks no presigned signature (any `Signature=` passes) and no expiry; the local AWS
//! endpoint checks both as S3 does (`infra::aws_endpoint::presigned_s3_refusal`), so what S3
//! would refuse is refused here too: another content type or size than signed, another key,
//! a late upload.

use futures::SinkExt;
use infra::LocalStack;
use integration_tests::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A 1x1 PNG.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d,
    0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A consultation `customer` booked now with `astrologer`, who accepted it: a running session.
async fn running_session(stack: &LocalStack, customer: &str, astrologer: (&str, &str)) -> String {
    let api = Api::new(stack);
    let key = format!("book-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer.1, "mode": "chat", "minutes": 10 });
    let (status, booked) = api.post_as("/consultations", customer, &[("idempotency-key", &key)], body).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap().to_owned();
    let (status, accepted) = api.post_as(&format!("/consultations/{id}/accept"), astrologer.0, &[], json!({})).await;
    assert_eq!(status, 200, "{accepted}");
    id
}

async fn ask_upload(stack: &LocalStack, token: &str, id: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as(&format!("/consultations/{id}/images"), token, &[], body).await
}

/// PUTs `bytes` to `url` with `content_type`; S3's status and error code.
pub(crate) async fn put(url: &str, content_type: &str, bytes: &[u8]) -> (u16, String) {
    let resp =
        reqwest::Client::new().put(url).header("content-type", content_type).body(bytes.to_vec()).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let code = text.split("<Code>").nth(1).and_then(|c| c.split("</Code>").next()).unwrap_or_default();
    (status, code.to_owned())
}

/// The next frame of `type` on the socket, others skipped.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    for _ in 0..10 {
        let frame: Value = serde_json::from_str(&next_text(socket).await).unwrap();
        if frame["type"] == kind {
            return frame;
        }
    }
    panic!("no {kind} frame")
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::text(frame.to_string())).await.unwrap();
}

#[tokio::test]
async fn an_image_goes_up_presigned_and_reaches_the_other_party_through_a_presigned_get() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let api = Api::new(&stack);
    let png = json!({ "content_type": "image/png", "size": PNG.len() });

    // Ringing: no session yet.
    let key = format!("book-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10 });
    let (_, ringing) = api.post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    let id = ringing["booking_id"].as_str().unwrap().to_owned();
    let (status, early) = ask_upload(&stack, &customer, &id, png.clone()).await;
    assert_eq!((status, early["error"]["code"].as_str()), (409, Some("not_live")), "{early}");
    assert_eq!(api.post_as(&format!("/consultations/{id}/accept"), &astro, &[], json!({})).await.0, 200);

    let (status, upload) = ask_upload(&stack, &customer, &id, png.clone()).await;
    assert_eq!(status, 200, "{upload}");
    let image_key = upload["image_key"].as_str().unwrap().to_owned();
    assert!(image_key.starts_with(&format!("chat/{id}/customer/")) && image_key.ends_with(".png"), "{image_key}");
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"], json!({ "content-type": "image/png", "content-length": PNG.len().to_string() }));
    let url = upload["upload_url"].as_str().unwrap();
    assert!(url.contains(&image_key) && url.contains("X-Amz-Signature="), "{url}");

    // What the signature does not cover is refused, and nothing lands.
    assert_eq!(put(url, "image/jpeg", PNG).await, (403, "SignatureDoesNotMatch".into()), "another type");
    assert_eq!(
        put(url, "image/png", &[PNG, b"x"].concat()).await,
        (403, "SignatureDoesNotMatch".into()),
        "another size"
    );
    let other_key = format!("chat/{id}/customer/{}.png", "0".repeat(32));
    let elsewhere = url.replace(&image_key, &other_key);
    assert_eq!(put(&elsewhere, "image/png", PNG).await, (403, "SignatureDoesNotMatch".into()), "another key");
    assert_eq!(put(url, "image/png", PNG).await.0, 200, "as signed: it lands");
    // The bucket is private: the object without a signature is not readable.
    let bucket_url = url.split('?').next().unwrap();
    assert_eq!(reqwest::get(bucket_url).await.unwrap().status().as_u16(), 403);

    // Sent over the socket: acknowledged to the customer, pushed to the astrologer with a view URL.
    let mut customer_socket = open_socket(&stack, Some(&customer)).await.unwrap();
    let mut astro_socket = open_socket(&stack, Some(&astro)).await.unwrap();
    send(
        &mut customer_socket,
        json!({ "action": "send", "booking_id": id, "client_id": "img-1", "image_key": image_key }),
    )
    .await;
    let ack = next_of(&mut customer_socket, "ack").await;
    assert_eq!(ack["client_id"], "img-1", "{ack}");
    let pushed = next_of(&mut astro_socket, "message").await;
    let message = &pushed["message"];
    assert_eq!((message["image_key"].as_str(), message.get("text")), (Some(image_key.as_str()), None), "{pushed}");
    let fetched = reqwest::get(message["image_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(fetched.status().as_u16(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), PNG, "the pushed URL fetches the image");

    // Listed: a fresh view URL on each read, which fetches it too.
    let (status, page) = api.get(&format!("/consultations/{id}/messages"), Some(&astro)).await;
    assert_eq!(status, 200, "{page}");
    let listed = &page["messages"][0];
    assert_eq!(listed["image_key"].as_str(), Some(image_key.as_str()), "{page}");
    let fetched = reqwest::get(listed["image_url"].as_str().unwrap()).await.unwrap();
    assert_eq!(fetched.headers()["content-type"], "image/png");
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), PNG);
    // A view URL is a GET of that key only.
    let view = listed["image_url"].as_str().unwrap().replace(&image_key, &other_key);
    assert_eq!(reqwest::get(view).await.unwrap().status().as_u16(), 403);
}

#[tokio::test]
async fn only_the_parties_upload_and_only_their_own_keys_are_sent() {
    let stack = stack().await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let id = running_session(&stack, &customer, (&astro, &astro_id)).await;
    let png = json!({ "content_type": "image/png", "size": 100 });

    // Someone else: as if it did not exist.
    let (stranger, _) = integration_tests::customer(&stack).await;
    let (status, refused) = ask_upload(&stack, &stranger, &id, png.clone()).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (404, Some("not_found")), "{refused}");

    // What may be uploaded: JPEG or PNG, 1 byte to 5 MiB.
    for (body, field) in [
        (json!({ "content_type": "image/png", "size": 6 * 1024 * 1024 }), "size"),
        (json!({ "content_type": "image/png", "size": 0 }), "size"),
        (json!({ "content_type": "image/gif", "size": 100 }), "content_type"),
    ] {
        let (status, refused) = ask_upload(&stack, &customer, &id, body.clone()).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (400, Some(field)), "{body}: {refused}");
    }
    let (status, jpeg) =
        ask_upload(&stack, &astro, &id, json!({ "content_type": "image/jpeg", "size": 5 << 20 })).await;
    assert_eq!(status, 200, "{jpeg}");
    let astro_key = jpeg["image_key"].as_str().unwrap().to_owned();
    assert!(astro_key.starts_with(&format!("chat/{id}/astrologer/")) && astro_key.ends_with(".jpg"), "{astro_key}");

    // Another consultation of the same customer: its keys are refused in this one.
    let (astro2, astro2_id) = bookable_astrologer(&stack, "10").await;
    let other = running_session(&stack, &customer, (&astro2, &astro2_id)).await;
    let (_, other_upload) = ask_upload(&stack, &customer, &other, png.clone()).await;
    let other_key = other_upload["image_key"].as_str().unwrap();

    let mut socket = open_socket(&stack, Some(&customer)).await.unwrap();
    for key in [other_key, astro_key.as_str(), "chat/../secret.png"] {
        send(&mut socket, json!({ "action": "send", "booking_id": id, "client_id": "c-1", "image_key": key })).await;
        let answer: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some("invalid_field")),
            "{key}: {answer}"
        );
    }
    send(&mut socket, json!({ "action": "send", "booking_id": id, "client_id": "c-1" })).await;
    let answer: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(answer["code"], "invalid_field", "neither text nor image: {answer}");
    let (_, page) = Api::new(&stack).get(&format!("/consultations/{id}/messages"), Some(&customer)).await;
    assert_eq!(page["messages"], json!([]), "nothing refused was stored");
}

/// The expiry: a URL the book function's own presigner signed 6 minutes ago (its lifetime is 5).
#[tokio::test]
async fn an_upload_url_past_its_five_minutes_is_refused() {
    use shared::domain::booking::BookingId;
    use shared::domain::booking::chat::{ImageKey, ImageType, Side};
    let stack = stack().await;
    let images = shared::app::images::Images::from_env(&stack.sdk, &stack.envs["book"]).unwrap();
    let key = ImageKey::new(&BookingId::from_number(1), Side::Customer, rand::random(), ImageType::Png);
    let now = chrono::Utc::now();
    let late = images
        .upload_url(key.as_str(), ImageType::Png.content_type(), PNG.len() as u64, now - chrono::Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(put(&late.url, "image/png", PNG).await, (403, "AccessDenied".into()));
    let in_time = images
        .upload_url(key.as_str(), ImageType::Png.content_type(), PNG.len() as u64, now - chrono::Duration::minutes(4))
        .await
        .unwrap();
    assert_eq!(put(&in_time.url, "image/png", PNG).await.0, 200);
}

/// Account deletion takes the chat images the deleted customer sent out of the bucket; the
/// astrologer's own stay theirs.
#[tokio::test]
async fn the_chat_images_a_deleted_customer_sent_leave_the_bucket() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astro, astro_id) = bookable_astrologer(&stack, "10").await;
    let id = running_session(&stack, &customer, (&astro, &astro_id)).await;
    let png = json!({ "content_type": "image/png", "size": PNG.len() });
    for (n, token) in [&customer, &astro].into_iter().enumerate() {
        let (status, upload) = ask_upload(&stack, token, &id, png.clone()).await;
        assert_eq!(status, 200, "{upload}");
        assert_eq!(put(upload["upload_url"].as_str().unwrap(), "image/png", PNG).await.0, 200);
        let mut socket = open_socket(&stack, Some(token)).await.unwrap();
        let client_id = format!("img-{n}");
        send(
            &mut socket,
            json!({ "action": "send", "booking_id": id, "client_id": client_id, "image_key": upload["image_key"] }),
        )
        .await;
        assert_eq!(next_of(&mut socket, "ack").await["client_id"], client_id.as_str());
    }
    let (_, page) = api.get(&format!("/consultations/{id}/messages"), Some(&astro)).await;
    let url_from = |side: &str| {
        let message = page["messages"].as_array().unwrap().iter().find(|m| m["from"] == side).unwrap();
        message["image_url"].as_str().unwrap().to_owned()
    };
    let (theirs, astrologers) = (url_from("customer"), url_from("astrologer"));
    let (status, _) = api.post_as(&format!("/consultations/{id}/complete"), &customer, &[], json!({})).await;
    assert_eq!(status, 200);

    let (status, record) = api.send(reqwest::Method::DELETE, "/me", Some(&customer), &[], None).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(reqwest::get(&theirs).await.unwrap().status().as_u16(), 404, "the customer's image is deleted");
    let kept = reqwest::get(&astrologers).await.unwrap();
    assert_eq!((kept.status().as_u16(), kept.bytes().await.unwrap().as_ref()), (200, PNG), "the astrologer's stays");
}
