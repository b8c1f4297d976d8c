//! Drawing: pure functions from `App` to a ratatui `Frame`, the same for the terminal and for
//! `TestBackend`. Nothing here changes state except scroll hints kept in `Cell`s.

mod audit;
mod bulk_result;
mod delegations;
mod detail;
mod executions;
mod flows;
mod form_view;
mod help;
mod logs;
mod popup;
mod resume_form;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::action::{Ctx, bindings};
use super::app::{App, MessageKind, Screen, View};
use super::messages::Connection;
use super::theme::Theme;

/// Draws the whole console.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let banner = matches!(app.connection, Connection::Lost { .. });
    // The message wraps (up to 3 rows) so a refusal is read in full, even at 80 columns.
    let message_lines: Vec<Line> = match &app.message {
        Some(m) => {
            let (mark, style) = match m.kind {
                MessageKind::Info => ("✓", app.theme.ok()),
                MessageKind::Error => ("✗", app.theme.error()),
            };
            let mut lines = wrap_text(&format!("{mark} {}", m.text), " ", area.width as usize, style);
            lines.truncate(3);
            lines
        }
        None => vec![],
    };
    let [header, banner_area, body, message, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(banner)),
        Constraint::Fill(1),
        Constraint::Length(message_lines.len() as u16),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app);
    if let Connection::Lost { error, retry_in_ms } = &app.connection {
        let text = format!(
            " ⚠ Offline, reconnecting in {}s (what is shown may be stale): {error}",
            retry_in_ms.div_ceil(1000)
        );
        frame.render_widget(Paragraph::new(text).style(app.theme.banner()), banner_area);
    }
    if let Some(help) = &app.help {
        help::draw(frame, body, app, help);
    } else {
        match app.views.last() {
            Some(View::Detail(d)) => detail::draw(frame, body, app, d),
            Some(View::Resume(r)) => resume_form::draw(frame, body, app, r),
            Some(View::Start(s)) => resume_form::draw_start(frame, body, app, s),
            Some(View::BulkResult(r)) => bulk_result::draw(frame, body, app, r),
            Some(View::Logs(l)) => logs::draw(frame, body, app, l),
            Some(View::FlowSource(s)) => flows::draw_source(frame, body, app, s),
            Some(View::Delegations(d)) => delegations::draw(frame, body, app, d),
            Some(View::Delegate(s)) => delegations::draw_form(frame, body, app, s),
            None => match app.screen {
                Screen::Executions => executions::draw(frame, body, app),
                Screen::Flows => flows::draw(frame, body, app),
                Screen::Audit => audit::draw(frame, body, app),
            },
        }
        if let Some(p) = &app.popup {
            popup::draw(frame, body, app, p);
        }
    }
    frame.render_widget(Paragraph::new(message_lines), message);
    draw_footer(frame, footer, app.theme, app.ctx());
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let server = app.server.trim_start_matches("http://").trim_start_matches("https://");
    let status = match app.connection {
        Connection::Connected => " ● live ",
        Connection::Connecting => " ○ connecting ",
        Connection::Lost { .. } => " ✗ offline ",
    };
    // Narrow terminals get a shorter first screen name so the server stays readable.
    let first = if area.width < 100 { "Execs" } else { "Executions" };
    let screens = [
        ("1", first, Screen::Executions),
        ("2", "Flows", Screen::Flows),
        ("3", "Audit", Screen::Audit),
    ];
    let screens_width: usize = screens.iter().map(|(k, n, _)| k.width() + n.width() + 3).sum();
    // Who and where get what is left: product name, screens and status always show.
    let room = (area.width as usize).saturating_sub(10 + screens_width + status.width());
    let who = match app.user_label() {
        Some(u) => format!("{u} @ {server}"),
        None => server.to_string(),
    };
    let who = if room > 2 {
        format!(" {} ", trunc(&who, room - 2))
    } else {
        String::new()
    };
    let mut spans = vec![Span::styled(" Tollgate ", t.header())];
    spans.push(Span::styled(pad(&who, room), t.header()));
    for (key, name, screen) in screens {
        let style = if screen == app.screen {
            t.header().add_modifier(Modifier::UNDERLINED)
        } else {
            t.header()
        };
        spans.push(Span::styled(format!(" {key} {name} "), style));
    }
    spans.push(Span::styled(status, t.header()));
    frame.render_widget(Paragraph::new(Line::from(spans)).style(t.header()), area);
}

