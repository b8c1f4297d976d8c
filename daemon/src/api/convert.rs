//! Domain → wire translation. Secrets are masked here, on the way out.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tollgate_proto::v1 as pb;

use crate::engine::advance::mask_value;
use crate::engine::execution::PauseState;
use crate::engine::{Execution, ExecutionSummary, LogLine, TaskRun};
use crate::flow::{Flow, TaskKind};
use crate::inputs::{InputDef, InputType};

const MASK: &str = "******";

pub fn input_spec(d: &InputDef) -> pb::InputSpec {
    let bound = |v: &Option<Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    pb::InputSpec {
        id: d.id.clone(),
        r#type: d.input_type.as_str().to_string(),
        display_name: d.display_name.clone().or_else(|| d.name.clone()).unwrap_or_default(),
        description: d.description.clone().unwrap_or_default(),
        required: d.required,
        default_json: d.form_start().as_ref().map(|v| {
            if d.input_type == InputType::Secret {
                Value::String(MASK.into()).to_string()
            } else {
                v.to_string()
            }
        }),
        values: d.choices(),
        allow_custom_value: d.allow_custom_value,
        validator: d.validator.clone().unwrap_or_default(),
        min: bound(&d.min),
        max: bound(&d.max),
        after: d.after.clone().unwrap_or_default(),
        before: d.before.clone().unwrap_or_default(),
        item_type: d.item_type.map(|t| t.as_str().to_string()).unwrap_or_default(),
        depends_on: d.depends_on.as_ref().map(|x| x.inputs.clone()).unwrap_or_default(),
        depends_on_condition: d
            .depends_on
            .as_ref()
            .and_then(|x| x.condition.clone())
            .unwrap_or_default(),
    }
}

