//! Flow and Schedule triggers against a real daemon, including across kill -9.

use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, log_messages};

fn daemon() -> Daemon {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_triggers");
    Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        ..Default::default()
    })
}

fn executions_of(d: &Daemon, flow: &str) -> Vec<Value> {
    d.cli_json(&["executions", "--state", "all", "--flow", flow])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn flow_trigger_fires_exactly_once_on_success_and_never_on_killed() {
    let d = daemon();
    let killed = d.run_wait("demo", "pause_demo", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(d.cli(&["kill", &killed]).ok());
    d.wait_state(&killed, "KILLED");

    let id = d.run_wait("demo", "pause_demo", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The seed's curl equivalent through the CLI.
    assert!(d.cli(&["resume", &id, "--input", "status=OK"]).ok());
    d.wait_state(&id, "SUCCESS");
    let triggered = d.wait_listed(&["executions", "--state", "all", "--flow", "resume_demo"], |e| {
        e["trigger"]["executionId"] == id.as_str()
    });
    let t_id = triggered["id"].as_str().unwrap().to_string();
    d.wait_state(&t_id, "SUCCESS");
    assert!(
        log_messages(&d, &t_id)
            .iter()
            .any(|l| *l == format!("downstream of {id} (SUCCESS)"))
    );
    assert!(
        triggered["startedBy"].as_str().unwrap().starts_with("trigger:"),
        "{triggered:#}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let all = executions_of(&d, "resume_demo");
    assert_eq!(
        all.len(),
        1,
        "exactly one triggered execution, none for the KILLED one: {all:#?}"
    );
}

#[test]
fn schedule_fires_on_time_and_a_missed_fire_runs_once_after_restart() {
    let mut d = daemon();
    let deadline = Instant::now() + Duration::from_secs(20);
    while executions_of(&d, "ticker").len() < 2 {
        assert!(Instant::now() < deadline, "the schedule never fired twice");
        std::thread::sleep(Duration::from_millis(200));
    }
    d.kill9();
    let down_at = chrono_ms();
    std::thread::sleep(Duration::from_millis(5_000)); // two or three fires missed
    d.restart();
    let up_at = chrono_ms();
    std::thread::sleep(Duration::from_millis(1_000));
    let all = executions_of(&d, "ticker");
    let dates: Vec<i64> = all.iter().map(|e| date_ms(&e["trigger"]["date"])).collect();
    let mut unique = dates.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), dates.len(), "no fire time ran twice: {dates:?}");
    let missed: Vec<&i64> = dates
        .iter()
        .filter(|t| **t > down_at + 100 && **t < up_at - 100)
        .collect();
    assert_eq!(
        missed.len(),
        1,
        "the fires missed while down run once, not once per interval: {dates:?} down {down_at} up {up_at}"
    );
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn date_ms(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("trigger.date missing: {v}"));
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}
