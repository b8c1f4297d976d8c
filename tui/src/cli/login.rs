//! `login`, `logout`: store the user's token in the OS keyring (or a 0600 file on SSH hosts).

use clap::Args;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Read the token from standard input instead of a hidden prompt.
    #[arg(long)]
    pub token_stdin: bool,
}

pub async fn login(_cli: &super::Cli, _args: &LoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("login is not available yet")
}

pub fn logout(_cli: &super::Cli) -> anyhow::Result<()> {
    anyhow::bail!("logout is not available yet")
}
