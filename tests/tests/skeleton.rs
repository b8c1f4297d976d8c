//! The walking skeleton, end to end: real daemon, real CLI, real redb.

use tollgate_tests::{Daemon, log_messages, task_run};

#[test]
fn run_pause_resume_with_inputs_reaches_success_with_outputs_and_logs() {
    let d = Daemon::start();
    let exec = d.run_wait("test", "approval", &["requester=alice"]);
    assert_eq!(exec["state"], "PAUSED", "{exec:#}");
    let id = exec["id"].as_str().unwrap().to_string();
    assert_eq!(task_run(&exec, "decide")["state"], "PAUSED");

    let listed = d.cli_json(&["executions", "--state", "PAUSED"]);
    assert!(
        listed.as_array().unwrap().iter().any(|e| e["id"] == id.as_str()),
        "{listed:#}"
    );

    let out = d.cli(&[
        "resume",
        &id,
        "--input",
        "approved=true",
        "--input",
        "reason=within policy",
    ]);
    assert!(out.ok(), "{out}");
    let done = d.wait_state(&id, "SUCCESS");
    let decide = task_run(&done, "decide");
    assert_eq!(decide["state"], "SUCCESS");
    assert_eq!(
        decide["outputs"]["onResume"]["approved"], true,
        "BOOLEAN must stay a boolean: {decide:#}"
    );
    assert_eq!(decide["outputs"]["onResume"]["reason"], "within policy");
    assert_eq!(decide["outputs"]["resumed"]["to"], "SUCCESS");
    assert!(
        decide["outputs"]["resumed"]["by"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        decide["outputs"]["resumed"]["on"]
            .as_str()
            .is_some_and(|s| s.starts_with("20"))
    );

    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "request from alice"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("decision for alice: approved=true reason=within policy by=")),
        "{logs:?}"
    );
}

#[test]
fn kill_ends_a_paused_execution_killed() {
    let d = Daemon::start();
    let id = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();
    let out = d.cli(&["kill", &id]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&id, "KILLED");
    assert_eq!(task_run(&e, "decide")["state"], "KILLED");
    assert!(
        e["taskRuns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["taskId"] != "report"),
        "nothing runs after a kill"
    );
    // A second kill and a resume are refused and name the state.
    let again = d.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=x"]);
    assert!(!again.ok());
    assert!(
        again.stdout.contains("is not paused") && again.stdout.contains("KILLED"),
        "{again}"
    );
}

#[test]
fn invalid_resume_is_refused_and_the_execution_stays_paused() {
    let d = Daemon::start();
    let id = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();

    let missing = d.cli(&["resume", &id, "--input", "approved=true"]);
    assert!(!missing.ok(), "missing required input accepted:\n{missing}");
    assert!(
        missing.stdout.contains("reason"),
        "error must name the input:\n{missing}"
    );

    let wrong_type = d.cli(&["resume", &id, "--input", "approved=maybe", "--input", "reason=x"]);
    assert!(!wrong_type.ok());
    assert!(
        wrong_type.stdout.contains("approved") && wrong_type.stdout.contains("maybe"),
        "{wrong_type}"
    );

    let unknown = d.cli(&[
        "resume",
        &id,
        "--input",
        "approved=true",
        "--input",
        "reason=x",
        "--input",
        "aproved=true",
    ]);
    assert!(!unknown.ok());
    assert!(unknown.stdout.contains("aproved"), "{unknown}");

    let e = d.execution(&id);
    assert_eq!(e["state"], "PAUSED");
    assert_eq!(task_run(&e, "decide")["state"], "PAUSED");
    assert!(task_run(&e, "decide")["outputs"].as_object().unwrap().is_empty());
}

#[test]
fn paused_execution_survives_restart_and_kill_9() {
    let mut d = Daemon::start();
    let a = d.run_wait("test", "approval", &["requester=a"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = d.run_wait("test", "approval", &["requester=b"])["id"]
        .as_str()
        .unwrap()
        .to_string();

    d.stop();
    d.restart();
    assert_eq!(d.execution(&a)["state"], "PAUSED");

    d.kill9();
    d.restart();
    let e = d.execution(&b);
    assert_eq!(e["state"], "PAUSED", "{e:#}");
    assert_eq!(e["inputs"]["requester"], "b", "inputs survive");

    for id in [&a, &b] {
        let out = d.cli(&["resume", id, "--input", "approved=false", "--input", "reason=later"]);
        assert!(out.ok(), "{out}");
        let done = d.wait_state(id, "SUCCESS");
        assert_eq!(task_run(&done, "decide")["outputs"]["onResume"]["approved"], false);
    }
    // The logs written before the crash are still there, exactly once.
    let logs = log_messages(&d, &b);
    assert_eq!(logs.iter().filter(|l| *l == "request from b").count(), 1, "{logs:?}");
}

#[test]
fn bulk_resume_resumes_each_and_reports_per_id() {
    let d = Daemon::start();
    let ids: Vec<String> = (0..3)
        .map(|_| d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string())
        .collect();
    let done_one = ids[0].clone();
    assert!(
        d.cli(&[
            "resume",
            &done_one,
            "--input",
            "approved=true",
            "--input",
            "reason=first"
        ])
        .ok()
    );
    d.wait_state(&done_one, "SUCCESS");

    let mut args = vec!["resume"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--input", "approved=true", "--input", "reason=bulk", "-o", "json"]);
    let out = d.cli(&args);
    assert!(!out.ok(), "one id was no longer paused: exit must be non-zero\n{out}");
    let results: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let by_id = |id: &str| {
        results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(&ids[0])["code"], "FAILED_PRECONDITION");
    for id in &ids[1..] {
        assert_eq!(by_id(id)["ok"], true);
        let e = d.wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "decide")["outputs"]["onResume"]["reason"], "bulk");
    }
}
