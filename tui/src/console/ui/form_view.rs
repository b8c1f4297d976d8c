//! Draws a form: one widget per input type, with label, required marker, description, format
//! hint, default, and the error under the field it concerns. Shared by resume and start.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::form::{Field, Form, Widget};
use super::super::input_check::format_hint;
use super::super::theme::Theme;
use super::{wrap_spans, wrap_text};

/// Lines of one field, and where the terminal cursor goes inside them (row, column).
fn field_lines(f: &Field, focused: bool, t: Theme, width: usize) -> (Vec<Line<'static>>, Option<(usize, usize)>) {
    let mut out = Vec::new();
    let marker = if focused { "▶ " } else { "  " };
    let label_style = if focused { t.focus() } else { t.heading() };
    let mut label = vec![Span::styled(format!("{marker}{}", f.label()), label_style)];
    if !f.is_comment {
        label.push(Span::styled(format!("  {}", f.spec.r#type), t.dim()));
    }
    if !f.spec.depends_on.is_empty() {
        label.push(Span::styled(
            format!("  (depends on {})", f.spec.depends_on.join(", ")),
            t.dim(),
        ));
    }
    out.push(Line::from(label));
    let indent = "    ";
    let mut cursor = None;
    let value_style = if focused {
        t.plain().add_modifier(ratatui::style::Modifier::UNDERLINED)
    } else {
        t.plain()
    };
    match &f.widget {
        Widget::Text { input, masked } => {
            let shown = if *masked {
                "•".repeat(input.as_str().chars().count())
            } else {
                input.as_str().to_string()
            };
            if shown.is_empty() && !focused {
                out.push(Line::from(Span::styled(format!("{indent}(empty)"), t.dim())));
            } else {
                let col = if *masked {
                    input.as_str()[..input.cursor()].chars().count()
                } else {
                    input.cursor_column()
                };
                cursor = Some((out.len(), indent.len() + col));
                out.push(Line::from(vec![
                    Span::raw(indent),
                    Span::styled(format!("{shown} "), value_style),
                ]));
            }
        }
        Widget::Number { input, .. } | Widget::Array(input) if input.is_empty() && !focused => {
            out.push(Line::from(Span::styled(format!("{indent}(empty)"), t.dim())));
        }
        Widget::Number { input, .. } | Widget::Array(input) => {
            cursor = Some((out.len(), indent.len() + input.cursor_column()));
            out.push(Line::from(vec![
                Span::raw(indent),
                Span::styled(format!("{} ", input.as_str()), value_style),
            ]));
        }
        Widget::Bool(b) => {
            let (mark, text) = if *b { ("[x]", "true") } else { ("[ ]", "false") };
            out.push(Line::from(vec![
                Span::raw(indent),
                Span::styled(format!("{mark} {text}"), value_style),
            ]));
        }
        Widget::Select { index, custom } => {
            let mut spans = vec![Span::raw(indent.to_string())];
            let mut options: Vec<String> = f.spec.values.clone();
            if f.spec.allow_custom_value {
                options.push(if custom.is_empty() {
                    "other…".into()
                } else {
                    format!("other: {}", custom.as_str())
                });
            }
            for (i, o) in options.iter().enumerate() {
                let chosen = *index == Some(i);
                let text = format!("({}) {o}", if chosen { "•" } else { " " });
                let style = if chosen && focused {
                    t.cursor()
                } else if chosen {
                    t.focus()
                } else {
                    t.plain()
                };
                spans.push(Span::styled(text, style));
                spans.push(Span::raw("  "));
            }
            if index.is_none() {
                spans.push(Span::styled("(none chosen)", t.dim()));
            }
            let rows = wrap_spans(spans, width);
            if f.spec.allow_custom_value && *index == Some(f.spec.values.len()) {
                // Cursor at the end of the custom text, on the last row.
                let last = rows.last().map(|l| l.width()).unwrap_or(0);
                cursor = Some((out.len() + rows.len() - 1, last.saturating_sub(2)));
            }
            out.extend(rows);
        }
        Widget::Multi { checked, cursor: at } => {
            for (i, (v, c)) in f.spec.values.iter().zip(checked).enumerate() {
                let text = format!("{indent}[{}] {v}", if *c { "x" } else { " " });
                let style = if focused && i == *at {
                    t.cursor()
                } else if *c {
                    t.focus()
                } else {
                    t.plain()
                };
                out.push(Line::from(Span::styled(text, style)));
            }
        }
        Widget::Area(area) => {
            let (row, col) = area.cursor();
            for (i, l) in area.lines().iter().enumerate() {
                if i == row {
                    cursor = Some((out.len(), indent.len() + 2 + col));
                }
                out.push(Line::from(vec![
                    Span::styled(format!("{indent}│ "), t.dim()),
                    Span::raw(l.as_str().to_string()),
                ]));
            }
        }
        Widget::Unsupported => {
            out.push(Line::from(Span::styled(
                format!(
                    "{indent}({} inputs cannot be entered here; the CLI can send them)",
                    f.spec.r#type
                ),
                t.dim(),
            )));
        }
    }
    if !f.spec.description.is_empty() {
        out.extend(wrap_text(&f.spec.description, indent, width, t.dim()));
    }
    let mut hints = Vec::new();
    if let Some(h) = format_hint(&f.spec.r#type) {
        hints.push(h.to_string());
    }
    if let Some(d) = &f.spec.default_json {
        hints.push(format!("default {d}"));
    }
    for (name, v) in [
        ("min", &f.spec.min),
        ("max", &f.spec.max),
        ("after", &f.spec.after),
        ("before", &f.spec.before),
    ] {
        if !v.is_empty() {
            hints.push(format!("{name} {v}"));
        }
    }
    if !f.spec.validator.is_empty() {
        hints.push(format!("must match {}", f.spec.validator));
    }
    if focused && !hints.is_empty() {
        out.push(Line::from(Span::styled(
            format!("{indent}{}", hints.join(" · ")),
            t.dim(),
        )));
    }
    if let Some(e) = &f.error {
        out.extend(wrap_text(&format!("✗ {e}"), indent, width, t.error()));
    }
    (out, cursor)
}

/// Draws `form` into `area`, scrolled so the focused field is visible; places the terminal cursor.
pub fn draw(frame: &mut Frame, area: Rect, form: &Form, t: Theme, scroll: &Cell<usize>, show_cursor: bool) {
    let width = area.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let mut focus_range = (0, 0);
    let mut cursor = None;
    if form.fields.is_empty() {
        lines.push(Line::from(Span::styled("  This step asks for no inputs.", t.dim())));
    }
    for (i, f) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        let (mut fl, c) = field_lines(f, focused, t, width);
        if focused {
            focus_range = (lines.len(), lines.len() + fl.len());
            cursor = c.map(|(r, col)| (lines.len() + r, col));
        }
        lines.append(&mut fl);
        lines.push(Line::from(""));
    }
    if let Some(e) = &form.error {
        lines.extend(wrap_text(&format!("✗ {e}"), "  ", width, t.error()));
    }
    let height = area.height as usize;
    let mut top = scroll.get();
    if focus_range.0 < top {
        top = focus_range.0;
    } else if focus_range.1 > top + height {
        top = focus_range.1.saturating_sub(height).min(focus_range.0);
    }
    top = top.min(lines.len().saturating_sub(height.max(1)));
    scroll.set(top);
    if show_cursor
        && let Some((row, col)) = cursor
        && row >= top
        && row < top + height
        && col < width
    {
        frame.set_cursor_position(Position {
            x: area.x + col as u16,
            y: area.y + (row - top) as u16,
        });
    }
    let shown: Vec<Line> = lines.into_iter().skip(top).take(height).collect();
    frame.render_widget(Paragraph::new(shown), area);
}
