//! Control flow, subflows and several pauses in one execution, against a real daemon.

use tollgate_tests::{Daemon, log_messages, task_run};

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

#[test]
fn if_switch_foreach_outputs_and_finally() {
    let d = Daemon::start();
    let e = d.run_wait("test", "control", &["color=green"]);
    let id = id_of(&e);
    let e = d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    for expected in [
        "not red",
        "green case",
        "item a",
        "item b",
        "item c",
        "still running",
        "finally ran",
    ] {
        assert!(logs.iter().any(|l| l == expected), "missing `{expected}` in {logs:?}");
    }
    assert!(!logs.iter().any(|l| l == "error branch ran"), "{logs:?}");
    assert_eq!(task_run(&e, "values")["outputs"]["values"]["color"], "green");
    assert_eq!(e["outputs"]["chosen"], "green");
    let items = e["taskRuns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["taskId"] == "item_log")
        .count();
    assert_eq!(items, 3);
}

#[test]
fn a_failure_runs_errors_then_finally_and_fails_the_execution() {
    let d = Daemon::start();
    let id = id_of(&d.run_wait("test", "control", &["color=red", "fail=true"]));
    let e = d.wait_state(&id, "FAILED");
    let logs = log_messages(&d, &id);
    for expected in [
        "red branch",
        "default case",
        "asked to fail",
        "error branch ran",
        "finally ran",
    ] {
        assert!(logs.iter().any(|l| l == expected), "missing `{expected}` in {logs:?}");
    }
    assert!(!logs.iter().any(|l| l == "still running"), "{logs:?}");
    assert_eq!(task_run(&e, "maybe_fail")["state"], "FAILED");
}

#[test]
fn two_pauses_in_parallel_are_resumed_separately_in_either_order() {
    let d = Daemon::start();
    for order in [["legal", "finance"], ["finance", "legal"]] {
        let id = id_of(&d.run_wait("test", "parallel_gates", &[]));
        let e = d.execution(&id);
        assert_eq!(e["pauses"].as_array().unwrap().len(), 2, "{e:#}");
        for (i, task) in order.iter().enumerate() {
            let input = if *task == "legal" { "ok=true" } else { "budget=1200" };
            let out = d.cli(&["resume", &id, "--task", task, "--input", input]);
            assert!(out.ok(), "{out}");
            if i == 0 {
                let e = d.execution(&id);
                assert_eq!(e["state"], "PAUSED", "still waiting for the other pause: {e:#}");
                assert_eq!(task_run(&e, order[1])["state"], "PAUSED");
            }
        }
        let e = d.wait_state(&id, "SUCCESS");
        assert_eq!(task_run(&e, "finance")["outputs"]["onResume"]["budget"], 1200);
        let logs = log_messages(&d, &id);
        assert!(logs.iter().any(|l| l == "legal=true finance=1200"), "{logs:?}");
    }
}

#[test]
fn a_paused_subflow_keeps_its_parent_running_and_resumes_through_the_child() {
    let d = Daemon::start();
    let parent = d.run_nowait("test", "parent", &[]);
    let parent_id = id_of(&parent);
    let child = d.wait_listed(&["executions", "--state", "PAUSED", "--flow", "child"], |e| {
        e["parentExecutionId"] == parent_id.as_str()
    });
    assert_eq!(d.execution(&parent_id)["state"], "RUNNING");
    let child_id = id_of(&child);
    assert!(d.cli(&["resume", &child_id, "--input", "verdict=approved"]).ok());
    d.wait_state(&child_id, "SUCCESS");
    let p = d.wait_state(&parent_id, "SUCCESS");
    assert_eq!(task_run(&p, "call")["outputs"]["outputs"]["verdict"], "approved");
    let logs = log_messages(&d, &parent_id);
    assert!(
        logs.iter().any(|l| l == "child said approved (state SUCCESS)"),
        "{logs:?}"
    );
}

#[test]
fn killing_a_parent_kills_its_paused_child() {
    let d = Daemon::start();
    let parent_id = id_of(&d.run_nowait("test", "parent", &[]));
    let child = d.wait_listed(&["executions", "--state", "PAUSED", "--flow", "child"], |e| {
        e["parentExecutionId"] == parent_id.as_str()
    });
    assert!(d.cli(&["kill", &parent_id]).ok());
    d.wait_state(&parent_id, "KILLED");
    d.wait_state(child["id"].as_str().unwrap(), "KILLED");
}

/// A bulk resume names the paused task run it decides (what the console's form was opened
/// for): once that run was decided by someone else, the call fails for it instead of deciding
/// the execution's other pause with values meant for the first.
#[test]
fn a_bulk_resume_at_a_task_run_decided_meanwhile_fails_and_leaves_the_sibling_paused() {
    use tollgate_proto::v1 as pb;
    let d = Daemon::start();
    let id = id_of(&d.run_wait("test", "parallel_gates", &[]));
    let legal_run = task_run(&d.execution(&id), "legal")["id"]
        .as_str()
        .expect("task run id")
        .to_string();
    let out = d.cli(&["resume", &id, "--task", "legal", "--input", "ok=true"]);
    assert!(out.ok(), "someone else decides `legal` first: {out}");
    let results = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(d.server())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        pb::executions_client::ExecutionsClient::new(ch)
            .bulk_resume(pb::BulkResumeRequest {
                ids: vec![id.clone()],
                task_run_ids: [(id.clone(), legal_run.clone())].into(),
                inputs: [("ok".to_string(), "false".to_string())].into(),
                ..Default::default()
            })
            .await
            .expect("bulk resume answers per id")
            .into_inner()
            .results
    });
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].code, "FAILED_PRECONDITION", "{:?}", results[0]);
    let e = d.execution(&id);
    assert_eq!(e["state"], "PAUSED", "{e:#}");
    assert_eq!(
        task_run(&e, "finance")["state"],
        "PAUSED",
        "the sibling was not decided"
    );
    assert_eq!(
        task_run(&e, "legal")["outputs"]["onResume"]["ok"],
        true,
        "the first decision stands"
    );
}

