//! The flow model: what a Kestra flow file says, typed. Parsing lives in `parse.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::retry::Retry;
use crate::inputs::InputDef;

/// A flow, as applied by a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub id: String,
    pub namespace: String,
    pub description: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub inputs: Vec<InputDef>,
    pub variables: serde_json::Map<String, Value>,
    pub tasks: Vec<Task>,
    pub errors: Vec<Task>,
    pub finally: Vec<Task>,
    pub triggers: Vec<Trigger>,
    pub outputs: Vec<FlowOutput>,
    pub disabled: bool,
    /// Default retry of every task that has none (nor a flowable ancestor with one).
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Most executions of this flow RUNNING (or PAUSED) at once, and what happens to more.
    #[serde(default)]
    pub concurrency: Option<Concurrency>,
    /// Kestra's flow-level `sla`: checked while an execution runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sla: Vec<FlowSla>,
}

/// One entry of a flow's `sla` (Kestra's MaxDurationSLA / ExecutionAssertionSLA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowSla {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: SlaType,
    pub behavior: SlaBehavior,
    /// MAX_DURATION: ISO-8601, counted from the execution's creation (a durable timer).
    #[serde(default)]
    pub duration: Option<String>,
    /// EXECUTION_ASSERTION: a template rendered at every step of a running execution; falsy is
    /// a violation.
    #[serde(default, rename = "assert")]
    pub assertion: Option<String>,
    /// Added to the execution when the SLA is violated.
    #[serde(default)]
    pub labels: Option<LabelList>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaType {
    MaxDuration,
    ExecutionAssertion,
}

/// What a violated SLA does to the execution (besides its labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SlaBehavior {
    /// Ends it FAILED at once (no `errors`, no `finally`, as Kestra).
    Fail,
    /// Ends it CANCELLED at once.
    Cancel,
    /// Only logs (and adds the labels).
    None,
}

/// Kestra's flow `concurrency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Concurrency {
    pub limit: u32,
    #[serde(default)]
    pub behavior: ConcurrencyBehavior,
}

/// What happens to an execution started while `limit` executions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConcurrencyBehavior {
    /// Waits in state QUEUED until one ends (oldest first).
    #[default]
    Queue,
    /// Ends CANCELLED at once.
    Cancel,
    /// Ends FAILED at once.
    Fail,
}

/// A flow-level output (`outputs: [{id, type, value}]`), rendered when the execution ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowOutput {
    pub id: String,
    #[serde(rename = "type", default)]
    pub output_type: Option<String>,
    pub value: Value,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// Properties every task may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskCommon {
    pub description: Option<String>,
    pub disabled: bool,
    /// Generic task timeout (ISO-8601). On a Pause without `pauseDuration` it fails the task when it elapses.
    pub timeout: Option<String>,
    pub allow_failure: bool,
    /// Kestra's `allowWarning`: a WARNING task run counts as SUCCESS.
    pub allow_warning: bool,
    /// Retry of the task (or, on a flowable task, of the tasks inside it that fail).
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Kestra's `runIf`: a template; when it renders false the task run is SKIPPED.
    #[serde(default)]
    pub run_if: Option<String>,
    /// On a flowable task: run when its children fail (the task still ends FAILED).
    #[serde(default)]
    pub errors: Vec<Task>,
    /// On a flowable task: run once its children (and `errors`) are done, whatever the outcome.
    #[serde(default)]
    pub finally: Vec<Task>,
}

/// One task: id, full Kestra type name, common properties and the typed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub type_name: String,
    pub common: TaskCommon,
    pub kind: TaskKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskKind {
    Log(LogTask),
    Pause(PauseTask),
    If(IfTask),
    Switch(SwitchTask),
    Sequential(SequentialTask),
    Parallel(ParallelTask),
    ForEach(ForEachTask),
    Subflow(SubflowTask),
    HttpRequest(HttpRequestTask),
    SlackWebhook(WebhookTask),
    TeamsWebhook(WebhookTask),
    DiscordWebhook(WebhookTask),
    MailSend(MailSendTask),
    OutputValues(OutputValuesTask),
    Return(ReturnTask),
    Fail(FailTask),
    Sleep(SleepTask),
    Labels(LabelsTask),
    KvSet(KvSetTask),
    KvGet(KvGetTask),
    KvDelete(KvDeleteTask),
    KvGetKeys(KvGetKeysTask),
    State(StateTask),
    /// Shell, Python and Node.js `Script` / `Commands` tasks: a child process (or container).
    Script(ScriptTask),
    WaitFor(WaitForTask),
    Dag(DagTask),
    Fetch(FetchTask),
    /// `io.kestra.plugin.core.flow.WorkingDirectory`: its tasks run in order in one shared
    /// directory (script tasks' working directory), removed when it ends.
    WorkingDirectory(WorkingDirectoryTask),
    /// `io.kestra.plugin.core.execution.Resume`: resumes a paused execution of the flow's own
    /// namespace, as the flow.
    Resume(ResumeTask),
    /// `io.kestra.plugin.core.trigger.Toggle`: switches a trigger of a flow of the same namespace
    /// on or off, durably, as the flow.
    Toggle(ToggleTask),
    /// `io.kestra.plugin.core.flow.ForEachItem`: splits a file of the internal storage into
    /// batches and runs a subflow per batch, through three tasks of its own as in Kestra:
    /// `{id}_split`, `{id}_items` and `{id}_merge` (see [`ForEachItemStep`]).
    ForEachItem(ForEachItemTask),
    /// One of a ForEachItem's own three tasks.
    ForEachItemStep(ForEachItemStep),
    LocalFiles(LocalFilesTask),
}

