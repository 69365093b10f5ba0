//! Offers against moto through the local stack: a new customer's first minutes free, the
//! astrologer paid for them from the promotions ledger, a cancelled reservation released and
//! used again, the limits, the report; and a milestone, counted once per event by the
//! customer-progress consumer, unlocking an offer.

use std::time::Duration;

use infra::LocalStack;
use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Long enough for a second delivery to show up: several stream and queue poll rounds.
const SETTLE: Duration = Duration::from_secs(4);

async fn create_offer(stack: &LocalStack, staff: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as("/admin/offers", staff, &[], body).await
}

async fn book(
    stack: &LocalStack,
    customer: &str,
    astrologer_id: &str,
    minutes: u32,
    offer: Option<&str>,
) -> (u16, Value) {
    let key = format!("offer-{}", rand::random::<u64>());
    let mut body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": minutes });
    if let Some(offer) = offer {
        body["offer_id"] = json!(offer);
    }
    Api::new(stack).post_as("/consultations", customer, &[("idempotency-key", &key)], body).await
}

async fn offers_for(stack: &LocalStack, customer: &str) -> Value {
    let (status, offers) = Api::new(stack).get("/offers", Some(customer)).await;
    assert_eq!(status, 200, "{offers}");
    offers
}

async fn takes_offers(stack: &LocalStack, staff: &str, astrologer_id: &str, accepts: bool) {
    let body =
        json!({ "revenue_share_percent": null, "accepts_promotional_offers": accepts, "reason": "their choice" });
    let path = format!("/admin/astrologers/{astrologer_id}/terms");
    let (status, terms) = Api::new(stack).send(Method::PUT, &path, Some(staff), &[], Some(&body.to_string())).await;
    assert_eq!(status, 200, "{terms}");
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

/// The walk of issue 33: a new customer's first 5 minutes free with an astrologer who takes
/// promotional offers; cancelled, the offer comes back; completed after 8 minutes, the
/// customer pays 3 and the astrologer earns their share of all 8, 5 of them from the
/// promotions ledger; every ledger sums, and the report says what the offer did.
#[tokio::test]
async fn a_new_customers_first_minutes_are_free_and_the_promotions_pay_the_astrologer() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (staff, _) = staff(&stack).await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;
    let (_, elsewhere_id) = bookable_astrologer(&stack, "10").await;
    let (_, not_taking_part_id) = bookable_astrologer(&stack, "10").await;
    takes_offers(&stack, &staff, &astrologer_id, true).await;
    takes_offers(&stack, &staff, &elsewhere_id, true).await;
    takes_offers(&stack, &staff, &not_taking_part_id, false).await;

    // Staff only, and checked.
    let first = json!({ "name": "First 5 minutes free", "free_minutes": 5, "first_consultation_only": true, "total_limit": 100 });
    let (status, refused) = create_offer(&stack, &customer, first.clone()).await;
    assert_eq!(status, 403, "{refused}");
    for (bad, field) in [
        (json!({ "name": "x", "free_minutes": 0 }), "free_minutes"),
        (json!({ "name": "x", "free_minutes": 5, "per_customer_limit": 0 }), "per_customer_limit"),
        (
            json!({ "name": "x", "free_minutes": 5, "first_consultation_only": true,
                 "milestone": { "metric": "completed_consultations", "count": 3 } }),
            "milestone",
        ),
        (json!({ "name": " ", "free_minutes": 5 }), "name"),
    ] {
        let (status, refused) = create_offer(&stack, &staff, bad).await;
        assert_eq!((status, str_of(&refused, &["error", "field"])), (400, Some(field)), "{refused}");
    }
    let (status, offer) = create_offer(&stack, &staff, first).await;
    assert_eq!(status, 201, "{offer}");
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();

    let listed = offers_for(&stack, &customer).await;
    assert_eq!(listed["segment"], "new");
    assert_eq!(listed["offers"][0]["offer_id"], offer_id.as_str());
    assert_eq!(
        (listed["offers"][0]["available"].as_bool(), listed["offers"][0]["uses_left"].as_u64()),
        (Some(true), Some(1))
    );

    // Not with an astrologer who does not take part; not with a promo code.
    let (status, refused) = book(&stack, &customer, &not_taking_part_id, 10, Some(&offer_id)).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");
    let key = format!("offer-{}", rand::random::<u64>());
    let both = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10, "offer_id": offer_id, "promo_code": "X" });
    let (status, refused) = api.post_as("/consultations", &customer, &[("idempotency-key", &key)], both).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");
    assert_eq!(str_of(&refused, &["error", "field"]), Some("offer_id"), "{refused}");

    // Reserved with the booking: 10 minutes at ₹10, the first 5 free, ₹50 held.
    let (status, booked) = book(&stack, &customer, &astrologer_id, 10, Some(&offer_id)).await;
    assert_eq!(status, 201, "{booked}");
    assert_eq!(
        (
            booked["price"]["free_minutes"].as_u64(),
            str_of(&booked, &["price", "free_value"]),
            str_of(&booked, &["price", "amount"])
        ),
        (Some(5), Some("50.00"), Some("50.00")),
        "{booked}"
    );
    let first_booking = booked["booking_id"].as_str().unwrap().to_owned();
    // Used by them already: refused with another astrologer.
    let (status, refused) = book(&stack, &customer, &elsewhere_id, 10, Some(&offer_id)).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");
    assert!(offers_for(&stack, &customer).await["offers"].as_array().unwrap().is_empty(), "held, so not listed");

    // Cancelled: the reservation is released and the offer can be used again.
    let (status, cancelled) =
        api.post_as(&format!("/consultations/{first_booking}/cancel"), &customer, &[], json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    assert_eq!(offers_for(&stack, &customer).await["offers"][0]["uses_left"].as_u64(), Some(1));
    let (status, booked) = book(&stack, &customer, &astrologer_id, 10, Some(&offer_id)).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["booking_id"].as_str().unwrap().to_owned();

    // 8 minutes: 5 free, 3 paid (₹30). At 70 % the astrologer earns ₹21 of the charge and
    // ₹35 of the free minutes, paid by the promotions; the platform keeps ₹9.
    let (status, _) = api.post_as(&format!("/consultations/{id}/accept"), &astrologer, &[], json!({})).await;
    assert_eq!(status, 200);
    started_minutes_ago(&stack, &id, 8).await;
    let (status, done) = api.post_as(&format!("/consultations/{id}/complete"), &astrologer, &[], json!({})).await;
    assert_eq!(status, 200, "{done}");
    let closing = &done["closing"];
    assert_eq!(
        (
            closing["free_minutes_used"].as_u64(),
            str_of(closing, &["charged", "real"]),
            str_of(closing, &["refunded", "real"]),
            str_of(closing, &["promotional_earnings"]),
            str_of(closing, &["astrologer_earnings"]),
            str_of(closing, &["platform_share"]),
            done["promotional"].as_bool(),
        ),
        (Some(5), Some("30.00"), Some("20.00"), Some("35.00"), Some("56.00"), Some("9.00"), Some(true)),
        "{done}"
    );
    let (status, earnings) = api.get("/astrologers/me/earnings", Some(&astrologer)).await;
    assert_eq!(status, 200, "{earnings}");
    let kinds: Vec<(&str, &str)> = earnings["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["amount"].as_str().or(e["real_delta"].as_str()).unwrap_or("")))
        .collect();
    assert!(kinds.iter().any(|(t, _)| *t == "promotional_earning"), "{earnings}");
    let promotions = items_under(&stack, "PLATFORM#PROMOTIONS").await;
    assert_eq!(promotions.len(), 1);

    // The report: two reservations, one consumed, one released.
    let (status, report) = api.get(&format!("/admin/offers/{offer_id}/report"), Some(&staff)).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["reservations"].as_u64(),
            report["consumptions"].as_u64(),
            report["releases"].as_u64(),
            report["open"].as_u64(),
            report["conversion_percent"].as_str(),
            report["free_minutes_spent"].as_u64(),
            report["promotions_spent"].as_str(),
        ),
        (Some(2), Some(1), Some(1), Some(0), Some("50.00"), Some(5), Some("35.00")),
        "{report}"
    );
    let (status, _) = api.get(&format!("/admin/offers/{offer_id}/report"), Some(&customer)).await;
    assert_eq!(status, 403);
    let (status, _) = api.get("/admin/offers/o_000000000000/report", Some(&staff)).await;
    assert_eq!(status, 404);

    // Once the completion is counted, it is no longer their first consultation.
    eventually("the completion counted", async || offers_for(&stack, &customer).await["segment"] == "active").await;
    assert!(offers_for(&stack, &customer).await["offers"].as_array().unwrap().is_empty());

    let found = money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:#?}", found.violations);
    assert!(assert_ledger_balances(&stack).await >= 3);
}

