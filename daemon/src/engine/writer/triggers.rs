//! Flow and Schedule triggers: the executions the daemon starts by itself.

use super::*;

impl WriterLoop {
    /// Starts the executions of every flow whose Flow trigger matches `exec` entering its state.
    pub(super) fn fire_flow_triggers(
        &self,
        w: &mut Writer,
        exec: &Execution,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let now = now_ms();
        for (revision, flow) in self.flows.flows_with_flow_triggers().iter() {
            for t in &flow.triggers {
                let crate::flow::TriggerKind::Flow(ft) = &t.kind else {
                    continue;
                };
                if !crate::engine::flow_trigger::matches(ft, exec, exec.state) {
                    continue;
                }
                let trigger = crate::engine::flow_trigger::context(exec, exec.state);
                let vars = serde_json::json!({ "trigger": trigger });
                let started = self.triggered_execution(flow, *revision, &t.id, &ft.inputs, &vars, trigger, now);
                match started {
                    Ok(new) => store_started(w, &new, ("triggeredBy", exec.id.clone().into()), follow)?,
                    Err(e) => tracing::warn!(
                        flow = %format!("{}.{}", flow.namespace, flow.id), trigger = %t.id, error = %e,
                        "Flow trigger matched but its execution was not created"
                    ),
                }
            }
        }
        Ok(())
    }

    /// A new execution of `flow` started by trigger `trigger_id`, with rendered and typed inputs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn triggered_execution(
        &self,
        flow: &Flow,
        revision: u32,
        trigger_id: &str,
        inputs: &BTreeMap<String, Value>,
        vars: &Value,
        trigger: Value,
        now: i64,
    ) -> std::result::Result<Execution, String> {
        let mut raw = BTreeMap::new();
        for (k, v) in inputs {
            let text = match v {
                Value::String(s) => {
                    self.renderer
                        .render(s, vars, self.services.as_ref(), &flow.namespace, "")
                        .map_err(|e| format!("input `{k}`: {e}"))?
                        .text
                }
                other => other.to_string(),
            };
            raw.insert(k.clone(), text);
        }
        let typed = crate::inputs::coerce(&flow.inputs, &raw)
            .map_err(|errs| errs.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))?;
        let actor = crate::triggers::trigger_actor(&flow.namespace, &flow.id, trigger_id);
        Ok(advance::new_execution(
            flow,
            revision,
            typed,
            BTreeMap::new(),
            &actor,
            now,
            None,
            Some(trigger),
        ))
    }

    /// A Schedule trigger fell due: start its flow once, then register the next fire time.
    pub(super) fn fire_schedule(
        &self,
        w: &mut Writer,
        t: &TimerKey,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let Some((ns, flow_id)) = t.execution_id.split_once('/') else {
            return Ok(());
        };
        let trigger_id = t.task_run_id.as_str();
        if w.schedule_due(ns, flow_id, trigger_id)? != Some(t.due_ms) {
            return Ok(()); // stale: the flow changed since this timer was set
        }
        let (head, flow, _) = self.flows.get(ns, flow_id, 0)?;
        let Some((trigger, sched)) = flow.triggers.iter().find_map(|tr| match &tr.kind {
            crate::flow::TriggerKind::Schedule(s) if tr.id == trigger_id && !tr.disabled => Some((tr, s)),
            _ => None,
        }) else {
            return Ok(());
        };
        let now = now_ms();
        // Fires missed while the daemon was down collapse into this one: the next is after now.
        let next = crate::triggers::schedule::next_fire(
            &sched.cron,
            sched.with_seconds,
            sched.timezone.as_deref(),
            now.max(t.due_ms),
        )
        .map_err(EngineError::InvalidArgument)?;
        let context = serde_json::json!({
            "date": crate::engine::context::iso_ms(t.due_ms),
            "next": crate::engine::context::iso_ms(next),
        });
        let vars = serde_json::json!({ "trigger": context });
        match self.triggered_execution(
            &flow,
            head.revision,
            &trigger.id,
            &sched.inputs,
            &vars,
            context.clone(),
            now,
        ) {
            Ok(new) => store_started(w, &new, ("schedule", trigger_id.into()), follow)?,
            Err(e) => {
                tracing::warn!(flow = %format!("{ns}.{flow_id}"), trigger = %trigger_id, error = %e, "scheduled execution not created")
            }
        }
        w.put_schedule(ns, flow_id, trigger_id, next)?;
        w.put_timer(&crate::engine::flows::schedule_timer(ns, flow_id, trigger_id, next))?;
        batch.timers_added = true;
        Ok(())
    }
}
