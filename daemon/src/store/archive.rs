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

use redb::{Database, ReadTransaction, ReadableTable, WriteTransaction};

use super::backend::{GetEach, KvRead, KvWrite, Scan, Table, empty_range};
use super::redb_backend::{KeyConv, ValConv, conv_bound};
use super::tables::*;
use super::{Result, StoreError};

/// Both files of a redb store.
pub(super) struct Files {
    pub(super) hot: Database,
    pub(super) archive: Database,
    /// Set when the store closes: the mover stops at its next look.
    pub(super) stop: AtomicBool,
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

/// Opens both typed tables of union table `$table` (hot in `$h`, archive in `$a`).
macro_rules! with_union_table {
    ($h:expr, $a:expr, $table:expr, |$ht:ident, $at:ident| $body:expr) => {
        match $table {
            Table::Executions => {
                let $ht = $h.open_table(EXECUTIONS)?;
                let $at = $a.open_table(EXECUTIONS)?;
                $body
            }
            Table::ExecutionsByState => {
                let $ht = $h.open_table(EXECUTIONS_BY_STATE)?;
                let $at = $a.open_table(EXECUTIONS_BY_STATE)?;
                $body
            }
            Table::Logs => {
                let $ht = $h.open_table(LOGS)?;
                let $at = $a.open_table(LOGS)?;
                $body
            }
            Table::Files => {
                let $ht = $h.open_table(FILES)?;
                let $at = $a.open_table(FILES)?;
                $body
            }
            Table::Audit => {
                let $ht = $h.open_table(AUDIT)?;
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

/// Whether a tombstone hides a key; `None` when there are no tombstones at all (the common case:
/// nothing to look up per row).
struct Tombs<T> {
    table: Option<T>,
}

impl<T: ReadableTable<&'static [u8], ()>> Tombs<T> {
    fn new(t: T) -> Result<Self> {
        let any = t.first()?.is_some();
        Ok(Tombs {
            table: any.then_some(t),
        })
    }
    fn hides(&self, table: Table, key: &[u8]) -> Result<bool> {
        match &self.table {
            None => Ok(false),
            Some(t) => Ok(t.get(tomb_key(table, key).as_slice())?.is_some()),
        }
    }
}

fn get_union<K: KeyConv, V: ValConv>(
    h: &impl ReadableTable<K, V>,
    a: &impl ReadableTable<K, V>,
    tombs: &Tombs<impl ReadableTable<&'static [u8], ()>>,
    table: Table,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let k = K::from_raw(key)?;
    if let Some(v) = h.get(k)? {
        return Ok(Some(V::to_raw(v.value()).into_owned()));
    }
    let k = K::from_raw(key)?;
    match a.get(k)? {
        Some(v) if !tombs.hides(table, key)? => Ok(Some(V::to_raw(v.value()).into_owned())),
        _ => Ok(None),
    }
}

type Row = (Vec<u8>, Vec<u8>);

/// The ordered merge of a range of both files: hot wins on equal keys, hidden archive keys are
/// skipped.
#[allow(clippy::too_many_arguments)]
fn scan_union<K: KeyConv, V: ValConv>(
    h: &impl ReadableTable<K, V>,
    a: &impl ReadableTable<K, V>,
    tombs: &Tombs<impl ReadableTable<&'static [u8], ()>>,
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
    let mut hot = boxed(
        h.range::<K::SelfType<'_>>((conv_bound::<K>(lo)?, conv_bound::<K>(hi)?))?,
        rev,
    );
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
    let mut x = next(&mut *hot)?;
    let mut y = next(&mut *arch)?;
    loop {
        let take_hot = match (&x, &y) {
            (None, None) => return Ok(()),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((hk, _)), Some((ak, _))) => {
                let ord = hk.cmp(ak);
                match if rev { ord.reverse() } else { ord } {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => {
                        // Hot wins: the archive's copy is older (or the same).
                        y = next(&mut *arch)?;
                        true
                    }
                }
            }
        };
        if take_hot {
            if let Some((k, v)) = x.take()
                && !f(&k, &v)?
            {
                return Ok(());
            }
            x = next(&mut *hot)?;
        } else {
            if let Some((k, v)) = y.take()
                && !tombs.hides(table, &k)?
                && !f(&k, &v)?
            {
                return Ok(());
            }
            y = next(&mut *arch)?;
        }
    }
}

/// Rows of the union: hot rows, plus archive rows neither in hot nor hidden.
fn len_union<K: KeyConv, V: ValConv>(
    h: &impl ReadableTable<K, V>,
    a: &impl ReadableTable<K, V>,
    tombs: &Tombs<impl ReadableTable<&'static [u8], ()>>,
    table: Table,
) -> Result<u64> {
    let archived = a.len()?;
    if archived == 0 {
        return Ok(h.len()?);
    }
    // Counted twice or hidden: hot keys also archived; tombstoned archive keys not in hot.
    let mut shadowed = 0u64;
    for item in h.iter()? {
        let (k, _) = item?;
        let raw = K::to_raw(k.value()).into_owned();
        if a.get(K::from_raw(&raw)?)?.is_some() {
            shadowed += 1;
        }
    }
    if let Some(t) = &tombs.table {
        let lo = [table.id() as u8];
        let hi = [table.id() as u8 + 1];
        for item in t.range::<&[u8]>(&lo[..]..&hi[..])? {
            let (k, _) = item?;
            let key = &k.value()[1..];
            if a.get(K::from_raw(key)?)?.is_some() && h.get(K::from_raw(key)?)?.is_none() {
                shadowed += 1;
            }
        }
    }
    Ok(h.len()? + archived - shadowed)
}

/// A read snapshot of both files.
pub(super) struct UnionRead {
    hot: ReadTransaction,
    archive: ReadTransaction,
}

impl UnionRead {
    pub(super) fn begin(files: &Files) -> Result<UnionRead> {
        // Hot first (see the module comment).
        let hot = files.hot.begin_read()?;
        let archive = files.archive.begin_read()?;
        Ok(UnionRead { hot, archive })
    }
}

impl KvRead for UnionRead {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if !is_union(table) {
            return self.hot.get(table, key);
        }
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, self.archive, table, |h, a| get_union(
            &h, &a, &tombs, table, key
        ))
    }
    fn get_each(&self, table: Table, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.get_each(table, keys, f);
        }
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, self.archive, table, |h, a| {
            for (i, key) in keys.iter().enumerate() {
                f(i, get_union(&h, &a, &tombs, table, key)?.as_deref())?;
            }
            Ok(())
        })
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.scan(table, lo, hi, rev, f);
        }
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, self.archive, table, |h, a| scan_union(
            &h, &a, &tombs, table, lo, hi, rev, f
        ))
    }
    fn len(&self, table: Table) -> Result<u64> {
        if !is_union(table) {
            return self.hot.len(table);
        }
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, self.archive, table, |h, a| len_union(&h, &a, &tombs, table))
    }
}