/// Kestra's older loops (replaced by ForEach) still run: Kestra's own `each-parallel` and
/// `each-sequential-nested` test flows, with the state, task-run count and outputs its tests assert.
#[test]
fn each_sequential_and_each_parallel_run_like_kestra() {
    let d = Daemon::start();
    let dir = d.data_dir.parent().expect("temp").to_path_buf();
    let parallel = "id: each_parallel\nnamespace: test\ntasks:\n  - id: 1_each\n    type: io.kestra.plugin.core.flow.EachParallel\n    value: '[\"value 1\", \"value 2\", \"value 3\"]'\n    tasks:\n      - id: 1-1\n        type: io.kestra.plugin.core.log.Log\n        message: \"{{ task.id }}\"\n      - id: 1-2\n        type: io.kestra.plugin.core.log.Log\n        message: \"{{ task.id }}\"\n  - id: 2_end\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{task.id}} > {{taskrun.startDate}}\"\n";
    let nested = "id: each_sequential_nested\nnamespace: test\ntasks:\n  - id: 1_each\n    type: io.kestra.plugin.core.flow.EachSequential\n    value: [\"s1\", \"s2\", \"s3\"]\n    tasks:\n      - id: 1-1_return\n        type: io.kestra.plugin.core.debug.Return\n        format: \"{{task.id}} > {{taskrun.value}}\"\n      - id: 1-2_each\n        type: io.kestra.plugin.core.flow.EachSequential\n        value: '[\"a a\", \"b b\"]'\n        tasks:\n          - id: 1-2-1_return\n            type: io.kestra.plugin.core.debug.Return\n            format: \"{{task.id}} > {{taskrun.value}}\"\n  - id: 2_return\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{task.id}} > {{outputs['1-2-1_return'].s1['a a'].value}}\"\n";
    for (name, src) in [("each_parallel", parallel), ("each_sequential_nested", nested)] {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, src).expect("write flow");
        let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
        assert!(out.ok(), "{out}");
    }
    let e = d.wait_state(&id_of(&d.run_nowait("test", "each_parallel", &[])), "SUCCESS");
    // Kestra's EachParallel test: 8 task runs (the loop, 3 values x 2 tasks, the end).
    assert_eq!(e["taskRuns"].as_array().map(Vec::len), Some(8), "{e:#}");
    let e = d.wait_state(&id_of(&d.run_nowait("test", "each_sequential_nested", &[])), "SUCCESS");
    // Each outer value runs its return and the inner loop, whose two values run theirs.
    let runs = e["taskRuns"].as_array().cloned().unwrap_or_default();
    let count = |task: &str| runs.iter().filter(|r| r["taskId"] == task).count();
    assert_eq!(count("1-1_return"), 3, "{e:#}");
    assert_eq!(count("1-2-1_return"), 6, "{e:#}");
    assert_eq!(
        task_run(&e, "2_return")["outputs"]["value"],
        "2_return > 1-2-1_return > a a",
        "outputs of a nested loop are keyed by each level's value, as in Kestra"
    );
}

