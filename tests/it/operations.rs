//! Operations staff against moto through the local stack: only the `admin` group gets in;
//! a suspension takes the astrologer out of the catalogue and refunds every scheduled
//! consultation to the paisa, and reinstating brings them back; KYC decided by hand goes
//! through the webhook's path with `verified_by`; promo codes stay unique whatever the case
//! and promotion rules never overlap, however creations race; support reads a wallet with
//! a page of its ledger (only that page is read) with its check and a masked phone; every
//! change writes one audit entry, once, and every staff read one of its own.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use infra::LocalStack;
use integration_tests::*;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

async fn post(stack: &LocalStack, token: &str, path: &str, body: Value) -> (u16, Value) {
    Api::new(stack).post_as(path, token, &[], body).await
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap_or_else(|| panic!("not a money string: {v}")).parse().unwrap()
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// The staff audit entries of `action` (from the table itself, not through the routes).
async fn audit_entries(stack: &LocalStack, action: &str) -> Vec<HashMap<String, AttributeValue>> {
    all_items(stack).await.into_iter().filter(|i| s(i, "SK") == "STAFFAUDIT" && s(i, "action") == action).collect()
}

/// The staff audit entries of reads.
async fn audit_entries_of_reads(stack: &LocalStack) -> usize {
    use shared::domain::staff::StaffAction;
    let reads: Vec<&str> = StaffAction::ALL.iter().filter(|a| a.is_read()).map(|a| a.as_str()).collect();
    all_items(stack)
        .await
        .iter()
        .filter(|i| s(i, "SK") == "STAFFAUDIT" && reads.contains(&s(i, "action").as_str()))
        .count()
}

/// A route key's path with its parameters filled in.
fn path_of(key: &str) -> (Method, String) {
    let (method, path) = key.split_once(' ').unwrap();
    let path = path.replace("/admin/offers/{id}", "/admin/offers/o_0123456789ab");
    let path = path.replace("{id}", "5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").replace("{code}", "WELCOME10");
    (method.parse().unwrap(), path)
}

async fn in_catalogue(stack: &LocalStack, token: &str, astrologer: &str) -> bool {
    let (status, page) = Api::new(stack).get("/astrologers?limit=50", Some(token)).await;
    assert_eq!(status, 200, "{page}");
    page["astrologers"].as_array().unwrap().iter().any(|a| a["astrologer_id"] == astrologer)
}

async fn book_at(stack: &LocalStack, token: &str, astrologer: &str, hours_ahead: i64, minutes: u32) -> (u16, Value) {
    let at = (Utc::now() + chrono::Duration::hours(hours_ahead)).format("%Y-%m-%dT%H:00:00Z").to_string();
    let key = format!("ops-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer, "mode": "chat", "minutes": minutes, "scheduled_at": at });
    Api::new(stack).post_as("/consultations", token, &[("idempotency-key", &key)], body).await
}

#[tokio::test]
async fn every_admin_route_refuses_everyone_but_staff() {
    let stack = stack().await;
    let (customer, _) = customer(&stack).await;
    let (astrologer, _) = astrologer(&stack).await;
    let (staff, _) = staff(&stack).await;
    let api = Api::new(&stack);
    let before = written_items(&stack).await;
    for route in operations::ROUTES {
        let (method, path) = path_of(route.key);
        let body = (method == Method::POST).then_some(r#"{"reason":"x","decision":"approve"}"#);
        for (who, token) in [("customer", &customer), ("astrologer", &astrologer)] {
            let (status, resp) = api.send(method.clone(), &path, Some(token), &[], body).await;
            assert_eq!((status, resp["error"]["code"].as_str()), (403, Some("forbidden")), "{who} {}", route.key);
        }
        let (status, _) = api.send(method.clone(), &path, None, &[], body).await;
        assert_eq!(status, 401, "no token: {}", route.key);
        let (status, resp) = api.send(method.clone(), &path, Some(&staff), &[], body).await;
        assert!(status != 401 && status != 403 && status < 500, "staff {}: {status} {resp}", route.key);
    }
    // Nothing refused wrote anything; staff's own reads wrote their audit entries, one each.
    let reads = operations::ROUTES.iter().filter(|r| r.key.starts_with("GET ")).count();
    assert_eq!(reads, 7);
    assert_eq!(audit_entries_of_reads(&stack).await, reads);
    assert_eq!(written_items(&stack).await, before + reads, "nothing refused wrote anything");
    // Sign-up can never make staff.
    let (status, resp) = api
        .post(
            "/auth/signup",
            json!({ "phone": random_phone(), "first_name": "Eve", "last_name": "X", "user_type": "admin" }),
        )
        .await;
    assert_eq!(status, 400, "{resp}");
}

#[tokio::test]
async fn suspension_refunds_every_booking_to_the_paisa_and_reinstating_lists_again() {
    let stack = stack().await;
    let (staff, staff_id) = staff(&stack).await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (_, astro_id) = bookable_astrologer(&stack, "12.35").await;
    let before = Api::new(&stack).get("/wallet", Some(&customer)).await.1;
    let mut booked = Vec::new();
    for (hours, minutes) in [(3, 7), (5, 13)] {
        let (status, c) = book_at(&stack, &customer, &astro_id, hours, minutes).await;
        assert_eq!(status, 201, "{c}");
        booked.push(c["booking_id"].as_str().unwrap().to_owned());
    }
    assert!(dec(&Api::new(&stack).get("/wallet", Some(&customer)).await.1["real_cash"]) < dec(&before["real_cash"]));
    assert!(in_catalogue(&stack, &customer, &astro_id).await);

    let path = format!("/admin/astrologers/{astro_id}/suspend");
    let (status, resp) = post(&stack, &staff, &path, json!({})).await;
    assert_eq!((status, resp["error"]["field"].as_str()), (400, Some("reason")), "a suspension needs a reason");
    let (status, suspended) = post(&stack, &staff, &path, json!({ "reason": "fraud reports" })).await;
    assert_eq!(status, 200, "{suspended}");
    assert_eq!(
        (&suspended["astrologer"]["suspended"], &suspended["astrologer"]["listed"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(suspended["astrologer"]["suspended_by"], staff_id);
    let mut cancelled: Vec<&str> =
        suspended["cancelled"].as_array().unwrap().iter().map(|c| c["booking_id"].as_str().unwrap()).collect();
    cancelled.sort();
    booked.sort();
    assert_eq!(cancelled, booked);
    for c in suspended["cancelled"].as_array().unwrap() {
        assert_eq!(c["status"], "cancelled");
        assert_eq!(c["closing"]["refund_percent"], 100, "{c}");
        assert_eq!(
            dec(&c["closing"]["refunded"]["real"]) + dec(&c["closing"]["refunded"]["bonus"]),
            dec(&c["price"]["amount"])
        );
    }
    // The customer has every paisa back, and sees why.
    let after = Api::new(&stack).get("/wallet", Some(&customer)).await.1;
    assert_eq!((&after["real_cash"], &after["bonus_cash"]), (&before["real_cash"], &before["bonus_cash"]));
    for id in &booked {
        let (_, c) = Api::new(&stack).get(&format!("/consultations/{id}"), Some(&customer)).await;
        assert_eq!(c["status"], "cancelled", "{c}");
        let event = all_items(&stack)
            .await
            .into_iter()
            .find(|i| s(i, "PK") == format!("OUTBOX#consultation-closed-{id}"))
            .expect("the cancellation's event");
        assert!(event.values().any(|v| v.as_s().is_ok_and(|t| t.contains(r#""by":"staff""#))), "{event:?}");
    }
    // Out of the catalogue at once, and cannot be booked.
    assert!(!in_catalogue(&stack, &customer, &astro_id).await);
    let (status, _) = Api::new(&stack).get(&format!("/astrologers/{astro_id}"), Some(&customer)).await;
    assert_eq!(status, 404);
    let (status, refused) = book_at(&stack, &customer, &astro_id, 7, 10).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (404, Some("not_found")), "{refused}");

    // A retry writes nothing more: one audit entry, nothing left to cancel.
    let (status, again) = post(&stack, &staff, &path, json!({ "reason": "fraud reports" })).await;
    assert_eq!((status, again["cancelled"].as_array().unwrap().len()), (200, 0), "{again}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let entries = audit_entries(&stack, "suspend_astrologer").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (s(&entries[0], "staff_id"), s(&entries[0], "target"), s(&entries[0], "reason")),
        (staff_id.clone(), format!("astrologer:{astro_id}"), "fraud reports".into())
    );

    // Reinstating brings them back, bookable again.
    let reinstate = format!("/admin/astrologers/{astro_id}/reinstate");
    let (status, back) = post(&stack, &staff, &reinstate, json!({ "reason": "cleared by review" })).await;
    assert_eq!((status, &back["listed"], &back["suspended"]), (200, &json!(true), &json!(false)), "{back}");
    assert!(in_catalogue(&stack, &customer, &astro_id).await);
    assert_eq!(book_at(&stack, &customer, &astro_id, 7, 10).await.0, 201);
    let (status, _) = post(&stack, &staff, &reinstate, json!({ "reason": "cleared by review" })).await;
    assert_eq!(status, 200);
    assert_eq!(audit_entries(&stack, "reinstate_astrologer").await.len(), 1, "a second reinstatement writes nothing");
    assert_eq!(post(&stack, &staff, "/admin/astrologers/not-a-user/suspend", json!({ "reason": "x" })).await.0, 404);
    assert!(assert_ledger_balances(&stack).await >= 5);
}

#[tokio::test]
async fn kyc_is_decided_by_hand_with_verified_by_and_approval_does_not_list_a_suspended_astrologer() {
    let stack = stack().await;
    let (staff, staff_id) = staff(&stack).await;
    let api = Api::new(&stack);
    let start_kyc = async |token: &str| {
        let (status, started) = api.send(Method::POST, "/astrologers/me/kyc", Some(token), &[], None).await;
        assert_eq!(status, 201, "{started}");
        started["request_id"].as_str().unwrap().to_owned()
    };

    // Completed, awaiting review: staff decide.
    let (token, id) = astrologer(&stack).await;
    let decide = format!("/admin/astrologers/{id}/kyc-decision");
    let (status, _) = post(&stack, &staff, &decide, json!({ "decision": "approve" })).await;
    assert_eq!(status, 409, "no request yet");
    let request = start_kyc(&token).await;
    assert_eq!(post(&stack, &staff, &decide, json!({ "decision": "approve" })).await.0, 409, "not completed yet");
    stack.stubs.digio.complete(&request).await.unwrap();
    let (status, resp) = post(&stack, &staff, &decide, json!({ "decision": "reject" })).await;
    assert_eq!((status, resp["error"]["field"].as_str()), (400, Some("reason")));
    let (status, approved) = post(&stack, &staff, &decide, json!({ "decision": "approve" })).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!((&approved["verification_status"], &approved["listed"]), (&json!("approved"), &json!(true)));
    let (_, kyc) = api.get("/astrologers/me/kyc", Some(&token)).await;
    assert_eq!(kyc["verification_status"], "approved", "{kyc}");
    let (status, _) = post(&stack, &staff, &decide, json!({ "decision": "approve" })).await;
    assert_eq!(status, 200, "the same decision again is answered");
    let (status, late) = post(&stack, &staff, &decide, json!({ "decision": "reject", "reason": "blurry" })).await;
    assert_eq!((status, late["error"]["code"].as_str()), (409, Some("kyc_not_awaiting_review")));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(audit_entries(&stack, "approve_kyc").await.len(), 1);
    let items = all_items(&stack).await;
    let kyc_audit: Vec<_> = items.iter().filter(|i| s(i, "PK") == format!("KYCAUDIT#{id}")).collect();
    assert_eq!(kyc_audit.iter().filter(|i| s(i, "verified_by") == staff_id).count(), 1, "{kyc_audit:?}");
    let astro = items.iter().find(|i| s(i, "PK") == format!("USER#{id}") && s(i, "SK") == "ASTROLOGER").unwrap();
    assert_eq!(s(astro, "verified_by"), staff_id);

    // Suspended before Digio approves: the approval does not list them; reinstating does.
    let (token, id) = astrologer(&stack).await;
    let request = start_kyc(&token).await;
    let (status, _) =
        post(&stack, &staff, &format!("/admin/astrologers/{id}/suspend"), json!({ "reason": "checks" })).await;
    assert_eq!(status, 200);
    stack.stubs.digio.approve(&request).await.unwrap();
    let (_, kyc) = api.get("/astrologers/me/kyc", Some(&token)).await;
    assert_eq!(kyc["verification_status"], "approved", "{kyc}");
    let item =
        all_items(&stack).await.into_iter().find(|i| s(i, "PK") == format!("USER#{id}") && s(i, "SK") == "ASTROLOGER");
    assert_ne!(s(&item.unwrap(), "CATALOGUE"), "LISTED", "approved while suspended: not listed");
    let profile_status = async |id: &str| {
        let items = all_items(&stack).await;
        let profile = items.iter().find(|i| s(i, "PK") == format!("USER#{id}") && s(i, "SK") == "PROFILE").unwrap();
        s(profile, "profile_status")
    };
    assert_eq!(profile_status(&id).await, "suspended", "approved while suspended: still suspended");
    let (status, back) =
        post(&stack, &staff, &format!("/admin/astrologers/{id}/reinstate"), json!({ "reason": "checked" })).await;
    assert_eq!((status, &back["listed"]), (200, &json!(true)), "{back}");
    assert_eq!(profile_status(&id).await, "approved");

    // A suspended astrologer cannot start a KYC: Digio is not asked.
    let (token, id) = astrologer(&stack).await;
    let (status, _) =
        post(&stack, &staff, &format!("/admin/astrologers/{id}/suspend"), json!({ "reason": "checks" })).await;
    assert_eq!(status, 200);
    let created = stack.stubs.digio.created();
    let (status, refused) = api.send(Method::POST, "/astrologers/me/kyc", Some(&token), &[], None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("astrologer_suspended")), "{refused}");
    assert_eq!(stack.stubs.digio.created(), created);
    assert_eq!(profile_status(&id).await, "suspended");
    // Rejected by hand: the reason reaches the astrologer.
    let (token, id) = astrologer(&stack).await;
    let request = start_kyc(&token).await;
    stack.stubs.digio.complete(&request).await.unwrap();
    let decide = format!("/admin/astrologers/{id}/kyc-decision");
    let (status, rejected) =
        post(&stack, &staff, &decide, json!({ "decision": "reject", "reason": "face unclear" })).await;
    assert_eq!((status, &rejected["listed"]), (200, &json!(false)), "{rejected}");
    let (_, kyc) = api.get("/astrologers/me/kyc", Some(&token)).await;
    assert_eq!(kyc["kyc_status"], "rejected", "{kyc}");
}

#[tokio::test]
async fn kyc_approval_racing_a_suspension_never_lists_a_suspended_astrologer() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (customer, _) = customer(&stack).await;
    let (token, id) = astrologer(&stack).await;
    let (status, started) = Api::new(&stack).send(Method::POST, "/astrologers/me/kyc", Some(&token), &[], None).await;
    assert_eq!(status, 201, "{started}");
    let request = started["request_id"].as_str().unwrap().to_owned();
    let put = Api::new(&stack)
        .send(
            Method::PUT,
            "/astrologers/me/profile",
            Some(&token),
            &[],
            Some(
                &json!({ "display_name": "Acharya Ravi", "experience_years": 3, "languages": ["hi"],
                "specialisations": ["vedic"], "rate_per_minute": "20", "modes": ["chat"] })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(put.0, 200, "{}", put.1);
    let path = format!("/admin/astrologers/{id}/suspend");
    let suspend = post(&stack, &staff, &path, json!({ "reason": "race" }));
    let approve = stack.stubs.digio.approve(&request);
    let ((status, body), approved) = tokio::join!(suspend, approve);
    assert_eq!(status, 200, "{body}");
    approved.unwrap();
    assert!(!in_catalogue(&stack, &customer, &id).await, "suspension wins whichever came first");
}

async fn create_code(stack: &LocalStack, staff: &str, code: &str) -> (u16, Value) {
    let body = json!({ "code": code, "discount_type": "percentage", "discount_value": "10", "max_discount": "100",
        "usage_limit": 5, "per_user_limit": 1 });
    post(stack, staff, "/admin/promo-codes", body).await
}

#[tokio::test]
async fn promo_codes_are_unique_whatever_the_case_even_when_creations_race() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (status, created) = create_code(&stack, &staff, "Diwali50").await;
    assert_eq!((status, &created["code"], &created["used_count"]), (201, &json!("DIWALI50"), &json!(0)), "{created}");
    let (status, taken) = create_code(&stack, &staff, " diwali50 ").await;
    assert_eq!((status, taken["error"]["code"].as_str()), (409, Some("code_taken")));
    let racing = ["race-x", "RACE-X", "Race-X", "rAcE-x", "RACE-x"].map(|c| create_code(&stack, &staff, c));
    let results = futures::future::join_all(racing).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "code_taken")), "{results:?}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(audit_entries(&stack, "create_promo_code").await.len(), 2, "one per code created");
    for (body, field) in [
        (json!({ "code": "BAD", "discount_type": "percentage", "discount_value": "150" }), "discount_value"),
        (json!({ "code": "no spaces", "discount_type": "fixed", "discount_value": "50" }), "code"),
        (
            json!({ "code": "CAP", "discount_type": "fixed", "discount_value": "50", "max_discount": "10" }),
            "max_discount",
        ),
    ] {
        let (status, resp) = post(&stack, &staff, "/admin/promo-codes", body).await;
        assert_eq!((status, resp["error"]["field"].as_str()), (400, Some(field)), "{resp}");
    }

    // Usage counts are visible; a deactivated code stops working.
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (_, astro_id) = bookable_astrologer(&stack, "10").await;
    let key = format!("ops-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "promo_code": "diwali50" });
    let (status, booked) =
        Api::new(&stack).post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    assert_eq!((status, dec(&booked["price"]["discount"])), (201, Decimal::from(10)), "{booked}");
    let (status, list) = Api::new(&stack).get("/admin/promo-codes", Some(&staff)).await;
    assert_eq!(status, 200, "{list}");
    let codes = list["promo_codes"].as_array().unwrap();
    assert_eq!(codes.iter().map(|c| c["code"].as_str().unwrap()).collect::<Vec<_>>(), ["DIWALI50", "RACE-X"]);
    assert_eq!(codes[0]["used_count"], 1);
    let deactivate = "/admin/promo-codes/diwali50/deactivate";
    assert_eq!(post(&stack, &staff, deactivate, json!({})).await.0, 400, "needs a reason");
    for _ in 0..2 {
        let (status, off) = post(&stack, &staff, deactivate, json!({ "reason": "campaign over" })).await;
        assert_eq!((status, &off["active"]), (200, &json!(false)), "{off}");
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(audit_entries(&stack, "deactivate_promo_code").await.len(), 1);
    assert_eq!(post(&stack, &staff, "/admin/promo-codes/NOPE/deactivate", json!({ "reason": "x" })).await.0, 404);
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let key = format!("ops-{}", rand::random::<u64>());
    let at = (Utc::now() + chrono::Duration::hours(3)).format("%Y-%m-%dT%H:00:00Z").to_string();
    let body = json!({ "astrologer_id": astro_id, "mode": "chat", "minutes": 10, "promo_code": "DIWALI50", "scheduled_at": at });
    let (status, refused) =
        Api::new(&stack).post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("promo_code_refused")), "{refused}");
}

async fn create_rule(stack: &LocalStack, staff: &str, min: &str, max: Option<&str>, percent: &str) -> (u16, Value) {
    let body = json!({ "name": format!("{percent}% from {min}"), "min_amount": min, "max_amount": max,
        "bonus_percent": percent, "reason": "campaign" });
    post(stack, staff, "/admin/promotion-rules", body).await
}

#[tokio::test]
async fn promotion_rules_never_overlap_even_when_creations_race() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (status, first) = create_rule(&stack, &staff, "500", Some("999.99"), "20").await;
    assert_eq!(status, 201, "{first}");
    let (status, clash) = create_rule(&stack, &staff, "999.99", Some("2000"), "10").await;
    assert_eq!((status, clash["error"]["code"].as_str()), (409, Some("rule_overlaps")), "ends are inclusive");
    assert_eq!(create_rule(&stack, &staff, "1000", Some("2000"), "10").await.0, 201);
    // Pairwise overlapping, all at once: exactly one is created.
    let racing = [("3000", "4000"), ("3500", "5000"), ("3999", "6000"), ("2500", "3000")]
        .map(|(min, max)| create_rule(&stack, &staff, min, Some(max), "5"));
    let results = futures::future::join_all(racing).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 201 || (*s == 409 && b["error"]["code"] == "rule_overlaps")));
    let (status, bad) = create_rule(&stack, &staff, "100", Some("50"), "5").await;
    assert_eq!((status, bad["error"]["field"].as_str()), (400, Some("max_amount")));

    // The rules apply to top-ups at once; a deactivated rule frees its range.
    let (customer, _) = customer(&stack).await;
    let key = format!("ops-{}", rand::random::<u64>());
    let (status, quote) = Api::new(&stack)
        .post_as("/wallet/top-ups", &customer, &[("idempotency-key", &key)], json!({ "amount": "500" }))
        .await;
    assert_eq!((status, dec(&quote["bonus"])), (201, Decimal::from(100)), "{quote}");
    let id = first["rule_id"].as_str().unwrap();
    let path = format!("/admin/promotion-rules/{id}/deactivate");
    for _ in 0..2 {
        let (status, off) = post(&stack, &staff, &path, json!({ "reason": "ended" })).await;
        assert_eq!((status, &off["active"]), (200, &json!(false)), "{off}");
    }
    assert_eq!(create_rule(&stack, &staff, "600", Some("700"), "15").await.0, 201);
    let (_, list) = Api::new(&stack).get("/admin/promotion-rules", Some(&staff)).await;
    let active = list["promotion_rules"].as_array().unwrap().iter().filter(|r| r["active"] == true).count();
    assert_eq!(active, 3, "{list:#}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(audit_entries(&stack, "create_promotion_rule").await.len(), 4, "one per rule created");
    assert_eq!(audit_entries(&stack, "deactivate_promotion_rule").await.len(), 1);
}

#[tokio::test]
async fn support_reads_a_wallet_with_its_ledger_check_and_a_masked_phone() {
    let stack = stack().await;
    let (staff, _) = staff(&stack).await;
    let (_, customer_id) = topped_up_customer(&stack, "750.25").await;
    let api = Api::new(&stack);
    let (status, view) = api.get(&format!("/admin/users/{customer_id}/wallet?limit=5"), Some(&staff)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(dec(&view["wallet"]["real_cash"]), "750.25".parse::<Decimal>().unwrap());
    assert_eq!(
        (&view["ledger_check"]["balanced"], &view["ledger_check"]["entries_checked"]),
        (&json!(true), &json!(1))
    );
    assert_eq!(view["transactions"].as_array().unwrap().len(), 1);
    let masked = view["user"]["phone_masked"].as_str().unwrap();
    assert!(masked.starts_with("+91") && masked.contains("******") && masked.len() == 13, "{masked}");
    let items = all_items(&stack).await;
    let phone = items.iter().find(|i| s(i, "PK") == format!("USER#{customer_id}") && s(i, "SK") == "PROFILE").unwrap();
    assert!(!view.to_string().contains(&s(phone, "phone_number")), "the full number never leaves");
    for (path, status) in [
        ("/admin/users/5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/wallet".to_owned(), 404),
        ("/admin/users/nobody/wallet".to_owned(), 404),
        (format!("/admin/users/{customer_id}/wallet?limit=0"), 400),
    ] {
        assert_eq!(api.get(&path, Some(&staff)).await.0, status, "{path}");
    }
    // The audit log lists what staff did, newest first, and what they looked at: each wallet
    // read that got past the checks (a user not found too; a bad limit read nothing).
    create_code(&stack, &staff, "AUDIT1").await;
    create_code(&stack, &staff, "AUDIT2").await;
    let (status, log) = api.get("/admin/audit?limit=10", Some(&staff)).await;
    assert_eq!(status, 200, "{log}");
    let staff_id = log["entries"][0]["staff_id"].as_str().unwrap().to_owned();
    let seen = |log: &Value| -> Vec<(String, String)> {
        let entries = log["entries"].as_array().unwrap();
        assert!(entries.iter().all(|e| e["staff_id"] == staff_id.as_str() && e["at"].is_string()), "{log}");
        entries.iter().map(|e| (e["action"].as_str().unwrap().into(), e["target"].as_str().unwrap().into())).collect()
    };
    let pair = |a: &str, t: &str| (a.to_owned(), t.to_owned());
    assert_eq!(
        seen(&log),
        [
            pair("create_promo_code", "promo_code:AUDIT2"),
            pair("create_promo_code", "promo_code:AUDIT1"),
            pair("view_user_wallet", "user:5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"),
            pair("view_user_wallet", &format!("user:{customer_id}")),
        ]
    );
    // Reading the log is in the log, and so are the lists; the log pages with a cursor.
    assert_eq!(api.get("/admin/promo-codes", Some(&staff)).await.0, 200);
    assert_eq!(api.get("/admin/promotion-rules", Some(&staff)).await.0, 200);
    let (_, first) = api.get("/admin/audit?limit=3", Some(&staff)).await;
    assert_eq!(
        seen(&first),
        [
            pair("list_promotion_rules", "promotion_rules"),
            pair("list_promo_codes", "promo_codes"),
            pair("view_audit_log", "audit_log"),
        ]
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, rest) = api.get(&format!("/admin/audit?limit=100&cursor={cursor}"), Some(&staff)).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(
        seen(&rest)[..3],
        [
            pair("create_promo_code", "promo_code:AUDIT2"),
            pair("create_promo_code", "promo_code:AUDIT1"),
            pair("view_user_wallet", "user:5f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f")
        ]
    );
    for bad in ["forged", "eyJzayI6IlBST0ZJTEUifQ"] {
        let (status, body) = api.get(&format!("/admin/audit?cursor={bad}"), Some(&staff)).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some("cursor")), "{bad}");
    }
}

#[tokio::test]
async fn the_wallet_look_up_reads_only_the_page_it_shows() {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let (staff, _) = staff(&stack).await;
    let (_, customer_id) = customer(&stack).await;
    // A ledger longer than one of DynamoDB's own pages of the old whole-ledger read (100).
    let store = shared::store::Store::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.table_name());
    let id = shared::UserId::parse(&customer_id).unwrap();
    const ENTRIES: u64 = 110;
    for n in 1..=ENTRIES {
        let wallet = store.wallet(&id).await.unwrap().unwrap();
        let movement =
            shared::domain::wallet::Movement::top_up(shared::Money::from_paise(100), &format!("tu_{n}"), "AK/1");
        let posting = wallet.post(vec![movement], Utc::now()).unwrap();
        let mut tx = store.tx();
        tx.posting(&shared::store::Account::Wallet(id.clone()), &posting);
        store.commit(tx).await.unwrap();
    }
    let api = Api::new(&stack);
    stack.calls.clear();
    let (status, first) = api.get(&format!("/admin/users/{customer_id}/wallet?limit=25"), Some(&staff)).await;
    assert_eq!(status, 200, "{first}");
    let mut calls = stack.calls.dynamodb();
    calls.sort();
    assert_eq!(calls, ["GetItem", "PutItem", "Query", "Query"], "the user, the wallet, ONE page, the audit entry");
    assert_eq!(
        (&first["ledger_check"]["balanced"], &first["ledger_check"]["entries_checked"]),
        (&json!(true), &json!(25)),
        "{}",
        first["ledger_check"]
    );
    assert_eq!(dec(&first["wallet"]["real_cash"]), Decimal::from(ENTRIES));
    // The cursor walks the rest, each entry once, newest first.
    let mut seen: Vec<String> = Vec::new();
    let mut page = first;
    loop {
        seen.extend(page["transactions"].as_array().unwrap().iter().map(|t| t["entry_id"].as_str().unwrap().into()));
        assert_eq!(page["ledger_check"]["balanced"], json!(true), "{}", page["ledger_check"]);
        let Some(cursor) = page["next_cursor"].as_str() else { break };
        let (status, next) =
            api.get(&format!("/admin/users/{customer_id}/wallet?limit=25&cursor={cursor}"), Some(&staff)).await;
        assert_eq!(status, 200, "{next}");
        page = next;
    }
    assert_eq!(seen.len() as u64, ENTRIES);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    let (status, body) =
        api.get(&format!("/admin/users/{customer_id}/wallet?cursor=eyJzayI6IlBST0ZJTEUifQ"), Some(&staff)).await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("cursor")));
    assert_eq!(audit_entries(&stack, "view_user_wallet").await.len(), 5, "one per page read, the refused one not");
}

