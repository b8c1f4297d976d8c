//! Kestra's task semantics against a real daemon (issue 15): `retry` (task, flowable, flow; durable
//! across kill -9), `runIf` / SKIPPED and `disabled`. Expected states, task-run counts and attempt
//! counts follow what Kestra's own tests assert for equivalent flows (RetryCaseTest,
//! TaskWithRunIfTest).

use serde_json::Value;
use tollgate_tests::recorders::HttpRecorder;
use tollgate_tests::{Daemon, DaemonOptions, log_messages, task_run};

fn daemon() -> Daemon {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_semantics");
    Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        ..Default::default()
    })
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

fn runs(e: &Value) -> &Vec<Value> {
    e["taskRuns"].as_array().expect("taskRuns")
}

fn attempt_states(run: &Value) -> Vec<String> {
    run["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs a flow and waits for `state`.
fn run_to(d: &Daemon, flow: &str, inputs: &[&str], state: &str) -> Value {
    let id = id_of(&d.run_nowait("test", flow, inputs));
    d.wait_state(&id, state)
}

#[test]
fn a_task_that_keeps_failing_is_tried_max_attempt_times_then_errors_run() {
    let d = daemon();
    let e = run_to(&d, "retry_fail", &[], "FAILED");
    // As Kestra's retryFail: two task runs (the failing task and the errors handler), 3 attempts.
    assert_eq!(runs(&e).len(), 2, "{e:#}");
    let run = task_run(&e, "always_fails");
    assert_eq!(run["state"], "FAILED");
    assert_eq!(attempt_states(run), ["FAILED", "FAILED", "FAILED"]);
    let logs = log_messages(&d, &id_of(&e));
    for n in 1..=3 {
        assert!(logs.contains(&format!("refused on attempt {n}")), "{logs:?}");
    }
    assert!(logs.iter().any(|l| l == "error handler ran"), "{logs:?}");
    assert!(!logs.iter().any(|l| l == "this must not run"), "{logs:?}");
    // The CLI shows each attempt.
    let text = d.cli(&["executions", "get", &id_of(&e)]);
    assert!(text.ok(), "{text}");
    assert!(text.stdout.contains("3: FAILED FAILED FAILED"), "{text}");
}

#[test]
fn success_after_retries_is_a_warning_with_warning_on_retry() {
    let d = daemon();
    let e = run_to(&d, "retry_success", &[], "WARNING");
    // As Kestra's retrySuccess: one task run, WARNING, every attempt listed.
    assert_eq!(runs(&e).len(), 1, "{e:#}");
    let run = task_run(&e, "flaky");
    assert_eq!(run["state"], "WARNING");
    assert_eq!(attempt_states(run), ["FAILED", "FAILED", "SUCCESS"]);
    assert!(log_messages(&d, &id_of(&e)).contains(&"third time lucky".to_string()));
    // Kestra's REST shape lists the attempts too.
    let (code, body) = tollgate_tests::curl(&[&format!("{}/api/v1/main/executions/{}", d.server(), id_of(&e))]);
    assert_eq!(code, 200, "{body}");
    let rest: Value = serde_json::from_str(&body).expect("json");
    let attempts = rest["taskRunList"][0]["attempts"].as_array().expect("attempts").len();
    assert_eq!(attempts, 3, "{rest:#}");
}

#[test]
fn success_at_first_attempt_is_a_success() {
    let d = daemon();
    let e = run_to(&d, "retry_first", &[], "SUCCESS");
    assert_eq!(runs(&e).len(), 1);
    assert_eq!(attempt_states(task_run(&e, "fine")), ["SUCCESS"]);
}

#[test]
fn exponential_and_random_retries_stop_at_max_attempt() {
    let d = daemon();
    for flow in ["retry_expo", "retry_random"] {
        let e = run_to(&d, flow, &[], "FAILED");
        assert_eq!(runs(&e).len(), 1, "{flow}: {e:#}");
        assert_eq!(attempt_states(task_run(&e, "failing")).len(), 3, "{flow}: {e:#}");
    }
}

#[test]
fn retry_is_inherited_from_the_enclosing_flowable_task_and_the_flow() {
    let d = daemon();
    let e = run_to(&d, "retry_inherited", &[], "FAILED");
    assert_eq!(
        attempt_states(task_run(&e, "inner_fails")).len(),
        3,
        "Parallel's retry: {e:#}"
    );
    assert_eq!(
        attempt_states(task_run(&e, "inner_own")).len(),
        1,
        "own retry wins: {e:#}"
    );
    assert_eq!(
        attempt_states(task_run(&e, "flow_level")).len(),
        2,
        "flow's retry: {e:#}"
    );
    assert!(!runs(&e).iter().any(|r| r["taskId"] == "not_reached"), "{e:#}");
}

#[test]
fn a_job_task_is_retried_until_the_server_answers() {
    let rec = HttpRecorder::start();
    rec.script.lock().unwrap().extend([(500, vec![]), (503, vec![])]);
    let d = daemon();
    let url = format!("url={}", rec.url);
    let e = run_to(&d, "retry_http", &[&url], "SUCCESS");
    let run = task_run(&e, "call");
    assert_eq!(run["state"], "SUCCESS");
    assert_eq!(attempt_states(run), ["FAILED", "FAILED", "SUCCESS"]);
    assert_eq!(rec.requests.lock().unwrap().len(), 3);
}

#[test]
fn a_pending_retry_survives_kill_9() {
    let mut d = daemon();
    let id = id_of(&d.run_nowait("test", "retry_durable", &[]));
    // Wait for the first attempt to fail and the retry to be scheduled (PT4S away).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let e = d.execution(&id);
        let run = task_run(&e, "second_time");
        if run["state"] == "RETRYING" {
            assert!(run["nextAttempt"].is_string(), "{e:#}");
            assert_eq!(e["state"], "RUNNING");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never RETRYING: {e:#}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.kill9();
    d.restart();
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(attempt_states(task_run(&e, "second_time")), ["FAILED", "SUCCESS"]);
    assert!(log_messages(&d, &id).contains(&"second attempt".to_string()));
}

#[test]
fn run_if_false_skips_and_a_broken_condition_fails() {
    let d = daemon();
    let e = run_to(&d, "run_if", &[], "FAILED");
    // As Kestra's TaskWithRunIfTest: data, ran, skipped, skipped_branch, broken; the disabled
    // task is not in the tree at all.
    assert_eq!(runs(&e).len(), 5, "{e:#}");
    assert_eq!(task_run(&e, "ran")["state"], "SUCCESS");
    assert_eq!(task_run(&e, "skipped")["state"], "SKIPPED");
    assert_eq!(task_run(&e, "skipped_branch")["state"], "SKIPPED");
    assert_eq!(task_run(&e, "broken")["state"], "FAILED");
    assert!(
        !runs(&e)
            .iter()
            .any(|r| r["taskId"] == "off" || r["taskId"] == "inside_skipped")
    );
    let logs = log_messages(&d, &id_of(&e));
    assert!(logs.contains(&"condition held".to_string()), "{logs:?}");
    assert!(!logs.iter().any(|l| l.starts_with("must not be printed")), "{logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("cannot render `runIf`")), "{logs:?}");
}

#[test]
fn unknown_retry_behavior_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("f.yaml");
    std::fs::write(
        &file,
        "id: f\nnamespace: test\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    retry:\n      type: constant\n      interval: PT1S\n      behavior: SOMETIMES\n",
    )
    .expect("write");
    let d = daemon();
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains(":10:") && all.contains("unknown `retry.behavior` `SOMETIMES`"),
        "{out}"
    );
}

fn iterations_logged(d: &Daemon, id: &str, prefix: &str) -> Vec<String> {
    log_messages(d, id)
        .into_iter()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

#[test]
fn wait_for_runs_its_tasks_until_the_condition_holds() {
    let d = daemon();
    let e = run_to(&d, "wait_for", &[], "SUCCESS");
    let id = id_of(&e);
    // As Kestra's waitforMultipleTasks: the last iteration's value is 4.
    assert_eq!(task_run(&e, "count")["outputs"]["values"]["n"], 4, "{e:#}");
    assert_eq!(task_run(&e, "poll")["outputs"]["iterationCount"], 4, "{e:#}");
    assert_eq!(task_run(&e, "poll")["iteration"], 3, "{e:#}");
    assert_eq!(
        iterations_logged(&d, &id, "looping "),
        ["looping 1", "looping 2", "looping 3"]
    );
    // Only the last iteration's task runs remain, as in Kestra.
    assert_eq!(runs(&e).iter().filter(|r| r["taskId"] == "say").count(), 1);
    assert!(log_messages(&d, &id).contains(&"done after 4".to_string()));
}

#[test]
fn wait_for_max_iterations_fails_only_with_fail_on_max_reached() {
    let d = daemon();
    let e = run_to(&d, "wait_for_max", &[], "FAILED");
    assert_eq!(
        iterations_logged(&d, &id_of(&e), "iteration ").len(),
        3,
        "maxIterations 3"
    );
    assert!(
        log_messages(&d, &id_of(&e))
            .iter()
            .any(|l| l.contains("max iterations reached"))
    );
    let e = run_to(&d, "wait_for_max_ok", &[], "SUCCESS");
    assert_eq!(iterations_logged(&d, &id_of(&e), "iteration ").len(), 3);
}

#[test]
fn wait_for_stops_when_one_of_its_tasks_fails() {
    let d = daemon();
    let e = run_to(&d, "wait_for_child_fails", &[], "FAILED");
    assert_eq!(iterations_logged(&d, &id_of(&e), "iteration ").len(), 1);
    assert_eq!(task_run(&e, "poll")["state"], "FAILED");
}

#[test]
fn a_wait_for_between_iterations_survives_kill_9() {
    let mut d = daemon();
    let id = id_of(&d.run_nowait("test", "wait_for_durable", &[]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while iterations_logged(&d, &id, "iteration ").is_empty() {
        assert!(std::time::Instant::now() < deadline, "first iteration never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.kill9();
    d.restart();
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(
        iterations_logged(&d, &id, "iteration "),
        ["iteration 1", "iteration 2"],
        "{e:#}"
    );
}

#[test]
fn concurrency_queue_holds_executions_until_a_slot_frees_even_across_kill_9() {
    let mut d = daemon();
    let first = id_of(&d.run_wait("test", "concurrency_queue", &[]));
    d.wait_state(&first, "PAUSED");
    let second = id_of(&d.run_nowait("test", "concurrency_queue", &[]));
    let third = id_of(&d.run_nowait("test", "concurrency_queue", &[]));
    d.wait_state(&second, "QUEUED");
    let e = d.wait_state(&third, "QUEUED");
    assert!(runs(&e).is_empty(), "a queued execution runs nothing: {e:#}");
    assert!(
        log_messages(&d, &second)
            .iter()
            .any(|l| l == "Flow is queued due to concurrency limit exceeded, 1 running(s)"),
        "{:?}",
        log_messages(&d, &second)
    );
    d.kill9();
    d.restart();
    // Still queued after the restart: the first one still holds the only slot.
    assert_eq!(d.execution(&second)["state"], "QUEUED");
    assert_eq!(d.execution(&third)["state"], "QUEUED");
    assert!(d.cli(&["resume", &first]).ok());
    d.wait_state(&first, "SUCCESS");
    // The oldest queued execution starts; the other keeps waiting.
    d.wait_state(&second, "PAUSED");
    assert_eq!(d.execution(&third)["state"], "QUEUED");
    assert!(d.cli(&["resume", &second]).ok());
    d.wait_state(&second, "SUCCESS");
    d.wait_state(&third, "PAUSED");
    assert!(d.cli(&["resume", &third]).ok());
    d.wait_state(&third, "SUCCESS");
}

#[test]
fn concurrency_cancel_and_fail_end_the_extra_execution_at_once() {
    let d = daemon();
    for (flow, state) in [("concurrency_cancel", "CANCELLED"), ("concurrency_fail", "FAILED")] {
        let first = id_of(&d.run_wait("test", flow, &[]));
        d.wait_state(&first, "PAUSED");
        let extra = id_of(&d.run_nowait("test", flow, &[]));
        let e = d.wait_state(&extra, state);
        assert!(runs(&e).is_empty(), "{flow}: {e:#}");
        assert_eq!(d.execution(&first)["state"], "PAUSED", "{flow}");
        assert!(d.cli(&["resume", &first]).ok());
        d.wait_state(&first, "SUCCESS");
        // With the slot free again, a new execution runs.
        let next = id_of(&d.run_wait("test", flow, &[]));
        d.wait_state(&next, "PAUSED");
        assert!(d.cli(&["kill", &next]).ok());
        d.wait_state(&next, "KILLED");
    }
}

#[test]
fn timeouts_cancel_job_tasks_and_sleeps_and_allow_failure_ends_warning() {
    // A server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("url=http://{}", silent.local_addr().expect("addr"));
    let d = daemon();
    let e = run_to(&d, "timeouts", &[&url], "WARNING");
    // As Kestra's Worker: a timed-out or failed task with allowFailure is itself WARNING and the
    // execution goes on.
    for id in ["slow_call", "long_sleep", "warned"] {
        let run = task_run(&e, id);
        assert_eq!(run["state"], "WARNING", "{id}: {e:#}");
        assert_eq!(attempt_states(run), ["FAILED"], "{id}: {e:#}");
    }
    let logs = log_messages(&d, &id_of(&e));
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Timeout after PT1S: task `slow_call`")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Timeout after PT0.5S: task `long_sleep`")),
        "{logs:?}"
    );
    assert!(logs.contains(&"still running after allowed failures".to_string()));
    drop(silent);
}

#[test]
fn allow_warning_turns_a_warning_task_run_into_success() {
    let d = daemon();
    let e = run_to(&d, "allow_warning", &[], "SUCCESS");
    let run = task_run(&e, "shaky");
    assert_eq!(run["state"], "SUCCESS", "{e:#}");
    assert_eq!(attempt_states(run), ["FAILED", "SUCCESS"]);
}

#[test]
fn deprecated_allow_failure_block_runs_its_errors_and_ends_warning() {
    let d = daemon();
    let e = run_to(&d, "allow_failure_block", &[], "WARNING");
    // As Kestra's AllowFailureTest.control.
    assert_eq!(task_run(&e, "tolerant")["state"], "WARNING", "{e:#}");
    assert_eq!(task_run(&e, "steps")["state"], "FAILED");
    assert_eq!(task_run(&e, "before")["state"], "SUCCESS");
    assert_eq!(task_run(&e, "breaks")["state"], "FAILED");
    assert_eq!(task_run(&e, "local_handler")["state"], "SUCCESS");
    assert_eq!(task_run(&e, "next")["state"], "SUCCESS");
    assert!(
        !runs(&e)
            .iter()
            .any(|r| r["taskId"] == "global_handler" || r["taskId"] == "skipped_by_failure")
    );
}

#[test]
fn for_each_over_a_null_value_fails_like_kestra() {
    let d = daemon();
    let e = run_to(&d, "each_null", &[], "FAILED");
    // As Kestra's eachNull: only the loop's own task run, FAILED, with Kestra's message.
    assert_eq!(runs(&e).len(), 1, "{e:#}");
    let logs = log_messages(&d, &id_of(&e));
    assert!(
        logs.iter().any(|l| l.contains("Found '1' null values on Each")),
        "{logs:?}"
    );
}

#[test]
fn a_flow_output_that_fails_to_render_fails_the_execution() {
    let d = daemon();
    let e = run_to(&d, "outputs_fail", &[], "FAILED");
    assert_eq!(task_run(&e, "fine")["state"], "SUCCESS");
    assert_eq!(e["outputs"]["good"], "fine", "{e:#}");
    let logs = log_messages(&d, &id_of(&e));
    assert!(
        logs.iter().any(|l| l.starts_with("Failed to render output values")),
        "{logs:?}"
    );
}

#[test]
fn parents_lists_every_enclosing_task_run_nearest_first() {
    let d = daemon();
    let e = run_to(&d, "parents", &[], "SUCCESS");
    let mut leaves: Vec<String> = log_messages(&d, &id_of(&e))
        .into_iter()
        .filter(|l| l.starts_with("leaf "))
        .collect();
    leaves.sort();
    // leaf's parents: group (value 1|2), inner run (value a|b), outer.
    assert_eq!(
        leaves,
        ["leaf a-1-1", "leaf a-2-2", "leaf b-1-1", "leaf b-2-2"],
        "{e:#}"
    );
}

#[test]
fn dag_runs_each_task_after_what_it_depends_on_and_refuses_cycles() {
    let d = daemon();
    let e = run_to(&d, "dag", &[], "SUCCESS");
    assert_eq!(runs(&e).len(), 5, "{e:#}");
    let logs = log_messages(&d, &id_of(&e));
    assert!(
        logs.contains(&"last after left of root and right of root".to_string()),
        "{logs:?}"
    );
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("cycle.yaml");
    std::fs::write(
        &file,
        "id: cycle\nnamespace: test\ntasks:\n  - id: g\n    type: io.kestra.plugin.core.flow.Dag\n    tasks:\n      - task: {id: a, type: io.kestra.plugin.core.log.Log, message: a}\n        dependsOn: [b]\n      - task: {id: b, type: io.kestra.plugin.core.log.Log, message: b}\n        dependsOn: [a]\n",
    )
    .expect("write");
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("dependency cycle: a -> b -> a"), "{out}");
}

#[test]
fn deprecated_pause_tasks_run_after_the_resume() {
    let d = daemon();
    let id = id_of(&d.run_wait("test", "pause_tasks", &[]));
    let e = d.wait_state(&id, "PAUSED");
    assert!(!runs(&e).iter().any(|r| r["taskId"] == "inside"), "{e:#}");
    assert!(d.cli(&["resume", &id]).ok());
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(runs(&e).len(), 3, "{e:#}");
    assert_eq!(task_run(&e, "gate")["state"], "SUCCESS");
    let logs = log_messages(&d, &id);
    let inside = logs
        .iter()
        .position(|l| l == "ran after the resume")
        .expect("inside ran");
    let next = logs.iter().position(|l| l == "next ran").expect("next ran");
    assert!(inside < next, "{logs:?}");
}

#[test]
fn fetch_collects_this_executions_logs_by_level_and_task() {
    let d = daemon();
    let e = run_to(&d, "fetch_logs", &[], "SUCCESS");
    assert_eq!(task_run(&e, "all")["outputs"]["size"], 3, "{e:#}");
    assert_eq!(task_run(&e, "warnings")["outputs"]["size"], 1, "{e:#}");
    assert_eq!(task_run(&e, "warnings")["outputs"]["logs"][0]["message"], "a warning");
    let only = &task_run(&e, "only_chatty")["outputs"];
    assert_eq!(only["size"], 2, "{e:#}");
    assert_eq!(only["logs"][1]["message"], "second line");
    assert_eq!(only["logs"][1]["taskId"], "chatty");
    // Kestra's `uri`: the same lines as a file of the execution, one JSON document a line.
    let uri = only["uri"].as_str().expect("uri");
    let out = d.cli(&["executions", "file", e["id"].as_str().expect("id"), uri]);
    assert!(out.ok(), "{out}");
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["message"], "first line");
}

/// Kestra's log.Fetch with `executionId` (and `namespace` + `flowId`) reads another execution's
/// lines; Tollgate keeps namespaces as the boundary, so a flow cannot read the logs of an
/// execution of another namespace, even one whose id it knows.
#[test]
fn fetch_reads_another_execution_of_its_namespace_and_never_of_another() {
    let d = daemon();
    let source = run_to(&d, "fetch_logs", &[], "SUCCESS");
    let source_id = id_of(&source);
    let target = format!("target={source_id}");
    let e = run_to(&d, "fetch_other", &[&target], "SUCCESS");
    let theirs = &task_run(&e, "theirs")["outputs"];
    assert_eq!(theirs["size"], 1, "{e:#}");
    assert_eq!(theirs["logs"][0]["message"], "a warning", "{e:#}");
    assert_eq!(theirs["logs"][0]["taskId"], "warner", "{e:#}");

    // The attack: a flow of `test` names an execution of `prod` that logs a confidential line.
    d.apply_flow(
        "prod_secret",
        "id: payroll\nnamespace: prod\ntasks:\n  - id: leak\n    type: io.kestra.plugin.core.log.Log\n    level: WARN\n    message: salary of ana is 9000\n",
    );
    let prod_id = id_of(&d.run_wait("prod", "payroll", &[]));
    let e = run_to(
        &d,
        "fetch_other",
        &[&format!("target={prod_id}"), "ns=prod", "flow=payroll"],
        "FAILED",
    );
    assert!(task_run(&e, "theirs")["outputs"].get("logs").is_none(), "{e:#}");
    let logs = log_messages(&d, &id_of(&e));
    assert!(!logs.iter().any(|l| l.contains("salary")), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("own namespace `test` only, not of `prod`")),
        "{logs:?}"
    );

    // The id must be an execution of the flow named (of this flow when none is, as in Kestra).
    let e = run_to(&d, "fetch_other", &[&target, "flow=fetch_other"], "FAILED");
    let logs = log_messages(&d, &id_of(&e));
    assert!(
        logs.iter().any(|l| l.contains(&format!("no execution `{source_id}`"))),
        "{logs:?}"
    );
}

/// Kestra counts a MAX_DURATION `sla` from the creation, queue time included: an execution that
/// waits in the `concurrency` queue past it is found late there (log line, labels; FAIL and
/// CANCEL end it through the same check), not only once it leaves the queue.
#[test]
fn a_queued_execution_past_its_max_duration_is_found_late_in_the_queue() {
    let d = daemon();
    let holder = id_of(&d.run_wait("test", "queued_sla", &[]));
    let queued = id_of(&d.run_nowait("test", "queued_sla", &[]));
    tollgate_tests::wait_for("the SLA violation of the queued execution", || {
        log_messages(&d, &queued)
            .iter()
            .any(|l| l.contains("SLA 'quick' violated"))
            .then_some(())
    });
    let e = d.execution(&queued);
    assert_eq!(e["state"], "QUEUED", "{e:#}");
    assert_eq!(e["labels"]["late"], "yes", "{e:#}");
    assert!(runs(&e).is_empty(), "{e:#}");
    // The slot frees: the late execution runs on (behavior NONE).
    assert!(d.cli(&["resume", &holder]).ok());
    d.wait_state(&queued, "PAUSED");
}
