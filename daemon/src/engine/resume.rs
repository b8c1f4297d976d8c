//! Deciding a pause: checks a resume request, and ends a pause by decision or by timer.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Actor;
use super::advance::{Effects, resumed_outputs, timer_kind};
use super::error::{EngineError, Result};
use super::execution::Execution;
use super::state::State;
use super::writer::PauseSelector;
use crate::flow::{Flow, PauseBehavior, PauseTask, TaskKind};
use crate::store::TimerKey;

/// Message a user sees when resuming something that is not paused (Kestra's wording, plus the state).
pub fn not_paused(exec: &Execution) -> EngineError {
    EngineError::FailedPrecondition(format!(
        "Execution '{}' is not paused, can't resume it: it is {}",
        exec.id, exec.state
    ))
}

/// A resume request that passed every check.
#[derive(Debug)]
pub struct Decision {
    /// Index of the paused task run.
    pub idx: usize,
    /// Typed `onResume` values.
    pub values: Map<String, Value>,
    /// Distinct approvals a HumanTask needs in all (1 for a plain Pause).
    pub approvals_required: u32,
    /// The user the actor decides for by delegation, empty when deciding for themselves.
    pub on_behalf_of: String,
}

impl Decision {
    /// Whether this decision completes the pause (the last approval of a quorum, or any plain resume).
    pub fn completes(&self, exec: &Execution) -> bool {
        let so_far = exec.task_runs[self.idx]
            .pause
            .as_ref()
            .map(|p| p.approvals.len())
            .unwrap_or(0) as u32;
        so_far + 1 >= self.approvals_required
    }
}

/// Renders inputs' `expression` (SELECT/MULTISELECT values) as the flow's own templates are
/// rendered: the flow's namespace scopes `kv()` and `secret()`; with an execution, its variables
/// (inputs, outputs, labels) are visible too.
pub fn expression_renderer<'a>(
    renderer: &'a crate::expr::Renderer,
    services: &'a dyn crate::expr::ExprServices,
    flow: &'a Flow,
    exec: Option<&'a Execution>,
) -> impl Fn(&str) -> std::result::Result<String, String> + 'a {
    move |template: &str| {
        let vars = match exec {
            Some(exec) => super::context::vars(flow, exec, None, None),
            None => serde_json::json!({"flow": {"id": flow.id, "namespace": flow.namespace}}),
        };
        let id = exec.map(|e| e.id.as_str()).unwrap_or("");
        renderer
            .render(template, &vars, services, &flow.namespace, id)
            .map(|r| r.text)
            .map_err(|e| e.to_string())
    }
}

