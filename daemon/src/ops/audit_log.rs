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

    /// Walks the whole chain: only an admin of every namespace may (it reads every record).
    pub async fn audit_verify(&self, p: &Principal) -> Result<VerifyReport> {
        self.authorize(p, Role::Admin, "audit.verify", Target::namespace(""))
            .await?;
        self.read_store(|r| crate::audit::verify(r).map_err(EngineError::from))
            .await
    }
}
