//! `completions SHELL` and `man`: generated from the same clap definition as the parser, so they
//! can never list a flag the command does not accept.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "tollgate", &mut out);
    out.flush()?;
    Ok(())
}

/// Writes the man page (roff, section 1) to stdout: `tollgate man > tollgate.1`.
pub fn man() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    out.flush()?;
    Ok(())
}
