//! The audit table: append-only, hash-chained records keyed by sequence number. The records are
//! the audit log's ([`AuditRecord`]); the store reads only their sequence number and hash.
//! Keys are the sequence number's 8 big-endian bytes (numeric order is byte order).

use std::ops::Bound;

use serde::Deserialize;

use super::backend::{KvRead, Table, k};
use super::{AuditHead, AuditRecord, Reader, Result, StoreError, WriteTx, Writer, decode, encode, get_json};

/// A record of a PostgreSQL row batch waiting for its place in the chain: called under the
/// commit lock with its seq and the hash before it, gives its bytes and its own hash.
pub(super) type PendingRecord = Box<dyn FnOnce(u64, &str) -> (Vec<u8>, String)>;

/// The head marker's key in the audit_head table: the newest record's seq and hash, so deleting
/// records from the end of the chain (which leaves a shorter chain that still links) is
/// detected too.
const HEAD_KEY: &str = "head";

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

fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn seq_of(key: &[u8]) -> u64 {
    key.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// The first or last record's (seq, bytes).
fn edge(r: &dyn KvRead, last: bool) -> Result<Option<(u64, Vec<u8>)>> {
    let mut found = None;
    r.scan(Table::Audit, Bound::Unbounded, Bound::Unbounded, last, &mut |key, v| {
        found = Some((seq_of(key), v.to_vec()));
        Ok(false)
    })?;
    Ok(found)
}

impl Reader {
    /// Records, newest first, with `seq < before` (0 = from the newest), at most `limit` after filtering.
    pub fn audit<R: AuditRecord>(&self, before: u64, limit: usize, keep: impl Fn(&R) -> bool) -> Result<Vec<R>> {
        let hi = if before == 0 { u64::MAX } else { before };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let hi = seq_key(hi);
        self.kv_read().scan(
            Table::Audit,
            Bound::Unbounded,
            Bound::Excluded(&hi),
            true,
            &mut |key, v| {
                let rec: R = decode("audit", &seq_of(key).to_string(), v)?;
                if keep(&rec) {
                    out.push(rec);
                }
                Ok(out.len() < limit)
            },
        )?;
        Ok(out)
    }

    /// The head marker written with the newest record.
    pub fn audit_head(&self) -> Result<Option<AuditHead>> {
        get_json(self.kv_read(), Table::AuditHead, HEAD_KEY)
    }

    /// The sequence number of the first record written at or after `time_ms`, found by bisection
    /// (records are appended in time order), or `None` when every record is older.
    pub fn audit_first_at_or_after(&self, time_ms: i64) -> Result<Option<u64>> {
        let r = self.kv_read();
        let (Some(first), Some(last)) = (edge(r, false)?, edge(r, true)?) else {
            return Ok(None);
        };
        let (mut lo, mut hi) = (first.0, last.0 + 1);
        let time_at = |seq: u64| -> Result<Option<i64>> {
            match r.get(Table::Audit, &seq_key(seq))? {
                Some(v) => Ok(Some(decode::<Stamp>("audit", &seq.to_string(), &v)?.time_ms)),
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
                    let mut found = None;
                    let (a, b) = (seq_key(lo), seq_key(hi));
                    r.scan(
                        Table::Audit,
                        Bound::Included(&a),
                        Bound::Excluded(&b),
                        false,
                        &mut |key, v| {
                            if decode::<Stamp>("audit", &seq_of(key).to_string(), v)?.time_ms >= time_ms {
                                found = Some(seq_of(key));
                                return Ok(false);
                            }
                            Ok(true)
                        },
                    )?;
                    return Ok(found);
                }
            }
        }
        Ok((lo <= last.0).then_some(lo))
    }

    /// At most `limit` records with `seq >= from`, oldest first.
    pub fn audit_from<R: AuditRecord>(&self, from: u64, limit: usize) -> Result<Vec<R>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let lo = seq_key(from);
        self.kv_read().scan(
            Table::Audit,
            Bound::Included(&lo),
            Bound::Unbounded,
            false,
            &mut |key, v| {
                out.push(decode("audit", &seq_of(key).to_string(), v)?);
                Ok(out.len() < limit)
            },
        )?;
        Ok(out)
    }

    /// Every record in order, for verification.
    pub fn audit_all<R: AuditRecord>(&self, mut f: impl FnMut(u64, Result<R>) -> bool) -> Result<()> {
        self.kv_read().scan(
            Table::Audit,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, v| {
                let seq = seq_of(key);
                Ok(f(seq, decode("audit", &seq.to_string(), v)))
            },
        )
    }
}

