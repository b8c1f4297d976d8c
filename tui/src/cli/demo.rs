//! `tollgate demo`: an embedded daemon on a temporary data dir, the example flows, a few paused
//! executions, then the console. Needs the `embedded-daemon` feature (on by default); without it
//! the console depends on tollgate-proto only and the demo says what to run instead.

use std::path::PathBuf;

use clap::Args;

#[cfg(feature = "embedded-daemon")]
mod embedded;
#[cfg(feature = "embedded-daemon")]
pub mod sinks;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep state here instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory of flows to load (default: ./flows, else the flows shipped with the source).
    #[arg(long)]
    pub flows: Option<PathBuf>,
    /// Set everything up, print the address, and wait for ctrl-c instead of opening the console.
    #[arg(long)]
    pub no_console: bool,
}

#[cfg(feature = "embedded-daemon")]
pub async fn run(a: &DemoArgs) -> anyhow::Result<()> {
    embedded::run(a).await
}

#[cfg(not(feature = "embedded-daemon"))]
pub async fn run(_: &DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this tollgate was built without the embedded daemon (feature `embedded-daemon`): run `tollgated serve --flows flows/ --insecure-no-auth`, then `tollgate`; or rebuild with default features"
    )
}
