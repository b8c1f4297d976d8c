//! The hot file's changes that are journaled (see `journal.rs`) but not yet written to
//! tollgate.redb, in memory, and the views that read them over redb.
//!
//! Keys are "slot-prefixed": one byte naming the table ([`slot`]: a [`Table`]'s number, or
//! [`TOMBS`] for the archive's tombstones), then the row's key, so one ordered map holds every
//! table and a table's rows are one contiguous range. A value is `Some(bytes)` (put) or `None`
//! (deleted: hides the row below).
//!
//! A view ([`Layered`]) stacks, highest first: a write transaction's own changes (`local`), the
//! ACTIVE overlay (batches published since the last flush began), the FROZEN overlay (the batches
//! a flush is writing to redb right now), then a redb snapshot of the hot file. The maps are
//! persistent (`imbl::OrdMap`): a reader's copy costs two reference counts and never changes
//! under it, however many batches are published afterwards.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use super::Result;
use super::backend::{GetEach, Scan, Table, empty_range};

/// A table of the hot file: a [`Table`]'s number or [`TOMBS`].
pub(super) type Slot = u8;
/// The archive's tombstones (`tables::TOMBSTONES`), which live in the hot file only.
pub(super) const TOMBS: Slot = 0x80;

pub(super) fn slot(t: Table) -> Slot {
    t.id() as u8
}

/// Shared bytes: copying an overlay node (persistent maps copy a node on write while a reader
/// holds the old one) bumps reference counts instead of copying rows.
pub(super) type Bytes = Arc<[u8]>;
pub(super) type OvMap = imbl::OrdMap<Bytes, Option<Bytes>>;

/// The slot-prefixed key of a row.
pub(super) fn ckey(s: Slot, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(s);
    out.extend_from_slice(key);
    out
}

/// Bytes an entry is counted as (keys, values and a guess at the map's own overhead): what the
/// memory bound of the overlay counts.
pub(super) fn entry_cost(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + 64
}

/// Reads of the hot file's tables by slot (the archive's union reads sit on top of this).
pub(super) trait HotRead {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()>;
    fn hlen(&self, s: Slot) -> Result<u64>;
    fn hget_each(&self, s: Slot, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        for (i, key) in keys.iter().enumerate() {
            let v = self.hget(s, key)?;
            f(i, v.as_deref())?;
        }
        Ok(())
    }
}

/// Changes of the hot file's tables by slot.
pub(super) trait HotWrite: HotRead {
    fn hput(&mut self, s: Slot, key: &[u8], value: &[u8]) -> Result<()>;
    /// Whether the row existed.
    fn hdel(&mut self, s: Slot, key: &[u8]) -> Result<bool>;
}

/// A row of a layer: slot-prefixed key, value (`None`: deleted).
type Entry<'a> = (&'a [u8], Option<&'a [u8]>);
type Layer<'a> = Peekable<Box<dyn Iterator<Item = Entry<'a>> + 'a>>;

/// The ordered merge of several layers' ranges; on equal keys the first layer wins and the
/// others' entries are skipped.
struct Merge<'a> {
    layers: Vec<Layer<'a>>,
    rev: bool,
}

impl<'a> Iterator for Merge<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        let mut best: Option<(usize, &'a [u8])> = None;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if let Some(&(k, _)) = layer.peek() {
                let better = match best {
                    None => true,
                    Some((_, b)) => {
                        let ord = k.cmp(b);
                        if self.rev {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        }
                    }
                };
                if better {
                    best = Some((i, k));
                }
            }
        }
        let (i, k) = best?;
        let out = self.layers[i].next();
        for (j, layer) in self.layers.iter_mut().enumerate() {
            if j != i && layer.peek().is_some_and(|&(k2, _)| k2 == k) {
                layer.next();
            }
        }
        out
    }
}

/// Slot-prefixed bounds of a range of slot `s`.
fn cbounds(s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match lo {
        Bound::Included(k) => Bound::Included(ckey(s, k)),
        Bound::Excluded(k) => Bound::Excluded(ckey(s, k)),
        Bound::Unbounded => Bound::Included(vec![s]),
    };
    let hi = match hi {
        Bound::Included(k) => Bound::Included(ckey(s, k)),
        Bound::Excluded(k) => Bound::Excluded(ckey(s, k)),
        Bound::Unbounded => Bound::Excluded(vec![s + 1]),
    };
    (lo, hi)
}

