//! `tollgate-bench <scenario|all> [--quick] [--json]`: a real `tollgated` (the binary next to
//! this one, built in the same profile) on a temporary data dir, driven over loopback gRPC.
//! Each scenario prints one JSON object: scenario, parameters, figures, environment.
//!
//! Large stores (`list-paused`, `startup`, `footprint`) are seeded through the daemon library's
//! store with copies of executions the daemon itself produced (one paused, one finished), with
//! the daemon stopped; everything else goes through the API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::executions_client::ExecutionsClient;
use tonic::transport::Channel;

#[path = "../bench_pg.rs"]
mod bench_pg;

const SCENARIOS: [&str; 10] = [
    "throughput",
    "bulk-resume",
    "resume-latency",
    "log-latency",
    "list-paused",
    "startup",
    "footprint",
    "console",
    "cluster",
    "takeover",
];

const FLOWS: &[(&str, &str)] = &[
    (
        "log3.yaml",
        "id: log3\nnamespace: bench\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: one\n  - id: b\n    type: io.kestra.plugin.core.log.Log\n    message: two\n  - id: c\n    type: io.kestra.plugin.core.log.Log\n    message: three\n",
    ),
    (
        "gate.yaml",
        "id: gate\nnamespace: bench\ntasks:\n  - id: wait\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: ok\n        type: BOOLEAN\n        defaults: true\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: \"decided {{ outputs.wait.onResume.ok }}\"\n",
    ),
];

/// How large stores are made (see [`seed`]).
const SEEDING: &str = "daemon stopped; store API (Writer::put_execution, append_log, audit::append) with copies of \
                       executions the daemon ran (fresh ids, times spread 10 ms apart, logs and start audit copied)";

/// Sizes: full (the issue's) or quick (a smoke run).
#[derive(Clone, Copy)]
struct Sizes {
    throughput: usize,
    pause_throughput: usize,
    bulk: usize,
    latency_calls: usize,
    latency_clients: usize,
    samples: usize,
    paused_store: usize,
    finished_store: usize,
    startup_sizes: [usize; 3],
}

const FULL: Sizes = Sizes {
    throughput: 10_000,
    pause_throughput: 2_000,
    bulk: 10_000,
    latency_calls: 5_000,
    latency_clients: 100,
    samples: 300,
    paused_store: 100_000,
    finished_store: 1_000_000,
    startup_sizes: [0, 100_000, 1_000_000],
};

const QUICK: Sizes = Sizes {
    throughput: 200,
    pause_throughput: 50,
    bulk: 200,
    latency_calls: 200,
    latency_clients: 10,
    samples: 20,
    paused_store: 300,
    finished_store: 1_000,
    startup_sizes: [0, 500, 2_000],
};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--store redb` (default) | `postgres` (a local server started here, fsync on, a new
    // database per daemon) | `postgres://...` (an empty database of your own; one scenario).
    let store = args
        .iter()
        .position(|a| a == "--store")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .filter(|s| s != "redb");
    let pretty = !args.iter().any(|a| a == "--json");
    let daemon = args
        .iter()
        .position(|a| a == "--daemon")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("TOLLGATE_BENCH_DAEMON").map(PathBuf::from));
    let wanted: Vec<&str> = match args
        .iter()
        .find(|a| !a.starts_with("--") && Some(*a) != daemon_arg(&args) && Some(*a) != store_arg(&args))
    {
        // `all`: the single-daemon scenarios; `cluster` and `takeover` (PostgreSQL, several
        // daemons) run when named.
        Some(s) if s == "all" => SCENARIOS
            .iter()
            .copied()
            .filter(|s| !bench_pg::SCENARIOS.contains(s))
            .collect(),
        Some(s) if SCENARIOS.contains(&s.as_str()) => vec![s.as_str()],
        Some(s) => bail!("unknown scenario `{s}`; one of: all, {}", SCENARIOS.join(", ")),
        None => bail!(
            "usage: tollgate-bench <all|{}> [--quick] [--json] [--daemon PATH] [--store redb|postgres|postgres://...]",
            SCENARIOS.join("|")
        ),
    };
    let bench = Bench {
        daemon: match daemon {
            Some(p) => p,
            None => build_daemon()?,
        },
        sizes: if quick { QUICK } else { FULL },
        environment: {
            let mut env = environment();
            env["store"] = json!(match store.as_deref() {
                None => "redb".to_string(),
                Some("postgres") => "postgres (local server on loopback, fsync on)".to_string(),
                Some(url) => tollgate_daemon::store::postgres::redact(url),
            });
            env
        },
        pg: match store.as_deref() {
            Some("postgres") => Some(std::sync::Arc::new(tollgate_tests::postgres::PgServer::start_own_with(
                true,
            ))),
            _ => None,
        },
        store,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    for scenario in wanted {
        let (parameters, figures) = runtime.block_on(bench.scenario(scenario))?;
        let mut environment = bench.environment.clone();
        if bench_pg::SCENARIOS.contains(&scenario) {
            environment["store"] = json!(bench_pg::STORES);
        }
        let out = json!({
            "scenario": scenario,
            "parameters": parameters,
            "figures": figures,
            "environment": environment,
        });
        if pretty {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!("{out}");
        }
    }
    Ok(())
}

/// A progress line on stderr (stdout carries only the JSON): what runs now, and the daemon's pid
/// so a profiler can be attached to exactly that phase.
fn progress(d: &Daemon, what: &str) {
    match d.child.as_ref() {
        Some(c) => eprintln!("tollgate-bench: {what} (tollgated pid {})", c.id()),
        None => eprintln!("tollgate-bench: {what} (tollgated stopped)"),
    }
}

fn store_arg(args: &[String]) -> Option<&String> {
    args.iter().position(|a| a == "--store").and_then(|i| args.get(i + 1))
}

fn daemon_arg(args: &[String]) -> Option<&String> {
    args.iter().position(|a| a == "--daemon").and_then(|i| args.get(i + 1))
}

/// `tollgated` from the same profile as this binary, built if needed.
fn build_daemon() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("own path")?;
    let dir = exe.parent().context("own dir")?.to_path_buf();
    let release = dir.file_name().is_some_and(|n| n == "release");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace")?;
    let target = dir.parent().context("target dir")?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["build", "--quiet", "-p", "tollgate-daemon", "--bin", "tollgated"])
        .env("CARGO_TARGET_DIR", target);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("run cargo build for tollgated")?;
    if !status.success() {
        bail!("cargo build of tollgated failed");
    }
    Ok(dir.join("tollgated"))
}

fn environment() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let mem_kb = proc_number("/proc/meminfo", "MemTotal:").unwrap_or(0);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memoryGiB": (mem_kb as f64 / 1_048_576.0 * 10.0).round() / 10.0,
        "os": std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| format!("Linux {}", s.trim())).unwrap_or_default(),
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "commit": commit,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "note": "client and daemon share the machine",
    })
}

struct Bench {
    daemon: PathBuf,
    sizes: Sizes,
    environment: Value,
    /// `postgres` or a URL; `None` = redb.
    store: Option<String>,
    /// The local server `--store postgres` started.
    pg: Option<std::sync::Arc<tollgate_tests::postgres::PgServer>>,
}

/// How long a start took: until gRPC health answered SERVING, and until a List was answered.
struct Ready {
    serving: Duration,
    answered: Duration,
}

