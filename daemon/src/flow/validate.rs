//! Semantic checks on a parsed flow: duplicate task ids, references to unknown tasks and inputs,
//! template syntax, cron expressions, time zones and trigger states.
//!
//! Every problem is collected (never only the first), each with the path of the node it
//! concerns; paths follow the document the way `parse.rs` builds them (`tasks[1].then[0]`), so
//! `positions` turns them into `line:column`.

use std::collections::HashMap;
use std::str::FromStr;

use serde_json::Value;
use serde_yaml::Value as Yaml;

use super::model::*;
use super::parse::{self, suggest};
use super::path::{Issue, Path, Segment};
use super::positions::PositionIndex;
use crate::expr::{ExprError, Renderer};
use crate::inputs::{InputDef, InputType};

/// Every semantic problem of `flow`, each with the path of the node it concerns.
pub fn validate(flow: &Flow) -> Vec<Issue> {
    let layout = Layout { doc: None };
    let tasks = layout.tasks(flow);
    let declared: Vec<(String, Path)> = tasks.iter().map(|(t, p)| (t.id.clone(), p.clone())).collect();
    let inputs: Vec<String> = flow.inputs.iter().map(|d| d.id.clone()).collect();
    run(flow, layout, None, &tasks, &declared, &inputs)
}

/// Parses and validates a flow source, reporting the problems of both passes at once: the parts
/// that parsed are validated even when others did not.
pub fn check(source: &str) -> Result<Flow, Vec<Issue>> {
    let parsed = parse::parse_partial(source);
    let mut issues = parsed.issues;
    if let Some(flow) = &parsed.flow {
        let layout = Layout {
            doc: parsed.doc.as_ref(),
        };
        let tasks = layout.tasks(flow);
        let positions = PositionIndex::new(source);
        let found = run(
            flow,
            layout,
            Some(&positions),
            &tasks,
            &parsed.declared_tasks,
            &parsed.declared_inputs,
        );
        issues.extend(found);
    }
    match parsed.flow {
        Some(flow) if issues.is_empty() => Ok(flow),
        _ => Err(issues),
    }
}

fn run(
    flow: &Flow,
    layout: Layout,
    positions: Option<&PositionIndex>,
    tasks: &[(&Task, Path)],
    declared: &[(String, Path)],
    inputs: &[String],
) -> Vec<Issue> {
    let renderer = Renderer::new();
    let mut v = Validator {
        renderer: &renderer,
        layout,
        positions,
        task_ids: declared.iter().map(|(id, _)| id.as_str()).collect(),
        flow_inputs: inputs.iter().map(String::as_str).collect(),
        issues: Vec::new(),
    };
    v.duplicate_ids(declared);
    let root = Path::root();
    v.input_defs(&flow.inputs, &root.key("inputs"), &[]);
    for (key, value) in &flow.variables {
        v.value(value, &root.key("variables").key(key), Scope::Flow);
    }
    for (task, path) in tasks {
        v.task(task, path);
    }
    for (i, s) in flow.sla.iter().enumerate() {
        if let Some(a) = &s.assertion {
            v.template(a, &root.key("sla").index(i).key("assert"), Scope::Flow);
        }
    }
    for (i, output) in flow.outputs.iter().enumerate() {
        v.value(&output.value, &root.key("outputs").index(i).key("value"), Scope::Flow);
    }
    let ids: Vec<&str> = flow.triggers.iter().map(|t| t.id.as_str()).collect();
    for (i, trigger) in flow.triggers.iter().enumerate() {
        let path = layout.item(&root.key("triggers"), &ids, i);
        v.trigger(trigger, &path);
    }
    v.issues
}

/// Lines the model up with the document it came from. Parsing drops items it cannot read, so the
/// n-th task of the model is not always the n-th item of the list; items are matched by id
/// instead. Without a document, model indexes are used.
#[derive(Clone, Copy)]
struct Layout<'y> {
    doc: Option<&'y Yaml>,
}

impl<'y> Layout<'y> {
    /// Every task of the flow with its path, depth first, in document order.
    fn tasks<'f>(&self, flow: &'f Flow) -> Vec<(&'f Task, Path)> {
        let mut out = Vec::new();
        let root = Path::root();
        self.walk(&flow.tasks, &root.key("tasks"), &mut out);
        self.walk(&flow.errors, &root.key("errors"), &mut out);
        self.walk(&flow.finally, &root.key("finally"), &mut out);
        out
    }

    fn walk<'f>(&self, tasks: &'f [Task], path: &Path, out: &mut Vec<(&'f Task, Path)>) {
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        for (i, task) in tasks.iter().enumerate() {
            let tpath = self.item(path, &ids, i);
            out.push((task, tpath.clone()));
            for (branch, children) in branches(task, &tpath) {
                self.walk(children, &branch, out);
            }
        }
    }

    /// The path of the `i`-th model item of the list at `list` whose items have ids `ids`: the
    /// document item with the same id (the k-th such item when k earlier model items share it).
    fn item(&self, list: &Path, ids: &[&str], i: usize) -> Path {
        let Some(node) = self.doc.and_then(|d| node_at(d, list)) else {
            return list.index(i);
        };
        let Yaml::Sequence(items) = node else {
            return list.index(i);
        };
        let Some(id) = ids.get(i) else { return list.index(i) };
        let nth = ids[..i].iter().filter(|x| *x == id).count();
        items
            .iter()
            .enumerate()
            .filter(|(_, item)| item.get("id").map(parse::scalar_text).as_deref() == Some(*id))
            .nth(nth)
            .map(|(j, _)| list.index(j))
            .unwrap_or_else(|| list.index(i))
    }
}

