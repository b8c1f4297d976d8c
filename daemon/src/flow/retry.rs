//! Kestra's `retry` (on a task, a flowable task or the whole flow): when a task run fails, the
//! same task run starts again as a new attempt after a delay, until `maxAttempt` attempts or
//! `maxDuration` since the first attempt (`behavior: RETRY_FAILED_TASK`), or, with
//! `behavior: CREATE_NEW_EXECUTION`, the execution ends RETRIED and a new execution of the flow
//! starts after the delay (attempts and `maxDuration` then count executions, from the first).

use serde::{Deserialize, Serialize};

/// How long to wait before the next attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RetryDelay {
    Constant {
        interval_ms: i64,
    },
    /// Kestra's formula: `interval * (delayFactor or 2) * (attempts - 1)`, capped at `maxInterval`.
    Exponential {
        interval_ms: i64,
        max_interval_ms: i64,
        delay_factor: Option<f64>,
    },
    Random {
        min_interval_ms: i64,
        max_interval_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    pub delay: RetryDelay,
    /// Total attempts, the first included; none = no limit.
    pub max_attempt: Option<u32>,
    /// Measured from the start of the first attempt; none = no limit.
    pub max_duration_ms: Option<i64>,
    /// A task that succeeds after a retry ends WARNING.
    pub warning_on_retry: bool,
    /// Kestra's `behavior: CREATE_NEW_EXECUTION`: retry the whole flow in a new execution.
    #[serde(default)]
    pub new_execution: bool,
}

/// The YAML shape, checked into `Retry` by `Retry::from_raw`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawRetry {
    #[serde(rename = "type")]
    pub retry_type: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub max_interval: Option<String>,
    #[serde(default)]
    pub min_interval: Option<String>,
    #[serde(default)]
    pub delay_factor: Option<f64>,
    #[serde(default, alias = "maxAttempts")]
    pub max_attempt: Option<u32>,
    #[serde(default)]
    pub max_duration: Option<String>,
    #[serde(default)]
    pub warning_on_retry: bool,
    #[serde(default)]
    pub behavior: Option<String>,
}

/// A problem with a `retry` block: the property it is about and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryProblem {
    pub property: &'static str,
    pub message: String,
}

fn problem(property: &'static str, message: impl Into<String>) -> RetryProblem {
    RetryProblem {
        property,
        message: message.into(),
    }
}

fn ms(property: &'static str, text: &Option<String>) -> Result<Option<i64>, RetryProblem> {
    match text {
        None => Ok(None),
        Some(t) => crate::duration::parse_iso8601(t.trim())
            .map(|d| Some(d.as_millis() as i64))
            .map_err(|e| problem(property, format!("invalid duration for `retry.{property}`: {e}"))),
    }
}

fn required(property: &'static str, kind: &str, v: Option<i64>) -> Result<i64, RetryProblem> {
    v.ok_or_else(|| problem(property, format!("`retry.{property}` is required for a {kind} retry")))
}

