//! Decision comments and rejection reasons (issue 18 item 4) and delegation / out-of-office
//! (item 1), against the real daemon with real users and tokens, through the CLI, REST and the
//! audit trail; kept durably across `kill -9`.

use std::collections::HashMap;

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, curl, log_messages, task_run};

/// A daemon with auth on, the flows of `flows_decide/`, and these users (operator on `hr`
/// unless said otherwise). Returns it with each user's token.
fn daemon_with_users() -> (Daemon, HashMap<&'static str, String>) {
    daemon_with_users_env(vec![])
}

fn daemon_with_users_env(env: Vec<(String, String)>) -> (Daemon, HashMap<&'static str, String>) {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_decide");
    let mut d = Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        insecure: false,
        env,
        ..Default::default()
    });
    d.stop();
    let mut tokens = HashMap::new();
    // (user, groups, role on hr)
    let users: [(&str, &[&str], Option<&str>); 7] = [
        ("ana@example.com", &["Approvers"], Some("operator")),
        ("carol@example.com", &[], Some("operator")),
        ("sam@example.com", &[], Some("operator")),
        // bob holds no role on hr: he decides there only as ana's delegate.
        ("bob@example.com", &[], None),
        ("dave@example.com", &[], None),
        ("hradmin@example.com", &[], Some("admin")),
        ("root@example.com", &[], None),
    ];
    for (user, groups, role) in users {
        let mut args = vec!["user", "add", user];
        for g in groups {
            args.extend(["--group", g]);
        }
        assert!(d.admin(&args).ok());
        if let Some(role) = role {
            assert!(
                d.admin(&["role", "bind", "--user", user, "--role", role, "--namespace", "hr"])
                    .ok()
            );
        }
        tokens.insert(
            user,
            d.admin(&["token", "create", "--user", user]).stdout.trim().to_string(),
        );
    }
    assert!(
        d.admin(&[
            "role",
            "bind",
            "--user",
            "root@example.com",
            "--role",
            "admin",
            "--namespace",
            "*"
        ])
        .ok()
    );
    d.restart();
    (d, tokens)
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