/// A hot write transaction that reads through to the archive (taken when first needed: most
/// transactions only touch hot rows).
pub(super) struct UnionWrite {
    pub(super) hot: WriteTransaction,
    files: Arc<Files>,
    archive: OnceCell<ReadTransaction>,
}

impl UnionWrite {
    pub(super) fn begin(files: &Arc<Files>) -> Result<UnionWrite> {
        Ok(UnionWrite {
            hot: files.hot.begin_write()?,
            files: files.clone(),
            archive: OnceCell::new(),
        })
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
            return self.hot.get(table, key);
        }
        // Most reads hit hot: the archive snapshot and the tombstones only on a miss.
        if let Some(v) = self.hot.get(table, key)? {
            return Ok(Some(v));
        }
        let archive = self.archive()?;
        let Some(v) = archive.get(table, key)? else {
            return Ok(None);
        };
        let tombs = self.hot.open_table(TOMBSTONES)?;
        if tombs.get(tomb_key(table, key).as_slice())?.is_some() {
            return Ok(None);
        }
        Ok(Some(v))
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if !is_union(table) {
            return self.hot.scan(table, lo, hi, rev, f);
        }
        let archive = self.archive()?;
        // Holds the hot table and (when any exist) the tombstones open for the scan: as with
        // any redb write transaction, `f` must not read the store again (none of ours does).
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, archive, table, |h, a| scan_union(
            &h, &a, &tombs, table, lo, hi, rev, f
        ))
    }
    fn len(&self, table: Table) -> Result<u64> {
        if !is_union(table) {
            return self.hot.len(table);
        }
        let archive = self.archive()?;
        let tombs = Tombs::new(self.hot.open_table(TOMBSTONES)?)?;
        with_union_table!(self.hot, archive, table, |h, a| len_union(&h, &a, &tombs, table))
    }
}

