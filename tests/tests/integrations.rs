//! The seed's vacation flows end to end against real loopback servers: Slack webhook, an HR API
//! receiving multipart form data, and an SMTP server receiving the rejection mail.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tollgate_tests::recorders::{HttpRecorder, SmtpRecorder};
use tollgate_tests::{Daemon, DaemonOptions, binaries, log_messages, task_run, wait_for};

fn daemon(smtp_port: u16) -> Daemon {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_integrations");
    Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        env: vec![
            ("TOLLGATE_SMTP_HOST".into(), "127.0.0.1".into()),
            ("TOLLGATE_SMTP_PORT".into(), smtp_port.to_string()),
        ],
        ..Default::default()
    })
}

fn secret_set(d: &Daemon, ns: &str, name: &str, value: &str) {
    let mut child = Command::new(&binaries().tollgate)
        .args(["--server", &d.server(), "secret", "set", ns, name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

fn multipart_field(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let start = body.find(&marker)? + marker.len();
    let rest = &body[start..];
    let value_start = rest.find("\r\n\r\n")? + 4;
    let value = &rest[value_start..];
    Some(value[..value.find("\r\n--")?].to_string())
}

#[test]
fn vacation_approval_runs_unchanged_with_slack_and_the_hr_api() {
    let slack = HttpRecorder::start();
    let hr = HttpRecorder::start();
    let d = daemon(1);
    secret_set(
        &d,
        "hr.operations",
        "SLACK_HR_WEBHOOK",
        &format!("{}/services/T000/B000/XXXX", slack.url),
    );
    assert!(d.cli(&["kv", "set", "hr.operations", "HR_API_ENDPOINT", &hr.url]).ok());

    for (decision, status) in [("true", "APPROVED"), ("false", "REJECTED")] {
        let before_slack = slack.received().len();
        let before_hr = hr.received().len();
        let e = d.run_wait(
            "hr.operations",
            "vacation_approval",
            &[
                "employee=alice@example.com",
                "start_date=2026-12-21",
                "end_date=2026-12-31",
            ],
        );
        let id = e["id"].as_str().unwrap().to_string();
        assert_eq!(e["state"], "PAUSED", "{e:#}\n{}", d.log());
        let posted = wait_for("the Slack message", || slack.received().get(before_slack).cloned());
        let payload: serde_json::Value = serde_json::from_str(&posted.body).expect("Slack payload is JSON");
        assert_eq!(payload["channel"], "#vacation-approvals");
        let text = payload["text"].as_str().unwrap();
        assert!(text.contains("Review request from alice@example.com"), "{text}");
        assert!(text.contains("2026-12-21 → 2026-12-31"), "{text}");
        assert!(text.contains(&id), "appLink names the execution: {text}");

        let out = d.cli(&[
            "resume",
            &id,
            "--input",
            &format!("approved={decision}"),
            "--input",
            "reason=Within policy limits",
        ]);
        assert!(out.ok(), "{out}");
        let done = d.wait_state(&id, "SUCCESS");
        let req = wait_for("the HR API call", || hr.received().get(before_hr).cloned());
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/approvals");
        let ct = req
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(ct.starts_with("multipart/form-data"), "{ct}");
        assert_eq!(
            multipart_field(&req.body, "employee").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            multipart_field(&req.body, "approvalStatus").as_deref(),
            Some(status),
            "{}",
            req.body
        );
        assert_eq!(
            multipart_field(&req.body, "notes").as_deref(),
            Some("Within policy limits")
        );
        assert_eq!(multipart_field(&req.body, "resumedStatus").as_deref(), Some("SUCCESS"));
        assert!(multipart_field(&req.body, "resumedBy").is_some_and(|s| !s.is_empty()));
        assert!(multipart_field(&req.body, "resumedOn").is_some_and(|s| s.starts_with("20")));
        assert_eq!(task_run(&done, "update_hr_system")["outputs"]["code"], 200);
        let logs = log_messages(&d, &id);
        assert!(
            logs.iter()
                .any(|l| l.starts_with("Decision: {") && l.contains(&format!("\"approved\":{decision}"))),
            "{logs:?}"
        );
        assert!(
            !logs.iter().any(|l| l.contains("/services/T000/B000/XXXX")),
            "the webhook secret never reaches a log: {logs:?}"
        );
    }
}

#[test]
fn a_rejection_mails_the_employee_through_smtp() {
    let smtp = SmtpRecorder::start();
    let d = daemon(smtp.port);
    let id = d.run_wait(
        "hr.operations",
        "vacation_rejection",
        &["employee_email=carol@example.com"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        d.cli(&[
            "resume",
            &id,
            "--input",
            "approved=false",
            "--input",
            "reason=Team at capacity"
        ])
        .ok()
    );
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "notify_employee")["state"], "SUCCESS");
    let mail = wait_for("the mail", || smtp.received().first().cloned());
    assert!(mail.to.iter().any(|t| t.contains("carol@example.com")), "{mail:?}");
    assert!(mail.data.contains("Subject: Request Denied"), "{}", mail.data);
    assert!(mail.data.contains("Reason: Team at capacity"), "{}", mail.data);

    // Approved: no mail.
    let ok = d.run_wait(
        "hr.operations",
        "vacation_rejection",
        &["employee_email=dan@example.com"],
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !d.cli(&["resume", &ok, "--input", "approved=true", "--input", "fine"])
            .ok()
    );
    assert!(
        d.cli(&["resume", &ok, "--input", "approved=true", "--input", "reason=fine"])
            .ok()
    );
    d.wait_state(&ok, "SUCCESS");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(smtp.received().len(), 1);
}

#[test]
fn webhooks_retry_on_429_honouring_retry_after() {
    let slack = HttpRecorder::start();
    slack
        .script
        .lock()
        .unwrap()
        .push((429, vec![("retry-after".into(), "1".into())]));
    let hr = HttpRecorder::start();
    let d = daemon(1);
    secret_set(&d, "hr.operations", "SLACK_HR_WEBHOOK", &slack.url);
    assert!(d.cli(&["kv", "set", "hr.operations", "HR_API_ENDPOINT", &hr.url]).ok());
    let e = d.run_wait(
        "hr.operations",
        "vacation_approval",
        &["employee=eve", "start_date=2026-12-21", "end_date=2026-12-22"],
    );
    assert_eq!(e["state"], "PAUSED", "{e:#}");
    let got = slack.received();
    assert_eq!(got.len(), 2, "one 429, then delivered");
    let logs = log_messages(&d, e["id"].as_str().unwrap());
    assert!(
        logs.iter()
            .any(|l| l.contains("HTTP 429") && l.contains("retrying in 1000 ms")),
        "{logs:?}"
    );
}
