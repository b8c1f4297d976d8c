//! The embedded store: [`KvRead`]/[`KvWrite`] over redb's typed tables. The tables keep the
//! types they always had (`&str` keys, `&[u8]`/`&str`/`()`/`i64` values, `u64` audit keys), so
//! data dirs written before the backend interface existed open unchanged.

use std::borrow::Cow;
use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata};

use super::backend::{GetEach, KvRead, KvWrite, Scan, Table, empty_range};
use super::overlay::{HotRead, HotWrite, Slot, TOMBS};
use super::tables::*;
use super::{Result, StoreError};

/// A key type of a redb table, to and from the bytes the backend interface speaks.
pub(super) trait KeyConv: redb::Key + 'static {
    fn from_raw(b: &[u8]) -> Result<Self::SelfType<'_>>;
    fn to_raw<'a>(v: Self::SelfType<'a>) -> Cow<'a, [u8]>
    where
        Self: 'a;
}

impl KeyConv for &'static str {
    fn from_raw(b: &[u8]) -> Result<&str> {
        std::str::from_utf8(b).map_err(|_| StoreError::Storage("a key is not UTF-8".into()))
    }
    fn to_raw<'a>(v: &'a str) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Borrowed(v.as_bytes())
    }
}

impl KeyConv for u64 {
    fn from_raw(b: &[u8]) -> Result<u64> {
        let arr: [u8; 8] = b
            .try_into()
            .map_err(|_| StoreError::Storage("an audit key is not 8 bytes".into()))?;
        Ok(u64::from_be_bytes(arr))
    }
    fn to_raw<'a>(v: u64) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Owned(v.to_be_bytes().to_vec())
    }
}

/// A value type of a redb table, to and from bytes.
pub(super) trait ValConv: redb::Value + 'static {
    fn from_raw(b: &[u8]) -> Result<Self::SelfType<'_>>;
    fn to_raw<'a>(v: Self::SelfType<'a>) -> Cow<'a, [u8]>
    where
        Self: 'a;
}

impl ValConv for &'static [u8] {
    fn from_raw(b: &[u8]) -> Result<&[u8]> {
        Ok(b)
    }
    fn to_raw<'a>(v: &'a [u8]) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Borrowed(v)
    }
}

impl ValConv for &'static str {
    fn from_raw(b: &[u8]) -> Result<&str> {
        std::str::from_utf8(b).map_err(|_| StoreError::Storage("a text value is not UTF-8".into()))
    }
    fn to_raw<'a>(v: &'a str) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Borrowed(v.as_bytes())
    }
}

impl ValConv for () {
    fn from_raw(_: &[u8]) -> Result<()> {
        Ok(())
    }
    fn to_raw<'a>(_: ()) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Borrowed(&[])
    }
}

/// `i64` values (schedule due times) travel as 8 little-endian bytes.
impl ValConv for i64 {
    fn from_raw(b: &[u8]) -> Result<i64> {
        let arr: [u8; 8] = b
            .try_into()
            .map_err(|_| StoreError::Storage("a number value is not 8 bytes".into()))?;
        Ok(i64::from_le_bytes(arr))
    }
    fn to_raw<'a>(v: i64) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Owned(v.to_le_bytes().to_vec())
    }
}

