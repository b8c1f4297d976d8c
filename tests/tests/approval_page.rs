//! The page appLink() points at: sign in with a token, see the form, resume — over plain HTTP
//! with real curl. Most tests here are attacks (security finding 4 of issue 14): a forged
//! cross-site POST, login CSRF, a stolen or signed-out cookie, framing, another tenant's path.
//! Each attack must be refused and leave the execution PAUSED.

mod auth_common;

use auth_common::{ADMIN, OPERATOR, Team, admin_remote, team, team_with};
use tollgate_tests::{Daemon, DaemonOptions, curl, postgres, task_run};

const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A daemon with authentication on, one paused `test.approval`, and a place for cookie jars.
struct Page {
    t: Team,
    id: String,
    base: String,
    jars: tempfile::TempDir,
}

impl Page {
    fn new() -> Page {
        Page::with(team())
    }

    fn with(mut t: Team) -> Page {
        t.d.token = Some(t.token(ADMIN));
        let id = t.d.run_wait("test", "approval", &[])["id"]
            .as_str()
            .expect("id")
            .to_string();
        let base = format!("http://127.0.0.1:{}", t.d.addr.port());
        Page {
            t,
            id,
            base,
            jars: tempfile::tempdir().expect("temp dir for cookie jars"),
        }
    }

    fn url(&self) -> String {
        format!("{}/ui/main/executions/{}", self.base, self.id)
    }

    fn jar(&self, name: &str) -> String {
        self.jars.path().join(name).display().to_string()
    }

    fn state(&self) -> String {
        self.t.d.execution(&self.id)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The honest sign-in: GET the page (login form + its CSRF cookie), POST the form back.
    /// Returns the full answer to the POST (headers and body).
    fn sign_in_answer(&self, jar: &str, token: &str) -> (u16, String) {
        let (code, form) = curl(&["-c", jar, &self.url()]);
        assert_eq!(code, 401, "{form}");
        let csrf = csrf_of(&form);
        self.post_form(
            jar,
            "login",
            &[
                format!("token={token}"),
                format!("execution={}", self.id),
                format!("_csrf={csrf}"),
            ],
        )
    }

    /// POSTs `fields` to `/ui/main/{path}` with `jar`'s cookies, keeping what it sets; the
    /// whole answer (headers and body).
    fn post_form(&self, jar: &str, path: &str, fields: &[String]) -> (u16, String) {
        let url = format!("{}/ui/main/{path}", self.base);
        let mut args: Vec<&str> = vec!["-i", "-b", jar, "-c", jar, "-X", "POST", &url];
        for f in fields {
            args.extend(["--data-urlencode", f.as_str()]);
        }
        curl(&args)
    }

    /// Signs in with `token` into the cookie jar `jar`; returns the page's form HTML.
    fn sign_in(&self, jar: &str, token: &str) -> String {
        let (code, answer) = self.sign_in_answer(jar, token);
        assert_eq!(code, 303, "{answer}");
        let (code, body) = curl(&["-b", jar, &self.url()]);
        assert_eq!(code, 200, "{body}");
        body
    }

    /// The cookies in `jar` no longer sign in: the page asks again, a decision with the form's
    /// CSRF value is refused, and the execution is still PAUSED.
    fn assert_signed_out(&self, jar: &str, form: &str, csrf: &str) {
        let (code, body) = curl(&["-b", jar, &self.url()]);
        assert_eq!(code, 401, "the page asks to sign in again: {body}");
        let (code, body) = self.post_resume(jar, &decision(form, Some(csrf)), &[]);
        assert_eq!(code, 401, "{body}");
        assert_eq!(self.state(), "PAUSED");
    }

    /// POSTs the sign-out form with `jar`'s cookies and `csrf`; the jar is updated.
    fn sign_out(&self, jar: &str, csrf: &str) -> (u16, String) {
        self.post_form(jar, "logout", &[format!("_csrf={csrf}")])
    }

    /// POSTs the resume form with `jar`'s cookies plus `fields` and `extra` curl arguments.
    fn post_resume(&self, jar: &str, fields: &[String], extra: &[&str]) -> (u16, String) {
        let url = format!("{}/resume", self.url());
        let mut args: Vec<&str> = vec!["-b", jar, "-X", "POST"];
        args.extend_from_slice(extra);
        for f in fields {
            args.extend(["--data-urlencode", f.as_str()]);
        }
        args.push(&url);
        curl(&args)
    }
}

/// The `value` of the first input named `name` in `html`.
fn value_of(html: &str, name: &str) -> Option<String> {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_string)
}