fn as_slices(b: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (b.0.as_ref().map(Vec::as_slice), b.1.as_ref().map(Vec::as_slice))
}

fn directed<'a, I>(it: I, rev: bool) -> Box<dyn Iterator<Item = Entry<'a>> + 'a>
where
    I: DoubleEndedIterator<Item = Entry<'a>> + 'a,
{
    if rev { Box::new(it.rev()) } else { Box::new(it) }
}

/// Calls `f` with the rows of `base` (a scan, pushed) merged with `over` (pulled, already in scan
/// order, keys without their slot byte): an `over` entry replaces the base row with its key, and
/// a deleted one hides it.
pub(super) fn merge_scan<'a>(
    base: impl FnOnce(Scan<'_>) -> Result<()>,
    over: impl Iterator<Item = Entry<'a>>,
    rev: bool,
    f: Scan<'_>,
) -> Result<()> {
    let mut over = over.peekable();
    let mut stopped = false;
    let before = |a: &[u8], b: &[u8]| {
        let ord = a.cmp(b);
        if rev {
            ord == Ordering::Greater
        } else {
            ord == Ordering::Less
        }
    };
    base(&mut |k: &[u8], v: &[u8]| {
        while let Some(&(ok, ov)) = over.peek() {
            if before(ok, k) {
                over.next();
                if let Some(ov) = ov
                    && !f(ok, ov)?
                {
                    stopped = true;
                    return Ok(false);
                }
                continue;
            }
            if ok == k {
                over.next();
                if let Some(ov) = ov
                    && !f(ok, ov)?
                {
                    stopped = true;
                    return Ok(false);
                }
                return Ok(true);
            }
            break;
        }
        if !f(k, v)? {
            stopped = true;
            return Ok(false);
        }
        Ok(true)
    })?;
    if stopped {
        return Ok(());
    }
    for (ok, ov) in over {
        if let Some(ov) = ov
            && !f(ok, ov)?
        {
            break;
        }
    }
    Ok(())
}

/// A view of the hot file: `local` (a write transaction's own changes; empty for a reader) over
/// the active overlay, over the frozen one, over `base` (a redb snapshot of the hot file).
pub(super) struct Layered<B> {
    pub(super) local: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub(super) active: OvMap,
    pub(super) frozen: Option<Arc<OvMap>>,
    pub(super) base: B,
}

impl<B: HotRead> Layered<B> {
    pub(super) fn new(active: OvMap, frozen: Option<Arc<OvMap>>, base: B) -> Layered<B> {
        Layered {
            local: BTreeMap::new(),
            active,
            frozen,
            base,
        }
    }

    /// The overlays' word on a key: `None` when none of them has it (ask redb).
    fn lookup(&self, ck: &[u8]) -> Option<Option<&[u8]>> {
        if let Some(v) = self.local.get(ck) {
            return Some(v.as_deref());
        }
        if let Some(v) = self.active.get(ck) {
            return Some(v.as_deref());
        }
        self.frozen.as_ref()?.get(ck).map(|v| v.as_deref())
    }

    /// The overlays' entries in a range of slot `s`, merged, keys without the slot byte.
    fn over<'a>(&'a self, b: &'a (Bound<Vec<u8>>, Bound<Vec<u8>>), rev: bool) -> impl Iterator<Item = Entry<'a>> + 'a {
        let range = as_slices(b);
        let mut layers: Vec<Layer<'a>> = Vec::with_capacity(3);
        if !self.local.is_empty() {
            let it = self
                .local
                .range::<[u8], _>(range)
                .map(|(k, v)| (k.as_slice(), v.as_deref()));
            layers.push(directed(it, rev).peekable());
        }
        if !self.active.is_empty() {
            let it = self.active.range::<_, [u8]>(range).map(|(k, v)| (&k[..], v.as_deref()));
            layers.push(directed(it, rev).peekable());
        }
        if let Some(frozen) = &self.frozen {
            let it = frozen.range::<_, [u8]>(range).map(|(k, v)| (&k[..], v.as_deref()));
            layers.push(directed(it, rev).peekable());
        }
        Merge { layers, rev }.map(|(k, v)| (&k[1..], v))
    }

    /// Whether no overlay holds anything (reads go straight to redb).
    fn bare(&self) -> bool {
        self.local.is_empty() && self.active.is_empty() && self.frozen.is_none()
    }

    /// The local changes, in key order (a journal record's operations).
    pub(super) fn changes(&self) -> impl Iterator<Item = Entry<'_>> {
        self.local.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))
    }
}

