//! Profile pictures (issue 31) against the local stack: a presigned upload S3 accepts only
//! with the type and size asked for, set by its key, shown on `GET /me` through a presigned
//! GET; another user's key refused; a replaced or removed picture deleted from the bucket; an
//! astrologer's picture on their catalogue card and public profile; every picture of theirs
//! gone from the bucket once they delete their account.
//!
//! The local AWS endpoint checks presigned signatures and expiries as S3 does (see
//! `chat_images`), so what S3 would refuse is refused here too.

use chrono::Utc;
use infra::LocalStack;
use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};
use shared::app::images::Images;
use shared::domain::image::PictureKey;
use shared::domain::user::UserId;

use crate::chat_images::{PNG, put};

async fn ask_upload(stack: &LocalStack, token: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as("/me/picture", token, &[], body).await
}

async fn set(stack: &LocalStack, token: &str, key: &str) -> (u16, Value) {
    let body = json!({ "image_key": key }).to_string();
    Api::new(stack).send(Method::PUT, "/me/picture", Some(token), &[], Some(&body)).await
}

/// Uploads `PNG` as `content_type` and sets it: the key.
async fn upload_and_set(stack: &LocalStack, token: &str, content_type: &str) -> String {
    let (status, upload) =
        ask_upload(stack, token, json!({ "content_type": content_type, "content_length": PNG.len() })).await;
    assert_eq!(status, 200, "{upload}");
    assert_eq!(put(upload["upload_url"].as_str().unwrap(), content_type, PNG).await.0, 200);
    let key = upload["image_key"].as_str().unwrap().to_owned();
    let (status, me) = set(stack, token, &key).await;
    assert_eq!(status, 200, "{me}");
    key
}

/// GETs `url`: its status and body.
async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// What the images bucket holds under `user`'s pictures, listed as the profile function lists it.
async fn pictures_in_bucket(stack: &LocalStack, user: &str) -> Vec<String> {
    let images = Images::from_env(&stack.sdk, &stack.envs["profile"]).unwrap();
    let prefix = PictureKey::prefix(&UserId::parse(user).unwrap());
    images.list_keys(&shared::outbound::Http::new(), &prefix, Utc::now()).await.unwrap()
}

#[tokio::test]
async fn a_customer_uploads_exactly_what_was_signed_sets_it_and_sees_it_and_no_one_else_can() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, customer_id) = customer(&stack).await;

    // What may be uploaded: JPEG, PNG or WebP, 1 byte to 2 MiB; each refusal names its field.
    for (body, field) in [
        (json!({ "content_type": "image/png", "content_length": 2 * 1024 * 1024 + 1 }), "content_length"),
        (json!({ "content_type": "image/png", "content_length": 0 }), "content_length"),
        (json!({ "content_type": "image/gif", "content_length": 100 }), "content_type"),
    ] {
        let (status, refused) = ask_upload(&stack, &customer, body.clone()).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (400, Some(field)), "{body}: {refused}");
    }
    let (status, upload) =
        ask_upload(&stack, &customer, json!({ "content_type": "image/png", "content_length": PNG.len() })).await;
    assert_eq!(status, 200, "{upload}");
    let key = upload["image_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&format!("pictures/{customer_id}/")) && key.ends_with(".png"), "{key}");
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["headers"], json!({ "content-type": "image/png", "content-length": PNG.len().to_string() }));
    let url = upload["upload_url"].as_str().unwrap();

    // Not uploaded yet: nothing to set.
    let (status, refused) = set(&stack, &customer, &key).await;
    assert_eq!((status, refused["error"]["field"].as_str()), (400, Some("image_key")), "{refused}");
    // S3 takes exactly the type and size signed.
    assert_eq!(put(url, "image/png", &[PNG, b"x"].concat()).await, (403, "SignatureDoesNotMatch".into()), "size");
    assert_eq!(put(url, "image/jpeg", PNG).await, (403, "SignatureDoesNotMatch".into()), "type");
    assert_eq!(put(url, "image/png", PNG).await.0, 200, "as signed: it lands");

    let (status, me) = set(&stack, &customer, &key).await;
    assert_eq!(status, 200, "{me}");
    assert!(me["user"].get("picture_key").is_none(), "the key stays inside: {me}");
    let (status, me) = api.get("/me", Some(&customer)).await;
    assert_eq!(status, 200, "{me}");
    let first_url = me["user"]["picture_url"].as_str().unwrap().to_owned();
    assert!(first_url.contains(&key) && first_url.contains("X-Amz-Expires=3600"), "{first_url}");
    assert_eq!(fetch(&first_url).await, (200, PNG.to_vec()), "GET /me's URL fetches the picture");
    // The bucket is private: the key without a signature reads nothing.
    assert_eq!(fetch(first_url.split('?').next().unwrap()).await.0, 403);

    // Another user cannot take it, nor name a key outside their own prefix.
    let (other, _) = integration_tests::customer(&stack).await;
    for stolen in [key.as_str(), "pictures/../secret.png", "chat/AT00000001/customer/x.png", ""] {
        let (status, refused) = set(&stack, &other, stolen).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (400, Some("image_key")), "{stolen}: {refused}");
    }
    let (_, theirs) = api.get("/me", Some(&other)).await;
    assert!(theirs["user"].get("picture_url").is_none(), "{theirs}");

    // Replaced: the first picture leaves the bucket.
    let second = upload_and_set(&stack, &customer, "image/webp").await;
    assert!(second.ends_with(".webp"), "{second}");
    assert_eq!(fetch(&first_url).await.0, 404, "the replaced picture is deleted");
    assert_eq!(pictures_in_bucket(&stack, &customer_id).await, vec![second]);
    let (_, me) = api.get("/me", Some(&customer)).await;
    let second_url = me["user"]["picture_url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&second_url).await, (200, PNG.to_vec()));

    // Removed: gone from the profile and from the bucket; removing again changes nothing.
    for _ in 0..2 {
        let (status, me) = api.send(Method::DELETE, "/me/picture", Some(&customer), &[], None).await;
        assert_eq!(status, 200, "{me}");
        assert!(me["user"].get("picture_url").is_none(), "{me}");
    }
    assert_eq!(fetch(&second_url).await.0, 404);
    assert!(pictures_in_bucket(&stack, &customer_id).await.is_empty());
}

