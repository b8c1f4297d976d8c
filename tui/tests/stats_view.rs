//! Snapshots of the `tollgate stats` view: the waiting chart and the time-to-decision table,
//! drawn on a TestBackend and as the ASCII text the command prints.

use insta::assert_snapshot;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tollgate_console::cli::stats;
use tollgate_proto::v1 as pb;

fn sample() -> pb::StatsResponse {
    pb::StatsResponse {
        executions_by_state: [("PAUSED".to_string(), 3), ("SUCCESS".to_string(), 12)]
            .into_iter()
            .collect(),
        waiting_now: 3,
        waiting_series: vec![0, 0, 1, 1, 2, 4, 4, 3, 5, 6, 6, 2, 1, 1, 3, 3, 3, 2, 2, 3],
        series_start_ms: 1_767_340_800_000,
        bucket_ms: 180_000,
        decisions: vec![
            pb::DecisionStat {
                dimension: "flow".into(),
                name: "infra/deploy".into(),
                count: 7,
                mean_ms: 754_000,
                max_ms: 4_000_000,
                p90_ms: 3_600_000,
            },
            pb::DecisionStat {
                dimension: "namespace".into(),
                name: "infra".into(),
                count: 7,
                mean_ms: 754_000,
                max_ms: 4_000_000,
                p90_ms: 3_600_000,
            },
            pb::DecisionStat {
                dimension: "approver".into(),
                name: "ana@example.com".into(),
                count: 5,
                mean_ms: 42_000,
                max_ms: 59_000,
                p90_ms: 59_000,
            },
        ],
        sla_breaches: [("infra/deploy".to_string(), 2)].into_iter().collect(),
    }
}

fn draw(s: &pb::StatsResponse, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| stats::render(f, f.area(), s)).expect("draw");
    format!("{}", t.backend())
}

#[test]
fn stats_view_80x24() {
    assert_snapshot!("stats_80x24", draw(&sample(), 80, 24));
}

#[test]
fn stats_view_empty_80x24() {
    let empty = pb::StatsResponse {
        waiting_series: vec![0; 30],
        bucket_ms: 120_000,
        ..Default::default()
    };
    assert_snapshot!("stats_empty_80x24", draw(&empty, 80, 24));
}

#[test]
fn stats_text_is_ascii() {
    let text = stats::to_text(&sample(), 72);
    assert!(text.is_ascii(), "{text}");
    assert_snapshot!("stats_text_72", text);
}
