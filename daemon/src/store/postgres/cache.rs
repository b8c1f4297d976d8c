//! Rows as this daemon's write transactions last saw them, so that a write transaction does not
//! pay a round trip for every row it reads (an execution it changes, the state counts, a lease,
//! the newest audit record).
//!
//! Only exclusive batches read from it (row batches read the database, see `mod.rs`; their
//! commits still bump the counter, under the commit lock, and log their keys).
//!
//! Why it is safe: every write transaction of every daemon holds the write lock and bumps one
//! counter, `tollgate_write_seq.n`, in the same transaction. The cache says at which value of
//! that counter its rows are true. A write transaction reads the counter right after taking the
//! lock: if it equals the cache's, nothing was committed since this daemon's last commit (by
//! another daemon or an admin command), and while the lock is held nothing can be, so the cached
//! rows are what the database holds. Any other value empties the cache. After a commit the
//! transaction's reads and writes are added, and the cache moves to the new value only if that
//! value is the next one (this daemon's commit was the only one since).

use std::collections::HashMap;

use super::super::backend::Table;

/// Bytes of values one generation holds; two generations are kept (the older is dropped when
/// the younger fills up), so rows touched again recently stay and memory stays bounded.
const GENERATION_BYTES: usize = 16 << 20;

pub(super) type Key = (Table, Vec<u8>);
/// A row: key and value.
pub(super) type Row = (Vec<u8>, Vec<u8>);
/// The newest row of each table known (`None`: the table is empty).
pub(super) type Edges = HashMap<Table, Option<Row>>;

/// Whether rows of `table` are kept: tables read by key inside write transactions. Log lines,
/// audit records and the state index are only scanned (the newest audit record is kept apart,
/// in [`WriteCache::last`]).
pub(super) fn cacheable(table: Table) -> bool {
    !matches!(table, Table::Logs | Table::Audit | Table::ExecutionsByState)
}

/// Whether a row of `table` another daemon changed is read again when this daemon's next write
/// transaction begins (in the same round trip), rather than only forgotten: the few rows every
/// batch touches (state counts, metrics, waiting series, flows, ...). Rows of one execution
/// (the execution, its lease, its timers and files) are many and mostly another daemon's own:
/// they are forgotten, and read again only when wanted.
pub(super) fn refresh_on_change(table: Table) -> bool {
    cacheable(table)
        && !matches!(
            table,
            Table::Executions | Table::Leases | Table::Timers | Table::Files | Table::FlowRevisions
        )
}

/// At most this many commits of other daemons are caught up with by key; a cache further behind
/// is emptied.
pub(super) const CATCH_UP_MAX: i64 = 1_000;

/// A table id no table has: logged by a commit too large to list its keys ("everything").
pub(super) const EVERYTHING: i16 = -1;

/// A key another commit wrote: table id, key, its value now (`None`: absent) and whether that
/// value was read (otherwise the row is only forgotten).
pub(super) type Changed = (i16, Vec<u8>, Option<Vec<u8>>, bool);

/// What a write transaction learnt when it took the lock (see [`WriteCache::catch_up`]).
pub(super) struct CatchUp {
    /// The counter value the cache was true at when the transaction asked.
    pub since: Option<i64>,
    /// The counter read under the lock.
    pub now: i64,
    /// How many key lists are logged after `since`.
    pub logged: i64,
    /// The keys written after `since` (`None`: not asked).
    pub changed: Option<Vec<Changed>>,
    /// The newest audit record now (`None`: not asked; `Some(None)`: there is none).
    pub newest_audit: Option<Option<Row>>,
}

#[derive(Default)]
pub(super) struct WriteCache {
    /// The value of the write counter the rows are true at (`None`: nothing is known).
    seq: Option<i64>,
    young: HashMap<Key, Option<Vec<u8>>>,
    old: HashMap<Key, Option<Vec<u8>>>,
    young_bytes: usize,
    /// The row with the largest key of a table (`None`: the table is empty), for the reverse
    /// scans that read only the newest row (the audit chain's head).
    last: Edges,
}

/// What one committed transaction adds to the cache.
pub(super) struct Delta<'a> {
    /// The counter's value when the transaction took the lock (`None`: it read nothing).
    pub base: Option<i64>,
    /// The counter's value it committed.
    pub committed: i64,
    /// Rows it read from the database (by key), true at `base`.
    pub fetched: &'a HashMap<Key, Option<Vec<u8>>>,
    /// Newest rows it read from the database, true at `base`.
    pub edges: &'a Edges,
    /// Its writes (`None`: deleted).
    pub writes: &'a [(Key, Option<Vec<u8>>)],
}

impl WriteCache {
    /// Forgets every row; the (empty) cache is then true at `seq`.
    pub fn reset(&mut self, seq: Option<i64>) {
        self.seq = seq;
        self.young.clear();
        self.old.clear();
        self.young_bytes = 0;
        self.last.clear();
    }

    /// The counter value the rows are true at.
    pub fn seq(&self) -> Option<i64> {
        self.seq
    }

