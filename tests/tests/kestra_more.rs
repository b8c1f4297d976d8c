//! More of Kestra's core tasks against a real daemon: WorkingDirectory (tasks sharing one
//! directory), with assertions modelled on Kestra's own Java tests for the same constructs
//! (state, task-run count, outputs).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, assert_logged, log_messages, task_run};

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

fn task_runs(e: &Value) -> &Vec<Value> {
    e["taskRuns"].as_array().expect("taskRuns")
}

/// `taskId` of every task run, in order (for assertion messages).
fn run_ids(e: &Value) -> Vec<String> {
    task_runs(e)
        .iter()
        .map(|r| {
            format!(
                "{}={}",
                r["taskId"].as_str().unwrap_or("?"),
                r["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Polls `cond` until it holds, failing with `what` after a generous deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scratch(d: &Daemon) -> PathBuf {
    let dir = d.data_dir.parent().expect("temp").join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Like Kestra's WorkingDirectoryTest.success / inputFiles: the tasks share one directory
/// (a file written by the first is read by the next), `inputFiles` are there before the first
/// task, a disabled task makes no task run, and the directory is gone afterwards.
#[test]
fn working_directory_tasks_share_one_directory_removed_at_the_end() {
    let d = Daemon::start();
    d.apply_flow(
        "wd",
        r#"id: wd
namespace: test.kestra
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    inputFiles:
      conf/greeting.txt: "hello {{ inputs.who }}"
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - mkdir -p out
          - cat conf/greeting.txt > out/stay.txt
          - echo '::{"outputs":{"dir":"'"$PWD"'"}}::'
      - id: skipped
        type: io.kestra.plugin.core.debug.Return
        disabled: true
      - id: second
        type: io.kestra.plugin.scripts.shell.Script
        script: |
          echo "read: $(cat out/stay.txt)"
          echo '::{"outputs":{"content":"'"$(cat out/stay.txt)"'","dir":"'"$PWD"'"}}::'
  - id: end
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.second.vars.content }}"
"#,
    );
    let id = id_of(&d.run_nowait("test.kestra", "wd", &["who=tollgate"]));
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_runs(&e).len(), 4, "worker, first, second, end: {e:#}");
    assert_eq!(task_run(&e, "end")["outputs"]["value"], "hello tollgate", "{e:#}");
    let first_dir = task_run(&e, "first")["outputs"]["vars"]["dir"]
        .as_str()
        .expect("dir")
        .to_string();
    let second_dir = task_run(&e, "second")["outputs"]["vars"]["dir"]
        .as_str()
        .expect("dir")
        .to_string();
    assert_eq!(first_dir, second_dir, "one directory for both tasks");
    assert!(first_dir.starts_with(d.data_dir.to_str().expect("path")), "{first_dir}");
    eventually("the directory is removed once the WorkingDirectory ended", || {
        !PathBuf::from(&first_dir).exists()
    });
    assert!(log_messages(&d, &id).iter().any(|l| l == "read: hello tollgate"));

    // Two executions do not share a directory.
    let id2 = id_of(&d.run_nowait("test.kestra", "wd", &["who=again"]));
    let e2 = d.wait_state(&id2, "SUCCESS");
    assert_ne!(
        task_run(&e2, "first")["outputs"]["vars"]["dir"].as_str(),
        Some(first_dir.as_str())
    );
    assert_eq!(task_run(&e2, "end")["outputs"]["value"], "hello again");
}

/// Like Kestra's WorkingDirectoryTest.failed: a failing task stops the directory's tasks, its
/// `errors` run, the execution fails (3 task runs: the directory, the failed task, the error
/// handler).
#[test]
fn a_failure_in_a_working_directory_stops_it_and_runs_its_errors() {
    let d = Daemon::start();
    d.apply_flow(
        "wd_fail",
        r#"id: wd_fail
namespace: test.kestra
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - exit 4
      - id: second
        type: io.kestra.plugin.core.debug.Return
        format: never
    errors:
      - id: error-t1
        type: io.kestra.plugin.core.debug.Return
        format: "Error Trigger ! {{ task.id }}"
  - id: end
    type: io.kestra.plugin.core.debug.Return
    format: never
"#,
    );
    let id = id_of(&d.run_nowait("test.kestra", "wd_fail", &[]));
    let e = d.wait_state(&id, "FAILED");
    assert_eq!(task_runs(&e).len(), 3, "{:?}", run_ids(&e));
    assert_eq!(task_run(&e, "worker")["state"], "FAILED", "{e:#}");
    assert_eq!(task_run(&e, "error-t1")["outputs"]["value"], "Error Trigger ! error-t1");
    assert!(
        task_runs(&e)
            .iter()
            .all(|r| r["taskId"] != "second" && r["taskId"] != "end")
    );
}

/// Like Kestra's WorkingDirectoryTest.taskRun: inside a ForEach each value gets its own
/// directory, and the tasks see the loop's `taskrun.value` (and `workerTaskrun`).
#[test]
fn a_working_directory_per_loop_value() {
    let d = Daemon::start();
    d.apply_flow(
        "wd_each",
        r#"id: wd_each
namespace: test.kestra
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    concurrencyLimit: 0
    values: ["1", "2"]
    tasks:
      - id: workingDir
        type: io.kestra.plugin.core.flow.WorkingDirectory
        tasks:
          - id: write
            type: io.kestra.plugin.scripts.shell.Commands
            commands:
              - test ! -f value.txt
              - echo "{{ taskrun.value }}" > value.txt
          - id: read
            type: io.kestra.plugin.scripts.shell.Commands
            commands:
              - echo '::{"outputs":{"v":"'"$(cat value.txt)"'"}}::'
          - id: log-taskrun
            type: io.kestra.plugin.core.debug.Return
            format: "{{ taskrun.value }}-{{ workerTaskrun.value }}"
"#,
    );
    let id = id_of(&d.run_nowait("test.kestra", "wd_each", &[]));
    eventually("the execution ends", || {
        let s = d.execution(&id)["state"].as_str().unwrap_or_default().to_string();
        s == "SUCCESS" || s == "FAILED"
    });
    let e = d.execution(&id);
    assert_eq!(e["state"], "SUCCESS", "{:?}\n{:#?}", run_ids(&e), log_messages(&d, &id));
    // each + 2 x (workingDir, write, read, log-taskrun)
    assert_eq!(task_runs(&e).len(), 9, "{:?}", run_ids(&e));
    // Each directory saw only its own value's file (`test ! -f value.txt` held in both).
    let mut seen: Vec<&str> = task_runs(&e)
        .iter()
        .filter(|r| r["taskId"] == "read")
        .filter_map(|r| r["outputs"]["vars"]["v"].as_str())
        .collect();
    seen.sort();
    assert_eq!(seen, vec!["1", "2"], "{:?}", run_ids(&e));
    let returned: Vec<&str> = task_runs(&e)
        .iter()
        .filter(|r| r["taskId"] == "log-taskrun")
        .filter_map(|r| r["outputs"]["value"].as_str())
        .collect();
    // `workerTaskrun` (Kestra's variable inside a WorkingDirectory) is the directory's run.
    assert!(returned.contains(&"1-1") && returned.contains(&"2-2"), "{e:#}");
}

/// What Kestra's validator refuses (a flowable task inside), and what needs Kestra's internal
/// storage, is refused naming the property and its place; nothing is applied.
#[test]
fn working_directory_refusals_name_the_property_and_place() {
    let d = Daemon::start();
    let dir = scratch(&d);
    let file = dir.join("bad_wd.yaml");
    std::fs::write(
        &file,
        r#"id: bad_wd
namespace: test.kestra
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    namespaceFiles:
      enabled: true
    tasks:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: hi
"#,
    )
    .expect("write flow");
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("bad_wd.yaml:6:5") && text.contains("`namespaceFiles`") && text.contains("not supported"),
        "{text}"
    );
    let nested = dir.join("nested_wd.yaml");
    std::fs::write(
        &nested,
        r#"id: nested_wd
namespace: test.kestra
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: inner
        type: io.kestra.plugin.core.flow.Sequential
        tasks:
          - id: hello
            type: io.kestra.plugin.core.log.Log
            message: hi
"#,
    )
    .expect("write flow");
    let out = d.cli(&["flow", "validate", nested.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("nested_wd.yaml:8:9") && text.contains("only runnable tasks are allowed"),
        "{text}"
    );
    for f in [&file, &nested] {
        let applied = d.cli(&["flow", "apply", f.to_str().expect("path")]);
        assert!(!applied.ok(), "{applied}");
    }
    let listed = d.cli(&["flow", "list"]);
    assert!(
        !listed.stdout.contains("bad_wd") && !listed.stdout.contains("nested_wd"),
        "{listed}"
    );
}

/// A kill -9 while a WorkingDirectory's second task runs: after the restart its tasks run again
/// from the first one in a fresh directory (as Kestra re-runs a WorkingDirectory whose worker
/// died), and the execution succeeds.
#[test]
fn a_working_directory_running_at_a_crash_runs_again_from_its_first_task() {
    let mut d = Daemon::start();
    let dir = scratch(&d);
    let (runs, go) = (dir.join("first-runs"), dir.join("go"));
    d.apply_flow(
        "wd_crash",
        &format!(
            r#"id: wd_crash
namespace: test.kestra
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo run >> {runs}
          - echo made-by-first > shared.txt
      - id: second
        type: io.kestra.plugin.scripts.shell.Commands
        commands:
          - echo waiting
          - while [ ! -f {go} ]; do sleep 0.1; done
          - echo '::{{"outputs":{{"shared":"'"$(cat shared.txt)"'"}}}}::'
"#,
            runs = runs.display(),
            go = go.display()
        ),
    );
    let id = id_of(&d.run_nowait("test.kestra", "wd_crash", &[]));
    eventually("the second task waits", || {
        log_messages(&d, &id).iter().any(|l| l == "waiting")
    });
    d.kill9();
    d.restart();
    eventually("the first task ran again", || {
        std::fs::read_to_string(&runs).unwrap_or_default().lines().count() >= 2
    });
    std::fs::File::create(&go).expect("go file");
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_runs(&e).len(), 3, "the dropped runs are gone: {e:#}");
    assert_eq!(
        task_run(&e, "second")["outputs"]["vars"]["shared"],
        "made-by-first",
        "{e:#}"
    );
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l.contains("running its tasks again from the first one")),
        "{logs:#?}"
    );
}

