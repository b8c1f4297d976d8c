//! Flows: apply, validate, list, get, delete.

use std::sync::Arc;

use super::{Ops, Target};
use crate::auth::{Principal, Role};
use crate::engine::flows::Applied;
use crate::engine::trigger_switch::TriggerView;
use crate::engine::{EngineError, Result};
use crate::flow::{Diagnostic, Flow};
use crate::store::FlowHead;

/// A flow as stored: its head, the parsed flow and its source.
pub type StoredFlow = (FlowHead, Arc<Flow>, String);

impl Ops {
    /// Applies a flow source. Callers who administer no namespace at all are refused before the
    /// source is parsed (parsing costs CPU); then the role is checked on the flow's namespace.
    pub async fn apply_flow(&self, p: &Principal, source: String, file: String) -> Result<Applied> {
        self.require_somewhere(p, Role::Admin, "flow.apply").await?;
        let flow = self.engine.parse_flow(source.clone(), file).await?;
        let target = Target {
            namespace: flow.namespace.clone(),
            flow_id: flow.id.clone(),
            ..Default::default()
        };
        self.authorize(p, Role::Admin, "flow.apply", target).await?;
        self.engine.apply_flow(flow, source, &p.user).await
    }

    /// Every problem of a flow source (empty when valid), and the flow's namespace and id.
    pub async fn validate_flow(&self, source: String, file: String) -> Result<(Vec<Diagnostic>, Option<Flow>)> {
        match self.engine.parse_flow(source, file).await {
            Ok(flow) => Ok((vec![], Some(flow))),
            Err(EngineError::InvalidFlow(d)) => Ok((d, None)),
            Err(e) => Err(e),
        }
    }

    /// The latest revision of every flow under `prefix` the caller may see, sorted.
    pub async fn list_flows(&self, p: &Principal, prefix: &str) -> Result<Vec<StoredFlow>> {
        let engine = self.engine.clone();
        let (p, prefix) = (p.clone(), prefix.to_string());
        tokio::task::spawn_blocking(move || -> Result<Vec<StoredFlow>> {
            let mut out = Vec::new();
            for h in engine.flows().list()? {
                if !crate::store::namespace_within(&h.namespace, &prefix) || !p.may(Role::Viewer, &h.namespace) {
                    continue;
                }
                if let Ok(flow) = engine.flows().get(&h.namespace, &h.id, 0) {
                    out.push(flow);
                }
            }
            out.sort_by(|a, b| (&a.0.namespace, &a.0.id).cmp(&(&b.0.namespace, &b.0.id)));
            Ok(out)
        })
        .await
        .map_err(|_| EngineError::Unavailable)?
    }

    pub async fn get_flow(&self, p: &Principal, namespace: &str, id: &str, revision: u32) -> Result<StoredFlow> {
        let target = Target {
            namespace: namespace.to_string(),
            flow_id: id.to_string(),
            ..Default::default()
        };
        // A delegate reads the flows of the decisions offered to them (their forms).
        let p = &self.widened(p).await;
        self.authorize(p, Role::Viewer, "read", target).await?;
        let engine = self.engine.clone();
        let (ns, id) = (namespace.to_string(), id.to_string());
        // The start form shows the values of inputs computed from an `expression`.
        tokio::task::spawn_blocking(move || {
            engine.flows().get(&ns, &id, revision).map(|(head, flow, source)| {
                let flow = engine.with_input_values(&flow, None);
                (head, flow, source)
            })
        })
        .await
        .map_err(|_| EngineError::Unavailable)?
    }

    pub async fn delete_flow(&self, p: &Principal, namespace: &str, id: &str) -> Result<()> {
        let target = Target {
            namespace: namespace.to_string(),
            flow_id: id.to_string(),
            ..Default::default()
        };
        self.authorize(p, Role::Admin, "flow.delete", target).await?;
        self.engine.delete_flow(namespace, id, &p.user).await
    }

    /// The triggers of the flows under `prefix` (one flow when `flow_id` is set) the caller may see.
    pub async fn list_triggers(&self, p: &Principal, prefix: &str, flow_id: &str) -> Result<Vec<TriggerView>> {
        let (p, prefix, flow_id) = (p.clone(), prefix.to_string(), flow_id.to_string());
        self.engine
            .triggers(move |ns, id| {
                crate::store::namespace_within(ns, &prefix)
                    && (flow_id.is_empty() || flow_id == id)
                    && p.may(Role::Viewer, ns)
            })
            .await
    }

    /// Switches a trigger off or on: a flow change, so an admin's of the flow's namespace.
    pub async fn set_trigger(
        &self,
        p: &Principal,
        namespace: &str,
        flow_id: &str,
        trigger_id: &str,
        enabled: bool,
    ) -> Result<TriggerView> {
        let target = Target {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            ..Default::default()
        };
        self.authorize(p, Role::Admin, "trigger.toggle", target).await?;
        self.engine
            .set_trigger(namespace, flow_id, trigger_id, enabled, &p.user)
            .await?;
        let (ns, id, trigger) = (namespace.to_string(), flow_id.to_string(), trigger_id.to_string());
        self.engine
            .triggers(move |n, f| n == ns && f == id)
            .await?
            .into_iter()
            .find(|t| t.trigger_id == trigger)
            .ok_or_else(|| EngineError::NotFound(format!("trigger `{trigger_id}` of flow `{namespace}.{flow_id}`")))
    }
}
