//! The execution engine: starts, advances, pauses, resumes and kills executions durably.
//!
//! All changes go through one writer thread ([`writer`]) that batches them into redb
//! transactions; reads go straight to store snapshots. Callers get an answer only after the
//! change is committed, so everything acknowledged survives `kill -9`.

pub mod advance;
pub mod cluster;
pub mod context;
pub mod error;
pub mod execution;
pub mod files;
pub mod flow_trigger;
pub mod flows;
pub mod http_poll;
pub mod ids;
pub mod jobs;
mod kv_access;
pub mod preview;
pub mod resume;
pub mod retention;
pub mod state;
mod store_records;
pub mod timers;
pub mod trigger_switch;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

pub use crate::error_chain::error_chain;
pub use error::{EngineError, Result};
pub use execution::{Execution, LogLine, TaskRun};
pub use state::State;
pub use store_records::{ExecutionSummary, IndexRow, IndexSummary, RowView, TaskRunSummary};
pub use writer::{PauseSelector, WebhookCall};

use crate::expr::{ExprServices, Renderer};
use crate::flow::Diagnostic;
use crate::store::{ExecutionFilter, Store};
use crate::tasks::TaskServices;
use writer::{Command, WriterLoop};

/// Who is acting: the authenticated user and their groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub groups: Vec<String>,
    /// Users whose HumanTask decisions this actor may also take, by delegation (filled by the
    /// operations layer for decisions only; never passed on: delegations are not transitive).
    pub acting_for: Vec<Delegator>,
}

/// Someone who delegated their decisions to an actor, with their own (not delegated) groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delegator {
    pub user: String,
    pub groups: Vec<String>,
    /// Namespace prefix the delegation covers (empty = every namespace).
    pub namespace: String,
}

impl Actor {
    pub fn new(user: impl Into<String>, groups: Vec<String>) -> Actor {
        Actor {
            user: user.into(),
            groups,
            acting_for: vec![],
        }
    }

    /// The daemon itself (timers, triggers, cascades).
    pub fn system() -> Actor {
        Actor {
            user: SYSTEM_USER.into(),
            groups: vec![],
            acting_for: vec![],
        }
    }

    pub fn is_system(&self) -> bool {
        self.user == SYSTEM_USER
    }
}

const SYSTEM_USER: &str = "tollgated";

/// The engine handle; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    flows: Arc<flows::FlowRegistry>,
    commands: std::sync::mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<Execution>>,
    closing: tokio::sync::watch::Sender<bool>,
    /// For inputs' `expression` (SELECT values) and read-only walks (a resume preview) outside
    /// the writer, which holds its own.
    renderer: Arc<Renderer>,
    services: Arc<dyn ExprServices>,
    /// Bumped when another daemon of a shared database changed users, groups, roles or tokens.
    rights_elsewhere: tokio::sync::watch::Sender<u64>,
}

/// Stack of the daemon's threads (the writer, tokio's workers and blocking pool): templates
/// and flow sources are walked recursively, within the limits of `crate::expr::limits`.
pub const THREAD_STACK_BYTES: usize = 8 << 20;

impl Engine {
    /// Announces changes of users, groups, roles or tokens made through another daemon of a
    /// shared database (principals remembered here are already forgotten when it fires).
    pub fn rights_changed_elsewhere(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.rights_elsewhere.subscribe()
    }

