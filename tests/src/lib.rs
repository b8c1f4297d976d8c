//! Test support: builds the real binaries once, runs a real `tollgated` on a free loopback port
//! with a temporary data dir, and drives it through the real `tollgate` CLI.
//!
//! `cargo test --workspace` does not build other packages' binaries for this package's tests,
//! so [`binaries`] runs `cargo build` for them once per test process (cargo's own lock makes
//! concurrent test binaries wait for one build) in the same profile and target dir.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod pki;
pub mod postgres;
pub mod recorders;
pub mod tmux;

/// Paths of the built binaries.
pub struct Binaries {
    pub tollgated: PathBuf,
    pub tollgate: PathBuf,
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The profile dir the test binary runs from (`target/debug`), found from the test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile> dir")
}

/// Builds `tollgated` and `tollgate` (once per process) and returns their paths.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = profile_dir();
        let target_dir = dir.parent().expect("target dir").to_path_buf();
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_string();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "tollgate-daemon",
                "-p",
                "tollgate-console",
                "--bins",
            ])
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the binaries");
        assert!(status.success(), "cargo build of tollgated/tollgate failed");
        Binaries {
            tollgated: dir.join("tollgated"),
            tollgate: dir.join("tollgate"),
        }
    })
}

/// A free TCP port on 127.0.0.1 (bound then released; the daemon binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The test's flows (tests/flows), Kestra layout.
pub fn test_flows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub flows: Option<PathBuf>,
    pub insecure: bool,
    pub tenant: String,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            flows: Some(test_flows_dir()),
            insecure: true,
            tenant: "main".into(),
            extra_args: vec![],
            env: vec![],
        }
    }
}

/// A real `tollgated` process on loopback.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub options: DaemonOptions,
    /// Token passed to the CLI as TOLLGATE_TOKEN (when auth is on).
    pub token: Option<String>,
    log_path: PathBuf,
    /// The PostgreSQL database this daemon runs on under `TOLLGATE_TEST_STORE=postgres`
    /// (created at the first start, kept across restarts); `None` = redb in the data dir.
    pub store_url: Option<String>,
}

