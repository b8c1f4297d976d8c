//! YAML → flow model. Every problem is collected with the path of the node it concerns, so that
//! `positions` can turn it into `line:column`; parsing never stops at the first problem.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_yaml::{Mapping, Value as Yaml};

use super::defaults::PluginDefault;
use super::model::*;
use super::path::{Issue, Path, Segment};
use crate::inputs::InputDef;
pub use crate::yaml::yaml_to_json;
pub(crate) use crate::yaml::{scalar_text, short};

/// Parses a flow; returns every issue found when it is not well formed.
pub fn parse_flow(source: &str) -> Result<Flow, Vec<Issue>> {
    let parsed = parse_partial(source);
    match parsed.flow {
        Some(flow) if parsed.issues.is_empty() => Ok(flow),
        _ => Err(parsed.issues),
    }
}

/// What parsing a flow produced, even when it found problems: validation can then still look at
/// the parts that parsed, so a file's problems are all reported at once.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The flow without the tasks, inputs and triggers that could not be read.
    pub flow: Option<Flow>,
    pub issues: Vec<Issue>,
    /// The YAML document, for lining the model up with the source.
    pub doc: Option<Yaml>,
    /// Every task id written in the document with the path of its task, including tasks that
    /// failed to parse, in document order: duplicates and `outputs.<id>` checks need them all.
    pub declared_tasks: Vec<(String, Path)>,
    /// Every flow input id written in the document, including inputs that failed to parse.
    pub declared_inputs: Vec<String>,
}

/// Parses a flow, keeping whatever could be read alongside the issues.
pub fn parse_partial(source: &str) -> Parsed {
    // The YAML parser's time grows with the square of the nesting: bound it first, in one pass.
    if let Err(deep) = super::depth::check(source) {
        return Parsed {
            issues: vec![Issue::at(deep.line, deep.column, deep.to_string())],
            ..Parsed::default()
        };
    }
    let doc: Yaml = match serde_yaml::from_str(source) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as u32, l.column() as u32))
                .unwrap_or((1, 1));
            let (line, column) = super::positions::within_source(source, line, column);
            let issue = Issue::at(
                line,
                column,
                format!("invalid YAML: {}", strip_location(&e.to_string())),
            );
            return Parsed {
                issues: vec![issue],
                ..Parsed::default()
            };
        }
    };
    let mut p = Parser {
        issues: Vec::new(),
        declared_tasks: Vec::new(),
        defaults: Vec::new(),
    };
    let flow = p.flow(&doc);
    if flow.is_none() && p.issues.is_empty() {
        p.issue(Path::root(), "empty flow".to_string());
    }
    let declared_inputs = match doc.get("inputs") {
        Some(Yaml::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.get("id").or_else(|| i.get("name")))
            .map(scalar_text)
            .filter(|id| !id.is_empty())
            .collect(),
        _ => vec![],
    };
    Parsed {
        flow,
        issues: p.issues,
        doc: Some(doc),
        declared_tasks: p.declared_tasks,
        declared_inputs,
    }
}

/// Drops the first ` at line L column C` (the position is reported separately) and keeps the
/// context that follows, such as `, while parsing a flow sequence at line 2 column 12`.
fn strip_location(msg: &str) -> String {
    let Some(i) = msg.find(" at line ") else {
        return msg.to_string();
    };
    let rest = &msg[i..];
    let end = rest.find(',').map(|j| i + j).unwrap_or(msg.len());
    format!("{}{}", &msg[..i], &msg[end..])
}

/// How many unknown keys one value may have before we stop reading it again.
const MAX_RETRIES: usize = 32;

