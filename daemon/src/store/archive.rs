//! Two redb files behind one store: `tollgate.redb` (HOT: every write lands here) and
//! `archive.redb` (ARCHIVE: finished executions, their log lines and files, old audit records).
//!
//! Why: after `kill -9` redb rebuilds its allocator state by walking the file unless the last
//! commit saved it (quick repair, ~1 MB per commit). The hot file only holds in-flight work and
//! recent history, so walking it is quick; the archive is written by rare, large commits that all
//! save the allocator state, so it always opens in milliseconds.
//!
//! Reads of the "union" tables ([`is_union`]) merge both files: a key in hot wins; a key only in
//! the archive counts unless a TOMBSTONE (a hot row naming table and key) hides it. Reads take
//! the hot snapshot first, then the archive's: the mover below deletes a row from hot only after
//! the archive commit that holds it, so a row is never missed between the two snapshots.
//!
//! The mover ([`collect`], [`copy`], [`release`]) runs on its own thread ([`spawn`]):
//! 1. from a hot snapshot, takes finished executions created more than N seconds ago (their row,
//!    state-index entry, log lines and files), audit records older than the newest K, and the
//!    pending tombstones;
//! 2. in one archive commit: applies the tombstones, then writes the rows;
//! 3. in one hot commit: drops the applied tombstones, then deletes each moved row whose hot
//!    value is still the one copied; a row changed since stays (hot wins), a row deleted since
//!    gets a tombstone (its copy now sits in the archive).
//!
//! A crash between steps leaves duplicates (hot wins) or tombstones already applied (deleting
//! an absent key again is harmless): nothing is lost or resurrected.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableTable};

use super::backend::{GetEach, KvRead, KvWrite, Scan, Table, empty_range};
use super::hot::{HotSnap, HotTx};
use super::overlay::{HotRead, HotWrite, TOMBS, slot};
use super::redb_backend::{KeyConv, ValConv, conv_bound};
use super::tables::*;
use super::{Result, StoreError};

/// Both files of a redb store.
pub(super) struct Files {
    pub(super) hot: Database,
    pub(super) archive: Database,
    /// Set when the store closes: the mover and the flusher stop at their next look.
    pub(super) stop: AtomicBool,
    /// The journal and overlays in front of `hot` (`TOLLGATE_JOURNAL=on`): see `hot.rs`.
    pub(super) journal: Option<super::hot::Journaled>,
}

/// The tables whose rows grow with history: read as hot merged with archive.
pub(super) fn is_union(t: Table) -> bool {
    matches!(
        t,
        Table::Executions | Table::ExecutionsByState | Table::Logs | Table::Files | Table::Audit
    )
}

/// A tombstone's key: the table's number, then the row's key.
fn tomb_key(t: Table, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(t.id() as u8);
    out.extend_from_slice(key);
    out
}

fn tomb_split(raw: &[u8]) -> Option<(Table, &[u8])> {
    let (&id, key) = raw.split_first()?;
    let table = Table::ALL.get(id as usize).copied()?;
    is_union(table).then_some((table, key))
}

/// Opens the archive's typed table of union table `$table` in `$a` as `$at`.
macro_rules! with_archive_table {
    ($a:expr, $table:expr, |$at:ident| $body:expr) => {
        match $table {
            Table::Executions => {
                let $at = $a.open_table(EXECUTIONS)?;
                $body
            }
            Table::ExecutionsByState => {
                let $at = $a.open_table(EXECUTIONS_BY_STATE)?;
                $body
            }
            Table::Logs => {
                let $at = $a.open_table(LOGS)?;
                $body
            }
            Table::Files => {
                let $at = $a.open_table(FILES)?;
                $body
            }
            Table::Audit => {
                let $at = $a.open_table(AUDIT)?;
                $body
            }
            other => Err(StoreError::Storage(format!(
                "table {} is not kept in the archive",
                other.name()
            ))),
        }
    };
}

/// Whether any tombstone exists (the common case is none: nothing to look up per row).
fn any_tombs(h: &dyn HotRead) -> Result<bool> {
    let mut any = false;
    h.hscan(TOMBS, Bound::Unbounded, Bound::Unbounded, false, &mut |_, _| {
        any = true;
        Ok(false)
    })?;
    Ok(any)
}

