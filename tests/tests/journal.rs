//! The redo journal in front of tollgate.redb (`TOLLGATE_JOURNAL`, default on): a batch is
//! acknowledged once its journal record is on disk, and reaches tollgate.redb later in a flush.
//! These tests `kill -9` the real daemon while many clients start and resume executions, and
//! while a flush is under way, and check after the restart that every acknowledged change is
//! there, the audit chain verifies and paused executions still resume. No timing is asserted.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, wait_for};

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v:#}")).to_string()
}

fn audit_verifies(d: &Daemon) -> u64 {
    let v = d.cli_json(&["audit", "--verify"]);
    assert_eq!(v["ok"], true, "audit chain: {v:#}");
    v["records"].as_u64().expect("records")
}

fn options(env: &[(&str, &str)]) -> DaemonOptions {
    DaemonOptions {
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn segments(d: &Daemon) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(d.data_dir.join("journal")) else {
        return vec![];
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What the clients were told succeeded.
#[derive(Default)]
struct Acked {
    started: Mutex<Vec<String>>,
    resumed: Mutex<Vec<String>>,
}

/// `clients` threads start approvals and resume the paused ones in `paused` until `stop` (or
/// their first failure: the daemon is gone). Calls `kill` once `ops_before_kill` changes were
/// acknowledged.
fn stream_then_kill(
    d: &Daemon,
    paused: &[String],
    clients: usize,
    ops_before_kill: usize,
    kill: impl FnOnce(),
) -> Acked {
    let acked = Acked::default();
    let done = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let next_paused = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for c in 0..clients {
            let (acked, done, stop, next_paused) = (&acked, &done, &stop, &next_paused);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if c % 2 == 0 {
                        let out = d.cli(&[
                            "run",
                            "test",
                            "approval",
                            "--input",
                            &format!("requester=client{c}"),
                            "-o",
                            "json",
                        ]);
                        if !out.ok() {
                            return;
                        }
                        let Ok(v) = serde_json::from_str::<Value>(&out.stdout) else {
                            return;
                        };
                        acked.started.lock().unwrap().push(id_of(&v));
                    } else {
                        let i = next_paused.fetch_add(1, Ordering::Relaxed);
                        let Some(id) = paused.get(i) else { return };
                        let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=stream"]);
                        if !out.ok() {
                            return;
                        }
                        acked.resumed.lock().unwrap().push(id.clone());
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::Relaxed) < ops_before_kill {
            assert!(
                Instant::now() < deadline,
                "the clients made no progress; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Mid-stream: clients have calls in flight.
        kill();
        stop.store(true, Ordering::Relaxed);
    });
    acked
}

fn kill9_pid(d: &Daemon) {
    let pid = d.pid().expect("running");
    let st = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success());
}

/// After the restart: every acknowledged start is there, every acknowledged resume went past
/// its gate and finishes, every other paused execution still resumes, the audit chain verifies.
fn check_after_restart(d: &Daemon, paused: &[String], acked: &Acked) {
    let started = acked.started.lock().unwrap().clone();
    let resumed: BTreeSet<String> = acked.resumed.lock().unwrap().iter().cloned().collect();
    assert!(!started.is_empty() && !resumed.is_empty(), "the stream did both");
    for id in &started {
        let e = d.execution(id);
        assert_eq!(e["id"], id.as_str(), "acknowledged start {id} lost");
    }
    for id in &resumed {
        d.wait_state(id, "SUCCESS");
    }
    audit_verifies(d);
    // The rest: paused, or resumed by a call that was cut off (then it was not acknowledged, and
    // either outcome is right); each ends in SUCCESS once resumed now.
    for id in paused.iter().chain(&started).filter(|id| !resumed.contains(*id)) {
        let e = d.execution(id);
        if e["state"] == "PAUSED" {
            let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=after"]);
            assert!(out.ok(), "{out}");
        }
        d.wait_state(id, "SUCCESS");
    }
    audit_verifies(d);
}

fn paused_approvals(d: &Daemon, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let e = d.run_wait("test", "approval", &[&format!("requester=seed{i}")]);
            assert_eq!(e["state"], "PAUSED", "{e:#}");
            id_of(&e)
        })
        .collect()
}

#[test]
fn kill9_amid_a_stream_of_acknowledged_starts_and_resumes_loses_none() {
    let mut d = Daemon::start();
    let paused = paused_approvals(&d, 40);
    assert!(!segments(&d).is_empty(), "the journal is on by default");
    let acked = stream_then_kill(&d, &paused, 6, 30, || kill9_pid(&d));
    d.kill9();
    d.restart();
    check_after_restart(&d, &paused, &acked);
}

/// A flush held before its commit (the test-only TOLLGATE_TEST_FLUSH_HOLD_MS): batches go on
/// being acknowledged into the new overlay, then the daemon is killed with the flush open.
#[test]
fn kill9_during_a_flush_loses_none() {
    let mut d = Daemon::start_with(options(&[("TOLLGATE_TEST_FLUSH_HOLD_MS", "600000")]));
    let paused = paused_approvals(&d, 30);
    wait_for("a flush under way", || d.log().contains("flush holding").then_some(()));
    let acked = stream_then_kill(&d, &paused, 4, 20, || kill9_pid(&d));
    d.kill9();
    d.options.env.clear();
    d.restart();
    check_after_restart(&d, &paused, &acked);
}

/// A clean stop writes everything to tollgate.redb and empties the journal; switching the
/// journal off replays a crashed daemon's journal into tollgate.redb and empties it; switching
/// it back on goes on from there.
#[test]
fn clean_stop_empties_the_journal_and_the_switch_goes_both_ways() {
    let mut d = Daemon::start();
    let first = paused_approvals(&d, 3);
    d.stop();
    assert!(segments(&d).is_empty(), "after a clean stop: {:?}", segments(&d));
    d.restart();
    let second = paused_approvals(&d, 3);
    d.kill9();
    assert!(!segments(&d).is_empty(), "a crash leaves the journal");
    d.options.env = vec![("TOLLGATE_JOURNAL".into(), "off".into())];
    d.restart();
    assert!(
        segments(&d).is_empty(),
        "off: replayed into tollgate.redb: {:?}",
        segments(&d)
    );
    for id in first.iter().chain(&second) {
        assert_eq!(d.execution(id)["state"], "PAUSED");
    }
    let third = paused_approvals(&d, 2);
    assert!(segments(&d).is_empty(), "off: nothing journaled");
    d.kill9();
    d.options.env.clear();
    d.restart();
    let all: Vec<String> = first.iter().chain(&second).chain(&third).cloned().collect();
    for id in &all {
        let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=ok"]);
        assert!(out.ok(), "{out}");
    }
    d.kill9();
    d.restart();
    for id in &all {
        d.wait_state(id, "SUCCESS");
    }
    audit_verifies(&d);
}
