//! Reading the figures: `/metrics` (Prometheus text) and `stats` (decision times, the waiting
//! chart). Daemon-wide figures name every flow and approver, so both need the `metrics` role or
//! `admin` on every namespace; a refusal is audited like any other.

use super::{Ops, Target};
use crate::auth::Principal;
use crate::engine::{EngineError, Result};
use crate::metrics::{DECISION_BOUNDS_S, Dimension, Snapshot};

/// Decision time figures of one flow, namespace or approver.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionStat {
    pub dimension: Dimension,
    pub name: String,
    pub count: u64,
    pub mean_ms: u64,
    pub max_ms: u64,
    /// 90% of decisions took at most this long (a bucket bound, capped at the longest wait).
    pub p90_ms: u64,
}

/// What `stats` shows.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub states: crate::store::StateCounts,
    pub waiting_now: i64,
    /// Most executions waiting during each bucket, oldest first.
    pub waiting_series: Vec<i64>,
    pub series_start_ms: i64,
    pub bucket_ms: i64,
    pub decisions: Vec<DecisionStat>,
    /// `namespace/flowId` → breaches.
    pub sla_breaches: std::collections::BTreeMap<String, u64>,
}

impl Ops {
    async fn require_metrics(&self, p: &Principal, action: &str) -> Result<()> {
        if p.may_read_metrics() {
            return Ok(());
        }
        let message = format!(
            "{} needs the metrics or admin role on every namespace (`*`) to read daemon figures",
            p.user
        );
        Err(self.refuse(p, action, Target::default(), message).await)
    }

    /// The Prometheus text; `None` = the unauthenticated `--metrics-listen` door.
    pub async fn metrics_text(&self, p: Option<&Principal>) -> Result<String> {
        if let Some(p) = p {
            self.require_metrics(p, "metrics.read").await?;
        }
        let store = self.engine.store().clone();
        self.read_store(move |r| {
            let snapshot = Snapshot::read(r).map_err(EngineError::from)?;
            let bytes = store.disk_bytes();
            Ok(crate::metrics::render(&snapshot, bytes))
        })
        .await
    }

    /// Figures for `tollgate stats`: the waiting chart over `window_ms` in `buckets` buckets, and
    /// time to decision per flow, namespace and approver.
    pub async fn stats(&self, p: &Principal, window_ms: i64, buckets: u32, now_ms: i64) -> Result<Stats> {
        self.require_metrics(p, "stats.read").await?;
        let window_ms = window_ms.clamp(60_000, 90 * 86_400_000);
        let buckets = buckets.clamp(1, 240) as i64;
        let bucket_ms = (window_ms / buckets).max(60_000);
        let start = now_ms - bucket_ms * buckets;
        self.read_store(move |r| {
            let snapshot = Snapshot::read(r).map_err(EngineError::from)?;
            let (before, samples) = r.waiting_series(start, now_ms).map_err(EngineError::from)?;
            let waiting_now = snapshot.states.get("PAUSED").copied().unwrap_or(0);
            // A minute with no change has no sample: the level carries over from the one before.
            let mut level = before.map(|s| s.last).unwrap_or(0);
            let mut series = Vec::with_capacity(buckets as usize);
            let mut it = samples.into_iter().peekable();
            for b in 0..buckets {
                let end = start + (b + 1) * bucket_ms;
                let mut most = level;
                while let Some((_, sample)) = it.next_if(|(minute, _)| *minute < end) {
                    most = most.max(sample.max);
                    level = sample.last;
                }
                series.push(most);
            }
            let decisions = snapshot
                .decisions
                .iter()
                .map(|(d, name, h)| DecisionStat {
                    dimension: *d,
                    name: name.clone(),
                    count: h.count,
                    mean_ms: h.mean_ms(),
                    max_ms: h.max_ms,
                    p90_ms: p90(h),
                })
                .collect();
            Ok(Stats {
                states: snapshot.states.clone(),
                waiting_now,
                waiting_series: series,
                series_start_ms: start,
                bucket_ms,
                decisions,
                sla_breaches: snapshot.breaches,
            })
        })
        .await
    }
}

fn p90(h: &crate::metrics::DecisionHistogram) -> u64 {
    let want = (h.count * 9).div_ceil(10);
    let mut seen = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        seen += n;
        if seen >= want && want > 0 {
            let bound = DECISION_BOUNDS_S.get(i).map(|b| b * 1000).unwrap_or(h.max_ms);
            return bound.min(h.max_ms);
        }
    }
    h.max_ms
}
