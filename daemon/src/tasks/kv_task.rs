//! `io.kestra.plugin.core.kv.Set`, `Get`, `Delete` and `GetKeys`.

use serde_json::{Map, Value};

use super::TaskServices;
use super::render::TaskRender;
use crate::auth::flow_scope::FlowAccess;
use crate::flow::{KvDeleteTask, KvGetKeysTask, KvGetTask, KvSetTask};

fn kv(s: &TaskServices) -> Result<std::sync::Arc<dyn super::KvAccess>, String> {
    s.kv.get()
        .cloned()
        .ok_or_else(|| "the KV store is not available to tasks in this daemon".to_string())
}

pub async fn set(t: &KvSetTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let key = r.text("key", &t.key)?;
    let namespace = r.opt("namespace", &t.namespace)?.unwrap_or_default();
    let value = r.value("value", &t.value)?;
    let value = match (&t.kv_type, value) {
        (Some(kind), Value::String(text)) => crate::kv::typed(&key, &text, kind).map_err(|e| e.to_string())?.0,
        (_, v) => v,
    };
    let ttl = r.opt("ttl", &t.ttl)?;
    let kv = kv(s)?;
    let ns = if namespace.is_empty() {
        r_namespace(r)
    } else {
        namespace
    };
    crate::expr::flow_may(s.expr.as_ref(), r.namespace(), &ns, FlowAccess::Write)?;
    let entry = crate::kv::entry(&key, value, ttl.as_deref()).map_err(|e| e.to_string())?;
    kv.set(super::KvWrite {
        namespace: ns.clone(),
        key: key.clone(),
        entry,
        overwrite: t.overwrite,
        execution_id: r.execution_id().to_string(),
    })
    .await?;
    r.log("INFO", format!("KV `{key}` set in namespace `{ns}`"));
    Ok(Map::new())
}

pub async fn get(t: &KvGetTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let key = r.text("key", &t.key)?;
    let namespace = r
        .opt("namespace", &t.namespace)?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| r_namespace(r));
    crate::expr::flow_may(s.expr.as_ref(), r.namespace(), &namespace, FlowAccess::Read)?;
    let kv = kv(s)?;
    let (ns2, key2) = (namespace.clone(), key.clone());
    let found = tokio::task::spawn_blocking(move || kv.get(&ns2, &key2))
        .await
        .map_err(|_| "KV read interrupted".to_string())??;
    let mut out = Map::new();
    match found {
        Some(e) => {
            out.insert("value".into(), e.value);
        }
        None if t.error_on_missing => return Err(format!("no KV entry `{key}` in namespace `{namespace}`")),
        None => {
            out.insert("value".into(), Value::Null);
        }
    }
    Ok(out)
}

pub async fn delete(t: &KvDeleteTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let key = r.text("key", &t.key)?;
    let namespace = target_namespace(r, &t.namespace)?;
    // Deleting is a write: the same reach as KV Set.
    crate::expr::flow_may(s.expr.as_ref(), r.namespace(), &namespace, FlowAccess::Write)?;
    let deleted = kv(s)?.delete(&namespace, &key, r.execution_id()).await?;
    if !deleted && t.error_on_missing {
        return Err(format!("no KV entry `{key}` in namespace `{namespace}` to delete"));
    }
    if deleted {
        r.log("INFO", format!("KV `{key}` deleted from namespace `{namespace}`"));
    }
    let mut out = Map::new();
    out.insert("deleted".into(), Value::Bool(deleted));
    Ok(out)
}

pub async fn keys(t: &KvGetKeysTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let prefix = r.opt("prefix", &t.prefix)?.unwrap_or_default();
    let namespace = target_namespace(r, &t.namespace)?;
    crate::expr::flow_may(s.expr.as_ref(), r.namespace(), &namespace, FlowAccess::Read)?;
    let kv = kv(s)?;
    let ns = namespace.clone();
    let keys = tokio::task::spawn_blocking(move || kv.keys(&ns))
        .await
        .map_err(|_| "KV read interrupted".to_string())??;
    let keys: Vec<Value> = keys
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .map(Value::String)
        .collect();
    let mut out = Map::new();
    out.insert("keys".into(), Value::Array(keys));
    Ok(out)
}

/// The rendered `namespace` property, or the flow's own when it is absent or empty.
fn target_namespace(r: &mut TaskRender<'_>, namespace: &Option<String>) -> Result<String, String> {
    Ok(r.opt("namespace", namespace)?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| r_namespace(r)))
}

fn r_namespace(r: &TaskRender<'_>) -> String {
    r.namespace().to_string()
}
