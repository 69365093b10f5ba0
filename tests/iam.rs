//! Each function's IAM policy grants exactly the AWS actions its code can call, on the
//! resources it uses: read from `template.yaml` and from the sources.
//!
//! What a crate can call is derived from its code: the DynamoDB store methods it calls
//! (`store.<method>(`, directly or through `shared::closing` / `shared::idempotency`), each
//! closed over the store's own calls down to the SDK operations and transaction items it
//! builds (TransactWriteItems and TransactGetItems are authorised item by item); the SDK
//! calls of other services it makes (`SDK_CALLS`); and `shared::secrets` (one
//! `ssm:GetParameters`). Grants come from the function's `Policies` (both branches of an
//! `!If`, SAM policy templates expanded) and any `AWS::IAM::Policy` attached to its role.
//! What SAM adds for event sources (stream and queue reads) is not in either.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use infra::YamlValue as Value;
use infra::template::{Template, intrinsic, referenced_id};
use regex::Regex;

/// SDK calls outside the store, and the IAM action each needs. Cognito's public sign-up and
/// sign-in operations (`sign_up`, `initiate_auth`, ...) need none.
const SDK_CALLS: &[(&str, &str)] = &[
    ("admin_add_user_to_group", "cognito-idp:AdminAddUserToGroup"),
    // PublishBatch is authorised as sns:Publish.
    ("publish_batch", "sns:Publish"),
    ("publish", "sns:Publish"),
    ("create_platform_endpoint", "sns:CreatePlatformEndpoint"),
    ("send_message", "sqs:SendMessage"),
    ("send_message_batch", "sqs:SendMessage"),
];

/// The DynamoDB SDK operations and transaction items in the store's code, and their actions.
const DYNAMODB_CALLS: &[(&str, &str)] = &[
    (r"\.get_item\(\)", "GetItem"),
    (r"\.batch_get_item\(\)", "BatchGetItem"),
    (r"\.transact_get_items\(\)", "GetItem"),
    (r"\.query\(\)", "Query"),
    (r"\.scan\(\)", "Scan"),
    (r"\.put_item\(\)", "PutItem"),
    (r"\.update_item\(\)", "UpdateItem"),
    (r"\.delete_item\(\)", "DeleteItem"),
    (r"\.batch_write_item\(\)", "BatchWriteItem"),
    (r"TransactWriteItem::builder\(\)\s*\.put\(", "PutItem"),
    (r"TransactWriteItem::builder\(\)\s*\.update\(", "UpdateItem"),
    (r"TransactWriteItem::builder\(\)\s*\.delete\(", "DeleteItem"),
    (r"TransactWriteItem::builder\(\)\s*\.condition_check\(", "ConditionCheckItem"),
];

/// Policy templates SAM expands, by what they grant.
const SAM_POLICY_TEMPLATES: &[(&str, &[&str])] = &[("SNSPublishMessagePolicy", &["sns:Publish"])];