fn audit_of(d: &Daemon, id: &str) -> Vec<Value> {
    d.cli_json(&["audit", "--execution", id])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn comments_and_rejection_reasons_are_kept_shown_audited_and_survive_kill9() {
    let (mut d, tokens) = daemon_with_users();
    let as_user = |d: &mut Daemon, u: &str| d.token = Some(tokens[u].clone());

    // An approval with a comment: kept with the decision, in the outputs, the audit and the log.
    as_user(&mut d, "sam@example.com");
    let approved = id_of(&d.run_wait("hr", "gate", &[]));
    as_user(&mut d, "ana@example.com");
    let out = d.cli(&["resume", &approved, "--comment", "numbers check out"]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&approved, "SUCCESS");
    let decisions = &task_run(&e, "approve")["decisions"];
    assert_eq!(decisions[0]["by"], "ana@example.com", "{e:#}");
    assert_eq!(decisions[0]["decision"], "APPROVED");
    assert_eq!(decisions[0]["comment"], "numbers check out");
    assert_eq!(
        task_run(&e, "approve")["outputs"]["resumed"]["comment"],
        "numbers check out"
    );
    assert!(
        log_messages(&d, &approved)
            .iter()
            .any(|m| m == "approved with comment numbers check out"),
        "{:?}",
        log_messages(&d, &approved)
    );
    let text = d.cli(&["executions", "get", &approved]);
    assert!(
        text.stdout.contains("ana@example.com approved `approve`") && text.stdout.contains(": numbers check out"),
        "{text}"
    );

    // A rejection without a reason is refused where the HumanTask requires one; nothing changes.
    as_user(&mut d, "sam@example.com");
    let rejected = id_of(&d.run_wait("hr", "gate", &[]));
    as_user(&mut d, "ana@example.com");
    let out = d.cli(&["reject", &rejected]);
    assert!(!out.ok(), "{out}");
    assert!(out.to_string().contains("rejectionReasonRequired"), "{out}");
    assert_eq!(d.execution(&rejected)["state"], "PAUSED");
    // Only an assignee may reject.
    as_user(&mut d, "carol@example.com");
    let out = d.cli(&["reject", &rejected, "--reason", "not mine to say"]);
    assert!(!out.ok() && out.to_string().contains("Access denied"), "{out}");
    as_user(&mut d, "ana@example.com");
    let out = d.cli(&["reject", &rejected, "--reason", "over budget"]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&rejected, "FAILED");
    let run = task_run(&e, "approve");
    assert_eq!(run["state"], "FAILED");
    assert_eq!(run["outputs"]["rejected"]["reason"], "over budget");
    assert_eq!(run["decisions"][0]["decision"], "REJECTED");
    assert_eq!(run["decisions"][0]["comment"], "over budget");

    // The flow's errors handlers see who rejected and why.
    as_user(&mut d, "sam@example.com");
    let handled = id_of(&d.run_wait("hr", "handled", &[]));
    as_user(&mut d, "ana@example.com");
    assert!(d.cli(&["reject", &handled, "--reason", "wrong team"]).ok());
    d.wait_state(&handled, "FAILED");
    assert!(
        log_messages(&d, &handled)
            .iter()
            .any(|m| m == "rejected by ana@example.com because wrong team"),
        "{:?}",
        log_messages(&d, &handled)
    );

    // REST: a comment on resume (?comment=), a rejection with its reason, and the decisions in GET.
    as_user(&mut d, "sam@example.com");
    let by_rest = id_of(&d.run_wait("hr", "gate", &[]));
    let rest_rejected = id_of(&d.run_wait("hr", "gate", &[]));
    let bearer = format!("Authorization: Bearer {}", tokens["ana@example.com"]);
    let base = format!("{}/api/v1/main/executions", d.server());
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-F",
        "note=ok",
        &format!("{base}/{by_rest}/resume?comment=fine%20by%20me"),
    ]);
    assert_eq!(status, 204, "{body}");
    let (status, body) = curl(&["-X", "POST", "-H", &bearer, &format!("{base}/{rest_rejected}/reject")]);
    assert_eq!(status, 400, "a rejection without its required reason: {body}");
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        &format!("{base}/{rest_rejected}/reject?reason=too%20late"),
    ]);
    assert_eq!(status, 200, "{body}");
    d.wait_state(&by_rest, "SUCCESS");
    let (status, body) = curl(&["-H", &bearer, &format!("{base}/{by_rest}")]);
    assert_eq!(status, 200, "{body}");
    let rest: Value = serde_json::from_str(&body).unwrap();
    let run = rest["taskRunList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["taskId"] == "approve")
        .unwrap();
    assert_eq!(run["decisions"][0]["comment"], "fine by me", "{rest:#}");
    let (_, body) = curl(&["-H", &bearer, &format!("{base}/{rest_rejected}")]);
    assert!(
        body.contains("\"rejected\":true") && body.contains("too late"),
        "{body}"
    );

    // Kill with a reason: recorded.
    as_user(&mut d, "sam@example.com");
    let killed = id_of(&d.run_wait("hr", "gate", &[]));
    assert!(d.cli(&["kill", &killed, "--reason", "duplicate request"]).ok());
    d.wait_state(&killed, "KILLED");

    // The audit says who decided what and why.
    as_user(&mut d, "root@example.com");
    let has = |d: &Daemon, id: &str, action: &str, reason: &str| {
        audit_of(d, id)
            .iter()
            .any(|r| r["action"] == action && r["reason"] == reason && r["result"] == "OK")
    };
    assert!(has(&d, &approved, "resume", "numbers check out"));
    assert!(has(&d, &rejected, "reject", "over budget"));
    assert!(has(&d, &by_rest, "resume", "fine by me"));
    assert!(has(&d, &rest_rejected, "reject", "too late"));
    assert!(has(&d, &killed, "kill", "duplicate request"));
    assert!(
        audit_of(&d, &rejected).iter().any(|r| r["action"] == "reject"
            && r["user"] == "carol@example.com"
            && r["result"].as_str().unwrap_or("").starts_with("DENIED")),
        "the refused rejection is evidence too"
    );

    // Durable: every comment and reason is still there after kill -9.
    d.kill9();
    d.restart();
    let e = d.execution(&approved);
    assert_eq!(task_run(&e, "approve")["decisions"][0]["comment"], "numbers check out");
    let e = d.execution(&rejected);
    assert_eq!(task_run(&e, "approve")["decisions"][0]["comment"], "over budget");
    assert!(has(&d, &killed, "kill", "duplicate request"));
    assert!(d.cli(&["audit", "--verify"]).ok());
}

