//! Every money invariant, checked over a whole table after a run (the random interleavings
//! of `tests/invariants.rs`, the load run, the contention row):
//!
//! - each wallet and earnings account: its ledger in posting order, each entry's balances
//!   the running sums and never below zero, the sums its balances per bucket (real, bonus,
//!   debt), lifetime credited minus debited its balance (`assert_ledger_balances`, which
//!   panics on the first that does not add up);
//! - each closed consultation: charged plus refunded is what was held, per bucket; charged
//!   is the astrologer's earnings plus the platform's share; the customer's ledger moved
//!   exactly the charge and the astrologer's exactly the earnings, once; an open one has
//!   moved exactly its hold and earned nothing yet;
//! - no astrologer has two open consultations at once, nor two ringing or in progress at
//!   the same time (each live from its ring, or its start, until it closed);
//! - a declined or expired request gave all back and earned nothing;
//! - a completed consultation bills its measured time: `actual_minutes` is the started
//!   minutes of `measured_seconds` (at least 1, at most the minutes held) when its meter
//!   started and 0 when it never did (no `started_at`); a session ended by the balance
//!   measured exactly its paid minutes; it charged exactly those minutes at its rate less
//!   the discount pro-rated to them (`settle`), never more than it held;
//! - no money moved for a consultation that does not exist (a refused booking held nothing);
//! - a consultation nobody started and closed at or after its time (the customer left
//!   waiting, a no-show) gave all back and earned nothing;
//! - each promo code's uses (in total and per customer) are the consultations holding it that
//!   did not end with a full refund (a full refund gives the use back);
//! - no payment credited twice, no refund or chargeback taken (or given back) twice, and
//!   every top-up the service acknowledged credited;
//! - the books from Razorpay's side: every credited top-up left in the wallet (its amount
//!   less what refunds and chargebacks took back) exactly what the Razorpay stand-in kept of
//!   its order (captured, less refunded, less disputes standing at a stage that holds money);
//! - offers: a consultation's charge plus what the promotions paid is the astrologer's
//!   earnings plus the platform's share, the promotions ledger paid exactly that, once; each
//!   offer's counters and each customer's uses are its reservations, and each reservation is
//!   where its consultation stands (`offer_violations`);
//! - the platform's recharge-loss ledger sums to every wallet's debt (what refunds and
//!   chargebacks took back after it was spent and paid out is carried by the platform until
//!   the customer's next credits pay it).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use infra::LocalStack;
use rust_decimal::Decimal;

type Item = HashMap<String, AttributeValue>;
/// An open consultation's interval and booking id.
type Slot = (DateTime<Utc>, DateTime<Utc>, String);

/// A consultation's stamps come from its writer's clock before its write commits: two live
/// ones of an astrologer may seem to overlap by this much when one closed as the other rang.
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(1);

fn text(i: &Item, k: &str) -> String {
    i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn number(i: &Item, k: &str) -> Decimal {
    i.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or_default()
}

fn time(i: &Item, k: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&text(i, k)).map(|t| t.to_utc()).unwrap_or_else(|_| panic!("{k} in {i:?}"))
}

/// What a check found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Invariants checked (one per ledger entry, per consultation and bucket, per astrologer,
    /// per credit and per acknowledged top-up).
    pub invariants: usize,
    pub violations: Vec<String>,
}

