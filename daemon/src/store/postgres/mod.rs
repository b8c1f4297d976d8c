//! The PostgreSQL store: the same ordered key-value tables as redb, in one table
//! `tollgate_kv (tbl, k, v)` whose primary key `(tbl, k)` keeps each table sorted by its key
//! bytes, so every typed operation of `store/` is the same range scan it is on redb.
//!
//! Several daemons may share one database. Each write transaction first takes one
//! transaction-scoped advisory lock. An exclusive batch takes it exclusively and runs alone,
//! seeing everything committed before it: redb's single writer, stretched over processes. A
//! row batch (execution-scoped commands, while other daemons are alive) takes it shared, locks
//! the executions it reads `FOR UPDATE`, writes only their rows while it runs, and writes the
//! rows every batch writes (state counts, metrics, the audit chain, the write counter, the
//! change feed) at its end under a short commit lock; a lost race (deadlock, lock timeout) or
//! anything else it touches rolls it back and the writer runs it again exclusively. So one
//! resume still wins, a timer fires once and the audit chain stays one chain, in commit order.
//! Reads run in `REPEATABLE READ` snapshots and never wait for writers.
//!
//! Writes are buffered in the transaction (reads see them) and sent at commit as one upsert and
//! one delete: a batch costs the same few round trips whatever its size.
//!
//! The `postgres` client is async; the store's callers are not (the writer thread, blocking
//! tasks, and some async code that reads briefly, as it does from redb). Every database call
//! therefore runs on a small runtime of the store's own and the caller waits for its answer on
//! a channel, which is allowed from any thread.

mod cache;
mod listen;
mod migrate;
mod tls;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use super::backend::{KvRead, KvWrite, Scan, Table, empty_range};
use super::{Result, StoreError};

/// Every write transaction of every daemon holds this advisory lock (a constant of our own):
/// an exclusive batch exclusively, a row batch shared (row batches then run side by side,
/// each locking its executions' rows, and never beside an exclusive batch).
const WRITE_LOCK: i64 = 0x746f_6c6c_6761_7465; // "tollgate"
/// A row batch holds this one from reading the rows every batch writes (state counts, metric
/// rows, the audit chain's head) to its `COMMIT`: short, and it puts the write counter, the
/// change feed and the audit chain in commit order.
const COMMIT_LOCK: i64 = 0x746f_6c6c_636f_6d74; // "tollcomt"
/// Longest a row batch waits for a row lock before it gives up and runs again exclusively
/// (a deadlock is found by PostgreSQL after `deadlock_timeout`, 1 s by default).
const ROW_LOCK_TIMEOUT: &str = "10s";
/// The counter value a row batch's `base` holds once begun: row batches do not read the write
/// counter when they begin (they read nothing from the write cache).
const ROW_BASE: i64 = -1;
/// How long one database call may take before the caller is told the database is unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows fetched by the first round trip of a scan: many scans want one row or a few (the newest
/// audit record, the first lines of a log), and a full page of large rows costs more to send
/// and decode than a second round trip.
const FIRST_PAGE: i64 = 32;
/// Rows fetched per round trip of a scan after the first.
const PAGE: i64 = 256;
/// Starts a write transaction. Its next statement (`Stmts::lock` or `Stmts::lock_shared`) makes
/// its commit asynchronous and takes the write lock: the commit record becomes visible and the
/// write lock is released without waiting for the WAL flush; the flush follows right after,
/// outside the lock, by a synchronous commit of `tollgate_flush` on the same connection (see
/// [`PgWrite::commit`]), and the caller is answered only after it. So daemons no longer take
/// turns for each other's disk flush.
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";
/// A write transaction that waited this long for the write lock says the lock is contended.
const CONTENDED: Duration = Duration::from_millis(1);
/// Above this many cached-table keys a commit logs "everything changed" instead of each key
/// (a bulk copy): other daemons then empty their write cache.
const MAX_LOGGED_KEYS: usize = 10_000;
/// Write-counter values whose key lists are kept (older ones are pruned with the change feed); a
/// daemon whose cache is older empties it.
const KEEP_WRITE_KEYS: i64 = 10_000;
/// Starts a read snapshot.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
/// The change-feed entry that says flows changed (never an execution id: those are base62).
pub const FLOWS_CHANGED: &str = "*flows";
/// The change-feed entry that says users, groups, role bindings or tokens changed.
pub const AUTH_CHANGED: &str = "*auth";
/// The change-feed marker of a commit that added a timer: only such a commit of another daemon
/// wakes this daemon's timer loop (its timers fire here too if that daemon stops); a commit
/// that only changed executions does not (3 daemons would re-read the timers after every one).
pub const TIMERS_ADDED: &str = "*timers";
/// Connections one daemon opens at most (callers beyond wait for one to come back): a burst of
/// reads must not exhaust the server's `max_connections` for every daemon sharing it.
const MAX_OPEN: usize = 32;

/// A URL without its password (also `password=` parameters), for errors and logs.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<database>".into(),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map(|(u, _)| u).unwrap_or(user);
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, q)) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{p}?{}", q.join("&"))
        }
        None => path.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

/// The store's own runtime; shut down without waiting when the store goes (a runtime may not be
/// dropped the ordinary way inside another runtime).
struct PgRuntime(Option<tokio::runtime::Runtime>);

impl Drop for PgRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Prepared statements of one connection.
struct Stmts {
    get: Statement,
    scan_fwd: Statement,
    scan_fwd_open: Statement,
    scan_rev: Statement,
    scan_rev_open: Statement,
    count: Statement,
    /// A commit's writes in one statement: the update of rows known to be stored, the upsert
    /// of the others, the delete, the change-feed row and its `NOTIFY`, the write-counter bump
    /// and the key log (one statement instead of five: each costs PostgreSQL a parse-free but
    /// still full bind, execute, snapshot and reply, and the daemon an encode and a decode).
    commit_rows: Statement,
    /// Rows by (table, key) pairs, for reading a batch's rows in one round trip.
    get_many: Statement,
    /// The write lock, exclusive, with the transaction's commit made asynchronous (one
    /// statement instead of `SET LOCAL` and the lock).
    lock: Statement,
    /// The write counter, read right after the lock (see `cache.rs`), and how many key lists
    /// were logged after a given value.
    seq: Statement,
    /// [`Stmts::seq`] and the keys other commits wrote after a counter value (with their
    /// values where asked), in one statement: a row whose last column is not NULL carries the
    /// counter and the count; the others are keys.
    seq_changed: Statement,
    /// A synchronous commit of a row of this daemon's own: flushes the WAL up to the
    /// asynchronous commit before it. A plain update (one WAL record; an upsert that finds
    /// the row locks it first, a second record); it changes nothing before the row exists,
    /// and commits without a flush then: `flush_first` follows.
    flush: Statement,
    /// [`Stmts::flush`] when this daemon's row is not there yet.
    flush_first: Statement,
    /// The write lock shared, for row batches, with the asynchronous commit and the row lock
    /// timeout set (one statement instead of two `SET LOCAL` and the lock).
    lock_shared: Statement,
    /// The commit lock (see [`COMMIT_LOCK`]).
    commit_lock: Statement,
    /// What a row batch reads under the commit lock: rows by (table, key) pairs and, with a
    /// limit of 1, the newest row of one table (the audit chain's head), in one statement;
    /// the first column says which (true: the newest row).
    late: Statement,
    /// One row, locked for this transaction.
    get_for_update: Statement,
    /// The change feed after a seq, of other daemons (prepared: read up to 50 times a second).
    changes: Statement,
    /// Rows of one table, locked in key order (two batches never lock the same two rows in
    /// opposite orders this way).
    lock_many: Statement,
    /// Rows of one table, locked unless another transaction holds them (those are skipped).
    lock_many_skip: Statement,
    /// Which keys of one table exist (no lock).
    exists_many: Statement,
}

struct Conn {
    client: Client,
    stmts: Stmts,
}

/// Idle connections, and how many are open (idle or in use).
#[derive(Default)]
struct Pool {
    idle: Vec<Arc<Conn>>,
    open: usize,
}

