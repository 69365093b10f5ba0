//! Every HTTP function's route table (`ROUTES`) matches `template.yaml` both ways: each
//! template route of a function is in its table and each table entry is a template route of
//! that function, and a route is `Access::Public` exactly when the template gives it
//! `Auth: { Authorizer: NONE }`. No AWS, no moto: the template and the tables only.

use std::collections::{BTreeMap, BTreeSet};

use infra::template::Template;
use shared::http::Access;

use crate::route_tables::{route_tables as tables, table};

/// What is wrong between the template's routes and the tables (empty: nothing).
fn mismatches(template: &Template, tables: &BTreeMap<&'static str, Vec<(&'static str, Access)>>) -> Vec<String> {
    let mut problems = Vec::new();
    let functions = template.functions().unwrap();
    for f in &functions {
        let Some(table) = tables.get(f.binary.as_str()) else {
            if !f.http_routes.is_empty() {
                problems.push(format!("{} has HttpApi routes but no ROUTES table in this test", f.binary));
            }
            continue;
        };
        let mut seen = BTreeSet::new();
        for (key, _) in table {
            if !seen.insert(*key) {
                problems.push(format!("{}: {key} is in ROUTES twice", f.binary));
            }
        }
        for route in &f.http_routes {
            let key = route.route_key();
            match table.iter().find(|(k, _)| *k == key) {
                None => problems.push(format!("{}: template route {key} is not in ROUTES", f.binary)),
                Some((_, access)) => {
                    let public = *access == Access::Public;
                    if public == route.authorized {
                        problems.push(format!(
                            "{}: {key} is {access:?} in ROUTES but {} in the template",
                            f.binary,
                            if route.authorized { "behind the JWT authorizer" } else { "Authorizer: NONE" }
                        ));
                    }
                }
            }
        }
        for (key, _) in table {
            if !f.http_routes.iter().any(|r| r.route_key() == *key) {
                problems.push(format!("{}: ROUTES entry {key} is not a template route of this function", f.binary));
            }
        }
    }
    for binary in tables.keys() {
        if !functions.iter().any(|f| f.binary == *binary) {
            problems.push(format!("{binary} has a ROUTES table but is no function of the template"));
        }
    }
    problems
}

fn template() -> Template {
    Template::load(&infra::repo_root().join("template.yaml")).unwrap()
}

#[test]
fn route_tables_match_the_template_both_ways() {
    let problems = mismatches(&template(), &tables());
    assert!(problems.is_empty(), "route tables and template.yaml disagree:\n{}", problems.join("\n"));
}

/// The check itself catches each kind of drift.
#[test]
fn every_kind_of_drift_is_caught() {
    let template = template();

    let mut dropped = tables();
    dropped.get_mut("top-up").unwrap().retain(|(k, _)| *k != "GET /wallet");
    assert_eq!(mismatches(&template, &dropped), vec!["top-up: template route GET /wallet is not in ROUTES"]);

    let mut extra = tables();
    extra.get_mut("profile").unwrap().push(("DELETE /me/export", Access::SignedIn));
    assert_eq!(
        mismatches(&template, &extra),
        vec!["profile: ROUTES entry DELETE /me/export is not a template route of this function"]
    );

    let mut moved = tables();
    moved.get_mut("profile").unwrap().push(("GET /wallet", Access::SignedIn));
    assert_eq!(
        mismatches(&template, &moved),
        vec!["profile: ROUTES entry GET /wallet is not a template route of this function"]
    );

    let mut opened = tables();
    opened.get_mut("profile").unwrap()[0].1 = Access::Public;
    assert_eq!(
        mismatches(&template, &opened),
        vec!["profile: GET /me is Public in ROUTES but behind the JWT authorizer in the template"]
    );

    let mut closed = tables();
    closed.get_mut("digio-webhook").unwrap()[0].1 = Access::SignedIn;
    assert_eq!(
        mismatches(&template, &closed),
        vec!["digio-webhook: POST /webhooks/digio is SignedIn in ROUTES but Authorizer: NONE in the template"]
    );

    let mut missing = tables();
    missing.remove("otp-signup");
    assert_eq!(mismatches(&template, &missing), vec!["otp-signup has HttpApi routes but no ROUTES table in this test"]);

    let mut stray = tables();
    stray.insert("no-such-function", vec![]);
    assert_eq!(
        mismatches(&template, &stray),
        vec!["no-such-function has a ROUTES table but is no function of the template"]
    );
}

/// Role-only routes say so in the table, where dispatch enforces it.
#[test]
fn kyc_routes_are_for_astrologers_only() {
    for (key, access) in table(kyc_initiate::ROUTES) {
        assert_eq!(access, Access::Role(shared::UserType::Astrologer), "{key}");
    }
}
