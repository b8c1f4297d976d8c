//! Runs tasks that wait on the outside world (HTTP, webhooks, mail, KV) off the writer thread,
//! and reports their outcome back to it.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::advance::Job;
use super::writer::{Command, JobOutcome};
use crate::flow::{Task, TaskKind};
use crate::tasks::TaskServices;

/// Whether `task` runs as an async job (and so is re-run after a crash while RUNNING).
pub fn is_job(task: &Task) -> bool {
    matches!(
        task.kind,
        TaskKind::HttpRequest(_)
            | TaskKind::SlackWebhook(_)
            | TaskKind::TeamsWebhook(_)
            | TaskKind::MailSend(_)
            | TaskKind::KvSet(_)
            | TaskKind::KvGet(_)
    )
}

/// Receives jobs and runs each in its own tokio task.
pub async fn run_jobs(
    mut rx: mpsc::UnboundedReceiver<Job>,
    commands: std::sync::mpsc::Sender<Command>,
    services: Arc<TaskServices>,
) {
    while let Some(job) = rx.recv().await {
        let commands = commands.clone();
        let services = services.clone();
        tokio::spawn(async move {
            let outcome: JobOutcome = crate::tasks::run(&job, &services).await;
            let _ = commands.send(Command::JobDone {
                execution_id: job.execution_id.clone(),
                task_run_id: job.task_run_id.clone(),
                attempt: job.attempt,
                outcome,
            });
        });
    }
}
