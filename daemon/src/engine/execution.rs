//! Executions and task runs as stored: one document per execution.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::State;

/// A state change with its time, as Kestra keeps `state.histories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateChange {
    pub state: State,
    pub at_ms: i64,
}

/// The subflow task run that started this execution and waits for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRef {
    pub execution_id: String,
    pub task_run_id: String,
    pub wait: bool,
    pub transmit_failed: bool,
    /// A ForEachItem batch: its 1-based iteration (the parent counts and merges by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
}

/// One decision recorded on a HumanTask that needs several approvals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub by: String,
    pub on_ms: i64,
    pub values: Map<String, Value>,
    /// The approval's comment, or the rejection's reason.
    pub reason: String,
    /// Set when `by` decided as the delegate of this user.
    #[serde(default)]
    pub on_behalf_of: String,
    /// A rejection (the pause ended FAILED) rather than an approval.
    #[serde(default)]
    pub rejected: bool,
    /// The HumanTask's `staleWhen` values when this approval was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_values: Vec<String>,
}

/// What a paused task run waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PauseState {
    pub since_ms: i64,
    /// When `pauseDuration` elapses (`behavior` applies) — none when it waits forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// When the generic `timeout` fails the task (Pause without pauseDuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// Effective assignment (after escalations), for HumanTask.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub escalation_level: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalated_to: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reminder_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reminder_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_escalation_ms: Option<i64>,
    /// When a Sleep task's wait ends (its run stays RUNNING meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_until_ms: Option<i64>,
    /// Next periodic `staleWhen` check while partial approvals are held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_stale_check_ms: Option<i64>,
    /// When the gate's `sla` runs out, and when it was found breached (still waiting then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_due_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_breached_ms: Option<i64>,
}

/// One attempt of a task run, as Kestra lists `attempts`: the first run and each retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub state: State,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub id: String,
    pub task_id: String,
    pub task_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_task_run_id: Option<String>,
    /// ForEach item this run belongs to (display and `taskrun.value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// ForEach iteration index, part of the run's identity among siblings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    pub state: State,
    pub history: Vec<StateChange>,
    /// Kestra's task metrics (`{name, type, value, tags}`), as the task reported them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    pub attempt: u32,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    /// Branch chosen by If/Switch, items of a ForEach: decided once, at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseState>,
    /// Child execution started by a Subflow task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_execution_id: Option<String>,
    /// A ForEachItem `_items` run's batch executions it waits for and that have not ended: they
    /// are killed with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_executions: Vec<String>,
    /// On a shared database: the daemon running this task run's job. When it stops, the daemon
    /// taking over re-runs its task runs only, not those other live daemons still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// Ended attempts, oldest first; the current one (1-based `attempt`) is added when it ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// While RETRYING: when the next attempt starts (a durable `retry` timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_ms: Option<i64>,
    /// Set once the engine decided whether the current failed attempt is retried, so the
    /// decision (which may draw a random delay) is taken once.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_decided: bool,
    /// WaitFor: the current iteration (1-based), as `taskrun.iteration` shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_iteration: Option<u32>,
    /// WaitFor between iterations: when its tasks run again (a durable `waitfor` timer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_ms: Option<i64>,
}

impl TaskRun {
    /// A new run of `task`, CREATED then RUNNING at `now`.
    pub fn started(
        task: &crate::flow::Task,
        parent: Option<String>,
        value: Option<String>,
        iteration: Option<u32>,
        now: i64,
    ) -> TaskRun {
        let mut run = TaskRun {
            id: super::ids::new_id(),
            task_id: task.id.clone(),
            task_type: task.type_name.clone(),
            parent_task_run_id: parent,
            value,
            iteration,
            state: State::Created,
            history: vec![StateChange {
                state: State::Created,
                at_ms: now,
            }],
            outputs: Map::new(),
            metrics: Vec::new(),
            attempt: 1,
            started_ms: now,
            ended_ms: None,
            branch: None,
            items: None,
            pause: None,
            child_execution_id: None,
            batch_executions: Vec::new(),
            runner: None,
            attempts: Vec::new(),
            next_attempt_ms: None,
            retry_decided: false,
            loop_iteration: None,
            next_check_ms: None,
        };
        run.set_state(State::Running, now);
        run
    }