/// The form's `_csrf` value; empty when there is none (so each attack test reaches its own
/// assertion on a page without CSRF protection instead of failing in sign-in).
fn csrf_of(html: &str) -> String {
    value_of(html, "_csrf").unwrap_or_default()
}

/// A complete, valid decision for the form in `html` (with `csrf` as the form's `_csrf`).
fn decision(html: &str, csrf: Option<&str>) -> Vec<String> {
    let run = value_of(html, "_task_run").expect("the form names the task run");
    let mut f = vec![
        format!("_task_run={run}"),
        "approved=true".to_string(),
        "reason=forged".to_string(),
    ];
    if let Some(c) = csrf {
        f.push(format!("_csrf={c}"));
    }
    f
}

/// The values of header `name` in a `curl -i` answer (lower-cased name match).
fn header_values(answer: &str, name: &str) -> Vec<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
        .collect()
}

#[test]
fn a_forged_resume_without_the_forms_csrf_value_is_refused() {
    let p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    // A second session of the same user: its CSRF value must not work for the first one.
    let other = p.jar("other");
    let other_form = p.sign_in(&other, &p.t.token(OPERATOR));
    let other_csrf = csrf_of(&other_form);

    for csrf in [None, Some(""), Some("00ff"), Some(other_csrf.as_str())] {
        let (code, body) = p.post_resume(&jar, &decision(&form, csrf), &[]);
        assert_eq!(code, 403, "_csrf {csrf:?} is refused: {body}");
        assert_eq!(p.state(), "PAUSED", "_csrf {csrf:?} changed nothing");
    }
    assert_ne!(csrf_of(&form), other_csrf, "each session has its own CSRF value");
}

