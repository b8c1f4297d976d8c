//! Per-render state and the core helpers the translated templates call: variable lookup,
//! `??`, truthiness, operators, loops. Every helper charges the render budget ("fuel"), so a
//! template's total work is bounded whatever it does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use minijinja::value::{Object, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::functions::Lookup;
use super::limits::{MAX_FUEL, MAX_RANGE, MAX_STRING_BYTES};

/// Name under which the render's `Runtime` sits in the template context.
pub(crate) const RT_KEY: &str = "__tg_rt";

/// Why a render stopped, when the reason is ours rather than minijinja's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// A strict lookup found nothing: the path as written (`inputs.foo`).
    Undefined { name: String, detail: String },
    /// A budget was exceeded.
    Limit(String),
    /// `secret()` could not produce a value.
    Secret { name: String, message: String },
    /// `kv()` found no value and `errorOnMissing` was on.
    Kv(String),
    /// A file function could not read its file.
    File(String),
}

/// Values looked up from the daemon's services, filled before (and between) render passes.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    /// (namespace, name) → value, or why there is none.
    pub secrets: HashMap<(String, String), Result<String, String>>,
    /// (namespace, key) → value (None: no such key), or why the flow may not read it.
    pub kv: HashMap<(String, String), Result<Option<serde_json::Value>, String>>,
    pub links: HashMap<Option<String>, String>,
    /// `read()`, `fileSize()`, …: URI → the file (None: no such file), or why it cannot be read.
    pub files: HashMap<String, Result<Option<crate::expr::FileView>, String>>,
    /// `errorLogs()`: the ERROR log lines of this execution, once looked up.
    pub error_logs: Option<Vec<serde_json::Value>>,
    /// Lookups a render pass wanted but that were not resolved yet (dynamic arguments).
    pub missing: Vec<Lookup>,
    /// Secret values the template used, for masking.
    pub used_secrets: Vec<String>,
    pub failure: Option<Failure>,
}

/// State of one `Renderer::render` call, reachable from helpers through the context.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub namespace: String,
    pub execution_id: String,
    /// The caller's variables, for `render()`, `currentEachOutput()` and `fetchContext()`.
    pub vars: Value,
    /// How many `render()` calls are under way, to bound templates that render themselves.
    pub render_depth: std::sync::atomic::AtomicUsize,
    fuel: AtomicU64,
    state: Mutex<Resolved>,
}

impl Object for Runtime {}

impl Runtime {
    pub(crate) fn new(namespace: &str, execution_id: &str, vars: Value) -> Self {
        Runtime {
            namespace: namespace.to_string(),
            execution_id: execution_id.to_string(),
            vars,
            render_depth: std::sync::atomic::AtomicUsize::new(0),
            fuel: AtomicU64::new(MAX_FUEL),
            state: Mutex::new(Resolved::default()),
        }
    }

    /// The shared state; a poisoned lock (a panic elsewhere) still yields the data.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Resolved> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resets the budget and the failure before another render pass.
    pub(crate) fn reset_pass(&self) {
        self.fuel.store(MAX_FUEL, Ordering::Relaxed);
        let mut s = self.lock();
        s.failure = None;
        s.missing.clear();
    }

    /// Records why the render failed (the first reason wins) and returns the error to raise.
    pub(crate) fn fail(&self, failure: Failure, kind: ErrorKind, message: String) -> Error {
        let mut s = self.lock();
        if s.failure.is_none() {
            s.failure = Some(failure);
        }
        Error::new(kind, message)
    }

    /// Spends `units` of the budget.
    pub(crate) fn charge(&self, units: u64) -> Result<(), Error> {
        let left = self.fuel.load(Ordering::Relaxed);
        if left < units {
            self.fuel.store(0, Ordering::Relaxed);
            let msg = format!("the template does too much work (more than {MAX_FUEL} steps)");
            return Err(self.fail(Failure::Limit(msg.clone()), ErrorKind::InvalidOperation, msg));
        }
        self.fuel.store(left - units, Ordering::Relaxed);
        Ok(())
    }
}

