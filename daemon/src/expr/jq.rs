//! Kestra's `jq` filter, on the jaq interpreter (a Rust implementation of jq).
//!
//! Like Kestra, the result is always the list of every value the jq program yields
//! (`{{ x | jq('.a') | first }}` for one value). A text input is read as JSON.
//!
//! Bounds: jaq has no step budget of its own, so the program runs on a thread of its own and
//! the render stops waiting after [`JQ_TIMEOUT`]; at most [`MAX_RESULTS`] values are kept.
//! jq's built-ins that reach outside the value are left out (see [`DENIED`]); `halt` only ends
//! the program with an error (jaq's command line would exit the process; this never does).

use std::sync::mpsc;
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

/// Runs jq `program` on `input`; the error says what was wrong with the program or the run.
pub(crate) fn run(program: &str, input: serde_json::Value) -> Result<Vec<serde_json::Value>, String> {
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
        Err(_) => Err(format!(
            "the jq program did not finish within {} seconds",
            JQ_TIMEOUT.as_secs()
        )),
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
