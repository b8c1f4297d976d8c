//! The flow model: what a Kestra flow file says, typed. Parsing lives in `parse.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    MailSend(MailSendTask),
    OutputValues(OutputValuesTask),
    Return(ReturnTask),
    Fail(FailTask),
    Sleep(SleepTask),
    Labels(LabelsTask),
    KvSet(KvSetTask),
    KvGet(KvGetTask),
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
        MAIL_SEND,
        OUTPUT_VALUES,
        RETURN,
        ECHO,
        FAIL,
        SLEEP,
        LABELS,
        KV_SET,
        KV_GET,
    ];
    pub const TRIGGERS: &[&str] = &[FLOW_TRIGGER, SCHEDULE_TRIGGER];
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
    #[serde(default)]
    pub error_on_missing_key: bool,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowTrigger {
    #[serde(default)]
    pub preconditions: Option<Preconditions>,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preconditions {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub flows: Vec<FlowCondition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlowCondition {
    pub namespace: String,
    pub flow_id: String,
    #[serde(default)]
    pub states: Vec<String>,
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
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub disabled: bool,
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

impl Task {
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
            TaskKind::Pause(p) => {
                let mut v = vec![&p.on_pause];
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
