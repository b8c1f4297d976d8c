//! Resume: a decision on a paused task run (approval of a quorum, or the one that completes it).

use super::*;

impl WriterLoop {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resume(
        &self,
        w: &mut Writer,
        id: &str,
        select: &PauseSelector,
        inputs: &BTreeMap<String, String>,
        actor: &Actor,
        reason: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        // Approvals given under other `staleWhen` values no longer count: discard them first,
        // so this decision is weighed against the approvals that still hold.
        if exec.state == State::Paused
            && let Ok(idx) = crate::engine::resume::select_pause(&exec, select)
            && exec.task_runs[idx]
                .pause
                .as_ref()
                .is_some_and(|p| !p.approvals.is_empty())
        {
            self.discard_if_stale(w, &mut exec, &flow, idx, now, batch, follow)?;
        }
        let checked = {
            let render =
                crate::engine::resume::expression_renderer(&self.renderer, self.services.as_ref(), &flow, Some(&exec));
            crate::engine::resume::check(&flow, &exec, select, inputs, actor, Some(&render))
        };
        let decision = match checked {
            Ok(d) => d,
            Err(EngineError::PermissionDenied(m)) => {
                // A refused decision is evidence too: it is recorded, nothing else changes.
                return Err(audit_refused_decision(w, &exec, select, actor, "resume", reason, m));
            }
            Err(e) => return Err(e),
        };
        let idx = decision.idx;
        let secret_ids = crate::engine::resume::secret_resume_ids(&flow, &exec.task_runs[idx].task_id);
        let audited = Value::Object(masked(&decision.values, &secret_ids));
        // SECRET fields are stored sealed, in the outputs and in the approval alike.
        let values = crate::engine::resume::sealed_values(&decision.values, &secret_ids);
        let task_id = exec.task_runs[idx].task_id.clone();
        let waited_ms = now - exec.task_runs[idx].pause.as_ref().map_or(now, |p| p.since_ms);
        let approval = Approval {
            by: actor.user.clone(),
            on_ms: now,
            values: values.clone(),
            reason: reason.to_string(),
            on_behalf_of: decision.on_behalf_of.clone(),
            rejected: false,
            stale_values: self.stale_values(&flow, &exec, idx),
        };
        let who = match decision.on_behalf_of.as_str() {
            "" => actor.user.clone(),
            other => format!("{} for {other}", actor.user),
        };
        if !decision.completes(&exec) {
            // One approval of a quorum: recorded, the pause keeps waiting for the others.
            let run = &mut exec.task_runs[idx];
            let pause = run.pause.get_or_insert_with(Default::default);
            pause.approvals.push(approval);
            let message = format!(
                "approval {} of {} by {}",
                pause.approvals.len(),
                decision.approvals_required,
                who
            );
            let run_id = run.id.clone();
            append_task_log(w, &mut exec, (&run_id, &task_id), "INFO", message, now)?;
            exec.updated_ms = now;
            audit_decision(
                w,
                &exec,
                actor,
                &decision.on_behalf_of,
                "approve",
                &task_id,
                audited,
                reason,
                "OK: approval recorded, waiting for more",
            )?;
            crate::metrics::record_decision(w, &exec.namespace, &exec.flow_id, &actor.user, waited_ms, false)?;
            let mut fx = Effects::default();
            super::stale::arm(&mut exec, idx, now, &mut fx);
            self.store_with_effects(w, &exec, fx, batch, follow)?;
            return Ok(exec);
        }
        audit_decision(
            w,
            &exec,
            actor,
            &decision.on_behalf_of,
            "resume",
            &task_id,
            audited,
            reason,
            "OK",
        )?;
        crate::metrics::record_decision(w, &exec.namespace, &exec.flow_id, &actor.user, waited_ms, true)?;
        let mut outputs = advance::resumed_outputs(values, &actor.user, now, State::Success);
        if let Some(Value::Object(resumed)) = outputs.get_mut("resumed") {
            resumed.insert("comment".into(), Value::String(reason.to_string()));
            if !decision.on_behalf_of.is_empty() {
                resumed.insert("onBehalfOf".into(), Value::String(decision.on_behalf_of.clone()));
            }
        }
        // The completing decision is kept with the others, so every comment stays with the run.
        let all = {
            let pause = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
            pause.approvals.push(approval);
            pause.approvals.clone()
        };
        if decision.approvals_required > 1 {
            outputs.insert("approvals".into(), approvals_json(&all));
        }
        let mut fx = Effects::default();
        crate::engine::resume::end_pause(&mut exec, idx, State::Success, outputs, now, &mut fx);
        crate::engine::resume::continue_into_tasks(&flow, &mut exec, idx, now);
        exec.set_state(State::Running, now);
        for t in fx.timers_del.drain(..) {
            w.delete_timer(&t)?;
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}

/// Every approval of a quorum, as the pause's `approvals` output.
fn approvals_json(all: &[Approval]) -> Value {
    Value::Array(
        all.iter()
            .map(|a| {
                serde_json::json!({
                    "by": a.by,
                    "on": crate::engine::context::iso_ms(a.on_ms),
                    "values": a.values,
                    "reason": a.reason,
                    "onBehalfOf": a.on_behalf_of,
                })
            })
            .collect(),
    )
}
