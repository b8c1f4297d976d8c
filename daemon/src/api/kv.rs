//! Kv and Secrets services: admin of the namespace only; secret values never leave the daemon.

use std::sync::Arc;

use tollgate_proto::v1::{self as pb, kv_server::Kv, secrets_server::Secrets};
use tonic::{Request, Response, Status};

use super::{ApiState, require};
use crate::auth::Role;
use crate::kv::{self, KvError};
use crate::secrets::SecretBox;
use crate::store::KvEntry;

pub struct KvService(pub ApiState);

pub struct SecretsService {
    pub state: ApiState,
    pub secrets: Arc<SecretBox>,
}

fn status(e: KvError) -> Status {
    match e {
        KvError::Store(s) => {
            tracing::error!(error = %s, "storage error");
            Status::internal("storage error; see the daemon log")
        }
        KvError::Exists(_) => Status::already_exists(e.to_string()),
        other => Status::invalid_argument(other.to_string()),
    }
}

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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Status> + Send + 'static) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Status::unavailable("shutting down"))?
}

fn check_namespace(ns: &str) -> Result<(), Status> {
    if crate::flow::parse::valid_namespace(ns) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!("invalid namespace `{ns}`")))
    }
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn get(&self, req: Request<pb::KvKey>) -> Result<Response<pb::KvValue>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.0.engine.store().clone();
        let found = blocking(move || {
            kv::get(&store, &r.namespace, &r.key)
                .map_err(status)?
                .map(|e| message(&r.namespace, &r.key, &e))
                .ok_or_else(|| Status::not_found(format!("no KV entry `{}` in namespace `{}`", r.key, r.namespace)))
        })
        .await?;
        Ok(Response::new(found))
    }

    async fn set(&self, req: Request<pb::KvSetRequest>) -> Result<Response<pb::KvValue>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        check_namespace(&r.namespace)?;
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.0.engine.store().clone();
        let v = blocking(move || {
            let (value, _) = kv::typed(&r.key, &r.value, &r.kind).map_err(status)?;
            let ttl = Some(r.ttl.as_str()).filter(|t| !t.is_empty());
            let e = kv::set(&store, &r.namespace, &r.key, value, ttl, true).map_err(status)?;
            Ok(message(&r.namespace, &r.key, &e))
        })
        .await?;
        Ok(Response::new(v))
    }

    async fn list(&self, req: Request<pb::KvListRequest>) -> Result<Response<pb::KvListResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.0.engine.store().clone();
        let entries = blocking(move || {
            Ok(kv::list(&store, &r.namespace)
                .map_err(status)?
                .iter()
                .map(|(k, e)| message(&r.namespace, k, e))
                .collect())
        })
        .await?;
        Ok(Response::new(pb::KvListResponse { entries }))
    }

    async fn delete(&self, req: Request<pb::KvKey>) -> Result<Response<pb::KvDeleteResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.0.engine.store().clone();
        let existed = blocking(move || kv::delete(&store, &r.namespace, &r.key).map_err(status)).await?;
        Ok(Response::new(pb::KvDeleteResponse { existed }))
    }
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn set(&self, req: Request<pb::SecretSetRequest>) -> Result<Response<pb::SecretSetResponse>, Status> {
        let p = self.state.principal(&req)?;
        let r = req.into_inner();
        check_namespace(&r.namespace)?;
        require(&p, Role::Admin, &r.namespace)?;
        if r.name.is_empty()
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(Status::invalid_argument(format!("invalid secret name `{}`", r.name)));
        }
        let sealed = self.secrets.seal(&r.value);
        let store = self.state.engine.store().clone();
        blocking(move || {
            store
                .write(|w| w.put_secret_sealed(&r.namespace, &r.name, &sealed))
                .map_err(|_| Status::internal("storage error; see the daemon log"))
        })
        .await?;
        Ok(Response::new(pb::SecretSetResponse {}))
    }

    async fn list(&self, req: Request<pb::SecretListRequest>) -> Result<Response<pb::SecretListResponse>, Status> {
        let p = self.state.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.state.engine.store().clone();
        let names = blocking(move || {
            store
                .read()
                .and_then(|rd| rd.secret_names(&r.namespace))
                .map_err(|_| Status::internal("storage error; see the daemon log"))
        })
        .await?;
        Ok(Response::new(pb::SecretListResponse { names }))
    }

    async fn delete(&self, req: Request<pb::SecretKey>) -> Result<Response<pb::SecretDeleteResponse>, Status> {
        let p = self.state.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let store = self.state.engine.store().clone();
        let existed = blocking(move || {
            store
                .write(|w| w.delete_secret(&r.namespace, &r.name))
                .map_err(|_| Status::internal("storage error; see the daemon log"))
        })
        .await?;
        Ok(Response::new(pb::SecretDeleteResponse { existed }))
    }
}
