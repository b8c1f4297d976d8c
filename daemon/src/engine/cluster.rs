//! Several daemons on one PostgreSQL database (nothing of this runs on redb):
//!
//! - **Change feed.** Every commit records which executions it touched; each daemon reads the
//!   rows other daemons wrote and re-reads those executions into its own event stream, so Watch
//!   and TailLogs (and the jobs it runs, which stop when their task run ends) see changes made
//!   through another daemon. A commit's `NOTIFY` wakes the reader at once; polling every
//!   200 ms stays as the safety net, so a lost notification only delays.
//! - **Heartbeats and leases.** A daemon that dispatches task runs of an execution holds a lease
//!   on it (written in the same transaction). Each daemon heart-beats; when one is not seen for
//!   [`LEASE`], a survivor moves its leases to itself under the write lock (exactly one does)
//!   and recovers those executions: their RUNNING task runs run again, the same at-least-once
//!   rule as a restart on redb.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::execution::Execution;
use super::jobs::RunningJobs;
use super::writer::Command;
use crate::store::Store;
use crate::store::postgres::{AUTH_CHANGED, FLOWS_CHANGED, PgStore, TIMERS_ADDED};

/// How often the change feed is read when no notification (`LISTEN`) came first.
const POLL: Duration = Duration::from_millis(200);
/// The least time between two reads of the feed: under load every commit of every other daemon
/// notifies, and one read takes in all of them.
const MIN_GAP: Duration = Duration::from_millis(20);

/// The poll interval: `TOLLGATE_CHANGE_POLL_MS` (with notifications working, polling is only
/// the safety net), else [`POLL`].
fn poll_interval() -> Duration {
    std::env::var("TOLLGATE_CHANGE_POLL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(POLL)
}
/// How often a daemon says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// A daemon not seen for this long has stopped; its task runs are taken over.
pub const LEASE: Duration = Duration::from_secs(8);
/// Change rows are kept this long (streams only need the last seconds).
const KEEP_CHANGES: Duration = Duration::from_secs(600);

pub(super) struct Cluster {
    pub pg: Arc<PgStore>,
    pub store: Store,
    pub events: broadcast::Sender<Arc<Execution>>,
    pub running: Arc<RunningJobs>,
    pub flows: Arc<super::flows::FlowRegistry>,
    pub commands: std::sync::mpsc::Sender<Command>,
    /// The timer loop's wake-up: another daemon's change may have added a timer this one
    /// should also watch (if that daemon stops, its timers still fire here).
    pub timer_wake: Arc<tokio::sync::Notify>,
    /// Told when another daemon changed users, groups, roles or tokens.
    pub rights_elsewhere: tokio::sync::watch::Sender<u64>,
}

impl Cluster {
    pub fn start(self) {
        let me = Arc::new(self);
        tokio::spawn(me.clone().follow());
        tokio::spawn(me.leases());
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PgStore, &Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Option<T> {
        let (pg, store) = (self.pg.clone(), self.store.clone());
        match tokio::task::spawn_blocking(move || f(&pg, &store)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster bookkeeping failed; retrying");
                None
            }
            Err(_) => None,
        }
    }

    /// Feeds changes committed by other daemons into this daemon's event stream.
    async fn follow(self: Arc<Self>) {
        let mut after = loop {
            if let Some(seq) = self.blocking(|pg, _| pg.last_change()).await {
                break seq;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let poll = poll_interval();
        let wake = Arc::new(tokio::sync::Notify::new());
        self.pg.listen_for_changes(wake.clone());
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = wake.notified() => {
                    tokio::time::sleep_until(started + MIN_GAP).await;
                }
            }
            // Another daemon's change matters here only to a Watch or TailLogs stream (they
            // subscribe to the events) and to a job this daemon runs for that execution: with
            // neither, the execution is not read again (on a busy cluster, re-reading every
            // execution every other daemon changed costs each daemon as much as the changes).
            let watched = self.events.receiver_count() > 0;
            let running = self.running.clone();
            let changed = self
                .blocking(move |pg, store| {
                    let rows = pg.changes_since(after)?;
                    let last = rows.last().map(|(seq, _)| *seq).unwrap_or(after);
                    let mut ids: Vec<String> = rows.into_iter().flat_map(|(_, ids)| ids).collect();
                    ids.sort();
                    ids.dedup();
                    let flows = ids.iter().any(|i| i == FLOWS_CHANGED);
                    let rights = ids.iter().any(|i| i == AUTH_CHANGED);
                    let timers = ids.iter().any(|i| i == TIMERS_ADDED);
                    let r = store.read()?;
                    let mut execs = Vec::new();
                    // Markers (`*flows`, `*auth`) are never execution ids.
                    for id in ids
                        .iter()
                        .filter(|i| !i.starts_with('*') && (watched || running.holds(i)))
                    {
                        if let Some(e) = r.execution::<Execution>(id)? {
                            execs.push(e);
                        }
                    }
                    Ok((last, flows, rights, timers, execs))
                })
                .await;
            let Some((last, flows, rights, timers, execs)) = changed else {
                continue;
            };
            if timers {
                // Another daemon added a timer: this one watches it too (it fires here if that
                // daemon stops). Other changes leave the timer loop asleep.
                self.timer_wake.notify_one();
            }
            after = last;
            if flows {
                self.flows.changed_elsewhere();
            }
            if rights {
                // A token revoked through another daemon must not keep working here: remembered
                // principals are read again, and open streams re-check their caller.
                crate::auth::bump_rights_generation();
                self.rights_elsewhere.send_modify(|n| *n = n.wrapping_add(1));
            }
            for exec in execs {
                self.running.changed(&exec);
                let _ = self.events.send(Arc::new(exec));
            }
        }
    }

    /// Heart-beats, and takes over the task runs of daemons that stopped.
    async fn leases(self: Arc<Self>) {
        // First claim in-flight executions no daemon holds (copied from redb, say).
        let claimed = self
            .blocking(|_, store| {
                let r = store.read()?;
                let mut ids = Vec::new();
                for state in [
                    super::State::Created,
                    super::State::Running,
                    super::State::Killing,
                    super::State::Restarted,
                ] {
                    ids.extend(r.execution_ids_in_state(state)?);
                }
                drop(r);
                store.write(|w| w.claim_unleased(ids))
            })
            .await
            .unwrap_or_default();
        for id in claimed {
            let _ = self.commands.send(Command::Recover { id, from: None });
        }
        let mut ticks = 0u64;
        loop {
            let _ = self.blocking(|pg, _| pg.heartbeat("")).await;
            // Row batches pay off only when other daemons write too (see `PgStore::row_batches`).
            let _ = self.blocking(|pg, _| pg.note_peers(LEASE)).await;
            let dead = self
                .blocking(|pg, _| pg.expired_daemons(LEASE))
                .await
                .unwrap_or_default();
            for d in dead {
                let taken = {
                    let d = d.clone();
                    self.blocking(move |_, store| store.write(|w| w.take_over_leases(&d)))
                        .await
                };
                let Some(ids) = taken else { continue };
                if !ids.is_empty() {
                    tracing::warn!(daemon = %d, executions = ids.len(), "a daemon stopped; taking over its task runs");
                }
                for id in ids {
                    let _ = self.commands.send(Command::Recover {
                        id,
                        from: Some(d.clone()),
                    });
                }
                let _ = self.blocking(move |pg, _| pg.forget_daemon(&d)).await;
            }
            ticks += 1;
            if ticks.is_multiple_of(150) {
                let _ = self.blocking(|pg, _| pg.prune_changes(KEEP_CHANGES)).await;
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
    }
}
