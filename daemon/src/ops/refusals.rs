//! Audit records of refused sign-ins, bounded: every refusal is evidence, but a flood of bad
//! tokens must not become a flood of audit records (disk, and the writer's time).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::audit::Entry;

/// At most this many refused sign-ins are recorded per window; the next record after a
/// crowded window says how many were left out.
const PER_WINDOW: u32 = 50;
const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Window {
    started: Instant,
    recorded: u32,
    suppressed: u64,
}

#[derive(Debug)]
pub(super) struct SignInRefusals(Mutex<Window>);

impl Default for SignInRefusals {
    fn default() -> Self {
        SignInRefusals(Mutex::new(Window {
            started: Instant::now(),
            recorded: 0,
            suppressed: 0,
        }))
    }
}

impl SignInRefusals {
    /// `Some(n)` when this refusal is to be recorded, `n` being how many were left out since the
    /// last record; `None` when the window is full.
    pub(super) fn admit(&self) -> Option<u64> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if w.started.elapsed() >= WINDOW {
            w.started = Instant::now();
            w.recorded = 0;
        }
        if w.recorded >= PER_WINDOW {
            w.suppressed += 1;
            return None;
        }
        w.recorded += 1;
        Some(std::mem::take(&mut w.suppressed))
    }
}

/// The record of a refused token: which token id it claimed (never the secret part), where.
pub(super) fn sign_in_entry(authorization: Option<&str>, door: &str, suppressed: u64) -> Entry {
    let claimed_id = authorization
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|t| t.strip_prefix("tg_"))
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("");
    let mut values = json!({ "door": door, "token_id": claimed_id, "token_given": authorization.is_some() });
    if suppressed > 0 {
        values["refusals_not_recorded_before"] = json!(suppressed);
    }
    Entry {
        user: String::new(),
        action: "sign-in".into(),
        values,
        result: "DENIED: invalid or missing bearer token".into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_is_counted_not_recorded() {
        let r = SignInRefusals::default();
        for _ in 0..PER_WINDOW {
            assert_eq!(r.admit(), Some(0));
        }
        assert_eq!(r.admit(), None);
        assert_eq!(r.admit(), None);
        r.0.lock().unwrap().started -= WINDOW;
        assert_eq!(r.admit(), Some(2), "the next record says how many were left out");
    }

    #[test]
    fn the_entry_names_the_claimed_token_id_never_the_secret() {
        let e = sign_in_entry(Some("Bearer tg_abc123_s3cr3t"), "rest", 0);
        assert_eq!(e.values["token_id"], "abc123");
        assert!(!e.values.to_string().contains("s3cr3t"));
        let e = sign_in_entry(None, "grpc", 3);
        assert_eq!(e.values["token_given"], false);
        assert_eq!(e.values["refusals_not_recorded_before"], 3);
    }
}
