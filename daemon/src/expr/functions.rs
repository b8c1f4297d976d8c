//! The functions, filters and tests flow templates may use, with Pebble's and Kestra's names and
//! semantics, and the tables the translator checks names against (so an unknown or unsupported
//! name is a syntax error at validation, with a suggestion, rather than a failure at run time).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use chrono::{Duration, Months, Utc};
use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use sha2::Digest as _;

use super::date::{self, Zone};
use super::limits::MAX_STRING_BYTES;
use super::parser::{Arg, ExprKind};
use super::runtime::{
    self, Failure, Num, as_f64, as_num, charge, check_len, invalid, rt, to_json_text, to_text, truthy,
};

/// A lookup in the daemon's services that a template needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Lookup {
    Secret {
        name: String,
        namespace: Option<String>,
    },
    Kv {
        key: String,
        namespace: Option<String>,
    },
    AppLink(Option<String>),
    /// `errorLogs()`: the execution's ERROR log lines.
    ErrorLogs,
    /// A file of the internal storage (`read()`, `fileSize()`, `fileExists()`, `isFileEmpty()`).
    File(String),
}

/// Pebble/Kestra function name → helper suffix.
const FUNCTIONS: &[(&str, &str)] = &[
    ("secret", "secret"),
    ("kv", "kv"),
    ("appLink", "appLink"),
    ("now", "now"),
    ("range", "range"),
    ("max", "max"),
    ("min", "min"),
    ("fromJson", "fromJson"),
    ("json", "fromJson"),
    ("jsonDecode", "fromJson"),
    ("yaml", "yaml"),
    ("render", "render"),
    ("renderOnce", "renderOnce"),
    ("errorLogs", "errorLogs"),
    ("read", "read"),
    ("fileSize", "fileSize"),
    ("fileExists", "fileExists"),
    ("isFileEmpty", "isFileEmpty"),
    ("fileEmpty", "isFileEmpty"),
    ("currentEachOutput", "currentEachOutput"),
    ("uuid", "uuid"),
    ("id", "id"),
    ("randomInt", "randomInt"),
    ("printContext", "fetchContext"),
    ("fetchContext", "fetchContext"),
];

/// Kestra functions on namespace files, which Tollgate does not have: refused at validation.
const STORAGE_FUNCTIONS: &[&str] = &["fileURI"];

/// Kestra functions Tollgate does not provide, with why.
const UNSUPPORTED_FUNCTIONS: &[(&str, &str)] = &[
    (
        "encrypt",
        "it needs Kestra's encryption key (kestra.encryption.secret-key)",
    ),
    (
        "decrypt",
        "it needs Kestra's encryption key (kestra.encryption.secret-key)",
    ),
    ("fromIon", "Amazon Ion is Kestra's internal storage format"),
    ("ionDecode", "Amazon Ion is Kestra's internal storage format"),
    (
        "http",
        "templates make no network calls here; use an io.kestra.plugin.core.http.Request task",
    ),
    ("randomPort", "Tollgate does not provide it"),
    ("block", "template inheritance is not supported in flow templates"),
    ("parent", "template inheritance is not supported in flow templates"),
    ("i18n", "there are no message bundles in flow templates"),
    ("tasksWithState", "Tollgate does not provide it"),
    ("isDateAfter", "Tollgate does not provide it"),
    ("isDateBefore", "Tollgate does not provide it"),
    ("isDateBetween", "Tollgate does not provide it"),
    ("isPublicHoliday", "Tollgate does not provide it"),
    ("isLastWorkingDay", "Tollgate does not provide it"),
    ("dayOfMonth", "Tollgate does not provide it"),
    ("dayOfWeek", "Tollgate does not provide it"),
    ("hourOfDay", "Tollgate does not provide it"),
    ("fake", "Tollgate does not provide it"),
];

/// Pebble/Kestra filter name → helper suffix.
const FILTERS: &[(&str, &str)] = &[
    ("abs", "abs"),
    ("capitalize", "capitalize"),
    ("title", "title"),
    ("date", "date"),
    ("dateAdd", "dateAdd"),
    ("timestamp", "timestamp"),
    ("default", "default"),
    ("first", "first"),
    ("last", "last"),
    ("join", "join"),
    ("length", "length"),
    ("lower", "lower"),
    ("upper", "upper"),
    ("trim", "trim"),
    ("replace", "replace"),
    ("split", "split"),
    ("keys", "keys"),
    ("values", "values"),
    ("number", "number"),
    ("json", "toJson"),
    ("toJson", "toJson"),
    ("jsonEncode", "toJson"),
    ("string", "string"),
    ("slice", "slice"),
    ("sort", "sort"),
    ("rsort", "rsort"),
    ("reverse", "reverse"),
    ("urlencode", "urlencode"),
    ("urldecode", "urldecode"),
    ("base64encode", "base64encode"),
    ("base64decode", "base64decode"),
    ("sha256", "sha256"),
    ("sha512", "sha512"),
    ("startsWith", "startsWith"),
    ("endsWith", "endsWith"),
    ("substringBefore", "substringBefore"),
    ("substringAfter", "substringAfter"),
    ("substringBeforeLast", "substringBeforeLast"),
    ("substringAfterLast", "substringAfterLast"),
    ("abbreviate", "abbreviate"),
    ("merge", "merge"),
    ("indent", "indent"),
    ("nindent", "nindent"),
    ("flatten", "flatten"),
    ("distinct", "distinct"),
    ("uniq", "distinct"),
    ("chunk", "chunk"),
    ("slugify", "slugify"),
    ("jq", "jq"),
    ("yaml", "yaml"),
    ("md5", "md5"),
    ("sha1", "sha1"),
    ("className", "className"),
    ("timestampMilli", "timestampMilli"),
    ("timestampMicro", "timestampMicro"),
    ("timestampNano", "timestampNano"),
    ("escapeChar", "escapeChar"),
    ("numberformat", "numberformat"),
    ("escape", "escape"),
    ("e", "escape"),
    ("raw", "raw"),
];

/// Kestra filters Tollgate does not provide, with why.
const UNSUPPORTED_FILTERS: &[(&str, &str)] = &[
    ("toIon", "Amazon Ion is Kestra's internal storage format"),
    ("nl2br", "it is not part of Pebble's or Kestra's filters"),
    ("regexMatch", "Tollgate does not provide it"),
    ("regexExtract", "Tollgate does not provide it"),
    ("regexReplace", "use `replace(from, to, regexp=true)`"),
    ("condense", "Tollgate does not provide it"),
];

const TESTS: &[&str] = &[
    "null", "defined", "empty", "even", "odd", "iterable", "map", "json", "true", "false",
];

fn suggestion(name: &str, known: impl Iterator<Item = &'static str>) -> String {
    let best = known
        .map(|k| (strsim::jaro_winkler(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    best.map(|(_, k)| format!("; did you mean `{k}`?")).unwrap_or_default()
}

pub(crate) fn function_target(name: &str) -> Result<&'static str, String> {
    if let Some((_, target)) = FUNCTIONS.iter().find(|(n, _)| *n == name) {
        return Ok(target);
    }
    if STORAGE_FUNCTIONS.contains(&name) {
        return Err(format!(
            "`{name}()` is not supported in Tollgate: it names a namespace file, and Tollgate has no namespace files"
        ));
    }
    if let Some((_, why)) = UNSUPPORTED_FUNCTIONS.iter().find(|(n, _)| *n == name) {
        return Err(format!("`{name}()` is not supported in Tollgate: {why}"));
    }
    if FILTERS.iter().any(|(n, _)| *n == name) {
        return Err(format!("`{name}` is a filter, not a function: write `value | {name}`"));
    }
    Err(format!(
        "unknown function `{name}()`{}",
        suggestion(name, FUNCTIONS.iter().map(|(n, _)| *n))
    ))
}

pub(crate) fn filter_target(name: &str) -> Result<&'static str, String> {
    if let Some((_, target)) = FILTERS.iter().find(|(n, _)| *n == name) {
        return Ok(target);
    }
    if let Some((_, why)) = UNSUPPORTED_FILTERS.iter().find(|(n, _)| *n == name) {
        return Err(format!("the filter `{name}` is not supported in Tollgate: {why}"));
    }
    if FUNCTIONS.iter().any(|(n, _)| *n == name) {
        return Err(format!("`{name}` is a function, not a filter: write `{name}(…)`"));
    }
    Err(format!(
        "unknown filter `{name}`{}",
        suggestion(name, FILTERS.iter().map(|(n, _)| *n))
    ))
}

pub(crate) fn test_target(name: &str) -> Result<&'static str, String> {
    TESTS
        .iter()
        .find(|t| **t == name)
        .copied()
        .ok_or_else(|| format!("unknown test `is {name}`{}", suggestion(name, TESTS.iter().copied())))
}

