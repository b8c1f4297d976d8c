//! Recover: an execution interrupted by a stop or crash is picked up again.

use super::*;

impl WriterLoop {
    pub(super) fn recover(
        &self,
        w: &mut Writer,
        id: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        if exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        for idx in 0..exec.task_runs.len() {
            let run = &exec.task_runs[idx];
            if run.state != State::Running {
                continue;
            }
            let Some(task) = flow.find_task(&run.task_id) else {
                continue;
            };
            if !crate::engine::jobs::is_job(task) {
                continue;
            }
            // The task's side effect may or may not have happened before the crash: run it again.
            let attempt = run.attempt + 1;
            exec.task_runs[idx].attempt = attempt;
            let (run_id, task_id) = (exec.task_runs[idx].id.clone(), exec.task_runs[idx].task_id.clone());
            let message = format!("the daemon stopped while this task ran; running it again (attempt {attempt})");
            append_task_log(w, &mut exec, (&run_id, &task_id), "WARN", message, now)?;
            let vars = crate::engine::context::vars(&flow, &exec, Some(&exec.task_runs[idx]), Some(task));
            batch.jobs.push(Job {
                execution_id: exec.id.clone(),
                namespace: exec.namespace.clone(),
                task_run_id: exec.task_runs[idx].id.clone(),
                task: task.clone(),
                vars,
                attempt,
            });
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
