//! Flows service: apply, validate, list, get, delete.

use tollgate_proto::v1::{self as pb, flows_server::Flows};
use tonic::{Request, Response, Status};

use super::status::from_engine;
use super::{ApiState, convert, require};
use crate::auth::Role;
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

/// Parses and validates a flow source off the async runtime: parsing is CPU work that grows with
/// the source. Hands the source back for the caller's further use.
async fn load(
    source: String,
    file: String,
) -> Result<(Result<crate::flow::Flow, Vec<crate::flow::Diagnostic>>, String), Status> {
    tokio::task::spawn_blocking(move || (crate::flow::load(&source, &file), source))
        .await
        .map_err(|_| Status::unavailable("shutting down"))
}

#[tonic::async_trait]
impl Flows for FlowsService {
    async fn apply(&self, req: Request<pb::ApplyFlowRequest>) -> Result<Response<pb::ApplyFlowResponse>, Status> {
        let p = self.0.principal(&req)?;
        // The namespace is only known once the source is parsed, but a caller who is admin of no
        // namespace at all may apply nothing: refuse before spending any work on the source.
        if p.visible_namespaces(Role::Admin)
            .is_some_and(|prefixes| prefixes.is_empty())
        {
            return Err(Status::permission_denied(format!(
                "{} needs the admin role on a namespace to apply flows",
                p.user
            )));
        }
        let r = req.into_inner();
        let file = file_name(&r.file_name);
        // Validate first so that the namespace is known before authorizing.
        let (loaded, source) = load(r.source, file.clone()).await?;
        let flow = loaded
            .map_err(|d| Status::invalid_argument(d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")))?;
        require(&p, Role::Admin, &flow.namespace)?;
        let applied = self
            .0
            .engine
            .apply_flow(source.clone(), file)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ApplyFlowResponse {
            flow: Some(flow_message(&applied.head, &applied.flow, source)),
            changed: applied.changed,
        }))
    }

    async fn validate(
        &self,
        req: Request<pb::ValidateFlowRequest>,
    ) -> Result<Response<pb::ValidateFlowResponse>, Status> {
        self.0.principal(&req)?;
        let r = req.into_inner();
        let file = file_name(&r.file_name);
        // Any signed-in caller may validate: the depth bound keeps the parse cheap, and it runs
        // off the runtime.
        let (errors, namespace, id) = match load(r.source, file).await?.0 {
            Ok(f) => (vec![], f.namespace, f.id),
            Err(d) => (diagnostics(d), String::new(), String::new()),
        };
        Ok(Response::new(pb::ValidateFlowResponse { errors, namespace, id }))
    }

    async fn list(&self, req: Request<pb::ListFlowsRequest>) -> Result<Response<pb::ListFlowsResponse>, Status> {
        let p = self.0.principal(&req)?;
        let prefix = req.into_inner().namespace;
        let heads = {
            let engine = self.0.engine.clone();
            tokio::task::spawn_blocking(move || engine.flows().list())
                .await
                .map_err(|_| Status::unavailable("shutting down"))?
                .map_err(from_engine)?
        };
        let mut flows = Vec::new();
        for h in heads {
            if !crate::store::namespace_within(&h.namespace, &prefix) || !p.may(Role::Viewer, &h.namespace) {
                continue;
            }
            let engine = self.0.engine.clone();
            let (ns, id) = (h.namespace.clone(), h.id.clone());
            let got = tokio::task::spawn_blocking(move || engine.flows().get(&ns, &id, 0))
                .await
                .map_err(|_| Status::unavailable("shutting down"))?;
            if let Ok((head, flow, source)) = got {
                flows.push(flow_message(&head, &flow, source));
            }
        }
        flows.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        Ok(Response::new(pb::ListFlowsResponse { flows }))
    }

    async fn get(&self, req: Request<pb::GetFlowRequest>) -> Result<Response<pb::Flow>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Viewer, &r.namespace)?;
        let engine = self.0.engine.clone();
        let (head, flow, source) =
            tokio::task::spawn_blocking(move || engine.flows().get(&r.namespace, &r.id, r.revision))
                .await
                .map_err(|_| Status::unavailable("shutting down"))?
                .map_err(from_engine)?;
        Ok(Response::new(flow_message(&head, &flow, source)))
    }

    async fn delete(&self, req: Request<pb::DeleteFlowRequest>) -> Result<Response<pb::DeleteFlowResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Admin, &r.namespace)?;
        let engine = self.0.engine.clone();
        tokio::task::spawn_blocking(move || engine.flows().delete(&r.namespace, &r.id))
            .await
            .map_err(|_| Status::unavailable("shutting down"))?
            .map_err(from_engine)?;
        Ok(Response::new(pb::DeleteFlowResponse {}))
    }
}
