//! Per-id outcomes of a bulk resume or kill, with each execution's live state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};

use super::super::app::{App, BulkResultState, Outcome};
use super::title;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, r: &BulkResultState) {
    let t = app.theme;
    let [head, table_area] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    title(frame, head, t, &format!("{} results: {}", r.title, r.summary()), "");
    let height = table_area.height.saturating_sub(1) as usize;
    let offset = super::follow_cursor(&r.offset, r.cursor, height);
    let wide = area.width >= 100;
    let rows: Vec<Row> = r
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, row)| {
            let exec = app.store.get(&row.id);
            let state = exec.map(|e| e.state.clone()).unwrap_or_default();
            let outcome_style = match row.outcome {
                Outcome::Pending => t.dim(),
                o if o.is_failure() => t.error(),
                _ => t.ok(),
            };
            let mut cells = vec![Cell::from(row.id.clone())];
            if wide {
                cells.push(Cell::from(
                    exec.map(|e| format!("{}.{}", e.namespace, e.flow_id))
                        .unwrap_or_default(),
                ));
            }
            cells.push(Cell::from(Span::styled(row.outcome.text(), outcome_style)));
            cells.push(Cell::from(Span::styled(state.clone(), t.state(&state))));
            cells.push(Cell::from(row.message.clone()));
            let style = if i == r.cursor { t.cursor() } else { t.plain() };
            Row::new(cells).style(style)
        })
        .collect();
    let mut widths = vec![Constraint::Length(22)];
    let mut header = vec!["ID"];
    if wide {
        widths.push(Constraint::Fill(2));
        header.push("FLOW");
    }
    widths.extend([Constraint::Length(16), Constraint::Length(9), Constraint::Fill(3)]);
    header.extend(["OUTCOME", "STATE", "MESSAGE"]);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.heading()))
        .column_spacing(1);
    frame.render_widget(table, table_area);
}
