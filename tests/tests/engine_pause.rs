//! Pause semantics against a real daemon: every behavior on expiry, decisions before expiry,
//! timers across downtime, and racing decisions.

use std::time::Duration;

use tollgate_tests::{Daemon, log_messages, task_run};

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

#[test]
fn behavior_on_expiry_decides_the_outcome() {
    let d = Daemon::start();
    let resume = id_of(&d.run_wait("test", "expire_resume", &[]));
    let cancel = id_of(&d.run_wait("test", "expire_cancel", &[]));
    let fail = id_of(&d.run_wait("test", "expire_fail", &[]));
    let warn = id_of(&d.run_wait("test", "expire_warn", &[]));
    let required = id_of(&d.run_wait("test", "expire_required", &[]));

    let e = d.wait_state(&resume, "SUCCESS");
    assert_eq!(task_run(&e, "gate")["state"], "SUCCESS");
    assert_eq!(
        task_run(&e, "gate")["outputs"]["onResume"]["note"],
        "timed out",
        "RESUME uses onResume defaults"
    );
    assert!(
        log_messages(&d, &resume)
            .iter()
            .any(|l| l == "after the gate: timed out")
    );

    let e = d.wait_state(&cancel, "CANCELLED");
    assert_eq!(task_run(&e, "gate")["state"], "CANCELLED");
    assert!(e["taskRuns"].as_array().unwrap().iter().all(|r| r["taskId"] != "after"));

    let e = d.wait_state(&fail, "FAILED");
    assert_eq!(task_run(&e, "gate")["state"], "FAILED");

    let e = d.wait_state(&warn, "WARNING");
    assert_eq!(task_run(&e, "gate")["state"], "WARNING");
    assert_eq!(task_run(&e, "after")["state"], "SUCCESS", "WARN continues");

    let e = d.wait_state(&required, "FAILED");
    assert_eq!(task_run(&e, "gate")["state"], "FAILED");
    let logs = log_messages(&d, &required);
    assert!(
        logs.iter().any(|l| l.contains("`must`") && l.contains("no default")),
        "{logs:?}"
    );
}

#[test]
fn manual_resume_and_kill_before_expiry_ignore_behavior_and_cancel_the_timer() {
    let d = Daemon::start();
    let resumed = id_of(&d.run_wait("test", "expire_cancel", &[]));
    let killed = id_of(&d.run_wait("test", "expire_resume", &[]));
    assert!(d.cli(&["resume", &resumed, "--input", "note=by hand"]).ok());
    assert!(d.cli(&["kill", &killed]).ok());
    let e = d.wait_state(&resumed, "SUCCESS");
    assert_eq!(task_run(&e, "gate")["outputs"]["onResume"]["note"], "by hand");
    d.wait_state(&killed, "KILLED");
    // Past the pause duration the stale timers must not touch either execution.
    std::thread::sleep(Duration::from_millis(2000));
    let e = d.execution(&resumed);
    assert_eq!(e["state"], "SUCCESS");
    assert_eq!(task_run(&e, "gate")["outputs"]["onResume"]["note"], "by hand");
    assert_eq!(task_run(&e, "gate")["outputs"]["resumed"]["to"], "SUCCESS");
    assert_eq!(d.execution(&killed)["state"], "KILLED");
}

#[test]
fn a_timer_that_fell_due_while_the_daemon_was_down_fires_at_start() {
    let mut d = Daemon::start();
    let id = id_of(&d.run_wait("test", "expire_downtime", &[]));
    d.kill9();
    std::thread::sleep(Duration::from_millis(3500));
    d.restart();
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "gate")["outputs"]["onResume"]["note"], "timed out");
    let logs = log_messages(&d, &id);
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("after the gate")).count(),
        1,
        "{logs:?}"
    );
}

#[test]
fn ten_concurrent_resumes_exactly_one_wins() {
    let d = Daemon::start();
    let id = id_of(&d.run_wait("test", "approval", &[]));
    let outcomes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (d, id) = (&d, &id);
                s.spawn(move || {
                    let reason = format!("reason={i}");
                    d.cli(&["resume", id, "--input", "approved=true", "--input", &reason])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners = outcomes.iter().filter(|o| o.ok()).count();
    assert_eq!(winners, 1, "exactly one resume may win");
    for loser in outcomes.iter().filter(|o| !o.ok()) {
        assert!(
            loser.stdout.contains("FAILED_PRECONDITION") && loser.stdout.contains("is not paused"),
            "{loser}"
        );
    }
    let e = d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("decision for")).count(),
        1,
        "{logs:?}"
    );
    assert_eq!(task_run(&e, "decide")["state"], "SUCCESS");
}

#[test]
fn resume_and_kill_racing_leave_one_consistent_outcome() {
    let d = Daemon::start();
    for _ in 0..3 {
        let id = id_of(&d.run_wait("test", "approval", &[]));
        let (r, k) = std::thread::scope(|s| {
            let r = s.spawn(|| d.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=race"]));
            let k = s.spawn(|| d.cli(&["kill", &id]));
            (r.join().unwrap(), k.join().unwrap())
        });
        let e = d.execution(&id);
        let decide = task_run(&e, "decide")["state"].as_str().unwrap().to_string();
        if !r.ok() {
            // Kill won: the pause was killed, resume told so.
            assert_eq!(decide, "KILLED", "{r}\n{k}");
            assert!(r.stdout.contains("KILL"), "resume must name the state: {r}");
        } else {
            // Resume won; the kill either came after (and killed what follows) or found it finished.
            assert_eq!(decide, "SUCCESS", "{r}\n{k}");
        }
    }
}
