//! Kestra's polling HTTP trigger against a real daemon and a real HTTP server on loopback: the
//! daemon polls every `interval`, starts the flow only when `responseCondition` holds (here: a
//! 200 whose JSON body says ok), with the response as `trigger`; polling goes on after kill -9;
//! `encryptBody` keeps the body sealed in the store and masked in logs.

use serde_json::Value;
use tollgate_tests::recorders::HttpRecorder;
use tollgate_tests::{Daemon, log_messages, wait_for};

fn watcher(url: &str) -> String {
    format!(
        r#"id: watcher
namespace: test.http
triggers:
  - id: poll
    type: io.kestra.plugin.fs.http.Trigger
    uri: "{url}/status"
    headers:
      X-Asked-By: "{{{{ flow.id }}}}"
    responseCondition: "{{{{ response.statusCode == 200 and json(response.body).ok }}}}"
    interval: PT1S
    encryptBody: true
tasks:
  - id: seen
    type: io.kestra.plugin.core.log.Log
    message: "ok={{{{ json(trigger.body).ok }}}} code={{{{ trigger.code }}}} raw={{{{ trigger.body }}}}"
"#
    )
}

fn executions(d: &Daemon) -> Vec<Value> {
    d.cli_json(&["executions", "--state", "ALL", "--flow", "watcher"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn an_http_trigger_starts_the_flow_only_when_its_condition_holds_and_keeps_polling_after_kill_9() {
    let server = HttpRecorder::start();
    // The first two polls find the service unavailable: no execution for them.
    server.script.lock().unwrap().extend([(503, vec![]), (503, vec![])]);
    let mut d = Daemon::start();
    d.apply_flow("watcher", &watcher(&server.url));

    let first = wait_for("an execution started by the HTTP trigger", || {
        executions(&d).into_iter().find(|e| e["state"] == "SUCCESS")
    });
    let polls = server.received();
    assert!(polls.len() >= 3, "two 503 answers then a 200: {polls:?}");
    assert!(
        polls.iter().all(|r| r.method == "GET"
            && r.path == "/status"
            && r.headers.iter().any(|(k, v)| k == "x-asked-by" && v == "watcher")),
        "{polls:?}"
    );
    let id = first["id"].as_str().expect("id").to_string();
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter().any(|l| l == "ok=true code=200 raw=******"),
        "the body is usable in templates and masked in logs: {logs:?}"
    );

    // Polling is durable: after kill -9 the trigger polls again without anyone applying it.
    d.kill9();
    {
        let store = d.open_store();
        let exec: tollgate_daemon::engine::execution::Execution =
            store.read().unwrap().execution(&id).unwrap().expect("stored execution");
        let body = exec.trigger.as_ref().map(|t| t["body"].clone()).unwrap_or_default();
        assert!(
            body.as_str().is_some_and(|b| b.starts_with("tgsealed:v1:")),
            "encryptBody keeps the body sealed at rest: {body}"
        );
    }
    let before = server.received().len();
    d.restart();
    wait_for("polls after the restart", || {
        (server.received().len() > before + 1).then_some(())
    });
    wait_for("another execution after the restart", || {
        (executions(&d).len() > 1).then_some(())
    });

    // Switched off, the trigger stops polling (and starting) until switched on again.
    let out = d.cli(&["trigger", "disable", "test.http", "watcher", "poll"]);
    assert!(out.ok(), "{out}");
    let listed = d.cli(&["trigger", "list", "--flow", "watcher"]);
    assert!(
        listed.ok() && listed.stdout.contains("Trigger") && listed.stdout.contains("off"),
        "{listed}"
    );
}

#[test]
fn an_http_trigger_with_a_bad_interval_or_ssl_options_is_refused_with_its_place() {
    let d = Daemon::start();
    let file = d.data_dir.parent().expect("temp").join("bad.yaml");
    std::fs::write(
        &file,
        "id: bad\nnamespace: test.http\ntriggers:\n  - id: poll\n    type: io.kestra.plugin.core.http.Trigger\n    uri: http://127.0.0.1:1/\n    interval: PT0.1S\n    sslOptions:\n      insecureTrustAllCertificates: true\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
    )
    .expect("write");
    let out = d.cli(&["flow", "validate", file.to_str().expect("utf-8")]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!out.ok(), "{all}");
    assert!(
        all.contains("bad.yaml:7:5: `interval` on trigger `poll` must be at least one second"),
        "{all}"
    );
    assert!(
        all.contains("bad.yaml:8:5: property `sslOptions` on trigger `poll` is not supported"),
        "{all}"
    );
}
