//! Masking of secret values in logs, outputs and errors, shared by the engine, the task runners
//! and the API.

use serde_json::Value;

/// Replaces every known secret value with `******`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(s.as_str(), "******");
    }
    out
}

/// Masks every secret value inside a JSON document.
pub fn mask_value(v: &Value, secrets: &[String]) -> Value {
    match v {
        Value::String(s) => Value::String(mask(s, secrets)),
        Value::Array(items) => Value::Array(items.iter().map(|i| mask_value(i, secrets)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), mask_value(v, secrets))).collect()),
        other => other.clone(),
    }
}
