//! Astrologers manage what can be booked; customers find them. Against moto through the
//! local stack: who appears in the catalogue, every filter and sort, cursors, presence that
//! lapses, bad input named by field, and who may call what.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use infra::LocalStack;
use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

fn profile(name: &str, rate: &str, years: u32, languages: &[&str], modes: &[&str]) -> Value {
    json!({
        "display_name": name,
        "bio": format!("{name} reads charts."),
        "experience_years": years,
        "languages": languages,
        "specialisations": ["vedic"],
        "rate_per_minute": rate,
        "modes": modes,
        "education": "M.A. Jyotish, Banaras Hindu University",
        "certifications": ["Jyotish Visharad", "KP Level 2"],
    })
}

async fn put(stack: &LocalStack, token: &str, path: &str, body: Value) -> (u16, Value) {
    Api::new(stack).send(Method::PUT, path, Some(token), &[], Some(&body.to_string())).await
}

async fn list(stack: &LocalStack, token: &str, query: &str) -> (u16, Value) {
    Api::new(stack).get(&format!("/astrologers?{query}"), Some(token)).await
}

fn ids(page: &Value) -> Vec<String> {
    page["astrologers"].as_array().unwrap().iter().map(|a| a["astrologer_id"].as_str().unwrap().to_owned()).collect()
}

/// Every id of the catalogue for `query`, page by page (`limit` each), checking no id repeats.
async fn all_pages(stack: &LocalStack, token: &str, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let (status, page) = list(stack, token, &q).await;
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).len() <= limit);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no astrologer twice across pages: {seen:?}");
    seen
}

