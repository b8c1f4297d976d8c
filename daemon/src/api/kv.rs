//! KV and Secrets services: namespace admins only (checked and audited by the operations layer).

use tollgate_proto::v1::{self as pb, kv_server::Kv, secrets_server::Secrets};
use tonic::{Request, Response, Status};

use super::ApiState;
use super::status::from_engine;
use crate::store::KvEntry;

pub struct KvService(pub ApiState);

pub struct SecretsService(pub ApiState);

fn message(namespace: &str, key: &str, e: &KvEntry) -> pb::KvValue {
    pb::KvValue {
        namespace: namespace.into(),
        key: key.into(),
        value_json: e.value.to_string(),
        kind: e.kind.clone(),
        expires_ms: e.expires_ms.unwrap_or(0),
        updated_ms: e.updated_ms,
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, req: Request<pb::KvKey>) -> Result<Response<pb::KvValue>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let e = self.0.ops.kv_get(&p, &r.namespace, &r.key).await.map_err(from_engine)?;
        Ok(Response::new(message(&r.namespace, &r.key, &e)))
    }

    async fn set(&self, req: Request<pb::KvSetRequest>) -> Result<Response<pb::KvValue>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let ttl = Some(r.ttl.as_str()).filter(|t| !t.is_empty());
        let e = self
            .0
            .ops
            .kv_set(&p, &r.namespace, &r.key, &r.value, &r.kind, ttl)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(message(&r.namespace, &r.key, &e)))
    }

    async fn list(&self, req: Request<pb::KvListRequest>) -> Result<Response<pb::KvListResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let entries = self.0.ops.kv_list(&p, &r.namespace).await.map_err(from_engine)?;
        Ok(Response::new(pb::KvListResponse {
            entries: entries.iter().map(|(k, e)| message(&r.namespace, k, e)).collect(),
        }))
    }

    async fn delete(&self, req: Request<pb::KvKey>) -> Result<Response<pb::KvDeleteResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let existed = self
            .0
            .ops
            .kv_delete(&p, &r.namespace, &r.key)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::KvDeleteResponse { existed }))
    }
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn set(&self, req: Request<pb::SecretSetRequest>) -> Result<Response<pb::SecretSetResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        self.0
            .ops
            .secret_set(&p, &r.namespace, &r.name, &r.value)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::SecretSetResponse {}))
    }

    async fn list(&self, req: Request<pb::SecretListRequest>) -> Result<Response<pb::SecretListResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let names = self.0.ops.secret_names(&p, &r.namespace).await.map_err(from_engine)?;
        Ok(Response::new(pb::SecretListResponse { names }))
    }

    async fn delete(&self, req: Request<pb::SecretKey>) -> Result<Response<pb::SecretDeleteResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let existed = self
            .0
            .ops
            .secret_delete(&p, &r.namespace, &r.name)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::SecretDeleteResponse { existed }))
    }
}