fn hidden(h: &dyn HotRead, tombs: bool, table: Table, key: &[u8]) -> Result<bool> {
    Ok(tombs && h.hget(TOMBS, &tomb_key(table, key))?.is_some())
}

fn get_union(h: &dyn HotRead, a: &ReadTransaction, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
    if let Some(v) = h.hget(slot(table), key)? {
        return Ok(Some(v));
    }
    match a.get(table, key)? {
        Some(v) if !hidden(h, true, table, key)? => Ok(Some(v)),
        _ => Ok(None),
    }
}

type Row = (Vec<u8>, Vec<u8>);

/// The ordered merge of a range of both files: hot wins on equal keys, hidden archive keys are
/// skipped. Hot rows are pushed by its scan; archive rows are pulled in between.
#[allow(clippy::too_many_arguments)]
fn scan_union<K: KeyConv, V: ValConv>(
    h: &dyn HotRead,
    a: &impl ReadableTable<K, V>,
    tombs: bool,
    table: Table,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
    f: Scan<'_>,
) -> Result<()> {
    if empty_range(lo, hi) {
        return Ok(());
    }
    type Item<'x, K, V> = std::result::Result<(redb::AccessGuard<'x, K>, redb::AccessGuard<'x, V>), redb::StorageError>;
    fn boxed<'x, K: KeyConv, V: ValConv>(
        r: redb::Range<'x, K, V>,
        rev: bool,
    ) -> Box<dyn Iterator<Item = Item<'x, K, V>> + 'x> {
        if rev { Box::new(r.rev()) } else { Box::new(r) }
    }
    let mut arch = boxed(
        a.range::<K::SelfType<'_>>((conv_bound::<K>(lo)?, conv_bound::<K>(hi)?))?,
        rev,
    );
    fn next<K: KeyConv, V: ValConv>(it: &mut dyn Iterator<Item = Item<'_, K, V>>) -> Result<Option<Row>> {
        match it.next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((
                    K::to_raw(k.value()).into_owned(),
                    V::to_raw(v.value()).into_owned(),
                )))
            }
        }
    }
    let before = |x: &[u8], y: &[u8]| {
        let ord = x.cmp(y);
        (if rev { ord.reverse() } else { ord }) == Ordering::Less
    };
    let mut y = next(&mut *arch)?;
    let mut stopped = false;
    h.hscan(slot(table), lo, hi, rev, &mut |hk, hv| {
        // Archive rows before this hot row, then skip the archive's copy of it (hot wins).
        while let Some((ak, av)) = &y {
            if before(ak, hk) {
                if !hidden(h, tombs, table, ak)? && !f(ak, av)? {
                    stopped = true;
                    return Ok(false);
                }
                y = next(&mut *arch)?;
            } else {
                if ak.as_slice() == hk {
                    y = next(&mut *arch)?;
                }
                break;
            }
        }
        if !f(hk, hv)? {
            stopped = true;
            return Ok(false);
        }
        Ok(true)
    })?;
    if stopped {
        return Ok(());
    }
    while let Some((ak, av)) = y.take() {
        if !hidden(h, tombs, table, &ak)? && !f(&ak, &av)? {
            return Ok(());
        }
        y = next(&mut *arch)?;
    }
    Ok(())
}

/// Rows of the union: hot rows, plus archive rows neither in hot nor hidden.
fn len_union(h: &dyn HotRead, a: &ReadTransaction, table: Table) -> Result<u64> {
    let archived = a.len(table)?;
    let hot = h.hlen(slot(table))?;
    if archived == 0 {
        return Ok(hot);
    }
    // Counted twice or hidden: hot keys also archived; tombstoned archive keys not in hot.
    let mut shadowed = 0u64;
    h.hscan(slot(table), Bound::Unbounded, Bound::Unbounded, false, &mut |k, _| {
        if a.get(table, k)?.is_some() {
            shadowed += 1;
        }
        Ok(true)
    })?;
    let lo = [table.id() as u8];
    let hi = [table.id() as u8 + 1];
    h.hscan(TOMBS, Bound::Included(&lo), Bound::Excluded(&hi), false, &mut |k, _| {
        let key = &k[1..];
        if a.get(table, key)?.is_some() && h.hget(slot(table), key)?.is_none() {
            shadowed += 1;
        }
        Ok(true)
    })?;
    Ok(hot + archived - shadowed)
}