/// Removes `field` from the mapping at `inner` inside `value`; false when there is none.
fn remove_key(value: &mut Yaml, inner: &[serde_path_to_error::Segment], field: &str) -> bool {
    let mut node = value;
    for seg in inner {
        let next = match seg {
            serde_path_to_error::Segment::Seq { index } => node.get_mut(*index),
            serde_path_to_error::Segment::Map { key } => node.get_mut(key.as_str()),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => return false,
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    node.as_mapping_mut().and_then(|m| m.remove(field)).is_some()
}

struct Parser {
    issues: Vec<Issue>,
    declared_tasks: Vec<(String, Path)>,
    /// The flow's `pluginDefaults` (and `taskDefaults`), merged into each task and trigger they
    /// apply to before it is read.
    defaults: Vec<PluginDefault>,
}

/// The keys of a mapping, taken one by one; what is left at the end is unknown.
struct Fields<'a> {
    map: BTreeMap<String, &'a Yaml>,
    path: Path,
    /// The task or trigger these keys belong to, once known, for messages.
    what: Option<String>,
}

impl<'a> Fields<'a> {
    fn new(p: &mut Parser, value: &'a Yaml, path: &Path, what: &str) -> Option<Fields<'a>> {
        match value {
            Yaml::Mapping(m) => {
                let mut map = BTreeMap::new();
                for (k, v) in m {
                    match k.as_str() {
                        Some(k) => {
                            map.insert(k.to_string(), v);
                        }
                        None => p.issue(
                            path.clone(),
                            format!("{what} has a key that is not a string: {}", short(k)),
                        ),
                    }
                }
                Some(Fields {
                    map,
                    path: path.clone(),
                    what: None,
                })
            }
            other => {
                p.issue(
                    path.clone(),
                    format!("{what} must be a mapping, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    fn take(&mut self, key: &str) -> Option<&'a Yaml> {
        self.map.remove(key)
    }

    fn at(&self, key: &str) -> Path {
        self.path.key(key)
    }

    /// Reports keys nobody took, suggesting the closest known one.
    fn finish(self, p: &mut Parser, known: &[&str], what: &str) {
        for key in self.map.keys() {
            let hint = suggest(key, known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            p.issue(self.path.key(key), format!("unknown property `{key}` on {what}{hint}"));
        }
    }
}

/// The closest known name, when it is close enough to be a likely typo.
/// A typo is a few edits away (never the whole word); an abbreviation (`BOOL`, `desc`) is a prefix.
pub fn suggest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let word = word.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&word, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
        .or_else(|| {
            known.iter().copied().find(|k| {
                let k = k.to_lowercase();
                word.len() >= 3 && k.len() >= 3 && (k.starts_with(&word) || word.starts_with(&k))
            })
        })
}

fn kind_of(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

const FLOW_KEYS: &[&str] = &[
    "id",
    "namespace",
    "description",
    "labels",
    "inputs",
    "variables",
    "tasks",
    "errors",
    "finally",
    "triggers",
    "outputs",
    "disabled",
    "revision",
    "concurrency",
    "pluginDefaults",
    "taskDefaults",
    "retry",
    "sla",
];
const TRIGGER_KEYS: &[&str] = &["id", "type"];
const COMMON_TASK_KEYS: &[&str] = &[
    "id",
    "type",
    "description",
    "disabled",
    "timeout",
    "allowFailure",
    "allowWarning",
    "version",
    "logLevel",
    "logToFile",
    "retry",
    "runIf",
];

impl Parser {
    fn issue(&mut self, path: Path, message: String) {
        self.issues.push(Issue::new(path, message));
    }

    /// The plugin's YAML with the flow's plugin defaults merged in, when any applies.
    fn with_defaults(&self, plugin: &Yaml) -> Option<Yaml> {
        if self.defaults.is_empty() {
            return None;
        }
        let written = plugin.get("type").and_then(Yaml::as_str)?;
        super::defaults::apply(&self.defaults, plugin, &canonical_type(written))
    }

    fn flow(&mut self, doc: &Yaml) -> Option<Flow> {
        let root = Path::root();
        let mut f = Fields::new(self, doc, &root, "a flow")?;
        let id = self.required_string(&mut f, "id", "flow");
        let namespace = self.required_string(&mut f, "namespace", "flow");
        if let Some(id) = &id
            && !valid_id(id, true)
        {
            self.issue(
                f.at("id"),
                format!("flow id `{id}` must match [a-zA-Z0-9][a-zA-Z0-9._-]*"),
            );
        }
        if let Some(ns) = &namespace
            && !valid_namespace(ns)
        {
            self.issue(
                f.at("namespace"),
                format!("namespace `{ns}` must be dotted words of [a-zA-Z0-9_-]"),
            );
        }
        let description = self.opt_typed::<String>(&mut f, "description");
        let labels = self.labels(&mut f);
        let inputs = self.inputs(f.take("inputs"), &f.at("inputs"));
        let variables = match f.take("variables") {
            None => serde_json::Map::new(),
            Some(v) => match yaml_to_json(v) {
                Value::Object(m) => m,
                Value::Null => serde_json::Map::new(),
                _ => {
                    self.issue(f.at("variables"), "`variables` must be a mapping".into());
                    serde_json::Map::new()
                }
            },
        };
        // Defaults first: every task and trigger below is read with them merged in.
        for key in ["pluginDefaults", "taskDefaults"] {
            if let Some(v) = f.take(key) {
                let read = super::defaults::read(v, &f.at(key), &mut self.issues);
                self.defaults.extend(read);
            }
        }
        let tasks_path = f.at("tasks");
        let tasks = match f.take("tasks") {
            Some(v) => self.tasks(v, &tasks_path),
            None => {
                self.issue(
                    root.clone(),
                    "flow has no `tasks`: a flow needs at least one task".into(),
                );
                vec![]
            }
        };
        let errors = f
            .take("errors")
            .map(|v| self.tasks(v, &f.at("errors")))
            .unwrap_or_default();
        let finally = f
            .take("finally")
            .map(|v| self.tasks(v, &f.at("finally")))
            .unwrap_or_default();
        let triggers = f
            .take("triggers")
            .map(|v| self.triggers(v, &f.at("triggers")))
            .unwrap_or_default();
        let outputs: Vec<FlowOutput> = self.opt_typed(&mut f, "outputs").unwrap_or_default();
        let disabled = self.opt_typed::<bool>(&mut f, "disabled").unwrap_or(false);
        let retry = self.retry(&mut f);
        let concurrency_path = f.at("concurrency");
        let concurrency: Option<Concurrency> = self.opt_typed(&mut f, "concurrency");
        if concurrency.as_ref().is_some_and(|c| c.limit == 0) {
            self.issue(
                concurrency_path.key("limit"),
                "`concurrency.limit` must be at least 1".into(),
            );
        }
        // The revision is the daemon's to count: a written one is accepted and replaced.
        f.take("revision");
        let sla_path = f.at("sla");
        let sla: Vec<FlowSla> = self.opt_typed(&mut f, "sla").unwrap_or_default();
        self.check_sla(&sla, &sla_path);
        f.finish(self, FLOW_KEYS, "the flow");
        Some(Flow {
            id: id.unwrap_or_default(),
            namespace: namespace.unwrap_or_default(),
            description,
            labels,
            inputs,
            variables,
            tasks,
            errors,
            finally,
            triggers,
            outputs,
            disabled,
            retry,
            concurrency,
            sla,
        })
    }

    /// Kestra's rules for a flow's `sla` entries: the property of each type is required, the
    /// other one is refused rather than ignored, a duration is a literal ISO-8601 duration.
    fn check_sla(&mut self, sla: &[FlowSla], path: &Path) {
        for (i, s) in sla.iter().enumerate() {
            let at = path.index(i);
            if s.id.is_empty() {
                self.issue(at.key("id"), "an `sla` entry needs a non-empty `id`".into());
            }
            match s.kind {
                SlaType::MaxDuration => {
                    match &s.duration {
                        None => self.issue(at.clone(), format!("sla `{}` (MAX_DURATION) needs `duration`", s.id)),
                        Some(d) => {
                            if let Err(e) = super::duration::parse_iso8601(d) {
                                self.issue(at.key("duration"), format!("invalid `duration` on sla `{}`: {e}", s.id));
                            }
                        }
                    }
                    if s.assertion.is_some() {
                        self.issue(
                            at.key("assert"),
                            format!("`assert` on sla `{}` is only for EXECUTION_ASSERTION", s.id),
                        );
                    }
                }
                SlaType::ExecutionAssertion => {
                    if s.assertion.as_deref().is_none_or(|a| a.trim().is_empty()) {
                        self.issue(
                            at.clone(),
                            format!("sla `{}` (EXECUTION_ASSERTION) needs `assert`", s.id),
                        );
                    }
                    if s.duration.is_some() {
                        self.issue(
                            at.key("duration"),
                            format!("`duration` on sla `{}` is only for MAX_DURATION", s.id),
                        );
                    }
                }
            }
            if let Some(labels) = &s.labels
                && let Some((k, _)) = labels.pairs().into_iter().find(|(k, _)| k.starts_with("system."))
            {
                self.issue(
                    at.key("labels"),
                    format!(
                        "label `{k}` on sla `{}` is reserved: labels under `system.` are set by the daemon",
                        s.id
                    ),
                );
            }
        }
    }

    /// A `retry` block (task or flow), checked as Kestra's validators check it.
    fn retry(&mut self, f: &mut Fields) -> Option<super::retry::Retry> {
        let raw: super::retry::RawRetry = self.opt_typed(f, "retry")?;
        match super::retry::Retry::from_raw(&raw) {
            Ok(r) => Some(r),
            Err(problems) => {
                let base = f.at("retry");
                for p in problems {
                    let at = base.key(p.property);
                    self.issue(at, p.message);
                }
                None
            }
        }
    }

    fn required_string(&mut self, f: &mut Fields, key: &str, what: &str) -> Option<String> {
        match f.take(key) {
            Some(Yaml::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Yaml::Number(n)) => Some(n.to_string()),
            Some(Yaml::Bool(b)) => Some(b.to_string()),
            Some(other) => {
                self.issue(
                    f.at(key),
                    format!("`{key}` of {what} must be a non-empty string, found {}", kind_of(other)),
                );
                None
            }
            None => {
                self.issue(f.path.clone(), format!("missing required property `{key}` on {what}"));
                None
            }
        }
    }

    /// Deserializes an optional property with serde; errors carry the property's path.
    fn opt_typed<T: DeserializeOwned>(&mut self, f: &mut Fields, key: &str) -> Option<T> {
        let v = f.take(key)?;
        let path = f.at(key);
        self.typed_in(v, &path, f.what.as_deref(), &[])
    }

    fn typed<T: DeserializeOwned>(&mut self, v: &Yaml, path: &Path) -> Option<T> {
        self.typed_in(v, path, None, &[])
    }

    /// Like `typed`, naming `what` (a task or trigger) in messages; `also_known` are keys already
    /// taken from the mapping, offered as suggestions too.
    fn typed_in<T: DeserializeOwned>(
        &mut self,
        v: &Yaml,
        path: &Path,
        what: Option<&str>,
        also_known: &[&str],
    ) -> Option<T> {
        // serde stops at the first error; an unknown key is removed and the value read again, so
        // that every misspelled key (and what is then missing) is reported at once.
        let mut value = v.clone();
        for _ in 0..MAX_RETRIES {
            let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let msg = e.inner().to_string();
            let unknown = msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                .map(str::to_string);
            // serde_path_to_error ends the path of an unknown field with the field itself; the
            // mapping that holds it is what we need.
            let mut segments: Vec<serde_path_to_error::Segment> = e.path().iter().cloned().collect();
            if let (Some(field), Some(serde_path_to_error::Segment::Map { key })) = (&unknown, segments.last())
                && key == field
            {
                segments.pop();
            }
            let mut at = path.clone();
            for seg in &segments {
                at = match seg {
                    serde_path_to_error::Segment::Seq { index } => at.index(*index),
                    serde_path_to_error::Segment::Map { key } => at.key(key),
                    serde_path_to_error::Segment::Enum { variant } => at.key(variant),
                    serde_path_to_error::Segment::Unknown => at,
                };
            }
            // Point at the offending key itself, not at the mapping that holds it.
            if let Some(field) = &unknown {
                at = at.key(field);
            }
            let message = describe_serde_error(&msg, &at, what, also_known);
            self.issue(at, message);
            let removed = unknown.is_some_and(|field| remove_key(&mut value, &segments, &field));
            if !removed {
                return None;
            }
        }
        None
    }

    fn labels(&mut self, f: &mut Fields) -> BTreeMap<String, String> {
        let path = f.at("labels");
        let mut out = BTreeMap::new();
        match f.take("labels") {
            None | Some(Yaml::Null) => {}
            Some(Yaml::Mapping(m)) => {
                for (k, v) in m {
                    out.insert(scalar_text(k), scalar_text(v));
                }
            }
            // Kestra also accepts a list of {key, value}.
            Some(Yaml::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match (item.get("key"), item.get("value")) {
                        (Some(k), Some(v)) => {
                            out.insert(scalar_text(k), scalar_text(v));
                        }
                        _ => self.issue(path.index(i), "a label in a list needs `key` and `value`".into()),
                    }
                }
            }
            Some(other) => self.issue(path, format!("`labels` must be a mapping, found {}", kind_of(other))),
        }
        out
    }

    fn inputs(&mut self, v: Option<&Yaml>, path: &Path) -> Vec<InputDef> {
        let Some(v) = v else { return vec![] };
        let Yaml::Sequence(items) = v else {
            if !v.is_null() {
                self.issue(path.clone(), format!("inputs must be a list, found {}", kind_of(v)));
            }
            return vec![];
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ipath = path.index(i);
            let item = &input_with_id(item);
            let what = item.get("id").map(|id| format!("input `{}`", scalar_text(id)));
            if let Some(def) = self.typed_in::<InputDef>(item, &ipath, what.as_deref(), &[]) {
                for problem in crate::inputs::check_definition(&def) {
                    let at = problem_property(&problem, item)
                        .map(|k| ipath.key(k))
                        .unwrap_or_else(|| ipath.clone());
                    self.issue(at, problem);
                }
                if out.iter().any(|d: &InputDef| d.id == def.id) {
                    self.issue(ipath.key("id"), format!("duplicate input id `{}`", def.id));
                }
                out.push(def);
            }
        }
        out
    }

    fn tasks(&mut self, v: &Yaml, path: &Path) -> Vec<Task> {
        match v {
            Yaml::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.task(item, &path.index(i)))
                .collect(),
            Yaml::Null => vec![],
            Yaml::Mapping(_) => self.task(v, path).into_iter().collect(),
            other => {
                self.issue(path.clone(), format!("tasks must be a list, found {}", kind_of(other)));
                vec![]
            }
        }
    }

    fn task(&mut self, v: &Yaml, path: &Path) -> Option<Task> {
        let with_defaults = self.with_defaults(v);
        let v = with_defaults.as_ref().unwrap_or(v);
        let mut f = Fields::new(self, v, path, "a task")?;
        let id = self.required_string(&mut f, "id", "a task");
        if let Some(id) = &id {
            self.declared_tasks.push((id.clone(), path.clone()));
            // No dots: `outputs.<id>.<field>` must be able to name the task.
            if !valid_id(id, false) {
                self.issue(
                    f.at("id"),
                    format!("task id `{id}` must match [a-zA-Z0-9][a-zA-Z0-9_-]*"),
                );
            }
        }
        let type_name = self.required_string(&mut f, "type", "a task");
        let short = type_name
            .as_deref()
            .map(|t| short_type(t).to_string())
            .unwrap_or_else(|| "?".to_string());
        f.what = Some(format!("task `{}` ({short})", id.as_deref().unwrap_or("?")));
        let mut common = TaskCommon {
            description: self.opt_typed(&mut f, "description"),
            disabled: self.opt_typed(&mut f, "disabled").unwrap_or(false),
            timeout: self.opt_duration(&mut f, "timeout"),
            allow_failure: self.opt_typed(&mut f, "allowFailure").unwrap_or(false),
            allow_warning: self.opt_typed(&mut f, "allowWarning").unwrap_or(false),
            retry: self.retry(&mut f),
            run_if: self.opt_typed(&mut f, "runIf"),
            errors: vec![],
            finally: vec![],
        };
        // `errors` and `finally` belong to flowable tasks; taken here, checked below.
        let errors = f.take("errors").map(|v| (f.at("errors"), v));
        let finally = f.take("finally").map(|v| (f.at("finally"), v));
        f.take("version");
        // Accepted as Kestra's issue list asks: every task log line is kept in the store at any
        // level, and there is no file storage for `logToFile`, so neither changes what runs.
        f.take("logLevel");
        f.take("logToFile");
        let type_name = canonical_type(&type_name?);
        let what = format!("task `{}` ({})", id.as_deref().unwrap_or("?"), short_type(&type_name));
        f.what = Some(what.clone());
        let kind = match type_name.as_str() {
            types::LOG => self.simple(f, &what, TaskKind::Log),
            types::PAUSE => self.pause(f, &what, false).map(TaskKind::Pause),
            types::HUMAN_TASK => self.pause(f, &what, true).map(TaskKind::Pause),
            types::IF => {
                let condition = self.required_string(&mut f, "condition", &what);
                let then = self.branch(&mut f, "then", true, &what);
                let else_ = self.branch(&mut f, "else", false, &what);
                f.finish(self, &with_common(&["condition", "then", "else"]), &what);
                // A missing condition is already reported; keeping the task lets its branches be checked too.
                Some(TaskKind::If(IfTask {
                    condition: condition.unwrap_or_default(),
                    then,
                    else_,
                }))
            }
            types::SWITCH => {
                let value = self.required_string(&mut f, "value", &what);
                let mut cases = BTreeMap::new();
                let cpath = f.at("cases");
                match f.take("cases") {
                    Some(Yaml::Mapping(m)) => {
                        for (k, v) in m {
                            let key = scalar_text(k);
                            let tasks = self.tasks(v, &cpath.key(&key));
                            cases.insert(key, tasks);
                        }
                    }
                    None | Some(Yaml::Null) => {}
                    Some(other) => self.issue(cpath, format!("`cases` must be a mapping, found {}", kind_of(other))),
                }
                let defaults = self.branch(&mut f, "defaults", false, &what);
                f.finish(self, &with_common(&["value", "cases", "defaults"]), &what);
                Some(TaskKind::Switch(SwitchTask {
                    value: value.unwrap_or_default(),
                    cases,
                    defaults,
                }))
            }
            types::SEQUENTIAL => {
                let tasks = self.branch(&mut f, "tasks", true, &what);
                f.finish(self, &with_common(&["tasks"]), &what);
                Some(TaskKind::Sequential(SequentialTask { tasks }))
            }
            types::WORKING_DIRECTORY => {
                for (key, why) in [("namespaceFiles", "Tollgate has no namespace files; use `inputFiles`")] {
                    if f.map.contains_key(key) {
                        let at = f.at(key);
                        f.take(key);
                        self.issue(at, format!("`{key}` on {what} is not supported: {why}"));
                    }
                }
                let tasks = self.branch(&mut f, "tasks", true, &what);
                let files_path = f.at("inputFiles");
                let input_files = f.take("inputFiles").map(yaml_to_json);
                match &input_files {
                    None | Some(Value::Object(_)) => {}
                    Some(Value::String(s)) if s.contains("{{") => {}
                    Some(_) => self.issue(
                        files_path.clone(),
                        format!("`inputFiles` on {what} must be a mapping of file name to content"),
                    ),
                }
                if let Some(Value::Object(m)) = &input_files {
                    for (name, v) in m {
                        if !v.is_string() && !v.is_number() && !v.is_boolean() {
                            self.issue(
                                files_path.key(name),
                                format!("`inputFiles.{name}` on {what} must be the file's content (a string)"),
                            );
                        }
                        if name.is_empty()
                            || name.starts_with('/')
                            || name.split('/').any(|p| p == ".." || p.is_empty())
                        {
                            self.issue(
                                files_path.key(name),
                                format!("input file name `{name}` on {what} must be a relative path inside the working directory"),
                            );
                        }
                    }
                }
                let output_files = self.opt_typed::<Vec<String>>(&mut f, "outputFiles").unwrap_or_default();
                let cache_path = f.at("cache");
                let cache = self.opt_typed::<WorkingDirectoryCache>(&mut f, "cache");
                if let Some(ttl) = cache.as_ref().and_then(|c| c.ttl.as_deref())
                    && let Err(e) = crate::duration::parse_iso8601(ttl)
                {
                    self.issue(cache_path.key("ttl"), format!("`cache.ttl` on {what}: {e}"));
                }
                f.finish(
                    self,
                    &with_common(&["tasks", "inputFiles", "outputFiles", "cache"]),
                    &what,
                );
                Some(TaskKind::WorkingDirectory(WorkingDirectoryTask {
                    tasks,
                    input_files,
                    output_files,
                    cache,
                }))
            }
            types::ALLOW_FAILURE => {
                // Kestra's deprecated AllowFailure: a Sequential whose failure is allowed.
                let tasks = self.branch(&mut f, "tasks", true, &what);
                f.finish(self, &with_common(&["tasks"]), &what);
                common.allow_failure = true;
                Some(TaskKind::Sequential(SequentialTask { tasks }))
            }
            types::RESUME => {
                let path = f.path.clone();
                let t: ResumeTask = self.simple_any(f, &what, COMMON_TASK_KEYS)?;
                self.execution_parameters(&path, &what, [&t.execution_id, &t.namespace, &t.flow_id]);
                Some(TaskKind::Resume(t))
            }
            types::TOGGLE => self.simple(f, &what, TaskKind::Toggle),
            types::FETCH => {
                let path = f.path.clone();
                let t: FetchTask = self.simple_any(f, &what, COMMON_TASK_KEYS)?;
                self.execution_parameters(&path, &what, [&t.execution_id, &t.namespace, &t.flow_id]);
                Some(TaskKind::Fetch(t))
            }
            types::DAG => {
                let concurrent = self.opt_typed::<u32>(&mut f, "concurrent").unwrap_or(0);
                let tpath = f.at("tasks");
                let mut tasks = Vec::new();
                let mut depends_on = Vec::new();
                match f.take("tasks") {
                    Some(Yaml::Sequence(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            let ipath = tpath.index(i);
                            let Some(mut item_fields) = Fields::new(self, item, &ipath, "a Dag task") else {
                                continue;
                            };
                            let deps: Vec<String> = self.opt_typed(&mut item_fields, "dependsOn").unwrap_or_default();
                            let task_path = item_fields.at("task");
                            let task = match item_fields.take("task") {
                                Some(v) => self.task(v, &task_path),
                                None => {
                                    self.issue(
                                        ipath.clone(),
                                        format!("each task of {what} needs `task` (and optionally `dependsOn`)"),
                                    );
                                    None
                                }
                            };
                            item_fields.finish(self, &["task", "dependsOn"], &format!("a task of {what}"));
                            if let Some(task) = task {
                                tasks.push(task);
                                depends_on.push(deps);
                            }
                        }
                    }
                    None => self.issue(f.path.clone(), format!("missing required property `tasks` on {what}")),
                    Some(other) => self.issue(
                        tpath.clone(),
                        format!("`tasks` of {what} must be a list, found {}", kind_of(other)),
                    ),
                }
                let ids: Vec<&str> = tasks.iter().map(|t: &Task| t.id.as_str()).collect();
                let unknown: Vec<String> = depends_on
                    .iter()
                    .flatten()
                    .filter(|d| !ids.contains(&d.as_str()))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    self.issue(
                        tpath.clone(),
                        format!(
                            "`dependsOn` of {what} names tasks that are not in it: {}",
                            unknown.join(", ")
                        ),
                    );
                } else if let Some(cycle) = dag_cycle(&ids, &depends_on) {
                    self.issue(
                        tpath.clone(),
                        format!("{what} has a dependency cycle: {}", cycle.join(" -> ")),
                    );
                }
                f.finish(self, &with_common(&["tasks", "concurrent"]), &what);
                Some(TaskKind::Dag(DagTask {
                    tasks,
                    depends_on,
                    concurrent,
                }))
            }
            types::WAIT_FOR => {
                let condition = self.required_string(&mut f, "condition", &what);
                let tasks = self.branch(&mut f, "tasks", true, &what);
                let fail_on_max_reached = self.opt_typed::<bool>(&mut f, "failOnMaxReached").unwrap_or(false);
                let cf_path = f.at("checkFrequency");
                let check_frequency: CheckFrequency = self.opt_typed(&mut f, "checkFrequency").unwrap_or_default();
                for (key, text) in [
                    ("interval", &check_frequency.interval),
                    ("maxDuration", &check_frequency.max_duration),
                ] {
                    match super::duration::parse_iso8601(text) {
                        Ok(d) if key == "interval" && d.is_zero() => {
                            self.issue(
                                cf_path.key(key),
                                format!("`checkFrequency.interval` of {what} must be more than zero"),
                            );
                        }
                        Ok(_) => {}
                        Err(e) => self.issue(
                            cf_path.key(key),
                            format!("invalid duration for `checkFrequency.{key}` on {what}: {e}"),
                        ),
                    }
                }
                f.finish(
                    self,
                    &with_common(&["condition", "tasks", "failOnMaxReached", "checkFrequency"]),
                    &what,
                );
                Some(TaskKind::WaitFor(WaitForTask {
                    condition: condition.unwrap_or_default(),
                    tasks,
                    fail_on_max_reached,
                    check_frequency,
                }))
            }
            types::PARALLEL => {
                let tasks = self.branch(&mut f, "tasks", true, &what);
                let concurrent = self.opt_typed::<u32>(&mut f, "concurrent").unwrap_or(0);
                f.finish(self, &with_common(&["tasks", "concurrent"]), &what);
                Some(TaskKind::Parallel(ParallelTask { tasks, concurrent }))
            }
            types::FOR_EACH => {
                let values = match f.take("values") {
                    Some(v) => Some(yaml_to_json(v)),
                    None => {
                        self.issue(f.path.clone(), format!("missing required property `values` on {what}"));
                        None
                    }
                };
                let tasks = self.branch(&mut f, "tasks", true, &what);
                let concurrency_limit = self.opt_typed::<u32>(&mut f, "concurrencyLimit").unwrap_or(1);
                f.finish(self, &with_common(&["values", "tasks", "concurrencyLimit"]), &what);
                Some(TaskKind::ForEach(ForEachTask {
                    values: values.unwrap_or_default(),
                    tasks,
                    concurrency_limit,
                }))
            }
            types::EACH_SEQUENTIAL | types::EACH_PARALLEL => {
                let parallel = type_name == types::EACH_PARALLEL;
                let values = match f.take("value") {
                    Some(v) => Some(yaml_to_json(v)),
                    None => {
                        self.issue(f.path.clone(), format!("missing required property `value` on {what}"));
                        None
                    }
                };
                let tasks = self.branch(&mut f, "tasks", true, &what);
                // EachParallel's `concurrent`: 0 (its default) runs every value at once.
                let concurrency_limit = if parallel {
                    self.opt_typed::<u32>(&mut f, "concurrent").unwrap_or(0)
                } else {
                    1
                };
                let known: &[&str] = if parallel {
                    &["value", "tasks", "concurrent"]
                } else {
                    &["value", "tasks"]
                };
                f.finish(self, &with_common(known), &what);
                Some(TaskKind::ForEach(ForEachTask {
                    values: values.unwrap_or_default(),
                    tasks,
                    concurrency_limit,
                }))
            }
            types::SUBFLOW => self.simple(f, &what, TaskKind::Subflow),
            types::FOR_EACH_ITEM => self.simple(f, &what, TaskKind::ForEachItem),
            types::LOCAL_FILES => self.simple(f, &what, TaskKind::LocalFiles),
            types::HTTP_REQUEST => self.simple(f, &what, TaskKind::HttpRequest),
            types::SLACK_WEBHOOK => self.webhook(f, &what, true).map(TaskKind::SlackWebhook),
            types::TEAMS_WEBHOOK => self.webhook(f, &what, false).map(TaskKind::TeamsWebhook),
            types::DISCORD_WEBHOOK => self.webhook(f, &what, false).map(TaskKind::DiscordWebhook),
            types::MAIL_SEND => self.simple(f, &what, TaskKind::MailSend),
            types::OUTPUT_VALUES => self.simple(f, &what, TaskKind::OutputValues),
            types::RETURN => self.simple(f, &what, TaskKind::Return),
            types::ECHO => self.simple(f, &what, |e: EchoTask| {
                TaskKind::Log(LogTask {
                    message: OneOrMany::One(e.format),
                    level: e.level,
                })
            }),
            types::FAIL => self.simple(f, &what, TaskKind::Fail),
            types::LABELS => self.simple(f, &what, TaskKind::Labels),
            types::SLEEP => {
                let duration = self.opt_duration(&mut f, "duration");
                if duration.is_none() && !self.issues.iter().any(|i| i.path.starts_with(&f.path)) {
                    self.issue(
                        f.path.clone(),
                        format!("missing required property `duration` on {what}"),
                    );
                }
                f.finish(self, &with_common(&["duration"]), &what);
                duration.map(|duration| TaskKind::Sleep(SleepTask { duration }))
            }
            types::KV_SET => self.simple(f, &what, TaskKind::KvSet),
            types::KV_GET => self.simple(f, &what, TaskKind::KvGet),
            types::KV_DELETE => self.simple(f, &what, TaskKind::KvDelete),
            types::KV_GET_KEYS => self.simple(f, &what, TaskKind::KvGetKeys),
            types::STATE_SET | types::STATE_GET | types::STATE_DELETE => {
                let op = match type_name.as_str() {
                    types::STATE_SET => StateOp::Set,
                    types::STATE_DELETE => StateOp::Delete,
                    _ => StateOp::Get,
                };
                let data_path = f.at("data");
                let has_data = f.map.contains_key("data");
                self.simple_any::<StateTask>(f, &what, COMMON_TASK_KEYS).and_then(|t| {
                    if has_data != (op == StateOp::Set) {
                        let message = if has_data {
                            format!("`data` is only for io.kestra.plugin.core.state.Set, not on {what}")
                        } else {
                            format!("missing required property `data` on {what}")
                        };
                        self.issue(data_path, message);
                        return None;
                    }
                    Some(TaskKind::State(StateTask { op, ..t }))
                })
            }
            types::SHELL_COMMANDS
            | types::SHELL_SCRIPT
            | types::PYTHON_COMMANDS
            | types::PYTHON_SCRIPT
            | types::NODE_COMMANDS
            | types::NODE_SCRIPT => self.script_task(f, &what, &type_name).map(TaskKind::Script),
            other => {
                let task_id = id.as_deref().unwrap_or("?");
                let message = match super::unsupported::reason(other) {
                    Some(why) => format!("task type `{other}` on task `{task_id}` is not supported by Tollgate: {why}"),
                    None => {
                        let hint = suggest_type(other, types::TASKS)
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        format!("unknown task type `{other}` on task `{task_id}`{hint}")
                    }
                };
                self.issue(path.key("type"), message);
                None
            }
        }?;
        // A missing id is already reported; the task stays so that its children are checked too.
        let mut task = Task {
            id: id.unwrap_or_default(),
            type_name,
            common,
            kind,
        };
        if let TaskKind::ForEachItem(t) = &mut task.kind {
            t.tasks = ForEachItemStep::ALL
                .iter()
                .map(|step| Task {
                    id: format!("{}{}", task.id, step.suffix()),
                    type_name: step.type_name().to_string(),
                    common: TaskCommon::default(),
                    kind: TaskKind::ForEachItemStep(*step),
                })
                .collect();
        }
        for (key, found) in [("errors", errors), ("finally", finally)] {
            let Some((at, v)) = found else { continue };
            if !task.is_flowable() {
                self.issue(
                    at,
                    format!("`{key}` is only allowed on a flowable task (If, Switch, Sequential, Parallel, ForEach), not on task `{}`", task.id),
                );
                continue;
            }
            let tasks = self.tasks(v, &at);
            if key == "errors" {
                task.common.errors = tasks;
            } else {
                task.common.finally = tasks;
            }
        }
        Some(task)
    }

    /// A task whose body is plain data: the remaining keys deserialize into `T`.
    fn simple<T: DeserializeOwned>(&mut self, f: Fields, what: &str, wrap: fn(T) -> TaskKind) -> Option<TaskKind> {
        self.simple_any(f, what, COMMON_TASK_KEYS).map(wrap)
    }

    /// An incoming-webhook task; only Slack's has `messageText`, as an alternative to `payload`.
    fn webhook(&mut self, f: Fields, what: &str, message_text_allowed: bool) -> Option<WebhookTask> {
        let path = f.path.clone();
        let has_message_text = f.map.contains_key("messageText");
        let t: WebhookTask = self.simple_any(f, what, COMMON_TASK_KEYS)?;
        if has_message_text && !message_text_allowed {
            self.issue(
                path.key("messageText"),
                format!("unknown property `messageText` on {what}: only Slack's webhook has it; use `payload`"),
            );
            return None;
        }
        if t.payload.is_some() && t.message_text.is_some() {
            self.issue(
                path.key("messageText"),
                format!("{what} has both `payload` and `messageText`: give one of them"),
            );
            return None;
        }
        Some(t)
    }

    fn branch(&mut self, f: &mut Fields, key: &str, required: bool, what: &str) -> Vec<Task> {
        match f.take(key) {
            Some(v) => {
                let path = f.at(key);
                let tasks = self.tasks(v, &path);
                if required && tasks.is_empty() && !self.issues.iter().any(|i| i.path.starts_with(&path)) {
                    self.issue(path, format!("`{key}` of {what} must hold at least one task"));
                }
                tasks
            }
            None => {
                if required {
                    self.issue(f.path.clone(), format!("missing required property `{key}` on {what}"));
                }
                vec![]
            }
        }
    }

    fn opt_duration(&mut self, f: &mut Fields, key: &str) -> Option<String> {
        let text: String = self.opt_typed(f, key)?;
        // Templated durations are checked when rendered.
        if !text.contains("{{")
            && let Err(e) = super::duration::parse_iso8601(&text)
        {
            let on = f.what.as_deref().map(|w| format!(" on {w}")).unwrap_or_default();
            self.issue(f.at(key), format!("invalid duration for `{key}`{on}: {e}"));
        }
        Some(text)
    }

    fn pause(&mut self, mut f: Fields, what: &str, human: bool) -> Option<PauseTask> {
        let mut pause_duration = self.opt_duration(&mut f, "pauseDuration");
        if let Some(delay) = self.opt_duration(&mut f, "delay") {
            if pause_duration.is_some() {
                self.issue(
                    f.at("delay"),
                    "`delay` is the deprecated alias of `pauseDuration`: set only one".into(),
                );
            }
            pause_duration.get_or_insert(delay);
        }
        let behavior = self.opt_typed::<PauseBehavior>(&mut f, "behavior").unwrap_or_default();
        let on_resume = self.inputs(f.take("onResume"), &f.at("onResume"));
        let on_pause = match f.take("onPause") {
            Some(v) => self.tasks(v, &f.at("onPause")),
            None => vec![],
        };
        let reminders = match f.take("reminders") {
            None => None,
            Some(v) => {
                let path = f.at("reminders");
                let r: Option<Reminders> = self.typed(v, &path);
                r.map(|r| {
                    match super::duration::parse_iso8601(&r.every) {
                        Err(e) => self.issue(path.key("every"), format!("invalid duration for `every`: {e}")),
                        // A typo such as PT1S must not spam a channel every second.
                        Ok(every) if every < super::min_reminder_interval() => self.issue(
                            path.key("every"),
                            format!(
                                "reminders `every: {}` is shorter than the minimum of {} (set TOLLGATE_MIN_REMINDER_INTERVAL to change it)",
                                r.every,
                                super::duration::format_iso8601(super::min_reminder_interval())
                            ),
                        ),
                        Ok(_) => {}
                    }
                    let tasks = self.tasks(&Yaml::Sequence(r.tasks.clone()), &path.key("tasks"));
                    ReminderSpec {
                        every: r.every,
                        max_count: r.max_count,
                        tasks,
                    }
                })
            }
        };
        let sla_at = f.at("sla");
        let sla = self.opt_duration(&mut f, "sla");
        if let Some(text) = &sla {
            if text.contains("{{") {
                self.issue(
                    sla_at,
                    "`sla` must be a literal ISO-8601 duration such as PT4H (expressions are not supported there)"
                        .into(),
                );
            } else if super::duration::parse_iso8601(text).is_ok_and(|d| d.is_zero()) {
                self.issue(sla_at, format!("`sla: {text}` must be longer than zero"));
            }
        }
        let deprecated_tasks = if human {
            vec![]
        } else {
            f.take("tasks")
                .map(|v| self.tasks(v, &f.at("tasks")))
                .unwrap_or_default()
        };
        let mut known: Vec<&str> = vec![
            "pauseDuration",
            "delay",
            "behavior",
            "onResume",
            "onPause",
            "reminders",
            "sla",
        ];
        if !human {
            known.push("tasks");
        }
        let human_spec = if human {
            known.extend([
                "assignment",
                "approvals",
                "allowSelfApproval",
                "escalation",
                "rejectionReasonRequired",
                "staleWhen",
                "onStale",
            ]);
            let assignment = self.opt_typed::<Assignment>(&mut f, "assignment").unwrap_or_default();
            let approvals = self.opt_typed::<u32>(&mut f, "approvals").unwrap_or(1);
            if approvals == 0 {
                self.issue(f.at("approvals"), "`approvals` must be at least 1".into());
            }
            let allow_self_approval = self.opt_typed::<bool>(&mut f, "allowSelfApproval").unwrap_or(true);
            let rejection_reason_required = self
                .opt_typed::<bool>(&mut f, "rejectionReasonRequired")
                .unwrap_or(false);
            let stale_path = f.at("staleWhen");
            let stale_when: Vec<String> = match f.take("staleWhen") {
                None => vec![],
                Some(Yaml::String(s)) => vec![s.clone()],
                Some(v @ Yaml::Sequence(_)) => self.typed::<Vec<String>>(v, &stale_path).unwrap_or_default(),
                Some(other) => {
                    self.issue(
                        stale_path.clone(),
                        format!("`staleWhen` must be a list of expressions, found {}", kind_of(other)),
                    );
                    vec![]
                }
            };
            let on_stale = match f.take("onStale") {
                Some(v) => self.tasks(v, &f.at("onStale")),
                None => vec![],
            };
            if !on_stale.is_empty() && stale_when.is_empty() {
                self.issue(
                    f.at("onStale"),
                    "`onStale` needs `staleWhen`: nothing could make approvals stale".into(),
                );
            }
            let epath = f.at("escalation");
            let mut escalation = Vec::new();
            if let Some(v) = f.take("escalation") {
                let levels: Vec<Escalation> = match v {
                    Yaml::Sequence(_) => self.typed(v, &epath).unwrap_or_default(),
                    _ => self.typed::<Escalation>(v, &epath).into_iter().collect(),
                };
                for (i, level) in levels.into_iter().enumerate() {
                    let lpath = if matches!(v, Yaml::Sequence(_)) {
                        epath.index(i)
                    } else {
                        epath.clone()
                    };
                    if let Err(e) = super::duration::parse_iso8601(&level.after) {
                        self.issue(lpath.key("after"), format!("invalid duration for `after`: {e}"));
                    }
                    let tasks = self.tasks(&Yaml::Sequence(level.tasks.clone()), &lpath.key("tasks"));
                    escalation.push(EscalationSpec {
                        after: level.after,
                        assignment: level.assignment,
                        mode: level.mode,
                        tasks,
                    });
                }
            }
            Some(HumanSpec {
                assignment,
                approvals,
                allow_self_approval,
                escalation,
                rejection_reason_required,
                stale_when,
                on_stale,
            })
        } else {
            if f.map.contains_key("escalation") {
                let at = f.at("escalation");
                f.take("escalation");
                self.issue(
                    at,
                    format!("`escalation` is only available on HumanTask ({})", types::HUMAN_TASK),
                );
            }
            None
        };
        f.finish(self, &with_common(&known), what);
        Some(PauseTask {
            pause_duration,
            behavior,
            on_resume,
            on_pause,
            reminders,
            human: human_spec,
            sla,
            tasks: deprecated_tasks,
        })
    }

    fn triggers(&mut self, v: &Yaml, path: &Path) -> Vec<Trigger> {
        let Yaml::Sequence(items) = v else {
            self.issue(path.clone(), format!("triggers must be a list, found {}", kind_of(v)));
            return vec![];
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let tpath = path.index(i);
            let with_defaults = self.with_defaults(item);
            let item = with_defaults.as_ref().unwrap_or(item);
            let Some(mut f) = Fields::new(self, item, &tpath, "a trigger") else {
                continue;
            };
            let id = self.required_string(&mut f, "id", "a trigger");
            let type_name = self.required_string(&mut f, "type", "a trigger");
            let (Some(id), Some(type_name)) = (id, type_name.map(|t| canonical_type(&t))) else {
                continue;
            };
            let what = format!("trigger `{id}`");
            f.what = Some(what.clone());
            // Kestra properties Tollgate does not implement: refused by name, never ignored.
            for key in unsupported_trigger_keys(&type_name) {
                if f.take(key).is_some() {
                    self.issue(
                        tpath.key(key),
                        format!("property `{key}` on {what} is not supported by Tollgate"),
                    );
                }
            }
            // Kestra condition types Tollgate lacks get their own message (serde would only say
            // "unknown value" and suggest a look-alike); the trigger is not read further.
            if let Some(Yaml::Sequence(conds)) = f.map.get("conditions").copied() {
                let mut refused = false;
                for (j, c) in conds.iter().enumerate() {
                    if let Some(t) = c.get("type").and_then(Yaml::as_str)
                        && unsupported_condition(t)
                    {
                        let at = tpath.key("conditions").index(j).key("type");
                        self.issue(
                            at,
                            format!("condition type `{t}` on {what} is not supported by Tollgate"),
                        );
                        refused = true;
                    }
                }
                if refused {
                    continue;
                }
            }
            let kind = match type_name.as_str() {
                types::FLOW_TRIGGER => self.simple_any(f, &what, TRIGGER_KEYS).map(TriggerKind::Flow),
                types::SCHEDULE_TRIGGER => self.simple_any(f, &what, TRIGGER_KEYS).map(TriggerKind::Schedule),
                types::WEBHOOK_TRIGGER => self.simple_any(f, &what, TRIGGER_KEYS).map(TriggerKind::Webhook),
                types::HTTP_TRIGGER => self.http_trigger(f, &what).map(TriggerKind::Http),
                other => {
                    let message = match super::unsupported::reason(other) {
                        Some(why) => {
                            format!("trigger type `{other}` on trigger `{id}` is not supported by Tollgate: {why}")
                        }
                        None => {
                            let hint = suggest_type(other, types::TRIGGERS)
                                .map(|s| format!("; did you mean `{s}`?"))
                                .unwrap_or_default();
                            format!("unknown trigger type `{other}` on trigger `{id}`{hint}")
                        }
                    };
                    self.issue(tpath.key("type"), message);
                    None
                }
            };
            if let Some(kind) = kind {
                let disabled = match &kind {
                    TriggerKind::Flow(t) => t.disabled,
                    TriggerKind::Schedule(t) => t.disabled,
                    TriggerKind::Webhook(t) => t.disabled,
                    TriggerKind::Http(t) => t.disabled,
                };
                out.push(Trigger {
                    id,
                    type_name,
                    disabled,
                    kind,
                });
            }
        }
        out
    }
}

/// Properties of Kestra's script tasks that Tollgate does not run, with why.
const UNSUPPORTED_SCRIPT_KEYS: &[(&str, &str)] = &[
    ("outputDirectory", "list the files in `outputFiles` (globs) instead"),
    ("namespaceFiles", "Tollgate has no namespace files; use `inputFiles`"),
    ("targetOS", "scripts run on the daemon's host OS (or in the container)"),
    (
        "docker",
        "use `taskRunner` (type io.kestra.plugin.scripts.runner.docker.Docker) and `containerImage`",
    ),
    ("runner", "this deprecated property is replaced by `taskRunner`"),
];

/// The properties of a script task (all but `commands`/`script`, which depend on the type).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScriptProps {
    #[serde(default)]
    commands: Option<Vec<String>>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    before_commands: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, Value>,
    #[serde(default)]
    input_files: Option<Value>,
    #[serde(default)]
    interpreter: Option<Vec<String>>,
    #[serde(default)]
    task_runner: Option<TaskRunnerProps>,
    #[serde(default)]
    container_image: Option<String>,
    #[serde(default)]
    warning_on_std_err: Option<bool>,
    #[serde(default)]
    fail_fast: Option<bool>,
    #[serde(default)]
    output_files: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskRunnerProps {
    #[serde(rename = "type")]
    type_name: String,
}

impl Parser {
    /// Shell, Python and Node.js `Commands` / `Script` tasks.
    fn script_task(&mut self, mut f: Fields, what: &str, type_name: &str) -> Option<ScriptTask> {
        for (key, why) in UNSUPPORTED_SCRIPT_KEYS {
            if f.map.contains_key(*key) {
                let at = f.at(key);
                f.take(key);
                self.issue(at, format!("`{key}` on {what} is not supported: {why}"));
            }
        }
        let path = f.path.clone();
        let is_script = type_name.ends_with(".Script");
        let language = if type_name.contains(".python.") {
            ScriptLanguage::Python
        } else if type_name.contains(".node.") {
            ScriptLanguage::Node
        } else {
            ScriptLanguage::Shell
        };
        let p: ScriptProps = self.simple_any(f, what, COMMON_TASK_KEYS)?;
        let mut task = ScriptTask {
            language,
            commands: vec![],
            script: None,
            before_commands: p.before_commands,
            env: p.env.iter().map(|(k, v)| (k.clone(), json_scalar_text(v))).collect(),
            input_files: p.input_files,
            interpreter: p
                .interpreter
                .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]),
            runner: ScriptRunner::Process,
            container_image: p.container_image,
            warning_on_std_err: p.warning_on_std_err,
            fail_fast: p.fail_fast.unwrap_or(true),
            output_files: p.output_files,
        };
        if task.interpreter.is_empty() {
            self.issue(
                path.key("interpreter"),
                format!("`interpreter` on {what} must not be empty"),
            );
        }
        if let Some(v) = p.env.iter().find(|(_, v)| v.is_array() || v.is_object()) {
            self.issue(
                path.key("env").key(v.0),
                format!("`env.{}` on {what} must be a string", v.0),
            );
        }
        match &task.input_files {
            None | Some(Value::Object(_)) => {}
            Some(Value::String(s)) if s.contains("{{") => {}
            Some(_) => self.issue(
                path.key("inputFiles"),
                format!("`inputFiles` on {what} must be a mapping of file name to content"),
            ),
        }
        if let Some(Value::Object(m)) = &task.input_files {
            for (name, v) in m {
                if !v.is_string() && !v.is_number() && !v.is_boolean() {
                    self.issue(
                        path.key("inputFiles").key(name),
                        format!("`inputFiles.{name}` on {what} must be the file's content (a string)"),
                    );
                }
                if name.is_empty()
                    || name.split('/').any(|part| part == ".." || part.is_empty())
                    || name.starts_with('/')
                {
                    self.issue(
                        path.key("inputFiles").key(name),
                        format!(
                            "input file name `{name}` on {what} must be a relative path inside the working directory"
                        ),
                    );
                }
            }
        }
        task.runner = match p.task_runner.as_ref().map(|r| r.type_name.as_str()) {
            Some(types::PROCESS_RUNNER) => ScriptRunner::Process,
            Some(types::DOCKER_RUNNER) => ScriptRunner::Docker,
            Some(other) => {
                self.issue(
                    path.key("taskRunner").key("type"),
                    format!(
                        "task runner `{other}` on {what} is not supported: use {} (on the daemon's host) or {}",
                        types::PROCESS_RUNNER,
                        types::DOCKER_RUNNER
                    ),
                );
                ScriptRunner::Process
            }
            // Kestra's default runner is Docker; Tollgate runs on the host unless an image is named.
            None if task.container_image.is_some() => ScriptRunner::Docker,
            None => ScriptRunner::Process,
        };
        if is_script {
            if p.commands.is_some() {
                self.issue(
                    path.key("commands"),
                    format!(
                        "unknown property `commands` on {what}: a Script task takes `script` (or use the Commands type)"
                    ),
                );
            }
            match p.script {
                Some(s) => task.script = Some(s),
                None => self.issue(path, format!("missing required property `script` on {what}")),
            }
        } else {
            if p.script.is_some() {
                self.issue(
                    path.key("script"),
                    format!(
                        "unknown property `script` on {what}: a Commands task takes `commands` (or use the Script type)"
                    ),
                );
            }
            match p.commands {
                Some(c) if !c.is_empty() => task.commands = c,
                Some(_) => self.issue(
                    path.key("commands"),
                    format!("`commands` on {what} must hold at least one command"),
                ),
                None => self.issue(path, format!("missing required property `commands` on {what}")),
            }
        }
        Some(task)
    }

    /// Kestra's rules for `executionId`, `namespace`, `flowId` of the tasks that act on another
    /// execution (PluginUtilsService.executionFromTaskParameters): Resume, log.Fetch.
    fn execution_parameters(
        &mut self,
        path: &Path,
        what: &str,
        [execution_id, namespace, flow_id]: [&Option<String>; 3],
    ) {
        if namespace.is_some() != flow_id.is_some() {
            self.issue(
                path.clone(),
                format!("{what}: both `namespace` and `flowId` must be set when one is"),
            );
        } else if namespace.is_some() && execution_id.is_none() {
            self.issue(
                path.key("namespace"),
                format!("{what}: `namespace` and `flowId` should only be set when `executionId` is set"),
            );
        }
    }

    /// The HTTP polling trigger: its own keys, then the rest as a Request task's.
    fn http_trigger(&mut self, mut f: Fields, what: &str) -> Option<HttpTrigger> {
        if f.take("sslOptions").is_some() {
            self.issue(
                f.at("sslOptions"),
                format!("property `sslOptions` on {what} is not supported by Tollgate: the daemon verifies TLS with the system's roots"),
            );
        }
        let response_condition = self
            .opt_typed::<String>(&mut f, "responseCondition")
            .unwrap_or_else(|| HttpTrigger::DEFAULT_CONDITION.to_string());
        let interval_path = f.at("interval");
        let interval = self
            .opt_typed::<String>(&mut f, "interval")
            .unwrap_or_else(|| HttpTrigger::DEFAULT_INTERVAL.to_string());
        match crate::flow::duration::parse_iso8601(&interval) {
            Ok(d) if d.as_millis() >= 1000 => {}
            Ok(_) => self.issue(
                interval_path,
                format!("`interval` on {what} must be at least one second (PT1S)"),
            ),
            Err(e) => self.issue(interval_path, format!("invalid `interval` `{interval}` on {what}: {e}")),
        }
        let encrypt_body = self.opt_typed::<bool>(&mut f, "encryptBody").unwrap_or(false);
        let conditions = self
            .opt_typed::<Vec<Condition>>(&mut f, "conditions")
            .unwrap_or_default();
        let inputs = self
            .opt_typed::<BTreeMap<String, Value>>(&mut f, "inputs")
            .unwrap_or_default();
        let disabled = self.opt_typed::<bool>(&mut f, "disabled").unwrap_or(false);
        let _documentation: Option<String> = self.opt_typed(&mut f, "description");
        // What a trigger may not set: the poll keeps non-2xx answers for the condition to judge.
        for key in ["allowFailed", "failOnNon2xx"] {
            if f.take(key).is_some() {
                self.issue(
                    f.at(key),
                    format!(
                        "property `{key}` on {what} is not supported: `responseCondition` decides what starts a flow"
                    ),
                );
            }
        }
        let request: HttpRequestTask = self.simple_any(f, what, TRIGGER_KEYS)?;
        Some(HttpTrigger {
            request,
            response_condition,
            interval,
            encrypt_body,
            conditions,
            inputs,
            disabled,
        })
    }

    /// Deserializes the keys left in `f` into `T`; serde names the field, we add which task or trigger.
    fn simple_any<T: DeserializeOwned>(&mut self, f: Fields, what: &str, also_known: &[&str]) -> Option<T> {
        let mut m = Mapping::new();
        for (k, v) in &f.map {
            m.insert(Yaml::String(k.clone()), (*v).clone());
        }
        self.typed_in::<T>(&Yaml::Mapping(m), &f.path, Some(what), also_known)
    }
}

/// The property of an input definition a problem is about: the first word quoted in backticks in
/// the message that is a key of the definition (`validator`, `values`, `min`...), so the position
/// points at it rather than at the whole input. The input's own id is skipped.
fn problem_property<'y>(problem: &str, item: &'y Yaml) -> Option<&'y str> {
    let Yaml::Mapping(m) = item else { return None };
    let id = item.get("id").and_then(Yaml::as_str);
    problem
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| Some(*w) != id)
        .find_map(|word| {
            m.keys()
                .filter_map(Yaml::as_str)
                .find(|k| *k == word && *k != "id" && *k != "type")
        })
}