/// A `tollgated` child process on a data dir of its own.
struct Daemon {
    child: Option<Child>,
    addr: String,
    data: PathBuf,
    flows: PathBuf,
    binary: PathBuf,
    /// The PostgreSQL database it runs on; `None` = redb in `data`.
    store: Option<String>,
    /// Extra environment for the daemon (e.g. `TOLLGATE_QUICK_REPAIR`).
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

/// Where a bench daemon's stderr goes: nowhere, or appended to `TOLLGATE_BENCH_DAEMON_LOG`.
fn daemon_log() -> Stdio {
    std::env::var_os("TOLLGATE_BENCH_DAEMON_LOG")
        .and_then(|path| std::fs::OpenOptions::new().create(true).append(true).open(path).ok())
        .map_or_else(Stdio::null, Stdio::from)
}

/// The number after `key` on its line of a `/proc` file such as `/proc/PID/io` or `/proc/meminfo`.
fn proc_number(path: impl AsRef<Path>, key: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    })
}

/// The daemon's threads that write to disk (name prefix as `/proc` shows it, 15 bytes at most)
/// and what the bench calls their bytes.
const WRITING_THREADS: [(&str, &str); 3] = [
    ("tollgate-writer", "writerJournal"),
    ("tollgate-flushe", "flusherRedb"),
    ("tollgate-archiv", "archiver"),
];

/// Bytes per resume of each writing thread between two [`Daemon::disk_write_bytes_by_thread`]
/// readings, and of everything else (threads that ended included) out of the process total.
fn bytes_per_resume_by_thread(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
    total: u64,
    resumes: usize,
) -> Value {
    let mut out = serde_json::Map::new();
    let mut named = 0;
    for (name, bytes) in after {
        let delta = bytes.saturating_sub(before.get(name).copied().unwrap_or(0));
        named += delta;
        out.insert((*name).into(), json!((delta as f64 / resumes as f64).round()));
    }
    out.insert(
        "other".into(),
        json!((total.saturating_sub(named) as f64 / resumes as f64).round()),
    );
    Value::Object(out)
}

/// The secret key of every bench daemon (base64 of 32 bytes).
const BENCH_SECRET_KEY: &str = "dG9sbGdhdGUtYmVuY2gta2V5LTMyLWJ5dGVzLWxvbmc=";

impl Daemon {
    /// The store this daemon runs on (redb: only while it is stopped).
    fn open_store(&self) -> Result<tollgate_daemon::store::Store> {
        Ok(match &self.store {
            Some(url) => tollgate_daemon::store::Store::open_postgres(url)?,
            None => tollgate_daemon::store::Store::open(&self.data)?,
        })
    }

