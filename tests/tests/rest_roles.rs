//! Every REST route (Kestra's and the admin API), called with real curl by every kind of caller,
//! plus the REST error contract: 401/403/404/409/415/422 as JSON `{"message": …}`, refused
//! changes in the audit log, labels on start, and Kestra's execution shape.

mod auth_common;

use std::time::{Duration, Instant};

use auth_common::{ADMIN, NS_ADMIN, OPERATOR, OUTSIDER, Team, VIEWER, email_of, team_with};
use serde_json::Value;
use tollgate_tests::{DaemonOptions, curl};

struct Rest {
    base: String,
    admin: String,
}

impl Rest {
    fn new(t: &Team) -> Rest {
        Rest {
            base: format!("http://127.0.0.1:{}", t.d.addr.port()),
            admin: t.token(ADMIN),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// curl with `token` (None = no header); returns status and parsed JSON body (Null if none).
    fn call(&self, token: Option<&str>, args: &[&str]) -> (u16, Value) {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut full: Vec<&str> = args.to_vec();
        if let Some(a) = &auth {
            full.extend(["-H", a.as_str()]);
        }
        let (code, body) = curl(&full);
        let json = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
        };
        (code, json)
    }

    fn execution(&self, id: &str) -> Value {
        let (code, v) = self.call(
            Some(&self.admin),
            &[&self.url(&format!("/api/v1/demo/executions/{id}"))],
        );
        assert_eq!(code, 200, "{v}");
        v
    }

    /// A new `test.approval` execution started over REST by the admin, once paused.
    fn paused(&self) -> String {
        let (code, v) = self.call(
            Some(&self.admin),
            &["-X", "POST", &self.url("/api/v1/demo/executions/test/approval")],
        );
        assert_eq!(code, 200, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.execution(&id)["state"]["current"] != "PAUSED" {
            assert!(Instant::now() < deadline, "{id} never paused");
            std::thread::sleep(Duration::from_millis(25));
        }
        id
    }

    /// Calls `route` as the holder of `token`; returns the status a single call got (for bulk
    /// routes: the one id's per-id status).
    fn status(&self, route: &str, token: Option<&str>) -> u16 {
        let approve = ["-F", "approved=true", "-F", "reason=ok"];
        let ex = |id: &str, tail: &str| self.url(&format!("/api/v1/demo/executions/{id}{tail}"));
        let (code, body) = match route {
            "POST resume" => {
                let id = self.paused();
                let mut args = vec!["-X", "POST"];
                args.extend(approve);
                let url = ex(&id, "/resume");
                args.push(&url);
                let r = self.call(token, &args);
                if r.0 != 204 {
                    assert_eq!(self.execution(&id)["state"]["current"], "PAUSED");
                }
                r
            }
            "POST resume/validate" => {
                let id = self.paused();
                let url = ex(&id, "/resume/validate");
                let mut args = vec!["-X", "POST"];
                args.extend(approve);
                args.push(&url);
                self.call(token, &args)
            }
            "POST resume/by-ids" | "DELETE kill/by-ids" => {
                let id = self.paused();
                let (method, path) = if route.starts_with("POST") {
                    ("POST", "/api/v1/demo/executions/resume/by-ids")
                } else {
                    ("DELETE", "/api/v1/demo/executions/kill/by-ids")
                };
                let ids = format!("[\"{id}\"]");
                let url = self.url(path);
                let (code, v) = self.call(
                    token,
                    &["-X", method, "-H", "content-type: application/json", "-d", &ids, &url],
                );
                if code != 200 {
                    return code;
                }
                assert_eq!(v["results"][0]["id"], id.as_str(), "{v}");
                let status = v["results"][0]["status"].as_u64().expect("per-id status") as u16;
                assert_eq!(v["count"], u64::from(status == 200), "{v}");
                if status == 403 {
                    assert_eq!(v["results"][0]["code"], "PERMISSION_DENIED", "{v}");
                }
                // Bulk resume without inputs fails validation (the form has required inputs):
                // that is still "allowed" as far as access goes.
                return if status == 422 { 200 } else { status };
            }
            "DELETE kill" => {
                let id = self.paused();
                self.call(token, &["-X", "DELETE", &ex(&id, "/kill")])
            }
            "GET execution" => {
                let id = self.paused();
                self.call(token, &[&ex(&id, "")])
            }
            "POST start" => self.call(
                token,
                &["-X", "POST", &self.url("/api/v1/demo/executions/test/approval")],
            ),
            "GET admin/users" => self.call(token, &[&self.url("/admin/v1/users")]),
            "GET admin/tokens" => self.call(token, &[&self.url("/admin/v1/tokens")]),
            other => panic!("no probe for {other}"),
        };
        if code >= 400 {
            assert!(body["message"].is_string(), "{route}: error without a message: {body}");
        }
        code
    }
}

#[test]
fn every_route_for_every_role() {
    let t = team_with(DaemonOptions {
        tenant: "demo".into(),
        ..Default::default()
    });
    let r = Rest::new(&t);
    let mut wrong = t.token(OPERATOR);
    wrong.insert(3, 'x');
    let callers: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("wrong token", Some(wrong)),
        ("viewer", Some(t.token(VIEWER))),
        ("operator", Some(t.token(OPERATOR))),
        ("outsider", Some(t.token(OUTSIDER))),
        ("ns admin", Some(t.token(NS_ADMIN))),
        ("admin", Some(t.token(ADMIN))),
    ];
    #[rustfmt::skip]
    let expected: &[(&str, [u16; 7])] = &[
        //                      none wrong viewer oper outsider nsadm admin
        ("POST resume",          [401, 401, 403, 204, 403, 204, 204]),
        ("POST resume/validate", [401, 401, 403, 200, 403, 200, 200]),
        ("POST resume/by-ids",   [401, 401, 403, 200, 403, 200, 200]),
        ("DELETE kill",          [401, 401, 403, 202, 403, 202, 202]),
        ("DELETE kill/by-ids",   [401, 401, 403, 200, 403, 200, 200]),
        ("GET execution",        [401, 401, 200, 200, 403, 200, 200]),
        ("POST start",           [401, 401, 403, 200, 403, 200, 200]),
        ("GET admin/users",      [401, 401, 403, 403, 403, 403, 200]),
        ("GET admin/tokens",     [401, 401, 403, 403, 403, 403, 200]),
    ];
    let mut wrong_cells = Vec::new();
    for (route, row) in expected {
        for ((who, token), want) in callers.iter().zip(row) {
            let got = r.status(route, token.as_deref());
            if got != *want {
                wrong_cells.push(format!("{route} as {who}: expected {want}, got {got}"));
            }
        }
    }
    assert!(wrong_cells.is_empty(), "{}", wrong_cells.join("\n"));

    // Every 403 left its audit record: the caller, the action, DENIED.
    let mut t = t;
    t.d.token = Some(t.token(ADMIN));
    let records = t.d.cli_json(&["audit", "--limit", "10000"]);
    let records = records.as_array().cloned().unwrap_or_default();
    let mut unaudited = Vec::new();
    for (route, row) in expected {
        for ((who, _), want) in callers.iter().zip(row) {
            if *want != 403 {
                continue;
            }
            let action = match *route {
                "POST resume" | "POST resume/by-ids" => "resume",
                "POST resume/validate" => "resume.validate",
                "DELETE kill" | "DELETE kill/by-ids" => "kill",
                "GET execution" => "read",
                "POST start" => "start",
                _ => "admin",
            };
            let found = records.iter().any(|r| {
                r["user"] == email_of(who)
                    && r["action"] == action
                    && r["result"].as_str().unwrap_or_default().starts_with("DENIED")
            });
            if !found {
                unaudited.push(format!("{route} refused to {who}: no `{action}` DENIED record"));
            }
        }
    }
    assert!(unaudited.is_empty(), "{}", unaudited.join("\n"));
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "sign-in" && r["values"]["token_given"] == true),
        "the wrong token is audited as a refused sign-in"
    );
}

