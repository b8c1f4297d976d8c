//! Advance and ChildDone: stepping a stored execution, and a waited-for subflow ending.

use super::*;

impl WriterLoop {
    pub(super) fn advance_stored(
        &self,
        w: &mut Writer,
        id: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let exec = self.load(w, id)?;
        if exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A waited-for subflow ended: finish the parent's Subflow task run in the same transaction.
    pub(super) fn child_done(
        &self,
        w: &mut Writer,
        child: &Execution,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let Some(parent_ref) = &child.parent else {
            return Err(EngineError::NotFound("no parent".into()));
        };
        let mut parent = self.load(w, &parent_ref.execution_id)?;
        let Some(idx) = parent.task_runs.iter().position(|r| r.id == parent_ref.task_run_id) else {
            return Ok(parent);
        };
        if parent.task_runs[idx].state != State::Running || parent.state.is_terminal() {
            return Ok(parent);
        }
        let now = now_ms();
        let flow = self.flow_of(&parent)?;
        if let Some(iteration) = parent_ref.iteration {
            // One batch of a ForEachItem: counted, its outputs kept for `_merge`; the task run
            // ends with the last of them.
            if !child.outputs.is_empty() {
                let path = crate::engine::files::iteration_outputs_path(&parent, &parent.task_runs[idx], iteration);
                let line = serde_json::to_vec(&child.outputs).unwrap_or_default();
                self.put_file(w, &parent.id, &path, line)?;
            }
            for_each_item_child_done(&mut parent, idx, child, parent_ref.transmit_failed, now);
            return self.step_and_store(w, parent, &flow, batch, follow);
        }
        let mut out = Map::new();
        out.insert("executionId".into(), Value::String(child.id.clone()));
        out.insert("state".into(), Value::String(child.state.as_str().into()));
        out.insert("outputs".into(), Value::Object(child.outputs.clone()));
        let state = match child.state {
            State::Success => State::Success,
            State::Warning => State::Warning,
            _ if parent_ref.transmit_failed => State::Failed,
            _ => State::Warning,
        };
        parent.task_runs[idx].outputs = out;
        parent.task_runs[idx].set_state(state, now);
        self.step_and_store(w, parent, &flow, batch, follow)
    }
}

/// Records the end of a ForEachItem batch on the `_items` task run at `idx` (its outputs were
/// stored for `_merge`): `iterations` moves it from CREATED to its final state, and once none is left the run ends: FAILED when one failed and `transmitFailed`,
/// else WARNING when one did not succeed, else SUCCESS.
fn for_each_item_child_done(parent: &mut Execution, idx: usize, child: &Execution, transmit_failed: bool, now: i64) {
    let run = &mut parent.task_runs[idx];
    run.batch_executions.retain(|id| *id != child.id);
    let mut counts = match run.outputs.get("iterations") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
    let created = get(&counts, "CREATED").saturating_sub(1);
    counts.insert("CREATED".into(), Value::from(created));
    let key = child.state.as_str().to_string();
    let ended = get(&counts, &key) + 1;
    counts.insert(key, Value::from(ended));
    run.outputs.insert("iterations".into(), Value::Object(counts.clone()));
    if created == 0 {
        let failed = ["FAILED", "KILLED"].iter().any(|k| get(&counts, k) > 0);
        let state = if failed && transmit_failed {
            State::Failed
        } else if failed || get(&counts, "WARNING") > 0 {
            State::Warning
        } else {
            State::Success
        };
        run.set_state(state, now);
    }
}
