//! The single writer: every change to executions goes through this thread, which applies a batch
//! of commands in one redb transaction (group commit) and answers callers only after the commit.
//! Serializing all changes here is what makes resume, kill and timer expiry race safely: each sees
//! the state the previous one left, so exactly one of them wins. On a PostgreSQL database shared
//! with other daemons, execution-scoped batches run as row batches ([`WriterLoop::row_batch`]):
//! the executions' row locks do that serializing across daemons, and a batch that loses a lock
//! race is rolled back and run again exclusively.

mod advance_stored;
mod flow_resume;
mod flow_toggle;
mod http_poll;
mod job_done;
mod job_logs;
mod kill;
mod recover;
mod reject;
mod resume;
mod retry_new;
mod sla;
mod stale;
mod start;
mod timers;
mod triggers;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::{broadcast, oneshot};

use super::Actor;
use super::advance::{self, Effects, Job, StepEnv, Stepper, timer_kind};
use super::error::{EngineError, Result};
use super::execution::{Approval, Execution};
use super::flows::FlowRegistry;
use super::ids::now_ms;
use super::state::State;
use crate::expr::{ExprServices, Renderer};
use crate::flow::{Flow, TaskKind};
use crate::store::{Store, StoreError, TimerKey, Writer};
pub use crate::tasks::JobOutcome;

/// Largest number of queued commands applied in one transaction.
const MAX_BATCH: usize = 2048;
/// Quiet time after the last commit before a quick-repair checkpoint ([`WriterLoop::run`]).
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(250);
/// At most one checkpoint per this long (each writes ~1 MB).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub type Reply = oneshot::Sender<Result<Execution>>;

/// What a [`Command::Change`] hands back to run once its transaction is committed (its answer
/// to the caller, cache updates): nothing is told before the change is durable.
pub type Delivery = Box<dyn FnOnce() + Send>;

/// A change to state other than executions (KV, secrets, flows, audit records of refusals), made
/// in the writer's transaction. A domain error must be found before anything is written; a
/// storage error aborts the whole transaction.
pub type ChangeFn = Box<dyn FnOnce(&mut Writer) -> std::result::Result<Delivery, StoreError> + Send>;

/// Which paused task run a resume is for.
#[derive(Debug, Clone, Default)]
pub struct PauseSelector {
    pub task_run_id: Option<String>,
    pub task_id: Option<String>,
}

pub enum Command {
    Start {
        exec: Box<Execution>,
        reply: Reply,
    },
    Resume {
        id: String,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        actor: Actor,
        reason: String,
        reply: Reply,
    },
    Reject {
        id: String,
        select: PauseSelector,
        actor: Actor,
        reason: String,
        reply: Reply,
    },
    Kill {
        id: String,
        actor: Actor,
        reason: String,
        reply: Option<Reply>,
    },
    JobDone {
        execution_id: String,
        task_run_id: String,
        /// The attempt the job ran for: a late result of an earlier attempt is ignored.
        attempt: u32,
        outcome: JobOutcome,
    },
    /// Log lines of a job that still runs (a script's output as it comes).
    JobLogs {
        execution_id: String,
        task_run_id: String,
        lines: Vec<(String, String)>,
    },
    Timers {
        timers: Vec<TimerKey>,
        done: oneshot::Sender<()>,
    },
    /// Picks up an execution interrupted by a stop or crash: of its running task runs, those
    /// daemon `from` ran (all when `None`).
    Recover {
        id: String,
        from: Option<String>,
    },
    Advance {
        id: String,
    },
    ChildDone {
        child: Box<Execution>,
    },
    Change(ChangeFn),
    /// A Resume task asks to resume an execution (checked and audited as its flow).
    FlowResume(Box<advance::FlowResume>),
    /// A Toggle task asks to switch a trigger (checked and audited as its flow).
    FlowToggle(Box<advance::FlowToggle>),
    /// An HTTP trigger's poll answered and its condition held.
    HttpPollFired(Box<super::http_poll::PollResponse>),
    /// A call to a Webhook trigger; answered after the commit (`None`: conditions not met).
    Webhook {
        call: Box<WebhookCall>,
        reply: oneshot::Sender<Result<Option<Execution>>>,
    },
}

pub use triggers::WebhookCall;

/// Where a row batch's copy of a command sends its answer; forwarded to the caller's own
/// channel once the batch is committed (a copy that is thrown away answers nobody).
enum Proxy {
    None,
    Exec(oneshot::Receiver<Result<Execution>>),
    Ack(oneshot::Receiver<()>),
}

impl Command {
    /// Whether the command may go into a PostgreSQL row batch: it is about executions only
    /// (their rows are locked as they are read) and can be applied again from a copy if the
    /// batch is rolled back. Changes of anything else (flows, auth, KV, triggers, schedules)
    /// run in exclusive batches.
    fn row_scoped(&self) -> bool {
        match self {
            Command::Start { .. }
            | Command::Resume { .. }
            | Command::Reject { .. }
            | Command::Kill { .. }
            | Command::JobDone { .. }
            | Command::JobLogs { .. }
            | Command::Recover { .. }
            | Command::Advance { .. }
            | Command::ChildDone { .. } => true,
            Command::Timers { timers, .. } => timers
                .iter()
                .all(|t| t.kind != super::flows::SCHEDULE_TIMER && t.kind != super::flows::HTTP_POLL_TIMER),
            _ => false,
        }
    }