const WAITER: &str = r#"id: waiter
namespace: NS
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: note
        type: STRING
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "note={{ outputs.wait.onResume.note }}"
"#;

const RESUMER: &str = r#"id: resumer
namespace: test.kestra
inputs:
  - id: executionId
    type: STRING
tasks:
  - id: resume
    type: io.kestra.plugin.core.execution.Resume
    executionId: "{{ inputs.executionId }}"
    inputs:
      note: "from {{ flow.id }}"
"#;

/// The audit log as `tollgate audit -o json` lists it, as text.
fn audit_text(d: &Daemon) -> String {
    d.cli_json(&["audit", "--limit", "1000"]).to_string()
}

/// Like Kestra's resume-execution test: a flow resumes another paused execution, with inputs;
/// the paused execution goes on with them, and the decision is audited as the flow.
#[test]
fn a_resume_task_resumes_another_execution_with_inputs_audited_as_the_flow() {
    let d = Daemon::start();
    d.apply_flow("waiter", &WAITER.replace("NS", "test.kestra"));
    d.apply_flow("resumer", RESUMER);
    let waiting = id_of(&d.run_nowait("test.kestra", "waiter", &[]));
    d.wait_state(&waiting, "PAUSED");
    let arg = format!("executionId={waiting}");
    let resumer = id_of(&d.run_nowait("test.kestra", "resumer", &[&arg]));
    let r = d.wait_state(&resumer, "SUCCESS");
    assert_eq!(task_runs(&r).len(), 1, "{:?}", run_ids(&r));
    let e = d.wait_state(&waiting, "SUCCESS");
    assert_eq!(task_run(&e, "after")["outputs"]["value"], "note=from resumer", "{e:#}");
    assert!(
        log_messages(&d, &resumer)
            .iter()
            .any(|l| l == &format!("resumed execution {waiting}")),
        "{:#?}",
        log_messages(&d, &resumer)
    );
    let audit = audit_text(&d);
    assert!(audit.contains("flow:test.kestra.resumer"), "{audit}");

    // Resuming it again fails the Resume task: the execution is not paused any more.
    let again = id_of(&d.run_nowait("test.kestra", "resumer", &[&arg]));
    d.wait_state(&again, "FAILED");
    assert!(
        log_messages(&d, &again).iter().any(|l| l.contains("not paused")),
        "{:#?}",
        log_messages(&d, &again)
    );
    // An unknown execution id says so.
    let unknown = id_of(&d.run_nowait("test.kestra", "resumer", &["executionId=nope"]));
    d.wait_state(&unknown, "FAILED");
    assert_logged(&d, &unknown, "No execution found for execution id nope");
}

