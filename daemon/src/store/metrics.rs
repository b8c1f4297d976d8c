//! Figures kept durably beside the data they describe, updated in the same write transactions:
//! executions per state (so `/metrics` never counts the index), the number of waiting (PAUSED)
//! executions per minute (the `stats` chart), and the metrics module's own aggregate rows
//! (time-to-decision histograms, SLA breaches). Every row is small; a scrape reads a handful.

use std::collections::BTreeMap;

use std::ops::Bound;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::backend::{Table, k};
use super::{Reader, Result, Writer, decode, encode, get_json, key_text};

// Tables: `metrics` (`{kind}\0{name…}` → aggregate, JSON, owned by `crate::metrics`) and
// `waiting_series` (`{minute_start_ms:016x}` → [`WaitingSample`]: PAUSED executions that minute).
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

/// The state name of an index key (`{state}\0…`).
pub(super) fn state_of_key(key: &str) -> &str {
    key.split('\0').next().unwrap_or_default()
}

/// Writes the per-state counts once, for a database made before they were kept: one pass over
/// the state index's keys, at open, never again.
pub(super) fn ensure_state_counts(w: &mut Writer) -> Result<()> {
    if w.kv_read().get(Table::Meta, k(STATE_COUNTS_KEY))?.is_some() {
        return Ok(());
    }
    let mut counts = StateCounts::new();
    w.kv_read().scan(
        Table::ExecutionsByState,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |key, _| {
            *counts.entry(state_of_key(&key_text(key)).to_string()).or_default() += 1;
            Ok(true)
        },
    )?;
    w.kvw().put(Table::Meta, k(STATE_COUNTS_KEY), &encode(&counts))
}

/// Decodes a stored metric row (key, bytes if stored) into its typed value.
type DecodeMetric = fn(&str, Option<&[u8]>) -> Result<Box<dyn std::any::Any>>;
/// One change to a metric row's typed value.
type MetricChange = Box<dyn FnOnce(&mut dyn std::any::Any)>;

