//! JobLogs: lines a running job logs as it goes (a script's output), stored masked with the
//! execution's next sequence numbers. The execution is stored again so that its change reaches
//! `logs -f` and the console the way every other change does.

use super::*;

impl WriterLoop {
    pub(super) fn job_logs(
        &self,
        w: &mut Writer,
        exec_id: &str,
        run_id: &str,
        lines: Vec<(String, String)>,
        batch: &mut Batch,
    ) -> Result<()> {
        let mut exec = self.load(w, exec_id)?;
        let Some(idx) = exec.task_runs.iter().position(|r| r.id == run_id) else {
            return Err(EngineError::NotFound(format!(
                "task run {run_id} not found in execution {exec_id}"
            )));
        };
        if exec.task_runs[idx].state != State::Running || exec.state.is_terminal() {
            // Killed (or finished) meanwhile: a leftover process does not write any more.
            return Ok(());
        }
        exec.remember_secret_values();
        let now = now_ms();
        let task_id = exec.task_runs[idx].task_id.clone();
        for (level, message) in lines {
            let message = advance::mask(&message, &exec.secrets_seen);
            append_task_log(w, &mut exec, (run_id, &task_id), &level, message, now)?;
        }
        w.put_execution(&exec)?;
        batch.changed.push(exec);
        Ok(())
    }
}