/// The render's runtime, or an error when a helper runs outside `Renderer::render`.
pub(crate) fn rt(state: &State) -> Result<Arc<Runtime>, Error> {
    state
        .lookup(RT_KEY)
        .and_then(|v| v.downcast_object::<Runtime>())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "template helper used outside of a render"))
}

/// Charges one step plus one per `BYTES_PER_UNIT` of `bytes` produced.
pub(crate) fn charge(state: &State, bytes: usize) -> Result<Arc<Runtime>, Error> {
    let r = rt(state)?;
    r.charge(1 + (bytes / BYTES_PER_UNIT) as u64)?;
    Ok(r)
}

/// Text bytes that cost one unit of the budget.
pub(crate) const BYTES_PER_UNIT: usize = 32;

/// Rough work units for handling `v`: one per item of a collection, one per 32 bytes of text.
pub(crate) fn cost(v: &Value) -> u64 {
    match v.kind() {
        ValueKind::String => (v.as_str().map_or(0, str::len) / BYTES_PER_UNIT) as u64,
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => v.len().unwrap_or(0) as u64,
        _ => 0,
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// Errors when a produced string would exceed the size limit.
pub(crate) fn check_len(state: &State, len: usize) -> Result<(), Error> {
    if len > MAX_STRING_BYTES {
        let r = rt(state)?;
        let msg = format!("a value would exceed {MAX_STRING_BYTES} bytes");
        return Err(r.fail(Failure::Limit(msg.clone()), ErrorKind::InvalidOperation, msg));
    }
    Ok(())
}

/// How Kestra prints a value: text as is, null as nothing, maps and lists as compact JSON.
pub(crate) fn to_text(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        // minijinja prints booleans the Python way (`True`); Pebble prints `true`.
        ValueKind::Bool => if v.is_true() { "true" } else { "false" }.to_string(),
        ValueKind::Number => v.to_string(),
        ValueKind::Bytes => String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned(),
        _ => serde_json::to_string(v).unwrap_or_else(|_| v.to_string()),
    }
}

/// A value as JSON text (`toJson`): null is `null`, strings are quoted.
pub(crate) fn to_json_text(v: &Value) -> Result<String, Error> {
    if v.is_undefined() {
        return Ok("null".to_string());
    }
    serde_json::to_string(v).map_err(|e| invalid(format!("cannot write the value as JSON: {e}")))
}

/// Pebble's cast to boolean: booleans as they are, null false, numbers non-zero, text non-empty,
/// collections non-empty.
pub(crate) fn truthy(v: &Value) -> bool {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::Number => as_f64(v).is_some_and(|f| f != 0.0 && !f.is_nan()),
        _ => v.is_true(),
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

pub(crate) fn as_num(v: &Value) -> Option<Num> {
    if v.kind() != ValueKind::Number {
        return None;
    }
    if v.is_integer()
        && let Some(i) = v.as_i64()
    {
        return Some(Num::Int(i));
    }
    as_f64(v).map(Num::Float)
}

pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    if v.kind() != ValueKind::Number {
        return None;
    }
    f64::try_from(v.clone()).ok()
}

pub(crate) fn num_value(n: Num) -> Value {
    match n {
        Num::Int(i) => Value::from(i),
        Num::Float(f) => Value::from(f),
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "undefined",
        ValueKind::None => "null",
        ValueKind::Bool => "a boolean",
        ValueKind::Number => "a number",
        ValueKind::String => "text",
        ValueKind::Seq | ValueKind::Iterable => "a list",
        ValueKind::Map => "a map",
        _ => "an object",
    }
}

/// Appends a path segment to a display name: `.name` for identifiers, `[…]` otherwise.
fn push_segment(label: &mut String, seg: &Value) {
    match seg.as_str() {
        Some(s) if !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            label.push('.');
            label.push_str(s);
        }
        Some(s) => {
            label.push('[');
            label.push_str(&serde_json::to_string(s).unwrap_or_default());
            label.push(']');
        }
        None => {
            label.push('[');
            label.push_str(&to_text(seg));
            label.push(']');
        }
    }
}

