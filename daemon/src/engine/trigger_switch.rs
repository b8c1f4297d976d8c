//! Triggers as operators see them: which fire, and switching one off or on by hand (the same
//! state Kestra's Toggle task sets), audited as the user in the same transaction.

use super::error::{EngineError, Result};
use super::{Engine, ids::now_ms};
use crate::store::TriggerState;

/// A trigger of the latest revision of a flow and whether it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerView {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    pub type_name: String,
    pub disabled_in_source: bool,
    /// The last switch at run time, if any.
    pub switched: Option<TriggerState>,
    /// Schedule: the next registered fire time.
    pub next_fire_ms: Option<i64>,
}

impl Engine {
    /// Every trigger of the flows `visible` lets through (namespace, flow id), sorted.
    pub async fn triggers(&self, visible: impl Fn(&str, &str) -> bool + Send + 'static) -> Result<Vec<TriggerView>> {
        self.blocking(move |e| {
            let r = e.store().read()?;
            let mut out = Vec::new();
            for head in e.flows().list()? {
                if head.deleted || !visible(&head.namespace, &head.id) {
                    continue;
                }
                let Ok((_, flow, _)) = e.flows().get(&head.namespace, &head.id, 0) else {
                    continue;
                };
                let states = r.trigger_states(&head.namespace, &head.id)?;
                for t in &flow.triggers {
                    out.push(TriggerView {
                        namespace: head.namespace.clone(),
                        flow_id: head.id.clone(),
                        trigger_id: t.id.clone(),
                        type_name: t.type_name.clone(),
                        disabled_in_source: t.disabled || flow.disabled,
                        switched: states.iter().find(|s| s.trigger_id == t.id).cloned(),
                        next_fire_ms: r.schedule_due(&head.namespace, &head.id, &t.id)?,
                    });
                }
            }
            out.sort_by(|a, b| {
                (&a.namespace, &a.flow_id, &a.trigger_id).cmp(&(&b.namespace, &b.flow_id, &b.trigger_id))
            });
            Ok(out)
        })
        .await
    }

    /// Switches a trigger off or on as `user` (a person; flows do it through the Toggle task).
    pub async fn set_trigger(
        &self,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        enabled: bool,
        user: &str,
    ) -> Result<()> {
        let (_, flow, _) = self.flows().get(namespace, flow_id, 0)?;
        if !flow.triggers.iter().any(|t| t.id == trigger_id) {
            let known: Vec<&str> = flow.triggers.iter().map(|t| t.id.as_str()).collect();
            return Err(EngineError::NotFound(format!(
                "flow `{namespace}.{flow_id}` has no trigger `{trigger_id}` (its triggers: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        let state = TriggerState {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            trigger_id: trigger_id.to_string(),
            disabled: !enabled,
            by: user.to_string(),
            at_ms: now_ms(),
        };
        self.change(move |w| {
            w.put_trigger_state(&state)?;
            crate::audit::append(
                w,
                crate::audit::Entry {
                    user: state.by.clone(),
                    action: "trigger.toggle".into(),
                    namespace: state.namespace.clone(),
                    flow_id: state.flow_id.clone(),
                    values: serde_json::json!({"trigger": state.trigger_id, "enabled": enabled}),
                    result: "OK".into(),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await
    }
}
