//! Lambda's event filtering (`FilterCriteria`), as far as the local stream poller plays it:
//! the template is checked against it when loaded, the poller matches records with it.

use anyhow::{Result, bail};
use serde_json::Value;

/// The filter-rule operators [`matches`] plays; a template using others fails to load
/// rather than be filtered differently from Lambda.
const OPERATORS: [&str; 3] = ["prefix", "exists", "anything-but"];

/// Checks that a `FilterCriteria` pattern uses only what [`matches`] plays.
pub fn check_pattern(pattern: &Value) -> Result<()> {
    let Value::Object(fields) = pattern else { bail!("a pattern is a JSON object") };
    for (key, rule) in fields {
        match rule {
            Value::Object(_) => check_pattern(rule)?,
            Value::Array(values) => {
                for v in values {
                    if let Value::Object(op) = v {
                        let [(name, _)] = op.iter().collect::<Vec<_>>()[..] else {
                            bail!("{key}: one operator per rule")
                        };
                        if !OPERATORS.contains(&name.as_str()) {
                            bail!("{key}: operator {name} is not played by the local stream poller");
                        }
                    }
                }
            }
            _ => bail!("{key}: a rule is an array of values or a nested pattern"),
        }
    }
    Ok(())
}

/// Whether an event matches any of the patterns (no patterns: every event does).
pub fn matches_any(patterns: &[Value], event: &Value) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, event))
}

/// Lambda event filtering: every field of the pattern matches; an array lists the values
/// (or `prefix` / `exists` / `anything-but` rules) the field may have.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else { return false };
    fields.iter().all(|(key, rule)| {
        let value = event.get(key);
        match rule {
            Value::Object(_) => value.is_some_and(|v| matches(rule, v)),
            Value::Array(options) => options.iter().any(|option| value_matches(option, value)),
            _ => false,
        }
    })
}

fn value_matches(option: &Value, value: Option<&Value>) -> bool {
    let Value::Object(op) = option else { return value == Some(option) };
    match op.iter().next() {
        Some((name, Value::String(prefix))) if name == "prefix" => {
            value.and_then(Value::as_str).is_some_and(|s| s.starts_with(prefix.as_str()))
        }
        Some((name, Value::Bool(exists))) if name == "exists" => value.is_some() == *exists,
        Some((name, not)) if name == "anything-but" => value.is_some_and(|v| match not {
            Value::Array(list) => !list.contains(v),
            other => v != other,
        }),
        _ => false,
    }
}