#[tokio::test]
async fn an_astrologers_picture_is_on_the_catalogue_and_goes_with_the_account() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (customer, _) = customer(&stack).await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let key = upload_and_set(&stack, &astrologer, "image/png").await;

    // On the card and on the public profile, each a presigned GET that fetches it.
    let (status, page) = api.get("/astrologers?sort=price_asc&limit=50", Some(&customer)).await;
    assert_eq!(status, 200, "{page}");
    let card = page["astrologers"].as_array().unwrap().iter().find(|a| a["astrologer_id"] == astrologer_id.as_str());
    let card_url = card.unwrap_or_else(|| panic!("listed: {page}"))["picture_url"].as_str().unwrap().to_owned();
    assert!(card_url.contains(&key), "{card_url}");
    assert_eq!(fetch(&card_url).await, (200, PNG.to_vec()));
    let (status, detail) = api.get(&format!("/astrologers/{astrologer_id}"), Some(&customer)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(fetch(detail["astrologer"]["picture_url"].as_str().unwrap()).await, (200, PNG.to_vec()));

    // A second upload never set: theirs too, so it goes with the account.
    let (_, unset) =
        ask_upload(&stack, &astrologer, json!({ "content_type": "image/jpeg", "content_length": PNG.len() })).await;
    assert_eq!(put(unset["upload_url"].as_str().unwrap(), "image/jpeg", PNG).await.0, 200);
    assert_eq!(pictures_in_bucket(&stack, &astrologer_id).await.len(), 2);

    let (status, record) = api.send(Method::DELETE, "/me", Some(&astrologer), &[], None).await;
    assert_eq!(status, 200, "{record}");
    assert!(pictures_in_bucket(&stack, &astrologer_id).await.is_empty(), "every picture of theirs is deleted");
    assert_eq!(fetch(&card_url).await.0, 404);
    // No item names a picture of theirs any more.
    for item in all_items(&stack).await {
        let text = format!("{item:?}");
        assert!(!text.contains(&format!("pictures/{astrologer_id}")), "{text}");
    }
    // A deleted account's token uploads nothing more.
    let (status, refused) =
        ask_upload(&stack, &astrologer, json!({ "content_type": "image/png", "content_length": PNG.len() })).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (401, Some("account_deleted")), "{refused}");
}
