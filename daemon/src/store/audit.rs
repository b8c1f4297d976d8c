//! The audit table: append-only, hash-chained records keyed by sequence number.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Result, Writer, decode, encode};
use crate::audit::{Head, Record};

/// seq → Record (JSON)
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// "head" → Head (JSON): the newest record's seq and hash, so deleting records from the end of
/// the chain (which leaves a shorter chain that still links) is detected too.
const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");
const HEAD_KEY: &str = "head";

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(AUDIT)?;
    tx.open_table(AUDIT_HEAD)?;
    Ok(())
}

impl Reader {
    /// Records, newest first, with `seq < before` (0 = from the newest), at most `limit` after filtering.
    pub fn audit(&self, before: u64, limit: usize, keep: impl Fn(&Record) -> bool) -> Result<Vec<Record>> {
        let t = self.tx.open_table(AUDIT)?;
        let hi = if before == 0 { u64::MAX } else { before };
        let mut out = Vec::new();
        for item in t.range(..hi)?.rev() {
            let (k, v) = item?;
            let rec: Record = decode("audit", &k.value().to_string(), v.value())?;
            if keep(&rec) {
                out.push(rec);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The head marker written with the newest record.
    pub fn audit_head(&self) -> Result<Option<Head>> {
        let t = self.tx.open_table(AUDIT_HEAD)?;
        match t.get(HEAD_KEY)? {
            Some(v) => Ok(Some(decode("audit_head", HEAD_KEY, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every record in order, for verification.
    pub fn audit_all(&self, mut f: impl FnMut(u64, Result<Record>) -> bool) -> Result<()> {
        let t = self.tx.open_table(AUDIT)?;
        for item in t.iter()? {
            let (k, v) = item?;
            if !f(k.value(), decode("audit", &k.value().to_string(), v.value())) {
                break;
            }
        }
        Ok(())
    }
}

impl Writer {
    /// The newest record, whose hash the next one chains to.
    pub fn audit_last(&self) -> Result<Option<Record>> {
        if let Some(known) = self.audit_last.borrow().as_ref() {
            return Ok(Some(known.clone()));
        }
        let t = self.tx.open_table(AUDIT)?;
        let last = t.last()?;
        let found: Option<Record> = match last {
            Some((k, v)) => Some(decode("audit", &k.value().to_string(), v.value())?),
            None => None,
        };
        *self.audit_last.borrow_mut() = found.clone();
        Ok(found)
    }

    /// Stores a record as is. [`crate::audit::append`] is the way to add one; this is public so
    /// tests can play the attacker who edits the file.
    pub fn audit_put(&mut self, rec: &Record) -> Result<()> {
        self.tx.open_table(AUDIT)?.insert(rec.seq, encode(rec).as_slice())?;
        // Keep the remembered newest record true: a record past it is the newest now.
        let last = self.audit_last.get_mut();
        if last.as_ref().is_some_and(|l| rec.seq >= l.seq) {
            *last = Some(rec.clone());
        }
        Ok(())
    }

    /// Removes a record (for tamper tests; nothing in the daemon deletes audit records).
    pub fn audit_delete(&mut self, seq: u64) -> Result<bool> {
        *self.audit_last.get_mut() = None;
        Ok(self.tx.open_table(AUDIT)?.remove(seq)?.is_some())
    }

    pub fn audit_set_head(&mut self, head: &Head) -> Result<()> {
        self.tx
            .open_table(AUDIT_HEAD)?
            .insert(HEAD_KEY, encode(head).as_slice())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::{Entry, append, verify};
    use crate::store::Store;

    fn entry(action: &str) -> Entry {
        Entry {
            user: "ana@example.com".into(),
            action: action.into(),
            result: "OK".into(),
            ..Default::default()
        }
    }

    /// Many appends in one transaction (a writer batch) chain to each other, also after a
    /// record is removed in the same transaction, as they do across transactions.
    #[test]
    fn appends_in_one_transaction_chain_like_separate_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.write(|w| append(w, entry("first"))).unwrap();
        store
            .write(|w| {
                for i in 0..5 {
                    append(w, entry(&format!("batch {i}")))?;
                }
                let last = w.audit_last()?.expect("a newest record");
                assert_eq!((last.seq, last.action.as_str()), (6, "batch 4"));
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        assert!(verify(&store.read().unwrap()).unwrap().ok);
        store
            .write(|w| {
                append(w, entry("doomed"))?;
                w.audit_delete(7)?;
                append(w, entry("after"))?;
                let last = w.audit_last()?.expect("a newest record");
                assert_eq!((last.seq, last.action.as_str()), (7, "after"));
                Ok::<_, crate::store::StoreError>(())
            })
            .unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 7);
    }
}
