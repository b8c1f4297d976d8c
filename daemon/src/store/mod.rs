//! Durable state. The only module that touches a database: everything else calls the typed
//! operations of [`Reader`] and [`Writer`], which work the same over either store behind them:
//! one redb file (the embedded default) or a PostgreSQL database shared by several daemons
//! (`postgres/`). Both speak the byte-level interface of [`backend`].

mod archive;
mod audit;
mod auth;
pub mod backend;
mod delegations;
pub mod files;
mod hot;
mod journal;
mod kv;
pub mod lz4;
mod metrics;
mod overlay;
mod page_sessions;
pub mod postgres;
mod records;
mod redb_backend;
mod tables;
mod trigger_states;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::Database;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use backend::{KvRead, KvWrite, Table, k};

pub use archive::ArchiveSettings;

/// The archive file beside `tollgate.redb` in a data dir (see `archive.rs`).
pub const ARCHIVE_FILE: &str = "archive.redb";
pub use auth::{Binding, TokenRecord, UserRecord};
pub use delegations::DelegationRecord;
pub use kv::KvEntry;
pub use metrics::{StateCounts, WaitingSample};
pub use records::{AuditHead, AuditRecord, ExecutionPart, ExecutionRecord, IndexedState, LogRecord};
pub use trigger_states::TriggerState;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `cause` is part of the message, not a `source`: printed as an error chain it would show twice.
    #[error("cannot open the database {path}: {cause}")]
    Open { path: PathBuf, cause: redb::DatabaseError },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("corrupt record in table {table} at key {key}: {message}")]
    Corrupt {
        table: &'static str,
        key: String,
        message: String,
    },
    /// The PostgreSQL database cannot be reached (`down`) or refused a statement. `database`
    /// names it without its password.
    #[error("the database {database} {}: {message}", if *down { "is unavailable" } else { "refused a statement" })]
    Database {
        database: String,
        message: String,
        down: bool,
    },
    /// The database was migrated by a newer tollgated.
    #[error(
        "the database {database} has schema version {found}, newer than this tollgated supports ({supported}); \
         upgrade tollgated"
    )]
    NewerSchema {
        database: String,
        found: i32,
        supported: i32,
    },
    /// A PostgreSQL row batch lost a race it must not wait out (a deadlock, a lock timeout, a
    /// serialization failure) or touched what only an exclusive batch may (`needs_exclusive`):
    /// it was rolled back, nothing was written; the writer runs it again exclusively.
    #[error("the database {database} {}: {message}", if *needs_exclusive { "needs an exclusive batch" } else { "lost a lock race" })]
    Conflict {
        database: String,
        message: String,
        needs_exclusive: bool,
    },
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Storage(e.to_string()) }
        }
    )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl StoreError {
    /// What a caller is told: I/O failures (a full or read-only disk) and an unreachable database
    /// say so and what to do, because that is the operator's to fix; anything else points at the
    /// daemon log.
    pub fn user_message(&self) -> String {
        match self {
            StoreError::Storage(m) if m.contains("I/O error") || m.contains("Previous I/O error") => format!(
                "the data store cannot write ({}); nothing was changed. Free space or fix the data dir, then restart \
                 tollgated",
                m.trim_start_matches("I/O error: ")
            ),
            StoreError::Database {
                database, down: true, ..
            } => format!(
                "the database {database} is unavailable; nothing was changed. tollgated reconnects by itself: retry \
                 once the database is back"
            ),
            _ => "storage error; see the daemon log".to_string(),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Builds a list row from a state-index entry ([`ExecutionPart::from_index`]).
type FromIndex<S, T> = fn(&str, &str, &str, S, &[u8]) -> std::result::Result<Option<T>, String>;

/// The latest revision of a flow, plus whether it was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowHead {
    pub namespace: String,
    pub id: String,
    pub revision: u32,
    pub deleted: bool,
    pub updated_ms: i64,
}

/// A durable timer: something to do for a task run at `due_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimerKey {
    pub due_ms: i64,
    pub execution_id: String,
    pub task_run_id: String,
    pub kind: String,
}

impl TimerKey {
    fn encode(&self) -> String {
        format!(
            "{:016x}\0{}\0{}\0{}",
            self.due_ms.max(0),
            self.execution_id,
            self.task_run_id,
            self.kind
        )
    }
    fn decode(k: &str) -> Option<TimerKey> {
        let mut parts = k.split('\0');
        let due_ms = i64::from_str_radix(parts.next()?, 16).ok()?;
        Some(TimerKey {
            due_ms,
            execution_id: parts.next()?.to_string(),
            task_run_id: parts.next()?.to_string(),
            kind: parts.next()?.to_string(),
        })
    }
}

/// Which executions a list wants.
#[derive(Debug, Clone)]
pub struct ExecutionFilter<S> {
    /// Empty = any state.
    pub states: Vec<S>,
    /// Namespace prefix on dotted boundaries (`hr` matches `hr` and `hr.ops`).
    pub namespace: Option<String>,
    pub flow_id: Option<String>,
    /// Namespace prefixes the caller may see; `None` = all.
    pub visible: Option<Vec<String>>,
}

impl<S> Default for ExecutionFilter<S> {
    fn default() -> Self {
        ExecutionFilter {
            states: Vec::new(),
            namespace: None,
            flow_id: None,
            visible: None,
        }
    }
}

impl<S> ExecutionFilter<S> {
    fn matches_names(&self, namespace: &str, flow_id: &str) -> bool {
        self.namespace.as_deref().is_none_or(|p| namespace_within(namespace, p))
            && self.flow_id.as_deref().is_none_or(|f| f == flow_id)
            && self
                .visible
                .as_ref()
                .is_none_or(|v| v.iter().any(|p| namespace_within(namespace, p)))
    }
}

/// Whether `namespace` is `prefix` or below it.
pub fn namespace_within(namespace: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || namespace == prefix
        || (namespace.len() > prefix.len()
            && namespace.starts_with(prefix)
            && namespace.as_bytes()[prefix.len()] == b'.')
}

fn state_index_key<E: ExecutionRecord>(e: &E) -> String {
    format!("{}\0{:016x}\0{}", e.state().name(), e.index_time_ms().max(0), e.id())
}

/// First byte of a state-index value that carries a row summary:
/// `\x02{namespace}\0{flow_id}\0{summary}`. Values written before start with the namespace
/// (letters, digits, `.`, `_`, `-`: never this byte) and hold `{namespace}\0{flow_id}` only.
const INDEX_WITH_SUMMARY: u8 = 0x02;

/// The state-index value of `e`: its names, then its row summary.
fn state_index_value<E: ExecutionRecord>(e: &E) -> Vec<u8> {
    let summary = e.index_summary();
    let mut v = Vec::with_capacity(3 + e.namespace().len() + e.flow_id().len() + summary.len());
    v.push(INDEX_WITH_SUMMARY);
    v.extend_from_slice(e.namespace().as_bytes());
    v.push(0);
    v.extend_from_slice(e.flow_id().as_bytes());
    v.push(0);
    v.extend_from_slice(&summary);
    v
}

/// A state-index value read back: namespace, flow id and the row summary (`None`: written
/// before summaries were kept). Namespaces and flow ids never hold `\0` (the key format relies
/// on it too); the summary may, and is everything after the second one.
struct IndexValue<'a> {
    namespace: &'a [u8],
    flow_id: &'a [u8],
    summary: Option<&'a [u8]>,
}

impl<'a> IndexValue<'a> {
    fn parse(v: &'a [u8]) -> Self {
        let (body, with_summary) = match v.split_first() {
            Some((&INDEX_WITH_SUMMARY, rest)) => (rest, true),
            _ => (v, false),
        };
        let mut parts = body.splitn(if with_summary { 3 } else { 2 }, |b| *b == 0);
        let namespace = parts.next().unwrap_or_default();
        let flow_id = parts.next().unwrap_or_default();
        let summary = if with_summary {
            Some(parts.next().unwrap_or_default())
        } else {
            None
        };
        IndexValue {
            namespace,
            flow_id,
            summary,
        }
    }

    fn names(&self) -> (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>) {
        (
            String::from_utf8_lossy(self.namespace),
            String::from_utf8_lossy(self.flow_id),
        )
    }
}