fn literal(arg: Option<&Arg>) -> Option<Option<String>> {
    match arg {
        None => Some(None),
        Some(Arg { value, .. }) => match &value.kind {
            ExprKind::Str(s) => Some(Some(s.clone())),
            _ => None,
        },
    }
}

fn arg<'a>(args: &'a [Arg], index: usize, name: &str) -> Option<&'a Arg> {
    args.iter()
        .find(|a| a.name.as_deref() == Some(name))
        .or_else(|| args.iter().filter(|a| a.name.is_none()).nth(index))
}

/// The service lookup a call makes when its arguments are literals, so it can be done up front.
pub(crate) fn literal_lookup(target: &str, args: &[Arg]) -> Option<Lookup> {
    match target {
        "secret" => Some(Lookup::Secret {
            name: literal(arg(args, 0, "key"))??,
            namespace: literal(arg(args, 1, "namespace"))?,
        }),
        "kv" => Some(Lookup::Kv {
            key: literal(arg(args, 0, "key"))??,
            namespace: literal(arg(args, 1, "namespace"))?,
        }),
        "appLink" => Some(Lookup::AppLink(literal(arg(args, 0, "appId"))?)),
        "errorLogs" => Some(Lookup::ErrorLogs),
        "read" | "fileSize" | "fileExists" | "isFileEmpty" => Some(Lookup::File(literal(arg(args, 0, "path"))??)),
        _ => None,
    }
}

/// Arguments of a call: positional values and `name=value` pairs, taken by position or name.
pub(crate) struct Args {
    what: String,
    positional: Vec<Option<Value>>,
    named: Vec<(String, Option<Value>)>,
}

impl Args {
    pub(crate) fn new(what: &str, mut values: Vec<Value>) -> Result<Args, Error> {
        let mut named = Vec::new();
        if values.last().is_some_and(Value::is_kwargs)
            && let Some(kw) = values.pop()
        {
            for key in kw.try_iter()? {
                let value = kw.get_item(&key)?;
                named.push((to_text(&key), Some(value)));
            }
        }
        Ok(Args {
            what: what.to_string(),
            positional: values.into_iter().map(Some).collect(),
            named,
        })
    }

    /// The argument at `index` or called `name`.
    pub(crate) fn get(&mut self, index: usize, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.named.iter_mut().find(|(n, _)| n == name) {
            return v.take();
        }
        self.positional.get_mut(index).and_then(Option::take)
    }

    pub(crate) fn required(&mut self, index: usize, name: &str) -> Result<Value, Error> {
        self.get(index, name)
            .ok_or_else(|| invalid(format!("{} needs the argument `{name}`", self.what)))
    }

    pub(crate) fn text(&mut self, index: usize, name: &str) -> Result<Option<String>, Error> {
        match self.get(index, name) {
            None => Ok(None),
            Some(v) if v.is_none() || v.is_undefined() => Ok(None),
            Some(v) => Ok(Some(to_text(&v))),
        }
    }

    pub(crate) fn int(&mut self, index: usize, name: &str) -> Result<Option<i64>, Error> {
        match self.get(index, name) {
            None => Ok(None),
            Some(v) => match as_num(&v) {
                Some(Num::Int(i)) => Ok(Some(i)),
                Some(Num::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(f as i64)),
                _ => Err(invalid(format!(
                    "{}: `{name}` must be an integer, not `{}`",
                    self.what,
                    to_text(&v)
                ))),
            },
        }
    }

    /// Errors on arguments nobody asked for.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if let Some((name, _)) = self.named.iter().find(|(_, v)| v.is_some()) {
            return Err(invalid(format!("{} has no argument named `{name}`", self.what)));
        }
        if self.positional.iter().any(Option::is_some) {
            return Err(invalid(format!("{} was given too many arguments", self.what)));
        }
        Ok(())
    }
}

type FunctionImpl = fn(&State, &mut Args) -> Result<Value, Error>;
type FilterImpl = fn(&State, Value, &mut Args) -> Result<Value, Error>;
type TestImpl = fn(&Value, &mut Args) -> Result<bool, Error>;

