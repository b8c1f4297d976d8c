//! Reading and verifying the audit log.

use super::{Ops, Target};
use crate::audit::{Record, VerifyReport};
use crate::auth::{Principal, Role};
use crate::engine::{EngineError, Result};

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub before_seq: u64,
    pub limit: usize,
    pub execution_id: String,
    pub user: String,
}

/// Which run of the chain to export (see [`Ops::audit_export`]).
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    pub since_ms: i64,
    /// 0 = up to the newest record.
    pub until_ms: i64,
    /// 0 = the first page; else the last seq the previous page returned.
    pub after_seq: u64,
    pub limit: usize,
}

impl Ops {
    /// Records (newest first) of namespaces the caller administers.
    pub async fn audit_list(&self, p: &Principal, q: AuditQuery) -> Result<Vec<Record>> {
        self.require_somewhere(p, Role::Admin, "audit.read").await?;
        let visible = p.visible_namespaces(Role::Admin);
        self.read_store(move |r| {
            Ok(r.audit(q.before_seq, q.limit.clamp(1, 10_000), |rec: &Record| {
                (q.execution_id.is_empty() || rec.execution_id == q.execution_id)
                    && (q.user.is_empty() || rec.user.eq_ignore_ascii_case(&q.user))
                    && visible.as_ref().is_none_or(|v| {
                        !rec.namespace.is_empty()
                            && v.iter().any(|ns| crate::store::namespace_within(&rec.namespace, ns))
                    })
            })?)
        })
        .await
    }

    /// One page of an export: a contiguous run of the chain, oldest first, from the first record
    /// at or after `q.since_ms` to the last one before `q.until_ms`. Only an admin of every
    /// namespace may (an export must hold every record for its chain to verify); the start of an
    /// export is itself audited.
    pub async fn audit_export(&self, p: &Principal, q: ExportQuery) -> Result<(Vec<Record>, bool)> {
        self.authorize(p, Role::Admin, "audit.export", Target::namespace(""))
            .await?;
        if q.after_seq == 0 {
            let entry = crate::audit::Entry {
                user: p.user.clone(),
                action: "audit.export".into(),
                values: serde_json::json!({
                    "since": if q.since_ms > 0 { crate::engine::context::iso_ms(q.since_ms) } else { String::new() },
                    "until": if q.until_ms > 0 { crate::engine::context::iso_ms(q.until_ms) } else { String::new() },
                }),
                result: "OK".into(),
                ..Default::default()
            };
            self.engine.record(entry).await?;
        }
        let limit = q.limit.clamp(1, 10_000);
        self.read_store(move |r| {
            let start = if q.after_seq > 0 {
                Some(q.after_seq + 1)
            } else {
                r.audit_first_at_or_after(q.since_ms)?
            };
            let Some(start) = start else {
                return Ok((vec![], true));
            };
            let mut page: Vec<Record> = r.audit_from(start, limit)?;
            let full = page.len() == limit;
            let before_until = page.iter().position(|rec| q.until_ms > 0 && rec.time_ms >= q.until_ms);
            if let Some(cut) = before_until {
                page.truncate(cut);
                return Ok((page, true));
            }
            Ok((page, !full))
        })
        .await
    }

    /// Walks the whole chain: only an admin of every namespace may (it reads every record).
    pub async fn audit_verify(&self, p: &Principal) -> Result<VerifyReport> {
        self.authorize(p, Role::Admin, "audit.verify", Target::namespace(""))
            .await?;
        self.read_store(|r| crate::audit::verify(r).map_err(EngineError::from))
            .await
    }
}