/// A scalar as text (`env: {N: 3}` is the string `3`).
fn json_scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Kestra's deprecated `Echo`: a Log whose message is called `format`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EchoTask {
    format: String,
    #[serde(default)]
    level: Option<LogLevel>,
}

/// An input definition with Kestra's older `name:` read as its `id` (when it has no `id`).
fn input_with_id(item: &Yaml) -> Yaml {
    let mut item = item.clone();
    if let Yaml::Mapping(m) = &mut item
        && !m.contains_key("id")
        && let Some(name) = m.remove("name")
    {
        m.insert(Yaml::String("id".into()), name);
    }
    item
}

/// A dependency cycle among Dag tasks (`ids[i]` depends on `deps[i]`), as the ids along it with
/// the first repeated at the end; `None` when there is none.
fn dag_cycle(ids: &[&str], deps: &[Vec<String>]) -> Option<Vec<String>> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    fn visit(
        i: usize,
        ids: &[&str],
        deps: &[Vec<String>],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        mark[i] = 1;
        path.push(i);
        for d in &deps[i] {
            let Some(j) = ids.iter().position(|id| id == d) else {
                continue;
            };
            if mark[j] == 1 {
                let start = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|&p| ids[p].to_string()).collect();
                cycle.push(ids[j].to_string());
                return Some(cycle);
            }
            if mark[j] == 0
                && let Some(c) = visit(j, ids, deps, mark, path)
            {
                return Some(c);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; ids.len()];
    for i in 0..ids.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, ids, deps, &mut mark, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn with_common(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMON_TASK_KEYS.to_vec();
    v.extend_from_slice(extra);
    v
}

fn short_type(t: &str) -> &str {
    t.rsplit('.').next().unwrap_or(t)
}

/// Kestra's deprecated type names that it still accepts as aliases, for the types whose
/// properties did not change; a flow written for an older Kestra runs unchanged.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("io.kestra.core.tasks.log.Log", types::LOG),
    ("io.kestra.core.tasks.flows.Pause", types::PAUSE),
    ("io.kestra.core.tasks.flows.If", types::IF),
    ("io.kestra.core.tasks.flows.Switch", types::SWITCH),
    ("io.kestra.core.tasks.flows.Sequential", types::SEQUENTIAL),
    ("io.kestra.core.tasks.flows.Parallel", types::PARALLEL),
    ("io.kestra.core.tasks.flows.Subflow", types::SUBFLOW),
    ("io.kestra.core.tasks.flows.ForEachItem", types::FOR_EACH_ITEM),
    ("io.kestra.core.tasks.storages.LocalFiles", types::LOCAL_FILES),
    ("io.kestra.core.tasks.flows.EachSequential", types::EACH_SEQUENTIAL),
    ("io.kestra.core.tasks.flows.EachParallel", types::EACH_PARALLEL),
    ("io.kestra.core.tasks.flows.WorkingDirectory", types::WORKING_DIRECTORY),
    ("io.kestra.core.tasks.flows.Worker", types::WORKING_DIRECTORY),
    ("io.kestra.core.tasks.debugs.Return", types::RETURN),
    ("io.kestra.core.tasks.debugs.Echo", types::ECHO),
    ("io.kestra.core.tasks.executions.Fail", types::FAIL),
    ("io.kestra.plugin.fs.http.Request", types::HTTP_REQUEST),
    ("io.kestra.core.tasks.states.Set", types::STATE_SET),
    ("io.kestra.core.tasks.states.Get", types::STATE_GET),
    ("io.kestra.core.tasks.states.Delete", types::STATE_DELETE),
    ("io.kestra.core.tasks.trigger.Toggle", types::TOGGLE),
    // The notification plugins moved to one plugin per service; their properties stayed.
    (
        "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
        types::SLACK_WEBHOOK,
    ),
    (
        "io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook",
        types::TEAMS_WEBHOOK,
    ),
    (
        "io.kestra.plugin.discord.DiscordIncomingWebhook",
        types::DISCORD_WEBHOOK,
    ),
    ("io.kestra.plugin.email.MailSend", types::MAIL_SEND),
    ("io.kestra.core.models.triggers.types.Flow", types::FLOW_TRIGGER),
    ("io.kestra.core.models.triggers.types.Schedule", types::SCHEDULE_TRIGGER),
    ("io.kestra.core.models.triggers.types.Webhook", types::WEBHOOK_TRIGGER),
    ("io.kestra.plugin.fs.http.Trigger", types::HTTP_TRIGGER),
];