/// The three tasks a ForEachItem runs, in order; their ids are the ForEachItem's with these
/// suffixes, so flows can read `outputs.{id}_items` and `outputs.{id}_merge` as in Kestra.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForEachItemStep {
    /// Splits `items` into batch files; outputs `splits` (the URI of the list of batches).
    Split,
    /// Starts one subflow execution per batch; outputs `numberOfBatches` and `iterations`.
    Items,
    /// Joins the subflows' outputs, one JSON document a line; outputs `subflowOutputs`.
    Merge,
}

impl ForEachItemStep {
    pub const ALL: [ForEachItemStep; 3] = [ForEachItemStep::Split, ForEachItemStep::Items, ForEachItemStep::Merge];

    pub fn suffix(self) -> &'static str {
        match self {
            ForEachItemStep::Split => "_split",
            ForEachItemStep::Items => "_items",
            ForEachItemStep::Merge => "_merge",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ForEachItemStep::Split => "io.kestra.plugin.core.flow.ForEachItem$ForEachItemSplit",
            ForEachItemStep::Items => "io.kestra.plugin.core.flow.ForEachItem$ForEachItemExecutable",
            ForEachItemStep::Merge => "io.kestra.plugin.core.flow.ForEachItem$ForEachItemMergeOutputs",
        }
    }
}

/// How ForEachItem cuts its file: `rows` lines per batch (Kestra's default 1), or batches of
/// about `bytes` (`10KB`, `1MB`, …), or `partitions` batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForEachItemBatch {
    #[serde(default)]
    pub rows: Option<Value>,
    #[serde(default)]
    pub bytes: Option<String>,
    #[serde(default)]
    pub partitions: Option<Value>,
    /// What ends a row (Kestra's default `\n`).
    #[serde(default)]
    pub separator: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForEachItemTask {
    pub items: String,
    #[serde(default)]
    pub batch: ForEachItemBatch,
    pub namespace: String,
    pub flow_id: String,
    #[serde(default)]
    pub revision: Option<u32>,
    /// Rendered per batch, with `taskrun.items` (the batch's URI) and `taskrun.iteration` (1-based).
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub wait: bool,
    #[serde(default = "yes")]
    pub transmit_failed: bool,
    #[serde(default)]
    pub inherit_labels: bool,
    /// Its three tasks (made by the parser, never written in a flow).
    #[serde(skip)]
    pub tasks: Vec<Task>,
}

