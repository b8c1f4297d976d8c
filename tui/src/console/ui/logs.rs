//! Live logs of one execution: follow, level filter, search highlight, optional wrapping.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tollgate_proto::v1 as pb;

use super::super::app::{App, LogsState};
use super::super::theme::Theme;
use super::super::time_fmt;
use super::{pad, title, trunc, wrap_spans};

/// The message split into plain and highlighted parts (case-insensitive search).
fn highlighted(msg: &str, query: &str, t: Theme) -> Vec<Span<'static>> {
    if query.is_empty() {
        return vec![Span::raw(msg.to_string())];
    }
    let lower = msg.to_lowercase();
    let q = query.to_lowercase();
    // Lower-casing can change byte lengths; only highlight when offsets line up.
    if lower.len() != msg.len() {
        return vec![Span::raw(msg.to_string())];
    }
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find(&q) {
        let start = at + i;
        if start > at {
            out.push(Span::raw(msg[at..start].to_string()));
        }
        out.push(Span::styled(msg[start..start + q.len()].to_string(), t.matched()));
        at = start + q.len();
    }
    if at < msg.len() {
        out.push(Span::raw(msg[at..].to_string()));
    }
    out
}

fn spans(l: &pb::LogLine, query: &str, t: Theme) -> Vec<Span<'static>> {
    let mut s = vec![
        Span::styled(format!("{} ", time_fmt::clock(l.time_ms)), t.dim()),
        Span::styled(pad(&l.level, 5), t.level(&l.level)),
        Span::raw(" "),
        Span::styled(format!("{} ", trunc(&l.task_id, 20)), t.heading()),
    ];
    s.extend(highlighted(&l.message.replace('\t', "    "), query, t));
    s
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, l: &LogsState) {
    let t = app.theme;
    let [head, body, search] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(u16::from(l.search_editing || !l.search.is_empty())),
    ])
    .areas(area);
    let mut flags = vec![
        format!("follow {}", if l.follow { "on" } else { "off" }),
        format!("level {}", l.level.label()),
        format!("wrap {}", if l.wrap { "on" } else { "off" }),
    ];
    if l.ended {
        flags.push("ended".into());
    }
    title(frame, head, t, &format!("Logs {}", l.id), &flags.join(" · "));
    let lines = l.filtered();
    let height = body.height as usize;
    let width = body.width as usize;
    let query = l.search.as_str();
    let mut rows: Vec<Line> = Vec::new();
    if let Some(e) = &l.error {
        rows.push(Line::from(Span::styled(format!(" ✗ {e} (retrying)"), t.error())));
    }
    let room = height.saturating_sub(rows.len());
    l.scroll.page.set(room.max(1));
    if lines.is_empty() {
        let text = if l.lines.is_empty() {
            " No log lines yet; new ones appear as they are written."
        } else {
            " No line at this level (v changes it)."
        };
        rows.push(Line::from(Span::styled(text, t.dim())));
    } else if l.wrap {
        // Wrapped: count rows from the bottom to know the largest useful top line.
        let mut used = 0;
        let mut max_top = lines.len();
        for (i, line) in lines.iter().enumerate().rev() {
            used += wrap_spans(spans(line, query, t), width).len();
            if used > room {
                break;
            }
            max_top = i;
        }
        l.scroll.max.set(max_top);
        let top = if l.follow { max_top } else { l.scroll.top.min(max_top) };
        for line in lines.iter().skip(top) {
            rows.extend(wrap_spans(spans(line, query, t), width));
            if rows.len() >= height {
                break;
            }
        }
        rows.truncate(height);
    } else {
        let max_top = lines.len().saturating_sub(room);
        l.scroll.max.set(max_top);
        let top = if l.follow { max_top } else { l.scroll.top.min(max_top) };
        rows.extend(
            lines
                .iter()
                .skip(top)
                .take(room)
                .map(|line| Line::from(spans(line, query, t))),
        );
    }
    frame.render_widget(Paragraph::new(rows), body);
    if search.height > 0 {
        let mut s = vec![Span::styled("/", t.focus()), Span::raw(query.to_string())];
        if l.search_editing {
            s.push(Span::styled("▏", t.focus()));
        }
        let matches = lines.iter().filter(|x| l.is_match(x)).count();
        s.push(Span::styled(format!("  {matches} matching line(s)"), t.dim()));
        frame.render_widget(Paragraph::new(Line::from(s)), search);
    }
}
