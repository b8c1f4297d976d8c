//! `tollgate login` keeps a token through the file fallback (no keyring service on this host) and
//! later commands reuse it; `logout` forgets it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tollgate_tests::{Daemon, DaemonOptions, binaries};

/// A daemon with auth and a viewer token for `me@example.com`.
fn daemon_and_token() -> (Daemon, String) {
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
    (d, token)
}

/// Runs `tollgate` with `home` as its config home and the keyring forced to the file.
fn tollgate(home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(&binaries().tollgate);
    cmd.args(args)
        .env("XDG_CONFIG_HOME", home)
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
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_stores_the_token_in_a_0600_file_and_commands_reuse_it() {
    let (d, token) = daemon_and_token();
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| tollgate(home.path(), args, stdin);
    let bad = run(
        &["--server", &d.server(), "login", "--token-stdin"],
        Some("tg_wrong_token"),
    );
    assert!(!bad.status.success(), "a wrong token is not stored");
    let ok = run(&["--server", &d.server(), "login", "--token-stdin"], Some(&token));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("mode 0600"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&home.path().join("tollgate/credentials")), 0o600);
        assert_eq!(
            mode(&home.path().join("tollgate")),
            0o700,
            "the config dir we create is private"
        );
    }
    // No --server, no TOLLGATE_TOKEN: both come from the login.
    let who = run(&["whoami"], None);
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
    assert!(String::from_utf8_lossy(&who.stdout).contains("me@example.com"));
    assert!(run(&["logout"], None).status.success());
    assert!(!run(&["whoami"], None).status.success(), "logged out");
}

/// Issue 14, finding 7: a world-readable `credentials.tmp` left by a crash (and a world-readable
/// `credentials` from an older version) must not make the stored token world-readable, while
/// login says "mode 0600".
#[cfg(unix)]
#[test]
fn login_over_a_stale_0644_tmp_file_still_leaves_the_credentials_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (d, token) = daemon_and_token();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("tollgate");
    std::fs::create_dir_all(&dir).unwrap();
    for stale in ["credentials.tmp", "credentials"] {
        let path = dir.join(stale);
        std::fs::write(&path, "http://old.example tg_old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ok = tollgate(
        home.path(),
        &["--server", &d.server(), "login", "--token-stdin"],
        Some(&token),
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("mode 0600"));
    let file = dir.join("credentials");
    assert_eq!(mode(&file), 0o600, "the token file is readable by its owner only");
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(kept.contains(&token), "the new token is stored");
    assert!(
        kept.contains("http://old.example tg_old"),
        "other servers' tokens are kept"
    );
    assert!(
        !dir.join("credentials.tmp").exists(),
        "no temporary file is left behind"
    );
    // The token still works from the file.
    let who = tollgate(home.path(), &["--server", &d.server(), "whoami"], None);
    assert!(who.status.success(), "{}", String::from_utf8_lossy(&who.stderr));
}
