//! Tasks that talk to the outside world, one module per task type. They run off the writer
//! thread as jobs; each gets its rendered context and returns outputs or an error message.
//!
//! INTERFACE: `TaskServices`, `run(&Job, &TaskServices) -> JobOutcome`.

use std::sync::Arc;

use crate::engine::advance::Job;
use crate::engine::writer::JobOutcome;
use crate::expr::{ExprServices, Renderer};

/// What tasks need from the daemon.
pub struct TaskServices {
    pub renderer: Renderer,
    pub expr: Arc<dyn ExprServices>,
}

impl TaskServices {
    pub fn new(expr: Arc<dyn ExprServices>) -> TaskServices {
        TaskServices { renderer: Renderer::new(), expr }
    }
}

/// Runs one job to its outcome; never panics on user data.
pub async fn run(job: &Job, _services: &TaskServices) -> JobOutcome {
    JobOutcome {
        result: Err(format!("task type `{}` is not supported by this build of tollgated yet", job.task.type_name)),
        logs: vec![],
    }
}
