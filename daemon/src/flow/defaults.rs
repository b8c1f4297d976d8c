//! Kestra's `pluginDefaults` (and the older `taskDefaults`): property values a flow gives once
//! for every task or trigger of a type, or of every type under a package prefix. They are merged
//! into each matching task's YAML before it is read, so a default is checked exactly like a value
//! written on the task itself: a misspelled default is an error on the task that receives it.

use serde_yaml::{Mapping, Value as Yaml};

use super::path::{Issue, Path};
use crate::yaml::short;

/// One entry of `pluginDefaults`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginDefault {
    /// A full type name, or a prefix of one (`io.kestra.plugin.core.log`).
    pub type_name: String,
    pub values: Mapping,
    /// When set, the default wins over the task's own value; otherwise the task's value wins.
    pub forced: bool,
}

impl PluginDefault {
    /// Whether this default applies to a plugin of type `type_name` (as written, or its current
    /// name when it was written with a deprecated alias).
    fn applies_to(&self, written: &str, canonical: &str) -> bool {
        [written, canonical].iter().any(|t| {
            *t == self.type_name
                || (t.starts_with(&self.type_name) && t.as_bytes().get(self.type_name.len()) == Some(&b'.'))
        })
    }
}

/// Reads `pluginDefaults` / `taskDefaults` (a list of `{type, values, forced}`), reporting every
/// malformed entry with its place.
pub fn read(v: &Yaml, path: &Path, issues: &mut Vec<Issue>) -> Vec<PluginDefault> {
    let Yaml::Sequence(items) = v else {
        if !matches!(v, Yaml::Null) {
            issues.push(Issue::new(
                path.clone(),
                format!(
                    "plugin defaults must be a list of {{type, values, forced}}, found {}",
                    short(v)
                ),
            ));
        }
        return vec![];
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = path.index(i);
        let Yaml::Mapping(m) = item else {
            issues.push(Issue::new(
                at,
                format!("a plugin default must be a mapping, found {}", short(item)),
            ));
            continue;
        };
        let mut type_name = None;
        let mut values = Mapping::new();
        let mut forced = false;
        let mut ok = true;
        for (k, val) in m {
            match (k.as_str(), val) {
                (Some("type"), Yaml::String(s)) if !s.trim().is_empty() => type_name = Some(s.trim().to_string()),
                (Some("values"), Yaml::Mapping(vals)) => values = vals.clone(),
                (Some("values"), Yaml::Null) => {}
                (Some("forced"), Yaml::Bool(b)) => forced = *b,
                (Some(key @ ("type" | "values" | "forced")), other) => {
                    let want = match key {
                        "type" => "a non-empty type name",
                        "values" => "a mapping of property values",
                        _ => "true or false",
                    };
                    issues.push(Issue::new(
                        at.key(key),
                        format!("`{key}` of a plugin default must be {want}, found {}", short(other)),
                    ));
                    ok = false;
                }
                (other, _) => {
                    issues.push(Issue::new(
                        at.clone(),
                        format!(
                            "unknown property `{}` on a plugin default; expected `type`, `values` or `forced`",
                            other.unwrap_or("?")
                        ),
                    ));
                    ok = false;
                }
            }
        }
        match type_name {
            Some(type_name) if ok => out.push(PluginDefault {
                type_name,
                values,
                forced,
            }),
            Some(_) => {}
            None => issues.push(Issue::new(at, "a plugin default needs a `type`".to_string())),
        }
    }
    out
}

/// The plugin's YAML with the defaults that apply merged in, or None when none applies.
/// `canonical` is the plugin's current type name.
pub fn apply(defaults: &[PluginDefault], plugin: &Yaml, canonical: &str) -> Option<Yaml> {
    let Yaml::Mapping(own) = plugin else { return None };
    let written = own.get("type").and_then(Yaml::as_str).unwrap_or(canonical);
    let matching: Vec<&PluginDefault> = defaults.iter().filter(|d| d.applies_to(written, canonical)).collect();
    if matching.is_empty() {
        return None;
    }
    let mut merged = own.clone();
    for d in matching {
        merged = if d.forced {
            merge(&merged, &d.values)
        } else {
            merge(&d.values, &merged)
        };
    }
    Some(Yaml::Mapping(merged))
}

/// `over` on top of `base`: mappings merge key by key, anything else in `over` replaces.
fn merge(base: &Mapping, over: &Mapping) -> Mapping {
    let mut out = base.clone();
    for (k, v) in over {
        let merged = match (out.get(k), v) {
            (Some(Yaml::Mapping(b)), Yaml::Mapping(o)) => Yaml::Mapping(merge(b, o)),
            _ => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Yaml {
        serde_yaml::from_str(s).expect("test yaml")
    }

    fn defaults(s: &str) -> Vec<PluginDefault> {
        let mut issues = vec![];
        let d = read(&yaml(s), &Path::root(), &mut issues);
        assert!(issues.is_empty(), "{issues:?}");
        d
    }

    #[test]
    fn a_default_fills_what_the_task_leaves_out_and_the_task_wins_otherwise() {
        let d = defaults("- type: io.kestra.plugin.core.log.Log\n  values: {message: dflt, level: WARN}\n");
        let task = yaml("{id: t, type: io.kestra.plugin.core.log.Log, message: own}");
        let merged = apply(&d, &task, "io.kestra.plugin.core.log.Log").expect("applies");
        assert_eq!(merged.get("message").and_then(Yaml::as_str), Some("own"));
        assert_eq!(merged.get("level").and_then(Yaml::as_str), Some("WARN"));
    }

    #[test]
    fn a_forced_default_wins_and_maps_merge_deeply() {
        let d = defaults(
            "- type: io.kestra.plugin.core.http\n  forced: true\n  values: {method: POST, options: {readTimeout: PT5S}}\n",
        );
        let task =
            yaml("{id: t, type: io.kestra.plugin.core.http.Request, method: GET, options: {connectTimeout: PT1S}}");
        let merged = apply(&d, &task, "io.kestra.plugin.core.http.Request").expect("prefix applies");
        assert_eq!(merged.get("method").and_then(Yaml::as_str), Some("POST"));
        let options = merged.get("options").expect("options");
        assert_eq!(options.get("readTimeout").and_then(Yaml::as_str), Some("PT5S"));
        assert_eq!(options.get("connectTimeout").and_then(Yaml::as_str), Some("PT1S"));
    }

    #[test]
    fn a_prefix_matches_whole_package_segments_only() {
        let d = defaults("- type: io.kestra.plugin.core.lo\n  values: {level: WARN}\n");
        let task = yaml("{id: t, type: io.kestra.plugin.core.log.Log, message: m}");
        assert!(apply(&d, &task, "io.kestra.plugin.core.log.Log").is_none());
    }

    #[test]
    fn malformed_entries_are_reported_with_their_place() {
        let mut issues = vec![];
        let d = read(
            &yaml("- values: {a: 1}\n- type: x\n  value: {a: 1}\n- type: y\n  forced: maybe\n"),
            &Path::root().key("pluginDefaults"),
            &mut issues,
        );
        assert!(d.is_empty());
        let messages: Vec<&str> = issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].contains("needs a `type`"));
        assert!(messages[1].contains("unknown property `value`"));
        assert!(messages[2].contains("`forced`"));
    }
}
