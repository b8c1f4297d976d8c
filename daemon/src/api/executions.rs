//! Executions service: start, list, get, resume (one or many), kill, watch, tail logs.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::v1::{self as pb, executions_server::Executions};
use tonic::{Request, Response, Status};

use super::status::{code_name, from_engine};
use super::{ApiState, convert, require};
use crate::auth::{Principal, Role};
use crate::engine::{EngineError, Execution, PauseSelector, State};
use crate::store::ExecutionFilter;

/// How often an idle stream re-checks its caller's token (for expiry; revocations are announced).
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

pub struct ExecutionsService(pub ApiState);

/// Largest page a List returns.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;
/// Largest number of executions a filter-based bulk call touches at once.
const MAX_BULK: usize = 100_000;

fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn parse_states(states: &[String]) -> Result<Vec<State>, Status> {
    states
        .iter()
        .map(|s| {
            State::parse(s).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown state `{s}`; known states: {}",
                    State::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })
        })
        .collect()
}

impl ExecutionsService {
    /// Converts executions with their flows (for pause forms) off the async runtime.
    async fn to_pb(&self, execs: Vec<Execution>) -> Result<Vec<pb::Execution>, Status> {
        let engine = self.0.engine.clone();
        tokio::task::spawn_blocking(move || {
            execs
                .iter()
                .map(|e| {
                    let flow = engine
                        .flows()
                        .get(&e.namespace, &e.flow_id, e.flow_revision)
                        .ok()
                        .map(|(_, f, _)| f);
                    convert::execution(e, flow.as_deref())
                })
                .collect()
        })
        .await
        .map_err(|_| Status::unavailable("shutting down"))
    }

    async fn one(&self, exec: Execution) -> Result<pb::Execution, Status> {
        self.to_pb(vec![exec])
            .await?
            .pop()
            .ok_or_else(|| Status::internal("conversion lost the execution"))
    }

    /// Loads an execution and checks the caller's role on its namespace.
    async fn authorized(&self, p: &Principal, id: &str, role: Role) -> Result<Execution, EngineError> {
        let exec = self.0.engine.get_execution(id).await?;
        if !p.may(role, &exec.namespace) {
            return Err(EngineError::PermissionDenied(format!(
                "{} needs the {} role on namespace `{}` to do this to execution '{id}'",
                p.user,
                role.as_str(),
                exec.namespace
            )));
        }
        Ok(exec)
    }

    /// Ids of every PAUSED execution matching a bulk filter that the caller may operate.
    async fn ids_by_filter(
        &self,
        p: &Principal,
        namespace: String,
        flow_id: String,
        states: Vec<State>,
    ) -> Result<Vec<String>, Status> {
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let filter = ExecutionFilter {
                states: states.clone(),
                namespace: opt(namespace.clone()),
                flow_id: opt(flow_id.clone()),
                visible: p.visible_namespaces(Role::Viewer),
            };
            let (page, next) = self
                .0
                .engine
                .list_executions(filter, MAX_PAGE, after)
                .await
                .map_err(from_engine)?;
            ids.extend(page.into_iter().map(|e| e.id));
            if next.is_none() || ids.len() >= MAX_BULK {
                break;
            }
            after = next;
        }
        Ok(ids)
    }
}

