//! Tasks that talk to the outside world, one module per task type. They run off the writer
//! thread as jobs; each gets its rendered context and returns outputs or an error message.

pub mod files;
pub(crate) mod http_request;
mod job;
mod kv_task;
mod local_files;
mod mail_send;
pub(crate) mod render;
pub mod script;
mod state_task;
mod webhook;

use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;

use crate::expr::{ExprServices, Renderer};
use crate::flow::TaskKind;
use crate::masking::{mask, mask_value};
use crate::store::KvEntry;

pub use job::{CacheSpec, Job, JobContext, JobOutcome, LiveLog, WorkDir};
pub use render::TaskRender;

/// A KV entry a flow writes (KV Set), with what its audit record names.
#[derive(Debug, Clone)]
pub struct KvWrite {
    pub namespace: String,
    pub key: String,
    pub entry: KvEntry,
    pub overwrite: bool,
    /// The execution that writes it.
    pub execution_id: String,
}

/// The KV store as the KV tasks see it: reads from a snapshot, writes through the engine's
/// writer (in one transaction with their audit record), like every other change.
pub trait KvAccess: Send + Sync {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, String>;
    /// The live keys of a namespace, sorted.
    fn keys(&self, namespace: &str) -> Result<Vec<String>, String>;
    fn set(&self, write: KvWrite) -> BoxFuture<'static, Result<(), String>>;
    /// Deletes an entry; whether there was one.
    fn delete(&self, namespace: &str, key: &str, execution_id: &str) -> BoxFuture<'static, Result<bool, String>>;
}

/// What tasks need from the daemon.
pub struct TaskServices {
    pub renderer: Renderer,
    pub expr: Arc<dyn ExprServices>,
    pub http: reqwest::Client,
    /// The KV store for the KV tasks, set by the engine when it starts; unset, they fail with a
    /// clear message.
    pub kv: OnceLock<Arc<dyn KvAccess>>,
    /// Where script tasks get their working directories (under the data directory), set when
    /// the daemon starts; unset, script tasks fail with a clear message.
    pub scripts_dir: OnceLock<std::path::PathBuf>,
}

impl TaskServices {
    pub fn new(expr: Arc<dyn ExprServices>) -> TaskServices {
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        TaskServices {
            renderer: Renderer::new(),
            expr,
            http,
            kv: OnceLock::new(),
            scripts_dir: OnceLock::new(),
        }
    }
}

/// In the job that collects a WorkingDirectory's `outputFiles`: the state its tasks ended with.
pub const LIST_STATE_VAR: &str = "_tollgateListState";

/// Runs one job to its outcome; never panics on user data. Secrets rendered for the task are
/// masked in every log line, error and output it returns (and in what it logs while it runs).
pub async fn run(job: &Job, services: &TaskServices, ctx: &JobContext) -> JobOutcome {
    let mut r = TaskRender::new(job, services);
    // The task's `timeout` (Kestra's, on every runnable task): the work is dropped when it
    // elapses, which cancels it (an HTTP request in flight is aborted), and the run fails.
    let timeout = match r.opt("timeout", &job.task.common.timeout) {
        Ok(Some(text)) => match crate::duration::parse_iso8601(text.trim()) {
            Ok(d) => Ok(Some(d)),
            Err(e) => Err(format!("invalid `timeout` `{text}`: {e}")),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let mut warning = false;
    let mut files = Vec::new();
    let mut cache = None;
    let mut metrics = Vec::new();
    let result = match (timeout, &job.task.kind) {
        (Err(e), _) => Err(e),
        (Ok(_), TaskKind::WorkingDirectory(t)) => {
            local_files::output_files(job, t, &mut r, services).map(|(outputs, stored, kept)| {
                warning = job.vars[LIST_STATE_VAR] == "WARNING";
                files = stored;
                cache = kept;
                outputs
            })
        }
        (Ok(_), TaskKind::LocalFiles(t)) => local_files::run(job, t, &mut r, services).map(|(outputs, stored)| {
            files = stored;
            outputs
        }),
        // A script applies its own `timeout`: it must end the process group, not just stop
        // waiting for it.
        (Ok(_), TaskKind::Script(t)) => script::run(&job.task, t, &mut r, services, ctx, job.workdir.as_ref())
            .await
            .map(|s| {
                warning = s.warning;
                files = s.files;
                metrics = s.metrics;
                s.outputs
            }),
        (Ok(limit), kind) => {
            let work = async {
                match kind {
                    TaskKind::HttpRequest(t) => http_request::run(t, &mut r, services).await,
                    TaskKind::SlackWebhook(t) | TaskKind::TeamsWebhook(t) | TaskKind::DiscordWebhook(t) => {
                        webhook::run(&job.task.id, t, &mut r, services).await
                    }
                    TaskKind::MailSend(t) => mail_send::run(t, &mut r).await,
                    TaskKind::KvSet(t) => kv_task::set(t, &mut r, services).await,
                    TaskKind::KvGet(t) => kv_task::get(t, &mut r, services).await,
                    TaskKind::KvDelete(t) => kv_task::delete(t, &mut r, services).await,
                    TaskKind::KvGetKeys(t) => kv_task::keys(t, &mut r, services).await,
                    TaskKind::State(t) => state_task::run(t, &mut r, services).await,
                    _ => Err(format!("task type `{}` does not run as a job", job.task.type_name)),
                }
            };
            match limit {
                None => work.await,
                Some(d) => match tokio::time::timeout(d, work).await {
                    Ok(res) => res,
                    Err(_) => Err(format!(
                        "Timeout after {}: task `{}` exceeded its `timeout` and was cancelled",
                        crate::duration::format_iso8601(d),
                        job.task.id
                    )),
                },
            }
        }
    };
    let secrets = r.secrets().to_vec();
    let logs = r
        .take_logs()
        .into_iter()
        .map(|(l, m)| (l, mask(&m, &secrets)))
        .collect();
    JobOutcome {
        result: result
            .map(|o| o.into_iter().map(|(k, v)| (k, mask_value(&v, &secrets))).collect())
            .map_err(|e| mask(&e, &secrets)),
        logs,
        warning,
        files,
        cache,
        metrics: metrics.iter().map(|m| mask_value(m, &secrets)).collect(),
    }
}
