//! Fires durable timers when they fall due, including those that fell due while the daemon was down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::ids::now_ms;
use super::writer::Command;
use crate::store::Store;

/// Longest sleep between checks, so a clock change cannot delay a timer for long.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Pause before sending again timers the writer left because another daemon held them.
const SKIPPED_PAUSE: Duration = Duration::from_millis(20);

pub async fn run_timers(store: Store, commands: std::sync::mpsc::Sender<Command>, wake: Arc<Notify>) {
    // The due timers sent last: on a shared database the writer leaves a timer whose execution
    // another daemon's batch holds (it may be firing that very timer), so the same timers may
    // come back due at once; they are sent again only after a short pause, not in a busy loop.
    let mut sent: Vec<crate::store::TimerKey> = Vec::new();
    loop {
        let now = now_ms();
        let store2 = store.clone();
        let due = tokio::task::spawn_blocking(move || -> Result<(Vec<_>, Option<crate::store::TimerKey>), String> {
            let r = store2.read().map_err(|e| e.to_string())?;
            let due = r.due_timers(now, 1000).map_err(|e| e.to_string())?;
            let next = r.next_timer().map_err(|e| e.to_string())?;
            Ok((due, next))
        })
        .await;
        let (due, next) = match due {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read timers");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        if !due.is_empty() {
            if due == sent {
                tokio::time::sleep(SKIPPED_PAUSE).await;
            }
            sent = due.clone();
            let (done, wait) = oneshot::channel();
            if commands.send(Command::Timers { timers: due, done }).is_err() {
                return;
            }
            // Wait until the writer has applied (and deleted) them before looking again.
            let _ = wait.await;
            continue;
        }
        sent.clear();
        let sleep = match next {
            Some(t) => {
                // Says which timer this daemon waits for: on a shared database, whether a timer
                // set through another daemon was seen before it fell due (tests/postgres.rs).
                tracing::debug!(execution = %t.execution_id, in_ms = t.due_ms - now, "next timer");
                Duration::from_millis((t.due_ms - now).max(0) as u64).min(MAX_SLEEP)
            }
            None => MAX_SLEEP,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {}
        }
    }
}
