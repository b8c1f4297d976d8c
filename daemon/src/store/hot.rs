//! Reads and writes of the hot file (tollgate.redb), with or without the journal
//! (`TOLLGATE_JOURNAL`, default `on`).
//!
//! Off: every write batch is one durable redb commit, as before the journal existed.
//!
//! On: a write batch is buffered in memory ([`Layered::local`]), appended to the journal and
//! `fdatasync`ed at commit, and only then published into the ACTIVE overlay, where every later
//! read sees it; nothing is written to redb per batch. A background thread FLUSHES: it freezes the
//! active overlay (a new empty one takes its place, so batches go on being published), writes the
//! frozen one to redb in one durable commit that also records the last seq it holds, then drops
//! it, and the journal segments holding only flushed records are deleted at the next append. A
//! flush starts once the active overlay holds [`FLUSH_BYTES`], or its oldest change is
//! [`FLUSH_AGE`] old and the writers paused for [`FLUSH_QUIET`], or its oldest change is
//! [`FLUSH_MAX_AGE`] old; and at a clean shutdown. Writers wait while the active overlay counts
//! [`MAX_BYTES`] or twice the flush size (a flush is then under way): with the defaults the
//! overlays hold at most about 2 x 32 MB.
//!
//! Consistency: a reader takes its copy of both overlays and its redb snapshot under one short
//! lock, and the flush drops the frozen overlay under that lock only after its redb commit: a
//! reader sees each change either in an overlay or in its redb snapshot, never in neither.
//! Writes are serialized by one write lock (the engine's writer, the archiver's hot commits and
//! any other `Store::write` caller), held from the transaction's first read to its publication.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use redb::{ReadTransaction, TableDefinition, WriteTransaction};

use super::archive::Files;
use super::backend::{GetEach, Scan};
use super::journal::{self, Journal, Record};
use super::overlay::{Bytes, HotRead, HotWrite, Layered, OvMap, Slot, entry_cost};
use super::redb_backend::apply_sorted;
use super::{Result, StoreError};
use std::ops::Bound;

/// `flushed_seq` -> the last journal seq whose changes tollgate.redb holds.
pub(super) const JOURNAL_META: TableDefinition<&str, u64> = TableDefinition::new("journal");
const FLUSHED_SEQ: &str = "flushed_seq";

/// A flush starts when the active overlay counts this many bytes (`TOLLGATE_JOURNAL_FLUSH_MB`)...
pub(super) const FLUSH_BYTES: usize = 16 << 20;
/// ...or when its oldest change is this old and no batch came for [`FLUSH_QUIET`]...
pub(super) const FLUSH_AGE: Duration = Duration::from_secs(1);
/// ...(the writers have paused: the changes so far reach tollgate.redb about as soon as they
/// did with a flush every second)...
pub(super) const FLUSH_QUIET: Duration = Duration::from_millis(100);
/// ...or, while batches keep coming, when its oldest change is this old. Each flush rewrites
/// every redb page holding a changed row, about the same pages whether a second or five of
/// changes wait: flushing a busy overlay every second wrote most of the disk bytes per resume
/// (issue 17). The journal holds what is not flushed, and the size bound caps the replay.
pub(super) const FLUSH_MAX_AGE: Duration = Duration::from_secs(5);
/// Writers wait while the active overlay counts this many bytes (at least twice the flush size).
pub(super) const MAX_BYTES: usize = 32 << 20;

/// `TOLLGATE_JOURNAL_FLUSH_MB`: the overlay size that starts a flush (1-256; default 16). Larger
/// flushes rewrite each hot page less often (fewer bytes per change) for more memory: measured
/// at 100 clients resuming, 4 MB wrote 12.9-13.9 KB per resume and 16 MB 8.2-10.2 KB; a bulk
/// resume of 10,000, 13.1 and 9.6 KB (README, "Journal in front of tollgate.redb").
fn flush_bytes_setting() -> Result<usize> {
    match std::env::var("TOLLGATE_JOURNAL_FLUSH_MB") {
        Err(_) => Ok(FLUSH_BYTES),
        Ok(v) => match v.parse::<usize>() {
            Ok(mb) if (1..=256).contains(&mb) => Ok(mb << 20),
            _ => Err(StoreError::Storage(format!(
                "TOLLGATE_JOURNAL_FLUSH_MB must be a whole number of MB from 1 to 256, not `{v}`"
            ))),
        },
    }
}
/// How long a writer waits for room before its batch fails (a flush that keeps failing).
const ROOM_WAIT: Duration = Duration::from_secs(60);

