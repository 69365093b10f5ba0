//! The targets `cargo test` builds no test binary of (`test = false` in their crate's
//! Cargo.toml, which saves linking one per function) hold no tests: a unit test added to one
//! would never run.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Every workspace target with `test = false`: its package and target names, its kind and
/// its root file.
fn untested_targets() -> Vec<(String, String, PathBuf)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--offline", "--format-version", "1"])
        .current_dir(infra::repo_root())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().unwrap() {
        for target in package["targets"].as_array().unwrap() {
            if target["test"] == false {
                let name = format!("{} {}", package["name"].as_str().unwrap(), target["name"].as_str().unwrap());
                let kind = target["kind"][0].as_str().unwrap().to_owned();
                found.push((name, kind, PathBuf::from(target["src_path"].as_str().unwrap())));
            }
        }
    }
    found
}

/// The files a target compiles: a binary its root file (none declares modules), a library
/// every file in its root's folder but the crate's binaries.
fn sources(kind: &str, root: &Path) -> Vec<PathBuf> {
    if kind == "bin" {
        return vec![root.to_owned()];
    }
    let mut files = Vec::new();
    let mut folders = vec![root.parent().unwrap().to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if path.is_dir() && name != "bin" {
                folders.push(path);
            } else if name.ends_with(".rs") && name != "main.rs" {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn targets_cargo_test_skips_hold_no_tests() {
    let targets = untested_targets();
    assert!(targets.len() >= 20, "the function crates' libraries and binaries: {targets:?}");
    let mut hidden = Vec::new();
    for (name, kind, root) in &targets {
        for file in sources(kind, root) {
            let code = std::fs::read_to_string(&file).unwrap();
            if ["#[cfg(test)]", "#[test]", "#[tokio::test"].iter().any(|m| code.contains(m)) {
                hidden.push(format!("{name} ({kind}): {}", file.display()));
            }
        }
    }
    assert!(hidden.is_empty(), "tests that would never run; drop `test = false` for:\n{}", hidden.join("\n"));
}