/// Whether `type_name` is one of Kestra's condition types that Tollgate does not implement.
fn unsupported_condition(type_name: &str) -> bool {
    const KESTRA_ONLY: &[&str] = &[
        "DateTimeBetween",
        "DayWeek",
        "DayWeekInMonth",
        "ExecutionOutputs",
        "Flow",
        "FlowNamespace",
        "HasRetryAttempt",
        "PublicHoliday",
        "TimeBetween",
        "Weekend",
    ];
    let Some(short) = type_name
        .strip_prefix("io.kestra.plugin.core.condition.")
        .or_else(|| type_name.strip_prefix("io.kestra.core.models.conditions.types."))
    else {
        return false;
    };
    let short = short.strip_suffix("Condition").unwrap_or(short);
    KESTRA_ONLY.contains(&short)
}

/// Properties Kestra's triggers have that Tollgate does not implement, per trigger type.
fn unsupported_trigger_keys(type_name: &str) -> &'static [&'static str] {
    // Common to every Kestra trigger (AbstractTrigger).
    const COMMON: &[&str] = &[
        "workerGroup",
        "logLevel",
        "minLogLevel",
        "labels",
        "stopAfter",
        "logToFile",
        "allowConcurrent",
    ];
    match type_name {
        types::SCHEDULE_TRIGGER => &[
            "workerGroup",
            "logLevel",
            "minLogLevel",
            "labels",
            "stopAfter",
            "logToFile",
            "allowConcurrent",
            "backfill",
            "lateMaximumDelay",
            "scheduleConditions",
            "interval",
        ],
        _ => COMMON,
    }
}

