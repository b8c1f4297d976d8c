//! Template rendering: minijinja behind a front end that reads the Pebble syntax Kestra flows use.
//!
//! A template goes through three steps:
//! 1. `lexer` splits it into text and `{{ }}` / `{% %}` / `{# #}` blocks with a real tokenizer
//!    (string literals with escapes, `#{…}` interpolation, nested brackets), so quotes and braces
//!    inside strings never end a block early;
//! 2. `parser` reads each block with Pebble's operator precedence (`??`, `???`, `? :`, `is [not]`,
//!    `and`/`or`/`not`, `~`, `..`, `contains`, filters, tests, functions);
//! 3. `translate` writes minijinja source in which every lookup, operator, filter and test is a
//!    call to a Rust helper (`runtime`, `functions`), which gives Pebble's semantics:
//!    - `a ?? b` is `b` when `a` is null or undefined, `a ??? b` only when undefined; nothing on
//!      the left of either (however deep the path: `outputs.x.y.z`) raises an undefined error;
//!    - any other undefined variable is an error naming the missing path ([`ExprError::Undefined`]);
//!    - values print as Kestra prints them: maps and lists as compact JSON, null as nothing,
//!      booleans as `true`/`false`.
//!
//! Pebble rules kept on purpose, since flows are written against them: `not` binds tighter than
//! comparisons (`not a == b` is `(not a) == b`), `~` tighter than `|`, integer division truncates
//! (`7 / 2` is 3), `is defined` is false for null, `| default(x)` also replaces empty text and
//! empty collections, `loop.index` counts from 0, a `{% for %}` over a map yields `{key, value}`
//! entries. Conditions use Pebble's truthiness (null false, numbers non-zero, text non-empty).
//! Additions: `is true` / `is false` (the seed uses them; they also accept the text
//! `"true"`/`"false"`), and dates default to UTC rather than the host's zone.
//!
//! INTERFACE (used by engine/ and flow/): [`Renderer::render`], [`Renderer::check_syntax`],
//! [`Renderer::references`] / [`Renderer::referenced_roots`], [`ExprServices`], [`Rendered`],
//! [`ExprError`].
//!
//! # Limits
//! Templates come from flow authors, so rendering is bounded (see [`limits`]):
//! - a template over [`limits::MAX_TEMPLATE_BYTES`] is refused;
//! - expressions, brackets, string interpolations and tags nest at most [`limits::MAX_NESTING`] deep,
//!   and one expression holds at most [`limits::MAX_OPERATORS`] operators and filters;
//! - every helper call, loop iteration and range item spends one unit of a per-render budget of
//!   [`limits::MAX_FUEL`], filters also one per item of the collections they take and return and
//!   one per 32 bytes of text they produce, so loops over large values cannot run away;
//! - `a..b` / `range()` produce at most [`limits::MAX_RANGE`] items;
//! - no single string built by `~`, `replace`, `join`, … may exceed [`limits::MAX_STRING_BYTES`];
//! - the rendered output is cut off with an error past [`limits::MAX_OUTPUT_BYTES`].
//!
//! Macros, includes and template inheritance are not supported (flows are single templates), so
//! there is no recursion to bound beyond the nesting limit.

mod compiled;
mod date;
mod functions;
mod jq;
mod lexer;
mod parser;
mod runtime;
mod translate;

#[cfg(test)]
mod tests;

use std::io;
use std::sync::Arc;

use base64::Engine as _;
use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

use crate::auth::flow_scope::FlowAccess;
use functions::Lookup;
pub use jq::{run_in_processes as run_jq_in_processes, serve_child as serve_jq_child};
use runtime::{Failure, RT_KEY, Runtime};
pub use translate::VarRef;

/// Bounds on what one template may cost.
pub mod limits {
    /// Largest template accepted, in bytes.
    pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
    /// Deepest nesting of expressions, brackets, interpolations, and of `{% %}` tags.
    pub const MAX_NESTING: usize = 24;
    /// Most operators and filters in one expression: a chain of them is a tree as deep as it is
    /// long, and every later walk of it (checks, compilation, rendering) recurses that deep.
    pub const MAX_OPERATORS: usize = 64;
    /// Budget of one render: helper calls, loop iterations, range items, KiB produced.
    pub const MAX_FUEL: u64 = 1_000_000;
    /// Most items one `a..b` or `range()` may produce.
    pub const MAX_RANGE: usize = 10_000;
    /// Largest string one operation may build.
    pub const MAX_STRING_BYTES: usize = 1024 * 1024;
    /// Largest rendered output.
    pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;
    /// Render passes: a pass may discover `secret()`/`kv()` calls with computed arguments,
    /// which are looked up before the next pass.
    pub const MAX_PASSES: usize = 4;
}

