//! The executions list: state tabs, filter line, and a virtually scrolled table.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::super::app::{App, LoadState};
use super::super::exec_list::SortOrder;
use super::super::exec_store::{ExecRow, Pause};
use super::super::messages::{Connection, Tab};
use super::super::time_fmt;

/// A column: heading, width rule, and how a row fills it.
struct Column {
    title: &'static str,
    width: Constraint,
    cell: fn(&App, &ExecRow, i64) -> String,
}

fn waiting_task(_: &App, r: &ExecRow, _: i64) -> String {
    match r.pauses.as_slice() {
        [] => String::new(),
        [one] => one.task_id.clone(),
        [first, rest @ ..] => format!("{} +{}", first.task_id, rest.len()),
    }
}

fn waiting(_: &App, r: &ExecRow, now: i64) -> String {
    time_fmt::duration(now - r.since_ms())
}

/// The inbox row's own pause (the one this user may decide), else the first.
fn my_pause<'r>(app: &App, r: &'r ExecRow) -> Option<&'r Pause> {
    app.list.identity().and_then(|me| me.pause_of(r)).or(r.pause())
}

/// Columns of the INBOX tab: what waits for me, since when, and whether it was escalated to me.
fn inbox_columns(width: u16) -> Vec<Column> {
    let mut cols = vec![Column {
        title: "ID",
        width: Constraint::Length(22),
        cell: |_, r, _| r.id.clone(),
    }];
    if width >= 60 {
        cols.push(Column {
            title: "NAMESPACE",
            width: Constraint::Fill(2),
            cell: |_, r, _| r.namespace.clone(),
        });
    }
    cols.push(Column {
        title: "FLOW",
        width: Constraint::Fill(3),
        cell: |_, r, _| r.flow_id.clone(),
    });
    if width >= 70 {
        cols.push(Column {
            title: "TASK",
            width: Constraint::Fill(2),
            cell: |app, r, _| my_pause(app, r).map(|p| p.task_id.clone()).unwrap_or_default(),
        });
    }
    cols.push(Column {
        title: "WAITING",
        width: Constraint::Length(7),
        cell: |app, r, now| {
            my_pause(app, r)
                .map(|p| time_fmt::duration(now - p.since_ms))
                .unwrap_or_default()
        },
    });
    cols.push(Column {
        title: "ESCALATED",
        width: Constraint::Length(9),
        cell: |app, r, _| {
            let escalated = app
                .list
                .identity()
                .zip(my_pause(app, r))
                .is_some_and(|(me, p)| me.escalated_to_me(p));
            if escalated { "yes".into() } else { String::new() }
        },
    });
    if width >= 100 {
        cols.push(Column {
            title: "STARTED BY",
            width: Constraint::Fill(2),
            cell: |_, r, _| r.started_by.clone(),
        });
    }
    cols
}

/// Columns for the width and tab; id, flow and waiting time always stay.
fn columns(width: u16, tab: Tab) -> Vec<Column> {
    if tab == Tab::Inbox {
        return inbox_columns(width);
    }
    let id = Column {
        title: "ID",
        width: Constraint::Length(22),
        cell: |_, r, _| r.id.clone(),
    };
    let ns = Column {
        title: "NAMESPACE",
        width: Constraint::Fill(2),
        cell: |_, r, _| r.namespace.clone(),
    };
    let flow = Column {
        title: "FLOW",
        width: Constraint::Fill(3),
        cell: |_, r, _| r.flow_id.clone(),
    };
    let started_by = Column {
        title: "STARTED BY",
        width: Constraint::Fill(2),
        cell: |_, r, _| r.started_by.clone(),
    };
    let mut cols = vec![id];
    if tab == Tab::Paused {
        if width >= 60 {
            cols.push(ns);
        }
        cols.push(flow);
        if width >= 70 {
            cols.push(Column {
                title: "WAITING TASK",
                width: Constraint::Fill(2),
                cell: waiting_task,
            });
        }
        cols.push(Column {
            title: "WAITING",
            width: Constraint::Length(7),
            cell: waiting,
        });
        if width >= 100 {
            cols.push(Column {
                title: "ASSIGNEES",
                width: Constraint::Fill(3),
                cell: |_, r, _| r.pause().map(|p| p.assignees()).unwrap_or_default(),
            });
        }
        if width >= 120 {
            cols.push(started_by);
        }
    } else {
        if width >= 60 {
            cols.push(ns);
        }
        cols.push(flow);
        cols.push(Column {
            title: "STATE",
            width: Constraint::Length(9),
            cell: |_, r, _| r.state.clone(),
        });
        cols.push(Column {
            title: "AGE",
            width: Constraint::Length(7),
            cell: waiting,
        });
        if width >= 100 {
            cols.push(Column {
                title: "WAITING TASK",
                width: Constraint::Fill(2),
                cell: waiting_task,
            });
        }
        if width >= 120 {
            cols.push(started_by);
        }
    }
    cols
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let [bar, table] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    draw_bar(frame, bar, app);
    draw_table(frame, table, app);
}

