//! Form state built from `InputSpec`s: one widget per input type, editing, values, validation.
//!
//! The same form serves a pause's `onResume` inputs and a flow's start inputs. Values leave as
//! strings keyed by input id (PRODUCT.md); list types travel as JSON arrays.

use std::collections::BTreeMap;

use serde_json::Value;
use tollgate_proto::v1::{InputError, InputSpec};

use super::input_check;
use super::text_input::{TextArea, TextInput};

/// What the focused field does with keys (decides the key bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetKind {
    Text,
    Bool,
    Select,
    /// A SELECT whose "custom value" entry is chosen: typing edits it.
    SelectCustom,
    Multi,
    Number,
    Area,
    Unsupported,
}

/// The editable part of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Widget {
    /// STRING, EMAIL, URI, DATE/DATETIME/TIME, DURATION; masked for SECRET.
    Text {
        input: TextInput,
        masked: bool,
    },
    Bool(bool),
    /// SELECT / ENUM: `index == values.len()` is the custom value when allowed.
    Select {
        index: Option<usize>,
        custom: TextInput,
    },
    /// MULTISELECT: one checkbox per value.
    Multi {
        checked: Vec<bool>,
        cursor: usize,
    },
    /// INT / FLOAT with step keys.
    Number {
        input: TextInput,
        float: bool,
    },
    /// JSON / YAML.
    Area(TextArea),
    /// ARRAY: comma-separated items.
    Array(TextInput),
    /// FILE: cannot be entered from a terminal form.
    Unsupported,
}

/// One input of the form.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub spec: InputSpec,
    pub widget: Widget,
    /// Client-side or daemon error shown under the field.
    pub error: Option<String>,
    /// The decision's comment (the reason when rejecting), not an input of the flow: a flow may
    /// have an input named `comment`, so this is told apart by role, not by id.
    pub is_comment: bool,
}

/// An edit the user makes to the focused field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    ClearLine,
    DeleteWord,
    NewLine,
    Toggle,
    StepUp,
    StepDown,
}