struct Inner {
    /// Kept for its threads; never read.
    _rt: PgRuntime,
    handle: tokio::runtime::Handle,
    config: tokio_postgres::Config,
    /// TLS as the URL's `sslmode` asked (`None`: plain TCP).
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    name: String,
    pool: Mutex<Pool>,
    /// Signalled when a connection comes back or closes.
    freed: std::sync::Condvar,
    daemon_id: String,
    /// Rows as this daemon's write transactions last saw them (see `cache.rs`).
    cache: Mutex<cache::WriteCache>,
    /// Whether the last write transaction waited for the write lock (see [`PgStore::contended`]).
    contended: std::sync::atomic::AtomicBool,
    /// When the writer uses row batches (`TOLLGATE_ROW_BATCHES`).
    row_mode: RowMode,
    /// Whether another daemon was alive at the last heartbeat.
    peers: std::sync::atomic::AtomicBool,
}

/// When execution-scoped write batches run as row batches (`TOLLGATE_ROW_BATCHES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMode {
    /// Only while other daemons are alive (the default): alone, a daemon has nobody to run
    /// beside, and an exclusive batch costs one round trip less (no commit lock) and reads its
    /// rows from the write cache.
    Auto,
    Always,
    Never,
}

impl RowMode {
    fn from_env() -> Result<RowMode> {
        match std::env::var("TOLLGATE_ROW_BATCHES").as_deref() {
            Err(_) | Ok("auto") => Ok(RowMode::Auto),
            Ok("always") => Ok(RowMode::Always),
            Ok("never") => Ok(RowMode::Never),
            Ok(other) => Err(StoreError::Storage(format!(
                "TOLLGATE_ROW_BATCHES must be auto, always or never, not `{other}`"
            ))),
        }
    }
}

/// A PostgreSQL database holding the store's tables.
pub struct PgStore {
    inner: Arc<Inner>,
}

impl Inner {
    fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            database: self.name.clone(),
            message: e.to_string(),
            down: true,
        }
    }

    fn refused(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Database {
            database: self.name.clone(),
            message: e.to_string(),
            down: false,
        }
    }

    /// Runs `fut` on the store's runtime and waits for it here.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let out = match tokio::time::timeout(CALL_TIMEOUT, fut).await {
                Ok(r) => r.map_err(|e| (describe(&e), failure_kind(&e))),
                Err(_) => Err((format!("no answer within {}s", CALL_TIMEOUT.as_secs()), Failure::Down)),
            };
            let _ = tx.send(out);
        });
        match rx.recv() {
            Ok(Ok(v)) => Ok(v),
            Ok(Err((m, Failure::Down))) => Err(self.unavailable(m)),
            Ok(Err((m, Failure::Refused))) => Err(self.refused(m)),
            Ok(Err((m, Failure::Conflict))) => Err(StoreError::Conflict {
                database: self.name.clone(),
                message: m,
                needs_exclusive: false,
            }),
            Err(_) => Err(self.unavailable("the database task ended")),
        }
    }

    fn checkout(&self) -> Result<Arc<Conn>> {
        let deadline = std::time::Instant::now() + CALL_TIMEOUT;
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match pool.idle.pop() {
                Some(c) if !c.client.is_closed() => return Ok(c),
                Some(_) => {
                    pool.open = pool.open.saturating_sub(1);
                    continue;
                }
                None if pool.open < MAX_OPEN => break,
                None => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(self.unavailable(format!("all {MAX_OPEN} connections stayed busy")));
                    }
                    pool = self.freed.wait_timeout(pool, left).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
        pool.open += 1;
        drop(pool);
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let name = self.name.clone();
        let conn = self.block(async move { connect(config, tls, name).await.map(Arc::new) });
        if conn.is_err() {
            self.discard();
        }
        conn
    }

    /// A connection that will not come back (broken, or its transaction could not be ended).
    fn discard(&self) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.open = pool.open.saturating_sub(1);
        self.freed.notify_one();
    }

    fn give_back(&self, conn: Arc<Conn>) {
        if conn.client.is_closed() {
            return self.discard();
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.idle.push(conn);
        self.freed.notify_one();
    }

    /// Ends the connection's transaction without waiting, then pools it.
    fn release(self: &Arc<Self>, conn: Arc<Conn>) {
        let me = self.clone();
        self.handle.spawn(async move {
            if conn.client.batch_execute("ROLLBACK").await.is_ok() {
                me.give_back(conn);
            } else {
                me.discard();
            }
        });
    }
}

/// How a call failed.
#[derive(Clone, Copy)]
enum Failure {
    /// No answer: the database or the connection is gone.
    Down,
    /// The database refused the statement.
    Refused,
    /// A lock race a row batch runs again after (deadlock, lock timeout, serialization).
    Conflict,
}

fn failure_kind(e: &tokio_postgres::Error) -> Failure {
    use tokio_postgres::error::SqlState;
    match e.as_db_error() {
        None => Failure::Down,
        Some(db)
            if *db.code() == SqlState::T_R_DEADLOCK_DETECTED
                || *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
                || *db.code() == SqlState::LOCK_NOT_AVAILABLE =>
        {
            Failure::Conflict
        }
        Some(_) => Failure::Refused,
    }
}

/// One line for a client error: the server's message when it sent one, else the error with its
/// causes (a TLS handshake failure says why only in its source).
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => crate::error_chain::error_chain(e),
    }
}

/// A connection, its I/O driven on the store's runtime.
async fn open_client(
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    name: String,
) -> std::result::Result<Client, tokio_postgres::Error> {
    async fn drive<F>(connection: F, name: String)
    where
        F: Future<Output = std::result::Result<(), tokio_postgres::Error>>,
    {
        if let Err(e) = connection.await {
            tracing::warn!(database = %name, error = %describe(&e), "database connection ended");
        }
    }
    match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(drive(connection, name));
            Ok(client)
        }
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(drive(connection, name));
            Ok(client)
        }
    }
}