fn bulk_result(id: String, r: Result<Execution, EngineError>) -> pb::BulkResult {
    match r {
        Ok(_) => pb::BulkResult {
            id,
            ok: true,
            code: "OK".into(),
            message: String::new(),
            input_errors: vec![],
        },
        Err(e) => {
            let input_errors = match &e {
                EngineError::InvalidInput(errs) => errs
                    .iter()
                    .map(|e| pb::InputError {
                        input_id: e.input_id.clone(),
                        message: e.message.clone(),
                    })
                    .collect(),
                _ => vec![],
            };
            let status = from_engine(e);
            pb::BulkResult {
                id,
                ok: false,
                code: code_name(status.code()).into(),
                message: status.message().into(),
                input_errors,
            }
        }
    }
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Executions for ExecutionsService {
    async fn start(&self, req: Request<pb::StartRequest>) -> Result<Response<pb::StartResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        require(&p, Role::Operator, &r.namespace)?;
        let inputs: BTreeMap<String, String> = r.inputs.into_iter().collect();
        let labels: BTreeMap<String, String> = r.labels.into_iter().collect();
        let exec = self
            .0
            .engine
            .start_execution(&r.namespace, &r.flow_id, inputs, labels, &p.actor())
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::StartResponse {
            execution: Some(self.one(exec).await?),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListExecutionsRequest>,
    ) -> Result<Response<pb::ListExecutionsResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        let filter = ExecutionFilter {
            states: parse_states(&r.states)?,
            namespace: opt(r.namespace),
            flow_id: opt(r.flow_id),
            visible: p.visible_namespaces(Role::Viewer),
        };
        let limit = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let (execs, next) = self
            .0
            .engine
            .list_executions(filter, limit, opt(r.page_token))
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ListExecutionsResponse {
            executions: self.to_pb(execs).await?,
            next_page_token: next.unwrap_or_default(),
            total: 0,
        }))
    }

    async fn get(&self, req: Request<pb::GetExecutionRequest>) -> Result<Response<pb::Execution>, Status> {
        let p = self.0.principal(&req)?;
        let id = req.into_inner().id;
        let exec = self.authorized(&p, &id, Role::Viewer).await.map_err(from_engine)?;
        Ok(Response::new(self.one(exec).await?))
    }

    async fn resume(&self, req: Request<pb::ResumeRequest>) -> Result<Response<pb::ResumeResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        self.authorized(&p, &r.id, Role::Operator).await.map_err(from_engine)?;
        let select = PauseSelector {
            task_run_id: opt(r.task_run_id),
            task_id: opt(r.task_id),
        };
        let exec = self
            .0
            .engine
            .resume(&r.id, select, r.inputs.into_iter().collect(), &p.actor(), &r.reason)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ResumeResponse {
            execution: Some(self.one(exec).await?),
        }))
    }

    async fn validate_resume(
        &self,
        req: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ValidateResumeResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        self.authorized(&p, &r.id, Role::Operator).await.map_err(from_engine)?;
        let select = PauseSelector {
            task_run_id: opt(r.task_run_id),
            task_id: opt(r.task_id),
        };
        match self
            .0
            .engine
            .validate_resume(&r.id, select, r.inputs.into_iter().collect(), &p.actor())
            .await
        {
            Ok(()) => Ok(Response::new(pb::ValidateResumeResponse { errors: vec![] })),
            Err(EngineError::InvalidInput(errs)) => Ok(Response::new(pb::ValidateResumeResponse {
                errors: errs
                    .into_iter()
                    .map(|e| pb::InputError {
                        input_id: e.input_id,
                        message: e.message,
                    })
                    .collect(),
            })),
            Err(e) => Err(from_engine(e)),
        }
    }

    async fn bulk_resume(&self, req: Request<pb::BulkResumeRequest>) -> Result<Response<pb::BulkResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        let ids = if r.ids.is_empty() {
            if r.namespace.is_empty() && r.flow_id.is_empty() {
                return Err(Status::invalid_argument(
                    "BulkResume needs ids, or a namespace and/or flow filter",
                ));
            }
            self.ids_by_filter(&p, r.namespace, r.flow_id, vec![State::Paused])
                .await?
        } else {
            r.ids
        };
        // Authorization is per id: a denied id is reported, the others go ahead.
        let mut results = Vec::with_capacity(ids.len());
        let mut allowed = Vec::with_capacity(ids.len());
        let execs = {
            let engine = self.0.engine.clone();
            let ids2 = ids.clone();
            tokio::task::spawn_blocking(move || -> Result<Vec<Option<Execution>>, EngineError> {
                let r = engine.store().read()?;
                ids2.iter()
                    .map(|id| r.execution(id).map_err(EngineError::from))
                    .collect()
            })
            .await
            .map_err(|_| Status::unavailable("shutting down"))?
            .map_err(from_engine)?
        };
        for (id, exec) in ids.into_iter().zip(execs) {
            match exec {
                None => results.push(bulk_result(
                    id.clone(),
                    Err(EngineError::NotFound(format!("execution '{id}' not found"))),
                )),
                Some(e) if !p.may(Role::Operator, &e.namespace) => results.push(bulk_result(
                    id.clone(),
                    Err(EngineError::PermissionDenied(format!(
                        "{} needs the operator role on namespace `{}`",
                        p.user, e.namespace
                    ))),
                )),
                Some(_) => allowed.push(id),
            }
        }
        let select = PauseSelector {
            task_run_id: None,
            task_id: opt(r.task_id),
        };
        let inputs: BTreeMap<String, String> = r.inputs.into_iter().collect();
        for (id, res) in self
            .0
            .engine
            .bulk_resume(allowed, select, inputs, &p.actor(), &r.reason)
            .await
        {
            results.push(bulk_result(id, res));
        }
        Ok(Response::new(pb::BulkResponse { results }))
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<pb::KillResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        self.authorized(&p, &r.id, Role::Operator).await.map_err(from_engine)?;
        let exec = self
            .0
            .engine
            .kill(&r.id, &p.actor(), &r.reason)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::KillResponse {
            execution: Some(self.one(exec).await?),
        }))
    }

    async fn bulk_kill(&self, req: Request<pb::BulkKillRequest>) -> Result<Response<pb::BulkResponse>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        let ids = if r.ids.is_empty() {
            if r.namespace.is_empty() && r.flow_id.is_empty() {
                return Err(Status::invalid_argument(
                    "BulkKill needs ids, or a namespace and/or flow filter",
                ));
            }
            let states = if r.states.is_empty() {
                vec![State::Created, State::Running, State::Paused]
            } else {
                parse_states(&r.states)?
            };
            self.ids_by_filter(&p, r.namespace, r.flow_id, states).await?
        } else {
            r.ids
        };
        let mut results = Vec::with_capacity(ids.len());
        let mut allowed = Vec::new();
        for id in ids {
            match self.authorized(&p, &id, Role::Operator).await {
                Ok(_) => allowed.push(id),
                Err(e) => results.push(bulk_result(id, Err(e))),
            }
        }
        for (id, res) in self.0.engine.bulk_kill(allowed, &p.actor(), "").await {
            results.push(bulk_result(id, res));
        }
        Ok(Response::new(pb::BulkResponse { results }))
    }

    type WatchStream = Stream_<pb::ExecutionEvent>;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        let mut events = self.0.engine.subscribe();
        let (tx, rx) = mpsc::channel(1024);
        let engine = self.0.engine.clone();
        let auth = self.0.auth.clone();
        let mut rights = auth.rights_changes();
        tokio::spawn(async move {
            // Expired tokens have no event of their own: look again now and then.
            let mut expiry_check = tokio::time::interval(RECHECK_EVERY);
            expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = tokio::select! {
                    e = events.recv() => e,
                    _ = engine.closing() => {
                        let _ = tx.send(Err(Status::unavailable("the daemon is stopping"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                    changed = rights.changed() => {
                        if changed.is_err() || auth.recheck(&p).is_none() {
                            let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                            return;
                        }
                        continue;
                    }
                    _ = expiry_check.tick() => {
                        if auth.recheck(&p).is_none() {
                            let _ = tx.send(Err(Status::unauthenticated("token revoked or expired"))).await;
                            return;
                        }
                        continue;
                    }
                };
                let exec: Arc<Execution> = match next {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "watch client lagged");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // Re-check the caller each event: a revoked token ends the stream.
                let principal = match auth.recheck(&p) {
                    Some(p) => p,
                    None => {
                        let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                        return;
                    }
                };
                if !principal.may(Role::Viewer, &exec.namespace)
                    || (!r.namespace.is_empty() && !crate::store::namespace_within(&exec.namespace, &r.namespace))
                    || (!r.flow_id.is_empty() && exec.flow_id != r.flow_id)
                    || (!r.execution_id.is_empty() && exec.id != r.execution_id)
                {
                    continue;
                }
                let flow = {
                    let engine = engine.clone();
                    let (ns, id, rev) = (exec.namespace.clone(), exec.flow_id.clone(), exec.flow_revision);
                    tokio::task::spawn_blocking(move || engine.flows().get(&ns, &id, rev).ok().map(|(_, f, _)| f))
                        .await
                        .ok()
                        .flatten()
                };
                let event = pb::ExecutionEvent {
                    execution: Some(convert::execution(&exec, flow.as_deref())),
                    deleted: false,
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type TailLogsStream = Stream_<pb::LogBatch>;

    async fn tail_logs(&self, req: Request<pb::TailLogsRequest>) -> Result<Response<Self::TailLogsStream>, Status> {
        let p = self.0.principal(&req)?;
        let r = req.into_inner();
        self.authorized(&p, &r.execution_id, Role::Viewer)
            .await
            .map_err(from_engine)?;
        // Subscribe before the first read so no line written in between is missed.
        let mut events = self.0.engine.subscribe();
        let (tx, rx) = mpsc::channel(64);
        let engine = self.0.engine.clone();
        let auth = self.0.auth.clone();
        let mut rights = auth.rights_changes();
        tokio::spawn(async move {
            let mut next = r.from_seq;
            const CHUNK: usize = 1000;
            loop {
                if auth.recheck(&p).is_none() {
                    let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                    return;
                }
                // Read the state before the lines: if it is terminal here, every line is already stored.
                let terminal = match engine.get_execution(&r.execution_id).await {
                    Ok(e) => e.state.is_terminal(),
                    Err(e) => {
                        let _ = tx.send(Err(from_engine(e))).await;
                        return;
                    }
                };
                let lines = match engine.logs(&r.execution_id, next, CHUNK).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(from_engine(e))).await;
                        return;
                    }
                };
                let full = lines.len() == CHUNK;
                if let Some(last) = lines.last() {
                    next = last.seq + 1;
                }
                let end = !full && (terminal || !r.follow);
                if !lines.is_empty() || end {
                    let batch = pb::LogBatch {
                        lines: lines.iter().map(convert::log_line).collect(),
                        end,
                    };
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                }
                if end {
                    return;
                }
                if full {
                    continue;
                }
                // Wait for a change of this execution (or a periodic re-check).
                let wait = async {
                    loop {
                        match events.recv().await {
                            Ok(e) if e.id == r.execution_id => return true,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => return true,
                            Err(broadcast::error::RecvError::Closed) => return false,
                        }
                    }
                };
                tokio::select! {
                    alive = wait => if !alive { return },
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = rights.changed() => {}
                    _ = tx.closed() => return,
                    _ = engine.closing() => {
                        let _ = tx.send(Err(Status::unavailable("the daemon is stopping"))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
