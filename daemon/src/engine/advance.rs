//! Moves one execution forward as far as it can go without waiting, deterministically, in memory.
//! The caller stores the result and its effects in one transaction.
//!
//! The walk follows Kestra: a list runs its tasks in order; a flowable task (If, Switch, Sequential,
//! Parallel, ForEach) stays RUNNING while its children run and ends with the worst of their states;
//! when the main list fails, `errors` runs; `finally` always runs last.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::context;
use super::execution::{Execution, LogLine, ParentRef, PauseState, TaskRun};
use super::ids;
use super::state::State;
use crate::expr::{ExprServices, Renderer};
use crate::flow::duration::parse_iso8601;
use crate::flow::{Flow, LogLevel, Task, TaskKind};
pub use crate::masking::{mask, mask_value};
use crate::store::TimerKey;
pub use crate::tasks::Job;

/// Timer kinds, stored in the timer key.
pub mod timer_kind {
    /// `pauseDuration` elapsed: apply `behavior`.
    pub const EXPIRE: &str = "expire";
    /// Generic `timeout` on a Pause without `pauseDuration`: fail the task.
    pub const TIMEOUT: &str = "timeout";
    pub const REMINDER: &str = "reminder";
    pub const ESCALATE: &str = "escalate";
    /// A Sleep task's duration elapsed.
    pub const SLEEP: &str = "sleep";
    /// A gate's `sla` ran out: record a breach if it still waits.
    pub const SLA: &str = "sla";
    /// A failed task run's next attempt (`retry`) is due.
    pub const RETRY: &str = "retry";
    /// A WaitFor's next iteration is due.
    pub const WAIT_FOR: &str = "waitfor";
    /// A RETRIED execution's new execution is due (`retry.behavior: CREATE_NEW_EXECUTION`).
    pub const NEW_EXECUTION: &str = "newexec";
    /// A flow-level MAX_DURATION `sla` ran out (task run id `sla-<index>`).
    pub const FLOW_SLA: &str = "flowsla";
}

/// Side effects of a step, applied in the same transaction as the new execution document.
#[derive(Debug, Default)]
pub struct Effects {
    pub logs: Vec<LogLine>,
    pub timers_add: Vec<TimerKey>,
    pub timers_del: Vec<TimerKey>,
    pub jobs: Vec<Job>,
    /// Child executions (Subflow) to create and advance.
    pub children: Vec<Execution>,
    /// Child executions to kill because their parent was killed.
    pub kill_children: Vec<String>,
    /// Set when the execution reached a terminal state in this step.
    pub finished: Option<State>,
    /// Resume tasks that ran: the writer resumes their target in the same transaction.
    pub resumes: Vec<FlowResume>,
    /// Files to store with the step (execution id, path, content): a ForEachItem's batches.
    pub files: Vec<(String, String, Vec<u8>)>,
    /// Toggle tasks that ran: the writer switches their trigger in the same transaction.
    pub toggles: Vec<FlowToggle>,
}

/// What a Toggle task asks for, rendered; the writer checks and applies it as the flow.
#[derive(Debug, Clone)]
pub struct FlowToggle {
    /// The Toggle task's execution, task run and attempt (its outcome is recorded there).
    pub execution_id: String,
    pub task_run_id: String,
    pub attempt: u32,
    pub namespace: String,
    pub flow_id: String,
    pub trigger: String,
    pub enabled: bool,
}

/// What a Resume task asks for, rendered; the writer checks and applies it as the flow.
#[derive(Debug, Clone)]
pub struct FlowResume {
    /// The Resume task's execution, task run and attempt (its outcome is recorded there).
    pub execution_id: String,
    pub task_run_id: String,
    pub attempt: u32,
    /// The execution to resume.
    pub target: String,
    /// `namespace` + `flowId` the target must belong to, when given.
    pub flow: Option<(String, String)>,
    pub inputs: std::collections::BTreeMap<String, String>,
}

/// What the step needs from the daemon.
pub struct StepEnv<'a> {
    pub renderer: &'a Renderer,
    pub services: &'a dyn ExprServices,
    /// Latest revision of a flow, for Subflow.
    pub flow_lookup: &'a FlowLookup<'a>,
    /// Stored log lines of an execution (oldest first, bounded), for log.Fetch.
    pub stored_logs: &'a dyn Fn(&str) -> Vec<LogLine>,
    /// The same for another execution (namespace, flow id, execution id); `None` when no
    /// execution of that flow has that id.
    pub other_logs: &'a OtherLogs<'a>,
    /// Who decides now, by delegation, for a gate assigned to (users, groups) in a namespace:
    /// notifications of a gate (`assignees.delegates`) tell them too.
    pub delegates: &'a Delegates<'a>,
}

/// Log lines of another execution: (namespace, flow id, execution id) -> lines, if it exists.
pub type OtherLogs<'a> = dyn Fn(&str, &str, &str) -> Option<Vec<LogLine>> + 'a;

/// Rendered `executionId` and `namespace` + `flowId` of a Resume or log.Fetch task.
type ExecutionParameters = (Option<String>, Option<(String, String)>);

/// `OtherLogs` of a step that stores nothing (a preview) or runs no log.Fetch (side tasks of
/// timers and `onStale`): every execution exists and has no lines.
pub fn no_other_logs(_: &str, _: &str, _: &str) -> Option<Vec<LogLine>> {
    Some(Vec::new())
}

/// Delegates of a gate's assignees: (namespace, users, groups) -> delegate users.
pub type Delegates<'a> = dyn Fn(&str, &[String], &[String]) -> Vec<String> + 'a;
/// The durable timer of each MAX_DURATION `sla` of `flow` for `exec`, keyed by its index; set
/// when the execution leaves CREATED (running or queued: the limit counts from its creation).
pub fn flow_sla_timers(flow: &Flow, exec: &Execution) -> Vec<TimerKey> {
    flow.sla
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == crate::flow::SlaType::MaxDuration)
        .filter_map(|(i, s)| {
            let d = parse_iso8601(s.duration.as_deref()?).ok()?;
            Some(TimerKey {
                // One millisecond past the limit: the step it makes finds the SLA exceeded.
                due_ms: exec.created_ms + d.as_millis() as i64 + 1,
                execution_id: exec.id.clone(),
                task_run_id: format!("sla-{i}"),
                kind: timer_kind::FLOW_SLA.into(),
            })
        })
        .collect()
}

/// The WorkingDirectory the task run at `idx` runs in: its parent's, when the parent is one
/// (only runnable tasks sit directly inside a WorkingDirectory).
pub fn workdir_of(flow: &Flow, exec: &Execution, idx: usize) -> Option<crate::tasks::WorkDir> {
    let parent = exec.run(exec.task_runs[idx].parent_task_run_id.as_deref()?)?;
    match &flow.find_task(&parent.task_id)?.kind {
        TaskKind::WorkingDirectory(t) => Some(work_dir(exec, parent, t)),
        _ => None,
    }
}

/// The directory of the WorkingDirectory whose task run is `run`.
pub fn work_dir(exec: &Execution, run: &TaskRun, t: &crate::flow::WorkingDirectoryTask) -> crate::tasks::WorkDir {
    crate::tasks::WorkDir {
        task_run_id: run.id.clone(),
        input_files: t.input_files.clone(),
        cache: t.cache.as_ref().map(|c| crate::tasks::CacheSpec {
            owner: super::files::cache_owner(&exec.namespace, &exec.flow_id, &run.task_id, run.value.as_deref()),
            ttl_ms: c
                .ttl
                .as_deref()
                .and_then(|t| parse_iso8601(t).ok())
                .map(|d| d.as_millis() as i64),
            patterns: c.patterns.clone(),
        }),
    }
}

/// Most log lines a log.Fetch task collects into its outputs.
pub const FETCH_MAX_LINES: usize = 10_000;

/// Finds the latest revision of `namespace`/`id`.
pub type FlowLookup<'a> = dyn Fn(&str, &str) -> Option<(u32, Arc<Flow>)> + 'a;

enum ListStatus {
    Pending,
    Done(State),
}

pub struct Stepper<'a> {
    pub flow: &'a Flow,
    pub exec: &'a mut Execution,
    pub now: i64,
    pub fx: &'a mut Effects,
    pub env: &'a StepEnv<'a>,
}

/// Bound on internal iterations: protects against a flow whose walk would never settle.
const MAX_PASSES: usize = 10_000;

impl<'a> Stepper<'a> {
    /// Advances until the execution waits (pause, async task, subflow) or ends.
    pub fn advance(&mut self) {
        self.check_flow_sla();
        for _ in 0..MAX_PASSES {
            let before = self.exec.task_runs.len();
            let before_states: Vec<State> = self.exec.task_runs.iter().map(|r| r.state).collect();
            self.pass();
            if self.exec.state.is_terminal() {
                return;
            }
            let after_states: Vec<State> = self.exec.task_runs.iter().map(|r| r.state).collect();
            if self.exec.task_runs.len() == before && before_states == after_states {
                break;
            }
        }
        self.check_flow_sla();
    }

    /// Kestra's flow-level `sla` on a running execution: an EXECUTION_ASSERTION is rendered at
    /// every step (before and after it), a MAX_DURATION is checked against the execution's
    /// creation time (its timer makes the step that finds it due). Each SLA acts once.
    fn check_flow_sla(&mut self) {
        let flow = self.flow;
        for (i, sla) in flow.sla.iter().enumerate() {
            if self.exec.state.is_terminal() || self.exec.state == State::Killing {
                return;
            }
            if self.exec.sla_violated.contains(&(i as u32)) {
                continue;
            }
            let reason = match sla.kind {
                crate::flow::SlaType::MaxDuration => {
                    let Some(limit) = sla.duration.as_deref().and_then(|d| parse_iso8601(d).ok()) else {
                        continue;
                    };
                    let took = (self.now - self.exec.created_ms).max(0);
                    if took <= limit.as_millis() as i64 {
                        continue;
                    }
                    format!(
                        "execution duration of {} exceed the maximum duration of {}.",
                        crate::flow::duration::format_iso8601(std::time::Duration::from_millis(took as u64)),
                        crate::flow::duration::format_iso8601(limit)
                    )
                }
                crate::flow::SlaType::ExecutionAssertion => {
                    let Some(assertion) = &sla.assertion else { continue };
                    let vars = context::vars(flow, self.exec, None, None);
                    match self.render_str(assertion, &vars) {
                        Ok(text) if truthy(&text) => continue,
                        Ok(_) => format!("assertion is false: {assertion}."),
                        Err(e) => {
                            // Kestra ignores an SLA it cannot evaluate, saying so (once here).
                            self.exec.sla_violated.push(i as u32);
                            self.exec_log("ERROR", &format!("Ignoring SLA '{}' because of the error: {e}", sla.id));
                            continue;
                        }
                    }
                }
            };
            self.exec.sla_violated.push(i as u32);
            self.exec_log("WARN", &format!("SLA '{}' violated: {reason}", sla.id));
            if let Some(labels) = &sla.labels {
                for (k, v) in labels.pairs() {
                    self.exec.labels.insert(k, v);
                }
            }
            match sla.behavior {
                crate::flow::SlaBehavior::None => {}
                crate::flow::SlaBehavior::Fail => {
                    self.exec_log(
                        "ERROR",
                        &format!("Execution failed due to SLA '{}' violated: {reason}", sla.id),
                    );
                    self.end_by_sla(State::Failed);
                }
                crate::flow::SlaBehavior::Cancel => self.end_by_sla(State::Cancelled),
            }
        }
    }

