//! A real PostgreSQL server for the tests: the distribution's `initdb` and `postgres` in a temp
//! dir on a free loopback port (no docker), started once per test process and ended with it
//! (its parent-death signal is set, so a crashed test run leaves no server behind).
//!
//! `TOLLGATE_TEST_STORE=postgres` makes every [`crate::Daemon`] run on its own database of this
//! server instead of redb, so the existing suites run unchanged against both stores.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::{Duration, Instant};

/// The test server: where it listens and where its programs are.
pub struct PgServer {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    pid: std::sync::Mutex<Option<u32>>,
    /// Whether commits reach the disk (benchmarks); tests run without, as nothing crashes the
    /// server itself.
    fsync: bool,
    dir: tempfile::TempDir,
}

/// Whether the suites should run on PostgreSQL (`TOLLGATE_TEST_STORE=postgres`).
pub fn wanted() -> bool {
    std::env::var("TOLLGATE_TEST_STORE").is_ok_and(|s| s.eq_ignore_ascii_case("postgres"))
}

/// The directory with `initdb`, `postgres` and `createdb`: the newest
/// /usr/lib/postgresql/*/bin (Debian), else the one holding `initdb` on PATH.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("postgres").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = found.pop() {
        return dir;
    }
    let which = Command::new("sh").arg("-c").arg("command -v initdb").output().ok();
    let path = which
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty())
        .expect("PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)");
    Path::new(&std::fs::canonicalize(path).expect("initdb path"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_server_user(program: &Path, pdeathsig: bool) -> Command {
    let mut cmd = Command::new("setpriv");
    if is_root() {
        cmd.args(["--reuid=postgres", "--regid=postgres", "--clear-groups"]);
    }
    if pdeathsig {
        cmd.arg("--pdeathsig=TERM");
    }
    cmd.arg("--").arg(program);
    cmd
}

/// Names the test process a server's temp dir belongs to.
const OWNER_FILE: &str = "owner.pid";

/// Removes the temp dirs of servers whose test process has ended. The shared server lives in a
/// static, which Rust never drops, so its dir (hundreds of MB) outlives the process: each run
/// clears what earlier runs left. Dirs without an owner file are left alone.
fn sweep_orphaned_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("tollgate-pg"));
        if !named {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let alive = owner
            .trim()
            .parse::<u32>()
            .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The server of this test process, started on first use.
pub fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> PgServer {
    PgServer::start_own()
}

/// Starts `postgres` on `data` from a thread that lives as long as the server (the parent-death
/// signal follows the spawning thread, and the server must outlive the test that first asked
/// for it). Its pid.
fn spawn_postgres(bin: &Path, data: &Path, port: u16, dir: &Path, fsync: bool) -> u32 {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .expect("log");
    let program = bin.join("postgres");
    let (dir, data) = (dir.to_path_buf(), data.to_path_buf());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = as_server_user(&program, true)
            .arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=400"])
            .args(["-c", if fsync { "fsync=on" } else { "fsync=off" }])
            // Extra settings for measuring (`TOLLGATE_TEST_PG_SETTINGS="a=1;b=2"`, e.g.
            // `shared_preload_libraries=pg_stat_statements`).
            .args(
                std::env::var("TOLLGATE_TEST_PG_SETTINGS")
                    .unwrap_or_default()
                    .split(';')
                    .filter(|s| !s.trim().is_empty())
                    .flat_map(|s| ["-c".to_string(), s.trim().to_string()]),
            )
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn();
        match child {
            Ok(mut c) => {
                let _ = tx.send(Ok(c.id()));
                // Reaped here, so a stopped server is gone (not a zombie) for `halt`.
                let _ = c.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        }
    });
    rx.recv().expect("server thread").expect("spawn postgres")
}

impl PgServer {
    /// A server of the caller's own (a test that stops and starts it), on a new cluster.
    pub fn start_own() -> PgServer {
        PgServer::start_own_with(false)
    }

    /// [`PgServer::start_own`], with `fsync` on or off.
    pub fn start_own_with(fsync: bool) -> PgServer {
        let bin = bin_dir();
        sweep_orphaned_dirs();
        let dir = tempfile::Builder::new()
            .prefix("tollgate-pg")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string()).expect("write the owner file");
        let data = dir.path().join("data");
        if is_root() {
            let ok = Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand {} to the postgres user", dir.path().display());
        }
        let out = as_server_user(&bin.join("initdb"), false)
            .arg("-D")
            .arg(&data)
            .args(["-U", "tollgate", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .current_dir(dir.path())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let server = PgServer {
            port: crate::free_port(),
            bin,
            data,
            pid: std::sync::Mutex::new(None),
            fsync,
            dir,
        };
        server.resume();
        server
    }

    /// CPU seconds the server has used so far (user + system): the postmaster, the children it
    /// has reaped (ended backends) and its live children (backends, WAL writer, ...), read from
    /// `/proc`; 0 when it is not running. For benchmarks: CPU per execution of the database.
    pub fn cpu_seconds(&self) -> f64 {
        let Some(pid) = *self.pid.lock().unwrap_or_else(|p| p.into_inner()) else {
            return 0.0;
        };
        let mut total = proc_ticks(pid, true).unwrap_or(0);
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if proc_parent(child) == Some(pid) {
                    total += proc_ticks(child, false).unwrap_or(0);
                }
            }
        }
        total as f64 / 100.0
    }

    /// Starts the server (again) and waits until it answers.
    pub fn resume(&self) {
        let pid = spawn_postgres(&self.bin, &self.data, self.port, self.dir.path(), self.fsync);
        *self.pid.lock().unwrap_or_else(|p| p.into_inner()) = Some(pid);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "tollgate",
                    "-d",
                    "postgres",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Restarts the server with TLS on (`cert`/`key` PEM files) and every TCP connection that is
    /// not TLS refused by `pg_hba.conf`.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        self.halt();
        let (crt, k) = (self.data.join("server.crt"), self.data.join("server.key"));
        std::fs::copy(cert, &crt).expect("copy the server certificate");
        std::fs::copy(key, &k).expect("copy the server key");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).expect("chmod the key");
        }
        if is_root() {
            for f in [&crt, &k] {
                let ok = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(f)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "cannot hand {} to the postgres user", f.display());
            }
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str("\nssl = on\n");
        std::fs::write(&conf, text).expect("write postgresql.conf");
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("write pg_hba.conf");
        self.resume();
    }

    /// Kills the server with SIGKILL (no shutdown checkpoint, its shared WAL buffers are lost)
    /// and waits until its processes are gone; [`PgServer::resume`] then recovers from the WAL.
    pub fn crash(&self) {
        let Some(pid) = self.pid.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        // Its backends and helpers (children) notice their postmaster's death and exit; a new
        // server refuses to start while one of them still holds the shared memory.
        let children: Vec<String> = Command::new("pgrep")
            .args(["-P", &pid.to_string()])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in std::iter::once(pid.to_string()).chain(children) {
            // Gone, or a zombie nobody reaped (holds no shared memory any more).
            let alive = |p: &str| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|st| st.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
            };
            while alive(&p) {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL processes did not exit within 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Stops the server (fast shutdown: clients are disconnected) and waits until it is gone.
    pub fn halt(&self) {
        let Some(pid) = self.pid.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "PostgreSQL did not stop within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn createdb(&self, name: &str) -> Result<(), String> {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "tollgate", name])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// A new empty database; its URL.
    pub fn new_database(&self) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        self.createdb(&name).expect("createdb");
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://tollgate@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with `psql` (tests that play the operator).
    pub fn psql(&self, db_url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .arg(db_url)
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A new database on the test server (started on first use).
pub fn new_database() -> String {
    server().new_database()
}

/// The fields of `/proc/PID/stat` after the parenthesised command name (field 3 onwards).
fn proc_stat(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(s.rsplit_once(')')?.1.split_whitespace().map(str::to_string).collect())
}

/// A process's parent pid.
fn proc_parent(pid: u32) -> Option<u32> {
    proc_stat(pid)?.get(1)?.parse().ok()
}

/// A process's CPU clock ticks (utime + stime, fields 14 and 15), with `reaped` also those of
/// its waited-for children (cutime + cstime, 16 and 17).
fn proc_ticks(pid: u32, reaped: bool) -> Option<u64> {
    let f = proc_stat(pid)?;
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(n(11) + n(12) + if reaped { n(13) + n(14) } else { 0 })
}