fn decode<T: DeserializeOwned>(table: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain data types to JSON cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

/// A stored key as text, lossily (our keys are text; a broken one shows as such in errors).
fn key_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON row at `key` of `table`, decoded.
fn get_json<T: DeserializeOwned>(r: &dyn KvRead, table: Table, key: &str) -> Result<Option<T>> {
    match r.get(table, k(key))? {
        Some(v) => Ok(Some(decode(table.name(), key, &v)?)),
        None => Ok(None),
    }
}

/// The execution stored under `id`, decoded as its type reads its records.
fn get_execution<E: ExecutionRecord>(r: &dyn KvRead, id: &str) -> Result<Option<E>> {
    match r.get(Table::Executions, k(id))? {
        Some(v) => Ok(Some(decode_execution(id, &v)?)),
        None => Ok(None),
    }
}

fn decode_execution<E: ExecutionRecord>(id: &str, bytes: &[u8]) -> Result<E> {
    E::from_stored(bytes).map_err(|message| StoreError::Corrupt {
        table: "executions",
        key: id.to_string(),
        message,
    })
}

/// Calls `f` with each row whose key is in `[lo, hi)`, in order, until it returns false.
fn scan_range(r: &dyn KvRead, table: Table, lo: &str, hi: &str, f: backend::Scan<'_>) -> Result<()> {
    r.scan(table, Bound::Included(k(lo)), Bound::Excluded(k(hi)), false, f)
}

/// Where the data lives.
#[derive(Clone)]
enum Backend {
    /// tollgate.redb (hot) and archive.redb: see `archive.rs`.
    Redb(Arc<archive::Files>),
    Postgres(Arc<postgres::PgStore>),
}

/// The database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    path: PathBuf,
    /// When commits save redb's allocator state (see [`QuickRepair`]).
    quick_repair: QuickRepair,
    /// Counts the clones of this store (the background threads hold the files, not this): the
    /// last one dropped waits for them to let go (see `Drop`).
    handles: Arc<()>,
}

impl Drop for Store {
    /// The flusher and the archiver hold the redb files only while they work, but the files
    /// close when the last holder lets go: if that were one of them, the data dir would stay
    /// locked a moment after the last handle is gone, and opening it again right away (a test,
    /// `tollgated compact` after a stop) would find it in use. So the last handle stops them and
    /// waits (bounded) until its own reference is the only one left.
    fn drop(&mut self) {
        let Backend::Redb(files) = &self.backend else {
            return;
        };
        if Arc::strong_count(&self.handles) != 1 {
            return;
        }
        files.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Arc::strong_count(files) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// When a commit also saves redb's allocator state, so that opening the file after a crash
/// loads it instead of walking the whole file (seconds per million executions). Saving it costs
/// about 1 MB written per commit whatever the store size (redb sizes the state for a full 4 GiB
/// region), so it is not done on every commit by default. Measured: README, Performance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuickRepair {
    /// Never (the next start after a crash repairs the whole file).
    Off,
    /// In a [`Store::checkpoint`] the writer makes once it has been idle a moment: a crash
    /// while idle restarts in milliseconds, a crash amid writes repairs the whole file.
    Idle,
    /// Every commit: every crash restarts in milliseconds; ~1 MB written per commit.
    Always,
}

/// Copies every table of `from` into `to` as it is (`tollgated migrate`): executions, logs,
/// timers, flows and revisions, users, tokens, sealed secrets, KV, the audit chain and its head,
/// metrics. Refuses a target that already holds executions, flows, users or audit records.
/// Returns the number of rows copied per table.
pub fn copy_all(from: &Store, to: &Store) -> Result<Vec<(&'static str, u64)>> {
    let target = to.read()?;
    for t in [Table::Executions, Table::Flows, Table::Users, Table::Audit] {
        let mut any = false;
        target.dump(t, &mut |_, _| {
            any = true;
            Ok(false)
        })?;
        if any {
            return Err(StoreError::Storage(format!(
                "the target {} already holds data (table {}); copy into an empty database",
                to.path().display(),
                t.name()
            )));
        }
    }
    drop(target);
    const CHUNK: usize = 2000;
    let source = from.read()?;
    let mut counts = Vec::new();
    for table in Table::ALL {
        if table == Table::Leases {
            continue;
        }
        let mut n = 0u64;
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let flush = |rows: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<()> {
            let batch = std::mem::take(rows);
            to.write(|w| {
                for (k, v) in &batch {
                    w.restore(table, k, v)?;
                }
                Ok::<_, StoreError>(())
            })
        };
        source.dump(table, &mut |k, v| {
            rows.push((k.to_vec(), v.to_vec()));
            n += 1;
            if rows.len() >= CHUNK {
                flush(&mut rows)?;
            }
            Ok(true)
        })?;
        if !rows.is_empty() {
            flush(&mut rows)?;
        }
        counts.push((table.name(), n));
    }
    Ok(counts)
}

/// Which store `tollgated serve --store` names: `redb` (the default, in the data dir) or a
/// PostgreSQL URL.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreSpec {
    #[default]
    Redb,
    Postgres(String),
}

impl std::fmt::Debug for StoreSpec {
    // Never the password: the spec is printed in errors and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Redb => f.write_str("redb"),
            StoreSpec::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<StoreSpec, String> {
        let s = s.trim();
        if s.is_empty() || s == "redb" {
            Ok(StoreSpec::Redb)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(s.to_string()))
        } else {
            Err(format!(
                "unknown store `{}`: use `redb` (the default) or a URL postgres://USER@HOST[:PORT]/DB",
                postgres::redact(s)
            ))
        }
    }
}

impl Store {
    /// Closes the database once every other holder (the writer thread, finishing its last batch)
    /// has let go, so redb records a clean shutdown and the next start needs no repair (a repair
    /// reads the whole file: seconds for a million executions). False when `wait` ran out; the
    /// next start then repairs, as after a crash. PostgreSQL needs nothing of this.
    pub fn close(self, wait: std::time::Duration) -> bool {
        let Backend::Redb(db) = &self.backend else {
            return true;
        };
        // The archiver lets go at its next look.
        db.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + wait;
        while Arc::strong_count(db) > 1 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The journal's overlay goes to tollgate.redb and the journal is emptied: the next start
        // replays nothing. Had this failed, the next start would replay the journal.
        if let Err(e) = db.flush_all() {
            tracing::warn!(error = %e, "cannot write the journal to tollgate.redb at shutdown; the next start replays it");
            return false;
        }
        true
    }

    /// Opens the store `spec` names: redb in `dir`, or a PostgreSQL database (migrated first).
    pub fn open_spec(spec: &StoreSpec, dir: &Path) -> Result<Store> {
        match spec {
            StoreSpec::Redb => Store::open(dir),
            StoreSpec::Postgres(url) => Store::open_postgres(url),
        }
    }

    /// Connects to a PostgreSQL database, applies the migrations it lacks and refuses one that
    /// a newer tollgated migrated.
    pub fn open_postgres(url: &str) -> Result<Store> {
        let pg = postgres::PgStore::open(url)?;
        let path = PathBuf::from(format!("postgres:{}", pg.name()));
        let store = Store {
            backend: Backend::Postgres(Arc::new(pg)),
            handles: Arc::new(()),
            path,
            quick_repair: QuickRepair::Off,
        };
        store.write(metrics::ensure_state_counts)?;
        Ok(store)
    }

    /// Opens (or creates) `dir/tollgate.redb` (hot) and `dir/archive.redb` and every table. A
    /// data dir from before the archive existed opens unchanged (its history is moved to the
    /// archive by [`Store::start_archiver`], in the background).
    /// The data dir is created 0700 and the files 0600: they hold executions, audit and users.
    pub fn open(dir: &Path) -> Result<Store> {
        // A bad setting is refused before the data dir is touched.
        let quick_repair = quick_repair_setting()?;
        let journal_on = hot::journal_setting()?;
        create_private_dir(dir)
            .map_err(|e| StoreError::Storage(format!("cannot create data dir {}: {e}", dir.display())))?;
        let path = dir.join("tollgate.redb");
        let hot = open_file(&path)?;
        let mut tx = hot.begin_write()?;
        tx.set_quick_repair(quick_repair != QuickRepair::Off);
        redb_backend::create_tables(&tx)?;
        tx.open_table(tables::TOMBSTONES)?;
        tx.open_table(hot::JOURNAL_META)?;
        tx.commit()?;
        // Every archive commit saves the allocator state (they are rare and large): after a
        // crash the archive opens in milliseconds whatever its size.
        let archive = open_file(&dir.join(ARCHIVE_FILE))?;
        let mut tx = archive.begin_write()?;
        tx.set_quick_repair(true);
        redb_backend::create_tables(&tx)?;
        tx.commit()?;
        crate::metrics::process().quick_repair_saved(quick_repair != QuickRepair::Off);
        // What the journal holds beyond tollgate.redb comes back before anything reads.
        let journal = hot::open(dir, &hot, journal_on, quick_repair != QuickRepair::Off)?;
        let files = Arc::new(archive::Files {
            hot,
            archive,
            stop: Default::default(),
            journal,
        });
        if files.journal.is_some() {
            hot::spawn_flusher(Arc::downgrade(&files));
        }
        let store = Store {
            backend: Backend::Redb(files),
            path,
            quick_repair,
            handles: Arc::new(()),
        };
        store.write(metrics::ensure_state_counts)?;
        Ok(store)
    }

