//! Triggers: executions started by other executions ending (Flow) or by the clock (Schedule).

pub mod flow_trigger;
pub mod schedule;

/// Who `labels.system.username` names for an execution a trigger started.
pub fn trigger_actor(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("trigger:{namespace}.{flow_id}.{trigger_id}")
}