    /// Ends the execution in `state` at once, as Kestra's SLA does: the last task run not yet
    /// ended takes that state, any other still running is killed (its job stopped, its subflow
    /// killed); no `errors` or `finally` run.
    fn end_by_sla(&mut self, state: State) {
        let last = self.exec.task_runs.iter().rposition(|r| !r.state.is_terminal());
        self.end_now(state, last);
    }

    /// Ends the execution in `state` at once: the run at `last` takes that state, every other
    /// run not yet ended is killed (its job stopped, its subflow killed).
    fn end_now(&mut self, state: State, last: Option<usize>) {
        let now = self.now;
        for i in 0..self.exec.task_runs.len() {
            if !self.exec.task_runs[i].state.is_terminal() {
                self.cancel_timers_of(i);
                self.kill_children_of(i);
                let s = if Some(i) == last { state } else { State::Killed };
                self.exec.task_runs[i].set_state(s, now);
            }
        }
        self.cancel_flow_sla_timers();
        self.exec.set_state(state, now);
        self.fx.finished = Some(state);
    }

    fn cancel_flow_sla_timers(&mut self) {
        let timers = flow_sla_timers(self.flow, self.exec);
        // Set in this same step (an execution that ends at once): never stored at all.
        self.fx.timers_add.retain(|t| !timers.contains(t));
        self.fx.timers_del.extend(timers);
    }

    fn pass(&mut self) {
        if self.exec.state.is_terminal() {
            return;
        }
        if self.exec.state == State::Killing {
            self.finish_killed();
            return;
        }
        // Waits for a slot of the flow's `concurrency`; the writer admits it.
        if self.exec.state == State::Queued {
            return;
        }
        if self.exec.state == State::Created {
            self.exec.set_state(State::Running, self.now);
            let timers = flow_sla_timers(self.flow, self.exec);
            self.fx.timers_add.extend(timers);
        }
        let flow = self.flow;
        let main = self.run_list(&flow.tasks, None, None);
        let ListStatus::Done(mut outcome) = main else {
            self.settle_waiting_state();
            return;
        };
        if outcome == State::Cancelled {
            self.finish(State::Cancelled);
            return;
        }
        if outcome.is_failure() && !flow.errors.is_empty() {
            match self.run_list(&flow.errors, None, None) {
                ListStatus::Pending => {
                    self.settle_waiting_state();
                    return;
                }
                ListStatus::Done(_) => {}
            }
            outcome = State::Failed;
        }
        if !flow.finally.is_empty() {
            match self.run_list(&flow.finally, None, None) {
                ListStatus::Pending => {
                    self.settle_waiting_state();
                    return;
                }
                ListStatus::Done(s) => outcome = outcome.worst(s),
            }
        }
        if outcome.is_failure() {
            outcome = if outcome == State::Killed {
                State::Killed
            } else {
                State::Failed
            };
        }
        self.finish(outcome);
    }

    /// PAUSED while any task run is paused, RUNNING otherwise.
    fn settle_waiting_state(&mut self) {
        // Ended inside the walk (a retry in a new execution): nothing left to settle.
        if self.exec.state.is_terminal() {
            return;
        }
        let state = if self.exec.task_runs.iter().any(|r| r.state == State::Paused) {
            State::Paused
        } else {
            State::Running
        };
        self.exec.set_state(state, self.now);
    }

    fn finish(&mut self, mut state: State) {
        let now = self.now;
        if (state != State::Failed || self.exec.outputs.is_empty())
            && !self.render_flow_outputs()
            && !state.is_failure()
        {
            state = State::Failed;
        }
        // Nothing may stay running once the execution has ended (Cancelled ends the flow early).
        for i in 0..self.exec.task_runs.len() {
            if !self.exec.task_runs[i].state.is_terminal() {
                self.cancel_timers_of(i);
                self.exec.task_runs[i].set_state(State::Killed, now);
            }
        }
        self.cancel_flow_sla_timers();
        self.exec.set_state(state, now);
        self.fx.finished = Some(state);
    }

    /// Kills what the run at `i` started and still waits for: its subflow, its batches.
    fn kill_children_of(&mut self, i: usize) {
        let run = &mut self.exec.task_runs[i];
        self.fx.kill_children.extend(run.child_execution_id.clone());
        self.fx.kill_children.append(&mut run.batch_executions);
    }

    fn finish_killed(&mut self) {
        let now = self.now;
        for i in 0..self.exec.task_runs.len() {
            if !self.exec.task_runs[i].state.is_terminal() {
                self.cancel_timers_of(i);
                self.kill_children_of(i);
                self.exec.task_runs[i].set_state(State::Killed, now);
            }
        }
        self.cancel_flow_sla_timers();
        self.exec.set_state(State::Killed, now);
        self.fx.finished = Some(State::Killed);
    }

    /// Renders the flow's `outputs`; false when one fails to render (Kestra then fails the
    /// execution: "Failed to render output values").
    fn render_flow_outputs(&mut self) -> bool {
        let flow = self.flow;
        if flow.outputs.is_empty() {
            return true;
        }
        let mut ok = true;
        let vars = context::vars(flow, self.exec, None, None);
        let mut out = Map::new();
        for o in &flow.outputs {
            match self.render_value(&o.value, &vars) {
                Ok(v) => {
                    out.insert(o.id.clone(), v);
                }
                Err(e) => {
                    ok = false;
                    self.exec_log(
                        "ERROR",
                        &format!("Failed to render output values: flow output `{}`: {e}", o.id),
                    );
                }
            }
        }
        self.exec.outputs = out
            .into_iter()
            .map(|(k, v)| (k, mask_value(&v, &self.exec.secrets_seen)))
            .collect();
        ok
    }

    fn run_list(&mut self, tasks: &'a [Task], parent: Option<&str>, iteration: Option<u32>) -> ListStatus {
        let mut worst = State::Success;
        for task in tasks.iter().filter(|t| !t.common.disabled) {
            let idx = match self.find(task, parent, iteration) {
                Some(i) => i,
                None => self.start_task(task, parent, iteration),
            };
            self.step_run(task, idx);
            let run = &self.exec.task_runs[idx];
            if !run.state.is_terminal() || self.exec.state.is_terminal() {
                return ListStatus::Pending;
            }
            let mut state = run.state;
            if task.common.allow_failure && state == State::Failed {
                state = State::Warning;
            }
            if task.common.allow_warning && state == State::Warning {
                state = State::Success;
            }
            if state.is_failure() {
                return ListStatus::Done(state);
            }
            worst = worst.worst(state);
        }
        ListStatus::Done(worst)
    }

    fn run_parallel(&mut self, tasks: &'a [Task], parent: &str, iteration: Option<u32>, limit: u32) -> ListStatus {
        let active: Vec<&Task> = tasks.iter().filter(|t| !t.common.disabled).collect();
        let mut worst = State::Success;
        let mut pending = false;
        for task in active {
            let idx = match self.find(task, Some(parent), iteration) {
                Some(i) => i,
                None => {
                    let running = self.running_children(parent);
                    if limit > 0 && running >= limit as usize {
                        pending = true;
                        continue;
                    }
                    self.start_task(task, Some(parent), iteration)
                }
            };
            self.step_run(task, idx);
            if self.exec.state.is_terminal() {
                return ListStatus::Pending;
            }
            let state = self.exec.task_runs[idx].state;
            if !state.is_terminal() {
                pending = true;
            } else {
                worst = worst.worst(effective(task, state));
            }
        }
        if pending {
            ListStatus::Pending
        } else {
            ListStatus::Done(worst)
        }
    }

    /// Dag: like Parallel, but a task starts only once every task it depends on has ended (in
    /// any state, as Kestra); after a failure no new task starts.
    fn run_dag(&mut self, t: &'a crate::flow::DagTask, parent: &str) -> ListStatus {
        let mut worst = State::Success;
        let mut pending = false;
        let mut failed = false;
        let mut unstarted = false;
        for (i, task) in t.tasks.iter().enumerate() {
            if task.common.disabled {
                continue;
            }
            let idx = match self.find(task, Some(parent), None) {
                Some(idx) => idx,
                None => {
                    let ready = t.depends_on[i].iter().all(|dep| {
                        t.tasks.iter().find(|x| &x.id == dep).is_none_or(|x| x.common.disabled)
                            || self
                                .exec
                                .find_run(dep, Some(parent), None)
                                .is_some_and(|r| r.state.is_terminal())
                    });
                    let running = self.running_children(parent);
                    if failed || !ready || (t.concurrent > 0 && running >= t.concurrent as usize) {
                        unstarted = true;
                        continue;
                    }
                    self.start_task(task, Some(parent), None)
                }
            };
            self.step_run(task, idx);
            if self.exec.state.is_terminal() {
                return ListStatus::Pending;
            }
            let state = self.exec.task_runs[idx].state;
            if !state.is_terminal() {
                pending = true;
            } else {
                let eff = effective(task, state);
                failed |= eff.is_failure();
                worst = worst.worst(eff);
            }
        }
        if pending || (unstarted && !failed) {
            ListStatus::Pending
        } else {
            ListStatus::Done(worst)
        }
    }

    fn find(&self, task: &Task, parent: Option<&str>, iteration: Option<u32>) -> Option<usize> {
        self.exec
            .task_runs
            .iter()
            .position(|r| r.task_id == task.id && r.parent_task_run_id.as_deref() == parent && r.iteration == iteration)
    }

