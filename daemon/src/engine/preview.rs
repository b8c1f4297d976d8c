//! Resume preview: what a decision would do next, found by running the real step logic
//! ([`Stepper`]) on a copy of the execution and throwing its effects away. Nothing is stored,
//! no job runs, no log line is written and nothing is audited: it is a read.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::Actor;
use super::advance::{Effects, StepEnv, Stepper, resumed_outputs};
use super::error::Result;
use super::execution::Execution;
use super::ids::now_ms;
use super::state::State;
use super::writer::PauseSelector;
use crate::flow::{Flow, TaskKind};
use crate::masking::{mask, mask_value};

/// What approving now would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The pause being decided.
    pub task_id: String,
    /// False while a quorum still needs other approvers: then nothing else happens yet.
    pub completes: bool,
    pub approvals_so_far: u32,
    pub approvals_required: u32,
    /// The execution's state once the next steps have been taken.
    pub state_after: String,
    /// Tasks that would start or change, in order.
    pub steps: Vec<Step>,
}

/// One task the decision would reach.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub task_id: String,
    pub task_type: String,
    /// Its state right after the decision (RUNNING for a task that would start working).
    pub state: String,
    /// The branch an If/Switch would take (`then`, `else`, a case key, `defaults`).
    pub branch: Option<String>,
    /// Properties rendered with the execution's context, secrets masked.
    pub properties: Value,
    /// What it would write to the log (Log tasks), secrets masked.
    pub messages: Vec<String>,
}

/// Previews a resume of `exec` with `inputs` by `actor`: the same checks as the resume itself.
pub fn preview(
    flow: &Flow,
    exec: &Execution,
    select: &PauseSelector,
    inputs: &BTreeMap<String, String>,
    actor: &Actor,
    comment: &str,
    env: &StepEnv,
) -> Result<Preview> {
    let render = super::resume::expression_renderer(env.renderer, env.services, flow, Some(exec));
    let decision = super::resume::check(flow, exec, select, inputs, actor, Some(&render))?;
    let idx = decision.idx;
    let run = &exec.task_runs[idx];
    let so_far = run.pause.as_ref().map(|p| p.approvals.len()).unwrap_or(0) as u32;
    let mut out = Preview {
        task_id: run.task_id.clone(),
        completes: decision.completes(exec),
        approvals_so_far: so_far,
        approvals_required: decision.approvals_required,
        state_after: exec.state.as_str().to_string(),
        steps: vec![],
    };
    if !out.completes {
        return Ok(out);
    }
    // The same outputs the resume would store, SECRET values sealed as it seals them.
    let secret_ids = super::resume::secret_resume_ids(flow, &run.task_id);
    let values = super::resume::sealed_values(&decision.values, &secret_ids);
    let now = now_ms();
    let mut copy = exec.clone();
    let mut outputs = resumed_outputs(values, &actor.user, now, State::Success);
    if let Some(Value::Object(resumed)) = outputs.get_mut("resumed") {
        resumed.insert("comment".into(), Value::String(comment.to_string()));
    }
    let mut fx = Effects::default();
    super::resume::end_pause(&mut copy, idx, State::Success, outputs, now, &mut fx);
    copy.set_state(State::Running, now);
    copy.remember_secret_values();
    let before: BTreeMap<&str, State> = exec.task_runs.iter().map(|r| (r.id.as_str(), r.state)).collect();
    let paused_run = run.id.clone();
    {
        let mut stepper = Stepper {
            flow,
            exec: &mut copy,
            now,
            fx: &mut fx,
            env,
        };
        stepper.advance();
    }
    let mut secrets = copy.secrets_seen.clone();
    for (k, v) in &decision.values {
        if let (true, Value::String(s)) = (secret_ids.contains(k), v) {
            secrets.push(s.clone());
        }
    }
    let jobs: HashSet<&str> = fx.jobs.iter().map(|j| j.task_run_id.as_str()).collect();
    for r in &copy.task_runs {
        let changed = before.get(r.id.as_str()).is_none_or(|s| *s != r.state);
        if r.id == paused_run || !changed {
            continue;
        }
        let mut properties = Value::Null;
        if let Some(job) = fx.jobs.iter().find(|j| j.task_run_id == r.id) {
            properties = render_properties(&job.task.kind, &job.vars, env, &copy, &mut secrets);
        }
        let messages = fx
            .logs
            .iter()
            .filter(|l| l.task_run_id == r.id)
            .map(|l| l.message.clone())
            .collect();
        out.steps.push(Step {
            task_id: r.task_id.clone(),
            task_type: r.task_type.clone(),
            state: if jobs.contains(r.id.as_str()) {
                State::Running.as_str().to_string()
            } else {
                r.state.as_str().to_string()
            },
            branch: r.branch.clone(),
            properties,
            messages,
        });
    }
    for s in &mut out.steps {
        s.properties = mask_value(&s.properties, &secrets);
        for m in &mut s.messages {
            *m = mask(m, &secrets);
        }
    }
    out.state_after = copy.state.as_str().to_string();
    Ok(out)
}

/// Every string property of a task that would run, rendered as the job would render it.
fn render_properties(
    kind: &TaskKind,
    vars: &Value,
    env: &StepEnv,
    exec: &Execution,
    secrets: &mut Vec<String>,
) -> Value {
    let raw = serde_json::to_value(kind).unwrap_or(Value::Null);
    // Externally tagged enum: the properties are under the variant's name.
    let props = match raw {
        Value::Object(m) if m.len() == 1 => m.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
        other => other,
    };
    render_value(&props, vars, env, exec, secrets)
}

fn render_value(v: &Value, vars: &Value, env: &StepEnv, exec: &Execution, secrets: &mut Vec<String>) -> Value {
    match v {
        Value::String(s) => match env.renderer.render(s, vars, env.services, &exec.namespace, &exec.id) {
            Ok(r) => {
                secrets.extend(r.secrets);
                Value::String(r.text)
            }
            Err(e) => Value::String(format!("(cannot render: {e})")),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_value(i, vars, env, exec, secrets))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), render_value(v, vars, env, exec, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}