/// Registers every function, filter and test under its `__tg_` helper name.
pub(crate) fn register(env: &mut Environment<'static>) {
    let functions: &[(&'static str, FunctionImpl)] = &[
        ("secret", fn_secret),
        ("kv", fn_kv),
        ("appLink", fn_app_link),
        ("now", fn_now),
        ("range", fn_range),
        ("max", fn_max),
        ("min", fn_min),
        ("fromJson", fn_from_json),
        ("yaml", fn_yaml),
        ("render", fn_render),
        ("renderOnce", fn_render_once),
        ("errorLogs", fn_error_logs),
        ("read", fn_read),
        ("fileSize", fn_file_size),
        ("fileExists", fn_file_exists),
        ("isFileEmpty", fn_is_file_empty),
        ("currentEachOutput", fn_current_each_output),
        ("uuid", fn_uuid),
        ("id", fn_id),
        ("randomInt", fn_random_int),
        ("fetchContext", fn_fetch_context),
    ];
    for &(name, imp) in functions {
        env.add_function(
            format!("__tg_fn_{name}"),
            move |state: &State, rest: Rest<Value>| -> Result<Value, Error> {
                let r = charge(state, 0)?;
                let mut args = Args::new(&format!("{name}()"), rest.0)?;
                let v = imp(state, &mut args)?;
                args.finish()?;
                r.charge(runtime::cost(&v))?;
                Ok(v)
            },
        );
    }
    let filters: &[(&'static str, FilterImpl)] = &[
        ("abs", fl_abs),
        ("capitalize", fl_capitalize),
        ("title", fl_title),
        ("date", fl_date),
        ("dateAdd", fl_date_add),
        ("timestamp", fl_timestamp),
        ("default", fl_default),
        ("first", fl_first),
        ("last", fl_last),
        ("join", fl_join),
        ("length", fl_length),
        ("lower", fl_lower),
        ("upper", fl_upper),
        ("trim", fl_trim),
        ("replace", fl_replace),
        ("split", fl_split),
        ("keys", fl_keys),
        ("values", fl_values),
        ("number", fl_number),
        ("toJson", fl_to_json),
        ("string", fl_string),
        ("slice", fl_slice),
        ("sort", fl_sort),
        ("rsort", fl_rsort),
        ("reverse", fl_reverse),
        ("urlencode", fl_urlencode),
        ("urldecode", fl_urldecode),
        ("base64encode", fl_base64encode),
        ("base64decode", fl_base64decode),
        ("sha256", fl_sha256),
        ("sha512", fl_sha512),
        ("startsWith", fl_starts_with),
        ("endsWith", fl_ends_with),
        ("substringBefore", fl_substring_before),
        ("substringAfter", fl_substring_after),
        ("substringBeforeLast", fl_substring_before_last),
        ("substringAfterLast", fl_substring_after_last),
        ("abbreviate", fl_abbreviate),
        ("merge", fl_merge),
        ("indent", fl_indent),
        ("nindent", fl_nindent),
        ("flatten", fl_flatten),
        ("distinct", fl_distinct),
        ("chunk", fl_chunk),
        ("slugify", fl_slugify),
        ("jq", fl_jq),
        ("yaml", fl_yaml),
        ("md5", fl_md5),
        ("sha1", fl_sha1),
        ("className", fl_class_name),
        ("timestampMilli", fl_timestamp_milli),
        ("timestampMicro", fl_timestamp_micro),
        ("timestampNano", fl_timestamp_nano),
        ("escapeChar", fl_escape_char),
        ("numberformat", fl_numberformat),
        ("escape", fl_escape),
        ("raw", fl_raw),
    ];
    for &(name, imp) in filters {
        env.add_filter(
            format!("__tg_fl_{name}"),
            move |state: &State, input: Value, rest: Rest<Value>| -> Result<Value, Error> {
                // Charged for what goes in and what comes out, so repeating a filter on a large
                // value in a loop runs out of budget.
                let r = charge(state, 0)?;
                r.charge(runtime::cost(&input))?;
                let mut args = Args::new(&format!("filter `{name}`"), rest.0)?;
                let v = imp(state, input, &mut args)?;
                args.finish()?;
                if let Some(s) = v.as_str() {
                    check_len(state, s.len())?;
                }
                r.charge(runtime::cost(&v))?;
                Ok(v)
            },
        );
    }
    let tests: &[(&'static str, TestImpl)] = &[
        ("null", t_null),
        ("defined", t_defined),
        ("empty", t_empty),
        ("even", t_even),
        ("odd", t_odd),
        ("iterable", t_iterable),
        ("map", t_map),
        ("json", t_json),
        ("true", t_true),
        ("false", t_false),
    ];
    for &(name, imp) in tests {
        env.add_function(
            format!("__tg_t_{name}"),
            move |state: &State, input: Value, rest: Rest<Value>| -> Result<bool, Error> {
                charge(state, 0)?;
                let mut args = Args::new(&format!("test `{name}`"), rest.0)?;
                let v = imp(&input, &mut args)?;
                args.finish()?;
                Ok(v)
            },
        );
    }
}

fn seq(items: Vec<Value>) -> Value {
    Value::from(items)
}

fn items(v: &Value, what: &str) -> Result<Vec<Value>, Error> {
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => Ok(v.try_iter()?.collect()),
        ValueKind::None | ValueKind::Undefined => Ok(Vec::new()),
        _ => Err(invalid(format!("{what} needs a list, not `{}`", to_text(v)))),
    }
}

// ---------------------------------------------------------------- functions

/// `secret('NAME')`: from the daemon's secret store, else the base64 env var `SECRET_NAME`.
/// The value is recorded so callers can mask it.
fn fn_secret(state: &State, args: &mut Args) -> Result<Value, Error> {
    let name = args
        .text(0, "key")?
        .ok_or_else(|| invalid("secret() needs the name of a secret"))?;
    let namespace = args.text(1, "namespace")?;
    let r = rt(state)?;
    let ns = namespace.clone().unwrap_or_else(|| r.namespace.clone());
    let mut s = r.lock();
    match s.secrets.get(&(ns.clone(), name.clone())).cloned() {
        Some(Ok(value)) => {
            if !value.is_empty() && !s.used_secrets.contains(&value) {
                s.used_secrets.push(value.clone());
            }
            Ok(Value::from(value))
        }
        Some(Err(message)) => {
            drop(s);
            Err(r.fail(
                Failure::Secret {
                    name,
                    message: message.clone(),
                },
                ErrorKind::InvalidOperation,
                message,
            ))
        }
        None => {
            s.missing.push(Lookup::Secret { name, namespace });
            Err(Error::new(ErrorKind::InvalidOperation, "secret not resolved yet"))
        }
    }
}

/// `kv('KEY')`, `kv('KEY', 'namespace')`, `kv(key=…, namespace=…, errorOnMissing=false)`.
fn fn_kv(state: &State, args: &mut Args) -> Result<Value, Error> {
    let key = args.text(0, "key")?.ok_or_else(|| invalid("kv() needs a key"))?;
    let namespace = args.text(1, "namespace")?;
    let error_on_missing = args.get(2, "errorOnMissing").is_none_or(|v| truthy(&v));
    let r = rt(state)?;
    let ns = namespace.clone().unwrap_or_else(|| r.namespace.clone());
    let mut s = r.lock();
    match s.kv.get(&(ns.clone(), key.clone())).cloned() {
        Some(Err(refused)) => {
            drop(s);
            Err(r.fail(Failure::Kv(refused.clone()), ErrorKind::InvalidOperation, refused))
        }
        Some(Ok(Some(v))) => Ok(Value::from_serialize(&v)),
        Some(Ok(None)) if !error_on_missing => Ok(Value::from(())),
        Some(Ok(None)) => {
            drop(s);
            let msg = format!("the KV key `{key}` does not exist in namespace `{ns}`");
            Err(r.fail(Failure::Kv(msg.clone()), ErrorKind::InvalidOperation, msg))
        }
        None => {
            s.missing.push(Lookup::Kv { key, namespace });
            Err(Error::new(ErrorKind::InvalidOperation, "kv not resolved yet"))
        }
    }
}

/// The file a file function names, looked up before the render pass (or in the next one).
fn file_view(state: &State, args: &mut Args, what: &str) -> Result<Option<crate::expr::FileView>, Error> {
    let uri = args
        .text(0, "path")?
        .ok_or_else(|| invalid(format!("{what}() needs the URI of a file")))?;
    let r = rt(state)?;
    let mut s = r.lock();
    match s.files.get(&uri).cloned() {
        Some(Ok(view)) => Ok(view),
        Some(Err(why)) => {
            drop(s);
            Err(r.fail(Failure::File(why.clone()), ErrorKind::InvalidOperation, why))
        }
        None => {
            s.missing.push(Lookup::File(uri));
            Err(Error::new(ErrorKind::InvalidOperation, "file not resolved yet"))
        }
    }
}

/// `read(uri)`: a file of the internal storage as text.
fn fn_read(state: &State, args: &mut Args) -> Result<Value, Error> {
    let view = file_view(state, args, "read")?;
    let r = rt(state)?;
    match view {
        Some(crate::expr::FileView { text: Some(t), .. }) => Ok(Value::from(t)),
        Some(crate::expr::FileView { size, .. }) => {
            let why = format!(
                "read(): the file holds {size} bytes, more than the {} read() returns, or is not UTF-8 text",
                crate::engine::files::MAX_READ_BYTES
            );
            Err(r.fail(Failure::File(why.clone()), ErrorKind::InvalidOperation, why))
        }
        None => {
            let why = "read(): no such file".to_string();
            Err(r.fail(Failure::File(why.clone()), ErrorKind::InvalidOperation, why))
        }
    }
}

/// `fileSize(uri)`: its size in bytes.
fn fn_file_size(state: &State, args: &mut Args) -> Result<Value, Error> {
    match file_view(state, args, "fileSize")? {
        Some(v) => Ok(Value::from(v.size)),
        None => {
            let r = rt(state)?;
            let why = "fileSize(): no such file".to_string();
            Err(r.fail(Failure::File(why.clone()), ErrorKind::InvalidOperation, why))
        }
    }
}

/// `fileExists(uri)`.
fn fn_file_exists(state: &State, args: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(file_view(state, args, "fileExists")?.is_some()))
}

/// `isFileEmpty(uri)`.
fn fn_is_file_empty(state: &State, args: &mut Args) -> Result<Value, Error> {
    match file_view(state, args, "isFileEmpty")? {
        Some(v) => Ok(Value::from(v.size == 0)),
        None => {
            let r = rt(state)?;
            let why = "isFileEmpty(): no such file".to_string();
            Err(r.fail(Failure::File(why.clone()), ErrorKind::InvalidOperation, why))
        }
    }
}

/// `appLink()` / `appLink('appId')`: a link a person can open to act on this execution.
fn fn_app_link(state: &State, args: &mut Args) -> Result<Value, Error> {
    let app = args.text(0, "appId")?;
    let r = rt(state)?;
    let mut s = r.lock();
    match s.links.get(&app).cloned() {
        Some(link) => Ok(Value::from(link)),
        None => {
            s.missing.push(Lookup::AppLink(app));
            Err(Error::new(ErrorKind::InvalidOperation, "appLink not resolved yet"))
        }
    }
}

fn zone_arg(args: &mut Args) -> Result<Zone, Error> {
    match args.text(usize::MAX, "timeZone")? {
        Some(z) => Zone::parse(&z).map_err(invalid),
        None => Zone::parse("UTC").map_err(invalid),
    }
}

/// `now()`: the current time as ISO text (`format=` and `timeZone=` as for `date`).
fn fn_now(_state: &State, args: &mut Args) -> Result<Value, Error> {
    let zone = zone_arg(args)?;
    let fmt = args.text(usize::MAX, "format")?.unwrap_or_else(|| "iso".to_string());
    let _ = args.get(usize::MAX, "locale");
    date::format(&zone.at(Utc::now()), &fmt)
        .map(Value::from)
        .map_err(invalid)
}

fn fn_range(state: &State, args: &mut Args) -> Result<Value, Error> {
    let start = args.int(0, "start")?.ok_or_else(|| invalid("range() needs a start"))?;
    let end = args.int(1, "end")?.ok_or_else(|| invalid("range() needs an end"))?;
    let step = args.int(2, "increment")?.unwrap_or(1);
    runtime::make_range(state, start, end, step)
}

fn extreme(args: &mut Args, want_max: bool) -> Result<Value, Error> {
    let mut best: Option<Value> = None;
    let mut i = 0;
    while let Some(v) = args.get(i, "") {
        let candidates = if v.kind() == ValueKind::Seq {
            v.try_iter()?.collect()
        } else {
            vec![v]
        };
        for c in candidates {
            best = Some(match best {
                None => c,
                Some(b) => {
                    let better = match (as_f64(&c), as_f64(&b)) {
                        (Some(x), Some(y)) => {
                            if want_max {
                                x > y
                            } else {
                                x < y
                            }
                        }
                        _ => {
                            if want_max {
                                c > b
                            } else {
                                c < b
                            }
                        }
                    };
                    if better { c } else { b }
                }
            });
        }
        i += 1;
    }
    best.ok_or_else(|| invalid("max()/min() need at least one value"))
}

fn fn_max(_state: &State, args: &mut Args) -> Result<Value, Error> {
    extreme(args, true)
}

fn fn_min(_state: &State, args: &mut Args) -> Result<Value, Error> {
    extreme(args, false)
}

/// `fromJson('{"a":1}')`: parses JSON text into a value.
fn fn_from_json(_state: &State, args: &mut Args) -> Result<Value, Error> {
    let text = args.required(0, "json")?;
    if text.is_none() {
        return Ok(Value::from(()));
    }
    let parsed: serde_json::Value =
        serde_json::from_str(&to_text(&text)).map_err(|e| invalid(format!("fromJson(): not valid JSON: {e}")))?;
    Ok(Value::from_serialize(&parsed))
}

// ---------------------------------------------------------------- filters

fn fl_abs(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    match as_num(&v) {
        Some(Num::Int(i)) => Ok(i
            .checked_abs()
            .map_or_else(|| Value::from((i as f64).abs()), Value::from)),
        Some(Num::Float(f)) => Ok(Value::from(f.abs())),
        None => Err(invalid(format!("abs needs a number, not `{}`", to_text(&v)))),
    }
}

fn capitalize_word(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn fl_capitalize(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(capitalize_word(&to_text(&v))))
}

fn fl_title(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for ch in text.chars() {
        if start && ch.is_alphanumeric() {
            out.extend(ch.to_uppercase());
            start = false;
        } else {
            out.push(ch);
            if ch.is_whitespace() {
                start = true;
            }
        }
    }
    Ok(Value::from(out))
}

/// The instant a date filter's input stands for: text (ISO or `existingFormat`) or epoch seconds.
fn input_instant(v: &Value, zone: &Zone, existing: Option<&str>) -> Result<chrono::DateTime<Utc>, Error> {
    match as_num(v) {
        Some(Num::Int(i)) => date::from_epoch_seconds(i as f64).map_err(invalid),
        Some(Num::Float(f)) => date::from_epoch_seconds(f).map_err(invalid),
        None if v.kind() == ValueKind::String => {
            date::parse(v.as_str().unwrap_or_default(), zone, existing).map_err(invalid)
        }
        None => Err(invalid(format!("cannot read `{}` as a date", to_text(v)))),
    }
}

/// `date(format, timeZone=, existingFormat=)` with Java patterns and Kestra's named formats.
fn fl_date(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let fmt = args.text(0, "format")?.unwrap_or_else(|| "iso".to_string());
    let zone = match args.text(1, "timeZone")? {
        Some(z) => Zone::parse(&z).map_err(invalid)?,
        None => Zone::parse("UTC").map_err(invalid)?,
    };
    let existing = args.text(2, "existingFormat")?;
    let _ = args.get(3, "locale");
    if v.is_none() {
        return Ok(Value::from(()));
    }
    let instant = input_instant(&v, &zone, existing.as_deref())?;
    date::format(&zone.at(instant), &fmt).map(Value::from).map_err(invalid)
}

/// `dateAdd(amount, unit)` with Java `ChronoUnit` names (`DAYS`, `HOURS`, …).
fn fl_date_add(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let amount = args
        .int(0, "amount")?
        .ok_or_else(|| invalid("dateAdd needs an amount"))?;
    let unit = args
        .text(1, "unit")?
        .ok_or_else(|| invalid("dateAdd needs a unit such as DAYS"))?;
    let fmt = args.text(2, "format")?.unwrap_or_else(|| "iso".to_string());
    let zone = match args.text(3, "timeZone")? {
        Some(z) => Zone::parse(&z).map_err(invalid)?,
        None => Zone::parse("UTC").map_err(invalid)?,
    };
    let existing = args.text(4, "existingFormat")?;
    let _ = args.get(5, "locale");
    let instant = input_instant(&v, &zone, existing.as_deref())?;
    let local = zone.at(instant).dt;
    let overflow = || invalid(format!("dateAdd({amount}, {unit}) is out of range"));
    let shifted = match unit.to_ascii_uppercase().as_str() {
        "NANOS" => local.checked_add_signed(Duration::nanoseconds(amount)),
        "MICROS" => local.checked_add_signed(Duration::microseconds(amount)),
        "MILLIS" => local.checked_add_signed(Duration::try_milliseconds(amount).ok_or_else(overflow)?),
        "SECONDS" => local.checked_add_signed(Duration::try_seconds(amount).ok_or_else(overflow)?),
        "MINUTES" => local.checked_add_signed(Duration::try_minutes(amount).ok_or_else(overflow)?),
        "HOURS" => local.checked_add_signed(Duration::try_hours(amount).ok_or_else(overflow)?),
        "HALF_DAYS" => local.checked_add_signed(Duration::try_hours(amount.saturating_mul(12)).ok_or_else(overflow)?),
        "DAYS" => local.checked_add_signed(Duration::try_days(amount).ok_or_else(overflow)?),
        "WEEKS" => local.checked_add_signed(Duration::try_weeks(amount).ok_or_else(overflow)?),
        "MONTHS" | "YEARS" | "DECADES" | "CENTURIES" => {
            let factor = match unit.to_ascii_uppercase().as_str() {
                "MONTHS" => 1,
                "YEARS" => 12,
                "DECADES" => 120,
                _ => 1200,
            };
            let months = amount.checked_mul(factor).ok_or_else(overflow)?;
            let m = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| overflow())?);
            if months >= 0 {
                local.checked_add_months(m)
            } else {
                local.checked_sub_months(m)
            }
        }
        other => {
            return Err(invalid(format!(
                "dateAdd: unknown unit `{other}` (use SECONDS, MINUTES, HOURS, DAYS, WEEKS, MONTHS, YEARS)"
            )));
        }
    }
    .ok_or_else(overflow)?;
    date::format(&zone.at(shifted.with_timezone(&Utc)), &fmt)
        .map(Value::from)
        .map_err(invalid)
}