#[test]
fn a_post_from_another_site_is_refused_even_with_the_right_csrf_value() {
    let p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let csrf = csrf_of(&form);
    for extra in [
        ["-H", "Origin: https://evil.example"],
        ["-H", "Origin: null"],
        ["-H", "Sec-Fetch-Site: cross-site"],
        ["-H", "Sec-Fetch-Site: same-site"],
    ] {
        let (code, body) = p.post_resume(&jar, &decision(&form, Some(&csrf)), &extra);
        assert_eq!(code, 403, "{extra:?} is refused: {body}");
        assert_eq!(p.state(), "PAUSED", "{extra:?} changed nothing");
    }
    // The same POST as a browser sends it from the page itself goes through: under the page's
    // `Referrer-Policy: no-referrer` that is `Origin: null` with `Sec-Fetch-Site: same-origin`.
    let (code, body) = p.post_resume(
        &jar,
        &decision(&form, Some(&csrf)),
        &["-H", "Origin: null", "-H", "Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(code, 200, "{body}");
}

#[test]
fn login_csrf_without_the_matching_cookie_and_field_sets_no_session() {
    let p = Page::new();
    let login = format!("{}/ui/main/login", p.base);
    let token = format!("token={}", p.t.token(OPERATOR));
    let execution = format!("execution={}", p.id);
    // What an attacker's page can send: the attacker's own token, with no or a made-up value.
    let attempts: [&[&str]; 5] = [
        &[],
        &["--data-urlencode", "_csrf=abc"],
        &["-H", "Cookie: tollgate_login_csrf=abc"],
        &["-H", "Cookie: tollgate_login_csrf=abc", "--data-urlencode", "_csrf=abd"],
        // Matching values planted by the attacker, but the browser says the POST is cross-site.
        &[
            "-H",
            "Cookie: tollgate_login_csrf=abc",
            "--data-urlencode",
            "_csrf=abc",
            "-H",
            "Sec-Fetch-Site: cross-site",
        ],
    ];
    for extra in attempts {
        let mut args = vec![
            "-i",
            "-X",
            "POST",
            &login,
            "--data-urlencode",
            &token,
            "--data-urlencode",
            &execution,
        ];
        args.extend_from_slice(extra);
        let (code, answer) = curl(&args);
        assert_eq!(code, 403, "{extra:?}: {answer}");
        assert!(header_values(&answer, "set-cookie").is_empty(), "{extra:?}: {answer}");
    }
    // An `Origin` of another site, even with a genuine login form's values.
    let jar = p.jar("victim");
    let (_, form) = curl(&["-c", &jar, &p.url()]);
    let csrf = format!("_csrf={}", csrf_of(&form));
    let (code, answer) = curl(&[
        "-i",
        "-b",
        &jar,
        "-H",
        "Origin: https://evil.example",
        "-X",
        "POST",
        &login,
        "--data-urlencode",
        &token,
        "--data-urlencode",
        &execution,
        "--data-urlencode",
        &csrf,
    ]);
    assert_eq!(code, 403, "{answer}");
    assert!(header_values(&answer, "set-cookie").is_empty(), "{answer}");
}

#[test]
fn the_session_cookie_is_short_lived_http_only_and_never_the_token() {
    let p = Page::new();
    let token = p.t.token(OPERATOR);
    let (code, answer) = p.sign_in_answer(&p.jar("victim"), &token);
    assert_eq!(code, 303, "{answer}");
    let secret = token.rsplit('_').next().expect("tg_<id>_<secret>");
    assert!(
        !answer.contains(secret),
        "no cookie (and nothing else in the answer) carries the API token: {answer}"
    );
    let cookies = header_values(&answer, "set-cookie");
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tollgate_session="))
        .unwrap_or_else(|| panic!("a session cookie: {answer}"));
    for attribute in ["Max-Age=1800", "HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: no Secure ({session})");
}

#[test]
fn revoking_the_api_token_ends_the_page_session_at_once() {
    let p = Page::new();
    let operator = p.t.token(OPERATOR);
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &operator);
    let csrf = csrf_of(&form);

    admin_remote(&p.t.d, &p.t.token(ADMIN), &["token", "revoke", &operator]);

    p.assert_signed_out(&jar, &form, &csrf);
}

#[test]
fn signing_out_makes_the_old_cookie_useless() {
    let p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let csrf = csrf_of(&form);
    assert!(form.contains("/ui/main/logout"), "the page offers sign-out: {form}");
    // A copy of the cookie, as someone who took it before sign-out would hold it.
    let stolen = p.jar("stolen");
    std::fs::copy(&jar, &stolen).expect("copy the cookie jar");
    let logout = format!("{}/ui/main/logout", p.base);

    let (code, body) = curl(&["-b", &jar, "-X", "POST", &logout, "-d", "_csrf=00"]);
    assert_eq!(code, 403, "sign-out needs the form's CSRF value: {body}");
    let (code, answer) = p.sign_out(&jar, &csrf);
    assert_eq!(code, 200, "{answer}");
    assert!(
        header_values(&answer, "set-cookie")
            .iter()
            .any(|c| c.starts_with("tollgate_session=;") && c.contains("Max-Age=0")),
        "the browser's cookie is cleared: {answer}"
    );

    p.assert_signed_out(&stolen, &form, &csrf);
}

#[test]
fn a_signed_out_cookie_stays_useless_after_kill_9() {
    let mut p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let csrf = csrf_of(&form);
    let stolen = p.jar("stolen");
    std::fs::copy(&jar, &stolen).expect("copy the cookie jar");
    let (code, answer) = p.sign_out(&jar, &csrf);
    assert_eq!(code, 200, "{answer}");

    p.t.d.kill9();
    p.t.d.restart();

    p.assert_signed_out(&stolen, &form, &csrf);
}

/// The same secret key for every daemon of one database, as the README requires.
const SHARED_KEY: &str = "dG9sbGdhdGUtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

/// Behind a load balancer, one browser's requests reach any daemon of the database: a session
/// signed in on one daemon works on another, and signing out on one ends it on all.
#[test]
fn a_session_and_its_sign_out_hold_on_every_daemon_of_one_database() {
    let options = DaemonOptions {
        extra_args: vec!["--store".into(), postgres::new_database()],
        env: vec![("TOLLGATE_SECRET_KEY".into(), SHARED_KEY.into())],
        ..DaemonOptions::default()
    };
    let mut p = Page::with(team_with(options.clone()));
    let other = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..options
    });
    let first = p.base.clone();
    let second = format!("http://127.0.0.1:{}", other.addr.port());
    let jar = p.jar("browser");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let csrf = csrf_of(&form);
    let stolen = p.jar("stolen");
    std::fs::copy(&jar, &stolen).expect("copy the cookie jar");

    p.base = second;
    let (code, page) = curl(&["-b", &jar, &p.url()]);
    assert_eq!(code, 200, "the other daemon knows the session: {page}");
    assert_eq!(csrf_of(&page), csrf, "and the form's CSRF value");
    let (code, answer) = p.sign_out(&jar, &csrf);
    assert_eq!(code, 200, "{answer}");

    p.base = first;
    p.assert_signed_out(&stolen, &form, &csrf);
}

