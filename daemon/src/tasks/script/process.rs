//! One child process in its own process group: its output read line by line as it comes, a
//! timeout and a stop signal that end the whole group (SIGTERM, then SIGKILL), and nothing of
//! the group left running once it is done.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// How long the group has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);
/// How often pending lines are handed on while the process runs.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A longer "line" without a newline is cut into pieces of this many bytes.
const MAX_LINE: usize = 16 * 1024;

/// What to run.
pub struct Spec {
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment of the process (nothing else is inherited).
    pub env: Vec<(String, String)>,
    pub dir: PathBuf,
    pub timeout: Option<Duration>,
    /// Where the group id is recorded while it runs, so that a restarted daemon can end a group
    /// a crash left behind.
    pub pid_file: PathBuf,
    /// Run when the group is stopped early (e.g. `docker kill <name>`).
    pub on_stop: Option<Vec<String>>,
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    Cancelled,
}

/// Receives the output as it comes.
pub trait LineSink {
    fn line(&mut self, stderr: bool, text: String);
    /// Called at least every [`FLUSH_EVERY`] while lines come, and at the end.
    fn flush(&mut self);
}

/// Kills the group when dropped (the daemon stopping, the job's future dropped).
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
    }
}

fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Runs `spec` to its end; `Err` when it cannot be started.
pub async fn run(
    spec: Spec,
    sink: &mut (dyn LineSink + Send),
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<End, String> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            // The group leader dies with the daemon (kill -9 included); what it started is ended
            // by the next daemon start from the pid file.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", spec.program))?;
    let pgid = child.id().map(|p| p as i32).unwrap_or(0);
    let guard = GroupGuard(pgid);
    let _ = std::fs::write(&spec.pid_file, format!("{pgid} {}", start_time(pgid).unwrap_or(0)));

    let (tx, mut rx) = mpsc::channel::<(bool, String)>(1024);
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(out, false, tx.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(err, true, tx.clone())));
    }
    drop(tx);

    let deadline = spec.timeout.map(|t| tokio::time::Instant::now() + t);
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let cancelled = async {
        // A closed channel means nobody can cancel any more: wait forever.
        if cancel.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(cancelled);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lines_open = true;
    let mut early: Option<End> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            line = rx.recv(), if lines_open => match line {
                Some((stderr, text)) => sink.line(stderr, text),
                None => lines_open = false,
            },
            _ = tick.tick() => sink.flush(),
            _ = &mut timeout, if early.is_none() => {
                early = Some(End::TimedOut);
                stop(&spec, pgid).await;
            }
            _ = &mut cancelled, if early.is_none() => {
                early = Some(End::Cancelled);
                stop(&spec, pgid).await;
            }
        }
    };
    // Whatever the script left running in its group ends with it; its pipes then close.
    signal_group(pgid, libc::SIGKILL);
    let drain = async {
        while let Some((stderr, text)) = rx.recv().await {
            sink.line(stderr, text);
        }
    };
    // A process that left the group may still hold a pipe open: do not wait for it forever.
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    for r in readers {
        r.abort();
    }
    sink.flush();
    drop(guard);
    let _ = std::fs::remove_file(&spec.pid_file);
    if let Some(end) = early {
        return Ok(end);
    }
    let status = status.map_err(|e| format!("cannot wait for `{}`: {e}", spec.program))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => End::Exited(code),
        (None, Some(sig)) => End::Signalled(sig),
        (None, None) => End::Exited(-1),
    })
}

/// SIGTERM to the group, SIGKILL after [`GRACE`] if its leader is still there.
async fn stop(spec: &Spec, pgid: i32) {
    if let Some(cmd) = &spec.on_stop
        && let Some((program, args)) = cmd.split_first()
    {
        let _ = tokio::time::timeout(
            GRACE,
            tokio::process::Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status(),
        )
        .await;
    }
    signal_group(pgid, libc::SIGTERM);
    let pgid_copy = pgid;
    tokio::spawn(async move {
        tokio::time::sleep(GRACE).await;
        signal_group(pgid_copy, libc::SIGKILL);
    });
}

/// Reads `stream` and sends it on line by line (without the line end), cutting over-long lines.
async fn read_lines(mut stream: impl AsyncRead + Unpin, stderr: bool, tx: mpsc::Sender<(bool, String)>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if tx.send((stderr, text_of(&line))).await.is_err() {
                return;
            }
        }
        if buf.len() > MAX_LINE {
            let line: Vec<u8> = std::mem::take(&mut buf);
            if tx.send((stderr, text_of(&line))).await.is_err() {
                return;
            }
        }
    }
    if !buf.is_empty() {
        let _ = tx.send((stderr, text_of(&buf))).await;
    }
}

fn text_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// A process's start time (clock ticks since boot), to tell it from a later one with its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid).and_then(|f| f.get(19).and_then(|s| s.parse().ok()))
}

/// The fields of /proc/PID/stat after the command name (field 3 is index 0).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Ends what is left of a group recorded by a daemon that crashed: every process of group
/// `pgid` started no earlier than its leader was.
pub fn end_leftover_group(pgid: i32, leader_start: u64) {
    if pgid <= 1 || leader_start == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Some(fields) = stat_fields(pid) else { continue };
        let pgrp = fields.get(2).and_then(|s| s.parse::<i32>().ok());
        let start = fields.get(19).and_then(|s| s.parse::<u64>().ok());
        if pgrp == Some(pgid) && start.is_some_and(|s| s >= leader_start) {
            // SAFETY: kill(2) on a pid; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