fn default_value(spec: &InputSpec) -> Option<Value> {
    spec.default_json.as_deref().and_then(|j| serde_json::from_str(j).ok())
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Field {
    pub fn new(spec: InputSpec) -> Field {
        let default = default_value(&spec);
        let text = default.as_ref().map(scalar_text).unwrap_or_default();
        let widget = match spec.r#type.as_str() {
            // A masked default would only send the mask back: leave secrets empty, the daemon applies the default.
            "SECRET" => Widget::Text {
                input: TextInput::default(),
                masked: true,
            },
            "BOOLEAN" | "BOOL" => Widget::Bool(matches!(default, Some(Value::Bool(true))) || text == "true"),
            "SELECT" | "ENUM" => {
                let index = spec.values.iter().position(|v| *v == text);
                let custom_default = index.is_none() && spec.allow_custom_value && !text.is_empty();
                Widget::Select {
                    index: if custom_default { Some(spec.values.len()) } else { index },
                    custom: TextInput::new(if custom_default { text } else { String::new() }),
                }
            }
            "MULTISELECT" => {
                let chosen: Vec<String> = match &default {
                    Some(Value::Array(items)) => items.iter().map(scalar_text).collect(),
                    Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
                    _ => vec![],
                };
                Widget::Multi {
                    checked: spec.values.iter().map(|v| chosen.contains(v)).collect(),
                    cursor: 0,
                }
            }
            "INT" | "FLOAT" => Widget::Number {
                input: TextInput::new(text),
                float: spec.r#type == "FLOAT",
            },
            "JSON" | "YAML" => Widget::Area(TextArea::new(&match &default {
                Some(Value::String(s)) => s.clone(),
                Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
                None => String::new(),
            })),
            "ARRAY" => Widget::Array(TextInput::new(match &default {
                Some(Value::Array(items)) => items.iter().map(scalar_text).collect::<Vec<_>>().join(", "),
                _ => text,
            })),
            "FILE" => Widget::Unsupported,
            _ => Widget::Text {
                input: TextInput::new(text),
                masked: false,
            },
        };
        Field {
            spec,
            widget,
            error: None,
            is_comment: false,
        }
    }

    /// The free-text comment kept with a decision (approval comment or rejection reason).
    pub fn comment() -> Field {
        Field {
            spec: InputSpec {
                id: "comment".into(),
                display_name: "Comment".into(),
                r#type: "STRING".into(),
                description: "Kept with your decision in the audit; the reason when you reject (^r).".into(),
                ..Default::default()
            },
            widget: Widget::Text {
                input: TextInput::default(),
                masked: false,
            },
            error: None,
            is_comment: true,
        }
    }

    pub fn kind(&self) -> WidgetKind {
        match &self.widget {
            Widget::Text { .. } | Widget::Array(_) => WidgetKind::Text,
            Widget::Bool(_) => WidgetKind::Bool,
            Widget::Select { index, .. } if self.spec.allow_custom_value && *index == Some(self.spec.values.len()) => {
                WidgetKind::SelectCustom
            }
            Widget::Select { .. } => WidgetKind::Select,
            Widget::Multi { .. } => WidgetKind::Multi,
            Widget::Number { .. } => WidgetKind::Number,
            Widget::Area(_) => WidgetKind::Area,
            Widget::Unsupported => WidgetKind::Unsupported,
        }
    }

    /// The label: display name (or id) and a required marker.
    pub fn label(&self) -> String {
        let name = if self.spec.display_name.is_empty() {
            &self.spec.id
        } else {
            &self.spec.display_name
        };
        if self.spec.required {
            format!("{name} *")
        } else {
            name.clone()
        }
    }

    /// The raw string that would be sent; `None` when the field is left empty.
    pub fn value(&self) -> Option<String> {
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.to_string());
        match &self.widget {
            Widget::Text { input, .. } => non_empty(input.as_str()),
            Widget::Number { input, .. } => non_empty(input.as_str().trim()),
            Widget::Bool(b) => Some(b.to_string()),
            Widget::Select { index, custom } => match index {
                Some(i) if *i < self.spec.values.len() => Some(self.spec.values[*i].clone()),
                Some(_) => non_empty(custom.as_str()),
                None => None,
            },
            Widget::Multi { checked, .. } => {
                let chosen: Vec<&String> = self
                    .spec
                    .values
                    .iter()
                    .zip(checked)
                    .filter(|(_, c)| **c)
                    .map(|(v, _)| v)
                    .collect();
                if chosen.is_empty() && !self.spec.required {
                    None
                } else {
                    Some(serde_json::to_string(&chosen).unwrap_or_default())
                }
            }
            Widget::Area(area) => non_empty(&area.text()),
            Widget::Array(input) => {
                let items: Vec<Value> = input
                    .as_str()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| typed_item(&self.spec.item_type, s))
                    .collect();
                (!items.is_empty()).then(|| Value::Array(items).to_string())
            }
            Widget::Unsupported => None,
        }
    }

    /// Client-side check; sets and returns the error.
    pub fn validate(&mut self) -> Option<String> {
        self.error = match (&self.widget, self.value()) {
            (Widget::Unsupported, _) if self.spec.required && self.spec.default_json.is_none() => Some(format!(
                "`{}` is a {} input, which the console cannot send; use the CLI",
                self.spec.id, self.spec.r#type
            )),
            (Widget::Multi { .. }, Some(v)) if v == "[]" && self.spec.default_json.is_none() => Some(format!(
                "Missing required input `{}`: choose at least one",
                self.spec.id
            )),
            (_, None) if self.spec.required && self.spec.default_json.is_none() => {
                Some(format!("Missing required input `{}`", self.spec.id))
            }
            (_, Some(v)) => input_check::check(&self.spec, &v).err(),
            _ => None,
        };
        self.error.clone()
    }

    fn step(&mut self, up: bool) {
        let Widget::Number { input, float } = &mut self.widget else {
            return;
        };
        let min = self.spec.min.trim().parse::<f64>().ok();
        let max = self.spec.max.trim().parse::<f64>().ok();
        let current = input.as_str().trim().parse::<f64>().ok();
        let next = match current {
            None => min.unwrap_or(0.0),
            Some(v) if up => v + 1.0,
            Some(v) => v - 1.0,
        };
        let next = next.max(min.unwrap_or(f64::MIN)).min(max.unwrap_or(f64::MAX));
        if *float {
            let decimals = input.as_str().split_once('.').map(|(_, d)| d.len()).unwrap_or(1).max(1);
            input.set(format!("{next:.decimals$}"));
        } else {
            input.set(format!("{}", next.round() as i64));
        }
    }

    /// Applies one edit to this field.
    pub fn edit(&mut self, edit: Edit) {
        let kind = self.kind();
        let values_len = self.spec.values.len();
        let custom_allowed = self.spec.allow_custom_value;
        match &mut self.widget {
            Widget::Text { input, .. } | Widget::Array(input) | Widget::Number { input, .. } => {
                // INT/FLOAT: `-` at the start types a sign, elsewhere steps down; `+` always steps.
                if kind == WidgetKind::Number {
                    match edit {
                        Edit::StepUp | Edit::Up | Edit::Insert('+') => return self.step(true),
                        Edit::Insert('-') if input.cursor() > 0 || input.as_str().starts_with('-') => {
                            return self.step(false);
                        }
                        Edit::StepDown | Edit::Down => return self.step(false),
                        _ => {}
                    }
                }
                edit_line(input, edit)
            }
            Widget::Bool(b) => {
                if matches!(edit, Edit::Toggle | Edit::Left | Edit::Right | Edit::Insert(' ')) {
                    *b = !*b;
                } else if let Edit::Insert(c) = edit {
                    match c {
                        'y' | 't' | '1' => *b = true,
                        'n' | 'f' | '0' => *b = false,
                        _ => {}
                    }
                }
            }
            Widget::Select { index, custom } => {
                let count = values_len + usize::from(custom_allowed);
                if count == 0 {
                    return;
                }
                let on_custom = custom_allowed && *index == Some(values_len);
                match edit {
                    Edit::Right | Edit::Down | Edit::Toggle => {
                        *index = Some(index.map(|i| (i + 1) % count).unwrap_or(0));
                    }
                    Edit::Left | Edit::Up => {
                        *index = Some(index.map(|i| (i + count - 1) % count).unwrap_or(count - 1));
                    }
                    e if on_custom => edit_line(custom, e),
                    _ => {}
                }
            }
            Widget::Multi { checked, cursor } => match edit {
                Edit::Down | Edit::Right => *cursor = (*cursor + 1).min(checked.len().saturating_sub(1)),
                Edit::Up | Edit::Left => *cursor = cursor.saturating_sub(1),
                Edit::Toggle | Edit::Insert(' ') => {
                    if let Some(c) = checked.get_mut(*cursor) {
                        *c = !*c;
                    }
                }
                _ => {}
            },
            Widget::Area(area) => match edit {
                Edit::Insert(c) => area.insert(c),
                Edit::NewLine => area.newline(),
                Edit::Backspace => area.backspace(),
                Edit::Delete => area.delete(),
                Edit::Left => area.left(),
                Edit::Right => area.right(),
                Edit::Up => area.up(),
                Edit::Down => area.down(),
                Edit::Home => area.home(),
                Edit::End => area.end(),
                Edit::ClearLine => area.clear_before(),
                Edit::DeleteWord => area.delete_word(),
                Edit::Toggle | Edit::StepUp | Edit::StepDown => {}
            },
            Widget::Unsupported => {}
        }
        // Editing clears a stale error; the next validation decides again.
        self.error = None;
    }
}

