//! Issue 14's findings, each written as the attack: a namespace admin reaching another
//! namespace through a flow, SECRET values leaking, refusals and changes left out of the audit
//! log, and a caller writing the daemon's own labels. Real daemon, real CLI and curl.

mod auth_common;

use std::path::Path;

use auth_common::{ADMIN, NS_ADMIN, OPERATOR, VIEWER, admin_remote, team};
use serde_json::Value;
use tollgate_tests::{CliOutput, Daemon, curl, log_messages};

/// Runs the CLI as `token`'s user.
fn as_user(d: &mut Daemon, token: &str, args: &[&str]) -> CliOutput {
    let saved = d.token.replace(token.to_string());
    let out = d.cli(args);
    d.token = saved;
    out
}

fn as_user_json(d: &mut Daemon, token: &str, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    let out = as_user(d, token, &full);
    assert!(out.ok(), "tollgate {args:?}:\n{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{out}"))
}

/// Applies a flow source as `token`'s user.
fn apply(d: &mut Daemon, token: &str, name: &str, source: &str) -> CliOutput {
    let file = d
        .data_dir
        .parent()
        .unwrap_or(Path::new("/tmp"))
        .join(format!("{name}.yaml"));
    std::fs::write(&file, source).expect("write flow file");
    as_user(d, token, &["flow", "apply", file.to_str().expect("utf-8 path")])
}

