//! Kestra expression functions that need a running daemon: `errorLogs()` (the execution's own
//! logs), `jq`, `render()`, `currentEachOutput()`, and SELECT inputs whose values come from an
//! `expression`, through a real resume.

use std::path::Path;

use serde_json::Value;
use tollgate_tests::{Daemon, log_messages, task_run};

/// Writes `source` to `dir/name.yaml` and applies it with the CLI.
fn apply(d: &Daemon, dir: &Path, name: &str, source: &str) {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, source).expect("write flow");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(out.ok(), "apply {name}:\n{out}");
}

const ERROR_LOGS_FAIL: &str = r#"id: error_logs_fail
namespace: test.expr
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "disk full on {{ flow.id }}"
errors:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "seen {{ errorLogs() | length }}: {{ (errorLogs() | first).taskId }} said {{ (errorLogs() | first).message }}"
"#;

/// The failing task runs as a job (an HTTP call to a closed port): its error line is written in
/// the same transaction that starts the `errors` branch.
const ERROR_LOGS_JOB: &str = r#"id: error_logs_job
namespace: test.expr
tasks:
  - id: call
    type: io.kestra.plugin.core.http.Request
    uri: "http://127.0.0.1:9/never"
errors:
  - id: report
    type: io.kestra.plugin.core.log.Log
    message: "job errors: {{ errorLogs() | length }} from {{ (errorLogs() | first).taskId }}"
"#;

#[test]
fn error_logs_lists_the_failure_in_the_errors_branch() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    apply(&d, dir.path(), "error_logs_fail", ERROR_LOGS_FAIL);
    apply(&d, dir.path(), "error_logs_job", ERROR_LOGS_JOB);

    let e = d.run_nowait("test.expr", "error_logs_fail", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    d.wait_state(&id, "FAILED");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l == "seen 1: boom said disk full on error_logs_fail"),
        "{logs:?}"
    );

    let e = d.run_nowait("test.expr", "error_logs_job", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    d.wait_state(&id, "FAILED");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("job errors: ") && l.ends_with(" from call") && !l.starts_with("job errors: 0")),
        "{logs:?}"
    );
}

const JQ_AND_RENDER: &str = r#"id: jq_render
namespace: test.expr
variables:
  greeting: "hello from {{ flow.id }}"
tasks:
  - id: data
    type: io.kestra.plugin.core.output.OutputValues
    values:
      payload: '{"items":[{"n":"a","ok":true},{"n":"b","ok":false},{"n":"c","ok":true}]}'
  - id: pick
    type: io.kestra.plugin.core.log.Log
    message: "ok={{ outputs.data.values.payload | jq('[.items[] | select(.ok) | .n]') | first | join(',') }}"
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "{{ render(vars.greeting) }} / {{ vars.greeting }}"
  - id: bad_jq
    type: io.kestra.plugin.core.log.Log
    message: "{{ outputs.data.values.payload | jq('.items[') }}"
"#;

#[test]
fn jq_and_render_in_a_real_flow() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    apply(&d, dir.path(), "jq_render", JQ_AND_RENDER);
    let e = d.run_nowait("test.expr", "jq_render", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    let e = d.wait_state(&id, "FAILED");
    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "ok=a,c"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l == "hello from jq_render / hello from {{ flow.id }}"),
        "render() renders the variable again; without it the text stays as written: {logs:?}"
    );
    assert_eq!(task_run(&e, "bad_jq")["state"], "FAILED");
    assert!(
        logs.iter()
            .any(|l| l.contains("jq('.items['):") && l.contains("does not parse")),
        "a bad jq program names the filter and the program: {logs:?}"
    );
}

/// The attack: jq programs that never end. Deep recursion overflows a stack, which aborts the
/// process it runs in; an endless loop burns a core. Each fails its own task run only: the
/// daemon keeps serving, and a later jq still works.
const JQ_RUNAWAY: &str = r#"id: jq_runaway
namespace: test.expr
tasks:
  - id: recurse
    type: io.kestra.plugin.core.log.Log
    message: "{{ 1 | jq('def f: 1 + f; f') }}"
    allowFailure: true
  - id: forever
    type: io.kestra.plugin.core.log.Log
    message: "{{ 1 | jq('def f: f; f') }}"
    allowFailure: true
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "after={{ '[1,2]' | jq('add') | first }}"
"#;

#[test]
fn a_runaway_jq_program_fails_its_task_and_never_the_daemon() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    apply(&d, dir.path(), "jq_runaway", JQ_RUNAWAY);
    let e = d.run_nowait("test.expr", "jq_runaway", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    let e = d.wait_state(&id, "WARNING");
    assert_eq!(task_run(&e, "recurse")["state"], "WARNING", "{e:#}");
    assert_eq!(task_run(&e, "forever")["state"], "WARNING", "{e:#}");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l.contains("def f: 1 + f; f") && l.contains("was stopped")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("def f: f; f") && l.contains("did not finish within")),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l == "after=3"), "{logs:?}");
    // Still the same daemon process, serving.
    assert!(d.cli(&["flow", "list"]).ok());
    assert!(!d.log().contains("overflowed its stack"), "{}", d.log());
}

