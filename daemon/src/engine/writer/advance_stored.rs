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
        let flow = self.flow_of(&parent)?;
        self.step_and_store(w, parent, &flow, batch, follow)
    }
}
