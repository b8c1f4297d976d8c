//! `io.kestra.plugin.core.trigger.Schedule`: cron in a time zone, next fire time.

use chrono::{TimeZone, Utc};
use croner::Cron;

/// Parses a cron expression: 5 fields (6, seconds first, `with_seconds`), or `@daily`-style nicknames.
pub fn parse(cron: &str, with_seconds: bool) -> Result<Cron, String> {
    let expanded = match cron.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    let mut c = Cron::new(expanded);
    if with_seconds {
        c.with_seconds_required();
    }
    c.parse().map_err(|e| format!("invalid cron `{cron}`: {e}"))
}

/// The first fire time strictly after `after_ms`, in milliseconds since the epoch.
pub fn next_fire(cron: &str, with_seconds: bool, timezone: Option<&str>, after_ms: i64) -> Result<i64, String> {
    let c = parse(cron, with_seconds)?;
    let after = Utc
        .timestamp_millis_opt(after_ms)
        .single()
        .ok_or_else(|| format!("bad time {after_ms}"))?;
    match timezone.filter(|t| !t.is_empty()) {
        Some(tz) => {
            let tz: chrono_tz::Tz = tz.parse().map_err(|_| format!("unknown time zone `{tz}`"))?;
            c.find_next_occurrence(&after.with_timezone(&tz), false)
                .map(|d| d.timestamp_millis())
                .map_err(|e| format!("no next fire time for `{cron}`: {e}"))
        }
        None => c
            .find_next_occurrence(&after, false)
            .map(|d| d.timestamp_millis())
            .map_err(|e| format!("no next fire time for `{cron}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_fire_respects_time_zone() {
        // 2026-01-01T00:00:00Z
        let t0 = 1_767_225_600_000;
        let utc = next_fire("0 9 * * *", false, None, t0).unwrap();
        assert_eq!(utc - t0, 9 * 3_600_000);
        let paris = next_fire("0 9 * * *", false, Some("Europe/Paris"), t0).unwrap();
        assert_eq!(paris - t0, 8 * 3_600_000, "09:00 in Paris is 08:00 UTC in winter");
        assert!(next_fire("nope", false, None, t0).is_err());
        assert!(next_fire("0 9 * * *", false, Some("Mars/Base"), t0).is_err());
        assert_eq!(next_fire("@hourly", false, None, t0).unwrap() - t0, 3_600_000);
    }

    #[test]
    fn seconds_field_with_with_seconds() {
        let t0 = 1_767_225_600_000;
        assert_eq!(next_fire("*/5 * * * * *", true, None, t0).unwrap() - t0, 5_000);
        assert!(
            next_fire("*/5 * * * * *", false, None, t0).is_err(),
            "six fields need withSeconds"
        );
    }
}