/// The functions of a Rust file, by name, with their bodies (up to the next `fn`); test
/// modules left out.
fn rust_fns(path: &Path) -> Vec<(String, String)> {
    let source = std::fs::read_to_string(path).unwrap();
    let source = source.split("#[cfg(test)]").next().unwrap();
    let start = Regex::new(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?fn\s+(\w+)").unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in source.lines() {
        if let Some(c) = start.captures(line) {
            out.push((c[1].to_owned(), String::new()));
        }
        if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn rs_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rs_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every store function, with the DynamoDB actions it (and the store functions it calls) needs.
fn store_actions() -> HashMap<String, BTreeSet<String>> {
    let root = infra::repo_root();
    let mut fns: HashMap<String, Vec<String>> = HashMap::new();
    for path in rs_files(&root.join("shared/src/store")) {
        for (name, body) in rust_fns(&path) {
            fns.entry(name).or_default().push(body);
        }
    }
    let leaves: Vec<(Regex, &str)> = DYNAMODB_CALLS.iter().map(|(re, a)| (Regex::new(re).unwrap(), *a)).collect();
    // Inside the store, calls to its own functions go through `self`, a `tx` or a chain.
    let call = Regex::new(r"(?:\bself|\btx|store|\))\s*\.\s*(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let direct: HashMap<&String, (BTreeSet<String>, BTreeSet<String>)> = fns
        .iter()
        .map(|(name, bodies)| {
            let mut actions = BTreeSet::new();
            let mut callees = BTreeSet::new();
            for body in bodies {
                actions.extend(leaves.iter().filter(|(re, _)| re.is_match(body)).map(|(_, a)| format!("dynamodb:{a}")));
                callees.extend(
                    call.captures_iter(body).map(|c| c[1].to_owned()).filter(|c| fns.contains_key(c) && c != name),
                );
            }
            (name, (actions, callees))
        })
        .collect();
    let mut out = HashMap::new();
    for name in fns.keys() {
        let (mut seen, mut todo, mut actions) = (BTreeSet::new(), vec![name.clone()], BTreeSet::new());
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            let (a, callees) = &direct[&n];
            actions.extend(a.iter().cloned());
            todo.extend(callees.iter().cloned());
        }
        out.insert(name.clone(), actions);
    }
    out
}

/// The actions a function crate's code can need.
fn crate_actions(binary: &str, store: &HashMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let root = infra::repo_root();
    let store_call = Regex::new(r"(?:store|\btx)\s*\.\s*(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let any_call = Regex::new(r"\b(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let sdk_call = Regex::new(r"\.\s*(\w+)\(\)").unwrap();
    // The shared helpers that can reach the store, by function name.
    let helpers: HashMap<String, String> =
        ["closing.rs", "idempotency.rs"].iter().flat_map(|f| rust_fns(&root.join("shared/src").join(f))).collect();
    let add_store_calls = |body: &str, actions: &mut BTreeSet<String>| {
        for c in store_call.captures_iter(body) {
            actions.extend(store.get(&c[1]).into_iter().flatten().cloned());
        }
    };
    // A helper's store calls, and those of the helpers it calls (`close` -> `try_close`).
    let helper_actions = |name: &str, actions: &mut BTreeSet<String>| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![name.to_owned()]);
        while let Some(n) = todo.pop() {
            let Some(body) = helpers.get(&n).filter(|_| seen.insert(n.clone())) else { continue };
            add_store_calls(body, actions);
            todo.extend(any_call.captures_iter(body).map(|c| c[1].to_owned()));
        }
    };
    let mut actions = BTreeSet::new();
    for path in rs_files(&root.join("functions").join(binary).join("src")) {
        // The API contract (openapi.rs) is never in the Lambda binary.
        if path.file_name().is_some_and(|f| f == "openapi.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let source = source.split("#[cfg(test)]").next().unwrap();
        add_store_calls(source, &mut actions);
        for c in any_call.captures_iter(source) {
            helper_actions(&c[1], &mut actions);
        }
        for c in sdk_call.captures_iter(source) {
            actions.extend(SDK_CALLS.iter().filter(|(op, _)| *op == &c[1]).map(|(_, a)| (*a).to_owned()));
        }
        if source.contains("Secrets::load(") {
            actions.insert("ssm:GetParameters".into());
        }
    }
    actions
}

/// Every statement a function's role gets from the template: its `Policies` (both branches
/// of an `!If`) and the `AWS::IAM::Policy` resources naming its role.
fn statements(t: &Template, function: &str) -> (Vec<Value>, BTreeSet<String>) {
    let mut statements = Vec::new();
    let mut templates = BTreeSet::new();
    fn walk(v: &Value, statements: &mut Vec<Value>, templates: &mut BTreeSet<String>) {
        match v {
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, statements, templates)),
            Value::Tagged(tagged) => walk(&tagged.value, statements, templates),
            Value::Mapping(m) => {
                if let Some(Value::Sequence(s)) = m.get("Statement") {
                    statements.extend(s.iter().cloned());
                } else if let Some(Value::Sequence(s)) = m.get("Fn::If") {
                    s.iter().for_each(|i| walk(i, statements, templates));
                } else if m.len() == 1 && m.get("PolicyDocument").is_none() {
                    let name = m.keys().next().and_then(Value::as_str).unwrap_or_default();
                    templates.insert(name.to_owned());
                } else if let Some(doc) = m.get("PolicyDocument") {
                    walk(doc, statements, templates);
                }
            }
            _ => {}
        }
    }
    if let Some(policies) = t.resources[function].properties.get("Policies") {
        walk(policies, &mut statements, &mut templates);
    }
    let role = format!("{function}Role");
    for (_, policy) in t.of_kind("AWS::IAM::Policy") {
        let roles = policy.properties.get("Roles").and_then(Value::as_sequence).cloned().unwrap_or_default();
        if roles.iter().any(|r| referenced_id(r).as_deref() == Some(role.as_str())) {
            walk(policy.properties.get("PolicyDocument").unwrap(), &mut statements, &mut templates);
        }
    }
    // `- !Ref AWS::NoValue` in an !If branch is not a policy template.
    templates.retain(|t| t != "Ref");
    (statements, templates)
}

fn strings(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Sequence(items)) => items.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    }
}

