//! TLS to PostgreSQL, with libpq's `sslmode` and `sslrootcert` in the store URL, against a real
//! server that refuses every connection that is not TLS (certificates made by openssl).

use std::process::Command;

use tollgate_tests::pki::{Pki, pki, pki_naming};
use tollgate_tests::postgres::PgServer;
use tollgate_tests::{CliOutput, Daemon, DaemonOptions, binaries};

/// `tollgated admin --store URL user list`: opens the store (and migrates it) and exits.
fn admin_on(url: &str) -> CliOutput {
    let dir = tempfile::tempdir().expect("temp data dir");
    let out = Command::new(&binaries().tollgated)
        .arg("admin")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--store", url, "user", "list"])
        .env_remove("TOLLGATE_STORE")
        .output()
        .expect("run tollgated admin");
    CliOutput::from(out)
}

fn with(base: &str, params: &str) -> String {
    format!("{base}?{params}")
}

fn server_with(pki: &Pki) -> (PgServer, String) {
    let pg = PgServer::start_own();
    pg.require_tls(&pki.cert, &pki.key);
    let url = pg.new_database();
    (pg, url)
}

#[test]
fn the_daemon_reaches_a_tls_only_database_and_checks_its_certificate() {
    let pki = pki();
    let (pg, url) = server_with(&pki);
    let ca = pki.ca.display().to_string();

    let d = Daemon::start_with(DaemonOptions {
        extra_args: vec![
            "--store".into(),
            with(&url, &format!("sslmode=verify-full&sslrootcert={ca}")),
        ],
        ..DaemonOptions::default()
    });
    let id = d.run_wait("test", "approval", &[])["id"]
        .as_str()
        .expect("execution id")
        .to_string();
    let out = d.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=over TLS"]);
    assert!(out.ok(), "{out}");
    d.wait_state(&id, "SUCCESS");
    let encrypted = pg.psql(
        &url,
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'tollgated' AND ssl",
    );
    assert_ne!(encrypted, "0", "the daemon's connections are TLS");

    // Plain TCP is refused by the server; the error names the database, never a password.
    let plain = admin_on(&with(&url.replace("tollgate@", "tollgate:hunter2@"), "sslmode=disable"));
    assert!(!plain.ok(), "{plain}");
    assert!(plain.stderr.contains("127.0.0.1"), "{plain}");
    assert!(!plain.to_string().contains("hunter2"), "{plain}");

    // `require` without a root certificate encrypts without checking, as libpq.
    let require = admin_on(&with(&url, "sslmode=require"));
    assert!(require.ok(), "{require}");

    // A certificate from another CA is refused, and so is a missing root file.
    let other = pki_naming("IP:127.0.0.1");
    let forged = admin_on(&with(
        &url,
        &format!("sslmode=verify-full&sslrootcert={}", other.ca.display()),
    ));
    assert!(
        !forged.ok(),
        "a server certificate of another CA must be refused: {forged}"
    );
    assert!(forged.stderr.to_lowercase().contains("certificate"), "{forged}");
    let missing = admin_on(&with(&url, "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem"));
    assert!(!missing.ok(), "{missing}");
    assert!(missing.stderr.contains("/nonexistent/ca.pem"), "{missing}");
}

#[test]
fn verify_full_checks_the_host_name_and_verify_ca_only_the_chain() {
    // A certificate for another name than the address the URL connects to.
    let pki = pki_naming("DNS:db.example");
    let (_pg, url) = server_with(&pki);
    let ca = pki.ca.display().to_string();

    let full = admin_on(&with(&url, &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(
        !full.ok(),
        "verify-full must refuse a certificate for another host: {full}"
    );
    assert!(full.stderr.to_lowercase().contains("certificate"), "{full}");

    let chain = admin_on(&with(&url, &format!("sslmode=verify-ca&sslrootcert={ca}")));
    assert!(
        chain.ok(),
        "verify-ca accepts a certificate of the CA for any name: {chain}"
    );
}
