//! The scenarios of several daemons on one PostgreSQL database (issue 16), part of
//! `tollgate-bench` (included as a module of it: they drive its `Daemon`), kept apart from the
//! single-daemon scenarios:
//!
//! - `cluster`: completed 3-task executions/s, pause + resume executions/s and bulk resume, then
//!   Resume latency at 100 clients, for redb (1 daemon), PostgreSQL with 1 daemon and
//!   PostgreSQL with 3 daemons on one database, side by side in one run; the clients are spread
//!   over the daemons (client `i` calls daemon `i % daemons`).
//! - `takeover`: 3 daemons; an HTTP task runs on one (its request is held open), that daemon
//!   is killed with `kill -9`; the time until the task run runs again on another daemon (the
//!   second request arrives) and until the execution ends SUCCESS.
//!
//! Both need PostgreSQL: the server of `--store postgres` or, without it, a local one started
//! here (the distribution's binaries, fsync on), a new database per setup.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tollgate_tests::postgres::PgServer;

use super::*;

/// The scenarios of this module, and the stores they run on (whatever `--store` says).
pub(super) const SCENARIOS: [&str; 2] = ["cluster", "takeover"];
pub(super) const STORES: &str =
    "postgres (local server on loopback, fsync on, a new database per setup); cluster also redb";

/// Clients of the throughput and bulk parts (as in `throughput`).
const CLIENTS: usize = 64;

/// A flow whose HTTP call to `port` is held open by [`held_then_ok`].
fn slow_call_flow(port: u16) -> String {
    format!(
        "id: slow_call\nnamespace: bench\ntasks:\n  - id: call\n    type: io.kestra.plugin.core.http.Request\n    uri: \"http://127.0.0.1:{port}/slow\"\n    options:\n      readTimeout: PT120S\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: \"after the call\"\n"
    )
}

/// A loopback HTTP server whose first request never gets an answer (the daemon that sent it is
/// killed meanwhile) and whose later requests get 200; counts requests.
fn held_then_ok() -> Result<(u16, Arc<AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                held.push(stream);
                continue;
            }
            let mut buf = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    Ok((port, hits))
}