    /// Creates the task run and does what starting it means for its type.
    fn start_task(&mut self, task: &'a Task, parent: Option<&str>, iteration: Option<u32>) -> usize {
        let now = self.now;
        let value = iteration.and_then(|i| {
            parent
                .and_then(|p| self.exec.run(p))
                .and_then(|p| p.items.as_ref())
                .and_then(|items| items.get(i as usize))
                .map(item_text)
        });
        let run = TaskRun::started(task, parent.map(str::to_string), value, iteration, now);
        self.exec.task_runs.push(run);
        let idx = self.exec.task_runs.len() - 1;
        self.execute(task, idx)
    }

    /// Does what running the task run at `idx` (RUNNING) means for its type: once at its start,
    /// and again for each retry attempt.
    fn execute(&mut self, task: &'a Task, idx: usize) -> usize {
        let now = self.now;
        // Kestra evaluates `runIf` when the task run is created; a false condition skips it.
        if let Some(condition) = &task.common.run_if
            && self.exec.task_runs[idx].attempts.is_empty()
        {
            match self.render_for(idx, task, condition) {
                Ok(s) if !run_if_truthy(&s) => {
                    self.log(idx, "INFO", &format!("skipped: `runIf` rendered `{}`", s.trim()));
                    self.complete(idx, State::Skipped, Map::new());
                    return idx;
                }
                Ok(_) => {}
                Err(e) => return self.fail(idx, &format!("cannot render `runIf`: {e}")),
            }
        }
        match &task.kind {
            TaskKind::Log(t) => {
                let level = t.level.unwrap_or(LogLevel::Info).as_str();
                for message in t.message.items() {
                    match self.render_for(idx, task, message) {
                        Ok(text) => self.log(idx, level, &text),
                        Err(e) => return self.fail(idx, &format!("cannot render `message`: {e}")),
                    }
                }
                self.complete(idx, State::Success, Map::new());
            }
            TaskKind::Labels(t) => {
                let vars = self.vars_for(idx, task);
                let pairs = match self.render_labels(&t.labels, &vars) {
                    Ok(p) => p,
                    Err(e) => return self.fail(idx, &format!("cannot set labels: {e}")),
                };
                if let Some((k, _)) = pairs.iter().find(|(k, _)| k.starts_with("system.")) {
                    return self.fail(
                        idx,
                        &format!("label `{k}` is reserved: labels under `system.` are set by the daemon"),
                    );
                }
                for (k, v) in pairs {
                    self.exec.labels.insert(k, v);
                }
                self.complete(idx, State::Success, Map::new());
            }
            TaskKind::Sleep(t) => {
                let text = match self.render_for(idx, task, &t.duration) {
                    Ok(s) => s,
                    Err(e) => return self.fail(idx, &format!("cannot render `duration`: {e}")),
                };
                let wait = match crate::duration::parse_iso8601(text.trim()) {
                    Ok(d) => d,
                    Err(e) => return self.fail(idx, &format!("invalid `duration` `{text}`: {e}")),
                };
                // A `timeout` shorter than the sleep ends it early, FAILED (see writer/timers.rs `wake`).
                let limit = match &task.common.timeout {
                    None => None,
                    Some(t) => match self
                        .render_for(idx, task, t)
                        .map(|s| crate::duration::parse_iso8601(s.trim()))
                    {
                        Ok(Ok(d)) => Some(d),
                        Ok(Err(e)) | Err(e) => return self.fail(idx, &format!("invalid `timeout`: {e}")),
                    },
                };
                let timed_out = limit.is_some_and(|l| l < wait);
                let due = now + limit.filter(|_| timed_out).unwrap_or(wait).as_millis() as i64;
                self.exec.task_runs[idx].pause = Some(PauseState {
                    since_ms: now,
                    sleep_until_ms: Some(due),
                    timeout_ms: timed_out.then_some(due),
                    ..Default::default()
                });
                self.fx.timers_add.push(TimerKey {
                    due_ms: due,
                    execution_id: self.exec.id.clone(),
                    task_run_id: self.exec.task_runs[idx].id.clone(),
                    kind: timer_kind::SLEEP.into(),
                });
            }
            TaskKind::OutputValues(t) => {
                let vars = self.vars_for(idx, task);
                let mut values = Map::new();
                for (k, v) in &t.values {
                    match self.render_value(v, &vars) {
                        Ok(v) => {
                            values.insert(k.clone(), v);
                        }
                        Err(e) => {
                            return self.fail(idx, &format!("cannot render `values.{k}`: {e}"));
                        }
                    }
                }
                let mut out = Map::new();
                out.insert("values".into(), Value::Object(values));
                self.complete(idx, State::Success, out);
            }
            TaskKind::Return(t) => {
                let text = match &t.format {
                    Some(f) => match self.render_for(idx, task, f) {
                        Ok(s) => s,
                        Err(e) => return self.fail(idx, &format!("cannot render `format`: {e}")),
                    },
                    None => String::new(),
                };
                let mut out = Map::new();
                out.insert("value".into(), Value::String(text));
                self.complete(idx, State::Success, out);
            }
            TaskKind::Fail(t) => {
                let should_fail = match &t.condition {
                    None => true,
                    Some(c) => match self.render_for(idx, task, c) {
                        Ok(s) => truthy(&s),
                        Err(e) => {
                            return self.fail(idx, &format!("cannot render `condition`: {e}"));
                        }
                    },
                };
                if should_fail {
                    let msg = match &t.error_message {
                        Some(m) => self
                            .render_for(idx, task, m)
                            .unwrap_or_else(|e| format!("(cannot render errorMessage: {e})")),
                        None => "Fail task reached".to_string(),
                    };
                    return self.fail(idx, &msg);
                }
                self.complete(idx, State::Success, Map::new());
            }
            TaskKind::Pause(p) => self.start_pause(idx, task, p),
            TaskKind::If(t) => match self.render_for(idx, task, &t.condition) {
                Ok(s) => self.exec.task_runs[idx].branch = Some(if truthy(&s) { "then" } else { "else" }.to_string()),
                Err(e) => return self.fail(idx, &format!("cannot render `condition`: {e}")),
            },
            TaskKind::Switch(t) => match self.render_for(idx, task, &t.value) {
                Ok(s) => {
                    let branch = if t.cases.contains_key(&s) {
                        s
                    } else if t.defaults.is_empty() {
                        // As Kestra: a value no case matches, with no `defaults`, fails the Switch.
                        return self.fail(idx, &format!("no case matches `{s}` and the Switch has no `defaults`"));
                    } else {
                        DEFAULTS_BRANCH.to_string()
                    };
                    self.exec.task_runs[idx].branch = Some(branch);
                }
                Err(e) => return self.fail(idx, &format!("cannot render `value`: {e}")),
            },
            TaskKind::ForEach(t) => {
                let vars = self.vars_for(idx, task);
                match self.render_value(&t.values, &vars).map(as_items) {
                    Ok(Ok(items)) => {
                        // As Kestra: a null among the values fails the loop before it runs.
                        let nulls = items.iter().filter(|v| v.is_null()).count();
                        if nulls > 0 {
                            let shown = Value::Array(items.clone()).to_string();
                            return self.fail(
                                idx,
                                &format!("Found '{nulls}' null values on Each, with values={shown}"),
                            );
                        }
                        self.exec.task_runs[idx].items = Some(items)
                    }
                    Ok(Err(e)) | Err(e) => {
                        return self.fail(idx, &format!("cannot use `values`: {e}"));
                    }
                }
            }
            TaskKind::Sequential(_)
            | TaskKind::Parallel(_)
            | TaskKind::Dag(_)
            | TaskKind::WorkingDirectory(_)
            | TaskKind::ForEachItem(_) => {}
            TaskKind::ForEachItemStep(step) => self.for_each_item_step(idx, task, *step),
            TaskKind::Fetch(t) => {
                let (target, flow) =
                    match self.execution_parameters(idx, task, [&t.execution_id, &t.namespace, &t.flow_id]) {
                        Ok(p) => p,
                        Err(e) => return self.fail(idx, &e),
                    };
                let own = target.as_deref().is_none_or(|id| id == self.exec.id);
                let stored = if own {
                    Some((self.env.stored_logs)(&self.exec.id))
                } else {
                    // Kestra: without `namespace` + `flowId`, the execution of this flow.
                    let (ns, flow_id) =
                        flow.unwrap_or_else(|| (self.exec.namespace.clone(), self.exec.flow_id.clone()));
                    if ns != self.exec.namespace {
                        return self.fail(
                            idx,
                            &format!(
                                "log.Fetch reads executions of its own namespace `{}` only, not of `{ns}`",
                                self.exec.namespace
                            ),
                        );
                    }
                    let id = target.clone().unwrap_or_default();
                    (self.env.other_logs)(&ns, &flow_id, &id)
                };
                let Some(stored) = stored else {
                    let id = target.unwrap_or_default();
                    return self.fail(
                        idx,
                        &format!("log.Fetch: no execution `{id}` of this namespace and flow"),
                    );
                };
                let min = t.level.unwrap_or(LogLevel::Info);
                let rank = |l: &str| match l {
                    "TRACE" => 0,
                    "DEBUG" => 1,
                    "INFO" => 2,
                    "WARN" | "WARNING" => 3,
                    _ => 4,
                };
                // This step's own lines are not stored yet; another execution's are.
                let pending: &[LogLine] = if own { &self.fx.logs } else { &[] };
                let lines: Vec<Value> = stored
                    .iter()
                    .chain(pending.iter())
                    .filter(|l| rank(&l.level) >= rank(min.as_str()))
                    .filter(|l| t.tasks_id.is_empty() || t.tasks_id.contains(&l.task_id))
                    .take(FETCH_MAX_LINES)
                    .map(|l| {
                        json!({
                            "taskId": l.task_id, "taskRunId": l.task_run_id, "level": l.level,
                            "message": l.message, "timestamp": context::iso_ms(l.time_ms),
                        })
                    })
                    .collect();
                // Kestra's `uri`: the lines as a file, one JSON document a line (Kestra writes
                // Ion); `logs` keeps them inline for templates too.
                let mut file = Vec::new();
                for line in &lines {
                    file.extend_from_slice(line.to_string().as_bytes());
                    file.push(b'\n');
                }
                if let Err(e) = super::files::check_size("the fetched logs", file.len()) {
                    return self.fail(idx, &e);
                }
                let path = super::files::task_path(
                    &self.exec.namespace,
                    &self.exec.flow_id,
                    &self.exec.id,
                    &task.id,
                    &self.exec.task_runs[idx].id,
                    "logs.jsonl",
                );
                let mut out = Map::new();
                out.insert("size".into(), json!(lines.len()));
                out.insert("uri".into(), Value::String(super::files::uri_of(&path)));
                out.insert("logs".into(), Value::Array(lines));
                self.fx.files.push((self.exec.id.clone(), path, file));
                self.complete(idx, State::Success, out);
            }
            TaskKind::WaitFor(_) => {
                let run = &mut self.exec.task_runs[idx];
                run.outputs.insert("iterationCount".into(), json!(1));
                run.loop_iteration = Some(1);
            }
            TaskKind::Subflow(t) => self.start_subflow(idx, task, t),
            TaskKind::Resume(t) => {
                let (target, flow) =
                    match self.execution_parameters(idx, task, [&t.execution_id, &t.namespace, &t.flow_id]) {
                        Ok(p) => p,
                        Err(e) => return self.fail(idx, &e),
                    };
                // Kestra's default: the task's own execution (a pause in another branch).
                let target = target.unwrap_or_else(|| self.exec.id.clone());
                let vars = self.vars_for(idx, task);
                let inputs = match self.render_inputs(&t.inputs, &vars) {
                    Ok(i) => i,
                    Err(e) => return self.fail(idx, &e),
                };
                self.fx.resumes.push(FlowResume {
                    execution_id: self.exec.id.clone(),
                    task_run_id: self.exec.task_runs[idx].id.clone(),
                    attempt: self.exec.task_runs[idx].attempt,
                    target,
                    flow,
                    inputs,
                });
            }
            TaskKind::Toggle(t) => {
                let (own_ns, own_flow) = (self.exec.namespace.clone(), self.exec.flow_id.clone());
                let mut render = |key: &str, text: &str| {
                    self.render_for(idx, task, text)
                        .map(|s| s.trim().to_string())
                        .map_err(|e| format!("cannot render `{key}`: {e}"))
                };
                // Kestra's defaults: the namespace and flow of the task's own execution.
                let namespace = match &t.namespace {
                    Some(text) => render("namespace", text),
                    None => Ok(own_ns),
                };
                let flow_id = match &t.flow_id {
                    Some(text) => render("flowId", text),
                    None => Ok(own_flow),
                };
                let (namespace, flow_id, trigger) = match (namespace, flow_id, render("trigger", &t.trigger)) {
                    (Ok(ns), Ok(id), Ok(trigger)) => (ns, id, trigger),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return self.fail(idx, &e),
                };
                self.fx.toggles.push(FlowToggle {
                    execution_id: self.exec.id.clone(),
                    task_run_id: self.exec.task_runs[idx].id.clone(),
                    attempt: self.exec.task_runs[idx].attempt,
                    namespace,
                    flow_id,
                    trigger,
                    enabled: t.enabled,
                });
            }
            TaskKind::HttpRequest(_)
            | TaskKind::SlackWebhook(_)
            | TaskKind::TeamsWebhook(_)
            | TaskKind::DiscordWebhook(_)
            | TaskKind::MailSend(_)
            | TaskKind::KvSet(_)
            | TaskKind::KvGet(_)
            | TaskKind::KvDelete(_)
            | TaskKind::KvGetKeys(_)
            | TaskKind::State(_)
            | TaskKind::Script(_)
            | TaskKind::LocalFiles(_) => {
                let vars = self.vars_for(idx, task);
                self.fx.jobs.push(Job {
                    execution_id: self.exec.id.clone(),
                    namespace: self.exec.namespace.clone(),
                    task_run_id: self.exec.task_runs[idx].id.clone(),
                    task: task.clone(),
                    vars,
                    attempt: self.exec.task_runs[idx].attempt,
                    workdir: workdir_of(self.flow, self.exec, idx),
                });
            }
        }
        idx
    }

