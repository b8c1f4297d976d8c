//! Modal popups: kill, reject and revoke confirmations, and the mixed-selection notice of the
//! resume form.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Padding, Paragraph, Wrap};

use super::super::app::{App, ConfirmAction, Popup};

/// A centred rectangle of at most `w`×`h` inside `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, p: &Popup) {
    let t = app.theme;
    let (title, lines): (&str, Vec<Line>) = match p {
        Popup::Confirm(ConfirmAction::Kill { ids }) => {
            let mut lines = vec![Line::from(Span::styled(
                format!(
                    "Kill {} execution(s)? Running and paused task runs end KILLED.",
                    ids.len()
                ),
                t.warn(),
            ))];
            lines.push(Line::from(""));
            for id in ids.iter().take(5) {
                let what = app
                    .store
                    .get(id)
                    .map(|r| format!(" {}.{} {}", r.namespace, r.flow_id, r.state))
                    .unwrap_or_default();
                lines.push(Line::from(format!("  {id}{what}")));
            }
            if ids.len() > 5 {
                lines.push(Line::from(format!("  … and {} more", ids.len() - 5)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from("y / enter: kill      n / esc: cancel"));
            (" Confirm kill ", lines)
        }
        Popup::Confirm(ConfirmAction::Reject { targets, reason }) => {
            let mut lines = vec![Line::from(Span::styled(
                format!(
                    "Reject {} execution(s)? The paused task run ends FAILED with `rejected`.",
                    targets.len()
                ),
                t.warn(),
            ))];
            lines.push(Line::from(""));
            for target in targets.iter().take(5) {
                let what = app
                    .store
                    .get(&target.id)
                    .map(|r| format!(" {}.{}", r.namespace, r.flow_id))
                    .unwrap_or_default();
                lines.push(Line::from(format!("  {}{what}", target.id)));
            }
            if targets.len() > 5 {
                lines.push(Line::from(format!("  … and {} more", targets.len() - 5)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(if reason.is_empty() {
                "Reason: (none given)".to_string()
            } else {
                format!("Reason: {reason}")
            }));
            lines.push(Line::from(""));
            lines.push(Line::from("y / enter: reject      n / esc: back to the form"));
            (" Confirm reject ", lines)
        }
        Popup::Confirm(ConfirmAction::RevokeDelegation { id, what }) => (
            " Confirm revoke ",
            vec![
                Line::from(Span::styled(
                    format!("Revoke delegation {id} ({what})? It ends now."),
                    t.warn(),
                )),
                Line::from(""),
                Line::from("y / enter: revoke      n / esc: cancel"),
            ],
        ),
        Popup::Mismatch { groups, narrow_to } => {
            let total: usize = groups.iter().map(|g| g.count).sum();
            let mut lines = vec![
                Line::from(Span::styled(
                    format!(
                        "The {total} selected executions wait on different forms, so one form cannot resume them all:"
                    ),
                    t.warn(),
                )),
                Line::from(""),
            ];
            for g in groups.iter().take(6) {
                lines.push(Line::from(format!(
                    "  {:>4} × {}.{} / {}",
                    g.count, g.namespace, g.flow_id, g.task_id
                )));
            }
            if groups.len() > 6 {
                lines.push(Line::from(format!("  … and {} more kinds", groups.len() - 6)));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(format!(
                "n: narrow the selection to {}.{} / {}      esc: cancel",
                narrow_to.namespace, narrow_to.flow_id, narrow_to.task_id
            )));
            (" Different forms ", lines)
        }
    };
    let w = area.width.saturating_sub(4).min(76);
    // Rows after wrapping inside the borders and padding.
    let inner = w.saturating_sub(4).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let rect = centered(area, w, rows as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(t.warn())
        .padding(Padding::horizontal(1));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), rect);
}