fn edit_line(input: &mut TextInput, edit: Edit) {
    match edit {
        Edit::Insert(c) => input.insert(c),
        Edit::Backspace => input.backspace(),
        Edit::Delete => input.delete(),
        Edit::Left => input.left(),
        Edit::Right => input.right(),
        Edit::Home => input.home(),
        Edit::End => input.end(),
        Edit::ClearLine => input.clear_before(),
        Edit::DeleteWord => input.delete_word(),
        Edit::Up | Edit::Down | Edit::NewLine | Edit::Toggle | Edit::StepUp | Edit::StepDown => {}
    }
}

/// An ARRAY item typed by `itemType`, falling back to a string the daemon will judge.
fn typed_item(item_type: &str, s: &str) -> Value {
    let parsed = match item_type {
        "INT" => s.parse::<i64>().ok().map(Value::from),
        "FLOAT" => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "BOOLEAN" | "BOOL" => s.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(s.to_string()))
}

/// A form: fields, focus, and a form-level error (one that names no field).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Form {
    pub fields: Vec<Field>,
    pub focus: usize,
    pub error: Option<String>,
}

impl Form {
    pub fn new(specs: &[InputSpec]) -> Form {
        Form {
            fields: specs.iter().cloned().map(Field::new).collect(),
            focus: 0,
            error: None,
        }
    }

    /// A form that decides a pause: the flow's `onResume` inputs, then the decision's comment.
    pub fn for_decision(specs: &[InputSpec]) -> Form {
        let mut form = Form::new(specs);
        form.fields.push(Field::comment());
        form
    }

    /// The decision's comment, trimmed; empty when there is no comment field or nothing typed.
    pub fn comment(&self) -> String {
        self.fields
            .iter()
            .find(|f| f.is_comment)
            .and_then(Field::value)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    }

