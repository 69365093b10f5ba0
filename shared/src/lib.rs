//! The AstroKiran domain crate, in layers (imports point down this list, never up):
//!
//! - [`app`]: what composes the store and the domain for several functions (closing a
//!   consultation, setting up an account, crediting a top-up, the `App` a function keeps
//!   between invocations).
//! - `providers` (feature `outbound`): the Razorpay and Digio clients, and (feature `agora`)
//!   Agora's RTC tokens; they import the domain and the plumbing only.
//! - [`http`]: lambda_http glue: route tables, caller claims, JSON bodies, the one
//!   error-to-response mapping ([`ApiError`]), `Idempotency-Key` and replay, the OpenAPI
//!   building blocks.
//! - [`store`]: the only code that talks to DynamoDB; its key and access-pattern table.
//! - [`domain`]: types that cannot hold invalid values ([`Phone`], [`Money`], [`UserType`]),
//!   the business rules as plain functions, the events. Pure: no AWS, HTTP, store or
//!   environment.
//!
//! Beside them, plumbing every layer may use: [`config`], [`logging`], [`signature`], [`tls`],
//! and behind cargo features `outbound` (the third-party HTTPS client) and `secrets`. The
//! layering is checked by a test (`layers` below).

pub mod app;
pub mod config;
pub mod domain;
pub mod http;
#[cfg(test)]
mod layers;
pub mod logging;
#[cfg(feature = "outbound")]
pub mod outbound;
#[cfg(any(feature = "outbound", feature = "agora"))]
pub mod providers;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod signature;
pub mod store;
pub mod tls;

pub use domain::money::Money;
pub use domain::phone::Phone;
pub use domain::user::{Email, KycStatus, PersonName, ProfileStatus, UserId, UserType};
pub use http::error::ApiError;

/// No function crate depends on another: what two functions share lives here (in `app` or
/// `providers`), so each function builds and deploys alone. Read from the manifests, a line
/// scan of their dependency tables (`name = ...`, `name.workspace = ...`, `[dependencies.name]`).
#[cfg(test)]
mod function_crates {
    use std::path::{Path, PathBuf};

    fn functions_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions")
    }

    /// The function crates a manifest's dependency tables name.
    fn function_dependencies(manifest: &str, functions: &[String]) -> Vec<String> {
        let mut in_dependencies = false;
        let mut found = Vec::new();
        for line in manifest.lines().map(str::trim) {
            if let Some(table) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let table = table.trim();
                in_dependencies = table.ends_with("dependencies");
                // `[dependencies.name]`, `[target.'cfg(...)'.dependencies.name]`
                if let Some((_, name)) = table.rsplit_once("dependencies.") {
                    found.extend(functions.iter().filter(|f| *f == name.trim()).cloned());
                }
                continue;
            }
            if !in_dependencies || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else { continue };
            let name = key.split('.').next().unwrap_or_default().trim();
            // A renamed dependency names its crate in `package = "..."`.
            let package = value.split("package").nth(1).and_then(|rest| rest.split('"').nth(1));
            found.extend(functions.iter().filter(|f| *f == name || Some(f.as_str()) == package).cloned());
        }
        found
    }

    #[test]
    fn no_function_depends_on_another() {
        let mut functions: Vec<String> = std::fs::read_dir(functions_dir())
            .expect("functions/ beside shared/")
            .map(|entry| entry.unwrap().path())
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        functions.sort();
        assert!(functions.len() > 10, "functions found: {functions:?}");
        let arrows: Vec<String> = functions
            .iter()
            .flat_map(|function| {
                let manifest = std::fs::read_to_string(functions_dir().join(function).join("Cargo.toml")).unwrap();
                function_dependencies(&manifest, &functions).into_iter().map(move |to| format!("{function} -> {to}"))
            })
            .collect();
        assert!(arrows.is_empty(), "a function crate depends on another (share it through shared/): {arrows:?}");
    }

    #[test]
    fn reads_each_way_a_manifest_names_a_dependency() {
        let functions = ["top-up".to_owned(), "book".to_owned()];
        for manifest in [
            "[dependencies]\ntop-up.workspace = true",
            "[dependencies]\ntop-up = { path = \"../top-up\" }",
            "[dev-dependencies]\npay = { workspace = true, package = \"top-up\" }",
            "[dependencies.top-up]\nworkspace = true",
        ] {
            assert_eq!(function_dependencies(manifest, &functions), ["top-up"], "{manifest}");
        }
        let clean = "[package]\nname = \"top-up\"\n[dependencies]\nshared = { workspace = true }\n# top-up = 1\n[features]\nbook = []";
        assert!(function_dependencies(clean, &functions).is_empty());
    }
}
