//! Kestra's deprecated state store tasks (`io.kestra.plugin.core.state.Set`, `Get`, `Delete`),
//! kept on the KV store: a state is a JSON object under a `state.` key of the flow's namespace,
//! per flow unless `namespace: true`, per loop value unless `taskrunValue: false`, as in Kestra.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::render::TaskRender;
use super::{KvWrite, TaskServices};
use crate::flow::{StateOp, StateTask};

pub async fn run(t: &StateTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let kv =
        s.kv.get()
            .cloned()
            .ok_or_else(|| "the KV store is not available to tasks in this daemon".to_string())?;
    let name = r.text("name", t.name.as_deref().unwrap_or("default"))?;
    let key = state_key(r, t, &name);
    let namespace = r.namespace().to_string();
    let read = {
        let (kv, ns, key) = (kv.clone(), namespace.clone(), key.clone());
        move || async move {
            tokio::task::spawn_blocking(move || kv.get(&ns, &key))
                .await
                .map_err(|_| "state read interrupted".to_string())?
        }
    };
    let mut out = Map::new();
    match t.op {
        StateOp::Get => match read().await? {
            Some(entry) => {
                let count = entry.value.as_object().map_or(0, Map::len);
                out.insert("data".into(), entry.value);
                out.insert("count".into(), count.into());
            }
            None if t.error_on_missing => return Err(format!("no state `{name}` for this flow")),
            None => {
                out.insert("data".into(), Value::Object(Map::new()));
                out.insert("count".into(), 0.into());
            }
        },
        StateOp::Set => {
            let data = match &t.data {
                Some(d) => r.value("data", d)?,
                None => Value::Object(Map::new()),
            };
            let Value::Object(data) = data else {
                return Err("`data` must be a mapping".into());
            };
            let mut merged = match read().await? {
                Some(e) => e.value.as_object().cloned().unwrap_or_default(),
                None => Map::new(),
            };
            merged.extend(data);
            let count = merged.len();
            let entry = crate::kv::entry(&key, Value::Object(merged), None).map_err(|e| e.to_string())?;
            kv.set(KvWrite {
                namespace,
                key: key.clone(),
                entry,
                overwrite: true,
                execution_id: r.execution_id().to_string(),
            })
            .await?;
            out.insert("count".into(), count.into());
            out.insert("key".into(), key.into());
        }
        StateOp::Delete => {
            let deleted = kv.delete(&namespace, &key, r.execution_id()).await?;
            if !deleted && t.error_on_missing {
                return Err(format!("no state `{name}` for this flow to delete"));
            }
            out.insert("deleted".into(), deleted.into());
        }
    }
    Ok(out)
}

/// `state.[flowId.]name[.value]`, each part kept when it is a valid KV key word and hashed otherwise.
fn state_key(r: &TaskRender<'_>, t: &StateTask, name: &str) -> String {
    let vars = r.vars();
    let mut parts = vec!["state".to_string()];
    if !t.namespace {
        parts.push(word(vars["flow"]["id"].as_str().unwrap_or("flow")));
    }
    parts.push(word(name));
    if t.taskrun_value
        && let Some(v) = vars["taskrun"]["value"].as_str().filter(|v| !v.is_empty())
    {
        parts.push(word(v));
    }
    parts.join(".")
}

fn word(s: &str) -> String {
    let plain =
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if plain {
        s.to_string()
    } else {
        format!("h{}", &hex::encode(Sha256::digest(s.as_bytes()))[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::word;

    #[test]
    fn words_outside_the_kv_alphabet_are_hashed_stably() {
        assert_eq!(word("default"), "default");
        assert_eq!(word("a b"), word("a b"));
        assert!(word("a b").starts_with('h') && word("a b").len() == 17);
        assert_ne!(word("a b"), word("a.b"));
    }
}
