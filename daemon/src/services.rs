//! What templates and tasks look up in the running daemon: secrets, KV entries, app links.

use std::sync::Arc;

use serde_json::Value;

use crate::engine::LogLine;
use crate::engine::ids::now_ms;
use crate::expr::ExprServices;
use crate::secrets::{SecretBox, namespace_chain};
use crate::store::{KvEntry, Store};

/// The daemon's lookups, backed by the store.
pub struct DaemonServices {
    store: Store,
    secrets: Arc<SecretBox>,
    /// Base URL people open (`--external-url`), without a trailing slash.
    external_url: String,
    tenant: String,
}

impl DaemonServices {
    pub fn new(store: Store, secrets: Arc<SecretBox>, external_url: String, tenant: String) -> DaemonServices {
        DaemonServices {
            store,
            secrets,
            external_url: external_url.trim_end_matches('/').to_string(),
            tenant,
        }
    }

    /// A live KV entry (expired entries read as absent).
    pub fn kv_entry(&self, namespace: &str, key: &str) -> Option<KvEntry> {
        let entry = self.store.read().ok()?.kv(namespace, key).ok().flatten()?;
        if entry.expires_ms.is_some_and(|t| t <= now_ms()) {
            None
        } else {
            Some(entry)
        }
    }
}

impl ExprServices for DaemonServices {
    fn secret(&self, namespace: &str, name: &str) -> Option<String> {
        let r = self.store.read().ok()?;
        for ns in namespace_chain(namespace) {
            if let Ok(Some(sealed)) = r.secret_sealed(&ns, name) {
                match self.secrets.unseal(name, &sealed) {
                    Ok(v) => return Some(v),
                    Err(e) => {
                        tracing::error!(namespace = %ns, error = %e, "secret unreadable");
                        return None;
                    }
                }
            }
        }
        None
    }

    fn kv(&self, namespace: &str, key: &str) -> Option<Value> {
        self.kv_entry(namespace, key).map(|e| e.value)
    }

    fn flow_allowed(&self, from: &str, target: &str, role: crate::auth::Role) -> bool {
        match self.store.read().and_then(|r| r.bindings()) {
            Ok(bindings) => crate::auth::flow_scope::allowed_by(&bindings, from, target, role),
            Err(e) => {
                tracing::error!(error = %e, "cannot read role bindings; the flow is refused");
                false
            }
        }
    }

    fn app_link(&self, _namespace: &str, execution_id: &str, _app_id: Option<&str>) -> String {
        format!("{}/ui/{}/executions/{execution_id}", self.external_url, self.tenant)
    }

    fn file(&self, namespace: &str, uri: &str) -> Result<Option<crate::expr::FileView>, String> {
        let r = self.store.read().map_err(|e| e.user_message())?;
        crate::engine::files::view(&r, self, namespace, uri)
    }

    fn cache(&self, owner: &str) -> Option<Vec<u8>> {
        match self
            .store
            .read()
            .and_then(|r| r.file(owner, crate::engine::files::CACHE_PATH))
        {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a WorkingDirectory cache; running without it");
                None
            }
        }
    }

    fn read_file(&self, namespace: &str, uri: &str, max: usize) -> Result<Vec<u8>, String> {
        let r = self.store.read().map_err(|e| e.user_message())?;
        crate::engine::files::read_whole(&r, self, namespace, uri, max)
    }

    fn error_logs(&self, execution_id: &str) -> Vec<Value> {
        match self
            .store
            .read()
            .and_then(|r| r.logs::<LogLine>(execution_id, 0, MAX_ERROR_LOG_SCAN))
        {
            Ok(lines) => error_entries(&lines),
            Err(e) => {
                tracing::error!(execution.id = %execution_id, error = %e, "cannot read the logs for errorLogs()");
                Vec::new()
            }
        }
    }
}

/// Most log lines `errorLogs()` scans (an execution's lines are read oldest first).
pub const MAX_ERROR_LOG_SCAN: usize = 100_000;

/// The ERROR lines of `lines` as `errorLogs()` returns them (the fields of Kestra's LogEntry
/// that Tollgate has).
pub fn error_entries(lines: &[LogLine]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.level == "ERROR")
        .map(|l| {
            serde_json::json!({
                "executionId": l.execution_id,
                "taskId": if l.task_id.is_empty() { Value::Null } else { Value::String(l.task_id.clone()) },
                "taskRunId": if l.task_run_id.is_empty() { Value::Null } else { Value::String(l.task_run_id.clone()) },
                "level": l.level,
                "message": l.message,
                "timestamp": crate::engine::context::iso_ms(l.time_ms),
            })
        })
        .collect()
}