    /// A retry timer set the run back to CREATED: start its next attempt.
    /// One step of a child's run: a due retry restarts it, the walk drives it, and a finished
    /// attempt is settled (retried or ended).
    fn step_run(&mut self, task: &'a Task, idx: usize) {
        self.restart_if_due(task, idx);
        self.drive(task, idx);
        self.after_attempt(task, idx);
    }

    /// How many runs directly under `parent` have not ended (for concurrency limits).
    fn running_children(&self, parent: &str) -> usize {
        self.exec
            .task_runs
            .iter()
            .filter(|r| r.parent_task_run_id.as_deref() == Some(parent) && !r.state.is_terminal())
            .count()
    }

    fn restart_if_due(&mut self, task: &'a Task, idx: usize) {
        if self.exec.task_runs[idx].state != State::Created {
            return;
        }
        let now = self.now;
        let run = &mut self.exec.task_runs[idx];
        run.attempt = run.attempts.len() as u32 + 1;
        run.retry_decided = false;
        run.next_attempt_ms = None;
        run.outputs = Map::new();
        run.pause = None;
        run.child_execution_id = None;
        run.ended_ms = None;
        run.set_state(State::Running, now);
        let attempt = run.attempt;
        self.log(idx, "INFO", &format!("attempt {attempt} started"));
        self.execute(task, idx);
    }

    /// Kestra's `allowFailure` / `allowWarning` on the task run itself, once no retry is left:
    /// FAILED becomes WARNING, then WARNING becomes SUCCESS (its attempts keep their own states).
    fn apply_allowances(&mut self, task: &Task, idx: usize) {
        let now = self.now;
        let run = &mut self.exec.task_runs[idx];
        if task.common.allow_failure && run.state == State::Failed {
            run.set_state(State::Warning, now);
        }
        if task.common.allow_warning && run.state == State::Warning {
            run.set_state(State::Success, now);
        }
    }