#[test]
fn rest_errors_audit_labels_and_kestra_shape() {
    let t = team_with(DaemonOptions {
        tenant: "demo".into(),
        ..Default::default()
    });
    let r = Rest::new(&t);
    let op = t.token(OPERATOR);
    let viewer = t.token(VIEWER);
    let id = r.paused();
    let resume = r.url(&format!("/api/v1/demo/executions/{id}/resume"));

    // 401 says nothing about what was wrong, and names the scheme.
    let (code, body) = curl(&["-i", "-X", "POST", &resume, "-H", "Authorization: Bearer tg_nope_nope"]);
    assert_eq!(code, 401);
    assert!(body.to_ascii_lowercase().contains("www-authenticate: bearer"), "{body}");
    assert!(body.contains("invalid or missing bearer token"), "{body}");

    // Wrong tenant and unknown execution: 404 JSON.
    let (code, v) = r.call(
        Some(&op),
        &["-X", "POST", &r.url(&format!("/api/v1/main/executions/{id}/resume"))],
    );
    assert_eq!(code, 404, "{v}");
    let (code, v) = r.call(Some(&op), &[&r.url("/api/v1/demo/executions/nope")]);
    assert_eq!(code, 404, "{v}");

    // A JSON body is not silently ignored (that would resume with defaults): 415.
    let (code, v) = r.call(
        Some(&op),
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"approved":false}"#,
            &resume,
        ],
    );
    assert_eq!(code, 415, "{v}");
    // The same field twice is refused rather than guessed.
    let (code, v) = r.call(
        Some(&op),
        &[
            "-X",
            "POST",
            "-F",
            "approved=true",
            "-F",
            "approved=false",
            "-F",
            "reason=x",
            &resume,
        ],
    );
    assert_eq!(code, 400, "{v}");
    // Invalid input: 422 naming it.
    let (code, v) = r.call(
        Some(&op),
        &["-X", "POST", "-F", "approved=maybe", "-F", "reason=x", &resume],
    );
    assert_eq!(code, 422, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("approved"), "{v}");
    assert_eq!(r.execution(&id)["state"]["current"], "PAUSED");

    // A viewer's refused resume is audited.
    let (code, _) = r.call(
        Some(&viewer),
        &["-X", "POST", "-F", "approved=true", "-F", "reason=x", &resume],
    );
    assert_eq!(code, 403);

    // urlencoded works as well as multipart; then 409 once it is no longer paused.
    let (code, v) = r.call(
        Some(&op),
        &[
            "-X",
            "POST",
            "--data-urlencode",
            "approved=true",
            "--data-urlencode",
            "reason=a & b",
            &resume,
        ],
    );
    assert_eq!(code, 204, "{v}");
    let (code, v) = r.call(
        Some(&op),
        &["-X", "POST", "-F", "approved=true", "-F", "reason=x", &resume],
    );
    assert_eq!(code, 409, "{v}");
    assert_eq!(
        v["message"].as_str().unwrap_or(""),
        format!(
            "Execution '{id}' is not paused, can't resume it: it is {}",
            r.execution(&id)["state"]["current"].as_str().unwrap()
        ),
        "{v}"
    );

    let mut t = t;
    t.d.token = Some(t.token(ADMIN));
    let admin = t.d.cli_json(&["audit", "--execution", &id]);
    let records = admin.as_array().expect("records");
    assert!(
        records.iter().any(|x| x["user"] == VIEWER
            && x["action"] == "resume"
            && x["result"].as_str().unwrap_or("").starts_with("DENIED")),
        "the viewer's refused resume is in the audit log: {admin:#}"
    );
    assert!(
        records
            .iter()
            .any(|x| x["user"] == OPERATOR && x["action"] == "resume" && x["values"]["reason"] == "a & b"),
        "{admin:#}"
    );

    // Start with labels and form inputs; Kestra's shape.
    let (code, v) = r.call(
        Some(&op),
        &[
            "-X",
            "POST",
            "-F",
            "requester=ann",
            &r.url("/api/v1/demo/executions/test/approval?labels=team:hr&labels=ticket:OPS-1"),
        ],
    );
    assert_eq!(code, 200, "{v}");
    let labels = v["labels"].as_array().expect("labels");
    assert!(labels.iter().any(|l| l["key"] == "team" && l["value"] == "hr"), "{v}");
    assert!(
        labels
            .iter()
            .any(|l| l["key"] == "system.username" && l["value"] == OPERATOR),
        "the authenticated starter is recorded: {v}"
    );
    let started = v["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = r.execution(&started);
        if e["state"]["current"] == "PAUSED" {
            break e;
        }
        assert!(Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(e["inputs"]["requester"], "ann");
    assert_eq!(e["namespace"], "test");
    assert_eq!(e["flowId"], "approval");
    let histories: Vec<&str> = e["state"]["histories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(histories.first(), Some(&"CREATED"), "{e}");
    assert_eq!(histories.last(), Some(&"PAUSED"), "{e}");
    let runs = e["taskRunList"].as_array().unwrap();
    let decide = runs.iter().find(|t| t["taskId"] == "decide").expect("decide run");
    assert_eq!(decide["state"]["current"], "PAUSED");
    assert_eq!(decide["executionId"], started.as_str());
    assert!(
        labels.iter().any(|l| l["key"] == "ticket" && l["value"] == "OPS-1"),
        "{v}"
    );
}