/// `TOLLGATE_JOURNAL`: `on` (the default when unset) or `off`.
pub(super) fn journal_setting() -> Result<bool> {
    match std::env::var("TOLLGATE_JOURNAL").as_deref() {
        Err(_) | Ok("on") => Ok(true),
        Ok("off") => Ok(false),
        Ok(other) => Err(StoreError::Storage(format!(
            "TOLLGATE_JOURNAL must be on or off, not `{other}`"
        ))),
    }
}

struct OvState {
    active: OvMap,
    active_bytes: usize,
    /// When the oldest change of the active overlay was published.
    since: Option<Instant>,
    /// When the newest one was.
    last: Option<Instant>,
    /// The seq of the last batch published.
    published: u64,
    /// The overlay a flush is writing, and the last seq it holds.
    frozen: Option<(Arc<OvMap>, u64)>,
}

/// Whether an overlay whose oldest change came at `since` and newest at `last` is due for a
/// flush by age at `now` (replayed changes have no `last`: due at [`FLUSH_AGE`]).
fn aged(since: Option<Instant>, last: Option<Instant>, now: Instant) -> bool {
    let Some(since) = since else { return false };
    let age = now.saturating_duration_since(since);
    match last {
        Some(last) => age >= FLUSH_MAX_AGE || (age >= FLUSH_AGE && now.saturating_duration_since(last) >= FLUSH_QUIET),
        None => age >= FLUSH_AGE,
    }
}

impl OvState {
    /// Puts a change into the active overlay. `active_bytes` counts what the overlay holds, not
    /// what was published into it: a row rewritten before the flush (an execution at each of
    /// its steps, the per-batch count rows) replaces its older value and does not bring a flush
    /// closer.
    fn publish(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        let cost = entry_cost(&k, v.as_deref());
        let key = Bytes::from(k);
        if let Some(old) = self.active.insert(key.clone(), v.map(Bytes::from)) {
            self.active_bytes = self.active_bytes.saturating_sub(entry_cost(&key, old.as_deref()));
        }
        self.active_bytes += cost;
    }
}