impl Writer {
    /// The newest record's sequence number and hash, which the next record chains to. Read from
    /// the store in this transaction (never from memory across transactions: another daemon on
    /// the same database may have appended since).
    pub fn audit_last(&self) -> Result<Option<AuditHead>> {
        if self.row_batch() {
            // Linked at the end, under the commit lock (see `flush_audit`): a stand-in that
            // counts this batch's records; `audit_put` relinks each.
            let n = self.audit_pending.len() as u64;
            return Ok((n > 0).then(|| AuditHead {
                seq: n,
                hash: String::new(),
            }));
        }
        if let Some(known) = self.audit_last.borrow().as_ref() {
            return Ok(Some(known.clone()));
        }
        let found = match edge(self.kv_read(), true)? {
            Some((seq, v)) => {
                let link: Link = decode("audit", &seq.to_string(), &v)?;
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
    pub fn audit_put<R: AuditRecord + Clone + 'static>(&mut self, rec: &R) -> Result<()> {
        if self.row_batch() {
            let mut probe = rec.clone();
            if !probe.relink(rec.seq(), "") {
                return Err(self.needs_exclusive("an audit record that cannot be relinked"));
            }
            let mut rec = rec.clone();
            self.audit_pending.push(Box::new(move |seq, prev| {
                rec.relink(seq, prev);
                (encode(&rec), rec.hash().to_string())
            }));
            return Ok(());
        }
        self.kvw().put(Table::Audit, &seq_key(rec.seq()), &encode(rec))?;
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
        self.kvw().delete(Table::Audit, &seq_key(seq))
    }

    pub fn audit_set_head(&mut self, head: &AuditHead) -> Result<()> {
        if self.row_batch() {
            // Set by `flush_audit` with the real head.
            return Ok(());
        }
        self.kvw().put(Table::AuditHead, k(HEAD_KEY), &encode(head))
    }
}

impl Writer {
    /// Whether this is a PostgreSQL row batch (see [`super::Store::write_as`]).
    pub(super) fn row_batch(&self) -> bool {
        matches!(&self.tx, WriteTx::Pg(tx) if tx.rows())
    }

    pub(super) fn needs_exclusive(&self, what: &str) -> StoreError {
        StoreError::Conflict {
            database: String::new(),
            message: format!("a row batch touched {what}"),
            needs_exclusive: true,
        }
    }

    /// A PostgreSQL row batch: takes the commit lock and reads, in one round trip, the rows
    /// every batch writes that this one is about to change (state counts, the minute's waiting
    /// sample, metric rows) and the chain's newest record, so the flushes after it read them
    /// fresh. Nothing to do elsewhere (redb, or an exclusive batch, already reads under its lock).
    pub(super) fn lock_late(&mut self, now_ms: i64) -> Result<()> {
        let WriteTx::Pg(tx) = &self.tx else {
            return Ok(());
        };
        if !tx.rows() {
            return Ok(());
        }
        let keys = self.late_keys(now_ms);
        let audit = !self.audit_pending.is_empty();
        let WriteTx::Pg(tx) = &mut self.tx else {
            return Ok(());
        };
        if keys.is_empty() && !audit && !tx.has_writes() {
            return Ok(());
        }
        let newest = tx.lock_commit(&keys, audit)?;
        if audit {
            let head = match newest {
                Some((key, v)) => {
                    let seq = seq_of(&key);
                    let link: Link = decode("audit", &seq.to_string(), &v)?;
                    Some(AuditHead {
                        seq: link.seq,
                        hash: link.hash,
                    })
                }
                None => None,
            };
            *self.audit_last.get_mut() = head;
        }
        Ok(())
    }

    /// Links a row batch's audit records after the newest record read under the commit lock
    /// and sets the head marker: the chain stays one chain, in commit order.
    pub(super) fn flush_audit(&mut self) -> Result<()> {
        if self.audit_pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.audit_pending);
        let (mut seq, mut prev) = match self.audit_last.get_mut().take() {
            Some(h) => (h.seq, h.hash),
            None => (0, String::new()),
        };
        for rec in pending {
            seq += 1;
            let (bytes, hash) = rec(seq, &prev);
            self.kvw().put(Table::Audit, &seq_key(seq), &bytes)?;
            prev = hash;
        }
        let head = encode(&AuditHead { seq, hash: prev });
        self.kvw().put(Table::AuditHead, k(HEAD_KEY), &head)
    }
}
