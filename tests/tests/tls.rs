//! TLS end to end: a daemon started with `--tls-cert/--tls-key` (a certificate from a private CA
//! made by openssl), the CLI over `https://` with `--ca-cert`, REST through curl, and the admin
//! API through `tollgated admin --server https://…`. Without the CA, or in clear text, calls fail
//! with a message that says why.

use std::process::{Command, Stdio};

use tollgate_tests::pki::{Pki, pki};
use tollgate_tests::{CliOutput, Daemon, DaemonOptions, binaries, curl};

fn tls_daemon(pki: &Pki) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_args: vec![
            "--tls-cert".into(),
            pki.cert.display().to_string(),
            "--tls-key".into(),
            pki.key.display().to_string(),
        ],
        ..DaemonOptions::default()
    })
}

fn https(d: &Daemon) -> String {
    format!("https://{}", d.addr)
}

/// The real CLI against `server`, with `extra` before the subcommand.
fn cli(d: &Daemon, server: &str, extra: &[&str], args: &[&str]) -> CliOutput {
    let mut cmd = Command::new(&binaries().tollgate);
    cmd.arg("--server")
        .arg(server)
        .args(extra)
        .args(args)
        .env_remove("TOLLGATE_TOKEN")
        .env_remove("TOLLGATE_CA_CERT")
        .env(
            "XDG_CONFIG_HOME",
            d.data_dir.parent().expect("temp root").join("config"),
        )
        .stdin(Stdio::null());
    CliOutput::from(cmd.output().expect("run tollgate"))
}

fn json(out: &CliOutput) -> serde_json::Value {
    assert!(out.ok(), "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{out}"))
}

#[test]
fn cli_rest_and_admin_over_tls_with_a_private_ca() {
    let pki = pki();
    let d = tls_daemon(&pki);
    let server = https(&d);
    let ca = pki.ca.display().to_string();
    let with_ca = ["--ca-cert", ca.as_str()];

    let started = json(&cli(
        &d,
        &server,
        &with_ca,
        &["run", "test", "approval", "--wait", "-o", "json"],
    ));
    assert_eq!(started["state"], "PAUSED", "{started}");
    let id = started["id"].as_str().expect("id").to_string();
    let listed = json(&cli(&d, &server, &with_ca, &["executions", "-o", "json"]));
    assert!(listed.to_string().contains(&id), "{listed}");

    // REST on the same port, through curl with the same CA.
    let (code, body) = curl(&["--cacert", &ca, &format!("{server}/api/v1/main/executions/{id}")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"PAUSED\""), "{body}");
    let (code, body) = curl(&[
        "--cacert",
        &ca,
        "-X",
        "POST",
        "-F",
        "approved=true",
        "-F",
        "reason=over TLS",
        &format!("{server}/api/v1/main/executions/{id}/resume"),
    ]);
    assert!(code < 300, "{code} {body}");
    let mut state = serde_json::Value::Null;
    for _ in 0..200 {
        state = json(&cli(&d, &server, &with_ca, &["executions", "get", &id, "-o", "json"]))["state"].clone();
        if state == "SUCCESS" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(state, "SUCCESS", "resumed over REST with TLS");

    // The admin API of the running daemon, over https with the CA.
    let admin = Command::new(&binaries().tollgated)
        .args([
            "admin",
            "--server",
            &server,
            "--ca-cert",
            &ca,
            "user",
            "list",
            "-o",
            "json",
        ])
        .env("TOLLGATE_TOKEN", "unused-with-insecure-no-auth")
        .env_remove("TOLLGATE_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run tollgated admin");
    let admin = CliOutput::from(admin);
    assert!(admin.ok(), "{admin}");
}

#[test]
fn untrusted_certificate_and_clear_text_are_refused_with_a_reason() {
    let pki = pki();
    let d = tls_daemon(&pki);
    let server = https(&d);

    // No CA: the system roots do not know the private CA.
    let out = cli(&d, &server, &[], &["executions"]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.stderr.contains("certificate"),
        "names the certificate problem:\n{out}"
    );

    // http:// to a TLS port: no answer a client could take for gRPC.
    let out = cli(&d, &format!("http://{}", d.addr), &[], &["executions"]);
    assert!(!out.ok(), "{out}");

    // A CA file that is not a certificate is named.
    let bogus = d.data_dir.parent().expect("temp root").join("bogus.pem");
    std::fs::write(&bogus, "hello").expect("write");
    let bogus_text = bogus.display().to_string();
    let out = cli(&d, &server, &["--ca-cert", &bogus_text], &["executions"]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("bogus.pem"), "{out}");

    // curl without the CA refuses too (the daemon really presents the private CA's certificate).
    let (code, _) = curl(&[&format!("{server}/api/v1/main/executions/x")]);
    assert_eq!(code, 0, "curl must not trust the private CA by itself");
}

#[test]
fn bad_certificate_files_stop_the_daemon_with_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").expect("write");
    let out = Command::new(&binaries().tollgated)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .expect("run tollgated");
    let out = CliOutput::from(out);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("missing.pem"), "{out}");
    // Nothing was created: the check comes before the store is opened.
    assert!(!dir.path().join("data").exists(), "the data dir was left alone");

    let out = Command::new(&binaries().tollgated)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert", "x.pem"])
        .stdin(Stdio::null())
        .output()
        .expect("run tollgated");
    let out = CliOutput::from(out);
    assert!(!out.ok() && out.stderr.contains("--tls-key"), "{out}");
}

#[test]
fn the_approval_page_session_cookie_is_secure_under_tls() {
    let pki = pki();
    let d = tls_daemon(&pki);
    let ca = pki.ca.display().to_string();
    let jars = tempfile::tempdir().expect("temp dir");
    let jar = jars.path().join("jar").display().to_string();
    let page = format!("{}/ui/main/executions/any", https(&d));
    let (code, form) = curl(&["--cacert", &ca, "-c", &jar, &page]);
    assert_eq!(code, 401, "{form}");
    let csrf = form
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the login form carries _csrf")
        .to_string();
    // No auth on this daemon: any token signs in, which is all this test needs.
    let (code, answer) = curl(&[
        "--cacert",
        &ca,
        "-i",
        "-b",
        &jar,
        "-X",
        "POST",
        &format!("{}/ui/main/login", https(&d)),
        "--data-urlencode",
        "token=anything",
        "--data-urlencode",
        "execution=any",
        "--data-urlencode",
        &format!("_csrf={csrf}"),
    ]);
    assert_eq!(code, 303, "{answer}");
    let session = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie: tollgate_session="))
        .unwrap_or_else(|| panic!("a session cookie: {answer}"));
    assert!(session.trim_end().ends_with("; Secure"), "{session}");
}
