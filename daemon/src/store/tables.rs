//! Every redb table, in one place. Keys are strings designed for the queries that read them.

use redb::TableDefinition;

/// execution id → Execution (the engine's encoding: tag byte + MessagePack; JSON for records written before it).
pub const EXECUTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("executions");
/// `{state}\0{sort_ms:016x}\0{id}` → `{namespace}\0{flow_id}`: lists by state, oldest first, as range scans.
pub const EXECUTIONS_BY_STATE: TableDefinition<&str, &str> = TableDefinition::new("executions_by_state");
/// `{execution_id}\0{seq:016x}` → LogLine (encoded as executions are).
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
/// seq → audit record (JSON).
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// "head" → the newest audit record's seq and hash (JSON).
pub const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");
/// email → UserRecord
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("auth_users");
/// group name → ()
pub const GROUPS: TableDefinition<&str, ()> = TableDefinition::new("auth_groups");
/// `{kind}\0{subject}\0{role}\0{namespace}` → ()
pub const BINDINGS: TableDefinition<&str, ()> = TableDefinition::new("auth_bindings");
/// token id → TokenRecord
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("auth_tokens");
/// delegation id → DelegationRecord
pub const DELEGATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("delegations");
/// `{namespace}\0{key}` → KvEntry (JSON).
pub const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// `{namespace}\0{name}` → nonce || AES-256-GCM ciphertext of the secret value.
pub const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
/// `{kind}\0{name…}` → aggregate (JSON), owned by `crate::metrics`.
pub const METRICS: TableDefinition<&str, &[u8]> = TableDefinition::new("metrics");
/// `{minute_start_ms:016x}` → PAUSED executions during that minute.
pub const WAITING_SERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("waiting_series");
/// execution id → lease holder; used by the PostgreSQL store only (kept here so every table has
/// a definition in both stores).
pub const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// `{namespace}\0{flow_id}\0{trigger_id}` -> TriggerState (JSON): triggers switched at run time.
pub const TRIGGER_STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("trigger_states");
/// `{execution_id}\0{path}\0{chunk:08x}` → bytes: execution files (`kestra:///{path}`), in chunks.
pub const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
/// Only in tollgate.redb (hot): `{table number}{key}` → (): a row deleted while a copy of it sits in
/// archive.redb; reads skip that copy and the archiver deletes it (see `store/archive.rs`).
pub const TOMBSTONES: TableDefinition<&[u8], ()> = TableDefinition::new("archive_tombstones");
