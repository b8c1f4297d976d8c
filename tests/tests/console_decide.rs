//! Deciding from the console with real keys in tmux against a real daemon: the preview (`^p`),
//! a delegate's inbox, and approving with a comment or rejecting with a reason (`^r`).

use std::collections::HashMap;

use tollgate_tests::tmux::Tmux;
use tollgate_tests::{Daemon, binaries, log_messages};

#[test]
fn ctrl_p_in_the_resume_form_previews_the_branch_and_next_tasks_without_resuming() {
    let d = Daemon::start();
    let flow = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_decide/hr/route.yaml");
    let applied = d.cli(&["flow", "apply", flow.to_str().unwrap()]);
    assert!(applied.ok(), "{applied}");
    let id = d.run_wait("hr", "route", &[])["id"].as_str().unwrap().to_string();
    let t = console(&d, None);
    t.wait_for("the paused execution", 30, |s| s.contains(&id[..8]));
    t.keys(&["r"]);
    t.wait_for("the resume form", 10, |s| {
        s.contains("amount") && s.contains("^p preview")
    });
    t.type_text("500");
    t.keys(&["C-p"]);
    let screen = t.wait_for("the preview", 15, |s| s.contains("-> branch then"));
    assert!(screen.contains("log: big amount 500"), "{screen}");
    assert!(screen.contains("uri: http://127.0.0.1:9/notify?amount=500"), "{screen}");
    // Another value, another branch: the preview follows what is typed.
    t.keys(&["BSpace", "BSpace"]);
    t.keys(&["C-p"]);
    let screen = t.wait_for("the other branch", 15, |s| s.contains("-> branch else"));
    assert!(screen.contains("log: small amount 5"), "{screen}");
    // Nothing was resumed or written.
    assert_eq!(d.execution(&id)["state"], "PAUSED");
    assert!(log_messages(&d, &id).iter().all(|m| !m.contains("amount")));
    quit(&t);
}

/// A delegate's console opens on an INBOX holding the delegator's decision, and resuming it from
/// the console's form is recorded as the delegate's decision for the delegator.
#[test]
fn a_delegates_console_inbox_offers_the_delegators_decision() {
    let (mut d, tokens) = daemon_with_hr_users();
    d.token = Some(tokens["ana@example.com"].clone());
    assert!(
        d.cli(&["delegate", "--to", "bob@example.com", "--until", "2099-01-01"])
            .ok()
    );
    d.token = Some(tokens["sam@example.com"].clone());
    let id = d.run_wait("hr", "gate", &[])["id"].as_str().unwrap().to_string();

    let t = console(&d, Some(&tokens["bob@example.com"]));
    t.wait_for("bob's inbox with ana's decision", 30, |s| {
        s.contains("INBOX 1") && s.contains(&id[..8])
    });
    t.keys(&["r"]);
    t.wait_for("the resume form", 10, |s| s.contains("note"));
    t.type_text("covered");
    t.keys(&["C-s"]);
    d.wait_state(&id, "SUCCESS");
    let e = d.execution(&id);
    let run = tollgate_tests::task_run(&e, "approve");
    assert_eq!(run["decisions"][0]["by"], "bob@example.com", "{e:#}");
    assert_eq!(run["decisions"][0]["onBehalfOf"], "ana@example.com");
    quit(&t);
}

/// The console in tmux at 120x40 without colours, against `d`, as the user `token` names.
fn console(d: &Daemon, token: Option<&str>) -> Tmux {
    let bin = binaries().tollgate.display().to_string();
    let mut env = vec![("NO_COLOR", "1")];
    if let Some(token) = token {
        env.push(("TOLLGATE_TOKEN", token));
    }
    Tmux::start(&format!("{bin} --server {}", d.server()), &env, 120, 40)
}