impl Daemon {
    /// Starts a daemon with the test flows, no auth, on a temporary data dir.
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonOptions::default())
    }

    pub fn start_with(options: DaemonOptions) -> Daemon {
        let temp = tempfile::tempdir().expect("temp data dir");
        let data_dir = temp.path().join("data");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log_path = temp.path().join("tollgated.log");
        let mut d = Daemon {
            child: None,
            addr,
            data_dir,
            _temp: Some(temp),
            options,
            token: None,
            log_path,
            store_url: None,
        };
        d.spawn();
        d
    }

    /// A daemon on a data dir the caller provides (a special mount, say); kept after the daemon ends.
    pub fn start_at(data_dir: &Path, options: DaemonOptions) -> Daemon {
        let temp = tempfile::tempdir().expect("temp dir for the log");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log_path = temp.path().join("tollgated.log");
        let mut d = Daemon {
            child: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            _temp: Some(temp),
            options,
            token: None,
            log_path,
            store_url: None,
        };
        d.spawn();
        d
    }

    pub fn server(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spawn(&mut self) {
        let bins = binaries();
        // An explicit `--store` in the options wins; else the suite's choice of store.
        if self.store_url.is_none() && postgres::wanted() && !self.options.extra_args.iter().any(|a| a == "--store") {
            self.store_url = Some(postgres::new_database());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("daemon log file");
        let mut cmd = Command::new(&bins.tollgated);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--tenant")
            .arg(&self.options.tenant)
            .args(&self.options.extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        if let Some(f) = &self.options.flows {
            cmd.arg("--flows").arg(f);
        }
        if self.options.insecure {
            cmd.arg("--insecure-no-auth");
        }
        if let Some(url) = &self.store_url {
            cmd.arg("--store").arg(url);
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn tollgated"));
        self.wait_ready();
    }

    /// Waits until the port accepts connections and a gRPC call answers.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("tollgated exited early with {status}; log:\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tollgated not ready after 30 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: the graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the daemon again on the same data dir and port.
    pub fn restart(&mut self) {
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs the real `tollgate` CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let bins = binaries();
        let mut cmd = Command::new(&bins.tollgate);
        cmd.arg("--server").arg(self.server()).args(args).stdin(Stdio::null());
        cmd.env_remove("TOLLGATE_TOKEN");
        if let Some(t) = &self.token {
            cmd.env("TOLLGATE_TOKEN", t);
        }
        // Keep the developer's real config out of tests.
        cmd.env(
            "XDG_CONFIG_HOME",
            self.data_dir.parent().unwrap_or(&self.data_dir).join("config"),
        );
        CliOutput::from(cmd.output().expect("run tollgate"))
    }

    /// Runs the CLI and parses its `-o json` output; panics with the output when it fails.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut full = args.to_vec();
        full.extend(["-o", "json"]);
        let out = self.cli(&full);
        assert!(out.ok(), "tollgate {args:?} failed:\n{out}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("tollgate {args:?} printed no JSON ({e}):\n{out}"))
    }

    /// Starts an execution and waits until it pauses or ends.
    pub fn run_wait(&self, namespace: &str, flow: &str, inputs: &[&str]) -> Value {
        let mut args = vec!["run", namespace, flow, "--wait"];
        for i in inputs {
            args.extend(["--input", i]);
        }
        self.cli_json(&args)
    }

    /// Starts an execution without waiting.
    pub fn run_nowait(&self, namespace: &str, flow: &str, inputs: &[&str]) -> Value {
        let mut args = vec!["run", namespace, flow];
        for i in inputs {
            args.extend(["--input", i]);
        }
        self.cli_json(&args)
    }

    /// Polls `tollgate executions` with `args` until `pick` finds an execution.
    pub fn wait_listed(&self, args: &[&str], pick: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.cli_json(args);
            if let Some(found) = list.as_array().and_then(|a| a.iter().find(|e| pick(e))) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "nothing matched `tollgate {args:?}`; last:\n{list:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Applies a flow written by the test (stored next to the data dir as `NAME.yaml`); panics
    /// with the CLI's answer when it is refused.
    pub fn apply_flow(&self, name: &str, source: &str) {
        let file = self.data_dir.parent().expect("temp dir").join(format!("{name}.yaml"));
        std::fs::write(&file, source).expect("write flow");
        let out = self.cli(&["flow", "apply", file.to_str().expect("utf-8 path")]);
        assert!(out.ok(), "{out}");
    }

    pub fn execution(&self, id: &str) -> Value {
        self.cli_json(&["executions", "get", id])
    }

    /// Polls until the execution's state is `state` (or fails after 20 s with the last state seen).
    pub fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let e = self.execution(id);
            if e["state"] == state {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} never reached {state}; last seen:\n{e:#}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens the store this daemon runs on (redb: only while the daemon is stopped).
    pub fn open_store(&self) -> tollgate_daemon::store::Store {
        match &self.store_url {
            Some(url) => tollgate_daemon::store::Store::open_postgres(url).expect("open the PostgreSQL store"),
            None => tollgate_daemon::store::Store::open(&self.data_dir).expect("open the redb store"),
        }
    }

    /// Runs `tollgated admin` on this daemon's data dir (the daemon must be stopped).
    /// The PostgreSQL URL this daemon runs on: the suite's choice or an explicit `--store`.
    fn store(&self) -> Option<&str> {
        let explicit = self.options.extra_args.iter().skip_while(|a| *a != "--store").nth(1);
        self.store_url.as_deref().or(explicit.map(String::as_str))
    }

    pub fn admin(&self, args: &[&str]) -> CliOutput {
        let out = Command::new(&binaries().tollgated)
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(self.store().iter().flat_map(|u| ["--store", *u]))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tollgated admin");
        CliOutput::from(out)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a CLI run printed and how it exited.
pub struct CliOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for CliOutput {
    fn from(o: Output) -> Self {
        CliOutput {
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl CliOutput {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// The task run of `task_id` in an execution's `-o json` form.
pub fn task_run<'a>(exec: &'a Value, task_id: &str) -> &'a Value {
    exec["taskRuns"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["taskId"] == task_id))
        .unwrap_or_else(|| panic!("no task run `{task_id}` in {exec:#}"))
}

/// Asserts that a log line of execution `id` contains `needle`; shows the log when none does.
pub fn assert_logged(d: &Daemon, id: &str, needle: &str) {
    let lines = log_messages(d, id);
    assert!(
        lines.iter().any(|l| l.contains(needle)),
        "no log line of {id} contains `{needle}`: {lines:#?}"
    );
}

/// Log lines of an execution as printed by `tollgate logs ID -o json`.
pub fn log_messages(d: &Daemon, id: &str) -> Vec<String> {
    let out = d.cli(&["logs", id, "-o", "json"]);
    assert!(out.ok(), "logs failed:\n{out}");
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Runs real `curl` with `args`; returns the HTTP status and the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Polls `f` until it gives a value, for up to 20 s (a deadline, not a timed assertion).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
