//! Execution detail: summary, what it waits for, task runs as a tree, inputs and outputs.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use serde_json::Value;
use tollgate_proto::v1 as pb;

use super::super::app::{App, DetailState};
use super::super::exec_store::{approved_by_text, may_decide};
use super::super::theme::Theme;
use super::super::time_fmt;
use super::{pad, title, wrap_text};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, d: &DetailState) {
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let t = app.theme;
    let state = d.exec.as_ref().map(|e| e.state.as_str()).unwrap_or("");
    title(frame, head, t, &format!("Execution {}", d.id), state);
    let lines: Vec<Line> = match (&d.exec, &d.error) {
        (_, Some(err)) => vec![Line::from(Span::styled(format!(" {err}"), t.error()))],
        (None, None) => vec![Line::from(Span::styled(" Loading…", t.dim()))],
        (Some(e), None) => lines(e, app.now_ms, t, body.width as usize, app.whoami.as_ref()),
    };
    let height = body.height as usize;
    d.scroll.max.set(lines.len().saturating_sub(height));
    d.scroll.page.set(height.max(1));
    let top = d.scroll.top.min(d.scroll.max.get());
    let shown: Vec<Line> = lines.into_iter().skip(top).take(height).collect();
    frame.render_widget(Paragraph::new(shown), body);
}

fn field(t: Theme, name: &str, value: Span<'static>) -> Line<'static> {
    Line::from(vec![Span::styled(format!(" {:<10}", name), t.heading()), value])
}

/// Pretty JSON, one line per row, indented; `{}`/`null` become nothing.
fn json_lines(text: &str, indent: usize) -> Vec<Line<'static>> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if text.trim().is_empty() => return vec![],
        Err(_) => return vec![Line::from(format!("{}{text}", " ".repeat(indent)))],
    };
    match &value {
        Value::Null => return vec![],
        Value::Object(m) if m.is_empty() => return vec![],
        _ => {}
    }
    serde_json::to_string_pretty(&value)
        .unwrap_or_default()
        .lines()
        .map(|l| Line::from(format!("{}{l}", " ".repeat(indent))))
        .collect()
}