    /// Starts the writer thread, the timer loop and the job runner, and picks up executions
    /// that were interrupted by the previous stop. Must be called inside a tokio runtime.
    pub fn start(store: Store, services: Arc<dyn ExprServices>, task_services: Arc<TaskServices>) -> Result<Engine> {
        let timer_wake = Arc::new(tokio::sync::Notify::new());
        let flows = Arc::new(flows::FlowRegistry::new(store.clone(), timer_wake.clone()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (events, _) = broadcast::channel(8192);
        let (job_tx, job_rx) = tokio::sync::mpsc::unbounded_channel();
        let (poll_tx, poll_rx) = tokio::sync::mpsc::unbounded_channel();
        let running = Arc::new(jobs::RunningJobs::default());
        let renderer = Arc::new(Renderer::new());
        let writer = WriterLoop {
            store: store.clone(),
            flows: flows.clone(),
            renderer: renderer.clone(),
            services: services.clone(),
            error_logs_flows: Default::default(),
            pending_files: Default::default(),
            events: events.clone(),
            jobs: job_tx,
            polls: poll_tx,
            running: running.clone(),
            timer_wake: timer_wake.clone(),
            scripts_dir: task_services.scripts_dir.get().cloned(),
        };
        std::thread::Builder::new()
            .name("tollgate-writer".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                EngineError::Store(crate::store::StoreError::Storage(format!(
                    "cannot start writer thread: {e}"
                )))
            })?;
        let (closing, _) = tokio::sync::watch::channel(false);
        let engine = Engine {
            inner: Arc::new(Inner {
                store: store.clone(),
                flows,
                commands: tx.clone(),
                events,
                closing,
                renderer,
                services,
                rights_elsewhere: tokio::sync::watch::Sender::new(0),
            }),
        };
        // Before any job runs: the KV tasks write through this engine's writer.
        let _ = task_services.kv.set(Arc::new(kv_access::EngineKv(engine.clone())));
        tokio::spawn(http_poll::run_polls(poll_rx, tx.clone(), task_services.clone()));
        tokio::spawn(jobs::run_jobs(job_rx, tx.clone(), task_services, running.clone()));
        tokio::spawn(timers::run_timers(store.clone(), tx.clone(), timer_wake.clone()));
        let reader = store.read()?;
        if let Some(pg) = store.postgres() {
            // Shared database: in-flight executions may belong to live daemons; only those whose
            // daemon stopped (or that no daemon holds) are recovered, by the cluster loop.
            cluster::Cluster {
                pg: pg.clone(),
                store: store.clone(),
                events: engine.inner.events.clone(),
                running: running.clone(),
                flows: engine.inner.flows.clone(),
                commands: tx.clone(),
                timer_wake,
                rights_elsewhere: engine.inner.rights_elsewhere.clone(),
            }
            .start();
        } else {
            // Only executions that were in flight are read here: start-up does not grow with history.
            for state in [State::Created, State::Running, State::Killing, State::Restarted] {
                for id in reader.execution_ids_in_state(state)? {
                    let _ = tx.send(Command::Recover { id, from: None });
                }
            }
        }
        // Queued executions, oldest first, start if their flow has a free slot (a slot may have
        // freed while the daemon was down, or the flow's limit changed).
        for id in reader.execution_ids_in_state(State::Queued)? {
            let _ = tx.send(Command::Advance { id });
        }
        Ok(engine)
    }

    /// Tells long-lived streams to end: the daemon is stopping.
    pub fn begin_shutdown(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Resolves once [`Engine::begin_shutdown`] was called.
    pub async fn closing(&self) {
        let mut rx = self.inner.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn flows(&self) -> &flows::FlowRegistry {
        &self.inner.flows
    }

    /// A stream of every execution change, after it is committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Execution>> {
        self.inner.events.subscribe()
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Engine) -> Result<T> + Send + 'static) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|_| EngineError::Unavailable)?
    }

    /// A point read (a few keys): in place when the store reads locally (redb: microseconds,
    /// less than the two thread wake-ups of a hop to the blocking pool and back, which every
    /// resume paid twice), on the blocking pool when a read is a round trip to PostgreSQL.
    pub async fn read_point<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if self.inner.store.reads_locally() {
            return f(self);
        }
        self.blocking(f).await
    }

    async fn send(&self, make: impl FnOnce(writer::Reply) -> Command) -> Result<Execution> {
        let (reply, wait) = oneshot::channel();
        self.inner
            .commands
            .send(make(reply))
            .map_err(|_| EngineError::Unavailable)?;
        wait.await.map_err(|_| EngineError::Unavailable)?
    }

