//! Reject: a decision against a paused task run. The run ends FAILED with the output `rejected`
//! (who, when, why), so the flow's `errors` handlers see the rejection like any failure.

use super::*;

impl WriterLoop {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &self,
        w: &mut Writer,
        id: &str,
        select: &PauseSelector,
        actor: &Actor,
        reason: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        let rejection = match crate::engine::resume::check_reject(&flow, &exec, select, actor, reason) {
            Ok(r) => r,
            Err(EngineError::PermissionDenied(m)) => {
                return Err(audit_refused_decision(w, &exec, select, actor, "reject", reason, m));
            }
            Err(e) => return Err(e),
        };
        let idx = rejection.idx;
        let task_id = exec.task_runs[idx].task_id.clone();
        audit_decision(
            w,
            &exec,
            actor,
            &rejection.on_behalf_of,
            "reject",
            &task_id,
            Value::Null,
            reason,
            "OK",
        )?;
        let who = match rejection.on_behalf_of.as_str() {
            "" => actor.user.clone(),
            other => format!("{} for {other}", actor.user),
        };
        let message = if reason.is_empty() {
            format!("rejected by {who}")
        } else {
            format!("rejected by {who}: {reason}")
        };
        let run_id = exec.task_runs[idx].id.clone();
        append_task_log(w, &mut exec, (&run_id, &task_id), "ERROR", message, now)?;
        let mut rejected = Map::new();
        rejected.insert("by".into(), Value::String(actor.user.clone()));
        rejected.insert("on".into(), Value::String(crate::engine::context::iso_ms(now)));
        rejected.insert("reason".into(), Value::String(reason.to_string()));
        if !rejection.on_behalf_of.is_empty() {
            rejected.insert("onBehalfOf".into(), Value::String(rejection.on_behalf_of.clone()));
        }
        let mut outputs = Map::new();
        outputs.insert("rejected".into(), Value::Object(rejected));
        exec.task_runs[idx]
            .pause
            .get_or_insert_with(Default::default)
            .approvals
            .push(Approval {
                by: actor.user.clone(),
                on_ms: now,
                values: Map::new(),
                reason: reason.to_string(),
                on_behalf_of: rejection.on_behalf_of,
                rejected: true,
                stale_values: vec![],
            });
        let mut fx = Effects::default();
        crate::engine::resume::end_pause(&mut exec, idx, State::Failed, outputs, now, &mut fx);
        exec.set_state(State::Running, now);
        for t in fx.timers_del.drain(..) {
            w.delete_timer(&t)?;
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
