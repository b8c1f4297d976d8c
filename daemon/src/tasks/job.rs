//! The work a task runner receives from the engine and the outcome it reports back: the contract
//! between the two, owned by neither's internals.

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
}

/// What an async task produced: outputs and log lines, or an error message.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub result: std::result::Result<Map<String, Value>, String>,
    pub logs: Vec<(String, String)>,
}