    fn new(binary: &Path) -> Result<Daemon> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let flows = dir.path().join("flows");
        std::fs::create_dir_all(&flows)?;
        for (name, source) in FLOWS {
            std::fs::write(flows.join(name), source)?;
        }
        Ok(Daemon {
            child: None,
            addr: String::new(),
            data: dir.path().join("data"),
            flows,
            binary: binary.to_path_buf(),
            store: None,
            env: Vec::new(),
            _dir: dir,
        })
    }

    /// Starts the daemon; returns how long until gRPC health said SERVING and until a List of
    /// executions was answered.
    async fn start(&mut self) -> Result<Ready> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        self.addr = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        let child = Command::new(&self.binary)
            .args(["serve", "--insecure-no-auth", "--listen", &self.addr, "--data-dir"])
            .arg(&self.data)
            .args(self.store.iter().flat_map(|u| ["--store", u.as_str()]))
            .arg("--flows")
            .arg(&self.flows)
            .env("RUST_LOG", "warn")
            // Every daemon of one database must share the secret key (they refuse to start otherwise).
            .env("TOLLGATE_SECRET_KEY", BENCH_SECRET_KEY)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // TOLLGATE_BENCH_DAEMON_LOG=FILE: the daemons' stderr (warnings, errors) go there.
            .stderr(daemon_log())
            .spawn()
            .with_context(|| format!("spawn {}", self.binary.display()))?;
        self.child = Some(child);
        let serving = loop {
            if let Ok(ch) = self.channel().await {
                let answer = tonic_health::pb::health_client::HealthClient::new(ch)
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "tollgate.v1.Executions".into(),
                    })
                    .await;
                if answer.is_ok_and(|r| {
                    r.into_inner().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                }) {
                    break t0.elapsed();
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("tollgated exited during start-up ({status})");
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("tollgated was not SERVING within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        self.client()
            .await?
            .list(pb::ListExecutionsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await?;
        Ok(Ready {
            serving,
            answered: t0.elapsed(),
        })
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    async fn channel(&self) -> Result<Channel> {
        Ok(
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))?
                .tcp_nodelay(true)
                .connect()
                .await?,
        )
    }

    async fn client(&self) -> Result<ExecutionsClient<Channel>> {
        Ok(ExecutionsClient::new(self.channel().await?).max_decoding_message_size(256 << 20))
    }

    /// Bytes the daemon has caused to be written to the storage device (`/proc/PID/io`).
    fn disk_write_bytes(&self) -> u64 {
        let Some(c) = &self.child else { return 0 };
        proc_number(format!("/proc/{}/io", c.id()), "write_bytes:").unwrap_or(0)
    }

    /// Bytes written so far by each of the daemon's long-lived threads that write (the writer
    /// appends the journal, the flusher writes tollgate.redb, the archiver moves history to
    /// archive.redb and journals its releases), from `/proc/PID/task/TID/io`.
    fn disk_write_bytes_by_thread(&self) -> BTreeMap<&'static str, u64> {
        let mut by = BTreeMap::new();
        let Some(c) = &self.child else { return by };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", c.id())) else {
            return by;
        };
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let Some(name) = WRITING_THREADS
                .iter()
                .find(|(prefix, _)| comm.starts_with(prefix))
                .map(|(_, n)| *n)
            else {
                continue;
            };
            let bytes = proc_number(task.path().join("io"), "write_bytes:").unwrap_or(0);
            *by.entry(name).or_default() += bytes;
        }
        by
    }

    /// CPU time the daemon has used so far, all threads (`/proc/PID/stat` utime + stime, in clock
    /// ticks of 10 ms). Unlike wall time it barely moves when other work shares the machine.
    fn cpu_seconds(&self) -> f64 {
        let Some(c) = &self.child else { return 0.0 };
        std::fs::read_to_string(format!("/proc/{}/stat", c.id()))
            .ok()
            .and_then(|s| {
                // Fields after the parenthesised command name; utime and stime are 14 and 15.
                let rest = s.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
                Some(ticks as f64 / 100.0)
            })
            .unwrap_or(0.0)
    }

    /// Store commits since start and the seconds they took (`/metrics`
    /// `tollgate_commit_seconds_{count,sum}`), so a phase can say how many resumes shared a
    /// commit and how long a commit (write + fsync) held the writer.
    fn commits(&self) -> (f64, f64) {
        use std::io::{Read, Write};
        let fetch = || -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(&self.addr)?;
            write!(
                s,
                "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            )?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        };
        let body = fetch().unwrap_or_default();
        let value = |name: &str| {
            body.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (
            value("tollgate_commit_seconds_count "),
            value("tollgate_commit_seconds_sum "),
        )
    }

    fn rss_kb(&self) -> u64 {
        let Some(c) = &self.child else { return 0 };
        std::fs::read_to_string(format!("/proc/{}/status", c.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    fn disk_bytes(&self) -> u64 {
        std::fs::metadata(self.data.join("tollgate.redb"))
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i] * 1000.0).round() / 1000.0
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn summary(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    json!({"n": v.len(), "p50": pct(&v, 0.5), "p90": pct(&v, 0.9), "p99": pct(&v, 0.99), "max": pct(&v, 1.0)})
}

fn start_req(flow: &str) -> pb::StartRequest {
    pb::StartRequest {
        namespace: "bench".into(),
        flow_id: flow.into(),
        ..Default::default()
    }
}

/// Starts `n` executions of `flow` from `clients` concurrent callers; returns their ids.
async fn start_many(d: &Daemon, flow: &str, n: usize, clients: usize) -> Result<Vec<String>> {
    let ch = d.channel().await?;
    let mut set = JoinSet::new();
    let per = n.div_ceil(clients);
    for c in 0..clients {
        let count = per.min(n.saturating_sub(c * per));
        let mut client = ExecutionsClient::new(ch.clone());
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

/// Waits until no execution is CREATED or RUNNING: every acknowledged start has then reached
/// a pause or an end.
async fn wait_settled(d: &Daemon) -> Result<()> {
    let mut c = d.client().await?;
    let t0 = Instant::now();
    loop {
        let busy = c
            .list(pb::ListExecutionsRequest {
                states: vec!["CREATED".into(), "RUNNING".into()],
                page_size: 1,
                ..Default::default()
            })
            .await?
            .into_inner()
            .executions
            .len();
        if busy == 0 {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("executions still running after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How many executions are in `state` (paging through the list; not timed).
async fn count(d: &Daemon, state: &str) -> Result<usize> {
    let mut c = d.client().await?;
    let (mut n, mut token) = (0, String::new());
    loop {
        let r = c
            .list(pb::ListExecutionsRequest {
                states: vec![state.into()],
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await?
            .into_inner();
        n += r.executions.len();
        if r.next_page_token.is_empty() {
            return Ok(n);
        }
        token = r.next_page_token;
    }
}

/// Waits for every start to settle and checks `expected` of them are in `state`.
async fn wait_count(d: &Daemon, state: &str, expected: usize) -> Result<()> {
    wait_settled(d).await?;
    let n = count(d, state).await?;
    if n < expected {
        bail!("{n} executions in {state}, expected {expected}");
    }
    Ok(())
}

impl Bench {
    async fn scenario(&self, name: &str) -> Result<(Value, Value)> {
        match name {
            "throughput" => self.throughput().await,
            "bulk-resume" => self.bulk_resume().await,
            "resume-latency" => self.resume_latency().await,
            "log-latency" => self.log_latency().await,
            "list-paused" => self.list_paused().await,
            "startup" => self.startup().await,
            "footprint" => self.footprint().await,
            "console" => self.console().await,
            "cluster" => self.cluster().await,
            "takeover" => self.takeover().await,
            other => bail!("unknown scenario {other}"),
        }
    }

    async fn fresh(&self) -> Result<Daemon> {
        let mut d = Daemon::new(&self.daemon)?;
        d.store = match (&self.pg, &self.store) {
            (Some(pg), _) => Some(pg.new_database()),
            (None, Some(url)) => Some(url.clone()),
            (None, None) => None,
        };
        d.start().await?;
        Ok(d)
    }

    async fn throughput(&self) -> Result<(Value, Value)> {
        let n = self.sizes.throughput;
        let clients = 64;
        // TOLLGATE_BENCH_THROUGHPUT_PAUSED=N: the store already holds N paused executions (the
        // product's usual state: approvals waiting for days), so each flush changes a few rows
        // of a large table instead of most rows of a small one.
        let preloaded: usize = std::env::var("TOLLGATE_BENCH_THROUGHPUT_PAUSED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let d = if preloaded > 0 {
            let mut d = self.seeded(preloaded, 0).await?;
            d.start().await?;
            d
        } else {
            self.fresh().await?
        };
        progress(
            &d,
            &format!("throughput: {n} Log-flow executions from {clients} clients"),
        );
        journal_flushed().await;
        let (cpu, written) = (d.cpu_seconds(), d.disk_write_bytes());
        let t0 = Instant::now();
        start_many(&d, "log3", n, clients).await?;
        let started = t0.elapsed();
        wait_settled(&d).await?;
        let log_done = t0.elapsed();
        journal_flushed().await;
        let (cpu, written) = (d.cpu_seconds() - cpu, d.disk_write_bytes() - written);
        wait_count(&d, "SUCCESS", n + preloaded.min(1)).await?;

        // Pause flow: start, wait for PAUSED, resume each (one Resume call per execution).
        let m = self.sizes.pause_throughput;
        progress(
            &d,
            &format!("throughput: {m} Pause-flow executions started and resumed"),
        );
        let t1 = Instant::now();
        let ids = start_many(&d, "gate", m, clients).await?;
        if preloaded == 0 {
            wait_count(&d, "PAUSED", m).await?;
        } else {
            // Counting PAUSED pages through every preloaded row (a second and more per 100,000),
            // which would be timed as the flow's. Settled gate executions are paused; a resume
            // of one that is not fails the run.
            wait_settled(&d).await?;
        }
        resume_all(&d, ids, clients).await?;
        wait_settled(&d).await?;
        let gate_done = t1.elapsed();
        wait_count(&d, "SUCCESS", n + m + preloaded.min(1)).await?;
        Ok((
            json!({"logFlowExecutions": n, "pauseFlowExecutions": m, "clients": clients, "flow": "3 Log tasks; Pause + Log resumed by Resume calls", "pausedInStoreBefore": preloaded}),
            json!({
                "logFlowDaemonCpuUsPerExecution": (cpu * 1e6 / n as f64).round(),
                "logFlowDiskBytesPerExecution": (written as f64 / n as f64).round(),
                "logFlowCompletedPerSec": (n as f64 / log_done.as_secs_f64()).round(),
                "logFlowStartsPerSec": (n as f64 / started.as_secs_f64()).round(),
                "logFlowSeconds": ms(log_done) / 1000.0,
                "pauseFlowCompletedPerSec": (m as f64 / gate_done.as_secs_f64()).round(),
                "pauseFlowSeconds": ms(gate_done) / 1000.0,
            }),
        ))
    }

    async fn bulk_resume(&self) -> Result<(Value, Value)> {
        let n = self.sizes.bulk;
        let d = self.fresh().await?;
        let ids = start_many(&d, "gate", n, 64).await?;
        wait_count(&d, "PAUSED", n).await?;
        let mut c = d.client().await?;
        progress(&d, &format!("bulk-resume: one BulkResume of {n}"));
        journal_flushed().await;
        let written = d.disk_write_bytes();
        let by_thread = d.disk_write_bytes_by_thread();
        let cpu = d.cpu_seconds();
        let t0 = Instant::now();
        let r = c
            .bulk_resume(pb::BulkResumeRequest {
                ids,
                inputs: [("ok".to_string(), "true".to_string())].into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let answered = t0.elapsed();
        let ok = r.results.iter().filter(|r| r.ok).count();
        wait_settled(&d).await?;
        let all_success = t0.elapsed();
        journal_flushed().await;
        let (cpu, written) = (d.cpu_seconds() - cpu, d.disk_write_bytes() - written);
        let by_thread = bytes_per_resume_by_thread(&by_thread, &d.disk_write_bytes_by_thread(), written, n);
        wait_count(&d, "SUCCESS", n).await?;
        Ok((
            json!({"paused": n, "inputs": {"ok": "true"}}),
            json!({
                "acceptedOk": ok,
                "answerMs": ms(answered),
                "allSuccessMs": ms(all_success),
                "diskBytesWrittenPerResume": (written as f64 / n as f64).round(),
                "diskBytesWrittenPerResumeByThread": by_thread,
                "daemonCpuUsPerResume": (cpu * 1e6 / n as f64).round(),
            }),
        ))
    }

    async fn resume_latency(&self) -> Result<(Value, Value)> {
        let calls = self.sizes.latency_calls;
        let clients = self.sizes.latency_clients;
        let d = self.fresh().await?;
        let ch = d.channel().await?;
        // The target's concurrency, and lower ones to show the cost of a call without queueing.
        let mut by_clients = serde_json::Map::new();
        let mut levels = vec![1, 10, clients];
        levels.dedup();
        for level in levels {
            let n = if level == clients {
                calls
            } else {
                (calls / 5).max(level)
            };
            let (c0, s0) = d.commits();
            let (lat, rate, written, cpu, by_thread) = concurrent_resumes(&d, n, level).await?;
            // wait_settled ran since: the commits include each resumed execution's last step.
            let (c1, s1) = d.commits();
            let mut fig = summary(lat);
            if c1 > c0 {
                fig["commits"] = json!(c1 - c0);
                fig["resumesPerCommit"] = json!(((n as f64 / (c1 - c0)) * 10.0).round() / 10.0);
                fig["meanCommitMs"] = json!((((s1 - s0) / (c1 - c0)) * 1e5).round() / 100.0);
            }
            fig["resumesPerSec"] = json!(rate.round());
            fig["diskBytesWrittenPerResume"] = json!((written as f64 / n as f64).round());
            fig["diskBytesWrittenPerResumeByThread"] = by_thread;
            fig["daemonCpuUsPerResume"] = json!((cpu * 1e6 / n as f64).round());
            by_clients.insert(level.to_string(), fig);
        }

        // What the same closed loop costs without a resume: a gRPC call that does nothing (health
        // check) and a read (Get of a paused execution). The floor that transport and reads put
        // under any call at this concurrency on this machine.
        let (lat, rate) = closed_loop_health(&d, calls, clients).await?;
        let mut health = summary(lat);
        health["callsPerSec"] = json!(rate.round());
        let (lat, rate) = closed_loop_get(&d, calls, clients).await?;
        let mut get = summary(lat);
        get["callsPerSec"] = json!(rate.round());

        // The same clients, each resuming at a steady pace (open loop: latency counted from the
        // scheduled send, so a late call is not hidden).
        let offered = OPEN_LOOP_PER_CLIENT_PER_SEC * clients as f64;
        let (lat, rate) = open_loop_resumes(&d, calls, clients).await?;
        let mut open = summary(lat);
        open["offeredPerSec"] = json!(offered);
        open["achievedPerSec"] = json!(rate.round());

        // Resume -> SUCCESS (one Log task after the pause), one at a time, observed by Watch.
        let samples = self.sizes.samples;
        let ids = start_many(&d, "gate", samples, 8).await?;
        wait_count(&d, "PAUSED", samples).await?;
        let mut c = ExecutionsClient::new(ch.clone());
        let mut to_success = Vec::with_capacity(samples);
        for id in ids {
            let mut watch = c
                .watch(pb::WatchRequest {
                    execution_id: id.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let t = Instant::now();
            c.resume(pb::ResumeRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await?;
            loop {
                let ev = watch.message().await?.context("watch ended")?;
                if ev.execution.is_some_and(|e| e.state == "SUCCESS") {
                    break;
                }
            }
            to_success.push(ms(t.elapsed()));
        }
        Ok((
            json!({
                "resumeCalls": calls,
                "concurrentClients": clients,
                "resumeToSuccessSamples": samples,
                "connections": "one per client",
                "closedLoop": "each client sends its next call when the previous one is answered",
                "openLoop": format!("each client resumes {OPEN_LOOP_PER_CLIENT_PER_SEC} times/s on a fixed schedule"),
            }),
            json!({
                "resumeRpcMsByConcurrentClients": by_clients,
                "referenceClosedLoopMs": {"healthCheck": health, "getExecution": get},
                "openLoopResumeMs": open,
                "resumeToSuccessMs": summary(to_success),
            }),
        ))
    }

    async fn log_latency(&self) -> Result<(Value, Value)> {
        let samples = self.sizes.samples;
        let d = self.fresh().await?;
        let ids = start_many(&d, "gate", samples, 8).await?;
        wait_count(&d, "PAUSED", samples).await?;
        let ch = d.channel().await?;
        let mut c = ExecutionsClient::new(ch);
        let mut lat = Vec::with_capacity(samples);
        for id in ids {
            let mut tail = c
                .tail_logs(pb::TailLogsRequest {
                    execution_id: id.clone(),
                    from_seq: 0,
                    follow: true,
                })
                .await?
                .into_inner();
            c.resume(pb::ResumeRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await?;
            'lines: while let Some(batch) = tail.message().await? {
                for line in batch.lines {
                    if line.message.starts_with("decided") {
                        // The line's own timestamp (written by the daemon) to its arrival here.
                        let now = chrono::Utc::now().timestamp_micros() as f64 / 1000.0;
                        lat.push(((now - line.time_ms as f64) * 1000.0).round() / 1000.0);
                        break 'lines;
                    }
                }
            }
        }
        Ok((
            json!({"samples": samples, "how": "TailLogs follow; Log task after a resumed Pause; line time_ms (ms resolution) to receipt"}),
            json!({"lineToClientMs": summary(lat)}),
        ))
    }

    /// A daemon whose store holds `paused` paused and `finished` finished executions.
    async fn seeded(&self, paused: usize, finished: usize) -> Result<Daemon> {
        let mut d = self.fresh().await?;
        // Templates made by the daemon itself.
        let gate = start_many(&d, "gate", 1, 1).await?;
        wait_count(&d, "PAUSED", 1).await?;
        let log = start_many(&d, "log3", 1, 1).await?;
        wait_count(&d, "SUCCESS", 1).await?;
        d.stop();
        progress(
            &d,
            &format!("seeding {paused} paused and {finished} finished executions"),
        );
        seed(&d, &gate[0], paused.saturating_sub(1))?;
        seed(&d, &log[0], finished.saturating_sub(1))?;
        Ok(d)
    }

    async fn list_paused(&self) -> Result<(Value, Value)> {
        let (paused, finished) = (self.sizes.paused_store, self.sizes.finished_store);
        let mut d = self.seeded(paused, finished).await?;
        d.start().await?;
        let mut c = d.client().await?;
        let mut lat = Vec::new();
        let mut first_page = 0;
        for _ in 0..50 {
            let t = Instant::now();
            let r = c
                .list(pb::ListExecutionsRequest {
                    states: vec!["PAUSED".into()],
                    page_size: 100,
                    ..Default::default()
                })
                .await?
                .into_inner();
            lat.push(ms(t.elapsed()));
            first_page = r.executions.len();
        }
        let first_call = lat[0];
        Ok((
            json!({"paused": paused, "finished": finished, "pageSize": 100, "calls": 50, "seeding": SEEDING}),
            json!({"firstPageMs": summary(lat), "firstCallMs": first_call, "rowsOnPage": first_page}),
        ))
    }

    async fn startup(&self) -> Result<(Value, Value)> {
        let mut serving = serde_json::Map::new();
        let mut answered = serde_json::Map::new();
        let mut crash = serde_json::Map::new();
        let mut archived = serde_json::Map::new();
        // TOLLGATE_BENCH_STARTUP_SIZES=1000000: only the listed sizes (repeat runs of the largest).
        let only: Option<Vec<usize>> = std::env::var("TOLLGATE_BENCH_STARTUP_SIZES")
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect());
        let sizes: Vec<usize> = self
            .sizes
            .startup_sizes
            .into_iter()
            .filter(|s| only.as_ref().is_none_or(|o| o.contains(s)))
            .collect();
        for size in sizes.iter().copied() {
            let mut d = self.seeded(0, size).await?;
            // The seeded history sits in tollgate.redb as in a data dir from before the archive:
            // move it all to archive.redb (what the daemon's archiver does in the background, here
            // at full speed), then measure whether the hot file's size or its live rows set the
            // crash-restart time.
            let drain = drain_to_archive(&d)?;
            let mut crash_uncompacted = Value::Null;
            if size == *sizes.last().unwrap_or(&0) && d.store.is_none() {
                crash_uncompacted = self.crash_amid_writes(&mut d).await?;
            }
            let compacted = compact_hot(&d)?;
            archived.insert(
                format!("{size}"),
                json!({"drain": drain, "compact": compacted, "killedAmidWritesBeforeCompact": crash_uncompacted}),
            );
            let (mut s, mut a) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                let ready = d.start().await?;
                s.push(ms(ready.serving));
                a.push(ms(ready.answered));
                d.stop();
            }
            serving.insert(format!("{size}"), summary(s));
            answered.insert(format!("{size}"), summary(a));
            if size == *sizes.last().unwrap_or(&0) {
                // After a crash redb either walks the whole file or loads the allocator state
                // the last commit saved (TOLLGATE_QUICK_REPAIR: off, idle = the default, always).
                // Each mode: what it costs per commit, then a kill -9 amid writes and one after a
                // second of quiet.
                for mode in ["off", "idle", "always"] {
                    d.env = vec![("TOLLGATE_QUICK_REPAIR".into(), mode.into())];
                    d.start().await?;
                    // Commit cost: one client, so every Start and every step is its own commit.
                    let n = self.sizes.samples;
                    let (w0, c0) = (d.disk_write_bytes(), d.cpu_seconds());
                    start_many(&d, "log3", n, 1).await?;
                    wait_settled(&d).await?;
                    let (w1, c1) = (d.disk_write_bytes(), d.cpu_seconds());
                    kill9_amid_starts(&mut d).await?;
                    let amid = d.start().await?;
                    // Killed after a second without writes.
                    start_many(&d, "log3", 10, 1).await?;
                    wait_settled(&d).await?;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    d.kill9();
                    let quiet = d.start().await?;
                    crash.insert(
                        mode.to_string(),
                        json!({
                            "storedExecutions": size,
                            "readyMsAfterKill9AmidWrites": ms(amid.serving),
                            "readyMsAfterKill9AfterQuietSecond": ms(quiet.serving),
                            "diskBytesWrittenPer3LogExecution1Client": ((w1 - w0) as f64 / n as f64).round(),
                            "daemonCpuUsPer3LogExecution1Client": ((c1 - c0) * 1e6 / n as f64).round(),
                        }),
                    );
                    d.stop();
                    d.env.clear();
                }
            }
        }
        Ok((
            json!({
                "storedExecutions": sizes,
                "stored": "finished 3-Log-task executions",
                "archive": "the seeded history drained to archive.redb with the daemon stopped (Store::archive_now, batches of 2,000), one kill -9 amid writes before compacting tollgate.redb, then tollgate.redb compacted (Store::compact_hot); the daemon's archiver runs with its defaults throughout",
                "runsEach": 3,
                "ready": "spawn to gRPC health SERVING (tollgate.v1.Executions); answered: to the first List answered",
                "stop": "SIGTERM (clean close) between runs",
                "crash": "largest store, per TOLLGATE_QUICK_REPAIR mode: 1-client Starts of log3 (commit cost); kill -9 while 8 clients Start; kill -9 after 1 s without writes",
                "seeding": SEEDING,
            }),
            json!({
                "readyMsByStoredExecutions": serving,
                "firstListAnsweredMsByStoredExecutions": answered,
                "afterKill9ByQuickRepairMode": crash,
                "archiveByStoredExecutions": archived,
            }),
        ))
    }

    /// Ready time after a `kill -9` amid writes (8 clients starting log3), default settings.
    async fn crash_amid_writes(&self, d: &mut Daemon) -> Result<Value> {
        d.start().await?;
        kill9_amid_starts(d).await?;
        let hot_bytes = file_bytes(&d.data.join("tollgate.redb"));
        let amid = d.start().await?;
        wait_settled(d).await?;
        d.stop();
        Ok(json!({"readyMsAfterKill9AmidWrites": ms(amid.serving), "hotFileBytes": hot_bytes}))
    }

    async fn footprint(&self) -> Result<(Value, Value)> {
        let mut d = self.fresh().await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = d.rss_kb();
        // Paused executions made through the API, to measure disk growth per execution.
        let n = self.sizes.paused_store.min(10_000);
        let before = d.disk_bytes();
        start_many(&d, "gate", n, 64).await?;
        wait_count(&d, "PAUSED", n).await?;
        d.stop();
        let per_paused = (d.disk_bytes().saturating_sub(before)) as f64 / n as f64;
        seed(
            &d,
            &first_id(&d, "PAUSED").await?,
            self.sizes.paused_store.saturating_sub(n),
        )?;
        d.start().await?;
        // Let start-up work settle, then touch the paused list as a console would.
        let mut c = d.client().await?;
        c.list(pb::ListExecutionsRequest {
            states: vec!["PAUSED".into()],
            page_size: 1000,
            ..Default::default()
        })
        .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let loaded = d.rss_kb();
        Ok((
            json!({"pausedForDisk": n, "pausedForDiskMadeBy": "Start calls (gRPC)", "pausedForRss": self.sizes.paused_store, "seeding": SEEDING}),
            json!({
                "idleRssMiB": (idle as f64 / 1024.0 * 10.0).round() / 10.0,
                "rssWithPausedMiB": (loaded as f64 / 1024.0 * 10.0).round() / 10.0,
                "diskBytesPerPausedExecution": per_paused.round(),
                "fileBytes": d.disk_bytes(),
            }),
        ))
    }

    async fn console(&self) -> Result<(Value, Value)> {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        use tollgate_console::console::app::{App, AppOptions, Screen};
        use tollgate_console::console::messages::{Tab, Update};
        use tollgate_console::console::theme::Theme;

        let paused = self.sizes.paused_store;
        let mut d = self.seeded(paused, 0).await?;
        d.start().await?;
        // A daemon started on a freshly seeded store first moves the seeding's audit records
        // to the archive (~35% of its CPU during the load when measured at once): the console
        // is timed against a daemon that has settled, as a user opening it would meet.
        let settle = Instant::now();
        loop {
            let before = d.cpu_seconds();
            tokio::time::sleep(Duration::from_millis(500)).await;
            if d.cpu_seconds() - before <= 0.0101 || settle.elapsed() > Duration::from_secs(120) {
                break;
            }
        }
        let settled_ms = ms(settle.elapsed());
        progress(&d, &format!("console: all {paused} PAUSED rows listed in pages"));
        // TOLLGATE_BENCH_PERF=FILE: `perf record -g` of the daemon and this process during the
        // load only (not the seeding), into FILE.
        let perf = match (std::env::var("TOLLGATE_BENCH_PERF"), &d.child) {
            (Ok(file), Some(child)) if !file.is_empty() => {
                let p = std::process::Command::new("perf")
                    .args(["record", "-F", "1999", "-g", "-o", &file, "-p"])
                    .arg(format!("{},{}", child.id(), std::process::id()))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?;
                // perf needs a moment to attach before the load starts.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Some(p)
            }
            _ => None,
        };
        let (daemon_cpu, own_cpu) = (d.cpu_seconds(), own_cpu_seconds());
        // What the console does at start: a loader task Lists the PAUSED tab page by page (as
        // console/sync.rs does) while the app applies the pages it has; draw after the first.
        let t0 = Instant::now();
        let mut c = d.client().await?;
        let mut app = App::new(AppOptions {
            user: None,
            server: d.addr.clone(),
            theme: Theme::MONO,
            now_ms: chrono::Utc::now().timestamp_millis(),
            screen: Screen::Executions,
        });
        let _ = app.start();
        let mut terminal = Terminal::new(TestBackend::new(120, 40))?;
        let (tx, mut pages) = tokio::sync::mpsc::channel(64);
        // Row summaries, as console/sync.rs asks; TOLLGATE_BENCH_LIST_VIEW=full lists whole
        // executions (as the console did before summaries) to compare.
        let full = std::env::var("TOLLGATE_BENCH_LIST_VIEW").is_ok_and(|v| v == "full");
        let view = if full {
            pb::ExecutionView::Full
        } else {
            pb::ExecutionView::Summary
        };
        // As console/sync.rs: pages::list_all sends each next request before decoding a page.
        // TOLLGATE_BENCH_LIST_PIPELINE=0 lists one page after another (as before) to compare.
        let pipelined = !std::env::var("TOLLGATE_BENCH_LIST_PIPELINE").is_ok_and(|v| v == "0");
        let req = pb::ListExecutionsRequest {
            states: vec!["PAUSED".into()],
            page_size: 1000,
            view: view as i32,
            ..Default::default()
        };
        let channel = d.channel().await?;
        // A page as the loader has it: rows decoded by console/pages.rs, or the executions of
        // a List answer (page by page, as before).
        enum Rows {
            Decoded(Vec<tollgate_console::console::exec_store::ExecRow>),
            Whole(Vec<pb::Execution>),
        }
        let loader = tokio::spawn(async move {
            if pipelined {
                let (ptx, mut prx) = tokio::sync::mpsc::channel(2);
                tokio::spawn(tollgate_console::console::pages::list_all(channel, req, ptx));
                while let Some(page) = prx.recv().await {
                    let page = page?;
                    let last = page.last;
                    if tx.send((Rows::Decoded(page.rows), page.forms, last)).await.is_err() || last {
                        break;
                    }
                }
                return Ok::<_, tonic::Status>(());
            }
            let mut token = String::new();
            loop {
                let r = c
                    .list(pb::ListExecutionsRequest {
                        page_token: token.clone(),
                        ..req.clone()
                    })
                    .await?
                    .into_inner();
                let last = r.next_page_token.is_empty();
                token = r.next_page_token;
                if tx.send((Rows::Whole(r.executions), r.forms, last)).await.is_err() || last {
                    return Ok(());
                }
            }
        });
        let mut first = true;
        let mut first_frame = None;
        while let Some((rows, forms, last)) = pages.recv().await {
            app.apply(match rows {
                Rows::Decoded(rows) => Update::Rows {
                    tab: Tab::Paused,
                    rows,
                    forms,
                    first,
                    last,
                },
                Rows::Whole(executions) => Update::Page {
                    tab: Tab::Paused,
                    executions,
                    forms,
                    first,
                    last,
                },
            });
            if first {
                // The first page on screen: what the user sees first.
                app.settle();
                terminal.draw(|f| tollgate_console::console::ui::draw(f, &app))?;
                first_frame = Some(t0.elapsed());
            }
            first = false;
            if last {
                break;
            }
        }
        loader.await??;
        app.settle();
        terminal.draw(|f| tollgate_console::console::ui::draw(f, &app))?;
        let all_loaded = t0.elapsed();
        // CPU, not only wall time: the machine is shared, and CPU does not depend on its load.
        let (daemon_cpu, own_cpu) = (d.cpu_seconds() - daemon_cpu, own_cpu_seconds() - own_cpu);
        if let Some(mut p) = perf {
            // SIGINT makes perf write its file and exit.
            let _ = std::process::Command::new("kill")
                .args(["-INT", &p.id().to_string()])
                .status();
            let _ = p.wait();
        }
        let rows = app.list.visible.len();
        // Key -> frame: what the event loop does for one key press.
        let mut key = Vec::new();
        for i in 0..200 {
            let code = if i % 50 < 25 {
                crossterm::event::KeyCode::Down
            } else {
                crossterm::event::KeyCode::Up
            };
            let t = Instant::now();
            let ev = crossterm::event::KeyEvent::new(code, crossterm::event::KeyModifiers::NONE);
            if let Some(action) = tollgate_console::console::action::map(app.ctx(), ev) {
                let _ = app.handle(action);
            }
            app.settle();
            terminal.draw(|f| tollgate_console::console::ui::draw(f, &app))?;
            key.push(ms(t.elapsed()));
        }
        // And a filter keystroke over every row (the heaviest key).
        let t = Instant::now();
        if let Some(action) = tollgate_console::console::action::map(
            app.ctx(),
            crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('/'),
                crossterm::event::KeyModifiers::NONE,
            ),
        ) {
            let _ = app.handle(action);
        }
        for ch in "bench".chars() {
            let ev = crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char(ch),
                crossterm::event::KeyModifiers::NONE,
            );
            if let Some(action) = tollgate_console::console::action::map(app.ctx(), ev) {
                let _ = app.handle(action);
            }
            app.settle();
            terminal.draw(|f| tollgate_console::console::ui::draw(f, &app))?;
        }
        let filter_per_key = ms(t.elapsed()) / 5.0;
        Ok((
            json!({"paused": paused, "seeding": SEEDING, "terminal": "120x40 TestBackend", "how": "the console library's own loop: List pages into App, settle, draw; keys through action::map + App::handle"}),
            json!({
                "daemonSettledAfterStartMs": settled_ms,
                "firstFrameMs": ms(first_frame.unwrap_or_default()),
                "allRowsLoadedMs": ms(all_loaded),
                "daemonCpuMsForAllRows": (daemon_cpu * 1000.0).round(),
                "consoleCpuMsForAllRows": (own_cpu * 1000.0).round(),
                "listView": if full { "FULL" } else { "SUMMARY" },
                "pagesPipelined": pipelined,
                "executionsSeededAs": if std::env::var("TOLLGATE_BENCH_SEED_JSON").is_ok_and(|v| v == "1") { "JSON (as before the compact encoding)" } else { "as this daemon writes them" },
                "rowsListed": rows,
                "keyToFrameMs": summary(key),
                "filterKeyToFrameMs": filter_per_key,
            }),
        ))
    }
}

/// One channel per client, client `i` on daemon `i % daemons`.
async fn spread_channels(ds: &[Daemon], clients: usize) -> Result<Vec<tonic::transport::Channel>> {
    let mut out = Vec::with_capacity(clients);
    for i in 0..clients {
        out.push(ds[i % ds.len()].channel().await?);
    }
    Ok(out)
}

/// Resumes `ids` in a closed loop, one caller per channel (each takes an equal share, one call
/// after the other); the latency of each Resume call (ms).
async fn resume_closed_loop(ids: Vec<String>, channels: Vec<tonic::transport::Channel>) -> Result<Vec<f64>> {
    let n = ids.len();
    let mut set = JoinSet::new();
    for (chunk, ch) in ids.chunks(n.div_ceil(channels.len()).max(1)).zip(channels) {
        let chunk = chunk.to_vec();
        let mut client = ExecutionsClient::new(ch);
        set.spawn(async move {
            let mut lat = Vec::with_capacity(chunk.len());
            for id in chunk {
                let t = Instant::now();
                client
                    .resume(pb::ResumeRequest {
                        id,
                        ..Default::default()
                    })
                    .await?;
                lat.push(ms(t.elapsed()));
            }
            Ok::<_, tonic::Status>(lat)
        });
    }
    let mut lat = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        lat.extend(r??);
    }
    Ok(lat)
}

/// Waits until the daemon's journal overlay has been written to tollgate.redb (once writes
/// pause, a flush starts when the oldest change is 1 s old and none came for 100 ms): bytes
/// and CPU measured between two of these include the flushes of the changes made in between,
/// and none of the changes made before.
async fn journal_flushed() {
    tokio::time::sleep(Duration::from_millis(1600)).await;
}

/// `n` paused executions resumed by `clients` callers, each on its own connection, as separate
/// consoles or scripts would be; returns each call's latency, the resumes per second, the bytes
/// the daemon wrote to disk meanwhile (every answered resume is committed, so its pages were
/// flushed before its answer), the CPU seconds it used, and the bytes per resume by writing
/// thread.
async fn concurrent_resumes(d: &Daemon, n: usize, clients: usize) -> Result<(Vec<f64>, f64, u64, f64, Value)> {
    let ids = start_many(d, "gate", n, 64).await?;
    wait_count(d, "PAUSED", n).await?;
    progress(d, &format!("resume-latency: {n} Resume calls from {clients} clients"));
    journal_flushed().await;
    let written = d.disk_write_bytes();
    let by_thread = d.disk_write_bytes_by_thread();
    let cpu = d.cpu_seconds();
    let t0 = Instant::now();
    let channels = spread_channels(std::slice::from_ref(d), clients).await?;
    let lat = resume_closed_loop(ids, channels).await?;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    wait_settled(d).await?;
    journal_flushed().await;
    let written = d.disk_write_bytes().saturating_sub(written);
    let by_thread = bytes_per_resume_by_thread(&by_thread, &d.disk_write_bytes_by_thread(), written, n);
    let cpu = d.cpu_seconds() - cpu;
    Ok((lat, rate, written, cpu, by_thread))
}

/// CPU seconds this process (the bench: console library and gRPC client) has used.
fn own_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Calls a second each client makes in the open-loop resume measurement.
const OPEN_LOOP_PER_CLIENT_PER_SEC: f64 = 10.0;

/// `n` health checks from `clients` callers in a closed loop, each on its own connection.
async fn closed_loop_health(d: &Daemon, n: usize, clients: usize) -> Result<(Vec<f64>, f64)> {
    let mut set = JoinSet::new();
    let per = n.div_ceil(clients).max(1);
    let mut callers = Vec::with_capacity(clients);
    for _ in 0..clients {
        callers.push(tonic_health::pb::health_client::HealthClient::new(d.channel().await?));
    }
    progress(d, &format!("resume-latency: {n} health checks from {clients} clients"));
    let t0 = Instant::now();
    for mut client in callers {
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                client
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "tollgate.v1.Executions".into(),
                    })
                    .await?;
                lat.push(ms(t.elapsed()));
            }
            Ok::<_, tonic::Status>(lat)
        });
    }
    let mut lat = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        lat.extend(r??);
    }
    let rate = lat_rate(&lat, t0);
    Ok((lat, rate))
}

/// `n` Get calls of paused executions from `clients` callers in a closed loop.
async fn closed_loop_get(d: &Daemon, n: usize, clients: usize) -> Result<(Vec<f64>, f64)> {
    let ids = start_many(d, "gate", clients, clients).await?;
    wait_count(d, "PAUSED", clients).await?;
    let per = n.div_ceil(clients).max(1);
    let mut callers = Vec::with_capacity(clients);
    for id in ids {
        callers.push((id, ExecutionsClient::new(d.channel().await?)));
    }
    progress(d, &format!("resume-latency: {n} Get calls from {clients} clients"));
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for (id, mut client) in callers {
        set.spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                client.get(pb::GetExecutionRequest { id: id.clone() }).await?;
                lat.push(ms(t.elapsed()));
            }
            Ok::<_, tonic::Status>(lat)
        });
    }
    let mut lat = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        lat.extend(r??);
    }
    let rate = lat_rate(&lat, t0);
    Ok((lat, rate))
}

fn lat_rate(lat: &[f64], t0: Instant) -> f64 {
    lat.len() as f64 / t0.elapsed().as_secs_f64()
}

/// `n` paused executions resumed by `clients` callers, each calling on a fixed schedule
/// ([`OPEN_LOOP_PER_CLIENT_PER_SEC`], clients staggered); latency runs from the scheduled send.
async fn open_loop_resumes(d: &Daemon, n: usize, clients: usize) -> Result<(Vec<f64>, f64)> {
    let ids = start_many(d, "gate", n, 64).await?;
    wait_count(d, "PAUSED", n).await?;
    let mut callers = Vec::with_capacity(clients);
    for chunk in ids.chunks(n.div_ceil(clients).max(1)) {
        callers.push((chunk.to_vec(), ExecutionsClient::new(d.channel().await?)));
    }
    progress(
        d,
        &format!("resume-latency: {n} Resume calls from {clients} clients, open loop"),
    );
    let every = Duration::from_secs_f64(1.0 / OPEN_LOOP_PER_CLIENT_PER_SEC);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let count = callers.len() as u32;
    let mut set = JoinSet::new();
    let t0 = Instant::now();
    for (i, (chunk, mut client)) in callers.into_iter().enumerate() {
        let first = start + every * i as u32 / count;
        set.spawn(async move {
            let mut lat = Vec::with_capacity(chunk.len());
            for (k, id) in chunk.into_iter().enumerate() {
                let due = first + every * k as u32;
                tokio::time::sleep_until(due).await;
                client
                    .resume(pb::ResumeRequest {
                        id,
                        ..Default::default()
                    })
                    .await?;
                lat.push(ms(due.elapsed()));
            }
            Ok::<_, tonic::Status>(lat)
        });
    }
    let mut lat = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        lat.extend(r??);
    }
    let rate = lat_rate(&lat, t0);
    wait_settled(d).await?;
    Ok((lat, rate))
}

async fn resume_all(d: &Daemon, ids: Vec<String>, clients: usize) -> Result<()> {
    let ch = d.channel().await?;
    let mut set = JoinSet::new();
    for chunk in ids.chunks(ids.len().div_ceil(clients).max(1)) {
        let chunk = chunk.to_vec();
        let mut client = ExecutionsClient::new(ch.clone());
        set.spawn(async move {
            for id in chunk {
                client
                    .resume(pb::ResumeRequest {
                        id,
                        ..Default::default()
                    })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

async fn first_id(d: &Daemon, state: &str) -> Result<String> {
    let store = d.open_store()?;
    let state = tollgate_daemon::engine::State::parse(state).context("state name")?;
    let ids = store.read()?.execution_ids_in_state(state)?;
    ids.into_iter().next().context("no execution to copy")
}

fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Moves every finished execution and all but the newest 10,000 audit records of a stopped
/// daemon's store to archive.redb; what it took.
fn drain_to_archive(d: &Daemon) -> Result<Value> {
    if d.store.is_some() {
        return Ok(Value::Null);
    }
    let store = d.open_store()?;
    let settings = tollgate_daemon::store::ArchiveSettings {
        after: Duration::ZERO,
        interval: Duration::ZERO,
        keep_audit: 10_000,
        batch: 2_000,
    };
    let t = Instant::now();
    let (executions, audit) = store.archive_now::<tollgate_daemon::engine::State>(&settings)?;
    let took = t.elapsed();
    drop(store);
    Ok(json!({
        "executionsMoved": executions,
        "auditRecordsMoved": audit,
        "batch": settings.batch,
        "ms": ms(took),
        "executionsPerSecond": (executions as f64 / took.as_secs_f64().max(1e-9)).round(),
        "hotFileBytes": file_bytes(&d.data.join("tollgate.redb")),
        "archiveFileBytes": file_bytes(&d.data.join("archive.redb")),
    }))
}

/// Compacts the stopped daemon's hot file; what it took and the size after.
fn compact_hot(d: &Daemon) -> Result<Value> {
    if d.store.is_some() {
        return Ok(Value::Null);
    }
    let t = Instant::now();
    let done = d.open_store()?.compact_hot()?;
    Ok(json!({"compacted": done, "ms": ms(t.elapsed()), "hotFileBytes": file_bytes(&d.data.join("tollgate.redb"))}))
}

/// Adds `count` executions shaped like `template` (one the daemon itself ran) to a stopped
/// daemon's store, built with the engine's own types and written through the store's `Writer`
/// (the same tables and state index the engine writes), in transactions of 20,000. Each copy
/// gets fresh execution and task-run ids, every timestamp moved back so the copies look started
/// one every 10 ms before the template, the template's log lines re-keyed to it, and an audited
/// start like the engine's. Templates with durable timers are refused (none are copied).
fn seed(d: &Daemon, template: &str, count: usize) -> Result<()> {
    use tollgate_daemon::engine::{Execution, LogLine};
    if count == 0 {
        return Ok(());
    }
    let store = d.open_store()?;
    let (t, lines): (Execution, Vec<LogLine>) = {
        let r = store.read()?;
        let t: Execution = r.execution(template)?.context("template execution")?;
        (t.clone(), r.logs(template, 0, usize::MAX)?)
    };
    if t.task_runs.iter().filter_map(|r| r.pause.as_ref()).any(|p| {
        p.expires_ms.is_some()
            || p.timeout_ms.is_some()
            || p.next_reminder_ms.is_some()
            || p.next_escalation_ms.is_some()
    }) {
        bail!("template {template} has timers; seeding copies only timer-free executions");
    }
    // Ids as this build's daemon makes them, or with TOLLGATE_BENCH_SEED_RANDOM_IDS=1 22 random
    // characters, as daemons before time-ordered ids made them (to compare the two on a store
    // seeded the way each would have filled it).
    let seeded_id: fn() -> String = if std::env::var("TOLLGATE_BENCH_SEED_RANDOM_IDS").is_ok_and(|v| v == "1") {
        || tollgate_daemon::engine::ids::random_id(22)
    } else {
        tollgate_daemon::engine::ids::new_id
    };
    let copy = |i: usize| -> (Execution, Vec<LogLine>) {
        let back = |ms: i64| ms - (count - i) as i64 * 10;
        let mut e = t.clone();
        e.id = seeded_id();
        e.created_ms = back(e.created_ms);
        e.updated_ms = back(e.updated_ms);
        e.ended_ms = e.ended_ms.map(back);
        e.history.iter_mut().for_each(|h| h.at_ms = back(h.at_ms));
        let mut renamed = std::collections::HashMap::new();
        for r in &mut e.task_runs {
            let id = seeded_id();
            renamed.insert(std::mem::replace(&mut r.id, id.clone()), id);
            r.started_ms = back(r.started_ms);
            r.ended_ms = r.ended_ms.map(back);
            r.history.iter_mut().for_each(|h| h.at_ms = back(h.at_ms));
            if let Some(p) = &mut r.pause {
                p.since_ms = back(p.since_ms);
            }
        }
        for r in &mut e.task_runs {
            r.parent_task_run_id = r.parent_task_run_id.as_ref().and_then(|p| renamed.get(p).cloned());
        }
        let logs = lines
            .iter()
            .map(|l| LogLine {
                execution_id: e.id.clone(),
                task_run_id: renamed.get(&l.task_run_id).cloned().unwrap_or_default(),
                time_ms: back(l.time_ms),
                ..l.clone()
            })
            .collect();
        (e, logs)
    };
    // TOLLGATE_BENCH_SEED_JSON=1: executions stored as JSON, as before the compact encoding, to
    // measure what reading the old records costs with the same binaries.
    let seed_json = std::env::var("TOLLGATE_BENCH_SEED_JSON").is_ok_and(|v| v == "1");
    let mut done = 0;
    while done < count {
        let batch = (count - done).min(20_000);
        store.write(|w| -> Result<(), tollgate_daemon::store::StoreError> {
            for i in done..done + batch {
                let (e, logs) = copy(i);
                let values = e
                    .inputs
                    .iter()
                    .map(|(k, v)| {
                        let v = if e.secret_inputs.contains(k) {
                            json!("******")
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect();
                tollgate_daemon::audit::append(
                    w,
                    tollgate_daemon::audit::Entry {
                        user: e.started_by.clone(),
                        action: "start".into(),
                        namespace: e.namespace.clone(),
                        flow_id: e.flow_id.clone(),
                        execution_id: e.id.clone(),
                        values: Value::Object(values),
                        result: "OK".into(),
                        ..Default::default()
                    },
                )?;
                for l in &logs {
                    w.append_log(l)?;
                }
                w.put_execution(&e)?;
                if seed_json {
                    // The record as daemons before the compact encoding wrote it (still read).
                    let json = serde_json::to_vec(&e)
                        .map_err(|e| tollgate_daemon::store::StoreError::Storage(e.to_string()))?;
                    w.restore(
                        tollgate_daemon::store::backend::Table::Executions,
                        e.id.as_bytes(),
                        &json,
                    )?;
                }
            }
            Ok(())
        })?;
        done += batch;
    }
    store.close(Duration::from_secs(10));
    Ok(())
}

/// Kills the daemon with `kill -9` while 8 clients are starting log3 executions (commits in
/// flight), once they have been at it for 300 ms.
async fn kill9_amid_starts(d: &mut Daemon) -> Result<()> {
    let ch = d.channel().await?;
    let load = tokio::spawn(async move {
        let mut set = JoinSet::new();
        for _ in 0..8 {
            let mut c = ExecutionsClient::new(ch.clone());
            set.spawn(async move { while c.start(start_req("log3")).await.is_ok() {} });
        }
        while set.join_next().await.is_some() {}
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.kill9();
    let _ = load.await;
    Ok(())
}
