//! Runs tasks that wait on the outside world (HTTP, webhooks, mail, KV, scripts) off the writer
//! thread, and reports their outcome back to it. A running job appends log lines through the
//! writer as it goes, and is told to stop when its task run ends without it (a kill).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::advance::Job;
use super::execution::Execution;
use super::state::State;
use super::writer::{Command, JobOutcome};
use crate::flow::{Task, TaskKind};
use crate::tasks::{JobContext, LiveLog, TaskServices};

/// Whether `task` runs as an async job (and so is re-run after a crash while RUNNING).
pub fn is_job(task: &Task) -> bool {
    matches!(
        task.kind,
        TaskKind::HttpRequest(_)
            | TaskKind::SlackWebhook(_)
            | TaskKind::TeamsWebhook(_)
            | TaskKind::DiscordWebhook(_)
            | TaskKind::MailSend(_)
            | TaskKind::KvSet(_)
            | TaskKind::KvGet(_)
            | TaskKind::KvDelete(_)
            | TaskKind::KvGetKeys(_)
            | TaskKind::State(_)
            | TaskKind::Script(_)
            | TaskKind::LocalFiles(_)
    )
}

/// The jobs of one execution that run now: task run id and the switch that stops it.
type Runs = Vec<(String, watch::Sender<bool>)>;

/// The jobs running now, by execution, each with the switch that stops it.
#[derive(Default)]
pub struct RunningJobs {
    by_execution: Mutex<HashMap<String, Runs>>,
    count: AtomicUsize,
}

impl RunningJobs {
    /// Called by the writer before it hands the job on, so a kill committed later always finds it.
    pub fn register(&self, execution_id: &str, task_run_id: &str) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        let mut map = self.by_execution.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(execution_id.to_string())
            .or_default()
            .push((task_run_id.to_string(), tx));
        self.count.fetch_add(1, Ordering::Relaxed);
        rx
    }

    fn unregister(&self, execution_id: &str, task_run_id: &str) {
        let mut map = self.by_execution.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(runs) = map.get_mut(execution_id) {
            let before = runs.len();
            runs.retain(|(id, _)| id != task_run_id);
            self.count.fetch_sub(before - runs.len(), Ordering::Relaxed);
            if runs.is_empty() {
                map.remove(execution_id);
            }
        }
    }

    /// Called with every committed change: stops the jobs whose task run is no longer RUNNING.
    /// Whether this daemon runs a job of execution `id`.
    pub fn holds(&self, id: &str) -> bool {
        self.count.load(Ordering::Relaxed) > 0
            && self
                .by_execution
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id)
    }

    pub fn changed(&self, exec: &Execution) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let map = self.by_execution.lock().unwrap_or_else(|p| p.into_inner());
        let Some(runs) = map.get(&exec.id) else { return };
        for (run_id, stop) in runs {
            let running = !exec.state.is_terminal()
                && exec
                    .task_runs
                    .iter()
                    .any(|r| &r.id == run_id && r.state == State::Running);
            if !running {
                stop.send_replace(true);
            }
        }
    }
}

/// A job's live log: lines go to the writer as [`Command::JobLogs`].
struct WriterLog {
    commands: std::sync::mpsc::Sender<Command>,
    execution_id: String,
    task_run_id: String,
}

impl LiveLog for WriterLog {
    fn append(&self, lines: Vec<(String, String)>) {
        let _ = self.commands.send(Command::JobLogs {
            execution_id: self.execution_id.clone(),
            task_run_id: self.task_run_id.clone(),
            lines,
        });
    }
}

/// Receives jobs and runs each in its own tokio task.
pub async fn run_jobs(
    mut rx: mpsc::UnboundedReceiver<(Job, watch::Receiver<bool>)>,
    commands: std::sync::mpsc::Sender<Command>,
    services: Arc<TaskServices>,
    running: Arc<RunningJobs>,
) {
    while let Some((job, cancel)) = rx.recv().await {
        let commands = commands.clone();
        let services = services.clone();
        let running = running.clone();
        tokio::spawn(async move {
            let ctx = JobContext {
                live: Arc::new(WriterLog {
                    commands: commands.clone(),
                    execution_id: job.execution_id.clone(),
                    task_run_id: job.task_run_id.clone(),
                }),
                cancel,
            };
            let outcome: JobOutcome = crate::tasks::run(&job, &services, &ctx).await;
            running.unregister(&job.execution_id, &job.task_run_id);
            let _ = commands.send(Command::JobDone {
                execution_id: job.execution_id.clone(),
                task_run_id: job.task_run_id.clone(),
                attempt: job.attempt,
                outcome,
            });
        });
    }
}
