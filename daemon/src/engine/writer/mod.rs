//! The single writer: every change to executions goes through this thread, which applies a batch
//! of commands in one redb transaction (group commit) and answers callers only after the commit.
//! Serializing all changes here is what makes resume, kill and timer expiry race safely: each sees
//! the state the previous one left, so exactly one of them wins.

mod advance_stored;
mod job_done;
mod kill;
mod recover;
mod reject;
mod resume;
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
        outcome: JobOutcome,
    },
    Timers {
        timers: Vec<TimerKey>,
        done: oneshot::Sender<()>,
    },
    /// Picks up an execution interrupted by a stop or crash.
    Recover {
        id: String,
    },
    Advance {
        id: String,
    },
    ChildDone {
        child: Box<Execution>,
    },
    Change(ChangeFn),
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
}

pub struct WriterLoop {
    pub store: Store,
    pub flows: Arc<FlowRegistry>,
    pub renderer: Arc<Renderer>,
    pub services: Arc<dyn ExprServices>,
    pub events: broadcast::Sender<Arc<Execution>>,
    pub jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    pub timer_wake: Arc<tokio::sync::Notify>,
}

impl WriterLoop {
    pub fn run(self, rx: std::sync::mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut cmds = VecDeque::from([first]);
            while cmds.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => cmds.push_back(c),
                    Err(_) => break,
                }
            }
            let mut batch = Batch::default();
            let outcome = self.store.write(|w| -> std::result::Result<(), StoreError> {
                let mut budget = MAX_BATCH * 8;
                while let Some(cmd) = cmds.pop_front() {
                    self.apply(w, cmd, &mut batch, &mut cmds)?;
                    budget = budget.saturating_sub(1);
                    if budget == 0 {
                        break;
                    }
                }
                Ok(())
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
            // Follow-ups left over after the budget run in the next transaction.
            if !cmds.is_empty() {
                tracing::warn!(
                    left = cmds.len(),
                    "batch budget exhausted; continuing in the next transaction"
                );
                let mut batch = Batch::default();
                let res = self.store.write(|w| -> std::result::Result<(), StoreError> {
                    while let Some(cmd) = cmds.pop_front() {
                        self.apply(w, cmd, &mut batch, &mut VecDeque::new())?;
                    }
                    Ok(())
                });
                if res.is_ok() {
                    self.deliver(batch);
                }
            }
        }
    }

    fn deliver(&self, batch: Batch) {
        for (reply, result) in batch.replies {
            let _ = reply.send(result);
        }
        for exec in batch.changed {
            let _ = self.events.send(Arc::new(exec));
        }
        for job in batch.jobs {
            let _ = self.jobs.send(job);
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
            Command::JobDone {
                execution_id,
                task_run_id,
                outcome,
            } => self
                .job_done(w, &execution_id, &task_run_id, outcome, batch, follow)
                .map(|_| ())
                .or_else(ignore_domain),
            Command::Timers { timers, done } => {
                for t in timers {
                    w.delete_timer(&t)?;
                    let fired = if t.kind == super::flows::SCHEDULE_TIMER {
                        self.fire_schedule(w, &t, batch, follow)
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
            Command::Recover { id } => self.recover(w, &id, batch, follow).map(|_| ()).or_else(ignore_domain),
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
        exec.remember_secret_values();
        let lookup = |ns: &str, id: &str| self.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
        let env = StepEnv {
            renderer: &self.renderer,
            services: self.services.as_ref(),
            flow_lookup: &lookup,
        };
        let mut stepper = Stepper {
            flow,
            exec: &mut exec,
            now: now_ms(),
            fx: &mut fx,
            env: &env,
        };
        stepper.advance();
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
        if previous != Some(exec.state) && (exec.state.is_terminal() || exec.state == State::Paused) {
            // Decided in this transaction: a crash can neither lose nor double the triggered start.
            self.fire_flow_triggers(w, exec, follow)?;
        }
        w.put_execution(exec)?;
        batch.jobs.extend(fx.jobs);
        batch.changed.push(exec.clone());
        Ok(())
    }

    fn load(&self, w: &Writer, id: &str) -> Result<Execution> {
        w.execution(id)?
            .ok_or_else(|| EngineError::NotFound(format!("execution '{id}' not found")))
    }
}

/// Domain errors of follow-up commands have no caller to report to: log them and go on.
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
