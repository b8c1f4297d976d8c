//! The console's resume preview (`^p`) with real keys in tmux against a real daemon.

use tollgate_tests::tmux::Tmux;
use tollgate_tests::{Daemon, binaries, log_messages};

#[test]
fn ctrl_p_in_the_resume_form_previews_the_branch_and_next_tasks_without_resuming() {
    let d = Daemon::start();
    let flow = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_decide/hr/route.yaml");
    let applied = d.cli(&["flow", "apply", flow.to_str().unwrap()]);
    assert!(applied.ok(), "{applied}");
    let id = d.run_wait("hr", "route", &[])["id"].as_str().unwrap().to_string();
    let bin = binaries().tollgate.display().to_string();
    let t = Tmux::start(&format!("{bin} --server {}", d.server()), &[("NO_COLOR", "1")], 120, 40);
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
    t.keys(&["Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.keys(&["q"]);
}

/// A delegate's console opens on an INBOX holding the delegator's decision, and resuming it from
/// the console's form is recorded as the delegate's decision for the delegator.
#[test]
fn a_delegates_console_inbox_offers_the_delegators_decision() {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_decide");
    let mut d = Daemon::start_with(tollgate_tests::DaemonOptions {
        flows: Some(flows),
        insecure: false,
        ..Default::default()
    });
    d.stop();
    let mut tokens = std::collections::HashMap::new();
    for (user, role) in [
        ("ana@example.com", Some("operator")),
        ("sam@example.com", Some("operator")),
        ("bob@example.com", None),
        ("root@example.com", None),
    ] {
        assert!(d.admin(&["user", "add", user]).ok());
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
    d.token = Some(tokens["ana@example.com"].clone());
    assert!(
        d.cli(&["delegate", "--to", "bob@example.com", "--until", "2099-01-01"])
            .ok()
    );
    d.token = Some(tokens["sam@example.com"].clone());
    let id = d.run_wait("hr", "gate", &[])["id"].as_str().unwrap().to_string();

    let bin = binaries().tollgate.display().to_string();
    let t = Tmux::start(
        &format!("{bin} --server {}", d.server()),
        &[("NO_COLOR", "1"), ("TOLLGATE_TOKEN", &tokens["bob@example.com"])],
        120,
        40,
    );
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
    t.keys(&["Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.keys(&["q"]);
}
