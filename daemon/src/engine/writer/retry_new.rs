//! A RETRIED execution's timer fell due (`retry.behavior: CREATE_NEW_EXECUTION`): a new
//! execution of the same flow revision starts with the same inputs and labels, in the same
//! transaction that records it on the old one (a crash can neither lose nor double it).

use super::*;

impl WriterLoop {
    pub(super) fn retry_in_new_execution(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        due_ms: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        if exec.state != State::Retried || exec.retry_at_ms != Some(due_ms) || exec.retried_as.is_some() {
            return Ok(exec);
        }
        let now = now_ms();
        let mut new = exec.clone();
        new.id = crate::engine::ids::new_id();
        new.state = State::Created;
        new.history = vec![crate::engine::execution::StateChange {
            state: State::Created,
            at_ms: now,
        }];
        new.task_runs = Vec::new();
        new.created_ms = now;
        new.updated_ms = now;
        new.ended_ms = None;
        new.outputs = Map::new();
        // The subflow task that started the first one was told when it ended RETRIED.
        new.parent = None;
        new.log_seq = 0;
        new.secrets_seen = Vec::new();
        new.sla_violated = Vec::new();
        new.attempt_number = exec.attempt_number.max(1) + 1;
        new.original_created_ms = Some(exec.original_created_ms.unwrap_or(exec.created_ms));
        new.retry_at_ms = None;
        new.retried_as = None;
        exec.retried_as = Some(new.id.clone());
        exec.updated_ms = now;
        let mut fx = Effects::default();
        push_exec_log(
            &mut exec,
            &mut fx,
            "INFO",
            &format!(
                "retried in a new execution: {} (attempt {})",
                new.id, new.attempt_number
            ),
            now,
        );
        self.store_with_effects(w, &exec, fx, batch, follow)?;
        store_started(w, &new, ("retryOf", Value::String(exec.id.clone())), follow)?;
        Ok(exec)
    }
}
