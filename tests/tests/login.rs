//! `tollgate login` keeps a token through the file fallback (no keyring service on this host) and
//! later commands reuse it; `logout` forgets it.

use std::io::Write;
use std::process::{Command, Stdio};

use tollgate_tests::{Daemon, DaemonOptions, binaries};

#[test]
fn login_stores_the_token_in_a_0600_file_and_commands_reuse_it() {
    let mut d = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..Default::default()
    });
    d.stop();
    assert!(d.admin(&["user", "add", "me@example.com"]).ok());
    assert!(
        d.admin(&[
            "role",
            "bind",
            "--user",
            "me@example.com",
            "--role",
            "viewer",
            "--namespace",
            "*"
        ])
        .ok()
    );
    let token = d
        .admin(&["token", "create", "--user", "me@example.com"])
        .stdout
        .trim()
        .to_string();
    d.restart();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(&binaries().tollgate);
        cmd.args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env("TOLLGATE_KEYRING", "file")
            .env_remove("TOLLGATE_TOKEN")
            .env_remove("TOLLGATE_SERVER")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let bad = run(
        &["--server", &d.server(), "login", "--token-stdin"],
        Some("tg_wrong_token"),
    );
    assert!(!bad.status.success(), "a wrong token is not stored");
    let ok = run(&["--server", &d.server(), "login", "--token-stdin"], Some(&token));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("mode 0600"));
    let file = home.path().join("tollgate/credentials");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // No --server, no TOLLGATE_TOKEN: both come from the login.
    let who = run(&["whoami"], None);
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    assert!(String::from_utf8_lossy(&who.stdout).contains("me@example.com"));
    assert!(run(&["logout"], None).status.success());
    assert!(!run(&["whoami"], None).status.success(), "logged out");
}