    /// A copy for a row batch (which may be rolled back and run again) whose answer goes to a
    /// channel of its own; `None` for a command that cannot be copied.
    fn row_copy(&self) -> Option<(Command, Proxy)> {
        fn exec() -> (Reply, Proxy) {
            let (tx, rx) = oneshot::channel();
            (tx, Proxy::Exec(rx))
        }
        Some(match self {
            Command::Start { exec: e, .. } => {
                let (reply, p) = exec();
                (Command::Start { exec: e.clone(), reply }, p)
            }
            Command::Resume {
                id,
                select,
                inputs,
                actor,
                reason,
                ..
            } => {
                let (reply, p) = exec();
                let c = Command::Resume {
                    id: id.clone(),
                    select: select.clone(),
                    inputs: inputs.clone(),
                    actor: actor.clone(),
                    reason: reason.clone(),
                    reply,
                };
                (c, p)
            }
            Command::Reject {
                id,
                select,
                actor,
                reason,
                ..
            } => {
                let (reply, p) = exec();
                let c = Command::Reject {
                    id: id.clone(),
                    select: select.clone(),
                    actor: actor.clone(),
                    reason: reason.clone(),
                    reply,
                };
                (c, p)
            }
            Command::Kill {
                id,
                actor,
                reason,
                reply: r,
            } => {
                let (reply, p) = match r {
                    Some(_) => {
                        let (reply, p) = exec();
                        (Some(reply), p)
                    }
                    None => (None, Proxy::None),
                };
                let c = Command::Kill {
                    id: id.clone(),
                    actor: actor.clone(),
                    reason: reason.clone(),
                    reply,
                };
                (c, p)
            }
            Command::JobDone {
                execution_id,
                task_run_id,
                attempt,
                outcome,
            } => (
                Command::JobDone {
                    execution_id: execution_id.clone(),
                    task_run_id: task_run_id.clone(),
                    attempt: *attempt,
                    outcome: outcome.clone(),
                },
                Proxy::None,
            ),
            Command::JobLogs {
                execution_id,
                task_run_id,
                lines,
            } => (
                Command::JobLogs {
                    execution_id: execution_id.clone(),
                    task_run_id: task_run_id.clone(),
                    lines: lines.clone(),
                },
                Proxy::None,
            ),
            Command::Timers { timers, .. } => {
                let (done, rx) = oneshot::channel();
                (
                    Command::Timers {
                        timers: timers.clone(),
                        done,
                    },
                    Proxy::Ack(rx),
                )
            }
            Command::Recover { id, from } => (
                Command::Recover {
                    id: id.clone(),
                    from: from.clone(),
                },
                Proxy::None,
            ),
            Command::Advance { id } => (Command::Advance { id: id.clone() }, Proxy::None),
            Command::ChildDone { child } => (Command::ChildDone { child: child.clone() }, Proxy::None),
            _ => return None,
        })
    }

    /// Hands the answer a committed copy got ([`Command::row_copy`]) to this command's caller.
    fn forward(self, proxy: Proxy) {
        match (self, proxy) {
            (
                Command::Start { reply, .. } | Command::Resume { reply, .. } | Command::Reject { reply, .. },
                Proxy::Exec(mut rx),
            )
            | (Command::Kill { reply: Some(reply), .. }, Proxy::Exec(mut rx)) => {
                if let Ok(answer) = rx.try_recv() {
                    let _ = reply.send(answer);
                }
            }
            (Command::Timers { done, .. }, Proxy::Ack(mut rx)) => {
                let _ = rx.try_recv().map(|()| done.send(()));
            }
            _ => {}
        }
    }

    /// Tells this command's caller that its batch failed.
    fn fail(self, e: &StoreError) {
        let err = || Err(EngineError::Store(StoreError::Storage(e.to_string())));
        match self {
            Command::Start { reply, .. }
            | Command::Resume { reply, .. }
            | Command::Reject { reply, .. }
            | Command::Kill { reply: Some(reply), .. } => {
                let _ = reply.send(err());
            }
            Command::Webhook { reply, .. } => {
                let _ = reply.send(Err(EngineError::Store(StoreError::Storage(e.to_string()))));
            }
            _ => {}
        }
    }

    /// The stored execution this command reads first, if it names one.
    fn execution_id(&self) -> Option<&str> {
        match self {
            Command::Start { exec, .. } => Some(&exec.id),
            Command::Resume { id, .. }
            | Command::Reject { id, .. }
            | Command::Kill { id, .. }
            | Command::Recover { id, .. }
            | Command::Advance { id } => Some(id),
            Command::JobDone { execution_id, .. } | Command::JobLogs { execution_id, .. } => Some(execution_id),
            _ => None,
        }
    }
}

