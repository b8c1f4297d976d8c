//! KV and secrets through the CLI and in templates, against a real daemon.

use std::io::Write;
use std::process::{Command, Stdio};

use tollgate_tests::{CliOutput, Daemon, DaemonOptions, binaries, log_messages, postgres};

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

/// `tollgated serve` that is expected to stop at once (it refuses to start).
fn serve_refused(data_dir: &std::path::Path, extra: &[&str], key: Option<&str>) -> CliOutput {
    let mut cmd = Command::new(&binaries().tollgated);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env_remove("TOLLGATE_SECRET_KEY")
        .env_remove("TOLLGATE_STORE")
        .stdin(Stdio::null());
    if let Some(k) = key {
        cmd.env("TOLLGATE_SECRET_KEY", k);
    }
    let out = CliOutput::from(cmd.output().expect("run tollgated"));
    assert!(!out.ok(), "the daemon must refuse to start: {out}");
    out
}

fn audit_actions(d: &Daemon) -> Vec<String> {
    let records = d.cli_json(&["audit", "--limit", "1000"]);
    records
        .as_array()
        .expect("audit records")
        .iter()
        .map(|r| r["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn another_secret_key_is_refused_at_start_until_it_is_adopted() {
    let mut d = Daemon::start();
    secret_set(&d, "test", "API_TOKEN", "s3cr3t-value");
    d.stop();
    let key_file = d.data_dir.join("secret.key");
    let key = std::fs::read(&key_file).expect("the daemon made its key file");

    // The key file was replaced (a restore from the wrong backup, say).
    std::fs::write(&key_file, [9u8; 32]).expect("write another key");
    let out = serve_refused(&d.data_dir, &[], None);
    assert!(
        out.stderr.contains(&key_file.display().to_string()),
        "names the key: {out}"
    );
    assert!(out.stderr.contains("--adopt-secret-key"), "says the way out: {out}");

    // With the right key back, it starts as before.
    std::fs::write(&key_file, &key).expect("restore the key");
    d.restart();
    assert!(d.cli(&["secret", "list", "test"]).stdout.contains("API_TOKEN"));
    d.stop();

    // The key is lost for good: adopted on purpose, audited; from then on it is the store's.
    std::fs::write(&key_file, [9u8; 32]).expect("write another key");
    d.options.extra_args = vec!["--adopt-secret-key".into()];
    d.restart();
    assert!(audit_actions(&d).contains(&"secret_key.adopt".to_string()));
    d.stop();
    d.options.extra_args.clear();
    d.restart();
    assert_eq!(
        audit_actions(&d).iter().filter(|a| *a == "secret_key.adopt").count(),
        1,
        "adopted once"
    );
}

/// Base64 of 32 bytes each: two different secret keys.
const KEY_A: &str = "dG9sbGdhdGUtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";
const KEY_B: &str = "YW5vdGhlci10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=";

#[test]
fn every_daemon_of_one_database_must_have_the_same_secret_key() {
    let url = postgres::new_database();
    let on = |key: &str| DaemonOptions {
        extra_args: vec!["--store".into(), url.clone()],
        env: vec![("TOLLGATE_SECRET_KEY".into(), key.into())],
        ..DaemonOptions::default()
    };
    let a = Daemon::start_with(on(KEY_A));
    secret_set(&a, "test", "API_TOKEN", "s3cr3t-value");

    let elsewhere = tempfile::tempdir().expect("temp data dir");
    let out = serve_refused(elsewhere.path(), &["--store", &url], Some(KEY_B));
    assert!(out.stderr.contains("TOLLGATE_SECRET_KEY"), "{out}");

    // A store from before the check is remembered: its secrets tell.
    postgres::server().psql(
        &url,
        "DELETE FROM tollgate_kv WHERE k = convert_to('secret_key_check', 'UTF8')",
    );
    let out = serve_refused(elsewhere.path(), &["--store", &url], Some(KEY_B));
    assert!(out.stderr.contains("were sealed with"), "{out}");

    let b = Daemon::start_with(on(KEY_A));
    assert!(b.cli(&["secret", "list", "test"]).stdout.contains("API_TOKEN"));
}
