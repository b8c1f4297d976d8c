//! Typed KV entries per namespace: what `kv()`, the KV tasks and `tollgate kv` read and write.

use serde_json::Value;

use crate::engine::ids::now_ms;
use crate::flow::duration::parse_iso8601;
use crate::store::{KvEntry, Store, StoreError, Writer};

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("invalid KV key `{0}`: use letters, digits, `.`, `_` and `-`")]
    BadKey(String),
    #[error("value of `{key}` is not a valid {kind}: {message}")]
    BadValue { key: String, kind: String, message: String },
    #[error("unknown KV type `{0}`: use STRING, NUMBER, BOOLEAN or JSON")]
    BadKind(String),
    #[error("invalid ttl: {0}")]
    BadTtl(String),
    #[error("KV key `{0}` already exists and overwrite is false")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 255
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Types a value as the user wrote it; `kind` empty infers it.
pub fn typed(key: &str, raw: &str, kind: &str) -> Result<(Value, String), KvError> {
    let bad = |k: &str, m: String| KvError::BadValue {
        key: key.into(),
        kind: k.into(),
        message: m,
    };
    match kind.to_ascii_uppercase().as_str() {
        "" => {
            let inferred = match serde_json::from_str::<Value>(raw.trim()) {
                Ok(v @ Value::Number(_)) => (v, "NUMBER"),
                Ok(v @ Value::Bool(_)) => (v, "BOOLEAN"),
                Ok(v @ (Value::Object(_) | Value::Array(_))) => (v, "JSON"),
                _ => (Value::String(raw.to_string()), "STRING"),
            };
            Ok((inferred.0, inferred.1.into()))
        }
        "STRING" => Ok((Value::String(raw.to_string()), "STRING".into())),
        "NUMBER" => match serde_json::from_str::<Value>(raw.trim()) {
            Ok(v @ Value::Number(_)) => Ok((v, "NUMBER".into())),
            _ => Err(bad("NUMBER", format!("`{raw}` is not a number"))),
        },
        "BOOLEAN" => match raw.trim().to_ascii_lowercase().as_str() {
            "true" => Ok((Value::Bool(true), "BOOLEAN".into())),
            "false" => Ok((Value::Bool(false), "BOOLEAN".into())),
            _ => Err(bad("BOOLEAN", format!("`{raw}` is not true or false"))),
        },
        "JSON" => serde_json::from_str::<Value>(raw)
            .map(|v| (v, "JSON".into()))
            .map_err(|e| bad("JSON", e.to_string())),
        other => Err(KvError::BadKind(other.into())),
    }
}

/// Kind of a JSON value already typed (from a KV Set task).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Number(_) => "NUMBER",
        Value::Bool(_) => "BOOLEAN",
        Value::String(_) => "STRING",
        _ => "JSON",
    }
}

/// A checked entry for `key`, expiring after `ttl` (ISO-8601) when given.
pub fn entry(key: &str, value: Value, ttl: Option<&str>) -> Result<KvEntry, KvError> {
    if !valid_key(key) {
        return Err(KvError::BadKey(key.into()));
    }
    let now = now_ms();
    let expires_ms = match ttl.filter(|t| !t.is_empty()) {
        Some(t) => Some(now + parse_iso8601(t).map_err(KvError::BadTtl)?.as_millis() as i64),
        None => None,
    };
    Ok(KvEntry {
        kind: kind_of(&value).into(),
        value,
        expires_ms,
        updated_ms: now,
    })
}

/// Writes `entry` inside the caller's transaction; refuses (writing nothing) to replace a live
/// entry unless `overwrite`.
pub fn put(w: &mut Writer, namespace: &str, key: &str, entry: &KvEntry, overwrite: bool) -> Result<(), KvError> {
    if !overwrite
        && w.kv(namespace, key)?
            .is_some_and(|e| e.expires_ms.is_none_or(|t| t > entry.updated_ms))
    {
        return Err(KvError::Exists(key.into()));
    }
    w.put_kv(namespace, key, entry)?;
    Ok(())
}

/// A live entry (expired ones read as absent).
pub fn get(store: &Store, namespace: &str, key: &str) -> Result<Option<KvEntry>, KvError> {
    let e = store.read()?.kv(namespace, key)?;
    Ok(e.filter(|e| e.expires_ms.is_none_or(|t| t > now_ms())))
}

pub fn list(store: &Store, namespace: &str) -> Result<Vec<(String, KvEntry)>, KvError> {
    let now = now_ms();
    Ok(store
        .read()?
        .kv_list(namespace)?
        .into_iter()
        .filter(|(_, e)| e.expires_ms.is_none_or(|t| t > now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed() {
        assert_eq!(typed("k", "42", "").unwrap(), (Value::from(42), "NUMBER".into()));
        assert_eq!(typed("k", "true", "").unwrap(), (Value::Bool(true), "BOOLEAN".into()));
        assert_eq!(
            typed("k", "hello", "").unwrap(),
            (Value::from("hello"), "STRING".into())
        );
        assert_eq!(
            typed("k", "42", "string").unwrap(),
            (Value::from("42"), "STRING".into())
        );
        assert!(typed("k", "x", "NUMBER").unwrap_err().to_string().contains("`k`"));
        assert!(typed("k", "{", "JSON").is_err());
        assert!(typed("k", "1", "FLOAT").is_err());
    }

    /// What the writer does for a KV change, in a transaction of its own.
    fn set(
        store: &Store,
        ns: &str,
        key: &str,
        value: Value,
        ttl: Option<&str>,
        overwrite: bool,
    ) -> Result<KvEntry, KvError> {
        let e = entry(key, value, ttl)?;
        store.write(|w| put(w, ns, key, &e, overwrite))?;
        Ok(e)
    }

    #[test]
    fn round_trip_expiry_and_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        set(
            &store,
            "hr",
            "HR_API_ENDPOINT",
            Value::from("http://127.0.0.1:9"),
            None,
            true,
        )
        .unwrap();
        assert_eq!(
            get(&store, "hr", "HR_API_ENDPOINT").unwrap().unwrap().value,
            "http://127.0.0.1:9"
        );
        assert!(
            get(&store, "hr.ops", "HR_API_ENDPOINT").unwrap().is_none(),
            "KV is per namespace"
        );
        assert!(matches!(
            set(&store, "hr", "HR_API_ENDPOINT", Value::from(1), None, false),
            Err(KvError::Exists(_))
        ));
        set(&store, "hr", "short", Value::from(1), Some("PT0.001S"), true).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(get(&store, "hr", "short").unwrap().is_none());
        assert_eq!(list(&store, "hr").unwrap().len(), 1);
        assert!(store.write(|w| w.delete_kv("hr", "HR_API_ENDPOINT")).unwrap());
        assert!(matches!(
            set(&store, "hr", "bad key", Value::Null, None, true),
            Err(KvError::BadKey(_))
        ));
    }
}
