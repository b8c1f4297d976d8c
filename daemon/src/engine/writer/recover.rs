//! Recover: an execution interrupted by a stop or crash is picked up again.

use super::*;

impl WriterLoop {
    pub(super) fn recover(
        &self,
        w: &mut Writer,
        id: &str,
        from: Option<&str>,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        if exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        self.restart_working_directories(w, &flow, &mut exec, now)?;
        for idx in 0..exec.task_runs.len() {
            let run = &exec.task_runs[idx];
            if run.state != State::Running {
                continue;
            }
            let Some(task) = flow.find_task(&run.task_id) else {
                continue;
            };
            if matches!(
                task.kind,
                crate::flow::TaskKind::Resume(_) | crate::flow::TaskKind::Toggle(_)
            ) {
                // Its change is applied in the transaction that ends it: still running means
                // it was not applied. CREATED makes the walk run it again (re-rendered).
                let (run_id, task_id) = (run.id.clone(), run.task_id.clone());
                exec.task_runs[idx].state = State::Created;
                let message = "the daemon stopped before this task's change was applied; applying it again".to_string();
                append_task_log(w, &mut exec, (&run_id, &task_id), "WARN", message, now)?;
                continue;
            }
            if !crate::engine::jobs::is_job(task) {
                continue;
            }
            // Another daemon, still alive, runs it: its result will come.
            if let (Some(dead), Some(runner)) = (from, run.runner.as_deref())
                && runner != dead
            {
                continue;
            }
            // The task's side effect may or may not have happened before the crash: run it again.
            let attempt = run.attempt + 1;
            exec.task_runs[idx].attempt = attempt;
            exec.task_runs[idx].runner = w.daemon_id();
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
                workdir: crate::engine::advance::workdir_of(&flow, &exec, idx),
            });
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A WorkingDirectory that was running lost its directory (the daemon sweeps the scripts
    /// directory when it starts). As Kestra re-runs a whole WorkingDirectory when its worker
    /// dies, its tasks run again from the first one, in a fresh directory: their task runs are
    /// dropped (their log lines stay) and the walk starts them again.
    fn restart_working_directories(&self, w: &mut Writer, flow: &Flow, exec: &mut Execution, now: i64) -> Result<()> {
        let restarted: Vec<(String, String)> = exec
            .task_runs
            .iter()
            .filter(|r| r.state == State::Running)
            .filter(|r| {
                flow.find_task(&r.task_id)
                    .is_some_and(|t| matches!(t.kind, crate::flow::TaskKind::WorkingDirectory(_)))
            })
            .map(|r| (r.id.clone(), r.task_id.clone()))
            .collect();
        for (run_id, task_id) in restarted {
            // Its `outputFiles` are collected again after its tasks ran again.
            if let Some(run) = exec.run_mut(&run_id) {
                run.outputs.remove("outputFiles");
            }
            let before = exec.task_runs.len();
            exec.task_runs
                .retain(|r| r.parent_task_run_id.as_deref() != Some(run_id.as_str()));
            let dropped = before - exec.task_runs.len();
            let message = format!(
                "the daemon stopped while this WorkingDirectory ran; running its tasks again from the first one in a fresh directory ({dropped} task runs dropped)"
            );
            append_task_log(w, exec, (&run_id, &task_id), "WARN", message, now)?;
        }
        Ok(())
    }
}
