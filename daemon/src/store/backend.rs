//! The byte-level interface both stores implement: ordered key-value tables with point reads,
//! range scans, puts and deletes inside a transaction. This is the smallest faithful mapping of
//! what redb gives the typed operations in the other modules of `store/`: they build string keys
//! whose byte order is the order their queries need, so a backend only has to keep each table
//! sorted by the bytes of its keys (redb: `&str` keys; PostgreSQL: `bytea`, which compares like
//! memcmp). The audit table's `u64` keys travel as 8 big-endian bytes, which sort the same way.

use std::ops::Bound;

use super::Result;

/// Every table of the store. The names are redb's table names (the on-disk format) and the
/// numbers are PostgreSQL's `tbl` column: neither may change for a table that is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Executions,
    ExecutionsByState,
    Logs,
    Timers,
    Flows,
    FlowRevisions,
    Meta,
    Schedules,
    ConditionWindows,
    Users,
    Groups,
    Bindings,
    Tokens,
    Audit,
    AuditHead,
    Delegations,
    Kv,
    Secrets,
    Metrics,
    WaitingSeries,
    /// Only PostgreSQL: which daemon holds the lease on an in-flight execution (`id` -> daemon).
    Leases,
    /// Triggers switched on or off at run time: `{namespace}\0{flow_id}\0{trigger_id}` -> JSON.
    TriggerStates,
    /// Files of executions (Kestra's internal storage), in chunks: see `store/files.rs`.
    Files,
}

impl Table {
    pub const ALL: [Table; 23] = [
        Table::Executions,
        Table::ExecutionsByState,
        Table::Logs,
        Table::Timers,
        Table::Flows,
        Table::FlowRevisions,
        Table::Meta,
        Table::Schedules,
        Table::ConditionWindows,
        Table::Users,
        Table::Groups,
        Table::Bindings,
        Table::Tokens,
        Table::Audit,
        Table::AuditHead,
        Table::Delegations,
        Table::Kv,
        Table::Secrets,
        Table::Metrics,
        Table::WaitingSeries,
        Table::Leases,
        Table::TriggerStates,
        Table::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Executions => "executions",
            Table::ExecutionsByState => "executions_by_state",
            Table::Logs => "logs",
            Table::Timers => "timers",
            Table::Flows => "flows",
            Table::FlowRevisions => "flow_revisions",
            Table::Meta => "meta",
            Table::Schedules => "schedules",
            Table::ConditionWindows => "condition_windows",
            Table::Users => "auth_users",
            Table::Groups => "auth_groups",
            Table::Bindings => "auth_bindings",
            Table::Tokens => "auth_tokens",
            Table::Audit => "audit",
            Table::AuditHead => "audit_head",
            Table::Delegations => "delegations",
            Table::Kv => "kv",
            Table::Secrets => "secrets",
            Table::Metrics => "metrics",
            Table::WaitingSeries => "waiting_series",
            Table::Leases => "leases",
            Table::TriggerStates => "trigger_states",
            Table::Files => "files",
        }
    }

    /// PostgreSQL's `tbl` value.
    pub fn id(self) -> i16 {
        Table::ALL.iter().position(|t| *t == self).unwrap_or(0) as i16
    }
}

/// What a scan callback says: go on, or stop here.
pub type Scan<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool>;

/// What [`KvRead::get_each`] calls with each key's position and value.
pub type GetEach<'a> = &'a mut dyn FnMut(usize, Option<&[u8]>) -> Result<()>;

/// Reads in one consistent view (a snapshot, or a write transaction seeing its own writes).
pub trait KvRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Calls `f` on each row with a key in `(lo, hi)`, in key order (descending with `rev`),
    /// until it returns false.
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()>;
    fn len(&self, table: Table) -> Result<u64>;
    /// Point reads of several keys of one table, `f` called with each key's position and
    /// value, in order (a backend may look the table up once for all of them).
    fn get_each(&self, table: Table, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        for (i, key) in keys.iter().enumerate() {
            let v = self.get(table, key)?;
            f(i, v.as_deref())?;
        }
        Ok(())
    }
    /// Says which rows are about to be read by key (a batch's executions), so a backend that
    /// pays a round trip per read can fetch them together. Reads nothing by default.
    fn prefetch(&self, _keys: &[(Table, &[u8])]) -> Result<()> {
        Ok(())
    }
}

/// Changes inside one transaction; nothing is visible to others before the commit.
pub trait KvWrite: KvRead {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()>;
    /// Whether the row existed.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool>;
    /// Removes a row when the caller does not need to know whether it existed (PostgreSQL then
    /// saves the round trip that finding out costs).
    fn erase(&mut self, table: Table, key: &[u8]) -> Result<()> {
        self.delete(table, key).map(|_| ())
    }
}

/// Whether a range is empty by its bounds alone (start past end): backends would panic or
/// return nothing; callers get nothing.
pub fn empty_range(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

/// Collects a scan into rows (for small ranges).
pub fn collect(
    r: &dyn KvRead,
    table: Table,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    r.scan(table, lo, hi, rev, &mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// The bytes of a string key.
pub fn k(s: &str) -> &[u8] {
    s.as_bytes()
}

/// A stored key as text (our keys are always text).
pub fn text(table: Table, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| super::StoreError::Corrupt {
        table: table.name(),
        key: format!("{b:?}"),
        message: "the key is not UTF-8".into(),
    })
}
