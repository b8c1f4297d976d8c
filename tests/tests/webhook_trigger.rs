//! The Webhook trigger against a real daemon: CI posts JSON with curl (no bearer token: the key
//! in the path is the credential), the execution waits at a HumanTask, an operator resumes it;
//! wrong keys and unknown flows get 404, are audited, and too many of them shut the flow's
//! webhooks for a while.

mod auth_common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, binaries, curl, log_messages};

fn flows() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_webhook")
}

fn insecure_daemon() -> Daemon {
    Daemon::start_with(DaemonOptions {
        flows: Some(flows()),
        ..Default::default()
    })
}

fn hook_url(d: &Daemon, flow: &str, key: &str) -> String {
    format!("{}/api/v1/main/executions/webhook/test.ci/{flow}/{key}", d.server())
}

fn secret_set(d: &Daemon, token: &str, ns: &str, name: &str, value: &str) {
    let mut child = Command::new(&binaries().tollgate)
        .args(["--server", &d.server(), "secret", "set", ns, name])
        .env("TOLLGATE_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn audit(d: &Daemon) -> Vec<Value> {
    d.cli_json(&["audit", "--limit", "10000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn ci_posts_to_the_webhook_the_execution_waits_for_approval_and_an_operator_resumes() {
    let mut team = auth_common::team_with(DaemonOptions {
        flows: Some(flows()),
        ..Default::default()
    });
    let admin = team.token(auth_common::ADMIN);
    let operator = team.token(auth_common::OPERATOR);
    let key = "ci-7d1f3c0b9e2a4f58";
    secret_set(&team.d, &admin, "test.ci", "CI_WEBHOOK_KEY", key);
    team.d.token = Some(admin.clone());
    let d = &team.d;

    // What the CI job runs: no bearer token of ours, just the key.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &hook_url(d, "deploy", key),
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-Requested-By: ci-bot",
        "-H",
        "Authorization: Bearer something-for-a-proxy",
        "-d",
        r#"{"version": "1.4.2", "env": "prod"}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let started = json(&body);
    assert_eq!(started["namespace"], "test.ci");
    assert_eq!(started["flowId"], "deploy");
    assert_eq!(
        started["trigger"]["variables"]["body"]["version"], "1.4.2",
        "{started:#}"
    );
    let id = started["id"].as_str().unwrap().to_string();

    let paused = d.wait_state(&id, "PAUSED");
    assert_eq!(paused["trigger"]["body"]["env"], "prod", "{paused:#}");
    assert_eq!(paused["trigger"]["headers"]["x-requested-by"][0], "ci-bot");
    assert!(
        paused["trigger"]["headers"].get("authorization").is_none(),
        "credentials are not kept with the execution: {paused:#}"
    );
    assert!(!paused.to_string().contains(key), "the key is nowhere in the execution");
    assert!(
        log_messages(d, &id).contains(&"deploy 1.4.2 to prod requested by ci-bot".to_string()),
        "{:?}",
        log_messages(d, &id)
    );

    // The operator decides, as the seed's curl does.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/main/executions/{id}/resume", d.server()),
        "-F",
        "comment=ship it",
        "-H",
        &format!("Authorization: Bearer {operator}"),
    ]);
    assert_eq!(code, 204, "{body}");
    d.wait_state(&id, "SUCCESS");
    assert!(log_messages(d, &id).contains(&"deploying 1.4.2 (ship it)".to_string()));

    let records = audit(d);
    let start = records
        .iter()
        .find(|r| r["action"] == "start" && r["executionId"] == id.as_str())
        .unwrap_or_else(|| panic!("no start record: {records:#?}"));
    assert_eq!(start["values"]["origin"], "webhook", "{start:#}");
    assert_eq!(start["values"]["trigger"], "from_ci");
    assert!(
        !records.iter().any(|r| r.to_string().contains(key)),
        "the key is not audited"
    );
}

#[test]
fn wrong_keys_and_unknown_flows_get_404_are_audited_and_too_many_shut_the_flow() {
    let d = insecure_daemon();
    let (code, body) = curl(&["-X", "POST", &hook_url(&d, "plain", "not-the-key-guess-1")]);
    assert_eq!(code, 404, "{body}");
    assert_eq!(json(&body)["message"], "Webhook not found");
    let (code, body) = curl(&["-X", "POST", &hook_url(&d, "nosuchflow", "plain-hook-key-0123456789")]);
    assert_eq!(code, 404, "{body}");
    assert_eq!(json(&body)["message"], "Flow not found");
    let (code, _) = curl(&[&format!(
        "{}/api/v1/other/executions/webhook/test.ci/plain/plain-hook-key-0123456789",
        d.server()
    )]);
    assert_eq!(code, 404, "a tenant this daemon does not serve");

    let records = audit(&d);
    assert!(
        records.iter().any(|r| r["action"] == "webhook"
            && r["flowId"] == "plain"
            && r["values"]["origin"] == "webhook"
            && r["result"] == "DENIED: Webhook not found"),
        "{records:#?}"
    );
    assert!(
        !records.iter().any(|r| r.to_string().contains("not-the-key-guess")),
        "a wrong key is never written down"
    );

    // Nine more wrong guesses (ten in all) shut this flow's webhooks: even the right key waits.
    for i in 2..=10 {
        let (code, _) = curl(&["-X", "POST", &hook_url(&d, "plain", &format!("not-the-key-guess-{i}"))]);
        assert_eq!(code, 404);
    }
    let (code, body) = curl(&["-X", "POST", &hook_url(&d, "plain", "plain-hook-key-0123456789")]);
    assert_eq!(code, 429, "{body}");
    assert!(
        audit(&d)
            .iter()
            .any(|r| r["action"] == "webhook" && r["result"].as_str().unwrap_or("").contains("too many failed")),
        "the refusal while shut is audited too"
    );
    // Another flow's webhook is not affected.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &hook_url(&d, "gated", "gated-hook-key-0123456789"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"hello": "world"}"#,
    ]);
    assert_eq!(code, 200, "{body}");
}