/// Lookups a template may need from the running daemon (secrets, KV store, links).
pub trait ExprServices: Send + Sync {
    /// Value of secret `name` visible from `namespace`, already decoded.
    fn secret(&self, namespace: &str, name: &str) -> Option<String>;
    /// Value of KV `key` in `namespace`.
    fn kv(&self, namespace: &str, key: &str) -> Option<serde_json::Value>;
    /// Link a person can open to decide on `execution_id`.
    fn app_link(&self, namespace: &str, execution_id: &str, app_id: Option<&str>) -> String;
    /// Whether an admin granted the flows of `from` at least `role` on `target` (beyond what
    /// [`crate::auth::flow_scope`] allows by its rule).
    fn flow_allowed(&self, _from: &str, _target: &str, _role: crate::auth::Role) -> bool {
        false
    }
    /// `errorLogs()`: the ERROR log lines of `execution_id`, oldest first, each a map with
    /// `taskId`, `taskRunId`, `executionId`, `level`, `message`, `timestamp` (as Kestra's LogEntry).
    fn error_logs(&self, _execution_id: &str) -> Vec<serde_json::Value> {
        Vec::new()
    }
    /// A file of the internal storage that a flow of `namespace` reads (`read()`,
    /// `fileSize()`, …): None when there is no such file, an error when it may not be read.
    fn file(&self, _namespace: &str, _uri: &str) -> Result<Option<FileView>, String> {
        Err("there is no internal storage here".to_string())
    }
    /// The whole content of a file a flow of `namespace` reads (ForEachItem's `items`), at
    /// most `max` bytes; an error names why it cannot be read.
    fn read_file(&self, _namespace: &str, _uri: &str, _max: usize) -> Result<Vec<u8>, String> {
        Err("there is no internal storage here".to_string())
    }
    /// A WorkingDirectory's kept cache (see `engine::files::cache_owner`), if any.
    fn cache(&self, _owner: &str) -> Option<Vec<u8>> {
        None
    }
}

/// What the file functions see of a file: its size, and its text when it is UTF-8 and small
/// enough for `read()`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    pub size: u64,
    pub text: Option<String>,
}

/// Services that also know log lines not committed yet (the current step's), so `errorLogs()`
/// sees the failure that led to an `errors` branch rendered in the same step.
pub struct WithPendingLogs<'a> {
    pub inner: &'a dyn ExprServices,
    /// ERROR lines in the same shape as [`ExprServices::error_logs`].
    pub pending: Vec<serde_json::Value>,
    /// Files the step wrote (execution id, path, content), read before the stored ones: a
    /// ForEachItem's merged outputs are read by the next task in the same step.
    pub files: &'a [(String, String, Vec<u8>)],
}

impl WithPendingLogs<'_> {
    fn pending_file(&self, namespace: &str, uri: &str) -> Result<Option<&[u8]>, String> {
        let Ok(f) = crate::engine::files::parse_uri(uri) else {
            return Ok(None);
        };
        match self.files.iter().find(|(e, p, _)| *e == f.execution_id && *p == f.path) {
            Some((_, _, bytes)) => crate::engine::files::check_access(self, namespace, uri)
                .map(|_| Some(bytes.as_slice()))
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }
}

impl ExprServices for WithPendingLogs<'_> {
    fn secret(&self, namespace: &str, name: &str) -> Option<String> {
        self.inner.secret(namespace, name)
    }
    fn kv(&self, namespace: &str, key: &str) -> Option<serde_json::Value> {
        self.inner.kv(namespace, key)
    }
    fn app_link(&self, namespace: &str, execution_id: &str, app_id: Option<&str>) -> String {
        self.inner.app_link(namespace, execution_id, app_id)
    }
    fn flow_allowed(&self, from: &str, target: &str, role: crate::auth::Role) -> bool {
        self.inner.flow_allowed(from, target, role)
    }
    fn file(&self, namespace: &str, uri: &str) -> Result<Option<FileView>, String> {
        match self.pending_file(namespace, uri)? {
            Some(bytes) => Ok(Some(crate::engine::files::view_of(bytes))),
            None => self.inner.file(namespace, uri),
        }
    }
    fn read_file(&self, namespace: &str, uri: &str, max: usize) -> Result<Vec<u8>, String> {
        match self.pending_file(namespace, uri)? {
            Some(bytes) if bytes.len() > max => Err(format!(
                "{uri} holds {} bytes; at most {max} can be read here",
                bytes.len()
            )),
            Some(bytes) => Ok(bytes.to_vec()),
            None => self.inner.read_file(namespace, uri, max),
        }
    }
    fn error_logs(&self, execution_id: &str) -> Vec<serde_json::Value> {
        // The step's lines are stored only after the step, so the two lists never overlap.
        let mut out = self.inner.error_logs(execution_id);
        out.extend(self.pending.iter().cloned());
        out
    }
}

