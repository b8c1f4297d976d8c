//! Figures about decisions and about the daemon, for `/metrics` (Prometheus text exposition) and
//! `tollgate stats`.
//!
//! Two kinds, kept apart on purpose:
//! - durable figures, written by the engine's writer in the transaction of the change they count
//!   (time to decision per flow, namespace and approver; SLA breaches; executions per state;
//!   waiting executions per minute). They survive restarts and a scrape reads a few small rows.
//! - figures of this process (requests served, commit latency, task runs finished), counted in
//!   memory since it started, as Prometheus expects counters of a process to be.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::{Reader, StateCounts, StoreError, Writer};

/// Upper bounds (seconds) of the time-to-decision buckets: a minute to a week.
pub const DECISION_BOUNDS_S: [u64; 10] = [60, 300, 900, 1800, 3600, 14_400, 43_200, 86_400, 259_200, 604_800];
/// Upper bounds (seconds) of the commit latency buckets.
const COMMIT_BOUNDS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

const DECISION: &str = "decision";
const BREACH: &str = "sla_breach";

/// Which figure a decision row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// `namespace/flowId`
    Flow,
    Namespace,
    Approver,
}

impl Dimension {
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Flow => "flow",
            Dimension::Namespace => "namespace",
            Dimension::Approver => "approver",
        }
    }
    const ALL: [Dimension; 3] = [Dimension::Flow, Dimension::Namespace, Dimension::Approver];
}

/// A durable histogram of waits (milliseconds), per-bucket counts (not cumulative) plus the
/// overflow bucket last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DecisionHistogram {
    pub count: u64,
    pub sum_ms: u64,
    pub max_ms: u64,
    pub buckets: Vec<u64>,
}

impl DecisionHistogram {
    fn observe(&mut self, waited_ms: u64) {
        self.buckets.resize(DECISION_BOUNDS_S.len() + 1, 0);
        let i = DECISION_BOUNDS_S
            .iter()
            .position(|b| waited_ms <= b * 1000)
            .unwrap_or(DECISION_BOUNDS_S.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(waited_ms);
        self.max_ms = self.max_ms.max(waited_ms);
    }

    pub fn mean_ms(&self) -> u64 {
        self.sum_ms.checked_div(self.count).unwrap_or(0)
    }
}

fn decision_key(d: Dimension, name: &str) -> String {
    format!("{DECISION}\0{}\0{name}", d.as_str())
}

/// Counts a decision in the current write transaction: `approver` waited `waited_ms` since the
/// gate paused. Every approval counts for its approver; the decision that ends the pause (the
/// last of a quorum, or the only one) also counts for the flow and the namespace.
pub fn record_decision(
    w: &mut Writer,
    namespace: &str,
    flow_id: &str,
    approver: &str,
    waited_ms: i64,
    ends_pause: bool,
) -> Result<(), StoreError> {
    let waited = waited_ms.max(0) as u64;
    w.metric_update(
        &decision_key(Dimension::Approver, approver),
        move |h: &mut DecisionHistogram| h.observe(waited),
    )?;
    if ends_pause {
        w.metric_update(
            &decision_key(Dimension::Flow, &format!("{namespace}/{flow_id}")),
            move |h: &mut DecisionHistogram| h.observe(waited),
        )?;
        w.metric_update(
            &decision_key(Dimension::Namespace, namespace),
            move |h: &mut DecisionHistogram| h.observe(waited),
        )?;
    }
    Ok(())
}

/// Counts an SLA breach of a gate of `namespace/flow_id` in the current write transaction.
pub fn record_breach(w: &mut Writer, namespace: &str, flow_id: &str) -> Result<(), StoreError> {
    w.metric_update(&format!("{BREACH}\0{namespace}/{flow_id}"), |n: &mut u64| *n += 1)
}

/// The durable figures, read in one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub states: StateCounts,
    /// (dimension, name, histogram), sorted by dimension then name.
    pub decisions: Vec<(Dimension, String, DecisionHistogram)>,
    /// `namespace/flowId` → breaches.
    pub breaches: BTreeMap<String, u64>,
}

impl Snapshot {
    pub fn read(r: &Reader) -> Result<Snapshot, StoreError> {
        let mut decisions = Vec::new();
        for d in Dimension::ALL {
            let prefix = format!("{DECISION}\0{}\0", d.as_str());
            for (key, h) in r.metrics_with_prefix::<DecisionHistogram>(&prefix)? {
                decisions.push((d, key[prefix.len()..].to_string(), h));
            }
        }
        let prefix = format!("{BREACH}\0");
        let breaches = r
            .metrics_with_prefix::<u64>(&prefix)?
            .into_iter()
            .map(|(k, n)| (k[prefix.len()..].to_string(), n))
            .collect();
        Ok(Snapshot {
            states: r.state_counts()?,
            decisions,
            breaches,
        })
    }
}

