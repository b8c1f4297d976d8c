//! The async side of HTTP triggers: sends a due poll's request (the Request task's code, with
//! non-2xx answers kept), renders `responseCondition` with `response`, and tells the writer when
//! it held. A failed request is logged and waits for the next poll, as in Kestra.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::writer::Command;
use crate::flow::{HttpTrigger, Task, TaskCommon, TaskKind};
use crate::tasks::{Job, TaskServices};

/// A poll to send: which trigger of which flow revision.
#[derive(Debug, Clone)]
pub struct HttpPoll {
    pub namespace: String,
    pub flow_id: String,
    pub revision: u32,
    pub trigger_id: String,
    pub trigger: HttpTrigger,
}

/// A poll whose condition held, with the response as the execution's `trigger` variables.
#[derive(Debug, Clone)]
pub struct PollResponse {
    pub poll: HttpPoll,
    pub trigger: Value,
}

/// Receives polls and sends each in its own tokio task.
pub async fn run_polls(
    mut rx: mpsc::UnboundedReceiver<HttpPoll>,
    commands: std::sync::mpsc::Sender<Command>,
    services: Arc<TaskServices>,
) {
    while let Some(poll) = rx.recv().await {
        let commands = commands.clone();
        let services = services.clone();
        tokio::spawn(async move {
            let flow = format!("{}.{}", poll.namespace, poll.flow_id);
            match poll_once(&poll, &services).await {
                Ok(Some(trigger)) => {
                    let _ = commands.send(Command::HttpPollFired(Box::new(PollResponse { poll, trigger })));
                }
                Ok(None) => {
                    tracing::debug!(flow = %flow, trigger = %poll.trigger_id, "HTTP trigger condition did not hold")
                }
                Err(e) => {
                    tracing::warn!(flow = %flow, trigger = %poll.trigger_id, error = %e, "HTTP trigger poll failed")
                }
            }
        });
    }
}

/// Sends the request; `Some(trigger variables)` when the condition held.
async fn poll_once(poll: &HttpPoll, services: &TaskServices) -> Result<Option<Value>, String> {
    let mut request = poll.trigger.request.clone();
    // The condition decides what a non-2xx answer means, not the request.
    request.allow_failed = true;
    let job = Job {
        execution_id: String::new(),
        namespace: poll.namespace.clone(),
        task_run_id: format!("trigger:{}", poll.trigger_id),
        task: Task {
            id: poll.trigger_id.clone(),
            type_name: crate::flow::types::HTTP_TRIGGER.to_string(),
            common: TaskCommon::default(),
            kind: TaskKind::HttpRequest(request.clone()),
        },
        vars: json!({"flow": {"id": poll.flow_id, "namespace": poll.namespace, "revision": poll.revision}}),
        attempt: 1,
        workdir: None,
    };
    let mut render = crate::tasks::render::TaskRender::new(&job, services);
    let out = crate::tasks::http_request::run(&request, &mut render, services).await?;
    // Kestra's `response.body` and `trigger.body` are the body as text (`json(...)` parses it).
    let body = match out.get("body") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Null) | None => Value::Null,
        Some(other) => Value::String(other.to_string()),
    };
    let code = out.get("code").cloned().unwrap_or(Value::Null);
    let headers = out.get("headers").cloned().unwrap_or(Value::Null);
    let mut vars = job.vars.clone();
    vars["response"] = json!({"statusCode": code, "body": body, "headers": headers});
    let rendered = services
        .renderer
        .render(
            &poll.trigger.response_condition,
            &vars,
            services.expr.as_ref(),
            &poll.namespace,
            "",
        )
        .map_err(|e| format!("cannot render `responseCondition`: {e}"))?;
    if !truthy(rendered.text.trim()) {
        return Ok(None);
    }
    // encryptBody: the body is kept sealed in the store (clear only while templates render).
    let body = if poll.trigger.encrypt_body {
        crate::secrets::seal_value(&body)
    } else {
        body
    };
    Ok(Some(json!({
        "uri": out.get("uri").cloned().unwrap_or(Value::Null),
        "code": code,
        "headers": headers,
        "body": body,
    })))
}

/// Kestra's TruthUtils: everything but `false`, `0`, `-0`, `null` and the empty string.
fn truthy(text: &str) -> bool {
    !matches!(text, "" | "false" | "0" | "-0" | "null" | "0.0")
}

#[cfg(test)]
mod tests {
    use super::truthy;

    #[test]
    fn truthiness_is_kestras() {
        for falsy in ["", "false", "0", "-0", "null"] {
            assert!(!truthy(falsy), "{falsy}");
        }
        for t in ["true", "1", "yes", "200"] {
            assert!(truthy(t), "{t}");
        }
    }
}