/// A read snapshot of both files.
pub(super) struct UnionRead {
    hot: HotSnap,
    archive: ReadTransaction,
}

impl UnionRead {
    pub(super) fn begin(files: &Files) -> Result<UnionRead> {
        // Hot first (see the module comment).
        let hot = files.hot_read()?;
        let archive = files.archive.begin_read()?;
        Ok(UnionRead { hot, archive })
    }
}

impl KvRead for UnionRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !is_union(table) {
            return self.hot.hget(slot(table), key);
        }
        get_union(&self.hot, &self.archive, table, key)
    }
    fn get_each(&self, table: Table, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.hget_each(slot(table), keys, f);
        }
        // Most keys are hot: the archive and tombstones only for the misses.
        let tombs = OnceCell::new();
        self.hot.hget_each(slot(table), keys, &mut |i, v| match v {
            Some(v) => f(i, Some(v)),
            None => {
                let key = keys[i];
                let found = match self.archive.get(table, key)? {
                    Some(v) => {
                        let any = match tombs.get() {
                            Some(any) => *any,
                            None => *tombs.get_or_init(|| any_tombs(&self.hot).unwrap_or(true)),
                        };
                        (!hidden(&self.hot, any, table, key)?).then_some(v)
                    }
                    None => None,
                };
                f(i, found.as_deref())
            }
        })
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.hscan(slot(table), lo, hi, rev, f);
        }
        let tombs = any_tombs(&self.hot)?;
        with_archive_table!(self.archive, table, |a| scan_union(
            &self.hot, &a, tombs, table, lo, hi, rev, f
        ))
    }
    fn len(&self, table: Table) -> Result<u64> {
        if !is_union(table) {
            return self.hot.hlen(slot(table));
        }
        len_union(&self.hot, &self.archive, table)
    }
}

/// A hot write transaction that reads through to the archive (taken when first needed: most
/// transactions only touch hot rows).
pub(super) struct UnionWrite {
    pub(super) hot: HotTx,
    files: Arc<Files>,
    archive: OnceCell<ReadTransaction>,
}

impl UnionWrite {
    pub(super) fn begin(files: &Arc<Files>, quick_repair: bool) -> Result<UnionWrite> {
        Ok(UnionWrite {
            hot: files.hot_write(quick_repair)?,
            files: files.clone(),
            archive: OnceCell::new(),
        })
    }

    pub(super) fn commit(self) -> Result<()> {
        self.files.commit_hot(self.hot)
    }

    fn archive(&self) -> Result<&ReadTransaction> {
        if let Some(a) = self.archive.get() {
            return Ok(a);
        }
        let a = self.files.archive.begin_read()?;
        Ok(self.archive.get_or_init(|| a))
    }
}

impl KvRead for UnionWrite {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !is_union(table) {
            return self.hot.hget(slot(table), key);
        }
        // Most reads hit hot: the archive snapshot and the tombstones only on a miss.
        if let Some(v) = self.hot.hget(slot(table), key)? {
            return Ok(Some(v));
        }
        let archive = self.archive()?;
        let Some(v) = archive.get(table, key)? else {
            return Ok(None);
        };
        if hidden(&self.hot, true, table, key)? {
            return Ok(None);
        }
        Ok(Some(v))
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.hscan(slot(table), lo, hi, rev, f);
        }
        let archive = self.archive()?;
        // As with any redb write transaction, `f` must not read the store again (none of ours
        // does): the hot table may be open for the scan.
        let tombs = any_tombs(&self.hot)?;
        with_archive_table!(archive, table, |a| scan_union(
            &self.hot, &a, tombs, table, lo, hi, rev, f
        ))
    }
    fn len(&self, table: Table) -> Result<u64> {
        if !is_union(table) {
            return self.hot.hlen(slot(table));
        }
        len_union(&self.hot, self.archive()?, table)
    }
}

