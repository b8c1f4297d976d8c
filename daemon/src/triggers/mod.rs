//! Triggers: executions started by other executions ending (Flow) or by the clock (Schedule).
//! Matching a Flow trigger against an execution lives in `engine::flow_trigger`, next to the
//! execution it reads.

pub mod schedule;

/// Who `labels.system.username` names for an execution a trigger started.
pub fn trigger_actor(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("trigger:{namespace}.{flow_id}.{trigger_id}")
}