fn set_secret(d: &mut Daemon, token: &str, ns: &str, name: &str, value: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(&tollgate_tests::binaries().tollgate)
        .args(["--server", &d.server(), "secret", "set", ns, name])
        .env("TOLLGATE_TOKEN", token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tollgate secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Every audit record (newest first), read by the global admin.
fn audit(d: &mut Daemon, admin: &str) -> Vec<Value> {
    as_user_json(d, admin, &["audit", "--limit", "10000"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_record(records: &[Value], pick: impl Fn(&Value) -> bool) -> bool {
    records.iter().any(pick)
}

const SECRET_VALUE: &str = "sec-db-password-7f3a";

const STEAL_SECRET: &str = r#"
id: steal_secret
namespace: test
tasks:
  - id: leak
    type: io.kestra.plugin.core.log.Log
    message: "{{ secret('DB_PASSWORD', namespace='sec') | base64encode }}"
"#;

const STEAL_KV: &str = r#"
id: steal_kv
namespace: test
tasks:
  - id: leak
    type: io.kestra.plugin.core.log.Log
    message: "kv={{ kv('launch_code', 'sec') }}"
"#;

const PLANT_KV: &str = r#"
id: plant_kv
namespace: test
tasks:
  - id: plant
    type: io.kestra.plugin.core.kv.Set
    namespace: sec
    key: planted
    value: attacker
"#;

const START_IN_SEC: &str = r#"
id: start_in_sec
namespace: test
tasks:
  - id: child
    type: io.kestra.plugin.core.flow.Subflow
    namespace: sec
    flowId: target
"#;

const SEC_TARGET: &str = r#"
id: target
namespace: sec
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "ran in sec"
"#;

/// Finding 1: an admin of `test` has no role on `sec`, yet a flow in `test` read `sec`'s
/// secrets and KV, wrote its KV and started its flows. The flow's namespace is the principal.
#[test]
fn a_flow_reaches_only_its_own_namespace_unless_an_admin_allows_more() {
    let mut t = team();
    let (admin, ns_admin) = (t.token(ADMIN), t.token(NS_ADMIN));
    set_secret(&mut t.d, &admin, "sec", "DB_PASSWORD", SECRET_VALUE);
    assert!(as_user(&mut t.d, &admin, &["kv", "set", "sec", "launch_code", "0000-sec"]).ok());
    assert!(apply(&mut t.d, &admin, "target", SEC_TARGET).ok());
    for (name, source) in [
        ("steal_secret", STEAL_SECRET),
        ("steal_kv", STEAL_KV),
        ("plant_kv", PLANT_KV),
        ("start_in_sec", START_IN_SEC),
    ] {
        let applied = apply(&mut t.d, &ns_admin, name, source);
        assert!(
            applied.ok(),
            "the namespace admin may apply flows in `test`:\n{applied}"
        );
    }
    let encoded = base64_of(SECRET_VALUE);
    for flow in ["steal_secret", "steal_kv", "plant_kv", "start_in_sec"] {
        let e = as_user_json(&mut t.d, &ns_admin, &["run", "test", flow, "--wait"]);
        assert_eq!(e["state"], "FAILED", "{flow} must fail: {e:#}");
        let saved = t.d.token.replace(ns_admin.clone());
        let logs = log_messages(&t.d, e["id"].as_str().expect("id"));
        t.d.token = saved;
        let all = logs.join("\n");
        assert!(
            all.contains("may not") && all.contains("namespace `sec`"),
            "{flow}: the refusal names the rule:\n{all}"
        );
        for leaked in [SECRET_VALUE, encoded.as_str(), "0000-sec"] {
            assert!(!all.contains(leaked), "{flow} leaked `{leaked}`:\n{all}");
        }
    }
    let planted = as_user(&mut t.d, &admin, &["kv", "get", "sec", "planted"]);
    assert!(!planted.ok(), "nothing was written in `sec`:\n{planted}");
    let in_sec = as_user_json(
        &mut t.d,
        &admin,
        &["executions", "--state", "SUCCESS", "--namespace", "sec"],
    );
    let failed_in_sec = as_user_json(
        &mut t.d,
        &admin,
        &["executions", "--state", "FAILED", "--namespace", "sec"],
    );
    assert_eq!(
        in_sec.as_array().map(Vec::len),
        Some(0),
        "no subflow ran in `sec`: {in_sec:#}"
    );
    assert_eq!(failed_in_sec.as_array().map(Vec::len), Some(0));

    // An admin of every namespace allows the flows of `test` to read `sec`: reads now work,
    // writes and subflows still do not (they need the admin and operator roles).
    admin_remote(
        &t.d,
        &admin,
        &[
            "role",
            "bind",
            "--flows-of",
            "test",
            "--role",
            "viewer",
            "--namespace",
            "sec",
        ],
    );
    let e = as_user_json(&mut t.d, &ns_admin, &["run", "test", "steal_kv", "--wait"]);
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    let e = as_user_json(&mut t.d, &ns_admin, &["run", "test", "plant_kv", "--wait"]);
    assert_eq!(e["state"], "FAILED", "a viewer allowance does not allow writes: {e:#}");
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const SECRET_INPUTS: &str = r#"
id: secret_inputs
namespace: test
inputs:
  - id: password
    type: SECRET
tasks:
  - id: echo
    type: io.kestra.plugin.core.log.Log
    message: "password is {{ inputs.password }} ({{ inputs.password | length }} chars)"
  - id: ask
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: pin
        type: SECRET
  - id: echo2
    type: io.kestra.plugin.core.log.Log
    message: "pin is {{ outputs.ask.onResume.pin }} ({{ outputs.ask.onResume.pin | length }} chars)"
  - id: out
    type: io.kestra.plugin.core.output.OutputValues
    values:
      copy: "{{ inputs.password }}"
"#;

/// Finding 2: SECRET start inputs and onResume values showed in logs, REST outputs and the
/// redb file; the data dir was world-readable.
#[test]
fn secret_inputs_never_leave_the_daemon_and_are_sealed_at_rest() {
    const PASSWORD: &str = "hunter2-start-input";
    const PIN: &str = "pin-4242-resume";
    let mut d = Daemon::start();
    let file = d.data_dir.parent().expect("temp").join("secret_inputs.yaml");
    std::fs::write(&file, SECRET_INPUTS).expect("write flow");
    assert!(d.cli(&["flow", "apply", file.to_str().expect("path")]).ok());
    let e = d.run_wait("test", "secret_inputs", &[&format!("password={PASSWORD}")]);
    let id = e["id"].as_str().expect("id").to_string();
    assert_eq!(e["state"], "PAUSED");
    let resumed = d.cli(&["resume", &id, "--input", &format!("pin={PIN}")]);
    assert!(resumed.ok(), "{resumed}");
    let done = d.wait_state(&id, "SUCCESS");

    let logs = log_messages(&d, &id).join("\n");
    assert!(
        logs.contains(&format!("password is ****** ({} chars)", PASSWORD.len())),
        "the template saw the clear value, the log shows the mask:\n{logs}"
    );
    assert!(logs.contains(&format!("pin is ****** ({} chars)", PIN.len())), "{logs}");
    let (status, rest) = curl(&[&format!("{}/api/v1/main/executions/{id}", d.server())]);
    assert_eq!(status, 200, "{rest}");
    let cli = serde_json::to_string(&done).expect("json");
    for (door, text) in [("logs", &logs), ("REST", &rest), ("gRPC", &cli)] {
        for value in [PASSWORD, PIN] {
            assert!(!text.contains(value), "{door} shows `{value}`:\n{text}");
        }
    }
    assert!(rest.contains("******"), "REST masks, not drops: {rest}");

    d.stop();
    let db = std::fs::read(d.data_dir.join("tollgate.redb")).expect("read the store");
    for value in [PASSWORD, PIN] {
        assert!(
            !db.windows(value.len()).any(|w| w == value.as_bytes()),
            "`{value}` is in the redb file in clear"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&d.data_dir), 0o700, "data dir");
        assert_eq!(mode(&d.data_dir.join("tollgate.redb")), 0o600, "store file");
        assert_eq!(mode(&d.data_dir.join("secret.key")), 0o600, "key file");
    }
    // Sealed values still open after a restart: the key is the data dir's.
    d.restart();
    let again = d.run_wait("test", "secret_inputs", &[&format!("password={PASSWORD}")]);
    let id2 = again["id"].as_str().expect("id").to_string();
    assert!(d.cli(&["resume", &id2, "--input", &format!("pin={PIN}")]).ok());
    d.wait_state(&id2, "SUCCESS");
}

/// Finding 3: refusals over gRPC, bad tokens, and KV, secret, flow and subflow changes left no
/// audit record. Every one does now, in the same transaction as the change.
#[test]
fn every_refusal_and_every_change_is_audited_whatever_the_door() {
    let mut t = team();
    let (admin, viewer, operator, ns_admin) = (t.token(ADMIN), t.token(VIEWER), t.token(OPERATOR), t.token(NS_ADMIN));

    // A viewer tries to decide (gRPC through the CLI) and an operator to start in another namespace.
    let e = as_user_json(&mut t.d, &operator, &["run", "test", "approval", "--wait"]);
    let id = e["id"].as_str().expect("id").to_string();
    let denied = as_user(&mut t.d, &viewer, &["resume", &id, "--input", "approved=true"]);
    assert!(!denied.ok(), "{denied}");
    let denied = as_user(&mut t.d, &operator, &["run", "console", "anything"]);
    assert!(!denied.ok(), "{denied}");
    // A made-up token, over gRPC and over REST.
    assert!(!as_user(&mut t.d, "tg_fake1d_notasecret", &["executions"]).ok());
    let (status, _) = curl(&[
        "-H",
        "Authorization: Bearer tg_fake2d_nope",
        &format!("{}/api/v1/main/executions/{id}", t.d.server()),
    ]);
    assert_eq!(status, 401);

    // Changes by the namespace admin.
    set_secret(&mut t.d, &ns_admin, "test", "API_KEY", "k-123");
    assert!(as_user(&mut t.d, &ns_admin, &["secret", "delete", "test", "API_KEY"]).ok());
    assert!(as_user(&mut t.d, &ns_admin, &["kv", "set", "test", "limit", "5"]).ok());
    assert!(as_user(&mut t.d, &ns_admin, &["kv", "delete", "test", "limit"]).ok());
    assert!(apply(&mut t.d, &ns_admin, "short_lived", "id: short_lived\nnamespace: test\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n").ok());
    // No CLI command deletes a flow: gRPC Flows.Delete, as a script would.
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let mut flows = tollgate_proto::v1::flows_client::FlowsClient::new(auth_common::channel(&t.d).await);
        let gone = tollgate_proto::v1::DeleteFlowRequest {
            namespace: "test".into(),
            id: "short_lived".into(),
        };
        flows
            .delete(auth_common::req(gone, Some(&ns_admin)))
            .await
            .expect("the namespace admin deletes a flow");
    });
    // A flow's own KV write goes through the writer with its audit record too.
    let kv_flow = "id: kv_writer\nnamespace: test\ntasks:\n  - id: put\n    type: io.kestra.plugin.core.kv.Set\n    key: from_flow\n    value: 42\n";
    assert!(apply(&mut t.d, &ns_admin, "kv_writer", kv_flow).ok());
    let kv_run = as_user_json(&mut t.d, &operator, &["run", "test", "kv_writer", "--wait"]);
    assert_eq!(kv_run["state"], "SUCCESS", "{kv_run:#}");
    // A subflow's child start (the child waits at its own pause).
    let parent = as_user_json(&mut t.d, &operator, &["run", "test", "parent"]);
    let parent_id = parent["id"].as_str().expect("id").to_string();
    let saved = t.d.token.replace(admin.clone());
    t.d.wait_listed(&["executions", "--namespace", "test.sub"], |e| e["flowId"] == "child");
    t.d.token = saved;

    let records = audit(&mut t.d, &admin);
    let denied = |r: &Value| r["result"].as_str().unwrap_or_default().starts_with("DENIED");
    assert!(
        has_record(&records, |r| r["user"] == VIEWER
            && r["action"] == "resume"
            && r["executionId"] == id.as_str()
            && denied(r)),
        "the viewer's refused resume over gRPC"
    );
    assert!(
        has_record(&records, |r| r["user"] == OPERATOR
            && r["action"] == "start"
            && r["namespace"] == "console"
            && denied(r)),
        "the operator's refused start"
    );
    for claimed in ["fake1d", "fake2d"] {
        assert!(
            has_record(&records, |r| r["action"] == "sign-in"
                && r["values"]["token_id"] == claimed
                && denied(r)),
            "the refused token `{claimed}`"
        );
    }
    for action in [
        "secret.set",
        "secret.delete",
        "kv.set",
        "kv.delete",
        "flow.apply",
        "flow.delete",
    ] {
        assert!(
            has_record(&records, |r| r["user"] == NS_ADMIN
                && r["action"] == action
                && r["result"] == "OK"),
            "{action} is audited"
        );
    }
    assert!(
        has_record(&records, |r| r["action"] == "kv.set"
            && r["executionId"] == kv_run["id"]
            && r["values"]["key"] == "from_flow"),
        "the flow's KV Set is audited with its execution"
    );
    assert!(
        !serde_json::to_string(&records).expect("json").contains("k-123"),
        "a secret's value is never audited"
    );
    assert!(
        has_record(&records, |r| r["action"] == "start"
            && r["namespace"] == "test.sub"
            && r["values"]["parentExecutionId"] == parent_id.as_str()),
        "the subflow's child start names its parent: {parent:#}"
    );
    let verified = as_user_json(&mut t.d, &admin, &["audit", "--verify"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
}

/// Finding 5: `system.` labels are the daemon's; a caller cannot claim someone else started it.
#[test]
fn callers_cannot_write_system_labels() {
    let mut t = team();
    let operator = t.token(OPERATOR);
    let out = as_user(
        &mut t.d,
        &operator,
        &["run", "test", "approval", "-l", "system.username=ceo@example.com"],
    );
    assert!(!out.ok(), "{out}");
    assert!(
        out.stderr.contains("system.username") && out.stderr.contains("reserved"),
        "{out}"
    );
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {operator}"),
        &format!(
            "{}/api/v1/main/executions/test/approval?labels=system.username:ceo@example.com",
            t.d.server()
        ),
    ]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("reserved"), "{body}");
    // An honest start is labelled with the real starter.
    let e = as_user_json(&mut t.d, &operator, &["run", "test", "approval", "--wait"]);
    let (_, got) = curl(&[
        "-H",
        &format!("Authorization: Bearer {operator}"),
        &format!(
            "{}/api/v1/main/executions/{}",
            t.d.server(),
            e["id"].as_str().expect("id")
        ),
    ]);
    assert!(got.contains(&format!("\"value\":\"{OPERATOR}\"")), "{got}");
}