    /// The retry policy that applies to `task` (run at `idx`): its own, else that of the nearest
    /// enclosing flowable task with one, else the flow's, as Kestra's executor picks it.
    fn retry_policy(&self, task: &'a Task, idx: usize) -> Option<&'a crate::flow::Retry> {
        if let Some(r) = &task.common.retry {
            return Some(r);
        }
        let mut parent = self.exec.task_runs[idx].parent_task_run_id.clone();
        while let Some(pid) = parent {
            let Some(prun) = self.exec.run(&pid) else { break };
            if let Some(r) = self.flow.find_task(&prun.task_id).and_then(|t| t.common.retry.as_ref()) {
                return Some(r);
            }
            parent = prun.parent_task_run_id.clone();
        }
        self.flow.retry.as_ref()
    }

    /// After an attempt of a runnable task (or Subflow) ended: a failure may be retried (the run
    /// goes RETRYING on a durable timer); a success after retries is a WARNING with
    /// `warningOnRetry`. Decided once per attempt.
    fn after_attempt(&mut self, task: &'a Task, idx: usize) {
        let run = &self.exec.task_runs[idx];
        if run.retry_decided || task.is_flowable() || matches!(task.kind, TaskKind::Pause(_)) {
            return;
        }
        match run.state {
            State::Failed => {}
            State::Success | State::Warning => {
                let retried = run.attempts.len() > 1;
                self.exec.task_runs[idx].retry_decided = true;
                if retried && task.common.retry.as_ref().is_some_and(|r| r.warning_on_retry) {
                    let now = self.now;
                    self.exec.task_runs[idx].set_state(State::Warning, now);
                }
                self.apply_allowances(task, idx);
                return;
            }
            _ => return,
        }
        self.exec.task_runs[idx].retry_decided = true;
        let Some(policy) = self.retry_policy(task, idx) else {
            self.apply_allowances(task, idx);
            return;
        };
        if policy.new_execution {
            self.retry_in_new_execution(task, idx, policy);
            return;
        }
        let run = &self.exec.task_runs[idx];
        let attempts = run.attempts.len() as u32;
        let first = run.attempts.first().map(|a| a.started_ms).unwrap_or(run.started_ms);
        let last_end = run.ended_ms.unwrap_or(self.now);
        let Some((at, max, wait)) = self.next_attempt(task, idx, policy, attempts, last_end, first, || {
            format!("failed after {attempts} attempts: no retry left")
        }) else {
            return;
        };
        let run_id = self.exec.task_runs[idx].id.clone();
        let now = self.now;
        let run = &mut self.exec.task_runs[idx];
        run.next_attempt_ms = Some(at);
        run.set_state(State::Retrying, now);
        self.log(
            idx,
            "WARN",
            &format!("attempt {attempts} failed; attempt {}{max} in {wait}", attempts + 1),
        );
        self.fx.timers_add.push(TimerKey {
            due_ms: at,
            execution_id: self.exec.id.clone(),
            task_run_id: run_id,
            kind: timer_kind::RETRY.into(),
        });
    }

    /// When the attempt after `attempts` is due under `policy` (never before now), the `" of N"`
    /// of its log line and the wait in ISO-8601. `None` when no attempt is left: the run ends
    /// under its allowances, after `exhausted` is logged if it had been retried at all.
    #[allow(clippy::too_many_arguments)]
    fn next_attempt(
        &mut self,
        task: &'a Task,
        idx: usize,
        policy: &crate::flow::Retry,
        attempts: u32,
        last_end: i64,
        first: i64,
        exhausted: impl FnOnce() -> String,
    ) -> Option<(i64, String, String)> {
        let Some(at) = policy.next_attempt_at(attempts, last_end, first, rand::random()) else {
            if attempts > 1 {
                self.log(idx, "ERROR", &exhausted());
            }
            self.apply_allowances(task, idx);
            return None;
        };
        let at = at.max(self.now);
        let max = policy.max_attempt.map(|m| format!(" of {m}")).unwrap_or_default();
        let wait =
            crate::flow::duration::format_iso8601(std::time::Duration::from_millis((at - self.now).max(0) as u64));
        Some((at, max, wait))
    }

    /// `retry.behavior: CREATE_NEW_EXECUTION`, as Kestra: the failed run and its parents end
    /// RETRIED, so does the execution (at once, no `errors`/`finally`), and a durable timer
    /// starts a new execution of the flow after the delay. Attempts and `maxDuration` count
    /// executions, from the first one's creation; with none left the run fails as usual.
    fn retry_in_new_execution(&mut self, task: &'a Task, idx: usize, policy: &crate::flow::Retry) {
        let attempts = self.exec.attempt_number.max(1);
        let first = self.exec.original_created_ms.unwrap_or(self.exec.created_ms);
        let Some((at, max, wait)) = self.next_attempt(task, idx, policy, attempts, self.now, first, || {
            format!("failed in execution {attempts} of the flow: no retry left")
        }) else {
            return;
        };
        let now = self.now;
        self.log(
            idx,
            "WARN",
            &format!(
                "failed; the flow runs again in a new execution (attempt {}{max}) in {wait}",
                attempts + 1
            ),
        );
        let mut cur = Some(idx);
        while let Some(i) = cur {
            self.exec.task_runs[i].set_state(State::Retried, now);
            cur = self.exec.task_runs[i]
                .parent_task_run_id
                .clone()
                .and_then(|p| self.exec.task_runs.iter().position(|r| r.id == p));
        }
        self.end_now(State::Retried, None);
        self.exec.retry_at_ms = Some(at);
        self.fx.timers_add.push(TimerKey {
            due_ms: at,
            execution_id: self.exec.id.clone(),
            task_run_id: String::new(),
            kind: timer_kind::NEW_EXECUTION.into(),
        });
    }

    /// Moves a flowable task forward through its children; leaf tasks are left as they are.
    fn drive(&mut self, task: &'a Task, idx: usize) {
        if self.exec.task_runs[idx].state != State::Running {
            return;
        }
        let run_id = self.exec.task_runs[idx].id.clone();
        let status = match &task.kind {
            TaskKind::If(t) => {
                let branch = self.exec.task_runs[idx].branch.clone();
                let list = if branch.as_deref() == Some("then") {
                    &t.then
                } else {
                    &t.else_
                };
                self.run_list(list, Some(&run_id), None)
            }
            TaskKind::Switch(t) => {
                let branch = self.exec.task_runs[idx].branch.clone().unwrap_or_default();
                let list = t.cases.get(&branch).unwrap_or(&t.defaults);
                self.run_list(list, Some(&run_id), None)
            }
            TaskKind::Sequential(t) => self.run_list(&t.tasks, Some(&run_id), None),
            TaskKind::WorkingDirectory(t) => self.run_list(&t.tasks, Some(&run_id), None),
            TaskKind::Parallel(t) => self.run_parallel(&t.tasks, &run_id, None, t.concurrent),
            TaskKind::ForEach(t) => self.run_for_each(idx, t, &run_id),
            TaskKind::WaitFor(t) => self.run_wait_for(idx, task, t, &run_id),
            TaskKind::Dag(t) => self.run_dag(t, &run_id),
            TaskKind::ForEachItem(t) => self.run_list(&t.tasks, Some(&run_id), None),
            // A resumed Pause with Kestra's deprecated `tasks` runs them (see resume::continue_into_tasks).
            TaskKind::Pause(p) if !p.tasks.is_empty() => self.run_list(&p.tasks, Some(&run_id), None),
            _ => return,
        };
        let ListStatus::Done(state) = status else { return };
        let mut state = if state.is_failure() { State::Failed } else { state };
        // Kestra's `errors` and `finally` on a flowable task run as its children, after the rest.
        if state == State::Failed
            && !task.common.errors.is_empty()
            && let ListStatus::Pending = self.run_list(&task.common.errors, Some(&run_id), None)
        {
            return;
        }
        if !task.common.finally.is_empty() {
            match self.run_list(&task.common.finally, Some(&run_id), None) {
                ListStatus::Pending => return,
                ListStatus::Done(s) if s.is_failure() => state = State::Failed,
                ListStatus::Done(_) => {}
            }
        }
        if task.common.allow_failure && state == State::Failed {
            state = State::Warning;
        }
        if task.common.allow_warning && state == State::Warning {
            state = State::Success;
        }
        if let TaskKind::WorkingDirectory(wd) = &task.kind
            && (!wd.output_files.is_empty() || wd.cache.is_some())
            && !state.is_failure()
            && !self.collected_output_files(idx, task, wd, state)
        {
            return;
        }
        self.complete(idx, state, Map::new());
    }

    /// A WorkingDirectory's `outputFiles` are collected from its directory by a job once its
    /// tasks succeeded; the job's outcome ends the run (see `tasks::run`). False while that
    /// job is under way (`outputFiles` is null until it reports).
    fn collected_output_files(
        &mut self,
        idx: usize,
        task: &Task,
        wd: &crate::flow::WorkingDirectoryTask,
        state: State,
    ) -> bool {
        match self.exec.task_runs[idx].outputs.get("outputFiles") {
            Some(Value::Object(_)) => true,
            Some(_) => false,
            None => {
                self.exec.task_runs[idx]
                    .outputs
                    .insert("outputFiles".into(), Value::Null);
                let mut vars = self.vars_for(idx, task);
                if let Value::Object(m) = &mut vars {
                    // The state its tasks ended with: the job ends the run in it.
                    m.insert(
                        crate::tasks::LIST_STATE_VAR.into(),
                        Value::String(state.as_str().into()),
                    );
                }
                let run_id = self.exec.task_runs[idx].id.clone();
                self.fx.jobs.push(Job {
                    execution_id: self.exec.id.clone(),
                    namespace: self.exec.namespace.clone(),
                    task_run_id: run_id.clone(),
                    task: task.clone(),
                    vars,
                    attempt: self.exec.task_runs[idx].attempt,
                    workdir: Some(work_dir(self.exec, &self.exec.task_runs[idx], wd)),
                });
                false
            }
        }
    }

    fn run_for_each(&mut self, idx: usize, t: &'a crate::flow::ForEachTask, run_id: &str) -> ListStatus {
        let count = self.exec.task_runs[idx].items.as_ref().map(Vec::len).unwrap_or(0);
        let limit = if t.concurrency_limit == 0 {
            usize::MAX
        } else {
            t.concurrency_limit as usize
        };
        let mut worst = State::Success;
        let mut active = 0usize;
        let mut pending = false;
        for i in 0..count as u32 {
            let started = self
                .exec
                .task_runs
                .iter()
                .any(|r| r.parent_task_run_id.as_deref() == Some(run_id) && r.iteration == Some(i));
            if !started && active >= limit {
                pending = true;
                break;
            }
            let status = self.run_list(&t.tasks, Some(run_id), Some(i));
            if self.exec.state.is_terminal() {
                return ListStatus::Pending;
            }
            match status {
                ListStatus::Pending => {
                    pending = true;
                    active += 1;
                }
                ListStatus::Done(s) => {
                    worst = worst.worst(s);
                    if s.is_failure() {
                        break;
                    }
                }
            }
        }
        // Parallel branches still running keep the list pending even after a failure: they end
        // (or are killed) before the list reports its worst state.
        if pending {
            ListStatus::Pending
        } else {
            ListStatus::Done(worst)
        }
    }

    /// One WaitFor iteration: its tasks run in order; once they all succeed the iteration count
    /// goes up and `condition` decides: true ends the task, false waits `interval` on a durable
    /// timer before the tasks run again, unless `maxIterations` or `maxDuration` is reached (then
    /// the task ends, FAILED with `failOnMaxReached`). A failing task ends it, as in Kestra.
    fn run_wait_for(
        &mut self,
        idx: usize,
        task: &'a Task,
        t: &'a crate::flow::WaitForTask,
        run_id: &str,
    ) -> ListStatus {
        if self.exec.task_runs[idx].next_check_ms.is_some() {
            return ListStatus::Pending;
        }
        let outcome = match self.run_list(&t.tasks, Some(run_id), None) {
            ListStatus::Pending => return ListStatus::Pending,
            ListStatus::Done(s) if s.is_failure() => return ListStatus::Done(s),
            ListStatus::Done(s) => s,
        };
        let now = self.now;
        let count = self.exec.task_runs[idx]
            .outputs
            .get("iterationCount")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            + 1;
        self.exec.task_runs[idx]
            .outputs
            .insert("iterationCount".into(), json!(count));
        let condition = match self.render_for(idx, task, &t.condition) {
            Ok(s) => s,
            Err(e) => {
                self.log(idx, "ERROR", &format!("cannot render `condition`: {e}"));
                return ListStatus::Done(State::Failed);
            }
        };
        if run_if_truthy(&condition) {
            return ListStatus::Done(outcome);
        }
        let cf = &t.check_frequency;
        let parse = |s: &str| parse_iso8601(s).map(|d| d.as_millis() as i64);
        let (interval, max_duration) = match (parse(&cf.interval), parse(&cf.max_duration)) {
            (Ok(i), Ok(m)) => (i, m),
            (Err(e), _) | (_, Err(e)) => {
                self.log(idx, "ERROR", &format!("invalid `checkFrequency`: {e}"));
                return ListStatus::Done(State::Failed);
            }
        };
        // `iterationCount` is one ahead of the iterations run, as Kestra counts it.
        let reached = if count > cf.max_iterations as u64 {
            Some(format!("max iterations reached ({})", cf.max_iterations))
        } else if now > self.exec.task_runs[idx].started_ms + max_duration {
            Some(format!("max duration reached ({})", cf.max_duration))
        } else {
            None
        };
        if let Some(why) = reached {
            self.log(idx, "WARN", &format!("condition still false: {why}"));
            return ListStatus::Done(if t.fail_on_max_reached { State::Failed } else { outcome });
        }
        let due = now + interval;
        let run = &mut self.exec.task_runs[idx];
        run.next_check_ms = Some(due);
        self.fx.timers_add.push(TimerKey {
            due_ms: due,
            execution_id: self.exec.id.clone(),
            task_run_id: run_id.to_string(),
            kind: timer_kind::WAIT_FOR.into(),
        });
        ListStatus::Pending
    }

    fn start_pause(&mut self, idx: usize, task: &'a Task, p: &'a crate::flow::PauseTask) {
        let now = self.now;
        let duration = match &p.pause_duration {
            Some(d) => match self
                .render_for(idx, task, d)
                .map_err(|e| e.to_string())
                .and_then(|s| parse_iso8601(&s))
            {
                Ok(d) => Some(d),
                Err(e) => {
                    self.fail(idx, &format!("invalid `pauseDuration`: {e}"));
                    return;
                }
            },
            None => None,
        };
        let timeout = match (&p.pause_duration, &task.common.timeout) {
            (None, Some(t)) => match self
                .render_for(idx, task, t)
                .map_err(|e| e.to_string())
                .and_then(|s| parse_iso8601(&s))
            {
                Ok(d) => Some(d),
                Err(e) => {
                    self.fail(idx, &format!("invalid `timeout`: {e}"));
                    return;
                }
            },
            _ => None,
        };
        let mut pause = PauseState {
            since_ms: now,
            ..Default::default()
        };
        let exec_id = self.exec.id.clone();
        let run_id = self.exec.task_runs[idx].id.clone();
        if let Some(d) = duration {
            let due = now + d.as_millis() as i64;
            pause.expires_ms = Some(due);
            self.fx.timers_add.push(TimerKey {
                due_ms: due,
                execution_id: exec_id.clone(),
                task_run_id: run_id.clone(),
                kind: timer_kind::EXPIRE.into(),
            });
        }
        if let Some(d) = timeout {
            let due = now + d.as_millis() as i64;
            pause.timeout_ms = Some(due);
            self.fx.timers_add.push(TimerKey {
                due_ms: due,
                execution_id: exec_id.clone(),
                task_run_id: run_id.clone(),
                kind: timer_kind::TIMEOUT.into(),
            });
        }
        if let Some(h) = &p.human {
            pause.users = h.assignment.users.clone();
            pause.groups = h.assignment.groups.clone();
            if let Some(first) = h.escalation.first() {
                match parse_iso8601(&first.after) {
                    Ok(after) => {
                        let due = now + after.as_millis() as i64;
                        pause.next_escalation_ms = Some(due);
                        self.fx.timers_add.push(TimerKey {
                            due_ms: due,
                            execution_id: exec_id.clone(),
                            task_run_id: run_id.clone(),
                            kind: timer_kind::ESCALATE.into(),
                        });
                    }
                    Err(e) => self.log(idx, "WARN", &format!("escalation not scheduled: invalid `after`: {e}")),
                }
            }
        }
        if let Some(r) = &p.reminders {
            match parse_iso8601(&r.every) {
                Ok(every) if r.max_count != Some(0) => {
                    let due = now + every.as_millis() as i64;
                    pause.next_reminder_ms = Some(due);
                    self.fx.timers_add.push(TimerKey {
                        due_ms: due,
                        execution_id: exec_id.clone(),
                        task_run_id: run_id.clone(),
                        kind: timer_kind::REMINDER.into(),
                    });
                }
                Ok(_) => {}
                Err(e) => self.log(idx, "WARN", &format!("reminders not scheduled: invalid `every`: {e}")),
            }
        }
        if let Some(d) = p.sla.as_deref().and_then(|s| parse_iso8601(s).ok()) {
            let due = now + d.as_millis() as i64;
            pause.sla_due_ms = Some(due);
            self.fx.timers_add.push(TimerKey {
                due_ms: due,
                execution_id: exec_id.clone(),
                task_run_id: run_id.clone(),
                kind: timer_kind::SLA.into(),
            });
        }
        self.exec.task_runs[idx].pause = Some(pause);
        self.exec.task_runs[idx].set_state(State::Paused, now);
        if !p.on_pause.is_empty() {
            self.run_side_tasks(idx, task, &p.on_pause, "onPause", Map::new());
        }
        let message = match duration {
            Some(d) => format!(
                "Paused for {} (behavior {} on expiry)",
                crate::flow::duration::format_iso8601(d),
                p.behavior.as_str()
            ),
            None => "Paused: waiting for a manual resume".to_string(),
        };
        self.log(idx, "INFO", &message);
    }

    /// `inputs` of a Subflow, ForEachItem or Resume rendered to the text an input arrives as (a
    /// value that renders to JSON other than a string arrives as its JSON text).
    fn render_inputs(
        &mut self,
        inputs: &std::collections::BTreeMap<String, Value>,
        vars: &Value,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        let mut out = std::collections::BTreeMap::new();
        for (k, v) in inputs {
            let text = match self.render_value(v, vars) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return Err(format!("cannot render `inputs.{k}`: {e}")),
            };
            out.insert(k.clone(), text);
        }
        Ok(out)
    }