#[test]
fn every_page_answer_forbids_framing_scripts_and_caching() {
    let p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let answers = [
        curl(&["-i", &p.url()]).1,
        curl(&["-i", "-b", &jar, &p.url()]).1,
        curl(&["-i", &format!("{}/ui/other/executions/{}", p.base, p.id)]).1,
        p.post_resume(&jar, &decision(&form, None), &["-i"]).1,
    ];
    for answer in answers {
        let one = |name: &str| header_values(&answer, name).join(", ");
        assert_eq!(one("content-security-policy"), CSP, "{answer}");
        assert_eq!(one("x-frame-options"), "DENY", "{answer}");
        assert_eq!(one("x-content-type-options"), "nosniff", "{answer}");
        assert_eq!(one("referrer-policy"), "no-referrer", "{answer}");
        assert_eq!(one("cache-control"), "no-store", "{answer}");
        assert!(!answer.contains("<script"), "{answer}");
    }
    assert_eq!(p.state(), "PAUSED");
}

#[test]
fn another_tenants_path_is_404_on_every_ui_route_and_changes_nothing() {
    let p = Page::new();
    let jar = p.jar("victim");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    let csrf = csrf_of(&form);
    let other = format!("{}/ui/OTHER", p.base);

    let mut resume = vec!["-i".to_string(), "-b".into(), jar.clone(), "-X".into(), "POST".into()];
    for f in decision(&form, Some(&csrf)) {
        resume.extend(["--data-urlencode".into(), f]);
    }
    resume.push(format!("{other}/executions/{}/resume", p.id));
    let resume: Vec<&str> = resume.iter().map(String::as_str).collect();
    let (code, answer) = curl(&resume);
    assert_eq!(code, 404, "{answer}");
    assert_eq!(p.state(), "PAUSED");

    let (code, answer) = curl(&["-i", "-b", &jar, &format!("{other}/executions/{}", p.id)]);
    assert_eq!(code, 404, "{answer}");

    // A genuine login form's values and a valid token, posted to another tenant's path.
    let fresh = p.jar("fresh");
    let (_, login_form) = curl(&["-c", &fresh, &p.url()]);
    let login_csrf = csrf_of(&login_form);
    let (code, answer) = curl(&[
        "-i",
        "-b",
        &fresh,
        "-X",
        "POST",
        &format!("{other}/login"),
        "--data-urlencode",
        &format!("token={}", p.t.token(OPERATOR)),
        "--data-urlencode",
        &format!("_csrf={login_csrf}"),
    ]);
    assert_eq!(code, 404, "{answer}");
    assert!(header_values(&answer, "set-cookie").is_empty(), "{answer}");

    let (code, answer) = curl(&[
        "-i",
        "-b",
        &jar,
        "-X",
        "POST",
        &format!("{other}/logout"),
        "--data-urlencode",
        &format!("_csrf={csrf}"),
    ]);
    assert_eq!(code, 404, "{answer}");
    let (code, body) = curl(&["-b", &jar, &p.url()]);
    assert_eq!(code, 200, "the session on `main` still works: {body}");
}