#[tokio::test]
async fn staff_routes_keep_to_their_store_round_trips() {
    let stack = stack_with(|o| {
        o.poll_queues = false;
        o.poll_streams = false;
    })
    .await;
    let (staff, _) = staff(&stack).await;
    let (customer, customer_id) = topped_up_customer(&stack, "1000").await;
    let (_, astro_id) = bookable_astrologer(&stack, "10").await;
    assert_eq!(book_at(&stack, &customer, &astro_id, 3, 10).await.0, 201);
    let calls = async |method: Method, path: &str, body: Option<Value>| {
        stack.calls.clear();
        let read = method == Method::GET;
        let (status, resp) =
            Api::new(&stack).send(method, path, Some(&staff), &[], body.map(|b| b.to_string()).as_deref()).await;
        assert!(status < 300, "{path}: {status} {resp}");
        let mut calls = stack.calls.dynamodb();
        if read {
            // A read and its audit entry go concurrently: in no particular order.
            calls.sort();
        }
        calls
    };
    let reason = || Some(json!({ "reason": "checks" }));
    assert_eq!(
        calls(Method::POST, &format!("/admin/astrologers/{astro_id}/suspend"), reason()).await,
        ["GetItem", "TransactWriteItems", "GetItem", "Query", "BatchGetItem", "TransactWriteItems"],
        "suspension with one booking to cancel"
    );
    assert_eq!(
        calls(Method::POST, &format!("/admin/astrologers/{astro_id}/reinstate"), reason()).await,
        ["GetItem", "TransactWriteItems", "GetItem"]
    );
    let code = json!({ "code": "TRIPS", "discount_type": "fixed", "discount_value": "5" });
    assert_eq!(calls(Method::POST, "/admin/promo-codes", Some(code)).await, ["TransactWriteItems"]);
    assert_eq!(calls(Method::GET, "/admin/promo-codes", None).await, ["PutItem", "Query"]);
    assert_eq!(
        calls(Method::POST, "/admin/promo-codes/TRIPS/deactivate", reason()).await,
        ["TransactWriteItems", "GetItem"]
    );
    let rule = json!({ "name": "r", "min_amount": "100", "max_amount": "200", "bonus_percent": "5" });
    assert_eq!(calls(Method::POST, "/admin/promotion-rules", Some(rule)).await, ["Query", "TransactWriteItems"]);
    assert_eq!(calls(Method::GET, "/admin/promotion-rules", None).await, ["PutItem", "Query"]);
    assert_eq!(
        calls(Method::GET, &format!("/admin/users/{customer_id}/wallet"), None).await,
        ["GetItem", "PutItem", "Query", "Query"],
        "the user partition, the wallet, the page of its ledger shown, the audit entry"
    );
    assert_eq!(calls(Method::GET, "/admin/audit", None).await, ["PutItem", "Query"]);
}

