//! SLAs and metrics against the real daemon: a gate's `sla` breach is recorded durably (task run,
//! log, audit, metrics) and survives `kill -9`; `/metrics` serves Prometheus text behind the
//! `metrics` role (or on `--metrics-listen` without a token); `tollgate stats` shows the figures.

use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, curl, free_port, log_messages, task_run};

/// The value of one sample line (`name{labels} value`) in a Prometheus text body.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn metrics(d: &Daemon, token: Option<&str>) -> (u16, String) {
    let url = format!("{}/metrics", d.server());
    match token {
        Some(t) => curl(&["-H", &format!("Authorization: Bearer {t}"), &url]),
        None => curl(&[&url]),
    }
}

/// Polls `executions get` until the gate's SLA shows as breached.
fn wait_breached(d: &Daemon, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let e = d.execution(id);
        if task_run(&e, "sign_off")["sla"]["breached"] == true {
            return e;
        }
        assert!(Instant::now() < deadline, "no SLA breach recorded:\n{e:#}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_sla_breach_is_recorded_durably_and_counted() {
    let mut d = Daemon::start();
    // Decided before its SLA runs out: never a breach, even after its due time has passed.
    let early = d.run_wait("observe", "sla_relaxed", &[]);
    let early_id = early["id"].as_str().expect("id").to_string();
    let due = task_run(&early, "sign_off")["sla"]["due"]
        .as_str()
        .unwrap_or_else(|| panic!("{early:#}"))
        .to_string();
    assert!(d.cli(&["resume", &early_id]).ok());
    d.wait_state(&early_id, "SUCCESS");
    // Start the next gate only once the first one's SLA has fallen due (the date is printed to the
    // second, hence the extra second): timers fire in due order, so by the time the next breach
    // shows, a left-over timer of the first gate would have fired.
    let due = chrono::DateTime::parse_from_rfc3339(&due).expect("RFC 3339 due date") + chrono::Duration::seconds(1);
    while chrono::Utc::now() < due {
        std::thread::sleep(Duration::from_millis(50));
    }

    let e = d.run_wait("observe", "sla_gate", &[]);
    assert_eq!(e["state"], "PAUSED");
    let id = e["id"].as_str().expect("id").to_string();
    let e = wait_breached(&d, &id);
    assert_eq!(e["state"], "PAUSED", "a breach does not decide: the gate keeps waiting");
    // The relaxed gate, decided in time, shows no breach.
    let early = d.execution(&early_id);
    assert_eq!(task_run(&early, "sign_off")["sla"]["breached"], false, "{early:#}");

    // Visible through REST (Kestra's execution shape, plus `sla` on the task run)…
    let (code, body) = curl(&[&format!("http://{}/api/v1/main/executions/{id}", d.addr)]);
    assert_eq!(code, 200, "{body}");
    let rest: Value = serde_json::from_str(&body).expect("JSON");
    let gate = rest["taskRunList"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["taskId"] == "sign_off"))
        .unwrap_or_else(|| panic!("{rest:#}"));
    assert_eq!(gate["sla"]["breached"], true, "{rest:#}");
    assert!(gate["sla"]["breachedDate"].is_string(), "{rest:#}");
    // …in the text of `executions get`, the log and the audit trail.
    let text = d.cli(&["executions", "get", &id]);
    assert!(text.stdout.contains("SLA breached: `sign_off`"), "{text}");
    assert!(
        log_messages(&d, &id)
            .iter()
            .any(|m| m.contains("SLA breached: no decision within PT1S")),
        "{:?}",
        log_messages(&d, &id)
    );
    let audit = d.cli_json(&["audit", "--execution", &id]);
    let breach = audit
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["action"] == "sla.breach")
        .unwrap_or_else(|| panic!("no sla.breach record: {audit:#}"));
    assert_eq!(breach["user"], "system");
    assert_eq!(breach["values"]["sla"], "PT1S");

    // Durable: after kill -9 the breach and the counters are still there.
    d.kill9();
    d.restart();
    let e = d.execution(&id);
    assert_eq!(task_run(&e, "sign_off")["sla"]["breached"], true, "{e:#}");
    let (code, body) = metrics(&d, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        sample(&body, "tollgate_sla_breaches_total{flow=\"observe/sla_gate\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "tollgate_sla_breaches_total{flow=\"observe/sla_relaxed\"}"),
        None
    );
    assert_eq!(
        sample(&body, "tollgate_executions{state=\"PAUSED\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(sample(&body, "tollgate_waiting_decisions"), Some(1.0));
    assert_eq!(
        sample(
            &body,
            "tollgate_decision_seconds_by_flow_count{flow=\"observe/sla_relaxed\"}"
        ),
        Some(1.0),
        "{body}"
    );

    // The decision is counted per flow, namespace and approver, and survives another kill -9.
    assert!(d.cli(&["resume", &id]).ok());
    d.wait_state(&id, "SUCCESS");
    d.kill9();
    d.restart();
    let (_, body) = metrics(&d, None);
    assert_eq!(
        sample(
            &body,
            "tollgate_decision_seconds_by_flow_count{flow=\"observe/sla_gate\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "tollgate_decision_seconds_by_namespace_count{namespace=\"observe\"}"
        ),
        Some(2.0)
    );
    let approver = body
        .lines()
        .find(|l| l.starts_with("tollgate_decision_seconds_by_approver_count{"))
        .unwrap_or_else(|| panic!("no approver series: {body}"));
    assert!(approver.ends_with(" 2"), "{approver}");
    // Both waited less than a minute, the smallest bucket bound.
    assert_eq!(
        sample(
            &body,
            "tollgate_decision_seconds_by_namespace_bucket{namespace=\"observe\",le=\"60\"}"
        ),
        Some(2.0)
    );
    assert_eq!(sample(&body, "tollgate_resumes_total"), Some(2.0));
    assert_eq!(sample(&body, "tollgate_executions{state=\"SUCCESS\"}"), Some(2.0));
    assert_eq!(sample(&body, "tollgate_executions{state=\"PAUSED\"}"), Some(0.0));
    assert!(sample(&body, "tollgate_store_bytes").is_some_and(|b| b > 0.0));
    assert!(
        sample(&body, "tollgate_commit_seconds_count").is_some_and(|n| n > 0.0),
        "{body}"
    );
    assert!(sample(&body, "tollgate_requests_total{protocol=\"http\"}").is_some_and(|n| n >= 1.0));
    assert!(body.contains("# TYPE tollgate_decision_seconds_by_flow histogram"));

    // `tollgate stats`: the same figures for a terminal, and for scripts.
    let s = d.cli_json(&["stats", "--window", "30m", "--buckets", "10"]);
    assert_eq!(s["waitingNow"], 0);
    assert_eq!(s["waiting"]["values"].as_array().map(Vec::len), Some(10));
    assert!(
        s["waiting"]["values"]
            .as_array()
            .expect("values")
            .iter()
            .any(|v| v.as_i64() >= Some(1)),
        "the gates that waited show in the chart: {s:#}"
    );
    assert_eq!(s["slaBreaches"]["observe/sla_gate"], 1);
    let flow = s["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["by"] == "flow" && d["name"] == "observe/sla_gate")
        .unwrap_or_else(|| panic!("{s:#}"));
    assert_eq!(flow["count"], 1);
    assert!(
        flow["maxSeconds"].as_f64() >= Some(1.0),
        "it waited past its one-second SLA: {flow}"
    );
    let text = d.cli(&["stats"]);
    assert!(text.ok(), "{text}");
    assert!(text.stdout.is_ascii(), "{}", text.stdout);
    assert!(text.stdout.contains("Waiting decisions, last 1h"), "{}", text.stdout);
    assert!(text.stdout.contains("observe/sla_gate"), "{}", text.stdout);
    assert!(
        text.stdout.contains("SLA breaches: observe/sla_gate 1"),
        "{}",
        text.stdout
    );
}

#[test]
fn a_bad_sla_is_refused_with_its_position() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "id: bad_sla\nnamespace: observe\ntasks:\n  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    sla: four hours\n",
    )
    .expect("write flow");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("sla") && out.stderr.contains("6:"), "{out}");
    std::fs::write(
        &file,
        "id: bad_sla\nnamespace: observe\ntasks:\n  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    sla: \"{{ inputs.x }}\"\n",
    )
    .expect("write flow");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(!out.ok() && out.stderr.contains("literal ISO-8601"), "{out}");
    let listed = d.cli_json(&["flow", "list"]);
    assert!(
        !listed.to_string().contains("bad_sla"),
        "a refused flow changes nothing: {listed}"
    );
}

#[test]
fn metrics_need_the_metrics_role_or_the_separate_listener() {
    let port = free_port();
    let mut d = Daemon::start_with(DaemonOptions {
        insecure: false,
        extra_args: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    });
    d.stop();
    let admin = |args: &[&str]| {
        let out = d.admin(args);
        assert!(out.ok(), "tollgated admin {args:?}:\n{out}");
        out.stdout.trim().to_string()
    };
    admin(&["user", "add", "scraper@example.com"]);
    // A metrics binding narrower than every namespace would grant nothing: refused, saying why.
    let narrow = d.admin(&[
        "role",
        "bind",
        "--user",
        "scraper@example.com",
        "--role",
        "metrics",
        "--namespace",
        "test",
    ]);
    assert!(!narrow.ok() && narrow.stderr.contains("bind it on `*`"), "{narrow}");
    admin(&[
        "role",
        "bind",
        "--user",
        "scraper@example.com",
        "--role",
        "metrics",
        "--namespace",
        "*",
    ]);
    let scraper = admin(&["token", "create", "--user", "scraper@example.com"]);
    admin(&["user", "add", "viewer@example.com"]);
    admin(&[
        "role",
        "bind",
        "--user",
        "viewer@example.com",
        "--role",
        "viewer",
        "--namespace",
        "*",
    ]);
    let viewer = admin(&["token", "create", "--user", "viewer@example.com"]);
    admin(&["user", "add", "boss@example.com"]);
    admin(&[
        "role",
        "bind",
        "--user",
        "boss@example.com",
        "--role",
        "admin",
        "--namespace",
        "*",
    ]);
    let boss = admin(&["token", "create", "--user", "boss@example.com"]);
    let mut keys = vec![];
    for who in ["key1@example.com", "key2@example.com"] {
        admin(&["user", "add", who, "--group", "Security Team"]);
        admin(&[
            "role",
            "bind",
            "--user",
            who,
            "--role",
            "operator",
            "--namespace",
            "test",
        ]);
        keys.push(admin(&["token", "create", "--user", who]));
    }
    d.restart();

    let (code, _) = metrics(&d, None);
    assert_eq!(code, 401);
    let (code, body) = metrics(&d, Some(&viewer));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("metrics or admin role"), "{body}");
    let (code, body) = metrics(&d, Some(&scraper));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("tollgate_executions{state=\"PAUSED\"}"), "{body}");
    let (code, _) = metrics(&d, Some(&boss));
    assert_eq!(code, 200);

    // The separate listener needs no token and serves nothing else.
    let (code, body) = curl(&[&format!("http://127.0.0.1:{port}/metrics")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("# TYPE tollgate_commit_seconds histogram"));
    let (code, _) = curl(&[&format!("http://127.0.0.1:{port}/api/v1/main/executions/x")]);
    assert_eq!(code, 404);

    // The metrics role reads figures and nothing else; `stats` follows the same rule.
    let as_user = |token: &str, args: &[&str]| {
        let mut d2 = std::process::Command::new(&tollgate_tests::binaries().tollgate);
        d2.arg("--server")
            .arg(d.server())
            .args(args)
            .env("TOLLGATE_TOKEN", token)
            .env("XDG_CONFIG_HOME", d.data_dir.parent().expect("parent").join("config"));
        tollgate_tests::CliOutput::from(d2.output().expect("run tollgate"))
    };
    let out = as_user(&scraper, &["stats", "-o", "json"]);
    assert!(out.ok(), "{out}");
    let run = as_user(&boss, &["run", "observe", "sla_relaxed", "-o", "json"]);
    assert!(run.ok(), "{run}");
    let id = serde_json::from_str::<Value>(&run.stdout).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = as_user(&scraper, &["executions", "get", &id]);
    assert!(!out.ok(), "the metrics role cannot read executions: {out}");
    let out = as_user(&viewer, &["stats"]);
    assert!(!out.ok() && out.stderr.contains("metrics or admin role"), "{out}");

    // A quorum: each approval counts for its approver, the decision once for the flow.
    let run = as_user(&boss, &["run", "test", "quorum", "--wait", "-o", "json"]);
    assert!(run.ok(), "{run}");
    let qid = serde_json::from_str::<Value>(&run.stdout).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    for key in &keys {
        let out = as_user(key, &["resume", &qid, "--input", "ok=true"]);
        assert!(out.ok(), "{out}");
    }
    let (_, body) = metrics(&d, Some(&scraper));
    assert_eq!(
        sample(&body, "tollgate_decision_seconds_by_flow_count{flow=\"test/quorum\"}"),
        Some(1.0),
        "{body}"
    );
    for who in ["key1@example.com", "key2@example.com"] {
        let series = format!("tollgate_decision_seconds_by_approver_count{{approver=\"{who}\"}}");
        assert_eq!(sample(&body, &series), Some(1.0), "{body}");
    }

    // The audit export holds every namespace's records: admins of every namespace only.
    let out = as_user(&scraper, &["audit", "export"]);
    assert!(!out.ok() && out.stderr.contains("admin role"), "{out}");
    let out = as_user(&boss, &["audit", "export"]);
    assert!(out.ok() && out.stdout.lines().count() > 0, "{out}");

    // Refusals are audited.
    let audit = as_user(&boss, &["audit", "--user", "viewer@example.com", "-o", "json"]);
    assert!(audit.ok(), "{audit}");
    let records: Value = serde_json::from_str(&audit.stdout).expect("json");
    let actions: Vec<&str> = records
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"metrics.read") && actions.contains(&"stats.read"),
        "{actions:?}"
    );
}

#[test]
fn a_breach_that_fell_due_while_the_daemon_was_down_is_recorded_on_start() {
    let mut d = Daemon::start();
    let e = d.run_wait("observe", "sla_relaxed", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    let due = task_run(&e, "sign_off")["sla"]["due"]
        .as_str()
        .expect("due")
        .to_string();
    d.kill9();
    // Down past the due time (printed to the second, hence the extra second).
    let due = chrono::DateTime::parse_from_rfc3339(&due).expect("RFC 3339 due date") + chrono::Duration::seconds(1);
    while chrono::Utc::now() < due {
        std::thread::sleep(Duration::from_millis(50));
    }
    d.restart();
    let e = wait_breached(&d, &id);
    assert_eq!(e["state"], "PAUSED");
    let (_, body) = metrics(&d, None);
    assert_eq!(
        sample(&body, "tollgate_sla_breaches_total{flow=\"observe/sla_relaxed\"}"),
        Some(1.0),
        "{body}"
    );
}
