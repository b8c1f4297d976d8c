//! Kestra's `jq` filter, on the jaq interpreter (a Rust implementation of jq).
//!
//! Like Kestra, the result is always the list of every value the jq program yields
//! (`{{ x | jq('.a') | first }}` for one value). A text input is read as JSON.
//!
//! Bounds: jaq has no step budget of its own, and a program such as `def f: 1 + f; f` recurses
//! until the stack overflows, which aborts the whole process. So in the daemon every program
//! runs in a child process (`tollgated __jq`, see [`run_in_processes`]) with its memory and CPU
//! limited, killed after [`JQ_TIMEOUT`]: a runaway program fails its render, never the daemon.
//! Without that (library use, unit tests) it runs on a thread of its own and the render stops
//! waiting after [`JQ_TIMEOUT`]. At most [`MAX_RESULTS`] values are kept.
//! jq's built-ins that reach outside the value are left out (see [`DENIED`]); `halt` only ends
//! the program with an error (jaq's command line would exit the process; this never does).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;

/// How long a render waits for one jq program.
pub(crate) const JQ_TIMEOUT: Duration = Duration::from_secs(2);
/// Most values one jq program may yield.
pub(crate) const MAX_RESULTS: usize = 10_000;

/// Native built-ins that must not be reachable from a flow's template: `env` (the daemon's
/// environment holds credentials), `stderr_empty` (would write flow data to the daemon's
/// stderr; redefined below as doing nothing), `input`/`inputs` (there is no input stream).
const DENIED: &[&str] = &["env", "stderr_empty", "input", "inputs", "input_filename"];

/// Definitions put between jaq's core definitions (`empty`) and its standard library, which calls `stderr_empty` in `stderr` and
/// `halt_error`.
const PRELUDE: &str = "def stderr_empty: empty;";

/// The executable whose `__jq` subcommand runs programs, once the daemon installed it.
static SANDBOX: OnceLock<PathBuf> = OnceLock::new();

/// Address space and CPU time of a jq child process.
const CHILD_MEMORY_BYTES: u64 = 2 << 30;
const CHILD_CPU_SECONDS: u64 = 10;

/// Makes every jq program of this process run in a child `exe __jq` (the daemon calls this with
/// its own executable at start).
pub fn run_in_processes(exe: PathBuf) {
    let _ = SANDBOX.set(exe);
}

/// Runs jq `program` on `input`; the error says what was wrong with the program or the run.
pub(crate) fn run(program: &str, input: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    match SANDBOX.get() {
        Some(exe) => run_in_child(exe, program, input),
        None => run_in_thread(program, input),
    }
}

fn run_in_thread(program: &str, input: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let program = program.to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("tollgate-jq".into())
        .spawn(move || {
            // The receiver may be gone after a timeout: nothing is waiting then.
            let _ = tx.send(run_here(&program, &input));
        })
        .map_err(|e| format!("cannot start the jq interpreter: {e}"))?;
    match rx.recv_timeout(JQ_TIMEOUT) {
        Ok(r) => r,
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> String {
    format!("the jq program did not finish within {} seconds", JQ_TIMEOUT.as_secs())
}

/// What the child reads on stdin and answers on stdout.
#[derive(serde::Serialize, serde::Deserialize)]
struct ChildRequest {
    program: String,
    input: serde_json::Value,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChildAnswer {
    Ok(Vec<serde_json::Value>),
    Err(String),
}

fn run_in_child(exe: &PathBuf, program: &str, input: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let request = serde_json::to_vec(&ChildRequest {
        program: program.to_string(),
        input,
    })
    .map_err(|e| format!("cannot pass the value to jq: {e}"))?;
    // No environment: nothing of the daemon's (credentials) is there for the program to find.
    let mut child = Command::new(exe)
        .arg("__jq")
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the jq interpreter: {e}"))?;
    let (mut stdin, mut stdout) = match (child.stdin.take(), child.stdout.take()) {
        (Some(i), Some(o)) => (i, o),
        _ => return Err("cannot talk to the jq interpreter".into()),
    };
    // Writer and reader on threads of their own: a large value or answer fills a pipe.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&request);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = Vec::new();
        let _ = tx.send(stdout.read_to_end(&mut answer).map(|_| answer));
    });
    let answer = rx.recv_timeout(JQ_TIMEOUT);
    if answer.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("the jq interpreter was lost: {e}"))?;
    let bytes = match answer {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => return Err(format!("cannot read the jq interpreter's answer: {e}")),
        Ok(Ok(bytes)) => bytes,
    };
    if !status.success() {
        return Err("the jq program ran out of stack, memory or time (deep recursion?) and was stopped".into());
    }
    match serde_json::from_slice::<ChildAnswer>(&bytes) {
        Ok(ChildAnswer::Ok(values)) => Ok(values),
        Ok(ChildAnswer::Err(message)) => Err(message),
        Err(e) => Err(format!("the jq interpreter answered something unreadable: {e}")),
    }
}

