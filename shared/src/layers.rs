//! The layering of this crate, checked: which way imports may point (see the crate doc and
//! `docs/architecture.md`), and no import circle between files. Read from the source, so a
//! `crate::store` in a domain file fails here before review. Test modules and comments are
//! not imports; a parent module's declarations and re-exports of its children are not either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level part may import, besides itself.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("store", &["domain", "config"]),
    ("http", &["domain", "store", "config"]),
    ("providers", &["domain", "outbound", "signature", "config", "secrets"]),
    ("app", &["domain", "store", "http", "providers", "config", "secrets", "outbound", "signature"]),
    ("config", &["tls"]),
    ("tls", &["outbound"]),
    ("outbound", &[]),
    ("secrets", &["config"]),
    ("signature", &[]),
    ("logging", &[]),
];

type Module = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code that counts: up to the file's test module, without comment lines.
fn code(text: &str) -> String {
    let mut lines = Vec::new();
    let all: Vec<&str> = text.lines().collect();
    for (i, line) in all.iter().enumerate() {
        if *line == "#[cfg(test)]" && all.get(i + 1).is_some_and(|next| next.starts_with("mod ")) {
            break;
        }
        if !line.trim_start().starts_with("//") {
            lines.push(*line);
        }
    }
    lines.join("\n")
}

/// Each `crate::a::b` and `super::a` path in `code`, as segments from the crate root.
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let mut out = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        // `super` of `a/b.rs` (module a::b) is `a`; of `a/mod.rs` (module a) it is the root.
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
                let segment = &tail[..end];
                if segment.is_empty() || !segment.starts_with(|c: char| c.is_ascii_lowercase()) {
                    break;
                }
                path.push(segment.to_owned());
                match tail[end..].strip_prefix("::") {
                    Some(next) => tail = next,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

/// Module to the modules it imports (the longest known prefix of each path).
fn imports(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    source_files(root, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(root, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(root, file);
        if module == ["layers"] {
            continue; // this check, whose fixtures name every layer
        }
        let text = std::fs::read_to_string(file).unwrap();
        let mut targets = BTreeSet::new();
        for path in paths(&code(&text), &module) {
            let target = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap();
            // The root only declares and re-exports; a parent declares its children.
            if target.is_empty() || target == module || target.starts_with(&module) {
                continue;
            }
            targets.insert(target);
        }
        graph.insert(module, targets);
    }
    graph
}

fn circle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(at) = stack.iter().position(|m| m == node) {
            return Some(stack[at..].iter().cloned().chain([node.clone()]).collect());
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn shown(m: &Module) -> String {
    m.join("::")
}

#[test]
fn imports_point_down_the_layers() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut upward = Vec::new();
    for (from, targets) in imports(&src()) {
        let Some(layer) = from.first() else { continue };
        let may = allowed.get(layer.as_str()).unwrap_or_else(|| panic!("{layer} is not in ALLOWED"));
        for to in targets {
            if to[0] != *layer && !may.contains(&to[0].as_str()) {
                upward.push(format!("{} -> {}", shown(&from), shown(&to)));
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layering: {upward:?}");
}

#[test]
fn no_import_circle_between_files() {
    let graph = imports(&src());
    assert!(graph.len() > 60, "{} modules read", graph.len());
    if let Some(found) = circle(&graph) {
        panic!("import circle: {}", found.iter().map(shown).collect::<Vec<_>>().join(" -> "));
    }
}

/// The local stack (`infra/src`) too: the template's reader, the provisioner and the pollers.
#[test]
fn no_import_circle_in_the_local_stack() {
    let graph = imports(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/src"));
    assert!(graph.len() > 15, "{} modules read", graph.len());
    if let Some(found) = circle(&graph) {
        panic!("import circle: {}", found.iter().map(shown).collect::<Vec<_>>().join(" -> "));
    }
}

#[test]
fn the_checks_see_what_they_look_for() {
    let m = |s: &str| s.split("::").map(str::to_owned).collect::<Module>();
    let code = code(
        "use crate::store::Store;\n// crate::http::x\nfn f() { super::keys::MAX; }\n#[cfg(test)]\nmod tests { crate::app::x }",
    );
    assert_eq!(paths(&code, &m("domain::booking")), [m("store"), m("domain::keys")]);
    let graph: BTreeMap<Module, BTreeSet<Module>> =
        [(m("a"), [m("b")].into()), (m("b"), [m("c")].into()), (m("c"), [m("a")].into())].into();
    assert_eq!(circle(&graph), Some(vec![m("a"), m("b"), m("c"), m("a")]));
}