/// Checks every invariant of the module doc over the table; `acknowledged` are top-ups whose
/// confirmation or webhook the service answered with a 2xx.
pub async fn check_money(stack: &LocalStack, acknowledged: &[String]) -> Checked {
    let items = crate::all_items(stack).await;
    let mut out = Checked { invariants: crate::assert_ledgers_in(stack, &items).await, violations: Vec::new() };
    let mut ledgers: HashMap<String, Vec<&Item>> = HashMap::new();
    for e in items.iter().filter(|i| text(i, "entity") == "ledger_entry") {
        ledgers.entry(text(e, "PK")).or_default().push(e);
    }
    let ledger = |pk: String| ledgers.get(&pk).map(Vec::as_slice).unwrap_or_default();
    let v = &mut out.violations;

    let promotions: Vec<&Item> = items.iter().filter(|i| text(i, "entity") == "promotion_entry").collect();
    let mut open: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
    // When each consultation rang or ran, per astrologer.
    let mut live: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
    // Uses of each promo code kept by consultations, in total (customer "") and per customer.
    let mut kept: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for c in items.iter().filter(|i| text(i, "entity") == "consultation") {
        let (id, status) = (text(c, "booking_id"), text(c, "status"));
        let mut moved = BTreeMap::from([("real", Decimal::ZERO), ("bonus", Decimal::ZERO)]);
        for e in ledger(format!("LEDGER#{}", text(c, "customer_id"))) {
            // Debt settlements borrow the reference of the credit that paid them: not the consultation's money.
            let kind = text(e, "type");
            if text(e, "reference_id") == id && ["hold", "release", "refund"].contains(&kind.as_str()) {
                *moved.get_mut("real").unwrap() += number(e, "real_delta");
                *moved.get_mut("bonus").unwrap() += number(e, "bonus_delta");
            }
        }
        // Their share of the charge, and of an offer's free minutes (paid by the promotions).
        let earned: Vec<Decimal> = ledger(format!("EARNLEDGER#{}", text(c, "astrologer_id")))
            .iter()
            .filter(|e| {
                text(e, "reference_id") == id && ["earning", "promotional_earning"].contains(&text(e, "type").as_str())
            })
            .map(|e| number(e, "real_delta"))
            .collect();
        out.invariants += 4;
        // Everything back: a full refund, or a session whose meter never started (a party never came).
        let full_refund = number(c, "refund_percent") == Decimal::ONE_HUNDRED
            || (c.contains_key("actual_minutes") && number(c, "actual_minutes").is_zero());
        if c.contains_key("promo_code") && !full_refund {
            for customer in [String::new(), text(c, "customer_id")] {
                *kept.entry((text(c, "promo_code"), customer)).or_default() += Decimal::ONE;
            }
        }
        let waited = c.contains_key("closed_at") && !c.contains_key("started_at");
        if waited && time(c, "closed_at") >= time(c, "scheduled_at") && !full_refund {
            v.push(format!("{id} ({status}): closed unstarted after its time without a full refund"));
        }
        if c.contains_key("charged_real") {
            for bucket in ["real", "bonus"] {
                let field = |f: &str| number(c, &format!("{f}_{bucket}"));
                let (charged, refunded, held) = (field("charged"), field("refunded"), field("hold"));
                if charged + refunded != held {
                    v.push(format!("{id} ({status}): {bucket} charged {charged} + refunded {refunded} != held {held}"));
                }
                if moved[bucket] != -charged {
                    v.push(format!("{id} ({status}): the {bucket} ledger moved {}, charged {charged}", moved[bucket]));
                }
            }
            let charged = number(c, "charged_real") + number(c, "charged_bonus");
            let (earnings, platform) = (number(c, "astrologer_earnings"), number(c, "platform_share"));
            let promotional =
                if c.contains_key("promotional_earnings") { number(c, "promotional_earnings") } else { Decimal::ZERO };
            if charged + promotional != earnings + platform {
                v.push(format!(
                    "{id}: charged {charged} + promotions {promotional} != earnings {earnings} + platform {platform}"
                ));
            }
            let expected: Vec<Decimal> =
                [earnings - promotional, promotional].into_iter().filter(|e| !e.is_zero()).collect();
            if earned != expected {
                v.push(format!(
                    "{id}: earnings credited {earned:?}, its closing says {earnings} ({promotional} promotional)"
                ));
            }
            out.invariants += 1;
            let paid_by_promotions: Vec<Decimal> =
                promotions.iter().filter(|e| text(e, "SK") == id).map(|e| number(e, "amount")).collect();
            let expected: Vec<Decimal> = [promotional].into_iter().filter(|p| !p.is_zero()).collect();
            if paid_by_promotions != expected {
                v.push(format!(
                    "{id}: the promotions ledger paid {paid_by_promotions:?}, its closing says {promotional}"
                ));
            }
        } else {
            for bucket in ["real", "bonus"] {
                let held = number(c, &format!("hold_{bucket}"));
                if moved[bucket] != -held {
                    v.push(format!("{id} ({status}): the {bucket} ledger moved {}, held {held}", moved[bucket]));
                }
            }
            if !earned.is_empty() {
                v.push(format!("{id} ({status}): earnings credited before it closed"));
            }
            // The slot the app booked: a test that moved the consultation in time (the
            // invariants' no-shows) keeps it in `booked_from`/`booked_until`.
            let slot = |kept: &str, current: &str| time(c, if c.contains_key(kept) { kept } else { current });
            open.entry(text(c, "astrologer_id")).or_default().push((
                slot("booked_from", "scheduled_at"),
                slot("booked_until", "ends_at"),
                id.clone(),
            ));
        }
        out.invariants += 3;
        let instant = c.get("instant").and_then(|b| b.as_bool().ok()).copied().unwrap_or(false);
        let live_from = if instant {
            Some(time(c, "created_at"))
        } else {
            c.contains_key("astrologer_joined_at").then(|| time(c, "astrologer_joined_at"))
        };
        if let Some(from) = live_from {
            let until = if c.contains_key("closed_at") { time(c, "closed_at") } else { DateTime::<Utc>::MAX_UTC };
            live.entry(text(c, "astrologer_id")).or_default().push((from, until, format!("{id} ({status})")));
        }
        let hold = number(c, "hold_real") + number(c, "hold_bonus");
        let charged = number(c, "charged_real") + number(c, "charged_bonus");
        if ["declined", "expired"].contains(&status.as_str())
            && (number(c, "refund_percent") != Decimal::ONE_HUNDRED
                || !charged.is_zero()
                || !number(c, "astrologer_earnings").is_zero()
                || !earned.is_empty())
        {
            v.push(format!("{id} ({status}): kept {charged} of {hold}, earned {earned:?}: not all back"));
        }
        if status == "completed" {
            v.extend(billing_violation(c, instant).map(|problem| format!("{id} (completed): {problem}")));
        }
    }
    for (astrologer, mut slots) in live {
        slots.sort();
        out.invariants += 1;
        let mut latest: Option<&Slot> = None;
        for slot in &slots {
            if let Some(before) = latest.filter(|before| slot.0 + CLOCK_SLACK < before.1) {
                v.push(format!("astrologer {astrologer}: {} and {} rang or ran at the same time", before.2, slot.2));
            }
            if latest.is_none_or(|before| slot.1 > before.1) {
                latest = Some(slot);
            }
        }
    }
    let consultations: std::collections::HashSet<String> =
        items.iter().filter(|i| text(i, "entity") == "consultation").map(|c| text(c, "booking_id")).collect();
    for (pk, entries) in &ledgers {
        for e in entries.iter().filter(|e| text(e, "reference_type") == "consultation") {
            out.invariants += 1;
            if !consultations.contains(&text(e, "reference_id")) {
                v.push(format!(
                    "{pk}: a {} for consultation {}, which does not exist",
                    text(e, "type"),
                    text(e, "reference_id")
                ));
            }
        }
    }
    for (astrologer, mut slots) in open {
        slots.sort();
        out.invariants += 1;
        for pair in slots.windows(2) {
            if pair[1].0 < pair[0].1 {
                v.push(format!("astrologer {astrologer}: {} and {} overlap", pair[0].2, pair[1].2));
            }
        }
    }

    for p in items.iter().filter(|i| text(i, "PK").starts_with("PROMO#")) {
        let code = text(p, "PK").trim_start_matches("PROMO#").to_owned();
        let (customer, counted) = match text(p, "entity").as_str() {
            "promo_code" => (String::new(), number(p, "used_count")),
            "promo_usage" => (text(p, "SK").trim_start_matches("USAGE#").to_owned(), number(p, "uses")),
            _ => continue,
        };
        out.invariants += 1;
        let held = kept.get(&(code.clone(), customer.clone())).copied().unwrap_or_default();
        if counted != held {
            v.push(format!("promo code {code} ({customer:?}): {counted} uses counted, {held} consultations keep one"));
        }
    }

    v.extend(offer_violations(&items, &mut out.invariants));

    let mut posted: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (pk, entries) in &ledgers {
        for e in entries {
            let kind = text(e, "type");
            if ["top_up", "reversal", "reversal_undone"].contains(&kind.as_str()) {
                *posted.entry((pk.clone(), kind, text(e, "reference_id"))).or_default() += 1;
            }
        }
    }
    for ((wallet, kind, reference), n) in &posted {
        out.invariants += 1;
        if *n > 1 {
            v.push(format!("{wallet}: {kind} {reference} posted {n} times"));
        }
    }
    out.invariants += 1;
    let losses: Decimal =
        items.iter().filter(|i| text(i, "entity") == "platform_loss_entry").map(|i| number(i, "amount")).sum();
    let debts: Decimal = items.iter().filter(|i| text(i, "entity") == "wallet").map(|i| number(i, "debt")).sum();
    if losses != debts {
        v.push(format!("the platform's recharge losses sum to {losses}, the wallets owe {debts}"));
    }
    let rzp = &stack.stubs.razorpay;
    for t in items.iter().filter(|i| text(i, "entity") == "top_up" && text(i, "status") == "completed") {
        out.invariants += 1;
        let received = number(t, "amount") - number(t, "reversed_amount");
        let kept = Decimal::new(rzp.kept_of_order(&text(t, "razorpay_order_id")) as i64, 2);
        if received != kept {
            v.push(format!("top-up {}: the wallet kept {received}, Razorpay kept {kept}", text(t, "top_up_id")));
        }
    }
    for top_up in acknowledged {
        out.invariants += 1;
        if !posted.keys().any(|(_, kind, reference)| kind == "top_up" && reference == top_up) {
            v.push(format!("top-up {top_up}: acknowledged but never credited"));
        }
    }
    out
}

