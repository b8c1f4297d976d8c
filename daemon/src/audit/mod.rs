//! Append-only, SHA-256 hash-chained audit log of every decision and change: starts, resumes
//! (who, when, values, reason), kills, denials, escalations, flow changes and token changes.
//! Each record's hash covers its content and the previous record's hash, so editing or deleting
//! any record breaks the chain from there on. Records are written in the same transaction as the
//! change they describe.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::engine::ids::now_ms;
use crate::store::{AuditRecord, Reader, StoreError, Writer};

/// The newest record's place in the chain, stored beside it.
pub use crate::store::AuditHead as Head;

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub time_ms: i64,
    pub user: String,
    pub action: String,
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    pub task_id: String,
    /// Values with secrets already masked.
    pub values: Value,
    pub reason: String,
    pub result: String,
    pub prev_hash: String,
    pub hash: String,
    /// The user a delegate decided for ("bob for ana"); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub on_behalf_of: String,
}

impl AuditRecord for Record {
    fn seq(&self) -> u64 {
        self.seq
    }
    fn hash(&self) -> &str {
        &self.hash
    }
    fn relink(&mut self, seq: u64, prev_hash: &str) -> bool {
        self.seq = seq;
        self.prev_hash = prev_hash.to_string();
        self.hash = digest(self);
        true
    }
}

/// What a caller records; the chain fields are filled by [`append`].
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub user: String,
    pub action: String,
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
    pub task_id: String,
    pub values: Value,
    pub reason: String,
    pub result: String,
    pub on_behalf_of: String,
}

