//! The variables a template sees, named as Kestra names them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::execution::{Execution, TaskRun};
use crate::flow::{Flow, Task};

/// Builds the template context of `exec`, optionally for one task run.
pub fn vars(flow: &Flow, exec: &Execution, run: Option<&TaskRun>, task: Option<&Task>) -> Value {
    let mut root = Map::new();
    root.insert(
        "flow".into(),
        json!({"id": flow.id, "namespace": flow.namespace, "revision": exec.flow_revision}),
    );
    root.insert(
        "execution".into(),
        json!({
            "id": exec.id,
            "startDate": iso_ms(exec.created_ms),
            "originalId": exec.id,
            "state": exec.state.as_str(),
        }),
    );
    // SECRET values are stored sealed; templates see them in clear (and the step masks them,
    // see `Execution::remember_secret_values`).
    let mut opened = Vec::new();
    let mut inputs = Value::Object(exec.inputs.clone());
    crate::secrets::open_sealed(&mut inputs, &mut opened);
    let mut outs = Value::Object(outputs(exec));
    crate::secrets::open_sealed(&mut outs, &mut opened);
    root.insert("inputs".into(), inputs);
    root.insert("outputs".into(), outs);
    root.insert("labels".into(), nested_labels(&exec.labels));
    root.insert("vars".into(), Value::Object(flow.variables.clone()));
    // An HTTP trigger's `encryptBody` body is stored sealed too.
    let mut trigger = exec.trigger.clone().unwrap_or(Value::Null);
    crate::secrets::open_sealed(&mut trigger, &mut opened);
    root.insert("trigger".into(), trigger);
    if let Some(task) = task {
        root.insert("task".into(), json!({"id": task.id, "type": task.type_name}));
    }
    if let Some(run) = run {
        let value = item_value(exec, run);
        let mut taskrun = json!({"id": run.id, "value": value, "attemptsCount": run.attempts.len(), "startDate": iso_ms(run.started_ms)});
        if let Some(i) = run.loop_iteration {
            taskrun["iteration"] = json!(i);
        }
        if let Some(p) = &run.parent_task_run_id {
            taskrun["parentId"] = json!(p);
        }
        root.insert("taskrun".into(), taskrun);
        // Kestra's `workerTaskrun`: inside a WorkingDirectory, the directory's own task run.
        if let Some(wd) = run.parent_task_run_id.as_deref().and_then(|p| exec.run(p))
            && wd.task_type == crate::flow::types::WORKING_DIRECTORY
        {
            let value = item_value(exec, wd);
            root.insert(
                "workerTaskrun".into(),
                json!({"id": wd.id, "value": value, "startDate": iso_ms(wd.started_ms)}),
            );
        }
        // Kestra's `parents`: every enclosing task run, nearest first; `parent` is `parents[0]`.
        let mut parents = Vec::new();
        let mut next = run.parent_task_run_id.as_deref().and_then(|p| exec.run(p));
        while let Some(parent) = next {
            let mut parent_outputs = Value::Object(parent.outputs.clone());
            crate::secrets::open_sealed(&mut parent_outputs, &mut opened);
            let mut taskrun = json!({"id": parent.id, "value": item_value(exec, parent)});
            if let Some(i) = parent.loop_iteration {
                taskrun["iteration"] = json!(i);
            }
            parents.push(json!({"taskrun": taskrun, "outputs": parent_outputs}));
            next = parent.parent_task_run_id.as_deref().and_then(|p| exec.run(p));
            if parents.len() > 1000 {
                break;
            }
        }
        if let Some(first) = parents.first() {
            root.insert("parent".into(), first.clone());
        }
        if !parents.is_empty() {
            root.insert("parents".into(), Value::Array(parents));
        }
    }
    Value::Object(root)
}

/// `outputs.<task>.<field>`; runs of a task inside a loop are keyed by the loop's value as in
/// Kestra (`outputs.task[value].field`), and inside nested loops by each level's value, outermost
/// first (`outputs.task[outer][inner].field`).
pub fn outputs(exec: &Execution) -> Map<String, Value> {
    let mut out = Map::new();
    for run in &exec.task_runs {
        if run.outputs.is_empty() && !run.state.is_terminal() {
            continue;
        }
        let chain = loop_values(exec, run);
        let Some((last, outer)) = chain.split_last() else {
            out.insert(run.task_id.clone(), Value::Object(run.outputs.clone()));
            continue;
        };
        let mut slot = out
            .entry(run.task_id.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        for value in outer {
            let Value::Object(m) = slot else { break };
            slot = m.entry(value.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
        if let Value::Object(m) = slot {
            m.insert(last.clone(), Value::Object(run.outputs.clone()));
        }
    }
    out
}

/// The values of the loop iterations a run is inside (its own included), outermost first.
fn loop_values(exec: &Execution, run: &TaskRun) -> Vec<String> {
    let mut chain = Vec::new();
    let mut cur = Some(run);
    while let Some(r) = cur {
        if r.iteration.is_some()
            && let Some(v) = &r.value
        {
            chain.push(v.clone());
        }
        cur = r.parent_task_run_id.as_deref().and_then(|p| exec.run(p));
    }
    chain.reverse();
    chain
}

/// The ForEach item a run belongs to: its own, or the nearest ancestor's.
fn item_value(exec: &Execution, run: &TaskRun) -> Value {
    let mut cur = Some(run);
    while let Some(r) = cur {
        if let Some(v) = &r.value {
            return Value::String(v.clone());
        }
        cur = r.parent_task_run_id.as_deref().and_then(|p| exec.run(p));
    }
    Value::Null
}

/// Labels with dotted keys nested (`system.username` → `labels.system.username`), keeping the flat key too.
pub fn nested_labels(labels: &BTreeMap<String, String>) -> Value {
    let mut root = Map::new();
    for (k, v) in labels {
        root.insert(k.clone(), Value::String(v.clone()));
    }
    for (k, v) in labels {
        let parts: Vec<&str> = k.split('.').collect();
        if parts.len() < 2 {
            continue;
        }
        let mut cur = &mut root;
        for part in &parts[..parts.len() - 1] {
            let entry = cur.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry {
                Value::Object(m) => cur = m,
                _ => unreachable!("just made an object"),
            }
        }
        cur.insert(parts[parts.len() - 1].to_string(), Value::String(v.clone()));
    }
    Value::Object(root)
}

/// Milliseconds since the epoch as an ISO-8601 UTC timestamp, as Kestra prints dates.
pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