/// Without `executionId`, Resume resumes its own execution (a pause in another branch).
#[test]
fn a_resume_task_without_execution_id_resumes_its_own_execution() {
    let d = Daemon::start();
    d.apply_flow(
        "self_resume",
        r#"id: self_resume
namespace: test.kestra
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: wait
        type: io.kestra.plugin.core.flow.Pause
      - id: resume
        type: io.kestra.plugin.core.execution.Resume
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "resumed by {{ outputs.wait.resumed.by }}"
"#,
    );
    let id = id_of(&d.run_nowait("test.kestra", "self_resume", &[]));
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_runs(&e).len(), 4, "{:?}", run_ids(&e));
    assert_eq!(
        task_run(&e, "after")["outputs"]["value"],
        "resumed by flow:test.kestra.self_resume",
        "{e:#}"
    );
}

/// Namespaces are the permission boundary: a flow cannot resume an execution of another
/// namespace, nor decide a HumanTask it is not assigned to; both refusals are audited as the
/// flow and leave the execution paused.
#[test]
fn a_resume_task_is_refused_across_namespaces_and_on_human_tasks() {
    let d = Daemon::start();
    d.apply_flow("waiter", &WAITER.replace("NS", "test.other"));
    d.apply_flow("resumer", RESUMER);
    let other = id_of(&d.run_nowait("test.other", "waiter", &[]));
    d.wait_state(&other, "PAUSED");
    let arg = format!("executionId={other}");
    let resumer = id_of(&d.run_nowait("test.kestra", "resumer", &[&arg]));
    d.wait_state(&resumer, "FAILED");
    let logs = log_messages(&d, &resumer);
    assert!(
        logs.iter()
            .any(|l| l.contains("may only resume executions of its own namespace `test.kestra`")),
        "{logs:#?}"
    );
    assert_eq!(d.execution(&other)["state"], "PAUSED");

    d.apply_flow(
        "gated",
        r#"id: gated
namespace: test.kestra
tasks:
  - id: wait
    type: io.kestra.plugin.ee.flow.HumanTask
    assignment:
      users: [alice]
"#,
    );
    let gated = id_of(&d.run_nowait("test.kestra", "gated", &[]));
    d.wait_state(&gated, "PAUSED");
    let arg = format!("executionId={gated}");
    let resumer = id_of(&d.run_nowait("test.kestra", "resumer", &[&arg]));
    d.wait_state(&resumer, "FAILED");
    assert_eq!(d.execution(&gated)["state"], "PAUSED");
    let audit = audit_text(&d);
    let denied = audit.matches("DENIED").count();
    assert!(denied >= 2 && audit.contains("flow:test.kestra.resumer"), "{audit}");
}