/// Each offer's counters are its reservations: `taken` those reserved or consumed, and the
/// consumed ones' free minutes and promotions; each customer's uses of it likewise; each
/// reservation is where its consultation stands (open: reserved; completed with free minutes
/// used: consumed; otherwise closed: released).
fn offer_violations(items: &[Item], invariants: &mut usize) -> Vec<String> {
    let mut v = Vec::new();
    let consultations: HashMap<String, &Item> =
        items.iter().filter(|i| text(i, "entity") == "consultation").map(|c| (text(c, "booking_id"), c)).collect();
    // Per offer: (taken, reservations, consumptions, releases, free minutes, promotions,
    // recharge bonus).
    let mut counted: BTreeMap<String, [Decimal; 7]> = BTreeMap::new();
    let mut per_customer: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in items.iter().filter(|i| text(i, "entity") == "offer_reservation") {
        *invariants += 1;
        let (offer, booking, status) = (text(r, "offer_id"), text(r, "booking_id"), text(r, "status"));
        let c = consultations.get(&booking);
        let used = c.filter(|c| c.contains_key("free_minutes_used"));
        let expected = match c {
            None => "no consultation",
            Some(c) if !c.contains_key("closed_at") => "reserved",
            Some(_) if used.is_some() => "consumed",
            Some(_) => "released",
        };
        if status != expected {
            v.push(format!(
                "offer {offer}: the reservation of {booking} is {status}, its consultation says {expected}"
            ));
        }
        let n = counted.entry(offer.clone()).or_default();
        n[1] += Decimal::ONE;
        match status.as_str() {
            "reserved" | "consumed" => {
                n[0] += Decimal::ONE;
                *per_customer.entry((text(r, "customer_id"), offer.clone())).or_default() += Decimal::ONE;
            }
            _ => n[3] += Decimal::ONE,
        }
        if status == "consumed" {
            n[2] += Decimal::ONE;
            if let Some(c) = used {
                n[4] += number(c, "free_minutes_used");
                n[5] += number(c, "promotional_earnings");
            }
        }
    }
    // A recharge bonus is consumed by the credit of the top-up naming it, when it gave one.
    for t in items.iter().filter(|i| text(i, "entity") == "top_up" && i.contains_key("offer_id")) {
        *invariants += 1;
        let bonus = number(t, "offer_bonus");
        if bonus > number(t, "bonus_credited") {
            v.push(format!("top-up {}: an offer bonus of {bonus} beyond its bonus credited", text(t, "top_up_id")));
        }
        if bonus > Decimal::ZERO {
            let offer = text(t, "offer_id");
            let n = counted.entry(offer.clone()).or_default();
            n[0] += Decimal::ONE;
            n[2] += Decimal::ONE;
            n[6] += bonus;
            *per_customer.entry((text(t, "user_id"), offer)).or_default() += Decimal::ONE;
        }
    }
    for o in items.iter().filter(|i| text(i, "entity") == "offer") {
        *invariants += 1;
        let id = text(o, "PK").trim_start_matches("OFFER#").to_owned();
        let kept = [
            "taken",
            "reservations",
            "consumptions",
            "releases",
            "free_minutes_spent",
            "promotions_spent",
            "bonus_spent",
        ]
        .map(|k| number(o, k));
        let expected = counted.get(&id).copied().unwrap_or_default();
        if kept != expected {
            v.push(format!("offer {id}: counters {kept:?}, its reservations say {expected:?}"));
        }
    }
    for p in items.iter().filter(|i| text(i, "entity") == "customer_progress") {
        for (name, value) in p.iter().filter(|(k, _)| k.starts_with("taken_")) {
            *invariants += 1;
            let offer = name.trim_start_matches("taken_").to_owned();
            let kept: Decimal = value.as_n().ok().and_then(|n| n.parse().ok()).unwrap_or_default();
            let expected = per_customer.get(&(text(p, "user_id"), offer.clone())).copied().unwrap_or_default();
            if kept != expected {
                v.push(format!(
                    "customer {}: {kept} uses of offer {offer} counted, {expected} held",
                    text(p, "user_id")
                ));
            }
        }
    }
    v
}