    /// Puts an error under the comment field and focuses it (a rejection that needs a reason).
    pub fn comment_error(&mut self, message: &str) {
        if let Some(i) = self.fields.iter().position(|f| f.is_comment) {
            self.fields[i].error = Some(message.to_string());
            self.focus = i;
        } else {
            self.error = Some(message.to_string());
        }
    }

    pub fn focused(&self) -> Option<&Field> {
        self.fields.get(self.focus)
    }

    /// Key behaviour of the focused field (`None` for a form without fields).
    pub fn focused_kind(&self) -> Option<WidgetKind> {
        self.focused().map(Field::kind)
    }

    /// Whether `enter` submits: on the last input, the optional comment after it does not count
    /// (it is reached with tab, and enter there submits too).
    pub fn on_last_field(&self) -> bool {
        self.fields.iter().skip(self.focus + 1).all(|f| f.is_comment)
    }

    pub fn next(&mut self) {
        if !self.fields.is_empty() {
            self.focus = (self.focus + 1) % self.fields.len();
        }
    }

    pub fn prev(&mut self) {
        if !self.fields.is_empty() {
            self.focus = (self.focus + self.fields.len() - 1) % self.fields.len();
        }
    }

    pub fn edit(&mut self, edit: Edit) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.edit(edit);
        }
    }

    /// Values of every non-empty field, as the API takes them.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .filter(|f| !f.is_comment)
            .filter_map(|f| f.value().map(|v| (f.spec.id.clone(), v)))
            .collect()
    }

    /// Checks every field; focuses the first invalid one. True when all pass.
    pub fn validate(&mut self) -> bool {
        self.error = None;
        let mut first_bad = None;
        for (i, f) in self.fields.iter_mut().enumerate() {
            if f.validate().is_some() && first_bad.is_none() {
                first_bad = Some(i);
            }
        }
        if let Some(i) = first_bad {
            self.focus = i;
        }
        first_bad.is_none()
    }

    /// Places the daemon's errors under the fields they name; others become the form error.
    pub fn apply_errors(&mut self, errors: &[InputError]) {
        let mut general = Vec::new();
        let mut first_bad = None;
        for e in errors {
            match self
                .fields
                .iter()
                .position(|f| !f.is_comment && f.spec.id == e.input_id)
            {
                Some(i) => {
                    self.fields[i].error = Some(e.message.clone());
                    first_bad = Some(first_bad.map_or(i, |b: usize| b.min(i)));
                }
                None => general.push(e.message.clone()),
            }
        }
        if let Some(i) = first_bad {
            self.focus = i;
        }
        self.error = (!general.is_empty()).then(|| general.join("; "));
    }

    pub fn has_errors(&self) -> bool {
        self.error.is_some() || self.fields.iter().any(|f| f.error.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, kind: &str) -> InputSpec {
        InputSpec {
            id: id.into(),
            r#type: kind.into(),
            required: true,
            ..Default::default()
        }
    }

    #[test]
    fn string_and_boolean_values() {
        let mut form = Form::new(&[spec("reason", "STRING"), spec("ok", "BOOLEAN")]);
        assert!(!form.validate(), "empty required string fails");
        assert_eq!(form.fields[0].error.as_deref(), Some("Missing required input `reason`"));
        for c in "fine".chars() {
            form.edit(Edit::Insert(c));
        }
        form.next();
        form.edit(Edit::Toggle);
        assert!(form.validate());
        let v = form.values();
        assert_eq!(v["reason"], "fine");
        assert_eq!(v["ok"], "true");
    }

    #[test]
    fn defaults_prefill_widgets() {
        let mut s = spec("env", "SELECT");
        s.values = vec!["dev".into(), "prod".into()];
        s.default_json = Some("\"prod\"".into());
        let mut n = spec("count", "INT");
        n.default_json = Some("3".into());
        let mut m = spec("tags", "MULTISELECT");
        m.values = vec!["a".into(), "b".into(), "c".into()];
        m.default_json = Some(r#"["b"]"#.into());
        let mut secret = spec("token", "SECRET");
        secret.default_json = Some("\"******\"".into());
        let form = Form::new(&[s, n, m, secret]);
        let v = form.values();
        assert_eq!(v["env"], "prod");
        assert_eq!(v["count"], "3");
        assert_eq!(v["tags"], r#"["b"]"#);
        assert!(!v.contains_key("token"), "a masked default is never sent back");
    }

    #[test]
    fn select_cycles_and_custom_value() {
        let mut s = spec("env", "SELECT");
        s.values = vec!["dev".into(), "prod".into()];
        s.allow_custom_value = true;
        let mut f = Field::new(s);
        assert_eq!(f.value(), None);
        f.edit(Edit::Right);
        assert_eq!(f.value().as_deref(), Some("dev"));
        f.edit(Edit::Left);
        assert_eq!(f.kind(), WidgetKind::SelectCustom);
        f.edit(Edit::Insert('q'));
        f.edit(Edit::Insert('a'));
        assert_eq!(f.value().as_deref(), Some("qa"));
    }

    #[test]
    fn number_steps_respect_bounds_and_sign() {
        let mut s = spec("n", "INT");
        s.min = "0".into();
        s.max = "2".into();
        let mut f = Field::new(s);
        f.edit(Edit::StepUp);
        assert_eq!(f.value().as_deref(), Some("0"), "empty starts at min");
        f.edit(Edit::StepUp);
        f.edit(Edit::StepUp);
        f.edit(Edit::StepUp);
        assert_eq!(f.value().as_deref(), Some("2"), "clamped to max");
        let mut free = Field::new(spec("m", "INT"));
        free.edit(Edit::Insert('-'));
        free.edit(Edit::Insert('5'));
        assert_eq!(free.value().as_deref(), Some("-5"));
        free.edit(Edit::Insert('-'));
        assert_eq!(free.value().as_deref(), Some("-6"));
        let mut fl = Field::new(spec("f", "FLOAT"));
        for c in "1.25".chars() {
            fl.edit(Edit::Insert(c));
        }
        fl.edit(Edit::Insert('+'));
        assert_eq!(fl.value().as_deref(), Some("2.25"));
    }

    #[test]
    fn multiselect_array_and_json() {
        let mut m = spec("tags", "MULTISELECT");
        m.values = vec!["a".into(), "b".into()];
        let mut f = Field::new(m);
        assert!(f.validate().is_some(), "required multiselect needs a choice");
        f.edit(Edit::Down);
        f.edit(Edit::Toggle);
        assert_eq!(f.value().as_deref(), Some(r#"["b"]"#));
        assert!(f.validate().is_none());

        let mut a = spec("ids", "ARRAY");
        a.item_type = "INT".into();
        let mut f = Field::new(a);
        for c in "1, 2,3".chars() {
            f.edit(Edit::Insert(c));
        }
        assert_eq!(f.value().as_deref(), Some("[1,2,3]"));
        assert!(f.validate().is_none());

        let mut j = Field::new(spec("doc", "JSON"));
        for c in "{\"a\":".chars() {
            j.edit(Edit::Insert(c));
        }
        j.edit(Edit::NewLine);
        j.edit(Edit::Insert('1'));
        assert!(j.validate().is_some(), "unterminated JSON");
        j.edit(Edit::Insert('}'));
        assert!(j.validate().is_none());
    }

    #[test]
    fn daemon_errors_land_under_their_field() {
        let mut form = Form::new(&[spec("a", "STRING"), spec("b", "STRING")]);
        form.apply_errors(&[
            InputError {
                input_id: "b".into(),
                message: "bad b".into(),
            },
            InputError {
                input_id: String::new(),
                message: "whole request".into(),
            },
        ]);
        assert_eq!(form.focus, 1);
        assert_eq!(form.fields[1].error.as_deref(), Some("bad b"));
        assert_eq!(form.error.as_deref(), Some("whole request"));
        form.edit(Edit::Insert('x'));
        assert_eq!(form.fields[1].error, None, "editing clears the stale error");
    }

    #[test]
    fn the_comment_is_no_input_even_when_a_flow_input_shares_its_id() {
        let mut form = Form::for_decision(&[spec("comment", "STRING")]);
        for c in "input".chars() {
            form.edit(Edit::Insert(c));
        }
        form.next();
        for c in " why not ".chars() {
            form.edit(Edit::Insert(c));
        }
        assert!(form.validate(), "the comment is optional");
        assert_eq!(form.values().len(), 1);
        assert_eq!(form.values()["comment"], "input");
        assert_eq!(form.comment(), "why not");
        form.apply_errors(&[InputError {
            input_id: "comment".into(),
            message: "bad input".into(),
        }]);
        assert_eq!(form.focus, 0, "a daemon error naming `comment` is the flow's input");
        form.comment_error("give a reason");
        assert_eq!(form.focus, 1);
        assert_eq!(form.fields[1].error.as_deref(), Some("give a reason"));
    }

    #[test]
    fn optional_empty_fields_are_omitted() {
        let mut s = spec("note", "STRING");
        s.required = false;
        let mut form = Form::new(&[s]);
        assert!(form.validate());
        assert!(form.values().is_empty());
    }
}