impl KvWrite for UnionWrite {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        // A tombstone of the key may stay: hot wins over it, and the mover applies it before it
        // copies this row (see `copy`).
        self.hot.hput(slot(table), key, value)
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let in_hot = self.hot.hdel(slot(table), key)?;
        if !is_union(table) {
            return Ok(in_hot);
        }
        if self.archive()?.get(table, key)?.is_none() {
            return Ok(in_hot);
        }
        let tk = tomb_key(table, key);
        let was_hidden = self.hot.hget(TOMBS, &tk)?.is_some();
        self.hot.hput(TOMBS, &tk, &[])?;
        Ok(in_hot || !was_hidden)
    }
}

/// What one round of the mover takes from a hot snapshot.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Rows to move, with the hot value copied.
    rows: Vec<(Table, Vec<u8>, Vec<u8>)>,
    /// Tombstones (raw keys) to apply in the archive, then drop from hot.
    tombs: Vec<Vec<u8>>,
    pub(super) executions: usize,
    pub(super) audit: usize,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.tombs.is_empty()
    }
}

/// What the mover moves and how much per round.
#[derive(Debug, Clone)]
pub(super) struct Policy {
    /// Names of the terminal states (only their executions move).
    pub(super) terminal: Vec<&'static str>,
    /// Executions created before this (ms) may move.
    pub(super) before_ms: i64,
    /// The newest audit records that stay in hot.
    pub(super) keep_audit: u64,
    /// At most this many executions per round (and 20x as many audit records).
    pub(super) batch: usize,
}

/// Step 1: what to move, read from one hot snapshot (through the journal's overlays).
pub(super) fn collect(files: &Files, p: &Policy) -> Result<Batch> {
    let tx = files.hot_read()?;
    let mut b = Batch::default();
    let mut ids = Vec::new();
    for state in &p.terminal {
        let lo = format!("{state}\0");
        let hi = format!("{state}\0{:016x}", p.before_ms.max(0));
        let left = p.batch.saturating_sub(ids.len());
        if left == 0 {
            break;
        }
        tx.hscan(
            slot(Table::ExecutionsByState),
            Bound::Included(lo.as_bytes()),
            Bound::Excluded(hi.as_bytes()),
            false,
            &mut |k, v| {
                // The id is the key's last part (the value's format belongs to the state index).
                let id = k.rsplit(|c| *c == 0).next().unwrap_or_default().to_vec();
                b.rows.push((Table::ExecutionsByState, k.to_vec(), v.to_vec()));
                ids.push(id);
                Ok(ids.len() < p.batch)
            },
        )?;
    }
    for id in &ids {
        if let Some(v) = tx.hget(slot(Table::Executions), id)? {
            b.rows.push((Table::Executions, id.clone(), v));
        }
        let mut lo = id.clone();
        lo.push(0);
        let mut hi = id.clone();
        hi.push(1);
        for table in [Table::Logs, Table::Files] {
            tx.hscan(
                slot(table),
                Bound::Included(&lo),
                Bound::Excluded(&hi),
                false,
                &mut |k, v| {
                    b.rows.push((table, k.to_vec(), v.to_vec()));
                    Ok(true)
                },
            )?;
        }
    }
    b.executions = ids.len();
    // Audit: keys are u64 seqs, 8 big-endian bytes.
    let audit = slot(Table::Audit);
    let mut newest = None;
    tx.hscan(audit, Bound::Unbounded, Bound::Unbounded, true, &mut |k, _| {
        newest = <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes);
        Ok(false)
    })?;
    if let Some(newest) = newest {
        let cut = newest.saturating_add(1).saturating_sub(p.keep_audit).to_be_bytes();
        let most = p.batch.saturating_mul(20);
        tx.hscan(audit, Bound::Unbounded, Bound::Excluded(&cut), false, &mut |k, v| {
            b.rows.push((Table::Audit, k.to_vec(), v.to_vec()));
            b.audit += 1;
            Ok(b.audit < most)
        })?;
    }
    let most = p.batch.saturating_mul(20);
    tx.hscan(TOMBS, Bound::Unbounded, Bound::Unbounded, false, &mut |k, _| {
        b.tombs.push(k.to_vec());
        Ok(b.tombs.len() < most)
    })?;
    Ok(b)
}

