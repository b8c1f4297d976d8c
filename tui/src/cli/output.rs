//! Printing results: readable ASCII tables, or JSON named as Kestra's API names things.

use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

/// Parses a JSON text field from the API; empty text is `{}`.
pub fn parse_json(text: &str) -> Value {
    if text.is_empty() {
        json!({})
    } else {
        serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
    }
}

pub fn iso(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// An execution as `-o json` prints it.
/// An approval (with its comment) or a rejection (with its reason).
pub fn decision_json(d: &pb::Decision) -> Value {
    json!({
        "by": d.by,
        "onBehalfOf": if d.on_behalf_of.is_empty() { Value::Null } else { Value::String(d.on_behalf_of.clone()) },
        "date": iso(d.on_ms),
        "decision": if d.rejected { "REJECTED" } else { "APPROVED" },
        "comment": d.comment,
    })
}

/// "bob for ana" when a delegate decided, else "bob".
pub fn who(by: &str, on_behalf_of: &str) -> String {
    if on_behalf_of.is_empty() {
        by.to_string()
    } else {
        format!("{by} for {on_behalf_of}")
    }
}

pub fn execution_json(e: &pb::Execution) -> Value {
    json!({
        "id": e.id,
        "namespace": e.namespace,
        "flowId": e.flow_id,
        "flowRevision": e.flow_revision,
        "state": e.state,
        "labels": e.labels,
        "inputs": parse_json(&e.inputs_json),
        "outputs": parse_json(&e.outputs_json),
        "startedBy": e.started_by,
        "trigger": if e.trigger_json.is_empty() { Value::Null } else { parse_json(&e.trigger_json) },
        "startDate": iso(e.created_ms),
        "endDate": if e.ended_ms > 0 { Value::String(iso(e.ended_ms)) } else { Value::Null },
        "parentExecutionId": if e.parent_execution_id.is_empty() { Value::Null } else { Value::String(e.parent_execution_id.clone()) },
        "taskRuns": e.task_runs.iter().map(|t| json!({
            "id": t.id,
            "taskId": t.task_id,
            "parentTaskRunId": if t.parent_task_run_id.is_empty() { Value::Null } else { Value::String(t.parent_task_run_id.clone()) },
            "value": if t.value.is_empty() { Value::Null } else { Value::String(t.value.clone()) },
            "state": t.state,
            "outputs": parse_json(&t.outputs_json),
            "metrics": if t.metrics_json.is_empty() { json!([]) } else { parse_json(&t.metrics_json) },
            "attempt": t.attempt,
            "sla": if t.sla_due_ms > 0 {
                json!({"due": iso(t.sla_due_ms), "breached": t.sla_breached_ms > 0, "breachedAt": if t.sla_breached_ms > 0 { Value::String(iso(t.sla_breached_ms)) } else { Value::Null }})
            } else { Value::Null },
            "attempts": t.attempts.iter().map(|a| json!({
                "state": a.state,
                "startDate": iso(a.started_ms),
                "endDate": if a.ended_ms > 0 { Value::String(iso(a.ended_ms)) } else { Value::Null },
            })).collect::<Vec<_>>(),
            "nextAttempt": if t.next_attempt_ms > 0 { Value::String(iso(t.next_attempt_ms)) } else { Value::Null },
            "iteration": t.iteration,
            "decisions": t.decisions.iter().map(decision_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "pauses": e.pauses.iter().map(|p| json!({
            "taskRunId": p.task_run_id,
            "taskId": p.task_id,
            "since": iso(p.since_ms),
            "expires": if p.expires_ms > 0 { Value::String(iso(p.expires_ms)) } else { Value::Null },
            "onResume": p.on_resume.iter().map(|i| json!({"id": i.id, "type": i.r#type, "required": i.required, "values": i.values})).collect::<Vec<_>>(),
            "assignment": {"users": p.assignee_users, "groups": p.assignee_groups},
            "approvalsRequired": p.approvals_required,
            "approvedBy": p.approved_by,
            "approvedOnBehalfOf": p.approved_on_behalf_of,
            "rejectionReasonRequired": p.rejection_reason_required,
        })).collect::<Vec<_>>(),
    })
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Keeps output ASCII-safe: non-ASCII characters become `?` only where terminals may choke (control chars).
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A plain table: columns padded to their widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    for row in rows {
        line(row.iter().map(|c| clean(c)).collect(), &mut out);
    }
    out
}

/// "3m12s"-style age of a timestamp.
pub fn age(since_ms: i64, now_ms: i64) -> String {
    if since_ms <= 0 {
        return String::new();
    }
    let s = ((now_ms - since_ms).max(0) / 1000) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(1000, 1000 + 59_000), "59s");
        assert_eq!(age(1000, 1000 + 192_000), "3m12s");
        assert_eq!(age(1000, 1000 + 3_600_000 * 26), "1d02h");
        assert_eq!(age(0, 5), "");
    }

    #[test]
    fn table_pads_columns() {
        let t = table(&["ID", "STATE"], &[vec!["abc".into(), "PAUSED".into()]]);
        assert_eq!(t, "ID   STATE\nabc  PAUSED\n");
    }
}
