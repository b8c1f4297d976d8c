//! Namespace KV entries and secrets: admin only; every change is audited in its transaction
//! (secret values never are).

use serde_json::json;

use super::{Ops, Target};
use crate::audit::Entry;
use crate::auth::{Principal, Role};
use crate::engine::{EngineError, Result};
use crate::kv::{self, KvError};
use crate::store::KvEntry;

impl From<KvError> for EngineError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Store(s) => EngineError::Store(s),
            KvError::Exists(_) => EngineError::AlreadyExists(e.to_string()),
            other => EngineError::InvalidArgument(other.to_string()),
        }
    }
}

fn check_namespace(ns: &str) -> Result<()> {
    if crate::flow::parse::valid_namespace(ns) {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!("invalid namespace `{ns}`")))
    }
}

fn check_secret_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!("invalid secret name `{name}`")))
    }
}

/// The audit record of a KV or secret change.
fn change_entry(p: &Principal, action: &str, namespace: &str, values: serde_json::Value) -> Entry {
    Entry {
        user: p.user.clone(),
        action: action.into(),
        namespace: namespace.into(),
        values,
        result: "OK".into(),
        ..Default::default()
    }
}

impl Ops {
    pub async fn kv_get(&self, p: &Principal, namespace: &str, key: &str) -> Result<KvEntry> {
        self.authorize(p, Role::Admin, "kv.read", Target::namespace(namespace))
            .await?;
        let (ns, k) = (namespace.to_string(), key.to_string());
        let now = crate::engine::ids::now_ms();
        self.read_store(move |r| {
            r.kv(&ns, &k)?
                .filter(|e| e.expires_ms.is_none_or(|t| t > now))
                .ok_or_else(|| EngineError::NotFound(format!("no KV entry `{k}` in namespace `{ns}`")))
        })
        .await
    }

    pub async fn kv_list(&self, p: &Principal, namespace: &str) -> Result<Vec<(String, KvEntry)>> {
        self.authorize(p, Role::Admin, "kv.read", Target::namespace(namespace))
            .await?;
        let ns = namespace.to_string();
        let now = crate::engine::ids::now_ms();
        self.read_store(move |r| {
            Ok(r.kv_list(&ns)?
                .into_iter()
                .filter(|(_, e)| e.expires_ms.is_none_or(|t| t > now))
                .collect())
        })
        .await
    }

    /// Sets a KV entry typed as `kind` (empty: inferred), expiring after `ttl` when given.
    pub async fn kv_set(
        &self,
        p: &Principal,
        namespace: &str,
        key: &str,
        raw: &str,
        kind: &str,
        ttl: Option<&str>,
    ) -> Result<KvEntry> {
        check_namespace(namespace)?;
        self.authorize(p, Role::Admin, "kv.set", Target::namespace(namespace))
            .await?;
        let (value, _) = kv::typed(key, raw, kind)?;
        let entry = kv::entry(key, value, ttl)?;
        let audit = change_entry(p, "kv.set", namespace, json!({ "key": key, "type": entry.kind }));
        let (ns, k) = (namespace.to_string(), key.to_string());
        self.engine
            .change(move |w| {
                kv::put(w, &ns, &k, &entry, true)?;
                crate::audit::append(w, audit)?;
                Ok(entry)
            })
            .await
    }

    /// Deletes a KV entry; `false` when there was none (nothing recorded then).
    pub async fn kv_delete(&self, p: &Principal, namespace: &str, key: &str) -> Result<bool> {
        let (ns, k) = (namespace.to_string(), key.to_string());
        self.delete_audited(p, "kv.delete", namespace, json!({ "key": key }), move |w| {
            w.delete_kv(&ns, &k)
        })
        .await
    }

    /// Authorizes an admin's delete, runs it in the writer and audits it when something went.
    async fn delete_audited(
        &self,
        p: &Principal,
        action: &str,
        namespace: &str,
        what: serde_json::Value,
        delete: impl FnOnce(&mut crate::store::Writer) -> std::result::Result<bool, crate::store::StoreError>
        + Send
        + 'static,
    ) -> Result<bool> {
        self.authorize(p, Role::Admin, action, Target::namespace(namespace))
            .await?;
        let audit = change_entry(p, action, namespace, what);
        self.engine
            .change(move |w| {
                let existed = delete(w)?;
                if existed {
                    crate::audit::append(w, audit)?;
                }
                Ok(existed)
            })
            .await
    }

    /// Seals and stores a secret; the audit names it, never its value.
    pub async fn secret_set(&self, p: &Principal, namespace: &str, name: &str, value: &str) -> Result<()> {
        check_namespace(namespace)?;
        self.authorize(p, Role::Admin, "secret.set", Target::namespace(namespace))
            .await?;
        check_secret_name(name)?;
        let sealed = self.secrets.seal(value);
        let audit = change_entry(p, "secret.set", namespace, json!({ "name": name }));
        let (ns, n) = (namespace.to_string(), name.to_string());
        self.engine
            .change(move |w| {
                w.put_secret_sealed(&ns, &n, &sealed)?;
                crate::audit::append(w, audit)?;
                Ok(())
            })
            .await
    }

    pub async fn secret_names(&self, p: &Principal, namespace: &str) -> Result<Vec<String>> {
        self.authorize(p, Role::Admin, "secret.read", Target::namespace(namespace))
            .await?;
        let ns = namespace.to_string();
        self.read_store(move |r| Ok(r.secret_names(&ns)?)).await
    }

    pub async fn secret_delete(&self, p: &Principal, namespace: &str, name: &str) -> Result<bool> {
        let (ns, n) = (namespace.to_string(), name.to_string());
        self.delete_audited(p, "secret.delete", namespace, json!({ "name": name }), move |w| {
            w.delete_secret(&ns, &n)
        })
        .await
    }
}