    /// Starts moving finished executions (state `S` terminal), their logs and files, and old
    /// audit records from tollgate.redb to archive.redb in the background (redb only; a no-op on
    /// PostgreSQL). Readers see no difference.
    pub fn start_archiver<S: IndexedState>(&self, settings: ArchiveSettings) {
        let Backend::Redb(files) = &self.backend else {
            return;
        };
        let terminal = S::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.name()).collect();
        archive::spawn(
            Arc::downgrade(files),
            terminal,
            settings,
            self.quick_repair != QuickRepair::Off,
        );
    }

    /// Runs the archiver's rounds here until nothing is left to move (with `after` = 0: every
    /// finished execution). For a stopped daemon's store (`tollgate-bench` seeds, tests).
    /// Returns the executions and audit records moved.
    pub fn archive_now<S: IndexedState>(&self, settings: &ArchiveSettings) -> Result<(u64, u64)> {
        let Backend::Redb(files) = &self.backend else {
            return Ok((0, 0));
        };
        let terminal: Vec<&'static str> = S::ALL.iter().filter(|s| s.is_terminal()).map(|s| s.name()).collect();
        let (mut executions, mut audit) = (0u64, 0u64);
        loop {
            let b = archive::round(
                files,
                &settings.policy(&terminal),
                self.quick_repair != QuickRepair::Off,
            )?;
            if b.is_empty() {
                return Ok((executions, audit));
            }
            executions += b.executions as u64;
            audit += b.audit as u64;
        }
    }

    /// Rewrites tollgate.redb (hot) so the file keeps only live pages: redb files never shrink,
    /// so a data dir whose history was drained to the archive keeps its old size otherwise. Needs
    /// the only handle on the store (a stopped daemon's data dir): false, nothing done, if another
    /// exists or the store is not redb.
    pub fn compact_hot(self) -> Result<bool> {
        let Backend::Redb(files) = &self.backend else {
            return Ok(false);
        };
        let (files, path) = (files.clone(), self.path.clone());
        // This function waits for the background threads itself (and must keep the files open
        // to compact them): the dropped handle must not.
        let not_last = self.handles.clone();
        drop(self);
        drop(not_last);
        // The flusher lets go at its next look; what it had not flushed is flushed here, so the
        // compacted file holds everything and the journal is empty.
        files.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Arc::strong_count(&files) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        files.flush_all()?;
        let Ok(mut files) = Arc::try_unwrap(files) else {
            return Ok(false);
        };
        files
            .hot
            .compact()
            .map_err(|e| StoreError::Storage(format!("cannot compact {}: {e}", path.display())))
    }

    /// The hot redb file, or `postgres:` and the database's name (no password).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk of the redb files (hot and archive); 0 on PostgreSQL.
    pub fn disk_bytes(&self) -> u64 {
        match &self.backend {
            Backend::Redb(_) => [self.path.clone(), self.path.with_file_name(ARCHIVE_FILE)]
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
            Backend::Postgres(_) => 0,
        }
    }

    /// The PostgreSQL store behind this one, if that is where the data lives.
    pub fn postgres(&self) -> Option<&Arc<postgres::PgStore>> {
        match &self.backend {
            Backend::Postgres(pg) => Some(pg),
            Backend::Redb(_) => None,
        }
    }

    /// Whether a point read costs microseconds of this process's CPU and no wait (the local
    /// redb file, its recent changes in memory) rather than a round trip to a database server.
    pub fn reads_locally(&self) -> bool {
        matches!(self.backend, Backend::Redb(_))
    }

    /// When commits save the allocator state.
    pub fn quick_repair(&self) -> QuickRepair {
        self.quick_repair
    }

    /// Whether this daemon's last write transaction waited for the write lock (PostgreSQL with
    /// other daemons writing): the writer then takes the lock before it closes its batch, so the
    /// commands that arrive while it waits go into the same transaction. Never on redb.
    pub fn write_contended(&self) -> bool {
        match &self.backend {
            Backend::Redb(_) => false,
            Backend::Postgres(pg) => pg.contended(),
        }
    }

    /// An empty commit that saves redb's allocator state (with [`QuickRepair::Idle`]; a no-op
    /// otherwise): until the next commit, a crash needs no repair of the whole file.
    pub fn checkpoint(&self) -> Result<()> {
        if self.quick_repair != QuickRepair::Idle {
            return Ok(());
        }
        let Backend::Redb(db) = &self.backend else {
            return Ok(());
        };
        // With the journal every flush saves the allocator state already.
        if db.journal.is_some() {
            return Ok(());
        }
        let mut tx = db.hot.begin_write()?;
        tx.set_quick_repair(true);
        tx.commit()?;
        crate::metrics::process().quick_repair_saved(true);
        Ok(())
    }

    /// A consistent snapshot for reading; never blocks writers.
    pub fn read(&self) -> Result<Reader> {
        Ok(Reader {
            tx: match &self.backend {
                Backend::Redb(db) => ReadTx::Redb(archive::UnionRead::begin(db)?),
                Backend::Postgres(pg) => ReadTx::Pg(pg.begin_read()?),
            },
        })
    }

    /// Runs `f` in one write transaction and commits it durably; nothing is written if `f` fails.
    /// On PostgreSQL every write transaction of every daemon sharing the database holds one
    /// transaction-scoped lock, so writes serialize exactly as redb's single writer does.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Writer) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.write_as(false, f)
    }

    /// [`Store::write`] as a PostgreSQL *row batch* when `rows`: the transaction shares the
    /// exclusive lock with other row batches, locks the executions it reads (`FOR UPDATE`), and
    /// writes the rows every batch writes (state counts, metrics, the audit chain, the write
    /// counter, the change feed) only at its end under a short commit lock; anything else it
    /// touches fails it with [`StoreError::Conflict`] (see `store/postgres/mod.rs`). On redb
    /// `rows` changes nothing: one writer.
    pub fn write_as<T, E: From<StoreError>>(
        &self,
        rows: bool,
        f: impl FnOnce(&mut Writer) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = match &self.backend {
            Backend::Redb(db) => WriteTx::Redb(archive::UnionWrite::begin(
                db,
                self.quick_repair == QuickRepair::Always,
            )?),
            Backend::Postgres(pg) => WriteTx::Pg(pg.begin_write(rows)?),
        };
        let mut w = Writer {
            tx,
            index_keys: Default::default(),
            audit_last: Default::default(),
            state_deltas: Default::default(),
            pending_metrics: Default::default(),
            audit_pending: Default::default(),
        };
        let out = f(&mut w)?;
        let now = chrono::Utc::now().timestamp_millis();
        w.lock_late(now)?;
        w.flush_metrics()?;
        w.flush_state_counts(now)?;
        w.flush_audit()?;
        let started = std::time::Instant::now();
        match w.tx {
            WriteTx::Redb(tx) => tx.commit()?,
            WriteTx::Pg(tx) => tx.commit()?,
        }
        crate::metrics::process().observe_commit(started.elapsed());
        if let Backend::Redb(db) = &self.backend
            && db.journal.is_none()
        {
            crate::metrics::process().quick_repair_saved(self.quick_repair == QuickRepair::Always);
        }
        Ok(out)
    }
}

// One per read, never copied: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum ReadTx {
    Redb(archive::UnionRead),
    Pg(postgres::PgRead),
}

/// Typed reads in one snapshot.
pub struct Reader {
    tx: ReadTx,
}

