//! A gate's `sla` ran out while it still waits: the breach is recorded on the task run (shown by
//! `executions get`), in its log, in the audit log and in the metrics, all in one transaction.
//! The gate keeps waiting: an SLA measures the decision, it does not make one.

use super::*;

impl WriterLoop {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sla_breached(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        pause: &crate::flow::PauseTask,
        now: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let sla = pause.sla.clone().unwrap_or_default();
        let run = &mut exec.task_runs[idx];
        let state = run.pause.get_or_insert_with(Default::default);
        state.sla_breached_ms = Some(now);
        let since = state.since_ms;
        let (run_id, task_id) = (run.id.clone(), run.task_id.clone());
        let waiting_for =
            crate::flow::duration::format_iso8601(std::time::Duration::from_millis((now - since).max(0) as u64));
        let message = format!("SLA breached: no decision within {sla} (waiting for {waiting_for})");
        append_task_log(w, &mut exec, (&run_id, &task_id), "WARN", message, now)?;
        exec.updated_ms = now;
        audit_exec(
            w,
            &exec,
            "system",
            "sla.breach",
            &task_id,
            serde_json::json!({
                "sla": sla,
                "waitingSince": crate::engine::context::iso_ms(since),
            }),
            "",
            "BREACHED",
        )?;
        crate::metrics::record_breach(w, &exec.namespace, &exec.flow_id)?;
        self.store_with_effects(w, &exec, Effects::default(), batch, follow)?;
        Ok(exec)
    }
}
