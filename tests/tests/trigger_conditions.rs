//! Flow trigger `conditions` and `preconditions` against a real daemon: every condition type
//! fires for the execution it names and not for the others, and a MultipleCondition's window
//! (what it has seen so far) survives kill -9.
//!
//! Triggered executions are created in the same transaction as the upstream execution's end
//! state, so once the upstream has ended, every listener that fires for it already exists: the
//! negatives need no waiting.

use std::collections::BTreeSet;

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, log_messages};

fn daemon() -> Daemon {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_conditions");
    Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        ..Default::default()
    })
}

/// Runs `cond.up.<flow>` (namespace `ns`) to its end state and returns its id.
fn run_upstream(d: &Daemon, ns: &str, flow: &str, end: &str) -> String {
    let id = d.run_wait(ns, flow, &[])["id"].as_str().unwrap().to_string();
    d.wait_state(&id, end);
    id
}

/// The listeners (flow ids in `cond.listen`) that started an execution for `upstream`.
fn listeners_of(d: &Daemon, upstream: &str) -> BTreeSet<String> {
    d.cli_json(&[
        "executions",
        "--state",
        "all",
        "--namespace",
        "cond.listen",
        "--limit",
        "1000",
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
    .iter()
    .filter(|e| e["trigger"]["executionId"] == upstream)
    .map(|e| e["flowId"].as_str().unwrap_or_default().to_string())
    .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn triggered(d: &Daemon, listener: &str, upstream: &str) -> Value {
    d.wait_listed(
        &[
            "executions",
            "--state",
            "all",
            "--namespace",
            "cond.listen",
            "--flow",
            listener,
        ],
        |e| e["trigger"]["executionId"] == upstream,
    )
}

#[test]
fn each_condition_type_fires_for_its_execution_and_not_for_the_others() {
    let d = daemon();

    let ok = run_upstream(&d, "cond.up", "ok", "SUCCESS");
    assert_eq!(
        listeners_of(&d, &ok),
        set(&["flow_is_ok", "ns_prefix", "or_ok_fails"]),
        "listeners of a SUCCESS of cond.up.ok"
    );

    let fails = run_upstream(&d, "cond.up", "fails", "FAILED");
    assert_eq!(
        listeners_of(&d, &fails),
        set(&[
            "status_in_failed",
            "status_not_in_success",
            "ns_prefix",
            "expression_failed",
            "not_ok",
            "or_ok_fails",
            "states_failed_only",
            "pre_where",
        ]),
        "listeners of a FAILED of cond.up.fails"
    );

    let labelled = run_upstream(&d, "cond.up", "labelled", "SUCCESS");
    assert_eq!(
        listeners_of(&d, &labelled),
        set(&["ns_prefix", "labels_infra", "not_ok", "old_names", "pre_labels"]),
        "listeners of a SUCCESS of cond.up.labelled (label team=infra)"
    );

    let deep = run_upstream(&d, "cond.up.deep", "ok2", "SUCCESS");
    assert_eq!(
        listeners_of(&d, &deep),
        set(&["ns_prefix", "ns_suffix", "ns_equals"]),
        "listeners of a SUCCESS in cond.up.deep"
    );
}

#[test]
fn the_triggered_execution_sees_trigger_values_and_the_upstream_outputs() {
    let d = daemon();
    let ok = run_upstream(&d, "cond.up", "ok", "SUCCESS");
    let t = triggered(&d, "flow_is_ok", &ok);
    assert_eq!(t["trigger"]["namespace"], "cond.up", "{t:#}");
    assert_eq!(t["trigger"]["flowId"], "ok");
    assert_eq!(t["trigger"]["state"], "SUCCESS");
    assert_eq!(t["trigger"]["outputs"]["answer"], "forty-two");
    let id = t["id"].as_str().unwrap().to_string();
    d.wait_state(&id, "SUCCESS");
    assert!(
        log_messages(&d, &id).contains(&format!(
            "flow_is_ok saw {ok} cond.up.ok SUCCESS answer=forty-two task=forty-two"
        )),
        "{:?}",
        log_messages(&d, &id)
    );
}

#[test]
fn a_multiple_condition_window_survives_kill_9_and_resets_after_firing() {
    let mut d = daemon();
    let a = run_upstream(&d, "cond.up", "a", "SUCCESS");
    assert!(
        !listeners_of(&d, &a).contains("multiple_a_b"),
        "half of the window is not enough"
    );
    let pa = run_upstream(&d, "cond.up", "pa", "SUCCESS");
    assert!(!listeners_of(&d, &pa).contains("pre_pa_pb"));

    // What the windows saw is durable: the other half after a crash completes them.
    d.kill9();
    d.restart();

    let b = run_upstream(&d, "cond.up", "b", "SUCCESS");
    assert!(
        listeners_of(&d, &b).contains("multiple_a_b"),
        "a (before the crash) and b complete the MultipleCondition"
    );
    let pb = run_upstream(&d, "cond.up", "pb", "SUCCESS");
    assert!(
        listeners_of(&d, &pb).contains("pre_pa_pb"),
        "pa (before the crash) and pb complete the preconditions"
    );

    // resetOnSuccess (the default): the window starts empty again.
    let b2 = run_upstream(&d, "cond.up", "b", "SUCCESS");
    assert!(!listeners_of(&d, &b2).contains("multiple_a_b"));
    let pb2 = run_upstream(&d, "cond.up", "pb", "SUCCESS");
    assert!(!listeners_of(&d, &pb2).contains("pre_pa_pb"));
    let a2 = run_upstream(&d, "cond.up", "a", "SUCCESS");
    assert!(listeners_of(&d, &a2).contains("multiple_a_b"));
}

#[test]
fn unsupported_trigger_properties_are_refused_by_name_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "id: bad\nnamespace: t\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n\
         triggers:\n  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * * *\"\n    backfill: {}\n\
         \x20 - id: hook\n    type: io.kestra.plugin.core.trigger.Webhook\n    key: a-long-enough-key\n    conditions:\n\
         \x20     - id: m\n        type: io.kestra.plugin.core.condition.MultipleCondition\n        conditions:\n\
         \x20         x:\n            type: io.kestra.plugin.core.condition.ExecutionFlow\n            namespace: a\n            flowId: b\n",
    )
    .unwrap();
    let d = daemon();
    let out = d.cli(&["flow", "validate", path.to_str().unwrap()]);
    assert!(!out.ok(), "{out}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains("bad.yaml:11:5: property `backfill` on trigger `nightly` is not supported"),
        "{text}"
    );
    let path2 = dir.path().join("bad2.yaml");
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("    backfill: {}\n", "");
    std::fs::write(&path2, fixed).unwrap();
    let out = d.cli(&["flow", "validate", path2.to_str().unwrap()]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.ok());
    assert!(
        text.contains("bad2.yaml:16:9: a MultipleCondition on trigger `hook` is not supported"),
        "{text}"
    );
    let path3 = dir.path().join("bad3.yaml");
    std::fs::write(
        &path3,
        "id: bad\nnamespace: t\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n\
         triggers:\n  - id: weekdays\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * * *\"\n\
         \x20   conditions:\n      - type: io.kestra.plugin.core.condition.Weekend\n",
    )
    .unwrap();
    let out = d.cli(&["flow", "validate", path3.to_str().unwrap()]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.ok());
    assert!(
        text.contains(
            "bad3.yaml:12:9: condition type `io.kestra.plugin.core.condition.Weekend` on trigger `weekdays` is not supported by Tollgate"
        ),
        "{text}"
    );
}

#[test]
fn schedule_conditions_decide_each_fire() {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_schedule_conditions");
    let d = Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        ..Default::default()
    });
    // Both triggers fall due on the same seconds: by the time `always` has fired three times, `never`
    // had the same three chances.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let all = loop {
        let all = d
            .cli_json(&["executions", "--state", "all", "--flow", "ticking"])
            .as_array()
            .cloned()
            .unwrap_or_default();
        if all.len() >= 3 {
            break all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule never fired three times"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    for e in &all {
        assert_eq!(e["startedBy"], "trigger:cond.sched.ticking.always", "{e:#}");
    }
}