/// Kestra type names, in one place, so parsing and validation agree.
pub mod types {
    pub const LOG: &str = "io.kestra.plugin.core.log.Log";
    pub const PAUSE: &str = "io.kestra.plugin.core.flow.Pause";
    pub const HUMAN_TASK: &str = "io.kestra.plugin.ee.flow.HumanTask";
    pub const IF: &str = "io.kestra.plugin.core.flow.If";
    pub const SWITCH: &str = "io.kestra.plugin.core.flow.Switch";
    pub const SEQUENTIAL: &str = "io.kestra.plugin.core.flow.Sequential";
    pub const PARALLEL: &str = "io.kestra.plugin.core.flow.Parallel";
    pub const FOR_EACH: &str = "io.kestra.plugin.core.flow.ForEach";
    /// Kestra's older loops, replaced by ForEach: `value` one at a time / all at once (`concurrent`).
    pub const EACH_SEQUENTIAL: &str = "io.kestra.plugin.core.flow.EachSequential";
    pub const EACH_PARALLEL: &str = "io.kestra.plugin.core.flow.EachParallel";
    pub const SUBFLOW: &str = "io.kestra.plugin.core.flow.Subflow";
    pub const HTTP_REQUEST: &str = "io.kestra.plugin.core.http.Request";
    pub const SLACK_WEBHOOK: &str = "io.kestra.plugin.notifications.slack.SlackIncomingWebhook";
    pub const TEAMS_WEBHOOK: &str = "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook";
    pub const DISCORD_WEBHOOK: &str = "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook";
    pub const MAIL_SEND: &str = "io.kestra.plugin.notifications.mail.MailSend";
    pub const OUTPUT_VALUES: &str = "io.kestra.plugin.core.output.OutputValues";
    pub const RETURN: &str = "io.kestra.plugin.core.debug.Return";
    /// Deprecated in Kestra in favour of Log; runs as a Log of its `format`.
    pub const ECHO: &str = "io.kestra.plugin.core.debug.Echo";
    pub const FAIL: &str = "io.kestra.plugin.core.execution.Fail";
    pub const SLEEP: &str = "io.kestra.plugin.core.flow.Sleep";
    pub const LABELS: &str = "io.kestra.plugin.core.execution.Labels";
    pub const KV_SET: &str = "io.kestra.plugin.core.kv.Set";
    pub const KV_GET: &str = "io.kestra.plugin.core.kv.Get";
    pub const KV_DELETE: &str = "io.kestra.plugin.core.kv.Delete";
    pub const KV_GET_KEYS: &str = "io.kestra.plugin.core.kv.GetKeys";
    /// Kestra's deprecated state store, kept on the KV store.
    pub const STATE_SET: &str = "io.kestra.plugin.core.state.Set";
    pub const STATE_GET: &str = "io.kestra.plugin.core.state.Get";
    pub const STATE_DELETE: &str = "io.kestra.plugin.core.state.Delete";
    pub const SHELL_COMMANDS: &str = "io.kestra.plugin.scripts.shell.Commands";
    pub const SHELL_SCRIPT: &str = "io.kestra.plugin.scripts.shell.Script";
    pub const PYTHON_COMMANDS: &str = "io.kestra.plugin.scripts.python.Commands";
    pub const PYTHON_SCRIPT: &str = "io.kestra.plugin.scripts.python.Script";
    pub const NODE_COMMANDS: &str = "io.kestra.plugin.scripts.node.Commands";
    pub const NODE_SCRIPT: &str = "io.kestra.plugin.scripts.node.Script";
    /// Task runners of the script tasks.
    pub const PROCESS_RUNNER: &str = "io.kestra.plugin.core.runner.Process";
    pub const DOCKER_RUNNER: &str = "io.kestra.plugin.scripts.runner.docker.Docker";
    pub const WAIT_FOR: &str = "io.kestra.plugin.core.flow.WaitFor";
    pub const DAG: &str = "io.kestra.plugin.core.flow.Dag";
    pub const FETCH: &str = "io.kestra.plugin.core.log.Fetch";
    pub const RESUME: &str = "io.kestra.plugin.core.execution.Resume";
    pub const WORKING_DIRECTORY: &str = "io.kestra.plugin.core.flow.WorkingDirectory";
    pub const TOGGLE: &str = "io.kestra.plugin.core.trigger.Toggle";
    pub const FOR_EACH_ITEM: &str = "io.kestra.plugin.core.flow.ForEachItem";
    pub const LOCAL_FILES: &str = "io.kestra.plugin.core.storage.LocalFiles";
    /// Deprecated in Kestra: a Sequential with `allowFailure: true`.
    pub const ALLOW_FAILURE: &str = "io.kestra.plugin.core.flow.AllowFailure";
    pub const FLOW_TRIGGER: &str = "io.kestra.plugin.core.trigger.Flow";
    pub const SCHEDULE_TRIGGER: &str = "io.kestra.plugin.core.trigger.Schedule";

    /// Every task type Tollgate runs.
    pub const TASKS: &[&str] = &[
        LOG,
        PAUSE,
        HUMAN_TASK,
        IF,
        SWITCH,
        SEQUENTIAL,
        PARALLEL,
        FOR_EACH,
        EACH_SEQUENTIAL,
        EACH_PARALLEL,
        SUBFLOW,
        HTTP_REQUEST,
        SLACK_WEBHOOK,
        TEAMS_WEBHOOK,
        DISCORD_WEBHOOK,
        MAIL_SEND,
        OUTPUT_VALUES,
        RETURN,
        ECHO,
        FAIL,
        SLEEP,
        LABELS,
        KV_SET,
        KV_GET,
        KV_DELETE,
        KV_GET_KEYS,
        STATE_SET,
        STATE_GET,
        STATE_DELETE,
        SHELL_COMMANDS,
        SHELL_SCRIPT,
        PYTHON_COMMANDS,
        PYTHON_SCRIPT,
        NODE_COMMANDS,
        NODE_SCRIPT,
        WAIT_FOR,
        ALLOW_FAILURE,
        DAG,
        FETCH,
        WORKING_DIRECTORY,
        RESUME,
        TOGGLE,
        FOR_EACH_ITEM,
        LOCAL_FILES,
    ];
    pub const WEBHOOK_TRIGGER: &str = "io.kestra.plugin.core.trigger.Webhook";
    /// Kestra's polling HTTP trigger (`io.kestra.plugin.fs.http.Trigger` is its older name).
    pub const HTTP_TRIGGER: &str = "io.kestra.plugin.core.http.Trigger";
    pub const TRIGGERS: &[&str] = &[FLOW_TRIGGER, SCHEDULE_TRIGGER, WEBHOOK_TRIGGER, HTTP_TRIGGER];
}

/// A string or a list of strings (Kestra accepts both for Log messages and mail recipients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogTask {
    pub message: OneOrMany,
    #[serde(default)]
    pub level: Option<LogLevel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// What happens when `pauseDuration` elapses without a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum PauseBehavior {
    #[default]
    Resume,
    Warn,
    Cancel,
    Fail,
}