/// Like Kestra's SLATestCase.maxDurationSLAShouldFail / ShouldPass: a MAX_DURATION `sla` with
/// FAIL ends an execution that runs too long FAILED (the running task with it), and leaves one
/// that ends in time alone.
#[test]
fn a_max_duration_sla_fails_a_long_execution_and_leaves_a_short_one() {
    let d = Daemon::start();
    d.apply_flow(
        "slow",
        r#"id: slow
namespace: test.kestra
sla:
  - id: maxDuration
    type: MAX_DURATION
    behavior: FAIL
    duration: PT1S
    labels:
      sla: late
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT5M
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
"#,
    );
    d.apply_flow(
        "quick",
        r#"id: quick
namespace: test.kestra
sla:
  - id: maxDuration
    type: MAX_DURATION
    behavior: FAIL
    duration: PT5M
tasks:
  - id: sleep
    type: io.kestra.plugin.core.flow.Sleep
    duration: PT0.2S
"#,
    );
    let slow = id_of(&d.run_nowait("test.kestra", "slow", &[]));
    let e = d.wait_state(&slow, "FAILED");
    assert_eq!(task_runs(&e).len(), 1, "{:?}", run_ids(&e));
    assert_eq!(task_run(&e, "sleep")["state"], "FAILED", "{e:#}");
    assert_eq!(e["labels"]["sla"], "late", "{e:#}");
    let logs = log_messages(&d, &slow);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("SLA 'maxDuration' violated: execution duration of")
                && l.contains("exceed the maximum duration of PT1S")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Execution failed due to SLA 'maxDuration' violated")),
        "{logs:#?}"
    );
    let quick = id_of(&d.run_nowait("test.kestra", "quick", &[]));
    let e = d.wait_state(&quick, "SUCCESS");
    assert!(!log_messages(&d, &quick).iter().any(|l| l.contains("SLA")), "{e:#}");
}