/// `timestamp`: epoch seconds of a date.
fn fl_timestamp(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let zone = match args.text(0, "timeZone")? {
        Some(z) => Zone::parse(&z).map_err(invalid)?,
        None => Zone::parse("UTC").map_err(invalid)?,
    };
    let existing = args.text(1, "existingFormat")?;
    Ok(Value::from(input_instant(&v, &zone, existing.as_deref())?.timestamp()))
}

/// Pebble's emptiness: null, blank text, empty collections.
fn is_empty(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => true,
        ValueKind::String => v.as_str().unwrap_or_default().trim().is_empty(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => v.len() == Some(0),
        _ => false,
    }
}

/// `default(value)`: the value when the input is missing, null or empty (Pebble's rule).
fn fl_default(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let fallback = args.required(0, "default")?;
    Ok(if is_empty(&v) { fallback } else { v })
}

fn fl_first(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(match v.kind() {
        ValueKind::String => v
            .as_str()
            .and_then(|s| s.chars().next())
            .map_or(Value::from(()), |c| Value::from(c.to_string())),
        ValueKind::Map => v
            .try_iter()?
            .next()
            .map_or(Value::from(()), |k| v.get_item(&k).unwrap_or_default()),
        _ => items(&v, "first")?.into_iter().next().unwrap_or(Value::from(())),
    })
}