impl PauseBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            PauseBehavior::Resume => "RESUME",
            PauseBehavior::Warn => "WARN",
            PauseBehavior::Cancel => "CANCEL",
            PauseBehavior::Fail => "FAIL",
        }
    }
}

/// Who may decide a HumanTask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assignment {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Reminders sent while a gate waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reminders {
    pub every: String,
    #[serde(default)]
    pub max_count: Option<u32>,
    #[serde(default)]
    pub tasks: Vec<serde_yaml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum EscalationMode {
    #[default]
    Add,
    Replace,
}

/// One escalation level of a HumanTask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Escalation {
    pub after: String,
    #[serde(default)]
    pub assignment: Assignment,
    #[serde(default)]
    pub mode: EscalationMode,
    #[serde(default)]
    pub tasks: Vec<serde_yaml::Value>,
}

/// `Pause` and `HumanTask` (the latter has `human` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseTask {
    pub pause_duration: Option<String>,
    pub behavior: PauseBehavior,
    pub on_resume: Vec<InputDef>,
    pub on_pause: Vec<Task>,
    pub reminders: Option<ReminderSpec>,
    pub human: Option<HumanSpec>,
    /// How long a decision may take (ISO-8601, literal): a gate still waiting then is recorded
    /// as an SLA breach (log, audit, metrics); the gate keeps waiting.
    #[serde(default)]
    pub sla: Option<String>,
    /// Kestra's deprecated `tasks`: run in order once the pause is resumed; the Pause ends with
    /// their outcome.
    #[serde(default)]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReminderSpec {
    pub every: String,
    pub max_count: Option<u32>,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationSpec {
    pub after: String,
    pub assignment: Assignment,
    pub mode: EscalationMode,
    pub tasks: Vec<Task>,
}

/// HumanTask extras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanSpec {
    pub assignment: Assignment,
    /// Distinct approvers needed before the task resumes (default 1).
    pub approvals: u32,
    pub allow_self_approval: bool,
    pub escalation: Vec<EscalationSpec>,
    /// `rejectionReasonRequired`: a rejection must say why.
    #[serde(default)]
    pub rejection_reason_required: bool,
    /// `staleWhen`: templated expressions recorded with each partial approval; when one renders
    /// differently later, the partial approvals are discarded.
    #[serde(default)]
    pub stale_when: Vec<String>,
    /// `onStale`: tasks run when partial approvals are discarded (tell the approvers).
    #[serde(default)]
    pub on_stale: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfTask {
    pub condition: String,
    pub then: Vec<Task>,
    pub else_: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchTask {
    pub value: String,
    pub cases: BTreeMap<String, Vec<Task>>,
    pub defaults: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequentialTask {
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParallelTask {
    pub tasks: Vec<Task>,
    /// 0 = no limit.
    pub concurrent: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForEachTask {
    /// A list, or a string rendering to a JSON list.
    pub values: Value,
    pub tasks: Vec<Task>,
    /// 0 = no limit; Kestra's default is 1 (one value at a time).
    pub concurrency_limit: u32,
}

/// `io.kestra.plugin.core.flow.WorkingDirectory`. Kestra runs its tasks on one worker in one
/// temporary directory; only runnable tasks may be inside (checked when parsed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkingDirectoryTask {
    pub tasks: Vec<Task>,
    /// Written into the directory before its first script task runs: a mapping of file name to
    /// content, or a template rendering to one as JSON (as a script task's `inputFiles`).
    pub input_files: Option<Value>,
    /// Globs of files stored once its tasks succeeded (`outputs.<id>.outputFiles['name']`).
    #[serde(default)]
    pub output_files: Vec<String>,
    #[serde(default)]
    pub cache: Option<WorkingDirectoryCache>,
}

/// A WorkingDirectory's `cache`: files matching `patterns` are kept after a successful run and
/// put back in the directory of the next runs until `ttl` has passed since they were kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkingDirectoryCache {
    pub patterns: Vec<String>,
    #[serde(default)]
    pub ttl: Option<String>,
}

/// `io.kestra.plugin.core.execution.Resume`. Without `executionId` it resumes its own execution
/// (a pause in another branch); `namespace` + `flowId` (both or neither, and only with
/// `executionId`) say which flow the execution must belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResumeTask {
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
}

/// `io.kestra.plugin.core.trigger.Toggle`: `trigger` of `namespace`.`flowId` (default: this
/// flow) is switched on (`enabled: true`) or off (Kestra's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToggleTask {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub flow_id: Option<String>,
    pub trigger: String,
    #[serde(default)]
    pub enabled: bool,
}

/// `io.kestra.plugin.core.log.Fetch`: the log lines of an execution (this one unless
/// `executionId` is set; then of this flow unless `namespace` + `flowId` name another flow of the
/// same namespace), of `tasksId` when given, at `level` or above, as outputs `logs` and `size`
/// (Kestra writes them to a file in its internal storage, `uri`; here they are inline).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchTask {
    #[serde(default)]
    pub execution_id: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub tasks_id: Vec<String>,
    #[serde(default)]
    pub level: Option<LogLevel>,
}

