//! `tollgate stats [--window 24h]`: how many decisions waited over time (a Sparkline) and how long
//! decisions take per flow, namespace and approver (a table), drawn once with ratatui into the
//! terminal's width as plain ASCII lines; `-o json` prints the same figures for scripts.

use anyhow::bail;
use clap::Args;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::bar;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, Widget};
use serde_json::json;
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json};
use super::{Cli, Format};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// How far back the waiting chart goes: minutes, hours or days (30m, 24h, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_window)]
    pub window: i64,
    /// Bars in the chart.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub buckets: u32,
}

fn parse_window(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a window such as 30m, 24h or 7d"))?;
    let ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}` is not a window such as 30m, 24h or 7d")),
    };
    if n <= 0 || n.saturating_mul(ms) > 90 * 86_400_000 {
        return Err(format!("`{s}`: the window must be between 1m and 90d"));
    }
    Ok(n * ms)
}

/// ASCII bars, so the output survives any terminal and log file.
const ASCII_BARS: bar::Set = bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "=",
    five_eighths: "=",
    half: "-",
    three_eighths: "-",
    one_quarter: "_",
    one_eighth: "_",
    empty: " ",
};

/// "1h05m"-style duration of milliseconds.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Lines the view needs at `width` (chart, then a table row per figure).
pub fn height(s: &pb::StatsResponse) -> u16 {
    let rows = s.decisions.len().max(1) as u16;
    // chart block (title + 4 rows + axis + borders) + table (borders + header + rows) + breaches line
    8 + 3 + rows + 1
}

/// Draws the stats view into `area`.
pub fn render(f: &mut Frame, area: Rect, s: &pb::StatsResponse) {
    render_buffer(f.buffer_mut(), area, s);
}

fn render_buffer(buf: &mut Buffer, area: Rect, s: &pb::StatsResponse) {
    let rows = s.decisions.len().max(1) as u16;
    let [chart, table, footer] =
        Layout::vertical([Constraint::Length(8), Constraint::Length(3 + rows), Constraint::Min(1)]).areas(area);
    let window = s.bucket_ms.saturating_mul(s.waiting_series.len() as i64).max(0) as u64;
    let peak = s.waiting_series.iter().copied().max().unwrap_or(0);
    let title = format!(
        " Waiting decisions, last {} (now {}, peak {}) ",
        span(window),
        s.waiting_now,
        peak
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(chart);
    block.render(chart, buf);
    let [bars, axis] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    // Each bucket as wide as the chart allows (at least one column), right-aligned so "now" is
    // always at the right edge.
    let per = (bars.width as usize / s.waiting_series.len().max(1)).max(1);
    let data: Vec<u64> = s
        .waiting_series
        .iter()
        .flat_map(|v| std::iter::repeat_n((*v).max(0) as u64, per))
        .collect();
    let shown = &data[data.len().saturating_sub(bars.width as usize)..];
    let offset = bars.width.saturating_sub(shown.len() as u16);
    let spark_area = Rect {
        x: bars.x + offset,
        width: shown.len() as u16,
        ..bars
    };
    Sparkline::default()
        .data(shown)
        .max(peak.max(1) as u64)
        .bar_set(ASCII_BARS)
        .render(spark_area, buf);
    let left = format!("-{}", span(window));
    let right = "now";
    let pad = (axis.width as usize).saturating_sub(left.len() + right.len());
    Paragraph::new(Line::from(format!("{left}{}{right}", " ".repeat(pad)))).render(axis, buf);

    let header = Row::new(["BY", "NAME", "DECISIONS", "MEAN", "P90", "MAX"]);
    let body: Vec<Row> = if s.decisions.is_empty() {
        vec![Row::new([Cell::from(""), Cell::from("no decisions yet")])]
    } else {
        s.decisions
            .iter()
            .map(|d| {
                Row::new([
                    d.dimension.clone(),
                    d.name.clone(),
                    d.count.to_string(),
                    span(d.mean_ms),
                    format!("<={}", span(d.p90_ms)),
                    span(d.max_ms),
                ])
            })
            .collect()
    };
    Table::new(
        body,
        [
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .header(header)
    .block(Block::default().borders(Borders::ALL).title(" Time to decision "))
    .render(table, buf);

    let breaches = if s.sla_breaches.is_empty() {
        "SLA breaches: none".to_string()
    } else {
        let mut all: Vec<_> = s.sla_breaches.iter().collect();
        all.sort();
        let list: Vec<String> = all.iter().map(|(flow, n)| format!("{flow} {n}")).collect();
        format!("SLA breaches: {}", list.join(", "))
    };
    Paragraph::new(breaches).render(footer, buf);
}

/// The view as text lines of `width` columns (trailing spaces trimmed).
pub fn to_text(s: &pb::StatsResponse, width: u16) -> String {
    let area = Rect::new(0, 0, width.max(40), height(s));
    let mut buf = Buffer::empty(area);
    render_buffer(&mut buf, area, s);
    let mut out = String::new();
    for y in 0..area.height {
        let mut line = String::new();
        for x in 0..area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        // Box-drawing borders become ASCII: the CLI prints ASCII only.
        let line: String = line
            .chars()
            .map(|c| match c {
                '─' => '-',
                '│' => '|',
                '┌' | '┐' | '└' | '┘' => '+',
                c if c.is_ascii() => c,
                _ => '?',
            })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub async fn run(cli: &Cli, c: &mut crate::client::Clients, a: &StatsArgs) -> anyhow::Result<()> {
    let s = c
        .stats
        .get(pb::StatsRequest {
            window_ms: a.window,
            buckets: a.buckets,
        })
        .await
        .map_err(|s| anyhow::anyhow!(status_message(&s)))?
        .into_inner();
    match cli.output {
        Format::Json => print_json(&json!({
            "executionsByState": s.executions_by_state,
            "waitingNow": s.waiting_now,
            "waiting": {
                "start": iso(s.series_start_ms),
                "bucketSeconds": s.bucket_ms / 1000,
                "values": s.waiting_series,
            },
            "decisions": s.decisions.iter().map(|d| json!({
                "by": d.dimension, "name": d.name, "count": d.count,
                "meanSeconds": d.mean_ms as f64 / 1000.0, "p90Seconds": d.p90_ms as f64 / 1000.0,
                "maxSeconds": d.max_ms as f64 / 1000.0,
            })).collect::<Vec<_>>(),
            "slaBreaches": s.sla_breaches,
        })),
        Format::Text => {
            // A pipe or file gets a fixed width, so scripts and logs see the same layout.
            let width = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                crossterm::terminal::size().map(|(w, _)| w).unwrap_or(80).min(160)
            } else {
                100
            };
            if width < 40 {
                bail!("the terminal is too narrow for the chart (40 columns at least); use -o json");
            }
            print!("{}", to_text(&s, width));
        }
    }
    Ok(())
}
