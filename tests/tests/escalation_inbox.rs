//! Escalation widens who may decide, and the inbox shows each user exactly what they may decide.

use std::time::Duration;

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, log_messages};

#[test]
fn escalation_adds_a_group_whose_member_can_resume_and_inboxes_follow() {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_nudge");
    let mut d = Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        insecure: false,
        env: vec![("TOLLGATE_MIN_REMINDER_INTERVAL".into(), "PT1S".into())],
        ..Default::default()
    });
    d.stop();
    let mut tokens = std::collections::HashMap::new();
    for (user, groups) in [
        ("lead@example.com", vec![]),
        ("mgr@example.com", vec!["Managers"]),
        ("outsider@example.com", vec![]),
    ] {
        let mut args = vec!["user", "add", user];
        for g in &groups {
            args.extend(["--group", g]);
        }
        assert!(d.admin(&args).ok());
        assert!(
            d.admin(&[
                "role",
                "bind",
                "--user",
                user,
                "--role",
                "operator",
                "--namespace",
                "test"
            ])
            .ok()
        );
        tokens.insert(
            user,
            d.admin(&["token", "create", "--user", user]).stdout.trim().to_string(),
        );
    }
    assert!(d.admin(&["user", "add", "root@example.com"]).ok());
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
    tokens.insert(
        "root@example.com",
        d.admin(&["token", "create", "--user", "root@example.com"])
            .stdout
            .trim()
            .to_string(),
    );
    d.restart();
    let as_user = |d: &mut Daemon, u: &str| d.token = Some(tokens[u].clone());

    as_user(&mut d, "lead@example.com");
    let id = d.run_wait("test", "escalating", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let inbox = |d: &mut Daemon, u: &str| -> Vec<Value> {
        d.token = Some(tokens[u].clone());
        d.cli_json(&["inbox"]).as_array().cloned().unwrap_or_default()
    };
    assert_eq!(inbox(&mut d, "lead@example.com").len(), 1);
    assert!(inbox(&mut d, "mgr@example.com").is_empty(), "not yet escalated");
    as_user(&mut d, "mgr@example.com");
    let early = d.cli(&["resume", &id, "--input", "ok=true"]);
    assert!(!early.ok() && early.stdout.contains("Access denied"), "{early}");

    std::thread::sleep(Duration::from_millis(3_000));
    let mine = inbox(&mut d, "mgr@example.com");
    assert_eq!(mine.len(), 1, "escalated to Managers: {mine:?}");
    assert_eq!(mine[0]["escalatedToMe"], true);
    assert!(inbox(&mut d, "outsider@example.com").is_empty());
    d.token = Some(tokens["outsider@example.com"].clone());
    let count = d.cli(&["inbox", "--count"]);
    assert_eq!(count.stdout.trim(), "0");
    let outsider = d.cli(&["resume", &id, "--input", "ok=true"]);
    assert!(
        !outsider.ok() && outsider.stdout.contains("Access denied"),
        "{outsider}"
    );

    as_user(&mut d, "mgr@example.com");
    assert!(d.cli(&["resume", &id, "--input", "ok=true"]).ok());
    d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter().any(|l| l.starts_with("escalated to Managers after PT")),
        "{logs:?}"
    );
    as_user(&mut d, "root@example.com");
    let audit = d.cli_json(&["audit", "--execution", &id]);
    assert!(
        audit.as_array().unwrap().iter().any(|r| r["action"] == "escalate"),
        "{audit:#}"
    );
}
