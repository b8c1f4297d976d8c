//! Taking over and giving back the terminal: raw mode and the alternate screen on entry, and
//! restoration on every way out (normal return via the guard, panic via ratatui's hook).

use ratatui::DefaultTerminal;

/// Restores the terminal when dropped.
pub struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Enters raw mode and the alternate screen; installs a panic hook that restores first.
pub fn enter() -> std::io::Result<(DefaultTerminal, Restore)> {
    let terminal = ratatui::try_init()?;
    Ok((terminal, Restore))
}

/// Completes on SIGTERM or SIGHUP (an SSH session closing), so the terminal is restored and the
/// process exits cleanly. Ctrl-c arrives as a key in raw mode and is handled as `Quit`.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
