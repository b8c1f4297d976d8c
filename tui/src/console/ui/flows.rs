//! The flows screen (list) and a flow's source with simple YAML highlighting.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::super::app::{App, FlowSourceState};
use super::super::theme::Theme;
use super::title;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let f = &app.flows;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    title(
        frame,
        head,
        t,
        &format!("Flows ({})", f.flows.len()),
        "enter source · s start",
    );
    let empty = super::list_placeholder(
        &f.state,
        f.flows.is_empty(),
        t,
        [
            "Could not list flows: ",
            "Loading flows…",
            "No flows yet. Apply one with `tollgate flow apply FILE.yaml`.",
        ],
    );
    if let Some((text, style)) = empty {
        frame.render_widget(Paragraph::new(text).style(style).wrap(Wrap { trim: false }), body);
        return;
    }
    let height = body.height.saturating_sub(1) as usize;
    f.page.set(height.max(1));
    let offset = super::follow_cursor(&f.offset, f.cursor, height);
    let wide = area.width >= 100;
    let rows: Vec<Row> = f
        .flows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, flow)| {
            let mut cells = vec![
                Cell::from(flow.namespace.clone()),
                Cell::from(flow.id.clone()),
                Cell::from(flow.revision.to_string()),
                Cell::from(flow.inputs.len().to_string()),
            ];
            if wide {
                cells.push(Cell::from(if flow.disabled { "disabled" } else { "" }));
            }
            cells.push(Cell::from(flow.description.lines().next().unwrap_or("").to_string()));
            Row::new(cells).style(if i == f.cursor { t.cursor() } else { t.plain() })
        })
        .collect();
    let mut widths = vec![
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(3),
        Constraint::Length(6),
    ];
    let mut header = vec!["NAMESPACE", "FLOW", "REV", "INPUTS"];
    if wide {
        widths.push(Constraint::Length(8));
        header.push("");
    }
    widths.push(Constraint::Fill(4));
    header.push("DESCRIPTION");
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.heading()))
        .column_spacing(1);
    frame.render_widget(table, body);
}

/// One YAML line with keys, comments, strings and task types told apart.
pub(crate) fn yaml_line(line: &str, t: Theme) -> Line<'static> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    if trimmed.starts_with('#') {
        return Line::from(Span::styled(line.to_string(), t.yaml_comment()));
    }
    let (dash, rest) = match trimmed.strip_prefix("- ") {
        Some(r) => ("- ", r),
        None => ("", trimmed),
    };
    let mut spans = vec![Span::raw(format!("{indent}{dash}"))];
    // `key: value` where the key is a plain word (not inside a quoted string or a template).
    let key_end = rest.find(": ").or_else(|| rest.strip_suffix(':').map(|k| k.len()));
    match key_end {
        Some(k) if !rest[..k].contains(['"', '\'', '{', ' ']) => {
            let key = &rest[..k];
            let value = rest[k + 1..].to_string();
            spans.push(Span::styled(format!("{key}:"), t.yaml_key()));
            let v = value.trim_start();
            let style = if key == "type" {
                t.yaml_type()
            } else if v.starts_with(['"', '\'']) || v.starts_with("{{") {
                t.yaml_string()
            } else {
                t.plain()
            };
            spans.push(Span::styled(value, style));
        }
        _ => {
            let style = if rest.starts_with(['"', '\'']) {
                t.yaml_string()
            } else {
                t.plain()
            };
            spans.push(Span::styled(rest.to_string(), style));
        }
    }
    Line::from(spans)
}

pub fn draw_source(frame: &mut Frame, area: Rect, app: &App, s: &FlowSourceState) {
    let t = app.theme;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let rev = s
        .flow
        .as_ref()
        .map(|f| format!("revision {}", f.revision))
        .unwrap_or_default();
    title(frame, head, t, &format!("Flow {}.{}", s.namespace, s.id), &rev);
    let lines: Vec<Line> = match (&s.flow, &s.error) {
        (_, Some(e)) => vec![Line::from(Span::styled(format!(" {e}"), t.error()))],
        (None, None) => vec![Line::from(Span::styled(" Loading…", t.dim()))],
        (Some(f), None) => {
            let digits = f.source.lines().count().max(1).to_string().len();
            f.source
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    let mut line = yaml_line(l, t);
                    line.spans
                        .insert(0, Span::styled(format!("{:>digits$} ", i + 1), t.dim()));
                    line
                })
                .collect()
        }
    };
    let height = body.height as usize;
    s.scroll.max.set(lines.len().saturating_sub(height));
    s.scroll.page.set(height.max(1));
    let top = s.scroll.top.min(s.scroll.max.get());
    frame.render_widget(
        Paragraph::new(lines.into_iter().skip(top).take(height).collect::<Vec<_>>()),
        body,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_types_and_comments() {
        let t = Theme::COLOR;
        let l = yaml_line("  - id: hello", t);
        assert_eq!(l.to_string(), "  - id: hello");
        assert_eq!(l.spans[1].style, t.yaml_key());
        let ty = yaml_line("    type: io.kestra.plugin.core.log.Log", t);
        assert_eq!(ty.spans[2].style, t.yaml_type());
        let c = yaml_line("# note", t);
        assert_eq!(c.spans[0].style, t.yaml_comment());
        let s = yaml_line("message: \"{{ inputs.x }}: done\"", t);
        assert_eq!(s.spans[1].content, "message:");
    }
}