/// The catalogue's indexes are read eventually consistently, as on AWS: wait for `want`.
async fn eventually(stack: &LocalStack, token: &str, query: &str, want: &[&String]) -> Value {
    let mut page = Value::Null;
    for _ in 0..20 {
        page = list(stack, token, query).await.1;
        if ids(&page).iter().collect::<Vec<_>>() == want {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{query}: wanted {want:?}, got {page}");
}

#[tokio::test]
async fn only_approved_astrologers_with_a_profile_are_listed_and_public_fields_only() {
    let stack = stack().await;
    let (customer_token, _) = customer(&stack).await;
    let (approved, approved_id) = approved_astrologer(&stack).await;
    let (pending, pending_id) = astrologer(&stack).await;
    let (no_profile, no_profile_id) = approved_astrologer(&stack).await;
    let _ = no_profile;

    // Edits by an astrologer not yet approved are stored, but not shown.
    for token in [&approved, &pending] {
        let (status, body) =
            put(&stack, token, "/astrologers/me/profile", profile("Asha", "25", 12, &["hi"], &["chat"])).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, own) = Api::new(&stack).get("/astrologers/me/profile", Some(&pending)).await;
    assert_eq!((own["profile"]["display_name"].as_str(), own["in_catalogue"].as_bool()), (Some("Asha"), Some(false)));

    let page = eventually(&stack, &customer_token, "sort=price_asc", &[&approved_id]).await;
    let card = &page["astrologers"][0];
    assert_eq!(card["rate_per_minute"], "25.00");
    assert_eq!(card["languages"], json!(["hi"]));
    assert_eq!(card["rating"], json!({ "average": "0.00", "count": 0 }));
    for private in ["phone_number", "kyc_status", "kyc_documents", "kyc_access_token", "bio", "education"] {
        assert!(card.get(private).is_none(), "{private} in a card: {card}");
    }
    for hidden in [&pending_id, &no_profile_id] {
        let (status, _) = Api::new(&stack).get(&format!("/astrologers/{hidden}"), Some(&customer_token)).await;
        assert_eq!(status, 404, "an unlisted astrologer is not found");
    }
    let (status, detail) = Api::new(&stack).get(&format!("/astrologers/{approved_id}"), Some(&customer_token)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["astrologer"]["bio"], "Asha reads charts.");
    assert_eq!(detail["astrologer"]["education"], "M.A. Jyotish, Banaras Hindu University");
    assert_eq!(detail["astrologer"]["certifications"], json!(["Jyotish Visharad", "KP Level 2"]));
    let text = detail.to_string();
    assert!(!text.contains("+91") && !text.contains("kyc"), "nothing private: {text}");

    // Suspension (operations: the user suspended, CATALOGUE removed) takes them out at once.
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    ddb.update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("USER#{approved_id}")))
        .key("SK", AttributeValue::S("ASTROLOGER".into()))
        .update_expression("REMOVE CATALOGUE")
        .send()
        .await
        .unwrap();
    eventually(&stack, &customer_token, "sort=price_asc", &[]).await;
    let (status, _) = Api::new(&stack).get(&format!("/astrologers/{approved_id}"), Some(&customer_token)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn filters_sorts_and_cursors() {
    let stack = stack().await;
    let (token, _) = customer(&stack).await;
    let specs = [
        ("A", "10", 5, vec!["hi", "en"], vec!["chat"]),
        ("B", "40", 20, vec!["hi"], vec!["chat", "video"]),
        ("C", "25", 1, vec!["ta"], vec!["call"]),
        ("D", "55.50", 30, vec!["en", "ta"], vec!["video"]),
    ];
    let mut id_of = std::collections::HashMap::new();
    for (name, rate, years, langs, modes) in &specs {
        let (t, id) = approved_astrologer(&stack).await;
        let (status, body) =
            put(&stack, &t, "/astrologers/me/profile", profile(name, rate, *years, langs, modes)).await;
        assert_eq!(status, 200, "{body}");
        id_of.insert(*name, (id, t));
    }
    let id = |n: &str| &id_of[n].0;
    eventually(&stack, &token, "sort=price_asc", &[id("A"), id("C"), id("B"), id("D")]).await;
    eventually(&stack, &token, "sort=price_desc", &[id("D"), id("B"), id("C"), id("A")]).await;
    eventually(&stack, &token, "sort=experience", &[id("D"), id("B"), id("A"), id("C")]).await;
    eventually(&stack, &token, "sort=price_asc&language=hi", &[id("A"), id("B")]).await;
    eventually(&stack, &token, "sort=price_asc&language=en&mode=video", &[id("D")]).await;
    eventually(&stack, &token, "sort=price_asc&specialisation=tarot", &[]).await;

    // Online now: only whoever went online, and only until the heartbeat lapses.
    eventually(&stack, &token, "sort=price_asc&online=true", &[]).await;
    let (status, body) = put(&stack, &id_of["C"].1, "/astrologers/me/presence", json!({ "status": "online" })).await;
    assert_eq!((status, body["presence"].as_str()), (200, Some("online")), "{body}");
    eventually(&stack, &token, "sort=price_asc&online=true", &[id("C")]).await;
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    ddb.update_item()
        .table_name(stack.table_name())
        .key("PK", AttributeValue::S(format!("USER#{}", id("C"))))
        .key("SK", AttributeValue::S("ASTROLOGER".into()))
        .update_expression("SET online_until = :past")
        .expression_attribute_values(":past", AttributeValue::N((chrono::Utc::now().timestamp() - 1).to_string()))
        .send()
        .await
        .unwrap();
    eventually(&stack, &token, "sort=price_asc&online=true", &[]).await;
    let (_, c) = Api::new(&stack).get(&format!("/astrologers/{}", id("C")), Some(&token)).await;
    assert_eq!(c["astrologer"]["presence"], "offline", "a lapsed heartbeat is offline");

    // Pages of one, while other profiles change underneath: every astrologer once, in order.
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or("sort=price_asc&limit=1".to_owned(), |c| format!("sort=price_asc&limit=1&cursor={c}"));
        let (status, page) = list(&stack, &token, &q).await;
        assert_eq!(status, 200, "{page}");
        pages.extend(ids(&page));
        let (_, b) = put(&stack, &id_of["B"].1, "/astrologers/me/presence", json!({ "status": "busy" })).await;
        assert_eq!(b["presence"], "busy");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [id("A"), id("C"), id("B"), id("D")].map(String::to_owned));
    assert_eq!(
        all_pages(&stack, &token, "sort=experience", 3).await,
        [id("D"), id("B"), id("A"), id("C")].map(String::to_owned)
    );

    // A cursor from another sort, or made up, is a 400 naming it.
    let (_, first) = list(&stack, &token, "sort=price_asc&limit=1").await;
    let c = first["next_cursor"].as_str().unwrap();
    for q in [format!("sort=rating&cursor={c}"), "sort=price_asc&cursor=bm9wZQ".to_owned()] {
        let (status, body) = list(&stack, &token, &q).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("cursor")), "{body}");
    }
}

