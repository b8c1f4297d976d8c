//! `audit [--execution ID] [--user U] [--verify]`.

use clap::Args;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only records of this execution.
    #[arg(long)]
    pub execution: Option<String>,
    /// Only records of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Verify the hash chain instead of listing.
    #[arg(long)]
    pub verify: bool,
}

pub async fn run(_cli: &super::Cli, _c: &mut crate::client::Clients, _args: &AuditArgs) -> anyhow::Result<()> {
    anyhow::bail!("audit is not available yet")
}