#[test]
fn the_approval_page_signs_in_with_a_token_and_resumes_through_the_engine() {
    let p = Page::new();
    let (code, body) = curl(&[&p.url()]);
    assert_eq!(code, 401);
    assert!(body.contains("Sign in") && !body.contains("<script"), "{body}");
    assert!(!csrf_of(&body).is_empty(), "the login form carries _csrf: {body}");

    let jar = p.jar("boss");
    let (code, body) = p.sign_in_answer(&jar, "tg_bad_bad");
    assert_eq!(code, 401, "a bad token is refused: {body}");
    assert!(
        !header_values(&body, "set-cookie")
            .iter()
            .any(|c| c.starts_with("tollgate_session=")),
        "{body}"
    );

    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    assert!(
        form.contains("name=\"approved\"") && form.contains("name=\"reason\""),
        "the onResume form: {form}"
    );
    let csrf = csrf_of(&form);
    assert!(!csrf.is_empty(), "the form carries _csrf: {form}");
    let run_id = value_of(&form, "_task_run").expect("_task_run");

    let (code, body) = p.post_resume(
        &jar,
        &[
            format!("_csrf={csrf}"),
            format!("_task_run={run_id}"),
            "approved=maybe".into(),
            "reason=x".into(),
        ],
        &[],
    );
    assert_eq!(code, 422, "invalid input is refused and named: {body}");
    assert!(body.contains("approved"));
    let (code, body) = p.post_resume(
        &jar,
        &[
            format!("_csrf={csrf}"),
            format!("_task_run={run_id}"),
            "approved=true".into(),
            "reason=looks <good>".into(),
            "_reason=from my phone".into(),
        ],
        &["-H", &format!("Origin: {}", p.base)],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Resumed"), "{body}");
    let e = p.t.d.wait_state(&p.id, "SUCCESS");
    let decide = task_run(&e, "decide");
    assert_eq!(decide["outputs"]["onResume"]["reason"], "looks <good>");
    assert_eq!(decide["outputs"]["resumed"]["by"], OPERATOR);
    assert!(
        decide["outputs"]["onResume"].get("_csrf").is_none(),
        "the CSRF value is not an input: {decide:#}"
    );

    let audit = p.t.d.cli_json(&["audit", "--execution", &p.id]);
    assert!(
        audit
            .as_array()
            .expect("audit records")
            .iter()
            .any(|r| r["action"] == "resume" && r["user"] == OPERATOR && r["values"]["approved"] == true),
        "the decision is audited: {audit:#}"
    );
}

/// Issue 14, finding 3 on this door: a refused decision and a refused sign-in on the page leave
/// audit records, as they do over gRPC and REST (the page calls the same operations layer).
#[test]
fn refusals_on_the_page_are_audited_like_on_every_other_door() {
    let mut p = Page::new();
    let jar = p.jar("viewer");
    let form = p.sign_in(&jar, &p.t.token(auth_common::VIEWER));
    let csrf = csrf_of(&form);
    let (code, body) = p.post_resume(&jar, &decision(&form, Some(&csrf)), &[]);
    assert_eq!(code, 403, "a viewer may not decide: {body}");
    assert_eq!(p.state(), "PAUSED");
    let (code, answer) = p.sign_in_answer(&p.jar("intruder"), "tg_pagefake_nope");
    assert_eq!(code, 401, "{answer}");

    p.t.d.token = Some(p.t.token(ADMIN));
    let records = p.t.d.cli_json(&["audit", "--limit", "10000"]);
    let records = records.as_array().cloned().unwrap_or_default();
    assert!(
        records.iter().any(|r| r["user"] == auth_common::VIEWER
            && r["action"] == "resume"
            && r["executionId"] == p.id.as_str()
            && r["result"].as_str().unwrap_or_default().starts_with("DENIED")),
        "the viewer's refused decision on the page"
    );
    assert!(
        records.iter().any(|r| r["action"] == "sign-in"
            && r["values"]["door"] == "page"
            && r["values"]["token_id"] == "pagefake"),
        "the refused page sign-in"
    );
}

/// The page's Preview button shows what resuming would do and changes nothing; its Reject button
/// rejects with the comment box as the reason, through the same engine call as the CLI.
#[test]
fn the_page_previews_then_rejects_with_a_reason() {
    let p = Page::new();
    let jar = p.jar("previewer");
    let form = p.sign_in(&jar, &p.t.token(OPERATOR));
    assert!(
        form.contains("value=\"preview\"") && form.contains("value=\"reject\""),
        "Preview and Reject buttons: {form}"
    );
    let csrf = csrf_of(&form);
    let run_id = value_of(&form, "_task_run").expect("_task_run");
    let (code, body) = p.post_resume(
        &jar,
        &[
            format!("_csrf={csrf}"),
            format!("_task_run={run_id}"),
            "approved=true".into(),
            "reason=fine".into(),
            "_action=preview".into(),
        ],
        &["-H", &format!("Origin: {}", p.base)],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Nothing was run or changed"), "{body}");
    assert_eq!(p.t.d.execution(&p.id)["state"], "PAUSED");

    let (code, body) = p.post_resume(
        &jar,
        &[
            format!("_csrf={csrf}"),
            format!("_task_run={run_id}"),
            "_reason=not this quarter".into(),
            "_action=reject".into(),
        ],
        &["-H", &format!("Origin: {}", p.base)],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Rejected"), "{body}");
    let e = p.t.d.wait_state(&p.id, "FAILED");
    let decide = task_run(&e, "decide");
    assert_eq!(decide["outputs"]["rejected"]["reason"], "not this quarter", "{e:#}");
    assert_eq!(decide["decisions"][0]["decision"], "REJECTED");
}

/// Before deciding, the page says what the console says: the gate's SLA was breached, and how
/// far the quorum got.
#[test]
fn the_page_shows_a_breached_sla_and_the_quorum_so_far() {
    let mut p = Page::new();
    p.t.d.apply_flow(
        "quorum_sla",
        "id: quorum_sla\nnamespace: test\ntasks:\n  - id: sign_off\n    type: io.kestra.plugin.ee.flow.HumanTask\n    approvals: 2\n    sla: PT1S\n",
    );
    p.id = p.t.d.run_wait("test", "quorum_sla", &[])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while task_run(&p.t.d.execution(&p.id), "sign_off")["sla"]["breached"] != true {
        assert!(std::time::Instant::now() < deadline, "no breach recorded");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let html = p.sign_in(&p.jar("admin"), &p.t.token(ADMIN));
    assert!(html.contains("SLA breached: still undecided at"), "{html}");
    assert!(html.contains("0 of 2 approvals."), "{html}");
    assert_eq!(p.state(), "PAUSED");
}