fn fl_last(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(match v.kind() {
        ValueKind::String => v
            .as_str()
            .and_then(|s| s.chars().last())
            .map_or(Value::from(()), |c| Value::from(c.to_string())),
        ValueKind::Map => v
            .try_iter()?
            .last()
            .map_or(Value::from(()), |k| v.get_item(&k).unwrap_or_default()),
        _ => items(&v, "last")?.into_iter().last().unwrap_or(Value::from(())),
    })
}

fn fl_join(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let sep = args.text(0, "separator")?.unwrap_or_default();
    let mut out = String::new();
    for (i, item) in items(&v, "join")?.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        out.push_str(&to_text(item));
        check_len(state, out.len())?;
    }
    Ok(Value::from(out))
}

fn fl_length(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(match v.kind() {
        ValueKind::None | ValueKind::Undefined => 0,
        ValueKind::String => v.as_str().unwrap_or_default().chars().count(),
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => v.len().unwrap_or(0),
        _ => to_text(&v).chars().count(),
    }))
}

fn fl_lower(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(to_text(&v).to_lowercase()))
}

fn fl_upper(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(to_text(&v).to_uppercase()))
}

fn fl_trim(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(to_text(&v).trim()))
}

/// Replaces every `from` with `to` in `text`, refusing results over the size limit.
fn replace_all(state: &State, text: &str, from: &str, to: &str) -> Result<String, Error> {
    if from.is_empty() {
        return Ok(text.to_string());
    }
    let grows = to.len().saturating_sub(from.len());
    check_len(state, text.len() + text.matches(from).count().saturating_mul(grows))?;
    Ok(text.replace(from, to))
}

/// `replace({'a': 'b'})` (Pebble) or `replace('a', 'b', regexp=false)` (Kestra).
fn fl_replace(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let mut text = to_text(&v);
    let first = args.required(0, "replace_pairs")?;
    if first.kind() == ValueKind::Map {
        for key in first.try_iter()? {
            let to = to_text(&first.get_item(&key)?);
            text = replace_all(state, &text, &to_text(&key), &to)?;
        }
        return Ok(Value::from(text));
    }
    let from = to_text(&first);
    let to = args.text(1, "replacement")?.unwrap_or_default();
    let regexp = args.get(2, "regexp").is_some_and(|v| truthy(&v));
    if regexp {
        let re = regex::RegexBuilder::new(&from)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| invalid(format!("replace: bad regular expression `{from}`: {e}")))?;
        // Java writes groups as $1; the regex crate reads `$1x` as a group named "1x", so brace them.
        let java_groups = regex::Regex::new(r"\$(\d+)").map_err(|e| invalid(e.to_string()))?;
        let to = java_groups.replace_all(&to, "$${$1}").into_owned();
        let out = re.replace_all(&text, to.as_str()).into_owned();
        check_len(state, out.len())?;
        return Ok(Value::from(out));
    }
    Ok(Value::from(replace_all(state, &text, &from, &to)?))
}

/// `split(delimiter, limit)`: the delimiter is literal text.
fn fl_split(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let delim = args
        .text(0, "delimiter")?
        .ok_or_else(|| invalid("split needs a delimiter"))?;
    let limit = args.int(1, "limit")?.filter(|l| *l > 0);
    let parts: Vec<Value> = match (delim.is_empty(), limit) {
        (true, _) => text.chars().map(|c| Value::from(c.to_string())).collect(),
        (false, Some(l)) => text.splitn(l as usize, delim.as_str()).map(Value::from).collect(),
        (false, None) => text.split(delim.as_str()).map(Value::from).collect(),
    };
    Ok(seq(parts))
}

fn fl_keys(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Map => Ok(seq(v.try_iter()?.collect())),
        ValueKind::None => Ok(seq(Vec::new())),
        _ => Err(invalid(format!("keys needs a map, not `{}`", to_text(&v)))),
    }
}

fn fl_values(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::Map => Ok(seq(v.try_iter()?.map(|k| v.get_item(&k).unwrap_or_default()).collect())),
        ValueKind::None => Ok(seq(Vec::new())),
        _ => Err(invalid(format!("values needs a map, not `{}`", to_text(&v)))),
    }
}

/// `number` / `number('INT'|'LONG'|'FLOAT'|'DOUBLE')`: text to a number.
fn fl_number(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let kind = args.text(0, "type")?.map(|t| t.to_ascii_uppercase());
    let parsed = match as_num(&v) {
        Some(n) => n,
        None => {
            let text = to_text(&v);
            let t = text.trim();
            match t.parse::<i64>() {
                Ok(i) => Num::Int(i),
                Err(_) => match t.parse::<f64>() {
                    Ok(f) if f.is_finite() => Num::Float(f),
                    _ => return Err(invalid(format!("`{t}` is not a number"))),
                },
            }
        }
    };
    Ok(match (kind.as_deref(), parsed) {
        (Some("INT" | "LONG" | "BIGINTEGER"), Num::Float(f)) => Value::from(f.trunc() as i64),
        (Some("FLOAT" | "DOUBLE" | "BIGDECIMAL"), Num::Int(i)) => Value::from(i as f64),
        (Some("INT" | "LONG" | "BIGINTEGER" | "FLOAT" | "DOUBLE" | "BIGDECIMAL") | None, n) => runtime::num_value(n),
        (Some(other), _) => {
            return Err(invalid(format!(
                "number: unknown type `{other}` (use INT, LONG, FLOAT or DOUBLE)"
            )));
        }
    })
}

fn fl_to_json(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    to_json_text(&v).map(Value::from)
}

fn fl_string(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(to_text(&v)))
}

/// Resolves Pebble slice bounds (`fromIndex` inclusive, `toIndex` exclusive) against `len`.
fn bounds(args: &mut Args, len: usize) -> Result<(usize, usize), Error> {
    let from = args.int(0, "fromIndex")?.unwrap_or(0);
    let to = args.int(1, "toIndex")?.unwrap_or(len as i64);
    let clamp = |i: i64| -> usize { if i < 0 { 0 } else { (i as usize).min(len) } };
    let (a, b) = (clamp(from), clamp(to));
    Ok((a, b.max(a)))
}

fn fl_slice(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    if v.kind() == ValueKind::String {
        let chars: Vec<char> = v.as_str().unwrap_or_default().chars().collect();
        let (a, b) = bounds(args, chars.len())?;
        return Ok(Value::from(chars[a..b].iter().collect::<String>()));
    }
    let list = items(&v, "slice")?;
    let (a, b) = bounds(args, list.len())?;
    Ok(seq(list[a..b].to_vec()))
}

fn sorted(v: &Value) -> Result<Vec<Value>, Error> {
    let mut list = items(v, "sort")?;
    list.sort_by(|a, b| match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    Ok(list)
}

fn fl_sort(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(seq(sorted(&v)?))
}

fn fl_rsort(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let mut list = sorted(&v)?;
    list.reverse();
    Ok(seq(list))
}

fn fl_reverse(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    if v.kind() == ValueKind::String {
        return Ok(Value::from(
            v.as_str().unwrap_or_default().chars().rev().collect::<String>(),
        ));
    }
    let mut list = items(&v, "reverse")?;
    list.reverse();
    Ok(seq(list))
}

fn fl_urlencode(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    // Java's URLEncoder: unreserved characters stay, space becomes '+', the rest is %XX of UTF-8.
    let mut out = String::new();
    for b in to_text(&v).bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    Ok(Value::from(out))
}

fn fl_urldecode(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => return Err(invalid(format!("urldecode: bad escape in `{text}`"))),
                }
            }
            b'%' => return Err(invalid(format!("urldecode: incomplete escape in `{text}`"))),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Value::from)
        .map_err(|_| invalid("urldecode: the result is not UTF-8 text"))
}

fn fl_base64encode(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(to_text(&v)),
    ))
}

fn fl_base64decode(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| invalid(format!("base64decode: not base64: {e}")))?;
    String::from_utf8(bytes)
        .map(Value::from)
        .map_err(|_| invalid("base64decode: the decoded bytes are not UTF-8 text"))
}

fn fl_sha256(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(hex::encode(sha2::Sha256::digest(to_text(&v).as_bytes()))))
}

fn fl_sha512(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(hex::encode(sha2::Sha512::digest(to_text(&v).as_bytes()))))
}

fn fl_starts_with(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let prefix = args.text(0, "value")?.unwrap_or_default();
    Ok(Value::from(to_text(&v).starts_with(&prefix)))
}

