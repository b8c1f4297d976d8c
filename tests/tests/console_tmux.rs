//! The real console binary in tmux against a real daemon: what a person sees and types.

use tollgate_tests::tmux::Tmux;
use tollgate_tests::{Daemon, binaries, task_run};

fn console(d: &Daemon, w: u16, h: u16) -> Tmux {
    let bin = binaries().tollgate.display().to_string();
    Tmux::start(&format!("{bin} --server {}", d.server()), &[("NO_COLOR", "1")], w, h)
}

#[test]
fn select_two_paused_executions_and_resume_both_with_one_form() {
    let d = Daemon::start();
    let ids: Vec<String> = (0..2)
        .map(|_| d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string())
        .collect();
    let t = console(&d, 120, 40);
    t.wait_for("both paused executions listed", 30, |s| {
        ids.iter().all(|id| s.contains(&id[..8]))
    });
    t.keys(&["Space", "Space", "r"]);
    t.wait_for("the resume form", 10, |s| {
        s.contains("approved") && s.contains("reason")
    });
    // approved (BOOLEAN) first: toggle it; then the reason text; enter on the last field submits.
    t.keys(&["Space", "Tab"]);
    t.type_text("ship it");
    t.keys(&["Enter"]);
    let screen = t.wait_for("both resumed", 20, |s| s.matches("SUCCESS").count() >= 2);
    assert!(screen.contains("resumed"), "{screen}");
    for id in &ids {
        let e = d.wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "decide")["outputs"]["onResume"]["approved"], true);
        assert_eq!(task_run(&e, "decide")["outputs"]["onResume"]["reason"], "ship it");
    }
    t.keys(&["Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.keys(&["q"]);
}

#[test]
fn at_80x24_the_list_shows_id_flow_and_waiting_time() {
    let d = Daemon::start();
    let id = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();
    let t = console(&d, 80, 24);
    let s = t.wait_for("the paused execution", 30, |s| s.contains(&id[..8]));
    assert!(s.contains("approval"), "flow column: {s}");
    assert!(
        s.lines()
            .any(|l| l.contains(&id[..8]) && (l.contains("s ") || l.trim_end().ends_with('s'))),
        "waiting time column: {s}"
    );
    assert!(
        s.contains("space") && s.contains("resume"),
        "the footer shows the keys: {s}"
    );
}

#[test]
fn logs_view_follows_lines_appended_while_open() {
    let d = Daemon::start();
    let id = d.run_wait("test", "approval", &["requester=zoe"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = console(&d, 120, 40);
    t.wait_for("the execution", 30, |s| s.contains(&id[..8]));
    t.keys(&["l"]);
    t.wait_for("the existing log line", 15, |s| s.contains("request from zoe"));
    assert!(
        d.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=live"])
            .ok()
    );
    t.wait_for("the line written after resume", 15, |s| {
        s.contains("approved=true reason=live")
    });
}

#[test]
fn bulk_resume_twenty_with_a_select_and_a_boolean() {
    let d = Daemon::start();
    let ids: Vec<String> = (0..20)
        .map(|_| d.run_wait("console", "triage", &[])["id"].as_str().unwrap().to_string())
        .collect();
    let other = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();
    let t = console(&d, 120, 40);
    t.wait_for("the paused list", 30, |s| s.contains("triage"));
    t.keys(&["/"]);
    t.type_text("triage");
    t.keys(&["Enter"]);
    t.wait_for("the filter applied", 10, |s| !s.contains(&other[..8]));
    t.keys(&["a", "r"]);
    t.wait_for("one form for the twenty", 10, |s| {
        s.contains("team") && s.contains("urgent")
    });
    t.keys(&["Right", "Right", "Tab", "Space", "Enter"]);
    t.wait_for("twenty resumed", 30, |s| s.contains("20 resumed"));
    let first = d.wait_state(&ids[0], "SUCCESS");
    let team = task_run(&first, "route")["outputs"]["onResume"]["team"].clone();
    assert!(
        ["HR", "Finance", "IT"].contains(&team.as_str().unwrap_or("")),
        "{first:#}"
    );
    for id in &ids {
        let e = d.wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "route")["outputs"]["onResume"]["team"], team);
        assert_eq!(task_run(&e, "route")["outputs"]["onResume"]["urgent"], true);
    }
    assert_eq!(
        d.execution(&other)["state"],
        "PAUSED",
        "the filtered-out execution was not touched"
    );
}

#[test]
fn a_denied_human_task_shows_access_denied() {
    let mut d = Daemon::start_with(tollgate_tests::DaemonOptions {
        insecure: false,
        ..Default::default()
    });
    d.stop();
    assert!(d.admin(&["user", "add", "op@example.com"]).ok());
    assert!(
        d.admin(&[
            "role",
            "bind",
            "--user",
            "op@example.com",
            "--role",
            "operator",
            "--namespace",
            "test"
        ])
        .ok()
    );
    let token = d
        .admin(&["token", "create", "--user", "op@example.com"])
        .stdout
        .trim()
        .to_string();
    d.restart();
    d.token = Some(token.clone());
    let id = d.run_wait("test", "human", &[])["id"].as_str().unwrap().to_string();
    let bin = binaries().tollgate.display().to_string();
    let t = Tmux::start(
        &format!("{bin} --server {}", d.server()),
        &[("NO_COLOR", "1"), ("TOLLGATE_TOKEN", &token)],
        120,
        40,
    );
    t.wait_for("the HumanTask execution", 30, |s| s.contains(&id[..8]));
    t.keys(&["r"]);
    t.wait_for("the access-denied message", 15, |s| {
        s.contains("Access denied to resume this execution")
    });
    assert_eq!(d.execution(&id)["state"], "PAUSED");
}

#[test]
fn the_console_opens_on_the_users_inbox() {
    let mut d = Daemon::start_with(tollgate_tests::DaemonOptions {
        insecure: false,
        ..Default::default()
    });
    d.stop();
    let mut tokens = Vec::new();
    for (user, group) in [("op@example.com", None), ("sec@example.com", Some("Security Team"))] {
        let mut add = vec!["user", "add", user];
        if let Some(g) = group {
            add.extend(["--group", g]);
        }
        assert!(d.admin(&add).ok());
        let bind = [
            "role",
            "bind",
            "--user",
            user,
            "--role",
            "operator",
            "--namespace",
            "test",
        ];
        assert!(d.admin(&bind).ok());
        let token = d.admin(&["token", "create", "--user", user]).stdout.trim().to_string();
        tokens.push(token);
    }
    d.restart();
    d.token = Some(tokens[0].clone());
    let human = d.run_wait("test", "human", &[])["id"].as_str().unwrap().to_string();
    let plain = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();
    let bin = binaries().tollgate.display().to_string();
    let open = |token: &str| {
        Tmux::start(
            &format!("{bin} --server {}", d.server()),
            &[("NO_COLOR", "1"), ("TOLLGATE_TOKEN", token)],
            120,
            40,
        )
    };

    // The Security Team member decides both: the HumanTask (by group) and the plain pause.
    let t = open(&tokens[1]);
    let s = t.wait_for("sec's inbox", 30, |s| s.contains("INBOX 2") && s.contains(&human[..8]));
    assert!(s.contains(&plain[..8]) && s.contains("ESCALATED"), "{s}");
    drop(t);

    // The operator outside the assignment: only the plain pause is theirs; tab shows both.
    let t = open(&tokens[0]);
    let s = t.wait_for("op's inbox", 30, |s| s.contains("INBOX 1") && s.contains(&plain[..8]));
    assert!(!s.contains(&human[..8]), "the HumanTask is not op's to decide:\n{s}");
    t.keys(&["Tab"]);
    t.wait_for("every paused execution", 10, |s| {
        s.contains(&human[..8]) && s.contains(&plain[..8])
    });
}

/// The README's first command: `tollgate demo` opens the console on the demo user's inbox, with
/// the executions it started waiting there, and `q` leaves.
#[test]
fn demo_opens_the_console_on_a_full_inbox() {
    let dir = tempfile::tempdir().expect("temp");
    let bin = binaries().tollgate.display().to_string();
    let flows = tollgate_tests::workspace_root().join("flows");
    let t = Tmux::start(
        &format!(
            "{bin} demo --data-dir {} --flows {}",
            dir.path().join("data").display(),
            flows.display()
        ),
        &[
            ("NO_COLOR", "1"),
            ("TOLLGATE_KEYRING", "file"),
            ("XDG_CONFIG_HOME", &dir.path().join("config").display().to_string()),
        ],
        120,
        40,
    );
    // The inbox is counted by its own call after the first list: wait for its number (the
    // tab shows `·` until then), with the demo's executions listed.
    let inbox_count = |s: &str| {
        s.split("INBOX ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
    };
    let s = t.wait_for("the demo's inbox, counted", 60, |s| {
        s.contains("pause_demo") && inbox_count(s).is_some()
    });
    assert!(
        s.contains("demo admin @ 127.0.0.1"),
        "the header names the demo user and server:\n{s}"
    );
    assert!(inbox_count(&s).is_some_and(|n| n > 0), "decisions wait in the inbox:\n{s}");
    t.keys(&["q"]);
}

/// A value only the daemon can check (a regex): the one BulkResume comes back refused with a typed
/// error for the field, the form stays with the error under that field, and nothing is resumed.
#[test]
fn a_value_the_daemon_refuses_is_shown_under_its_field() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ticketed.yaml");
    std::fs::write(
        &file,
        "id: ticketed\nnamespace: test\ntasks:\n  - id: decide\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: ticket\n        type: STRING\n        validator: \"^[A-Z]+-[0-9]+$\"\n",
    )
    .unwrap();
    let applied = d.cli(&["flow", "apply", file.to_str().unwrap()]);
    assert!(applied.ok(), "{applied}");
    let id = d.run_wait("test", "ticketed", &[])["id"].as_str().unwrap().to_string();
    let t = console(&d, 120, 40);
    t.wait_for("the paused execution", 30, |s| s.contains(&id[..8]));
    t.keys(&["r"]);
    t.wait_for("the resume form", 10, |s| s.contains("ticket"));
    t.type_text("nope");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the daemon's error", 15, |s| s.contains("but received"));
    let lines: Vec<&str> = screen.lines().collect();
    let field = lines
        .iter()
        .position(|l| l.contains("ticket") && !l.contains("Invalid"));
    let error = lines.iter().position(|l| l.contains("Invalid input for `ticket`"));
    assert!(
        matches!((field, error), (Some(f), Some(e)) if e > f),
        "the error is under the field:\n{screen}"
    );
    assert!(!screen.contains("resumed"), "the form stays:\n{screen}");
    assert_eq!(d.execution(&id)["state"], "PAUSED");
    t.keys(&["Escape"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    t.keys(&["q"]);
}

/// The shipped deploy example: the console's log view is open while the gate is decided, and
/// the deploy script's lines appear in it as the script prints them.
#[test]
fn deploy_example_output_streams_into_the_open_log_view() {
    let mut d = Daemon::start_with(tollgate_tests::DaemonOptions {
        flows: Some(tollgate_tests::workspace_root().join("flows")),
        insecure: false,
        ..Default::default()
    });
    d.stop();
    assert!(
        d.admin(&["user", "add", "ops@example.com", "--group", "DevOps Team"])
            .ok()
    );
    assert!(
        d.admin(&[
            "role",
            "bind",
            "--user",
            "ops@example.com",
            "--role",
            "operator",
            "--namespace",
            "infrastructure"
        ])
        .ok()
    );
    let token = d
        .admin(&["token", "create", "--user", "ops@example.com"])
        .stdout
        .trim()
        .to_string();
    d.restart();
    d.token = Some(token.clone());
    let id = d.run_wait("infrastructure", "deploy_with_approval", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bin = binaries().tollgate.display().to_string();
    let t = Tmux::start(
        &format!("{bin} --server {}", d.server()),
        &[("NO_COLOR", "1"), ("TOLLGATE_TOKEN", &token)],
        120,
        40,
    );
    t.wait_for("the paused deploy", 30, |s| s.contains(&id[..8]));
    t.keys(&["l"]);
    t.wait_for("the log view", 15, |s| s.contains("approve"));
    assert!(d.cli(&["resume", &id, "--input", "reason=console test"]).ok());
    t.wait_for("the script's first line", 30, |s| {
        s.contains("deploying billing-api 2.4.1")
    });
    t.wait_for("the script's last line", 30, |s| s.contains("health checks passed"));
    t.wait_for("the task after it", 30, |s| s.contains("is live on 3 instances"));
}
