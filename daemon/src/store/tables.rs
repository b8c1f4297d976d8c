//! Every redb table, in one place. Keys are strings designed for the queries that read them.

use redb::TableDefinition;

/// execution id → Execution (JSON).
pub const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// `{state}\0{sort_ms:016x}\0{id}` → `{namespace}\0{flow_id}`: lists by state, oldest first, as range scans.
pub const EXECUTIONS_BY_STATE: TableDefinition<&str, &str> = TableDefinition::new("executions_by_state");
/// `{execution_id}\0{seq:016x}` → LogLine (JSON).
pub const LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("logs");
/// `{due_ms:016x}\0{execution_id}\0{task_run_id}\0{kind}` → (): durable timers, earliest first.
pub const TIMERS: TableDefinition<&str, ()> = TableDefinition::new("timers");
/// `{namespace}\0{flow_id}` → FlowHead (JSON).
pub const FLOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("flows");
/// `{namespace}\0{flow_id}\0{revision:08x}` → flow source.
pub const FLOW_REVISIONS: TableDefinition<&str, &str> = TableDefinition::new("flow_revisions");
/// key → value (JSON): small daemon-wide settings such as the schema version.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `{namespace}\0{flow_id}\0{trigger_id}` → next fire time (ms) of a Schedule trigger.
pub const SCHEDULES: TableDefinition<&str, i64> = TableDefinition::new("schedules");
/// MultipleCondition windows of Flow triggers: (namespace, flow, trigger, condition) -> JSON.
pub const CONDITION_WINDOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("condition_windows");