impl<B: HotRead> HotRead for Layered<B> {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.bare() {
            return self.base.hget(s, key);
        }
        match self.lookup(&ckey(s, key)) {
            Some(v) => Ok(v.map(<[u8]>::to_vec)),
            None => self.base.hget(s, key),
        }
    }
    fn hget_each(&self, s: Slot, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        if self.bare() {
            return self.base.hget_each(s, keys, f);
        }
        // The overlays first; the keys they do not hold in one call to redb (one table lookup
        // for a whole page of a list), then every answer in key order.
        let over: Vec<Option<Option<&[u8]>>> = keys.iter().map(|key| self.lookup(&ckey(s, key))).collect();
        let misses: Vec<&[u8]> = keys
            .iter()
            .zip(&over)
            .filter(|(_, o)| o.is_none())
            .map(|(k, _)| *k)
            .collect();
        let mut below: Vec<Option<Vec<u8>>> = Vec::with_capacity(misses.len());
        self.base.hget_each(s, &misses, &mut |_, v| {
            below.push(v.map(<[u8]>::to_vec));
            Ok(())
        })?;
        let mut below = below.into_iter();
        for (i, o) in over.into_iter().enumerate() {
            match o {
                Some(v) => f(i, v)?,
                None => f(i, below.next().flatten().as_deref())?,
            }
        }
        Ok(())
    }
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        if self.bare() || empty_range(lo, hi) {
            return self.base.hscan(s, lo, hi, rev, f);
        }
        let b = cbounds(s, lo, hi);
        merge_scan(|g| self.base.hscan(s, lo, hi, rev, g), self.over(&b, rev), rev, f)
    }
    fn hlen(&self, s: Slot) -> Result<u64> {
        let mut n = self.base.hlen(s)?;
        if self.bare() {
            return Ok(n);
        }
        let b = cbounds(s, Bound::Unbounded, Bound::Unbounded);
        for (k, v) in self.over(&b, false) {
            match (v.is_some(), self.base.hget(s, k)?.is_some()) {
                (true, false) => n += 1,
                (false, true) => n = n.saturating_sub(1),
                _ => {}
            }
        }
        Ok(n)
    }
}