    /// Whether the newest row of `table` is known.
    pub fn knows_last(&self, table: Table) -> bool {
        self.seq.is_some() && self.last.contains_key(&table)
    }

    /// Called under the lock: brings the cache to the counter value read there. If every commit
    /// since the cache's value logged its keys, only those rows are forgotten (or replaced by
    /// their values read along) and the rest stays; otherwise everything is forgotten.
    pub fn catch_up(&mut self, c: CatchUp) {
        if self.seq == Some(c.now) {
            return;
        }
        let (Some(since), Some(changed)) = (c.since, c.changed) else {
            return self.reset(Some(c.now));
        };
        // Each counter value after `since` must have logged its keys (a daemon of an older
        // version does not), and the cache must still be where the transaction saw it.
        if self.seq != Some(since) || c.now < since || c.now - since > CATCH_UP_MAX || c.logged != c.now - since {
            return self.reset(Some(c.now));
        }
        for (t, k, v, known) in changed {
            let Some(table) = usize::try_from(t).ok().and_then(|i| Table::ALL.get(i)) else {
                // `EVERYTHING`, or a table this build does not know.
                return self.reset(Some(c.now));
            };
            let key = (*table, k);
            if known {
                self.insert(key, v);
            } else {
                self.young.remove(&key);
                self.old.remove(&key);
            }
        }
        // Newest rows: audit records are not logged by key (only scanned); the newest was read
        // along. Any other table's newest row is forgotten.
        let audit = self.last.contains_key(&Table::Audit);
        self.last.clear();
        if let (true, Some(row)) = (audit, c.newest_audit) {
            self.last.insert(Table::Audit, row);
        }
        self.seq = Some(c.now);
    }

    /// Called with the counter read under the lock: keeps the rows if they are still true.
    #[cfg(test)]
    pub fn validate(&mut self, seq: i64) {
        if self.seq != Some(seq) {
            self.reset(Some(seq));
        }
    }

    /// A row as of counter value `seq` (`Some(None)`: known absent), if known.
    pub fn get(&mut self, seq: i64, key: &Key) -> Option<Option<Vec<u8>>> {
        if self.seq != Some(seq) {
            return None;
        }
        if let Some(v) = self.young.get(key) {
            return Some(v.clone());
        }
        let v = self.old.remove(key)?;
        self.insert(key.clone(), v.clone());
        Some(v)
    }

    /// The newest row of `table` as of counter value `seq`, if known.
    pub fn last(&self, seq: i64, table: Table) -> Option<Option<Row>> {
        if self.seq != Some(seq) {
            return None;
        }
        self.last.get(&table).cloned()
    }

