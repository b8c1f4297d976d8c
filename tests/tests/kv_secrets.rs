//! KV and secrets through the CLI and in templates, against a real daemon.

use std::io::Write;
use std::process::{Command, Stdio};

use tollgate_tests::{Daemon, binaries, log_messages};

fn secret_set(d: &Daemon, ns: &str, name: &str, value: &str) {
    let mut child = Command::new(&binaries().tollgate)
        .args(["--server", &d.server(), "secret", "set", ns, name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(value),
        "the CLI never echoes a secret"
    );
}

#[test]
fn kv_round_trip_with_types_and_errors() {
    let d = Daemon::start();
    assert!(d.cli(&["kv", "set", "test", "limit", "42"]).ok());
    assert!(d.cli(&["kv", "set", "test", "flag", "true", "--type", "BOOLEAN"]).ok());
    let v = d.cli_json(&["kv", "get", "test", "limit"]);
    assert_eq!(v["value"], 42);
    assert_eq!(v["type"], "NUMBER");
    let list = d.cli_json(&["kv", "list", "test"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let bad = d.cli(&["kv", "set", "test", "n", "abc", "--type", "NUMBER"]);
    assert!(
        !bad.ok() && bad.stderr.contains("`n`") && bad.stderr.contains("NUMBER"),
        "{bad}"
    );
    assert!(d.cli(&["kv", "delete", "test", "limit"]).ok());
    let gone = d.cli(&["kv", "get", "test", "limit"]);
    assert!(!gone.ok() && gone.stderr.contains("limit"), "{gone}");
}

#[test]
fn secrets_are_inherited_used_in_templates_and_masked_in_logs() {
    let d = Daemon::start();
    secret_set(&d, "test", "API_TOKEN", "s3cr3t-value");
    assert!(
        d.cli(&["kv", "set", "test.secrets", "ENDPOINT", "http://127.0.0.1:9/hr"])
            .ok()
    );
    let names = d.cli_json(&["secret", "list", "test"]);
    assert_eq!(names, serde_json::json!(["API_TOKEN"]));
    let e = d.run_wait("test.secrets", "uses_secret", &[]);
    let id = e["id"].as_str().unwrap().to_string();
    d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l == "token is ****** and endpoint is http://127.0.0.1:9/hr"),
        "{logs:?}"
    );
    let raw = std::fs::read(d.data_dir.join("tollgate.redb")).unwrap();
    assert!(
        !raw.windows(12).any(|w| w == b"s3cr3t-value"),
        "the secret is stored encrypted, and never in logs"
    );
}
