//! The interactive console (ratatui + crossterm).
//!
//! INTERFACE: `run(clients, options) -> anyhow::Result<()>` takes over the terminal until the user quits.

use crate::client::Clients;

/// How the console was started.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// Shown in the header.
    pub user: Option<String>,
}

pub async fn run(_clients: Clients, _options: ConsoleOptions) -> anyhow::Result<()> {
    anyhow::bail!("the console is not built yet")
}