/// Leaves the open view, then the console.
fn quit(t: &Tmux) {
    t.keys(&["Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.keys(&["q"]);
}

/// A daemon on the `flows_decide` flows, stopped and restarted with users: ana and sam operate
/// `hr`, bob has no role of his own, root is admin. Returns each user's token.
fn daemon_with_hr_users() -> (Daemon, HashMap<&'static str, String>) {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_decide");
    let mut d = Daemon::start_with(tollgate_tests::DaemonOptions {
        flows: Some(flows),
        insecure: false,
        ..Default::default()
    });
    d.stop();
    let mut tokens = HashMap::new();
    for (user, role, namespace) in [
        ("ana@example.com", "operator", "hr"),
        ("sam@example.com", "operator", "hr"),
        ("bob@example.com", "", ""),
        ("root@example.com", "admin", "*"),
    ] {
        assert!(d.admin(&["user", "add", user]).ok());
        if !role.is_empty() {
            let bound = d.admin(&["role", "bind", "--user", user, "--role", role, "--namespace", namespace]);
            assert!(bound.ok(), "{bound}");
        }
        tokens.insert(
            user,
            d.admin(&["token", "create", "--user", user]).stdout.trim().to_string(),
        );
    }
    d.restart();
    (d, tokens)
}

/// Ana approves one execution with a comment typed in the form's Comment field, then rejects
/// another with `^r`: first without the reason the flow requires (refused in the form, nothing
/// sent), then with one, after confirming.
#[test]
fn the_console_approves_with_a_comment_and_rejects_with_a_reason() {
    let (mut d, tokens) = daemon_with_hr_users();
    d.token = Some(tokens["sam@example.com"].clone());
    let approved = d.run_wait("hr", "gate", &[])["id"].as_str().unwrap().to_string();
    let rejected = d.run_wait("hr", "gate", &[])["id"].as_str().unwrap().to_string();

    let t = console(&d, Some(&tokens["ana@example.com"]));
    t.wait_for("both paused executions", 30, |s| {
        s.contains(&approved[..8]) && s.contains(&rejected[..8])
    });
    // Rows are oldest pause first: the first row is `approved`.
    t.keys(&["r"]);
    t.wait_for("the resume form with its Comment field", 10, |s| {
        s.contains("note") && s.contains("Comment") && s.contains("^r reject")
    });
    t.type_text("a note");
    t.keys(&["Tab"]);
    t.type_text("numbers check out");
    t.keys(&["C-s"]);
    d.wait_state(&approved, "SUCCESS");
    let e = d.execution(&approved);
    let run = tollgate_tests::task_run(&e, "approve");
    assert_eq!(run["decisions"][0]["by"], "ana@example.com", "{e:#}");
    assert_eq!(run["decisions"][0]["comment"], "numbers check out", "{e:#}");
    assert_eq!(run["outputs"]["onResume"]["note"], "a note", "{e:#}");

    t.keys(&["Escape"]);
    t.wait_for("the list with the other one", 10, |s| {
        s.contains(&rejected[..8]) && !s.contains("Resume results")
    });
    t.keys(&["g", "r"]);
    t.wait_for("the second form", 10, |s| {
        s.contains(&format!("Resume execution {rejected}"))
    });
    t.keys(&["C-r"]);
    t.wait_for("the reason asked for", 10, |s| {
        s.contains("requires a reason to reject")
    });
    assert_eq!(d.execution(&rejected)["state"], "PAUSED", "nothing was sent");
    // The refusal focused the Comment field: the reason is typed right there.
    t.type_text("over budget");
    t.keys(&["C-r"]);
    t.wait_for("the confirmation", 10, |s| {
        s.contains("Confirm reject") && s.contains("Reason: over budget")
    });
    t.keys(&["y"]);
    t.wait_for("the result", 15, |s| s.contains("1 rejected"));
    d.wait_state(&rejected, "FAILED");
    let e = d.execution(&rejected);
    let run = tollgate_tests::task_run(&e, "approve");
    assert_eq!(run["decisions"][0]["decision"], "REJECTED", "{e:#}");
    assert_eq!(run["decisions"][0]["comment"], "over budget", "{e:#}");
    d.token = Some(tokens["root@example.com"].clone());
    let audit = d.cli(&["audit", "--execution", &rejected]);
    assert!(audit.stdout.contains("over budget"), "{audit}");
    quit(&t);
}

/// Out of office from the console: `D` lists delegations, `n` creates one through its form, `x`
/// revokes it after a confirmation; the daemon holds both changes.
#[test]
fn the_console_creates_and_revokes_a_delegation() {
    let (mut d, tokens) = daemon_with_hr_users();
    d.token = Some(tokens["ana@example.com"].clone());
    let t = console(&d, Some(&tokens["ana@example.com"]));
    t.wait_for("the console", 30, |s| s.contains("live"));
    t.keys(&["D"]);
    t.wait_for("no delegations yet", 10, |s| s.contains("No delegations"));
    t.keys(&["n"]);
    t.wait_for("the form", 10, |s| {
        s.contains("New delegation") && s.contains("Delegate to")
    });
    t.type_text("bob@example.com");
    t.keys(&["Tab", "Tab"]);
    t.type_text("2099-01-01");
    t.keys(&["Tab"]);
    t.type_text("hr");
    t.keys(&["C-s"]);
    t.wait_for("the new delegation listed", 15, |s| {
        s.contains("bob@example.com") && s.contains("active") && s.contains("2099-01-01")
    });
    let list = d.cli_json(&["delegate", "list"]);
    assert_eq!(list[0]["to"], "bob@example.com", "{list:#}");
    assert_eq!(list[0]["namespace"], "hr", "{list:#}");
    assert_eq!(list[0]["from"], "ana@example.com", "{list:#}");

    t.keys(&["x"]);
    t.wait_for("the confirmation", 10, |s| s.contains("Confirm revoke"));
    t.keys(&["y"]);
    t.wait_for("the list without it", 15, |s| s.contains("No delegations"));
    let all = d.cli_json(&["delegate", "list", "--all"]);
    assert!(all[0]["revokedDate"].is_string(), "{all:#}");
    quit(&t);
}