/// Opens `$table`'s typed redb table in `$tx` as `$t` and evaluates `$body` with it.
macro_rules! with_table {
    ($tx:expr, $table:expr, |$t:ident| $body:expr) => {
        match $table {
            Table::Executions => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(EXECUTIONS)?;
                $body
            }
            Table::ExecutionsByState => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(EXECUTIONS_BY_STATE)?;
                $body
            }
            Table::Logs => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(LOGS)?;
                $body
            }
            Table::Timers => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(TIMERS)?;
                $body
            }
            Table::Flows => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(FLOWS)?;
                $body
            }
            Table::FlowRevisions => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(FLOW_REVISIONS)?;
                $body
            }
            Table::Meta => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(META)?;
                $body
            }
            Table::Schedules => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(SCHEDULES)?;
                $body
            }
            Table::ConditionWindows => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(CONDITION_WINDOWS)?;
                $body
            }
            Table::Users => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(USERS)?;
                $body
            }
            Table::Groups => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(GROUPS)?;
                $body
            }
            Table::Bindings => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(BINDINGS)?;
                $body
            }
            Table::Tokens => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(TOKENS)?;
                $body
            }
            Table::Audit => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(AUDIT)?;
                $body
            }
            Table::AuditHead => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(AUDIT_HEAD)?;
                $body
            }
            Table::Delegations => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(DELEGATIONS)?;
                $body
            }
            Table::Kv => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(KV)?;
                $body
            }
            Table::Secrets => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(SECRETS)?;
                $body
            }
            Table::Metrics => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(METRICS)?;
                $body
            }
            Table::WaitingSeries => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(WAITING_SERIES)?;
                $body
            }
            Table::Leases => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(LEASES)?;
                $body
            }
            Table::TriggerStates => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(TRIGGER_STATES)?;
                $body
            }
            Table::Files => {
                #[allow(unused_mut)]
                let mut $t = $tx.open_table(FILES)?;
                $body
            }
        }
    };
}

/// Creates every table (a new file gets them all at once).
pub(super) fn create_tables(tx: &redb::WriteTransaction) -> Result<()> {
    for t in Table::ALL {
        with_table!(tx, t, |_t| ());
    }
    Ok(())
}

fn get_in<K: KeyConv, V: ValConv>(t: &impl ReadableTable<K, V>, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let key = K::from_raw(key)?;
    Ok(t.get(key)?.map(|g| V::to_raw(g.value()).into_owned()))
}

fn get_each_in<K: KeyConv, V: ValConv>(t: &impl ReadableTable<K, V>, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
    for (i, key) in keys.iter().enumerate() {
        match t.get(K::from_raw(key)?)? {
            Some(g) => f(i, Some(&V::to_raw(g.value())))?,
            None => f(i, None)?,
        }
    }
    Ok(())
}

fn scan_in<K: KeyConv, V: ValConv>(
    t: &impl ReadableTable<K, V>,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
    f: Scan<'_>,
) -> Result<()> {
    if empty_range(lo, hi) {
        return Ok(());
    }
    let range = t.range::<K::SelfType<'_>>((conv_bound::<K>(lo)?, conv_bound::<K>(hi)?))?;
    let mut visit = |item: std::result::Result<
        (redb::AccessGuard<'_, K>, redb::AccessGuard<'_, V>),
        redb::StorageError,
    >|
     -> Result<bool> {
        let (k, v) = item?;
        f(&K::to_raw(k.value()), &V::to_raw(v.value()))
    };
    if rev {
        for item in range.rev() {
            if !visit(item)? {
                break;
            }
        }
    } else {
        for item in range {
            if !visit(item)? {
                break;
            }
        }
    }
    Ok(())
}

pub(super) fn conv_bound<K: KeyConv>(b: Bound<&[u8]>) -> Result<Bound<K::SelfType<'_>>> {
    Ok(match b {
        Bound::Included(x) => Bound::Included(K::from_raw(x)?),
        Bound::Excluded(x) => Bound::Excluded(K::from_raw(x)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn put_in<K: KeyConv, V: ValConv>(t: &mut redb::Table<'_, K, V>, key: &[u8], value: &[u8]) -> Result<()> {
    t.insert(K::from_raw(key)?, V::from_raw(value)?)?;
    Ok(())
}

fn delete_in<K: KeyConv, V: ValConv>(t: &mut redb::Table<'_, K, V>, key: &[u8]) -> Result<bool> {
    Ok(t.remove(K::from_raw(key)?)?.is_some())
}

impl KvRead for redb::ReadTransaction {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        with_table!(self, table, |t| get_in(&t, key))
    }
    // The table is opened once for all keys (a page of a list reads up to 1,000).
    fn get_each(&self, table: Table, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        with_table!(self, table, |t| get_each_in(&t, keys, f))
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        with_table!(self, table, |t| scan_in(&t, lo, hi, rev, f))
    }
    fn len(&self, table: Table) -> Result<u64> {
        with_table!(self, table, |t| Ok(t.len()?))
    }
}

impl KvRead for redb::WriteTransaction {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        with_table!(self, table, |t| get_in(&t, key))
    }
    fn scan(&self, table: Table, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        with_table!(self, table, |t| scan_in(&t, lo, hi, rev, f))
    }
    fn len(&self, table: Table) -> Result<u64> {
        with_table!(self, table, |t| Ok(t.len()?))
    }
}

impl KvWrite for redb::WriteTransaction {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        with_table!(self, table, |t| put_in(&mut t, key, value))
    }
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        with_table!(self, table, |t| delete_in(&mut t, key))
    }
}