/// Step 2: one archive commit (with the allocator state saved): the tombstones applied first,
/// then the rows, so a row put in hot after its key was tombstoned ends up archived.
pub(super) fn copy(files: &Files, b: &Batch) -> Result<()> {
    let mut tx = files.archive.begin_write()?;
    tx.set_quick_repair(true);
    for raw in &b.tombs {
        if let Some((table, key)) = tomb_split(raw) {
            tx.erase(table, key)?;
        }
    }
    for (table, key, value) in &b.rows {
        tx.put(*table, key, value)?;
    }
    tx.commit()?;
    Ok(())
}

/// Step 3: one hot commit (journaled like any other write): drops the applied tombstones,
/// then each moved row still holding the copied value. A row deleted since the snapshot gets a
/// tombstone: its copy is in the archive.
pub(super) fn release(files: &Arc<Files>, b: &Batch, quick_repair: bool) -> Result<()> {
    let mut tx = files.hot_write(quick_repair)?;
    for raw in &b.tombs {
        tx.hdel(TOMBS, raw)?;
    }
    for (table, key, value) in &b.rows {
        match tx.hget(slot(*table), key)? {
            Some(now) if now == *value => {
                tx.hdel(slot(*table), key)?;
            }
            Some(_) => {}
            None => tx.hput(TOMBS, &tomb_key(*table, key), &[])?,
        }
    }
    files.commit_hot(tx)
}

/// One round: the three steps. Returns the batch (empty: nothing to move).
pub(super) fn round(files: &Arc<Files>, p: &Policy, quick_repair: bool) -> Result<Batch> {
    let b = collect(files, p)?;
    if b.is_empty() {
        return Ok(b);
    }
    copy(files, &b)?;
    if b.executions > 0 {
        hold_for_test("copied");
    }
    release(files, &b, quick_repair)?;
    Ok(b)
}

/// Test-only: `TOLLGATE_ARCHIVE_TEST_HOLD=copied` stops the mover forever after the archive
/// commit (before the hot one) of the first round that moves executions, so a test can kill the
/// daemon exactly there.
fn hold_for_test(point: &str) {
    if std::env::var("TOLLGATE_ARCHIVE_TEST_HOLD").is_ok_and(|v| v == point) {
        tracing::warn!(point, "archiver holding here (TOLLGATE_ARCHIVE_TEST_HOLD)");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// The mover's settings, from the environment.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// `TOLLGATE_ARCHIVE_AFTER_SECS` (default 60): finished executions created longer ago move.
    pub after: Duration,
    /// `TOLLGATE_ARCHIVE_INTERVAL_MS` (default 5000): pause between rounds once nothing is left.
    pub interval: Duration,
    /// `TOLLGATE_ARCHIVE_KEEP_AUDIT` (default 10000): newest audit records kept in hot.
    pub keep_audit: u64,
    /// `TOLLGATE_ARCHIVE_BATCH` (default 2000): executions per round.
    pub batch: usize,
}

impl ArchiveSettings {
    pub fn from_env() -> Result<ArchiveSettings> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
            match std::env::var(name) {
                Err(_) => Ok(default),
                Ok(s) => s.trim().parse().map_err(|_| {
                    StoreError::Storage(format!("{name}={s:?} is not a valid number (unset it for the default)"))
                }),
            }
        }
        let batch: usize = var("TOLLGATE_ARCHIVE_BATCH", 2000)?;
        if batch == 0 {
            return Err(StoreError::Storage("TOLLGATE_ARCHIVE_BATCH must be at least 1".into()));
        }
        Ok(ArchiveSettings {
            after: Duration::from_secs(var("TOLLGATE_ARCHIVE_AFTER_SECS", 60)?),
            interval: Duration::from_millis(var("TOLLGATE_ARCHIVE_INTERVAL_MS", 5000)?),
            keep_audit: var("TOLLGATE_ARCHIVE_KEEP_AUDIT", 10_000)?,
            batch,
        })
    }

    pub(super) fn policy(&self, terminal: &[&'static str]) -> Policy {
        let now = chrono::Utc::now().timestamp_millis();
        Policy {
            terminal: terminal.to_vec(),
            before_ms: now.saturating_sub(self.after.as_millis() as i64),
            keep_audit: self.keep_audit,
            batch: self.batch,
        }
    }
}