/// True when `template` may call `errorLogs()` (a cheap test before reading logs for it).
pub fn uses_error_logs(template: &str) -> bool {
    template.contains("errorLogs")
}

/// Where a flow in `from` may do `access` in `target` (see [`crate::auth::flow_scope`]).
pub fn flow_may(
    services: &dyn ExprServices,
    from: &str,
    target: &str,
    access: crate::auth::flow_scope::FlowAccess,
) -> Result<(), String> {
    crate::auth::flow_scope::check(from, target, access, |role| services.flow_allowed(from, target, role))
}

/// Services that know no secrets, no KV and no external URL (validation, tests).
pub struct NoServices;

impl ExprServices for NoServices {
    fn secret(&self, _namespace: &str, _name: &str) -> Option<String> {
        None
    }
    fn kv(&self, _namespace: &str, _key: &str) -> Option<serde_json::Value> {
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

/// Why a template could not be checked or rendered. `expression` is the block at fault
/// (`{{ inputs.foo }}`), or the whole template when no single block is.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ExprError {
    /// The template does not parse; `line`/`column` (1-based) are within the template.
    #[error("syntax error in `{expression}` at line {line}, column {column}: {message}")]
    Syntax {
        expression: String,
        message: String,
        line: usize,
        column: usize,
    },
    /// A variable the template reads strictly does not exist; `name` is the path up to the
    /// missing part (`inputs.foo`, `outputs.task.onResume.approved`).
    #[error("undefined variable `{name}` in `{expression}`")]
    Undefined { name: String, expression: String },
    /// `secret()` found no value (or an undecodable one) for `name`.
    #[error("secret `{name}` in `{expression}`: {message}")]
    Secret {
        name: String,
        expression: String,
        message: String,
    },
    /// A bound from [`limits`] was exceeded.
    #[error("limit exceeded in `{expression}`: {message}")]
    Limit { expression: String, message: String },
    /// Any other failure while rendering (wrong type for a filter, missing KV key, …).
    #[error("error rendering `{expression}`: {message}")]
    Render { expression: String, message: String },
}

/// The template context: the caller's variables plus the render's runtime, hidden under a
/// name templates cannot spell.
#[derive(Debug)]
pub(crate) struct Root {
    pub(crate) vars: Value,
    pub(crate) runtime: Value,
}

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if key.as_str() == Some(RT_KEY) {
            return Some(self.runtime.clone());
        }
        self.vars.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.vars.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// Collects output, refusing to grow past `MAX_OUTPUT_BYTES`.
struct BoundedWriter {
    buf: Vec<u8>,
    exceeded: bool,
}

impl io::Write for BoundedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > limits::MAX_OUTPUT_BYTES {
            self.exceeded = true;
            return Err(io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders templates; built once at daemon start.
pub struct Renderer {
    /// The environment, and templates already translated and compiled (see `compiled.rs`).
    compiled: compiled::Compiled,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

/// True when `template` has something to render (otherwise it is used as is, like Kestra does).
pub(crate) fn has_blocks(template: &str) -> bool {
    template.contains("{{") || template.contains("{%") || template.contains("{#")
}

impl Renderer {
    pub fn new() -> Self {
        // `empty()`: no Jinja builtins, so only the Pebble names the translator allows exist.
        let mut env = Environment::empty();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Kestra turns Pebble's newline trimming off; keep text exactly as written.
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_formatter(|out, _state, value| {
            out.write_str(&runtime::to_text(value))
                .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "cannot write output"))
        });
        runtime::register(&mut env);
        functions::register(&mut env);
        Renderer {
            compiled: compiled::Compiled::new(env),
        }
    }

    /// Renders `template` with `vars` (the execution context: flow, execution, inputs, outputs, ...).
    /// `namespace` and `execution_id` scope `secret()`, `kv()` and `appLink()`.
    pub fn render(
        &self,
        template: &str,
        vars: &serde_json::Value,
        services: &dyn ExprServices,
        namespace: &str,
        execution_id: &str,
    ) -> Result<Rendered, ExprError> {
        if !has_blocks(template) {
            return Ok(Rendered {
                text: template.to_string(),
                secrets: vec![],
            });
        }
        let ready = self
            .compiled
            .get(template, translate_checked, |e| internal_syntax(template, e))?;
        let tr = &*ready.translation;
        let compiled = ready
            .env
            .get_template(&tr.source)
            .map_err(|e| internal_syntax(template, &e))?;
        let vars = Value::from_serialize(vars);
        let runtime = Arc::new(Runtime::new(namespace, execution_id, vars.clone()));
        resolve(&runtime, &tr.lookups, services);
        let root = Value::from_object(Root {
            vars,
            runtime: Value::from_dyn_object(Arc::clone(&runtime)),
        });
        for pass in 0..limits::MAX_PASSES {
            runtime.reset_pass();
            let mut out = BoundedWriter {
                buf: Vec::new(),
                exceeded: false,
            };
            let result = compiled.render_captured_to(&root, &mut out);
            let err = match result {
                Ok(_) => {
                    let secrets = runtime.lock().used_secrets.clone();
                    let text = String::from_utf8(out.buf)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    return Ok(Rendered { text, secrets });
                }
                Err(err) => err,
            };
            let (missing, failure, secrets) = {
                let mut s = runtime.lock();
                (
                    std::mem::take(&mut s.missing),
                    s.failure.clone(),
                    s.used_secrets.clone(),
                )
            };
            if failure.is_none() && !missing.is_empty() && pass + 1 < limits::MAX_PASSES {
                resolve(&runtime, &missing, services);
                continue;
            }
            let expression = failing_block(template, tr, &err);
            let mapped = match failure {
                Some(Failure::Undefined { name, .. }) => ExprError::Undefined { name, expression },
                Some(Failure::Limit(message)) => ExprError::Limit { expression, message },
                Some(Failure::Secret { name, message }) => ExprError::Secret {
                    name,
                    expression,
                    message,
                },
                Some(Failure::Kv(message)) | Some(Failure::File(message)) => ExprError::Render { expression, message },
                None if out.exceeded => ExprError::Limit {
                    expression,
                    message: format!("the output would exceed {} bytes", limits::MAX_OUTPUT_BYTES),
                },
                None => ExprError::Render {
                    expression,
                    message: describe(&err),
                },
            };
            return Err(mask(mapped, &secrets));
        }
        Err(ExprError::Render {
            expression: template.to_string(),
            message: "secret()/kv() arguments kept changing between render passes".to_string(),
        })
    }

    /// Checks that `template` parses (names of functions, filters and tests included), without rendering it.
    pub fn check_syntax(&self, template: &str) -> Result<(), ExprError> {
        if !has_blocks(template) {
            return Ok(());
        }
        let tr = translate_checked(template)?;
        self.compiled
            .base()
            .template_from_str(&tr.source)
            .map(|_| ())
            .map_err(|e| internal_syntax(template, &e))
    }

    /// The variable paths `template` reads, in order, with where they are and whether a missing
    /// value is tolerated there (left of `??`, `is defined`, `| default`).
    /// Loop variables and `{% set %}` names are left out.
    pub fn references(template: &str) -> Result<Vec<VarRef>, ExprError> {
        if !has_blocks(template) {
            return Ok(Vec::new());
        }
        Ok(translate_checked(template)?.refs)
    }

    /// The distinct static variable paths `template` reads, e.g.
    /// `["outputs", "await_decision", "onResume", "approved"]`; empty when it does not parse.
    pub fn referenced_roots(template: &str) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for r in Self::references(template).unwrap_or_default() {
            if !out.contains(&r.path) {
                out.push(r.path);
            }
        }
        out
    }
}

/// Translates after the size check, mapping failures to `ExprError::Syntax`.
fn translate_checked(template: &str) -> Result<translate::Translation, ExprError> {
    if template.len() > limits::MAX_TEMPLATE_BYTES {
        return Err(ExprError::Limit {
            expression: format!("{}…", template.chars().take(60).collect::<String>()),
            message: format!(
                "the template is {} bytes; the limit is {}",
                template.len(),
                limits::MAX_TEMPLATE_BYTES
            ),
        });
    }
    translate::translate(template).map_err(|e| {
        let (line, column) = lexer::line_col(template, e.offset);
        let expression = match e.block.and_then(|b| template.get(b)) {
            Some(block) => block.to_string(),
            // Not inside a complete block (an unclosed `{{`, an unpaired `{% endif %}`): show the line.
            None => template
                .lines()
                .nth(line - 1)
                .unwrap_or(template)
                .chars()
                .take(200)
                .collect(),
        };
        ExprError::Syntax {
            expression,
            message: e.message,
            line,
            column,
        }
    })
}

/// minijinja refused the translation: only nesting beyond its own parser limit gets here.
fn internal_syntax(template: &str, e: &minijinja::Error) -> ExprError {
    let message = if e.kind() == ErrorKind::SyntaxError && describe(e).contains("nested") {
        "the template nests too deeply".to_string()
    } else {
        format!("cannot compile the template: {}", describe(e))
    };
    ExprError::Syntax {
        expression: template.to_string(),
        message,
        line: 1,
        column: 1,
    }
}

/// The Pebble block a minijinja error points into, or the whole template.
fn failing_block(template: &str, tr: &translate::Translation, err: &minijinja::Error) -> String {
    let block = err
        .range()
        .and_then(|r| tr.blocks.iter().find(|b| b.out.start <= r.start && r.start < b.out.end));
    block
        .and_then(|b| template.get(b.src.clone()))
        .unwrap_or(template)
        .to_string()
}

fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(d) => d.to_string(),
        None => err.kind().to_string(),
    }
}