    fn insert(&mut self, key: Key, value: Option<Vec<u8>>) {
        let size = key.1.len() + value.as_ref().map_or(0, Vec::len) + 64;
        if self.young_bytes + size > GENERATION_BYTES {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += size;
        self.old.remove(&key);
        self.young.insert(key, value);
    }

    /// Adds a committed transaction (or empties the cache if another commit came between).
    pub fn apply(&mut self, d: Delta<'_>) {
        let follows = self.seq == Some(d.committed - 1) && d.base.is_none_or(|b| b == d.committed - 1);
        if !follows {
            return self.reset(Some(d.committed));
        }
        self.seq = Some(d.committed);
        for (key, value) in d.fetched {
            if cacheable(key.0) {
                self.insert(key.clone(), value.clone());
            }
        }
        for (table, row) in d.edges {
            self.last.insert(*table, row.clone());
        }
        for (key, value) in d.writes {
            if let Some(known) = self.last.get_mut(&key.0) {
                match value {
                    // A new largest key is the newest row now.
                    Some(v) if known.as_ref().is_none_or(|(k, _)| key.1 >= *k) => {
                        *known = Some((key.1.clone(), v.clone()));
                    }
                    Some(_) => {}
                    // Which row is newest after a delete is not known without reading.
                    None => {
                        self.last.remove(&key.0);
                    }
                }
            }
            if cacheable(key.0) {
                self.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        (Table::Executions, s.as_bytes().to_vec())
    }

    #[test]
    fn rows_are_served_only_at_the_counter_value_they_are_true_at() {
        let mut c = WriteCache::default();
        c.validate(5);
        let fetched: HashMap<Key, Option<Vec<u8>>> = [(key("a"), Some(b"1".to_vec()))].into();
        let writes = vec![(key("b"), Some(b"2".to_vec())), (key("c"), None)];
        c.apply(Delta {
            base: Some(5),
            committed: 6,
            fetched: &fetched,
            edges: &HashMap::new(),
            writes: &writes,
        });
        assert_eq!(c.get(6, &key("a")), Some(Some(b"1".to_vec())));
        assert_eq!(c.get(6, &key("b")), Some(Some(b"2".to_vec())));
        assert_eq!(c.get(6, &key("c")), Some(None));
        assert_eq!(c.get(6, &key("d")), None);
        // Another commit came between: nothing is served any more.
        assert_eq!(c.get(7, &key("a")), None);
        c.validate(7);
        assert_eq!(c.get(7, &key("a")), None);
    }

    #[test]
    fn a_commit_that_does_not_follow_the_cached_value_empties_the_cache() {
        let mut c = WriteCache::default();
        c.validate(1);
        let writes = vec![(key("a"), Some(b"1".to_vec()))];
        let none = HashMap::new();
        c.apply(Delta {
            base: None,
            committed: 2,
            fetched: &none,
            edges: &HashMap::new(),
            writes: &writes,
        });
        assert_eq!(c.get(2, &key("a")), Some(Some(b"1".to_vec())));
        // Counter 3 was someone else's: our commit 4 cannot be added to rows true at 2.
        c.apply(Delta {
            base: None,
            committed: 4,
            fetched: &none,
            edges: &HashMap::new(),
            writes: &writes,
        });
        assert_eq!(c.get(4, &key("a")), None);
    }

    fn cached(c: &mut WriteCache, seq: i64, rows: &[(Key, &[u8])]) {
        c.reset(Some(seq - 1));
        let writes: Vec<(Key, Option<Vec<u8>>)> = rows.iter().map(|(k, v)| (k.clone(), Some(v.to_vec()))).collect();
        let edges: Edges = [(Table::Audit, Some((vec![1], b"r1".to_vec())))].into();
        c.apply(Delta {
            base: Some(seq - 1),
            committed: seq,
            fetched: &HashMap::new(),
            edges: &edges,
            writes: &writes,
        });
    }

    #[test]
    fn catching_up_forgets_or_refreshes_only_what_other_daemons_wrote() {
        let counts = (Table::Meta, b"counts".to_vec());
        let mut c = WriteCache::default();
        cached(
            &mut c,
            10,
            &[(key("a"), b"1"), (key("b"), b"1"), (counts.clone(), b"5")],
        );
        // Commits 11 and 12 of another daemon wrote execution b (forgotten), execution c
        // (wanted by this batch: its value came along) and the counts (re-read).
        c.catch_up(CatchUp {
            since: Some(10),
            now: 12,
            logged: 2,
            changed: Some(vec![
                (Table::Executions.id(), b"b".to_vec(), None, false),
                (Table::Executions.id(), b"c".to_vec(), Some(b"3".to_vec()), true),
                (Table::Meta.id(), b"counts".to_vec(), Some(b"7".to_vec()), true),
            ]),
            newest_audit: Some(Some((vec![9], b"r9".to_vec()))),
        });
        assert_eq!(c.get(12, &key("a")), Some(Some(b"1".to_vec())));
        assert_eq!(c.get(12, &key("b")), None);
        assert_eq!(c.get(12, &key("c")), Some(Some(b"3".to_vec())));
        assert_eq!(c.get(12, &counts), Some(Some(b"7".to_vec())));
        assert_eq!(c.last(12, Table::Audit), Some(Some((vec![9], b"r9".to_vec()))));
    }

    #[test]
    fn a_commit_without_a_key_list_or_too_far_behind_empties_the_cache() {
        let changed = || Some(vec![(Table::Executions.id(), b"b".to_vec(), None, false)]);
        for (now, logged, list) in [
            // Two commits, one key list: a daemon of an older version wrote the other.
            (12, 1, changed()),
            // A commit too large to list its keys.
            (11, 1, Some(vec![(EVERYTHING, Vec::new(), None, false)])),
            // Not asked (the cache knew nothing when the transaction began).
            (11, 1, None),
            // Further behind than a catch-up reads.
            (10 + CATCH_UP_MAX + 1, CATCH_UP_MAX + 1, changed()),
        ] {
            let mut c = WriteCache::default();
            cached(&mut c, 10, &[(key("a"), b"1")]);
            c.catch_up(CatchUp {
                since: Some(10),
                now,
                logged,
                changed: list,
                newest_audit: None,
            });
            assert_eq!(c.get(now, &key("a")), None, "now {now}, logged {logged}");
            assert_eq!(c.seq(), Some(now));
        }
    }

    #[test]
    fn the_newest_row_follows_appends_and_is_forgotten_on_delete() {
        let mut c = WriteCache::default();
        c.validate(1);
        let audit = |n: u8| (Table::Audit, vec![0, 0, 0, 0, 0, 0, 0, n]);
        let edges: Edges = [(Table::Audit, Some((audit(3).1, b"r3".to_vec())))].into();
        let writes = vec![(audit(4), Some(b"r4".to_vec()))];
        let none = HashMap::new();
        c.apply(Delta {
            base: Some(1),
            committed: 2,
            fetched: &none,
            edges: &edges,
            writes: &writes,
        });
        assert_eq!(c.last(2, Table::Audit), Some(Some((audit(4).1, b"r4".to_vec()))));
        // Audit rows themselves are only scanned: not kept by key.
        assert_eq!(c.get(2, &audit(4)), None);
        let deletes = vec![(audit(4), None)];
        c.apply(Delta {
            base: Some(2),
            committed: 3,
            fetched: &none,
            edges: &HashMap::new(),
            writes: &deletes,
        });
        assert_eq!(c.last(3, Table::Audit), None);
    }
}
