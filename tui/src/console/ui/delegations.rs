//! The delegations view (who decides for whom, on which days, where) and its new-delegation form.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use tollgate_proto::v1 as pb;

use super::super::app::{App, DelegateState, DelegationsState, SubmitStatus};
use super::super::time_fmt;
use super::{form_view, title};

const DAY_MS: i64 = 86_400_000;

/// `2026-12-20 .. 2027-01-05`: `until_ms` is the start of the day after the last one.
fn days(d: &pb::Delegation) -> String {
    let day = |ms: i64| time_fmt::utc(ms).chars().take(10).collect::<String>();
    format!("{} .. {}", day(d.from_ms), day(d.until_ms - DAY_MS))
}

fn status(d: &pb::Delegation, now: i64) -> &'static str {
    if d.revoked_ms > 0 {
        "revoked"
    } else if now >= d.until_ms {
        "ended"
    } else if now < d.from_ms {
        "upcoming"
    } else {
        "active"
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, d: &DelegationsState) {
    let t = app.theme;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let scope = if d.all {
        "all, ended included"
    } else {
        "current and upcoming"
    };
    title(frame, head, t, &format!("Delegations ({})", d.items.len()), scope);
    let empty = super::list_placeholder(
        &d.state,
        d.items.is_empty(),
        t,
        [
            "",
            "Loading delegations…",
            "No delegations. Press n to let someone decide for you while you are away.",
        ],
    );
    if let Some((text, style)) = empty {
        frame.render_widget(Paragraph::new(text).style(style).wrap(Wrap { trim: false }), body);
        return;
    }
    let height = body.height.saturating_sub(1) as usize;
    let offset = super::follow_cursor(&d.offset, d.cursor, height);
    // Narrow terminals keep the people and days; `x` acts on the highlighted row, no id needed.
    let wide = area.width >= 100;
    let rows: Vec<Row> = d
        .items
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, item)| {
            let state = status(item, app.now_ms);
            let style = if state == "active" { t.ok() } else { t.dim() };
            let mut cells = Vec::with_capacity(6);
            if wide {
                cells.push(Cell::from(item.id.clone()));
            }
            cells.extend([
                Cell::from(item.from_user.clone()),
                Cell::from(item.to_user.clone()),
                Cell::from(days(item)),
                Cell::from(if item.namespace.is_empty() {
                    "*".to_string()
                } else {
                    item.namespace.clone()
                }),
                Cell::from(Span::styled(state, style)),
            ]);
            Row::new(cells).style(if i == d.cursor { t.cursor() } else { t.plain() })
        })
        .collect();
    let mut widths = vec![
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Length(24),
        Constraint::Fill(1),
        Constraint::Length(8),
    ];
    let mut header = vec!["FOR (FROM)", "DELEGATE (TO)", "DAYS (UTC)", "NAMESPACE", "STATE"];
    if wide {
        widths.insert(0, Constraint::Length(22));
        header.insert(0, "ID");
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.heading()))
        .column_spacing(1);
    frame.render_widget(table, body);
}

pub fn draw_form(frame: &mut Frame, area: Rect, app: &App, s: &DelegateState) {
    let t = app.theme;
    let [head, form_area, status_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(u16::from(s.status != SubmitStatus::Editing)),
    ])
    .areas(area);
    title(frame, head, t, "New delegation", "ctrl-s saves");
    form_view::draw(
        frame,
        form_area,
        &s.form,
        t,
        &s.scroll,
        s.status == SubmitStatus::Editing,
    );
    if s.status != SubmitStatus::Editing {
        frame.render_widget(Paragraph::new(Span::styled(" Saving…", t.warn())), status_area);
    }
}
