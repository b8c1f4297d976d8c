//! FlowToggle: a Toggle task switches a trigger on or off, in the same transaction as the task
//! run that asked, audited with the flow as the actor. Namespaces are the boundary, as for
//! Resume: a flow switches triggers of its own namespace only.

use super::*;

impl WriterLoop {
    pub(super) fn flow_toggle(
        &self,
        w: &mut Writer,
        t: advance::FlowToggle,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let source = self.load(w, &t.execution_id)?;
        let actor = format!("flow:{}.{}", source.namespace, source.flow_id);
        let task_id = source
            .run(&t.task_run_id)
            .map(|run| run.task_id.clone())
            .unwrap_or_default();
        let target = format!("{}.{}", t.namespace, t.flow_id);
        let outcome: std::result::Result<String, String> = if t.namespace != source.namespace {
            let refusal = format!(
                "a flow may only switch triggers of its own namespace `{}`; flow {target} is in `{}`",
                source.namespace, t.namespace
            );
            audit_toggle(w, &t, &actor, &source, &task_id, &format!("DENIED: {refusal}"))?;
            Err(refusal)
        } else {
            match self.flows.get(&t.namespace, &t.flow_id, 0) {
                Err(EngineError::Store(e)) => return Err(EngineError::Store(e)),
                // Kestra's messages.
                Err(_) => Err(format!("Unable to find flow {target}")),
                Ok((_, flow, _)) if !flow.triggers.iter().any(|tr| tr.id == t.trigger) => {
                    Err(format!("Unable to find trigger {} for the flow {target}", t.trigger))
                }
                Ok(_) => {
                    w.put_trigger_state(&crate::store::TriggerState {
                        namespace: t.namespace.clone(),
                        flow_id: t.flow_id.clone(),
                        trigger_id: t.trigger.clone(),
                        disabled: !t.enabled,
                        by: actor.clone(),
                        at_ms: now_ms(),
                    })?;
                    audit_toggle(w, &t, &actor, &source, &task_id, "OK")?;
                    let switched = if t.enabled { "enabled" } else { "disabled" };
                    Ok(format!("trigger `{}` of flow {target} {switched}", t.trigger))
                }
            }
        };
        let outcome = JobOutcome::applied(outcome);
        self.job_done(w, &t.execution_id, &t.task_run_id, t.attempt, outcome, batch, follow)
    }
}

/// The audit record of a trigger switch (or its refusal) by a flow.
fn audit_toggle(
    w: &mut Writer,
    t: &advance::FlowToggle,
    actor: &str,
    source: &Execution,
    task_id: &str,
    result: &str,
) -> std::result::Result<(), StoreError> {
    crate::audit::append(
        w,
        crate::audit::Entry {
            user: actor.to_string(),
            action: "trigger.toggle".into(),
            namespace: t.namespace.clone(),
            flow_id: t.flow_id.clone(),
            execution_id: source.id.clone(),
            task_id: task_id.to_string(),
            values: serde_json::json!({"trigger": t.trigger, "enabled": t.enabled}),
            reason: format!("Toggle task `{task_id}` of execution {}", source.id),
            result: result.to_string(),
            on_behalf_of: String::new(),
        },
    )
}
