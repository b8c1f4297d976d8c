//! Typed inputs: one implementation for flow `inputs` and a pause's `onResume`.
//!
//! INTERFACE (stable, used by flow/, engine/ and api/): `InputDef`, `InputType`, `InputError`,
//! `coerce`, `check_definition`. Values arrive as strings (from CLI, gRPC or HTTP forms) and
//! leave typed as JSON (a BOOLEAN is `true`, not `"true"`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Kestra's input types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InputType {
    String,
    Int,
    Float,
    /// Kestra's current name for a boolean input (BOOLEAN is the older spelling).
    Bool,
    Boolean,
    Date,
    Datetime,
    Time,
    Duration,
    Select,
    Multiselect,
    Enum,
    Json,
    Email,
    Uri,
    Secret,
    Array,
    File,
    Yaml,
}

impl InputType {
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::String => "STRING",
            InputType::Int => "INT",
            InputType::Float => "FLOAT",
            InputType::Bool => "BOOL",
            InputType::Boolean => "BOOLEAN",
            InputType::Date => "DATE",
            InputType::Datetime => "DATETIME",
            InputType::Time => "TIME",
            InputType::Duration => "DURATION",
            InputType::Select => "SELECT",
            InputType::Multiselect => "MULTISELECT",
            InputType::Enum => "ENUM",
            InputType::Json => "JSON",
            InputType::Email => "EMAIL",
            InputType::Uri => "URI",
            InputType::Secret => "SECRET",
            InputType::Array => "ARRAY",
            InputType::File => "FILE",
            InputType::Yaml => "YAML",
        }
    }
}

/// `dependsOn`: the input is enabled only when `condition` holds (rendered against the other inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DependsOn {
    #[serde(default)]
    pub inputs: Vec<String>,
    #[serde(default)]
    pub condition: Option<String>,
}

/// One input definition, as written in a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputDef {
    pub id: String,
    #[serde(rename = "type")]
    pub input_type: InputType,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Kestra's default is `true`.
    #[serde(default = "default_true")]
    pub required: bool,
    #[serde(default)]
    pub defaults: Option<Value>,
    #[serde(default)]
    pub validator: Option<String>,
    #[serde(default)]
    pub min: Option<Value>,
    #[serde(default)]
    pub max: Option<Value>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub before: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    /// MULTISELECT's deprecated spelling of `values`.
    #[serde(default)]
    pub options: Option<Vec<String>>,
    /// SELECT/MULTISELECT: a template rendering to the list of values (`{{ kv('regions') }}`),
    /// rendered with the flow's namespace when the form is shown and when a value is checked.
    #[serde(default)]
    pub expression: Option<String>,
    /// SELECT/MULTISELECT: the first value is pre-selected in forms.
    #[serde(default)]
    pub auto_select_first: bool,
    /// SELECT: Kestra's web UI draws radio buttons; the console's selection list plays that part.
    #[serde(default)]
    pub is_radio: bool,
    /// A value forms start with; unlike `defaults`, nothing is assumed when the field is left out.
    #[serde(default)]
    pub prefill: Option<Value>,
    #[serde(default)]
    pub allow_custom_value: bool,
    #[serde(default)]
    pub item_type: Option<InputType>,
    #[serde(default)]
    pub depends_on: Option<DependsOn>,
    /// Kestra's deprecated alias of `displayName` on some versions.
    #[serde(default)]
    pub name: Option<String>,
    /// FILE: the extension of the stored upload's name (Kestra's default `.upl`).
    #[serde(default)]
    pub extension: Option<String>,
}

fn default_true() -> bool {
    true
}

impl InputDef {
    /// The values a SELECT/MULTISELECT/ENUM offers: `values`, or MULTISELECT's older `options`.
    pub fn choices(&self) -> Vec<String> {
        self.values.clone().or_else(|| self.options.clone()).unwrap_or_default()
    }