/// Looks one segment up in `base`: map keys, list indexes (also `list.0`), object attributes.
fn step(base: &Value, seg: &Value) -> Value {
    match base.kind() {
        ValueKind::Seq | ValueKind::Iterable => {
            let idx = seg
                .as_i64()
                .or_else(|| seg.as_str().and_then(|s| s.parse::<i64>().ok()));
            match idx {
                Some(i) => base.get_item(&Value::from(i)).unwrap_or(Value::UNDEFINED),
                None => Value::UNDEFINED,
            }
        }
        ValueKind::Map | ValueKind::Plain => {
            let found = base.get_item(seg).unwrap_or(Value::UNDEFINED);
            if found.is_undefined() && seg.kind() == ValueKind::Number {
                // JSON maps have text keys: `map[0]` means the key "0".
                return base.get_item(&Value::from(to_text(seg))).unwrap_or(Value::UNDEFINED);
            }
            found
        }
        _ => Value::UNDEFINED,
    }
}

/// Walks `segments` from `base`. Strict mode fails naming the first missing part; optional
/// mode returns undefined instead.
fn walk(
    state: &State,
    optional: bool,
    mut label: String,
    base: Option<Value>,
    segments: &[Value],
) -> Result<Value, Error> {
    let r = charge(state, 0)?;
    let mut current = match base {
        Some(v) if !v.is_undefined() => v,
        _ if optional => return Ok(Value::UNDEFINED),
        _ => {
            let detail = format!("`{label}` is not defined");
            return Err(r.fail(
                Failure::Undefined {
                    name: label,
                    detail: detail.clone(),
                },
                ErrorKind::UndefinedError,
                detail,
            ));
        }
    };
    for seg in segments {
        let parent = label.clone();
        push_segment(&mut label, seg);
        let next = if current.is_none() {
            Value::UNDEFINED
        } else {
            step(&current, seg)
        };
        if next.is_undefined() {
            if optional {
                return Ok(Value::UNDEFINED);
            }
            let detail = if current.is_none() {
                format!("`{label}` is not defined: `{parent}` is null")
            } else if matches!(
                current.kind(),
                ValueKind::Map | ValueKind::Seq | ValueKind::Plain | ValueKind::Iterable
            ) {
                format!("`{label}` is not defined")
            } else {
                format!("`{label}` is not defined: `{parent}` is {}", kind_name(&current))
            };
            return Err(r.fail(
                Failure::Undefined {
                    name: label,
                    detail: detail.clone(),
                },
                ErrorKind::UndefinedError,
                detail,
            ));
        }
        current = next;
    }
    Ok(current)
}

/// `__tg_path(mode, root, seg…)`: a variable path.
fn path(state: &State, mode: i64, root: &str, segments: Rest<Value>) -> Result<Value, Error> {
    walk(state, mode != 0, root.to_string(), state.lookup(root), &segments)
}

/// `__tg_at(mode, label, base, seg…)`: attribute/index accesses on a computed value.
fn at(state: &State, mode: i64, label: &str, base: Value, segments: Rest<Value>) -> Result<Value, Error> {
    walk(state, mode != 0, label.to_string(), Some(base), &segments)
}

/// `__tg_some(v)`: `[v]` unless v is null or undefined — the left side of `??`.
fn some(state: &State, v: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    Ok(if v.is_undefined() || v.is_none() {
        Value::from(Vec::<Value>::new())
    } else {
        Value::from(vec![v])
    })
}

/// `__tg_some_defined(v)`: `[v]` unless v is undefined — the left side of `???`.
fn some_defined(state: &State, v: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    Ok(if v.is_undefined() {
        Value::from(Vec::<Value>::new())
    } else {
        Value::from(vec![v])
    })
}