/// Replaces secret values in an error's text: messages may quote the value that failed.
fn mask(err: ExprError, secrets: &[String]) -> ExprError {
    let hide = |s: String| {
        secrets
            .iter()
            .filter(|v| !v.is_empty())
            .fold(s, |acc, v| acc.replace(v.as_str(), "******"))
    };
    match err {
        ExprError::Render { expression, message } => ExprError::Render {
            expression,
            message: hide(message),
        },
        ExprError::Limit { expression, message } => ExprError::Limit {
            expression,
            message: hide(message),
        },
        other => other,
    }
}

/// Looks up `lookups` with the daemon's services and stores the answers in the runtime.
fn resolve(runtime: &Runtime, lookups: &[Lookup], services: &dyn ExprServices) {
    for lookup in lookups {
        match lookup {
            Lookup::Secret { name, namespace } => {
                let ns = namespace.clone().unwrap_or_else(|| runtime.namespace.clone());
                let value = flow_may(services, &runtime.namespace, &ns, FlowAccess::Read).and_then(|()| {
                    services
                        .secret(&ns, name)
                        .map(Ok)
                        .unwrap_or_else(|| secret_from_env(name))
                });
                runtime.lock().secrets.insert((ns, name.clone()), value);
            }
            Lookup::Kv { key, namespace } => {
                let ns = namespace.clone().unwrap_or_else(|| runtime.namespace.clone());
                let value =
                    flow_may(services, &runtime.namespace, &ns, FlowAccess::Read).map(|()| services.kv(&ns, key));
                runtime.lock().kv.insert((ns, key.clone()), value);
            }
            Lookup::ErrorLogs => {
                let lines = services.error_logs(&runtime.execution_id);
                runtime.lock().error_logs = Some(lines);
            }
            Lookup::File(uri) => {
                let view = services.file(&runtime.namespace, uri);
                runtime.lock().files.insert(uri.clone(), view);
            }
            Lookup::AppLink(app) => {
                let link = services.app_link(&runtime.namespace, &runtime.execution_id, app.as_deref());
                runtime.lock().links.insert(app.clone(), link);
            }
        }
    }
}

/// Kestra's open-source secrets: env var `SECRET_<NAME>` (name upper-cased), base64-encoded,
/// line breaks ignored.
fn secret_from_env(name: &str) -> Result<String, String> {
    let var = format!("SECRET_{}", name.to_uppercase());
    decode_env_secret(&var, std::env::var(&var).ok())
}

/// Decodes the value of env var `var` (None when unset) as Kestra does.
fn decode_env_secret(var: &str, encoded: Option<String>) -> Result<String, String> {
    let Some(encoded) = encoded else {
        return Err(format!(
            "no such secret: add it to the daemon's secret store, or set the environment variable {var} to its base64-encoded value"
        ));
    };
    let cleaned: String = encoded.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.trim())
        .map_err(|_| format!("the environment variable {var} is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("the environment variable {var} does not decode to UTF-8 text"))
}
