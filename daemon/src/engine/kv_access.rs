//! The KV store as the KV tasks see it: a write goes through the writer, in one transaction with
//! its audit record, like every other change.

use futures::future::BoxFuture;
use serde_json::json;

use super::{Actor, Engine};
use crate::store::KvEntry;
use crate::tasks::{KvAccess, KvWrite};

pub(super) struct EngineKv(pub Engine);

impl KvAccess for EngineKv {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, String> {
        crate::kv::get(self.0.store(), namespace, key).map_err(|e| e.to_string())
    }

    fn keys(&self, namespace: &str) -> Result<Vec<String>, String> {
        let entries = crate::kv::list(self.0.store(), namespace).map_err(|e| e.to_string())?;
        Ok(entries.into_iter().map(|(k, _)| k).collect())
    }

    fn delete(&self, namespace: &str, key: &str, execution_id: &str) -> BoxFuture<'static, Result<bool, String>> {
        let engine = self.0.clone();
        let (namespace, key) = (namespace.to_string(), key.to_string());
        let audit = crate::audit::Entry {
            user: Actor::system().user,
            action: "kv.delete".into(),
            namespace: namespace.clone(),
            execution_id: execution_id.to_string(),
            values: json!({ "key": key }),
            result: "OK".into(),
            ..Default::default()
        };
        Box::pin(async move {
            engine
                .change(move |w| {
                    let existed = w.delete_kv(&namespace, &key)?;
                    if existed {
                        crate::audit::append(w, audit)?;
                    }
                    Ok(existed)
                })
                .await
                .map_err(|e| e.user_message())
        })
    }

    fn set(&self, write: KvWrite) -> BoxFuture<'static, Result<(), String>> {
        let engine = self.0.clone();
        Box::pin(async move {
            let audit = crate::audit::Entry {
                user: Actor::system().user,
                action: "kv.set".into(),
                namespace: write.namespace.clone(),
                execution_id: write.execution_id.clone(),
                values: json!({ "key": write.key, "type": write.entry.kind }),
                result: "OK".into(),
                ..Default::default()
            };
            engine
                .change(move |w| {
                    crate::kv::put(w, &write.namespace, &write.key, &write.entry, write.overwrite)?;
                    crate::audit::append(w, audit)?;
                    Ok(())
                })
                .await
                .map_err(|e| e.user_message())
        })
    }
}