fn all(state: &State, values: Rest<Value>) -> Result<bool, Error> {
    charge(state, 0)?;
    Ok(values.iter().all(|v| !v.is_undefined()))
}

fn undef() -> Value {
    Value::UNDEFINED
}

fn boolean(state: &State, v: Value) -> Result<bool, Error> {
    charge(state, 0)?;
    Ok(truthy(&v))
}

/// `~` and string interpolation: the text of each part, bounded.
pub(crate) fn cat(state: &State, parts: Rest<Value>) -> Result<Value, Error> {
    let mut out = String::new();
    for p in parts.iter() {
        out.push_str(&to_text(p));
        check_len(state, out.len())?;
    }
    charge(state, out.len())?;
    Ok(Value::from(out))
}

fn numbers(op: &str, a: &Value, b: &Value) -> Result<(Num, Num), Error> {
    match (as_num(a), as_num(b)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => {
            let hint = if op == "+" && (a.kind() == ValueKind::String || b.kind() == ValueKind::String) {
                "; join text with `~`"
            } else {
                ""
            };
            Err(invalid(format!(
                "cannot apply `{op}` to {} and {}{hint}",
                kind_name(a),
                kind_name(b)
            )))
        }
    }
}

/// Integer arithmetic when both sides are integers (falling back to floats on overflow), as Java does.
fn arith(
    op: &str,
    a: Value,
    b: Value,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value, Error> {
    let (x, y) = numbers(op, &a, &b)?;
    Ok(match (x, y) {
        (Num::Int(i), Num::Int(j)) => match int(i, j) {
            Some(r) => Value::from(r),
            None => Value::from(float(i as f64, j as f64)),
        },
        (x, y) => Value::from(float(f(x), f(y))),
    })
}

fn f(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(x) => x,
    }
}

fn add(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    if a.kind() == ValueKind::Seq && b.kind() == ValueKind::Seq {
        let mut items: Vec<Value> = a.try_iter()?.collect();
        items.extend(b.try_iter()?);
        check_len(state, items.len())?;
        charge(state, items.len())?;
        return Ok(Value::from(items));
    }
    arith("+", a, b, i64::checked_add, |x, y| x + y)
}

fn sub(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    arith("-", a, b, i64::checked_sub, |x, y| x - y)
}

fn mul(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    arith("*", a, b, i64::checked_mul, |x, y| x * y)
}

fn div(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    let (x, y) = numbers("/", &a, &b)?;
    match (x, y) {
        (_, Num::Int(0)) => Err(invalid("division by zero")),
        // Pebble divides integers as Java longs: 7 / 2 is 3.
        (Num::Int(i), Num::Int(j)) => Ok(i
            .checked_div(j)
            .map_or_else(|| Value::from(i as f64 / j as f64), Value::from)),
        (x, y) => Ok(Value::from(f(x) / f(y))),
    }
}

fn modulo(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    let (x, y) = numbers("%", &a, &b)?;
    match (x, y) {
        (_, Num::Int(0)) => Err(invalid("modulo by zero")),
        (Num::Int(i), Num::Int(j)) => Ok(i.checked_rem(j).map_or(Value::from(0), Value::from)),
        (x, y) => Ok(Value::from(f(x) % f(y))),
    }
}

fn neg(state: &State, a: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    match as_num(&a) {
        Some(Num::Int(i)) => Ok(i.checked_neg().map_or_else(|| Value::from(-(i as f64)), Value::from)),
        Some(Num::Float(x)) => Ok(Value::from(-x)),
        None => Err(invalid(format!("cannot negate {}", kind_name(&a)))),
    }
}

fn pos(state: &State, a: Value) -> Result<Value, Error> {
    charge(state, 0)?;
    match as_num(&a) {
        Some(n) => Ok(num_value(n)),
        None => Err(invalid(format!("unary `+` needs a number, not {}", kind_name(&a)))),
    }
}