/// The current type name for a deprecated alias; other names unchanged.
pub fn canonical_type(name: &str) -> String {
    TYPE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, t)| *t)
        .unwrap_or(name)
        .to_string()
}

/// The closest known type: the one with the same short name (`Pause`, `flow.pause`) first, then by spelling.
fn suggest_type(name: &str, known: &[&'static str]) -> Option<&'static str> {
    let short = short_type(name);
    known
        .iter()
        .find(|k| short_type(k).eq_ignore_ascii_case(short))
        .copied()
        .or_else(|| suggest(name, known))
}

/// Turns serde's wording into ours: `unknown field` becomes `unknown property` with a suggestion,
/// an unknown enum value gets the closest valid one, and every message names the property and,
/// when given, the task or trigger (`what`). `at` is the path serde stopped at.
fn describe_serde_error(msg: &str, at: &Path, what: Option<&str>, also_known: &[&str]) -> String {
    let on = what.map(|w| format!(" on {w}")).unwrap_or_default();
    let property = at.0.iter().rev().find_map(|s| match s {
        Segment::Key(k) => Some(k.as_str()),
        Segment::Index(_) => None,
    });
    let backticked =
        |text: &'_ str| -> Vec<String> { text.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let mut known = backticked(expected);
        known.extend(also_known.iter().map(|k| k.to_string()));
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let hint = suggest(field, &known)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        return format!("unknown property `{field}`{on}{hint}");
    }
    if let Some(rest) = msg.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return format!("missing required property `{field}`{on}");
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((value, expected)) = rest.split_once('`')
    {
        let known = backticked(expected);
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        let hint = match suggest(value, &known) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; expected one of {}", known.join(", ")),
        };
        let prop = property.map(|p| format!(" for `{p}`")).unwrap_or_default();
        return format!("unknown value `{value}`{prop}{on}{hint}");
    }
    let detail = if msg.starts_with("data did not match any variant of untagged enum OneOrMany") {
        "expected a string or a list of strings".to_string()
    } else {
        strip_location(msg)
    };
    match property {
        Some(p) => format!("invalid value for `{p}`{on}: {detail}"),
        None => format!("invalid {}: {detail}", what.unwrap_or("value")),
    }
}

/// Kestra's id patterns: `[a-zA-Z0-9][a-zA-Z0-9_-]*`, plus `.` after the first character for flows.
pub(crate) fn valid_id(id: &str, dots: bool) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (dots && c == '.'))
}

pub(crate) fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
}

#[cfg(test)]
mod dag_tests {
    use super::dag_cycle;

    fn deps(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|d| d.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn finds_the_cycle_and_names_it() {
        let ids = ["a", "b", "c", "d"];
        assert_eq!(dag_cycle(&ids, &deps(&[&[], &["a"], &["b", "a"], &["c"]])), None);
        assert_eq!(
            dag_cycle(&ids, &deps(&[&["d"], &["a"], &["b"], &["c"]])),
            Some(vec!["a".into(), "d".into(), "c".into(), "b".into(), "a".into()])
        );
        assert_eq!(dag_cycle(&["x"], &deps(&[&["x"]])), Some(vec!["x".into(), "x".into()]));
    }
}