    pub fn set_state(&mut self, state: State, now: i64) {
        let was_terminal = self.state.is_terminal();
        if self.state != state {
            self.state = state;
            self.history.push(StateChange { state, at_ms: now });
        }
        if state.is_terminal() {
            self.ended_ms = Some(now);
            // The attempt ends with the run (a later change, warningOnRetry, keeps the attempt's own state).
            if !was_terminal {
                self.attempts.push(Attempt {
                    state,
                    started_ms: self.attempt_started_ms(),
                    ended_ms: Some(now),
                });
            }
        }
    }

    /// When the current attempt started: the run's start, or the end of the previous attempt's wait.
    fn attempt_started_ms(&self) -> i64 {
        if self.attempts.is_empty() {
            return self.started_ms;
        }
        self.history
            .iter()
            .rev()
            .find(|c| c.state == State::Running)
            .map(|c| c.at_ms)
            .unwrap_or(self.started_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub namespace: String,
    pub flow_id: String,
    pub flow_revision: u32,
    pub state: State,
    pub history: Vec<StateChange>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub inputs: Map<String, Value>,
    /// Ids of inputs of type SECRET, masked whenever the execution is shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_inputs: Vec<String>,
    pub task_runs: Vec<TaskRun>,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
    pub started_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Value>,
    /// Next log sequence number to assign.
    pub log_seq: u64,
    /// Values rendered from `secret()` during the current step, masked in the logs and outputs it
    /// writes. Never stored: a secret value must not reach the database.
    #[serde(skip)]
    pub secrets_seen: Vec<String>,
    /// Indexes (in the flow revision's `sla`) of the flow-level SLAs this execution violated;
    /// each acts once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla_violated: Vec<u32>,
    /// Which execution of the flow this is under a `CREATE_NEW_EXECUTION` retry (0 or 1: the first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt_number: u32,
    /// The first execution's creation, from which a `CREATE_NEW_EXECUTION` retry's
    /// `maxDuration` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_created_ms: Option<i64>,
    /// RETRIED: when the new execution starts (a durable timer), and its id once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_as: Option<String>,
}

impl Execution {
    pub fn set_state(&mut self, state: State, now: i64) {
        if self.state != state {
            self.state = state;
            self.history.push(StateChange { state, at_ms: now });
        }
        if state.is_terminal() {
            self.ended_ms.get_or_insert(now);
        }
        self.updated_ms = now;
    }

    /// Adds the clear text of every SECRET value stored sealed in this execution to the values
    /// masked in what the next step writes (log lines, outputs).
    pub fn remember_secret_values(&mut self) {
        let mut opened = std::mem::take(&mut self.secrets_seen);
        for v in self
            .inputs
            .values()
            .chain(self.task_runs.iter().flat_map(|r| r.outputs.values()))
            .chain(self.trigger.iter())
        {
            if crate::secrets::has_sealed(v) {
                crate::secrets::open_sealed(&mut v.clone(), &mut opened);
            }
        }
        self.secrets_seen = opened;
    }

    pub fn run(&self, id: &str) -> Option<&TaskRun> {
        self.task_runs.iter().find(|r| r.id == id)
    }

    pub fn run_mut(&mut self, id: &str) -> Option<&mut TaskRun> {
        self.task_runs.iter_mut().find(|r| r.id == id)
    }

    /// The run of `task_id` among the children of `parent` (and iteration), if started.
    pub fn find_run(&self, task_id: &str, parent: Option<&str>, iteration: Option<u32>) -> Option<&TaskRun> {
        self.task_runs
            .iter()
            .find(|r| r.task_id == task_id && r.parent_task_run_id.as_deref() == parent && r.iteration == iteration)
    }

    pub fn paused_runs(&self) -> impl Iterator<Item = &TaskRun> {
        self.task_runs.iter().filter(|r| r.state == State::Paused)
    }

    /// When the oldest current pause started (sort key of the paused list).
    pub fn waiting_since(&self) -> Option<i64> {
        self.paused_runs()
            .filter_map(|r| r.pause.as_ref().map(|p| p.since_ms))
            .min()
    }
}

/// One log line of a task run; `seq` orders the lines of an execution without gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub execution_id: String,
    pub task_run_id: String,
    pub task_id: String,
    pub level: String,
    pub message: String,
    pub time_ms: i64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