/// The document node at `path`; a `[0]` on a mapping is the mapping itself (a single task written
/// where a list is expected).
fn node_at<'y>(doc: &'y Yaml, path: &Path) -> Option<&'y Yaml> {
    let mut node = doc;
    for seg in &path.0 {
        node = match (seg, node) {
            (Segment::Key(k), Yaml::Mapping(m)) => m
                .iter()
                .find(|(key, _)| parse::scalar_text(key) == *k)
                .map(|(_, v)| v)?,
            (Segment::Index(i), Yaml::Sequence(items)) => items.get(*i)?,
            (Segment::Index(0), Yaml::Mapping(_)) => node,
            _ => return None,
        };
    }
    Some(node)
}

/// Every task of the flow with its path, depth first, in document order.
pub fn located_tasks(flow: &Flow) -> Vec<(&Task, Path)> {
    Layout { doc: None }.tasks(flow)
}

/// The child task lists of a task with the path of each list; mirrors `Task::children`.
fn branches<'f>(task: &'f Task, path: &Path) -> Vec<(Path, &'f Vec<Task>)> {
    match &task.kind {
        TaskKind::If(t) => vec![(path.key("then"), &t.then), (path.key("else"), &t.else_)],
        TaskKind::Switch(t) => {
            let mut v: Vec<(Path, &Vec<Task>)> = t
                .cases
                .iter()
                .map(|(k, tasks)| (path.key("cases").key(k), tasks))
                .collect();
            v.push((path.key("defaults"), &t.defaults));
            v
        }
        TaskKind::Sequential(t) => vec![(path.key("tasks"), &t.tasks)],
        TaskKind::Parallel(t) => vec![(path.key("tasks"), &t.tasks)],
        TaskKind::ForEach(t) => vec![(path.key("tasks"), &t.tasks)],
        TaskKind::WaitFor(t) => vec![(path.key("tasks"), &t.tasks)],
        TaskKind::WorkingDirectory(t) => vec![(path.key("tasks"), &t.tasks)],
        // Its own three tasks are not in the document: errors about them point at the task.
        TaskKind::ForEachItem(t) => vec![(path.clone(), &t.tasks)],
        // Each Dag task sits under `tasks[i].task`.
        TaskKind::Dag(t) => vec![(path.key("tasks"), &t.tasks)],
        TaskKind::Pause(p) => {
            let mut v = vec![(path.key("onPause"), &p.on_pause), (path.key("tasks"), &p.tasks)];
            if let Some(r) = &p.reminders {
                v.push((path.key("reminders").key("tasks"), &r.tasks));
            }
            if let Some(h) = &p.human {
                for (i, e) in h.escalation.iter().enumerate() {
                    v.push((path.key("escalation").index(i).key("tasks"), &e.tasks));
                }
                v.push((path.key("onStale"), &h.on_stale));
            }
            v
        }
        _ => vec![],
    }
}

/// What a template may refer to where it is written.
#[derive(Clone, Copy)]
enum Scope<'f> {
    /// The flow's own context: `outputs.<task>` and `inputs.<input>` must exist.
    Flow,
    /// Like `Flow`, plus inputs declared next to the template (a pause's `onResume`).
    WithInputs(&'f [InputDef]),
    /// Rendered in another context (a subflow's outputs, a trigger): only the syntax is checked.
    SyntaxOnly,
}

struct Validator<'f> {
    renderer: &'f Renderer,
    layout: Layout<'f>,
    /// The source's positions, when validating a source: template errors then point inside the text.
    positions: Option<&'f PositionIndex>,
    task_ids: Vec<&'f str>,
    flow_inputs: Vec<&'f str>,
    issues: Vec<Issue>,
}

impl<'f> Validator<'f> {
    fn issue(&mut self, path: Path, message: String) {
        self.issues.push(Issue::new(path, message));
    }

    fn duplicate_ids(&mut self, tasks: &[(String, Path)]) {
        let mut first: HashMap<&str, &Path> = HashMap::new();
        for (id, path) in tasks {
            match first.get(id.as_str()) {
                Some(earlier) => {
                    let message = format!(
                        "duplicate task id `{id}`: already used by the task at `{earlier}`; task ids must be unique in the whole flow"
                    );
                    self.issue(path.key("id"), message);
                }
                None => {
                    first.insert(id.as_str(), path);
                }
            }
        }
    }