/// `io.kestra.plugin.core.flow.Dag`: its tasks run in parallel, each once every task it
/// `dependsOn` has ended (cycles and unknown ids are refused when the flow is parsed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DagTask {
    pub tasks: Vec<Task>,
    /// `depends_on[i]`: the ids `tasks[i]` waits for.
    pub depends_on: Vec<Vec<String>>,
    /// 0 = no limit.
    pub concurrent: u32,
}

/// `io.kestra.plugin.core.flow.WaitFor`: runs `tasks` again every `interval` until `condition`
/// renders true, at most `maxIterations` times and for `maxDuration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitForTask {
    pub condition: String,
    pub tasks: Vec<Task>,
    pub fail_on_max_reached: bool,
    pub check_frequency: CheckFrequency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckFrequency {
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// ISO-8601, Kestra's default PT1H.
    #[serde(default = "default_max_duration")]
    pub max_duration: String,
    /// ISO-8601, Kestra's default PT1S.
    #[serde(default = "default_interval")]
    pub interval: String,
}

impl Default for CheckFrequency {
    fn default() -> Self {
        CheckFrequency {
            max_iterations: default_max_iterations(),
            max_duration: default_max_duration(),
            interval: default_interval(),
        }
    }
}

fn default_max_iterations() -> u32 {
    100
}
fn default_max_duration() -> String {
    "PT1H".into()
}
fn default_interval() -> String {
    "PT1S".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubflowTask {
    pub namespace: String,
    pub flow_id: String,
    #[serde(default)]
    pub revision: Option<u32>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub wait: bool,
    #[serde(default = "yes")]
    pub transmit_failed: bool,
    #[serde(default)]
    pub inherit_labels: bool,
    /// Deprecated Kestra property: outputs rendered from the child's context.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRequestTask {
    pub uri: String,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub form_data: BTreeMap<String, Value>,
    #[serde(default)]
    pub options: Option<HttpOptions>,
    /// Kestra's `allowFailed`: keep non-2xx as a successful task run.
    #[serde(default)]
    pub allow_failed: bool,
    #[serde(default)]
    pub fail_on_non2xx: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpOptions {
    #[serde(default)]
    pub connect_timeout: Option<String>,
    #[serde(default)]
    pub read_timeout: Option<String>,
    #[serde(default)]
    pub allow_failed: Option<bool>,
}

/// Slack and Teams incoming webhooks share one shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookTask {
    pub url: String,
    #[serde(default)]
    pub payload: Option<String>,
    /// Slack's newer plugin: a plain message, sent as `{"text": ...}` (no JSON escaping needed).
    #[serde(default)]
    pub message_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MailSendTask {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    pub to: OneOrMany,
    #[serde(default)]
    pub cc: Option<OneOrMany>,
    #[serde(default)]
    pub bcc: Option<OneOrMany>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub html_text_content: Option<String>,
    #[serde(default)]
    pub plain_text_content: Option<String>,
    #[serde(default)]
    pub transport_strategy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputValuesTask {
    #[serde(default)]
    pub values: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReturnTask {
    #[serde(default)]
    pub format: Option<String>,
}

/// `io.kestra.plugin.core.execution.Labels`: adds (or replaces) labels of the running execution:
/// a map, a list of `{key, value}`, or a template rendering to either as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelsTask {
    pub labels: Value,
}

/// `io.kestra.plugin.core.flow.Sleep`: waits `duration` (ISO-8601, may be templated) on a
/// durable timer, then succeeds; nobody resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SleepTask {
    pub duration: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailTask {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvSetTask {
    pub key: String,
    pub value: Value,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "yes")]
    pub overwrite: bool,
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default)]
    pub kv_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvGetTask {
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Kestra's `errorOnMissing`; `errorOnMissingKey` is its older spelling.
    #[serde(default, alias = "errorOnMissingKey")]
    pub error_on_missing: bool,
}

/// `io.kestra.plugin.core.kv.Delete`: output `deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvDeleteTask {
    pub key: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub error_on_missing: bool,
}

/// What a state task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum StateOp {
    #[default]
    Get,
    Set,
    Delete,
}

/// `io.kestra.plugin.core.state.Set` / `Get` / `Delete` (the op is set from the type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateTask {
    #[serde(skip)]
    pub op: StateOp,
    #[serde(default)]
    pub name: Option<String>,
    /// Share the state across the namespace's flows instead of keeping it per flow.
    #[serde(default)]
    pub namespace: bool,
    /// Keep one state per loop value.
    #[serde(default = "yes")]
    pub taskrun_value: bool,
    #[serde(default)]
    pub error_on_missing: bool,
    /// Set only: merged into the stored object.
    #[serde(default)]
    pub data: Option<Value>,
}

/// `io.kestra.plugin.core.kv.GetKeys`: output `keys`, the live keys starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvGetKeysTask {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// The language of a script task: what runs a `script` and which image Docker uses by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptLanguage {
    Shell,
    Python,
    Node,
}

