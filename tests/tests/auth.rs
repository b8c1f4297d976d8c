//! Access control end to end: tokens, namespace roles, HumanTask assignment and quorum, and the
//! audit trail (including tampering detected in the redb file).

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, task_run};

struct Team {
    d: Daemon,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Team {
    fn as_user(&mut self, who: &str) -> &Daemon {
        self.d.token = Some(self.tokens[who].clone());
        &self.d
    }
}

fn admin(d: &Daemon, args: &[&str]) -> String {
    let out = d.admin(args);
    assert!(out.ok(), "tollgated admin {args:?}:\n{out}");
    out.stdout.trim().to_string()
}

fn team() -> Team {
    let mut d = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..Default::default()
    });
    d.stop();
    let users: &[(&str, &[&str], &str, &str)] = &[
        ("admin@example.com", &[], "admin", "*"),
        ("operator@example.com", &[], "operator", "test"),
        ("viewer@example.com", &[], "viewer", "test"),
        ("hr@example.com", &[], "operator", "hr"),
        ("approver@example.com", &[], "operator", "test"),
        ("sec1@example.com", &["Security Team"], "operator", "test"),
        ("sec2@example.com", &["Security Team"], "operator", "test"),
    ];
    let mut tokens = std::collections::HashMap::new();
    for (email, groups, role, ns) in users {
        let mut args = vec!["user", "add", email];
        for g in *groups {
            args.extend(["--group", g]);
        }
        admin(&d, &args);
        admin(
            &d,
            &["role", "bind", "--user", email, "--role", role, "--namespace", ns],
        );
        let token = admin(&d, &["token", "create", "--user", email, "--name", "test"]);
        assert!(token.starts_with("tg_"), "{token}");
        tokens.insert(*email, token);
    }
    d.restart();
    Team { d, tokens }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn no_missing_or_wrong_token_gets_in() {
    let mut t = team();
    t.d.token = None;
    let out = t.d.cli(&["executions"]);
    assert!(
        !out.ok() && out.stderr.contains("not logged in or token invalid"),
        "{out}"
    );
    t.d.token = Some("tg_abc_def".into());
    assert!(!t.d.cli(&["executions"]).ok());
    let good = t.tokens["viewer@example.com"].clone();
    t.d.token = Some(format!("{good}0"));
    assert!(
        !t.d.cli(&["executions"]).ok(),
        "a token with an extra character is refused"
    );
    assert!(t.as_user("viewer@example.com").cli(&["executions"]).ok());
    let who = t.as_user("viewer@example.com").cli_json(&["whoami"]);
    assert_eq!(who["user"], "viewer@example.com");
}

#[test]
fn roles_are_enforced_per_namespace() {
    let mut t = team();
    let e = t.as_user("operator@example.com").run_wait("test", "approval", &[]);
    let eid = id(&e);
    // viewer: sees it, cannot resume or start
    let v = t.as_user("viewer@example.com");
    assert_eq!(v.execution(&eid)["state"], "PAUSED");
    let denied = v.cli(&["resume", &eid, "--input", "approved=true", "--input", "reason=x"]);
    assert!(!denied.ok() && denied.stdout.contains("PERMISSION_DENIED"), "{denied}");
    assert!(!v.cli(&["run", "test", "approval"]).ok());
    // hr operator: sees nothing of `test`
    let hr = t.as_user("hr@example.com");
    let listed = hr.cli_json(&["executions", "--state", "all"]);
    assert_eq!(listed.as_array().unwrap().len(), 0, "{listed:#}");
    assert!(!hr.cli(&["executions", "get", &eid]).ok());
    // bulk resume reports per id
    let out = hr.cli(&[
        "resume",
        &eid,
        "--input",
        "approved=true",
        "--input",
        "reason=x",
        "-o",
        "json",
    ]);
    let results: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(results[0]["code"], "PERMISSION_DENIED", "{out}");
    // operator resumes
    let op = t.as_user("operator@example.com");
    assert!(
        op.cli(&["resume", &eid, "--input", "approved=true", "--input", "reason=ok"])
            .ok()
    );
    let done = op.wait_state(&eid, "SUCCESS");
    assert_eq!(
        task_run(&done, "decide")["outputs"]["resumed"]["by"],
        "operator@example.com"
    );
    assert_eq!(done["labels"]["system.username"], "operator@example.com");
}

#[test]
fn human_task_assignment_quorum_self_approval_and_audit() {
    let mut t = team();
    let e = id(&t.as_user("operator@example.com").run_wait("test", "human", &[]));
    let outsider = t
        .as_user("operator@example.com")
        .cli(&["resume", &e, "--input", "ok=true"]);
    assert!(
        !outsider.ok() && outsider.stdout.contains("Access denied to resume this execution"),
        "{outsider}"
    );
    assert_eq!(t.d.execution(&e)["state"], "PAUSED");
    assert!(
        t.as_user("sec1@example.com")
            .cli(&["resume", &e, "--input", "ok=true"])
            .ok(),
        "group member may decide"
    );
    t.d.wait_state(&e, "SUCCESS");
    let e2 = id(&t.as_user("operator@example.com").run_wait("test", "human", &[]));
    assert!(
        t.as_user("approver@example.com")
            .cli(&["resume", &e2, "--input", "ok=false"])
            .ok(),
        "listed user may decide"
    );

    // Quorum of two distinct approvers, not the requester.
    let q = id(&t.as_user("sec1@example.com").run_wait("test", "quorum", &[]));
    let own = t.as_user("sec1@example.com").cli(&["resume", &q, "--input", "ok=true"]);
    assert!(!own.ok() && own.stdout.contains("self-approval"), "{own}");
    assert!(
        t.as_user("sec2@example.com")
            .cli(&["resume", &q, "--input", "ok=true"])
            .ok()
    );
    assert_eq!(t.d.execution(&q)["state"], "PAUSED", "one approval of two");
    let again = t.as_user("sec2@example.com").cli(&["resume", &q, "--input", "ok=true"]);
    assert!(!again.ok() && again.stdout.contains("already approved"), "{again}");

    // Audit: the denial and decisions are recorded, and the chain verifies.
    let admin = t.as_user("admin@example.com");
    let records = admin.cli_json(&["audit", "--execution", &e]);
    let results: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap().to_string())
        .collect();
    assert!(
        results
            .iter()
            .any(|r| r.starts_with("DENIED") && r.contains("Access denied")),
        "{records:#}"
    );
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "resume" && r["user"] == "sec1@example.com" && r["values"]["ok"] == true)
    );
    assert!(admin.cli(&["audit", "--verify"]).ok());
    assert!(
        !t.as_user("operator@example.com").cli(&["audit"]).ok(),
        "only admins read the audit log"
    );

    // Tampering with a record in the store (the redb file, or the database) is detected.
    t.d.stop();
    {
        let store = t.d.open_store();
        let mut rec = store
            .read()
            .unwrap()
            .audit(0, 1, |r: &tollgate_daemon::audit::Record| r.action == "resume")
            .unwrap()
            .remove(0);
        rec.user = "mallory@example.com".into();
        store.write(|w| w.audit_put(&rec)).unwrap();
    }
    t.d.restart();
    let out = t.as_user("admin@example.com").cli(&["audit", "--verify"]);
    assert!(!out.ok() && out.stdout.contains("altered"), "{out}");
}