fn fl_ends_with(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let suffix = args.text(0, "value")?.unwrap_or_default();
    Ok(Value::from(to_text(&v).ends_with(&suffix)))
}

fn separator(args: &mut Args, what: &str) -> Result<String, Error> {
    args.text(0, "separator")?
        .ok_or_else(|| invalid(format!("{what} needs a separator")))
}

fn fl_substring_before(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let sep = separator(args, "substringBefore")?;
    Ok(Value::from(text.find(&sep).map_or(text.as_str(), |i| &text[..i])))
}

fn fl_substring_after(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let sep = separator(args, "substringAfter")?;
    Ok(Value::from(text.find(&sep).map_or("", |i| &text[i + sep.len()..])))
}

fn fl_substring_before_last(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let sep = separator(args, "substringBeforeLast")?;
    Ok(Value::from(text.rfind(&sep).map_or(text.as_str(), |i| &text[..i])))
}

fn fl_substring_after_last(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let sep = separator(args, "substringAfterLast")?;
    Ok(Value::from(text.rfind(&sep).map_or("", |i| &text[i + sep.len()..])))
}

/// `abbreviate(n)`: at most n characters, ending with `...` when cut.
fn fl_abbreviate(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let text = to_text(&v);
    let max = args
        .int(0, "length")?
        .ok_or_else(|| invalid("abbreviate needs a length"))?
        .max(0) as usize;
    let count = text.chars().count();
    if count <= max {
        return Ok(Value::from(text));
    }
    if max < 3 {
        return Ok(Value::from(text.chars().take(max).collect::<String>()));
    }
    Ok(Value::from(format!(
        "{}...",
        text.chars().take(max - 3).collect::<String>()
    )))
}

/// `merge(other)`: lists concatenated, maps merged (the argument wins).
fn fl_merge(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let other = args.required(0, "items")?;
    match (v.kind(), other.kind()) {
        (ValueKind::Map, ValueKind::Map) => {
            let mut m: BTreeMap<String, Value> = BTreeMap::new();
            for src in [&v, &other] {
                for k in src.try_iter()? {
                    m.insert(to_text(&k), src.get_item(&k)?);
                }
            }
            charge(state, m.len())?;
            Ok(Value::from_serialize(&m))
        }
        (ValueKind::Seq, _) => {
            let mut list = items(&v, "merge")?;
            if other.kind() == ValueKind::Seq {
                list.extend(items(&other, "merge")?);
            } else {
                list.push(other);
            }
            check_len(state, list.len())?;
            charge(state, list.len())?;
            Ok(seq(list))
        }
        _ => Err(invalid("merge needs two maps or a list")),
    }
}

fn indent_lines(state: &State, text: &str, width: usize, prefix: &str, first: bool) -> Result<String, Error> {
    let pad = prefix.repeat(width.min(MAX_STRING_BYTES));
    check_len(state, text.len() + pad.len().saturating_mul(text.lines().count() + 1))?;
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if (i > 0 || first) && !line.is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out)
}

/// `indent(n)`: indents every line but the first (Kestra).
fn fl_indent(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let width = args.int(0, "amount")?.unwrap_or(0).max(0) as usize;
    let prefix = args.text(1, "prefix")?.unwrap_or_else(|| " ".to_string());
    indent_lines(state, &to_text(&v), width, &prefix, false).map(Value::from)
}

/// `nindent(n)`: a newline, then every line indented.
fn fl_nindent(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let width = args.int(0, "amount")?.unwrap_or(0).max(0) as usize;
    let prefix = args.text(1, "prefix")?.unwrap_or_else(|| " ".to_string());
    Ok(Value::from(format!(
        "\n{}",
        indent_lines(state, &to_text(&v), width, &prefix, true)?
    )))
}

fn fl_flatten(state: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let mut out = Vec::new();
    for item in items(&v, "flatten")? {
        if item.kind() == ValueKind::Seq {
            out.extend(item.try_iter()?);
        } else {
            out.push(item);
        }
    }
    charge(state, out.len())?;
    Ok(seq(out))
}

fn fl_distinct(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let mut out: Vec<Value> = Vec::new();
    for item in items(&v, "distinct")? {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(seq(out))
}

fn fl_chunk(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let size = args.int(0, "size")?.ok_or_else(|| invalid("chunk needs a size"))?;
    if size <= 0 {
        return Err(invalid("chunk size must be positive"));
    }
    let list = items(&v, "chunk")?;
    Ok(seq(list.chunks(size as usize).map(|c| seq(c.to_vec())).collect()))
}

fn fl_slugify(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let mut out = String::new();
    let mut dash = false;
    for ch in to_text(&v).to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    Ok(Value::from(out))
}

// ---------------------------------------------------------------- tests

fn t_null(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(v.is_none() || v.is_undefined())
}

/// Pebble's `defined`: present and not null.
fn t_defined(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(!v.is_none() && !v.is_undefined())
}

fn t_empty(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(is_empty(v))
}

fn int_of(v: &Value, what: &str) -> Result<i64, Error> {
    match as_num(v) {
        Some(Num::Int(i)) => Ok(i),
        _ => Err(invalid(format!("`is {what}` needs an integer, not `{}`", to_text(v)))),
    }
}

fn t_even(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(int_of(v, "even")? % 2 == 0)
}

fn t_odd(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(int_of(v, "odd")? % 2 != 0)
}

fn t_iterable(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable))
}

fn t_map(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(v.kind() == ValueKind::Map)
}

fn t_json(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(v.as_str()
        .is_some_and(|s| serde_json::from_str::<serde_json::Value>(s).is_ok()))
}

/// `is true`: the boolean true, or the text "true" (any case) as typed inputs may arrive.
fn t_true(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(match v.kind() {
        ValueKind::Bool => v.is_true(),
        ValueKind::String => v.as_str().is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
        _ => false,
    })
}

fn t_false(v: &Value, _: &mut Args) -> Result<bool, Error> {
    Ok(match v.kind() {
        ValueKind::Bool => !v.is_true(),
        ValueKind::String => v.as_str().is_some_and(|s| s.trim().eq_ignore_ascii_case("false")),
        _ => false,
    })
}

// ---------------------------------------------------------------- Kestra functions

/// `yaml('a: 1')`: parses YAML text into a value.
fn fn_yaml(_state: &State, args: &mut Args) -> Result<Value, Error> {
    let text = args.required(0, "yaml")?;
    if text.kind() != ValueKind::String {
        return Err(invalid(format!("yaml() needs YAML text, not `{}`", to_text(&text))));
    }
    let text = text.as_str().unwrap_or_default();
    // The YAML parser's time grows with the square of the nesting: bound it first.
    crate::yaml::depth::check(text).map_err(|d| {
        invalid(format!(
            "yaml(): the YAML nests more than {} levels (line {}, column {})",
            d.limit, d.line, d.column
        ))
    })?;
    let parsed: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| invalid(format!("yaml(): not valid YAML: {e}")))?;
    Ok(Value::from_serialize(crate::yaml::yaml_to_json(&parsed)))
}

/// Decrements the `render()` depth when a render call ends, however it ends.
struct DepthGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `render(text, recursive=true)`: renders text (or every text in a list or map) again with the
/// same variables; recursive renders until the text stops changing.
fn fn_render(state: &State, args: &mut Args) -> Result<Value, Error> {
    let input = args.required(0, "toRender")?;
    let recursive = match args.get(1, "recursive") {
        None => true,
        Some(v) if v.kind() == ValueKind::Bool => v.is_true(),
        Some(v) if v.is_none() => true,
        Some(v) => {
            return Err(invalid(format!(
                "render(): `recursive` must be true or false, not `{}`",
                to_text(&v)
            )));
        }
    };
    render_call(state, input, recursive)
}

/// `renderOnce(text)`: `render(text, recursive=false)`.
fn fn_render_once(state: &State, args: &mut Args) -> Result<Value, Error> {
    let input = args.required(0, "toRender")?;
    render_call(state, input, false)
}

fn render_call(state: &State, input: Value, recursive: bool) -> Result<Value, Error> {
    let r = rt(state)?;
    let depth = r.render_depth.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _guard = DepthGuard(&r.render_depth);
    if depth >= super::limits::MAX_NESTING {
        let msg = format!(
            "render() calls nest more than {} deep (a text that renders itself?)",
            super::limits::MAX_NESTING
        );
        return Err(r.fail(Failure::Limit(msg.clone()), ErrorKind::InvalidOperation, msg));
    }
    render_value(state, &r, input, recursive)
}

