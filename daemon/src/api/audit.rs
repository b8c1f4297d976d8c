//! Audit service: list records (admin; filtered to namespaces the caller administers) and verify the chain.

use tollgate_proto::v1::{self as pb, audit_server::Audit};
use tonic::{Request, Response, Status};

use super::ApiState;
use crate::auth::Role;

pub struct AuditService(pub ApiState);

fn record(r: &crate::audit::Record) -> pb::AuditRecord {
    pb::AuditRecord {
        seq: r.seq,
        time_ms: r.time_ms,
        user: r.user.clone(),
        action: r.action.clone(),
        namespace: r.namespace.clone(),
        flow_id: r.flow_id.clone(),
        execution_id: r.execution_id.clone(),
        task_id: r.task_id.clone(),
        values_json: if r.values.is_null() {
            String::new()
        } else {
            r.values.to_string()
        },
        reason: r.reason.clone(),
        result: r.result.clone(),
        hash: r.hash.clone(),
        prev_hash: r.prev_hash.clone(),
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list(&self, req: Request<pb::ListAuditRequest>) -> Result<Response<pb::ListAuditResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        let visible = p.visible_namespaces(Role::Admin);
        if visible.as_ref().is_some_and(|v| v.is_empty()) {
            return Err(Status::permission_denied(format!(
                "{} needs the admin role to read the audit log",
                p.user
            )));
        }
        let store = self.0.engine.store().clone();
        let limit = if r.limit == 0 { 100 } else { r.limit.min(10_000) } as usize;
        let records = tokio::task::spawn_blocking(move || {
            store.read().and_then(|rd| {
                rd.audit(r.before_seq, limit, |rec| {
                    (r.execution_id.is_empty() || rec.execution_id == r.execution_id)
                        && (r.user.is_empty() || rec.user.eq_ignore_ascii_case(&r.user))
                        && visible.as_ref().is_none_or(|v| {
                            !rec.namespace.is_empty()
                                && v.iter().any(|ns| crate::store::namespace_within(&rec.namespace, ns))
                        })
                })
            })
        })
        .await
        .map_err(|_| Status::unavailable("shutting down"))?
        .map_err(|_| Status::internal("storage error; see the daemon log"))?;
        Ok(Response::new(pb::ListAuditResponse {
            records: records.iter().map(record).collect(),
        }))
    }

    async fn verify(&self, req: Request<pb::VerifyAuditRequest>) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let p = self.0.principal(&req)?;
        if !p.may(Role::Admin, "") {
            return Err(Status::permission_denied(format!(
                "{} needs the admin role on every namespace to verify the audit log",
                p.user
            )));
        }
        let store = self.0.engine.store().clone();
        let report = tokio::task::spawn_blocking(move || store.read().and_then(|r| crate::audit::verify(&r)))
            .await
            .map_err(|_| Status::unavailable("shutting down"))?
            .map_err(|_| Status::internal("storage error; see the daemon log"))?;
        Ok(Response::new(pb::VerifyAuditResponse {
            ok: report.ok,
            records: report.records,
            first_bad_seq: report.first_bad_seq,
            message: report.message,
        }))
    }
}
