//! Executions service: start, list, get, resume (one or many), kill, watch, tail logs.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tollgate_proto::v1::{self as pb, executions_server::Executions};
use tonic::{Request, Response, Status};

use super::status::from_engine;
use super::{ApiState, convert};
use crate::auth::Role;
use crate::engine::{EngineError, Execution, ExecutionSummary, PauseSelector, State};
use crate::flow::Flow;
use crate::ops::BulkTarget;

/// How often an idle stream re-checks its caller's token (for expiry; revocations are announced).
const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

pub struct ExecutionsService(pub ApiState);

const DEFAULT_PAGE: usize = 100;

fn opt(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// The pause a request names (proto strings: empty means unset).
fn pause_selector(task_run_id: String, task_id: String) -> PauseSelector {
    PauseSelector {
        task_run_id: opt(task_run_id),
        task_id: opt(task_id),
    }
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

/// A bulk call's target: its ids, else its filter.
fn bulk_target(ids: Vec<String>, namespace: String, flow_id: String, states: Vec<State>) -> BulkTarget {
    if ids.is_empty() {
        BulkTarget::Filter {
            namespace: opt(namespace),
            flow_id: opt(flow_id),
            states,
        }
    } else {
        BulkTarget::Ids(ids)
    }
}

impl ExecutionsService {
    /// Converts executions with their flows (for pause forms).
    async fn to_pb(&self, execs: Vec<Execution>) -> Vec<pb::Execution> {
        let flows = self.0.ops.flows_of(&execs).await;
        // One FlowForms per distinct flow on the page (same Arc = same revision, unrendered).
        // The Arcs stay alive in `flows` meanwhile, so an address names one flow.
        let mut forms: std::collections::HashMap<*const Flow, convert::FlowForms> = Default::default();
        execs
            .iter()
            .zip(&flows)
            .map(|(e, flow)| {
                let Some(flow) = flow else {
                    return convert::execution(e, None);
                };
                let f = forms
                    .entry(Arc::as_ptr(flow))
                    .or_insert_with(|| convert::FlowForms::of(flow));
                convert::execution_with(e, Some((flow, f)))
            })
            .collect()
    }

    async fn one(&self, exec: Execution) -> pb::Execution {
        let flow = self.0.ops.flow_of(&exec).await;
        convert::execution(&exec, flow.as_deref())
    }
}

/// A SUMMARY page: one row per summary, and each distinct pause form once. Each distinct flow
/// (same Arc = same revision, unrendered) has its forms worked out once, as in `to_pb`.
fn summaries_to_pb(rows: &[(ExecutionSummary, Option<Arc<Flow>>)]) -> (Vec<pb::Execution>, Vec<pb::PauseForm>) {
    let mut forms: std::collections::HashMap<*const Flow, convert::FlowForms> = Default::default();
    let mut page = convert::PageForms::default();
    let executions = rows
        .iter()
        .map(|(s, flow)| {
            let Some(flow) = flow else {
                return convert::execution_summary(s, None, &mut page);
            };
            let f = forms
                .entry(Arc::as_ptr(flow))
                .or_insert_with(|| convert::FlowForms::of(flow));
            convert::execution_summary(s, Some((flow, f)), &mut page)
        })
        .collect();
    (executions, page.forms)
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
        Err(e) => pb::BulkResult {
            id,
            ok: false,
            code: e.code().as_str().into(),
            input_errors: input_errors(&e),
            message: e.user_message(),
        },
    }
}

fn input_errors(e: &EngineError) -> Vec<pb::InputError> {
    e.input_errors()
        .iter()
        .map(|e| pb::InputError {
            input_id: e.input_id.clone(),
            message: e.message.clone(),
        })
        .collect()
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Executions for ExecutionsService {
    async fn start(&self, req: Request<pb::StartRequest>) -> Result<Response<pb::StartResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let inputs: BTreeMap<String, String> = r.inputs.into_iter().collect();
        let labels: BTreeMap<String, String> = r.labels.into_iter().collect();
        let exec = self
            .0
            .ops
            .start(
                &p,
                &r.namespace,
                &r.flow_id,
                inputs,
                labels,
                r.files.into_iter().collect(),
            )
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::StartResponse {
            execution: Some(self.one(exec).await),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListExecutionsRequest>,
    ) -> Result<Response<pb::ListExecutionsResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let limit = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n,
        };
        let states = parse_states(&r.states)?;
        let view = pb::ExecutionView::try_from(r.view)
            .map_err(|_| Status::invalid_argument(format!("unknown view {} (FULL = 0, SUMMARY = 1)", r.view)))?;
        let (namespace, flow_id, after) = (opt(r.namespace), opt(r.flow_id), opt(r.page_token));
        if view == pb::ExecutionView::Summary {
            let (rows, next) = self
                .0
                .ops
                .list_summaries(&p, states, namespace, flow_id, limit, after)
                .await
                .map_err(from_engine)?;
            let (executions, forms) = summaries_to_pb(&rows);
            return Ok(Response::new(pb::ListExecutionsResponse {
                executions,
                next_page_token: next.unwrap_or_default(),
                total: 0,
                forms,
            }));
        }
        let (execs, next) = self
            .0
            .ops
            .list(&p, states, namespace, flow_id, limit, after)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ListExecutionsResponse {
            executions: self.to_pb(execs).await,
            next_page_token: next.unwrap_or_default(),
            total: 0,
            forms: vec![],
        }))
    }

    type ListRowsStream = Stream_<pb::ExecutionRowsPage>;

    /// Every page of a SUMMARY list as one stream: the caller is authenticated once, each page
    /// is read (with the caller's visibility as of that page, and their token checked again)
    /// while the previous one is on its way, and rows are written to the wire from the index
    /// entries as read, without building messages.
    async fn list_rows(
        &self,
        req: Request<pb::ListExecutionsRequest>,
    ) -> Result<Response<Self::ListRowsStream>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let limit = match r.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n,
        };
        let states = parse_states(&r.states)?;
        let (namespace, flow_id, mut after) = (opt(r.namespace), opt(r.flow_id), opt(r.page_token));
        let ops = self.0.ops.clone();
        // One page ready while the previous one is sent.
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut encoder = convert::RowsEncoder::default();
            let mut first = true;
            loop {
                // Authenticated just now for the first page; a later page checks the token again,
                // as the List call for it would.
                if !std::mem::take(&mut first) && ops.auth().recheck(&p).is_none() {
                    let _ = tx.send(Err(Status::unauthenticated("token revoked or expired"))).await;
                    return;
                }
                let page = ops
                    .list_rows(
                        &p,
                        states.clone(),
                        namespace.clone(),
                        flow_id.clone(),
                        limit,
                        after.take(),
                        encoder,
                    )
                    .await;
                let (mut used, next) = match page {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(from_engine(e))).await;
                        return;
                    }
                };
                let (executions, forms) = used.take_page();
                let last = next.is_none();
                let message = pb::ExecutionRowsPage {
                    executions,
                    next_page_token: next.clone().unwrap_or_default(),
                    forms,
                };
                if tx.send(Ok(message)).await.is_err() || last {
                    return;
                }
                after = next;
                encoder = used;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get(&self, req: Request<pb::GetExecutionRequest>) -> Result<Response<pb::Execution>, Status> {
        let p = self.0.principal(&req).await?;
        let exec = self.0.ops.get(&p, &req.into_inner().id).await.map_err(from_engine)?;
        Ok(Response::new(self.one(exec).await))
    }

    async fn resume(&self, req: Request<pb::ResumeRequest>) -> Result<Response<pb::ResumeResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let select = pause_selector(r.task_run_id, r.task_id);
        let mut inputs: BTreeMap<String, String> = r.inputs.into_iter().collect();
        let uploaded = self
            .0
            .ops
            .resume_files(&p, &r.id, &select, r.files.into_iter().collect())
            .await
            .map_err(from_engine)?;
        inputs.extend(uploaded);
        let exec = self
            .0
            .ops
            .resume(&p, &r.id, select, inputs, &r.reason)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ResumeResponse {
            execution: Some(self.one(exec).await),
        }))
    }

    async fn get_file(&self, req: Request<pb::GetFileRequest>) -> Result<Response<pb::FileContent>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let content = self
            .0
            .ops
            .execution_file(&p, &r.execution_id, &r.uri)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::FileContent { content }))
    }

    async fn reject(&self, req: Request<pb::RejectRequest>) -> Result<Response<pb::ResumeResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let select = pause_selector(r.task_run_id, r.task_id);
        let exec = self
            .0
            .ops
            .reject(&p, &r.id, select, &r.reason)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::ResumeResponse {
            execution: Some(self.one(exec).await),
        }))
    }

    async fn preview_resume(&self, req: Request<pb::ResumeRequest>) -> Result<Response<pb::ResumePreview>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let select = pause_selector(r.task_run_id, r.task_id);
        let v = self
            .0
            .ops
            .preview_resume(&p, &r.id, select, r.inputs.into_iter().collect(), &r.reason)
            .await
            .map_err(from_engine)?;
        Ok(Response::new(convert::preview(&v)))
    }

    async fn validate_resume(
        &self,
        req: Request<pb::ResumeRequest>,
    ) -> Result<Response<pb::ValidateResumeResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let select = pause_selector(r.task_run_id, r.task_id);
        match self
            .0
            .ops
            .validate_resume(&p, &r.id, select, r.inputs.into_iter().collect())
            .await
        {
            Ok(()) => Ok(Response::new(pb::ValidateResumeResponse { errors: vec![] })),
            Err(e @ EngineError::InvalidInput(_)) => Ok(Response::new(pb::ValidateResumeResponse {
                errors: input_errors(&e),
            })),
            Err(e) => Err(from_engine(e)),
        }
    }

    async fn bulk_resume(&self, req: Request<pb::BulkResumeRequest>) -> Result<Response<pb::BulkResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let target = bulk_target(r.ids, r.namespace, r.flow_id, vec![State::Paused]);
        let select = PauseSelector {
            task_run_id: None,
            task_id: opt(r.task_id),
        };
        let outcomes = self
            .0
            .ops
            .bulk_resume(
                &p,
                target,
                select,
                r.task_run_ids.into_iter().collect(),
                r.inputs.into_iter().collect(),
                &r.reason,
            )
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::BulkResponse {
            results: outcomes.into_iter().map(|(id, r)| bulk_result(id, r)).collect(),
        }))
    }

    async fn kill(&self, req: Request<pb::KillRequest>) -> Result<Response<pb::KillResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let exec = self.0.ops.kill(&p, &r.id, &r.reason).await.map_err(from_engine)?;
        Ok(Response::new(pb::KillResponse {
            execution: Some(self.one(exec).await),
        }))
    }

    async fn bulk_kill(&self, req: Request<pb::BulkKillRequest>) -> Result<Response<pb::BulkResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let states = if r.states.is_empty() {
            vec![State::Created, State::Running, State::Paused]
        } else {
            parse_states(&r.states)?
        };
        let target = bulk_target(r.ids, r.namespace, r.flow_id, states);
        let outcomes = self.0.ops.bulk_kill(&p, target, &r.reason).await.map_err(from_engine)?;
        Ok(Response::new(pb::BulkResponse {
            results: outcomes.into_iter().map(|(id, r)| bulk_result(id, r)).collect(),
        }))
    }

    type WatchStream = Stream_<pb::ExecutionEvent>;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let ops = self.0.ops.clone();
        let mut events = ops.engine().subscribe();
        let (tx, rx) = mpsc::channel(1024);
        let mut rights = ops.auth().rights_changes();
        tokio::spawn(async move {
            // What delegations let the caller read besides their own rights (refreshed below).
            let delegated = |w: crate::auth::Principal, own: usize| {
                let mut w = w;
                w.grants.drain(..own.min(w.grants.len()));
                w
            };
            let mut reads = delegated(ops.widened(&p).await, p.grants.len());
            // Expired tokens have no event of their own: look again now and then.
            let mut expiry_check = tokio::time::interval(RECHECK_EVERY);
            expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = tokio::select! {
                    e = events.recv() => e,
                    _ = ops.engine().closing() => {
                        let _ = tx.send(Err(Status::unavailable("the daemon is stopping"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                    changed = rights.changed() => {
                        if changed.is_err() || ops.auth().recheck(&p).is_none() {
                            let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                            return;
                        }
                        continue;
                    }
                    _ = expiry_check.tick() => {
                        if ops.auth().recheck(&p).is_none() {
                            let _ = tx.send(Err(Status::unauthenticated("token revoked or expired"))).await;
                            return;
                        }
                        reads = delegated(ops.widened(&p).await, p.grants.len());
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
                let principal = match ops.auth().recheck(&p) {
                    Some(p) => p,
                    None => {
                        let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                        return;
                    }
                };
                if !(principal.may(Role::Viewer, &exec.namespace) || reads.may(Role::Viewer, &exec.namespace))
                    || (!r.namespace.is_empty() && !crate::store::namespace_within(&exec.namespace, &r.namespace))
                    || (!r.flow_id.is_empty() && exec.flow_id != r.flow_id)
                    || (!r.execution_id.is_empty() && exec.id != r.execution_id)
                {
                    continue;
                }
                let exec = crate::ops::present_shared(exec);
                let flow = ops.flow_of(&exec).await;
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
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let ops = self.0.ops.clone();
        ops.may_read(&p, &r.execution_id).await.map_err(from_engine)?;
        // Subscribe before the first read so no line written in between is missed.
        let mut events = ops.engine().subscribe();
        let (tx, rx) = mpsc::channel(64);
        let mut rights = ops.auth().rights_changes();
        tokio::spawn(async move {
            let mut next = r.from_seq;
            const CHUNK: usize = 1000;
            loop {
                let Some(current) = ops.auth().recheck(&p) else {
                    let _ = tx.send(Err(Status::unauthenticated("token revoked"))).await;
                    return;
                };
                // Read the state before the lines: if it is terminal here, every line is already stored.
                let terminal = match ops.may_read(&current, &r.execution_id).await {
                    Ok(e) => e.state.is_terminal(),
                    Err(e) => {
                        let _ = tx.send(Err(from_engine(e))).await;
                        return;
                    }
                };
                let lines = match ops.logs(&current, &r.execution_id, next, CHUNK).await {
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
                    _ = ops.engine().closing() => {
                        let _ = tx.send(Err(Status::unavailable("the daemon is stopping"))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