    /// The value a form starts with: `defaults`, else `prefill`, else the first choice when
    /// `autoSelectFirst` is on.
    pub fn form_start(&self) -> Option<Value> {
        self.defaults.clone().or_else(|| self.prefill.clone()).or_else(|| {
            self.auto_select_first
                .then(|| self.choices().into_iter().next().map(Value::String))
                .flatten()
        })
    }
}

/// Renders an input's `expression` to text (the flow's renderer, with its namespace and context).
pub type ExpressionRender<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// Fills `values` of SELECT/MULTISELECT inputs that have an `expression`, with `render` (the
/// flow's renderer, scoped to the flow's namespace). The template must render a JSON list (a
/// `kv()` entry holding a list does) or lines of text.
pub fn resolve_expressions(defs: &[InputDef], render: ExpressionRender<'_>) -> Result<Vec<InputDef>, Vec<InputError>> {
    let mut out = defs.to_vec();
    let mut errors = Vec::new();
    for def in out.iter_mut() {
        let Some(expr) = def.expression.clone() else { continue };
        match render(&expr).and_then(|text| values_of(&text)) {
            Ok(values) => def.values = Some(values),
            Err(e) => errors.push(InputError {
                input_id: def.id.clone(),
                message: format!("the `expression` of input `{}` ({expr}): {e}", def.id),
            }),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The choices a rendered `expression` stands for.
fn values_of(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    if t.starts_with('[') {
        return match serde_json::from_str::<Value>(t) {
            Ok(Value::Array(items)) => Ok(items
                .into_iter()
                .map(|x| match x {
                    Value::String(s) => s,
                    other => other.to_string(),
                })
                .collect()),
            _ => Err(format!("it rendered `{t}`, which is not a JSON list")),
        };
    }
    let lines: Vec<String> = t
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Err("it rendered no values".to_string());
    }
    Ok(lines)
}

/// A rejected value: names the input and the rule it broke.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub input_id: String,
    pub message: String,
}

/// Types raw string values against `defs`, applies defaults, and returns every error at once.
/// Unknown keys in `raw` are rejected (a typo must not be silently dropped).
pub fn coerce(defs: &[InputDef], raw: &BTreeMap<String, String>) -> Result<Map<String, Value>, Vec<InputError>> {
    let mut out = Map::new();
    let mut errors = Vec::new();
    for key in raw.keys() {
        if !defs.iter().any(|d| &d.id == key) {
            let known: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
            let hint = if known.is_empty() {
                " (this form has no inputs)".to_string()
            } else {
                format!(" (known inputs: {})", known.join(", "))
            };
            errors.push(InputError {
                input_id: key.clone(),
                message: format!("Unknown input `{key}`{hint}"),
            });
        }
    }
    for def in defs {
        if !enabled(def, &out) {
            continue;
        }
        let given = raw
            .get(&def.id)
            .filter(|v| !(v.is_empty() && def.input_type != InputType::String));
        match given {
            Some(v) => match type_value(def, v) {
                Ok(typed) => {
                    out.insert(def.id.clone(), typed);
                }
                Err(message) => errors.push(InputError {
                    input_id: def.id.clone(),
                    message,
                }),
            },
            None => match &def.defaults {
                Some(d) => {
                    let text = match d {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    match type_value(def, &text) {
                        Ok(typed) => {
                            out.insert(def.id.clone(), typed);
                        }
                        Err(message) => errors.push(InputError {
                            input_id: def.id.clone(),
                            message: format!("default value: {message}"),
                        }),
                    }
                }
                None if def.required => errors.push(InputError {
                    input_id: def.id.clone(),
                    message: format!("Missing required input `{}`{}", def.id, describe_type(def)),
                }),
                None => {
                    out.insert(def.id.clone(), Value::Null);
                }
            },
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn describe_type(def: &InputDef) -> String {
    format!(" ({})", def.input_type.as_str())
}

/// `dependsOn`: an input whose condition is false (or whose inputs are missing) is skipped.
fn enabled(def: &InputDef, typed: &Map<String, Value>) -> bool {
    let Some(dep) = &def.depends_on else { return true };
    if dep.inputs.iter().any(|i| typed.get(i).is_none_or(Value::is_null)) {
        return false;
    }
    match &dep.condition {
        None => true,
        Some(c) => {
            let vars = serde_json::json!({ "inputs": typed });
            crate::expr::Renderer::new()
                .render(c, &vars, &crate::expr::NoServices, "", "")
                .map(|r| r.text.trim() == "true")
                .unwrap_or(false)
        }
    }
}

/// The value as written, or a neutral word for a SECRET (never echoed).
fn shown(def: &InputDef, v: &str) -> String {
    if def.input_type == InputType::Secret {
        "the value".to_string()
    } else {
        format!("`{v}`")
    }
}

fn invalid(def: &InputDef, rule: impl std::fmt::Display, v: &str) -> String {
    format!(
        "Invalid input for `{}`, it must {rule}, but received {}",
        def.id,
        shown(def, v)
    )
}

fn bound_text(b: &Value) -> String {
    match b {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Types one value by the definition's type and checks its rules.
pub fn type_value(def: &InputDef, v: &str) -> Result<Value, String> {
    type_as(def, def.input_type, v)
}

fn type_as(def: &InputDef, ty: InputType, v: &str) -> Result<Value, String> {
    let t = v.trim();
    match ty {
        // An upload is stored before its input is typed and arrives here as its URI; a value
        // given as text must name a file already in the internal storage.
        InputType::File => {
            if t.starts_with(crate::engine::files::SCHEME) {
                crate::engine::files::parse_uri(t)
                    .map(|_| Value::String(t.to_string()))
                    .map_err(|e| invalid(def, format!("be an uploaded file or a kestra:/// URI ({e})"), v))
            } else {
                Err(invalid(
                    def,
                    "be an uploaded file (CLI: --input KEY=@PATH; REST: a multipart file part) or a kestra:/// URI",
                    v,
                ))
            }
        }
        InputType::String | InputType::Secret => {
            if let Some(re) = &def.validator {
                let anchored = format!("^(?:{re})$");
                match regex::Regex::new(&anchored) {
                    Ok(r) if !r.is_match(v) => return Err(invalid(def, format!("match the pattern `{re}`"), v)),
                    Err(_) => return Err(format!("Input `{}` has an invalid validator `{re}`", def.id)),
                    _ => {}
                }
            }
            Ok(Value::String(v.to_string()))
        }
        InputType::Int => {
            let n: i64 = t.parse().map_err(|_| invalid(def, "be an integer", v))?;
            check_num(def, n as f64, v)?;
            Ok(Value::from(n))
        }
        InputType::Float => {
            let n: f64 = t
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| invalid(def, "be a number", v))?;
            check_num(def, n, v)?;
            Ok(serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null))
        }
        InputType::Boolean | InputType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(invalid(def, "be a boolean (true or false)", v)),
        },
        InputType::Date => {
            let d = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map_err(|_| invalid(def, "be a date like 2026-12-31", v))?;
            check_order(def, v, |b| {
                chrono::NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d")
                    .ok()
                    .map(|x| d.cmp(&x))
            })?;
            Ok(Value::String(d.format("%Y-%m-%d").to_string()))
        }
        InputType::Datetime => {
            let d = parse_datetime(t).ok_or_else(|| invalid(def, "be a date-time like 2026-12-31T09:00:00Z", v))?;
            check_order(def, v, |b| parse_datetime(b.trim()).map(|x| d.cmp(&x)))?;
            Ok(Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
        }
        InputType::Time => {
            let d = parse_time(t).ok_or_else(|| invalid(def, "be a time like 09:30 or 09:30:00", v))?;
            check_order(def, v, |b| parse_time(b.trim()).map(|x| d.cmp(&x)))?;
            Ok(Value::String(d.format("%H:%M:%S").to_string()))
        }
        InputType::Duration => {
            let d =
                crate::duration::parse_iso8601(t).map_err(|_| invalid(def, "be an ISO-8601 duration like PT5M", v))?;
            if let Some(min) = def
                .min
                .as_ref()
                .and_then(|m| crate::duration::parse_iso8601(&bound_text(m)).ok())
                && d < min
            {
                return Err(invalid(
                    def,
                    format!("be at least `{}`", bound_text(def.min.as_ref().unwrap_or(&Value::Null))),
                    v,
                ));
            }
            if let Some(max) = def
                .max
                .as_ref()
                .and_then(|m| crate::duration::parse_iso8601(&bound_text(m)).ok())
                && d > max
            {
                return Err(invalid(
                    def,
                    format!("be at most `{}`", bound_text(def.max.as_ref().unwrap_or(&Value::Null))),
                    v,
                ));
            }
            Ok(Value::String(t.to_string()))
        }
        InputType::Select | InputType::Enum => {
            let values = def.choices();
            if values.iter().any(|x| x == v) || def.allow_custom_value || unresolved(def) {
                Ok(Value::String(v.to_string()))
            } else {
                Err(invalid(def, format!("be one of {}", list(&values)), v))
            }
        }
        InputType::Multiselect => {
            let items = split_list(v);
            let values = def.choices();
            let bad: Vec<&String> = items
                .iter()
                .filter(|i| !def.allow_custom_value && !unresolved(def) && !values.contains(i))
                .collect();
            if !bad.is_empty() {
                return Err(invalid(def, format!("only contain values among {}", list(&values)), v));
            }
            Ok(Value::Array(items.into_iter().map(Value::String).collect()))
        }
        InputType::Json => {
            serde_json::from_str::<Value>(v).map_err(|e| invalid(def, format!("be valid JSON ({e})"), v))
        }
        // The YAML parser's time grows with the square of the nesting: bound it first.
        InputType::Yaml => crate::yaml::depth::check(v)
            .map_err(|d| {
                let at = format!("line {}, column {}", d.line, d.column);
                invalid(
                    def,
                    format!("be YAML nested at most {} levels deep (deeper at {at})", d.limit),
                    v,
                )
            })
            .and_then(|()| {
                serde_yaml::from_str::<serde_yaml::Value>(v)
                    .map_err(|e| invalid(def, format!("be valid YAML ({e})"), v))
            })
            .map(|y| crate::yaml::yaml_to_json(&y)),
        InputType::Email => {
            let ok = t.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !t.contains(char::is_whitespace)
            });
            if ok {
                Ok(Value::String(t.to_string()))
            } else {
                Err(invalid(def, "be an e-mail address", v))
            }
        }
        InputType::Uri => {
            let ok = t.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                    && !rest.is_empty()
                    && !t.contains(char::is_whitespace)
            });
            if ok {
                Ok(Value::String(t.to_string()))
            } else {
                Err(invalid(def, "be an absolute URI like https://example.com", v))
            }
        }
        InputType::Array => {
            let item_type = def.item_type.unwrap_or(InputType::String);
            let items: Vec<String> = match serde_json::from_str::<Value>(v) {
                Ok(Value::Array(a)) => a
                    .into_iter()
                    .map(|x| match x {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
                _ => split_list(v),
            };
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match type_as(def, item_type, item) {
                    Ok(x) => out.push(x),
                    Err(e) => return Err(format!("item {} of `{}`: {e}", i + 1, def.id)),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// An `expression` whose values were not computed: callers without the daemon's services
/// (a subflow's inputs, a Flow trigger) pass the value through; the daemon's create and resume
/// paths resolve the expression first (see [`resolve_expressions`]) and check it.
fn unresolved(def: &InputDef) -> bool {
    def.expression.is_some() && def.values.is_none()
}

fn list(values: &[String]) -> String {
    values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
}

/// JSON array, or comma-separated values.
fn split_list(v: &str) -> Vec<String> {
    if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(v) {
        return a
            .into_iter()
            .map(|x| match x {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_num(def: &InputDef, n: f64, v: &str) -> Result<(), String> {
    let num = |b: &Option<Value>| b.as_ref().and_then(|b| bound_text(b).trim().parse::<f64>().ok());
    if let Some(min) = num(&def.min)
        && n < min
    {
        return Err(invalid(
            def,
            format!("be at least `{}`", bound_text(def.min.as_ref().unwrap_or(&Value::Null))),
            v,
        ));
    }
    if let Some(max) = num(&def.max)
        && n > max
    {
        return Err(invalid(
            def,
            format!("be at most `{}`", bound_text(def.max.as_ref().unwrap_or(&Value::Null))),
            v,
        ));
    }
    Ok(())
}

/// Inclusive `after`/`before` bounds; `cmp` compares the value with a bound.
fn check_order(def: &InputDef, v: &str, cmp: impl Fn(&str) -> Option<std::cmp::Ordering>) -> Result<(), String> {
    if let Some(after) = &def.after
        && cmp(after) == Some(std::cmp::Ordering::Less)
    {
        return Err(invalid(def, format!("be after `{after}`"), v));
    }
    if let Some(before) = &def.before
        && cmp(before) == Some(std::cmp::Ordering::Greater)
    {
        return Err(invalid(def, format!("be before `{before}`"), v));
    }
    Ok(())
}

fn parse_datetime(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|n| n.and_utc())
        })
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn parse_time(t: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(t, "%H:%M:%S")
        .ok()
        .or_else(|| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok())
}

/// A short hint of the expected format, for forms.
pub fn format_hint(t: InputType) -> &'static str {
    match t {
        InputType::Date => "YYYY-MM-DD",
        InputType::Datetime => "YYYY-MM-DDTHH:MM:SSZ",
        InputType::Time => "HH:MM[:SS]",
        InputType::Duration => "ISO-8601, e.g. PT5M",
        InputType::Int => "integer",
        InputType::Float => "number",
        InputType::Boolean | InputType::Bool => "true/false",
        InputType::Multiselect | InputType::Array => "comma-separated or JSON array",
        InputType::Json => "JSON",
        InputType::Email => "name@example.com",
        InputType::Uri => "https://...",
        _ => "",
    }
}

/// Problems in a definition itself (SELECT without values, bad regex, bad bounds); empty when fine.
pub fn check_definition(def: &InputDef) -> Vec<String> {
    let mut problems = Vec::new();
    let selects = matches!(def.input_type, InputType::Select | InputType::Multiselect);
    if def.extension.is_some() && def.input_type != InputType::File {
        problems.push(format!("input `{}`: `extension` is only for FILE inputs", def.id));
    }
    if def.expression.is_some() && !selects {
        problems.push(format!(
            "input `{}`: `expression` is only for SELECT and MULTISELECT inputs, not {}",
            def.id,
            def.input_type.as_str()
        ));
    }
    if def.options.is_some() && def.input_type != InputType::Multiselect {
        problems.push(format!(
            "input `{}`: `options` is only for MULTISELECT inputs (use `values`)",
            def.id
        ));
    }
    if (def.auto_select_first || def.is_radio) && !selects {
        let name = if def.is_radio { "isRadio" } else { "autoSelectFirst" };
        problems.push(format!(
            "input `{}`: `{name}` is only for SELECT and MULTISELECT inputs",
            def.id
        ));
    }
    if def.expression.is_some() && (def.values.is_some() || def.options.is_some()) {
        problems.push(format!(
            "input `{}`: give either `values` or `expression`, not both",
            def.id
        ));
    }
    if matches!(
        def.input_type,
        InputType::Select | InputType::Multiselect | InputType::Enum
    ) && def.expression.is_none()
        && def.choices().is_empty()
    {
        problems.push(format!(
            "input `{}` of type {} needs `values`{}",
            def.id,
            def.input_type.as_str(),
            if selects { " or `expression`" } else { "" }
        ));
    }
    // A bad `validator` regex is reported by flow validation, with its position.
    if def.input_type == InputType::Array && def.item_type.is_none() {
        problems.push(format!("input `{}` of type ARRAY needs `itemType`", def.id));
    }
    for (name, bound) in [("after", &def.after), ("before", &def.before)] {
        if let Some(b) = bound {
            let ok = match def.input_type {
                InputType::Date => chrono::NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d").is_ok(),
                InputType::Datetime => parse_datetime(b.trim()).is_some(),
                InputType::Time => parse_time(b.trim()).is_some(),
                _ => true,
            };
            if !ok {
                problems.push(format!(
                    "input `{}`: `{name}: {b}` is not a valid {}",
                    def.id,
                    def.input_type.as_str()
                ));
            }
        }
    }
    if let (Some(min), Some(max)) = (&def.min, &def.max)
        && let (Ok(a), Ok(b)) = (bound_text(min).parse::<f64>(), bound_text(max).parse::<f64>())
        && a > b
    {
        problems.push(format!("input `{}`: `min` ({a}) is greater than `max` ({b})", def.id));
    }
    if problems.is_empty()
        && let Some(d) = &def.defaults
    {
        let text = match d {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if let Err(e) = type_value(def, &text) {
            problems.push(format!(
                "input `{}` has a default that breaks its own rules: {e}",
                def.id
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(yaml: &str) -> InputDef {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn one(d: &InputDef, v: &str) -> Result<Value, String> {
        let mut raw = BTreeMap::new();
        raw.insert(d.id.clone(), v.to_string());
        coerce(std::slice::from_ref(d), &raw)
            .map(|m| m[&d.id].clone())
            .map_err(|e| e[0].message.clone())
    }

    #[test]
    fn yaml_values_nested_too_deep_are_refused_before_the_parser() {
        let d = def("{id: doc, type: YAML}");
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(one(&d, &ok).is_ok());
        let e = one(&d, &"[".repeat(10_000)).unwrap_err();
        assert!(
            e.contains("be YAML nested at most 64 levels deep (deeper at line 1, column 65)"),
            "{e}"
        );
    }

    #[test]
    fn numbers_are_typed_and_bounded_inclusively() {
        let d = def("{id: n, type: INT, min: 1, max: 10}");
        assert_eq!(one(&d, "10").unwrap(), Value::from(10));
        assert_eq!(one(&d, "1").unwrap(), Value::from(1));
        assert!(one(&d, "11").unwrap_err().contains("at most `10`"));
        assert!(one(&d, "x").unwrap_err().contains("integer"));
        let f = def("{id: f, type: FLOAT, min: 0.5}");
        assert_eq!(one(&f, "0.5").unwrap(), serde_json::json!(0.5));
        assert!(one(&f, "0.4").is_err());
    }

    #[test]
    fn dates_follow_kestra_wording() {
        let d = def("{id: start_date, type: DATE, after: '2026-01-01'}");
        assert_eq!(
            one(&d, "2025-12-31").unwrap_err(),
            "Invalid input for `start_date`, it must be after `2026-01-01`, but received `2025-12-31`"
        );
        assert_eq!(one(&d, "2026-01-01").unwrap(), "2026-01-01");
        assert!(one(&def("{id: t, type: TIME, before: '17:00'}"), "17:30").is_err());
        assert!(one(&def("{id: t, type: DATETIME}"), "2026-01-01T10:00:00+02:00").is_ok());
    }

    #[test]
    fn selects_arrays_and_json_keep_their_shape() {
        let s = def("{id: team, type: SELECT, values: [HR, Finance, IT]}");
        assert_eq!(one(&s, "IT").unwrap(), "IT");
        assert!(one(&s, "Ops").unwrap_err().contains("one of `HR`, `Finance`, `IT`"));
        let m = def("{id: m, type: MULTISELECT, values: [a, b, c]}");
        assert_eq!(one(&m, "a, c").unwrap(), serde_json::json!(["a", "c"]));
        assert_eq!(one(&m, r#"["b"]"#).unwrap(), serde_json::json!(["b"]));
        assert!(one(&m, "a,z").is_err());
        let a = def("{id: ports, type: ARRAY, itemType: INT}");
        assert_eq!(one(&a, "[80, 443]").unwrap(), serde_json::json!([80, 443]));
        assert!(one(&a, "80,http").unwrap_err().contains("item 2"));
        assert_eq!(
            one(&def("{id: j, type: JSON}"), r#"{"a":1}"#).unwrap(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn strings_emails_uris_and_secrets() {
        let s = def("{id: code, type: STRING, validator: '[A-Z]{3}'}");
        assert!(one(&s, "ABC").is_ok());
        assert!(one(&s, "ABCD").unwrap_err().contains("pattern"));
        assert!(one(&def("{id: e, type: EMAIL}"), "a@b.co").is_ok());
        assert!(one(&def("{id: e, type: EMAIL}"), "nope").is_err());
        assert!(one(&def("{id: u, type: URI}"), "https://x.y/z").is_ok());
        assert!(one(&def("{id: u, type: URI}"), "x.y").is_err());
        let secret = def("{id: pw, type: SECRET, validator: '.{8,}'}");
        let err = one(&secret, "short").unwrap_err();
        assert!(!err.contains("short"), "a SECRET is never echoed: {err}");
    }

    #[test]
    fn required_defaults_unknown_and_all_errors_at_once() {
        let defs = vec![
            def("{id: a, type: INT}"),
            def("{id: b, type: BOOLEAN, defaults: true}"),
            def("{id: c, type: STRING, required: false}"),
        ];
        let ok = coerce(&defs, &BTreeMap::from([("a".to_string(), "3".to_string())])).unwrap();
        assert_eq!(ok["b"], Value::Bool(true));
        assert_eq!(ok["c"], Value::Null);
        let errs = coerce(&defs, &BTreeMap::from([("x".to_string(), "1".to_string())])).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.input_id == "x" && e.message.contains("Unknown input `x`"))
        );
        assert!(
            errs.iter()
                .any(|e| e.input_id == "a" && e.message.contains("Missing required input `a`"))
        );
    }

    #[test]
    fn definitions_are_checked() {
        assert!(!check_definition(&def("{id: s, type: SELECT}")).is_empty());
        assert!(!check_definition(&def("{id: n, type: INT, min: 5, max: 1}")).is_empty());
        assert!(!check_definition(&def("{id: d, type: DATE, after: 'soon'}")).is_empty());
        assert!(!check_definition(&def("{id: n, type: INT, defaults: 'x'}")).is_empty());
        assert!(check_definition(&def("{id: n, type: INT, defaults: 3}")).is_empty());
    }

    #[test]
    fn bool_is_the_new_name_of_boolean() {
        let d = def("id: ok\ntype: BOOL");
        assert_eq!(d.input_type.as_str(), "BOOL");
        assert_eq!(one(&d, "TRUE"), Ok(Value::Bool(true)));
        assert_eq!(one(&d, "false"), Ok(Value::Bool(false)));
        assert!(one(&d, "yes").unwrap_err().contains("be a boolean"));
        assert_eq!(one(&def("id: ok\ntype: BOOLEAN"), "true"), Ok(Value::Bool(true)));
    }

    #[test]
    fn select_values_from_an_expression() {
        let d = def("id: region\ntype: SELECT\nexpression: \"{{ kv('regions') }}\"");
        assert!(check_definition(&d).is_empty(), "{:?}", check_definition(&d));
        let render = |t: &str| -> Result<String, String> {
            assert_eq!(t, "{{ kv('regions') }}");
            Ok(r#"["eu","us"]"#.to_string())
        };
        let resolved = resolve_expressions(std::slice::from_ref(&d), &render).unwrap();
        assert_eq!(resolved[0].choices(), vec!["eu".to_string(), "us".to_string()]);
        assert_eq!(one(&resolved[0], "us"), Ok(Value::String("us".into())));
        assert!(one(&resolved[0], "mars").unwrap_err().contains("be one of `eu`, `us`"));
        // One value a line works too; anything else names the input and the expression.
        let lines = |_: &str| -> Result<String, String> { Ok("a\n b \n\n".to_string()) };
        let r = resolve_expressions(std::slice::from_ref(&d), &lines).unwrap();
        assert_eq!(r[0].choices(), vec!["a".to_string(), "b".to_string()]);
        let bad = |_: &str| -> Result<String, String> { Ok("[1, ".to_string()) };
        let e = resolve_expressions(std::slice::from_ref(&d), &bad).unwrap_err();
        assert_eq!(e[0].input_id, "region");
        assert!(e[0].message.contains("`expression` of input `region`") && e[0].message.contains("not a JSON list"));
        let failing = |_: &str| -> Result<String, String> { Err("the KV key `regions` does not exist".into()) };
        let e = resolve_expressions(std::slice::from_ref(&d), &failing).unwrap_err();
        assert!(e[0].message.contains("does not exist"), "{}", e[0].message);
    }

    #[test]
    fn multiselect_expression_and_custom_values() {
        let d = def("id: tags\ntype: MULTISELECT\nexpression: \"{{ x }}\"\nallowCustomValue: true");
        let render = |_: &str| -> Result<String, String> { Ok(r#"["a","b"]"#.to_string()) };
        let r = resolve_expressions(std::slice::from_ref(&d), &render).unwrap();
        assert_eq!(one(&r[0], "a,zz"), Ok(serde_json::json!(["a", "zz"])));
        let strict = def("id: tags\ntype: MULTISELECT\noptions: [a, b]");
        assert!(check_definition(&strict).is_empty());
        assert!(
            one(&strict, "a,zz")
                .unwrap_err()
                .contains("only contain values among `a`, `b`")
        );
    }

    #[test]
    fn select_definition_problems_are_named() {
        let both = def("id: s\ntype: SELECT\nvalues: [a]\nexpression: \"{{ x }}\"");
        assert!(check_definition(&both)[0].contains("either `values` or `expression`"));
        let none = def("id: s\ntype: SELECT");
        assert!(check_definition(&none)[0].contains("needs `values` or `expression`"));
        let wrong = def("id: s\ntype: STRING\nexpression: \"{{ x }}\"");
        assert!(check_definition(&wrong)[0].contains("`expression` is only for SELECT and MULTISELECT"));
        let radio = def("id: s\ntype: INT\nisRadio: true");
        assert!(check_definition(&radio)[0].contains("`isRadio` is only for SELECT"));
    }

    #[test]
    fn file_inputs_take_kestra_uris_only() {
        let d = def("id: upload\ntype: FILE");
        assert!(check_definition(&d).is_empty());
        let uri = "kestra:///a/f/executions/E/inputs/upload/upload.upl";
        assert_eq!(one(&d, uri), Ok(Value::String(uri.into())));
        assert!(one(&d, "/etc/passwd").unwrap_err().contains("be an uploaded file"));
        assert!(one(&d, "kestra:///nowhere").unwrap_err().contains("names no execution"));
        assert!(check_definition(&def("id: s\ntype: STRING\nextension: .csv"))[0].contains("only for FILE"));
    }

    #[test]
    fn forms_start_with_defaults_then_prefill_then_the_first_choice() {
        assert_eq!(
            def("id: a\ntype: STRING\nprefill: x").form_start(),
            Some(Value::String("x".into()))
        );
        assert_eq!(
            def("id: a\ntype: STRING\nprefill: x\ndefaults: y").form_start(),
            Some(Value::String("y".into()))
        );
        assert_eq!(
            def("id: a\ntype: SELECT\nvalues: [p, q]\nautoSelectFirst: true").form_start(),
            Some(Value::String("p".into()))
        );
        // `prefill` is no default: a form sent without the value still misses it.
        let d = def("id: a\ntype: STRING\nprefill: x");
        assert!(coerce(std::slice::from_ref(&d), &BTreeMap::new()).is_err());
    }
}