    /// Input definitions: templates in defaults and `dependsOn`, and `dependsOn.inputs` names.
    fn input_defs(&mut self, defs: &'f [InputDef], path: &Path, extra: &'f [InputDef]) {
        let scope = if extra.is_empty() {
            Scope::Flow
        } else {
            Scope::WithInputs(extra)
        };
        let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        for (i, def) in defs.iter().enumerate() {
            let ipath = self.layout.item(path, &ids, i);
            if let Some(problem) = validator_problem(def) {
                self.issue(ipath.key("validator"), problem);
            }
            if let Some(d) = &def.defaults {
                self.value(d, &ipath.key("defaults"), scope);
            }
            if let Some(expr) = &def.expression {
                self.template(expr, &ipath.key("expression"), scope);
            }
            if let Some(dep) = &def.depends_on {
                let dpath = ipath.key("dependsOn");
                for (j, name) in dep.inputs.iter().enumerate() {
                    if name == &def.id {
                        self.issue(
                            dpath.key("inputs").index(j),
                            format!("input `{}` cannot depend on itself", def.id),
                        );
                    } else if !defs.iter().any(|d| &d.id == name) {
                        let known: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
                        let message = format!("unknown input `{name}` in `dependsOn`{}", input_hint(name, &known));
                        self.issue(dpath.key("inputs").index(j), message);
                    }
                }
                if let Some(cond) = &dep.condition {
                    self.template(cond, &dpath.key("condition"), scope);
                }
            }
        }
    }

