//! Shared by the access-control tests: a daemon with authentication on and a team of users, each
//! holding one role; gRPC calls with a chosen token.
//!
//! The first admin is created on the data dir while the daemon is stopped (as the first-start
//! hint says); everyone else is created through the running daemon's admin API, the way
//! `tollgated admin` works while the daemon holds the file.

#![allow(dead_code)]

use std::collections::HashMap;
use std::process::{Command, Stdio};

use tollgate_tests::{CliOutput, Daemon, DaemonOptions, binaries};

/// Admin of every namespace.
pub const ADMIN: &str = "admin@example.com";
/// Viewer of `test`.
pub const VIEWER: &str = "viewer@example.com";
/// Operator of `test`.
pub const OPERATOR: &str = "operator@example.com";
/// Operator of `console` only: must see nothing of `test`.
pub const OUTSIDER: &str = "outsider@example.com";
/// Admin of `test` only (not of every namespace).
pub const NS_ADMIN: &str = "nsadmin@example.com";

/// The e-mail of a caller named as the role matrices name them.
pub fn email_of(who: &str) -> &'static str {
    match who {
        "viewer" => VIEWER,
        "operator" => OPERATOR,
        "outsider" => OUTSIDER,
        "ns admin" => NS_ADMIN,
        _ => ADMIN,
    }
}

pub struct Team {
    pub d: Daemon,
    pub tokens: HashMap<&'static str, String>,
}

impl Team {
    pub fn token(&self, who: &str) -> String {
        self.tokens[who].clone()
    }
}

/// `tollgated admin` on the stopped daemon's data dir; panics with the output on failure.
pub fn admin_local(d: &Daemon, args: &[&str]) -> String {
    let out = d.admin(args);
    assert!(out.ok(), "tollgated admin {args:?}:\n{out}");
    out.stdout.trim().to_string()
}

/// `tollgated admin` with `TOLLGATE_TOKEN` set, plus `extra` before the subcommand.
pub fn admin_with(extra: &[&str], token: Option<&str>, args: &[&str]) -> CliOutput {
    let mut cmd = Command::new(&binaries().tollgated);
    cmd.arg("admin")
        .args(extra)
        .args(args)
        .env_remove("TOLLGATE_TOKEN")
        .env_remove("TOLLGATE_SERVER")
        .env_remove("TOLLGATE_DATA_DIR")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("TOLLGATE_TOKEN", t);
    }
    CliOutput::from(cmd.output().expect("run tollgated admin"))
}

/// `tollgated admin --server URL …` through the running daemon's admin API.
pub fn admin_remote(d: &Daemon, token: &str, args: &[&str]) -> String {
    let server = d.server();
    let out = admin_with(&["--server", &server], Some(token), args);
    assert!(out.ok(), "tollgated admin --server {args:?}:\n{out}");
    out.stdout.trim().to_string()
}

/// A daemon with authentication on (tenant `tenant`, flows from `flows`) and the team above.
pub fn team_with(options: DaemonOptions) -> Team {
    let mut d = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..options
    });
    d.stop();
    admin_local(&d, &["user", "add", ADMIN]);
    admin_local(
        &d,
        &["role", "bind", "--user", ADMIN, "--role", "admin", "--namespace", "*"],
    );
    let admin_token = admin_local(&d, &["token", "create", "--user", ADMIN, "--name", "bootstrap"]);
    d.restart();
    let mut tokens = HashMap::from([(ADMIN, admin_token.clone())]);
    for (email, role, ns) in [
        (VIEWER, "viewer", "test"),
        (OPERATOR, "operator", "test"),
        (OUTSIDER, "operator", "console"),
        (NS_ADMIN, "admin", "test"),
    ] {
        admin_remote(&d, &admin_token, &["user", "add", email]);
        admin_remote(
            &d,
            &admin_token,
            &["role", "bind", "--user", email, "--role", role, "--namespace", ns],
        );
        let token = admin_remote(&d, &admin_token, &["token", "create", "--user", email]);
        assert!(token.starts_with("tg_"), "{token}");
        tokens.insert(email, token);
    }
    Team { d, tokens }
}

pub fn team() -> Team {
    team_with(DaemonOptions::default())
}

/// A gRPC request carrying `authorization: Bearer <token>` (or no header at all).
pub fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("token is header-safe"),
        );
    }
    r
}

pub async fn channel(d: &Daemon) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(d.server())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to tollgated")
}