/// What is wrong with a completed consultation's bill, if anything: its minutes are the
/// started minutes its meter measured (none if the meter never started), and its charge those
/// minutes at its rate less the discount pro-rated to them (`settle`), never more than held.
fn billing_violation(c: &Item, instant: bool) -> Option<String> {
    let held_minutes = number(c, "minutes");
    let actual = number(c, "actual_minutes");
    let measured = c.contains_key("measured_seconds").then(|| number(c, "measured_seconds"));
    let expected = match (c.contains_key("started_at"), measured) {
        (false, _) => Decimal::ZERO,
        (true, Some(seconds)) => (seconds / Decimal::from(60)).ceil().max(Decimal::ONE).min(held_minutes),
        (true, None) => actual,
    };
    if actual != expected {
        return Some(format!(
            "billed {actual} minutes, its meter (started: {}) measured {measured:?} s: {expected} minutes",
            c.contains_key("started_at")
        ));
    }
    let paid_seconds = held_minutes * Decimal::from(60);
    if let Some(seconds) = measured.filter(|_| instant) {
        if seconds > paid_seconds {
            return Some(format!("measured {seconds} s, past its {held_minutes} paid minutes"));
        }
        if text(c, "end_reason") == "balance" && seconds != paid_seconds {
            return Some(format!(
                "ended by the balance after {seconds} s measured, not its {held_minutes} paid minutes"
            ));
        }
    }
    let hold = number(c, "hold_real") + number(c, "hold_bonus");
    // An offer's free minutes come first and cost the customer nothing.
    let free = if c.contains_key("free_minutes") { number(c, "free_minutes").min(actual) } else { Decimal::ZERO };
    let used = if c.contains_key("free_minutes_used") { number(c, "free_minutes_used") } else { Decimal::ZERO };
    if used != free {
        return Some(format!("{used} free minutes used of {actual} billed, which had {free} free"));
    }
    let booked_free = if c.contains_key("free_minutes") { number(c, "free_minutes") } else { Decimal::ZERO };
    let gross = number(c, "rate_per_minute") * (actual - free);
    let discount = (number(c, "discount") * (actual - free) / (held_minutes - booked_free).max(Decimal::ONE))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
    let due = (gross - discount).max(Decimal::ZERO).min(hold);
    let charged = number(c, "charged_real") + number(c, "charged_bonus");
    (charged != due || charged > hold)
        .then(|| format!("charged {charged} for {actual} minutes, which cost {due} (held {hold})"))
}