/// A connection with the store's statements prepared (the schema must exist).
async fn connect(
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    name: String,
) -> std::result::Result<Conn, tokio_postgres::Error> {
    let client = open_client(config, tls, name).await?;
    let q = |s: &'static str| client.prepare(s);
    let stmts = Stmts {
        get: q("SELECT v FROM tollgate_kv WHERE tbl = $1 AND k = $2").await?,
        scan_fwd: q("SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k >= $2 AND k < $3 ORDER BY k LIMIT $4").await?,
        scan_fwd_open: q("SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k >= $2 ORDER BY k LIMIT $3").await?,
        scan_rev: q("SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k >= $2 AND k < $3 ORDER BY k DESC LIMIT $4")
            .await?,
        scan_rev_open: q("SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k >= $2 ORDER BY k DESC LIMIT $3").await?,
        count: q("SELECT count(*) FROM tollgate_kv WHERE tbl = $1").await?,
        // Sub-statements of one statement see one snapshot and may not change a row twice:
        // the update's, the upsert's and the delete's keys are disjoint (each key of the
        // transaction is put or deleted, never both), the feed row and its wake-up hint
        // (`listen.rs`) are there only when some execution changed, and the counter bump feeds
        // the key log. Rows the transaction read (so they are stored, and locked by the write
        // lock, a row lock or the commit lock) are updated in place: an upsert that meets an
        // existing row locks it first, one more heap write and WAL record per row. One the
        // update did not find (none should) is upserted with the others, so nothing is lost.
        commit_rows: q("WITH upd AS (UPDATE tollgate_kv kv SET v = u.v \
                   FROM unnest($10::smallint[], $11::bytea[], $12::bytea[]) AS u(t, k, v) \
                   WHERE kv.tbl = u.t AND kv.k = u.k RETURNING kv.tbl, kv.k), \
             up AS (INSERT INTO tollgate_kv (tbl, k, v) \
                   SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[]) \
                   UNION ALL \
                   SELECT u.t, u.k, u.v FROM unnest($10::smallint[], $11::bytea[], $12::bytea[]) AS u(t, k, v) \
                   WHERE NOT EXISTS (SELECT 1 FROM upd WHERE upd.tbl = u.t AND upd.k = u.k) \
                   ON CONFLICT (tbl, k) DO UPDATE SET v = excluded.v), \
             del AS (DELETE FROM tollgate_kv \
                   WHERE (tbl, k) IN (SELECT * FROM unnest($4::smallint[], $5::bytea[]))), \
             feed AS (INSERT INTO tollgate_changes (daemon, ids) \
                   SELECT $6::text, $7::text[] WHERE cardinality($7::text[]) > 0 RETURNING 1), \
             b AS (UPDATE tollgate_write_seq SET n = n + 1 RETURNING n), \
             w AS (INSERT INTO tollgate_write_keys (seq, tbls, ks) \
                   SELECT n, $8::smallint[], $9::bytea[] FROM b RETURNING seq) \
             SELECT (SELECT seq FROM w), \
                    (SELECT count(*) FROM (SELECT pg_notify('tollgate_changes', $6::text) FROM feed) n)")
        .await?,
        get_many: q(
            "SELECT tbl, k, v FROM tollgate_kv WHERE (tbl, k) IN (SELECT * FROM unnest($1::smallint[], $2::bytea[]))",
        )
        .await?,
        // Evaluated left to right: the commit is made asynchronous before the lock is waited for.
        lock: client
            .prepare(&format!(
                "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock({WRITE_LOCK})"
            ))
            .await?,
        seq: q("SELECT n, (SELECT count(*) FROM tollgate_write_keys WHERE seq > $1) FROM tollgate_write_seq").await?,
        // `known`: the value column is the row as it is now (absent when NULL); otherwise the
        // key is only named (the caller forgets its row). The first branch is the counter row.
        seq_changed: q("SELECT NULL::smallint, NULL::bytea, NULL::bytea, NULL::boolean, n, \
                    (SELECT count(*) FROM tollgate_write_keys WHERE seq > $1) FROM tollgate_write_seq \
             UNION ALL \
             SELECT c.t, c.k, kv.v, (c.t = ANY($2::smallint[]) OR w.k IS NOT NULL) AS known, NULL, NULL \
             FROM (SELECT DISTINCT u.t, u.k FROM tollgate_write_keys l, unnest(l.tbls, l.ks) AS u(t, k) \
                   WHERE l.seq > $1 AND l.seq <= $1 + $5) c \
             LEFT JOIN unnest($3::smallint[], $4::bytea[]) AS w(t, k) ON w.t = c.t AND w.k = c.k \
             LEFT JOIN tollgate_kv kv ON kv.tbl = c.t AND kv.k = c.k \
                   AND (c.t = ANY($2::smallint[]) OR w.k IS NOT NULL)")
        .await?,
        flush: q("UPDATE tollgate_flush SET n = n + 1 WHERE daemon = $1").await?,
        flush_first: q("INSERT INTO tollgate_flush (daemon, n) VALUES ($1, 1) \
                        ON CONFLICT (daemon) DO UPDATE SET n = tollgate_flush.n + 1")
        .await?,
        // Left to right: the lock timeout applies to the write lock too.
        lock_shared: client
            .prepare(&format!(
                "SELECT set_config('synchronous_commit', 'off', true), \
                        set_config('lock_timeout', '{ROW_LOCK_TIMEOUT}', true), \
                        pg_advisory_xact_lock_shared({WRITE_LOCK})"
            ))
            .await?,
        commit_lock: client
            .prepare(&format!("SELECT pg_advisory_xact_lock({COMMIT_LOCK})"))
            .await?,
        late: q("SELECT false, tbl, k, v FROM tollgate_kv \
                   WHERE (tbl, k) IN (SELECT * FROM unnest($1::smallint[], $2::bytea[])) \
             UNION ALL \
             (SELECT true, tbl, k, v FROM tollgate_kv WHERE tbl = $3 ORDER BY k DESC LIMIT $4)")
        .await?,
        get_for_update: q("SELECT v FROM tollgate_kv WHERE tbl = $1 AND k = $2 FOR UPDATE").await?,
        changes: q("SELECT seq, ids FROM tollgate_changes WHERE seq > $1 AND daemon <> $2 ORDER BY seq LIMIT 1000")
            .await?,
        lock_many: q("SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k = ANY($2::bytea[]) ORDER BY k FOR UPDATE")
            .await?,
        lock_many_skip: q(
            "SELECT k, v FROM tollgate_kv WHERE tbl = $1 AND k = ANY($2::bytea[]) ORDER BY k FOR UPDATE SKIP LOCKED",
        )
        .await?,
        exists_many: q("SELECT k FROM tollgate_kv WHERE tbl = $1 AND k = ANY($2::bytea[])").await?,
    };
    Ok(Conn { client, stmts })
}

impl PgStore {
    /// Connects and migrates. Fails with the database named (never its password) when it cannot
    /// be reached, and refuses a schema newer than this build knows.
    pub fn open(url: &str) -> Result<PgStore> {
        let name = redact(url);
        let tls = tls::from_url(url).map_err(|message| StoreError::Database {
            database: name.clone(),
            message,
            down: false,
        })?;
        let mut config: tokio_postgres::Config = tls.url.parse().map_err(|e| StoreError::Database {
            database: name.clone(),
            message: format!("not a valid PostgreSQL URL: {e}"),
            down: false,
        })?;
        config.ssl_mode(tls.mode);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("tollgated");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tollgate-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Storage(format!("cannot start the database runtime: {e}")))?;
        let handle = rt.handle().clone();
        let inner = Arc::new(Inner {
            _rt: PgRuntime(Some(rt)),
            handle,
            config,
            tls: tls.connector,
            name,
            pool: Mutex::new(Pool::default()),
            freed: std::sync::Condvar::new(),
            daemon_id: {
                use rand::Rng;
                format!("{:016x}", rand::thread_rng().r#gen::<u64>())
            },
            cache: Mutex::new(cache::WriteCache::default()),
            contended: std::sync::atomic::AtomicBool::new(false),
            row_mode: RowMode::from_env()?,
            peers: std::sync::atomic::AtomicBool::new(false),
        });
        migrate::run(&inner)?;
        Ok(PgStore { inner })
    }