/// Where a script task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptRunner {
    /// A child process on the daemon's host (`io.kestra.plugin.core.runner.Process`).
    Process,
    /// `docker run` of `containerImage` (`io.kestra.plugin.scripts.runner.docker.Docker`).
    Docker,
}

/// `io.kestra.plugin.scripts.{shell,python,node}.{Commands,Script}`. Every string is a template,
/// rendered when the task runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptTask {
    pub language: ScriptLanguage,
    /// `Commands`: the commands, run by `interpreter` as one script.
    pub commands: Vec<String>,
    /// `Script`: the inline script (a file run by python/node; shell runs it like commands).
    pub script: Option<String>,
    pub before_commands: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// A mapping of file name to content, or a template rendering to one as JSON.
    pub input_files: Option<Value>,
    pub interpreter: Vec<String>,
    pub runner: ScriptRunner,
    pub container_image: Option<String>,
    /// Kestra before 0.23: stderr output turns a successful run into WARNING. Unset: the exit
    /// code alone decides, as in Kestra since 0.23.
    pub warning_on_std_err: Option<bool>,
    pub fail_fast: bool,
    /// Globs of files the script leaves in its directory, stored in the execution's storage
    /// once it succeeds (`outputs.<task>.outputFiles['name']` is each file's URI).
    #[serde(default)]
    pub output_files: Vec<String>,
}

