//! The hot + archive store files (`tollgate.redb` + `archive.redb`) on a real daemon: finished
//! executions, their log lines and files, and old audit records move to the archive in the
//! background, and nothing a user can see changes: not after the move, not after `kill -9`
//! amid writes, not after a crash between the archive commit and the hot commit of a move.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, curl, log_messages};

const MOVED: &str = "moved history to archive.redb";
const HOLDING: &str = "archiver holding here";

/// Our own flow: a FILE input (stored with the execution), a log line about it, a FILE output.
const KEEPER: &str = r#"id: keeper
namespace: test
inputs:
  - id: doc
    type: FILE
tasks:
  - id: facts
    type: io.kestra.plugin.core.log.Log
    message: "kept {{ fileSize(inputs.doc) }} bytes: {{ read(inputs.doc) }}"
outputs:
  - id: o
    type: FILE
    value: "{{ inputs.doc }}"
"#;

fn options(extra: &[(&str, &str)]) -> DaemonOptions {
    let mut env: Vec<(String, String)> = [
        // Every finished execution moves at the next round; rounds 100 ms apart.
        ("TOLLGATE_ARCHIVE_AFTER_SECS", "0"),
        ("TOLLGATE_ARCHIVE_INTERVAL_MS", "100"),
        ("TOLLGATE_ARCHIVE_KEEP_AUDIT", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    DaemonOptions {
        env,
        ..Default::default()
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v:#}")).to_string()
}

fn wait_until(d: &Daemon, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not after 60 s; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Executions moved so far, summed over the daemon's log lines (every start appends to it).
fn moved(d: &Daemon) -> u64 {
    plain(&d.log())
        .lines()
        .filter(|l| l.contains(MOVED))
        .filter_map(|l| l.split("executions=").nth(1))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// The log without its colour codes (`ESC [ ... m`).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn scratch(d: &Daemon, name: &str, content: &[u8]) -> PathBuf {
    let dir = d.data_dir.parent().expect("temp").join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write scratch file");
    path
}

/// What a user sees of one execution: the whole execution, its log lines, and the content of
/// its FILE output when it has one.
fn seen(d: &Daemon, id: &str) -> (Value, Vec<String>, Option<String>) {
    let e = d.execution(id);
    let file = e["outputs"]["o"].as_str().map(|uri| {
        let (code, body) = curl(&[
            "-G",
            &format!("{}/api/v1/main/executions/{id}/file", d.server()),
            "--data-urlencode",
            &format!("path={uri}"),
        ]);
        assert_eq!(code, 200, "download of {uri}: {body}");
        body
    });
    (e, log_messages(d, id), file)
}

type Seen = BTreeMap<String, (Value, Vec<String>, Option<String>)>;

fn seen_all(d: &Daemon, ids: &[String]) -> Seen {
    ids.iter().map(|id| (id.clone(), seen(d, id))).collect()
}

/// The audit chain verifies; returns how many records it holds.
fn audit_verifies(d: &Daemon) -> u64 {
    let v = d.cli_json(&["audit", "--verify"]);
    assert_eq!(v["ok"], true, "audit chain: {v:#}");
    v["records"].as_u64().expect("records")
}

/// Finished executions (some with files), paused ones, and a resumed one: returns the ids of
/// all and of the paused ones.
fn history(d: &Daemon, tag: &str) -> (Vec<String>, Vec<String>) {
    d.apply_flow("keeper", KEEPER);
    let mut all = Vec::new();
    for i in 0..3 {
        let doc = scratch(d, &format!("{tag}{i}.txt"), format!("document {tag} {i}").as_bytes());
        let e = d.cli_json(&[
            "run",
            "test",
            "keeper",
            "--file",
            &format!("doc={}", doc.display()),
            "--wait",
        ]);
        assert_eq!(e["state"], "SUCCESS", "{e:#}");
        all.push(id_of(&e));
    }
    let mut paused = Vec::new();
    for i in 0..3 {
        let e = d.run_wait("test", "approval", &[&format!("requester={tag}{i}")]);
        assert_eq!(e["state"], "PAUSED", "{e:#}");
        all.push(id_of(&e));
        paused.push(id_of(&e));
    }
    let done = paused.remove(0);
    let out = d.cli(&["resume", &done, "--input", "approved=true", "--input", "reason=fine"]);
    assert!(out.ok(), "{out}");
    d.wait_state(&done, "SUCCESS");
    (all, paused)
}

fn resume_all(d: &Daemon, paused: &[String]) {
    for id in paused {
        let out = d.cli(&["resume", id, "--input", "approved=false", "--input", "reason=late"]);
        assert!(out.ok(), "{out}");
        d.wait_state(id, "SUCCESS");
        assert!(
            log_messages(d, id)
                .iter()
                .any(|l| l.contains("approved=false reason=late")),
            "{:?}",
            log_messages(d, id)
        );
    }
}

#[test]
fn history_moves_to_the_archive_and_survives_kill9_amid_writes() {
    let mut d = Daemon::start_with(options(&[]));
    if d.store_url.is_some() {
        return; // PostgreSQL keeps no archive file.
    }
    let (mut ids, paused) = history(&d, "a");
    // The four finished executions move.
    wait_until(&d, "4 executions archived", || moved(&d) >= 4);
    assert!(d.data_dir.join("archive.redb").exists());
    // /metrics counts both files (they only grow while the daemon runs).
    let on_disk = |f: &str| std::fs::metadata(d.data_dir.join(f)).map(|m| m.len()).unwrap_or(0);
    let files = on_disk("tollgate.redb") + on_disk("archive.redb");
    let (_, body) = curl(&[&format!("{}/metrics", d.server())]);
    let reported = body
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_store_bytes "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        reported.is_some_and(|b| b >= files),
        "tollgate_store_bytes counts both files ({files} bytes): {reported:?}"
    );
    let before = seen_all(&d, &ids);
    let records = audit_verifies(&d);

    // kill -9 while clients start executions: every acknowledged start must survive.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let server = d.server();
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (acked, stop, server) = (acked.clone(), stop.clone(), server.clone());
            let bin = tollgate_tests::binaries().tollgate.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = std::process::Command::new(&bin)
                        .args(["--server", &server, "run", "test", "approval", "-o", "json"])
                        .env_remove("TOLLGATE_TOKEN")
                        .output()
                        .expect("run tollgate");
                    match serde_json::from_slice::<Value>(&out.stdout) {
                        Ok(v) if out.status.success() => acked.lock().expect("lock").push(id_of(&v)),
                        _ => break,
                    }
                }
            })
        })
        .collect();
    wait_until(&d, "starts under way", || acked.lock().expect("lock").len() >= 6);
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer thread");
    }
    d.restart();

    assert_eq!(seen_all(&d, &ids), before, "history after kill -9");
    let acked = acked.lock().expect("lock").clone();
    for id in &acked {
        let e = d.execution(id);
        assert_eq!(
            e["id"].as_str(),
            Some(id.as_str()),
            "acknowledged start {id} survives: {e:#}"
        );
    }
    assert!(audit_verifies(&d) >= records);
    // Paused ones made before the crash still resume, and then move in turn.
    // Counted before the resumes: the archiver may move a resumed one before the next resume is
    // answered.
    let moved_before = moved(&d);
    resume_all(&d, &paused);
    wait_until(&d, "the resumed ones archived", || moved(&d) >= moved_before + 2);
    ids.extend(acked);
    let after = seen_all(&d, &ids);
    for id in &paused {
        assert_eq!(after[id].0["state"], "SUCCESS");
    }
    audit_verifies(&d);
    // A clean stop and start shows the same.
    d.stop();
    d.restart();
    assert_eq!(seen_all(&d, &ids), after);
    audit_verifies(&d);
}