fn digest(r: &Record) -> String {
    let mut content = serde_json::json!([
        r.seq,
        r.time_ms,
        r.user,
        r.action,
        r.namespace,
        r.flow_id,
        r.execution_id,
        r.task_id,
        r.values,
        r.reason,
        r.result,
        r.prev_hash
    ]);
    // Appended only when set, so records written before delegations existed keep their hashes.
    if !r.on_behalf_of.is_empty()
        && let Some(a) = content.as_array_mut()
    {
        a.push(Value::String(r.on_behalf_of.clone()));
    }
    let mut h = Sha256::new();
    h.update(content.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Appends a record inside the caller's write transaction.
pub fn append(w: &mut Writer, e: Entry) -> Result<(), StoreError> {
    let last = w.audit_last()?;
    let mut rec = Record {
        seq: last.as_ref().map(|l| l.seq + 1).unwrap_or(1),
        time_ms: now_ms(),
        user: e.user,
        action: e.action,
        namespace: e.namespace,
        flow_id: e.flow_id,
        execution_id: e.execution_id,
        task_id: e.task_id,
        values: e.values,
        reason: e.reason,
        result: e.result,
        prev_hash: last.map(|l| l.hash).unwrap_or_default(),
        hash: String::new(),
        on_behalf_of: e.on_behalf_of,
    };
    rec.hash = digest(&rec);
    w.audit_put(&rec)?;
    w.audit_set_head(&Head {
        seq: rec.seq,
        hash: rec.hash,
    })
}

/// Outcome of walking the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    pub first_bad_seq: u64,
    pub message: String,
}

/// Recomputes every hash and link and checks the newest record against the head marker;
/// reports the first record that does not fit. A chain rewritten from the first record on,
/// head included, cannot be told apart from the original: compare the head hash this prints
/// with one kept elsewhere to rule that out.
pub fn verify(r: &Reader) -> Result<VerifyReport, StoreError> {
    let mut prev_hash = String::new();
    let mut expected_seq = 1u64;
    let mut count = 0u64;
    let mut bad: Option<(u64, String)> = None;
    r.audit_all(|key, rec: Result<Record, StoreError>| {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                bad = Some((key, format!("record {key} is unreadable: {e}")));
                return false;
            }
        };
        let problem = if key != expected_seq {
            Some((
                expected_seq,
                format!("record {expected_seq} is missing (found {key} next)"),
            ))
        } else if rec.seq != key {
            Some((key, format!("record {key} claims sequence {}", rec.seq)))
        } else if rec.prev_hash != prev_hash {
            Some((key, format!("record {key} does not chain to the record before it")))
        } else if digest(&rec) != rec.hash {
            Some((key, format!("record {key} was altered after it was written")))
        } else {
            None
        };
        if problem.is_some() {
            bad = problem;
            return false;
        }
        prev_hash = rec.hash;
        expected_seq += 1;
        count += 1;
        true
    })?;
    if bad.is_none() {
        let last_seq = expected_seq - 1;
        bad = match r.audit_head()? {
            None if last_seq == 0 => None,
            None => Some((1, "the chain's head marker is missing".to_string())),
            Some(h) if h.seq > last_seq => Some((
                last_seq + 1,
                format!(
                    "records {} to {} were deleted from the end of the chain",
                    last_seq + 1,
                    h.seq
                ),
            )),
            Some(h) if h.seq < last_seq || h.hash != prev_hash => Some((
                h.seq.max(1),
                format!("the chain's head marker does not match record {last_seq}"),
            )),
            Some(_) => None,
        };
    }
    Ok(match bad {
        Some((seq, message)) => VerifyReport {
            ok: false,
            records: count,
            first_bad_seq: seq,
            message,
        },
        None => VerifyReport {
            ok: true,
            records: count,
            first_bad_seq: 0,
            message: if count == 0 {
                "no records yet".to_string()
            } else {
                format!("{count} records, chain intact; head {prev_hash}")
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..n {
            store
                .write(|w| {
                    append(
                        w,
                        Entry {
                            user: format!("u{i}"),
                            action: "resume".into(),
                            values: serde_json::json!({"approved": i % 2 == 0, "note": "ü"}),
                            result: "OK".into(),
                            ..Default::default()
                        },
                    )
                })
                .unwrap();
        }
        (dir, store)
    }

    fn record(store: &Store, seq: u64) -> Record {
        store
            .read()
            .unwrap()
            .audit(0, 1, |r: &Record| r.seq == seq)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn an_empty_and_an_intact_chain_verify() {
        let (_d, store) = store_with(0);
        assert!(verify(&store.read().unwrap()).unwrap().ok);
        let (_d, store) = store_with(3);
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 3);
        assert!(report.message.contains(&record(&store, 3).hash), "{}", report.message);
        assert_eq!(record(&store, 2).prev_hash, record(&store, 1).hash);
    }

    #[test]
    fn an_edited_record_is_detected() {
        let (_d, store) = store_with(3);
        let mut rec = record(&store, 2);
        rec.values["approved"] = serde_json::json!(true);
        store.write(|w| w.audit_put(&rec)).unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(!report.ok);
        assert_eq!((report.first_bad_seq, report.records), (2, 1));
        assert!(report.message.contains("altered"), "{}", report.message);
    }

    #[test]
    fn a_record_rehashed_after_an_edit_breaks_the_next_link() {
        let (_d, store) = store_with(3);
        let mut rec = record(&store, 2);
        rec.user = "mallory".into();
        rec.hash = digest(&rec);
        store.write(|w| w.audit_put(&rec)).unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert_eq!((report.ok, report.first_bad_seq), (false, 3), "{report:?}");
    }

    #[test]
    fn deleted_records_are_detected_in_the_middle_and_at_the_end() {
        let (_d, store) = store_with(4);
        store.write(|w| w.audit_delete(2)).unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert_eq!((report.ok, report.first_bad_seq), (false, 2), "{report:?}");
        assert!(report.message.contains("missing"), "{}", report.message);

        let (_d, store) = store_with(4);
        store.write(|w| w.audit_delete(4)).unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert_eq!((report.ok, report.first_bad_seq), (false, 4), "{report:?}");
        assert!(report.message.contains("deleted"), "{}", report.message);
    }

    /// Many appends in one transaction (a writer batch) chain to each other, also after a
    /// record is removed in the same transaction, as they do across transactions.
    #[test]
    fn appends_in_one_transaction_chain_like_separate_ones() {
        let entry = |action: &str| Entry {
            user: "ana@example.com".into(),
            action: action.into(),
            result: "OK".into(),
            ..Default::default()
        };
        let (_d, store) = store_with(0);
        store.write(|w| append(w, entry("first"))).unwrap();
        let last = store
            .write(|w| {
                for i in 0..5 {
                    append(w, entry(&format!("batch {i}")))?;
                }
                w.audit_last()
            })
            .unwrap()
            .expect("a newest record");
        let rec = record(&store, 6);
        assert_eq!((last.seq, last.hash.as_str()), (6, rec.hash.as_str()));
        assert_eq!(rec.action, "batch 4");
        assert!(verify(&store.read().unwrap()).unwrap().ok);
        let last = store
            .write(|w| {
                append(w, entry("doomed"))?;
                w.audit_delete(7)?;
                append(w, entry("after"))?;
                w.audit_last()
            })
            .unwrap()
            .expect("a newest record");
        let rec = record(&store, 7);
        assert_eq!((last.seq, last.hash.as_str()), (7, rec.hash.as_str()));
        assert_eq!(rec.action, "after");
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 7);
    }

    #[test]
    fn appending_after_verification_continues_the_chain() {
        let (_d, store) = store_with(2);
        store
            .write(|w| {
                append(
                    w,
                    Entry {
                        user: "later".into(),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(report.ok && report.records == 3, "{report:?}");
    }

    /// The export's start: the first record at or after a time, by bisection, also with equal
    /// times, before the first record, after the last, and around a deleted record.
    #[test]
    fn the_first_record_at_or_after_a_time_is_found() {
        let (_d, store) = store_with(7);
        let times = [10, 20, 20, 20, 30, 40, 50];
        store
            .write(|w| {
                for (i, t) in times.iter().enumerate() {
                    let mut rec = record(&store, i as u64 + 1);
                    rec.time_ms = *t;
                    w.audit_put(&rec)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let at = |t: i64| store.read().unwrap().audit_first_at_or_after(t).unwrap();
        assert_eq!(at(0), Some(1));
        assert_eq!(at(10), Some(1));
        assert_eq!(at(11), Some(2));
        assert_eq!(at(20), Some(2));
        assert_eq!(at(21), Some(5));
        assert_eq!(at(50), Some(7));
        assert_eq!(at(51), None);
        store.write(|w| w.audit_delete(4).map(|_| ())).unwrap();
        assert_eq!(at(21), Some(5));
        assert_eq!(at(25), Some(5));
        let page: Vec<Record> = store.read().unwrap().audit_from(2, 3).unwrap();
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3, 5]);
    }
}