async fn set_terms(stack: &LocalStack, staff: &str, astrologer: &str, body: Value) -> (u16, Value) {
    let path = format!("/admin/astrologers/{astrologer}/terms");
    Api::new(stack).send(Method::PUT, &path, Some(staff), &[], Some(&body.to_string())).await
}

/// Each astrologer's own share, set by staff (audited), settles what is booked after it; a
/// consultation booked before settles at the share it was booked at.
#[tokio::test]
async fn an_astrologers_own_share_settles_what_is_booked_after_it_is_set() {
    let stack = stack().await;
    let api = Api::new(&stack);
    let (staff, _) = staff(&stack).await;
    let (customer, _) = topped_up_customer(&stack, "1000").await;
    let (astrologer, astrologer_id) = bookable_astrologer(&stack, "10").await;

    // Booked (and started) at the platform's 70 %.
    let key = format!("terms-{}", rand::random::<u64>());
    let body = json!({ "astrologer_id": astrologer_id, "mode": "chat", "minutes": 10 });
    let (status, before) = api.post_as("/consultations", &customer, &[("idempotency-key", &key)], body).await;
    assert_eq!((status, before["astrologer_share_percent"].as_str()), (201, Some("70")), "{before}");
    let before = before["booking_id"].as_str().unwrap().to_owned();
    let (status, _) = api.post_as(&format!("/consultations/{before}/accept"), &astrologer, &[], json!({})).await;
    assert_eq!(status, 200);

    for (body, field) in [
        (
            json!({ "revenue_share_percent": "101", "accepts_promotional_offers": true, "reason": "x" }),
            "revenue_share_percent",
        ),
        (
            json!({ "revenue_share_percent": "80.123", "accepts_promotional_offers": true, "reason": "x" }),
            "revenue_share_percent",
        ),
        (json!({ "revenue_share_percent": "80", "accepts_promotional_offers": true }), "reason"),
    ] {
        let (status, refused) = set_terms(&stack, &staff, &astrologer_id, body).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (400, Some(field)), "{refused}");
    }
    let (status, refused) = set_terms(&stack, &astrologer, &astrologer_id, json!({})).await;
    assert_eq!(status, 403, "{refused}");
    let body = json!({ "revenue_share_percent": "80", "accepts_promotional_offers": false, "reason": "top-rated" });
    let (status, terms) = set_terms(&stack, &staff, &astrologer_id, body).await;
    assert_eq!(status, 200, "{terms}");
    assert_eq!(
        (terms["revenue_share_percent"].as_str(), terms["accepts_promotional_offers"].as_bool()),
        (Some("80"), Some(false))
    );
    let audited = audit_entries(&stack, "set_astrologer_terms").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(s(&audited[0], "reason"), "top-rated");

    // 3 minutes at ₹10 each: ₹30 charged. The one booked before earns 70 %, the one after 80 %.
    started_minutes_ago(&stack, &before, 3).await;
    let (status, done) = api.post_as(&format!("/consultations/{before}/complete"), &astrologer, &[], json!({})).await;
    assert_eq!((status, done["closing"]["astrologer_earnings"].as_str()), (200, Some("21.00")), "{done}");
    let after = completed_consultation(&stack, &customer, (&astrologer, &astrologer_id)).await;
    let (status, done) = api.get(&format!("/consultations/{after}"), Some(&customer)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            done["astrologer_share_percent"].as_str(),
            done["closing"]["astrologer_earnings"].as_str(),
            done["closing"]["platform_share"].as_str()
        ),
        (Some("80"), Some("24.00"), Some("6.00")),
        "{done}"
    );
    assert!(assert_ledger_balances(&stack).await >= 2);
}
