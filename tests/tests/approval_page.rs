//! The page appLink() points at: sign in with a token, see the form, resume — over plain HTTP.

use tollgate_tests::{Daemon, DaemonOptions, curl, task_run};

#[test]
fn the_approval_page_signs_in_with_a_token_and_resumes_through_the_engine() {
    let mut d = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..Default::default()
    });
    d.stop();
    assert!(d.admin(&["user", "add", "boss@example.com"]).ok());
    assert!(
        d.admin(&[
            "role",
            "bind",
            "--user",
            "boss@example.com",
            "--role",
            "operator",
            "--namespace",
            "test"
        ])
        .ok()
    );
    let token = d
        .admin(&["token", "create", "--user", "boss@example.com"])
        .stdout
        .trim()
        .to_string();
    d.restart();
    d.token = Some(token.clone());
    let id = d.run_wait("test", "approval", &[])["id"].as_str().unwrap().to_string();
    let base = format!("http://127.0.0.1:{}", d.addr.port());
    let page = format!("{base}/ui/main/executions/{id}");

    let (code, body) = curl(&[&page]);
    assert_eq!(code, 401);
    assert!(body.contains("Sign in") && !body.contains("<script"), "{body}");

    let (code, _) = curl(&[
        "-X",
        "POST",
        &format!("{base}/ui/main/login"),
        "--data-urlencode",
        "token=tg_bad_bad",
        "--data-urlencode",
        &format!("execution={id}"),
    ]);
    assert_eq!(code, 401, "a bad token is refused");

    let jar = tempfile::NamedTempFile::new().unwrap();
    let jar = jar.path().to_str().unwrap().to_string();
    let (code, _) = curl(&[
        "-c",
        &jar,
        "-X",
        "POST",
        &format!("{base}/ui/main/login"),
        "--data-urlencode",
        &format!("token={token}"),
        "--data-urlencode",
        &format!("execution={id}"),
    ]);
    assert_eq!(code, 303);
    let (code, body) = curl(&["-b", &jar, &page]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("name=\"approved\"") && body.contains("name=\"reason\""),
        "the onResume form: {body}"
    );
    let run_id = body
        .split("name=\"_task_run\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();

    let (code, body) = curl(&[
        "-b",
        &jar,
        "-X",
        "POST",
        &format!("{page}/resume"),
        "--data-urlencode",
        &format!("_task_run={run_id}"),
        "--data-urlencode",
        "approved=maybe",
        "--data-urlencode",
        "reason=x",
    ]);
    assert_eq!(code, 422, "invalid input is refused and named: {body}");
    assert!(body.contains("approved"));
    let (code, body) = curl(&[
        "-b",
        &jar,
        "-X",
        "POST",
        &format!("{page}/resume"),
        "--data-urlencode",
        &format!("_task_run={run_id}"),
        "--data-urlencode",
        "approved=true",
        "--data-urlencode",
        "reason=looks <good>",
        "--data-urlencode",
        "_reason=from my phone",
    ]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Resumed"), "{body}");
    let e = d.wait_state(&id, "SUCCESS");
    let decide = task_run(&e, "decide");
    assert_eq!(decide["outputs"]["onResume"]["reason"], "looks <good>");
    assert_eq!(decide["outputs"]["resumed"]["by"], "boss@example.com");
}