    /// The database, without its password.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether this daemon's last write transaction waited at least [`CONTENDED`] for the write
    /// lock (another daemon held it).
    pub fn contended(&self) -> bool {
        self.inner.contended.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the writer should run execution-scoped batches as row batches now (see
    /// [`RowMode`]).
    pub fn row_batches(&self) -> bool {
        match self.inner.row_mode {
            RowMode::Always => true,
            RowMode::Never => false,
            RowMode::Auto => self.inner.peers.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Notes whether another daemon was seen within `lease` (called after each heartbeat).
    pub fn note_peers(&self, lease: Duration) -> Result<()> {
        let rows = self.query(
            "SELECT 1 FROM tollgate_daemons WHERE id <> $1 AND seen_at >= now() - make_interval(secs => $2) LIMIT 1",
            vec![Box::new(self.inner.daemon_id.clone()), Box::new(lease.as_secs_f64())],
        )?;
        self.inner
            .peers
            .store(!rows.is_empty(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// This daemon's id on the database (heartbeats, leases, the change feed).
    pub fn daemon_id(&self) -> &str {
        &self.inner.daemon_id
    }

    /// A read snapshot. `BEGIN` is sent with its first query (one round trip less per read).
    pub(crate) fn begin_read(&self) -> Result<PgRead> {
        Ok(PgRead {
            conn: Some(self.inner.checkout()?),
            inner: self.inner.clone(),
            begun: std::sync::atomic::AtomicBool::new(false),
            fetched: Mutex::new(HashMap::new()),
        })
    }

    /// A write transaction. `BEGIN`, the write lock and the write counter are sent with its first
    /// statement: a transaction whose reads the cache answers costs one round trip to begin and
    /// one to commit, and one that changes nothing costs no commit.
    pub(crate) fn begin_write(&self, rows: bool) -> Result<PgWrite> {
        Ok(PgWrite {
            rows,
            conflict: Cell::new(false),
            late_locked: false,
            conn: Some(self.inner.checkout()?),
            inner: self.inner.clone(),
            overlay: BTreeMap::new(),
            base: Cell::new(None),
            sent: Cell::new(false),
            fetched: RefCell::new(HashMap::new()),
            edges: RefCell::new(HashMap::new()),
            wanted: RefCell::new(Vec::new()),
        })
    }

    /// Runs one statement outside the store's transactions (heartbeats, the change feed).
    fn query(&self, sql: &'static str, params: Vec<Box<dyn ToSql + Send + Sync>>) -> Result<Vec<tokio_postgres::Row>> {
        let conn = self.inner.checkout()?;
        let c = conn.clone();
        let rows = self.inner.block(async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            c.client.query(sql, &refs).await
        });
        self.inner.give_back(conn);
        rows
    }

    /// Changes committed by other daemons after `after`: (seq, execution ids), oldest first.
    pub fn changes_since(&self, after: i64) -> Result<Vec<(i64, Vec<String>)>> {
        let conn = self.inner.checkout()?;
        let (c, me) = (conn.clone(), self.inner.daemon_id.clone());
        let rows = self
            .inner
            .block(async move { c.client.query(&c.stmts.changes, &[&after, &me]).await });
        self.inner.give_back(conn);
        Ok(rows?.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The newest change's seq (0 when none): a new daemon starts following from here.
    pub fn last_change(&self) -> Result<i64> {
        let rows = self.query("SELECT coalesce(max(seq), 0)::bigint FROM tollgate_changes", vec![])?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
    }

    /// Drops change rows older than `keep` (they only feed streams of running daemons), and
    /// key lists of old write-counter values (a daemon whose cache is that old empties it).
    pub fn prune_changes(&self, keep: Duration) -> Result<()> {
        self.query(
            "DELETE FROM tollgate_changes WHERE at < now() - make_interval(secs => $1)",
            vec![Box::new(keep.as_secs_f64())],
        )?;
        self.query(
            "DELETE FROM tollgate_write_keys WHERE seq < (SELECT n FROM tollgate_write_seq) - $1",
            vec![Box::new(KEEP_WRITE_KEYS)],
        )?;
        Ok(())
    }

    /// Says this daemon is alive (its leases hold while it does).
    pub fn heartbeat(&self, addr: &str) -> Result<()> {
        self.query(
            "INSERT INTO tollgate_daemons (id, addr) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = now(), addr = excluded.addr",
            vec![Box::new(self.inner.daemon_id.clone()), Box::new(addr.to_string())],
        )?;
        Ok(())
    }

    /// Daemons not seen for `lease` (their leases have expired); their rows are removed so a
    /// takeover happens once.
    pub fn expired_daemons(&self, lease: Duration) -> Result<Vec<String>> {
        let rows = self.query(
            "SELECT id FROM tollgate_daemons WHERE seen_at < now() - make_interval(secs => $1) AND id <> $2",
            vec![Box::new(lease.as_secs_f64()), Box::new(self.inner.daemon_id.clone())],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Forgets a daemon whose work was taken over.
    pub fn forget_daemon(&self, id: &str) -> Result<()> {
        self.query(
            "DELETE FROM tollgate_daemons WHERE id = $1",
            vec![Box::new(id.to_string())],
        )?;
        Ok(())
    }

    /// Whether daemon `id` is alive (seen within `lease`).
    pub fn daemon_alive(&self, id: &str, lease: Duration) -> Result<bool> {
        let rows = self.query(
            "SELECT 1 FROM tollgate_daemons WHERE id = $1 AND seen_at >= now() - make_interval(secs => $2)",
            vec![Box::new(id.to_string()), Box::new(lease.as_secs_f64())],
        )?;
        Ok(!rows.is_empty())
    }
}

/// Normalized bounds: `k >= lo` and, when present, `k < hi`.
fn bounds(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> (Vec<u8>, Option<Vec<u8>>) {
    let after = |x: &[u8]| {
        let mut v = x.to_vec();
        v.push(0);
        v
    };
    let lo = match lo {
        Bound::Included(x) => x.to_vec(),
        Bound::Excluded(x) => after(x),
        Bound::Unbounded => Vec::new(),
    };
    let hi = match hi {
        Bound::Included(x) => Some(after(x)),
        Bound::Excluded(x) => Some(x.to_vec()),
        Bound::Unbounded => None,
    };
    (lo, hi)
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;
type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;
/// One database call on a connection, not yet sent: a transaction's first call is sent behind
/// its `BEGIN` in the same round trip.
type Call<T> = std::pin::Pin<Box<dyn Future<Output = PgResult<T>> + Send>>;

fn get_call(conn: &Arc<Conn>, table: Table, key: &[u8]) -> Call<Option<Vec<u8>>> {
    let c = conn.clone();
    let key = key.to_vec();
    Box::pin(async move {
        let row = c.client.query_opt(&c.stmts.get, &[&table.id(), &key]).await?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    })
}

/// The rows of `keys` that exist.
fn get_many_call(conn: &Arc<Conn>, keys: &[cache::Key]) -> Call<Vec<(i16, cache::Row)>> {
    let c = conn.clone();
    let tables: Vec<i16> = keys.iter().map(|(t, _)| t.id()).collect();
    let keys: Vec<Vec<u8>> = keys.iter().map(|(_, k)| k.clone()).collect();
    Box::pin(async move {
        let rows = c.client.query(&c.stmts.get_many, &[&tables, &keys]).await?;
        Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
    })
}

/// A row batch's read ahead: the executions of `ex` locked in key order, the rows of `other` read.
fn lock_and_get_call(conn: &Arc<Conn>, ex: Vec<cache::Key>, other: Vec<cache::Key>) -> Call<Vec<(i16, cache::Row)>> {
    let c = conn.clone();
    let ex: Vec<Vec<u8>> = ex.into_iter().map(|(_, k)| k).collect();
    let tables: Vec<i16> = other.iter().map(|(t, _)| t.id()).collect();
    let keys: Vec<Vec<u8>> = other.into_iter().map(|(_, k)| k).collect();
    Box::pin(async move {
        let s = &c.stmts;
        let t = Table::Executions.id();
        let locked = async {
            if ex.is_empty() {
                Ok(Vec::new())
            } else {
                c.client.query(&s.lock_many, &[&t, &ex]).await
            }
        };
        let read = async {
            if keys.is_empty() {
                Ok(Vec::new())
            } else {
                c.client.query(&s.get_many, &[&tables, &keys]).await
            }
        };
        let (locked, read) = futures::join!(locked, read);
        let mut out: Vec<(i16, cache::Row)> = locked?.iter().map(|r| (t, (r.get(0), r.get(1)))).collect();
        out.extend(read?.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))));
        Ok(out)
    })
}

/// One row, locked until the transaction ends.
fn get_for_update_call(conn: &Arc<Conn>, table: Table, key: &[u8]) -> Call<Option<Vec<u8>>> {
    let c = conn.clone();
    let key = key.to_vec();
    Box::pin(async move {
        let row = c
            .client
            .query_opt(&c.stmts.get_for_update, &[&table.id(), &key])
            .await?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    })
}

/// Flushes the WAL up to the commit before (see [`Stmts::flush`]).
async fn flush_wal(c: &Conn, daemon: &str) -> PgResult<()> {
    if c.client.execute(&c.stmts.flush, &[&daemon]).await? == 0 {
        c.client.execute(&c.stmts.flush_first, &[&daemon]).await?;
    }
    Ok(())
}

/// One page of at most `limit` rows in `[lo, hi)`.
fn page_call(conn: &Arc<Conn>, table: Table, lo: Vec<u8>, hi: Option<Vec<u8>>, rev: bool, limit: i64) -> Call<Rows> {
    let c = conn.clone();
    Box::pin(async move {
        let t = table.id();
        let rows = match (&hi, rev) {
            (Some(hi), false) => c.client.query(&c.stmts.scan_fwd, &[&t, &lo, hi, &limit]).await?,
            (Some(hi), true) => c.client.query(&c.stmts.scan_rev, &[&t, &lo, hi, &limit]).await?,
            (None, false) => c.client.query(&c.stmts.scan_fwd_open, &[&t, &lo, &limit]).await?,
            (None, true) => c.client.query(&c.stmts.scan_rev_open, &[&t, &lo, &limit]).await?,
        };
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })
}

/// Walks the rows of `[lo, hi)` page by page (`fetch(lo, hi, limit)` reads one); `f` gets each
/// page and whether it is the last, and says whether to go on.
fn pages(
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
    mut fetch: impl FnMut(Vec<u8>, Option<Vec<u8>>, i64) -> Result<Rows>,
    mut f: impl FnMut(Rows, bool) -> Result<bool>,
) -> Result<()> {
    if empty_range(lo, hi) {
        return Ok(());
    }
    let (mut lo, mut hi) = bounds(lo, hi);
    let mut limit = FIRST_PAGE;
    loop {
        let rows = fetch(lo.clone(), hi.clone(), limit)?;
        let last = rows.len() < limit as usize;
        let next = rows.last().map(|(k, _)| k.clone());
        if !f(rows, last)? || last {
            return Ok(());
        }
        let Some(edge) = next else { return Ok(()) };
        if rev {
            hi = Some(edge);
        } else {
            lo = edge;
            lo.push(0);
        }
        limit = PAGE;
    }
}

/// A read snapshot (`REPEATABLE READ`), begun by its first query.
pub struct PgRead {
    inner: Arc<Inner>,
    conn: Option<Arc<Conn>>,
    /// Whether `BEGIN` was sent (the connection then needs a `ROLLBACK` before it is pooled).
    begun: std::sync::atomic::AtomicBool,
    /// Rows read ahead by [`KvRead::prefetch`] (`None`: absent), true in this snapshot.
    fetched: Mutex<HashMap<cache::Key, Option<Vec<u8>>>>,
}

impl PgRead {
    fn conn(&self) -> Result<&Arc<Conn>> {
        self.conn
            .as_ref()
            .ok_or_else(|| self.inner.unavailable("the snapshot was closed"))
    }

    /// Runs a call; the first one goes behind `BEGIN` in the same round trip.
    fn call<T: Send + 'static>(&self, call: impl FnOnce(&Arc<Conn>) -> Call<T>) -> Result<T> {
        let conn = self.conn()?;
        let op = call(conn);
        if self.begun.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return self.inner.block(op);
        }
        let c = conn.clone();
        self.inner.block(async move {
            // `join!` polls in order, so `BEGIN` is sent first; the server answers in order.
            let (begin, out) = futures::join!(c.client.batch_execute(BEGIN_READ), op);
            begin?;
            out
        })
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if self.begun.load(std::sync::atomic::Ordering::Relaxed) {
                self.inner.release(c);
            } else {
                self.inner.give_back(c);
            }
        }
    }
}

impl KvRead for PgRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ahead = self
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(table, key.to_vec()));
        match ahead {
            Some(v) => Ok(v),
            None => self.call(|c| get_call(c, table, key)),
        }
    }

    fn prefetch(&self, keys: &[(Table, &[u8])]) -> Result<()> {
        if keys.len() < 2 {
            return Ok(());
        }
        let mut keys: Vec<cache::Key> = keys.iter().map(|(t, k)| (*t, k.to_vec())).collect();
        keys.sort();
        keys.dedup();
        let rows = self.call(|c| get_many_call(c, &keys))?;
        let mut found: HashMap<cache::Key, Vec<u8>> = HashMap::with_capacity(rows.len());
        for (t, (k, v)) in rows {
            if let Some(table) = Table::ALL.get(t as usize) {
                found.insert((*table, k), v);
            }
        }
        let mut fetched = self.fetched.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let v = found.remove(&key);
            fetched.insert(key, v);
        }
        Ok(())
    }

    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        pages(
            lo,
            hi,
            rev,
            |lo, hi, limit| self.call(|c| page_call(c, table, lo, hi, rev, limit)),
            |rows, _| {
                for (k, v) in &rows {
                    if !f(k, v)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }

    fn len(&self, table: Table) -> Result<u64> {
        self.call(|conn| {
            let c = conn.clone();
            Box::pin(async move {
                let row = c.client.query_one(&c.stmts.count, &[&table.id()]).await?;
                Ok(row.get::<_, i64>(0).max(0) as u64)
            })
        })
    }
}

/// A write transaction: holds the write lock from its first statement; its changes are
/// buffered until commit. Rows it reads come from its own writes, then from what it already
/// read, then from the daemon's write cache (when the write counter says it is current), and
/// only then from the database.
pub struct PgWrite {
    inner: Arc<Inner>,
    conn: Option<Arc<Conn>>,
    /// Rows put (`Some`) or deleted (`None`) in this transaction, not yet sent.
    overlay: BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>,
    /// The write counter read under the lock (`None`: not begun yet).
    base: Cell<Option<i64>>,
    /// Whether `BEGIN` was sent (it may have failed: then `base` stays `None`).
    sent: Cell<bool>,
    /// Rows read from the database by key (`None`: absent). Nothing else writes while the lock
    /// is held, so they stay true for the whole transaction.
    fetched: RefCell<HashMap<cache::Key, Option<Vec<u8>>>>,
    /// The newest row of tables read by reverse scans from the end (`None`: empty table).
    edges: RefCell<cache::Edges>,
    /// Rows the first call wants that the cache holds: if another daemon changed one, the
    /// call that begins the transaction reads it along (no second round trip).
    wanted: RefCell<Vec<cache::Key>>,
    /// A row batch (see [`crate::store::Store::write_as`]): the write lock shared, executions
    /// locked by row as they are read, nothing read from the write cache, and only rows of
    /// executions written before the commit lock is taken.
    rows: bool,
    /// A row batch lost a lock race (a deadlock...): the transaction is aborted, whatever a
    /// later statement says; the commit reports the race so that the writer runs it again.
    conflict: Cell<bool>,
    /// A row batch holds the commit lock (it may write the rows every batch writes).
    late_locked: bool,
}

/// Tables a row batch may write before the commit lock: rows of one execution, whose
/// execution row it holds locked (or created).
fn row_table(table: Table) -> bool {
    matches!(
        table,
        Table::Executions | Table::ExecutionsByState | Table::Logs | Table::Timers | Table::Leases | Table::Files
    )
}

/// Tables a row batch writes only under the commit lock, read there first.
fn late_table(table: Table) -> bool {
    matches!(
        table,
        Table::Meta | Table::WaitingSeries | Table::Metrics | Table::Audit | Table::AuditHead
    )
}

impl PgWrite {
    pub(crate) fn daemon_id(&self) -> &str {
        &self.inner.daemon_id
    }

    /// Whether this is a row batch.
    pub(crate) fn rows(&self) -> bool {
        self.rows
    }

    /// Whether anything was written so far.
    pub(crate) fn has_writes(&self) -> bool {
        !self.overlay.is_empty()
    }

    fn needs_exclusive(&self, what: String) -> StoreError {
        self.conflict.set(true);
        StoreError::Conflict {
            database: self.inner.name.clone(),
            message: format!("a row batch touched {what}"),
            needs_exclusive: true,
        }
    }

    /// A row batch may write `table` now (see [`row_table`]).
    fn check_write(&self, table: Table) -> Result<()> {
        if !self.rows || row_table(table) || (self.late_locked && late_table(table)) {
            return Ok(());
        }
        Err(self.needs_exclusive(format!("the {} table", table.name())))
    }

    /// A row batch: takes the commit lock and reads `keys` (rows every batch writes) and, with
    /// `audit`, the newest audit record, in one round trip. Until the commit, no other
    /// transaction can change them.
    pub(crate) fn lock_commit(&mut self, keys: &[(Table, Vec<u8>)], audit: bool) -> Result<Option<cache::Row>> {
        let mut keys: Vec<cache::Key> = keys.to_vec();
        keys.sort();
        keys.dedup();
        let (rows, newest) = self.call(|conn| {
            let c = conn.clone();
            let tables: Vec<i16> = keys.iter().map(|(t, _)| t.id()).collect();
            let ks: Vec<Vec<u8>> = keys.iter().map(|(_, k)| k.clone()).collect();
            Box::pin(async move {
                let s = &c.stmts;
                // Read after the lock is granted: a statement of its own (READ COMMITTED takes
                // its snapshot when a statement starts), but one for both reads.
                let (t, limit) = (Table::Audit.id(), i64::from(audit));
                let late = async {
                    if tables.is_empty() && !audit {
                        Ok(Vec::new())
                    } else {
                        c.client.query(&s.late, &[&tables, &ks, &t, &limit]).await
                    }
                };
                let (l, late) = futures::join!(c.client.execute(&s.commit_lock, &[]), late);
                l?;
                let mut rows: Vec<(i16, cache::Row)> = Vec::new();
                let mut newest: Option<cache::Row> = None;
                for r in late? {
                    if r.get::<_, bool>(0) {
                        newest = Some((r.get(2), r.get(3)));
                    } else {
                        rows.push((r.get(1), (r.get(2), r.get(3))));
                    }
                }
                Ok((rows, newest))
            })
        })?;
        self.late_locked = true;
        let mut found: HashMap<cache::Key, Vec<u8>> = HashMap::with_capacity(rows.len());
        for (t, (k, v)) in rows {
            if let Some(table) = Table::ALL.get(t as usize) {
                found.insert((*table, k), v);
            }
        }
        let mut fetched = self.fetched.borrow_mut();
        for key in keys {
            if self.overlay.contains_key(&key) {
                continue;
            }
            let v = found.remove(&key);
            fetched.insert(key, v);
        }
        Ok(newest)
    }

    /// A row batch: locks the stored executions `ids` that no other transaction holds and reads
    /// them; gives back the ids another transaction holds (skipped: the caller leaves their
    /// work, due timers, to a later batch instead of queueing behind it).
    pub(crate) fn lock_executions_skip_locked(&self, ids: &[&str]) -> Result<Vec<String>> {
        let mut keys: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| id.as_bytes().to_vec())
            .filter(|k| {
                let key = (Table::Executions, k.clone());
                !self.overlay.contains_key(&key) && !self.fetched.borrow().contains_key(&key)
            })
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (locked, existing) = self.call(|conn| {
            let c = conn.clone();
            Box::pin(async move {
                let s = &c.stmts;
                let t = Table::Executions.id();
                let params: [&(dyn ToSql + Sync); 2] = [&t, &keys];
                let (locked, existing) = futures::join!(
                    c.client.query(&s.lock_many_skip, &params),
                    c.client.query(&s.exists_many, &params)
                );
                let locked: Rows = locked?.iter().map(|r| (r.get(0), r.get(1))).collect();
                let existing: Vec<Vec<u8>> = existing?.iter().map(|r| r.get(0)).collect();
                Ok((locked, existing))
            })
        })?;
        let mut fetched = self.fetched.borrow_mut();
        let mut skipped = Vec::new();
        for key in existing {
            if !locked.iter().any(|(k, _)| *k == key) {
                skipped.push(String::from_utf8_lossy(&key).into_owned());
            }
        }
        for (k, v) in locked {
            fetched.insert((Table::Executions, k), Some(v));
        }
        Ok(skipped)
    }

    /// Begins the transaction (takes the write lock) if it is not yet.
    pub(crate) fn begin_now(&self) -> Result<()> {
        if self.sent.get() {
            return Ok(());
        }
        self.fetch_many(Vec::new())
    }

    fn conn(&self) -> Result<&Arc<Conn>> {
        self.conn
            .as_ref()
            .ok_or_else(|| self.inner.unavailable("the transaction was closed"))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, cache::WriteCache> {
        self.inner.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a call; the first one goes behind `BEGIN`, the write lock and the counter read, in
    /// the same round trip.
    fn call<T: Send + 'static>(&self, call: impl FnOnce(&Arc<Conn>) -> Call<T>) -> Result<T> {
        let conn = self.conn()?;
        if self.base.get().is_some() {
            let out = self.inner.block(call(conn));
            return self.watch(out);
        }
        if self.sent.replace(true) {
            return Err(self.inner.unavailable("the transaction could not be begun"));
        }
        let op = call(conn);
        let c = conn.clone();
        if self.rows {
            // A row batch: the write lock shared; nothing from the cache, so no counter read.
            let out = self.inner.block(async move {
                let s = &c.stmts;
                let (begin, lock, out) = futures::join!(
                    c.client.batch_execute(BEGIN_WRITE),
                    c.client.execute(&s.lock_shared, &[]),
                    op
                );
                begin?;
                lock?;
                out
            });
            let out = self.watch(out)?;
            self.base.set(Some(ROW_BASE));
            return Ok(out);
        }
        // What the cache is true at, and whether it knows the newest audit record: the keys
        // other daemons wrote since then, and that record, are read in the same round trip.
        let (since, audit_edge) = {
            let cache = self.cache();
            (cache.seq(), cache.knows_last(Table::Audit))
        };
        let value_tables: Vec<i16> = Table::ALL
            .iter()
            .filter(|t| cache::refresh_on_change(**t))
            .map(|t| t.id())
            .collect();
        let wanted = std::mem::take(&mut *self.wanted.borrow_mut());
        let wanted_tables: Vec<i16> = wanted.iter().map(|(t, _)| t.id()).collect();
        let wanted_keys: Vec<Vec<u8>> = wanted.into_iter().map(|(_, k)| k).collect();
        let (seq, logged, changed, newest, out, waited) = self.inner.block(async move {
            let s = &c.stmts;
            // The counter, how many key lists were logged after the cache's value and (when the
            // cache knows one) the keys written since, in one statement.
            let seq_changed = async {
                let Some(after) = since else {
                    let row = c.client.query_one(&s.seq, &[&i64::MAX]).await?;
                    return Ok((row.get::<_, i64>(0), row.get::<_, i64>(1), None));
                };
                let rows = c
                    .client
                    .query(
                        &s.seq_changed,
                        &[
                            &after,
                            &value_tables,
                            &wanted_tables,
                            &wanted_keys,
                            &cache::CATCH_UP_MAX,
                        ],
                    )
                    .await?;
                let mut counter = (0, 0);
                let mut changed: Vec<cache::Changed> = Vec::with_capacity(rows.len());
                for r in &rows {
                    match r.get::<_, Option<i64>>(4) {
                        Some(n) => counter = (n, r.get::<_, i64>(5)),
                        None => changed.push((r.get::<_, i16>(0), r.get(1), r.get(2), r.get(3))),
                    }
                }
                Ok::<_, tokio_postgres::Error>((counter.0, counter.1, Some(changed)))
            };
            let newest = async {
                if audit_edge {
                    let (t, lo, limit) = (Table::Audit.id(), Vec::<u8>::new(), 1i64);
                    c.client.query(&s.scan_rev_open, &[&t, &lo, &limit]).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            // `join!` polls in order: the server gets BEGIN, the lock, the counter read with
            // the changed keys, the newest audit record and the call in that order, and answers
            // each after the lock is granted.
            // The lock's answer comes after BEGIN's by the time the lock was waited for.
            let begin = async {
                let r = c.client.batch_execute(BEGIN_WRITE).await;
                (r, std::time::Instant::now())
            };
            let lock = async {
                let r = c.client.execute(&s.lock, &[]).await;
                (r, std::time::Instant::now())
            };
            let ((begin, begun_at), (lock, locked_at), seq_changed, newest, out) =
                futures::join!(begin, lock, seq_changed, newest, op);
            begin?;
            lock?;
            let waited = locked_at.saturating_duration_since(begun_at);
            let (seq, logged, changed) = seq_changed?;
            let newest: Option<Option<cache::Row>> = newest?.map(|rows| rows.first().map(|r| (r.get(0), r.get(1))));
            Ok((seq, logged, changed, newest, out?, waited))
        })?;
        self.inner
            .contended
            .store(waited >= CONTENDED, std::sync::atomic::Ordering::Relaxed);
        self.base.set(Some(seq));
        self.cache().catch_up(cache::CatchUp {
            since,
            now: seq,
            logged,
            changed,
            newest_audit: newest,
        });
        Ok(out)
    }

    /// Notes a lost lock race: the transaction is aborted from here on.
    fn watch<T>(&self, out: Result<T>) -> Result<T> {
        if matches!(out, Err(StoreError::Conflict { .. })) {
            self.conflict.set(true);
        }
        out
    }

    /// A row from this transaction or the cache, if either knows it.
    fn known(&self, key: &cache::Key) -> Option<Option<Vec<u8>>> {
        if let Some(v) = self.overlay.get(key) {
            return Some(v.clone());
        }
        if let Some(v) = self.fetched.borrow().get(key) {
            return Some(v.clone());
        }
        if self.rows {
            return None;
        }
        let seq = self.base.get()?;
        self.cache().get(seq, key)
    }

    /// Whether the row was stored when this transaction read it or the write cache it
    /// validated knew it (its own writes aside); unknown rows are not.
    fn stored(&self, table: Table, key: &[u8]) -> bool {
        let key = (table, key.to_vec());
        if let Some(v) = self.fetched.borrow().get(&key) {
            return v.is_some();
        }
        if self.rows {
            return false;
        }
        self.base
            .get()
            .and_then(|seq| self.cache().get(seq, &key))
            .is_some_and(|v| v.is_some())
    }

    /// Reads the rows of `keys` this transaction does not know yet in one round trip.
    fn fetch_many(&self, mut keys: Vec<cache::Key>) -> Result<()> {
        // A batch may name a row several times (three resumes of one execution): each is
        // read once, and no later copy may overwrite what the first found.
        keys.sort();
        keys.dedup();
        let rows = if self.rows {
            // Executions locked (in key order), the rest read.
            let (ex, other): (Vec<cache::Key>, Vec<cache::Key>) =
                keys.iter().cloned().partition(|(t, _)| *t == Table::Executions);
            self.call(|c| lock_and_get_call(c, ex, other))?
        } else {
            self.call(|c| get_many_call(c, &keys))?
        };
        let mut found: HashMap<cache::Key, Vec<u8>> = HashMap::with_capacity(rows.len());
        for (t, (k, v)) in rows {
            if let Some(table) = Table::ALL.get(t as usize) {
                found.insert((*table, k), v);
            }
        }
        let mut fetched = self.fetched.borrow_mut();
        for key in keys {
            let v = found.remove(&key);
            fetched.insert(key, v);
        }
        Ok(())
    }

    /// Sends the buffered changes, the change-feed row and the counter bump, then commits.
    pub(crate) fn commit(mut self) -> Result<()> {
        let conn = self.conn()?.clone();
        if self.overlay.is_empty() {
            // Nothing to write: end the transaction (if one was begun); the counter stays, and
            // so does the cache.
            if let Some(c) = self.conn.take() {
                if self.sent.get() {
                    self.inner.release(c);
                } else {
                    self.inner.give_back(c);
                }
            }
            return Ok(());
        }
        if self.sent.get() && self.base.get().is_none() {
            return Err(self.inner.unavailable("the transaction could not be begun"));
        }
        if self.conflict.get() {
            // Aborted by a lost lock race: rolled back when dropped.
            return Err(StoreError::Conflict {
                database: self.inner.name.clone(),
                message: "the transaction lost a lock race".into(),
                needs_exclusive: false,
            });
        }
        if self.rows && !self.late_locked {
            return Err(StoreError::Storage(
                "a row batch commits only under the commit lock".into(),
            ));
        }
        let writes: Vec<(cache::Key, Option<Vec<u8>>)> = std::mem::take(&mut self.overlay).into_iter().collect();
        let mut puts: (Vec<i16>, Vec<Vec<u8>>, Vec<Vec<u8>>) = Default::default();
        // Puts of rows known to be stored (see `Stmts::commit_rows`).
        let mut updates: (Vec<i16>, Vec<Vec<u8>>, Vec<Vec<u8>>) = Default::default();
        let mut dels: (Vec<i16>, Vec<Vec<u8>>) = Default::default();
        let mut changed = std::collections::BTreeSet::new();
        // The keys of cached tables, logged with the counter bump for other daemons' caches.
        let mut logged: (Vec<i16>, Vec<Vec<u8>>) = Default::default();
        for ((table, key), value) in &writes {
            if cache::cacheable(*table) {
                logged.0.push(table.id());
                logged.1.push(key.clone());
            }
            match table {
                Table::Executions => {
                    changed.insert(String::from_utf8_lossy(key).into_owned());
                }
                Table::Logs => {
                    let id = key.split(|b| *b == 0).next().unwrap_or_default();
                    changed.insert(String::from_utf8_lossy(id).into_owned());
                }
                Table::Flows => {
                    changed.insert(FLOWS_CHANGED.to_string());
                }
                Table::Users | Table::Groups | Table::Bindings | Table::Tokens => {
                    changed.insert(AUTH_CHANGED.to_string());
                }
                Table::Timers if value.is_some() => {
                    changed.insert(TIMERS_ADDED.to_string());
                }
                _ => {}
            }
            match value {
                Some(v) => {
                    let to = if self.stored(*table, key) {
                        &mut updates
                    } else {
                        &mut puts
                    };
                    to.0.push(table.id());
                    to.1.push(key.clone());
                    to.2.push(v.clone());
                }
                None => {
                    dels.0.push(table.id());
                    dels.1.push(key.clone());
                }
            }
        }
        if logged.0.len() > MAX_LOGGED_KEYS {
            logged = (vec![cache::EVERYTHING], vec![Vec::new()]);
        }
        let daemon = self.inner.daemon_id.clone();
        let changed: Vec<String> = changed.into_iter().collect();
        let begun = self.base.get().is_some();
        let c = conn.clone();
        let result = self.inner.block(async move {
            let s = &c.stmts;
            // Everything is sent back to back in one round trip (`join!` polls in order). When
            // the lock is already held, COMMIT goes along: if a statement before it fails, the
            // transaction is aborted and that COMMIT only rolls back, and the failure is seen
            // here. When the lock is not held yet, COMMIT waits for the answers: a caller that
            // gives up waiting for the lock must not leave a COMMIT queued behind it.
            // Two futures, so that both are sent before the writes (one async block would
            // send the lock only after BEGIN's answer, behind the writes).
            let begin = async {
                if begun {
                    Ok(())
                } else {
                    c.client.batch_execute(BEGIN_WRITE).await
                }
            };
            let lock = async {
                if begun {
                    Ok(0)
                } else {
                    c.client.execute(&s.lock, &[]).await
                }
            };
            let rows_params: [&(dyn ToSql + Sync); 12] = [
                &puts.0, &puts.1, &puts.2, &dels.0, &dels.1, &daemon, &changed, &logged.0, &logged.1, &updates.0,
                &updates.1, &updates.2,
            ];
            let rows = c.client.query_one(&s.commit_rows, &rows_params);
            let commit = async {
                if begun {
                    c.client.batch_execute("COMMIT").await.map(Some)
                } else {
                    Ok(None)
                }
            };
            // After the (asynchronous) COMMIT, outside the transaction: its synchronous commit
            // flushes the WAL up to here, our commit included; the lock is already released.
            let flush = async {
                if begun {
                    flush_wal(&c, &daemon).await.map(Some)
                } else {
                    Ok(None)
                }
            };
            let (b, l, n, cm, fl) = futures::join!(begin, lock, rows, commit, flush);
            b?;
            l?;
            let n: i64 = n?.get(0);
            if cm?.is_none() {
                c.client.batch_execute("COMMIT").await?;
                flush_wal(&c, &daemon).await?;
            }
            fl?;
            Ok(n)
        });
        {
            let mut cache = self.cache();
            match &result {
                Ok(n) => cache.apply(cache::Delta {
                    // A row batch read nothing at a known counter value: its reads and writes
                    // are kept only if its commit is the next after the cache's.
                    base: self.base.get().filter(|b| *b != ROW_BASE),
                    committed: *n,
                    fetched: &self.fetched.borrow(),
                    edges: &self.edges.borrow(),
                    writes: &writes,
                }),
                // Committed or not: unknown. Start again from the database.
                Err(_) => cache.reset(None),
            }
        }
        match (&result, self.conn.take()) {
            (Ok(_), Some(c)) => self.inner.give_back(c),
            (Err(_), Some(c)) => self.inner.release(c),
            _ => {}
        }
        let result = self.watch(result);
        if result.is_err() && self.conflict.get() {
            // A statement failed after the race (the transaction was aborted): the race is
            // what to report, so that the batch runs again.
            return Err(StoreError::Conflict {
                database: self.inner.name.clone(),
                message: "the transaction lost a lock race".into(),
                needs_exclusive: false,
            });
        }
        result.map(|_| ())
    }

    /// Scans, this transaction's own changes merged into the database's rows.
    fn scan_merged(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if empty_range(lo, hi) {
            return Ok(());
        }
        // This transaction's own changes in the range, in scan order, merged into the pages.
        let own = |b: Bound<&[u8]>| match b {
            Bound::Included(x) => Bound::Included((table, x.to_vec())),
            Bound::Excluded(x) => Bound::Excluded((table, x.to_vec())),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (olo, ohi) = (
            match own(lo) {
                Bound::Unbounded => Bound::Included((table, Vec::new())),
                b => b,
            },
            match own(hi) {
                Bound::Unbounded => match Table::ALL
                    .iter()
                    .position(|t| *t == table)
                    .and_then(|i| Table::ALL.get(i + 1))
                {
                    Some(next) => Bound::Excluded((*next, Vec::new())),
                    None => Bound::Unbounded,
                },
                b => b,
            },
        );
        let mut mine: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .overlay
            .range((olo, ohi))
            .filter(|((t, _), _)| *t == table)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        if rev {
            mine.reverse();
        }
        let mut mine = mine.into_iter().peekable();
        // `a` comes before `b` in scan order.
        let before = |a: &[u8], b: &[u8]| if rev { a > b } else { a < b };
        pages(
            lo,
            hi,
            rev,
            |lo, hi, limit| self.call(|c| page_call(c, table, lo, hi, rev, limit)),
            |rows, last| {
                // Own rows up to the page's last key belong to this page (all of them on the last page).
                let end = if last {
                    None
                } else {
                    rows.last().map(|(k, _)| k.clone())
                };
                let within = |k: &[u8]| end.as_deref().is_none_or(|e| !before(e, k));
                let mut db = rows.into_iter().peekable();
                loop {
                    let take_own = match (db.peek(), mine.peek()) {
                        (None, None) => break,
                        (None, Some((ok, _))) => {
                            if within(ok) {
                                true
                            } else {
                                break;
                            }
                        }
                        (Some(_), None) => false,
                        (Some((dk, _)), Some((ok, _))) => {
                            if ok == dk {
                                db.next();
                                true
                            } else {
                                before(ok, dk)
                            }
                        }
                    };
                    let (k, v) = if take_own {
                        match mine.next() {
                            Some((k, Some(v))) => (k, v),
                            _ => continue,
                        }
                    } else {
                        match db.next() {
                            Some(row) => row,
                            None => continue,
                        }
                    };
                    if !f(&k, &v)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        // Not committed: roll back (which also releases the write lock).
        if let Some(c) = self.conn.take() {
            if self.sent.get() {
                self.inner.release(c);
            } else {
                self.inner.give_back(c);
            }
        }
    }
}

impl KvRead for PgWrite {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = (table, key.to_vec());
        if let Some(v) = self.known(&k) {
            return Ok(v);
        }
        // A row batch locks every execution it reads (one it did not name up front, a
        // subflow's parent, is locked here, when first touched).
        let v = if self.rows && table == Table::Executions {
            self.call(|c| get_for_update_call(c, table, key))?
        } else {
            self.call(|c| get_call(c, table, key))?
        };
        self.fetched.borrow_mut().insert(k, v.clone());
        Ok(v)
    }

    fn prefetch(&self, keys: &[(Table, &[u8])]) -> Result<()> {
        let keys: Vec<cache::Key> = keys.iter().map(|(t, k)| (*t, k.to_vec())).collect();
        if self.base.get().is_none() && !self.rows {
            // Not begun: skip what the cache holds, as if it were current; the counter read
            // with this call says whether it is (if not, what was skipped is read next).
            let seq = self.cache().seq();
            let (first, cached): (Vec<cache::Key>, Vec<cache::Key>) = keys
                .iter()
                .filter(|k| !self.overlay.contains_key(*k) && !self.fetched.borrow().contains_key(*k))
                .cloned()
                .partition(|k| seq.is_none_or(|s| self.cache().get(s, k).is_none()));
            *self.wanted.borrow_mut() = cached;
            // Sent even when empty: it begins the transaction and validates the cache.
            self.fetch_many(first)?;
        }
        let rest: Vec<cache::Key> = keys.into_iter().filter(|k| self.known(k).is_none()).collect();
        if rest.is_empty() {
            return Ok(());
        }
        self.fetch_many(rest)
    }

    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        // The newest row of a table (the audit chain's head, read by every batch that audits),
        // when neither this transaction nor the cache has changed the table without reading.
        if self.rows && matches!(table, Table::Executions | Table::ExecutionsByState | Table::Leases) {
            // Rows of other executions, which this batch has not locked (flow `concurrency`
            // counts the flow's executions by state): only an exclusive batch sees them still.
            return Err(self.needs_exclusive(format!("a scan of the {} table", table.name())));
        }
        let whole = matches!((lo, hi), (Bound::Unbounded, Bound::Unbounded));
        let own_rows = self.overlay.keys().any(|(t, _)| *t == table);
        if !(rev && whole) || own_rows || self.rows {
            return self.scan_merged(table, lo, hi, rev, f);
        }
        let known = self.edges.borrow().get(&table).cloned();
        let known = match known {
            Some(k) => Some(k),
            None => self.base.get().and_then(|seq| self.cache().last(seq, table)),
        };
        match known {
            Some(None) => Ok(()),
            Some(Some((k, v))) => {
                if !f(&k, &v)? {
                    return Ok(());
                }
                self.scan_merged(table, Bound::Unbounded, Bound::Excluded(&k), true, f)
            }
            None => {
                let mut first: Option<Option<cache::Row>> = None;
                self.scan_merged(table, lo, hi, rev, &mut |k, v| {
                    if first.is_none() {
                        first = Some(Some((k.to_vec(), v.to_vec())));
                    }
                    f(k, v)
                })?;
                // No row at all: the table is empty.
                self.edges.borrow_mut().insert(table, first.unwrap_or(None));
                Ok(())
            }
        }
    }

    fn len(&self, table: Table) -> Result<u64> {
        let mut n = 0;
        self.scan_merged(table, Bound::Unbounded, Bound::Unbounded, false, &mut |_, _| {
            n += 1;
            Ok(true)
        })?;
        Ok(n)
    }
}

impl KvWrite for PgWrite {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_write(table)?;
        self.overlay.insert((table, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        self.check_write(table)?;
        let existed = self.get(table, key)?.is_some();
        self.overlay.insert((table, key.to_vec()), None);
        Ok(existed)
    }

    fn erase(&mut self, table: Table, key: &[u8]) -> Result<()> {
        self.check_write(table)?;
        self.overlay.insert((table, key.to_vec()), None);
        Ok(())
    }
}

impl super::Writer {
    /// A PostgreSQL row batch: locks the stored executions `ids` that no other transaction
    /// holds (`FOR UPDATE SKIP LOCKED`) and gives back those another holds. Elsewhere nothing is
    /// skipped.
    pub fn lock_executions_skip_locked(&self, ids: &[&str]) -> Result<Vec<String>> {
        match &self.tx {
            super::WriteTx::Pg(tx) if tx.rows() => tx.lock_executions_skip_locked(ids),
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redact("postgres://tg:s3cret@db:5432/tollgate"),
            "postgres://tg@db:5432/tollgate"
        );
        assert_eq!(
            redact("postgres://tg@db/tollgate?password=s3cret&sslmode=disable"),
            "postgres://tg@db/tollgate?password=***&sslmode=disable"
        );
        assert_eq!(redact("postgresql://db/tollgate"), "postgresql://db/tollgate");
        assert!(!redact("postgres://u:p@h/d").contains('p') || !redact("postgres://u:p@h/d").contains(":p@"));
    }
}
