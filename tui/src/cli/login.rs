//! `login`, `logout`: check a token against the daemon and keep it for later commands.

use std::io::Read;

use anyhow::bail;
use clap::Args;

use super::credentials::{self, Stored};
use super::executions::status_message;
use crate::client::{Connection, DEFAULT_SERVER};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Read the token from standard input instead of a hidden prompt.
    #[arg(long)]
    pub token_stdin: bool,
}

fn server(cli: &super::Cli) -> String {
    cli.server
        .clone()
        .or_else(credentials::default_server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_string())
}

pub async fn login(cli: &super::Cli, args: &LoginArgs) -> anyhow::Result<()> {
    let server = server(cli);
    let token = if args.token_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim().to_string()
    } else {
        rpassword::prompt_password(format!("Token for {server}: "))?
            .trim()
            .to_string()
    };
    if token.is_empty() {
        bail!("no token given");
    }
    let mut clients = Connection {
        server: server.clone(),
        token: Some(token.clone()),
        ca_cert: cli.ca_cert.clone(),
    }
    .connect()
    .await?;
    let who = clients
        .auth
        .whoami(tollgate_proto::v1::WhoamiRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("the daemon refused this token: {}", status_message(&s)))?
        .into_inner();
    match credentials::store(&server, &token)? {
        Stored::Keyring => println!("logged in to {server} as {} (token kept in the OS keyring)", who.user),
        Stored::File(p) => println!(
            "logged in to {server} as {} (no keyring service here: token kept in {}, mode 0600)",
            who.user,
            p.display()
        ),
    }
    Ok(())
}

pub fn logout(cli: &super::Cli) -> anyhow::Result<()> {
    let server = server(cli);
    if credentials::forget(&server)? {
        println!("logged out of {server}");
    } else {
        println!("no stored token for {server}");
    }
    Ok(())
}
