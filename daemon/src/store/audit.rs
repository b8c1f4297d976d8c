//! The audit table: append-only, hash-chained records keyed by sequence number. The records are
//! the audit log's ([`AuditRecord`]); the store reads only their sequence number and hash.

use redb::{ReadableTable, TableDefinition};

use serde::Deserialize;

use super::{AuditHead, AuditRecord, Reader, Result, Writer, decode, encode};

/// seq → audit record (JSON)
pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// "head" → [`AuditHead`] (JSON): the newest record's seq and hash, so deleting records from the end of
/// the chain (which leaves a shorter chain that still links) is detected too.
pub(super) const AUDIT_HEAD: TableDefinition<&str, &[u8]> = TableDefinition::new("audit_head");
const HEAD_KEY: &str = "head";

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(AUDIT)?;
    tx.open_table(AUDIT_HEAD)?;
    Ok(())
}

/// A stored record's time, whatever else it holds.
#[derive(Deserialize)]
struct Stamp {
    time_ms: i64,
}

/// The chain fields of a stored record, whatever else it holds.
#[derive(Deserialize)]
struct Link {
    seq: u64,
    hash: String,
}

impl Reader {
    /// Records, newest first, with `seq < before` (0 = from the newest), at most `limit` after filtering.
    pub fn audit<R: AuditRecord>(&self, before: u64, limit: usize, keep: impl Fn(&R) -> bool) -> Result<Vec<R>> {
        let t = self.tx.open_table(AUDIT)?;
        let hi = if before == 0 { u64::MAX } else { before };
        let mut out = Vec::new();
        for item in t.range(..hi)?.rev() {
            let (k, v) = item?;
            let rec: R = decode("audit", &k.value().to_string(), v.value())?;
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
    pub fn audit_head(&self) -> Result<Option<AuditHead>> {
        let t = self.tx.open_table(AUDIT_HEAD)?;
        match t.get(HEAD_KEY)? {
            Some(v) => Ok(Some(decode("audit_head", HEAD_KEY, v.value())?)),
            None => Ok(None),
        }
    }

    /// The sequence number of the first record written at or after `time_ms`, found by bisection
    /// (records are appended in time order), or `None` when every record is older.
    pub fn audit_first_at_or_after(&self, time_ms: i64) -> Result<Option<u64>> {
        let t = self.tx.open_table(AUDIT)?;
        let (Some(first), Some(last)) = (t.first()?, t.last()?) else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (first.0.value(), last.0.value() + 1);
        drop((first, last));
        let time_at = |seq: u64| -> Result<Option<i64>> {
            match t.get(seq)? {
                Some(v) => Ok(Some(decode::<Stamp>("audit", &seq.to_string(), v.value())?.time_ms)),
                None => Ok(None),
            }
        };
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match time_at(mid)? {
                Some(t) if t < time_ms => lo = mid + 1,
                Some(_) => hi = mid,
                // A gap (a deleted record): fall back to walking the range in order.
                None => {
                    for item in t.range(lo..hi)? {
                        let (k, v) = item?;
                        if decode::<Stamp>("audit", &k.value().to_string(), v.value())?.time_ms >= time_ms {
                            return Ok(Some(k.value()));
                        }
                    }
                    return Ok(None);
                }
            }
        }
        Ok((lo <= last_key(&t)?).then_some(lo))
    }

    /// At most `limit` records with `seq >= from`, oldest first.
    pub fn audit_from<R: AuditRecord>(&self, from: u64, limit: usize) -> Result<Vec<R>> {
        let t = self.tx.open_table(AUDIT)?;
        let mut out = Vec::new();
        for item in t.range(from..)?.take(limit) {
            let (k, v) = item?;
            out.push(decode("audit", &k.value().to_string(), v.value())?);
        }
        Ok(out)
    }

    /// Every record in order, for verification.
    pub fn audit_all<R: AuditRecord>(&self, mut f: impl FnMut(u64, Result<R>) -> bool) -> Result<()> {
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

fn last_key(t: &redb::ReadOnlyTable<u64, &[u8]>) -> Result<u64> {
    Ok(t.last()?.map(|(k, _)| k.value()).unwrap_or(0))
}

impl Writer {
    /// The newest record's sequence number and hash, which the next record chains to.
    pub fn audit_last(&self) -> Result<Option<AuditHead>> {
        if let Some(known) = self.audit_last.borrow().as_ref() {
            return Ok(Some(known.clone()));
        }
        let t = self.tx.open_table(AUDIT)?;
        let last = t.last()?;
        let found = match last {
            Some((k, v)) => {
                let link: Link = decode("audit", &k.value().to_string(), v.value())?;
                Some(AuditHead {
                    seq: link.seq,
                    hash: link.hash,
                })
            }
            None => None,
        };
        *self.audit_last.borrow_mut() = found.clone();
        Ok(found)
    }

    /// Stores a record as is, under its sequence number. The audit log's `append` is the way to
    /// add one; this is public so tests can play the attacker who edits the file.
    pub fn audit_put<R: AuditRecord>(&mut self, rec: &R) -> Result<()> {
        self.tx.open_table(AUDIT)?.insert(rec.seq(), encode(rec).as_slice())?;
        // Keep the remembered newest record true: a record past it is the newest now.
        let last = self.audit_last.get_mut();
        if last.as_ref().is_some_and(|l| rec.seq() >= l.seq) {
            *last = Some(AuditHead {
                seq: rec.seq(),
                hash: rec.hash().to_string(),
            });
        }
        Ok(())
    }

    /// Removes a record (for tamper tests; nothing in the daemon deletes audit records).
    pub fn audit_delete(&mut self, seq: u64) -> Result<bool> {
        *self.audit_last.get_mut() = None;
        Ok(self.tx.open_table(AUDIT)?.remove(seq)?.is_some())
    }

    pub fn audit_set_head(&mut self, head: &AuditHead) -> Result<()> {
        self.tx
            .open_table(AUDIT_HEAD)?
            .insert(HEAD_KEY, encode(head).as_slice())?;
        Ok(())
    }
}