    /// Fails a Subflow or ForEachItem whose child inputs do not pass the child flow's checks.
    fn fail_child_inputs(
        &mut self,
        idx: usize,
        (namespace, flow_id): (&str, &str),
        errors: &[crate::inputs::InputError],
    ) {
        let msg: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
        self.fail(
            idx,
            &format!("invalid inputs for subflow `{namespace}.{flow_id}`: {}", msg.join("; ")),
        );
    }

    /// Labels of a child execution: this one's when `inherit`, then the task's, and always the
    /// user who started this one.
    fn child_labels(
        &self,
        inherit: bool,
        own: &std::collections::BTreeMap<String, String>,
    ) -> std::collections::BTreeMap<String, String> {
        let mut labels = if inherit {
            self.exec.labels.clone()
        } else {
            Default::default()
        };
        labels.extend(own.clone());
        if let Some(user) = self.exec.labels.get(SYSTEM_USERNAME) {
            labels.insert(SYSTEM_USERNAME.into(), user.clone());
        }
        labels
    }

    fn start_subflow(&mut self, idx: usize, task: &Task, t: &crate::flow::SubflowTask) {
        let access = crate::auth::flow_scope::FlowAccess::StartSubflow;
        if let Err(refused) = crate::expr::flow_may(self.env.services, &self.exec.namespace, &t.namespace, access) {
            self.fail(idx, &refused);
            return;
        }
        let Some((revision, child_flow)) = (self.env.flow_lookup)(&t.namespace, &t.flow_id) else {
            self.fail(idx, &format!("subflow `{}.{}` does not exist", t.namespace, t.flow_id));
            return;
        };
        let vars = self.vars_for(idx, task);
        let raw = match self.render_inputs(&t.inputs, &vars) {
            Ok(i) => i,
            Err(e) => {
                self.fail(idx, &e);
                return;
            }
        };
        // SELECT/MULTISELECT `expression` values are rendered as for a start by hand: with the
        // child flow's namespace.
        let render = super::resume::expression_renderer(self.env.renderer, self.env.services, &child_flow, None);
        let checked = crate::inputs::resolve_expressions(&child_flow.inputs, &render)
            .and_then(|defs| crate::inputs::coerce(&defs, &raw));
        let inputs = match checked {
            Ok(i) => i,
            Err(errors) => return self.fail_child_inputs(idx, (&t.namespace, &t.flow_id), &errors),
        };
        let labels = self.child_labels(t.inherit_labels, &t.labels);
        let run_id = self.exec.task_runs[idx].id.clone();
        let child = new_execution(
            &child_flow,
            revision,
            inputs,
            labels,
            &self.exec.started_by,
            self.now,
            Some(ParentRef {
                execution_id: self.exec.id.clone(),
                task_run_id: run_id,
                wait: t.wait,
                transmit_failed: t.transmit_failed,
                iteration: None,
            }),
            None,
        );
        let child_id = child.id.clone();
        self.exec.task_runs[idx].child_execution_id = Some(child_id.clone());
        self.log(
            idx,
            "INFO",
            &format!("Started subflow {}.{} as execution {child_id}", t.namespace, t.flow_id),
        );
        self.fx.children.push(child);
        if !t.wait {
            let mut out = Map::new();
            out.insert("executionId".into(), Value::String(child_id));
            self.complete(idx, State::Success, out);
        }
    }

    /// One of a ForEachItem's own tasks (`_split`, `_items`, `_merge`), run under it.
    fn for_each_item_step(&mut self, idx: usize, task: &Task, step: crate::flow::ForEachItemStep) {
        let parent = self.exec.task_runs[idx].parent_task_run_id.clone();
        let owner = parent
            .as_deref()
            .and_then(|p| self.exec.run(p))
            .map(|r| r.task_id.clone())
            .and_then(|id| self.flow.find_task(&id));
        let (
            Some(parent),
            Some(Task {
                id: owner_id,
                kind: TaskKind::ForEachItem(t),
                ..
            }),
        ) = (parent, owner)
        else {
            self.fail(idx, "internal: a ForEachItem step outside its ForEachItem");
            return;
        };
        let sibling = |exec: &Execution, s: crate::flow::ForEachItemStep| {
            exec.find_run(&format!("{owner_id}{}", s.suffix()), Some(&parent), None)
                .cloned()
        };
        match step {
            crate::flow::ForEachItemStep::Split => self.for_each_item_split(idx, task, t),
            crate::flow::ForEachItemStep::Items => match sibling(self.exec, crate::flow::ForEachItemStep::Split) {
                Some(split) => self.for_each_item_items(idx, task, t, &split),
                None => {
                    self.fail(idx, "internal: the split step has not run");
                }
            },
            crate::flow::ForEachItemStep::Merge => match sibling(self.exec, crate::flow::ForEachItemStep::Items) {
                Some(items) => self.for_each_item_merge(idx, task, &items),
                None => {
                    self.fail(idx, "internal: the items step has not run");
                }
            },
        }
    }

    /// `_split`: cuts `items` into batch files under this task run; outputs `splits`, the URI
    /// of the list of batch URIs (kept on the run too, for `_items`).
    fn for_each_item_split(&mut self, idx: usize, task: &Task, t: &crate::flow::ForEachItemTask) {
        let vars = self.vars_for(idx, task);
        let uri = match self.render_str(&t.items, &vars) {
            Ok(u) => u.trim().to_string(),
            Err(e) => {
                self.fail(idx, &format!("cannot render `items`: {e}"));
                return;
            }
        };
        if !uri.starts_with(super::files::SCHEME) {
            self.fail(
                idx,
                &format!("Unable to split the items from {uri}, this is not an internal storage URI!"),
            );
            return;
        }
        let content = match self
            .env
            .services
            .read_file(&self.exec.namespace, &uri, super::files::MAX_FILE_BYTES)
        {
            Ok(c) => c,
            Err(e) => {
                self.fail(idx, &format!("cannot read `items`: {e}"));
                return;
            }
        };
        let how = match self.batching(&t.batch, &vars) {
            Ok(h) => h,
            Err(e) => {
                self.fail(idx, &e);
                return;
            }
        };
        let separator = t.batch.separator.clone().unwrap_or_else(|| "\n".to_string());
        let batches = match super::files::split_batches(&content, how, separator.as_bytes()) {
            Ok(b) => b,
            Err(e) => {
                self.fail(idx, &e);
                return;
            }
        };
        let run_id = self.exec.task_runs[idx].id.clone();
        let at = |name: &str| {
            super::files::task_path(
                &self.exec.namespace,
                &self.exec.flow_id,
                &self.exec.id,
                &task.id,
                &run_id,
                name,
            )
        };
        let mut uris = Vec::new();
        for (i, batch) in batches.into_iter().enumerate() {
            let path = at(&format!("batch-{}.txt", i + 1));
            uris.push(super::files::uri_of(&path));
            self.fx.files.push((self.exec.id.clone(), path, batch));
        }
        let splits = at("splits.txt");
        self.fx
            .files
            .push((self.exec.id.clone(), splits.clone(), uris.join("\n").into_bytes()));
        self.log(idx, "INFO", &format!("split {uri} into {} batches", uris.len()));
        self.exec.task_runs[idx].items = Some(uris.into_iter().map(Value::String).collect());
        let mut out = Map::new();
        out.insert("splits".into(), Value::String(super::files::uri_of(&splits)));
        self.complete(idx, State::Success, out);
    }

