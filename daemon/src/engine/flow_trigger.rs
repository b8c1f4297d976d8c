//! Trigger conditions: `io.kestra.plugin.core.trigger.Flow` reacting to another flow's executions
//! changing state (conditions, preconditions, MultipleCondition windows), and the conditions of
//! Webhook and Schedule triggers.
//!
//! A MultipleCondition (and `preconditions`, which Kestra evaluates as one) remembers which of
//! its named conditions were met by some execution within its time window; the trigger fires
//! when all are met. That memory is stored (see [`WindowStore`]) in the same transaction as the
//! state change that fed it, so it survives a crash.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::{Execution, State};
use crate::flow::{
    Condition, ExecutionFilter, FilterField, FilterOperand, FilterType, FlowCondition, FlowTrigger,
    NamespaceComparison, TimeWindow, TimeWindowType,
};

/// States a Flow trigger reacts to when it names none: every terminal state and PAUSED (Kestra ≥ 0.23).
const DEFAULT_STATES: &[State] = &[
    State::Success,
    State::Warning,
    State::Failed,
    State::Killed,
    State::Cancelled,
    State::Paused,
];

const DAY_MS: i64 = 86_400_000;

/// Renders a template in the context the condition is evaluated in.
pub type Render<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

/// The durable memory of MultipleCondition windows, keyed by trigger and condition id.
pub trait WindowStore {
    fn get_window(&mut self, condition: &str) -> Result<Option<ConditionWindow>, String>;
    fn put_window(&mut self, condition: &str, w: &ConditionWindow) -> Result<(), String>;
    fn delete_window(&mut self, condition: &str) -> Result<(), String>;
}

/// What a MultipleCondition has seen so far in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionWindow {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Names of the conditions met by some execution in the window.
    pub met: BTreeSet<String>,
}

impl ConditionWindow {
    fn covers(&self, now: i64) -> bool {
        self.start_ms <= now && now <= self.end_ms
    }
}

/// A time window, parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowSpec {
    /// Consecutive windows of `len` ms, starting at midnight UTC shifted by `advance`.
    Duration { len: i64, advance: i64 },
    /// A window of `len` ms opened by the first execution that meets a condition.
    Sliding { len: i64 },
    /// Every day between two times of day (ms since midnight UTC).
    Daily { start: i64, end: i64 },
}

/// Parses Kestra's `timeWindow` (defaults: a one-day DURATION_WINDOW from midnight UTC).
pub fn window_spec(w: &TimeWindow) -> Result<WindowSpec, String> {
    let dur = |d: &Option<String>, default: i64| -> Result<i64, String> {
        match d {
            Some(t) => crate::duration::parse_iso8601(t).map(|d| d.as_millis() as i64),
            None => Ok(default),
        }
    };
    let time = |t: &Option<String>, name: &str| -> Result<i64, String> {
        let t = t
            .as_deref()
            .ok_or_else(|| format!("`{name}` is required for {:?}", w.kind))?;
        let parsed = chrono::NaiveTime::parse_from_str(t, "%H:%M:%S")
            .or_else(|_| chrono::NaiveTime::parse_from_str(t, "%H:%M"))
            .map_err(|_| format!("`{name}` must be a time of day such as 09:00:00, not `{t}`"))?;
        Ok(chrono::Timelike::num_seconds_from_midnight(&parsed) as i64 * 1000)
    };
    let spec = match w.kind {
        TimeWindowType::DurationWindow => WindowSpec::Duration {
            len: dur(&w.window, DAY_MS)?,
            advance: dur(&w.window_advance, 0)?,
        },
        TimeWindowType::SlidingWindow => WindowSpec::Sliding {
            len: dur(&w.window, DAY_MS)?,
        },
        TimeWindowType::DailyTimeWindow => WindowSpec::Daily {
            start: time(&w.start_time, "startTime")?,
            end: time(&w.end_time, "endTime")?,
        },
        TimeWindowType::DailyTimeDeadline => WindowSpec::Daily {
            start: 0,
            end: time(&w.deadline, "deadline")?,
        },
    };
    if let WindowSpec::Duration { len, .. } | WindowSpec::Sliding { len } = spec
        && len <= 0
    {
        return Err("`window` must be longer than zero".into());
    }
    Ok(spec)
}