impl KeyConv for &'static [u8] {
    fn from_raw(b: &[u8]) -> Result<&[u8]> {
        Ok(b)
    }
    fn to_raw<'a>(v: &'a [u8]) -> Cow<'a, [u8]>
    where
        Self: 'a,
    {
        Cow::Borrowed(v)
    }
}

/// The table a hot-file slot names (see `overlay.rs`): a [`Table`] by its number, or the
/// archive's tombstones.
fn slot_table(s: Slot) -> Result<Table> {
    Table::ALL
        .get(s as usize)
        .copied()
        .ok_or_else(|| StoreError::Storage(format!("no table has number {s}")))
}

/// Opens the typed redb table of hot-file slot `$s` in `$tx` as `$t` and evaluates `$body`.
macro_rules! with_slot {
    ($tx:expr, $s:expr, |$t:ident| $body:expr) => {
        if $s == TOMBS {
            #[allow(unused_mut)]
            let mut $t = $tx.open_table(TOMBSTONES)?;
            $body
        } else {
            let table = slot_table($s)?;
            with_table!($tx, table, |$t| $body)
        }
    };
}

impl HotRead for redb::ReadTransaction {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
        with_slot!(self, s, |t| get_in(&t, key))
    }
    fn hget_each(&self, s: Slot, keys: &[&[u8]], f: GetEach<'_>) -> Result<()> {
        with_slot!(self, s, |t| get_each_in(&t, keys, f))
    }
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        with_slot!(self, s, |t| scan_in(&t, lo, hi, rev, f))
    }
    fn hlen(&self, s: Slot) -> Result<u64> {
        with_slot!(self, s, |t| Ok(t.len()?))
    }
}

impl HotRead for redb::WriteTransaction {
    fn hget(&self, s: Slot, key: &[u8]) -> Result<Option<Vec<u8>>> {
        with_slot!(self, s, |t| get_in(&t, key))
    }
    fn hscan(&self, s: Slot, lo: Bound<&[u8]>, hi: Bound<&[u8]>, rev: bool, f: Scan<'_>) -> Result<()> {
        with_slot!(self, s, |t| scan_in(&t, lo, hi, rev, f))
    }
    fn hlen(&self, s: Slot) -> Result<u64> {
        with_slot!(self, s, |t| Ok(t.len()?))
    }
}

impl HotWrite for redb::WriteTransaction {
    fn hput(&mut self, s: Slot, key: &[u8], value: &[u8]) -> Result<()> {
        with_slot!(self, s, |t| put_in(&mut t, key, value))
    }
    fn hdel(&mut self, s: Slot, key: &[u8]) -> Result<bool> {
        with_slot!(self, s, |t| delete_in(&mut t, key))
    }
}

/// Writes changes keyed by slot-prefixed keys (see `overlay::ckey`), sorted by that key as an
/// overlay or a journal record holds them, opening each table once for its run of keys.
pub(super) fn apply_sorted<'a>(
    tx: &redb::WriteTransaction,
    entries: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<()> {
    let mut entries = entries.peekable();
    while let Some(&(ck, _)) = entries.peek() {
        let Some(&s) = ck.first() else {
            entries.next();
            continue;
        };
        with_slot!(tx, s, |t| {
            while let Some(&(ck, v)) = entries.peek() {
                if ck.first() != Some(&s) {
                    break;
                }
                entries.next();
                match v {
                    Some(v) => put_in(&mut t, &ck[1..], v)?,
                    None => {
                        delete_in(&mut t, &ck[1..])?;
                    }
                }
            }
        });
    }
    Ok(())
}