/// Finds the pause a resume is for, checks who may decide, and types its inputs; changes nothing.
pub fn check(
    flow: &Flow,
    exec: &Execution,
    select: &PauseSelector,
    inputs: &BTreeMap<String, String>,
    actor: &Actor,
    render: Option<crate::inputs::ExpressionRender<'_>>,
) -> Result<Decision> {
    if exec.state != State::Paused {
        return Err(not_paused(exec));
    }
    let idx = select_pause(exec, select)?;
    let run = &exec.task_runs[idx];
    let Some(task) = flow.find_task(&run.task_id) else {
        return Err(EngineError::NotFound(format!(
            "task `{}` is not in flow revision {}",
            run.task_id, exec.flow_revision
        )));
    };
    let TaskKind::Pause(pause) = &task.kind else {
        return Err(EngineError::FailedPrecondition(format!(
            "task `{}` is not a pause",
            run.task_id
        )));
    };
    let mut approvals_required = 1;
    let mut on_behalf_of = String::new();
    if let Some(human) = &pause.human {
        let Some(seat) = decides_as(exec, idx, actor) else {
            return Err(EngineError::PermissionDenied(ACCESS_DENIED.into()));
        };
        on_behalf_of = seat;
        // Separation of duties holds through a delegation: neither the starter nor the
        // starter's delegate may approve.
        let starter = |u: &str| !u.is_empty() && u.eq_ignore_ascii_case(&exec.started_by);
        if !human.allow_self_approval && !actor.is_system() && (starter(&actor.user) || starter(&on_behalf_of)) {
            return Err(EngineError::PermissionDenied(format!(
                "{ACCESS_DENIED}: {} started it and task `{}` does not allow self-approval",
                exec.started_by, run.task_id
            )));
        }
        let approvals = run.pause.as_ref().map(|p| p.approvals.as_slice()).unwrap_or_default();
        // A person's seat in a quorum counts once, whether they or their delegate took it.
        let seat_of = |a: &crate::engine::execution::Approval| {
            if a.on_behalf_of.is_empty() {
                a.by.clone()
            } else {
                a.on_behalf_of.clone()
            }
        };
        let mine = if on_behalf_of.is_empty() {
            actor.user.clone()
        } else {
            on_behalf_of.clone()
        };
        if approvals
            .iter()
            .any(|a| seat_of(a).eq_ignore_ascii_case(&mine) || a.by.eq_ignore_ascii_case(&actor.user))
        {
            return Err(EngineError::FailedPrecondition(format!(
                "{} already approved task `{}` of execution '{}'; it needs {} distinct approvers ({} so far)",
                actor.user,
                run.task_id,
                exec.id,
                human.approvals,
                approvals.len()
            )));
        }
        approvals_required = human.approvals.max(1);
    }
    let defs = match render {
        Some(render) => {
            crate::inputs::resolve_expressions(&pause.on_resume, render).map_err(EngineError::InvalidInput)?
        }
        None => pause.on_resume.clone(),
    };
    let values = crate::inputs::coerce(&defs, inputs).map_err(EngineError::InvalidInput)?;
    check_resume_files(exec, &defs, &values)?;
    Ok(Decision {
        idx,
        values,
        approvals_required,
        on_behalf_of,
    })
}

/// A resume's FILE inputs are uploads to this execution (see `Engine::store_resume_files`): a
/// URI of any other file is refused, so a decision cannot point a flow at files it did not get.
fn check_resume_files(exec: &Execution, defs: &[crate::inputs::InputDef], values: &Map<String, Value>) -> Result<()> {
    let own = super::files::uri_of(&super::files::execution_prefix(
        &exec.namespace,
        &exec.flow_id,
        &exec.id,
    ));
    let errors: Vec<crate::inputs::InputError> = defs
        .iter()
        .filter(|d| d.input_type == crate::inputs::InputType::File)
        .filter_map(|d| Some((d, values.get(&d.id)?.as_str()?)))
        .filter(|(_, uri)| !uri.starts_with(&own))
        .map(|(d, uri)| crate::inputs::InputError {
            input_id: d.id.clone(),
            message: format!(
                "input `{}`: {uri} is not a file uploaded to execution {}",
                d.id, exec.id
            ),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(EngineError::InvalidInput(errors))
    }
}

/// The `onResume` inputs of the pause `select` names (uploads are placed by them).
pub fn on_resume_defs(flow: &Flow, exec: &Execution, select: &PauseSelector) -> Result<Vec<crate::inputs::InputDef>> {
    if exec.state != State::Paused {
        return Err(not_paused(exec));
    }
    let idx = select_pause(exec, select)?;
    let run = &exec.task_runs[idx];
    match flow.find_task(&run.task_id).map(|t| &t.kind) {
        Some(TaskKind::Pause(pause)) => Ok(pause.on_resume.clone()),
        _ => Err(EngineError::FailedPrecondition(format!(
            "task `{}` is not a pause",
            run.task_id
        ))),
    }
}

/// A rejection request that passed every check.
#[derive(Debug)]
pub struct Rejection {
    pub idx: usize,
    pub on_behalf_of: String,
}

/// Finds the pause a rejection is for and checks who may reject it and that a reason is given
/// when the HumanTask requires one; changes nothing. Rejecting one's own request is allowed
/// (it withdraws it), so `allowSelfApproval` does not apply.
pub fn check_reject(
    flow: &Flow,
    exec: &Execution,
    select: &PauseSelector,
    actor: &Actor,
    reason: &str,
) -> Result<Rejection> {
    if exec.state != State::Paused {
        return Err(EngineError::FailedPrecondition(format!(
            "Execution '{}' is not paused, can't reject it: it is {}",
            exec.id, exec.state
        )));
    }
    let idx = select_pause(exec, select)?;
    let run = &exec.task_runs[idx];
    let pause = match flow.find_task(&run.task_id).map(|t| &t.kind) {
        Some(TaskKind::Pause(p)) => p,
        _ => {
            return Err(EngineError::FailedPrecondition(format!(
                "task `{}` is not a pause",
                run.task_id
            )));
        }
    };
    let mut on_behalf_of = String::new();
    if let Some(human) = &pause.human {
        let Some(seat) = decides_as(exec, idx, actor) else {
            return Err(EngineError::PermissionDenied(
                "Access denied to reject this execution".into(),
            ));
        };
        on_behalf_of = seat;
        if human.rejection_reason_required && reason.trim().is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "task `{}` requires a reason to reject it (rejectionReasonRequired)",
                run.task_id
            )));
        }
    }
    Ok(Rejection { idx, on_behalf_of })
}