/// The `__jq` child: limits itself, reads one request on stdin, answers on stdout. Returns the
/// process exit code.
pub fn serve_child() -> i32 {
    limit(libc::RLIMIT_AS, CHILD_MEMORY_BYTES);
    limit(libc::RLIMIT_CPU, CHILD_CPU_SECONDS);
    let mut bytes = Vec::new();
    if std::io::stdin().read_to_end(&mut bytes).is_err() {
        return 2;
    }
    let answer = match serde_json::from_slice::<ChildRequest>(&bytes) {
        Ok(r) => match run_here(&r.program, &r.input) {
            Ok(values) => ChildAnswer::Ok(values),
            Err(message) => ChildAnswer::Err(message),
        },
        Err(e) => ChildAnswer::Err(format!("unreadable request: {e}")),
    };
    match serde_json::to_writer(std::io::stdout().lock(), &answer) {
        Ok(()) => 0,
        Err(_) => 2,
    }
}

fn limit(resource: libc::__rlimit_resource_t, value: u64) {
    let l = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit only reads the struct passed by reference.
    unsafe {
        libc::setrlimit(resource, &l);
    }
}

fn run_here(program: &str, input: &serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
    let text = serde_json::to_string(input).map_err(|e| format!("cannot pass the value to jq: {e}"))?;
    let input = jaq_json::read::parse_single(text.as_bytes()).map_err(|e| format!("cannot read the value: {e}"))?;
    let prelude = jaq_core::load::parse(PRELUDE, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(prelude)
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| !DENIED.contains(name));
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: program,
                path: (),
            },
        )
        .map_err(|errs| format!("`{program}` does not parse: {}", describe_load(&errs)))?;
    let filter = Compiler::default().with_funs(funs).compile(modules).map_err(|errs| {
        let names: Vec<String> = errs
            .iter()
            .flat_map(|(_, es)| es.iter().map(|(name, _)| format!("`{name}`")))
            .collect();
        format!("`{program}` uses what jq does not define here: {}", names.join(", "))
    })?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
    let mut out = Vec::new();
    for item in filter.id.run((ctx, input)) {
        if out.len() >= MAX_RESULTS {
            return Err(format!("the jq program yields more than {MAX_RESULTS} values"));
        }
        let v = item.map_err(|e| match e.get_err() {
            Ok(err) => format!("jq error: {err}"),
            // `halt`: jaq's own command line would exit; here it only ends this program.
            Err(_) => "the jq program called halt".to_string(),
        })?;
        let json = v.to_string();
        out.push(serde_json::from_str(&json).map_err(|e| format!("jq yielded a value that is not JSON ({e})"))?);
    }
    Ok(out)
}

fn describe_load<P>(errs: &jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let mut parts = Vec::new();
    for (_, e) in errs {
        match e {
            Error::Io(v) => parts.extend(v.iter().map(|(s, m)| format!("{s}: {m}"))),
            Error::Lex(v) => parts.extend(
                v.iter()
                    .map(|(expect, at)| format!("expected {} near `{}`", expect.as_str(), short(at))),
            ),
            Error::Parse(v) => parts.extend(
                v.iter()
                    .map(|(expect, at)| format!("expected {} near `{}`", expect.as_str(), short(at))),
            ),
        }
    }
    parts.join("; ")
}

fn short(s: &str) -> String {
    s.chars().take(20).collect()
}