/// Templates at the edge of the limits: the deepest accepted one renders, a longer chain of
/// operators (a tree as deep as it is long, which overflowed a stack while being checked) is
/// refused with its place, and the daemon serves on.
#[test]
fn templates_at_the_limits_render_and_longer_chains_are_refused_not_fatal() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    let nesting = 23;
    let deepest = format!(
        "{}{}{}",
        "(".repeat(nesting),
        "1 + ".repeat(64) + "1",
        ")".repeat(nesting)
    );
    let flow = |name: &str, expr: &str| {
        format!(
            "id: {name}\nnamespace: test.expr\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: \"sum={{{{ {expr} }}}}\"\n"
        )
    };
    apply(&d, dir.path(), "deepest", &flow("deepest", &deepest));
    let id = d.run_wait("test.expr", "deepest", &[])["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(d.wait_state(&id, "SUCCESS")["state"], "SUCCESS");
    assert!(log_messages(&d, &id).iter().any(|l| l == "sum=65"));

    let file = dir.path().join("chain.yaml");
    std::fs::write(&file, flow("chain", &("1 + ".repeat(5000) + "1"))).expect("write");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.stderr.contains("chain.yaml:6:5") && out.stderr.contains("more than 64 operators"),
        "{out}"
    );
    assert!(d.cli(&["flow", "list"]).ok(), "the daemon serves on");
}

const EACH: &str = r#"id: each_output
namespace: test.expr
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: ["x", "y"]
    tasks:
      - id: make
        type: io.kestra.plugin.core.output.OutputValues
        values:
          v: "made-{{ taskrun.value }}"
      - id: use
        type: io.kestra.plugin.core.log.Log
        message: "{{ taskrun.value }} -> {{ currentEachOutput(outputs.make).values.v }}"
"#;

#[test]
fn current_each_output_reads_this_iteration() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    apply(&d, dir.path(), "each_output", EACH);
    let e = d.run_nowait("test.expr", "each_output", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "x -> made-x"), "{logs:?}");
    assert!(logs.iter().any(|l| l == "y -> made-y"), "{logs:?}");
}

const SELECT_FROM_KV: &str = r#"id: pick_region
namespace: test.expr
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: region
        type: SELECT
        expression: "{{ kv('regions') }}"
      - id: ok
        type: BOOL
        defaults: false
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "region={{ outputs.approve.onResume.region }} ok={{ outputs.approve.onResume.ok }}"
"#;

#[test]
fn select_values_from_an_expression_through_a_resume() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("dir");
    assert!(
        d.cli(&[
            "kv",
            "set",
            "test.expr",
            "regions",
            r#"["eu-west-1","us-east-1"]"#,
            "--type",
            "JSON"
        ])
        .ok()
    );
    apply(&d, dir.path(), "pick_region", SELECT_FROM_KV);
    let e = d.run_nowait("test.expr", "pick_region", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    let e = d.wait_state(&id, "PAUSED");

    // The form shows the values the expression renders now.
    let form = &e["pauses"][0]["onResume"];
    let region = form
        .as_array()
        .and_then(|f| f.iter().find(|i| i["id"] == "region"))
        .expect("region input");
    assert_eq!(region["values"], serde_json::json!(["eu-west-1", "us-east-1"]), "{e}");
    assert_eq!(form[1]["type"], "BOOL");

    // A value outside the rendered list is refused, naming the allowed ones; nothing changes.
    let bad = d.cli(&["resume", &id, "--input", "region=mars", "--input", "ok=true"]);
    assert!(!bad.ok(), "{bad}");
    let said = bad.to_string();
    assert!(
        said.contains("Invalid input for `region`, it must be one of `eu-west-1`, `us-east-1`, but received `mars`"),
        "{bad}"
    );
    assert_eq!(d.execution(&id)["state"], "PAUSED");

    // The list is rendered again at each check: a region added to the KV entry is accepted.
    assert!(
        d.cli(&[
            "kv",
            "set",
            "test.expr",
            "regions",
            r#"["eu-west-1","us-east-1","ap-south-1"]"#,
            "--type",
            "JSON"
        ])
        .ok()
    );
    let good = d.cli(&["resume", &id, "--input", "region=ap-south-1", "--input", "ok=true"]);
    assert!(good.ok(), "{good}");
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "approve")["outputs"]["onResume"]["ok"], Value::Bool(true));
    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "region=ap-south-1 ok=true"), "{logs:?}");
}
