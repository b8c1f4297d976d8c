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
    #[serde(default)]
    pub allow_custom_value: bool,
    #[serde(default)]
    pub item_type: Option<InputType>,
    #[serde(default)]
    pub depends_on: Option<DependsOn>,
    /// Kestra's deprecated alias of `displayName` on some versions.
    #[serde(default)]
    pub name: Option<String>,
}

fn default_true() -> bool {
    true
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
            errors.push(InputError { input_id: key.clone(), message: format!("Unknown input `{key}`") });
        }
    }
    for def in defs {
        match raw.get(&def.id) {
            Some(v) => match def.input_type {
                InputType::Boolean => match v.trim().to_ascii_lowercase().as_str() {
                    "true" => {
                        out.insert(def.id.clone(), Value::Bool(true));
                    }
                    "false" => {
                        out.insert(def.id.clone(), Value::Bool(false));
                    }
                    _ => errors.push(InputError {
                        input_id: def.id.clone(),
                        message: format!("Invalid input for `{}`, it must be a boolean (true or false), but received `{v}`", def.id),
                    }),
                },
                _ => {
                    out.insert(def.id.clone(), Value::String(v.clone()));
                }
            },
            None => match &def.defaults {
                Some(d) => {
                    out.insert(def.id.clone(), d.clone());
                }
                None if def.required => errors.push(InputError {
                    input_id: def.id.clone(),
                    message: format!("Missing required input `{}`", def.id),
                }),
                None => {
                    out.insert(def.id.clone(), Value::Null);
                }
            },
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Problems in a definition itself (SELECT without values, bad regex, bad bounds); empty when fine.
pub fn check_definition(def: &InputDef) -> Vec<String> {
    let mut problems = Vec::new();
    if matches!(def.input_type, InputType::Select | InputType::Multiselect | InputType::Enum)
        && def.values.as_ref().is_none_or(|v| v.is_empty())
    {
        problems.push(format!("input `{}` of type {} needs `values`", def.id, def.input_type.as_str()));
    }
    problems
}
