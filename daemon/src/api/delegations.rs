//! Delegations service: out-of-office delegation of HumanTask decisions.

use tollgate_proto::v1::{self as pb, delegations_server::Delegations};
use tonic::{Request, Response, Status};

use super::ApiState;
use super::status::from_engine;
use crate::ops::NewDelegation;
use crate::store::DelegationRecord;

pub struct DelegationsService(pub ApiState);

pub fn delegation(d: &DelegationRecord) -> pb::Delegation {
    pb::Delegation {
        id: d.id.clone(),
        from_user: d.from_user.clone(),
        to_user: d.to_user.clone(),
        namespace: d.namespace.clone(),
        from_ms: d.from_ms,
        until_ms: d.until_ms,
        created_by: d.created_by.clone(),
        created_ms: d.created_ms,
        revoked_ms: d.revoked_ms.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl Delegations for DelegationsService {
    async fn create(&self, req: Request<pb::CreateDelegationRequest>) -> Result<Response<pb::Delegation>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let d = self
            .0
            .ops
            .delegate(
                &p,
                NewDelegation {
                    from_user: r.for_user,
                    to_user: r.to_user,
                    from_date: r.from_date,
                    until_date: r.until_date,
                    namespace: r.namespace,
                },
            )
            .await
            .map_err(from_engine)?;
        Ok(Response::new(delegation(&d)))
    }

    async fn list(
        &self,
        req: Request<pb::ListDelegationsRequest>,
    ) -> Result<Response<pb::ListDelegationsResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let list = self
            .0
            .ops
            .delegations(&p, req.get_ref().all)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ListDelegationsResponse {
            delegations: list.iter().map(delegation).collect(),
        }))
    }

    async fn revoke(&self, req: Request<pb::RevokeDelegationRequest>) -> Result<Response<pb::Delegation>, Status> {
        let p = self.0.principal(&req).await?;
        let d = self
            .0
            .ops
            .revoke_delegation(&p, &req.get_ref().id)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(delegation(&d)))
    }
}
