//! The audit screen: newest records first, with the user/execution filters shown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::super::app::App;
use super::super::time_fmt;
use super::title;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let a = &app.audit;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let mut filters = Vec::new();
    if !a.user.is_empty() {
        filters.push(format!("user {}", a.user));
    }
    if !a.execution_id.is_empty() {
        filters.push(format!("execution {}", a.execution_id));
    }
    let right = if filters.is_empty() {
        "all records".to_string()
    } else {
        filters.join(" · ")
    };
    title(frame, head, t, &format!("Audit ({})", a.records.len()), &right);
    let empty = super::list_placeholder(
        &a.state,
        a.records.is_empty(),
        t,
        ["", "Loading the audit log…", "No audit records match."],
    );
    if let Some((text, style)) = empty {
        frame.render_widget(Paragraph::new(text).style(style).wrap(Wrap { trim: false }), body);
        return;
    }
    let height = body.height.saturating_sub(1) as usize;
    a.page.set(height.max(1));
    let offset = super::follow_cursor(&a.offset, a.cursor, height);
    let wide = area.width >= 100;
    let rows: Vec<Row> = a
        .records
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, r)| {
            let result_style = if r.result.is_empty() || r.result.eq_ignore_ascii_case("ok") {
                t.ok()
            } else {
                t.error()
            };
            let mut cells = vec![
                Cell::from(time_fmt::utc(r.time_ms)),
                Cell::from(r.user.clone()),
                Cell::from(r.action.clone()),
                Cell::from(Span::styled(r.result.clone(), result_style)),
            ];
            if wide {
                cells.push(Cell::from(r.execution_id.clone()));
            }
            let mut what = format!("{}.{}", r.namespace, r.flow_id);
            if !r.task_id.is_empty() {
                what.push_str(&format!(" / {}", r.task_id));
            }
            if !r.values_json.is_empty() && r.values_json != "{}" {
                what.push_str(&format!(" {}", r.values_json));
            }
            if !r.reason.is_empty() {
                what.push_str(&format!(" — {}", r.reason));
            }
            cells.push(Cell::from(what));
            Row::new(cells).style(if i == a.cursor { t.cursor() } else { t.plain() })
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(20),
        Constraint::Fill(2),
        Constraint::Length(10),
        Constraint::Length(8),
    ];
    let mut header = vec!["TIME", "USER", "ACTION", "RESULT"];
    if wide {
        widths.push(Constraint::Length(22));
        header.push("EXECUTION");
    }
    widths.push(Constraint::Fill(4));
    header.push("DETAIL");
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.heading()))
        .column_spacing(1);
    frame.render_widget(table, body);
}
