//! Client-side checks of one input value against its `InputSpec`, for instant feedback in forms.
//!
//! The daemon stays the authority (it checks every submitted value and answers typed per-input
//! errors); these checks only catch what can be known locally, with Kestra-style messages naming
//! the input and the rule.
//! Regex validators are left to the daemon (no regex engine in the console).

use tollgate_proto::v1::InputSpec;

/// How a type's value is typed in a text widget (shown under the field).
pub fn format_hint(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "DATE" => "YYYY-MM-DD",
        "DATETIME" => "YYYY-MM-DDTHH:MM:SSZ (RFC 3339)",
        "TIME" => "HH:MM or HH:MM:SS",
        "DURATION" => "ISO 8601, e.g. PT30M, PT1H30M, P2D",
        "EMAIL" => "name@example.com",
        "URI" => "scheme://host/path",
        "JSON" => "JSON document; enter adds a line",
        "YAML" => "YAML document; enter adds a line",
        "ARRAY" => "comma-separated items",
        "INT" => "integer; +/- or ↑/↓ step",
        "FLOAT" => "number; +/- or ↑/↓ step",
        _ => return None,
    })
}

fn invalid(spec: &InputSpec, rule: &str, raw: &str) -> String {
    format!(
        "Invalid input for `{}`, it must be {rule}, but received `{raw}`",
        spec.id
    )
}

