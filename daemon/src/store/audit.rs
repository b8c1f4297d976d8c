//! The audit table: append-only, hash-chained records keyed by sequence number.

use redb::{ReadableTable, TableDefinition};

use super::{Reader, Result, Writer, decode, encode};
use crate::audit::Record;

/// seq → Record (JSON)
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(AUDIT)?;
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
        let t = self.tx.open_table(AUDIT)?;
        let last = t.last()?;
        match last {
            Some((k, v)) => Ok(Some(decode("audit", &k.value().to_string(), v.value())?)),
            None => Ok(None),
        }
    }

    pub fn audit_put(&mut self, rec: &Record) -> Result<()> {
        self.tx.open_table(AUDIT)?.insert(rec.seq, encode(rec).as_slice())?;
        Ok(())
    }
}