#[test]
fn a_delegate_decides_for_the_delegator_within_the_rules_and_the_audit_says_so() {
    let (mut d, tokens) = daemon_with_users();
    let as_user = |d: &mut Daemon, u: &str| d.token = Some(tokens[u].clone());

    // Who may create: a user for themselves; an admin of the namespace for anyone; nobody else.
    as_user(&mut d, "bob@example.com");
    let out = d.cli(&[
        "delegate",
        "--to",
        "dave@example.com",
        "--until",
        "2099-01-01",
        "--for",
        "ana@example.com",
        "--namespace",
        "hr",
    ]);
    assert!(
        !out.ok() && out.to_string().contains("may only delegate their own"),
        "{out}"
    );
    as_user(&mut d, "ana@example.com");
    let out = d.cli(&["delegate", "--to", "ana@example.com", "--until", "2099-01-01"]);
    assert!(!out.ok() && out.to_string().contains("themselves"), "{out}");
    let out = d.cli(&["delegate", "--to", "bob@example.com", "--until", "20990101"]);
    assert!(!out.ok() && out.to_string().contains("YYYY-MM-DD"), "{out}");
    let ana_to_bob = d.cli_json(&[
        "delegate",
        "--to",
        "bob@example.com",
        "--until",
        "2099-01-01",
        "--namespace",
        "hr",
    ]);
    assert_eq!(ana_to_bob["from"], "ana@example.com");
    let ana_to_bob = id_of(&ana_to_bob);
    // Not yet holding: a delegation that starts in the future offers nothing now.
    as_user(&mut d, "hradmin@example.com");
    let future = d.cli_json(&[
        "delegate",
        "--for",
        "carol@example.com",
        "--to",
        "dave@example.com",
        "--from",
        "2098-12-20",
        "--until",
        "2099-01-05",
        "--namespace",
        "hr",
    ]);
    assert_eq!(
        future["from"], "carol@example.com",
        "an hr admin delegates for carol: {future:#}"
    );

    // Bob's inbox now offers ana's decision, marked as hers.
    as_user(&mut d, "sam@example.com");
    let gate = id_of(&d.run_wait("hr", "gate", &[]));
    as_user(&mut d, "bob@example.com");
    let inbox = d.cli_json(&["inbox"]);
    let mine: Vec<&Value> = inbox
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == gate.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{inbox:#}");
    assert_eq!(mine[0]["onBehalfOf"], "ana@example.com");
    let text = d.cli(&["inbox"]);
    assert!(text.stdout.contains("for ana@example.com"), "{text}");

    // Delegations are not transitive: bob passing his rights on to dave passes nothing of ana's.
    assert!(
        d.cli(&["delegate", "--to", "dave@example.com", "--until", "2099-01-01"])
            .ok()
    );
    as_user(&mut d, "dave@example.com");
    let inbox = d.cli_json(&["inbox"]);
    assert!(
        inbox.as_array().unwrap().iter().all(|i| i["id"] != gate.as_str()),
        "{inbox:#}"
    );
    let out = d.cli(&["resume", &gate, "--comment", "via bob"]);
    assert!(!out.ok(), "{out}");

    // Bob decides: the decision and the audit say "bob for ana".
    as_user(&mut d, "bob@example.com");
    assert_eq!(d.execution(&gate)["state"], "PAUSED", "dave's attempt changed nothing");
    let out = d.cli(&["resume", &gate, "--comment", "covering for ana"]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&gate, "SUCCESS");
    let decision = &task_run(&e, "approve")["decisions"][0];
    assert_eq!(decision["by"], "bob@example.com", "{e:#}");
    assert_eq!(decision["onBehalfOf"], "ana@example.com");
    as_user(&mut d, "root@example.com");
    let audit = audit_of(&d, &gate);
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "resume" && r["user"] == "bob@example.com" && r["onBehalfOf"] == "ana@example.com"),
        "{audit:#?}"
    );
    let text = d.cli(&["audit", "--execution", &gate]);
    assert!(text.stdout.contains("bob@example.com for ana@example.com"), "{text}");

    // Separation of duties holds through a delegation: ana's request cannot be approved by her
    // delegate, and a starter holding a delegation cannot approve their own request.
    as_user(&mut d, "ana@example.com");
    let own = id_of(&d.run_wait("hr", "gate", &[]));
    as_user(&mut d, "bob@example.com");
    let out = d.cli(&["resume", &own]);
    assert!(!out.ok() && out.to_string().contains("self-approval"), "{out}");
    as_user(&mut d, "ana@example.com");
    assert!(
        d.cli(&["delegate", "--to", "sam@example.com", "--until", "2099-01-01"])
            .ok()
    );
    as_user(&mut d, "sam@example.com");
    let sams = id_of(&d.run_wait("hr", "gate", &[]));
    let out = d.cli(&["resume", &sams]);
    assert!(!out.ok() && out.to_string().contains("self-approval"), "{out}");

    // A quorum seat counts once: after bob approved for ana, ana cannot approve again.
    let quorum = id_of(&d.run_wait("hr", "quorum", &[]));
    as_user(&mut d, "bob@example.com");
    assert!(d.cli(&["resume", &quorum, "--comment", "for ana"]).ok());
    as_user(&mut d, "ana@example.com");
    // The waiting pause names the seat: bob approved, counting for ana.
    let waiting = d.cli_json(&["executions", "get", &quorum]);
    assert_eq!(
        waiting["pauses"][0]["approvedBy"],
        serde_json::json!(["bob@example.com"]),
        "{waiting:#}"
    );
    assert_eq!(
        waiting["pauses"][0]["approvedOnBehalfOf"],
        serde_json::json!(["ana@example.com"]),
        "{waiting:#}"
    );
    let out = d.cli(&["resume", &quorum]);
    assert!(!out.ok() && out.to_string().contains("already approved"), "{out}");
    as_user(&mut d, "carol@example.com");
    assert!(d.cli(&["resume", &quorum, "--comment", "second"]).ok());
    d.wait_state(&quorum, "SUCCESS");

    // Durable across kill -9, and listed through REST as well.
    d.kill9();
    d.restart();
    as_user(&mut d, "ana@example.com");
    let list = d.cli_json(&["delegate", "list"]);
    assert!(
        list.as_array().unwrap().iter().any(|x| x["id"] == ana_to_bob.as_str()),
        "{list:#}"
    );
    let bearer = format!("Authorization: Bearer {}", tokens["ana@example.com"]);
    let (status, body) = curl(&["-H", &bearer, &format!("{}/api/v1/main/delegations", d.server())]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&ana_to_bob), "{body}");

    // Revoked: bob no longer sees ana's decisions.
    assert!(d.cli(&["delegate", "revoke", &ana_to_bob]).ok());
    as_user(&mut d, "sam@example.com");
    let later = id_of(&d.run_wait("hr", "gate", &[]));
    as_user(&mut d, "bob@example.com");
    let inbox = d.cli_json(&["inbox"]);
    assert!(
        inbox.as_array().unwrap().iter().all(|i| i["id"] != later.as_str()),
        "{inbox:#}"
    );
    let out = d.cli(&["resume", &later]);
    assert!(!out.ok(), "{out}");

    // Every change to a delegation is audited.
    as_user(&mut d, "root@example.com");
    let all = d.cli_json(&["audit", "--limit", "500"]);
    let actions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"delegate") && actions.contains(&"delegate.revoke"),
        "{actions:?}"
    );
    assert!(d.cli(&["audit", "--verify"]).ok());
}

