//! Webhook triggers: the only calls that carry no bearer token. The key in the path is the
//! credential (as in Kestra), so a wrong key is treated like a refused sign-in: audited (bounded)
//! and counted; a flow path with too many recent failures is refused outright for a while, before
//! any key is compared, so guessing a key costs a minute per few tries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use super::Ops;
use crate::audit::Entry;
use crate::engine::{EngineError, Execution, Result, WebhookCall};

/// Failed calls to one flow's webhooks allowed per window before that flow's webhooks are shut
/// for the rest of the window.
const FAILURES_PER_WINDOW: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Flow paths tracked at once; beyond that, failures share one bucket (a flood of made-up flow
/// names must not grow memory without bound).
const MAX_TRACKED: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct WebhookFailures(Mutex<HashMap<String, (Instant, u32)>>);

impl WebhookFailures {
    fn bucket(map: &HashMap<String, (Instant, u32)>, path: &str) -> String {
        if map.contains_key(path) || map.len() < MAX_TRACKED {
            path.to_string()
        } else {
            String::new()
        }
    }

    /// Whether calls to `path` are shut because of recent failures.
    fn shut(&self, path: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::bucket(&map, path);
        map.get(&key)
            .is_some_and(|(since, n)| since.elapsed() < WINDOW && *n >= FAILURES_PER_WINDOW)
    }

    fn failed(&self, path: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (since, _)| since.elapsed() < WINDOW);
        }
        let key = Self::bucket(&map, path);
        let entry = map.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

/// The answer to a webhook call.
pub enum WebhookAnswer {
    Started(Box<Execution>),
    /// The key was right; the trigger's conditions did not hold (Kestra: 204).
    ConditionsNotMet,
    /// Too many failed calls to this flow's webhooks lately: refused without looking (HTTP 429).
    Shut,
}

impl Ops {
    /// Starts the flow `namespace.flow_id` through its Webhook trigger whose key is `call.key`.
    /// NOT_FOUND for an unknown flow or a wrong key, audited with the origin `webhook`;
    /// [`WebhookAnswer::Shut`] while the flow's webhooks are shut after failures.
    pub async fn webhook(&self, call: WebhookCall) -> Result<WebhookAnswer> {
        let path = format!("{}/{}", call.namespace, call.flow_id);
        if self.webhook_failures.shut(&path) {
            self.audit_webhook_refusal(&call, "DENIED: too many failed webhook calls; retry later")
                .await;
            return Ok(WebhookAnswer::Shut);
        }
        match self.engine.webhook(call.clone()).await {
            Ok(Some(exec)) => Ok(WebhookAnswer::Started(Box::new(super::present(exec)))),
            Ok(None) => Ok(WebhookAnswer::ConditionsNotMet),
            Err(EngineError::NotFound(m)) => {
                self.webhook_failures.failed(&path);
                self.audit_webhook_refusal(&call, &format!("DENIED: {m}")).await;
                Err(EngineError::NotFound(m))
            }
            Err(e) => Err(e),
        }
    }

    /// Records a refused webhook call (never the key given), bounded like refused sign-ins.
    async fn audit_webhook_refusal(&self, call: &WebhookCall, result: &str) {
        let Some(suppressed) = self.refusals.admit() else {
            return;
        };
        let mut values = json!({ "origin": "webhook", "door": "rest" });
        if suppressed > 0 {
            values["refusals_not_recorded_before"] = json!(suppressed);
        }
        let entry = Entry {
            user: String::new(),
            action: "webhook".into(),
            namespace: call.namespace.chars().take(256).collect(),
            flow_id: call.flow_id.chars().take(256).collect(),
            values,
            result: result.to_string(),
            ..Default::default()
        };
        if let Err(e) = self.engine.record(entry).await {
            tracing::error!(error = %e, "cannot record a refused webhook call in the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_path_shuts_after_too_many_failures_and_reopens_after_the_window() {
        let f = WebhookFailures::default();
        for _ in 0..FAILURES_PER_WINDOW {
            assert!(!f.shut("ns/flow"));
            f.failed("ns/flow");
        }
        assert!(f.shut("ns/flow"));
        assert!(!f.shut("ns/other"), "another flow is not affected");
        f.0.lock().unwrap().get_mut("ns/flow").unwrap().0 -= WINDOW;
        assert!(!f.shut("ns/flow"));
    }
}