#[test]
fn a_crash_between_the_archive_commit_and_the_hot_commit_loses_nothing() {
    let mut d = Daemon::start_with(options(&[("TOLLGATE_ARCHIVE_TEST_HOLD", "copied")]));
    if d.store_url.is_some() {
        return; // PostgreSQL keeps no archive file.
    }
    let (ids, paused) = history(&d, "b");
    // The first round copied what was finished then and stopped before its hot commit.
    wait_until(&d, "the archiver holding after its archive commit", || {
        d.log().contains(HOLDING)
    });
    let before = seen_all(&d, &ids);
    let records = audit_verifies(&d);
    d.kill9();
    d.options.env.retain(|(k, _)| k != "TOLLGATE_ARCHIVE_TEST_HOLD");
    d.restart();
    // Rows in both files read once, as they were.
    assert_eq!(seen_all(&d, &ids), before, "after a crash mid-move");
    assert_eq!(audit_verifies(&d), records);
    // The move is redone and completes.
    wait_until(&d, "archived after the restart", || moved(&d) >= 4);
    assert_eq!(seen_all(&d, &ids), before, "after the redone move");
    resume_all(&d, &paused);
    audit_verifies(&d);
}

/// `tollgated compact` on a stopped daemon's data dir whose history is still in tollgate.redb
/// (the archiver never got to it): it moves the finished executions to archive.redb, shrinks
/// tollgate.redb to its live pages, and the restarted daemon shows the same. While the daemon
/// runs it refuses, names the reason, and changes nothing.
#[test]
fn tollgated_compact_moves_history_and_shrinks_the_hot_file_of_a_stopped_daemon() {
    let mut d = Daemon::start_with(options(&[("TOLLGATE_ARCHIVE_AFTER_SECS", "1000000")]));
    if d.store_url.is_some() {
        return; // PostgreSQL keeps no redb files.
    }
    let (ids, paused) = history(&d, "c");
    let before = seen_all(&d, &ids);
    let records = audit_verifies(&d);
    let data_dir = d.data_dir.to_str().expect("utf-8").to_string();
    let compact = || {
        tollgate_tests::CliOutput::from(
            std::process::Command::new(&tollgate_tests::binaries().tollgated)
                .args(["compact", "--data-dir", &data_dir])
                .env("TOLLGATE_ARCHIVE_AFTER_SECS", "0")
                .output()
                .expect("run tollgated compact"),
        )
    };
    let refused = compact();
    assert!(!refused.ok(), "compact beside a running daemon: {refused}");
    assert!(refused.stderr.contains("is the daemon still running"), "{refused}");
    assert_eq!(moved(&d), 0);
    d.stop();
    let hot = d.data_dir.join("tollgate.redb");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).expect("file size");
    let hot_before = size(&hot);
    let out = compact();
    assert!(out.ok(), "{out}");
    assert!(
        out.stdout.contains("moved to archive.redb: 4 finished executions"),
        "{out}"
    );
    assert!(size(&hot) <= hot_before, "{out}");
    d.restart();
    assert_eq!(seen_all(&d, &ids), before, "after compact");
    assert_eq!(audit_verifies(&d), records);
    resume_all(&d, &paused);
    audit_verifies(&d);
}
