//! YAML helpers shared by flow parsing and input typing: the nesting bound and YAML → JSON.

pub mod depth;

use serde_json::Value;
use serde_yaml::Value as Yaml;

/// A YAML value shortened to one line of at most 40 characters, for error messages.
pub(crate) fn short(v: &Yaml) -> String {
    let s = serde_yaml::to_string(v).unwrap_or_default();
    let s = s.trim();
    if s.len() > 40 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(37).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s.to_string()
    }
}

/// A key or scalar as text; other values shortened to one line.
pub(crate) fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => short(other),
    }
}

/// YAML → JSON value, keeping numbers and booleans typed.
pub fn yaml_to_json(v: &Yaml) -> Value {
    match v {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Mapping(m) => Value::Object(m.iter().map(|(k, v)| (scalar_text(k), yaml_to_json(v))).collect()),
        Yaml::Tagged(t) => yaml_to_json(&t.value),
    }
}
