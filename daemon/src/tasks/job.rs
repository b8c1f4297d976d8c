//! The work a task runner receives from the engine and the outcome it reports back: the contract
//! between the two, owned by neither's internals.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::flow::Task;

/// Work for the async task runner, started after the transaction commits.
#[derive(Debug, Clone)]
pub struct Job {
    pub execution_id: String,
    pub namespace: String,
    pub task_run_id: String,
    pub task: Task,
    pub vars: Value,
    pub attempt: u32,
    /// Set for a task inside a WorkingDirectory: the directory it shares with its siblings.
    pub workdir: Option<WorkDir>,
}

/// The shared directory of a WorkingDirectory task run: named after that run, created (with
/// its `inputFiles`) by the first script task that needs it, removed by the engine when the
/// WorkingDirectory ends.
#[derive(Debug, Clone)]
pub struct WorkDir {
    pub task_run_id: String,
    pub input_files: Option<Value>,
    /// The WorkingDirectory's `cache`, if it has one.
    pub cache: Option<CacheSpec>,
}

/// Where a WorkingDirectory's cache is kept and for how long it is used.
#[derive(Debug, Clone)]
pub struct CacheSpec {
    /// Its owner in the store's files (see `engine::files::cache_owner`).
    pub owner: String,
    pub ttl_ms: Option<i64>,
    pub patterns: Vec<String>,
}

impl WorkDir {
    /// The directory's name under the daemon's scripts directory.
    pub fn dir_name(task_run_id: &str) -> String {
        format!("wd-{task_run_id}")
    }
}

/// What an async task produced: outputs and log lines, or an error message.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub result: std::result::Result<Map<String, Value>, String>,
    pub logs: Vec<(String, String)>,
    /// A successful result ends the task run WARNING rather than SUCCESS.
    pub warning: bool,
    /// Files to store in the execution's storage with a successful result: (path, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// A WorkingDirectory's cache to keep: (owner, archive).
    pub cache: Option<(String, Vec<u8>)>,
    /// Kestra's task metrics (script tasks print them), kept on the task run.
    pub metrics: Vec<Value>,
}

impl JobOutcome {
    /// The outcome of a task the writer applies itself (Resume, Toggle): one INFO line saying
    /// what it did, or the failure's message; no outputs.
    pub fn applied(outcome: std::result::Result<String, String>) -> JobOutcome {
        let (result, logs) = match outcome {
            Ok(message) => (Ok(Map::new()), vec![("INFO".to_string(), message)]),
            Err(message) => (Err(message), vec![]),
        };
        JobOutcome {
            result,
            logs,
            warning: false,
            files: Vec::new(),
            cache: None,
            metrics: Vec::new(),
        }
    }
}

/// Where a running job appends log lines while it runs (already masked), so that they are
/// stored and reach live log readers before the job ends.
pub trait LiveLog: Send + Sync {
    /// Appends lines `(level, message)` to the job's task run; dropped once the run has ended.
    fn append(&self, lines: Vec<(String, String)>);
}

/// What a job gets from the engine besides its work: a live log and a stop signal.
#[derive(Clone)]
pub struct JobContext {
    pub live: Arc<dyn LiveLog>,
    /// Turns true when the job's task run ended without it (execution killed): stop now.
    pub cancel: tokio::sync::watch::Receiver<bool>,
}
