//! The resume form view (and the start form, which shares the form widget).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::super::app::{App, ResumeState, StartState, SubmitStatus};
use super::{form_view, title};

fn status_line(app: &App, status: SubmitStatus, verb: &str) -> Option<Line<'static>> {
    match status {
        SubmitStatus::Editing => None,
        SubmitStatus::Submitting(_) => Some(Line::from(Span::styled(format!(" {verb}…"), app.theme.warn()))),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, r: &ResumeState) {
    let t = app.theme;
    let n = r.targets.len();
    let what = if n == 1 {
        format!("execution {}", r.targets[0].id)
    } else {
        format!("{n} executions")
    };
    let task = if r.task_id.is_empty() {
        String::new()
    } else {
        format!(" · task {}", r.task_id)
    };
    let mut info: Vec<Line> = Vec::new();
    if let Some(p) = &r.pause
        && p.is_human()
    {
        let who = p.assignees();
        let mut s = format!(
            " Approvers: {}",
            if who.is_empty() {
                "(none listed)".to_string()
            } else {
                who
            }
        );
        if p.approvals_required > 0 {
            s.push_str(&format!(
                " — {} of {} approvals",
                p.approved_by.len(),
                p.approvals_required
            ));
            if !p.approved_by.is_empty() {
                s.push_str(&format!(" (approved by {})", p.approved_by_text()));
            }
        }
        info.push(Line::from(s));
        if let Some((user, groups)) = &app.whoami
            && p.may_decide(user, groups)
        {
            info.push(Line::from(Span::styled(format!(" You ({user}) may decide."), t.ok())));
        }
    }
    for note in &r.notes {
        info.push(Line::from(Span::styled(format!(" ! {note}"), t.warn())));
    }
    // `^p`: what approving would do, above the form (nothing was changed).
    for line in &r.preview {
        info.push(Line::from(Span::styled(format!(" {line}"), t.dim())));
    }
    let status = status_line(app, r.status, "Resuming");
    let info_h = info.len() as u16;
    let [head, info_area, form_area, status_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(info_h),
        Constraint::Fill(1),
        Constraint::Length(u16::from(status.is_some())),
    ])
    .areas(area);
    title(
        frame,
        head,
        t,
        &format!("Resume {what} · {}.{}{task}", r.namespace, r.flow_id),
        "",
    );
    frame.render_widget(Paragraph::new(info).wrap(Wrap { trim: false }), info_area);
    form_view::draw(
        frame,
        form_area,
        &r.form,
        t,
        &r.scroll,
        r.status == SubmitStatus::Editing,
    );
    if let Some(s) = status {
        frame.render_widget(Paragraph::new(s), status_area);
    }
}

pub fn draw_start(frame: &mut Frame, area: Rect, app: &App, s: &StartState) {
    let t = app.theme;
    let status = status_line(app, s.status, "Starting");
    let [head, form_area, status_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(u16::from(status.is_some())),
    ])
    .areas(area);
    title(
        frame,
        head,
        t,
        &format!("Start {}.{}", s.namespace, s.flow_id),
        "ctrl-s starts",
    );
    form_view::draw(
        frame,
        form_area,
        &s.form,
        t,
        &s.scroll,
        s.status == SubmitStatus::Editing,
    );
    if let Some(line) = status {
        frame.render_widget(Paragraph::new(line), status_area);
    }
}