fn lines(
    e: &pb::Execution,
    now: i64,
    t: Theme,
    width: usize,
    whoami: Option<&(String, Vec<String>)>,
) -> Vec<Line<'static>> {
    let mut out = vec![
        field(
            t,
            "flow",
            Span::raw(format!("{}.{} (revision {})", e.namespace, e.flow_id, e.flow_revision)),
        ),
        field(t, "state", Span::styled(e.state.clone(), t.state(&e.state))),
        field(
            t,
            "started",
            Span::raw(format!(
                "{}{}",
                time_fmt::utc(e.created_ms),
                if e.started_by.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", e.started_by)
                }
            )),
        ),
    ];
    if e.ended_ms > 0 {
        out.push(field(
            t,
            "ended",
            Span::raw(format!(
                "{} (took {})",
                time_fmt::utc(e.ended_ms),
                time_fmt::duration(e.ended_ms - e.created_ms)
            )),
        ));
    }
    if !e.labels.is_empty() {
        let mut labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        out.push(field(t, "labels", Span::raw(labels.join(", "))));
    }
    if !e.parent_execution_id.is_empty() {
        out.push(field(t, "parent", Span::raw(e.parent_execution_id.clone())));
    }
    for p in &e.pauses {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(
            format!(
                " Waiting at `{}` for {} (since {})",
                p.task_id,
                time_fmt::duration(now - p.since_ms),
                time_fmt::utc(p.since_ms)
            ),
            t.state("PAUSED"),
        )));
        if p.expires_ms > 0 {
            out.push(Line::from(format!(
                "   expires {} then {}",
                time_fmt::utc(p.expires_ms),
                if p.behavior.is_empty() { "RESUME" } else { &p.behavior }
            )));
        }
        if let Some(run) = e.task_runs.iter().find(|r| r.id == p.task_run_id)
            && let Some((text, breached)) = sla_text(run, now)
        {
            out.extend(wrap_text(
                &text,
                "   ",
                width,
                if breached { t.error() } else { t.plain() },
            ));
        }
        if !p.assignee_users.is_empty() || !p.assignee_groups.is_empty() || p.approvals_required > 0 {
            out.push(Line::from(format!("   {}", approvers_text(p))));
        }
        if !p.on_resume.is_empty() {
            let inputs: Vec<String> = p
                .on_resume
                .iter()
                .map(|i| format!("{}{} ({})", i.id, if i.required { "*" } else { "" }, i.r#type))
                .collect();
            out.extend(wrap_text(
                &format!("asks for {} — press r to decide", inputs.join(", ")),
                "   ",
                width,
                t.plain(),
            ));
        } else {
            out.push(Line::from("   no inputs — press r to resume"));
        }
        // Say up front when the viewer is outside a HumanTask's assignment (r would be refused).
        if let Some((user, groups)) = whoami
            && !may_decide(
                &p.assignee_users,
                &p.assignee_groups,
                p.approvals_required,
                user,
                groups,
            )
        {
            out.extend(wrap_text(
                &format!("you ({user}) are not among the approvers: resuming will be refused"),
                "   ",
                width,
                t.error(),
            ));
        }
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(" Task runs", t.heading())));
    out.extend(task_tree(e, now, t, width));
    let resumed: Vec<Line> = e
        .task_runs
        .iter()
        .flat_map(|r| {
            // A gate decided after its sla says so next to its decisions (a waiting one says it above).
            let late: Vec<Line> = if r.state != "PAUSED" && r.sla_breached_ms > 0 {
                sla_text(r, now)
                    .map(|(text, _)| wrap_text(&format!("`{}` {text}", r.task_id), "   ", width, t.error()))
                    .unwrap_or_default()
            } else {
                vec![]
            };
            if r.decisions.is_empty() {
                let mut lines = resumed_line(r, t, width);
                lines.extend(late);
                return lines;
            }
            // Every approval with its comment, every rejection with its reason.
            r.decisions
                .iter()
                .flat_map(|d| {
                    let who = if d.on_behalf_of.is_empty() {
                        d.by.clone()
                    } else {
                        format!("{} for {}", d.by, d.on_behalf_of)
                    };
                    let verb = if d.rejected { "rejected" } else { "approved" };
                    let comment = if d.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", d.comment)
                    };
                    let line = format!("`{}` {verb} by {who} on {}{comment}", r.task_id, time_fmt::utc(d.on_ms));
                    let style = if d.rejected { t.error() } else { t.plain() };
                    wrap_text(&line, "   ", width, style)
                })
                .chain(late)
                .collect()
        })
        .collect();
    if !resumed.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(" Decisions", t.heading())));
        out.extend(resumed);
    }
    let inputs = json_lines(&e.inputs_json, 3);
    if !inputs.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(" Inputs", t.heading())));
        out.extend(inputs);
    }
    let mut outputs = Vec::new();
    for r in &e.task_runs {
        let o = json_lines(&r.outputs_json, 5);
        if !o.is_empty() {
            outputs.push(Line::from(Span::styled(format!("   {}", r.task_id), t.focus())));
            outputs.extend(o);
        }
    }
    if !outputs.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(" Task outputs", t.heading())));
        out.extend(outputs);
    }
    let flow_outputs = json_lines(&e.outputs_json, 3);
    if !flow_outputs.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(" Outputs", t.heading())));
        out.extend(flow_outputs);
    }
    out
}

/// "approvers: alice, @ops — 1 of 2 approvals (approved by bob)".
pub(super) fn approvers_text(p: &pb::PauseInfo) -> String {
    let who: Vec<String> = p
        .assignee_users
        .iter()
        .cloned()
        .chain(p.assignee_groups.iter().map(|g| format!("@{g}")))
        .collect();
    let mut s = format!(
        "approvers: {}",
        if who.is_empty() {
            "anyone allowed to resume".into()
        } else {
            who.join(", ")
        }
    );
    if p.approvals_required > 0 {
        s.push_str(&format!(
            " — {} of {} approvals",
            p.approved_by.len(),
            p.approvals_required
        ));
        if !p.approved_by.is_empty() {
            s.push_str(&format!(
                " (approved by {})",
                approved_by_text(&p.approved_by, &p.approved_on_behalf_of)
            ));
        }
    }
    s
}

/// Task runs nested under their parents, with state, duration and attempt.
/// A gate's `sla`: when the decision is due, or that it was breached; `true` when breached.
fn sla_text(r: &pb::TaskRun, now: i64) -> Option<(String, bool)> {
    if r.sla_breached_ms > 0 {
        let due = if r.sla_due_ms > 0 {
            format!(" (due {})", time_fmt::utc(r.sla_due_ms))
        } else {
            String::new()
        };
        return Some((
            format!(
                "SLA breached: still undecided at {}{due}",
                time_fmt::utc(r.sla_breached_ms)
            ),
            true,
        ));
    }
    if r.sla_due_ms <= 0 || r.state != "PAUSED" {
        return None;
    }
    Some(if now > r.sla_due_ms {
        (
            format!(
                "SLA: decision was due {} ({} ago)",
                time_fmt::utc(r.sla_due_ms),
                time_fmt::duration(now - r.sla_due_ms)
            ),
            true,
        )
    } else {
        (
            format!(
                "SLA: decide by {} (in {})",
                time_fmt::utc(r.sla_due_ms),
                time_fmt::duration(r.sla_due_ms - now)
            ),
            false,
        )
    })
}

