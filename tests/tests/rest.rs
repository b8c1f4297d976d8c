//! The Kestra-compatible REST API, driven with real curl, including the seed's exact command.

use tollgate_tests::{Daemon, DaemonOptions, curl, task_run};

#[test]
fn the_seed_curl_resume_works_verbatim_and_errors_are_kestra_shaped() {
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows_triggers");
    let mut d = Daemon::start_with(DaemonOptions {
        flows: Some(flows),
        insecure: false,
        tenant: "demo".into(),
        ..Default::default()
    });
    d.stop();
    for args in [
        vec!["user", "add", "ops@example.com"],
        vec![
            "role",
            "bind",
            "--user",
            "ops@example.com",
            "--role",
            "operator",
            "--namespace",
            "demo",
        ],
    ] {
        assert!(d.admin(&args).ok());
    }
    let token = d
        .admin(&[
            "token",
            "create",
            "--user",
            "ops@example.com",
            "--name",
            "service-account",
        ])
        .stdout
        .trim()
        .to_string();
    d.restart();
    d.token = Some(token.clone());
    let id = d.run_wait("demo", "pause_demo", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{}", d.addr.port());
    let url = format!("{base}/api/v1/demo/executions/{id}/resume");
    let auth = format!("Authorization: Bearer {token}");

    let (code, body) = curl(&["-X", "POST", &url, "-F", "nope=1", "-H", &auth]);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("nope") && body.contains("\"message\""), "{body}");

    let (code, _) = curl(&["-X", "POST", &url, "-F", "status=OK"]);
    assert_eq!(code, 401);
    let (code, _) = curl(&[
        "-X",
        "POST",
        &format!("{base}/api/v1/main/executions/{id}/resume"),
        "-F",
        "status=OK",
        "-H",
        &auth,
    ]);
    assert_eq!(code, 404, "wrong tenant");

    // The seed's command, with this daemon's port and token.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &url,
        "-H",
        "accept: application/json",
        "-F",
        "status=OK",
        "-H",
        &auth,
    ]);
    assert!(code == 204 || code == 200, "{code} {body}");
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(
        task_run(&e, "wait_for_manual_resume")["outputs"]["onResume"]["status"],
        "OK"
    );
    assert_eq!(
        task_run(&e, "wait_for_manual_resume")["outputs"]["resumed"]["by"],
        "ops@example.com"
    );

    let (code, body) = curl(&["-X", "POST", &url, "-F", "status=OK", "-H", &auth]);
    assert_eq!(code, 409);
    assert!(
        body.contains(&format!("Execution '{id}' is not paused, can't resume it")),
        "{body}"
    );

    let (code, body) = curl(&["-H", &auth, &format!("{base}/api/v1/demo/executions/{id}")]);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"]["current"], "SUCCESS");
    assert_eq!(v["flowId"], "pause_demo");

    // Start with form inputs, then kill over REST.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &format!("{base}/api/v1/demo/executions/demo/pause_demo"),
    ]);
    assert_eq!(code, 200, "{body}");
    let started: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sid = started["id"].as_str().unwrap().to_string();
    d.wait_state(&sid, "PAUSED");
    let (code, _) = curl(&[
        "-X",
        "DELETE",
        "-H",
        &auth,
        &format!("{base}/api/v1/demo/executions/{sid}/kill"),
    ]);
    assert_eq!(code, 202);
    d.wait_state(&sid, "KILLED");
}
