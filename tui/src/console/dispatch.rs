//! Runs the UI's commands against the daemon, each in its own task, and reports back through the
//! update channel. The UI loop only ever calls [`Dispatcher::send`], which never waits.

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tollgate_proto::v1 as pb;

use super::messages::{Command, RpcError, Tab, Update};
use crate::client::Clients;

pub struct Dispatcher {
    clients: Clients,
    tabs: mpsc::UnboundedSender<Tab>,
    updates: mpsc::Sender<Update>,
    logs: Option<AbortHandle>,
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if let Some(h) = self.logs.take() {
            h.abort();
        }
    }
}

/// The short code name the daemon uses in bulk results.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
        tonic::Code::Unavailable => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// One failed id, as a bulk call would report it.
fn failed(id: &str, e: &tonic::Status) -> pb::BulkResult {
    pb::BulkResult {
        id: id.to_string(),
        ok: false,
        code: code_name(e.code()).into(),
        message: e.message().to_string(),
        input_errors: vec![],
    }
}

fn ok(id: &str) -> pb::BulkResult {
    pb::BulkResult {
        id: id.to_string(),
        ok: true,
        code: "OK".into(),
        message: String::new(),
        input_errors: vec![],
    }
}

impl Dispatcher {
    pub fn new(clients: Clients, tabs: mpsc::UnboundedSender<Tab>, updates: mpsc::Sender<Update>) -> Self {
        Dispatcher {
            clients,
            tabs,
            updates,
            logs: None,
        }
    }

    pub fn send(&mut self, cmd: Command) {
        match cmd {
            Command::LoadTab(tab) => {
                // The sync task owns tab loading (it reloads them after reconnects).
                let _ = self.tabs.send(tab);
            }
            Command::TailLogs { stream, id } => {
                if let Some(h) = self.logs.take() {
                    h.abort();
                }
                let task = tokio::spawn(super::log_tail::run(
                    self.clients.clone(),
                    stream,
                    id,
                    self.updates.clone(),
                ));
                self.logs = Some(task.abort_handle());
            }
            Command::StopLogs => {
                if let Some(h) = self.logs.take() {
                    h.abort();
                }
            }
            other => {
                let clients = self.clients.clone();
                let tx = self.updates.clone();
                tokio::spawn(async move {
                    if let Some(update) = call(clients, other).await {
                        let _ = tx.send(update).await;
                    }
                });
            }
        }
    }
}

/// Makes one call; `None` for the commands `send` handles itself.
async fn call(c: Clients, cmd: Command) -> Option<Update> {
    let mut executions = c.executions;
    Some(match cmd {
        Command::GetExecution(id) => {
            let r = executions.get(pb::GetExecutionRequest { id: id.clone() }).await;
            Update::Execution(r.map(|r| r.into_inner()).map_err(|e| (id, e.into())))
        }
        Command::PreviewResume {
            request,
            id,
            task_run_id,
            task_id,
            inputs,
        } => {
            let req = pb::ResumeRequest {
                id,
                inputs: inputs.into_iter().collect(),
                task_run_id,
                task_id,
                ..Default::default()
            };
            let result = executions
                .preview_resume(req)
                .await
                .map(|r| r.into_inner())
                .map_err(RpcError::from);
            Update::Previewed { request, result }
        }
        Command::BulkResume {
            request,
            ids,
            task_run_ids,
            task_id,
            inputs,
            comment,
        } => {
            let req = pb::BulkResumeRequest {
                ids,
                task_run_ids: task_run_ids.into_iter().collect(),
                inputs: inputs.into_iter().collect(),
                task_id,
                reason: comment,
                ..Default::default()
            };
            let result = executions
                .bulk_resume(req)
                .await
                .map(|r| r.into_inner().results)
                .map_err(RpcError::from);
            Update::Resumed { request, result }
        }
        Command::Kill { request, ids } => {
            let results = if let [id] = ids.as_slice() {
                match executions
                    .kill(pb::KillRequest {
                        id: id.clone(),
                        reason: String::new(),
                    })
                    .await
                {
                    Ok(_) => vec![ok(id)],
                    Err(e) => vec![failed(id, &e)],
                }
            } else {
                match executions
                    .bulk_kill(pb::BulkKillRequest {
                        ids: ids.clone(),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(r) => r.into_inner().results,
                    Err(e) => ids.iter().map(|id| failed(id, &e)).collect(),
                }
            };
            Update::Killed { request, results }
        }
        Command::Reject {
            request,
            targets,
            reason,
        } => {
            // One call per execution: each rejection is its own decision, audited on its own.
            let mut results = Vec::with_capacity(targets.len());
            for (id, task_run_id) in targets {
                let req = pb::RejectRequest {
                    id: id.clone(),
                    task_run_id,
                    task_id: String::new(),
                    reason: reason.clone(),
                };
                results.push(match executions.reject(req).await {
                    Ok(_) => ok(&id),
                    Err(e) => failed(&id, &e),
                });
            }
            Update::Rejected { request, results }
        }
        Command::ListFlows => {
            let mut flows = c.flows;
            Update::Flows(
                flows
                    .list(pb::ListFlowsRequest {
                        namespace: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner().flows)
                    .map_err(RpcError::from),
            )
        }
        Command::GetFlow { namespace, id } => {
            let mut flows = c.flows;
            Update::Flow(
                flows
                    .get(pb::GetFlowRequest {
                        namespace,
                        id,
                        revision: 0,
                    })
                    .await
                    .map(|r| r.into_inner())
                    .map_err(RpcError::from),
            )
        }
        Command::Start {
            request,
            namespace,
            flow_id,
            inputs,
        } => {
            let req = pb::StartRequest {
                namespace,
                flow_id,
                inputs: inputs.into_iter().collect(),
                labels: Default::default(),
                files: Default::default(),
            };
            let result = match executions.start(req).await {
                Ok(r) => r
                    .into_inner()
                    .execution
                    .ok_or_else(|| RpcError::new(tonic::Code::Internal, "the daemon returned no execution")),
                Err(e) => Err(e.into()),
            };
            Update::Started { request, result }
        }
        Command::ListAudit { user, execution_id } => {
            let mut audit = c.audit;
            let req = pb::ListAuditRequest {
                execution_id,
                user,
                limit: super::app::AuditState::limit(),
                before_seq: 0,
            };
            Update::Audit(
                audit
                    .list(req)
                    .await
                    .map(|r| r.into_inner().records)
                    .map_err(RpcError::from),
            )
        }
        Command::ListDelegations { all } => {
            let mut delegations = c.delegations;
            Update::Delegations(
                delegations
                    .list(pb::ListDelegationsRequest { all })
                    .await
                    .map(|r| r.into_inner().delegations)
                    .map_err(RpcError::from),
            )
        }
        Command::CreateDelegation { request, req } => {
            let mut delegations = c.delegations;
            let result = delegations
                .create(req)
                .await
                .map(|r| r.into_inner())
                .map_err(RpcError::from);
            Update::DelegationCreated { request, result }
        }
        Command::RevokeDelegation { id } => {
            let mut delegations = c.delegations;
            Update::DelegationRevoked(
                delegations
                    .revoke(pb::RevokeDelegationRequest { id })
                    .await
                    .map(|r| r.into_inner())
                    .map_err(RpcError::from),
            )
        }
        // Handled in `send`.
        Command::LoadTab(_) | Command::TailLogs { .. } | Command::StopLogs => return None,
    })
}