/// Fingerprint of a pause's form: pauses with equal `onResume` definitions can share one form.
pub fn form_key(defs: &[InputDef]) -> String {
    let text = serde_json::to_string(defs).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn masked_inputs(exec: &Execution) -> Map<String, Value> {
    exec.inputs
        .iter()
        .map(|(k, v)| {
            let v = if exec.secret_inputs.contains(k) && !v.is_null() {
                Value::String(MASK.into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// Secret values that must not leave the daemon: SECRET inputs (`secret()` results are masked
/// before they are stored).
fn secrets_of(exec: &Execution) -> Vec<String> {
    let mut s = Vec::new();
    for id in &exec.secret_inputs {
        if let Some(Value::String(v)) = exec.inputs.get(id) {
            s.push(v.clone());
        }
    }
    s
}

fn task_run(r: &TaskRun, secrets: &[String], secret_resume_ids: &[String]) -> pb::TaskRun {
    let mut outputs = mask_value(&Value::Object(r.outputs.clone()), secrets);
    // SECRET onResume values are masked by id: they never reach a client.
    if let Some(Value::Object(on_resume)) = outputs.get_mut("onResume") {
        for id in secret_resume_ids {
            if let Some(v) = on_resume.get_mut(id)
                && !v.is_null()
            {
                *v = Value::String(MASK.into());
            }
        }
    }
    pb::TaskRun {
        id: r.id.clone(),
        task_id: r.task_id.clone(),
        parent_task_run_id: r.parent_task_run_id.clone().unwrap_or_default(),
        value: r.value.clone().unwrap_or_default(),
        state: r.state.as_str().to_string(),
        outputs_json: json_text(&outputs),
        metrics_json: if r.metrics.is_empty() {
            String::new()
        } else {
            json_text(&Value::Array(r.metrics.clone()))
        },
        attempt: r.attempt,
        started_ms: r.started_ms,
        ended_ms: r.ended_ms.unwrap_or(0),
        task_type: r.task_type.clone(),
        sla_due_ms: r.pause.as_ref().and_then(|p| p.sla_due_ms).unwrap_or(0),
        sla_breached_ms: r.pause.as_ref().and_then(|p| p.sla_breached_ms).unwrap_or(0),
        attempts: r
            .attempts
            .iter()
            .map(|a| pb::TaskRunAttempt {
                state: a.state.as_str().to_string(),
                started_ms: a.started_ms,
                ended_ms: a.ended_ms.unwrap_or(0),
            })
            .collect(),
        next_attempt_ms: r.next_attempt_ms.unwrap_or(0),
        iteration: r.loop_iteration,
        decisions: r
            .pause
            .as_ref()
            .map(|p| {
                p.approvals
                    .iter()
                    .map(|a| pb::Decision {
                        by: a.by.clone(),
                        on_behalf_of: a.on_behalf_of.clone(),
                        on_ms: a.on_ms,
                        comment: a.reason.clone(),
                        rejected: a.rejected,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What an execution's wire form takes from its flow alone: worked out once per flow for a
/// listed page (a page of 1,000 paused executions of one flow would otherwise serialize and
/// hash the same pause form 1,000 times).
pub struct FlowForms {
    secret_resume_ids: Vec<String>,
    /// Pause task id -> its form (`onResume` specs) and the form's fingerprint.
    pauses: std::collections::HashMap<String, (Vec<pb::InputSpec>, String)>,
}

impl FlowForms {
    pub fn of(flow: &Flow) -> FlowForms {
        let mut secret_resume_ids = Vec::new();
        let mut pauses = std::collections::HashMap::new();
        for t in flow.all_tasks() {
            if let TaskKind::Pause(p) = &t.kind {
                secret_resume_ids.extend(
                    p.on_resume
                        .iter()
                        .filter(|d| d.input_type == InputType::Secret)
                        .map(|d| d.id.clone()),
                );
                // The first task of an id, as `Flow::find_task` finds it.
                pauses
                    .entry(t.id.clone())
                    .or_insert_with(|| (p.on_resume.iter().map(input_spec).collect(), form_key(&p.on_resume)));
            }
        }
        FlowForms {
            secret_resume_ids,
            pauses,
        }
    }
}

/// An execution as clients see it; `flow` (the revision it runs) adds pause forms.
pub fn execution(exec: &Execution, flow: Option<&Flow>) -> pb::Execution {
    let forms = flow.map(FlowForms::of);
    execution_with(exec, flow.zip(forms.as_ref()))
}

/// [`execution`] with the flow's forms already worked out ([`FlowForms::of`] of that flow).
pub fn execution_with(exec: &Execution, flow: Option<(&Flow, &FlowForms)>) -> pb::Execution {
    let secrets = secrets_of(exec);
    let mut pauses = Vec::new();
    let mut secret_resume_ids: &[String] = &[];
    if let Some((flow, forms)) = flow {
        secret_resume_ids = &forms.secret_resume_ids;
        let runs = exec
            .paused_runs()
            .map(|r| (r.id.as_str(), r.task_id.as_str(), r.pause.as_ref()));
        pauses = pause_infos(runs, flow, forms, true);
    }
    pb::Execution {
        id: exec.id.clone(),
        namespace: exec.namespace.clone(),
        flow_id: exec.flow_id.clone(),
        flow_revision: exec.flow_revision,
        state: exec.state.as_str().to_string(),
        labels: exec.labels.clone().into_iter().collect(),
        inputs_json: json_text(&Value::Object(masked_inputs(exec))),
        task_runs: exec
            .task_runs
            .iter()
            .map(|r| task_run(r, &secrets, secret_resume_ids))
            .collect(),
        created_ms: exec.created_ms,
        ended_ms: exec.ended_ms.unwrap_or(0),
        outputs_json: json_text(&mask_value(&Value::Object(exec.outputs.clone()), &secrets)),
        pauses,
        started_by: exec.started_by.clone(),
        parent_execution_id: exec.parent.as_ref().map(|p| p.execution_id.clone()).unwrap_or_default(),
        updated_ms: exec.updated_ms,
        trigger_json: exec.trigger.as_ref().map(json_text).unwrap_or_default(),
    }
}

/// The pauses of paused task runs (id, task id, pause state) of an execution of `flow`; with
/// `with_form` each carries its `onResume` specs, else only their form key.
fn pause_infos<'a>(
    runs: impl Iterator<Item = (&'a str, &'a str, Option<&'a PauseState>)>,
    flow: &Flow,
    forms: &FlowForms,
    with_form: bool,
) -> Vec<pb::PauseInfo> {
    let none = PauseState::default();
    let mut pauses = Vec::new();
    for (run_id, task_id, state) in runs {
        let Some(task) = flow.find_task(task_id) else {
            continue;
        };
        let TaskKind::Pause(p) = &task.kind else {
            continue;
        };
        let Some((on_resume, form_key)) = forms.pauses.get(&task.id) else {
            continue;
        };
        let state = state.unwrap_or(&none);
        let human = p.human.as_ref();
        pauses.push(pb::PauseInfo {
            task_run_id: run_id.to_string(),
            task_id: task_id.to_string(),
            since_ms: state.since_ms,
            expires_ms: state.expires_ms.unwrap_or(0),
            on_resume: if with_form { on_resume.clone() } else { Vec::new() },
            assignee_users: state.users.clone(),
            assignee_groups: state.groups.clone(),
            approvals_required: human.map(|h| h.approvals).unwrap_or(0),
            approved_by: state.approvals.iter().map(|a| a.by.clone()).collect(),
            approved_on_behalf_of: state.approvals.iter().map(|a| a.on_behalf_of.clone()).collect(),
            behavior: p.behavior.as_str().to_string(),
            form_key: form_key.clone(),
            escalated_to: state.escalated_to.clone(),
            reminders_sent: state.reminder_count,
            rejection_reason_required: human.is_some_and(|h| h.rejection_reason_required),
        });
    }
    pauses
}

/// The distinct pause forms of a listed page (SUMMARY view), each once.
#[derive(Default)]
pub struct PageForms {
    seen: std::collections::HashSet<String>,
    pub forms: Vec<pb::PauseForm>,
}

/// A list row (SUMMARY view): the summary's fields and its pauses, whose forms go to `page`
/// once per form key instead of into every row.
pub fn execution_summary(
    s: &ExecutionSummary,
    flow: Option<(&Flow, &FlowForms)>,
    page: &mut PageForms,
) -> pb::Execution {
    let mut pauses = Vec::new();
    if let Some((flow, forms)) = flow {
        let runs = s
            .paused_runs()
            .map(|r| (r.id.as_str(), r.task_id.as_str(), r.pause.as_ref()));
        pauses = pause_infos(runs, flow, forms, false);
        for p in &pauses {
            if page.seen.contains(&p.form_key) {
                continue;
            }
            if let Some((on_resume, key)) = forms.pauses.get(&p.task_id) {
                page.seen.insert(key.clone());
                page.forms.push(pb::PauseForm {
                    form_key: key.clone(),
                    on_resume: on_resume.clone(),
                });
            }
        }
    }
    pb::Execution {
        id: s.id.clone(),
        namespace: s.namespace.clone(),
        flow_id: s.flow_id.clone(),
        flow_revision: s.flow_revision,
        state: s.state.as_str().to_string(),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        created_ms: s.created_ms,
        ended_ms: s.ended_ms.unwrap_or(0),
        pauses,
        started_by: s.started_by.clone(),
        parent_execution_id: s.parent.as_ref().map(|p| p.execution_id.clone()).unwrap_or_default(),
        updated_ms: s.updated_ms,
        ..Default::default()
    }
}

pub fn log_line(l: &LogLine) -> pb::LogLine {
    pb::LogLine {
        seq: l.seq,
        execution_id: l.execution_id.clone(),
        task_run_id: l.task_run_id.clone(),
        task_id: l.task_id.clone(),
        level: l.level.clone(),
        message: l.message.clone(),
        time_ms: l.time_ms,
    }
}

/// A resume preview as the API sends it.
pub fn preview(v: &crate::engine::preview::Preview) -> pb::ResumePreview {
    pb::ResumePreview {
        task_id: v.task_id.clone(),
        completes: v.completes,
        approvals_so_far: v.approvals_so_far,
        approvals_required: v.approvals_required,
        state_after: v.state_after.clone(),
        steps: v
            .steps
            .iter()
            .map(|s| pb::PreviewStep {
                task_id: s.task_id.clone(),
                task_type: s.task_type.clone(),
                state: s.state.clone(),
                branch: s.branch.clone().unwrap_or_default(),
                properties_json: if s.properties.is_null() {
                    String::new()
                } else {
                    s.properties.to_string()
                },
                messages: s.messages.clone(),
            })
            .collect(),
    }
}

/// Writes list rows (SUMMARY view) straight into their wire form, each an encoded
/// `pb::Execution` equal to what [`execution_summary`] builds, from a row's borrowed fields:
/// no message, string or map per row. Each distinct pause form goes to the page's forms once per
/// encoder (a stream of pages sends each once).
#[derive(Default)]
pub struct RowsEncoder {
    buf: Vec<u8>,
    /// Where each row ends in `buf`.
    ends: Vec<usize>,
    /// The forms of each distinct flow of this page (keyed by its Arc, which is kept so that the
    /// address cannot be reused by another flow meanwhile).
    flows: std::collections::HashMap<usize, (std::sync::Arc<Flow>, FlowForms)>,
    page: PageForms,
    pause: Vec<u8>,
}

impl RowsEncoder {
    /// The rows and forms written since the last call; the forms already sent stay known.
    pub fn take_page(&mut self) -> (Vec<prost::bytes::Bytes>, Vec<pb::PauseForm>) {
        // The next page is about as large: room for it at once, not by doubling and copying.
        let room = self.buf.len() + self.buf.len() / 8;
        let all = prost::bytes::Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(room)));
        let mut start = 0;
        let rows = self
            .ends
            .drain(..)
            .map(|end| {
                let row = all.slice(start..end);
                start = end;
                row
            })
            .collect();
        self.flows.clear();
        (rows, std::mem::take(&mut self.page.forms))
    }
}

impl crate::ops::RowSink for RowsEncoder {
    fn row(&mut self, row: &crate::engine::RowView<'_>, flow: Option<&std::sync::Arc<Flow>>) {
        let s = &row.summary;
        let b = &mut self.buf;
        pb_str(b, 1, row.id);
        pb_str(b, 2, row.namespace);
        pb_str(b, 3, row.flow_id);
        pb_varint(b, 4, u64::from(s.flow_revision));
        pb_str(b, 5, row.state.as_str());
        for (k, v) in &s.labels.0 {
            // A map entry: a message with the key as field 1 and the value as field 2.
            pb_key(b, 6, prost::encoding::WireType::LengthDelimited);
            prost::encoding::encode_varint((pb_str_len(k) + pb_str_len(v)) as u64, b);
            pb_str(b, 1, k);
            pb_str(b, 2, v);
        }
        pb_varint(b, 9, s.created_ms as u64);
        pb_varint(b, 10, s.ended_ms.unwrap_or(0) as u64);
        if let Some(flow) = flow {
            let key = std::sync::Arc::as_ptr(flow) as usize;
            let (flow, forms) = self
                .flows
                .entry(key)
                .or_insert_with(|| (flow.clone(), FlowForms::of(flow)));
            for run in &s.paused {
                // As pause_infos: runs whose task is not a pause of this revision are left out.
                let Some(task) = flow.find_task(&run.task_id) else {
                    continue;
                };
                let TaskKind::Pause(p) = &task.kind else {
                    continue;
                };
                let Some((on_resume, form_key)) = forms.pauses.get(&task.id) else {
                    continue;
                };
                let human = p.human.as_ref();
                let w = &mut self.pause;
                w.clear();
                pb_str(w, 1, &run.id);
                pb_str(w, 2, &run.task_id);
                if let Some(state) = &run.pause {
                    pb_varint(w, 3, state.since_ms as u64);
                    pb_varint(w, 4, state.expires_ms.unwrap_or(0) as u64);
                    for u in &state.users {
                        pb_str_always(w, 6, u.as_str());
                    }
                    for g in &state.groups {
                        pb_str_always(w, 7, g.as_str());
                    }
                }
                pb_varint(w, 8, u64::from(human.map(|h| h.approvals).unwrap_or(0)));
                if let Some(state) = &run.pause {
                    for (by, _) in &state.approved {
                        pb_str_always(w, 9, by.as_str());
                    }
                }
                pb_str(w, 10, p.behavior.as_str());
                pb_str(w, 11, form_key);
                if let Some(state) = &run.pause {
                    for e in &state.escalated_to {
                        pb_str_always(w, 12, e.as_str());
                    }
                    pb_varint(w, 13, u64::from(state.reminder_count));
                }
                pb_varint(w, 14, u64::from(human.is_some_and(|h| h.rejection_reason_required)));
                if let Some(state) = &run.pause {
                    // Parallel to approved_by: every element, empty ones included.
                    for (_, for_whom) in &state.approved {
                        pb_str_always(w, 15, for_whom.as_str());
                    }
                }
                pb_bytes(b, 12, w);
                if !self.page.seen.contains(form_key.as_str()) {
                    self.page.seen.insert(form_key.clone());
                    self.page.forms.push(pb::PauseForm {
                        form_key: form_key.clone(),
                        on_resume: on_resume.clone(),
                    });
                }
            }
        }
        pb_str(b, 13, &s.started_by);
        pb_str(b, 14, s.parent.as_deref().unwrap_or_default());
        pb_varint(b, 15, s.updated_ms as u64);
        self.ends.push(b.len());
    }
}

/// Protobuf field writers (proto3: a field at its default value is not written).
fn pb_key(b: &mut Vec<u8>, field: u32, wire: prost::encoding::WireType) {
    prost::encoding::encode_key(field, wire, b);
}

fn pb_varint(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        pb_key(b, field, prost::encoding::WireType::Varint);
        prost::encoding::encode_varint(v, b);
    }
}

fn pb_bytes(b: &mut Vec<u8>, field: u32, v: &[u8]) {
    pb_key(b, field, prost::encoding::WireType::LengthDelimited);
    prost::encoding::encode_varint(v.len() as u64, b);
    b.extend_from_slice(v);
}

fn pb_str(b: &mut Vec<u8>, field: u32, v: &str) {
    if !v.is_empty() {
        pb_bytes(b, field, v.as_bytes());
    }
}

/// An element of a repeated string: written even when empty (its position counts).
fn pb_str_always(b: &mut Vec<u8>, field: u32, v: &str) {
    pb_bytes(b, field, v.as_bytes());
}

/// The encoded length of [`pb_str`] with a one-byte key.
fn pb_str_len(v: &str) -> usize {
    if v.is_empty() {
        0
    } else {
        1 + prost::encoding::encoded_len_varint(v.len() as u64) + v.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message;

    use super::*;
    use crate::engine::{IndexRow, State};
    use crate::ops::RowSink;
    use crate::store::ExecutionPart;

    const FLOW: &str = "id: onboard\nnamespace: hr.ops\ntasks:\n  - id: gate\n    type: io.kestra.plugin.ee.flow.HumanTask\n    approvals: 2\n    rejectionReasonRequired: true\n    assignment:\n      users:\n        - ana@example.com\n    onResume:\n      - id: ok\n        type: BOOLEAN\n  - id: plain\n    type: io.kestra.plugin.core.flow.Pause\n";

    /// A row written straight to the wire decodes to the row `execution_summary` builds, from an
    /// index entry and from an execution alike: labels (one escaped in JSON), both pauses, an
    /// approval given in one's own name (its empty `approved_on_behalf_of` kept in place), a
    /// paused run whose task is not a pause of the flow (left out), and no flow at all (no pauses).
    #[test]
    fn a_row_written_to_the_wire_is_the_summary_row() {
        let flow = Arc::new(crate::flow::load(FLOW, "onboard.yaml").expect("flow"));
        let json = r#"{"r":3,"l":{"team":"hr","quote":"say \"hi\""},"c":1000,"u":1100,"e":-5,"b":"ana@example.com","pa":"p1","p":[{"i":"r2","t":"gate","p":{"s":1005,"x":9000,"u":["ana@example.com"],"g":["hr"],"a":[["bob@example.com",""],["cy@example.com","dee@example.com"]],"e":["boss"],"n":2}},{"i":"r3","t":"plain"},{"i":"r4","t":"gone"}]}"#;
        let summary = [b"1".as_slice(), json.as_bytes()].concat();
        let row = IndexRow::from_index("7hQ2", "hr.ops", "onboard", State::Paused, &summary)
            .expect("decodes")
            .expect("a summary this version reads");
        let owned = ExecutionSummary::from_index("7hQ2", "hr.ops", "onboard", State::Paused, &summary)
            .expect("decodes")
            .expect("summary");
        let stored = IndexRow::Stored(Box::new(owned.clone()));
        for (what, flow) in [("with its flow", Some(&flow)), ("without a flow", None)] {
            let mut page = PageForms::default();
            let forms = FlowForms::of(&flow_or_empty(flow));
            let want = execution_summary(&owned, flow.map(|f| (f.as_ref(), &forms)), &mut page);
            for r in [&row, &stored] {
                let mut enc = RowsEncoder::default();
                enc.row(&r.view().expect("view"), flow);
                enc.row(&r.view().expect("view"), flow);
                let (rows, sent) = enc.take_page();
                assert_eq!(rows.len(), 2);
                for bytes in rows {
                    assert_eq!(pb::Execution::decode(bytes).expect("decodes"), want, "{what}");
                }
                // The form once, however many rows share it.
                assert_eq!(sent, page.forms, "{what}");
            }
        }
        let mut enc = RowsEncoder::default();
        enc.row(&row.view().expect("view"), Some(&flow));
        let (_, forms) = enc.take_page();
        assert_eq!(forms.len(), 2, "both pauses' forms: {forms:?}");
        enc.row(&row.view().expect("view"), Some(&flow));
        let (rows, forms) = enc.take_page();
        assert_eq!((rows.len(), forms.len()), (1, 0), "a form is sent once per encoder");
        let decoded = pb::Execution::decode(rows[0].clone()).expect("decodes");
        assert_eq!(decoded.pauses.len(), 2, "{decoded:?}");
        assert_eq!(
            decoded.pauses[0].approved_on_behalf_of,
            vec!["".to_string(), "dee@example.com".into()]
        );
        assert_eq!(decoded.labels["quote"], "say \"hi\"");
    }

    fn flow_or_empty(flow: Option<&Arc<Flow>>) -> Flow {
        match flow {
            Some(f) => f.as_ref().clone(),
            None => crate::flow::load(
                "id: x\nnamespace: x\ntasks:\n  - id: l\n    type: io.kestra.plugin.core.log.Log\n    message: m\n",
                "x.yaml",
            )
            .expect("flow"),
        }
    }
}