/// A milestone (2 completed consultations) unlocks an offer; the consumer counts each event
/// once however often it comes.
#[tokio::test]
async fn a_milestone_unlocks_an_offer_and_each_event_counts_once() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let astrologer = bookable_astrologer(&stack, "10").await;
    let body = json!({
        "name": "3 free minutes after 2 consultations", "free_minutes": 3,
        "milestone": { "metric": "completed_consultations", "count": 2 },
        "promotional_astrologers_only": false,
    });
    let (status, offer) = create_offer(&stack, &staff, body).await;
    assert_eq!(status, 201, "{offer}");
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();

    let locked = offers_for(&stack, &customer).await;
    assert_eq!(locked["offers"][0]["available"].as_bool(), Some(false), "{locked}");
    assert_eq!(
        locked["offers"][0]["milestone"],
        json!({ "metric": "completed_consultations", "count": 0, "needed": 2 })
    );
    let (status, refused) = book(&stack, &customer, &astrologer.1, 10, Some(&offer_id)).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");

    let first = completed_consultation(&stack, &customer, (&astrologer.0, &astrologer.1)).await;
    completed_consultation(&stack, &customer, (&astrologer.0, &astrologer.1)).await;
    eventually("the milestone reached", async || {
        offers_for(&stack, &customer).await["offers"][0]["available"].as_bool() == Some(true)
    })
    .await;

    // Delivered again, straight through the consumer: nothing moves.
    tokio::time::sleep(SETTLE).await;
    let progress = || async {
        let found = items_under(&stack, &format!("PROGRESS#{customer_id}")).await;
        found.into_iter().find(|i| i["SK"].as_s().unwrap() == "PROGRESS").unwrap()
    };
    let before = progress().await;
    assert_eq!(before["completed_consultations"].as_n().unwrap(), "2");
    assert_eq!(before["spend"].as_n().unwrap().parse::<f64>().unwrap(), 60.0, "3 minutes at ₹10, twice");
    let milestones: Value = serde_json::from_str(before["milestones"].as_s().unwrap()).unwrap();
    let first_consultation = json!({ "metric": "completed_consultations", "count": 1 });
    let reached: Vec<&Value> =
        milestones.as_array().unwrap().iter().filter(|m| m["milestone"] == first_consultation).collect();
    assert_eq!(reached.len(), 1, "{milestones}");
    assert_eq!(reached[0]["trigger_event"], format!("consultation-completed-{first}"), "{milestones}");
    let outbox = items_under(&stack, &format!("OUTBOX#consultation-completed-{first}")).await;
    let again = outbox[0]["envelope"].as_s().unwrap().to_owned();
    let response = sqs_consumer(&stack, "customer-progress")(sqs_event(&[("redelivery", again)])).await;
    assert!(response.batch_item_failures.is_empty(), "a redelivery is a success");
    assert_eq!(progress().await, before, "counted once");

    // Told once, in their inbox: the offer unlocked and what reached it.
    assert_eq!(settled_inbox_count(&stack, &customer_id, "OfferUnlocked").await, 1);
    let (_, inbox) = Api::new(&stack).get("/notifications", Some(&customer)).await;
    let told = inbox["notifications"].as_array().unwrap().iter().find(|n| n["title"] == "Offer unlocked").cloned();
    assert_eq!(
        told.map(|n| n["body"].clone()),
        Some(json!(
            "You completed your 2nd consultation: 3 free minutes after 2 consultations gives you the first 3 minutes of your next consultation free."
        )),
        "{inbox}"
    );

    // Unlocked: 10 minutes with the first 3 free.
    let (status, booked) = book(&stack, &customer, &astrologer.1, 10, Some(&offer_id)).await;
    assert_eq!((status, booked["price"]["free_minutes"].as_u64()), (201, Some(3)), "{booked}");
    let found = money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:#?}", found.violations);
}