    fn task(&mut self, task: &'f Task, path: &Path) {
        if let Some(t) = &task.common.timeout {
            self.template(t, &path.key("timeout"), Scope::Flow);
            // Kestra applies `timeout` to tasks a worker runs; on a flowable task or a Subflow it
            // would have no effect, so it is refused rather than ignored.
            if task.is_flowable() || matches!(task.kind, TaskKind::Subflow(_)) {
                self.issue(
                    path.key("timeout"),
                    format!(
                        "`timeout` on task `{}` is not supported: it applies to tasks that run work (HTTP, mail, KV, Sleep, Pause), not to flowable tasks or subflows",
                        task.id
                    ),
                );
            }
        }
        if let Some(c) = &task.common.run_if {
            self.template(c, &path.key("runIf"), Scope::Flow);
        }
        let s = Scope::Flow;
        match &task.kind {
            TaskKind::Log(t) => self.one_or_many(&t.message, &path.key("message"), s),
            TaskKind::Sleep(t) => self.template(&t.duration, &path.key("duration"), s),
            TaskKind::Labels(_) => {}
            TaskKind::Pause(p) => {
                if let Some(d) = &p.pause_duration {
                    self.template(d, &path.key("pauseDuration"), s);
                }
                self.input_defs(&p.on_resume, &path.key("onResume"), &p.on_resume);
                if let Some(h) = &p.human {
                    self.assignment(&h.assignment, &path.key("assignment"));
                    for (i, e) in h.escalation.iter().enumerate() {
                        self.assignment(&e.assignment, &path.key("escalation").index(i).key("assignment"));
                    }
                }
            }
            TaskKind::If(t) => self.template(&t.condition, &path.key("condition"), s),
            TaskKind::WaitFor(t) => self.template(&t.condition, &path.key("condition"), s),
            TaskKind::Switch(t) => self.template(&t.value, &path.key("value"), s),
            TaskKind::Sequential(_) | TaskKind::Parallel(_) | TaskKind::Dag(_) => {}
            TaskKind::Resume(t) => {
                self.opt(&t.execution_id, &path.key("executionId"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
                self.opt(&t.flow_id, &path.key("flowId"), s);
                self.map(&t.inputs, &path.key("inputs"), s);
            }
            TaskKind::Fetch(t) => {
                self.opt(&t.execution_id, &path.key("executionId"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
                self.opt(&t.flow_id, &path.key("flowId"), s);
            }
            TaskKind::Toggle(t) => {
                self.opt(&t.namespace, &path.key("namespace"), s);
                self.opt(&t.flow_id, &path.key("flowId"), s);
                self.template(&t.trigger, &path.key("trigger"), s);
            }
            TaskKind::WorkingDirectory(t) => {
                if let Some(files) = &t.input_files {
                    self.value(files, &path.key("inputFiles"), s);
                }
                for (i, g) in t.output_files.iter().enumerate() {
                    self.template(g, &path.key("outputFiles").index(i), s);
                }
                // As Kestra's validator: the directory's tasks run one after the other on one
                // worker, so only tasks that do work themselves may be inside.
                for (i, child) in t.tasks.iter().enumerate() {
                    if child.is_flowable() || matches!(child.kind, TaskKind::Subflow(_) | TaskKind::Pause(_)) {
                        self.issue(
                            path.key("tasks").index(i).key("type"),
                            format!(
                                "task `{}` ({}) cannot be inside WorkingDirectory `{}`: only runnable tasks are allowed as children of a WorkingDirectory task (no flowable tasks, pauses or subflows)",
                                child.id, child.type_name, task.id
                            ),
                        );
                    }
                }
            }
            TaskKind::ForEach(t) => self.value(&t.values, &path.key("values"), s),
            TaskKind::ForEachItem(t) => {
                if t.revision.is_some() {
                    self.issue(
                        path.key("revision"),
                        format!("`revision` on task `{}` (ForEachItem) is not supported: the subflow's latest revision runs", task.id),
                    );
                }
                self.template(&t.items, &path.key("items"), s);
                self.template(&t.namespace, &path.key("namespace"), s);
                self.template(&t.flow_id, &path.key("flowId"), s);
                self.map(&t.inputs, &path.key("inputs"), s);
                for (k, v) in &t.labels {
                    self.template(v, &path.key("labels").key(k), s);
                }
                let b = path.key("batch");
                for (key, v) in [("rows", &t.batch.rows), ("partitions", &t.batch.partitions)] {
                    if let Some(v) = v {
                        self.value(v, &b.key(key), s);
                    }
                }
                self.opt(&t.batch.bytes, &b.key("bytes"), s);
                let given = [
                    t.batch.rows.is_some(),
                    t.batch.bytes.is_some(),
                    t.batch.partitions.is_some(),
                ];
                if given.iter().filter(|g| **g).count() > 1 {
                    self.issue(b, "`batch` takes one of `rows`, `bytes` and `partitions`".to_string());
                }
            }
            TaskKind::ForEachItemStep(_) => {}
            TaskKind::Subflow(t) => {
                self.template(&t.namespace, &path.key("namespace"), s);
                self.template(&t.flow_id, &path.key("flowId"), s);
                self.map(&t.inputs, &path.key("inputs"), s);
                for (k, v) in &t.labels {
                    self.template(v, &path.key("labels").key(k), s);
                }
                // Kestra renders a subflow's `outputs` in the child execution's context.
                self.map(&t.outputs, &path.key("outputs"), Scope::SyntaxOnly);
            }
            TaskKind::HttpRequest(t) => {
                self.template(&t.uri, &path.key("uri"), s);
                self.opt(&t.method, &path.key("method"), s);
                for (k, v) in &t.headers {
                    self.template(v, &path.key("headers").key(k), s);
                }
                if let Some(b) = &t.body {
                    self.value(b, &path.key("body"), s);
                }
                self.opt(&t.content_type, &path.key("contentType"), s);
                self.map(&t.form_data, &path.key("formData"), s);
                if let Some(o) = &t.options {
                    self.opt(&o.connect_timeout, &path.key("options").key("connectTimeout"), s);
                    self.opt(&o.read_timeout, &path.key("options").key("readTimeout"), s);
                }
            }
            TaskKind::SlackWebhook(t) | TaskKind::TeamsWebhook(t) | TaskKind::DiscordWebhook(t) => {
                self.template(&t.url, &path.key("url"), s);
                self.opt(&t.payload, &path.key("payload"), s);
                self.opt(&t.message_text, &path.key("messageText"), s);
            }
            TaskKind::MailSend(t) => {
                for (key, value) in [
                    ("host", &t.host),
                    ("username", &t.username),
                    ("password", &t.password),
                    ("from", &t.from),
                    ("subject", &t.subject),
                    ("htmlTextContent", &t.html_text_content),
                    ("plainTextContent", &t.plain_text_content),
                    ("transportStrategy", &t.transport_strategy),
                ] {
                    self.opt(value, &path.key(key), s);
                }
                self.one_or_many(&t.to, &path.key("to"), s);
                for (key, value) in [("cc", &t.cc), ("bcc", &t.bcc)] {
                    if let Some(v) = value {
                        self.one_or_many(v, &path.key(key), s);
                    }
                }
            }
            TaskKind::OutputValues(t) => self.map(&t.values, &path.key("values"), s),
            TaskKind::Return(t) => self.opt(&t.format, &path.key("format"), s),
            TaskKind::Fail(t) => {
                self.opt(&t.condition, &path.key("condition"), s);
                self.opt(&t.error_message, &path.key("errorMessage"), s);
            }
            TaskKind::KvSet(t) => {
                self.template(&t.key, &path.key("key"), s);
                self.value(&t.value, &path.key("value"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
                self.opt(&t.ttl, &path.key("ttl"), s);
            }
            TaskKind::KvGet(t) => {
                self.template(&t.key, &path.key("key"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
            }
            TaskKind::KvDelete(t) => {
                self.template(&t.key, &path.key("key"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
            }
            TaskKind::State(t) => {
                self.opt(&t.name, &path.key("name"), s);
                if let Some(d) = &t.data {
                    self.value(d, &path.key("data"), s);
                }
            }
            TaskKind::KvGetKeys(t) => {
                self.opt(&t.prefix, &path.key("prefix"), s);
                self.opt(&t.namespace, &path.key("namespace"), s);
            }
            TaskKind::Script(t) => {
                for (key, list) in [
                    ("commands", &t.commands),
                    ("beforeCommands", &t.before_commands),
                    ("interpreter", &t.interpreter),
                ] {
                    for (i, c) in list.iter().enumerate() {
                        self.template(c, &path.key(key).index(i), s);
                    }
                }
                self.opt(&t.script, &path.key("script"), s);
                self.opt(&t.container_image, &path.key("containerImage"), s);
                for (k, v) in &t.env {
                    self.template(v, &path.key("env").key(k), s);
                }
                if let Some(files) = &t.input_files {
                    self.value(files, &path.key("inputFiles"), s);
                }
                for (i, g) in t.output_files.iter().enumerate() {
                    self.template(g, &path.key("outputFiles").index(i), s);
                }
            }
            TaskKind::LocalFiles(t) => {
                if let Some(files) = &t.inputs {
                    self.value(files, &path.key("inputs"), s);
                }
                for (i, g) in t.outputs.iter().enumerate() {
                    self.template(g, &path.key("outputs").index(i), s);
                }
            }
        }
    }

    fn assignment(&mut self, a: &'f Assignment, path: &Path) {
        for (i, u) in a.users.iter().enumerate() {
            self.template(u, &path.key("users").index(i), Scope::Flow);
        }
        for (i, g) in a.groups.iter().enumerate() {
            self.template(g, &path.key("groups").index(i), Scope::Flow);
        }
    }

    fn trigger(&mut self, trigger: &'f Trigger, path: &Path) {
        match &trigger.kind {
            TriggerKind::Schedule(t) => {
                // `withSeconds: true` (Kestra) makes the expression six fields, seconds first.
                let problem = if t.with_seconds {
                    crate::triggers::schedule::parse(&t.cron, true).err()
                } else {
                    cron_problem(&t.cron)
                };
                if let Some(problem) = problem {
                    let message = format!(
                        "invalid cron expression `{}` on trigger `{}`: {problem}",
                        t.cron, trigger.id
                    );
                    self.issue(path.key("cron"), message);
                }
                if let Some(tz) = &t.timezone
                    && chrono_tz::Tz::from_str(tz).is_err()
                {
                    let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
                    let hint = suggest(tz, &names)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    let message = format!("unknown time zone `{tz}` on trigger `{}`{hint}", trigger.id);
                    self.issue(path.key("timezone"), message);
                }
                self.map(&t.inputs, &path.key("inputs"), Scope::SyntaxOnly);
                if t.recover_missed_schedules == Some(crate::flow::RecoverMissed::All) {
                    let message = format!(
                        "`recoverMissedSchedules: ALL` on trigger `{}` is not supported: Tollgate runs fires missed while it was down once (LAST) or not at all (NONE)",
                        trigger.id
                    );
                    self.issue(path.key("recoverMissedSchedules"), message);
                }
                for (i, c) in t.conditions.iter().enumerate() {
                    // A schedule has no execution to look at: only conditions on the date and expressions.
                    if matches!(
                        c,
                        Condition::Expression { .. } | Condition::Not { .. } | Condition::Or { .. }
                    ) {
                        self.condition(c, &trigger.id, &path.key("conditions").index(i), false);
                    } else {
                        let message = format!(
                            "this condition on Schedule trigger `{}` is not supported: a schedule has no execution to test; use an Expression condition",
                            trigger.id
                        );
                        self.issue(path.key("conditions").index(i).key("type"), message);
                    }
                }
            }
            TriggerKind::Flow(t) => {
                for (j, state) in t.states.iter().enumerate() {
                    self.state_name(state, &trigger.id, path.key("states").index(j));
                }
                if let Some(pre) = &t.preconditions {
                    let pp = path.key("preconditions");
                    for (i, cond) in pre.flows.iter().enumerate() {
                        for (j, state) in cond.states.iter().enumerate() {
                            let at = pp.key("flows").index(i).key("states").index(j);
                            self.state_name(state, &trigger.id, at);
                        }
                    }
                    for (i, f) in pre.filters.iter().enumerate() {
                        let fp = pp.key("where").index(i);
                        for (j, filter) in f.filters.iter().enumerate() {
                            self.filter(filter, &trigger.id, &fp.key("filters").index(j));
                        }
                    }
                    if let Some(w) = &pre.time_window {
                        self.time_window(w, &trigger.id, &pp.key("timeWindow"));
                    }
                }
                self.conditions(&t.conditions, &trigger.id, &path.key("conditions"), true);
                // Rendered with the triggering execution as `trigger`, not with this flow's context.
                self.map(&t.inputs, &path.key("inputs"), Scope::SyntaxOnly);
            }
            TriggerKind::Webhook(t) => {
                self.template(&t.key, &path.key("key"), Scope::SyntaxOnly);
                if !t.key.contains("{{") && t.key.trim().is_empty() {
                    self.issue(path.key("key"), format!("empty `key` on trigger `{}`", trigger.id));
                }
                if t.key.len() > 256 {
                    let message = format!("`key` on trigger `{}` is longer than 256 characters", trigger.id);
                    self.issue(path.key("key"), message);
                }
                self.conditions(&t.conditions, &trigger.id, &path.key("conditions"), false);
                self.map(&t.inputs, &path.key("inputs"), Scope::SyntaxOnly);
            }
            TriggerKind::Http(t) => {
                // Rendered with the flow and (the condition) the response, not an execution.
                self.template(&t.request.uri, &path.key("uri"), Scope::SyntaxOnly);
                for (k, v) in &t.request.headers {
                    self.template(v, &path.key("headers").key(k), Scope::SyntaxOnly);
                }
                if let Some(body) = &t.request.body {
                    self.value(body, &path.key("body"), Scope::SyntaxOnly);
                }
                self.template(&t.response_condition, &path.key("responseCondition"), Scope::SyntaxOnly);
                self.conditions(&t.conditions, &trigger.id, &path.key("conditions"), false);
                self.map(&t.inputs, &path.key("inputs"), Scope::SyntaxOnly);
            }
        }
    }

    fn state_name(&mut self, state: &str, trigger_id: &str, at: Path) {
        if !STATES.contains(&state) {
            let hint = suggest(state, STATES)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            self.issue(at, format!("unknown state `{state}` on trigger `{trigger_id}`{hint}"));
        }
    }

    /// Trigger conditions; a MultipleCondition only where there is a stream of executions to
    /// gather over a window (`multiple`: Flow triggers).
    fn conditions(&mut self, conds: &'f [Condition], trigger_id: &str, path: &Path, multiple: bool) {
        for (i, c) in conds.iter().enumerate() {
            self.condition(c, trigger_id, &path.index(i), multiple);
        }
    }

    fn condition(&mut self, c: &'f Condition, trigger_id: &str, path: &Path, multiple: bool) {
        match c {
            Condition::ExecutionFlow { .. }
            | Condition::ExecutionNamespace { .. }
            | Condition::ExecutionLabels { .. } => {}
            Condition::ExecutionStatus { in_, not_in } => {
                for (key, list) in [("in", in_), ("notIn", not_in)] {
                    for (j, state) in list.iter().flatten().enumerate() {
                        self.state_name(state, trigger_id, path.key(key).index(j));
                    }
                }
            }
            Condition::Expression { expression } => {
                self.template(expression, &path.key("expression"), Scope::SyntaxOnly)
            }
            Condition::Not { conditions } | Condition::Or { conditions } => {
                if conditions.is_empty() {
                    let message = format!("empty `conditions` on a condition of trigger `{trigger_id}`");
                    self.issue(path.key("conditions"), message);
                }
                self.conditions(conditions, trigger_id, &path.key("conditions"), false);
            }
            Condition::Multiple {
                id,
                conditions,
                time_window,
                window,
                window_advance,
                ..
            } => {
                if !multiple {
                    let message = format!(
                        "a MultipleCondition on trigger `{trigger_id}` is not supported: it gathers executions of other flows, so it belongs on a Flow trigger"
                    );
                    self.issue(path.key("type"), message);
                }
                if !crate::flow::parse::valid_id(id, false) {
                    self.issue(
                        path.key("id"),
                        format!("invalid condition id `{id}` on trigger `{trigger_id}`"),
                    );
                }
                if conditions.is_empty() {
                    let message = format!("empty `conditions` on MultipleCondition `{id}` of trigger `{trigger_id}`");
                    self.issue(path.key("conditions"), message);
                }
                for (name, sub) in conditions {
                    if matches!(sub, Condition::Multiple { .. }) {
                        let message = format!("a MultipleCondition inside MultipleCondition `{id}` is not supported");
                        self.issue(path.key("conditions").key(name), message);
                    } else {
                        self.condition(sub, trigger_id, &path.key("conditions").key(name), false);
                    }
                }
                for (key, d) in [("window", window), ("windowAdvance", window_advance)] {
                    if let Some(d) = d
                        && let Err(e) = crate::duration::parse_iso8601(d)
                    {
                        self.issue(path.key(key), format!("invalid `{key}` on trigger `{trigger_id}`: {e}"));
                    }
                }
                if let Some(w) = time_window {
                    self.time_window(w, trigger_id, &path.key("timeWindow"));
                }
            }
        }
    }

    fn filter(&mut self, f: &'f Filter, trigger_id: &str, path: &Path) {
        if f.kind.needs_value() && f.value.is_none() {
            let name = serde_json::to_value(f.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let message = format!("missing `value` on a `{name}` filter of trigger `{trigger_id}`");
            self.issue(path.clone(), message);
        }
        if matches!(f.kind, FilterType::In | FilterType::NotIn) && f.values.is_empty() {
            self.issue(
                path.clone(),
                format!("missing `values` on an IN / NOT_IN filter of trigger `{trigger_id}`"),
            );
        }
        if f.field == FilterField::Expression {
            match &f.value {
                Some(v) => self.template(v, &path.key("value"), Scope::SyntaxOnly),
                None => self.issue(
                    path.clone(),
                    format!("an EXPRESSION filter of trigger `{trigger_id}` needs `value`"),
                ),
            }
        }
        if f.kind == FilterType::Regex
            && let Some(v) = &f.value
            && let Err(e) = regex::Regex::new(&format!("^(?:{v})$"))
        {
            let why = e.to_string();
            let why = why
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            self.issue(
                path.key("value"),
                format!("invalid regex `{v}` on trigger `{trigger_id}`: {why}"),
            );
        }
    }

    fn time_window(&mut self, w: &'f TimeWindow, trigger_id: &str, path: &Path) {
        if let Err(e) = crate::engine::flow_trigger::window_spec(w) {
            self.issue(
                path.clone(),
                format!("invalid `timeWindow` on trigger `{trigger_id}`: {e}"),
            );
        }
    }

    fn opt(&mut self, text: &'f Option<String>, path: &Path, scope: Scope<'f>) {
        if let Some(t) = text {
            self.template(t, path, scope);
        }
    }

    fn one_or_many(&mut self, v: &'f OneOrMany, path: &Path, scope: Scope<'f>) {
        match v {
            OneOrMany::One(s) => self.template(s, path, scope),
            OneOrMany::Many(items) => {
                for (i, s) in items.iter().enumerate() {
                    self.template(s, &path.index(i), scope);
                }
            }
        }
    }

    fn map(&mut self, m: &'f std::collections::BTreeMap<String, Value>, path: &Path, scope: Scope<'f>) {
        for (k, v) in m {
            self.value(v, &path.key(k), scope);
        }
    }

    /// Every string inside a structured value is a template.
    fn value(&mut self, v: &'f Value, path: &Path, scope: Scope<'f>) {
        match v {
            Value::String(s) => self.template(s, path, scope),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &path.index(i), scope);
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    self.value(item, &path.key(k), scope);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Checks the syntax of one template, then (when it parses) what it refers to.
    fn template(&mut self, text: &str, path: &Path, scope: Scope<'f>) {
        if !(text.contains("{{") || text.contains("{%") || text.contains("{#")) {
            return;
        }
        if let Err(e) = self.renderer.check_syntax(text) {
            let property = property_name(path);
            let issue = match e {
                ExprError::Syntax {
                    message, line, column, ..
                } => {
                    match self
                        .positions
                        .and_then(|p| p.locate_in_scalar(path, text, line, column))
                    {
                        Some(position) => Issue {
                            path: path.clone(),
                            position: Some(position),
                            message: format!("invalid template in `{property}`: {message}"),
                        },
                        None => {
                            let place = if line > 1 {
                                format!("line {line}, column {column}")
                            } else {
                                format!("column {column}")
                            };
                            let message =
                                format!("invalid template in `{property}` ({place} of the template): {message}");
                            Issue::new(path.clone(), message)
                        }
                    }
                }
                other => Issue::new(path.clone(), format!("invalid template in `{property}`: {other}")),
            };
            self.issues.push(issue);
            return;
        }
        let extra = match scope {
            Scope::SyntaxOnly => return,
            Scope::Flow => &[][..],
            Scope::WithInputs(defs) => defs,
        };
        let mut reported: Vec<(Root, String)> = Vec::new();
        for (root, name) in references(text) {
            // Left of `??`, under `is defined` or `| default`, a missing value is what the author
            // planned for (a task that did not run, a task of another flow's shape, an optional
            // input), so only unguarded references must name a task or input of the flow.
            if reported.contains(&(root, name.clone())) {
                continue;
            }
            let message = match root {
                Root::Outputs if !self.task_ids.contains(&name.as_str()) => {
                    let hint = suggest(&name, &self.task_ids)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    format!("unknown task `{name}` in `outputs.{name}`{hint}")
                }
                Root::Inputs if !self.flow_inputs.contains(&name.as_str()) && !extra.iter().any(|d| d.id == name) => {
                    let mut known = self.flow_inputs.clone();
                    known.extend(extra.iter().map(|d| d.id.as_str()));
                    format!("unknown input `{name}` in `inputs.{name}`{}", input_hint(&name, &known))
                }
                _ => continue,
            };
            reported.push((root, name));
            self.issue(path.clone(), message);
        }
    }
}

/// A STRING input's `validator` that does not compile. `inputs::check_definition` is where
/// definition checks live; this speaks only when it has said nothing about the validator, so the
/// user reads one message either way.
fn validator_problem(def: &InputDef) -> Option<String> {
    let pattern = def.validator.as_deref()?;
    if def.input_type != InputType::String
        || crate::inputs::check_definition(def)
            .iter()
            .any(|p| p.contains("validator"))
    {
        return None;
    }
    let err = regex::Regex::new(pattern).err()?;
    // regex's syntax errors draw the pattern with a caret over several lines; keep the verdict.
    let text = err.to_string();
    let reason = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_string();
    Some(format!(
        "invalid regex `{pattern}` in `validator` of input `{}`: {reason}",
        def.id
    ))
}

const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// What is wrong with a cron expression as Kestra's Schedule reads it (five fields, or a shortcut
/// such as `@daily`), naming the field at fault; `None` when it is valid.
pub fn cron_problem(expr: &str) -> Option<String> {
    let err = croner::Cron::new(expr).parse().err()?;
    let detail = |e: croner::errors::CronError| match e {
        croner::errors::CronError::ComponentError(m)
        | croner::errors::CronError::InvalidPattern(m)
        | croner::errors::CronError::IllegalCharacters(m) => m.trim_end_matches('.').to_lowercase(),
        other => other.to_string(),
    };
    let trimmed = expr.trim();
    if trimmed.starts_with('@') {
        return Some(format!(
            "unknown shortcut `{trimmed}`; use @hourly, @daily, @weekly, @monthly, @yearly or @annually"
        ));
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    if fields.len() != 5 {
        return Some(format!(
            "expected 5 fields ({}), found {}",
            CRON_FIELDS.join(" "),
            fields.len()
        ));
    }
    // Parse each field alone (the others as `*`) to name the one at fault.
    for (k, field) in fields.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[k] = field;
        if let Err(e) = croner::Cron::new(&probe.join(" ")).parse() {
            return Some(format!("{} field `{field}`: {}", CRON_FIELDS[k], detail(e)));
        }
    }
    Some(detail(err))
}

/// Kestra's execution and task run states, as a Flow trigger's `states` names them.
const STATES: &[&str] = &[
    "CREATED",
    "RUNNING",
    "PAUSED",
    "RESTARTED",
    "KILLING",
    "SUCCESS",
    "WARNING",
    "FAILED",
    "KILLED",
    "CANCELLED",
    "QUEUED",
    "RETRYING",
    "RETRIED",
    "SKIPPED",
    "BREAKPOINT",
    "RESUBMITTED",
];

/// `; did you mean …?`, or the declared inputs when none is close, so the fix is on screen.
fn input_hint(name: &str, known: &[&str]) -> String {
    if let Some(s) = suggest(name, known) {
        format!("; did you mean `{s}`?")
    } else if known.is_empty() {
        "; the flow declares no inputs".to_string()
    } else {
        format!("; declared inputs: {}", known.join(", "))
    }
}

/// The property a template sits in, as the user wrote it (`formData.notes`, `message[1]`), for messages.
fn property_name(path: &Path) -> String {
    // The task's own properties start after its last index in a task list.
    let start = path
        .0
        .iter()
        .rposition(|s| matches!(s, Segment::Key(k) if TASK_LISTS.contains(&k.as_str())))
        .map(|i| i + 2)
        .unwrap_or(0);
    let tail = Path(path.0.get(start.min(path.0.len())..).unwrap_or_default().to_vec());
    let text = tail.to_string();
    if text.is_empty() { path.to_string() } else { text }
}

const TASK_LISTS: &[&str] = &[
    "tasks", "then", "else", "defaults", "onPause", "errors", "finally", "triggers",
];

/// Which context variable a reference reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Outputs,
    Inputs,
}

/// The `outputs.<task>` and `inputs.<input>` references of a template, from the expression
/// front end's tokenizer (string literals, loop variables and `trigger.outputs` are not references).
fn references(template: &str) -> Vec<(Root, String)> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    for r in Renderer::references(template).unwrap_or_default() {
        if !r.guarded && !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let root = match path.first().map(String::as_str) {
                Some("outputs") => Root::Outputs,
                Some("inputs") => Root::Inputs,
                _ => return None,
            };
            path.get(1).map(|name| (root, name.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(t: &str) -> Vec<(Root, String)> {
        references(t)
    }

    #[test]
    fn finds_outputs_and_inputs_references() {
        assert_eq!(
            refs("x {{ outputs.a.b }} inputs.z {% if inputs['c'] %}{{ outputs[\"d-e\"] }}{% endif %}"),
            vec![
                (Root::Outputs, "a".to_string()),
                (Root::Inputs, "c".to_string()),
                (Root::Outputs, "d-e".to_string()),
            ]
        );
    }

    #[test]
    fn skips_strings_comments_and_other_roots() {
        assert!(refs("{{ 'outputs.x' ~ \"inputs.y\" }}{# outputs.z #}").is_empty());
        assert!(refs("{{ trigger.outputs.x }} {{ parent.inputs.y }} {{ my_outputs.z }}").is_empty());
        assert!(refs("{{ outputs }}").is_empty());
    }

    #[test]
    fn pebble_operators_do_not_confuse_the_scan() {
        assert_eq!(
            refs("{{ inputs.employee ?? labels.system.username }} {{ outputs.gate.onResume.ok ? 'Y' : 'N' }}"),
            vec![(Root::Outputs, "gate".to_string())]
        );
    }

    #[test]
    fn guarded_references_may_name_tasks_that_do_not_exist() {
        // `??`, `is defined` and `| default` plan for a missing value: not a validation error.
        assert!(refs("{{ outputs.missing.value ?? 'x' }}").is_empty());
        assert!(refs("{% if outputs.maybe is defined %}y{% endif %}").is_empty());
        assert!(refs("{{ inputs.opt | default('d') }}").is_empty());
        assert_eq!(
            refs("{{ outputs.a.value ?? outputs.b.value }}"),
            vec![(Root::Outputs, "b".to_string())]
        );
    }

    #[test]
    fn property_names_are_relative_to_the_task() {
        let p = Path::root().key("tasks").index(2).key("formData").key("notes");
        assert_eq!(property_name(&p), "formData.notes");
        let p = Path::root()
            .key("tasks")
            .index(0)
            .key("then")
            .index(1)
            .key("message")
            .index(0);
        assert_eq!(property_name(&p), "message[0]");
        let p = Path::root().key("outputs").index(0).key("value");
        assert_eq!(property_name(&p), "outputs[0].value");
    }
}