/// The journal and the overlays of a redb store with `TOLLGATE_JOURNAL=on`.
pub(super) struct Journaled {
    state: Mutex<OvState>,
    /// Signalled when a flush freezes the active overlay (writers waiting for room).
    room: Condvar,
    /// The write lock: true while a write transaction is open.
    busy: Mutex<bool>,
    free: Condvar,
    log: Mutex<Journal>,
    /// The last seq tollgate.redb holds.
    flushed: AtomicU64,
    /// One flush at a time (the flusher thread, a clean shutdown, compaction).
    flushing: Mutex<()>,
    /// Whether flushes save redb's allocator state (`TOLLGATE_QUICK_REPAIR` other than `off`).
    quick_repair: bool,
    /// The active overlay's size that starts a flush, and the size writers wait at.
    flush_bytes: usize,
    max_bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these leaves consistent data (every update is a
    // few assignments): go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last seq tollgate.redb holds (0: none, or a file from before the journal).
pub(super) fn flushed_seq(hot: &redb::Database) -> Result<u64> {
    let tx = hot.begin_read()?;
    let t = match tx.open_table(JOURNAL_META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    Ok(t.get(FLUSHED_SEQ)?.map(|g| g.value()).unwrap_or(0))
}

/// Opens the journal of `dir` and brings back what tollgate.redb lacks: into the overlay
/// (`on`), or into tollgate.redb in one commit (`off`: nothing is journaled from then on, so
/// the journal is emptied).
pub(super) fn open(
    dir: &std::path::Path,
    hot: &redb::Database,
    on: bool,
    quick_repair: bool,
) -> Result<Option<Journaled>> {
    let flushed = flushed_seq(hot)?;
    let flush_bytes = flush_bytes_setting()?;
    if !on && !dir.join(journal::JOURNAL_DIR).exists() {
        return Ok(None);
    }
    let (mut log, records) = Journal::open(dir, flushed)?;
    let last = records.last().map_or(flushed, |r| r.seq);
    if !records.is_empty() {
        tracing::info!(
            records = records.len(),
            from = flushed + 1,
            to = last,
            "replaying the journal"
        );
    }
    if !on {
        if !records.is_empty() {
            let mut tx = hot.begin_write()?;
            tx.set_quick_repair(true);
            for r in &records {
                apply_sorted(&tx, r.ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))?;
            }
            tx.open_table(JOURNAL_META)?.insert(FLUSHED_SEQ, last)?;
            tx.commit()?;
        }
        log.remove_all(last);
        return Ok(None);
    }
    let mut st = OvState {
        active: OvMap::new(),
        active_bytes: 0,
        since: None,
        last: None,
        published: last,
        frozen: None,
    };
    for Record { ops, .. } in records {
        for (k, v) in ops {
            st.publish(k, v);
        }
        st.since = Some(Instant::now());
    }
    Ok(Some(Journaled {
        state: Mutex::new(st),
        room: Condvar::new(),
        busy: Mutex::new(false),
        free: Condvar::new(),
        log: Mutex::new(log),
        flushed: AtomicU64::new(flushed),
        flushing: Mutex::new(()),
        quick_repair,
        flush_bytes,
        max_bytes: MAX_BYTES.max(2 * flush_bytes),
    }))
}

/// A read snapshot of the hot file.
pub(super) enum HotSnap {
    Redb(ReadTransaction),
    Journal(Layered<ReadTransaction>),
}

/// The write lock, let go when dropped.
pub(super) struct WriteGuard {
    files: Arc<Files>,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if let Some(j) = &self.files.journal {
            *lock(&j.busy) = false;
            j.free.notify_one();
        }
    }
}

/// A write transaction of the hot file.
// One per write transaction, never copied: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum HotTx {
    Redb(WriteTransaction),
    Journal(Layered<ReadTransaction>, WriteGuard),
}

impl Files {
    /// A consistent snapshot of the hot file (overlays and redb taken together).
    pub(super) fn hot_read(&self) -> Result<HotSnap> {
        let Some(j) = &self.journal else {
            return Ok(HotSnap::Redb(self.hot.begin_read()?));
        };
        let st = lock(&j.state);
        let base = self.hot.begin_read()?;
        Ok(HotSnap::Journal(Layered::new(
            st.active.clone(),
            st.frozen.as_ref().map(|(m, _)| m.clone()),
            base,
        )))
    }

