//! Kill: an execution is stopped, by an operator or because its parent was killed.

use super::*;

impl WriterLoop {
    pub(super) fn kill(
        &self,
        w: &mut Writer,
        id: &str,
        actor: &Actor,
        reason: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        if exec.state.is_terminal() || exec.state == State::Killing {
            return Err(EngineError::FailedPrecondition(format!(
                "Execution '{id}' is already {}, can't kill it",
                exec.state
            )));
        }
        let flow = self.flow_of(&exec)?;
        audit_exec(w, &exec, &actor.user, "kill", "", Value::Null, reason, "OK")?;
        exec.set_state(State::Killing, now_ms());
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