fn render_value(
    state: &State,
    r: &std::sync::Arc<runtime::Runtime>,
    v: Value,
    recursive: bool,
) -> Result<Value, Error> {
    match v.kind() {
        ValueKind::String => render_text(state, r, v.as_str().unwrap_or_default(), recursive).map(Value::from),
        ValueKind::Seq => {
            let mut out = Vec::new();
            for item in v.try_iter()? {
                out.push(render_value(state, r, item, recursive)?);
            }
            Ok(seq(out))
        }
        ValueKind::Map => {
            let mut out: BTreeMap<String, Value> = BTreeMap::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                let key = render_text(state, r, &to_text(&k), recursive)?;
                out.insert(key, render_value(state, r, item, recursive)?);
            }
            Ok(Value::from_serialize(&out))
        }
        _ => Ok(v),
    }
}

/// Most renders `render(…, recursive=true)` does before giving up on a text that keeps changing.
const MAX_RECURSIVE_RENDERS: usize = 16;

fn render_text(
    state: &State,
    r: &std::sync::Arc<runtime::Runtime>,
    text: &str,
    recursive: bool,
) -> Result<String, Error> {
    let mut current = text.to_string();
    for _ in 0..MAX_RECURSIVE_RENDERS {
        let next = render_once(state, r, &current)?;
        if !recursive || next == current {
            return Ok(next);
        }
        current = next;
    }
    Err(invalid(format!(
        "render(): the text still changed after {MAX_RECURSIVE_RENDERS} renders"
    )))
}

fn render_once(state: &State, r: &std::sync::Arc<runtime::Runtime>, text: &str) -> Result<String, Error> {
    if !super::has_blocks(text) {
        return Ok(text.to_string());
    }
    let short: String = text.chars().take(80).collect();
    let tr = super::translate::translate(text)
        .map_err(|e| invalid(format!("render(): `{short}` is not a valid template: {}", e.message)))?;
    let tmpl = state
        .env()
        .template_from_str(&tr.source)
        .map_err(|e| invalid(format!("render(): `{short}` is not a valid template: {e}")))?;
    let root = Value::from_object(super::Root {
        vars: r.vars.clone(),
        runtime: Value::from_dyn_object(std::sync::Arc::clone(r)),
    });
    let out = tmpl.render(root)?;
    check_len(state, out.len())?;
    Ok(out)
}

/// `errorLogs()`: the ERROR log lines of this execution so far.
fn fn_error_logs(state: &State, _args: &mut Args) -> Result<Value, Error> {
    let r = rt(state)?;
    let mut s = r.lock();
    match &s.error_logs {
        Some(lines) => Ok(Value::from_serialize(lines)),
        None => {
            s.missing.push(Lookup::ErrorLogs);
            Err(Error::new(ErrorKind::InvalidOperation, "errorLogs not resolved yet"))
        }
    }
}

/// `currentEachOutput(outputs.task)`: the outputs of `task` for the current ForEach iteration
/// (at every enclosing loop level), without spelling `outputs.task[taskrun.value]`.
fn fn_current_each_output(state: &State, args: &mut Args) -> Result<Value, Error> {
    let outputs = args.required(0, "outputs")?;
    if outputs.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "currentEachOutput() needs the outputs of a task inside a ForEach, such as `outputs.my_task`, not `{}`",
            to_text(&outputs)
        )));
    }
    let r = rt(state)?;
    let present = |v: &Value| !v.is_undefined() && !v.is_none();
    let value = r
        .vars
        .get_attr("taskrun")
        .and_then(|t| t.get_attr("value"))
        .unwrap_or_default();
    // `parents` lists every enclosing task run, nearest first, each with the value of the loop
    // iteration it is in; a loop level begins where that value changes.
    let mut outer_values = Vec::new();
    let mut last = value.clone();
    let parents = r.vars.get_attr("parents").unwrap_or_default();
    if parents.kind() == ValueKind::Seq {
        for p in parents.try_iter()? {
            let v = p
                .get_attr("taskrun")
                .and_then(|t| t.get_attr("value"))
                .unwrap_or_default();
            if present(&v) && v != last {
                outer_values.push(v.clone());
            }
            last = v;
        }
    }
    let mut cur = outputs;
    for v in outer_values.iter().rev() {
        cur = cur.get_item(v).unwrap_or_default();
    }
    if !present(&value) {
        return Err(invalid(
            "currentEachOutput() can only be used in a task inside a ForEach (there is no current iteration value here)",
        ));
    }
    // No outputs for this iteration (yet) is null, as in Kestra: `currentEachOutput(x).y ?? z`.
    let out = cur.get_item(&value).unwrap_or_default();
    Ok(if out.is_undefined() { Value::from(()) } else { out })
}

/// `uuid()`: a random (version 4) UUID.
fn fn_uuid(_state: &State, _args: &mut Args) -> Result<Value, Error> {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(Value::from(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )))
}

/// `id()`: a short random identifier, 22 base-62 characters like Kestra's ids.
fn fn_id(_state: &State, _args: &mut Args) -> Result<Value, Error> {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let id: String = (0..22)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    Ok(Value::from(id))
}

/// `randomInt(lower, upper)`: an integer from `lower` (included) to `upper` (excluded).
fn fn_random_int(_state: &State, args: &mut Args) -> Result<Value, Error> {
    use rand::Rng as _;
    let lower = args
        .int(0, "lower")?
        .ok_or_else(|| invalid("randomInt() needs `lower`"))?;
    let upper = args
        .int(1, "upper")?
        .ok_or_else(|| invalid("randomInt() needs `upper`"))?;
    if upper < lower {
        return Err(invalid(format!(
            "randomInt(): `upper` ({upper}) is less than `lower` ({lower})"
        )));
    }
    if upper == lower {
        return Ok(Value::from(lower));
    }
    Ok(Value::from(rand::thread_rng().gen_range(lower..upper)))
}

/// `fetchContext()` / `printContext()`: every variable the template sees, as one map.
fn fn_fetch_context(state: &State, _args: &mut Args) -> Result<Value, Error> {
    Ok(rt(state)?.vars.clone())
}

// ---------------------------------------------------------------- Kestra filters

/// `jq(expression)`: the list of values the jq program yields on the input (JSON text or a value).
fn fl_jq(state: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let program = args
        .text(0, "expression")?
        .ok_or_else(|| invalid("jq needs an expression, such as `jq('.name')`"))?;
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from(()));
    }
    let input: serde_json::Value = if v.kind() == ValueKind::String {
        serde_json::from_str(v.as_str().unwrap_or_default())
            .map_err(|e| invalid(format!("jq: the input text is not JSON ({e})")))?
    } else {
        serde_json::to_value(&v).map_err(|e| invalid(format!("jq: cannot read the input as JSON ({e})")))?
    };
    let out = super::jq::run(&program, input).map_err(|m| invalid(format!("jq('{program}'): {m}")))?;
    charge(state, 0)?.charge(out.len() as u64)?;
    Ok(Value::from_serialize(&out))
}

/// `yaml`: the value written as YAML text.
fn fl_yaml(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from("null"));
    }
    serde_yaml::to_string(&v)
        .map(Value::from)
        .map_err(|e| invalid(format!("yaml: cannot write `{}` as YAML: {e}", to_text(&v))))
}

fn fl_md5(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(hex::encode(md5::Md5::digest(to_text(&v).as_bytes()))))
}

fn fl_sha1(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(Value::from(hex::encode(sha1::Sha1::digest(to_text(&v).as_bytes()))))
}

/// `className`: the Java class Kestra would hold the value in (flows test it to branch on types).
fn fl_class_name(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    let name = match v.kind() {
        ValueKind::Undefined | ValueKind::None => return Ok(Value::from(())),
        ValueKind::String => "java.lang.String",
        ValueKind::Bool => "java.lang.Boolean",
        ValueKind::Number => match as_num(&v) {
            Some(Num::Int(i)) if i32::try_from(i).is_ok() => "java.lang.Integer",
            Some(Num::Int(_)) => "java.lang.Long",
            _ => "java.lang.Double",
        },
        ValueKind::Seq | ValueKind::Iterable => "java.util.ArrayList",
        ValueKind::Map => "java.util.LinkedHashMap",
        _ => "java.lang.Object",
    };
    Ok(Value::from(name))
}