/// CPU seconds this process (the bench's clients) has used so far.
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<u64> = s
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            Some((f.get(11)? + f.get(12)?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// CPU microseconds per execution between two [`Bench::cpu_now`] readings: daemons (all of
/// them), PostgreSQL, the bench's clients, and their sum (what the 2 cores had to give).
fn cpu_per(before: [Option<f64>; 3], after: [Option<f64>; 3], executions: usize) -> Value {
    let per = |i: usize| -> Option<f64> { Some(((after[i]? - before[i]?) * 1e6 / executions.max(1) as f64).round()) };
    let total: f64 = (0..3).filter_map(per).sum();
    json!({"daemons": per(0), "postgres": per(1), "client": per(2), "total": total})
}

/// Starts `n` executions of `flow` from `clients` callers spread over the daemons.
async fn start_spread(ds: &[Daemon], flow: &str, n: usize, clients: usize) -> Result<Vec<String>> {
    let mut set = JoinSet::new();
    let per = n.div_ceil(clients);
    for (c, ch) in spread_channels(ds, clients).await?.into_iter().enumerate() {
        let count = per.min(n.saturating_sub(c * per));
        let mut client = ExecutionsClient::new(ch);
        let flow = flow.to_string();
        set.spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let e = client.start(start_req(&flow)).await?.into_inner();
                ids.push(e.execution.map(|e| e.id).unwrap_or_default());
            }
            Ok::<_, tonic::Status>(ids)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}

/// Resumes `ids` from `clients` callers spread over the daemons (closed loop); the latency of
/// each Resume call (ms) and the rate.
async fn resume_spread(ds: &[Daemon], ids: Vec<String>, clients: usize) -> Result<(Vec<f64>, f64)> {
    let n = ids.len();
    let channels = spread_channels(ds, clients).await?;
    let t0 = Instant::now();
    let lat = super::resume_closed_loop(ids, channels).await?;
    Ok((lat, n as f64 / t0.elapsed().as_secs_f64()))
}

impl Bench {
    /// The PostgreSQL server of this run: `--store postgres`'s, else one started here.
    fn pg_server(&self) -> Arc<PgServer> {
        static OWN: OnceLock<Arc<PgServer>> = OnceLock::new();
        match &self.pg {
            Some(pg) => pg.clone(),
            None => OWN.get_or_init(|| Arc::new(PgServer::start_own_with(true))).clone(),
        }
    }

    /// `count` daemons on a new database of the run's server (`None`: one daemon on redb), each
    /// with the bench flows and `extra` flow files.
    async fn setup(&self, count: Option<usize>, extra: &[(&str, String)]) -> Result<Vec<Daemon>> {
        let url = count.map(|_| self.pg_server().new_database());
        let mut out = Vec::new();
        for _ in 0..count.unwrap_or(1) {
            let mut d = Daemon::new(&self.daemon)?;
            for (name, source) in extra {
                std::fs::write(d.flows.join(name), source)?;
            }
            d.store = url.clone();
            d.start().await?;
            out.push(d);
        }
        Ok(out)
    }

    pub(super) async fn cluster(&self) -> Result<(Value, Value)> {
        let setups: [(&str, Option<usize>); 3] = [
            ("redb, 1 daemon", None),
            ("postgres, 1 daemon", Some(1)),
            ("postgres, 3 daemons", Some(3)),
        ];
        let mut figures = serde_json::Map::new();
        // `TOLLGATE_BENCH_SETUPS=pg1,pg3` runs only some setups (`redb`, `pg1`, `pg3`), for
        // measuring one side; the published figures run all three.
        let only = std::env::var("TOLLGATE_BENCH_SETUPS").ok();
        for (name, count) in setups {
            let short = match count {
                None => "redb".to_string(),
                Some(n) => format!("pg{n}"),
            };
            if only
                .as_deref()
                .is_some_and(|o| !o.split(',').any(|s| s.trim() == short))
            {
                continue;
            }
            let ds = self.setup(count, &[]).await?;
            progress(&ds[0], &format!("cluster: {name}"));
            figures.insert(name.to_string(), self.cluster_run(&ds).await?);
        }
        Ok((
            json!({
                "logFlowExecutions": self.sizes.throughput,
                "pauseFlowExecutions": self.sizes.pause_throughput,
                "bulkResume": self.sizes.bulk,
                "resumeCalls": self.sizes.latency_calls,
                "resumeClients": self.sizes.latency_clients,
                "clients": CLIENTS,
                "spread": "client i calls daemon i % daemons; BulkResume: one call per daemon with its share, concurrently",
                "postgres": "local server on loopback, fsync on, a new database per setup, same machine as client and daemons",
            }),
            Value::Object(figures),
        ))
    }

    /// CPU seconds used so far by the daemons, PostgreSQL (`None` on redb: it does not run
    /// there) and this bench process (the clients).
    fn cpu_now(&self, ds: &[Daemon]) -> [Option<f64>; 3] {
        let pg = ds[0].store.as_ref().map(|_| self.pg_server().cpu_seconds());
        [
            Some(ds.iter().map(Daemon::cpu_seconds).sum()),
            pg,
            Some(own_cpu_seconds()),
        ]
    }

    /// Throughput, pause + resume, bulk resume and Resume latency on one setup.
    async fn cluster_run(&self, ds: &[Daemon]) -> Result<Value> {
        let first = &ds[0];
        let n = self.sizes.throughput;
        let commits = || -> f64 { ds.iter().map(|d| d.commits().0).sum() };
        let k0 = commits();
        let c0 = self.cpu_now(ds);
        let t0 = Instant::now();
        start_spread(ds, "log3", n, CLIENTS).await?;
        wait_settled(first).await?;
        let log_done = t0.elapsed();
        let log_cpu = cpu_per(c0, self.cpu_now(ds), n);
        let log_commits = commits() - k0;
        wait_count(first, "SUCCESS", n).await?;

        let m = self.sizes.pause_throughput;
        let k1 = commits();
        let c1 = self.cpu_now(ds);
        let t1 = Instant::now();
        let ids = start_spread(ds, "gate", m, CLIENTS).await?;
        wait_count(first, "PAUSED", m).await?;
        resume_spread(ds, ids, CLIENTS).await?;
        wait_settled(first).await?;
        let gate_done = t1.elapsed();
        let gate_cpu = cpu_per(c1, self.cpu_now(ds), m);
        let gate_commits = commits() - k1;
        wait_count(first, "SUCCESS", n + m).await?;

        let b = self.sizes.bulk;
        let ids = start_spread(ds, "gate", b, CLIENTS).await?;
        wait_count(first, "PAUSED", b).await?;
        let mut set = JoinSet::new();
        let t2 = Instant::now();
        for (chunk, d) in ids.chunks(b.div_ceil(ds.len()).max(1)).zip(ds) {
            let mut c = d.client().await?;
            let chunk = chunk.to_vec();
            set.spawn(async move {
                let r = c
                    .bulk_resume(pb::BulkResumeRequest {
                        ids: chunk,
                        inputs: [("ok".to_string(), "true".to_string())].into(),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                Ok::<_, tonic::Status>(r.results.iter().filter(|r| r.ok).count())
            });
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            ok += r??;
        }
        let answered = t2.elapsed();
        wait_settled(first).await?;
        let bulk_done = t2.elapsed();
        wait_count(first, "SUCCESS", n + m + b).await?;

        let calls = self.sizes.latency_calls;
        let clients = self.sizes.latency_clients;
        let ids = start_spread(ds, "gate", calls, CLIENTS).await?;
        wait_count(first, "PAUSED", calls).await?;
        let cpu: f64 = ds.iter().map(Daemon::cpu_seconds).sum();
        let (lat, rate) = resume_spread(ds, ids, clients).await?;
        let cpu = ds.iter().map(Daemon::cpu_seconds).sum::<f64>() - cpu;
        wait_settled(first).await?;
        Ok(json!({
            "daemons": ds.len(),
            "logFlowCompletedPerSec": (n as f64 / log_done.as_secs_f64()).round(),
            "logFlowCpuUsPerExecution": log_cpu,
            "logFlowCommits": log_commits,
            "pauseFlowCompletedPerSec": (m as f64 / gate_done.as_secs_f64()).round(),
            "pauseFlowCpuUsPerExecution": gate_cpu,
            "pauseFlowCommits": gate_commits,
            "bulkResume": {"acceptedOk": ok, "answerMs": ms(answered), "allSuccessMs": ms(bulk_done)},
            "resume": {
                "clients": clients,
                "latencyMs": summary(lat),
                "resumesPerSec": rate.round(),
                "daemonCpuUsPerResume": (cpu * 1e6 / calls as f64).round(),
            },
        }))
    }

    pub(super) async fn takeover(&self) -> Result<(Value, Value)> {
        let rounds = if self.sizes.throughput < 1000 { 1 } else { 3 };
        let mut rerun = Vec::new();
        let mut ended = Vec::new();
        for round in 0..rounds {
            let (port, hits) = held_then_ok()?;
            let mut ds = self.setup(Some(3), &[("slow_call.yaml", slow_call_flow(port))]).await?;
            progress(&ds[0], &format!("takeover: round {}", round + 1));
            let id = ds[0]
                .client()
                .await?
                .start(start_req("slow_call"))
                .await?
                .into_inner()
                .execution
                .map(|e| e.id)
                .unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(60);
            while hits.load(Ordering::SeqCst) == 0 {
                if Instant::now() > deadline {
                    bail!("the HTTP call never reached the server");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ds[0].kill9();
            let killed = Instant::now();
            let deadline = killed + Duration::from_secs(120);
            while hits.load(Ordering::SeqCst) < 2 {
                if Instant::now() > deadline {
                    bail!("no daemon took the task run over within 120 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            rerun.push(ms(killed.elapsed()));
            let mut c = ds[1].client().await?;
            loop {
                let e = c
                    .get(pb::GetExecutionRequest { id: id.clone() })
                    .await?
                    .into_inner()
                    .state;
                if e == "SUCCESS" {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the execution did not end after the takeover ({e})");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ended.push(ms(killed.elapsed()));
            if hits.load(Ordering::SeqCst) != 2 {
                bail!("the call ran {} times, expected twice", hits.load(Ordering::SeqCst));
            }
        }
        Ok((
            json!({
                "rounds": rounds,
                "daemons": 3,
                "flow": "HTTP Request held open by the server, then a Log task",
                "lease": "8 s without a heartbeat (heartbeat every 2 s)",
            }),
            json!({
                "killToTaskRunningAgainMs": summary(rerun),
                "killToExecutionSuccessMs": summary(ended),
            }),
        ))
    }
}