fn task_tree(e: &pb::Execution, now: i64, t: Theme, width: usize) -> Vec<Line<'static>> {
    let mut children: HashMap<&str, Vec<&pb::TaskRun>> = HashMap::new();
    for r in &e.task_runs {
        children.entry(r.parent_task_run_id.as_str()).or_default().push(r);
    }
    // Runs whose parent is unknown are shown at the top level rather than lost.
    let known: std::collections::HashSet<&str> = e.task_runs.iter().map(|r| r.id.as_str()).collect();
    let roots: Vec<&pb::TaskRun> = e
        .task_runs
        .iter()
        .filter(|r| r.parent_task_run_id.is_empty() || !known.contains(r.parent_task_run_id.as_str()))
        .collect();
    // The name column fits the longest name (with its tree prefix), within what the width allows.
    fn longest(runs: &[&pb::TaskRun], children: &HashMap<&str, Vec<&pb::TaskRun>>, depth: usize) -> usize {
        runs.iter()
            .map(|r| {
                let own = depth * 3
                    + 3
                    + r.task_id.chars().count()
                    + if r.value.is_empty() {
                        0
                    } else {
                        r.value.chars().count() + 3
                    };
                let kids = match children.get(r.id.as_str()) {
                    Some(k) if depth < 32 => longest(k, children, depth + 1),
                    _ => 0,
                };
                own.max(kids)
            })
            .max()
            .unwrap_or(0)
    }
    let name_width = longest(&roots, &children, 0).clamp(12, width.saturating_sub(32).max(12));
    let mut out = Vec::new();
    fn walk(
        runs: &[&pb::TaskRun],
        prefix: &str,
        children: &HashMap<&str, Vec<&pb::TaskRun>>,
        out: &mut Vec<Line<'static>>,
        ctx: (i64, Theme, usize),
        depth: usize,
    ) {
        let (now, t, name_width) = ctx;
        for (i, r) in runs.iter().enumerate() {
            let last = i + 1 == runs.len();
            let branch = if last { "└─ " } else { "├─ " };
            let mut name = r.task_id.clone();
            if !r.value.is_empty() {
                name.push_str(&format!(" [{}]", r.value));
            }
            let end = if r.ended_ms > 0 { r.ended_ms } else { now };
            let took = if r.started_ms > 0 {
                time_fmt::run_duration(end - r.started_ms)
            } else {
                "-".into()
            };
            let label = pad(&format!("{prefix}{branch}{name}"), name_width);
            out.push(Line::from(vec![
                Span::raw(format!("   {label} ")),
                Span::styled(pad(&r.state, 9), t.state(&r.state)),
                Span::raw(format!(" {:>7}  #{}", took, r.attempt.max(1))),
            ]));
            if depth < 32
                && let Some(kids) = children.get(r.id.as_str())
            {
                let next = format!("{prefix}{}", if last { "   " } else { "│  " });
                walk(kids, &next, children, out, ctx, depth + 1);
            }
        }
    }
    walk(&roots, "", &children, &mut out, (now, t, name_width), 0);
    if out.is_empty() {
        out.push(Line::from(Span::styled("   (none yet)", t.dim())));
    }
    out
}

/// A resume without a recorded decision (a timer's, or one from before decisions were kept).
fn resumed_line(r: &pb::TaskRun, t: Theme, width: usize) -> Vec<Line<'static>> {
    (|| {
        let outputs: Value = serde_json::from_str(&r.outputs_json).ok()?;
        let by = outputs.get("resumed")?;
        let text = |k: &str| {
            by.get(k)
                .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                .unwrap_or_else(|| "?".into())
        };
        let values = outputs
            .get("onResume")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "{}".into());
        let line = format!(
            "`{}` by {} on {} → {} with {values}",
            r.task_id,
            text("by"),
            text("on"),
            text("to")
        );
        Some(wrap_text(&line, "   ", width, t.plain()))
    })()
    .unwrap_or_default()
}
