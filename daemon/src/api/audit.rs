//! Audit service: list records (admin; filtered to namespaces the caller administers) and verify the chain.

use tollgate_proto::v1::{self as pb, audit_server::Audit};
use tonic::{Request, Response, Status};

use super::ApiState;
use super::status::from_engine;
use crate::ops::audit_log::{AuditQuery, ExportQuery};

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
        on_behalf_of: r.on_behalf_of.clone(),
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn list(&self, req: Request<pb::ListAuditRequest>) -> Result<Response<pb::ListAuditResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let query = AuditQuery {
            before_seq: r.before_seq,
            limit: if r.limit == 0 { 100 } else { r.limit as usize },
            execution_id: r.execution_id,
            user: r.user,
        };
        let records = self.0.ops.audit_list(&p, query).await.map_err(from_engine)?;
        Ok(Response::new(pb::ListAuditResponse {
            records: records.iter().map(record).collect(),
        }))
    }

    async fn export(&self, req: Request<pb::ExportAuditRequest>) -> Result<Response<pb::ExportAuditResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let query = ExportQuery {
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            after_seq: r.after_seq,
            limit: if r.limit == 0 { 1000 } else { r.limit as usize },
        };
        let (records, done) = self.0.ops.audit_export(&p, query).await.map_err(from_engine)?;
        Ok(Response::new(pb::ExportAuditResponse {
            records: records.iter().map(record).collect(),
            done,
        }))
    }

    async fn verify(&self, req: Request<pb::VerifyAuditRequest>) -> Result<Response<pb::VerifyAuditResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let report = self.0.ops.audit_verify(&p).await.map_err(from_engine)?;
        Ok(Response::new(pb::VerifyAuditResponse {
            ok: report.ok,
            records: report.records,
            first_bad_seq: report.first_bad_seq,
            message: report.message,
        }))
    }
}