fn timestamp_parts(v: &Value, args: &mut Args) -> Result<Option<chrono::DateTime<Utc>>, Error> {
    let zone = match args.text(0, "timeZone")? {
        Some(z) => Zone::parse(&z).map_err(invalid)?,
        None => Zone::parse("UTC").map_err(invalid)?,
    };
    let existing = args.text(1, "existingFormat")?;
    if v.is_none() || v.is_undefined() {
        return Ok(None);
    }
    input_instant(v, &zone, existing.as_deref()).map(Some)
}

/// `timestampMilli`: epoch milliseconds of a date.
fn fl_timestamp_milli(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    Ok(timestamp_parts(&v, args)?.map_or(Value::from(()), |d| Value::from(d.timestamp_millis())))
}

/// `timestampMicro`: epoch microseconds of a date, as text (as Kestra returns it).
fn fl_timestamp_micro(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    Ok(timestamp_parts(&v, args)?.map_or(Value::from(()), |d| {
        Value::from((i128::from(d.timestamp()) * 1_000_000 + i128::from(d.timestamp_subsec_micros())).to_string())
    }))
}

/// `timestampNano`: epoch nanoseconds of a date, as text (as Kestra returns it).
fn fl_timestamp_nano(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    Ok(timestamp_parts(&v, args)?.map_or(Value::from(()), |d| {
        Value::from((i128::from(d.timestamp()) * 1_000_000_000 + i128::from(d.timestamp_subsec_nanos())).to_string())
    }))
}

/// `escapeChar('single'|'double'|'shell')`: escapes quotes in text, or in every text of a list or map.
fn fl_escape_char(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let kind = args
        .text(0, "type")?
        .ok_or_else(|| invalid("escapeChar needs a type: 'single', 'double' or 'shell'"))?;
    let (from, to) = match kind.to_ascii_lowercase().as_str() {
        "single" => ("'", "\\'"),
        "double" => ("\"", "\\\""),
        "shell" => ("'", "'\\''"),
        other => {
            return Err(invalid(format!(
                "escapeChar: the type must be 'single', 'double' or 'shell', not `{other}`"
            )));
        }
    };
    fn walk(v: &Value, from: &str, to: &str) -> Result<Value, Error> {
        Ok(match v.kind() {
            ValueKind::Undefined | ValueKind::None => Value::from(()),
            ValueKind::Seq | ValueKind::Iterable => seq(v
                .try_iter()?
                .map(|i| walk(&i, from, to))
                .collect::<Result<Vec<_>, _>>()?),
            ValueKind::Map => {
                let mut m: BTreeMap<String, Value> = BTreeMap::new();
                for k in v.try_iter()? {
                    m.insert(to_text(&k), walk(&v.get_item(&k)?, from, to)?);
                }
                Value::from_serialize(&m)
            }
            _ => Value::from(to_text(v).replace(from, to)),
        })
    }
    walk(&v, from, to)
}

/// `numberformat(pattern)`: Java `DecimalFormat` patterns (`#,##0.00`, `0.###`, `#%`); without a
/// pattern, grouped thousands and at most 3 decimals. Rounding is half-even, as in Java.
fn fl_numberformat(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let pattern = args.text(0, "format")?;
    let _ = args.get(1, "locale");
    let n = match as_num(&v) {
        Some(Num::Int(i)) => i as f64,
        Some(Num::Float(f)) => f,
        None => to_text(&v)
            .trim()
            .parse::<f64>()
            .map_err(|_| invalid(format!("numberformat needs a number, not `{}`", to_text(&v))))?,
    };
    let pattern = pattern.unwrap_or_else(|| "#,##0.###".to_string());
    decimal_format(n, &pattern).map(Value::from).map_err(invalid)
}

/// A subset of Java's `DecimalFormat`: literal prefix/suffix, `#`/`0` digits, `,` grouping,
/// `.` decimals, `%` (times 100) and `‰` (times 1000) suffixes.
pub(crate) fn decimal_format(n: f64, pattern: &str) -> Result<String, String> {
    let pattern = pattern.split(';').next().unwrap_or_default();
    let is_digit = |c: char| matches!(c, '#' | '0' | ',' | '.');
    let start = pattern
        .find(is_digit)
        .ok_or_else(|| format!("numberformat: the pattern `{pattern}` has no digits (`#`, `0`)"))?;
    let end = pattern.rfind(is_digit).map_or(start, |i| i + 1);
    let (prefix, body, suffix) = (&pattern[..start], &pattern[start..end], &pattern[end..]);
    let mut n = n;
    if suffix.contains('%') || prefix.contains('%') {
        n *= 100.0;
    } else if suffix.contains('‰') || prefix.contains('‰') {
        n *= 1000.0;
    }
    let (int_pat, frac_pat) = body.split_once('.').unwrap_or((body, ""));
    let group = int_pat
        .rfind(',')
        .map(|i| int_pat[i + 1..].chars().filter(|c| *c == '#' || *c == '0').count())
        .filter(|g| *g > 0);
    let min_int = int_pat.chars().filter(|c| *c == '0').count();
    let min_frac = frac_pat.chars().filter(|c| *c == '0').count();
    let max_frac = frac_pat.chars().filter(|c| *c == '0' || *c == '#').count();
    if !n.is_finite() {
        return Ok(format!("{prefix}{n}{suffix}"));
    }
    // Half-even rounding at `max_frac` decimals.
    let scale = 10f64.powi(max_frac as i32);
    let scaled = n.abs() * scale;
    let floor = scaled.floor();
    let diff = scaled - floor;
    let rounded = if (diff - 0.5).abs() < 1e-9 {
        if floor % 2.0 == 0.0 { floor } else { floor + 1.0 }
    } else {
        scaled.round()
    };
    let digits = format!("{rounded:.0}");
    let (mut int_digits, mut frac_digits) = if max_frac > 0 {
        let padded = format!("{digits:0>width$}", width = max_frac + 1);
        let (i, f) = padded.split_at(padded.len() - max_frac);
        (i.to_string(), f.to_string())
    } else {
        (digits, String::new())
    };
    while frac_digits.len() > min_frac && frac_digits.ends_with('0') {
        frac_digits.pop();
    }
    int_digits = int_digits.trim_start_matches('0').to_string();
    while int_digits.len() < min_int {
        int_digits.insert(0, '0');
    }
    if let Some(g) = group {
        let chars: Vec<char> = int_digits.chars().collect();
        let mut out = String::new();
        for (i, c) in chars.iter().enumerate() {
            if i > 0 && (chars.len() - i).is_multiple_of(g) {
                out.push(',');
            }
            out.push(*c);
        }
        int_digits = out;
    }
    let negative =
        n < 0.0 && (int_digits.chars().any(|c| c != '0' && c != ',') || frac_digits.chars().any(|c| c != '0'));
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(prefix);
    out.push_str(&int_digits);
    if !frac_digits.is_empty() {
        out.push('.');
        out.push_str(&frac_digits);
    }
    out.push_str(suffix);
    Ok(out)
}

/// `escape` / `escape(strategy='html'|'json'|'url_param')`: Pebble's escaping (Kestra turns
/// automatic escaping off, but the filter still escapes when asked).
fn fl_escape(_: &State, v: Value, args: &mut Args) -> Result<Value, Error> {
    let strategy = args.text(0, "strategy")?.unwrap_or_else(|| "html".to_string());
    if v.is_none() || v.is_undefined() {
        return Ok(Value::from(()));
    }
    let text = to_text(&v);
    let out = match strategy.as_str() {
        "html" => {
            let mut out = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#x27;"),
                    other => out.push(other),
                }
            }
            out
        }
        "json" => {
            let quoted = serde_json::to_string(&text).map_err(|e| invalid(e.to_string()))?;
            quoted[1..quoted.len() - 1].to_string()
        }
        "url_param" => percent_encode(&text),
        other => {
            return Err(invalid(format!(
                "escape: unknown strategy `{other}` (Tollgate knows html, json, url_param)"
            )));
        }
    };
    Ok(Value::from(out))
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// `raw`: the value unchanged (Kestra does not escape output, so there is nothing to undo).
fn fl_raw(_: &State, v: Value, _: &mut Args) -> Result<Value, Error> {
    Ok(v)
}