/// `io.kestra.plugin.core.storage.LocalFiles`: writes `inputs` (file name to content, or to a
/// `kestra:///` URI whose file is copied) into the working directory, and stores the files
/// matching `outputs` (globs), output as `uris` (file name to URI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalFilesTask {
    #[serde(default)]
    pub inputs: Option<Value>,
    #[serde(default)]
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub id: String,
    pub type_name: String,
    pub disabled: bool,
    pub kind: TriggerKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TriggerKind {
    Flow(FlowTrigger),
    Schedule(ScheduleTrigger),
    Webhook(WebhookTrigger),
    Http(HttpTrigger),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowTrigger {
    #[serde(default)]
    pub preconditions: Option<Preconditions>,
    /// Every condition must hold for the triggering execution (a MultipleCondition over its window).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// States the trigger reacts to; Kestra's default (none given) is every terminal state.
    #[serde(default)]
    pub states: Vec<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// Kestra's `preconditions`: upstream flows and execution filters that must all be met within a
/// time window (one durable window per trigger, as a MultipleCondition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preconditions {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub flows: Vec<FlowCondition>,
    #[serde(default, rename = "where")]
    pub filters: Vec<ExecutionFilter>,
    #[serde(default)]
    pub time_window: Option<TimeWindow>,
    #[serde(default)]
    pub reset_on_success: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowCondition {
    pub namespace: String,
    #[serde(default)]
    pub flow_id: Option<String>,
    #[serde(default)]
    pub states: Vec<String>,
    /// Labels the upstream execution must carry (values compared as strings).
    #[serde(default)]
    pub labels: BTreeMap<String, Value>,
}

/// One `preconditions.where` entry: filters on the triggering execution joined by `operand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionFilter {
    pub id: String,
    #[serde(default)]
    pub operand: FilterOperand,
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FilterOperand {
    #[default]
    And,
    Or,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    pub field: FilterField,
    #[serde(rename = "type")]
    pub kind: FilterType,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterField {
    FlowId,
    Namespace,
    State,
    Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FilterType {
    EqualTo,
    NotEqualTo,
    In,
    NotIn,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    StartsWith,
    EndsWith,
    Regex,
    Contains,
}

impl FilterType {
    /// Whether the type compares with `value` (the others use `values`, or nothing).
    pub fn needs_value(self) -> bool {
        matches!(
            self,
            FilterType::EqualTo
                | FilterType::NotEqualTo
                | FilterType::StartsWith
                | FilterType::EndsWith
                | FilterType::Regex
                | FilterType::Contains
        )
    }
}

/// Kestra's `timeWindow` of a MultipleCondition or of preconditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimeWindow {
    #[serde(default, rename = "type")]
    pub kind: TimeWindowType,
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub window_advance: Option<String>,
    #[serde(default)]
    pub deadline: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TimeWindowType {
    #[default]
    DurationWindow,
    SlidingWindow,
    DailyTimeDeadline,
    DailyTimeWindow,
}

/// Kestra's trigger conditions, by their full type names (older `...conditions.types.*Condition`
/// names are accepted as aliases, as Kestra does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Condition {
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionFlow",
        alias = "io.kestra.core.models.conditions.types.ExecutionFlowCondition",
        alias = "io.kestra.plugin.core.condition.ExecutionFlowCondition",
        rename_all = "camelCase"
    )]
    ExecutionFlow { namespace: String, flow_id: String },
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionStatus",
        alias = "io.kestra.core.models.conditions.types.ExecutionStatusCondition",
        alias = "io.kestra.plugin.core.condition.ExecutionStatusCondition",
        rename_all = "camelCase"
    )]
    ExecutionStatus {
        #[serde(default, rename = "in")]
        in_: Option<Vec<String>>,
        #[serde(default)]
        not_in: Option<Vec<String>>,
    },
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionNamespace",
        alias = "io.kestra.core.models.conditions.types.ExecutionNamespaceCondition",
        alias = "io.kestra.plugin.core.condition.ExecutionNamespaceCondition",
        rename_all = "camelCase"
    )]
    ExecutionNamespace {
        namespace: String,
        #[serde(default)]
        comparison: Option<NamespaceComparison>,
        #[serde(default)]
        prefix: bool,
    },
    #[serde(
        rename = "io.kestra.plugin.core.condition.ExecutionLabels",
        alias = "io.kestra.core.models.conditions.types.ExecutionLabelsCondition",
        alias = "io.kestra.plugin.core.condition.ExecutionLabelsCondition",
        rename_all = "camelCase"
    )]
    ExecutionLabels { labels: LabelList },
    #[serde(
        rename = "io.kestra.plugin.core.condition.Expression",
        alias = "io.kestra.core.models.conditions.types.VariableCondition",
        alias = "io.kestra.plugin.core.condition.ExpressionCondition",
        rename_all = "camelCase"
    )]
    Expression { expression: String },
    #[serde(
        rename = "io.kestra.plugin.core.condition.Not",
        alias = "io.kestra.core.models.conditions.types.NotCondition",
        alias = "io.kestra.plugin.core.condition.NotCondition",
        rename_all = "camelCase"
    )]
    Not { conditions: Vec<Condition> },
    #[serde(
        rename = "io.kestra.plugin.core.condition.Or",
        alias = "io.kestra.core.models.conditions.types.OrCondition",
        alias = "io.kestra.plugin.core.condition.OrCondition",
        rename_all = "camelCase"
    )]
    Or { conditions: Vec<Condition> },
    #[serde(
        rename = "io.kestra.plugin.core.condition.MultipleCondition",
        alias = "io.kestra.core.models.conditions.types.MultipleCondition",
        rename_all = "camelCase"
    )]
    Multiple {
        id: String,
        conditions: BTreeMap<String, Condition>,
        #[serde(default)]
        time_window: Option<TimeWindow>,
        /// Kestra's deprecated shorthands for `timeWindow.window` / `.windowAdvance`.
        #[serde(default)]
        window: Option<String>,
        #[serde(default)]
        window_advance: Option<String>,
        #[serde(default)]
        reset_on_success: Option<bool>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NamespaceComparison {
    Equals,
    Prefix,
    Suffix,
}

/// Labels as Kestra accepts them: a map, or a list of `{key, value}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelList {
    Map(BTreeMap<String, Value>),
    List(Vec<LabelPair>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelPair {
    pub key: String,
    pub value: Value,
}

impl LabelList {
    /// (key, value as text) pairs; a non-string value compares as its JSON text, like Kestra's
    /// `String.valueOf`.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self {
            LabelList::Map(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            LabelList::List(l) => l.iter().map(|p| (p.key.clone(), text(&p.value))).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleTrigger {
    pub cron: String,
    /// Kestra's `withSeconds`: the expression has a leading seconds field.
    #[serde(default)]
    pub with_seconds: bool,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// Checked at each fire time with `trigger.date`; a fire whose conditions fail is skipped.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Only `LAST` (the one run that Tollgate makes for fires missed while it was down) and
    /// `NONE` (no run for missed fires) are supported.
    #[serde(default)]
    pub recover_missed_schedules: Option<RecoverMissed>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecoverMissed {
    Last,
    None,
    All,
}

/// `io.kestra.plugin.core.trigger.Webhook`: `POST|GET|PUT /api/v1/{tenant}/executions/webhook/{namespace}/{flowId}/{key}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookTrigger {
    /// The only credential of the route (a template: `{{ secret('KEY') }}` works).
    pub key: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

/// `io.kestra.plugin.core.http.Trigger`: every `interval` the daemon sends `request` and, when
/// `responseCondition` (with `response.statusCode`, `.body`, `.headers`) is truthy, starts an
/// execution with the response as `trigger` (`uri`, `code`, `headers`, `body`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTrigger {
    /// uri, method, headers, body, contentType, formData, options: as the Request task.
    pub request: HttpRequestTask,
    pub response_condition: String,
    /// ISO-8601 duration between polls (Kestra's default PT60S).
    pub interval: String,
    /// The body is stored sealed (encrypted at rest) and masked in logs and outputs.
    pub encrypt_body: bool,
    pub conditions: Vec<Condition>,
    pub inputs: BTreeMap<String, Value>,
    pub disabled: bool,
}

impl HttpTrigger {
    pub const DEFAULT_CONDITION: &str = "{{ response.statusCode < 400 }}";
    pub const DEFAULT_INTERVAL: &str = "PT60S";
}

impl Flow {
    /// Finds a task anywhere in the tree (tasks, errors, finally, nested branches).
    pub fn find_task(&self, id: &str) -> Option<&Task> {
        fn walk<'a>(tasks: &'a [Task], id: &str) -> Option<&'a Task> {
            for t in tasks {
                if t.id == id {
                    return Some(t);
                }
                for children in t.children() {
                    if let Some(found) = walk(children, id) {
                        return Some(found);
                    }
                }
            }
            None
        }
        walk(&self.tasks, id)
            .or_else(|| walk(&self.errors, id))
            .or_else(|| walk(&self.finally, id))
    }

    /// Every task of the tree, depth first.
    pub fn all_tasks(&self) -> Vec<&Task> {
        fn walk<'a>(tasks: &'a [Task], out: &mut Vec<&'a Task>) {
            for t in tasks {
                out.push(t);
                for children in t.children() {
                    walk(children, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.tasks, &mut out);
        walk(&self.errors, &mut out);
        walk(&self.finally, &mut out);
        out
    }
}

impl Flow {
    /// Calls `f` on every input definition: the flow's `inputs` and every pause's `onResume`.
    pub fn for_each_input_mut(&mut self, f: &mut dyn FnMut(&mut crate::inputs::InputDef)) {
        fn walk(tasks: &mut [Task], f: &mut dyn FnMut(&mut crate::inputs::InputDef)) {
            for t in tasks {
                if let TaskKind::Pause(p) = &mut t.kind {
                    p.on_resume.iter_mut().for_each(&mut *f);
                }
                for children in t.children_mut() {
                    walk(children, f);
                }
            }
        }
        self.inputs.iter_mut().for_each(&mut *f);
        walk(&mut self.tasks, f);
        walk(&mut self.errors, f);
        walk(&mut self.finally, f);
    }

    /// Whether any input (flow or `onResume`) computes its values from an `expression`.
    pub fn has_input_expressions(&self) -> bool {
        self.inputs.iter().any(|d| d.expression.is_some())
            || self.all_tasks().iter().any(|t| match &t.kind {
                TaskKind::Pause(p) => p.on_resume.iter().any(|d| d.expression.is_some()),
                _ => false,
            })
    }
}

impl Task {
    /// [`Task::children`], mutable.
    fn children_mut(&mut self) -> Vec<&mut Vec<Task>> {
        let mut lists: Vec<&mut Vec<Task>> = match &mut self.kind {
            TaskKind::If(t) => vec![&mut t.then, &mut t.else_],
            TaskKind::Switch(t) => {
                let mut v: Vec<&mut Vec<Task>> = t.cases.values_mut().collect();
                v.push(&mut t.defaults);
                v
            }
            TaskKind::Sequential(t) => vec![&mut t.tasks],
            TaskKind::Parallel(t) => vec![&mut t.tasks],
            TaskKind::ForEach(t) => vec![&mut t.tasks],
            TaskKind::WorkingDirectory(t) => vec![&mut t.tasks],
            TaskKind::ForEachItem(t) => vec![&mut t.tasks],
            TaskKind::Pause(p) => {
                let mut v = vec![&mut p.on_pause];
                if let Some(r) = &mut p.reminders {
                    v.push(&mut r.tasks);
                }
                if let Some(h) = &mut p.human {
                    for e in &mut h.escalation {
                        v.push(&mut e.tasks);
                    }
                }
                v
            }
            _ => vec![],
        };
        lists.push(&mut self.common.errors);
        lists.push(&mut self.common.finally);
        lists
    }

    /// Child task lists (branches) of a flowable task, in declaration order.
    pub fn children(&self) -> Vec<&Vec<Task>> {
        let mut lists = self.own_children();
        lists.push(&self.common.errors);
        lists.push(&self.common.finally);
        lists
    }

    /// Whether it holds tasks of its own (and so may carry `errors` and `finally`).
    pub fn is_flowable(&self) -> bool {
        matches!(
            self.kind,
            TaskKind::If(_)
                | TaskKind::Switch(_)
                | TaskKind::Sequential(_)
                | TaskKind::Parallel(_)
                | TaskKind::ForEach(_)
                | TaskKind::WaitFor(_)
                | TaskKind::Dag(_)
                | TaskKind::WorkingDirectory(_)
                | TaskKind::ForEachItem(_)
        )
    }

    fn own_children(&self) -> Vec<&Vec<Task>> {
        match &self.kind {
            TaskKind::If(t) => vec![&t.then, &t.else_],
            TaskKind::Switch(t) => {
                let mut v: Vec<&Vec<Task>> = t.cases.values().collect();
                v.push(&t.defaults);
                v
            }
            TaskKind::Sequential(t) => vec![&t.tasks],
            TaskKind::Parallel(t) => vec![&t.tasks],
            TaskKind::ForEach(t) => vec![&t.tasks],
            TaskKind::WaitFor(t) => vec![&t.tasks],
            TaskKind::Dag(t) => vec![&t.tasks],
            TaskKind::WorkingDirectory(t) => vec![&t.tasks],
            TaskKind::ForEachItem(t) => vec![&t.tasks],
            TaskKind::Pause(p) => {
                let mut v = vec![&p.on_pause, &p.tasks];
                if let Some(r) = &p.reminders {
                    v.push(&r.tasks);
                }
                if let Some(h) = &p.human {
                    for e in &h.escalation {
                        v.push(&e.tasks);
                    }
                    v.push(&h.on_stale);
                }
                v
            }
            _ => vec![],
        }
    }
}