/// The keys of the current context, as many as fit; `? help` is always kept.
fn draw_footer(frame: &mut Frame, area: Rect, t: Theme, ctx: Ctx) {
    let all: Vec<_> = bindings(ctx).into_iter().filter(|b| b.footer).collect();
    let help = all.iter().find(|b| b.label == "?").copied();
    let reserve = help.map(|b| b.label.width() + b.desc.width() + 3).unwrap_or(0);
    let mut spans = Vec::new();
    let mut used = 0;
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for b in all.iter().filter(|b| b.label != "?") {
        if seen.contains(&(b.label, b.desc)) {
            continue;
        }
        let w = b.label.width() + b.desc.width() + 3;
        if used + w + reserve > area.width as usize {
            break;
        }
        seen.push((b.label, b.desc));
        spans.push(Span::styled(format!(" {} ", b.label), t.key()));
        spans.push(Span::raw(format!("{} ", b.desc)));
        used += w;
    }
    if let Some(b) = help {
        spans.push(Span::styled(format!(" {} ", b.label), t.key()));
        spans.push(Span::raw(b.desc.to_string()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `s` cut to `width` display columns, with `…` when cut.
pub(crate) fn trunc(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// `s` padded with spaces (or cut) to exactly `width` columns.
pub(crate) fn pad(s: &str, width: usize) -> String {
    let t = trunc(s, width);
    let w = t.width();
    format!("{t}{}", " ".repeat(width.saturating_sub(w)))
}

/// A one-line title bar for a view.
pub(crate) fn title(frame: &mut Frame, area: Rect, t: Theme, text: &str, right: &str) {
    let width = area.width as usize;
    let right_w = right.width();
    let left = format!(" {}", trunc(text, width.saturating_sub(right_w + 2)));
    let gap = width.saturating_sub(left.width() + right_w);
    let line = Line::from(vec![
        Span::styled(left, t.heading()),
        Span::raw(" ".repeat(gap)),
        Span::styled(right.to_string(), t.dim()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// Splits `lines` into rows of at most `width` columns (manual wrapping keeps scroll math exact).
pub(crate) fn wrap_spans(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in spans {
        let style = span.style;
        let mut buf = String::new();
        for c in span.content.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                if !buf.is_empty() {
                    current.push(Span::styled(std::mem::take(&mut buf), style));
                }
                rows.push(Line::from(std::mem::take(&mut current)));
                used = 0;
            }
            buf.push(c);
            used += cw;
        }
        if !buf.is_empty() {
            current.push(Span::styled(buf, style));
        }
    }
    rows.push(Line::from(current));
    rows
}

/// Word-wraps `text` to `width` columns, each row prefixed with `indent` (long words are cut).
pub(crate) fn wrap_text(text: &str, indent: &str, width: usize, style: ratatui::style::Style) -> Vec<Line<'static>> {
    let room = width.saturating_sub(indent.width()).max(8);
    let mut rows: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let needed = if current.is_empty() {
            word.width()
        } else {
            current.width() + 1 + word.width()
        };
        if needed > room && !current.is_empty() {
            rows.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        while current.width() > room {
            let mut head = String::new();
            let mut rest = String::new();
            for c in current.chars() {
                if rest.is_empty() && head.width() + c.width().unwrap_or(0) <= room {
                    head.push(c);
                } else {
                    rest.push(c);
                }
            }
            rows.push(head);
            current = rest;
        }
    }
    rows.push(current);
    rows.into_iter()
        .map(|r| Line::from(Span::styled(format!("{indent}{r}"), style)))
        .collect()
}

/// The first row to draw so that `cursor` stays visible in `height` rows, moving the last drawn
/// first row (`offset`) only as far as needed; remembers it for the next draw.
pub(crate) fn follow_cursor(offset: &std::cell::Cell<usize>, cursor: usize, height: usize) -> usize {
    let mut first = offset.get();
    if cursor < first {
        first = cursor;
    } else if height > 0 && cursor >= first + height {
        first = cursor + 1 - height;
    }
    offset.set(first);
    first
}

/// What a list shows instead of rows while it loads, when it failed or when it is empty; `None`
/// once there are rows to draw. `texts`: what goes before a failure's reason, the loading line,
/// the empty line.
pub(crate) fn list_placeholder(
    state: &super::app::LoadState,
    empty: bool,
    t: Theme,
    texts: [&str; 3],
) -> Option<(String, ratatui::style::Style)> {
    use super::app::LoadState;
    let [failed, loading, none] = texts;
    match state {
        LoadState::Failed(e) => Some((format!(" {failed}{e}"), t.error())),
        LoadState::Loading | LoadState::NotLoaded => Some((format!(" {loading}"), t.dim())),
        LoadState::Loaded if empty => Some((format!(" {none}"), t.dim())),
        LoadState::Loaded => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunc_and_pad_count_columns() {
        assert_eq!(trunc("abcdef", 4), "abc…");
        assert_eq!(trunc("abc", 4), "abc");
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(trunc("日本語", 4), "日…");
    }

    #[test]
    fn wrap_text_breaks_at_words_and_indents() {
        let rows = wrap_text("one two three fourfivesixseveneight", "  ", 12, Default::default());
        let text: Vec<String> = rows.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["  one two", "  three", "  fourfivesi", "  xseveneigh", "  t"]);
    }

    #[test]
    fn wrap_splits_long_lines() {
        let rows = wrap_spans(vec![Span::raw("abcdef"), Span::raw("gh")], 3);
        let text: Vec<String> = rows.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["abc", "def", "gh"]);
    }
}
