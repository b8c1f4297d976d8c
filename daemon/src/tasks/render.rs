//! Rendering task properties with the job's context, remembering the secrets used.

use serde_json::{Map, Value};

use super::Job;
use super::TaskServices;

pub struct TaskRender<'a> {
    job: &'a Job,
    services: &'a TaskServices,
    secrets: Vec<String>,
    logs: Vec<(String, String)>,
    /// The job's variables with task-specific additions (`workingDir`), once there are any.
    vars: Option<Value>,
}

impl<'a> TaskRender<'a> {
    pub fn new(job: &'a Job, services: &'a TaskServices) -> Self {
        TaskRender {
            job,
            services,
            secrets: Vec::new(),
            logs: Vec::new(),
            vars: None,
        }
    }

    /// Renders one property; errors name the property.
    pub fn text(&mut self, property: &str, template: &str) -> Result<String, String> {
        let r = self
            .services
            .renderer
            .render(
                template,
                self.vars.as_ref().unwrap_or(&self.job.vars),
                self.services.expr.as_ref(),
                &self.job.namespace,
                &self.job.execution_id,
            )
            .map_err(|e| format!("cannot render `{property}`: {e}"))?;
        for s in r.secrets {
            if !s.is_empty() && !self.secrets.contains(&s) {
                self.secrets.push(s);
            }
        }
        Ok(r.text)
    }

    pub fn opt(&mut self, property: &str, template: &Option<String>) -> Result<Option<String>, String> {
        template.as_ref().map(|t| self.text(property, t)).transpose()
    }

    /// Renders every string in a JSON value.
    pub fn value(&mut self, property: &str, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => Value::String(self.text(property, s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.value(property, i))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.value(&format!("{property}.{k}"), v)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Adds a top-level variable for the templates rendered from now on.
    pub fn set_var(&mut self, name: &str, value: Value) {
        let vars = self.vars.get_or_insert_with(|| self.job.vars.clone());
        if let Value::Object(m) = vars {
            m.insert(name.to_string(), value);
        }
    }

    /// Id of the task run the job is for.
    /// The job being rendered for.
    pub fn job(&self) -> &Job {
        self.job
    }

    pub fn task_run_id(&self) -> &str {
        &self.job.task_run_id
    }

    pub fn log(&mut self, level: &str, message: impl Into<String>) {
        self.logs.push((level.to_string(), message.into()));
    }

    /// Namespace of the execution the task runs in.
    pub fn namespace(&self) -> &str {
        &self.job.namespace
    }

    /// The template context the task renders with.
    pub fn vars(&self) -> &Value {
        &self.job.vars
    }

    /// Id of the execution the task runs in.
    pub fn execution_id(&self) -> &str {
        &self.job.execution_id
    }

    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn take_logs(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.logs)
    }
}

/// The first `n` characters of a body, for error messages.
pub fn excerpt(body: &str, n: usize) -> String {
    let flat: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() > n {
        format!("{}...", flat.chars().take(n).collect::<String>())
    } else {
        flat
    }
}