    /// Begins a write transaction of the hot file; `quick_repair`: whether a redb commit
    /// (journal off) saves the allocator state.
    pub(super) fn hot_write(self: &Arc<Self>, quick_repair: bool) -> Result<HotTx> {
        let Some(j) = &self.journal else {
            let mut tx = self.hot.begin_write()?;
            tx.set_quick_repair(quick_repair);
            return Ok(HotTx::Redb(tx));
        };
        {
            let mut busy = lock(&j.busy);
            while *busy {
                busy = j.free.wait(busy).unwrap_or_else(|e| e.into_inner());
            }
            *busy = true;
        }
        let guard = WriteGuard { files: self.clone() };
        let waited = Instant::now();
        let mut st = lock(&j.state);
        while st.active_bytes >= j.max_bytes {
            if waited.elapsed() >= ROOM_WAIT {
                return Err(StoreError::Storage(format!(
                    "the store's journal overlay has held {} MB for {} s: tollgate.redb is not being written \
                     (see the earlier warnings of the flush)",
                    j.max_bytes >> 20,
                    ROOM_WAIT.as_secs()
                )));
            }
            st = j
                .room
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let base = self.hot.begin_read()?;
        let view = Layered::new(st.active.clone(), st.frozen.as_ref().map(|(m, _)| m.clone()), base);
        Ok(HotTx::Journal(view, guard))
    }

    /// Commits a hot write transaction: redb commit (journal off), or journal append + fsync,
    /// then publication (journal on). Nothing is published if the append fails.
    pub(super) fn commit_hot(&self, tx: HotTx) -> Result<()> {
        let (view, guard) = match tx {
            HotTx::Redb(tx) => return Ok(tx.commit()?),
            HotTx::Journal(view, guard) => (view, guard),
        };
        let Some(j) = &self.journal else {
            return Err(StoreError::Storage(
                "a journaled transaction on a store without a journal".into(),
            ));
        };
        if view.local.is_empty() {
            return Ok(());
        }
        {
            let mut log = lock(&j.log);
            let record = journal::encode(log.next_seq(), view.changes());
            let seq = log.append(&record, j.flushed.load(Ordering::Acquire))?;
            let Layered {
                local, active, frozen, ..
            } = view;
            // This transaction's copies of the overlays go first: a map no one else shares is
            // changed in place, one still shared copies the nodes it changes.
            drop((active, frozen));
            let mut st = lock(&j.state);
            for (k, v) in local {
                st.publish(k, v);
            }
            st.published = seq;
            let now = Instant::now();
            st.since.get_or_insert(now);
            st.last = Some(now);
        }
        drop(guard);
        Ok(())
    }

    /// Whether the active overlay is due for a flush (or a failed one is due again).
    fn flush_due(&self) -> bool {
        let Some(j) = &self.journal else { return false };
        let st = lock(&j.state);
        st.frozen.is_some() || st.active_bytes >= j.flush_bytes || aged(st.since, st.last, Instant::now())
    }

    /// One flush: freezes the active overlay (or takes the frozen one a failed flush left),
    /// writes it to tollgate.redb in one durable commit with its last seq, then drops it.
    /// False when there was nothing to flush.
    pub(super) fn flush(&self) -> Result<bool> {
        let Some(j) = &self.journal else { return Ok(false) };
        let _one = lock(&j.flushing);
        let (map, seq) = {
            let mut st = lock(&j.state);
            match &st.frozen {
                Some((m, s)) => (m.clone(), *s),
                None if st.active.is_empty() => return Ok(false),
                None => {
                    let m = Arc::new(std::mem::take(&mut st.active));
                    let seq = st.published;
                    st.active_bytes = 0;
                    st.since = None;
                    st.last = None;
                    st.frozen = Some((m.clone(), seq));
                    j.room.notify_all();
                    (m, seq)
                }
            }
        };
        let mut tx = self.hot.begin_write()?;
        // Flushes are rare: each saves the allocator state (unless TOLLGATE_QUICK_REPAIR=off),
        // so a crash never needs a repair that reads the whole file.
        tx.set_quick_repair(j.quick_repair);
        apply_sorted(&tx, map.iter().map(|(k, v)| (&k[..], v.as_deref())))?;
        tx.open_table(JOURNAL_META)?.insert(FLUSHED_SEQ, seq)?;
        hold_flush_for_test();
        tx.commit()?;
        crate::metrics::process().quick_repair_saved(j.quick_repair);
        j.flushed.store(seq, Ordering::Release);
        lock(&j.state).frozen = None;
        Ok(true)
    }

    /// Flushes until the overlays are empty, then deletes every journal segment (clean
    /// shutdown, compaction, tests). Writers must be done.
    pub(super) fn flush_all(&self) -> Result<()> {
        let Some(j) = &self.journal else { return Ok(()) };
        while self.flush()? {}
        lock(&j.log).remove_all(j.flushed.load(Ordering::Acquire));
        Ok(())
    }
}

/// Test-only: `TOLLGATE_TEST_FLUSH_HOLD_MS` makes every flush wait that long before its commit,
/// so a test can kill the daemon while one is under way.
fn hold_flush_for_test() {
    if let Some(ms) = std::env::var("TOLLGATE_TEST_FLUSH_HOLD_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tracing::warn!(ms, "flush holding before its commit (TOLLGATE_TEST_FLUSH_HOLD_MS)");
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Starts the flusher thread. Like the archiver it holds the files only while it works.
pub(super) fn spawn_flusher(files: Weak<Files>) {
    let spawned = std::thread::Builder::new()
        .name("tollgate-flusher".into())
        .spawn(move || {
            let mut pause = Duration::from_millis(20);
            loop {
                std::thread::sleep(pause);
                let Some(f) = files.upgrade() else { return };
                if f.stop.load(Ordering::Relaxed) {
                    return;
                }
                if !f.flush_due() {
                    pause = Duration::from_millis(20);
                    continue;
                }
                let started = Instant::now();
                pause = match f.flush() {
                    Ok(_) => {
                        tracing::debug!(
                            took_ms = started.elapsed().as_millis() as u64,
                            "flushed the journal overlay"
                        );
                        Duration::from_millis(20)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot write the journal overlay to tollgate.redb; retrying");
                        Duration::from_secs(1)
                    }
                };
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the flusher thread: changes stay in the journal until shutdown");
    }
}

impl HotRead for HotSnap {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            HotSnap::Redb(t) => t.hget(s, key),
            HotSnap::Journal(t) => t.hget(s, key),
        }
    }
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        match self {
            HotSnap::Redb(t) => t.hscan(s, lo, hi, rev, f),
            HotSnap::Journal(t) => t.hscan(s, lo, hi, rev, f),
        }
    }
    fn hlen(&self, s: Slot) -> Result<u64> {
        match self {
            HotSnap::Redb(t) => t.hlen(s),
            HotSnap::Journal(t) => t.hlen(s),
        }
    }
    fn hget_each(&self, s: Slot, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        match self {
            HotSnap::Redb(t) => t.hget_each(s, keys, f),
            HotSnap::Journal(t) => t.hget_each(s, keys, f),
        }
    }
}

impl HotRead for HotTx {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            HotTx::Redb(t) => t.hget(s, key),
            HotTx::Journal(t, _) => t.hget(s, key),
        }
    }
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        match self {
            HotTx::Redb(t) => t.hscan(s, lo, hi, rev, f),
            HotTx::Journal(t, _) => t.hscan(s, lo, hi, rev, f),
        }
    }
    fn hlen(&self, s: Slot) -> Result<u64> {
        match self {
            HotTx::Redb(t) => t.hlen(s),
            HotTx::Journal(t, _) => t.hlen(s),
        }
    }
    fn hget_each(&self, s: Slot, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        match self {
            HotTx::Redb(t) => t.hget_each(s, keys, f),
            HotTx::Journal(t, _) => t.hget_each(s, keys, f),
        }
    }
}

