//! Template rendering: minijinja behind a front end that accepts the Pebble syntax Kestra flows use.
//!
//! INTERFACE (stable, used by engine/ and flow/): `Renderer::render`, `Renderer::check_syntax`,
//! `ExprServices`, `Rendered`, `ExprError`. The implementation below is a placeholder to be
//! replaced by the Pebble front end.

use serde_json::Value;

/// Lookups a template may need from the running daemon (secrets, KV store, links).
pub trait ExprServices: Send + Sync {
    /// Value of secret `name` visible from `namespace`, already decoded.
    fn secret(&self, namespace: &str, name: &str) -> Option<String>;
    /// Value of KV `key` in `namespace`.
    fn kv(&self, namespace: &str, key: &str) -> Option<Value>;
    /// Link a person can open to decide on `execution_id`.
    fn app_link(&self, namespace: &str, execution_id: &str, app_id: Option<&str>) -> String;
}

/// Services that know no secrets, no KV and no external URL (validation, tests).
pub struct NoServices;

impl ExprServices for NoServices {
    fn secret(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
    fn kv(&self, _namespace: &str, _key: &str) -> Option<Value> {
        None
    }
    fn app_link(&self, _namespace: &str, execution_id: &str, _app_id: Option<&str>) -> String {
        format!("/ui/executions/{execution_id}")
    }
}

/// Result of rendering: the text, plus the secret values it used so callers can mask them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub secrets: Vec<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ExprError {
    #[error("syntax error in `{expression}`: {message}")]
    Syntax { expression: String, message: String },
    #[error("undefined variable `{name}` in `{expression}`")]
    Undefined { name: String, expression: String },
    #[error("error rendering `{expression}`: {message}")]
    Render { expression: String, message: String },
}

/// Renders templates; built once at daemon start.
pub struct Renderer {
    env: minijinja::Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        Renderer { env }
    }

    /// Renders `template` with `vars` (the execution context: flow, execution, inputs, outputs, ...).
    /// `namespace` and `execution_id` scope `secret()`, `kv()` and `appLink()`.
    pub fn render(
        &self,
        template: &str,
        vars: &Value,
        _services: &dyn ExprServices,
        _namespace: &str,
        _execution_id: &str,
    ) -> Result<Rendered, ExprError> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(Rendered { text: template.to_string(), secrets: vec![] });
        }
        let text = self.env.render_str(template, vars).map_err(|e| ExprError::Render {
            expression: template.to_string(),
            message: e.to_string(),
        })?;
        Ok(Rendered { text, secrets: vec![] })
    }

    /// Checks that `template` parses, without rendering it.
    pub fn check_syntax(&self, template: &str) -> Result<(), ExprError> {
        self.env.template_from_str(template).map(|_| ()).map_err(|e| ExprError::Syntax {
            expression: template.to_string(),
            message: e.to_string(),
        })
    }
}