// One per write transaction, never copied: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum WriteTx {
    Redb(archive::UnionWrite),
    Pg(postgres::PgWrite),
}

impl Reader {
    fn kv_read(&self) -> &dyn KvRead {
        match &self.tx {
            ReadTx::Redb(tx) => tx,
            ReadTx::Pg(tx) => tx,
        }
    }

    pub fn execution<E: ExecutionRecord>(&self, id: &str) -> Result<Option<E>> {
        get_execution(self.kv_read(), id)
    }

    /// One page of executions matching `filter`: PAUSED ones oldest pause first, others oldest first.
    /// `after` is the opaque token returned with the previous page.
    pub fn executions<E: ExecutionRecord>(
        &self,
        filter: &ExecutionFilter<E::State>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<E>, Option<String>)> {
        self.list_executions(filter, limit, after, E::from_stored, None)
    }

    /// [`Self::executions`] as list rows: same filter, order, paging and visibility. A row comes
    /// from the summary in its state-index entry when that entry has one (the index is scanned
    /// in order and the executions table is not read); an entry written before summaries were
    /// kept has its execution read and decoded in part instead.
    pub fn execution_parts<P: ExecutionPart>(
        &self,
        filter: &ExecutionFilter<P::State>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<P>, Option<String>)> {
        self.list_executions(filter, limit, after, P::from_stored, Some(P::from_index))
    }

    fn list_executions<S: IndexedState, T>(
        &self,
        filter: &ExecutionFilter<S>,
        limit: usize,
        after: Option<&str>,
        decode: fn(&[u8]) -> std::result::Result<T, String>,
        from_index: Option<FromIndex<S, T>>,
    ) -> Result<(Vec<T>, Option<String>)> {
        let r = self.kv_read();
        let mut states: Vec<S> = if filter.states.is_empty() {
            S::ALL.to_vec()
        } else {
            filter.states.clone()
        };
        states.sort_by_key(|s| state_position(*s));
        states.dedup();
        let resume_at = after.map(|a| (state_order::<S>(a), a));
        let mut out = Vec::new();
        let mut last_key: Option<String> = None;
        let mut full = false;
        for state in states {
            let lo = format!("{}\0", state.name());
            let hi = format!("{}\x01", state.name());
            let start = match resume_at {
                Some((pos, _)) if pos > state_position(state) => continue,
                Some((pos, a)) if pos == state_position(state) => format!("{a}\x01"),
                _ => lo,
            };
            if start.as_str() >= hi.as_str() {
                continue;
            }
            // Rows in index order; `None` until its execution is read (no summary in the index).
            let mut rows: Vec<Option<T>> = Vec::new();
            let mut to_read: Vec<(usize, String)> = Vec::new();
            // The last listed key (the next page's token), kept in one buffer: no copy per row.
            let mut last_in_state: Vec<u8> = Vec::new();
            scan_range(r, Table::ExecutionsByState, &start, &hi, &mut |key, v| {
                let value = IndexValue::parse(v);
                let (ns, flow) = value.names();
                if !filter.matches_names(&ns, &flow) {
                    return Ok(true);
                }
                if out.len() + rows.len() == limit {
                    full = true;
                    return Ok(false);
                }
                let id_bytes = key.rsplit(|b| *b == 0).next().unwrap_or_default();
                let id = String::from_utf8_lossy(id_bytes);
                let row = match (from_index, value.summary) {
                    (Some(from_index), Some(summary)) => {
                        from_index(&id, &ns, &flow, state, summary).map_err(|message| StoreError::Corrupt {
                            table: "executions_by_state",
                            key: key_text(key),
                            message,
                        })?
                    }
                    _ => None,
                };
                if row.is_none() {
                    to_read.push((rows.len(), id.into_owned()));
                }
                rows.push(row);
                last_in_state.clear();
                last_in_state.extend_from_slice(key);
                Ok(true)
            })?;
            if !to_read.is_empty() {
                // One round trip for the page on PostgreSQL, one table lookup on redb; not one per row.
                let prefetch: Vec<(Table, &[u8])> = to_read.iter().map(|(_, id)| (Table::Executions, k(id))).collect();
                r.prefetch(&prefetch)?;
                let keys: Vec<&[u8]> = to_read.iter().map(|(_, id)| k(id)).collect();
                r.get_each(Table::Executions, &keys, &mut |i, doc| {
                    if let Some(doc) = doc {
                        let (at, id) = &to_read[i];
                        rows[*at] = Some(decode(doc).map_err(|message| StoreError::Corrupt {
                            table: "executions",
                            key: id.clone(),
                            message,
                        })?);
                    }
                    Ok(())
                })?;
            }
            // An index entry whose execution is gone lists nothing (as before summaries).
            out.extend(rows.into_iter().flatten());
            if !last_in_state.is_empty() {
                last_key = Some(key_text(&last_in_state));
            }
            if full {
                break;
            }
        }
        let next = if out.len() == limit { last_key } else { None };
        Ok((out, next))
    }