/// Starts the mover thread. It holds the files only during a round, so closing the store waits
/// at most for the round in progress.
pub(super) fn spawn(files: Weak<Files>, terminal: Vec<&'static str>, s: ArchiveSettings, quick_repair: bool) {
    let spawned = std::thread::Builder::new()
        .name("tollgate-archiver".into())
        .spawn(move || {
            let mut pause = Duration::ZERO;
            loop {
                // Short naps so a closing store is let go quickly.
                let mut slept = Duration::ZERO;
                while slept < pause {
                    let nap = Duration::from_millis(50).min(pause - slept);
                    std::thread::sleep(nap);
                    slept += nap;
                    match files.upgrade() {
                        Some(f) if !f.stop.load(AtomicOrdering::Relaxed) => {}
                        _ => return,
                    }
                }
                let Some(f) = files.upgrade() else { return };
                if f.stop.load(AtomicOrdering::Relaxed) {
                    return;
                }
                let started = std::time::Instant::now();
                pause = match round(&f, &s.policy(&terminal), quick_repair) {
                    Ok(b) if b.is_empty() => s.interval,
                    Ok(b) => {
                        tracing::info!(
                            executions = b.executions,
                            audit = b.audit,
                            tombstones = b.tombs.len(),
                            took_ms = started.elapsed().as_millis() as u64,
                            "moved history to archive.redb"
                        );
                        // More may be waiting (a full batch): go on, leaving the writer room.
                        if b.executions >= s.batch {
                            Duration::from_millis(20)
                        } else {
                            s.interval
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "archiving failed; retrying later");
                        s.interval.max(Duration::from_secs(1))
                    }
                };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the archiver thread: history stays in tollgate.redb");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{Ex, Line, St, ex};
    use crate::store::{Backend, StateCounts, Store};

    const UNION: [Table; 5] = [
        Table::Executions,
        Table::ExecutionsByState,
        Table::Logs,
        Table::Files,
        Table::Audit,
    ];

    fn files(store: &Store) -> &Arc<Files> {
        match &store.backend {
            Backend::Redb(f) => f,
            Backend::Postgres(_) => panic!("a redb store"),
        }
    }

    fn policy(keep_audit: u64) -> Policy {
        Policy {
            terminal: vec!["SUCCESS"],
            before_ms: i64::MAX / 2,
            keep_audit,
            batch: 1000,
        }
    }

    /// Everything a reader sees of the union tables: rows in order, rows in reverse order, the
    /// count, a point read of every key, and the state counts.
    #[derive(Debug, PartialEq)]
    struct View {
        tables: Vec<(Table, Vec<Row>, u64)>,
        counts: StateCounts,
    }

    fn view(store: &Store) -> View {
        let r = store.read().unwrap();
        let mut tables = Vec::new();
        for t in UNION {
            let mut rows = Vec::new();
            r.dump(t, &mut |k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
            let mut back = Vec::new();
            r.kv_read()
                .scan(t, Bound::Unbounded, Bound::Unbounded, true, &mut |k, v| {
                    back.push((k.to_vec(), v.to_vec()));
                    Ok(true)
                })
                .unwrap();
            back.reverse();
            assert_eq!(rows, back, "{t:?}: the reverse scan is the forward scan reversed");
            for (k, v) in &rows {
                assert_eq!(r.kv_read().get(t, k).unwrap().as_ref(), Some(v), "{t:?} get");
            }
            let len = r.kv_read().len(t).unwrap();
            assert_eq!(len, rows.len() as u64, "{t:?}: len counts what a scan shows");
            tables.push((t, rows, len));
        }
        // A writer sees the same rows as a reader.
        store
            .write(|w| {
                for (t, rows, len) in &tables {
                    let mut seen = Vec::new();
                    w.kv_read()
                        .scan(*t, Bound::Unbounded, Bound::Unbounded, false, &mut |k, v| {
                            seen.push((k.to_vec(), v.to_vec()));
                            Ok(true)
                        })
                        .unwrap();
                    assert_eq!(&seen, rows, "{t:?}: a writer's scan");
                    assert_eq!(w.kv_read().len(*t).unwrap(), *len, "{t:?}: a writer's len");
                    for (k, v) in rows {
                        assert_eq!(
                            w.kv_read().get(*t, k).unwrap().as_ref(),
                            Some(v),
                            "{t:?}: a writer's get"
                        );
                    }
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        View {
            tables,
            counts: r.state_counts().unwrap(),
        }
    }

    /// Rows of a table in the hot file (through the journal's overlays).
    fn hot_len(store: &Store, t: Table) -> u64 {
        files(store).hot_read().unwrap().hlen(slot(t)).unwrap()
    }

    fn archive_len(store: &Store, t: Table) -> u64 {
        files(store).archive.begin_read().unwrap().len(t).unwrap()
    }

    fn tombstones(store: &Store) -> u64 {
        files(store).hot_read().unwrap().hlen(TOMBS).unwrap()
    }

    fn line(id: &str, seq: u64) -> Line {
        Line {
            seq,
            execution_id: id.into(),
            message: format!("line {seq} of {id}"),
        }
    }

    /// Two finished executions (with logs, a file), a paused and a running one, 5 audit rows.
    fn seed(store: &Store) {
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Success, 1, None))?;
                w.put_execution(&ex("e2", St::Success, 2, None))?;
                w.put_execution(&ex("e3", St::Paused, 3, Some(4)))?;
                w.put_execution(&ex("e4", St::Running, 5, None))?;
                for id in ["e1", "e2", "e3"] {
                    for seq in 0..3 {
                        w.append_log(&line(id, seq))?;
                    }
                }
                w.restore(Table::Files, b"e1\x00out.txt\x0000000000", b"file of e1")?;
                w.restore(Table::Files, b"e3\x00in.txt\x0000000000", b"file of e3")?;
                for seq in 1u64..=5 {
                    w.restore(Table::Audit, &seq.to_be_bytes(), format!("audit {seq}").as_bytes())?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    /// Changes made while a round is under way: e1 re-run (its SUCCESS index entry goes), e2
    /// deleted with its logs and files (retention).
    fn change(store: &Store) {
        store
            .write(|w| {
                w.put_execution(&ex("e1", St::Running, 1, None))?;
                w.append_log(&line("e1", 3))?;
                w.delete_execution::<Ex>("e2")
            })
            .unwrap();
    }

    /// Each step of a round leaves every row readable exactly as before, also after the files
    /// are closed and opened again between steps (a crash there leaves the same files).
    #[test]
    fn every_row_stays_visible_after_each_step_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        seed(&store);
        let before = view(&store);

        let b = collect(files(&store), &policy(2)).unwrap();
        assert_eq!((b.executions, b.audit), (2, 3));
        copy(files(&store), &b).unwrap();
        // Crash after the archive commit: every moved row is in both files.
        assert_eq!(archive_len(&store, Table::Executions), 2);
        assert_eq!(hot_len(&store, Table::Executions), 4);
        assert_eq!(view(&store), before);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(view(&store), before);

        release(files(&store), &b, true).unwrap();
        assert_eq!(view(&store), before);
        assert_eq!(hot_len(&store, Table::Executions), 2, "e3 and e4 stay hot");
        assert_eq!(hot_len(&store, Table::Logs), 3, "e3's lines stay hot");
        assert_eq!(hot_len(&store, Table::Files), 1);
        assert_eq!(hot_len(&store, Table::Audit), 2, "the newest 2 audit rows stay hot");
        assert_eq!(tombstones(&store), 0);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(view(&store), before);
        // A redone round finds nothing more.
        assert!(collect(files(&store), &policy(2)).unwrap().is_empty());
    }

    /// A row changed after the snapshot stays in hot (hot wins); a row deleted after it gets a
    /// tombstone that hides its archived copy until the next round deletes that copy. Checked
    /// against a store that never archived and saw the same changes.
    #[test]
    fn rows_changed_or_deleted_during_a_round_stay_changed_or_deleted() {
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = Store::open(plain_dir.path()).unwrap();
        seed(&plain);
        change(&plain);
        let expected = view(&plain);

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        seed(&store);
        let b = collect(files(&store), &policy(2)).unwrap();
        copy(files(&store), &b).unwrap();
        change(&store);
        assert_eq!(view(&store), expected);
        release(files(&store), &b, true).unwrap();
        assert_eq!(view(&store), expected);
        assert!(tombstones(&store) > 0, "e2's archived rows are hidden by tombstones");
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(view(&store), expected);

        // The next round applies the tombstones: the archive drops e2's rows and e1's old
        // index entry; nothing reappears.
        let b = collect(files(&store), &policy(2)).unwrap();
        copy(files(&store), &b).unwrap();
        assert_eq!(view(&store), expected, "tombstones applied, not yet dropped");
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(view(&store), expected);
        release(files(&store), &b, true).unwrap();
        assert_eq!(tombstones(&store), 0);
        // e2 is gone; e1's old copy stays, shadowed by the re-run in hot, until that one moves.
        assert_eq!(archive_len(&store, Table::Executions), 1);
        assert_eq!(archive_len(&store, Table::Logs), 3, "e1's first three lines");
        assert_eq!(view(&store), expected);
    }

    /// Deleting an archived execution (retention) hides it at once and for good; putting the
    /// key back later shows the new row, also once that row is archived in turn.
    #[test]
    fn a_deleted_archived_row_stays_deleted_and_a_new_one_shows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        seed(&store);
        round(files(&store), &policy(0), true).unwrap();
        assert_eq!(hot_len(&store, Table::Executions), 2);
        let deleted = store.write(|w| w.delete_execution::<Ex>("e1")).unwrap();
        assert!(deleted);
        assert!(store.read().unwrap().execution::<Ex>("e1").unwrap().is_none());
        assert!(store.read().unwrap().logs::<Line>("e1", 0, 10).unwrap().is_empty());
        let again = store.write(|w| w.delete_execution::<Ex>("e1")).unwrap();
        assert!(!again, "already deleted");
        // Back, as a new execution with the same id.
        store
            .write(|w| w.put_execution(&ex("e1", St::Success, 7, None)))
            .unwrap();
        let plain_dir = tempfile::tempdir().unwrap();
        let plain = Store::open(plain_dir.path()).unwrap();
        seed(&plain);
        plain.write(|w| w.delete_execution::<Ex>("e1")).unwrap();
        plain
            .write(|w| w.put_execution(&ex("e1", St::Success, 7, None)))
            .unwrap();
        let expected = view(&plain);
        assert_eq!(view(&store), expected);
        round(files(&store), &policy(0), true).unwrap();
        assert_eq!(view(&store), expected);
        assert_eq!(tombstones(&store), 0);
        assert_eq!(
            store.read().unwrap().execution::<Ex>("e1").unwrap(),
            Some(ex("e1", St::Success, 7, None))
        );
    }

    /// Only finished executions created before the cut move, in batches.
    #[test]
    fn only_finished_executions_older_than_the_cut_move_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                for i in 0..10 {
                    w.put_execution(&ex(&format!("s{i}"), St::Success, 100 + i, None))?;
                }
                w.put_execution(&ex("p", St::Paused, 1, Some(1)))
            })
            .unwrap();
        let before = view(&store);
        let p = Policy {
            before_ms: 105,
            batch: 3,
            ..policy(0)
        };
        let b = round(files(&store), &p, true).unwrap();
        assert_eq!(b.executions, 3);
        let b = round(files(&store), &p, true).unwrap();
        assert_eq!(b.executions, 2);
        assert!(round(files(&store), &p, true).unwrap().is_empty());
        assert_eq!(archive_len(&store, Table::Executions), 5);
        assert_eq!(
            hot_len(&store, Table::Executions),
            6,
            "5 newer finished + the paused one"
        );
        assert_eq!(view(&store), before);
        // Listing finished ones, oldest first, spans both files.
        let ids = store.read().unwrap().execution_ids_in_state(St::Success).unwrap();
        assert_eq!(ids, (0..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
    }
}