#[test]
fn resume_dry_run_shows_the_branch_and_rendered_next_tasks_and_changes_nothing() {
    let (mut d, tokens) = daemon_with_users();
    d.token = Some(tokens["sam@example.com"].clone());
    let id = id_of(&d.run_wait("hr", "route", &[]));
    d.token = Some(tokens["root@example.com"].clone());
    let audit_before = audit_of(&d, &id).len();
    let logs_before = log_messages(&d, &id).len();
    d.token = Some(tokens["ana@example.com"].clone());

    // A big amount: the If takes `then`; the Log line and the HTTP request are rendered, the
    // SECRET value masked.
    let v = d.cli_json(&[
        "resume",
        &id,
        "--dry-run",
        "--input",
        "amount=500",
        "--input",
        "token=hunter2-secret",
    ]);
    assert_eq!(v["completes"], true, "{v:#}");
    let steps = v["steps"].as_array().unwrap();
    let step = |t: &str| {
        steps
            .iter()
            .find(|s| s["taskId"] == t)
            .unwrap_or_else(|| panic!("no step {t}: {v:#}"))
    };
    assert_eq!(step("check")["branch"], "then", "{v:#}");
    assert_eq!(step("big")["messages"][0], "big amount 500");
    assert_eq!(step("notify")["state"], "RUNNING");
    assert_eq!(
        step("notify")["properties"]["uri"],
        "http://127.0.0.1:9/notify?amount=500"
    );
    assert_eq!(
        step("notify")["properties"]["headers"]["Authorization"],
        "Bearer ******"
    );
    assert!(!v.to_string().contains("hunter2-secret"), "{v:#}");
    assert!(steps.iter().all(|s| s["taskId"] != "small"));

    // A small amount takes `else`; the text form says so.
    let out = d.cli(&["resume", &id, "--dry-run", "--input", "amount=5"]);
    assert!(out.ok(), "{out}");
    assert!(
        out.stdout.contains("check (If)") && out.stdout.contains("-> branch else"),
        "{out}"
    );
    assert!(out.stdout.contains("log: small amount 5"), "{out}");

    // Invalid input is refused as the resume would refuse it.
    let out = d.cli(&["resume", &id, "--dry-run", "--input", "amount=lots"]);
    assert!(!out.ok(), "{out}");

    // REST: the same preview.
    let bearer = format!("Authorization: Bearer {}", tokens["ana@example.com"]);
    let (status, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &bearer,
        "-F",
        "amount=101",
        &format!("{}/api/v1/main/executions/{id}/resume/preview", d.server()),
    ]);
    assert_eq!(status, 200, "{body}");
    let rest: Value = serde_json::from_str(&body).unwrap();
    assert!(
        rest["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["taskId"] == "check" && s["branch"] == "then"),
        "{rest:#}"
    );

    // Nothing changed: still paused, no log line, no audit record.
    assert_eq!(d.execution(&id)["state"], "PAUSED");
    assert_eq!(log_messages(&d, &id).len(), logs_before);
    d.token = Some(tokens["root@example.com"].clone());
    assert_eq!(audit_of(&d, &id).len(), audit_before, "a preview is a read");

    // And the real resume does what the preview said.
    d.token = Some(tokens["ana@example.com"].clone());
    assert!(d.cli(&["resume", &id, "--input", "amount=5"]).ok());
    d.wait_state(&id, "SUCCESS");
    assert!(log_messages(&d, &id).iter().any(|m| m == "small amount 5"));
}