/// The MAX_DURATION timer is durable: a daemon killed with -9 while the execution waits still
/// ends it (CANCEL here) after its restart.
#[test]
fn a_max_duration_sla_survives_a_kill_9() {
    let mut d = Daemon::start();
    d.apply_flow(
        "stuck",
        r#"id: stuck
namespace: test.kestra
sla:
  - id: tooLong
    type: MAX_DURATION
    behavior: CANCEL
    duration: PT3S
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
"#,
    );
    let id = id_of(&d.run_nowait("test.kestra", "stuck", &[]));
    d.wait_state(&id, "PAUSED");
    d.kill9();
    d.restart();
    let e = d.wait_state(&id, "CANCELLED");
    assert_eq!(task_run(&e, "wait")["state"], "CANCELLED", "{e:#}");
    assert_logged(&d, &id, "SLA 'tooLong' violated");
}

/// Like Kestra's SLATestCase.executionConditionSLAShould{Pass,Cancel,Label}: an
/// EXECUTION_ASSERTION is checked while the execution runs; CANCEL cancels it, NONE only adds
/// the labels.
#[test]
fn an_execution_assertion_sla_cancels_or_labels() {
    let d = Daemon::start();
    d.apply_flow(
        "asserted",
        r#"id: asserted
namespace: test.kestra
inputs:
  - id: mode
    type: SELECT
    values: [PASS, CANCEL, LABEL]
    defaults: PASS
sla:
  - id: noCancel
    type: EXECUTION_ASSERTION
    behavior: CANCEL
    assert: "{{ inputs.mode != 'CANCEL' }}"
  - id: noLabel
    type: EXECUTION_ASSERTION
    behavior: NONE
    assert: "{{ inputs.mode != 'LABEL' }}"
    labels:
      sla: violated
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: "true"
"#,
    );
    let pass = id_of(&d.run_nowait("test.kestra", "asserted", &[]));
    let e = d.wait_state(&pass, "SUCCESS");
    assert!(e["labels"].get("sla").is_none(), "{e:#}");
    let cancel = id_of(&d.run_nowait("test.kestra", "asserted", &["mode=CANCEL"]));
    d.wait_state(&cancel, "CANCELLED");
    assert_logged(&d, &cancel, "SLA 'noCancel' violated: assertion is false");
    let label = id_of(&d.run_nowait("test.kestra", "asserted", &["mode=LABEL"]));
    let e = d.wait_state(&label, "SUCCESS");
    assert_eq!(e["labels"]["sla"], "violated", "{e:#}");
    assert_eq!(task_run(&e, "return")["outputs"]["value"], "true");
}

