//! Kestra's script tasks (`io.kestra.plugin.scripts.{shell,python,node}.{Commands,Script}`):
//! every property rendered first, then the commands run by `interpreter` in a fresh working
//! directory, as a child process on the host (Process task runner) or with `docker run` (Docker
//! task runner). Output lines reach the execution's log while the process runs; lines
//! `::{"outputs":{...}}::` become the task's `vars` output.

mod outputs;
mod process;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{JobContext, TaskRender, TaskServices, WorkDir};
use crate::flow::{ScriptLanguage, ScriptRunner, ScriptTask, Task};
use crate::masking::mask;
use process::{End, LineSink, Spec};

/// Variables of the daemon's environment a script inherits (and `LC_*`).
const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "TZ",
    "TMPDIR",
    "TERM",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
];

/// Pending lines handed on as soon as there are this many (else every flush tick).
const BATCH_LINES: usize = 500;

/// What the task produced: outputs, and whether it ends WARNING (stderr with warningOnStdErr).
pub struct ScriptResult {
    pub outputs: Map<String, Value>,
    pub warning: bool,
    /// `outputFiles` to store: (storage path, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// Kestra's metrics the script printed.
    pub metrics: Vec<Value>,
}

/// Most metrics one task run keeps (the first ones); more are reported once, not stored.
const MAX_METRICS: usize = 1000;

/// Everything rendered, ready to run.
struct Prepared {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    script_file: Option<(String, String)>,
    image: Option<String>,
    timeout: Option<std::time::Duration>,
    timeout_text: String,
}

pub async fn run(
    task: &Task,
    t: &ScriptTask,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
    ctx: &JobContext,
    workdir: Option<&WorkDir>,
) -> Result<ScriptResult, String> {
    let root = services
        .scripts_dir
        .get()
        .ok_or("script tasks need the daemon's data directory, which is not set")?
        .clone();
    let name = r.task_run_id().to_string();
    let Some(wd) = workdir else {
        let dir = root.join(&name);
        // A fresh directory: a re-run after a crash must not see the previous attempt's files.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create the working directory: {e}"))?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let result = run_in(task, t, r, services, ctx, &root, &name, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        return result;
    };
    let dir = shared_dir(&root, wd, r, services)?;
    run_in(task, t, r, services, ctx, &root, &name, &dir).await
}

/// The directory of a WorkingDirectory: it outlives its tasks (the engine removes it when the
/// WorkingDirectory ends); the first task that needs it creates it and writes its `inputFiles`.
pub(crate) fn shared_dir(
    root: &Path,
    wd: &WorkDir,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
) -> Result<PathBuf, String> {
    let dir = root.join(WorkDir::dir_name(&wd.task_run_id));
    if !dir.exists() {
        let files = match &wd.input_files {
            None => vec![],
            Some(v) => input_files(v, r, services).map_err(|e| format!("WorkingDirectory: {e}"))?,
        };
        let partial = root.join(format!("{}.new", WorkDir::dir_name(&wd.task_run_id)));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).map_err(|e| format!("cannot create the working directory: {e}"))?;
        if let Some(cache) = &wd.cache
            && let Some(kept) = super::files::cache_restore(cache, services)
        {
            r.log("INFO", format!("cache restored: {} files", kept.len()));
            write_files(&partial, &kept)?;
        }
        write_files(&partial, &files)?;
        // Renamed once complete, so a directory that exists always holds every input file.
        std::fs::rename(&partial, &dir).map_err(|e| format!("cannot create the working directory: {e}"))?;
    }
    Ok(dir.canonicalize().unwrap_or(dir))
}

use super::files::write_files;