impl HotWrite for HotTx {
    fn hput(&mut self, s: Slot, key: &[u8], value: &[u8]) -> Result<()> {
        match self {
            HotTx::Redb(t) => t.hput(s, key, value),
            HotTx::Journal(t, _) => t.hput(s, key, value),
        }
    }
    fn hdel(&mut self, s: Slot, key: &[u8]) -> Result<bool> {
        match self {
            HotTx::Redb(t) => t.hdel(s, key),
            HotTx::Journal(t, _) => t.hdel(s, key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::Table;
    use crate::store::tests::{Ex, St, ex};
    use crate::store::{Backend, Store};

    fn files(store: &Store) -> Arc<Files> {
        match &store.backend {
            Backend::Redb(f) => f.clone(),
            Backend::Postgres(_) => panic!("a redb store"),
        }
    }

    /// Drops the store the way a crash leaves it: no flush, no journal cleanup (dropping the
    /// last handle only stops the flusher and waits for it to let go of the files).
    fn crash(store: Store) {
        drop(store);
    }

    /// The flusher holds the files for a moment every 20 ms (and for a whole flush when one is
    /// due): dropping the last handle must still leave the data dir free to open at once.
    #[test]
    fn the_data_dir_opens_again_right_after_the_last_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let blob = vec![7u8; 64 << 10];
        for round in 0..4u32 {
            let store = Store::open(dir.path()).unwrap();
            let id = format!("e{round}");
            store
                .write(|w| {
                    // Past the flush threshold: the flusher starts a flush at its next look.
                    for i in 0..(FLUSH_BYTES / blob.len() + 8) {
                        w.restore(Table::Files, format!("{round}/{i}").as_bytes(), &blob)?;
                    }
                    w.put_execution(&ex(&id, St::Running, i64::from(round), None))
                })
                .unwrap();
            // Lands the drop at varied points of the flusher's 20 ms cycle and of its flush.
            std::thread::sleep(Duration::from_millis(u64::from(15 + round * 3)));
            drop(store);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(ids(&store).len(), 4);
    }

    fn ids(store: &Store) -> Vec<String> {
        let r = store.read().unwrap();
        let mut out = Vec::new();
        for s in [St::Running, St::Paused, St::Success] {
            out.extend(r.execution_ids_in_state(s).unwrap());
        }
        out.sort();
        out
    }

    /// The overlay's size counts what it holds: rewrites of a row replace its cost, deletes
    /// count their key.
    #[test]
    fn the_overlay_counts_the_bytes_it_holds_not_the_bytes_published() {
        let mut st = OvState {
            active: OvMap::new(),
            active_bytes: 0,
            since: None,
            last: None,
            published: 0,
            frozen: None,
        };
        let k = || b"\x00exec-1".to_vec();
        st.publish(k(), Some(vec![1; 1000]));
        let one = st.active_bytes;
        assert_eq!(one, entry_cost(&k(), Some(&[1; 1000])));
        for n in 0..10u8 {
            st.publish(k(), Some(vec![n; 1000]));
        }
        assert_eq!(st.active_bytes, one);
        st.publish(k(), Some(vec![1; 10]));
        assert_eq!(st.active_bytes, entry_cost(&k(), Some(&[1; 10])));
        st.publish(k(), None);
        st.publish(b"\x00exec-2".to_vec(), Some(vec![2; 100]));
        assert_eq!(
            st.active_bytes,
            entry_cost(&k(), None) + entry_cost(b"\x00exec-2", Some(&[2; 100]))
        );
        assert_eq!(st.active.len(), 2);
    }

    /// Changes flush a second after the first once the writers pause, and at most five seconds
    /// after it while they do not.
    #[test]
    fn the_flush_age_waits_for_a_pause_up_to_its_limit() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(!aged(None, None, at(10_000)), "nothing to flush");
        assert!(!aged(Some(t0), Some(at(200)), at(900)), "younger than a second");
        assert!(aged(Some(t0), Some(at(800)), at(1_000)), "a second old, 200 ms quiet");
        assert!(!aged(Some(t0), Some(at(1_950)), at(2_000)), "writers busy");
        assert!(!aged(Some(t0), Some(at(4_990)), at(4_999)), "writers busy");
        assert!(aged(Some(t0), Some(at(4_990)), at(5_000)), "five seconds old");
        assert!(aged(Some(t0), None, at(1_000)), "replayed changes");
        assert!(!aged(Some(t0), None, at(999)));
    }

    /// Journaled changes come back after a crash; a flush followed by a crash before the
    /// journal's flushed segments are deleted applies nothing twice (records up to the flushed
    /// seq are skipped); later changes, deletes included, win.
    #[test]
    fn a_crash_before_and_after_a_flush_keeps_every_change_once() {
        if !journal_setting().unwrap() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.put_execution(&ex("a", St::Running, 1, None))?;
                w.put_execution(&ex("b", St::Paused, 2, Some(3)))
            })
            .unwrap();
        crash(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(ids(&store), ["a", "b"]);
        let f = files(&store);
        assert!(f.flush().unwrap(), "the replayed changes are flushed");
        let flushed = flushed_seq(&f.hot).unwrap();
        assert!(flushed > 0);
        // More after the flush: b deleted, a finished, c new. The journal still holds the
        // flushed records (their segment goes at the next rotation).
        store
            .write(|w| {
                w.delete_execution::<Ex>("b")?;
                w.put_execution(&ex("a", St::Success, 1, None))?;
                w.put_execution(&ex("c", St::Running, 4, None))
            })
            .unwrap();
        drop(f);
        crash(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(ids(&store), ["a", "c"]);
        assert_eq!(
            store.read().unwrap().execution::<Ex>("a").unwrap(),
            Some(ex("a", St::Success, 1, None))
        );
        assert_eq!(store.read().unwrap().state_counts().unwrap().get("PAUSED"), None);
        // A clean close writes everything and empties the journal.
        assert!(store.close(Duration::from_secs(10)));
        let left: Vec<_> = std::fs::read_dir(dir.path().join(journal::JOURNAL_DIR))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(ids(&store), ["a", "c"]);
    }
}
