//! Append-only, SHA-256 hash-chained audit log of every decision and change: starts, resumes
//! (who, when, values, reason), kills, denials, escalations, flow changes and token changes.
//! Each record's hash covers its content and the previous record's hash, so editing or deleting
//! any record breaks the chain from there on. Records are written in the same transaction as the
//! change they describe.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::engine::ids::now_ms;
use crate::store::{Reader, StoreError, Writer};

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
}

impl Entry {
    /// An administrative change (users, groups, roles, tokens).
    pub fn admin(subject: &str, action: &str, detail: &str) -> Entry {
        Entry {
            user: "admin-cli".into(),
            action: action.into(),
            reason: format!("{subject}: {detail}"),
            result: "OK".into(),
            ..Default::default()
        }
    }
}

fn digest(r: &Record) -> String {
    let content = serde_json::json!([
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
    };
    rec.hash = digest(&rec);
    w.audit_put(&rec)
}

/// Outcome of walking the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    pub first_bad_seq: u64,
    pub message: String,
}

/// Recomputes every hash and link; reports the first record that does not fit.
pub fn verify(r: &Reader) -> Result<VerifyReport, StoreError> {
    let mut prev_hash = String::new();
    let mut expected_seq = 1u64;
    let mut count = 0u64;
    let mut bad: Option<(u64, String)> = None;
    r.audit_all(|key, rec| {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                bad = Some((key, format!("record {key} is unreadable: {e}")));
                return false;
            }
        };
        let problem = if key != expected_seq {
            Some(format!("record {expected_seq} is missing (found {key} next)"))
        } else if rec.seq != key {
            Some(format!("record {key} claims sequence {}", rec.seq))
        } else if rec.prev_hash != prev_hash {
            Some(format!("record {key} does not chain to the record before it"))
        } else if digest(&rec) != rec.hash {
            Some(format!("record {key} was altered after it was written"))
        } else {
            None
        };
        if let Some(p) = problem {
            bad = Some((key, p));
            return false;
        }
        prev_hash = rec.hash;
        expected_seq += 1;
        count += 1;
        true
    })?;
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
            message: format!("{count} records, chain intact"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn chain_verifies_and_detects_an_edit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..3 {
            store
                .write(|w| {
                    append(
                        w,
                        Entry {
                            user: format!("u{i}"),
                            action: "resume".into(),
                            result: "OK".into(),
                            ..Default::default()
                        },
                    )
                })
                .unwrap();
        }
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 3);
        store
            .write(|w| -> Result<(), StoreError> {
                let mut rec = store.read()?.audit(0, 10, |r| r.seq == 2)?.remove(0);
                rec.user = "mallory".into();
                w.audit_put(&rec)
            })
            .unwrap();
        let report = verify(&store.read().unwrap()).unwrap();
        assert!(!report.ok);
        assert_eq!(report.first_bad_seq, 2);
        assert!(report.message.contains("altered"), "{}", report.message);
    }
}