    /// A ForEachItem's `batch`, rendered.
    fn batching(&mut self, b: &crate::flow::ForEachItemBatch, vars: &Value) -> Result<super::files::Batching, String> {
        let mut number = |what: &str, v: &Value| -> Result<usize, String> {
            let text = match v {
                Value::String(s) => self
                    .render_str(s, vars)
                    .map_err(|e| format!("cannot render `batch.{what}`: {e}"))?,
                other => other.to_string(),
            };
            text.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`batch.{what}` must be a whole number above 0, not `{}`", text.trim()))
        };
        let given = [b.rows.is_some(), b.bytes.is_some(), b.partitions.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err("`batch` takes one of `rows`, `bytes` and `partitions`".into());
        }
        if let Some(p) = &b.partitions {
            return number("partitions", p).map(super::files::Batching::Partitions);
        }
        if let Some(bytes) = &b.bytes {
            let text = self
                .render_str(bytes, vars)
                .map_err(|e| format!("cannot render `batch.bytes`: {e}"))?;
            return super::files::parse_size(&text)
                .map(super::files::Batching::Bytes)
                .ok_or_else(|| format!("`batch.bytes` must be a size like 10KB or 1MB, not `{}`", text.trim()));
        }
        match &b.rows {
            Some(r) => number("rows", r).map(super::files::Batching::Rows),
            None => Ok(super::files::Batching::Rows(1)),
        }
    }

    /// `_items`: one subflow execution per batch, with `inputs` rendered with `taskrun.items`
    /// (the batch's URI) and `taskrun.iteration`; outputs `numberOfBatches` and `iterations`
    /// (executions per state, counted as they end when `wait`).
    fn for_each_item_items(&mut self, idx: usize, task: &Task, t: &crate::flow::ForEachItemTask, split: &TaskRun) {
        let access = crate::auth::flow_scope::FlowAccess::StartSubflow;
        if let Err(refused) = crate::expr::flow_may(self.env.services, &self.exec.namespace, &t.namespace, access) {
            self.fail(idx, &refused);
            return;
        }
        let Some((revision, child_flow)) = (self.env.flow_lookup)(&t.namespace, &t.flow_id) else {
            self.fail(idx, &format!("subflow `{}.{}` does not exist", t.namespace, t.flow_id));
            return;
        };
        let batches: Vec<String> = split
            .items
            .iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let render = super::resume::expression_renderer(self.env.renderer, self.env.services, &child_flow, None);
        let defs = match crate::inputs::resolve_expressions(&child_flow.inputs, &render) {
            Ok(d) => d,
            Err(errors) => return self.fail_child_inputs(idx, (&t.namespace, &t.flow_id), &errors),
        };
        let labels = self.child_labels(t.inherit_labels, &t.labels);
        let run_id = self.exec.task_runs[idx].id.clone();
        // Every batch's inputs are checked before any execution starts: all start, or none.
        let mut children = Vec::new();
        for (i, uri) in batches.iter().enumerate() {
            let iteration = i as u32 + 1;
            let mut vars = self.vars_for(idx, task);
            if let Some(Value::Object(tr)) = vars.get_mut("taskrun") {
                tr.insert("items".into(), Value::String(uri.clone()));
                tr.insert("iteration".into(), Value::from(iteration));
            } else if let Value::Object(root) = &mut vars {
                root.insert("taskrun".into(), json!({"items": uri, "iteration": iteration}));
            }
            let raw = match self.render_inputs(&t.inputs, &vars) {
                Ok(i) => i,
                Err(e) => {
                    self.fail(idx, &format!("{e} (batch {iteration})"));
                    return;
                }
            };
            let inputs = match crate::inputs::coerce(&defs, &raw) {
                Ok(i) => i,
                Err(errors) => {
                    let msg: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
                    self.fail(
                        idx,
                        &format!(
                            "invalid inputs for subflow `{}.{}` (batch {iteration}): {}",
                            t.namespace,
                            t.flow_id,
                            msg.join("; ")
                        ),
                    );
                    return;
                }
            };
            children.push(new_execution(
                &child_flow,
                revision,
                inputs,
                labels.clone(),
                &self.exec.started_by,
                self.now,
                Some(ParentRef {
                    execution_id: self.exec.id.clone(),
                    task_run_id: run_id.clone(),
                    wait: t.wait,
                    transmit_failed: t.transmit_failed,
                    iteration: Some(iteration),
                }),
                None,
            ));
        }
        let n = children.len();
        self.log(
            idx,
            "INFO",
            &format!(
                "Started {n} executions of subflow {}.{}, one per batch",
                t.namespace, t.flow_id
            ),
        );
        if t.wait {
            self.exec.task_runs[idx].batch_executions = children.iter().map(|c| c.id.clone()).collect();
        }
        self.fx.children.extend(children);
        let mut out = Map::new();
        out.insert("numberOfBatches".into(), Value::from(n));
        if t.wait && n > 0 {
            out.insert("iterations".into(), json!({"CREATED": n, "RUNNING": 0}));
            self.exec.task_runs[idx].outputs = out;
        } else {
            // Not waited for: the task ends once they are started (Kestra counts them on).
            out.insert("iterations".into(), json!({"CREATED": n}));
            self.complete(idx, State::Success, out);
        }
    }

    /// `_merge`: the subflows' outputs (one JSON document a line, by iteration) in one file,
    /// output as `subflowOutputs`; no output when the subflow has none.
    fn for_each_item_merge(&mut self, idx: usize, task: &Task, items: &TaskRun) {
        let n = items
            .outputs
            .get("numberOfBatches")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut merged = Vec::new();
        for iteration in 1..=n {
            let path = super::files::iteration_outputs_path(self.exec, items, iteration as u32);
            if let Ok(line) = self.env.services.read_file(
                &self.exec.namespace,
                &super::files::uri_of(&path),
                super::files::MAX_FILE_BYTES,
            ) {
                merged.extend_from_slice(&line);
                merged.push(b'\n');
            }
        }
        let mut out = Map::new();
        if !merged.is_empty() {
            if let Err(e) = super::files::check_size("the merged outputs", merged.len()) {
                self.fail(idx, &e);
                return;
            }
            let run_id = self.exec.task_runs[idx].id.clone();
            let path = super::files::task_path(
                &self.exec.namespace,
                &self.exec.flow_id,
                &self.exec.id,
                &task.id,
                &run_id,
                "outputs.jsonl",
            );
            out.insert("subflowOutputs".into(), Value::String(super::files::uri_of(&path)));
            self.fx.files.push((self.exec.id.clone(), path, merged));
        }
        self.complete(idx, State::Success, out);
    }

    /// Runs notification-style tasks attached to a waiting gate (onPause, reminders, escalation).
    /// Each gets its own task run under the gate's; its failure is logged and never touches the gate.
    /// Templates see the gate as `task`, its `assignees`, plus `extras` (e.g. `reminder`, `waitingFor`).
    pub fn run_side_tasks(
        &mut self,
        gate_idx: usize,
        gate: &Task,
        tasks: &'a [Task],
        purpose: &str,
        extras: Map<String, Value>,
    ) {
        let now = self.now;
        let gate_run_id = self.exec.task_runs[gate_idx].id.clone();
        let (users, groups) = self.exec.task_runs[gate_idx]
            .pause
            .as_ref()
            .map(|p| (p.users.clone(), p.groups.clone()))
            .unwrap_or_default();
        let delegates = (self.env.delegates)(&self.exec.namespace, &users, &groups);
        for task in tasks.iter().filter(|t| !t.common.disabled) {
            let run = TaskRun::started(task, Some(gate_run_id.clone()), Some(purpose.to_string()), None, now);
            self.exec.task_runs.push(run);
            let idx = self.exec.task_runs.len() - 1;
            let mut vars = context::vars(self.flow, self.exec, Some(&self.exec.task_runs[idx]), Some(gate));
            if let Value::Object(m) = &mut vars {
                m.insert(
                    "assignees".into(),
                    json!({"users": users, "groups": groups, "delegates": delegates}),
                );
                m.insert("gate".into(), json!({"id": gate.id, "taskRunId": gate_run_id}));
                for (k, v) in &extras {
                    m.insert(k.clone(), v.clone());
                }
            }
            match &task.kind {
                TaskKind::Log(t) => {
                    let level = t.level.unwrap_or(LogLevel::Info).as_str();
                    let mut failed = None;
                    for message in t.message.items() {
                        match self.render_str(message, &vars) {
                            Ok(text) => self.log(idx, level, &text),
                            Err(e) => {
                                failed = Some(format!("{purpose} task `{}`: cannot render `message`: {e}", task.id));
                                break;
                            }
                        }
                    }
                    match failed {
                        Some(msg) => {
                            self.log(idx, "ERROR", &msg);
                            self.complete(idx, State::Failed, Map::new());
                        }
                        None => self.complete(idx, State::Success, Map::new()),
                    }
                }
                TaskKind::HttpRequest(_)
                | TaskKind::SlackWebhook(_)
                | TaskKind::TeamsWebhook(_)
                | TaskKind::DiscordWebhook(_)
                | TaskKind::MailSend(_)
                | TaskKind::KvSet(_)
                | TaskKind::KvGet(_)
                | TaskKind::KvDelete(_)
                | TaskKind::KvGetKeys(_)
                | TaskKind::State(_) => {
                    self.fx.jobs.push(Job {
                        execution_id: self.exec.id.clone(),
                        namespace: self.exec.namespace.clone(),
                        task_run_id: self.exec.task_runs[idx].id.clone(),
                        task: task.clone(),
                        vars,
                        attempt: 1,
                        workdir: None,
                    });
                }
                _ => {
                    let msg = format!(
                        "{purpose} task `{}`: only Log and notification tasks can run while a gate waits",
                        task.id
                    );
                    self.log(idx, "ERROR", &msg);
                    self.complete(idx, State::Failed, Map::new());
                }
            }
        }
    }