/// Counters of this process.
pub struct Process {
    grpc_requests: AtomicU64,
    rest_requests: AtomicU64,
    task_runs_ok: AtomicU64,
    task_runs_failed: AtomicU64,
    commit: Mutex<(Vec<u64>, u64, f64)>,
    /// Whether the newest commit saved redb's allocator state (a crash now needs no full repair).
    quick_repair_saved: std::sync::atomic::AtomicBool,
}

/// The process's counters. Process-wide like the process's own CPU time: one daemon per process.
pub fn process() -> &'static Process {
    static P: LazyLock<Process> = LazyLock::new(|| Process {
        grpc_requests: AtomicU64::new(0),
        rest_requests: AtomicU64::new(0),
        task_runs_ok: AtomicU64::new(0),
        task_runs_failed: AtomicU64::new(0),
        commit: Mutex::new((vec![0; COMMIT_BOUNDS_S.len() + 1], 0, 0.0)),
        quick_repair_saved: std::sync::atomic::AtomicBool::new(false),
    });
    &P
}

impl Process {
    /// After each commit: whether it saved the allocator state (see [`crate::store::QuickRepair`]).
    pub fn quick_repair_saved(&self, saved: bool) {
        self.quick_repair_saved.store(saved, Ordering::Relaxed);
    }

    pub fn observe_commit(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = COMMIT_BOUNDS_S
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(COMMIT_BOUNDS_S.len());
        let mut c = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        c.0[i] += 1;
        c.1 += 1;
        c.2 += s;
    }