fn granted(t: &Template, function: &str) -> BTreeSet<String> {
    let (statements, templates) = statements(t, function);
    let mut actions: BTreeSet<String> = statements
        .iter()
        .flat_map(|s| strings(s.get("Action")))
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    for name in templates {
        let (_, grants) = SAM_POLICY_TEMPLATES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{function}: policy template {name} is not in SAM_POLICY_TEMPLATES"));
        actions.extend(grants.iter().map(|a| (*a).to_owned()));
    }
    actions
}

#[test]
fn each_function_is_granted_exactly_the_actions_its_code_calls() {
    let t = Template::load(&infra::repo_root().join("template.yaml")).unwrap();
    let store = store_actions();
    let mut wrong = BTreeMap::new();
    for f in t.functions().unwrap() {
        let (granted, used) = (granted(&t, &f.logical_id), crate_actions(&f.binary, &store));
        if granted != used {
            let unused: Vec<_> = granted.difference(&used).collect();
            let missing: Vec<_> = used.difference(&granted).collect();
            wrong.insert(
                f.logical_id.clone(),
                format!("granted but never called {unused:?}, called but not granted {missing:?}"),
            );
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_function_may_act_on_resources_it_does_not_own() {
    let t = Template::load(&infra::repo_root().join("template.yaml")).unwrap();
    for f in t.functions().unwrap() {
        let (statements, _) = statements(&t, &f.logical_id);
        for s in &statements {
            let actions: Vec<String> =
                strings(s.get("Action")).iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
            for resource in strings(s.get("Resource")) {
                let (tag, target) = intrinsic(&resource).unwrap_or_default();
                assert!(target != "*", "{}: {actions:?} on every resource", f.logical_id);
                if actions.iter().any(|a| a.starts_with("cognito-idp:")) {
                    // This user pool only, not every pool of the account (userpool/*).
                    let pool = target.strip_suffix(".Arn").filter(|_| tag == "GetAtt");
                    let kind = pool.and_then(|p| t.resources.get(p)).map(|r| r.kind.as_str());
                    assert_eq!(kind, Some("AWS::Cognito::UserPool"), "{}: {actions:?} on {target}", f.logical_id);
                }
                if actions.iter().any(|a| a.starts_with("ssm:")) {
                    // Exactly the parameters its *_SECRET_PARAMETER variables name.
                    let named: Vec<String> = f
                        .env
                        .iter()
                        .filter(|(name, _)| name.ends_with("_SECRET_PARAMETER"))
                        .filter_map(|(_, v)| referenced_id(v))
                        .collect();
                    assert!(
                        named.iter().any(|p| target.ends_with(&format!(":parameter${{{p}}}"))),
                        "{}: ssm on {target}, its secrets are {named:?}",
                        f.logical_id
                    );
                }
            }
        }
    }
}