/// Kestra's Sleep waits on a durable timer: its run stays RUNNING (it is not a pause anyone can
/// decide), survives `kill -9` of the daemon, and ends SUCCESS when the duration is over; a
/// killed execution's sleep never wakes it.
#[test]
fn sleep_waits_on_a_durable_timer_across_kill_9() {
    let mut d = Daemon::start();
    let file = d.data_dir.parent().expect("temp").join("sleepy.yaml");
    let src = "id: sleepy\nnamespace: test\ninputs:\n  - id: wait\n    type: STRING\n    defaults: PT2S\ntasks:\n  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: \"{{ inputs.wait }}\"\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: awake\n";
    std::fs::write(&file, src).expect("write flow");
    assert!(d.cli(&["flow", "apply", file.to_str().expect("path")]).ok());
    let id = id_of(&d.run_nowait("test", "sleepy", &[]));
    let e = d.execution(&id);
    assert_eq!(e["state"], "RUNNING", "{e:#}");
    assert_eq!(task_run(&e, "nap")["state"], "RUNNING");
    assert_eq!(
        e["pauses"].as_array().map(Vec::len),
        Some(0),
        "a sleep is not a pause: {e:#}"
    );
    d.kill9();
    d.restart();
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "nap")["state"], "SUCCESS");
    assert!(log_messages(&d, &id).iter().any(|l| l == "awake"));

    let killed = id_of(&d.run_nowait("test", "sleepy", &["wait=PT1S"]));
    assert!(d.cli(&["kill", &killed]).ok());
    d.wait_state(&killed, "KILLED");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let e = d.execution(&killed);
    assert_eq!(e["state"], "KILLED", "the timer of a killed sleep does nothing: {e:#}");
    assert!(!log_messages(&d, &killed).iter().any(|l| l == "awake"));

    let bad = id_of(&d.run_nowait("test", "sleepy", &["wait=soon"]));
    let e = d.wait_state(&bad, "FAILED");
    assert_eq!(task_run(&e, "nap")["state"], "FAILED");
    assert!(
        log_messages(&d, &bad)
            .iter()
            .any(|l| l.contains("invalid `duration` `soon`")),
        "the error names the property and the value"
    );
}

/// Kestra's `labels-update-task` test flow: labels from a rendered JSON string, a map and a list
/// of {key, value}, overriding a flow label; `system.` labels stay the daemon's.
#[test]
fn the_labels_task_sets_labels_like_kestra() {
    let d = Daemon::start();
    let dir = d.data_dir.parent().expect("temp").to_path_buf();
    let src = r#"id: labels_update
namespace: test
labels:
  flowLabelKey: flowLabelValue
  overriddenFlowLabelKey: flowValueThatWillGetOverridden
inputs:
  - id: labelsJson
    type: JSON
  - id: labelsMapKey
    type: STRING
  - id: labelsMapValue
    type: STRING
  - id: labelsListKey
    type: STRING
  - id: labelsListValue
    type: STRING
tasks:
  - id: from-render
    type: io.kestra.plugin.core.execution.Labels
    labels: "{{ inputs.labelsJson }}"
  - id: from-map
    type: io.kestra.plugin.core.execution.Labels
    labels:
      "{{ inputs.labelsMapKey }}": "{{ inputs.labelsMapValue }}"
  - id: from-list
    type: io.kestra.plugin.core.execution.Labels
    labels:
      - key: "{{ inputs.labelsListKey }}"
        value: "{{ inputs.labelsListValue }}"
  - id: override-labels
    type: io.kestra.plugin.core.execution.Labels
    labels:
      overriddenFlowLabelKey: "{{ flow.namespace ~ '.' ~ flow.id }}"
      overriddenExecutionLabelKey: "{{ taskrun.id }}"
"#;
    let file = dir.join("labels_update.yaml");
    std::fs::write(&file, src).expect("write flow");
    assert!(d.cli(&["flow", "apply", file.to_str().expect("path")]).ok());
    let e = d.run_wait(
        "test",
        "labels_update",
        &[
            r#"labelsJson={"keyFromJson": "valueFromJson"}"#,
            "labelsMapKey=keyFromMap",
            "labelsMapValue=valueFromMap",
            "labelsListKey=keyFromList",
            "labelsListValue=valueFromList",
        ],
    );
    let e = d.wait_state(&id_of(&e), "SUCCESS");
    let labels = &e["labels"];
    assert_eq!(labels["flowLabelKey"], "flowLabelValue", "{e:#}");
    assert_eq!(labels["overriddenFlowLabelKey"], "test.labels_update");
    assert_eq!(labels["keyFromJson"], "valueFromJson");
    assert_eq!(labels["keyFromMap"], "valueFromMap");
    assert_eq!(labels["keyFromList"], "valueFromList");
    assert_eq!(
        labels["overriddenExecutionLabelKey"],
        task_run(&e, "override-labels")["id"]
    );

    let sneaky = "id: sneaky_labels\nnamespace: test\ntasks:\n  - id: claim\n    type: io.kestra.plugin.core.execution.Labels\n    labels:\n      system.username: ceo@example.com\n";
    let file = dir.join("sneaky_labels.yaml");
    std::fs::write(&file, sneaky).expect("write flow");
    assert!(d.cli(&["flow", "apply", file.to_str().expect("path")]).ok());
    let e = d.wait_state(&id_of(&d.run_nowait("test", "sneaky_labels", &[])), "FAILED");
    assert_ne!(e["labels"]["system.username"], "ceo@example.com", "{e:#}");
}