    /// A request arrived through gRPC (`grpc`) or HTTP (REST, the approval page, `/metrics`).
    pub fn request(&self, grpc: bool) {
        if grpc {
            self.grpc_requests.fetch_add(1, Ordering::Relaxed);
        } else {
            self.rest_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An asynchronous task run (HTTP request, notification, KV) finished.
    pub fn task_run_finished(&self, ok: bool) {
        if ok {
            self.task_runs_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.task_runs_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Escapes a label value for the text exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Everything in the Prometheus text exposition format (version 0.0.4).
pub fn render(s: &Snapshot, store_bytes: u64) -> String {
    let mut o = String::new();
    let p = process();
    // Writing to a String cannot fail.
    let _ = writeln!(o, "# HELP tollgate_executions Executions stored, by state.");
    let _ = writeln!(o, "# TYPE tollgate_executions gauge");
    for state in crate::engine::state::State::ALL.map(|st| st.as_str()) {
        let n = s.states.get(state).copied().unwrap_or(0);
        let _ = writeln!(o, "tollgate_executions{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "# HELP tollgate_waiting_decisions Executions waiting at a gate (PAUSED)."
    );
    let _ = writeln!(o, "# TYPE tollgate_waiting_decisions gauge");
    let _ = writeln!(
        o,
        "tollgate_waiting_decisions {}",
        s.states.get("PAUSED").copied().unwrap_or(0)
    );
    let resumes: u64 = s
        .decisions
        .iter()
        .filter(|(d, _, _)| *d == Dimension::Namespace)
        .map(|(_, _, h)| h.count)
        .sum();
    let _ = writeln!(
        o,
        "# HELP tollgate_resumes_total Gates resumed by a decision (all time)."
    );
    let _ = writeln!(o, "# TYPE tollgate_resumes_total counter");
    let _ = writeln!(o, "tollgate_resumes_total {resumes}");
    for d in Dimension::ALL {
        let name = format!("tollgate_decision_seconds_by_{}", d.as_str());
        let _ = writeln!(
            o,
            "# HELP {name} Time from a gate pausing to its decision, per {} (all time).",
            d.as_str()
        );
        let _ = writeln!(o, "# TYPE {name} histogram");
        for (_, key, h) in s.decisions.iter().filter(|(dim, _, _)| *dim == d) {
            let l = format!("{}=\"{}\"", d.as_str(), label(key));
            let mut cumulative = 0;
            for (i, bound) in DECISION_BOUNDS_S.iter().enumerate() {
                cumulative += h.buckets.get(i).copied().unwrap_or(0);
                let _ = writeln!(o, "{name}_bucket{{{l},le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(o, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(o, "{name}_sum{{{l}}} {}", h.sum_ms as f64 / 1000.0);
            let _ = writeln!(o, "{name}_count{{{l}}} {}", h.count);
        }
    }
    let _ = writeln!(
        o,
        "# HELP tollgate_sla_breaches_total Gates that waited past their `sla`, per flow (all time)."
    );
    let _ = writeln!(o, "# TYPE tollgate_sla_breaches_total counter");
    for (flow, n) in &s.breaches {
        let _ = writeln!(o, "tollgate_sla_breaches_total{{flow=\"{}\"}} {n}", label(flow));
    }
    let _ = writeln!(
        o,
        "# HELP tollgate_store_bytes Size of the redb files (tollgate.redb and archive.redb)."
    );
    let _ = writeln!(o, "# TYPE tollgate_store_bytes gauge");
    let _ = writeln!(o, "tollgate_store_bytes {store_bytes}");
    let _ = writeln!(
        o,
        "# HELP tollgate_store_quick_repair_saved 1 when the newest commit saved the store's allocator state: a crash now restarts without reading the whole file."
    );
    let _ = writeln!(o, "# TYPE tollgate_store_quick_repair_saved gauge");
    let _ = writeln!(
        o,
        "tollgate_store_quick_repair_saved {}",
        u8::from(p.quick_repair_saved.load(Ordering::Relaxed))
    );
    let _ = writeln!(
        o,
        "# HELP tollgate_requests_total Requests received since start, by protocol."
    );
    let _ = writeln!(o, "# TYPE tollgate_requests_total counter");
    let _ = writeln!(
        o,
        "tollgate_requests_total{{protocol=\"grpc\"}} {}",
        p.grpc_requests.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "tollgate_requests_total{{protocol=\"http\"}} {}",
        p.rest_requests.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "# HELP tollgate_task_runs_total Asynchronous task runs finished since start, by outcome."
    );
    let _ = writeln!(o, "# TYPE tollgate_task_runs_total counter");
    let _ = writeln!(
        o,
        "tollgate_task_runs_total{{outcome=\"success\"}} {}",
        p.task_runs_ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        o,
        "tollgate_task_runs_total{{outcome=\"failed\"}} {}",
        p.task_runs_failed.load(Ordering::Relaxed)
    );
    let (buckets, count, sum) = p.commit.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let _ = writeln!(
        o,
        "# HELP tollgate_commit_seconds Latency of store commits since start."
    );
    let _ = writeln!(o, "# TYPE tollgate_commit_seconds histogram");
    let mut cumulative = 0;
    for (i, bound) in COMMIT_BOUNDS_S.iter().enumerate() {
        cumulative += buckets[i];
        let _ = writeln!(o, "tollgate_commit_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(o, "tollgate_commit_seconds_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "tollgate_commit_seconds_sum {sum}");
    let _ = writeln!(o, "tollgate_commit_seconds_count {count}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_lands_in_its_bucket_and_the_overflow_counts() {
        let mut h = DecisionHistogram::default();
        h.observe(30_000);
        h.observe(60_000);
        h.observe(61_000);
        h.observe(10 * 86_400_000);
        assert_eq!(h.buckets[0], 2, "bounds are inclusive");
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[DECISION_BOUNDS_S.len()], 1);
        assert_eq!(h.count, 4);
        assert_eq!(h.max_ms, 10 * 86_400_000);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn durable_figures_survive_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = crate::store::Store::open(dir.path()).unwrap();
            store
                .write(|w| {
                    record_decision(w, "hr", "onboard", "ana@example.com", 90_000, true)?;
                    record_decision(w, "hr", "onboard", "bob@example.com", 30_000, false)?;
                    record_breach(w, "hr", "onboard")
                })
                .unwrap();
        }
        let store = crate::store::Store::open(dir.path()).unwrap();
        let s = Snapshot::read(&store.read().unwrap()).unwrap();
        assert_eq!(s.breaches.get("hr/onboard"), Some(&1));
        let text = render(&s, 42);
        assert!(
            text.contains("tollgate_decision_seconds_by_flow_count{flow=\"hr/onboard\"} 1"),
            "{text}"
        );
        assert!(text.contains("tollgate_decision_seconds_by_approver_count{approver=\"bob@example.com\"} 1"));
        assert!(text.contains("tollgate_decision_seconds_by_namespace_bucket{namespace=\"hr\",le=\"60\"} 0"));
        assert!(text.contains("tollgate_decision_seconds_by_namespace_bucket{namespace=\"hr\",le=\"300\"} 1"));
        assert!(text.contains("tollgate_resumes_total 1"));
        assert!(text.contains("tollgate_store_bytes 42"));
    }
}