#[allow(clippy::too_many_arguments)]
async fn run_in(
    task: &Task,
    t: &ScriptTask,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
    ctx: &JobContext,
    root: &Path,
    name: &str,
    dir: &Path,
) -> Result<ScriptResult, String> {
    let dir_text = dir.to_string_lossy().to_string();
    r.set_var("workingDir", Value::String(dir_text.clone()));
    let p = prepare(task, t, r, services)?;
    let secrets = r.secrets().to_vec();
    let mut sink = Streamer {
        ctx,
        secrets: &secrets,
        pending: Vec::new(),
        vars: Map::new(),
        metrics: Vec::new(),
        metrics_full: false,
        stderr_lines: 0,
    };
    let mut files = p.files.clone();
    files.extend(p.script_file.iter().map(|(n, c)| (n.clone(), c.clone().into_bytes())));
    write_files(dir, &files)?;
    // Only the basics of the daemon's environment: the rest holds its own settings, its secret
    // key and Kestra-style `SECRET_*` values, which a flow may only reach through `secret()`.
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| INHERITED_ENV.contains(&k.as_str()) || k.starts_with("LC_"))
        .filter(|(k, _)| !p.env.iter().any(|(k2, _)| k2 == k))
        .collect();
    env.push(("WORKING_DIR".into(), dir_text.clone()));
    env.extend(p.env.iter().cloned());
    let runner = t.runner;
    if runner == ScriptRunner::Process && p.image.is_some() {
        sink.push(
            "WARN",
            "`containerImage` is not used by the Process task runner: the commands run on the daemon's host",
        );
    }
    let (program, args, on_stop) = match runner {
        ScriptRunner::Process => {
            let (program, args) = p.argv.split_first().ok_or("`interpreter` is empty")?;
            (program.clone(), args.to_vec(), None)
        }
        ScriptRunner::Docker => {
            if !on_path("docker") {
                return Err(format!(
                    "task `{}` needs the Docker task runner, but docker is not available on this host (no `docker` on PATH); set `taskRunner: {{type: {}}}` to run it on the host",
                    task.id,
                    crate::flow::types::PROCESS_RUNNER
                ));
            }
            let image = p.image.clone().unwrap_or_else(|| default_image(t.language).to_string());
            let container = format!("tollgate-{name}");
            let mut args = vec![
                "run".to_string(),
                "--rm".into(),
                "--name".into(),
                container.clone(),
                "-v".into(),
                format!("{dir_text}:{dir_text}"),
                "-w".into(),
                dir_text.clone(),
                "-e".into(),
                "WORKING_DIR".into(),
            ];
            // Values stay out of the command line (and so out of `ps`): docker reads them from
            // its own environment.
            for (k, _) in &p.env {
                args.push("-e".into());
                args.push(k.clone());
            }
            args.push(image);
            args.extend(p.argv.iter().cloned());
            let on_stop = vec!["docker".to_string(), "kill".into(), container];
            ("docker".to_string(), args, Some(on_stop))
        }
    };
    let spec = Spec {
        program,
        args,
        env,
        dir: dir.to_path_buf(),
        timeout: p.timeout,
        pid_file: root.join(format!("{name}.pid")),
        on_stop,
    };
    let mut cancel = ctx.cancel.clone();
    let end = process::run(spec, &mut sink, &mut cancel).await;
    sink.flush();
    let end = end?;
    match end {
        End::Exited(0) => {
            let mut outputs = Map::new();
            outputs.insert("vars".into(), Value::Object(std::mem::take(&mut sink.vars)));
            outputs.insert("exitCode".into(), Value::from(0));
            let mut stored = Vec::new();
            if !t.output_files.is_empty() {
                let found = super::files::collect(dir, &t.output_files).map_err(|e| format!("`outputFiles`: {e}"))?;
                let (uris, files) = super::files::stored(r.job(), found);
                outputs.insert("outputFiles".into(), Value::Object(uris));
                stored = files;
            }
            Ok(ScriptResult {
                outputs,
                warning: t.warning_on_std_err == Some(true) && sink.stderr_lines > 0,
                files: stored,
                metrics: std::mem::take(&mut sink.metrics),
            })
        }
        End::Exited(code) => Err(format!("the command exited with code {code}")),
        End::Signalled(sig) => Err(format!("the command was ended by signal {sig}")),
        End::TimedOut => Err(format!(
            "the task timed out after {} (`timeout`); its processes were killed",
            p.timeout_text
        )),
        End::Cancelled => Err("stopped: the task run ended while the command ran (execution killed)".into()),
    }
}

fn default_image(language: ScriptLanguage) -> &'static str {
    match language {
        ScriptLanguage::Shell => "ubuntu",
        ScriptLanguage::Python => "python",
        ScriptLanguage::Node => "node",
    }
}

fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            std::fs::metadata(d.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Renders every property; errors name the property.
fn prepare(task: &Task, t: &ScriptTask, r: &mut TaskRender<'_>, services: &TaskServices) -> Result<Prepared, String> {
    let (timeout, timeout_text) = match &task.common.timeout {
        Some(text) => {
            let text = r.text("timeout", text)?;
            let d = crate::duration::parse_iso8601(&text).map_err(|e| format!("invalid `timeout`: {e}"))?;
            (Some(d), text)
        }
        None => (None, String::new()),
    };
    let interpreter = t
        .interpreter
        .iter()
        .map(|i| r.text("interpreter", i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut lines = Vec::new();
    let shell = interpreter.first().is_some_and(|p| {
        ["sh", "bash", "zsh", "dash", "ksh", "ash"]
            .iter()
            .any(|s| p.ends_with(s))
    });
    if t.fail_fast && shell {
        lines.push("set -e".to_string());
    }
    for c in &t.before_commands {
        lines.push(r.text("beforeCommands", c)?);
    }
    for c in &t.commands {
        lines.push(r.text("commands", c)?);
    }
    let mut script_file = None;
    if let Some(s) = &t.script {
        let body = r.text("script", s)?;
        match t.language {
            ScriptLanguage::Shell => lines.push(body),
            ScriptLanguage::Python | ScriptLanguage::Node => {
                let (ext, program) = if t.language == ScriptLanguage::Python {
                    ("py", "python3")
                } else {
                    ("js", "node")
                };
                let file = format!("_tollgate_script_{}.{ext}", task.id);
                lines.push(format!("{program} {file}"));
                script_file = Some((file, body));
            }
        }
    }
    let mut argv = interpreter;
    argv.push(lines.join("\n"));
    let env = t
        .env
        .iter()
        .map(|(k, v)| Ok((k.clone(), r.text(&format!("env.{k}"), v)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let files = match &t.input_files {
        None => vec![],
        Some(v) => input_files(v, r, services)?,
    };
    let image = r.opt("containerImage", &t.container_image)?;
    Ok(Prepared {
        argv,
        env,
        files,
        script_file,
        image,
        timeout,
        timeout_text,
    })
}

/// `inputFiles`: a mapping of name to content, or a template rendering to one as JSON.
pub(crate) fn input_files(
    v: &Value,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let map = match v {
        Value::String(s) => {
            let text = r.text("inputFiles", s)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                _ => return Err("`inputFiles` must render to a JSON object of file name to content".into()),
            }
        }
        Value::Object(m) => m.clone(),
        _ => return Err("`inputFiles` must be a mapping of file name to content".into()),
    };
    let mut out = Vec::new();
    for (name, content) in map {
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(format!(
                "input file name `{name}` must be a relative path inside the working directory"
            ));
        }
        let content = match content {
            Value::String(s) => r.text(&format!("inputFiles.{name}"), &s)?,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        // A `kestra:///` URI stands for the stored file's content (an upload, a task's output).
        let bytes = super::files::content_of(&content, r, services).map_err(|e| format!("input file `{name}`: {e}"))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// Turns output lines into log lines (masked) and outputs, handing lines on in batches.
struct Streamer<'a> {
    ctx: &'a JobContext,
    secrets: &'a [String],
    pending: Vec<(String, String)>,
    vars: Map<String, Value>,
    metrics: Vec<Value>,
    metrics_full: bool,
    stderr_lines: usize,
}

impl Streamer<'_> {
    fn push(&mut self, level: &str, message: &str) {
        self.pending.push((level.to_string(), mask(message, self.secrets)));
        if self.pending.len() >= BATCH_LINES {
            self.flush();
        }
    }
}

impl LineSink for Streamer<'_> {
    fn line(&mut self, stderr: bool, text: String) {
        match outputs::parse(&text) {
            Some(Ok(p)) => {
                self.vars.extend(p.outputs);
                for m in p.metrics {
                    if self.metrics.len() < MAX_METRICS {
                        self.metrics.push(m);
                    } else if !self.metrics_full {
                        self.metrics_full = true;
                        self.push(
                            "WARN",
                            &format!("more than {MAX_METRICS} metrics: the rest are not kept"),
                        );
                    }
                }
                for (level, message) in p.logs {
                    self.push(&level, &message);
                }
            }
            Some(Err(e)) => self.push("WARN", &e),
            None if stderr => {
                self.stderr_lines += 1;
                // As Kestra's log consumer: stderr lines are logged at ERROR.
                self.push("ERROR", &text);
            }
            None => self.push("INFO", &text),
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.ctx.live.append(std::mem::take(&mut self.pending));
        }
    }
}

/// Ends what a crashed daemon left of script processes under `root` and removes their working
/// directories; called once at start, before any job runs.
pub fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let path: PathBuf = e.path();
        if path.extension().is_some_and(|x| x == "pid") {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let mut it = text.split_whitespace();
                let pgid = it.next().and_then(|s| s.parse::<i32>().ok()).unwrap_or(0);
                let start = it.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                process::end_leftover_group(pgid, start);
            }
            let _ = std::fs::remove_file(&path);
        } else if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
