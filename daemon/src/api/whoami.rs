//! Auth.Whoami: who the token belongs to and what it may do.

use tollgate_proto::v1::{self as pb, auth_server::Auth as AuthService};
use tonic::{Request, Response, Status};

use super::ApiState;

pub struct WhoamiService(pub ApiState);

#[tonic::async_trait]
impl AuthService for WhoamiService {
    async fn whoami(&self, req: Request<pb::WhoamiRequest>) -> Result<Response<pb::WhoamiResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let acting_for = self
            .0
            .ops
            .acting_for_now(&p)
            .await
            .map_err(super::status::from_engine)?
            .into_iter()
            .map(|d| pb::ActingFor {
                user: d.user,
                groups: d.groups,
                namespace: d.namespace,
            })
            .collect();
        Ok(Response::new(pb::WhoamiResponse {
            acting_for,
            user: p.user.clone(),
            groups: p.groups.clone(),
            roles: p
                .grants
                .iter()
                .map(|g| pb::RoleBinding {
                    role: g.role.as_str().into(),
                    namespace: g.namespace.clone(),
                    via_group: g.via_group.clone().unwrap_or_default(),
                })
                .collect(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            tenant: self.0.ops.tenant().to_string(),
        }))
    }
}