/// Creates a top-up of `amount` naming `offer`; the answer.
async fn top_up_with(stack: &LocalStack, customer: &str, amount: &str, offer: &str) -> (u16, Value) {
    let key = format!("offer-top-up-{}", rand::random::<u64>());
    let body = json!({ "amount": amount, "offer_id": offer });
    Api::new(stack).post_as("/wallet/top-ups", customer, &[("idempotency-key", &key)], body).await
}

/// A bonus offer on the 3rd recharge (a milestone of 2 recharges): refused before, quoted at
/// the top-up's creation, consumed once by the credit however many webhooks and confirms
/// come, refused after; with a total limit of 2, of two customers paying at once after the
/// first, one gets the bonus and both get their money.
#[tokio::test]
async fn a_recharge_bonus_on_the_third_recharge_is_consumed_once_by_the_credit() {
    // No consumers: the store calls counted below are the request's own (the recharge
    // milestone is judged on the wallet, not on the progress the consumer keeps).
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let api = Api::new(&stack);
    let (staff, _) = staff(&stack).await;
    let body = json!({
        "name": "10% on your 3rd recharge", "bonus_percent": "10", "max_bonus": "50",
        "milestone": { "metric": "recharges", "count": 2 }, "total_limit": 2,
    });
    let (status, offer) = create_offer(&stack, &staff, body).await;
    assert_eq!((status, offer["promotional_astrologers_only"].as_bool()), (201, Some(false)), "{offer}");
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();
    let (status, refused) =
        create_offer(&stack, &staff, json!({ "name": "both", "free_minutes": 5, "bonus_percent": "10" })).await;
    assert_eq!((status, str_of(&refused, &["error", "field"])), (400, Some("bonus_percent")), "{refused}");

    let (buyer, _) = customer(&stack).await;
    let (status, refused) = top_up_with(&stack, &buyer, "750", &offer_id).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");
    top_up(&stack, &buyer, "100").await;
    top_up(&stack, &buyer, "100").await;
    let bonus_cash = async || {
        let (status, wallet) = api.get("/wallet", Some(&buyer)).await;
        assert_eq!(status, 200, "{wallet}");
        wallet["bonus_cash"].as_str().unwrap().parse::<f64>().unwrap()
    };
    let before = bonus_cash().await;
    // Listed as available at once: the wallet counts the recharges before the progress does.
    let listed = offers_for(&stack, &buyer).await;
    let listed = listed["offers"].as_array().unwrap().iter().find(|o| o["offer_id"] == offer_id.as_str()).cloned();
    assert_eq!(
        listed.as_ref().map(|o| (o["available"].clone(), o["bonus_percent"].clone())),
        Some((json!(true), json!("10"))),
        "{listed:?}"
    );

    // The third: ₹750, 10 % capped at ₹50, quoted beside the rules' bonus.
    let (status, created) = top_up_with(&stack, &buyer, "750", &offer_id).await;
    assert_eq!((status, str_of(&created, &["offer", "bonus"])), (201, Some("50.00")), "{created}");
    let quoted: f64 = created["bonus"].as_str().unwrap().parse().unwrap();
    assert!(quoted >= 50.0, "the rules' bonus and the offer's: {created}");
    let id = created["top_up_id"].as_str().unwrap().to_owned();
    let order = created["checkout"]["order_id"].as_str().unwrap();
    // Paid: the confirm credits it (3 store calls: the top-up and the wallet, the offer it
    // names, the transaction), then Razorpay's webhooks change nothing.
    let paid = stack.stubs.razorpay.pay(order, false).await.unwrap();
    let confirm = json!({
        "razorpay_order_id": paid.razorpay_order_id,
        "razorpay_payment_id": paid.razorpay_payment_id,
        "razorpay_signature": paid.razorpay_signature,
    });
    stack.calls.clear();
    let (status, confirmed) = api.post_as(&format!("/wallet/top-ups/{id}/confirm"), &buyer, &[], confirm).await;
    assert_eq!((status, str_of(&confirmed, &["offer_bonus"])), (200, Some("50.00")), "{confirmed}");
    assert_eq!(stack.calls.dynamodb(), ["BatchGetItem", "BatchGetItem", "TransactWriteItems"]);
    let razorpay = &stack.stubs.razorpay;
    for event in ["payment.captured", "order.paid", "payment.captured"] {
        let webhook = razorpay.webhook(event, order, &paid.razorpay_payment_id).unwrap();
        let delivered = razorpay.deliver(&webhook).await.unwrap();
        assert!(delivered.status < 300, "{delivered:?}");
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(bonus_cash().await, before + quoted, "the quoted bonus, credited once");

    // Used: refused for a 4th.
    let (status, refused) = top_up_with(&stack, &buyer, "750", &offer_id).await;
    assert_eq!((status, str_of(&refused, &["error", "code"])), (422, Some("offer_refused")), "{refused}");

    // Two more customers reach their 3rd recharge; one use is left. Both quoted, both paid
    // at once: one credit consumes it, the other is credited without it.
    let mut racing: Vec<(String, String, String)> = Vec::new();
    for _ in 0..2 {
        let (token, _) = customer(&stack).await;
        top_up(&stack, &token, "100").await;
        top_up(&stack, &token, "100").await;
        let (status, created) = top_up_with(&stack, &token, "750", &offer_id).await;
        assert_eq!(status, 201, "{created}");
        racing.push((
            token,
            created["top_up_id"].as_str().unwrap().to_owned(),
            created["checkout"]["order_id"].as_str().unwrap().to_owned(),
        ));
    }
    let pays = racing.iter().map(|(_, _, order)| stack.stubs.razorpay.pay(order, true));
    for paid in futures::future::join_all(pays).await {
        assert!(paid.unwrap().webhooks.iter().all(|w| w.status < 300));
    }
    let mut offer_bonuses = Vec::new();
    for (token, id, _) in &racing {
        let (status, topup) = api.get(&format!("/wallet/top-ups/{id}"), Some(token)).await;
        assert_eq!((status, topup["status"].as_str()), (200, Some("completed")), "{topup}");
        offer_bonuses.push(topup["offer_bonus"].as_str().unwrap().to_owned());
    }
    offer_bonuses.sort();
    assert_eq!(offer_bonuses, ["0.00", "50.00"]);

    let (_, report) = api.get(&format!("/admin/offers/{offer_id}/report"), Some(&staff)).await;
    assert_eq!(
        (report["consumptions"].as_u64(), report["reservations"].as_u64(), str_of(&report, &["bonus_spent"])),
        (Some(2), Some(0), Some("100.00")),
        "{report}"
    );
    let found = money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:#?}", found.violations);
    assert!(assert_ledger_balances(&stack).await >= 3);
}

/// Two customers book an offer's last use at the same moment (with two astrologers, so the
/// offer is all they share): one gets the free minutes, the other is refused with nothing
/// held; cancelled, the use comes back and the other takes it.
#[tokio::test]
async fn the_last_use_of_an_offer_goes_to_one_of_two_racing_bookings() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (staff, _) = staff(&stack).await;
    let (_, one) = bookable_astrologer(&stack, "10").await;
    let (_, other) = bookable_astrologer(&stack, "10").await;
    takes_offers(&stack, &staff, &one, true).await;
    takes_offers(&stack, &staff, &other, true).await;
    let (status, offer) =
        create_offer(&stack, &staff, json!({ "name": "Launch: 2 free minutes", "free_minutes": 2, "total_limit": 1 }))
            .await;
    assert_eq!(status, 201, "{offer}");
    let offer_id = offer["offer_id"].as_str().unwrap().to_owned();
    let (a, _) = topped_up_customer(&stack, "500").await;
    let (b, _) = topped_up_customer(&stack, "500").await;
    let wallet = async |token: &str| api.get("/wallet", Some(token)).await.1["total"].clone();
    let before = (wallet(&a).await, wallet(&b).await);

    let (first, second) =
        tokio::join!(book(&stack, &a, &one, 10, Some(&offer_id)), book(&stack, &b, &other, 10, Some(&offer_id)));
    let mut outcomes = [(first.0, &a, &first.1), (second.0, &b, &second.1)];
    outcomes.sort_by_key(|(status, ..)| *status);
    let [(won, winner, booked), (lost, loser, refused)] = outcomes;
    assert_eq!((won, lost), (201, 422), "{booked} {refused}");
    assert_eq!(str_of(refused, &["error", "code"]), Some("offer_refused"), "{refused}");
    assert_eq!(booked["price"]["free_minutes"].as_u64(), Some(2), "{booked}");
    let loser_before = if loser == &a { &before.0 } else { &before.1 };
    assert_eq!(&wallet(loser).await, loser_before, "nothing held for the refused booking");

    let id = booked["booking_id"].as_str().unwrap();
    let (status, cancelled) = api.post_as(&format!("/consultations/{id}/cancel"), winner, &[], json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    let astrologer = if loser == &a { &one } else { &other };
    let (status, rebooked) = book(&stack, loser, astrologer, 10, Some(&offer_id)).await;
    assert_eq!((status, rebooked["price"]["free_minutes"].as_u64()), (201, Some(2)), "{rebooked}");
    let found = money::check_money(&stack, &[]).await;
    assert!(found.violations.is_empty(), "{:#?}", found.violations);
}