/// Checks a non-empty raw value; `Err` holds the message to show under the field.
pub fn check(spec: &InputSpec, raw: &str) -> Result<(), String> {
    match spec.r#type.as_str() {
        "INT" => {
            let v: i64 = raw.trim().parse().map_err(|_| invalid(spec, "an integer", raw))?;
            check_bounds(spec, v as f64, raw)
        }
        "FLOAT" => {
            let v: f64 = raw
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| invalid(spec, "a number", raw))?;
            check_bounds(spec, v, raw)
        }
        "BOOLEAN" | "BOOL" => match raw {
            "true" | "false" => Ok(()),
            _ => Err(invalid(spec, "a boolean (true or false)", raw)),
        },
        "DATE" => {
            let d = parse_date(raw).ok_or_else(|| invalid(spec, "a date (YYYY-MM-DD)", raw))?;
            check_order(spec, raw, parse_date, d)
        }
        "DATETIME" => {
            let d = parse_datetime(raw).ok_or_else(|| invalid(spec, "a date-time (RFC 3339)", raw))?;
            check_order(spec, raw, parse_datetime, d)
        }
        "TIME" => {
            let d = parse_time(raw).ok_or_else(|| invalid(spec, "a time (HH:MM:SS)", raw))?;
            check_order(spec, raw, parse_time, d)
        }
        "DURATION" => {
            let d = parse_duration(raw).ok_or_else(|| invalid(spec, "an ISO 8601 duration like PT30M", raw))?;
            if parse_duration(&spec.min).is_some_and(|min| d < min) {
                return Err(invalid(spec, &format!("at least `{}`", spec.min), raw));
            }
            if parse_duration(&spec.max).is_some_and(|max| d > max) {
                return Err(invalid(spec, &format!("at most `{}`", spec.max), raw));
            }
            Ok(())
        }
        "EMAIL" => {
            let ok = raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            }) && !raw.contains(char::is_whitespace);
            if ok {
                Ok(())
            } else {
                Err(invalid(spec, "an email address", raw))
            }
        }
        "URI" => {
            let ok = raw.split_once(':').is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
            }) && !raw.contains(char::is_whitespace);
            if ok {
                Ok(())
            } else {
                Err(invalid(spec, "a URI (scheme:…)", raw))
            }
        }
        "SELECT" | "ENUM" => {
            if spec.allow_custom_value || spec.values.iter().any(|v| v == raw) {
                Ok(())
            } else {
                Err(invalid(spec, &format!("one of {}", spec.values.join(", ")), raw))
            }
        }
        "MULTISELECT" => {
            let items: Vec<String> =
                serde_json::from_str(raw).map_err(|_| invalid(spec, "a JSON array of strings", raw))?;
            match items
                .iter()
                .find(|i| !spec.allow_custom_value && !spec.values.contains(i))
            {
                Some(bad) => Err(invalid(spec, &format!("a list of {}", spec.values.join(", ")), bad)),
                None => Ok(()),
            }
        }
        "JSON" => serde_json::from_str::<serde_json::Value>(raw)
            .map(|_| ())
            .map_err(|e| format!("Invalid input for `{}`, it must be valid JSON: {e}", spec.id)),
        "ARRAY" => {
            let items: Vec<serde_json::Value> =
                serde_json::from_str(raw).map_err(|_| invalid(spec, "an array", raw))?;
            let item = InputSpec {
                id: spec.id.clone(),
                r#type: spec.item_type.clone(),
                ..Default::default()
            };
            for v in &items {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if !spec.item_type.is_empty() && spec.item_type != "STRING" {
                    check(&item, &text)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_bounds(spec: &InputSpec, v: f64, raw: &str) -> Result<(), String> {
    if let Ok(min) = spec.min.trim().parse::<f64>()
        && v < min
    {
        return Err(invalid(spec, &format!("greater than or equal to `{}`", spec.min), raw));
    }
    if let Ok(max) = spec.max.trim().parse::<f64>()
        && v > max
    {
        return Err(invalid(spec, &format!("less than or equal to `{}`", spec.max), raw));
    }
    Ok(())
}

/// `after`/`before` bounds, inclusive (PRODUCT.md).
fn check_order<T: PartialOrd>(spec: &InputSpec, raw: &str, parse: fn(&str) -> Option<T>, v: T) -> Result<(), String> {
    if let Some(after) = parse(&spec.after)
        && v < after
    {
        return Err(invalid(spec, &format!("after `{}`", spec.after), raw));
    }
    if let Some(before) = parse(&spec.before)
        && v > before
    {
        return Err(invalid(spec, &format!("before `{}`", spec.before), raw));
    }
    Ok(())
}

pub fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

pub fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()
}

pub fn parse_time(s: &str) -> Option<chrono::NaiveTime> {
    let s = s.trim();
    chrono::NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

/// ISO 8601 duration (`PnDTnHnMn.nS`, weeks `PnW`) in seconds; `None` when malformed or empty.
pub fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let body = s.strip_prefix('P').or_else(|| s.strip_prefix("-P"))?;
    let negative = s.starts_with('-');
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (body, None),
    };
    if date.is_empty() && time.is_none() {
        return None;
    }
    let mut total = 0.0;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        let mut allowed = units.iter();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                num.push(if c == ',' { '.' } else { c });
                continue;
            }
            // Units must appear in order, each at most once.
            let (_, factor) = allowed.by_ref().find(|(u, _)| *u == c.to_ascii_uppercase())?;
            let n: f64 = num.parse().ok()?;
            total += n * factor;
            num.clear();
        }
        num.is_empty().then_some(())
    };
    take(
        date,
        &[
            ('Y', 365.0 * 86_400.0),
            ('M', 30.0 * 86_400.0),
            ('W', 7.0 * 86_400.0),
            ('D', 86_400.0),
        ],
    )?;
    if let Some(t) = time {
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str) -> InputSpec {
        InputSpec {
            id: "x".into(),
            r#type: kind.into(),
            required: true,
            ..Default::default()
        }
    }

    #[test]
    fn numbers_and_bounds() {
        let mut s = spec("INT");
        s.min = "1".into();
        s.max = "10".into();
        assert!(check(&s, "5").is_ok());
        assert!(check(&s, "1").is_ok(), "bounds are inclusive");
        let e = check(&s, "11").unwrap_err();
        assert!(e.contains("`x`") && e.contains("less than or equal to `10`"), "{e}");
        assert!(check(&s, "1.5").unwrap_err().contains("an integer"));
        let f = spec("FLOAT");
        assert!(check(&f, "1.5").is_ok());
        assert!(check(&f, "NaN").is_err());
    }

    #[test]
    fn dates_with_inclusive_bounds() {
        let mut s = spec("DATE");
        s.after = "2026-01-01".into();
        assert!(check(&s, "2026-01-01").is_ok());
        let e = check(&s, "2025-12-31").unwrap_err();
        assert_eq!(
            e,
            "Invalid input for `x`, it must be after `2026-01-01`, but received `2025-12-31`"
        );
        assert!(check(&s, "2026-13-01").is_err());
        assert!(check(&spec("DATETIME"), "2026-01-01T10:00:00Z").is_ok());
        assert!(check(&spec("DATETIME"), "2026-01-01 10:00").is_err());
        assert!(check(&spec("TIME"), "10:30").is_ok());
        assert!(check(&spec("TIME"), "25:00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("PT30M"), Some(1800.0));
        assert_eq!(parse_duration("P1DT1H"), Some(90_000.0));
        assert_eq!(parse_duration("PT1.5S"), Some(1.5));
        assert_eq!(parse_duration("P"), None);
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("PT5X"), None);
        assert_eq!(parse_duration("PT1S5M"), None, "units out of order");
        let mut s = spec("DURATION");
        s.max = "PT1H".into();
        assert!(check(&s, "PT2H").unwrap_err().contains("at most `PT1H`"));
        assert!(check(&s, "PT59M").is_ok());
    }

    #[test]
    fn choices_email_uri_json_array() {
        let mut s = spec("SELECT");
        s.values = vec!["a".into(), "b".into()];
        assert!(check(&s, "a").is_ok());
        assert!(check(&s, "c").unwrap_err().contains("one of a, b"));
        s.allow_custom_value = true;
        assert!(check(&s, "c").is_ok());
        let mut m = spec("MULTISELECT");
        m.values = vec!["a".into(), "b".into()];
        assert!(check(&m, r#"["a","b"]"#).is_ok());
        assert!(check(&m, r#"["z"]"#).is_err());
        assert!(check(&spec("EMAIL"), "a@b.io").is_ok());
        assert!(check(&spec("EMAIL"), "a@b").is_err());
        assert!(check(&spec("URI"), "https://x.io/a").is_ok());
        assert!(check(&spec("URI"), "not a uri").is_err());
        assert!(check(&spec("JSON"), r#"{"a":1}"#).is_ok());
        assert!(check(&spec("JSON"), "{").unwrap_err().contains("valid JSON"));
        let mut a = spec("ARRAY");
        a.item_type = "INT".into();
        assert!(check(&a, "[1, 2]").is_ok());
        assert!(check(&a, r#"["x"]"#).is_err());
    }
}
