//! Times as the console shows them: compact durations and UTC timestamps.
//!
//! The clock is always passed in (the app's `now_ms`) so views render the same in tests.

/// A compact elapsed time: `42s`, `12m05s`, `3h12m`, `2d03h`. Negative spans show as `0s`.
pub fn duration(ms: i64) -> String {
    let s = (ms.max(0)) / 1000;
    let (d, h, m, sec) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// A task run's duration with sub-second precision for short runs: `0.25s`, `1.5s`, then as [`duration`].
pub fn run_duration(ms: i64) -> String {
    if ms < 10_000 {
        format!("{:.2}s", ms.max(0) as f64 / 1000.0)
    } else {
        duration(ms)
    }
}

/// A UTC timestamp `2026-01-02 10:04:05Z`, or `-` for 0 / out of range.
pub fn utc(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        None => "-".into(),
    }
}

/// Time of day for log lines `10:04:05.123` (UTC).
pub fn clock(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%H:%M:%S%.3f").to_string(),
        None => "--:--:--.---".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_compact() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(725_000), "12m05s");
        assert_eq!(duration(3 * 3_600_000 + 12 * 60_000), "3h12m");
        assert_eq!(duration(2 * 86_400_000 + 3 * 3_600_000), "2d03h");
        assert_eq!(run_duration(250), "0.25s");
    }

    #[test]
    fn utc_formats_and_handles_zero() {
        assert_eq!(utc(0), "-");
        assert_eq!(utc(1_767_348_245_000), "2026-01-02 10:04:05Z");
    }
}
