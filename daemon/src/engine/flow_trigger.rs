//! `io.kestra.plugin.core.trigger.Flow`: react to another flow's executions changing state.

use serde_json::{Value, json};

use crate::engine::{Execution, State};
use crate::flow::FlowTrigger;

/// States a condition reacts to when it names none: every terminal state and PAUSED (Kestra ≥ 0.23).
const DEFAULT_STATES: &[State] = &[
    State::Success,
    State::Warning,
    State::Failed,
    State::Killed,
    State::Cancelled,
    State::Paused,
];

/// Whether `trigger` fires for `exec` having just entered `state`.
pub fn matches(trigger: &FlowTrigger, exec: &Execution, state: State) -> bool {
    if trigger.disabled {
        return false;
    }
    let Some(pre) = &trigger.preconditions else {
        return false;
    };
    pre.flows.iter().any(|c| {
        c.namespace == exec.namespace
            && c.flow_id == exec.flow_id
            && if c.states.is_empty() {
                DEFAULT_STATES.contains(&state)
            } else {
                c.states.iter().any(|s| State::parse(s) == Some(state))
            }
    })
}

/// `trigger.*` in the triggered execution's templates.
pub fn context(exec: &Execution, state: State) -> Value {
    json!({
        "executionId": exec.id,
        "namespace": exec.namespace,
        "flowId": exec.flow_id,
        "flowRevision": exec.flow_revision,
        "state": state.as_str(),
        "outputs": exec.outputs,
    })
}
