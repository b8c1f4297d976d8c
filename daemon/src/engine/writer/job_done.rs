//! JobDone: an async task finished; its outputs and logs are stored, masked.

use super::*;

impl WriterLoop {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn job_done(
        &self,
        w: &mut Writer,
        exec_id: &str,
        run_id: &str,
        attempt: u32,
        outcome: JobOutcome,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, exec_id)?;
        let Some(idx) = exec.task_runs.iter().position(|r| r.id == run_id) else {
            return Err(EngineError::NotFound(format!(
                "task run {run_id} not found in execution {exec_id}"
            )));
        };
        if exec.task_runs[idx].state != State::Running
            || exec.task_runs[idx].attempt != attempt
            || exec.state.is_terminal()
        {
            // Killed (or finished) while the task ran: its result no longer matters.
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        exec.remember_secret_values();
        let (run_id, task_id) = (exec.task_runs[idx].id.clone(), exec.task_runs[idx].task_id.clone());
        let mut lines = Vec::new();
        for (level, message) in &outcome.logs {
            lines.push((level.clone(), message.clone()));
        }
        let state = match outcome.result {
            Ok(outputs) => {
                for (path, content) in outcome.files {
                    self.put_file(w, &exec.id, &path, content)?;
                }
                if let Some((owner, archive)) = outcome.cache {
                    w.put_file(&owner, crate::engine::files::CACHE_PATH, &archive)?;
                }
                exec.task_runs[idx].metrics = outcome.metrics;
                exec.task_runs[idx].outputs = outputs
                    .into_iter()
                    .map(|(k, v)| (k, advance::mask_value(&v, &exec.secrets_seen)))
                    .collect();
                if outcome.warning {
                    State::Warning
                } else {
                    State::Success
                }
            }
            Err(message) => {
                lines.push(("ERROR".into(), message));
                State::Failed
            }
        };
        for (level, message) in lines {
            let message = advance::mask(&message, &exec.secrets_seen);
            append_task_log(w, &mut exec, (&run_id, &task_id), &level, message, now)?;
        }
        exec.task_runs[idx].set_state(state, now);
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