/// A malformed `sla` is refused naming what is wrong and where.
#[test]
fn a_malformed_sla_is_refused_with_its_place() {
    let d = Daemon::start();
    let dir = scratch(&d);
    let file = dir.join("bad_sla.yaml");
    std::fs::write(
        &file,
        "id: bad_sla\nnamespace: test.kestra\nsla:\n  - id: late\n    type: MAX_DURATION\n    behavior: FAIL\n  - id: odd\n    type: EXECUTION_ASSERTION\n    behavior: SOMETIMES\n    assert: \"{{ true }}\"\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
    )
    .expect("write flow");
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("bad_sla.yaml:") && text.contains("SOMETIMES"), "{text}");
    let fixed = std::fs::read_to_string(&file)
        .expect("read")
        .replace("SOMETIMES", "NONE");
    std::fs::write(&file, fixed).expect("write flow");
    let out = d.cli(&["flow", "validate", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("bad_sla.yaml:4:5") && text.contains("sla `late` (MAX_DURATION) needs `duration`"),
        "{text}"
    );
}

/// Every execution of `flow` in `test.kestra`, as `tollgate executions --state all` lists them.
fn executions_of(d: &Daemon, flow: &str) -> Vec<Value> {
    d.cli_json(&[
        "executions",
        "--state",
        "all",
        "--namespace",
        "test.kestra",
        "--flow",
        flow,
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
}

/// Like Kestra's RetryCaseTest.retryNewExecution{Task,Flow}Attempts: with `behavior:
/// CREATE_NEW_EXECUTION` a failed task ends its execution RETRIED and a new execution of the
/// flow runs; after `maxAttempt` executions the last one fails: RETRIED, RETRIED, FAILED. The
/// retry timer is durable (a kill -9 in between changes nothing).
#[test]
fn a_create_new_execution_retry_runs_the_flow_again_until_max_attempt() {
    let mut d = Daemon::start();
    d.apply_flow(
        "again_task",
        r#"id: again_task
namespace: test.kestra
inputs:
  - id: who
    type: STRING
tasks:
  - id: seq
    type: io.kestra.plugin.core.flow.Sequential
    tasks:
      - id: fail
        type: io.kestra.plugin.core.execution.Fail
        errorMessage: "no luck for {{ inputs.who }}"
        retry:
          behavior: CREATE_NEW_EXECUTION
          type: constant
          maxAttempt: 3
          interval: PT1S
  - id: never
    type: io.kestra.plugin.core.log.Log
    message: not reached
"#,
    );
    d.apply_flow(
        "again_flow",
        r#"id: again_flow
namespace: test.kestra
retry:
  behavior: CREATE_NEW_EXECUTION
  type: constant
  maxAttempt: 2
  interval: PT1S
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
"#,
    );
    let first = id_of(&d.run_nowait("test.kestra", "again_task", &["who=bob"]));
    let e = d.wait_state(&first, "RETRIED");
    assert_eq!(task_run(&e, "fail")["state"], "RETRIED", "{:?}", run_ids(&e));
    assert_eq!(task_run(&e, "seq")["state"], "RETRIED", "{:?}", run_ids(&e));
    assert!(task_runs(&e).iter().all(|r| r["taskId"] != "never"));
    d.kill9();
    d.restart();
    eventually("three executions, the last one ended", || {
        let all = executions_of(&d, "again_task");
        all.len() == 3 && all.iter().all(|e| e["state"] == "RETRIED" || e["state"] == "FAILED")
    });
    let all = executions_of(&d, "again_task");
    let mut states: Vec<&str> = all.iter().filter_map(|e| e["state"].as_str()).collect();
    states.sort();
    assert_eq!(states, vec!["FAILED", "RETRIED", "RETRIED"], "{all:#?}");
    for e in &all {
        assert_eq!(e["inputs"]["who"], "bob", "the same inputs: {e:#}");
    }
    let failed = all.iter().find(|e| e["state"] == "FAILED").expect("failed one");
    let failed_id = failed["id"].as_str().expect("id");
    assert!(
        log_messages(&d, failed_id).iter().any(|l| l.contains("no retry left")),
        "{:#?}",
        log_messages(&d, failed_id)
    );
    assert_logged(&d, &first, "retried in a new execution: ");

    // The flow's own `retry` does the same for any task: RETRIED, FAILED.
    let id = id_of(&d.run_nowait("test.kestra", "again_flow", &[]));
    d.wait_state(&id, "RETRIED");
    eventually("two executions, the last one ended", || {
        let all = executions_of(&d, "again_flow");
        all.len() == 2 && all.iter().any(|e| e["state"] == "FAILED")
    });
}

/// A SELECT input whose choices come from an `expression` (here the KV store) is checked the
/// same way whoever starts the flow: a Subflow task and a Webhook trigger with a value outside
/// the rendered choices are refused, one inside is accepted.
#[test]
fn select_expression_inputs_are_checked_for_subflows_and_triggers() {
    let d = Daemon::start();
    assert!(
        d.cli(&[
            "kv",
            "set",
            "test.kestra",
            "regions",
            r#"["eu","us"]"#,
            "--type",
            "JSON"
        ])
        .ok()
    );
    d.apply_flow(
        "picker",
        r#"id: picker
namespace: test.kestra
inputs:
  - id: region
    type: SELECT
    expression: "{{ kv('regions') }}"
tasks:
  - id: show
    type: io.kestra.plugin.core.debug.Return
    format: "region={{ inputs.region }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: select-hook-key-0123
    inputs:
      region: "{{ trigger.body.region }}"
"#,
    );
    d.apply_flow(
        "caller",
        r#"id: caller
namespace: test.kestra
inputs:
  - id: region
    type: STRING
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: test.kestra
    flowId: picker
    inputs:
      region: "{{ inputs.region }}"
"#,
    );
    let bad = id_of(&d.run_nowait("test.kestra", "caller", &["region=mars"]));
    d.wait_state(&bad, "FAILED");
    let logs = log_messages(&d, &bad);
    assert!(
        logs.iter()
            .any(|l| l.contains("invalid inputs for subflow `test.kestra.picker`") && l.contains("mars")),
        "{logs:#?}"
    );
    let good = id_of(&d.run_nowait("test.kestra", "caller", &["region=us"]));
    d.wait_state(&good, "SUCCESS");

    let url = format!(
        "{}/api/v1/main/executions/webhook/test.kestra/picker/select-hook-key-0123",
        d.server()
    );
    let post = |region: &str| {
        tollgate_tests::curl(&[
            "-X",
            "POST",
            &url,
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"region":"{region}"}}"#),
        ])
    };
    let (code, body) = post("mars");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("mars"), "{body}");
    let (code, body) = post("eu");
    assert_eq!(code, 200, "{body}");
    let started: Value = serde_json::from_str(&body).expect("json");
    let e = d.wait_state(started["id"].as_str().expect("id"), "SUCCESS");
    assert_eq!(task_run(&e, "show")["outputs"]["value"], "region=eu");
}
