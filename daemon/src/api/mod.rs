//! gRPC services: thin. Each handler authenticates, authorizes, calls the engine and translates.

pub mod audit;
pub mod convert;
pub mod executions;
pub mod flows;
pub mod kv;
pub mod status;
pub mod whoami;

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::{Auth, AuthError, Principal, Role};
use crate::engine::Engine;

/// What every service holds.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    pub auth: Arc<Auth>,
    pub tenant: String,
    /// Sessions of the approval page (signing key, `Secure` under TLS, signed-out sessions).
    pub pages: Arc<crate::http::page_session::PageSessions>,
}

impl ApiState {
    /// The caller of a request, or UNAUTHENTICATED.
    pub fn principal<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let header = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
        self.auth.authenticate(header).map_err(|e| match e {
            AuthError::Unauthenticated => Status::unauthenticated("invalid or missing bearer token"),
            AuthError::Storage => Status::internal("cannot check the token; see the daemon log"),
        })
    }
}

/// PERMISSION_DENIED unless `p` holds `role` on `namespace`.
pub fn require(p: &Principal, role: Role, namespace: &str) -> Result<(), Status> {
    if p.may(role, namespace) {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "{} needs the {} role on namespace `{namespace}`",
            p.user,
            role.as_str()
        )))
    }
}