/// Kestra's message for a resume by someone outside a HumanTask's assignment.
pub const ACCESS_DENIED: &str = "Access denied to resume this execution";

/// Whether `actor` is in the (possibly escalated) assignment of the HumanTask at `idx`, directly
/// or as the delegate of someone who is.
pub fn may_decide(exec: &Execution, idx: usize, actor: &Actor) -> bool {
    decides_as(exec, idx, actor).is_some()
}

/// In whose name `actor` may decide the HumanTask at `idx`: `Some("")` for themselves, `Some(user)`
/// as the delegate of `user` (only delegations covering the execution's namespace count), `None`
/// when neither.
pub fn decides_as(exec: &Execution, idx: usize, actor: &Actor) -> Option<String> {
    if actor.is_system() {
        return Some(String::new());
    }
    let p = exec.task_runs[idx].pause.as_ref()?;
    let assigned = |user: &str, groups: &[String]| {
        p.users.iter().any(|u| u.eq_ignore_ascii_case(user)) || p.groups.iter().any(|g| groups.iter().any(|a| a == g))
    };
    if assigned(&actor.user, &actor.groups) {
        return Some(String::new());
    }
    actor
        .acting_for
        .iter()
        .find(|d| crate::store::namespace_within(&exec.namespace, &d.namespace) && assigned(&d.user, &d.groups))
        .map(|d| d.user.clone())
}

pub(crate) fn select_pause(exec: &Execution, select: &PauseSelector) -> Result<usize> {
    let by_run = select.task_run_id.as_deref().filter(|s| !s.is_empty());
    let by_task = select.task_id.as_deref().filter(|s| !s.is_empty());
    let found = exec.task_runs.iter().position(|r| {
        r.state == State::Paused && by_run.is_none_or(|id| r.id == id) && by_task.is_none_or(|t| r.task_id == t)
    });
    if let Some(idx) = found {
        return Ok(idx);
    }
    let wanted = by_run
        .map(|r| format!("task run {r}"))
        .or(by_task.map(|t| format!("task `{t}`")))
        .unwrap_or_default();
    match exec
        .task_runs
        .iter()
        .find(|r| by_run.is_none_or(|id| r.id == id) && by_task.is_none_or(|t| r.task_id == t))
    {
        Some(r) => Err(EngineError::FailedPrecondition(format!(
            "{wanted} of execution '{}' is not paused: it is {}",
            exec.id, r.state
        ))),
        None => Err(EngineError::NotFound(format!(
            "execution '{}' has no {wanted}",
            exec.id
        ))),
    }
}