/// Pebble's `contains`: list membership (every item when given a list), map key, substring.
pub(crate) fn contains_value(container: &Value, item: &Value) -> Result<bool, Error> {
    Ok(match container.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::String => container.as_str().unwrap_or_default().contains(to_text(item).as_str()),
        ValueKind::Map | ValueKind::Plain => !container.get_item(item).unwrap_or(Value::UNDEFINED).is_undefined(),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = container.try_iter()?.collect();
            if item.kind() == ValueKind::Seq {
                item.try_iter()?.all(|want| items.contains(&want))
            } else {
                items.contains(item)
            }
        }
        _ => {
            return Err(invalid(format!(
                "`contains` needs a list, map or text, not {}",
                kind_name(container)
            )));
        }
    })
}

fn contains(state: &State, container: Value, item: Value) -> Result<bool, Error> {
    charge(state, 0)?.charge(cost(&container))?;
    contains_value(&container, &item)
}

/// Pebble's inclusive `a..b` / `range(a, b, step)`, bounded to `MAX_RANGE` items.
pub(crate) fn make_range(state: &State, start: i64, end: i64, step: i64) -> Result<Value, Error> {
    if step == 0 {
        return Err(invalid("range step cannot be 0"));
    }
    let count = if (step > 0 && start > end) || (step < 0 && start < end) {
        0
    } else {
        (end.abs_diff(start) / step.unsigned_abs()).saturating_add(1)
    };
    if count > MAX_RANGE as u64 {
        return Err(invalid(format!(
            "range of {count} items exceeds the limit of {MAX_RANGE}"
        )));
    }
    charge(state, 0)?.charge(count)?;
    let items: Vec<Value> = (0..count as i64).map(|i| Value::from(start + i * step)).collect();
    Ok(Value::from(items))
}

fn range(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    match (as_num(&a), as_num(&b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => make_range(state, x, y, 1),
        _ => Err(invalid(format!(
            "`..` needs two integers, not {} and {}",
            kind_name(&a),
            kind_name(&b)
        ))),
    }
}

/// What `{% for %}` iterates: lists as they are, maps as `{key, value}` entries (as Pebble's
/// `Map.Entry`), null as nothing. Each item costs one step of the budget.
fn iter(state: &State, v: Value) -> Result<Value, Error> {
    let r = charge(state, 0)?;
    let items: Vec<Value> = match v.kind() {
        ValueKind::None | ValueKind::Undefined => Vec::new(),
        ValueKind::Seq | ValueKind::Iterable => v.try_iter()?.collect(),
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in v.try_iter()? {
                let value = v.get_item(&key)?;
                let mut m = std::collections::BTreeMap::new();
                m.insert("key", key);
                m.insert("value", value);
                entries.push(Value::from_serialize(&m));
            }
            entries
        }
        _ => return Err(invalid(format!("cannot loop over {}", kind_name(&v)))),
    };
    r.charge(items.len() as u64)?;
    Ok(Value::from(items))
}

/// Registers the core helpers on `env`.
pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_function("__tg_path", path);
    env.add_function("__tg_at", at);
    env.add_function("__tg_some", some);
    env.add_function("__tg_some_defined", some_defined);
    env.add_function("__tg_all", all);
    env.add_function("__tg_undef", undef);
    env.add_function("__tg_bool", boolean);
    env.add_function("__tg_cat", cat);
    env.add_function("__tg_add", add);
    env.add_function("__tg_sub", sub);
    env.add_function("__tg_mul", mul);
    env.add_function("__tg_div", div);
    env.add_function("__tg_mod", modulo);
    env.add_function("__tg_neg", neg);
    env.add_function("__tg_pos", pos);
    env.add_function("__tg_contains", contains);
    env.add_function("__tg_range", range);
    env.add_function("__tg_iter", iter);
}
