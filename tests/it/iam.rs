//! Each function's IAM policy grants exactly the AWS actions its code can call, on the
//! resources it uses: read from `template.yaml` and from the sources.
//!
//! What a crate can call is derived from its code: the DynamoDB store methods it calls
//! (`store.<method>(`, directly or through `shared::app::closing` / `shared::domain::idempotency`), each
//! closed over the store's own calls down to the SDK operations and transaction items it
//! builds (TransactWriteItems and TransactGetItems are authorised item by item), each Query
//! with its target (the table, or the index whose constant the code names); the SDK
//! calls of other services it makes (`SDK_CALLS`); the S3 requests it presigns
//! (`PRESIGNED`, and listings); and `shared::secrets` (one `ssm:GetParameters`). Grants come from the function's `Policies` (both branches of an
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
    ("list_users", "cognito-idp:ListUsers"),
    ("admin_get_user", "cognito-idp:AdminGetUser"),
    ("admin_delete_user", "cognito-idp:AdminDeleteUser"),
    ("admin_user_global_sign_out", "cognito-idp:AdminUserGlobalSignOut"),
    ("decrypt", "kms:Decrypt"),
    // PublishBatch is authorised as sns:Publish.
    ("publish_batch", "sns:Publish"),
    ("publish", "sns:Publish"),
    ("create_platform_endpoint", "sns:CreatePlatformEndpoint"),
    ("send_message", "sqs:SendMessage"),
    ("send_message_batch", "sqs:SendMessage"),
    // Pushing to a WebSocket connection (API Gateway's Management API).
    ("post_to_connection", "execute-api:ManageConnections"),
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
    // Another item (a const, a type, an impl) ends a function's body.
    let item =
        Regex::new(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const|static|struct|enum|impl|mod|use|type|trait)\b").unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_fn = false;
    for line in source.lines() {
        if let Some(c) = start.captures(line) {
            out.push((c[1].to_owned(), String::new()));
            in_fn = true;
        } else if item.is_match(line) {
            in_fn = false;
        }
        if let (Some((_, body)), true) = (out.last_mut(), in_fn) {
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

/// The table's indexes (`IndexName`s of `AppTable`) by the store's constant naming each.
fn index_constants(t: &Template) -> Vec<(String, String)> {
    let indexes: Vec<String> = t.resources["AppTable"]
        .properties
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .unwrap()
        .iter()
        .filter_map(|i| i.get("IndexName").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let keys = std::fs::read_to_string(infra::repo_root().join("shared/src/store/keys.rs")).unwrap();
    // `pub const GSI1: &str = "GSI1";` and `pub const CATALOGUE_BY_PRICE: (&str, &str) = ("CatalogueByPrice", ...`
    let constant = Regex::new(r#"pub const (\w+): (?:&str|\(&str, &str\)) = \(?"([^"]+)""#).unwrap();
    constant
        .captures_iter(&keys)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .filter(|(_, value)| indexes.contains(value))
        .collect()
}

/// Every store function, with the DynamoDB actions it (and the store functions it calls)
/// needs. A Query is also recorded with its target, `dynamodb:Query on table` or
/// `dynamodb:Query on index/<name>`: an index is one whose constant the function (or a
/// function it calls, methods or not) names, when it reaches an `.index_name(` query.
fn store_actions(t: &Template) -> HashMap<String, BTreeSet<String>> {
    let root = infra::repo_root();
    let index_constants = index_constants(t);
    let mut fns: HashMap<String, Vec<String>> = HashMap::new();
    for path in rs_files(&root.join("shared/src/store")) {
        for (name, body) in rust_fns(&path) {
            fns.entry(name).or_default().push(body);
        }
    }
    let leaves: Vec<(Regex, &str)> = DYNAMODB_CALLS.iter().map(|(re, a)| (Regex::new(re).unwrap(), *a)).collect();
    // Inside the store, calls to its own functions go through `self`, a `tx` or a chain.
    let call = Regex::new(r"(?:\bself|\btx|store|\))\s*\.\s*(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let plain_call = Regex::new(r"\b(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let word = |name: &str| Regex::new(&format!(r"\b{name}\b")).unwrap();
    let index_words: Vec<(Regex, &String)> = index_constants.iter().map(|(c, index)| (word(c), index)).collect();
    struct Direct {
        actions: BTreeSet<String>,
        callees: BTreeSet<String>,
        /// Any call to another store function, method or not (where an index name may come from).
        plain_callees: BTreeSet<String>,
        indexes: BTreeSet<String>,
        queries_an_index: bool,
    }
    let direct: HashMap<&String, Direct> = fns
        .iter()
        .map(|(name, bodies)| {
            let mut d = Direct {
                actions: BTreeSet::new(),
                callees: BTreeSet::new(),
                plain_callees: BTreeSet::new(),
                indexes: BTreeSet::new(),
                queries_an_index: false,
            };
            for body in bodies {
                let code: String =
                    body.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
                d.actions
                    .extend(leaves.iter().filter(|(re, _)| re.is_match(&code)).map(|(_, a)| format!("dynamodb:{a}")));
                if code.contains(".query()") {
                    if code.contains(".index_name(") {
                        d.queries_an_index = true;
                    } else {
                        d.actions.insert("dynamodb:Query on table".into());
                    }
                }
                d.indexes.extend(index_words.iter().filter(|(re, _)| re.is_match(&code)).map(|(_, i)| (*i).clone()));
                let known = |c: &String| fns.contains_key(c) && c != name;
                d.callees.extend(call.captures_iter(&code).map(|c| c[1].to_owned()).filter(known));
                d.plain_callees.extend(plain_call.captures_iter(&code).map(|c| c[1].to_owned()).filter(known));
            }
            (name, d)
        })
        .collect();
    let closure = |start: &String, next: &dyn Fn(&Direct) -> &BTreeSet<String>| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![start.clone()]);
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(next(&direct[&n]).iter().cloned());
            }
        }
        seen
    };
    let mut out = HashMap::new();
    for name in fns.keys() {
        let reached = closure(name, &|d| &d.callees);
        let mut actions: BTreeSet<String> = reached.iter().flat_map(|n| direct[n].actions.iter().cloned()).collect();
        if reached.iter().any(|n| direct[n].queries_an_index) {
            let named = closure(name, &|d| &d.plain_callees);
            actions
                .extend(named.iter().flat_map(|n| &direct[n].indexes).map(|i| format!("dynamodb:Query on index/{i}")));
        }
        out.insert(name.clone(), actions);
    }
    out
}

/// The actions a function crate's code can need.
fn crate_actions(binary: &str, store: &HashMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let root = infra::repo_root();
    let store_call = Regex::new(r"(?:store|\btx)\s*\.\s*(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    // A call, or a definition (group 1 set), which is not one: `handle` defined here must not
    // pull in the `handle` of a linked crate.
    let any_call = Regex::new(r"(\bfn\s+)?\b(\w+)\s*(?:::<[^>]*>)?\(").unwrap();
    let calls = |body: &str| -> Vec<String> {
        any_call.captures_iter(body).filter(|c| c.get(1).is_none()).map(|c| c[2].to_owned()).collect()
    };
    // The shared helpers that can reach the store (`shared/src/app`, the idempotency replay),
    // by function name, and the functions of any function crate this one links.
    let app = root.join("shared/src/app");
    let mut helper_files: Vec<_> = rs_files(&app).into_iter().filter(|f| !f.starts_with(app.join("top_up"))).collect();
    helper_files.push(root.join("shared/src/http/idempotency.rs"));
    let mut helpers: HashMap<String, String> = helper_files.iter().flat_map(|f| rust_fns(f)).collect();
    // A module of `shared::app` the function names (`shared::app::top_up`) is its own: its
    // functions win a name they share with other modules' (`App::from_env`).
    let own_source: String = rs_files(&root.join("functions").join(binary).join("src"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let app_module = Regex::new(r"shared::app::([a-z_]+)").unwrap();
    let named: BTreeSet<String> = app_module.captures_iter(&own_source).map(|c| c[1].to_owned()).collect();
    for module in named {
        let dir = app.join(&module);
        let files = if dir.is_dir() { rs_files(&dir) } else { vec![dir.with_extension("rs")] };
        helpers.extend(files.iter().filter(|f| f.is_file()).flat_map(|f| rust_fns(f)));
    }
    let shared_helpers: BTreeSet<String> = helpers.keys().cloned().collect();
    for linked in linked_function_crates(binary) {
        let files = rs_files(&root.join("functions").join(linked).join("src"));
        for (name, body) in files.iter().filter(|p| !p.ends_with("openapi.rs")).flat_map(|p| rust_fns(p)) {
            helpers.entry(name).or_insert(body);
        }
    }
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
            add_other_calls(body, actions);
            todo.extend(calls(body));
        }
    };
    // Its own functions are scanned as its source, never looked up in a linked crate (its
    // main.rs calls its own `handle`, not top-up's).
    let own_files = rs_files(&root.join("functions").join(binary).join("src"));
    let own: BTreeSet<String> = own_files.iter().flat_map(|p| rust_fns(p)).map(|(name, _)| name).collect();
    let mut actions = BTreeSet::new();
    for path in own_files {
        // The API contract (openapi.rs) is never in the Lambda binary.
        if path.file_name().is_some_and(|f| f == "openapi.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let source = source.split("#[cfg(test)]").next().unwrap();
        add_store_calls(source, &mut actions);
        for name in calls(source).into_iter().filter(|n| !own.contains(n) || shared_helpers.contains(n)) {
            helper_actions(&name, &mut actions);
        }
        add_other_calls(source, &mut actions);
    }
    actions
}

/// Calls to AWS other than through the store: SDK operations and the secrets' one read.
fn add_other_calls(source: &str, actions: &mut BTreeSet<String>) {
    let sdk_call = Regex::new(r"\.\s*(\w+)\(\)").unwrap();
    for c in sdk_call.captures_iter(source) {
        actions.extend(SDK_CALLS.iter().filter(|(op, _)| *op == &c[1]).map(|(_, a)| (*a).to_owned()));
    }
    if source.contains("OnFirstUse::new(") {
        actions.insert("ssm:GetParameters".into());
    }
    // A presigned S3 request (`shared::app::images`) is no SDK call: the function signs a URL
    // that the app sends, and S3 authorises it as the signer, so the role needs the action
    // all the same. What is presigned is the method `presign` gets.
    let presign = Regex::new(r#"\bpresign\(\s*"(\w+)""#).unwrap();
    for c in presign.captures_iter(source) {
        actions.extend(PRESIGNED.iter().filter(|(method, _)| *method == &c[1]).map(|(_, a)| (*a).to_owned()));
    }
    // A listing (ListObjectsV2) is a GET of the bucket itself with `list-type`: S3
    // authorises it as ListBucket.
    if source.contains("(\"list-type\", \"2\")") {
        actions.insert("s3:ListBucket".into());
    }
}

/// Presigned S3 requests by method, and the action S3 checks the signer for (a HEAD is a GetObject).
const PRESIGNED: &[(&str, &str)] =
    &[("PUT", "s3:PutObject"), ("GET", "s3:GetObject"), ("HEAD", "s3:GetObject"), ("DELETE", "s3:DeleteObject")];

/// The function crates (directories under `functions/`) that `binary`'s Cargo.toml links.
fn linked_function_crates(binary: &str) -> Vec<String> {
    let root = infra::repo_root().join("functions");
    let manifest = std::fs::read_to_string(root.join(binary).join("Cargo.toml")).unwrap();
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let linked = manifest.lines().any(|l| l.starts_with(&format!("{name}.")) || l.starts_with(&format!("{name} ")));
        if name != binary && linked {
            out.push(name);
        }
    }
    out
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
    // Where it may Query: the table (`!GetAtt AppTable.Arn`) or an index (`${AppTable.Arn}/index/X`).
    let queries = |s: &&Value| strings(s.get("Action")).iter().any(|a| a.as_str() == Some("dynamodb:Query"));
    for resource in statements.iter().filter(queries).flat_map(|s| strings(s.get("Resource"))) {
        let (tag, target) = intrinsic(&resource).unwrap_or_default();
        match target.split_once("/index/") {
            Some((_, index)) => actions.insert(format!("dynamodb:Query on index/{index}")),
            None if tag == "GetAtt" => actions.insert("dynamodb:Query on table".into()),
            None => panic!("{function}: Query on {target}"),
        };
    }
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
    let store = store_actions(&t);
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