impl<B: HotRead> HotWrite for Layered<B> {
    fn hput(&mut self, s: Slot, key: &[u8], value: &[u8]) -> Result<()> {
        self.local.insert(ckey(s, key), Some(value.to_vec()));
        Ok(())
    }
    fn hdel(&mut self, s: Slot, key: &[u8]) -> Result<bool> {
        let existed = self.hget(s, key)?.is_some();
        self.local.insert(ckey(s, key), None);
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain model of a hot table: what every view must equal.
    #[derive(Default, Clone)]
    struct Model(BTreeMap<Vec<u8>, Vec<u8>>);

    impl HotRead for Model {
        fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(&ckey(s, key)).cloned())
        }
        fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
            if empty_range(lo, hi) {
                return Ok(());
            }
            let b = cbounds(s, lo, hi);
            let it = self.0.range::<[u8], _>(as_slices(&b));
            let rows: Vec<_> = if rev { it.rev().collect() } else { it.collect() };
            for (k, v) in rows {
                if !f(&k[1..], v)? {
                    break;
                }
            }
            Ok(())
        }
        fn hlen(&self, s: Slot) -> Result<u64> {
            Ok(self.0.keys().filter(|k| k[0] == s).count() as u64)
        }
    }

    fn apply(m: &mut Model, changes: &[(Slot, &str, Option<&str>)]) {
        for (s, k, v) in changes {
            match v {
                Some(v) => m.0.insert(ckey(*s, k.as_bytes()), v.as_bytes().to_vec()),
                None => m.0.remove(&ckey(*s, k.as_bytes())),
            };
        }
    }

    fn ov(changes: &[(Slot, &str, Option<&str>)]) -> OvMap {
        let mut m = OvMap::new();
        for (s, k, v) in changes {
            m.insert(ckey(*s, k.as_bytes()).into(), v.map(|v| Bytes::from(v.as_bytes())));
        }
        m
    }

    fn scan(
        r: &dyn HotRead,
        s: Slot,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        r.hscan(s, lo, hi, rev, &mut |k, v| {
            out.push((String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into()));
            Ok(out.len() < limit)
        })
        .unwrap();
        out
    }

    /// Base rows, a frozen overlay over them, an active one over that and a transaction's own
    /// changes on top: every scan (both directions, every range, every limit), point read and
    /// count equals the plain model with the same changes applied in order.
    #[test]
    fn scans_gets_and_counts_match_the_changes_applied_in_order() {
        let base_rows: Vec<(Slot, &str, Option<&str>)> = vec![
            (1, "a", Some("a0")),
            (1, "c", Some("c0")),
            (1, "e", Some("e0")),
            (1, "g", Some("g0")),
            (2, "a", Some("other table")),
            (TOMBS, "t", Some("")),
        ];
        let frozen: Vec<(Slot, &str, Option<&str>)> = vec![
            (1, "b", Some("b1")),
            (1, "c", None),
            (1, "e", Some("e1")),
            (1, "x", None),
        ];
        let active: Vec<(Slot, &str, Option<&str>)> = vec![
            (1, "c", Some("c2")),
            (1, "e", None),
            (1, "f", Some("f2")),
            (2, "b", Some("b2")),
        ];
        let local: Vec<(Slot, &str, Option<&str>)> = vec![(1, "a", None), (1, "h", Some("h3")), (1, "f", Some("f3"))];

        let mut base = Model::default();
        apply(&mut base, &base_rows);
        let mut want = base.clone();
        for changes in [&frozen, &active, &local] {
            apply(&mut want, changes);
        }
        let mut view = Layered::new(ov(&active), Some(Arc::new(ov(&frozen))), base);
        for (s, k, v) in &local {
            match v {
                Some(v) => view.hput(*s, k.as_bytes(), v.as_bytes()).unwrap(),
                None => {
                    view.hdel(*s, k.as_bytes()).unwrap();
                }
            }
        }
        let keys = ["", "a", "b", "c", "d", "e", "f", "g", "h", "x", "z"];
        let bounds = |k: &'static str| -> Vec<Bound<&'static [u8]>> {
            vec![Bound::Included(k.as_bytes()), Bound::Excluded(k.as_bytes())]
        };
        for s in [1u8, 2, 3, TOMBS] {
            assert_eq!(view.hlen(s).unwrap(), want.hlen(s).unwrap(), "len of slot {s}");
            for k in keys {
                assert_eq!(
                    view.hget(s, k.as_bytes()).unwrap(),
                    want.hget(s, k.as_bytes()).unwrap(),
                    "get {s} {k}"
                );
            }
            let mut los = vec![Bound::Unbounded];
            let mut his = vec![Bound::Unbounded];
            for k in keys {
                los.extend(bounds(k));
                his.extend(bounds(k));
            }
            for lo in &los {
                for hi in &his {
                    for rev in [false, true] {
                        for limit in [1, 2, 100] {
                            assert_eq!(
                                scan(&view, s, *lo, *hi, rev, limit),
                                scan(&want, s, *lo, *hi, rev, limit),
                                "slot {s} {lo:?}..{hi:?} rev {rev} limit {limit}"
                            );
                        }
                    }
                }
            }
        }
        // Point reads of several keys at once agree too.
        let ks: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let mut got = Vec::new();
        view.hget_each(1, &ks, &mut |i, v| {
            got.push((i, v.map(<[u8]>::to_vec)));
            Ok(())
        })
        .unwrap();
        let expected: Vec<_> = ks
            .iter()
            .enumerate()
            .map(|(i, k)| (i, want.hget(1, k).unwrap()))
            .collect();
        assert_eq!(got, expected);
        // The changes a commit journals: the local ones only, in key order.
        let changes: Vec<_> = view
            .changes()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(
            changes,
            vec![
                (ckey(1, b"a"), None),
                (ckey(1, b"f"), Some(b"f3".to_vec())),
                (ckey(1, b"h"), Some(b"h3".to_vec()))
            ]
        );
    }

    /// A reader's copy of the overlay does not change when the writer publishes more.
    #[test]
    fn a_readers_copy_is_a_snapshot() {
        let mut active = ov(&[(1, "a", Some("1"))]);
        let view = Layered::new(active.clone(), None, Model::default());
        active.insert(ckey(1, b"a").into(), None);
        active.insert(ckey(1, b"b").into(), Some(Bytes::from(&b"2"[..])));
        assert_eq!(view.hget(1, b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(view.hget(1, b"b").unwrap(), None);
        assert_eq!(view.hlen(1).unwrap(), 1);
    }
}