/// An aggregate row changed in this transaction, not yet written: the changes in order, applied
/// to the row as it is read just before commit ([`Writer::flush_metrics`]). Read late, not at the
/// first change: a PostgreSQL row batch reads it only under the commit lock, so two daemons'
/// batches never both add to the same old value.
pub(super) struct PendingMetric {
    ty: std::any::TypeId,
    /// Decodes the stored row (default when absent) into the typed value.
    decode: DecodeMetric,
    changes: Vec<MetricChange>,
    encode: fn(&dyn std::any::Any) -> Vec<u8>,
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
        let mut counts: StateCounts = get_json(self.kv_read(), Table::Meta, STATE_COUNTS_KEY)?.unwrap_or_default();
        for (state, d) in &deltas {
            let c = counts.entry(state.clone()).or_default();
            *c = (*c + d).max(0);
        }
        counts.retain(|_, c| *c != 0);
        self.kvw().put(Table::Meta, k(STATE_COUNTS_KEY), &encode(&counts))?;
        if deltas.get(PAUSED).is_some_and(|d| *d != 0) {
            let waiting = counts.get(PAUSED).copied().unwrap_or(0);
            let key = minute_key(now_ms);
            let mut sample: WaitingSample = get_json(self.kv_read(), Table::WaitingSeries, &key)?.unwrap_or_default();
            sample.max = sample.max.max(waiting);
            sample.last = waiting;
            self.kvw().put(Table::WaitingSeries, k(&key), &encode(&sample))?;
        }
        Ok(())
    }

    /// Changes one aggregate row of the metrics table: `f` runs on the row as it is just before
    /// commit. A batch updates the same few rows once per decision: each row is read once,
    /// changed in memory, and written once ([`Writer::flush_metrics`]).
    pub fn metric_update<T: Serialize + DeserializeOwned + Default + Send + 'static>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut T) + 'static,
    ) -> Result<()> {
        let ty = std::any::TypeId::of::<T>();
        let change: MetricChange = Box::new(move |v| {
            if let Some(v) = v.downcast_mut::<T>() {
                f(v)
            }
        });
        let pending = self.pending_metrics.get_mut();
        match pending.get_mut(key) {
            Some(held) if held.ty == ty => held.changes.push(change),
            Some(_) => {
                return Err(super::StoreError::Storage(format!(
                    "metric row {key} changed as two different types in one transaction"
                )));
            }
            None => {
                pending.insert(
                    key.to_string(),
                    PendingMetric {
                        ty,
                        decode: |key, bytes| {
                            let v: T = match bytes {
                                Some(b) => decode("metrics", key, b)?,
                                None => T::default(),
                            };
                            Ok(Box::new(v))
                        },
                        changes: vec![change],
                        encode: |v| v.downcast_ref::<T>().map(encode).unwrap_or_default(),
                    },
                );
            }
        }
        Ok(())
    }

    /// Writes the rows [`Writer::metric_update`] changed (called once, just before commit).
    pub(super) fn flush_metrics(&mut self) -> Result<()> {
        for (key, held) in std::mem::take(self.pending_metrics.get_mut()) {
            let stored = self.kv_read().get(Table::Metrics, k(&key))?;
            let mut value = (held.decode)(&key, stored.as_deref())?;
            for change in held.changes {
                change(value.as_mut());
            }
            let bytes = (held.encode)(value.as_ref());
            self.kvw().put(Table::Metrics, k(&key), &bytes)?;
        }
        Ok(())
    }

    /// The rows [`Writer::flush_metrics`] and [`Writer::flush_state_counts`] will read and write
    /// at `now_ms` (a PostgreSQL row batch reads them under the commit lock).
    pub(super) fn late_keys(&self, now_ms: i64) -> Vec<(Table, Vec<u8>)> {
        let mut keys: Vec<(Table, Vec<u8>)> = self
            .pending_metrics
            .borrow()
            .keys()
            .map(|key| (Table::Metrics, key.as_bytes().to_vec()))
            .collect();
        let deltas = self.state_deltas.borrow();
        if deltas.values().any(|d| *d != 0) {
            keys.push((Table::Meta, STATE_COUNTS_KEY.as_bytes().to_vec()));
            if deltas.get(PAUSED).is_some_and(|d| *d != 0) {
                keys.push((Table::WaitingSeries, minute_key(now_ms).into_bytes()));
            }
        }
        keys
    }
}

impl Reader {
    /// Executions per state, as kept by every write.
    pub fn state_counts(&self) -> Result<StateCounts> {
        Ok(get_json(self.kv_read(), Table::Meta, STATE_COUNTS_KEY)?.unwrap_or_default())
    }

    /// Aggregate rows whose key starts with `prefix`.
    pub fn metrics_with_prefix<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let hi = format!("{prefix}\u{10FFFF}");
        let mut out = Vec::new();
        self.kv_read().scan(
            Table::Metrics,
            Bound::Included(k(prefix)),
            Bound::Excluded(k(&hi)),
            false,
            &mut |key, v| {
                let key = key_text(key);
                let value = decode("metrics", &key, v)?;
                out.push((key, value));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Waiting samples of the minutes in `[from_ms, to_ms)`, plus the last sample before
    /// `from_ms` (the level the window starts at), oldest first, as (minute start, sample).
    pub fn waiting_series(&self, from_ms: i64, to_ms: i64) -> Result<WaitingWindow> {
        let lo = minute_key(from_ms);
        let hi = minute_key(to_ms.max(from_ms) + 60_000);
        let mut before = None;
        self.kv_read().scan(
            Table::WaitingSeries,
            Bound::Unbounded,
            Bound::Excluded(k(&lo)),
            true,
            &mut |key, v| {
                before = Some(decode("waiting_series", &key_text(key), v)?);
                Ok(false)
            },
        )?;
        let mut out = Vec::new();
        self.kv_read().scan(
            Table::WaitingSeries,
            Bound::Included(k(&lo)),
            Bound::Excluded(k(&hi)),
            false,
            &mut |key, v| {
                let key = key_text(key);
                let minute = i64::from_str_radix(&key, 16).unwrap_or(0);
                out.push((minute, decode("waiting_series", &key, v)?));
                Ok(true)
            },
        )?;
        Ok((before, out))
    }
}
