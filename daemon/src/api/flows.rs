//! Flows service: apply, validate, list, get, delete.

use tollgate_proto::v1::{self as pb, flows_server::Flows};
use tonic::{Request, Response, Status};

use super::status::from_engine;
use super::{ApiState, convert};
use crate::store::FlowHead;

pub struct FlowsService(pub ApiState);

fn flow_message(head: &FlowHead, flow: &crate::flow::Flow, source: String) -> pb::Flow {
    pb::Flow {
        namespace: head.namespace.clone(),
        id: head.id.clone(),
        revision: head.revision,
        description: flow.description.clone().unwrap_or_default(),
        source,
        inputs: flow.inputs.iter().map(convert::input_spec).collect(),
        disabled: flow.disabled,
        labels: flow.labels.clone().into_iter().collect(),
        updated_ms: head.updated_ms,
    }
}

fn diagnostics(d: Vec<crate::flow::Diagnostic>) -> Vec<pb::ValidationError> {
    d.into_iter()
        .map(|d| pb::ValidationError {
            file: d.file,
            line: d.line,
            column: d.column,
            message: d.message,
        })
        .collect()
}

fn file_name(name: &str) -> String {
    if name.is_empty() { "<flow>".into() } else { name.into() }
}

#[tonic::async_trait]
impl Flows for FlowsService {
    async fn apply(&self, req: Request<pb::ApplyFlowRequest>) -> Result<Response<pb::ApplyFlowResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let applied = self
            .0
            .ops
            .apply_flow(&p, r.source.clone(), file_name(&r.file_name))
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ApplyFlowResponse {
            flow: Some(flow_message(&applied.head, &applied.flow, r.source)),
            changed: applied.changed,
        }))
    }

    async fn validate(
        &self,
        req: Request<pb::ValidateFlowRequest>,
    ) -> Result<Response<pb::ValidateFlowResponse>, Status> {
        self.0.principal(&req).await?;
        let r = req.into_inner();
        let (errors, flow) = self
            .0
            .ops
            .validate_flow(r.source, file_name(&r.file_name))
            .await
            .map_err(from_engine)?;
        let (namespace, id) = flow.map(|f| (f.namespace, f.id)).unwrap_or_default();
        Ok(Response::new(pb::ValidateFlowResponse {
            errors: diagnostics(errors),
            namespace,
            id,
        }))
    }

    async fn list(&self, req: Request<pb::ListFlowsRequest>) -> Result<Response<pb::ListFlowsResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let prefix = req.into_inner().namespace;
        let stored = self.0.ops.list_flows(&p, &prefix).await.map_err(from_engine)?;
        Ok(Response::new(pb::ListFlowsResponse {
            flows: stored
                .into_iter()
                .map(|(head, flow, source)| flow_message(&head, &flow, source))
                .collect(),
        }))
    }

    async fn get(&self, req: Request<pb::GetFlowRequest>) -> Result<Response<pb::Flow>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let (head, flow, source) = self
            .0
            .ops
            .get_flow(&p, &r.namespace, &r.id, r.revision)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(flow_message(&head, &flow, source)))
    }

    async fn delete(&self, req: Request<pb::DeleteFlowRequest>) -> Result<Response<pb::DeleteFlowResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        self.0
            .ops
            .delete_flow(&p, &r.namespace, &r.id)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::DeleteFlowResponse {}))
    }
}