/// `TOLLGATE_TEST_ROW_LOCK_HOLD_MS` (tests only): how long a row batch waits after locking its
/// executions, before applying its commands. It widens a real race; it changes no outcome.
fn row_lock_hold() -> Option<std::time::Duration> {
    static HOLD: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *HOLD.get_or_init(|| {
        std::env::var("TOLLGATE_TEST_ROW_LOCK_HOLD_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// Records, in the batch's transaction, that this daemon runs the jobs the batch dispatches
/// (on a shared PostgreSQL database another daemon takes them over if this one stops).
fn lease_jobs(w: &mut Writer, batch: &Batch) -> std::result::Result<(), StoreError> {
    for job in &batch.jobs {
        w.lease_execution(&job.execution_id)?;
    }
    Ok(())
}

/// On a shared database, notes this daemon as the runner of the task runs of `exec` that `jobs`
/// (a step's) dispatch: if it stops, the daemon taking over re-runs those and no others.
fn mark_runner(w: &Writer, exec: &mut Execution, jobs: &[Job]) {
    if jobs.is_empty() {
        return;
    }
    let Some(me) = w.daemon_id() else {
        return;
    };
    for job in jobs.iter().filter(|j| j.execution_id == exec.id) {
        if let Some(run) = exec.task_runs.iter_mut().find(|r| r.id == job.task_run_id) {
            run.runner = Some(me.clone());
        }
    }
}

/// What a committed batch hands back to the async world.
#[derive(Default)]
struct Batch {
    replies: Vec<(Reply, Result<Execution>)>,
    changed: Vec<Execution>,
    jobs: Vec<Job>,
    timers_added: bool,
    timer_acks: Vec<oneshot::Sender<()>>,
    deliveries: Vec<Delivery>,
    /// Directories of WorkingDirectory task runs that ended, removed once committed.
    remove_dirs: Vec<std::path::PathBuf>,
    /// HTTP trigger polls that fell due, sent once committed.
    polls: Vec<super::http_poll::HttpPoll>,
}

pub struct WriterLoop {
    pub store: Store,
    pub flows: Arc<FlowRegistry>,
    pub renderer: Arc<Renderer>,
    pub services: Arc<dyn ExprServices>,
    pub events: broadcast::Sender<Arc<Execution>>,
    pub jobs: tokio::sync::mpsc::UnboundedSender<(Job, tokio::sync::watch::Receiver<bool>)>,
    pub polls: tokio::sync::mpsc::UnboundedSender<super::http_poll::HttpPoll>,
    /// Running jobs, told to stop when a committed change ends their task run.
    pub running: Arc<super::jobs::RunningJobs>,
    pub timer_wake: Arc<tokio::sync::Notify>,
    /// Where script tasks (and WorkingDirectory tasks) get their directories.
    pub scripts_dir: Option<std::path::PathBuf>,
    /// Per flow revision: whether a template of it calls `errorLogs()` (only then does a step
    /// read the execution's log lines for it).
    pub error_logs_flows: std::sync::Mutex<std::collections::HashMap<(String, String, u32), bool>>,
    pub pending_files: PendingFiles,
}

impl WriterLoop {
    /// The daemon's services for a step of `exec`, with its ERROR lines read through the
    /// writer's transaction when the flow calls `errorLogs()` (so lines this transaction appended,
    /// such as a job's failure, are seen by the `errors` branch it starts).
    fn step_services<'a>(&'a self, w: &Writer, flow: &Flow, exec: &Execution) -> TxServices<'a> {
        let key = (flow.namespace.clone(), flow.id.clone(), exec.flow_revision);
        let uses = {
            let mut cache = self.error_logs_flows.lock().unwrap_or_else(|p| p.into_inner());
            *cache
                .entry(key)
                .or_insert_with(|| serde_json::to_string(flow).is_ok_and(|t| crate::expr::uses_error_logs(&t)))
        };
        let error_logs =
            uses.then(
                || match w.logs::<super::execution::LogLine>(&exec.id, 0, crate::services::MAX_ERROR_LOG_SCAN) {
                    Ok(lines) => crate::services::error_entries(&lines),
                    Err(e) => {
                        tracing::error!(execution.id = %exec.id, error = %e, "cannot read the logs for errorLogs()");
                        Vec::new()
                    }
                },
            );
        TxServices {
            inner: self.services.as_ref(),
            error_logs,
            pending_files: Some(&self.pending_files),
        }
    }

    pub fn run(self, rx: std::sync::mpsc::Receiver<Command>) {
        // With quick repair on idle (the default), a checkpoint follows the last commit once no
        // command came for CHECKPOINT_IDLE, at most once per CHECKPOINT_EVERY: a crash while idle
        // then restarts without repairing the whole file, for ~1 MB written per checkpoint.
        let checkpoints = self.store.quick_repair() == crate::store::QuickRepair::Idle;
        let mut last_commit: Option<std::time::Instant> = None;
        let mut last_checkpoint: Option<std::time::Instant> = None;
        loop {
            let next = match last_commit.filter(|_| checkpoints) {
                None => rx.recv().map_err(|_| ()),
                Some(committed) => {
                    let due =
                        (committed + CHECKPOINT_IDLE).max(last_checkpoint.map_or(committed, |c| c + CHECKPOINT_EVERY));
                    match rx.recv_timeout(due.saturating_duration_since(std::time::Instant::now())) {
                        Ok(c) => Ok(c),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if let Err(e) = self.store.checkpoint() {
                                tracing::warn!(error = %e, "cannot save the store's allocator state");
                            }
                            last_commit = None;
                            last_checkpoint = Some(std::time::Instant::now());
                            continue;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(()),
                    }
                }
            };
            let Ok(first) = next else { break };
            last_commit = Some(std::time::Instant::now());
            let mut cmds = VecDeque::from([first]);
            while cmds.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => cmds.push_back(c),
                    Err(_) => break,
                }
            }
            if self.store.postgres().is_some_and(|pg| pg.row_batches()) && cmds.iter().all(Command::row_scoped) {
                match self.row_batch(&cmds) {
                    Ok((batch, proxies, left)) => {
                        self.deliver(batch);
                        for (cmd, proxy) in cmds.into_iter().zip(proxies) {
                            cmd.forward(proxy);
                        }
                        self.leftovers(left);
                        continue;
                    }
                    Err(StoreError::Conflict { message, .. }) => {
                        // Rolled back, nothing written: the same commands again, exclusively
                        // (no other batch runs beside it, so it cannot lose a race again).
                        tracing::info!(reason = %message, "row batch rolled back; running it exclusively");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "write transaction failed; the batch was not applied");
                        for cmd in cmds {
                            cmd.fail(&e);
                        }
                        continue;
                    }
                }
            }
            let mut batch = Batch::default();
            self.pending_files.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let lock_first = self.store.write_contended();
            let outcome = self.store.write(|w| -> std::result::Result<(), StoreError> {
                if lock_first {
                    // PostgreSQL with other daemons writing: wait for the write lock first and
                    // close the batch only then, so the commands that came meanwhile share the
                    // transaction (the others' turns are long; batches stay as large as with
                    // one daemon instead of a third of it).
                    w.begin_now()?;
                    while cmds.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(c) => cmds.push_back(c),
                            Err(_) => break,
                        }
                    }
                }
                // On PostgreSQL: one round trip for the batch's executions instead of one each.
                let ids: Vec<&str> = cmds.iter().filter_map(Command::execution_id).collect();
                w.prefetch_executions(&ids)?;
                let mut budget = MAX_BATCH * 8;
                while let Some(cmd) = cmds.pop_front() {
                    self.apply(w, cmd, &mut batch, &mut cmds)?;
                    budget = budget.saturating_sub(1);
                    if budget == 0 {
                        break;
                    }
                }
                lease_jobs(w, &batch)
            });
            match outcome {
                Ok(()) => self.deliver(batch),
                Err(e) => {
                    tracing::error!(error = %e, "write transaction failed; the batch was not applied");
                    for (reply, _) in batch.replies {
                        let _ = reply.send(Err(EngineError::Store(StoreError::Storage(e.to_string()))));
                    }
                }
            }
            self.leftovers(cmds);
        }
    }

    /// Follow-ups left over after a batch's budget run in the next transaction.
    fn leftovers(&self, mut cmds: VecDeque<Command>) {
        if cmds.is_empty() {
            return;
        }
        tracing::warn!(
            left = cmds.len(),
            "batch budget exhausted; continuing in the next transaction"
        );
        let mut batch = Batch::default();
        let res = self.store.write(|w| -> std::result::Result<(), StoreError> {
            while let Some(cmd) = cmds.pop_front() {
                self.apply(w, cmd, &mut batch, &mut VecDeque::new())?;
            }
            lease_jobs(w, &batch)
        });
        if res.is_ok() {
            self.deliver(batch);
        }
    }

    /// Applies copies of `cmds` (all [`Command::row_scoped`]) as a PostgreSQL row batch: their
    /// executions locked in key order up front, the executions of due timers locked unless
    /// another batch holds them (those timers are left for a later batch), any other execution
    /// locked when first read. Gives back the committed batch, the copies' answers and the
    /// follow-ups left over; on a lost lock race ([`StoreError::Conflict`]) nothing was
    /// written and nothing was told, and the caller runs `cmds` themselves again.
    #[allow(clippy::type_complexity)]
    fn row_batch(
        &self,
        cmds: &VecDeque<Command>,
    ) -> std::result::Result<(Batch, Vec<Proxy>, VecDeque<Command>), StoreError> {
        let mut copies = VecDeque::with_capacity(cmds.len());
        let mut proxies = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let Some((copy, proxy)) = cmd.row_copy() else {
                return Err(StoreError::Conflict {
                    database: String::new(),
                    message: "a command that cannot be copied".into(),
                    needs_exclusive: true,
                });
            };
            copies.push_back(copy);
            proxies.push(proxy);
        }
        let mut batch = Batch::default();
        self.pending_files.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.store.write_as(true, |w| -> std::result::Result<(), StoreError> {
            let mut ids: Vec<&str> = copies.iter().filter_map(Command::execution_id).collect();
            ids.sort_unstable();
            ids.dedup();
            w.prefetch_executions(&ids)?;
            let timed: Vec<String> = copies
                .iter()
                .filter_map(|c| match c {
                    Command::Timers { timers, .. } => Some(timers.iter().map(|t| t.execution_id.clone())),
                    _ => None,
                })
                .flatten()
                .filter(|id| !id.is_empty())
                .collect();
            if !timed.is_empty() {
                let timed: Vec<&str> = timed.iter().map(String::as_str).collect();
                let skipped = w.lock_executions_skip_locked(&timed)?;
                if !skipped.is_empty() {
                    tracing::debug!(
                        executions = skipped.len(),
                        "due timers left to the batch holding their execution"
                    );
                    for c in copies.iter_mut() {
                        if let Command::Timers { timers, .. } = c {
                            timers.retain(|t| !skipped.contains(&t.execution_id));
                        }
                    }
                }
            }
            if let Some(hold) = row_lock_hold() {
                // Tests only: keep the rows just locked while another daemon locks its own, so
                // that two batches locking two executions in opposite orders really deadlock.
                std::thread::sleep(hold);
            }
            let mut budget = MAX_BATCH * 8;
            while let Some(cmd) = copies.pop_front() {
                self.apply(w, cmd, &mut batch, &mut copies)?;
                budget = budget.saturating_sub(1);
                if budget == 0 {
                    break;
                }
            }
            lease_jobs(w, &batch)
        })?;
        Ok((batch, proxies, copies))
    }

    /// Stores a file in this transaction, readable by later steps of it (see [`PendingFiles`]).
    fn put_file(
        &self,
        w: &mut Writer,
        execution_id: &str,
        path: &str,
        content: Vec<u8>,
    ) -> std::result::Result<(), StoreError> {
        w.put_file(execution_id, path, &content)?;
        self.pending_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((execution_id.to_string(), path.to_string()), Arc::new(content));
        Ok(())
    }

    fn deliver(&self, batch: Batch) {
        for (reply, result) in batch.replies {
            let _ = reply.send(result);
        }
        // Registered before the changes are looked at: a job started and killed in one batch stops.
        for job in batch.jobs {
            let cancel = self.running.register(&job.execution_id, &job.task_run_id);
            let _ = self.jobs.send((job, cancel));
        }
        for poll in batch.polls {
            let _ = self.polls.send(poll);
        }
        // A batch may store one execution several times: only its last version says which of
        // its jobs still run (an earlier one lacks the task runs of jobs started after it).
        let mut last = std::collections::HashMap::new();
        for (i, exec) in batch.changed.iter().enumerate() {
            last.insert(exec.id.as_str(), i);
        }
        let last: std::collections::HashSet<usize> = last.into_values().collect();
        for (i, exec) in batch.changed.into_iter().enumerate() {
            if last.contains(&i) {
                self.running.changed(&exec);
            }
            let _ = self.events.send(Arc::new(exec));
        }
        if batch.timers_added {
            self.timer_wake.notify_one();
        }
        for ack in batch.timer_acks {
            let _ = ack.send(());
        }
        for deliver in batch.deliveries {
            deliver();
        }
        if !batch.remove_dirs.is_empty() {
            // Off the writer thread: a large directory must not hold up the next transaction.
            let dirs = batch.remove_dirs;
            let _ = std::thread::Builder::new()
                .name("tollgate-workdir-rm".into())
                .spawn(move || {
                    for d in dirs {
                        let _ = std::fs::remove_dir_all(d);
                    }
                });
        }
    }

    /// Applies one command. Domain errors go to the caller's reply and write nothing;
    /// only storage errors abort the transaction.
    fn apply(
        &self,
        w: &mut Writer,
        cmd: Command,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> std::result::Result<(), StoreError> {
        match cmd {
            Command::Change(change) => {
                batch.deliveries.push(change(w)?);
                Ok(())
            }
            Command::Start { exec, reply } => {
                let result = self.start(w, *exec, batch, follow);
                self.reply(reply, result, batch)
            }
            Command::Resume {
                id,
                select,
                inputs,
                actor,
                reason,
                reply,
            } => {
                let result = self.resume(w, &id, &select, &inputs, &actor, &reason, batch, follow);
                self.reply(reply, result, batch)
            }
            Command::Reject {
                id,
                select,
                actor,
                reason,
                reply,
            } => {
                let result = self.reject(w, &id, &select, &actor, &reason, batch, follow);
                self.reply(reply, result, batch)
            }
            Command::Kill {
                id,
                actor,
                reason,
                reply,
            } => {
                let result = self.kill(w, &id, &actor, &reason, batch, follow);
                match reply {
                    Some(r) => self.reply(r, result, batch),
                    None => result.map(|_| ()).or_else(ignore_domain),
                }
            }
            Command::FlowResume(r) => self
                .flow_resume(w, *r, batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
            Command::FlowToggle(t) => self
                .flow_toggle(w, *t, batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
            Command::HttpPollFired(fired) => self.http_poll_fired(w, &fired, follow).or_else(ignore_domain),
            Command::JobDone {
                execution_id,
                task_run_id,
                attempt,
                outcome,
            } => {
                // Counted once committed (a row batch may be rolled back and run again).
                let ok = outcome.result.is_ok();
                batch
                    .deliveries
                    .push(Box::new(move || crate::metrics::process().task_run_finished(ok)));
                self.job_done(w, &execution_id, &task_run_id, attempt, outcome, batch, follow)
                    .map(|_| ())
                    .or_else(ignore_domain)
            }
            Command::JobLogs {
                execution_id,
                task_run_id,
                lines,
            } => self
                .job_logs(w, &execution_id, &task_run_id, lines, batch)
                .or_else(ignore_domain),
            Command::Timers { timers, done } => {
                for t in timers {
                    // Daemons sharing a database may all read the same due timer: only the
                    // transaction that still finds it fires it.
                    if !w.has_timer(&t)? {
                        continue;
                    }
                    w.delete_timer(&t)?;
                    let fired = if t.kind == super::flows::SCHEDULE_TIMER {
                        self.fire_schedule(w, &t, batch, follow)
                    } else if t.kind == super::flows::HTTP_POLL_TIMER {
                        self.fire_http_poll(w, &t, batch)
                    } else {
                        self.fire_timer(w, &t, batch, follow).map(|_| ())
                    };
                    if let Err(e) = fired {
                        ignore_domain(e)?;
                    }
                }
                batch.timer_acks.push(done);
                Ok(())
            }
            Command::Webhook { call, reply } => {
                let result = match self.webhook(w, &call, batch, follow) {
                    Err(EngineError::Store(e)) => return Err(e),
                    other => other,
                };
                batch.deliveries.push(Box::new(move || {
                    let _ = reply.send(result);
                }));
                Ok(())
            }
            Command::Recover { id, from } => self
                .recover(w, &id, from.as_deref(), batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
            Command::Advance { id } => self
                .advance_stored(w, &id, batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
            Command::ChildDone { child } => self
                .child_done(w, &child, batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
        }
    }

    fn reply(&self, reply: Reply, result: Result<Execution>, batch: &mut Batch) -> std::result::Result<(), StoreError> {
        match result {
            Err(EngineError::Store(e)) => Err(e),
            other => {
                batch.replies.push((reply, other));
                Ok(())
            }
        }
    }

    fn flow_of(&self, exec: &Execution) -> Result<Arc<Flow>> {
        self.flows.revision(&exec.namespace, &exec.flow_id, exec.flow_revision)
    }

    /// Runs the stepper on `exec` and stores the result with its effects.
    fn step_and_store(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        flow: &Flow,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut fx = Effects::default();
        if let Some(c) = &flow.concurrency
            && matches!(exec.state, State::Created | State::Queued)
            && !self.admit(w, &mut exec, flow, c, &mut fx)?
            // A queued execution's MAX_DURATION counts from its creation too: its timer's step
            // goes on to the walk, which checks the flow `sla` and leaves it queued.
            && (exec.state != State::Queued || flow.sla.is_empty())
        {
            self.store_with_effects(w, &exec, fx, batch, follow)?;
            return Ok(exec);
        }
        exec.remember_secret_values();
        let lookup = |ns: &str, id: &str| self.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
        let services = self.step_services(w, flow, &exec);
        let stored_logs = |id: &str| {
            w.logs(id, 0, crate::engine::advance::FETCH_MAX_LINES)
                .unwrap_or_default()
        };
        let other_logs = |ns: &str, flow_id: &str, id: &str| {
            let other: Execution = w.execution(id).ok().flatten()?;
            (other.namespace == ns && other.flow_id == flow_id).then(|| stored_logs(id))
        };
        let delegates = delegates_in(w, now_ms());
        let env = StepEnv {
            renderer: &self.renderer,
            services: &services,
            flow_lookup: &lookup,
            stored_logs: &stored_logs,
            other_logs: &other_logs,
            delegates: &delegates,
        };
        let mut stepper = Stepper {
            flow,
            exec: &mut exec,
            now: now_ms(),
            fx: &mut fx,
            env: &env,
        };
        stepper.advance();
        // The delegations were read through `w`: release them before writing.
        drop(delegates);
        mark_runner(w, &mut exec, &fx.jobs);
        self.store_with_effects(w, &exec, fx, batch, follow)?;
        Ok(exec)
    }

    fn store_with_effects(
        &self,
        w: &mut Writer,
        exec: &Execution,
        fx: Effects,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        for t in &fx.timers_del {
            w.delete_timer(t)?;
        }
        for t in &fx.timers_add {
            w.put_timer(t)?;
            batch.timers_added = true;
        }
        for line in &fx.logs {
            w.append_log(line)?;
        }
        // Before the children: a ForEachItem's subflows read their batch in this transaction.
        for (execution_id, path, content) in fx.files {
            self.put_file(w, &execution_id, &path, content)?;
        }
        for child in fx.children {
            store_started(w, &child, ("parentExecutionId", exec.id.clone().into()), follow)?;
        }
        for child in fx.kill_children {
            follow.push_back(Command::Kill {
                id: child,
                actor: Actor::system(),
                reason: "parent execution killed".into(),
                reply: None,
            });
        }
        if fx.finished.is_some() && exec.parent.as_ref().is_some_and(|p| p.wait) {
            follow.push_back(Command::ChildDone {
                child: Box::new(exec.clone()),
            });
        }
        let previous = w.stored_state(&exec.id)?;
        if previous != Some(exec.state) && exec.state != State::Created {
            // Decided in this transaction: a crash can neither lose nor double the triggered start.
            self.fire_flow_triggers(w, exec, follow)?;
        }
        w.put_execution(exec)?;
        // A slot of the flow's `concurrency` freed: the oldest QUEUED execution is admitted in
        // this same transaction, so a crash can neither lose nor double the hand-over.
        if exec.state.is_terminal()
            && previous.is_some_and(|p| !p.is_terminal() && p != State::Queued)
            && let Ok(flow) = self.flow_of(exec)
            && flow
                .concurrency
                .as_ref()
                .is_some_and(|c| c.behavior == crate::flow::ConcurrencyBehavior::Queue)
            && let Some(next) = w
                .flow_execution_ids_in_state(State::Queued, &exec.namespace, &exec.flow_id)?
                .into_iter()
                .next()
        {
            follow.push_back(Command::Advance { id: next });
        }
        batch.jobs.extend(fx.jobs);
        for r in fx.resumes {
            follow.push_back(Command::FlowResume(Box::new(r)));
        }
        for t in fx.toggles {
            follow.push_back(Command::FlowToggle(Box::new(t)));
        }
        self.ended_working_directories(exec, batch);
        batch.changed.push(exec.clone());
        Ok(())
    }

    /// A WorkingDirectory's directory goes once its task run has ended (whatever the outcome,
    /// as Kestra's temporary directory).
    fn ended_working_directories(&self, exec: &Execution, batch: &mut Batch) {
        let Some(root) = &self.scripts_dir else { return };
        for run in &exec.task_runs {
            if run.task_type == crate::flow::types::WORKING_DIRECTORY && run.state.is_terminal() {
                let dir = root.join(crate::tasks::WorkDir::dir_name(&run.id));
                if dir.exists() {
                    batch.remove_dirs.push(dir);
                }
            }
        }
    }

    /// Flow `concurrency`: whether `exec` (CREATED or QUEUED) may run now. When the flow's
    /// RUNNING and PAUSED executions fill the limit, a new execution is queued, cancelled or failed
    /// as `behavior` says (Kestra's messages); a queued one stays queued.
    fn admit(
        &self,
        w: &Writer,
        exec: &mut Execution,
        flow: &Flow,
        c: &crate::flow::Concurrency,
        fx: &mut Effects,
    ) -> Result<bool> {
        let mut running = 0usize;
        for state in [State::Running, State::Paused, State::Killing] {
            running += w
                .flow_execution_ids_in_state(state, &exec.namespace, &exec.flow_id)?
                .iter()
                .filter(|id| **id != exec.id)
                .count();
        }
        let now = now_ms();
        if running < c.limit as usize {
            if exec.state == State::Queued {
                exec.set_state(State::Running, now);
                push_exec_log(exec, fx, "INFO", "a concurrency slot freed: the execution starts", now);
            }
            return Ok(true);
        }
        if exec.state == State::Queued {
            return Ok(false);
        }
        use crate::flow::ConcurrencyBehavior as B;
        let (state, level, message) = match c.behavior {
            B::Queue => (
                State::Queued,
                "INFO",
                format!("Flow is queued due to concurrency limit exceeded, {running} running(s)"),
            ),
            B::Cancel => (
                State::Cancelled,
                "INFO",
                format!(
                    "Execution cancelled: concurrency limit {} reached, {running} running(s)",
                    c.limit
                ),
            ),
            B::Fail => (
                State::Failed,
                "ERROR",
                format!(
                    "Flow is FAILED due to concurrency limit exceeded ({} running(s), limit {})",
                    running, c.limit
                ),
            ),
        };
        exec.set_state(state, now);
        push_exec_log(exec, fx, level, &message, now);
        if state.is_terminal() {
            fx.finished = Some(state);
        } else {
            // Kestra counts a MAX_DURATION `sla` from the creation, queue time included; the
            // step that admits it later finds the SLA exceeded if it is.
            fx.timers_add.extend(advance::flow_sla_timers(flow, exec));
        }
        Ok(false)
    }

    fn load(&self, w: &Writer, id: &str) -> Result<Execution> {
        w.execution(id)?
            .ok_or_else(|| EngineError::NotFound(format!("execution '{id}' not found")))
    }
}

/// Domain errors of follow-up commands have no caller to report to: log them and go on.
/// An execution-level log line (no task run).
fn push_exec_log(exec: &mut Execution, fx: &mut Effects, level: &str, message: &str, now: i64) {
    fx.logs.push(crate::engine::execution::LogLine {
        seq: exec.log_seq,
        execution_id: exec.id.clone(),
        task_run_id: String::new(),
        task_id: String::new(),
        level: level.into(),
        message: message.into(),
        time_ms: now,
    });
    exec.log_seq += 1;
}

fn ignore_domain(e: EngineError) -> std::result::Result<(), StoreError> {
    match e {
        EngineError::Store(s) => Err(s),
        other => {
            tracing::debug!(error = %other, "command not applied");
            Ok(())
        }
    }
}

/// Stores an execution the daemon started (subflow child, triggered or scheduled run), audited
/// in the same transaction with `origin` saying what started it, and queues its first step.
fn store_started(
    w: &mut Writer,
    new: &Execution,
    origin: (&str, Value),
    follow: &mut VecDeque<Command>,
) -> std::result::Result<(), StoreError> {
    w.put_execution(new)?;
    let mut values = masked(&new.inputs, &new.secret_inputs);
    values.insert(origin.0.into(), origin.1);
    audit_exec(w, new, &new.started_by, "start", "", Value::Object(values), "", "OK")?;
    follow.push_back(Command::Advance { id: new.id.clone() });
    Ok(())
}

/// SECRET values replaced by `******`, for the audit log.
fn masked(values: &Map<String, Value>, secret_ids: &[String]) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let v = if secret_ids.contains(k) && !v.is_null() {
                Value::String("******".into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Appends an audit record about `exec` in the current transaction.
/// Records a refused resume or reject (at the pause it named, or the first that waits) and gives
/// back the refusal; an audit failure is the error then.
fn audit_refused_decision(
    w: &mut Writer,
    exec: &Execution,
    select: &PauseSelector,
    actor: &Actor,
    action: &str,
    reason: &str,
    refusal: String,
) -> EngineError {
    let task = select
        .task_id
        .clone()
        .or_else(|| exec.paused_runs().next().map(|r| r.task_id.clone()));
    let denied = format!("DENIED: {refusal}");
    match audit_exec(
        w,
        exec,
        &actor.user,
        action,
        task.as_deref().unwrap_or(""),
        Value::Null,
        reason,
        &denied,
    ) {
        Ok(()) => EngineError::PermissionDenied(refusal),
        Err(e) => e.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn audit_exec(
    w: &mut Writer,
    exec: &Execution,
    user: &str,
    action: &str,
    task_id: &str,
    values: Value,
    reason: &str,
    result: &str,
) -> std::result::Result<(), StoreError> {
    crate::audit::append(
        w,
        crate::audit::Entry {
            user: user.to_string(),
            action: action.to_string(),
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            execution_id: exec.id.clone(),
            task_id: task_id.to_string(),
            values,
            reason: reason.to_string(),
            result: result.to_string(),
            on_behalf_of: String::new(),
        },
    )
}

/// [`audit_exec`] for a decision a delegate may have made for someone else ("bob for ana").
#[allow(clippy::too_many_arguments)]
fn audit_decision(
    w: &mut Writer,
    exec: &Execution,
    actor: &Actor,
    on_behalf_of: &str,
    action: &str,
    task_id: &str,
    values: Value,
    reason: &str,
    result: &str,
) -> std::result::Result<(), StoreError> {
    crate::audit::append(
        w,
        crate::audit::Entry {
            user: actor.user.clone(),
            action: action.to_string(),
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            execution_id: exec.id.clone(),
            task_id: task_id.to_string(),
            values,
            reason: reason.to_string(),
            result: result.to_string(),
            on_behalf_of: on_behalf_of.to_string(),
        },
    )
}

/// The daemon's services, with the execution's ERROR lines read ahead in the writer's
/// transaction (see [`WriterLoop::step_services`]).
pub(crate) struct TxServices<'a> {
    pub inner: &'a dyn ExprServices,
    /// None when the flow never calls `errorLogs()`.
    pub error_logs: Option<Vec<Value>>,
    /// Files written earlier in this transaction (not visible to the store's snapshots yet).
    pub pending_files: Option<&'a PendingFiles>,
}

/// Files written in the writer's current transaction, by (execution id, path): a ForEachItem's
/// batches are read by its subflows, and the subflows' outputs by its `_merge`, in the same
/// transaction they were written in. Emptied before each transaction.
pub(crate) type PendingFiles = std::sync::Mutex<std::collections::HashMap<(String, String), Arc<Vec<u8>>>>;

impl TxServices<'_> {
    /// A file written in this transaction, once `namespace` may read it.
    fn pending(&self, namespace: &str, uri: &str) -> std::result::Result<Option<Arc<Vec<u8>>>, String> {
        let Some(pending) = self.pending_files else {
            return Ok(None);
        };
        let Ok(f) = crate::engine::files::parse_uri(uri) else {
            return Ok(None);
        };
        let found = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(f.execution_id.clone(), f.path.clone()))
            .cloned();
        match found {
            Some(bytes) => crate::engine::files::check_access(self, namespace, uri)
                .map(|_| Some(bytes))
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }
}

impl ExprServices for TxServices<'_> {
    fn secret(&self, namespace: &str, name: &str) -> Option<String> {
        self.inner.secret(namespace, name)
    }
    fn kv(&self, namespace: &str, key: &str) -> Option<Value> {
        self.inner.kv(namespace, key)
    }
    fn app_link(&self, namespace: &str, execution_id: &str, app_id: Option<&str>) -> String {
        self.inner.app_link(namespace, execution_id, app_id)
    }
    fn flow_allowed(&self, from: &str, target: &str, role: crate::auth::Role) -> bool {
        self.inner.flow_allowed(from, target, role)
    }
    fn file(&self, namespace: &str, uri: &str) -> std::result::Result<Option<crate::expr::FileView>, String> {
        match self.pending(namespace, uri)? {
            Some(bytes) => Ok(Some(crate::engine::files::view_of(&bytes))),
            None => self.inner.file(namespace, uri),
        }
    }
    fn read_file(&self, namespace: &str, uri: &str, max: usize) -> std::result::Result<Vec<u8>, String> {
        match self.pending(namespace, uri)? {
            Some(bytes) if bytes.len() > max => Err(format!(
                "{uri} holds {} bytes; at most {max} can be read here",
                bytes.len()
            )),
            Some(bytes) => Ok(bytes.to_vec()),
            None => self.inner.read_file(namespace, uri, max),
        }
    }
    fn error_logs(&self, execution_id: &str) -> Vec<Value> {
        match &self.error_logs {
            Some(lines) => lines.clone(),
            None => self.inner.error_logs(execution_id),
        }
    }
}

/// Appends one line to a task run's log and advances the execution's log sequence; the caller
/// masks what needs masking.
fn append_task_log(
    w: &mut Writer,
    exec: &mut Execution,
    (task_run_id, task_id): (&str, &str),
    level: &str,
    message: String,
    now: i64,
) -> Result<()> {
    let line = crate::engine::execution::LogLine {
        seq: exec.log_seq,
        execution_id: exec.id.clone(),
        task_run_id: task_run_id.to_string(),
        task_id: task_id.to_string(),
        level: level.to_string(),
        message,
        time_ms: now,
    };
    exec.log_seq += 1;
    w.append_log(&line)?;
    Ok(())
}

/// The delegates who may currently decide a gate assigned to `users`/`groups` in `namespace`
/// (delegations holding now whose delegator is listed or in a listed group), for notifications.
fn delegates_of(
    w: &Writer,
    namespace: &str,
    users: &[String],
    groups: &[String],
    now: i64,
) -> std::result::Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = Vec::new();
    for d in w.delegations()? {
        if !d.holds_at(now) || !crate::store::namespace_within(namespace, &d.namespace) {
            continue;
        }
        let listed = users.iter().any(|u| u.eq_ignore_ascii_case(&d.from_user))
            || (!groups.is_empty()
                && w.user(&d.from_user)?
                    .is_some_and(|u| u.groups.iter().any(|g| groups.contains(g))));
        if listed && !out.iter().any(|o| o.eq_ignore_ascii_case(&d.to_user)) {
            out.push(d.to_user.clone());
        }
    }
    Ok(out)
}

/// `StepEnv::delegates` read in this transaction. A store error is logged and names nobody: the
/// notification still reaches the assignees.
fn delegates_in(w: &Writer, now: i64) -> impl Fn(&str, &[String], &[String]) -> Vec<String> + '_ {
    move |namespace, users, groups| match delegates_of(w, namespace, users, groups, now) {
        Ok(delegates) => delegates,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the delegations for a gate's notification");
            Vec::new()
        }
    }
}
