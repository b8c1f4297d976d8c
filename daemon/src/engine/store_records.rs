//! How the store keys and indexes the engine's records (the store names no engine type).

use super::execution::{Execution, LogLine};
use super::state::State;
use crate::store::{ExecutionRecord, IndexedState, LogRecord};

impl IndexedState for State {
    type Execution = Execution;
    const ALL: &'static [State] = &State::ALL;

    fn name(self) -> &'static str {
        self.as_str()
    }

    fn is_terminal(self) -> bool {
        State::is_terminal(self)
    }
}

impl ExecutionRecord for Execution {
    type State = State;

    fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> State {
        self.state
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn flow_id(&self) -> &str {
        &self.flow_id
    }

    /// PAUSED executions list oldest pause first; the others oldest first.
    fn index_time_ms(&self) -> i64 {
        if self.state == State::Paused {
            self.waiting_since().unwrap_or(self.created_ms)
        } else {
            self.created_ms
        }
    }
}

impl LogRecord for LogLine {
    fn execution_id(&self) -> &str {
        &self.execution_id
    }

    fn seq(&self) -> u64 {
        self.seq
    }
}