fn draw_bar(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let list = &app.list;
    let mut spans = Vec::new();
    for (i, tab) in Tab::ORDER.iter().enumerate() {
        // A count is only shown once the tab (or ALL) was listed: before that it would undercount.
        let all_loaded = app.tab_loads.get(&Tab::All) == Some(&LoadState::Loaded);
        let count = match app.tab_loads.get(&tab.load_key()) {
            // Until the daemon says who we are, the inbox cannot be counted.
            _ if *tab == Tab::Inbox && list.identity().is_none() => "·".to_string(),
            _ if all_loaded => list.counts[i].to_string(),
            Some(LoadState::Loaded) => list.counts[i].to_string(),
            Some(LoadState::Loading) => "…".to_string(),
            Some(LoadState::Failed(_)) => "!".to_string(),
            Some(LoadState::NotLoaded) | None => "·".to_string(),
        };
        let style = if *tab == list.tab {
            t.active_tab()
        } else {
            t.inactive_tab()
        };
        if i > 0 {
            spans.push(Span::styled("│", t.dim()));
        }
        spans.push(Span::styled(format!(" {} {count} ", tab.title()), style));
    }
    if list.filter_editing || !list.filter.is_empty() {
        spans.push(Span::raw("  /"));
        spans.push(Span::styled(list.filter.as_str().to_string(), t.focus()));
        if list.filter_editing {
            spans.push(Span::styled("▏", t.focus()));
        }
    }
    if !list.selected.is_empty() {
        spans.push(Span::styled(format!("  {} selected", list.selected.len()), t.marked()));
    }
    if list.sort == SortOrder::Newest {
        spans.push(Span::styled("  newest first", t.dim()));
    }
    // Position in the list, right-aligned: where the cursor is among the visible rows.
    if !list.visible.is_empty() {
        let pos = format!("{}/{}", list.cursor + 1, list.visible.len());
        let used: usize = spans
            .iter()
            .map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref()))
            .sum();
        let gap = (area.width as usize).saturating_sub(used + pos.len());
        if gap > 0 {
            spans.push(Span::raw(" ".repeat(gap)));
            spans.push(Span::styled(pos, t.dim()));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn empty_text(app: &App) -> (String, bool) {
    let list = &app.list;
    match app.tab_loads.get(&list.tab.load_key()) {
        Some(LoadState::Failed(e)) => return (format!("Could not list executions: {e}"), true),
        Some(LoadState::Loading) | Some(LoadState::NotLoaded) | None => {
            let text = match app.connection {
                Connection::Lost { .. } => "Waiting for the daemon (retrying, see above)…",
                _ => "Loading executions…",
            };
            return (text.into(), false);
        }
        _ => {}
    }
    if !list.filter.is_empty() {
        return (
            format!(
                "No execution matches `{}` (esc clears the filter).",
                list.filter.as_str()
            ),
            false,
        );
    }
    let text = match list.tab {
        Tab::Inbox if list.identity().is_none() => "Asking the daemon who you are…".to_string(),
        Tab::Inbox => "Nothing waits for your decision. tab shows every paused execution.".to_string(),
        Tab::Paused => "Nothing waits for a decision. Executions that reach a Pause or HumanTask appear here; \
                        tab shows other states, 2 lists flows to start one."
            .to_string(),
        tab => format!("No {} executions. tab cycles the states.", tab.title()),
    };
    (text, false)
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let list = &app.list;
    let cols = columns(area.width, list.tab);
    let height = area.height.saturating_sub(1) as usize;
    let offset = list.window(height);
    if list.visible.is_empty() {
        let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
        let _ = head;
        let (text, is_error) = empty_text(app);
        let style = if is_error { t.error() } else { t.dim() };
        frame.render_widget(
            Paragraph::new(format!(" {text}"))
                .style(style)
                .wrap(Wrap { trim: false }),
            body,
        );
        return;
    }
    let rows = app.store.rows();
    let mut widths = vec![Constraint::Length(1)];
    widths.extend(cols.iter().map(|c| c.width));
    let header =
        Row::new(std::iter::once(Cell::from(" ")).chain(cols.iter().map(|c| Cell::from(c.title)))).style(t.heading());
    let body: Vec<Row> = list
        .visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .filter_map(|(pos, i)| rows.get(*i as usize).map(|r| (pos, r)))
        .map(|(pos, r)| {
            let selected = list.selected.contains(&r.id);
            let mark = if selected { "✓" } else { " " };
            let cells = std::iter::once(Cell::from(mark)).chain(cols.iter().map(|c| {
                let text = (c.cell)(app, r, app.now_ms);
                if c.title == "STATE" {
                    Cell::from(Span::styled(text, t.state(&r.state)))
                } else {
                    Cell::from(text)
                }
            }));
            let mut style = if selected { t.marked() } else { t.plain() };
            if pos == list.cursor {
                style = style.patch(t.cursor());
            }
            Row::new(cells).style(style)
        })
        .collect();
    let table = Table::new(body, widths).header(header).column_spacing(1);
    frame.render_widget(table, area);
}