    // ------------------------------------------------------------ helpers

    fn vars_for(&self, idx: usize, task: &Task) -> Value {
        context::vars(self.flow, self.exec, Some(&self.exec.task_runs[idx]), Some(task))
    }

    /// Kestra's `executionId`, `namespace`, `flowId` of the tasks that act on another execution
    /// (Resume, log.Fetch), rendered and trimmed: (executionId, namespace + flowId).
    fn execution_parameters(
        &mut self,
        idx: usize,
        task: &Task,
        [execution_id, namespace, flow_id]: [&Option<String>; 3],
    ) -> Result<ExecutionParameters, String> {
        let mut render = |key: &str, v: &Option<String>| match v {
            Some(text) => self
                .render_for(idx, task, text)
                .map(|s| Some(s.trim().to_string()))
                .map_err(|e| format!("cannot render `{key}`: {e}")),
            None => Ok(None),
        };
        let target = render("executionId", execution_id)?;
        let ns = render("namespace", namespace)?;
        let id = render("flowId", flow_id)?;
        Ok((target, ns.zip(id)))
    }

    fn render_for(&mut self, idx: usize, task: &Task, template: &str) -> Result<String, String> {
        let vars = self.vars_for(idx, task);
        self.render_str(template, &vars)
    }

    fn render_str(&mut self, template: &str, vars: &Value) -> Result<String, String> {
        // errorLogs() also sees this step's own ERROR lines (not stored until the step commits).
        let pending = crate::expr::WithPendingLogs {
            inner: self.env.services,
            pending: if crate::expr::uses_error_logs(template) {
                crate::services::error_entries(&self.fx.logs)
            } else {
                Vec::new()
            },
            files: &self.fx.files,
        };
        let r = self
            .env
            .renderer
            .render(template, vars, &pending, &self.exec.namespace, &self.exec.id)
            .map_err(|e| e.to_string())?;
        for s in r.secrets {
            if !s.is_empty() && !self.exec.secrets_seen.contains(&s) {
                self.exec.secrets_seen.push(s);
            }
        }
        Ok(r.text)
    }

    /// The (key, value) pairs of a Labels task: a map, a list of `{key, value}`, or a string
    /// rendering to either as JSON; keys and values rendered, values as text.
    fn render_labels(&mut self, labels: &Value, vars: &Value) -> Result<Vec<(String, String)>, String> {
        let text_of = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let resolved = match labels {
            Value::String(template) => {
                let text = self.render_str(template, vars)?;
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| format!("`labels` rendered to `{text}`, which is not a JSON map or list: {e}"))?
            }
            other => other.clone(),
        };
        let mut out = Vec::new();
        match resolved {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = self.render_str(&k, vars)?;
                    let value = self.render_value(&v, vars)?;
                    out.push((key, text_of(&value)));
                }
            }
            Value::Array(items) => {
                for item in items {
                    let (Some(k), Some(v)) = (item.get("key"), item.get("value")) else {
                        return Err(format!("each label in a list needs `key` and `value`, got `{item}`"));
                    };
                    let key = self.render_str(&text_of(k), vars)?;
                    let value = self.render_value(v, vars)?;
                    out.push((key, text_of(&value)));
                }
            }
            other => {
                return Err(format!(
                    "`labels` must be a map or a list of {{key, value}}, not `{other}`"
                ));
            }
        }
        if let Some((k, _)) = out.iter().find(|(k, _)| k.trim().is_empty()) {
            return Err(format!("a label key is empty (`{k}`)"));
        }
        Ok(out)
    }

    /// Renders every string inside a JSON value; a string that is exactly one expression keeps
    /// the expression's JSON type when it renders to JSON (numbers, booleans, lists).
    fn render_value(&mut self, v: &Value, vars: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => {
                let text = self.render_str(s, vars)?;
                if s.trim_start().starts_with("{{") && s.trim_end().ends_with("}}") && text != *s {
                    serde_json::from_str::<Value>(&text)
                        .ok()
                        .filter(|v| !v.is_string())
                        .unwrap_or(Value::String(text))
                } else {
                    Value::String(text)
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.render_value(i, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.render_value(v, vars)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn log(&mut self, idx: usize, level: &str, message: &str) {
        let run = &self.exec.task_runs[idx];
        let (run_id, task_id) = (run.id.clone(), run.task_id.clone());
        self.push_log(&run_id, &task_id, level, message);
    }

    fn exec_log(&mut self, level: &str, message: &str) {
        self.push_log("", "", level, message);
    }

    fn push_log(&mut self, run_id: &str, task_id: &str, level: &str, message: &str) {
        let message = mask(message, &self.exec.secrets_seen);
        let seq = self.exec.log_seq;
        self.exec.log_seq += 1;
        self.fx.logs.push(LogLine {
            seq,
            execution_id: self.exec.id.clone(),
            task_run_id: run_id.to_string(),
            task_id: task_id.to_string(),
            level: level.to_string(),
            message,
            time_ms: self.now,
        });
    }

    fn fail(&mut self, idx: usize, message: &str) -> usize {
        self.log(idx, "ERROR", message);
        self.complete(idx, State::Failed, Map::new());
        idx
    }

    fn complete(&mut self, idx: usize, state: State, outputs: Map<String, Value>) {
        let now = self.now;
        self.cancel_timers_of(idx);
        let outputs = if self.exec.secrets_seen.is_empty() {
            outputs
        } else {
            outputs
                .into_iter()
                .map(|(k, v)| (k, mask_value(&v, &self.exec.secrets_seen)))
                .collect()
        };
        let run = &mut self.exec.task_runs[idx];
        if !outputs.is_empty() {
            run.outputs = outputs;
        }
        run.set_state(state, now);
    }

    fn cancel_timers_of(&mut self, idx: usize) {
        let run = &self.exec.task_runs[idx];
        for (due, kind) in [
            (run.next_attempt_ms, timer_kind::RETRY),
            (run.next_check_ms, timer_kind::WAIT_FOR),
        ] {
            if let Some(due) = due {
                self.fx.timers_del.push(TimerKey {
                    due_ms: due,
                    execution_id: self.exec.id.clone(),
                    task_run_id: run.id.clone(),
                    kind: kind.into(),
                });
            }
        }
        if let Some(p) = &run.pause {
            for (due, kind) in [
                (p.expires_ms, timer_kind::EXPIRE),
                (p.timeout_ms, timer_kind::TIMEOUT),
                (p.next_reminder_ms, timer_kind::REMINDER),
                (p.next_escalation_ms, timer_kind::ESCALATE),
                (p.sleep_until_ms, timer_kind::SLEEP),
                (p.sla_due_ms.filter(|_| p.sla_breached_ms.is_none()), timer_kind::SLA),
            ] {
                if let Some(due) = due {
                    self.fx.timers_del.push(TimerKey {
                        due_ms: due,
                        execution_id: self.exec.id.clone(),
                        task_run_id: run.id.clone(),
                        kind: kind.into(),
                    });
                }
            }
        }
    }
}

/// Label Kestra sets to the user who started an execution.
pub const SYSTEM_USERNAME: &str = "system.username";
const DEFAULTS_BRANCH: &str = "\0defaults";

/// A new execution document in state CREATED.
#[allow(clippy::too_many_arguments)]
pub fn new_execution(
    flow: &Flow,
    revision: u32,
    inputs: Map<String, Value>,
    mut labels: std::collections::BTreeMap<String, String>,
    started_by: &str,
    now: i64,
    parent: Option<ParentRef>,
    trigger: Option<Value>,
) -> Execution {
    for (k, v) in &flow.labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // The daemon's own label: whatever a caller or the flow put there is replaced.
    labels.insert(SYSTEM_USERNAME.into(), started_by.to_string());
    let secret_inputs: Vec<String> = flow
        .inputs
        .iter()
        .filter(|d| d.input_type == crate::inputs::InputType::Secret)
        .map(|d| d.id.clone())
        .collect();
    let mut inputs = inputs;
    for id in &secret_inputs {
        if let Some(v) = inputs.get_mut(id) {
            *v = crate::secrets::seal_value(v);
        }
    }
    Execution {
        id: ids::new_id(),
        namespace: flow.namespace.clone(),
        flow_id: flow.id.clone(),
        flow_revision: revision,
        state: State::Created,
        history: vec![super::execution::StateChange {
            state: State::Created,
            at_ms: now,
        }],
        labels,
        inputs,
        secret_inputs,
        task_runs: Vec::new(),
        created_ms: now,
        updated_ms: now,
        ended_ms: None,
        outputs: Map::new(),
        started_by: started_by.to_string(),
        parent,
        trigger,
        log_seq: 0,
        secrets_seen: Vec::new(),
        sla_violated: Vec::new(),
        attempt_number: 0,
        original_created_ms: None,
        retry_at_ms: None,
        retried_as: None,
    }
}

fn effective(task: &Task, state: State) -> State {
    if task.common.allow_failure && state == State::Failed {
        State::Warning
    } else if task.common.allow_warning && state == State::Warning {
        State::Success
    } else {
        state
    }
}

/// Kestra's `TruthUtils.isTruthy`, used for `runIf`: only `false`, `0`, `-0` and the empty string are false.
pub fn run_if_truthy(s: &str) -> bool {
    !matches!(s.trim(), "false" | "0" | "-0" | "")
}

/// Kestra's truthiness for rendered conditions.
pub fn truthy(s: &str) -> bool {
    !matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "" | "false" | "0" | "null" | "none" | "no"
    )
}

fn as_items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(items) => Ok(items),
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(format!("`{s}` is not a list")),
        },
        other => Err(format!("`{other}` is not a list")),
    }
}

fn item_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Outputs of a resumed pause, as Kestra shapes them.
pub fn resumed_outputs(values: Map<String, Value>, by: &str, now: i64, to: State) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("onResume".into(), Value::Object(values));
    out.insert(
        "resumed".into(),
        json!({"by": by, "on": context::iso_ms(now), "to": to.as_str()}),
    );
    out
}
