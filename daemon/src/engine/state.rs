//! Kestra's execution and task run states.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarted,
    Killing,
    Success,
    Warning,
    Failed,
    Killed,
    Cancelled,
    /// A task run that failed and waits for its next attempt (`retry`).
    Retrying,
    /// A task run whose `runIf` rendered false.
    Skipped,
    /// An execution waiting for a free slot of its flow's `concurrency` limit.
    Queued,
    /// Ended by a `retry` with `behavior: CREATE_NEW_EXECUTION`: a new execution runs the flow again.
    Retried,
}

impl State {
    pub const ALL: [State; 14] = [
        State::Created,
        State::Running,
        State::Paused,
        State::Restarted,
        State::Killing,
        State::Success,
        State::Warning,
        State::Failed,
        State::Killed,
        State::Cancelled,
        State::Retrying,
        State::Skipped,
        State::Queued,
        State::Retried,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "CREATED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Restarted => "RESTARTED",
            State::Killing => "KILLING",
            State::Success => "SUCCESS",
            State::Warning => "WARNING",
            State::Failed => "FAILED",
            State::Killed => "KILLED",
            State::Cancelled => "CANCELLED",
            State::Retrying => "RETRYING",
            State::Skipped => "SKIPPED",
            State::Queued => "QUEUED",
            State::Retried => "RETRIED",
        }
    }

    /// Parses a state name; accepts Kestra's `CANCELED` spelling too.
    pub fn parse(s: &str) -> Option<State> {
        let up = s.trim().to_ascii_uppercase();
        if up == "CANCELED" {
            return Some(State::Cancelled);
        }
        State::ALL.into_iter().find(|st| st.as_str() == up)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Success
                | State::Warning
                | State::Failed
                | State::Killed
                | State::Cancelled
                | State::Skipped
                | State::Retried
        )
    }

    /// A terminal state that stops the list it is in (unless the task allows failure).
    pub fn is_failure(self) -> bool {
        matches!(self, State::Failed | State::Killed | State::Cancelled)
    }

    /// Severity order used to combine children into a parent outcome.
    pub fn severity(self) -> u8 {
        match self {
            State::Success => 0,
            State::Warning => 1,
            State::Failed | State::Retried => 2,
            State::Cancelled => 3,
            State::Killed => 4,
            _ => 0,
        }
    }

    pub fn worst(self, other: State) -> State {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_accepts_kestra_spelling() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("canceled"), Some(State::Cancelled));
        assert_eq!(State::parse("nope"), None);
    }
}