/// Ends the pause at `idx` with `state` and `outputs`, dropping its timers.
/// After a resume (or an expiry resuming it), a Pause with Kestra's deprecated `tasks` goes
/// back to RUNNING so the walk runs them; it then ends with their outcome.
pub fn continue_into_tasks(flow: &crate::flow::Flow, exec: &mut Execution, idx: usize, now: i64) {
    let run = &exec.task_runs[idx];
    if run.state.is_failure() || run.state == State::Paused {
        return;
    }
    let has_tasks = flow
        .find_task(&run.task_id)
        .is_some_and(|t| matches!(&t.kind, crate::flow::TaskKind::Pause(p) if !p.tasks.is_empty()));
    if has_tasks {
        exec.task_runs[idx].set_state(State::Running, now);
        exec.task_runs[idx].ended_ms = None;
    }
}

pub fn end_pause(
    exec: &mut Execution,
    idx: usize,
    state: State,
    outputs: Map<String, Value>,
    now: i64,
    fx: &mut Effects,
) {
    let exec_id = exec.id.clone();
    let run = &mut exec.task_runs[idx];
    if let Some(p) = &run.pause {
        for (due, kind) in [
            (p.expires_ms, timer_kind::EXPIRE),
            (p.timeout_ms, timer_kind::TIMEOUT),
            (p.next_reminder_ms, timer_kind::REMINDER),
            (p.next_escalation_ms, timer_kind::ESCALATE),
            (p.sla_due_ms.filter(|_| p.sla_breached_ms.is_none()), timer_kind::SLA),
            (p.next_stale_check_ms, "stale"),
        ] {
            if let Some(due) = due {
                fx.timers_del.push(TimerKey {
                    due_ms: due,
                    execution_id: exec_id.clone(),
                    task_run_id: run.id.clone(),
                    kind: kind.into(),
                });
            }
        }
    }
    if !outputs.is_empty() {
        run.outputs = outputs;
    }
    run.set_state(state, now);
}

/// What an elapsed timer does to a pause: (task run state, outputs, log message).
pub fn on_timer(pause: &PauseTask, kind: &str, now: i64) -> (State, Map<String, Value>, Option<String>) {
    if kind == timer_kind::TIMEOUT {
        return (
            State::Failed,
            Map::new(),
            Some("timeout elapsed before anyone resumed the pause".into()),
        );
    }
    let defaults = || crate::inputs::coerce(&pause.on_resume, &BTreeMap::new());
    match pause.behavior {
        PauseBehavior::Resume => match defaults() {
            Ok(values) => (
                State::Success,
                resumed_outputs(values, TIMER_ACTOR, now, State::Success),
                Some("pauseDuration elapsed: resuming with the onResume defaults (behavior RESUME)".into()),
            ),
            Err(errors) => {
                let names: Vec<String> = errors.iter().map(|e| format!("`{}`", e.input_id)).collect();
                (
                    State::Failed,
                    Map::new(),
                    Some(format!(
                        "pauseDuration elapsed but the pause cannot resume on its own: required onResume input {} has no default",
                        names.join(", ")
                    )),
                )
            }
        },
        PauseBehavior::Warn => {
            let values = defaults().unwrap_or_default();
            (
                State::Warning,
                resumed_outputs(values, TIMER_ACTOR, now, State::Warning),
                Some("pauseDuration elapsed: continuing with WARNING (behavior WARN)".into()),
            )
        }
        PauseBehavior::Cancel => (
            State::Cancelled,
            Map::new(),
            Some("pauseDuration elapsed: cancelling (behavior CANCEL)".into()),
        ),
        PauseBehavior::Fail => (
            State::Failed,
            Map::new(),
            Some("pauseDuration elapsed: failing (behavior FAIL)".into()),
        ),
    }
}

/// Who `resumed.by` names when a timer decided.
pub const TIMER_ACTOR: &str = "tollgated (pauseDuration elapsed)";

/// The ids of a pause's SECRET `onResume` fields (stored sealed, shown masked).
pub fn secret_resume_ids(flow: &Flow, task_id: &str) -> Vec<String> {
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

/// A decision's values as they are stored: SECRET fields sealed, the others as given.
pub fn sealed_values(values: &Map<String, Value>, secret_ids: &[String]) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let v = if secret_ids.contains(k) {
                crate::secrets::seal_value(v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}