impl Retry {
    /// Checks a `retry` block as Kestra's validators do; every problem is reported.
    pub fn from_raw(raw: &RawRetry) -> Result<Retry, Vec<RetryProblem>> {
        let mut problems = Vec::new();
        let mut new_execution = false;
        match raw.behavior.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("RETRY_FAILED_TASK") => {}
            Some("CREATE_NEW_EXECUTION") => new_execution = true,
            Some(other) => problems.push(problem(
                "behavior",
                format!("unknown `retry.behavior` `{other}`: expected RETRY_FAILED_TASK or CREATE_NEW_EXECUTION"),
            )),
        }
        if raw.max_attempt == Some(0) {
            problems.push(problem("maxAttempt", "`retry.maxAttempt` must be at least 1"));
        }
        let mut get = |p: &'static str, t: &Option<String>| match ms(p, t) {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let interval = get("interval", &raw.interval);
        let max_interval = get("maxInterval", &raw.max_interval);
        let min_interval = get("minInterval", &raw.min_interval);
        let max_duration = get("maxDuration", &raw.max_duration);
        let unused = |problems: &mut Vec<RetryProblem>, p: &'static str, set: bool, kind: &str| {
            if set {
                problems.push(problem(p, format!("`retry.{p}` does not apply to a {kind} retry")));
            }
        };
        let delay = match raw.retry_type.as_str() {
            "constant" => {
                unused(&mut problems, "maxInterval", raw.max_interval.is_some(), "constant");
                unused(&mut problems, "minInterval", raw.min_interval.is_some(), "constant");
                unused(&mut problems, "delayFactor", raw.delay_factor.is_some(), "constant");
                match required("interval", "constant", interval) {
                    Ok(i) => {
                        if let Some(d) = max_duration
                            && d <= i
                        {
                            problems.push(problem("interval", "`retry.interval` must be less than `maxDuration`"));
                        }
                        Some(RetryDelay::Constant { interval_ms: i })
                    }
                    Err(e) => {
                        problems.push(e);
                        None
                    }
                }
            }
            "exponential" => {
                unused(&mut problems, "minInterval", raw.min_interval.is_some(), "exponential");
                let i = required("interval", "exponential", interval);
                let m = required("maxInterval", "exponential", max_interval);
                match (i, m) {
                    (Ok(i), Ok(m)) => {
                        if let Some(d) = max_duration
                            && d <= i
                        {
                            problems.push(problem("interval", "`retry.interval` must be less than `maxDuration`"));
                        }
                        if i >= m {
                            problems.push(problem("interval", "`retry.interval` must be less than `maxInterval`"));
                        }
                        if raw.delay_factor.is_some_and(|f| !f.is_finite() || f < 0.0) {
                            problems.push(problem("delayFactor", "`retry.delayFactor` must be a positive number"));
                        }
                        Some(RetryDelay::Exponential {
                            interval_ms: i,
                            max_interval_ms: m,
                            delay_factor: raw.delay_factor,
                        })
                    }
                    (i, m) => {
                        problems.extend(i.err());
                        problems.extend(m.err());
                        None
                    }
                }
            }
            "random" => {
                unused(&mut problems, "interval", raw.interval.is_some(), "random");
                unused(&mut problems, "delayFactor", raw.delay_factor.is_some(), "random");
                let lo = required("minInterval", "random", min_interval);
                let hi = required("maxInterval", "random", max_interval);
                match (lo, hi) {
                    (Ok(lo), Ok(hi)) => {
                        if let Some(d) = max_duration
                            && (d <= lo || d <= hi)
                        {
                            problems.push(problem(
                                "maxDuration",
                                "`retry.minInterval` and `maxInterval` must be less than `maxDuration`",
                            ));
                        }
                        if hi <= lo {
                            problems.push(problem(
                                "minInterval",
                                "`retry.minInterval` must be less than `maxInterval`",
                            ));
                        }
                        Some(RetryDelay::Random {
                            min_interval_ms: lo,
                            max_interval_ms: hi,
                        })
                    }
                    (lo, hi) => {
                        problems.extend(lo.err());
                        problems.extend(hi.err());
                        None
                    }
                }
            }
            other => {
                problems.push(problem(
                    "type",
                    format!("unknown retry type `{other}`: expected constant, exponential or random"),
                ));
                None
            }
        };
        match delay {
            Some(delay) if problems.is_empty() => Ok(Retry {
                delay,
                max_attempt: raw.max_attempt,
                max_duration_ms: max_duration,
                warning_on_retry: raw.warning_on_retry,
                new_execution,
            }),
            _ => Err(problems),
        }
    }

    /// When the next attempt starts, given the `attempts` made so far (at least 1), when the last
    /// one ended and when the first one started; `None` once `maxAttempt` or `maxDuration` is
    /// reached. `random` is a number in [0, 1) for the random delay.
    pub fn next_attempt_at(
        &self,
        attempts: u32,
        last_ended_ms: i64,
        first_started_ms: i64,
        random: f64,
    ) -> Option<i64> {
        if attempts == 0 || self.max_attempt.is_some_and(|max| attempts >= max) {
            return None;
        }
        let wait = match &self.delay {
            RetryDelay::Constant { interval_ms } => *interval_ms,
            RetryDelay::Exponential {
                interval_ms,
                max_interval_ms,
                delay_factor,
            } => {
                // Kestra truncates the factor to an integer (`delayFactor.intValue()`).
                let factor = delay_factor.map(|f| f.trunc() as i64).unwrap_or(2);
                interval_ms
                    .saturating_mul(factor.saturating_mul(attempts as i64 - 1))
                    .min(*max_interval_ms)
            }
            RetryDelay::Random {
                min_interval_ms,
                max_interval_ms,
            } => min_interval_ms + ((max_interval_ms - min_interval_ms) as f64 * random.clamp(0.0, 1.0)) as i64,
        };
        let next = last_ended_ms.saturating_add(wait.max(0));
        if self
            .max_duration_ms
            .is_some_and(|d| next > first_started_ms.saturating_add(d))
        {
            return None;
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawRetry {
        serde_yaml::from_str(yaml).expect("test yaml")
    }

    #[test]
    fn constant_stops_at_max_attempt() {
        let r = Retry::from_raw(&raw("type: constant\ninterval: PT1S\nmaxAttempt: 3")).expect("valid");
        assert_eq!(r.next_attempt_at(1, 10_000, 0, 0.5), Some(11_000));
        assert_eq!(r.next_attempt_at(2, 20_000, 0, 0.5), Some(21_000));
        assert_eq!(r.next_attempt_at(3, 30_000, 0, 0.5), None);
    }

    #[test]
    fn max_duration_counts_from_the_first_attempt() {
        let r = Retry::from_raw(&raw("type: constant\ninterval: PT1S\nmaxDuration: PT3S")).expect("valid");
        assert_eq!(r.next_attempt_at(1, 1_000, 0, 0.0), Some(2_000));
        assert_eq!(r.next_attempt_at(3, 2_500, 0, 0.0), None);
    }

    #[test]
    fn exponential_follows_kestra_formula_and_cap() {
        let r = Retry::from_raw(&raw("type: exponential\ninterval: PT1S\nmaxInterval: PT5S")).expect("valid");
        assert_eq!(r.next_attempt_at(1, 0, 0, 0.0), Some(0));
        assert_eq!(r.next_attempt_at(2, 0, 0, 0.0), Some(2_000));
        assert_eq!(r.next_attempt_at(3, 0, 0, 0.0), Some(4_000));
        assert_eq!(r.next_attempt_at(9, 0, 0, 0.0), Some(5_000));
        let f = Retry::from_raw(&raw(
            "type: exponential\ninterval: PT1S\nmaxInterval: PT10S\ndelayFactor: 3.7",
        ))
        .expect("valid");
        assert_eq!(f.next_attempt_at(2, 0, 0, 0.0), Some(3_000));
    }

    #[test]
    fn random_stays_within_bounds() {
        let r = Retry::from_raw(&raw(
            "type: random\nminInterval: PT0.2S\nmaxInterval: PT0.5S\nmaxAttempt: 3",
        ))
        .expect("valid");
        assert_eq!(r.next_attempt_at(1, 0, 0, 0.0), Some(200));
        assert_eq!(r.next_attempt_at(1, 0, 0, 0.999), Some(499));
    }

    #[test]
    fn refuses_what_kestra_refuses() {
        let e = Retry::from_raw(&raw("type: constant\ninterval: PT5S\nmaxDuration: PT2S")).unwrap_err();
        assert_eq!(e[0].property, "interval");
        let e = Retry::from_raw(&raw("type: exponential\ninterval: PT5S\nmaxInterval: PT2S")).unwrap_err();
        assert!(e[0].message.contains("less than `maxInterval`"));
        let r = Retry::from_raw(&raw("type: constant\ninterval: PT1S\nbehavior: CREATE_NEW_EXECUTION")).expect("valid");
        assert!(r.new_execution);
        let e = Retry::from_raw(&raw("type: constant\ninterval: PT1S\nbehavior: SOMETIMES")).unwrap_err();
        assert_eq!(e[0].property, "behavior");
        let e = Retry::from_raw(&raw("type: constant")).unwrap_err();
        assert!(e[0].message.contains("`retry.interval` is required"));
        let e = Retry::from_raw(&raw("type: linear\ninterval: PT1S")).unwrap_err();
        assert_eq!(e[0].property, "type");
    }
}