#[tokio::test]
async fn availability_gives_free_slots_in_the_callers_time_zone() {
    let stack = stack().await;
    let (customer_token, _) = customer(&stack).await;
    let (token, id) = approved_astrologer(&stack).await;
    put(&stack, &token, "/astrologers/me/profile", profile("Asha", "25", 12, &["hi"], &["chat"])).await;
    let every_day: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| json!({ "weekday": d, "start": "09:00", "end": "12:00" }))
        .collect();
    let (status, body) = put(
        &stack,
        &token,
        "/astrologers/me/availability",
        json!({ "time_zone": "Asia/Kolkata", "windows": every_day }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["availability"]["windows"].as_array().unwrap().len(), 7);

    let (status, detail) =
        Api::new(&stack).get(&format!("/astrologers/{id}?time_zone=Europe/London"), Some(&customer_token)).await;
    assert_eq!(status, 200, "{detail}");
    let slots = detail["next_free_slots"].as_array().unwrap();
    assert!((7..=8).contains(&slots.len()), "a window a day for 7 days: {slots:?}");
    // 09:00-12:00 in Kolkata is 03:30-06:30 in London in winter; the first may have begun
    // already and the last is cut at the 7-day horizon.
    for s in &slots[1..] {
        assert!(s["start"].as_str().unwrap().ends_with("T03:30:00+00:00"), "{s}");
    }
    for s in &slots[..slots.len() - 1] {
        assert!(s["end"].as_str().unwrap().ends_with("T06:30:00+00:00"), "{s}");
    }
    let (status, body) =
        Api::new(&stack).get(&format!("/astrologers/{id}?time_zone=Mars/Base"), Some(&customer_token)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("time_zone")), "{body}");
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field_and_changes_nothing() {
    let stack = stack().await;
    let (token, _) = approved_astrologer(&stack).await;
    let good = profile("Asha", "25", 12, &["hi"], &["chat"]);
    let (status, _) = put(&stack, &token, "/astrologers/me/profile", good.clone()).await;
    assert_eq!(status, 200);
    let edit = |field: &str, value: Value| {
        let mut p = good.clone();
        p[field] = value;
        p
    };
    let cases = [
        (edit("rate_per_minute", json!("1000.01")), "rate_per_minute"),
        (edit("rate_per_minute", json!("4.99")), "rate_per_minute"),
        (edit("rate_per_minute", json!("10.001")), "rate_per_minute"),
        (edit("languages", json!(["hi", "klingon"])), "languages[1]"),
        (edit("bio", json!("x".repeat(10 * 1024))), "bio"),
        (edit("modes", json!(["fax"])), "modes[0]"),
        // A picture is uploaded (POST /me/picture), no longer pasted.
        (edit("picture_url", json!("https://cdn.astrokiran.in/a.jpg")), "picture_url"),
        (edit("education", json!("x".repeat(201))), "education"),
        (edit("certifications", json!(vec!["KP"; 11])), "certifications"),
        (edit("certifications", json!(["KP", "x".repeat(101)])), "certifications[1]"),
        (edit("experience_years", json!(-1)), "experience_years"),
    ];
    for (body, field) in cases {
        let (status, resp) = put(&stack, &token, "/astrologers/me/profile", body).await;
        assert_eq!((status, resp["error"]["field"].as_str()), (400, Some(field)), "{resp}");
    }
    let windows = |w: Value| json!({ "windows": w });
    let availability = [
        (
            windows(
                json!([{ "weekday": "mon", "start": "09:00", "end": "12:00" }, { "weekday": "mon", "start": "11:00", "end": "13:00" }]),
            ),
            "windows[1]",
        ),
        (windows(json!([{ "weekday": "mon", "start": "09:00:30", "end": "12:00" }])), "windows[0].start"),
        (json!({ "time_zone": "India/Delhi", "windows": [] }), "time_zone"),
    ];
    for (body, field) in availability {
        let (status, resp) = put(&stack, &token, "/astrologers/me/availability", body).await;
        assert_eq!((status, resp["error"]["field"].as_str()), (400, Some(field)), "{resp}");
    }
    for body in ["[]", "\"x\"", "{", ""] {
        let (status, resp) =
            Api::new(&stack).send(Method::PUT, "/astrologers/me/profile", Some(&token), &[], Some(body)).await;
        assert_eq!(status, 400, "{body}: {resp}");
    }
    let (status, resp) = put(&stack, &token, "/astrologers/me/presence", json!({ "status": "away" })).await;
    assert_eq!((status, resp["error"]["field"].as_str()), (400, Some("status")), "{resp}");
    let (_, own) = Api::new(&stack).get("/astrologers/me/profile", Some(&token)).await;
    assert_eq!(
        own["profile"],
        json!({
            "display_name": "Asha", "bio": "Asha reads charts.", "experience_years": 12, "languages": ["hi"],
            "specialisations": ["vedic"], "rate_per_minute": "25.00", "modes": ["chat"],
            "education": "M.A. Jyotish, Banaras Hindu University", "certifications": ["Jyotish Visharad", "KP Level 2"],
        }),
        "nothing changed"
    );
    assert_eq!(own["availability"]["windows"], json!([]));
}

