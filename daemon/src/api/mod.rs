//! gRPC services: thin. Each handler decodes, authenticates and calls the operations layer
//! ([`crate::ops`]), which authorizes and audits, then encodes the answer.

pub mod audit;
pub mod convert;
pub mod delegations;
pub mod executions;
pub mod flows;
pub mod kv;
pub mod stats;
pub mod status;
pub mod whoami;

use std::sync::Arc;

use tonic::{Request, Status};

use crate::auth::Principal;
use crate::ops::{Door, Ops};

/// What every service (gRPC and HTTP) holds: the one way in.
#[derive(Clone)]
pub struct ApiState {
    pub ops: Arc<Ops>,
    /// Sessions of the approval page (signing key, `Secure` under TLS, signed-out sessions).
    pub pages: Arc<crate::http::page_session::PageSessions>,
}

impl ApiState {
    /// The caller of a request, or UNAUTHENTICATED (audited by the operations layer).
    pub async fn principal<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let header = req.metadata().get("authorization").and_then(|v| v.to_str().ok());
        self.ops
            .authenticate(header, Door::Grpc)
            .await
            .map_err(status::from_engine)
    }
}