/// Polls an execution until `pick` holds (generous deadline; no timed assertion).
fn wait_for(d: &Daemon, id: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let e = d.execution(id);
        if pick(&e) {
            return e;
        }
        assert!(std::time::Instant::now() < deadline, "{what} never happened: {e:#}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn approved_by(e: &Value) -> Vec<String> {
    e["pauses"]
        .as_array()
        .and_then(|p| p.first())
        .and_then(|p| p["approvedBy"].as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

#[test]
fn partial_approvals_go_stale_when_a_stale_when_value_changes_also_across_kill9() {
    let (mut d, tokens) = daemon_with_users_env(vec![("TOLLGATE_STALE_CHECK_INTERVAL".into(), "PT1S".into())]);
    let as_user = |d: &mut Daemon, u: &str| d.token = Some(tokens[u].clone());
    as_user(&mut d, "root@example.com");
    assert!(d.cli(&["kv", "set", "hr", "config_hash", "v1"]).ok());

    // The periodic check (a durable timer): ana approves under v1; the daemon is killed; the
    // value changes; after the restart her approval is discarded and the approvers are told.
    as_user(&mut d, "sam@example.com");
    let id = id_of(&d.run_wait("hr", "stale", &[]));
    as_user(&mut d, "ana@example.com");
    assert!(d.cli(&["resume", &id, "--comment", "ok under v1"]).ok());
    assert_eq!(approved_by(&d.execution(&id)), vec!["ana@example.com"]);
    d.kill9();
    d.restart();
    as_user(&mut d, "root@example.com");
    assert!(d.cli(&["kv", "set", "hr", "config_hash", "v2"]).ok());
    let e = wait_for(&d, &id, "the stale check", |e| approved_by(e).is_empty());
    assert_eq!(e["state"], "PAUSED");
    let logs = || log_messages(&d, &id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !logs().iter().any(|m| m.starts_with("approve again, ana@example.com")) {
        assert!(std::time::Instant::now() < deadline, "onStale never ran: {:?}", logs());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        logs()
            .iter()
            .any(|m| m.contains("discarded as stale") && m.contains("`v1`") && m.contains("`v2`")),
        "{:?}",
        logs()
    );
    let audit = audit_of(&d, &id);
    assert!(
        audit.iter().any(|r| r["action"] == "approvals.stale"
            && r["reason"]
                .as_str()
                .unwrap_or("")
                .contains("was `v1` when ana@example.com approved, now `v2`")),
        "{audit:#?}"
    );

    // Approvals under the current value complete the quorum as usual.
    as_user(&mut d, "ana@example.com");
    assert!(d.cli(&["resume", &id]).ok());
    as_user(&mut d, "carol@example.com");
    assert!(d.cli(&["resume", &id]).ok());
    d.wait_state(&id, "SUCCESS");
    assert!(log_messages(&d, &id).iter().any(|m| m == "deployed config v2"));
    as_user(&mut d, "root@example.com");
    assert!(d.cli(&["audit", "--verify"]).ok());
}

#[test]
fn a_new_approval_checks_stale_when_before_it_counts() {
    // A check interval far longer than the test: only the check at the approval can act.
    let (mut d, tokens) = daemon_with_users_env(vec![("TOLLGATE_STALE_CHECK_INTERVAL".into(), "PT1H".into())]);
    let as_user = |d: &mut Daemon, u: &str| d.token = Some(tokens[u].clone());
    as_user(&mut d, "root@example.com");
    assert!(d.cli(&["kv", "set", "hr", "config_hash", "v1"]).ok());
    as_user(&mut d, "sam@example.com");
    let id = id_of(&d.run_wait("hr", "stale", &[]));
    as_user(&mut d, "ana@example.com");
    assert!(d.cli(&["resume", &id]).ok());
    as_user(&mut d, "root@example.com");
    assert!(d.cli(&["kv", "set", "hr", "config_hash", "v2"]).ok());
    // Carol's approval would have completed the quorum; ana's went stale, so it is 1 of 2.
    as_user(&mut d, "carol@example.com");
    assert!(d.cli(&["resume", &id]).ok());
    let e = d.execution(&id);
    assert_eq!(e["state"], "PAUSED", "{e:#}");
    assert_eq!(approved_by(&e), vec!["carol@example.com"]);
    assert!(log_messages(&d, &id).iter().any(|m| m.contains("discarded as stale")));
}

/// `onPause` (sent as the gate opens) and every reminder name the delegates of the assignees.
#[test]
fn notifications_name_the_delegates_of_the_assignees() {
    let (mut d, tokens) = daemon_with_users_env(vec![("TOLLGATE_MIN_REMINDER_INTERVAL".into(), "PT1S".into())]);
    // ana is in the assigned group Approvers; she delegates to bob.
    d.token = Some(tokens["ana@example.com"].clone());
    assert!(
        d.cli(&["delegate", "--to", "bob@example.com", "--until", "2099-01-01"])
            .ok()
    );
    d.token = Some(tokens["sam@example.com"].clone());
    let id = id_of(&d.run_wait("hr", "reminded", &[]));
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|m| m == "waiting for @Approvers and delegates [bob@example.com]"),
        "onPause names bob: {logs:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let logs = log_messages(&d, &id);
        if logs
            .iter()
            .any(|m| m == "reminder to @Approvers and delegates [bob@example.com]")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no reminder naming bob: {logs:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