#[tokio::test]
async fn customers_cannot_manage_profiles_and_nobody_edits_anothers() {
    let stack = stack().await;
    let (customer_token, _) = customer(&stack).await;
    let (a, a_id) = approved_astrologer(&stack).await;
    let (b, _) = approved_astrologer(&stack).await;
    put(&stack, &a, "/astrologers/me/profile", profile("Asha", "25", 12, &["hi"], &["chat"])).await;
    for (method, path) in [
        (Method::GET, "/astrologers/me/profile"),
        (Method::PUT, "/astrologers/me/profile"),
        (Method::PUT, "/astrologers/me/availability"),
        (Method::PUT, "/astrologers/me/presence"),
    ] {
        let body = Some("{}");
        let (status, _) = Api::new(&stack).send(method.clone(), path, Some(&customer_token), &[], body).await;
        assert_eq!(status, 403, "a customer on {path}");
        let (status, _) = Api::new(&stack).send(method, path, None, &[], body).await;
        assert_eq!(status, 401, "nobody on {path}");
    }
    // B's edits land on B: the route has no id to name anyone else with.
    put(&stack, &b, "/astrologers/me/profile", profile("Mallory", "5", 1, &["en"], &["video"])).await;
    let (_, detail) = Api::new(&stack).get(&format!("/astrologers/{a_id}"), Some(&customer_token)).await;
    assert_eq!(detail["astrologer"]["display_name"], "Asha");
}

#[tokio::test]
async fn each_route_is_one_store_call() {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let (customer_token, _) = customer(&stack).await;
    let (token, id) = approved_astrologer(&stack).await;
    let api = Api::new(&stack);
    let calls = [
        (
            Method::PUT,
            "/astrologers/me/profile".to_owned(),
            Some(profile("Asha", "25", 12, &["hi"], &["chat"])),
            &token,
            "UpdateItem",
        ),
        (Method::PUT, "/astrologers/me/availability".to_owned(), Some(json!({ "windows": [] })), &token, "UpdateItem"),
        (Method::PUT, "/astrologers/me/presence".to_owned(), Some(json!({ "status": "online" })), &token, "UpdateItem"),
        (Method::GET, "/astrologers/me/profile".to_owned(), None, &token, "GetItem"),
        (Method::GET, format!("/astrologers/{id}"), None, &customer_token, "GetItem"),
        (Method::GET, "/astrologers?language=hi&sort=rating".to_owned(), None, &customer_token, "Query"),
    ];
    for (method, path, body, who, call) in calls {
        stack.calls.clear();
        let body = body.map(|b| b.to_string());
        let (status, resp) = api.send(method, &path, Some(who), &[], body.as_deref()).await;
        assert_eq!(status, 200, "{path}: {resp}");
        assert_eq!(stack.calls.dynamodb(), [call], "{path}");
    }
}

#[tokio::test]
async fn weekly_availability_is_bounded_at_28_windows() {
    let stack = stack().await;
    let (token, _) = approved_astrologer(&stack).await;
    // Four disjoint windows a day, every day: 28, the most one may keep.
    let windows: Vec<Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .flat_map(|d| (0..4).map(move |h| json!({ "weekday": d, "start": format!("{:02}:00", 2 * h), "end": format!("{:02}:00", 2 * h + 1) })))
        .collect();
    assert_eq!(windows.len(), shared::domain::availability::MAX_WINDOWS);
    let (status, body) = put(&stack, &token, "/astrologers/me/availability", json!({ "windows": windows })).await;
    assert_eq!(status, 200, "{body}");
    let mut one_more = windows.clone();
    one_more.push(json!({ "weekday": "mon", "start": "20:00", "end": "21:00" }));
    let (status, body) = put(&stack, &token, "/astrologers/me/availability", json!({ "windows": one_more })).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("windows")), "{body}");
    let (_, own) = Api::new(&stack).get("/astrologers/me/profile", Some(&token)).await;
    assert_eq!(own["availability"]["windows"].as_array().unwrap().len(), 28, "the 29th changed nothing");
}

