//! `tollgated admin`: users, groups, role bindings and tokens.

use clap::Args;

#[derive(Args, Debug)]
pub struct AdminArgs {}

pub fn run(_args: AdminArgs) -> anyhow::Result<()> {
    anyhow::bail!("admin commands are not available yet")
}
