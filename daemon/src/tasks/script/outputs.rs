//! Kestra's stdout protocol: a line `::{"outputs":{...},"logs":[...]}::` sets task outputs
//! (merged into `vars`) and emits log lines instead of being logged itself.

use serde_json::{Map, Value};

/// What a protocol line carried.
#[derive(Debug, Default, PartialEq)]
pub struct Protocol {
    pub outputs: Map<String, Value>,
    pub logs: Vec<(String, String)>,
    /// Kestra's `metrics`: `{name, type: counter|timer, value, tags}` each, checked.
    pub metrics: Vec<Value>,
}

/// `Some` when `line` is a protocol line; `Err` (a message to log) when it looks like one but
/// is not valid JSON of the expected shape.
pub fn parse(line: &str) -> Option<Result<Protocol, String>> {
    let body = line
        .trim_end_matches(['\r', '\n'])
        .strip_prefix("::")?
        .strip_suffix("::")?;
    if !(body.starts_with('{') && body.ends_with('}')) {
        return None;
    }
    Some(parse_body(body))
}

fn parse_body(body: &str) -> Result<Protocol, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("invalid outputs line: {e}"))?;
    let mut p = Protocol::default();
    match v.get("outputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => p.outputs = m.clone(),
        Some(_) => return Err("invalid outputs line: `outputs` must be a JSON object".into()),
    }
    if let Some(metrics) = v.get("metrics") {
        let Value::Array(items) = metrics else {
            return Err("invalid outputs line: `metrics` must be a JSON list".into());
        };
        for item in items {
            p.metrics.push(metric(item)?);
        }
    }
    if let Some(logs) = v.get("logs") {
        let Value::Array(items) = logs else {
            return Err("invalid outputs line: `logs` must be a JSON list".into());
        };
        for item in items {
            let level = item
                .get("level")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .filter(|l| ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&l.as_str()))
                .unwrap_or_else(|| "INFO".into());
            let message = match item.get("message") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            p.logs.push((level, message));
        }
    }
    Ok(p)
}

/// One of Kestra's metrics, as it is kept: name, type, value (a timer's in seconds) and tags.
fn metric(item: &Value) -> Result<Value, String> {
    let bad = |why: &str| format!("invalid outputs line: a metric {why}: {item}");
    let name = item
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("needs a `name`"))?;
    let kind = match item.get("type").and_then(Value::as_str) {
        Some("counter") => "counter",
        Some("timer") => "timer",
        _ => return Err(bad("needs `type` counter or timer")),
    };
    let value = item
        .get("value")
        .filter(|v| v.as_f64().is_some_and(f64::is_finite))
        .ok_or_else(|| bad("needs a numeric `value`"))?;
    let tags = match item.get("tags") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => m.clone(),
        Some(_) => return Err(bad("has `tags` that are not a map of strings")),
    };
    Ok(serde_json::json!({"name": name, "type": kind, "value": value, "tags": tags}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_line_is_parsed() {
        let p = parse(r#"::{"outputs":{"a":1,"b":"x"}}::"#).unwrap().unwrap();
        assert_eq!(p.outputs.get("a"), Some(&Value::from(1)));
        assert_eq!(p.outputs.get("b"), Some(&Value::from("x")));
    }

    #[test]
    fn logs_line_is_parsed_with_levels() {
        let p = parse(r#"::{"logs":[{"level":"warn","message":"careful"},{"message":"hi"}]}::"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            p.logs,
            vec![("WARN".into(), "careful".into()), ("INFO".into(), "hi".into())]
        );
    }

    #[test]
    fn ordinary_lines_are_not_protocol() {
        assert!(parse("hello").is_none());
        assert!(parse(":: not json ::").is_none());
        assert!(parse("::{broken}::").unwrap().is_err());
        let m = parse(r#"::{"metrics":[{"name":"rows","type":"counter","value":3,"tags":{"t":"x"}}]}::"#)
            .unwrap()
            .unwrap();
        assert_eq!(m.metrics[0]["value"], 3);
        assert_eq!(m.metrics[0]["tags"]["t"], "x");
        for bad in [
            r#"::{"metrics":[{"type":"counter","value":1}]}::"#,
            r#"::{"metrics":[{"name":"a","type":"gauge","value":1}]}::"#,
            r#"::{"metrics":[{"name":"a","type":"timer","value":"x"}]}::"#,
            r#"::{"metrics":{"name":"a"}}::"#,
        ] {
            assert!(parse(bad).unwrap().is_err(), "{bad}");
        }
        assert!(parse(r#"::{"outputs":3}::"#).unwrap().is_err());
    }
}