#[tokio::test]
async fn a_full_calendar_is_a_409_and_frees_itself_never_a_stuck_astrologer() {
    let stack = stack().await;
    let (customer_token, _) = topped_up_customer(&stack, "5000").await;
    let (_, astrologer) = bookable_astrologer(&stack, "10").await;
    let api = Api::new(&stack);
    let book = async |hours_ahead: i64| {
        let at = (chrono::Utc::now() + chrono::Duration::hours(hours_ahead)).format("%Y-%m-%dT%H:00:00Z").to_string();
        let key = format!("full-{}", rand::random::<u64>());
        let body = json!({ "astrologer_id": astrologer, "mode": "chat", "minutes": 5, "scheduled_at": at });
        api.post_as("/consultations", &customer_token, &[("idempotency-key", &key)], body).await
    };
    // The calendar as the store keeps it: 999 upcoming bookings (5 minutes every 10, from
    // four days on) and a few past ones, put straight on the astrologer's item.
    let now = chrono::Utc::now().timestamp();
    let from = now + 4 * 86_400;
    let mut schedule: Vec<(i64, i64, String)> =
        (0..5).map(|i| (now - 86_400 - i * 600, now - 86_400 - i * 600 + 300, format!("AT9{i:07}"))).collect();
    schedule.extend((0..999).map(|i| (from + i * 600, from + i * 600 + 300, format!("AT8{i:07}"))));
    schedule.sort();
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let key = |item: &str| {
        [
            ("PK".to_owned(), AttributeValue::S(format!("USER#{astrologer}"))),
            ("SK".to_owned(), AttributeValue::S(item.into())),
        ]
    };
    client
        .update_item()
        .table_name(stack.table_name())
        .set_key(Some(key("ASTROLOGER").into()))
        .update_expression("SET schedule = :s")
        .expression_attribute_values(":s", AttributeValue::S(serde_json::to_string(&schedule).unwrap()))
        .send()
        .await
        .unwrap();

    // The 1000th upcoming one fits (the past ones are pruned as it is written)...
    let (status, first) = book(3).await;
    assert_eq!(status, 201, "{first}");
    let item = client.get_item().table_name(stack.table_name()).set_key(Some(key("ASTROLOGER").into())).send().await;
    let stored = item.unwrap().item.unwrap()["schedule"].as_s().unwrap().clone();
    let kept: Vec<(i64, i64, String)> = serde_json::from_str(&stored).unwrap();
    assert_eq!(kept.len(), shared::domain::booking::MAX_SCHEDULED, "past ones pruned");
    assert!(stored.len() < 40_000, "{} bytes: far inside DynamoDB's 400 KB item", stored.len());
    // ...the 1001st is a 409 that says why, and nothing is held from the wallet...
    let (_, before) = api.get("/wallet", Some(&customer_token)).await;
    let (status, body) = book(5).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("schedule_full")), "{body}");
    assert_eq!(api.get("/wallet", Some(&customer_token)).await.1, before);
    // ...and a cancellation frees a place: the astrologer is never stuck.
    let id = first["booking_id"].as_str().unwrap();
    let (status, body) = api.post_as(&format!("/consultations/{id}/cancel"), &customer_token, &[], json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = book(5).await;
    assert_eq!(status, 201, "{body}");
}

/// Issue 29: an astrologer keeps a few saved replies for their chats: their own only,
/// replaced whole, checked as chat texts.
#[tokio::test]
async fn an_astrologer_keeps_their_own_saved_replies() {
    let stack = stack().await;
    let (astro, _) = approved_astrologer(&stack).await;
    let (other, _) = approved_astrologer(&stack).await;
    let (customer, _) = customer(&stack).await;
    let api = Api::new(&stack);
    let (status, none) = api.get("/astrologers/me/saved-replies", Some(&astro)).await;
    assert_eq!((status, none), (200, json!({ "replies": [] })));
    let replies = json!({ "replies": [" Namaste. ", "Please share your date, time and place of birth.", "Namaste."] });
    let (status, kept) = put(&stack, &astro, "/astrologers/me/saved-replies", replies).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["replies"], json!(["Namaste.", "Please share your date, time and place of birth."]));
    assert_eq!(api.get("/astrologers/me/saved-replies", Some(&astro)).await.1, kept);
    assert_eq!(api.get("/astrologers/me/saved-replies", Some(&other)).await.1, json!({ "replies": [] }), "their own");
    let too_many = json!({ "replies": vec!["x"; 21] });
    let (status, refused) = put(&stack, &astro, "/astrologers/me/saved-replies", too_many).await;
    assert_eq!((status, refused["error"]["field"].as_str()), (400, Some("replies")), "{refused}");
    let (status, _) = put(&stack, &customer, "/astrologers/me/saved-replies", json!({ "replies": [] })).await;
    assert_eq!(status, 403, "astrologers only");
    assert_eq!(api.get("/astrologers/me/saved-replies", Some(&astro)).await.1, kept, "refusals changed nothing");
}
