//! The `?` screen: every key of the view it was opened from (the same data as the footer) and a
//! short guide to the common tasks.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::action::{Ctx, bindings};
use super::super::app::{App, HelpState};
use super::{pad, title, wrap_text};

fn view_name(ctx: Ctx) -> &'static str {
    match ctx {
        Ctx::List | Ctx::ListFilter => "executions list",
        Ctx::Detail => "execution detail",
        Ctx::Form { .. } => "form",
        Ctx::BulkResult => "results",
        Ctx::Logs | Ctx::LogsSearch => "logs",
        Ctx::Flows => "flows",
        Ctx::FlowSource => "flow source",
        Ctx::Audit => "audit",
        Ctx::Delegations => "delegations",
        Ctx::Help => "help",
        Ctx::Confirm => "confirmation",
        Ctx::Mismatch => "mixed selection",
    }
}

const GUIDE: &[&str] = &[
    "Decide on many executions at once: mark them with space (a marks every row shown, / narrows the list \
     first), press r for one form, fill it, ctrl-s. The result view lists each execution's outcome; the failed \
     ones stay marked for another try.",
    "Forms: tab and shift-tab move between fields; text fields edit in place; space toggles booleans and \
     checkboxes; ←/→ pick a choice; +/- step numbers; * marks required inputs. Errors appear under the field.",
    "Screens: 1 executions, 2 flows (s starts one), 3 audit. esc goes back, q quits from a screen, ctrl-c quits \
     from anywhere.",
    "Away? D on the executions list shows your delegations; n lets someone decide for you on the days you \
     choose, x ends one now.",
];

pub fn draw(frame: &mut Frame, area: Rect, app: &App, h: &HelpState) {
    let t = app.theme;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    title(frame, head, t, &format!("Help — {}", view_name(h.ctx)), "esc closes");
    let width = body.width as usize;
    let mut entries: Vec<(&str, &str)> = Vec::new();
    for b in bindings(h.ctx) {
        if !entries.contains(&(b.label, b.desc)) {
            entries.push((b.label, b.desc));
        }
    }
    if matches!(h.ctx, Ctx::Form { .. } | Ctx::ListFilter | Ctx::LogsSearch) {
        entries.push(("letters", "type text"));
    }
    // Two columns when there is room, so keys and the guide fit one 80x24 screen.
    let columns = if width >= 76 { 2 } else { 1 };
    let col_width = width / columns;
    let per_column = entries.len().div_ceil(columns);
    let mut lines: Vec<Line> = Vec::new();
    for row in 0..per_column {
        let mut spans = Vec::new();
        for col in 0..columns {
            if let Some((label, desc)) = entries.get(col * per_column + row) {
                spans.push(Span::styled(format!("  {}", pad(label, 10)), t.heading()));
                spans.push(Span::raw(pad(desc, col_width.saturating_sub(12))));
            }
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    for para in GUIDE {
        lines.extend(wrap_text(para, "  ", width.saturating_sub(1), t.dim()));
        lines.push(Line::from(""));
    }
    let height = body.height as usize;
    let top = h.scroll.min(lines.len().saturating_sub(height));
    frame.render_widget(
        Paragraph::new(lines.into_iter().skip(top).take(height).collect::<Vec<_>>()),
        body,
    );
}