    /// Ids of finished executions created before `before_ms`, oldest first, at most `limit`
    /// (a range scan of the state index: never a full scan).
    pub fn finished_before<S: IndexedState>(&self, before_ms: i64, limit: usize) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for state in S::ALL.iter().copied().filter(|s| s.is_terminal()) {
            let lo = format!("{}\0", state.name());
            let hi = format!("{}\0{:016x}", state.name(), before_ms.max(0));
            scan_range(self.kv_read(), Table::ExecutionsByState, &lo, &hi, &mut |key, _| {
                out.push(key_text(key).rsplit('\0').next().unwrap_or_default().to_string());
                Ok(out.len() < limit)
            })?;
            if out.len() >= limit {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Number of executions in `state` (all namespaces).
    pub fn count_in_state<S: IndexedState>(&self, state: S) -> Result<u64> {
        let lo = format!("{}\0", state.name());
        let hi = format!("{}\x01", state.name());
        let mut n = 0;
        scan_range(self.kv_read(), Table::ExecutionsByState, &lo, &hi, &mut |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }

    pub fn execution_count(&self) -> Result<u64> {
        self.kv_read().len(Table::Executions)
    }

    /// Ids of executions in `state`, oldest first (used at start to resume interrupted work).
    pub fn execution_ids_in_state<S: IndexedState>(&self, state: S) -> Result<Vec<String>> {
        let lo = format!("{}\0", state.name());
        let hi = format!("{}\x01", state.name());
        let mut ids = Vec::new();
        scan_range(self.kv_read(), Table::ExecutionsByState, &lo, &hi, &mut |key, _| {
            ids.push(key_text(key).rsplit('\0').next().unwrap_or_default().to_string());
            Ok(true)
        })?;
        Ok(ids)
    }

    /// Log lines of an execution with `seq >= from`, at most `limit`.
    pub fn logs<L: LogRecord>(&self, execution_id: &str, from: u64, limit: usize) -> Result<Vec<L>> {
        logs(self.kv_read(), execution_id, from, limit)
    }

    /// Timers due at or before `now_ms`, earliest first.
    pub fn due_timers(&self, now_ms: i64, limit: usize) -> Result<Vec<TimerKey>> {
        let hi = format!("{:016x}\x01", now_ms.max(0));
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.kv_read().scan(
            Table::Timers,
            Bound::Unbounded,
            Bound::Excluded(k(&hi)),
            false,
            &mut |key, _| {
                if let Some(t) = TimerKey::decode(&key_text(key)) {
                    out.push(t);
                }
                Ok(out.len() < limit)
            },
        )?;
        Ok(out)
    }

    /// The earliest pending timer, if any.
    pub fn next_timer(&self) -> Result<Option<TimerKey>> {
        let mut first = None;
        self.kv_read().scan(
            Table::Timers,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, _| {
                first = TimerKey::decode(&key_text(key));
                Ok(false)
            },
        )?;
        Ok(first)
    }

    pub fn flow_head(&self, namespace: &str, id: &str) -> Result<Option<FlowHead>> {
        get_json(self.kv_read(), Table::Flows, &format!("{namespace}\0{id}"))
    }

    pub fn flow_source(&self, namespace: &str, id: &str, revision: u32) -> Result<Option<String>> {
        flow_source(self.kv_read(), namespace, id, revision)
    }

    /// Every flow that is not deleted.
    pub fn flows(&self) -> Result<Vec<FlowHead>> {
        let mut out = Vec::new();
        self.kv_read().scan(
            Table::Flows,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, v| {
                let head: FlowHead = decode("flows", &key_text(key), v)?;
                if !head.deleted {
                    out.push(head);
                }
                Ok(true)
            },
        )?;
        Ok(out)
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.kv_read().get(Table::Meta, k(key))
    }

    /// Every row of every table, in order (copying a store: `tollgated migrate`).
    pub fn dump(&self, table: Table, f: backend::Scan<'_>) -> Result<()> {
        self.kv_read().scan(table, Bound::Unbounded, Bound::Unbounded, false, f)
    }
}

fn logs<L: LogRecord>(r: &dyn KvRead, execution_id: &str, from: u64, limit: usize) -> Result<Vec<L>> {
    let lo = format!("{execution_id}\0{from:016x}");
    let hi = format!("{execution_id}\x01");
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    scan_range(r, Table::Logs, &lo, &hi, &mut |key, v| {
        out.push(L::from_stored(v).map_err(|message| StoreError::Corrupt {
            table: "logs",
            key: key_text(key),
            message,
        })?);
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

fn flow_source(r: &dyn KvRead, namespace: &str, id: &str, revision: u32) -> Result<Option<String>> {
    let key = format!("{namespace}\0{id}\0{revision:08x}");
    Ok(r.get(Table::FlowRevisions, k(&key))?.map(|v| key_text(&v)))
}

fn state_position<S: IndexedState>(state: S) -> usize {
    S::ALL.iter().position(|s| *s == state).unwrap_or(0)
}

/// The list position of the state a state-index key starts with (0 when it names none).
fn state_order<S: IndexedState>(key: &str) -> usize {
    key.split('\0')
        .next()
        .and_then(|name| S::ALL.iter().position(|s| s.name() == name))
        .unwrap_or(0)
}

/// Typed writes inside one transaction.
pub struct Writer {
    tx: WriteTx,
    /// State-index key of every execution this transaction read or wrote, as stored now (`None`:
    /// not stored). A change usually reads its execution, then writes it back: the second decode
    /// of the stored document that keeping the index in step would need is skipped.
    index_keys: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
    /// The newest audit record's link (seq, hash) once this transaction has read or written it:
    /// a batch appends many records, and each needs the one before it.
    audit_last: std::cell::RefCell<Option<AuditHead>>,
    /// Executions gained (+) or lost (-) per state in this transaction, added to the stored
    /// counts just before commit.
    state_deltas: std::cell::RefCell<std::collections::HashMap<String, i64>>,
    /// Aggregate rows of the metrics table changed in this transaction, written at its end.
    pending_metrics: std::cell::RefCell<std::collections::HashMap<String, metrics::PendingMetric>>,
    /// Audit records of a PostgreSQL row batch, linked to the chain only under the commit lock
    /// (see `audit.rs`): each gets its seq and the hash before it, and gives its bytes and hash.
    audit_pending: Vec<audit::PendingRecord>,
}

impl Writer {
    fn kv_read(&self) -> &dyn KvRead {
        match &self.tx {
            WriteTx::Redb(tx) => tx,
            WriteTx::Pg(tx) => tx,
        }
    }

    fn kvw(&mut self) -> &mut dyn KvWrite {
        match &mut self.tx {
            WriteTx::Redb(tx) => tx,
            WriteTx::Pg(tx) => tx,
        }
    }

    /// Copies one raw row (`tollgated migrate`: every table as it is).
    pub fn restore(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.kvw().put(table, key, value)
    }

    pub fn execution<E: ExecutionRecord>(&self, id: &str) -> Result<Option<E>> {
        let found: Option<E> = get_execution(self.kv_read(), id)?;
        self.index_keys
            .borrow_mut()
            .insert(id.to_string(), found.as_ref().map(state_index_key));
        Ok(found)
    }

    /// The stored state-index key of execution `id`, if it is stored.
    fn stored_index_key<E: ExecutionRecord>(&self, id: &str) -> Result<Option<String>> {
        if let Some(known) = self.index_keys.borrow().get(id) {
            return Ok(known.clone());
        }
        Ok(self.execution::<E>(id)?.map(|e| state_index_key(&e)))
    }

    /// The stored state of execution `id` (before any change not yet put), if it is stored.
    pub fn stored_state<S: IndexedState>(&self, id: &str) -> Result<Option<S>> {
        Ok(self.stored_index_key::<S::Execution>(id)?.and_then(|k| {
            k.split('\0')
                .next()
                .and_then(|name| S::ALL.iter().copied().find(|s| s.name() == name))
        }))
    }

    /// Ids of the executions of flow `namespace`/`flow_id` in `state`, oldest first, as this
    /// transaction sees them (flow `concurrency` counts and queues by them).
    pub fn flow_execution_ids_in_state<S: IndexedState>(
        &self,
        state: S,
        namespace: &str,
        flow_id: &str,
    ) -> Result<Vec<String>> {
        let lo = format!("{}\0", state.name());
        let hi = format!("{}\x01", state.name());
        let mut ids = Vec::new();
        scan_range(self.kv_read(), Table::ExecutionsByState, &lo, &hi, &mut |key, v| {
            let value = IndexValue::parse(v);
            if value.namespace == namespace.as_bytes() && value.flow_id == flow_id.as_bytes() {
                ids.push(key_text(key).rsplit('\0').next().unwrap_or_default().to_string());
            }
            Ok(true)
        })?;
        Ok(ids)
    }

    /// Stores an execution and keeps the state index in step with it.
    pub fn put_execution<E: ExecutionRecord>(&mut self, e: &E) -> Result<()> {
        let old_key = self.stored_index_key::<E>(e.id())?;
        let new_key = state_index_key(e);
        self.kvw().put(Table::Executions, k(e.id()), &e.to_stored())?;
        let new_state = metrics::state_of_key(&new_key);
        match &old_key {
            Some(old) if metrics::state_of_key(old) == new_state => {}
            Some(old) => {
                let deltas = self.state_deltas.get_mut();
                *deltas.entry(metrics::state_of_key(old).to_string()).or_default() -= 1;
                *deltas.entry(new_state.to_string()).or_default() += 1;
            }
            None => *self.state_deltas.get_mut().entry(new_state.to_string()).or_default() += 1,
        }
        if let Some(old) = old_key
            && old != new_key
        {
            self.kvw().erase(Table::ExecutionsByState, k(&old))?;
        }
        // Rewritten on every put, not only when the key moves: the row summary in it changes
        // without a state change too (an approval, one of two gates resumed, labels).
        self.kvw()
            .put(Table::ExecutionsByState, k(&new_key), &state_index_value(e))?;
        if e.state().is_terminal() && self.daemon_id().is_some() {
            // A finished execution runs nothing: no daemon holds it any more.
            self.kvw().erase(Table::Leases, k(e.id()))?;
        }
        self.index_keys.get_mut().insert(e.id().to_string(), Some(new_key));
        Ok(())
    }

    /// Removes an execution, its index entry and its log lines (retention).
    pub fn delete_execution<E: ExecutionRecord>(&mut self, id: &str) -> Result<bool> {
        let Some(old) = self.execution::<E>(id)? else {
            return Ok(false);
        };
        self.index_keys.get_mut().insert(id.to_string(), None);
        *self
            .state_deltas
            .get_mut()
            .entry(old.state().name().to_string())
            .or_default() -= 1;
        self.kvw().erase(Table::Executions, k(id))?;
        self.kvw().erase(Table::ExecutionsByState, k(&state_index_key(&old)))?;
        let lo = format!("{id}\0");
        let hi = format!("{id}\x01");
        let mut keys = Vec::new();
        scan_range(self.kv_read(), Table::Logs, &lo, &hi, &mut |key, _| {
            keys.push(key.to_vec());
            Ok(true)
        })?;
        for key in keys {
            self.kvw().erase(Table::Logs, &key)?;
        }
        // Its files (FILE inputs, ForEachItem batches, script outputs) go with it.
        self.delete_files(id)?;
        self.kvw().erase(Table::Leases, k(id))?;
        Ok(true)
    }

    /// Log lines of an execution from `from`, at most `limit`, including lines appended in this
    /// transaction (`errorLogs()` in a step must see the failure recorded just before it).
    pub fn logs<L: LogRecord>(&self, execution_id: &str, from: u64, limit: usize) -> Result<Vec<L>> {
        logs(self.kv_read(), execution_id, from, limit)
    }

    pub fn append_log<L: LogRecord>(&mut self, line: &L) -> Result<()> {
        let key = format!("{}\0{:016x}", line.execution_id(), line.seq());
        self.kvw().put(Table::Logs, k(&key), &line.to_stored())
    }

    pub fn put_timer(&mut self, timer: &TimerKey) -> Result<()> {
        self.kvw().put(Table::Timers, k(&timer.encode()), &[])
    }

    pub fn delete_timer(&mut self, timer: &TimerKey) -> Result<()> {
        self.kvw().erase(Table::Timers, k(&timer.encode()))
    }

    /// Whether the timer is still stored, as this transaction sees it (several daemons may read
    /// the same due timer; only the first transaction that finds and deletes it fires it).
    pub fn has_timer(&self, timer: &TimerKey) -> Result<bool> {
        Ok(self.kv_read().get(Table::Timers, k(&timer.encode()))?.is_some())
    }

    pub fn flow_head(&self, namespace: &str, id: &str) -> Result<Option<FlowHead>> {
        get_json(self.kv_read(), Table::Flows, &format!("{namespace}\0{id}"))
    }

    pub fn flow_source(&self, namespace: &str, id: &str, revision: u32) -> Result<Option<String>> {
        flow_source(self.kv_read(), namespace, id, revision)
    }

    /// Stores a new revision of a flow and makes it the latest.
    pub fn put_flow_revision(&mut self, head: &FlowHead, source: &str) -> Result<()> {
        let key = format!("{}\0{}\0{:08x}", head.namespace, head.id, head.revision);
        self.kvw().put(Table::FlowRevisions, k(&key), k(source))?;
        self.put_flow_head(head)
    }

    pub fn put_flow_head(&mut self, head: &FlowHead) -> Result<()> {
        let key = format!("{}\0{}", head.namespace, head.id);
        self.kvw().put(Table::Flows, k(&key), &encode(head))
    }

    /// Next fire time of a Schedule trigger, if it is registered.
    pub fn schedule_due(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<Option<i64>> {
        let key = format!("{namespace}\0{flow_id}\0{trigger_id}");
        Ok(self
            .kv_read()
            .get(Table::Schedules, k(&key))?
            .and_then(|v| decode_i64(&v)))
    }

    pub fn put_schedule(&mut self, namespace: &str, flow_id: &str, trigger_id: &str, due_ms: i64) -> Result<()> {
        let key = format!("{namespace}\0{flow_id}\0{trigger_id}");
        self.kvw().put(Table::Schedules, k(&key), &due_ms.to_le_bytes())
    }

    /// Removes every Schedule trigger of a flow; returns (trigger id, due) of each.
    pub fn take_schedules(&mut self, namespace: &str, flow_id: &str) -> Result<Vec<(String, i64)>> {
        let lo = format!("{namespace}\0{flow_id}\0");
        let hi = format!("{namespace}\0{flow_id}\x01");
        let mut found = Vec::new();
        scan_range(self.kv_read(), Table::Schedules, &lo, &hi, &mut |key, v| {
            found.push((key_text(key), decode_i64(v).unwrap_or(0)));
            Ok(true)
        })?;
        let mut out = Vec::new();
        for (key, due) in found {
            self.kvw().erase(Table::Schedules, k(&key))?;
            out.push((key.rsplit('\0').next().unwrap_or_default().to_string(), due));
        }
        Ok(out)
    }

    /// What a trigger's MultipleCondition has seen in its window (encoded by the engine).
    pub fn condition_window(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.kv_read().get(Table::ConditionWindows, k(key))
    }

    pub fn put_condition_window(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.kvw().put(Table::ConditionWindows, k(key), value)
    }

    pub fn delete_condition_window(&mut self, key: &str) -> Result<()> {
        self.kvw().erase(Table::ConditionWindows, k(key))
    }

    /// Removes every window whose key starts with `prefix` (all windows of a flow).
    pub fn delete_condition_windows(&mut self, prefix: &str) -> Result<()> {
        let mut keys = Vec::new();
        self.kv_read().scan(
            Table::ConditionWindows,
            Bound::Included(k(prefix)),
            Bound::Unbounded,
            false,
            &mut |key, _| {
                if !key.starts_with(prefix.as_bytes()) {
                    return Ok(false);
                }
                keys.push(key.to_vec());
                Ok(true)
            },
        )?;
        for key in keys {
            self.kvw().erase(Table::ConditionWindows, &key)?;
        }
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.kv_read().get(Table::Meta, k(key))
    }

    pub fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.kvw().put(Table::Meta, k(key), value)
    }

    /// Reads the stored executions `ids` and their leases ahead, together: a batch's commands
    /// then find them without a round trip each (PostgreSQL; nothing to do on redb).
    /// Begins the transaction now (PostgreSQL: waits for the write lock and reads nothing
    /// else); nothing on redb, whose write transaction is begun already.
    pub fn begin_now(&self) -> Result<()> {
        match &self.tx {
            WriteTx::Pg(tx) => tx.begin_now(),
            WriteTx::Redb(_) => Ok(()),
        }
    }

    pub fn prefetch_executions(&self, ids: &[&str]) -> Result<()> {
        if ids.is_empty() || !matches!(self.tx, WriteTx::Pg(_)) {
            return Ok(());
        }
        let keys: Vec<(Table, &[u8])> = ids
            .iter()
            .flat_map(|id| [(Table::Executions, k(id)), (Table::Leases, k(id))])
            .collect();
        self.kv_read().prefetch(&keys)
    }

    /// The daemon id of this transaction's store when it is shared (PostgreSQL).
    /// This daemon's id on a shared database (`None` on redb, where one daemon runs everything).
    pub fn daemon_id(&self) -> Option<String> {
        match &self.tx {
            WriteTx::Pg(tx) => Some(tx.daemon_id().to_string()),
            WriteTx::Redb(_) => None,
        }
    }

    /// Notes that this daemon runs task runs of execution `id` (PostgreSQL: another daemon takes
    /// them over when this one stops heart-beating). Nothing on redb, where one daemon runs all.
    pub fn lease_execution(&mut self, id: &str) -> Result<()> {
        let Some(me) = self.daemon_id() else {
            return Ok(());
        };
        let mut holders: Vec<String> = get_json(self.kv_read(), Table::Leases, id)?.unwrap_or_default();
        if !holders.contains(&me) {
            holders.push(me);
            self.kvw().put(Table::Leases, k(id), &encode(&holders))?;
        }
        Ok(())
    }

    /// Moves every lease held by daemon `dead` to this daemon; the ids of the executions whose
    /// task runs it held (the caller recovers them). Runs under the write lock, so when several
    /// daemons see `dead` expire, exactly one takes each execution over.
    pub fn take_over_leases(&mut self, dead: &str) -> Result<Vec<String>> {
        let Some(me) = self.daemon_id() else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        self.kv_read().scan(
            Table::Leases,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, v| {
                let holders: Vec<String> = decode("leases", &key_text(key), v)?;
                if holders.iter().any(|h| h == dead) {
                    found.push((key_text(key), holders));
                }
                Ok(true)
            },
        )?;
        let mut ids = Vec::new();
        for (id, mut holders) in found {
            holders.retain(|h| h != dead && h != &me);
            holders.push(me.clone());
            self.kvw().put(Table::Leases, k(&id), &encode(&holders))?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Of `ids` (in-flight executions), those no daemon holds a lease on, now leased to this
    /// one (a daemon starting on a database copied from redb, or an execution that never ran a
    /// task). On redb: all of them.
    pub fn claim_unleased(&mut self, ids: Vec<String>) -> Result<Vec<String>> {
        if self.daemon_id().is_none() {
            return Ok(ids);
        }
        let mut out = Vec::new();
        for id in ids {
            if self.kv_read().get(Table::Leases, k(&id))?.is_none() {
                self.lease_execution(&id)?;
                out.push(id);
            }
        }
        Ok(out)
    }
}

/// A schedule's due time as stored (8 little-endian bytes, redb's own `i64` encoding).
fn decode_i64(b: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(b.try_into().ok()?))
}

/// `TOLLGATE_QUICK_REPAIR`: `idle` (the default when unset), `always` or `off`.
/// Opens (or creates) one redb file, private to the owner.
fn open_file(path: &Path) -> Result<Database> {
    // redb calls this only when it must read the whole file (the last commit before a crash
    // saved no allocator state): said in the log, since it makes this start slow.
    let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opening = std::time::Instant::now();
    let db = redb::Builder::new()
        .set_repair_callback({
            let repaired = repaired.clone();
            move |_| repaired.store(true, std::sync::atomic::Ordering::Relaxed)
        })
        .create(path)
        .map_err(|cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        })?;
    if repaired.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            file = %path.display(),
            took_ms = opening.elapsed().as_millis() as u64,
            "the data store was not closed cleanly and its last commit saved no allocator state: the whole \
             file was read to repair it (TOLLGATE_QUICK_REPAIR)"
        );
    }
    restrict_to_owner(path)
        .map_err(|e| StoreError::Storage(format!("cannot make {} private (0600): {e}", path.display())))?;
    Ok(db)
}

fn quick_repair_setting() -> Result<QuickRepair> {
    match std::env::var("TOLLGATE_QUICK_REPAIR").as_deref() {
        Err(_) | Ok("idle") => Ok(QuickRepair::Idle),
        Ok("always") => Ok(QuickRepair::Always),
        Ok("off") => Ok(QuickRepair::Off),
        Ok(other) => Err(StoreError::Storage(format!(
            "TOLLGATE_QUICK_REPAIR must be idle, always or off, not `{other}`"
        ))),
    }
}

/// Creates `dir` (and missing parents) readable by its owner only; an existing dir is left as it
/// is, with a warning when others may read it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                "the data dir can be read by other users; `chmod 700` it"
            );
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Makes a file the daemon wrote readable and writable by its owner only (0600).
pub fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The on-disk format is the one earlier versions wrote: the same tables, keys and JSON, so
    //! existing data dirs open. A local record type stands in for the engine's.

    use redb::ReadableTable;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub(super) enum St {
        Running,
        Paused,
        Success,
    }

    impl IndexedState for St {
        type Execution = Ex;
        const ALL: &'static [St] = &[St::Running, St::Paused, St::Success];
        fn name(self) -> &'static str {
            match self {
                St::Running => "RUNNING",
                St::Paused => "PAUSED",
                St::Success => "SUCCESS",
            }
        }
        fn is_terminal(self) -> bool {
            self == St::Success
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Ex {
        id: String,
        namespace: String,
        flow_id: String,
        state: St,
        created_ms: i64,
        paused_ms: Option<i64>,
    }

    impl ExecutionRecord for Ex {
        type State = St;
        fn id(&self) -> &str {
            &self.id
        }
        fn state(&self) -> St {
            self.state
        }
        fn namespace(&self) -> &str {
            &self.namespace
        }
        fn flow_id(&self) -> &str {
            &self.flow_id
        }
        fn index_time_ms(&self) -> i64 {
            if self.state == St::Paused {
                self.paused_ms.unwrap_or(self.created_ms)
            } else {
                self.created_ms
            }
        }
        fn index_summary(&self) -> Vec<u8> {
            // Holds a \0, as a real (MessagePack) summary may.
            format!("s\0{}", self.created_ms).into_bytes()
        }
    }

    /// A list row: where it came from (the index entry's summary, or the execution).
    #[derive(Debug, Clone, PartialEq)]
    struct Row {
        id: String,
        names: String,
        state: St,
        from: String,
    }

    impl ExecutionPart for Row {
        type State = St;
        fn from_stored(bytes: &[u8]) -> std::result::Result<Self, String> {
            let e: Ex = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            Ok(Row {
                id: e.id,
                names: format!("{}/{}", e.namespace, e.flow_id),
                state: e.state,
                from: "execution".into(),
            })
        }
        fn from_index(
            id: &str,
            namespace: &str,
            flow_id: &str,
            state: St,
            summary: &[u8],
        ) -> std::result::Result<Option<Self>, String> {
            if !summary.starts_with(b"s\0") {
                return Ok(None);
            }
            Ok(Some(Row {
                id: id.into(),
                names: format!("{namespace}/{flow_id}"),
                state,
                from: format!("index {}", String::from_utf8_lossy(&summary[2..])),
            }))
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(super) struct Line {
        pub(super) seq: u64,
        pub(super) execution_id: String,
        pub(super) message: String,
    }

    impl LogRecord for Line {
        fn execution_id(&self) -> &str {
            &self.execution_id
        }
        fn seq(&self) -> u64 {
            self.seq
        }
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        seq: u64,
        action: String,
        prev_hash: String,
        hash: String,
    }

    impl AuditRecord for Rec {
        fn seq(&self) -> u64 {
            self.seq
        }
        fn hash(&self) -> &str {
            &self.hash
        }
    }

    pub(super) fn ex(id: &str, state: St, created_ms: i64, paused_ms: Option<i64>) -> Ex {
        Ex {
            id: id.into(),
            namespace: "hr.ops".into(),
            flow_id: "onboard".into(),
            state,
            created_ms,
            paused_ms,
        }
    }

    fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
        store: &Store,
        table: redb::TableDefinition<K, V>,
    ) -> Vec<(String, String)>
    where
        for<'a> K::SelfType<'a>: std::fmt::Debug,
        for<'a> V::SelfType<'a>: std::fmt::Debug,
    {
        let Backend::Redb(db) = &store.backend else {
            panic!("a redb store")
        };
        // What tollgate.redb itself holds: the journal's overlay written to it first.
        db.flush_all().unwrap();
        let tx = db.hot.begin_read().unwrap();
        let t = tx.open_table(table).unwrap();
        t.iter()
            .unwrap()
            .map(|item| {
                let (k, v) = item.unwrap();
                (format!("{:?}", k.value()), format!("{:?}", v.value()))
            })
            .collect()
    }

    fn text(bytes: &str) -> String {
        format!("{:?}", bytes.as_bytes())
    }

    /// Executions per state follow every put and delete, and a database made before the counts
    /// were kept gets them computed once when it is opened.
    #[test]
    fn state_counts_follow_every_change_and_are_derived_for_an_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Running, 1, None))?;
                w.put_execution(&ex("e2", St::Running, 2, None))?;
                w.put_execution(&ex("e3", St::Success, 3, None))
            })
            .unwrap();
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Paused, 1, Some(5)))?;
                // Same state, new index time: no change in the counts.
                w.put_execution(&ex("e1", St::Paused, 1, Some(6)))?;
                w.delete_execution::<Ex>("e3").map(|_| ())
            })
            .unwrap();
        let expected: StateCounts = [("PAUSED".to_string(), 1), ("RUNNING".to_string(), 1)]
            .into_iter()
            .collect();
        assert_eq!(store.read().unwrap().state_counts().unwrap(), expected);
        let (_, samples) = store.read().unwrap().waiting_series(0, i64::MAX / 2).unwrap();
        assert_eq!(samples.last().map(|(_, s)| s.last), Some(1));

        // An older file: no counts row. Opening it computes them from the state index.
        {
            let Backend::Redb(db) = &store.backend else {
                panic!("a redb store")
            };
            // A change made behind the store's back, to the file itself: the journal's overlay
            // is written to it first, or the overlay would still show the row.
            db.flush_all().unwrap();
            let tx = db.hot.begin_write().unwrap();
            tx.open_table(tables::META).unwrap().remove("state_counts").unwrap();
            tx.commit().unwrap();
        }
        assert!(store.read().unwrap().state_counts().unwrap().is_empty());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read().unwrap().state_counts().unwrap(), expected);
    }

    /// Keys and values are byte for byte what the store wrote before it was generic (the
    /// literals below are that format; state-index values since then carry a row summary after
    /// the names), and a state change moves the index entry.
    #[test]
    fn the_on_disk_format_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let paused = ex("e1", St::Paused, 0x10, Some(0x20));
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Running, 0x10, None))?;
                w.put_execution(&ex("e2", St::Success, 0x30, None))?;
                w.append_log(&Line {
                    seq: 2,
                    execution_id: "e1".into(),
                    message: "hi".into(),
                })?;
                w.audit_put(&Rec {
                    seq: 1,
                    action: "start".into(),
                    prev_hash: String::new(),
                    hash: "ab".into(),
                })?;
                w.audit_set_head(&AuditHead {
                    seq: 1,
                    hash: "ab".into(),
                })
            })
            .unwrap();
        store.write(|w| w.put_execution(&paused)).unwrap();

        assert_eq!(
            rows(&store, tables::EXECUTIONS_BY_STATE),
            vec![
                (
                    format!("{:?}", "PAUSED\u{0}0000000000000020\u{0}e1"),
                    format!("{:?}", "\u{2}hr.ops\u{0}onboard\u{0}s\u{0}16")
                ),
                (
                    format!("{:?}", "SUCCESS\u{0}0000000000000030\u{0}e2"),
                    format!("{:?}", "\u{2}hr.ops\u{0}onboard\u{0}s\u{0}48")
                ),
            ]
        );
        assert_eq!(
            rows(&store, tables::EXECUTIONS)[0],
            (
                format!("{:?}", "e1"),
                text(
                    r#"{"id":"e1","namespace":"hr.ops","flow_id":"onboard","state":"PAUSED","created_ms":16,"paused_ms":32}"#
                )
            )
        );
        assert_eq!(
            rows(&store, tables::LOGS),
            vec![(
                format!("{:?}", "e1\u{0}0000000000000002"),
                text(r#"{"seq":2,"execution_id":"e1","message":"hi"}"#)
            )]
        );
        assert_eq!(
            rows(&store, tables::AUDIT),
            vec![(
                "1".to_string(),
                text(r#"{"seq":1,"action":"start","prev_hash":"","hash":"ab"}"#)
            )]
        );
        assert_eq!(
            rows(&store, tables::AUDIT_HEAD),
            vec![(format!("{:?}", "head"), text(r#"{"seq":1,"hash":"ab"}"#))]
        );

        // Read back through the generic API, from the same bytes.
        let r = store.read().unwrap();
        assert_eq!(r.execution::<Ex>("e1").unwrap(), Some(paused));
        assert_eq!(r.count_in_state(St::Paused).unwrap(), 1);
        assert_eq!(r.execution_ids_in_state(St::Success).unwrap(), vec!["e2"]);
        assert_eq!(r.finished_before::<St>(0x31, 10).unwrap(), vec!["e2"]);
        let (page, next) = r.executions::<Ex>(&ExecutionFilter::default(), 1, None).unwrap();
        assert_eq!(page[0].id, "e1");
        let (page, _) = r
            .executions::<Ex>(&ExecutionFilter::default(), 1, next.as_deref())
            .unwrap();
        assert_eq!(page[0].id, "e2");
        assert_eq!(r.logs::<Line>("e1", 0, 10).unwrap()[0].message, "hi");
        assert_eq!(r.audit_head().unwrap().unwrap().hash, "ab");
        store
            .write(|w| {
                assert_eq!(w.stored_state::<St>("e1")?, Some(St::Paused));
                assert_eq!(w.audit_last()?.map(|h| h.seq), Some(1));
                assert!(w.delete_execution::<Ex>("e1")?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(rows(&store, tables::EXECUTIONS_BY_STATE).len(), 1);
        assert!(rows(&store, tables::LOGS).is_empty());
    }

    /// A list of rows reads the state index alone when its entries carry summaries (the
    /// execution itself is not read: rows show even with it removed behind the store's back),
    /// reads the execution for an entry written before summaries, filters and pages both kinds
    /// alike, and every other reader of the index values (flow concurrency, counts, retention)
    /// reads both.
    #[test]
    fn rows_come_from_the_index_and_old_index_values_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut other = ex("e3", St::Paused, 3, Some(30));
        other.flow_id = "offboard".into();
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Paused, 1, Some(10)))?;
                w.put_execution(&ex("e2", St::Paused, 2, Some(20)))?;
                w.put_execution(&other)?;
                w.put_execution(&ex("e4", St::Success, 4, None))
            })
            .unwrap();
        // e2 as a data dir written before summaries has it: the names alone.
        store
            .write(|w| {
                w.restore(
                    Table::ExecutionsByState,
                    b"PAUSED\x000000000000000014\x00e2",
                    b"hr.ops\x00onboard",
                )
            })
            .unwrap();
        let rows_of = |filter: &ExecutionFilter<St>, limit: usize| {
            let r = store.read().unwrap();
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, next) = r.execution_parts::<Row>(filter, limit, after.as_deref()).unwrap();
                all.extend(
                    page.into_iter()
                        .map(|row| format!("{} {:?} {} {}", row.id, row.state, row.names, row.from)),
                );
                match next {
                    Some(n) => after = Some(n),
                    None => return all,
                }
            }
        };
        let everything = vec![
            "e1 Paused hr.ops/onboard index 1",
            "e2 Paused hr.ops/onboard execution",
            "e3 Paused hr.ops/offboard index 3",
            "e4 Success hr.ops/onboard index 4",
        ];
        for limit in [1, 2, 100] {
            assert_eq!(
                rows_of(&ExecutionFilter::default(), limit),
                everything,
                "pages of {limit}"
            );
        }
        let onboard_paused = ExecutionFilter {
            states: vec![St::Paused],
            flow_id: Some("onboard".into()),
            ..Default::default()
        };
        assert_eq!(rows_of(&onboard_paused, 1), everything[..2].to_vec());
        let hidden = ExecutionFilter {
            visible: Some(vec!["finance".into()]),
            ..Default::default()
        };
        assert!(rows_of(&hidden, 10).is_empty());
        store
            .write(|w| {
                assert_eq!(
                    w.flow_execution_ids_in_state(St::Paused, "hr.ops", "onboard")?,
                    vec!["e1", "e2"]
                );
                assert_eq!(
                    w.flow_execution_ids_in_state(St::Paused, "hr.ops", "offboard")?,
                    vec!["e3"]
                );
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(store.read().unwrap().count_in_state(St::Paused).unwrap(), 3);

        // The next put of e2 writes the summary (the old value is not kept).
        store
            .write(|w| w.put_execution(&ex("e2", St::Paused, 2, Some(20))))
            .unwrap();
        assert_eq!(
            rows_of(&ExecutionFilter::default(), 100)[1],
            "e2 Paused hr.ops/onboard index 2"
        );

        // Rows come from the index: the executions table is not read for them.
        {
            let Backend::Redb(db) = &store.backend else {
                panic!("a redb store")
            };
            // A change made behind the store's back, to the file itself: the journal's overlay
            // is written to it first, or the overlay would still show the row.
            db.flush_all().unwrap();
            let tx = db.hot.begin_write().unwrap();
            tx.open_table(tables::EXECUTIONS).unwrap().remove("e1").unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(
            rows_of(&ExecutionFilter::default(), 100)[0],
            "e1 Paused hr.ops/onboard index 1"
        );

        // A deleted execution (retention) leaves no row.
        store.write(|w| w.delete_execution::<Ex>("e4").map(|_| ())).unwrap();
        assert_eq!(rows_of(&ExecutionFilter::default(), 100).len(), 3);
        assert!(
            store
                .read()
                .unwrap()
                .finished_before::<St>(i64::MAX / 2, 10)
                .unwrap()
                .is_empty()
        );
    }

    /// Aggregate rows changed several times in one transaction are read once and written once,
    /// with every change in them; a failed transaction writes none of them.
    #[test]
    fn metric_rows_keep_every_change_of_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.metric_update("h\0a", |n: &mut u64| *n += 1)?;
                w.metric_update("h\0b", |n: &mut u64| *n += 10)?;
                w.metric_update("h\0a", |n: &mut u64| *n += 2)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store.write(|w| w.metric_update("h\0a", |n: &mut u64| *n += 4)).unwrap();
        let failed: Result<()> = store.write(|w| {
            w.metric_update("h\0a", |n: &mut u64| *n += 100)?;
            Err(StoreError::Storage("abandoned".into()))
        });
        assert!(failed.is_err());
        let rows: Vec<(String, u64)> = store.read().unwrap().metrics_with_prefix("h\0").unwrap();
        assert_eq!(rows, vec![("h\0a".to_string(), 7), ("h\0b".to_string(), 10)]);
    }

    #[test]
    fn deleting_a_flows_condition_windows_spares_other_flows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.put_condition_window("a\0b\0t\0c", b"1")?;
                w.put_condition_window("a\0bb\0t\0c", b"2")?;
                w.delete_condition_windows("a\0b\0")?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
            .write(|w| {
                assert!(w.condition_window("a\0b\0t\0c")?.is_none());
                assert_eq!(w.condition_window("a\0bb\0t\0c")?, Some(b"2".to_vec()));
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
}