/// `errors` and `finally` on a flowable task, as Kestra runs them: when a child fails, the
/// task's `errors` run, then its `finally`; the task and the execution end FAILED; a task after
/// it does not run. Without a failure only `finally` runs.
#[test]
fn errors_and_finally_on_a_flowable_task_run_as_its_children() {
    let d = Daemon::start();
    let src = "id: local_errors\nnamespace: test\ninputs:\n  - id: fail\n    type: BOOLEAN\n    defaults: true\ntasks:\n  - id: block\n    type: io.kestra.plugin.core.flow.Sequential\n    tasks:\n      - id: step\n        type: io.kestra.plugin.core.execution.Fail\n        condition: \"{{ inputs.fail }}\"\n    errors:\n      - id: on_error\n        type: io.kestra.plugin.core.log.Log\n        message: handled {{ task.id }}\n    finally:\n      - id: always\n        type: io.kestra.plugin.core.log.Log\n        message: cleaned up\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: after the block\n";
    let file = d.data_dir.parent().expect("temp").join("local_errors.yaml");
    std::fs::write(&file, src).expect("write flow");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&id_of(&d.run_nowait("test", "local_errors", &[])), "FAILED");
    assert_eq!(task_run(&e, "block")["state"], "FAILED", "{e:#}");
    assert_eq!(task_run(&e, "on_error")["state"], "SUCCESS");
    assert_eq!(task_run(&e, "always")["state"], "SUCCESS");
    let logs = log_messages(&d, e["id"].as_str().expect("id"));
    assert!(logs.iter().any(|l| l == "handled on_error"), "{logs:?}");
    assert!(!logs.iter().any(|l| l == "after the block"), "{logs:?}");

    let e = d.wait_state(
        &id_of(&d.run_nowait("test", "local_errors", &["fail=false"])),
        "SUCCESS",
    );
    let logs = log_messages(&d, e["id"].as_str().expect("id"));
    assert!(
        logs.iter().any(|l| l == "cleaned up") && logs.iter().any(|l| l == "after the block"),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.starts_with("handled")), "{logs:?}");

    // On a task that holds no tasks, `errors` is refused with its place.
    let bad = "id: bad_errors\nnamespace: test\ntasks:\n  - id: leaf\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    errors:\n      - id: x\n        type: io.kestra.plugin.core.log.Log\n        message: x\n";
    let file = d.data_dir.parent().expect("temp").join("bad_errors.yaml");
    std::fs::write(&file, bad).expect("write flow");
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.stdout.contains("bad_errors.yaml:7:5") || out.stderr.contains("bad_errors.yaml:7:5"),
        "{out}"
    );
    assert!(format!("{out}").contains("only allowed on a flowable task"), "{out}");
}

/// As Kestra (FailTest.failOnSwitch): a value no case matches fails a Switch without `defaults`,
/// and the execution with it, saying which value; with `allowFailure` the execution only warns.
#[test]
fn a_switch_whose_value_matches_no_case_and_has_no_defaults_fails() {
    let d = Daemon::start();
    d.apply_flow(
        "switch_nodefault",
        "id: switch_nodefault\nnamespace: test\ninputs:\n  - id: pick\n    type: STRING\ntasks:\n  - id: route\n    type: io.kestra.plugin.core.flow.Switch\n    value: \"{{ inputs.pick }}\"\n    cases:\n      a:\n        - id: on_a\n          type: io.kestra.plugin.core.log.Log\n          message: picked a\n  - id: tolerant\n    type: io.kestra.plugin.core.flow.Switch\n    allowFailure: true\n    value: \"{{ inputs.pick }}\"\n    cases:\n      z:\n        - id: on_z\n          type: io.kestra.plugin.core.log.Log\n          message: picked z\n",
    );
    let ok = id_of(&d.run_wait("test", "switch_nodefault", &["pick=a"]));
    let e = d.wait_state(&ok, "WARNING");
    assert_eq!(task_run(&e, "route")["state"], "SUCCESS", "{e:#}");
    let bad = id_of(&d.run_wait("test", "switch_nodefault", &["pick=q"]));
    let e = d.wait_state(&bad, "FAILED");
    assert_eq!(task_run(&e, "route")["state"], "FAILED", "{e:#}");
    assert!(
        log_messages(&d, &bad).iter().any(|m| m.contains("no case matches `q`")),
        "{:?}",
        log_messages(&d, &bad)
    );
}
