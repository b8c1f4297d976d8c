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

    async fn list_triggers(
        &self,
        req: Request<pb::ListTriggersRequest>,
    ) -> Result<Response<pb::ListTriggersResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let triggers = self
            .0
            .ops
            .list_triggers(&p, &r.namespace, &r.flow_id)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ListTriggersResponse {
            triggers: triggers.into_iter().map(trigger_message).collect(),
        }))
    }

    async fn set_trigger(&self, req: Request<pb::SetTriggerRequest>) -> Result<Response<pb::TriggerInfo>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let t = self
            .0
            .ops
            .set_trigger(&p, &r.namespace, &r.flow_id, &r.trigger_id, r.enabled)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(trigger_message(t)))
    }
}

fn trigger_message(t: crate::engine::trigger_switch::TriggerView) -> pb::TriggerInfo {
    let switched = t.switched.as_ref();
    pb::TriggerInfo {
        namespace: t.namespace,
        flow_id: t.flow_id,
        trigger_id: t.trigger_id,
        r#type: t.type_name,
        disabled_in_source: t.disabled_in_source,
        switched_off: switched.is_some_and(|s| s.disabled),
        switched_by: switched.map(|s| s.by.clone()).unwrap_or_default(),
        switched_ms: switched.map(|s| s.at_ms).unwrap_or_default(),
        next_fire_ms: t.next_fire_ms.unwrap_or_default(),
    }
}