    /// Runs `change` in the writer's transaction and answers once it is committed. `change` must
    /// find any domain error before it writes; a storage error aborts its whole transaction.
    pub async fn change<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut crate::store::Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, wait) = oneshot::channel();
        let command = Command::Change(Box::new(move |w| match change(w) {
            Err(EngineError::Store(e)) => Err(e),
            answer => Ok(Box::new(move || {
                let _ = reply.send(answer);
            }) as writer::Delivery),
        }));
        self.inner
            .commands
            .send(command)
            .map_err(|_| EngineError::Unavailable)?;
        // A dropped answer means the transaction it was part of failed.
        wait.await.unwrap_or_else(|_| {
            Err(EngineError::Store(crate::store::StoreError::Storage(
                "the change was not committed; see the daemon log".into(),
            )))
        })
    }

    /// Appends an audit record (a refusal, say) in the writer's transaction.
    pub async fn record(&self, entry: crate::audit::Entry) -> Result<()> {
        self.change(move |w| Ok(crate::audit::append(w, entry)?)).await
    }

    // ------------------------------------------------------------ flows

    /// Parses `source` off the async runtime (deep or large sources cost CPU).
    pub async fn parse_flow(&self, source: String, file: String) -> Result<crate::flow::Flow> {
        self.blocking(move |_| crate::flow::load(&source, &file).map_err(EngineError::InvalidFlow))
            .await
    }

    /// Stores `flow` as its next revision (unless the source is unchanged), audited as `user`'s
    /// change in the same transaction.
    pub async fn apply_flow(&self, flow: crate::flow::Flow, source: String, user: &str) -> Result<flows::Applied> {
        let registry = self.inner.flows.clone();
        let user = user.to_string();
        let (head, flow, changed) = self
            .change(move |w| {
                let (head, changed) = registry.write_revision(w, &flow, &source)?;
                if changed {
                    crate::audit::append(
                        w,
                        crate::audit::Entry {
                            user,
                            action: "flow.apply".into(),
                            namespace: head.namespace.clone(),
                            flow_id: head.id.clone(),
                            values: serde_json::json!({ "revision": head.revision }),
                            result: "OK".into(),
                            ..Default::default()
                        },
                    )?;
                }
                Ok((head, flow, changed))
            })
            .await?;
        Ok(self.inner.flows.applied(head, Arc::new(flow), changed))
    }

    /// Marks a flow deleted, audited as `user`'s change in the same transaction.
    pub async fn delete_flow(&self, namespace: &str, id: &str, user: &str) -> Result<()> {
        let registry = self.inner.flows.clone();
        let (ns, id, user) = (namespace.to_string(), id.to_string(), user.to_string());
        self.change(move |w| {
            registry.mark_deleted(w, &ns, &id)?;
            crate::audit::append(
                w,
                crate::audit::Entry {
                    user,
                    action: "flow.delete".into(),
                    namespace: ns,
                    flow_id: id,
                    result: "OK".into(),
                    ..Default::default()
                },
            )?;
            Ok(())
        })
        .await?;
        self.inner.flows.deleted();
        Ok(())
    }

    /// Every problem of a flow source, positioned; empty when valid.
    pub fn validate_flow(&self, source: &str, file: &str) -> Vec<Diagnostic> {
        crate::flow::load(source, file).err().unwrap_or_default()
    }

    // ------------------------------------------------------------ executions

    /// Starts an execution of the latest revision of a flow with typed inputs.
    pub async fn start_execution(
        &self,
        namespace: &str,
        flow_id: &str,
        mut inputs: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        files: BTreeMap<String, Vec<u8>>,
        actor: &Actor,
    ) -> Result<Execution> {
        let (ns, id) = (namespace.to_string(), flow_id.to_string());
        // On redb a flow parsed before costs a point read: no hop to the blocking pool and back
        // (two thread wake-ups, more than the read) on every Start.
        let cached = match self.inner.store.reads_locally() {
            true => self.inner.flows.parsed_if_cached(&ns, &id, 0)?,
            false => None,
        };
        let (head, flow) = match cached {
            Some(found) => found,
            None => self.blocking(move |e| e.inner.flows.parsed(&ns, &id, 0)).await?,
        };
        if flow.disabled {
            return Err(EngineError::FailedPrecondition(format!(
                "flow `{namespace}.{flow_id}` is disabled"
            )));
        }
        let defs = if !flow.inputs.iter().any(|d| d.expression.is_some()) {
            flow.inputs.clone()
        } else {
            let flow = flow.clone();
            self.blocking(move |e| {
                let render = resume::expression_renderer(&e.inner.renderer, e.inner.services.as_ref(), &flow, None);
                crate::inputs::resolve_expressions(&flow.inputs, &render).map_err(EngineError::InvalidInput)
            })
            .await?
        };
        // Uploads get their URI under the new execution's id before the inputs are typed.
        let execution_id = ids::new_id();
        let uploads = files::place_uploads(&defs, &flow.namespace, &flow.id, &execution_id, &files, &inputs)
            .map_err(EngineError::InvalidInput)?;
        for (input, (path, _)) in &uploads {
            inputs.insert(input.clone(), files::uri_of(path));
        }
        let typed = crate::inputs::coerce(&defs, &inputs).map_err(EngineError::InvalidInput)?;
        self.check_file_inputs(&defs, &typed, &flow.namespace, &uploads).await?;
        let mut exec = advance::new_execution(
            &flow,
            head.revision,
            typed,
            labels,
            &actor.user,
            ids::now_ms(),
            None,
            None,
        );
        exec.id = execution_id.clone();
        // Stored and committed before the execution starts: its first step may read them.
        self.store_files(&execution_id, uploads.into_values().collect()).await?;
        let started = self
            .send(|reply| Command::Start {
                exec: Box::new(exec),
                reply,
            })
            .await;
        if started.is_err() {
            // Nothing refers to them: an execution that did not start has no files.
            let _ = self.change(move |w| Ok(w.delete_files(&execution_id)?)).await;
        }
        started
    }

    /// The content of `uri`, a file of `exec` (the caller checked who may read `exec`).
    pub async fn execution_file(&self, exec: &Execution, uri: &str) -> Result<Vec<u8>> {
        let f = files::parse_uri(uri).map_err(EngineError::InvalidArgument)?;
        let own = files::execution_prefix(&exec.namespace, &exec.flow_id, &exec.id);
        if f.execution_id != exec.id || !f.path.starts_with(&own) {
            return Err(EngineError::InvalidArgument(format!(
                "{uri} is not a file of execution {} (its files are under kestra://{own})",
                exec.id
            )));
        }
        let uri = uri.to_string();
        self.blocking(move |e| {
            e.inner
                .store
                .read()?
                .file(&f.execution_id, &f.path)?
                .ok_or_else(|| EngineError::NotFound(format!("the file {uri} does not exist")))
        })
        .await
    }

    /// Stores files of an execution (uploads), committed when this returns.
    pub async fn store_files(&self, execution_id: &str, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let id = execution_id.to_string();
        self.change(move |w| {
            for (path, content) in &files {
                w.put_file(&id, path, content)?;
            }
            Ok(())
        })
        .await
    }

    /// FILE inputs given as `kestra:///` URIs (not uploaded here) must name files this flow's
    /// namespace may read.
    async fn check_file_inputs(
        &self,
        defs: &[crate::inputs::InputDef],
        typed: &serde_json::Map<String, serde_json::Value>,
        namespace: &str,
        uploads: &BTreeMap<String, (String, Vec<u8>)>,
    ) -> Result<()> {
        let given: Vec<(String, String)> = defs
            .iter()
            .filter(|d| d.input_type == crate::inputs::InputType::File && !uploads.contains_key(&d.id))
            .filter_map(|d| Some((d.id.clone(), typed.get(&d.id)?.as_str()?.to_string())))
            .collect();
        if given.is_empty() {
            return Ok(());
        }
        let namespace = namespace.to_string();
        self.blocking(move |e| {
            let r = e.inner.store.read()?;
            let mut errors = Vec::new();
            for (input, uri) in given {
                match files::size(&r, e.inner.services.as_ref(), &namespace, &uri) {
                    Ok(Some(_)) => {}
                    Ok(None) => errors.push(crate::inputs::InputError {
                        input_id: input.clone(),
                        message: format!("input `{input}`: the file {uri} does not exist"),
                    }),
                    Err(files::FileError::Store(s)) => return Err(EngineError::Store(s)),
                    Err(why) => errors.push(crate::inputs::InputError {
                        input_id: input.clone(),
                        message: format!("input `{input}`: {why}"),
                    }),
                }
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(EngineError::InvalidInput(errors))
            }
        })
        .await
    }

    /// Stores the uploads of a resume's FILE inputs (`onResume`) under the execution and
    /// returns the URI each input takes; the resume itself then checks and applies them.
    pub async fn store_resume_files(
        &self,
        id: &str,
        select: &PauseSelector,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<BTreeMap<String, String>> {
        if files.is_empty() {
            return Ok(BTreeMap::new());
        }
        let exec = self.get_execution(id).await?;
        let (_, flow, _) = {
            let (ns, fid, rev) = (exec.namespace.clone(), exec.flow_id.clone(), exec.flow_revision);
            self.blocking(move |e| e.inner.flows.get(&ns, &fid, rev)).await?
        };
        let defs = resume::on_resume_defs(&flow, &exec, select)?;
        let uploads = files::place_uploads(
            &defs,
            &exec.namespace,
            &exec.flow_id,
            &exec.id,
            &files,
            &BTreeMap::new(),
        )
        .map_err(EngineError::InvalidInput)?;
        let uris = uploads
            .iter()
            .map(|(input, (path, _))| (input.clone(), files::uri_of(path)))
            .collect();
        self.store_files(&exec.id, uploads.into_values().collect()).await?;
        Ok(uris)
    }

    /// A call to a flow's Webhook trigger (see `writer::WebhookCall`); `Ok(None)` when the key
    /// was right but the trigger's conditions did not hold.
    pub async fn webhook(&self, call: writer::WebhookCall) -> Result<Option<Execution>> {
        let (reply, wait) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Webhook {
                call: Box::new(call),
                reply,
            })
            .map_err(|_| EngineError::Unavailable)?;
        wait.await.map_err(|_| EngineError::Unavailable)?
    }

    /// Starts an execution on behalf of a trigger (no user).
    pub async fn start_triggered(&self, exec: Execution) -> Result<Execution> {
        self.send(|reply| Command::Start {
            exec: Box::new(exec),
            reply,
        })
        .await
    }

    /// One execution (NOT_FOUND naming it when there is none), read as [`Engine::read_point`] reads.
    pub async fn get_execution(&self, id: &str) -> Result<Execution> {
        let id = id.to_string();
        self.read_point(move |e| {
            e.inner
                .store
                .read()?
                .execution(&id)?
                .ok_or_else(|| EngineError::NotFound(format!("execution '{id}' not found")))
        })
        .await
    }

    pub async fn list_executions(
        &self,
        filter: ExecutionFilter<State>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<Execution>, Option<String>)> {
        self.blocking(move |e| Ok(e.inner.store.read()?.executions(&filter, limit, after.as_deref())?))
            .await
    }

    /// [`Self::list_executions`] as row summaries (the stored records decoded only in part).
    pub async fn list_execution_summaries(
        &self,
        filter: ExecutionFilter<State>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<ExecutionSummary>, Option<String>)> {
        self.blocking(move |e| {
            Ok(e.inner
                .store
                .read()?
                .execution_parts(&filter, limit, after.as_deref())?)
        })
        .await
    }

    /// [`Self::list_execution_summaries`] as rows kept as read ([`IndexRow`]), for the caller
    /// to decode each once, borrowing its strings, into its wire form. Blocking: a read of the
    /// store (call it off the async runtime).
    pub fn list_index_rows(
        &self,
        filter: &ExecutionFilter<State>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<(Vec<IndexRow>, Option<String>)> {
        Ok(self.inner.store.read()?.execution_parts(filter, limit, after)?)
    }

    pub async fn resume(
        &self,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        actor: &Actor,
        reason: &str,
    ) -> Result<Execution> {
        let (id, actor, reason) = (id.to_string(), actor.clone(), reason.to_string());
        self.send(|reply| Command::Resume {
            id,
            select,
            inputs,
            actor,
            reason,
            reply,
        })
        .await
    }

    /// `flow` as forms show it: SELECT/MULTISELECT inputs with an `expression` (flow inputs and
    /// pauses' `onResume`) list the values it renders now. An expression that fails to render
    /// leaves its input without choices; submitting then reports the rendering error.
    /// Blocking (it may read the store for `kv()`): call it off the async runtime.
    pub fn with_input_values(&self, flow: &Arc<crate::flow::Flow>, exec: Option<&Execution>) -> Arc<crate::flow::Flow> {
        if !flow.has_input_expressions() {
            return flow.clone();
        }
        let render = resume::expression_renderer(&self.inner.renderer, self.inner.services.as_ref(), flow, exec);
        let mut copy = crate::flow::Flow::clone(flow);
        copy.for_each_input_mut(&mut |def| {
            if def.expression.is_some()
                && let Ok(mut resolved) = crate::inputs::resolve_expressions(std::slice::from_ref(def), &render)
                && let Some(d) = resolved.pop()
            {
                *def = d;
            }
        });
        Arc::new(copy)
    }

    /// Checks a resume without applying it: same rules, nothing changes.
    pub async fn validate_resume(
        &self,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        actor: &Actor,
    ) -> Result<()> {
        let exec = self.get_execution(id).await?;
        let (ns, fid, rev) = (exec.namespace.clone(), exec.flow_id.clone(), exec.flow_revision);
        let (_, flow, _) = self.blocking(move |e| e.inner.flows.get(&ns, &fid, rev)).await?;
        let actor = actor.clone();
        self.blocking(move |e| {
            let render = resume::expression_renderer(&e.inner.renderer, e.inner.services.as_ref(), &flow, Some(&exec));
            resume::check(&flow, &exec, &select, &inputs, &actor, Some(&render)).map(|_| ())
        })
        .await
    }

    /// What resuming with `inputs` would do next, computed on a copy: nothing is stored, run,
    /// sent or audited (it is a read).
    pub async fn preview_resume(
        &self,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        actor: &Actor,
        comment: &str,
    ) -> Result<preview::Preview> {
        let exec = self.get_execution(id).await?;
        let (ns, fid, rev) = (exec.namespace.clone(), exec.flow_id.clone(), exec.flow_revision);
        let (actor, comment) = (actor.clone(), comment.to_string());
        self.blocking(move |e| {
            let (_, flow, _) = e.inner.flows.get(&ns, &fid, rev)?;
            let lookup = |ns: &str, id: &str| e.inner.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
            // A preview runs nothing: a log.Fetch among the next tasks sees no lines.
            let no_logs = |_: &str| Vec::new();
            // Nothing is sent by a preview, so it names no delegates in a gate's notifications.
            let no_delegates = |_: &str, _: &[String], _: &[String]| Vec::new();
            let env = advance::StepEnv {
                renderer: &e.inner.renderer,
                services: e.inner.services.as_ref(),
                flow_lookup: &lookup,
                stored_logs: &no_logs,
                other_logs: &advance::no_other_logs,
                delegates: &no_delegates,
            };
            preview::preview(&flow, &exec, &select, &inputs, &actor, &comment, &env)
        })
        .await
    }

    /// Resumes many executions, each at its own pause; every id gets its own outcome. Commands
    /// are queued together so the writer commits them in a few transactions.
    pub async fn bulk_resume(
        &self,
        targets: Vec<(String, PauseSelector, Actor)>,
        inputs: BTreeMap<String, String>,
        reason: &str,
    ) -> Vec<(String, Result<Execution>)> {
        let ids = targets.iter().map(|(id, _, _)| id.clone()).collect();
        let per_id: std::collections::HashMap<String, (PauseSelector, Actor)> =
            targets.into_iter().map(|(id, s, a)| (id, (s, a))).collect();
        self.send_all(ids, |id, reply| Command::Resume {
            select: per_id.get(&id).map(|t| t.0.clone()).unwrap_or_default(),
            actor: per_id
                .get(&id)
                .map(|t| t.1.clone())
                .unwrap_or_else(|| Actor::new("", vec![])),
            id,
            inputs: inputs.clone(),
            reason: reason.to_string(),
            reply,
        })
        .await
    }

    /// Rejects a pause: its run ends FAILED with output `rejected`.
    pub async fn reject(&self, id: &str, select: PauseSelector, actor: &Actor, reason: &str) -> Result<Execution> {
        let (id, actor, reason) = (id.to_string(), actor.clone(), reason.to_string());
        self.send(|reply| Command::Reject {
            id,
            select,
            actor,
            reason,
            reply,
        })
        .await
    }

    pub async fn kill(&self, id: &str, actor: &Actor, reason: &str) -> Result<Execution> {
        let (id, actor, reason) = (id.to_string(), actor.clone(), reason.to_string());
        self.send(|reply| Command::Kill {
            id,
            actor,
            reason,
            reply: Some(reply),
        })
        .await
    }

    pub async fn bulk_kill(&self, ids: Vec<String>, actor: &Actor, reason: &str) -> Vec<(String, Result<Execution>)> {
        self.send_all(ids, |id, reply| Command::Kill {
            id,
            actor: actor.clone(),
            reason: reason.to_string(),
            reply: Some(reply),
        })
        .await
    }

    /// Queues one command per id before waiting for any answer, so they share transactions.
    async fn send_all(
        &self,
        ids: Vec<String>,
        make: impl Fn(String, writer::Reply) -> Command,
    ) -> Vec<(String, Result<Execution>)> {
        let mut waits = Vec::with_capacity(ids.len());
        for id in ids {
            let (reply, wait) = oneshot::channel();
            let sent = self.inner.commands.send(make(id.clone(), reply)).is_ok();
            waits.push((id, sent, wait));
        }
        let mut out = Vec::with_capacity(waits.len());
        for (id, sent, wait) in waits {
            let r = if sent {
                wait.await.unwrap_or(Err(EngineError::Unavailable))
            } else {
                Err(EngineError::Unavailable)
            };
            out.push((id, r));
        }
        out
    }

    /// Log lines of an execution from `from_seq`, at most `limit`.
    pub async fn logs(&self, id: &str, from_seq: u64, limit: usize) -> Result<Vec<LogLine>> {
        let id = id.to_string();
        self.blocking(move |e| Ok(e.inner.store.read()?.logs(&id, from_seq, limit)?))
            .await
    }
}

/// Administrative changes (users, groups, roles, tokens) on the running daemon go through the
/// writer like every other change; the caller is a blocking thread that waits for the commit.
impl crate::auth::Commit for Engine {
    fn commit(&self, change: crate::auth::AdminChange) -> std::result::Result<(), crate::store::StoreError> {
        let (done, wait) = std::sync::mpsc::channel();
        let command = Command::Change(Box::new(move |w| {
            change(w)?;
            Ok(Box::new(move || {
                let _ = done.send(());
            }) as writer::Delivery)
        }));
        let not_committed =
            || crate::store::StoreError::Storage("the change was not committed; see the daemon log".into());
        self.inner.commands.send(command).map_err(|_| not_committed())?;
        let committed = wait.recv().map_err(|_| not_committed());
        // Remembered principals are read again from now on (auth::Auth::authenticate).
        crate::auth::bump_rights_generation();
        committed
    }
}