#[test]
fn body_headers_parameters_inputs_and_conditions_as_in_kestra() {
    let d = insecure_daemon();
    // GET with query parameters: they feed the trigger's inputs.
    let (code, body) = curl(&[&format!(
        "{}?who=alice&who=bob",
        hook_url(&d, "plain", "plain-hook-key-0123456789")
    )]);
    assert_eq!(code, 200, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_string();
    let done = d.wait_state(&id, "SUCCESS");
    assert_eq!(
        done["trigger"]["parameters"]["who"],
        serde_json::json!(["alice", "bob"]),
        "{done:#}"
    );
    assert!(done["trigger"]["body"].is_null(), "no body: {done:#}");
    assert!(log_messages(&d, &id).contains(&"hello alice".to_string()));

    // A body that is not JSON stays text; PUT works like POST.
    let (code, body) = curl(&[
        "-X",
        "PUT",
        &hook_url(&d, "plain", "plain-hook-key-0123456789"),
        "-H",
        "Content-Type: text/plain",
        "-d",
        "just text",
    ]);
    assert_eq!(code, 200, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_string();
    let done = d.wait_state(&id, "SUCCESS");
    assert_eq!(done["trigger"]["body"], "just text");
    assert!(log_messages(&d, &id).contains(&"hello nobody".to_string()));

    // Conditions: not met -> 204 and no execution; met -> started.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &hook_url(&d, "gated", "gated-hook-key-0123456789"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"hello": "mars"}"#,
    ]);
    assert_eq!(code, 204, "{body}");
    let (code, body) = curl(&[
        "-X",
        "POST",
        &hook_url(&d, "gated", "gated-hook-key-0123456789"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"hello": "world"}"#,
    ]);
    assert_eq!(code, 200, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_string();
    d.wait_state(&id, "SUCCESS");
    let all = d.cli_json(&["executions", "--state", "all", "--flow", "gated"]);
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "the call whose condition failed started nothing: {all:#}"
    );
}
