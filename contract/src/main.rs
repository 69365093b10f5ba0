//! `cargo run -p api-contract`: prints the OpenAPI document (the local stack also serves it).

fn main() {
    println!("{}", serde_json::to_string_pretty(&api_contract::document()).expect("the document serialises"));
}