/// The window containing `now` (inclusive bounds); `None` when `now` is outside every window
/// (a daily window before its start or after its end).
pub fn window_at(spec: WindowSpec, now: i64) -> Option<(i64, i64)> {
    match spec {
        WindowSpec::Duration { len, advance } => {
            let start = advance + (now - advance).div_euclid(len) * len;
            Some((start, start + len - 1))
        }
        WindowSpec::Sliding { len } => Some((now, now + len - 1)),
        WindowSpec::Daily { start, end } => {
            let day = now.div_euclid(DAY_MS) * DAY_MS;
            let (s, e) = (day + start, day + end);
            (s <= now && now <= e).then_some((s, e))
        }
    }
}

/// One named member of a MultipleCondition.
enum Member<'a> {
    Cond(&'a Condition),
    Upstream(&'a FlowCondition),
    Where(&'a ExecutionFilter),
}

/// A MultipleCondition or `preconditions`, normalised.
struct Group<'a> {
    id: String,
    spec: WindowSpec,
    reset_on_success: bool,
    members: Vec<(String, Member<'a>)>,
}

fn groups(t: &FlowTrigger) -> Result<Vec<Group<'_>>, String> {
    let mut out = Vec::new();
    for c in &t.conditions {
        if let Condition::Multiple {
            id,
            conditions,
            time_window,
            window,
            window_advance,
            reset_on_success,
        } = c
        {
            let mut tw = time_window.clone().unwrap_or_default();
            if window.is_some() {
                tw.window = window.clone();
            }
            if window_advance.is_some() {
                tw.window_advance = window_advance.clone();
            }
            out.push(Group {
                id: id.clone(),
                spec: window_spec(&tw)?,
                reset_on_success: reset_on_success.unwrap_or(true),
                members: conditions.iter().map(|(k, c)| (k.clone(), Member::Cond(c))).collect(),
            });
        }
    }
    if let Some(pre) = &t.preconditions {
        // Kestra names them condition_1.. in order: flows first, then `where` (with its id).
        let mut members = Vec::new();
        for f in &pre.flows {
            members.push((format!("condition_{}", members.len() + 1), Member::Upstream(f)));
        }
        for w in &pre.filters {
            members.push((format!("condition_{}_{}", members.len() + 1, w.id), Member::Where(w)));
        }
        if !members.is_empty() {
            out.push(Group {
                id: format!("preconditions.{}", pre.id.as_deref().unwrap_or("")),
                spec: window_spec(&pre.time_window.clone().unwrap_or_default())?,
                reset_on_success: pre.reset_on_success.unwrap_or(true),
                members,
            });
        }
    }
    Ok(out)
}

/// Whether a Flow trigger looks at executions entering `state` at all (its `states`).
pub fn listens(trigger: &FlowTrigger, state: State) -> bool {
    if trigger.disabled || state == State::Created {
        return false;
    }
    if trigger.states.is_empty() {
        DEFAULT_STATES.contains(&state)
    } else {
        trigger.states.iter().any(|s| State::parse(s) == Some(state))
    }
}

/// Whether a Flow trigger of flow `owner` (namespace, id) fires for `exec` having just entered
/// `state`, at `now`. Records what MultipleCondition windows saw in `store` either way.
pub fn evaluate(
    trigger: &FlowTrigger,
    owner: (&str, &str),
    exec: &Execution,
    state: State,
    now: i64,
    render: &mut Render<'_>,
    store: &mut dyn WindowStore,
) -> Result<bool, String> {
    if trigger.disabled || state == State::Created {
        return Ok(false);
    }
    // Kestra never lets a flow trigger itself.
    if owner == (exec.namespace.as_str(), exec.flow_id.as_str()) {
        return Ok(false);
    }
    if !listens(trigger, state) {
        return Ok(false);
    }
    for c in &trigger.conditions {
        if !matches!(c, Condition::Multiple { .. }) && !holds(c, exec, state, render)? {
            return Ok(false);
        }
    }
    let mut all_met = true;
    let mut fulfilled = Vec::new();
    for g in groups(trigger)? {
        let current = store.get_window(&g.id)?.filter(|w| w.covers(now));
        let mut window = match current {
            Some(w) => w,
            None => match window_at(g.spec, now) {
                Some((start_ms, end_ms)) => ConditionWindow {
                    start_ms,
                    end_ms,
                    met: BTreeSet::new(),
                },
                None => {
                    // Outside a daily window: nothing counts now.
                    store.delete_window(&g.id)?;
                    all_met = false;
                    continue;
                }
            },
        };
        let before = window.met.clone();
        for (name, m) in &g.members {
            if !window.met.contains(name) && member_holds(m, exec, state, render)? {
                window.met.insert(name.clone());
            }
        }
        if window.met != before {
            store.put_window(&g.id, &window)?;
        }
        let met = g.members.iter().all(|(name, _)| window.met.contains(name));
        if met && g.reset_on_success {
            fulfilled.push(g.id.clone());
        }
        all_met &= met;
    }
    for id in fulfilled {
        store.delete_window(&id)?;
    }
    Ok(all_met)
}

fn member_holds(m: &Member<'_>, exec: &Execution, state: State, render: &mut Render<'_>) -> Result<bool, String> {
    match m {
        Member::Cond(c) => holds(c, exec, state, render),
        Member::Upstream(f) => Ok(f.namespace == exec.namespace
            && f.flow_id.as_deref().is_none_or(|id| id == exec.flow_id)
            && (f.states.is_empty() || f.states.iter().any(|s| State::parse(s) == Some(state)))
            && f.labels.iter().all(|(k, v)| {
                let want = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                exec.labels.get(k) == Some(&want)
            })),
        Member::Where(w) => {
            let mut results = Vec::with_capacity(w.filters.len());
            for f in &w.filters {
                let field = match f.field {
                    FilterField::FlowId => Some(exec.flow_id.clone()),
                    FilterField::Namespace => Some(exec.namespace.clone()),
                    FilterField::State => Some(state.as_str().to_string()),
                    FilterField::Expression => match &f.value {
                        Some(v) => Some(render(v)?),
                        None => None,
                    },
                };
                results.push(filter_holds(f.kind, field.as_deref(), f.value.as_deref(), &f.values));
            }
            Ok(match w.operand {
                FilterOperand::And => results.iter().all(|r| *r),
                FilterOperand::Or => results.iter().any(|r| *r),
            })
        }
    }
}

fn filter_holds(kind: FilterType, actual: Option<&str>, value: Option<&str>, values: &[String]) -> bool {
    // As Kestra: the field's value (for EXPRESSION, the rendered `value`) against `value`/`values`.
    match kind {
        FilterType::EqualTo => actual.is_some() && actual == value,
        FilterType::NotEqualTo => actual != value,
        FilterType::In => actual.is_some_and(|a| values.iter().any(|v| v == a)),
        FilterType::NotIn => !actual.is_some_and(|a| values.iter().any(|v| v == a)),
        FilterType::IsTrue => truthy(actual),
        FilterType::IsFalse => !truthy(actual),
        FilterType::IsNull => actual.is_none(),
        FilterType::IsNotNull => actual.is_some(),
        FilterType::StartsWith => matches!((actual, value), (Some(a), Some(v)) if a.starts_with(v)),
        FilterType::EndsWith => matches!((actual, value), (Some(a), Some(v)) if a.ends_with(v)),
        FilterType::Contains => matches!((actual, value), (Some(a), Some(v)) if a.contains(v)),
        FilterType::Regex => match (actual, value) {
            // Java's String.matches: the whole value must match.
            (Some(a), Some(v)) => regex::Regex::new(&format!("^(?:{v})$")).is_ok_and(|r| r.is_match(a)),
            _ => false,
        },
    }
}

/// Kestra's TruthUtils: false for null, empty, "false", "0", "-0" and "" ; true otherwise.
fn truthy(v: Option<&str>) -> bool {
    match v.map(str::trim) {
        None => false,
        Some(s) => !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0" || s == "-0" || s == "null"),
    }
}

/// Whether one (non-window) condition holds for `exec` in `state`.
pub fn holds(c: &Condition, exec: &Execution, state: State, render: &mut Render<'_>) -> Result<bool, String> {
    Ok(match c {
        Condition::ExecutionFlow { namespace, flow_id } => *namespace == exec.namespace && *flow_id == exec.flow_id,
        Condition::ExecutionStatus { in_, not_in } => {
            let has = |l: &Option<Vec<String>>| l.as_ref().map(|l| l.iter().any(|s| State::parse(s) == Some(state)));
            has(in_) != Some(false) && has(not_in) != Some(true)
        }
        Condition::ExecutionNamespace {
            namespace,
            comparison,
            prefix,
        } => {
            let how = comparison.unwrap_or(if *prefix {
                NamespaceComparison::Prefix
            } else {
                NamespaceComparison::Equals
            });
            match how {
                NamespaceComparison::Equals => exec.namespace == *namespace,
                NamespaceComparison::Prefix => exec.namespace.starts_with(namespace.as_str()),
                NamespaceComparison::Suffix => exec.namespace.ends_with(namespace.as_str()),
            }
        }
        Condition::ExecutionLabels { labels } => labels.pairs().iter().all(|(k, v)| exec.labels.get(k) == Some(v)),
        Condition::Expression { expression } => expression_true(&render(expression)?),
        Condition::Not { conditions } => {
            // Kestra's Not: true when none of its conditions holds.
            let mut any = false;
            for c in conditions {
                any |= holds(c, exec, state, render)?;
            }
            !any
        }
        Condition::Or { conditions } => {
            let mut any = false;
            for c in conditions {
                any |= holds(c, exec, state, render)?;
            }
            any
        }
        // Gathered over a window by `evaluate`; a nested one is refused at validation.
        Condition::Multiple { .. } => true,
    })
}

/// Kestra's Expression condition: false when the rendered text is blank or `false`.
pub fn expression_true(rendered: &str) -> bool {
    let t = rendered.trim();
    !(t.is_empty() || t == "false")
}

/// Whether every condition of a Webhook or Schedule trigger holds (none is a window).
pub fn all_hold(conditions: &[Condition], exec: &Execution, render: &mut Render<'_>) -> Result<bool, String> {
    for c in conditions {
        if !holds(c, exec, exec.state, render)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `trigger.*` in the triggered execution's templates.
pub fn context(exec: &Execution, state: State) -> Value {
    json!({
        "executionId": exec.id,
        "namespace": exec.namespace,
        "flowId": exec.flow_id,
        "flowRevision": exec.flow_revision,
        "state": state.as_str(),
        "outputs": exec.outputs,
        "labels": exec.labels,
    })
}

/// The store key of a trigger's window: one per (flow, trigger, condition). With empty trigger
/// and condition, the prefix of every window of the flow.
pub fn window_key(namespace: &str, flow_id: &str, trigger_id: &str, condition: &str) -> String {
    if trigger_id.is_empty() && condition.is_empty() {
        return format!("{namespace}\0{flow_id}\0");
    }
    format!("{namespace}\0{flow_id}\0{trigger_id}\0{condition}")
}

/// `trigger.body`, `trigger.headers`, `trigger.parameters` of a webhook call, as Kestra gives
/// them: the body parsed as JSON when it is an object or array, else the text; header and query
/// values as lists.
pub fn webhook_context(
    body: &str,
    headers: &BTreeMap<String, Vec<String>>,
    parameters: &BTreeMap<String, Vec<String>>,
) -> Value {
    let parsed = match serde_json::from_str::<Value>(body) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ if body.is_empty() => Value::Null,
        _ => Value::String(body.to_string()),
    };
    json!({ "body": parsed, "headers": headers, "parameters": parameters })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_windows_start_at_midnight_plus_advance() {
        let spec = WindowSpec::Duration {
            len: DAY_MS,
            advance: 6 * 3_600_000,
        };
        // 03:00 on day 10 belongs to the window that opened at 06:00 on day 9.
        let now = 10 * DAY_MS + 3 * 3_600_000;
        assert_eq!(
            window_at(spec, now),
            Some((9 * DAY_MS + 6 * 3_600_000, 10 * DAY_MS + 6 * 3_600_000 - 1))
        );
        let spec = WindowSpec::Daily {
            start: 6 * 3_600_000,
            end: 9 * 3_600_000,
        };
        assert_eq!(window_at(spec, now), None);
    }

    #[test]
    fn filters_follow_kestra() {
        use FilterType::*;
        assert!(filter_holds(StartsWith, Some("a.b.c"), Some("a.b"), &[]));
        assert!(!filter_holds(EndsWith, Some("a.b.c"), Some("a.b"), &[]));
        let states = ["WARNING".to_string(), "SUCCESS".to_string()];
        assert!(filter_holds(In, Some("SUCCESS"), None, &states));
        assert!(!filter_holds(NotIn, Some("SUCCESS"), None, &states));
        assert!(filter_holds(IsTrue, Some("true"), Some("{{x}}"), &[]));
        assert!(!filter_holds(IsTrue, Some("false"), Some("{{x}}"), &[]));
        assert!(filter_holds(IsFalse, Some(""), Some("{{x}}"), &[]));
        assert!(filter_holds(Regex, Some("flow-a"), Some("flow-[a-c]"), &[]));
        assert!(!filter_holds(Regex, Some("xflow-a"), Some("flow-[a-c]"), &[]));
    }
}
