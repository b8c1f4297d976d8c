//! Figures kept durably beside the data they describe, updated in the same write transactions:
//! executions per state (so `/metrics` never counts the index), the number of waiting (PAUSED)
//! executions per minute (the `stats` chart), and the metrics module's own aggregate rows
//! (time-to-decision histograms, SLA breaches). Every row is small; a scrape reads a handful.

use std::collections::BTreeMap;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::tables::{EXECUTIONS_BY_STATE, META};
use super::{Reader, Result, Writer, decode, encode};

/// `{kind}\0{name…}` → aggregate (JSON), owned by `crate::metrics`.
pub(super) const METRICS: TableDefinition<&str, &[u8]> = TableDefinition::new("metrics");
/// `{minute_start_ms:016x}` → [`WaitingSample`]: PAUSED executions during that minute.
pub(super) const WAITING_SERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("waiting_series");
/// META key of the per-state execution counts ([`StateCounts`]).
const STATE_COUNTS_KEY: &str = "state_counts";
const PAUSED: &str = "PAUSED";

/// Executions per state name.
pub type StateCounts = BTreeMap<String, i64>;

/// The level before a window (the last sample before it), and the samples in it as
/// (minute start, sample), oldest first.
pub type WaitingWindow = (Option<WaitingSample>, Vec<(i64, WaitingSample)>);

/// PAUSED executions during one minute: the most at once, and the number when it ended (or now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WaitingSample {
    pub max: i64,
    pub last: i64,
}

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(METRICS)?;
    tx.open_table(WAITING_SERIES)?;
    Ok(())
}

/// The state name of an index key (`{state}\0…`).
pub(super) fn state_of_key(key: &str) -> &str {
    key.split('\0').next().unwrap_or_default()
}

/// Writes the per-state counts once, for a database made before they were kept: one pass over
/// the state index's keys, at open, never again.
pub(super) fn ensure_state_counts(tx: &redb::WriteTransaction) -> Result<()> {
    let mut meta = tx.open_table(META)?;
    if meta.get(STATE_COUNTS_KEY)?.is_some() {
        return Ok(());
    }
    let index = tx.open_table(EXECUTIONS_BY_STATE)?;
    let mut counts = StateCounts::new();
    for item in index.iter()? {
        let (k, _) = item?;
        *counts.entry(state_of_key(k.value()).to_string()).or_default() += 1;
    }
    meta.insert(STATE_COUNTS_KEY, encode(&counts).as_slice())?;
    Ok(())
}

fn minute_key(ms: i64) -> String {
    format!("{:016x}", (ms.max(0) / 60_000) * 60_000)
}

impl Writer {
    /// Applies the state changes this transaction made to the stored counts (called once, just
    /// before commit), and notes the number of waiting executions for this minute when it moved.
    pub(super) fn flush_state_counts(&mut self, now_ms: i64) -> Result<()> {
        let deltas = std::mem::take(self.state_deltas.get_mut());
        if deltas.values().all(|d| *d == 0) {
            return Ok(());
        }
        let mut meta = self.tx.open_table(META)?;
        let mut counts: StateCounts = match meta.get(STATE_COUNTS_KEY)? {
            Some(v) => decode("meta", STATE_COUNTS_KEY, v.value())?,
            None => StateCounts::new(),
        };
        for (state, d) in &deltas {
            let c = counts.entry(state.clone()).or_default();
            *c = (*c + d).max(0);
        }
        counts.retain(|_, c| *c != 0);
        meta.insert(STATE_COUNTS_KEY, encode(&counts).as_slice())?;
        if deltas.get(PAUSED).is_some_and(|d| *d != 0) {
            let waiting = counts.get(PAUSED).copied().unwrap_or(0);
            let mut series = self.tx.open_table(WAITING_SERIES)?;
            let key = minute_key(now_ms);
            let mut sample: WaitingSample = match series.get(key.as_str())? {
                Some(v) => decode("waiting_series", &key, v.value())?,
                None => WaitingSample::default(),
            };
            sample.max = sample.max.max(waiting);
            sample.last = waiting;
            series.insert(key.as_str(), encode(&sample).as_slice())?;
        }
        Ok(())
    }

    /// Reads, changes and writes back one aggregate row of the metrics table.
    pub fn metric_update<T: Serialize + DeserializeOwned + Default>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut T),
    ) -> Result<()> {
        let mut t = self.tx.open_table(METRICS)?;
        let mut value: T = match t.get(key)? {
            Some(v) => decode("metrics", key, v.value())?,
            None => T::default(),
        };
        f(&mut value);
        t.insert(key, encode(&value).as_slice())?;
        Ok(())
    }
}

impl Reader {
    /// Executions per state, as kept by every write.
    pub fn state_counts(&self) -> Result<StateCounts> {
        let meta = self.tx.open_table(META)?;
        match meta.get(STATE_COUNTS_KEY)? {
            Some(v) => decode("meta", STATE_COUNTS_KEY, v.value()),
            None => Ok(StateCounts::new()),
        }
    }

    /// Aggregate rows whose key starts with `prefix`.
    pub fn metrics_with_prefix<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let t = self.tx.open_table(METRICS)?;
        let hi = format!("{prefix}\u{10FFFF}");
        let mut out = Vec::new();
        for item in t.range::<&str>(prefix..hi.as_str())? {
            let (k, v) = item?;
            out.push((k.value().to_string(), decode("metrics", k.value(), v.value())?));
        }
        Ok(out)
    }

    /// Waiting samples of the minutes in `[from_ms, to_ms)`, plus the last sample before
    /// `from_ms` (the level the window starts at), oldest first, as (minute start, sample).
    pub fn waiting_series(&self, from_ms: i64, to_ms: i64) -> Result<WaitingWindow> {
        let t = self.tx.open_table(WAITING_SERIES)?;
        let lo = minute_key(from_ms);
        let hi = minute_key(to_ms.max(from_ms) + 60_000);
        let before = match t.range::<&str>(..lo.as_str())?.next_back() {
            Some(item) => {
                let (k, v) = item?;
                Some(decode("waiting_series", k.value(), v.value())?)
            }
            None => None,
        };
        let mut out = Vec::new();
        for item in t.range::<&str>(lo.as_str()..hi.as_str())? {
            let (k, v) = item?;
            let minute = i64::from_str_radix(k.value(), 16).unwrap_or(0);
            out.push((minute, decode("waiting_series", k.value(), v.value())?));
        }
        Ok((before, out))
    }
}
