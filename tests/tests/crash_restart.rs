//! Restart after `kill -9` and redb's quick repair (`TOLLGATE_QUICK_REPAIR`): by default the
//! writer saves the store's allocator state once it is idle, so a crash while idle restarts
//! without reading the whole file; with `off` the daemon repairs the whole file and says so in
//! its log. Either way every acknowledged change survives. No timing is asserted: whether the
//! whole file was read is what redb reports (its repair callback, logged by the store).

use std::time::{Duration, Instant};

use tollgate_tests::{Daemon, DaemonOptions, curl, log_messages};

const REPAIRED: &str = "the whole file was read to repair it";

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v:#}")).to_string()
}

/// The value of `series` in the daemon's `/metrics` text.
fn metric(d: &Daemon, series: &str) -> Option<f64> {
    let (_, body) = curl(&[&format!("{}/metrics", d.server())]);
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until the newest commit saved the allocator state (the writer's idle checkpoint).
fn wait_checkpoint(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(d, "tollgate_store_quick_repair_saved") != Some(1.0) {
        assert!(Instant::now() < deadline, "no checkpoint after 30 s; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A paused approval survives the crash, can still be resumed, and runs to its end.
fn resume_after_restart(d: &Daemon, id: &str) {
    assert_eq!(d.execution(id)["state"], "PAUSED");
    let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=ok"]);
    assert!(out.ok(), "{out}");
    d.wait_state(id, "SUCCESS");
    let logs = log_messages(d, id);
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("request from")).count(),
        1,
        "{logs:?}"
    );
}

#[test]
fn a_crash_while_idle_restarts_without_reading_the_whole_store() {
    let mut d = Daemon::start();
    let id = id_of(&d.run_wait("test", "approval", &[]));
    wait_checkpoint(&d);
    d.kill9();
    d.restart();
    assert!(!d.log().contains(REPAIRED), "{}", d.log());
    resume_after_restart(&d, &id);
}

#[test]
fn with_quick_repair_off_a_crash_repairs_the_whole_store_and_says_so() {
    let mut d = Daemon::start_with(DaemonOptions {
        env: vec![("TOLLGATE_QUICK_REPAIR".into(), "off".into())],
        ..Default::default()
    });
    let id = id_of(&d.run_wait("test", "approval", &[]));
    assert_eq!(metric(&d, "tollgate_store_quick_repair_saved"), Some(0.0));
    d.kill9();
    assert!(!d.log().contains(REPAIRED));
    d.restart();
    assert!(d.log().contains(REPAIRED), "{}", d.log());
    resume_after_restart(&d, &id);
}

#[test]
fn with_quick_repair_always_every_commit_saves_the_allocator_state() {
    let mut d = Daemon::start_with(DaemonOptions {
        env: vec![("TOLLGATE_QUICK_REPAIR".into(), "always".into())],
        ..Default::default()
    });
    let id = id_of(&d.run_wait("test", "approval", &[]));
    // No waiting for a checkpoint: the commit that paused it saved the state.
    assert_eq!(metric(&d, "tollgate_store_quick_repair_saved"), Some(1.0));
    d.kill9();
    d.restart();
    assert!(!d.log().contains(REPAIRED), "{}", d.log());
    resume_after_restart(&d, &id);
}

#[test]
fn an_unknown_quick_repair_mode_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(&tollgate_tests::binaries().tollgated)
        .args(["serve", "--insecure-no-auth", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("TOLLGATE_QUICK_REPAIR", "sometimes")
        .output()
        .expect("run tollgated");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TOLLGATE_QUICK_REPAIR must be idle, always or off, not `sometimes`"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists(), "the data dir was touched");
}
