//! ISO-8601 durations as Kestra writes them (`PT5M`, `P1D`, `PT1H30M`, `PT0.5S`).

use std::time::Duration;

/// Parses an ISO-8601 duration; years and months are refused because their length varies.
pub fn parse_iso8601(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not an ISO-8601 duration such as PT5M, PT1H30M or P2D");
    let s = text.trim();
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p')).ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut in_time = false;
    let mut number = String::new();
    let mut saw_unit = false;
    for c in rest.chars() {
        match c {
            'T' | 't' => {
                if in_time || !number.is_empty() {
                    return Err(bad());
                }
                in_time = true;
            }
            '0'..='9' | '.' => number.push(c),
            unit => {
                let n: f64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let seconds = match (in_time, unit.to_ascii_uppercase()) {
                    (false, 'D') => 86_400.0,
                    (false, 'W') => 604_800.0,
                    (true, 'H') => 3_600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(bad()),
                };
                total += n * seconds;
                saw_unit = true;
            }
        }
    }
    if !number.is_empty() || !saw_unit || !total.is_finite() {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the ISO-8601 way (`PT1H30M`), for outputs such as `waitingFor`.
pub fn format_iso8601(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "PT0S".to_string();
    }
    let days = secs / 86_400;
    secs %= 86_400;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h + m + s > 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_iso8601("PT5M").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_iso8601("PT1H30M").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_iso8601("P2D").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_iso8601("P1DT1S").unwrap(), Duration::from_secs(86_401));
        assert_eq!(parse_iso8601("PT0.5S").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["5M", "P", "PT", "PT5", "P1M", "PTXS", "", "P1H"] {
            assert!(parse_iso8601(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["PT5M", "PT1H30M", "P2D", "P1DT1S"] {
            assert_eq!(format_iso8601(parse_iso8601(s).unwrap()), s);
        }
    }
}
