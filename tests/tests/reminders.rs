//! onPause and reminders on a waiting gate, against a real daemon (issue 10).

use std::time::Duration;

use tollgate_tests::{Daemon, DaemonOptions, log_messages};

fn daemon() -> Daemon {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_nudge");
    Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        env: vec![("TOLLGATE_MIN_REMINDER_INTERVAL".into(), "PT1S".into())],
        ..Default::default()
    })
}

fn count(logs: &[String], prefix: &str) -> usize {
    logs.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn on_pause_runs_once_and_reminders_stop_at_max_count() {
    let d = daemon();
    let id = d.run_wait("test", "nudged", &[])["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(4_500));
    let logs = log_messages(&d, &id);
    assert_eq!(
        logs.iter()
            .filter(|l| **l == format!("waiting at gate of {id}"))
            .count(),
        1,
        "{logs:?}"
    );
    assert_eq!(count(&logs, "reminder "), 3, "maxCount 3: {logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("reminder 1 after PT")), "{logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("reminder 3 after PT")), "{logs:?}");
    assert_eq!(d.execution(&id)["state"], "PAUSED", "reminders never decide the gate");
    assert!(d.cli(&["resume", &id, "--input", "ok=true"]).ok());
    d.wait_state(&id, "SUCCESS");
}

#[test]
fn reminders_stop_on_resume_and_on_kill() {
    let d = daemon();
    let resumed = d.run_wait("test", "slow_nudge", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let killed = d.run_wait("test", "slow_nudge", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(2_600));
    assert!(d.cli(&["resume", &resumed]).ok());
    assert!(d.cli(&["kill", &killed]).ok());
    let before_r = count(&log_messages(&d, &resumed), "reminder ");
    let before_k = count(&log_messages(&d, &killed), "reminder ");
    assert!(before_r >= 1 && before_k >= 1, "a reminder fired before the decision");
    std::thread::sleep(Duration::from_millis(4_500));
    assert_eq!(
        count(&log_messages(&d, &resumed), "reminder "),
        before_r,
        "no reminder after resume"
    );
    assert_eq!(
        count(&log_messages(&d, &killed), "reminder "),
        before_k,
        "no reminder after kill"
    );
}

#[test]
fn reminders_due_during_downtime_run_once_not_per_missed_interval() {
    let mut d = daemon();
    let id = d.run_wait("test", "slow_nudge", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    d.kill9();
    std::thread::sleep(Duration::from_millis(7_000)); // three intervals missed
    d.restart();
    std::thread::sleep(Duration::from_millis(1_000));
    let logs = log_messages(&d, &id);
    assert_eq!(
        count(&logs, "reminder "),
        1,
        "one catch-up reminder, no burst: {logs:?}"
    );
}

/// The texts posted to `hook` so far that start with `prefix`.
fn posts(hook: &tollgate_tests::recorders::HttpRecorder, prefix: &str) -> Vec<String> {
    hook.received()
        .into_iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .filter(|t| t.starts_with(prefix))
        .collect()
}

#[test]
fn notifications_reach_a_real_webhook_once_on_schedule_and_not_in_a_burst_after_kill_9() {
    let hook = tollgate_tests::recorders::HttpRecorder::start();
    let mut d = daemon();
    let hook_input = format!("hook={}/services/T000/B000/XXX", hook.url);
    let id = d.run_wait("test", "webhook_nudge", &[&hook_input])["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(4_500));
    assert_eq!(
        posts(&hook, "paused"),
        [format!("paused {id} at sign_off")],
        "onPause posts once"
    );
    let reminders = posts(&hook, "reminder").len();
    assert!(reminders >= 1, "a reminder every 2 s: {:?}", hook.received());
    assert_eq!(
        posts(&hook, "escalated"),
        [format!("escalated {id} to Managers")],
        "the escalation after 3 s tells the new approvers once"
    );

    d.kill9();
    std::thread::sleep(Duration::from_millis(5_000)); // two reminder intervals missed
    d.restart();
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        posts(&hook, "reminder").len(),
        reminders + 1,
        "one catch-up reminder after the restart, not one per missed interval"
    );
    assert_eq!(
        posts(&hook, "paused").len(),
        1,
        "onPause does not run again after a restart"
    );
    assert_eq!(posts(&hook, "escalated").len(), 1, "nor does the escalation");

    assert!(d.cli(&["resume", &id, "--input", "ok=true"]).ok());
    d.wait_state(&id, "SUCCESS");
    let at_decision = hook.received().len();
    std::thread::sleep(Duration::from_millis(3_000));
    assert_eq!(
        hook.received().len(),
        at_decision,
        "nothing is posted after the decision"
    );
}
