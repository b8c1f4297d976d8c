//! The single writer: every change to executions goes through this thread, which applies a batch
//! of commands in one redb transaction (group commit) and answers callers only after the commit.
//! Serializing all changes here is what makes resume, kill and timer expiry race safely: each sees
//! the state the previous one left, so exactly one of them wins.

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

/// What an async task produced: outputs and log lines, or an error message.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub result: std::result::Result<Map<String, Value>, String>,
    pub logs: Vec<(String, String)>,
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

    /// Starts the executions of every flow whose Flow trigger matches `exec` entering its state.
    fn fire_flow_triggers(&self, w: &mut Writer, exec: &Execution, follow: &mut VecDeque<Command>) -> Result<()> {
        let now = now_ms();
        for (revision, flow) in self.flows.flows_with_flow_triggers().iter() {
            for t in &flow.triggers {
                let crate::flow::TriggerKind::Flow(ft) = &t.kind else {
                    continue;
                };
                if !crate::triggers::flow_trigger::matches(ft, exec, exec.state) {
                    continue;
                }
                let trigger = crate::triggers::flow_trigger::context(exec, exec.state);
                let vars = serde_json::json!({ "trigger": trigger });
                let started = self.triggered_execution(flow, *revision, &t.id, &ft.inputs, &vars, trigger, now);
                match started {
                    Ok(new) => store_started(w, &new, ("triggeredBy", exec.id.clone().into()), follow)?,
                    Err(e) => tracing::warn!(
                        flow = %format!("{}.{}", flow.namespace, flow.id), trigger = %t.id, error = %e,
                        "Flow trigger matched but its execution was not created"
                    ),
                }
            }
        }
        Ok(())
    }

    /// A new execution of `flow` started by trigger `trigger_id`, with rendered and typed inputs.
    #[allow(clippy::too_many_arguments)]
    fn triggered_execution(
        &self,
        flow: &Flow,
        revision: u32,
        trigger_id: &str,
        inputs: &BTreeMap<String, Value>,
        vars: &Value,
        trigger: Value,
        now: i64,
    ) -> std::result::Result<Execution, String> {
        let mut raw = BTreeMap::new();
        for (k, v) in inputs {
            let text = match v {
                Value::String(s) => {
                    self.renderer
                        .render(s, vars, self.services.as_ref(), &flow.namespace, "")
                        .map_err(|e| format!("input `{k}`: {e}"))?
                        .text
                }
                other => other.to_string(),
            };
            raw.insert(k.clone(), text);
        }
        let typed = crate::inputs::coerce(&flow.inputs, &raw)
            .map_err(|errs| errs.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))?;
        let actor = crate::triggers::trigger_actor(&flow.namespace, &flow.id, trigger_id);
        Ok(advance::new_execution(
            flow,
            revision,
            typed,
            BTreeMap::new(),
            &actor,
            now,
            None,
            Some(trigger),
        ))
    }

    /// A Schedule trigger fell due: start its flow once, then register the next fire time.
    fn fire_schedule(
        &self,
        w: &mut Writer,
        t: &TimerKey,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let Some((ns, flow_id)) = t.execution_id.split_once('/') else {
            return Ok(());
        };
        let trigger_id = t.task_run_id.as_str();
        if w.schedule_due(ns, flow_id, trigger_id)? != Some(t.due_ms) {
            return Ok(()); // stale: the flow changed since this timer was set
        }
        let (head, flow, _) = self.flows.get(ns, flow_id, 0)?;
        let Some((trigger, sched)) = flow.triggers.iter().find_map(|tr| match &tr.kind {
            crate::flow::TriggerKind::Schedule(s) if tr.id == trigger_id && !tr.disabled => Some((tr, s)),
            _ => None,
        }) else {
            return Ok(());
        };
        let now = now_ms();
        // Fires missed while the daemon was down collapse into this one: the next is after now.
        let next = crate::triggers::schedule::next_fire(
            &sched.cron,
            sched.with_seconds,
            sched.timezone.as_deref(),
            now.max(t.due_ms),
        )
        .map_err(EngineError::InvalidArgument)?;
        let context = serde_json::json!({
            "date": super::context::iso_ms(t.due_ms),
            "next": super::context::iso_ms(next),
        });
        let vars = serde_json::json!({ "trigger": context });
        match self.triggered_execution(
            &flow,
            head.revision,
            &trigger.id,
            &sched.inputs,
            &vars,
            context.clone(),
            now,
        ) {
            Ok(new) => store_started(w, &new, ("schedule", trigger_id.into()), follow)?,
            Err(e) => {
                tracing::warn!(flow = %format!("{ns}.{flow_id}"), trigger = %trigger_id, error = %e, "scheduled execution not created")
            }
        }
        w.put_schedule(ns, flow_id, trigger_id, next)?;
        w.put_timer(&super::flows::schedule_timer(ns, flow_id, trigger_id, next))?;
        batch.timers_added = true;
        Ok(())
    }

    fn start(
        &self,
        w: &mut Writer,
        exec: Execution,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let values = Value::Object(masked(&exec.inputs, &exec.secret_inputs));
        audit_exec(w, &exec, &exec.started_by.clone(), "start", "", values, "", "OK")?;
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    fn load(&self, w: &Writer, id: &str) -> Result<Execution> {
        w.execution(id)?
            .ok_or_else(|| EngineError::NotFound(format!("execution '{id}' not found")))
    }

    #[allow(clippy::too_many_arguments)]
    fn resume(
        &self,
        w: &mut Writer,
        id: &str,
        select: &PauseSelector,
        inputs: &BTreeMap<String, String>,
        actor: &Actor,
        reason: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        let decision = match super::resume::check(&flow, &exec, select, inputs, actor) {
            Ok(d) => d,
            Err(EngineError::PermissionDenied(m)) => {
                // A refused decision is evidence too: it is recorded, nothing else changes.
                let task = select
                    .task_id
                    .clone()
                    .or_else(|| exec.paused_runs().next().map(|r| r.task_id.clone()));
                audit_exec(
                    w,
                    &exec,
                    &actor.user,
                    "resume",
                    task.as_deref().unwrap_or(""),
                    Value::Null,
                    reason,
                    &format!("DENIED: {m}"),
                )?;
                return Err(EngineError::PermissionDenied(m));
            }
            Err(e) => return Err(e),
        };
        let idx = decision.idx;
        let secret_ids = secret_resume_ids(&flow, &exec.task_runs[idx].task_id);
        let audited = Value::Object(masked(&decision.values, &secret_ids));
        // SECRET fields are stored sealed, in the outputs and in the approval alike.
        let values: Map<String, Value> = decision
            .values
            .iter()
            .map(|(k, v)| {
                let v = if secret_ids.contains(k) {
                    crate::secrets::seal_value(v)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        let task_id = exec.task_runs[idx].task_id.clone();
        let approval = Approval {
            by: actor.user.clone(),
            on_ms: now,
            values: values.clone(),
            reason: reason.to_string(),
        };
        if !decision.completes(&exec) {
            // One approval of a quorum: recorded, the pause keeps waiting for the others.
            let run = &mut exec.task_runs[idx];
            let pause = run.pause.get_or_insert_with(Default::default);
            pause.approvals.push(approval);
            let message = format!(
                "approval {} of {} by {}",
                pause.approvals.len(),
                decision.approvals_required,
                actor.user
            );
            let run_id = run.id.clone();
            let line = super::execution::LogLine {
                seq: exec.log_seq,
                execution_id: exec.id.clone(),
                task_run_id: run_id,
                task_id: task_id.clone(),
                level: "INFO".into(),
                message,
                time_ms: now,
            };
            exec.log_seq += 1;
            exec.updated_ms = now;
            w.append_log(&line)?;
            audit_exec(
                w,
                &exec,
                &actor.user,
                "approve",
                &task_id,
                audited,
                reason,
                "OK: approval recorded, waiting for more",
            )?;
            self.store_with_effects(w, &exec, Effects::default(), batch, follow)?;
            return Ok(exec);
        }
        audit_exec(w, &exec, &actor.user, "resume", &task_id, audited, reason, "OK")?;
        let mut outputs = advance::resumed_outputs(values, &actor.user, now, State::Success);
        if decision.approvals_required > 1 {
            let mut all = exec.task_runs[idx]
                .pause
                .as_ref()
                .map(|p| p.approvals.clone())
                .unwrap_or_default();
            all.push(approval);
            outputs.insert("approvals".into(), approvals_json(&all));
        }
        let mut fx = Effects::default();
        super::resume::end_pause(&mut exec, idx, State::Success, outputs, now, &mut fx);
        exec.set_state(State::Running, now);
        for t in fx.timers_del.drain(..) {
            w.delete_timer(&t)?;
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    fn kill(
        &self,
        w: &mut Writer,
        id: &str,
        actor: &Actor,
        reason: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        if exec.state.is_terminal() || exec.state == State::Killing {
            return Err(EngineError::FailedPrecondition(format!(
                "Execution '{id}' is already {}, can't kill it",
                exec.state
            )));
        }
        let flow = self.flow_of(&exec)?;
        audit_exec(w, &exec, &actor.user, "kill", "", Value::Null, reason, "OK")?;
        exec.set_state(State::Killing, now_ms());
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    fn job_done(
        &self,
        w: &mut Writer,
        exec_id: &str,
        run_id: &str,
        outcome: JobOutcome,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, exec_id)?;
        let Some(idx) = exec.task_runs.iter().position(|r| r.id == run_id) else {
            return Err(EngineError::NotFound(format!(
                "task run {run_id} not found in execution {exec_id}"
            )));
        };
        if exec.task_runs[idx].state != State::Running || exec.state.is_terminal() {
            // Killed (or finished) while the task ran: its result no longer matters.
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        exec.remember_secret_values();
        let (run_id, task_id) = (exec.task_runs[idx].id.clone(), exec.task_runs[idx].task_id.clone());
        let mut lines = Vec::new();
        for (level, message) in &outcome.logs {
            lines.push((level.clone(), message.clone()));
        }
        let state = match outcome.result {
            Ok(outputs) => {
                exec.task_runs[idx].outputs = outputs
                    .into_iter()
                    .map(|(k, v)| (k, advance::mask_value(&v, &exec.secrets_seen)))
                    .collect();
                State::Success
            }
            Err(message) => {
                lines.push(("ERROR".into(), message));
                State::Failed
            }
        };
        for (level, message) in lines {
            let line = super::execution::LogLine {
                seq: exec.log_seq,
                execution_id: exec.id.clone(),
                task_run_id: run_id.clone(),
                task_id: task_id.clone(),
                level,
                message: advance::mask(&message, &exec.secrets_seen),
                time_ms: now,
            };
            exec.log_seq += 1;
            w.append_log(&line)?;
        }
        exec.task_runs[idx].set_state(state, now);
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    fn fire_timer(
        &self,
        w: &mut Writer,
        t: &TimerKey,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, &t.execution_id)?;
        let Some(idx) = exec.task_runs.iter().position(|r| r.id == t.task_run_id) else {
            return Ok(exec);
        };
        // A timer only acts on the pause it was set for, and only while that pause still waits:
        // a stale timer must never resume a pause someone already decided (Kestra #9319, #18507).
        let run = &exec.task_runs[idx];
        let current = run.pause.as_ref().is_some_and(|p| match t.kind.as_str() {
            timer_kind::EXPIRE => p.expires_ms == Some(t.due_ms),
            timer_kind::TIMEOUT => p.timeout_ms == Some(t.due_ms),
            timer_kind::REMINDER => p.next_reminder_ms == Some(t.due_ms),
            timer_kind::ESCALATE => p.next_escalation_ms == Some(t.due_ms),
            _ => false,
        });
        if run.state != State::Paused || !current || exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        let Some(task) = flow.find_task(&run.task_id) else {
            return Err(EngineError::NotFound(format!(
                "task `{}` is not in the flow any more",
                run.task_id
            )));
        };
        let TaskKind::Pause(pause) = &task.kind else {
            return Ok(exec);
        };
        if t.kind == timer_kind::REMINDER || t.kind == timer_kind::ESCALATE {
            return self.nudge(w, exec, idx, task, pause, &t.kind, now, batch, follow);
        }
        let mut fx = Effects::default();
        let (state, outputs, message) = super::resume::on_timer(pause, &t.kind, now);
        if let Some(message) = message {
            let line = super::execution::LogLine {
                seq: exec.log_seq,
                execution_id: exec.id.clone(),
                task_run_id: exec.task_runs[idx].id.clone(),
                task_id: exec.task_runs[idx].task_id.clone(),
                level: if state == State::Failed {
                    "ERROR".into()
                } else {
                    "INFO".into()
                },
                message,
                time_ms: now,
            };
            exec.log_seq += 1;
            w.append_log(&line)?;
        }
        super::resume::end_pause(&mut exec, idx, state, outputs, now, &mut fx);
        for d in fx.timers_del {
            w.delete_timer(&d)?;
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A reminder or escalation fell due on a gate that still waits: run its tasks, escalate the
    /// assignment, and schedule the next one counted from now, so downtime never causes a burst.
    #[allow(clippy::too_many_arguments)]
    fn nudge(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        task: &crate::flow::Task,
        pause: &crate::flow::PauseTask,
        kind: &str,
        now: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let since = exec.task_runs[idx].pause.as_ref().map(|p| p.since_ms).unwrap_or(now);
        let waiting_for =
            crate::flow::duration::format_iso8601(std::time::Duration::from_millis((now - since).max(0) as u64));
        let run_id = exec.task_runs[idx].id.clone();
        let mut fx = Effects::default();
        let mut side: Option<(&[crate::flow::Task], &str, Map<String, Value>)> = None;
        let mut log_message = String::new();
        if kind == timer_kind::REMINDER {
            let Some(r) = &pause.reminders else { return Ok(exec) };
            let state = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
            state.reminder_count += 1;
            let count = state.reminder_count;
            state.next_reminder_ms = None;
            if r.max_count.is_none_or(|max| count < max)
                && let Ok(every) = crate::flow::duration::parse_iso8601(&r.every)
            {
                let due = now + every.as_millis() as i64;
                state.next_reminder_ms = Some(due);
                fx.timers_add.push(TimerKey {
                    due_ms: due,
                    execution_id: exec.id.clone(),
                    task_run_id: run_id.clone(),
                    kind: kind.into(),
                });
            }
            log_message = format!("still waiting after {waiting_for}: sending reminder {count}");
            let mut extras = Map::new();
            extras.insert("reminder".into(), serde_json::json!({"count": count}));
            extras.insert("waitingFor".into(), Value::String(waiting_for.clone()));
            side = Some((&r.tasks, "reminder", extras));
        } else if let Some(human) = &pause.human {
            let state = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
            let level = state.escalation_level as usize;
            if let Some(spec) = human.escalation.get(level) {
                if spec.mode == crate::flow::EscalationMode::Replace {
                    state.users.clear();
                    state.groups.clear();
                }
                for u in &spec.assignment.users {
                    if !state.users.contains(u) {
                        state.users.push(u.clone());
                    }
                    state.escalated_to.push(u.clone());
                }
                for g in &spec.assignment.groups {
                    if !state.groups.contains(g) {
                        state.groups.push(g.clone());
                    }
                    state.escalated_to.push(g.clone());
                }
                state.escalation_level += 1;
                state.next_escalation_ms = None;
                // Later levels count from the start of the pause; one already past fires right away.
                if let Some(next) = human.escalation.get(level + 1)
                    && let Ok(after) = crate::flow::duration::parse_iso8601(&next.after)
                {
                    let due = (since + after.as_millis() as i64).max(now);
                    state.next_escalation_ms = Some(due);
                    fx.timers_add.push(TimerKey {
                        due_ms: due,
                        execution_id: exec.id.clone(),
                        task_run_id: run_id.clone(),
                        kind: kind.into(),
                    });
                }
                log_message = format!(
                    "escalation {}: no decision after {waiting_for}; may now decide: users [{}] groups [{}]",
                    level + 1,
                    state.users.join(", "),
                    state.groups.join(", ")
                );
                let mut extras = Map::new();
                extras.insert("escalation".into(), serde_json::json!({"level": level + 1, "mode": if spec.mode == crate::flow::EscalationMode::Replace { "REPLACE" } else { "ADD" }}));
                extras.insert("waitingFor".into(), Value::String(waiting_for.clone()));
                side = Some((&spec.tasks, "escalation", extras));
            }
        }
        if kind == timer_kind::ESCALATE && !log_message.is_empty() {
            let task_id = exec.task_runs[idx].task_id.clone();
            audit_exec(
                w,
                &exec,
                "tollgated",
                "escalate",
                &task_id,
                Value::Null,
                "",
                &log_message,
            )?;
        }
        let line = super::execution::LogLine {
            seq: exec.log_seq,
            execution_id: exec.id.clone(),
            task_run_id: run_id.clone(),
            task_id: exec.task_runs[idx].task_id.clone(),
            level: "INFO".into(),
            message: log_message,
            time_ms: now,
        };
        exec.log_seq += 1;
        w.append_log(&line)?;
        exec.updated_ms = now;
        if let Some((tasks, purpose, extras)) = side {
            exec.remember_secret_values();
            let lookup = |ns: &str, id: &str| self.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
            let env = StepEnv {
                renderer: &self.renderer,
                services: self.services.as_ref(),
                flow_lookup: &lookup,
            };
            let mut stepper = Stepper {
                flow: &flow,
                exec: &mut exec,
                now,
                fx: &mut fx,
                env: &env,
            };
            stepper.run_side_tasks(idx, task, tasks, purpose, extras);
        }
        self.store_with_effects(w, &exec, fx, batch, follow)?;
        Ok(exec)
    }

    fn recover(
        &self,
        w: &mut Writer,
        id: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, id)?;
        if exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        for idx in 0..exec.task_runs.len() {
            let run = &exec.task_runs[idx];
            if run.state != State::Running {
                continue;
            }
            let Some(task) = flow.find_task(&run.task_id) else {
                continue;
            };
            if !super::jobs::is_job(task) {
                continue;
            }
            // The task's side effect may or may not have happened before the crash: run it again.
            let attempt = run.attempt + 1;
            exec.task_runs[idx].attempt = attempt;
            let line = super::execution::LogLine {
                seq: exec.log_seq,
                execution_id: exec.id.clone(),
                task_run_id: exec.task_runs[idx].id.clone(),
                task_id: exec.task_runs[idx].task_id.clone(),
                level: "WARN".into(),
                message: format!("the daemon stopped while this task ran; running it again (attempt {attempt})"),
                time_ms: now,
            };
            exec.log_seq += 1;
            w.append_log(&line)?;
            let vars = super::context::vars(&flow, &exec, Some(&exec.task_runs[idx]), Some(task));
            batch.jobs.push(Job {
                execution_id: exec.id.clone(),
                namespace: exec.namespace.clone(),
                task_run_id: exec.task_runs[idx].id.clone(),
                task: task.clone(),
                vars,
                attempt,
            });
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    fn advance_stored(
        &self,
        w: &mut Writer,
        id: &str,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let exec = self.load(w, id)?;
        if exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A waited-for subflow ended: finish the parent's Subflow task run in the same transaction.
    fn child_done(
        &self,
        w: &mut Writer,
        child: &Execution,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let Some(parent_ref) = &child.parent else {
            return Err(EngineError::NotFound("no parent".into()));
        };
        let mut parent = self.load(w, &parent_ref.execution_id)?;
        let Some(idx) = parent.task_runs.iter().position(|r| r.id == parent_ref.task_run_id) else {
            return Ok(parent);
        };
        if parent.task_runs[idx].state != State::Running || parent.state.is_terminal() {
            return Ok(parent);
        }
        let now = now_ms();
        let mut out = Map::new();
        out.insert("executionId".into(), Value::String(child.id.clone()));
        out.insert("state".into(), Value::String(child.state.as_str().into()));
        out.insert("outputs".into(), Value::Object(child.outputs.clone()));
        let state = match child.state {
            State::Success => State::Success,
            State::Warning => State::Warning,
            _ if parent_ref.transmit_failed => State::Failed,
            _ => State::Warning,
        };
        parent.task_runs[idx].outputs = out;
        parent.task_runs[idx].set_state(state, now);
        let flow = self.flow_of(&parent)?;
        self.step_and_store(w, parent, &flow, batch, follow)
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

/// Every approval of a quorum, as the pause's `approvals` output.
fn approvals_json(all: &[Approval]) -> Value {
    Value::Array(
        all.iter()
            .map(|a| {
                serde_json::json!({
                    "by": a.by,
                    "on": super::context::iso_ms(a.on_ms),
                    "values": a.values,
                    "reason": a.reason,
                })
            })
            .collect(),
    )
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

/// Ids of SECRET inputs in the onResume form of `task_id`.
fn secret_resume_ids(flow: &Flow, task_id: &str) -> Vec<String> {
    match flow.find_task(task_id).map(|t| &t.kind) {
        Some(TaskKind::Pause(p)) => p
            .on_resume
            .iter()
            .filter(|d| d.input_type == crate::inputs::InputType::Secret)
            .map(|d| d.id.clone())
            .collect(),
        _ => vec![],
    }
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
        },
    )
}