impl KvWrite for UnionWrite {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        // A tombstone of the key may stay: hot wins over it, and the mover applies it before it
        // copies this row (see `copy`).
        self.hot.put(table, key, value)
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let in_hot = self.hot.delete(table, key)?;
        if !is_union(table) {
            return Ok(in_hot);
        }
        if self.archive()?.get(table, key)?.is_none() {
            return Ok(in_hot);
        }
        let mut tombs = self.hot.open_table(TOMBSTONES)?;
        let was_hidden = tombs.insert(tomb_key(table, key).as_slice(), ())?.is_some();
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

/// Step 1: what to move, read from one hot snapshot.
pub(super) fn collect(files: &Files, p: &Policy) -> Result<Batch> {
    let tx = files.hot.begin_read()?;
    let mut b = Batch::default();
    let mut ids = Vec::new();
    for state in &p.terminal {
        let lo = format!("{state}\0");
        let hi = format!("{state}\0{:016x}", p.before_ms.max(0));
        let left = p.batch.saturating_sub(ids.len());
        if left == 0 {
            break;
        }
        tx.scan(
            Table::ExecutionsByState,
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
        if let Some(v) = tx.get(Table::Executions, id)? {
            b.rows.push((Table::Executions, id.clone(), v));
        }
        let mut lo = id.clone();
        lo.push(0);
        let mut hi = id.clone();
        hi.push(1);
        for table in [Table::Logs, Table::Files] {
            tx.scan(table, Bound::Included(&lo), Bound::Excluded(&hi), false, &mut |k, v| {
                b.rows.push((table, k.to_vec(), v.to_vec()));
                Ok(true)
            })?;
        }
    }
    b.executions = ids.len();
    // Audit: keys are u64 seqs, 8 big-endian bytes.
    let audit = tx.open_table(AUDIT)?;
    if let Some((newest, _)) = audit.last()? {
        let cut = newest.value().saturating_add(1).saturating_sub(p.keep_audit);
        for item in audit.range(..cut)?.take(p.batch.saturating_mul(20)) {
            let (k, v) = item?;
            b.rows
                .push((Table::Audit, k.value().to_be_bytes().to_vec(), v.value().to_vec()));
            b.audit += 1;
        }
    }
    let tombs = tx.open_table(TOMBSTONES)?;
    for item in tombs.iter()?.take(p.batch.saturating_mul(20)) {
        let (k, _) = item?;
        b.tombs.push(k.value().to_vec());
    }
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

/// Step 3: one hot commit: drops the applied tombstones, then each moved row still holding the
/// copied value. A row deleted since the snapshot gets a tombstone: its copy is in the archive.
pub(super) fn release(files: &Files, b: &Batch, quick_repair: bool) -> Result<()> {
    let mut tx = files.hot.begin_write()?;
    tx.set_quick_repair(quick_repair);
    {
        let mut tombs = tx.open_table(TOMBSTONES)?;
        for raw in &b.tombs {
            tombs.remove(raw.as_slice())?;
        }
    }
    let mut deleted = Vec::new();
    for (table, key, value) in &b.rows {
        match tx.get(*table, key)? {
            Some(now) if now == *value => {
                tx.erase(*table, key)?;
            }
            Some(_) => {}
            None => deleted.push(tomb_key(*table, key)),
        }
    }
    if !deleted.is_empty() {
        let mut tombs = tx.open_table(TOMBSTONES)?;
        for k in &deleted {
            tombs.insert(k.as_slice(), ())?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// One round: the three steps. Returns the batch (empty: nothing to move).
pub(super) fn round(files: &Files, p: &Policy, quick_repair: bool) -> Result<Batch> {
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

    fn hot_len(store: &Store, t: Table) -> u64 {
        files(store).hot.begin_read().unwrap().len(t).unwrap()
    }

    fn archive_len(store: &Store, t: Table) -> u64 {
        files(store).archive.begin_read().unwrap().len(t).unwrap()
    }

    fn tombstones(store: &Store) -> u64 {
        let tx = files(store).hot.begin_read().unwrap();
        redb::ReadableTableMetadata::len(&tx.open_table(TOMBSTONES).unwrap()).unwrap()
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
