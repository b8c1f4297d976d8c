//! The PostgreSQL store against a real PostgreSQL server (tests/src/postgres.rs starts one from
//! the distribution's packages): migrations, several daemons on one database, lease takeover
//! after `kill -9`, a database outage, and copying a redb data dir with `tollgated migrate`.
//! The engine, access-control and reliability suites run on PostgreSQL too, unchanged, with
//! `TOLLGATE_TEST_STORE=postgres` (see .ci/run).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate_tests::{Daemon, DaemonOptions, binaries, log_messages, postgres, task_run, wait_for};

/// The same secret key for every daemon of a database (sealed secrets and sessions must open
/// on any of them): base64 of 32 bytes.
const SHARED_KEY: &str = "dG9sbGdhdGUtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

fn on(url: &str) -> DaemonOptions {
    DaemonOptions {
        extra_args: vec!["--store".into(), url.to_string()],
        env: vec![("TOLLGATE_SECRET_KEY".into(), SHARED_KEY.into())],
        ..DaemonOptions::default()
    }
}

fn tollgated(args: &[&str]) -> tollgate_tests::CliOutput {
    let out = Command::new(&binaries().tollgated)
        .args(args)
        .output()
        .expect("run tollgated");
    tollgate_tests::CliOutput::from(out)
}

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused_naming_the_database() {
    let server = postgres::server();
    let url = server.new_database();
    let mut d = Daemon::start_with(on(&url));
    let first = id_of(&d.run_wait("test", "approval", &[]));
    d.stop();
    // A second start finds the schema current: nothing applied again, nothing lost.
    d.restart();
    assert_eq!(
        server.psql(
            &url,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM tollgate_schema"
        ),
        "1,2,3"
    );
    assert_eq!(d.execution(&first)["state"], "PAUSED");
    d.stop();
    // A newer tollgated migrated it: this one refuses, naming the database, never its password.
    server.psql(&url, "INSERT INTO tollgate_schema (version) VALUES (99)");
    let with_password = url.replacen("tollgate@", "tollgate:hunter2@", 1);
    let out = tollgated(&[
        "serve",
        "--data-dir",
        d.data_dir.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
        "--store",
        &with_password,
    ]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("schema version 99"), "{out}");
    assert!(out.stderr.contains(&url), "the database is named: {out}");
    assert!(
        !out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"),
        "{out}"
    );
}

/// Resumes of one execution through one daemon land in one write batch, which reads the
/// execution once for all of them (the batch's rows are read together): one wins, the others
/// see it resumed, none sees it missing.
#[test]
fn concurrent_resumes_of_one_execution_on_one_daemon_one_wins_none_sees_it_missing() {
    let url = postgres::new_database();
    let d = Daemon::start_with(on(&url));
    for _round in 0..3 {
        let id = id_of(&d.run_wait("test", "approval", &[]));
        let outcomes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (d, id) = (&d, &id);
                    s.spawn(move || {
                        let reason = format!("reason={i}");
                        d.cli(&["resume", id, "--input", "approved=true", "--input", &reason])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
        });
        let said: Vec<String> = outcomes.iter().map(|o| o.to_string()).collect();
        assert_eq!(outcomes.iter().filter(|o| o.ok()).count(), 1, "{said:#?}");
        for loser in outcomes.iter().filter(|o| !o.ok()) {
            assert!(loser.stdout.contains("is not paused"), "{loser}");
        }
        d.wait_state(&id, "SUCCESS");
    }
}

#[test]
fn three_daemons_on_one_database_one_resume_wins_and_timers_fire_once() {
    let url = postgres::new_database();
    let daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on(&url))).collect();
    let id = id_of(&daemons[0].run_wait("test", "approval", &[]));
    // Every daemon answers for it.
    for d in &daemons {
        assert_eq!(d.execution(&id)["state"], "PAUSED");
    }
    let outcomes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (d, id) = (&daemons[i % 3], &id);
                s.spawn(move || {
                    let reason = format!("reason={i}");
                    d.cli(&["resume", id, "--input", "approved=true", "--input", &reason])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
    });
    let winners = outcomes.iter().filter(|o| o.ok()).count();
    let said: Vec<String> = outcomes.iter().map(|o| o.to_string()).collect();
    assert_eq!(winners, 1, "exactly one resume may win: {said:#?}");
    for loser in outcomes.iter().filter(|o| !o.ok()) {
        assert!(loser.stdout.contains("is not paused"), "{loser}");
    }
    let e = daemons[2].wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "decide")["state"], "SUCCESS");
    let logs = log_messages(&daemons[1], &id);
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("decision for")).count(),
        1,
        "{logs:?}"
    );

    // Timed pauses started through one daemon: all three watch the timers, one fires each.
    let ids: Vec<String> = (0..6)
        .map(|i| id_of(&daemons[i % 3].run_nowait("test", "expire_resume", &[])))
        .collect();
    for id in &ids {
        let e = daemons[(ids.len()) % 3].wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "gate")["state"], "SUCCESS");
        let logs = log_messages(&daemons[0], id);
        assert_eq!(
            logs.iter().filter(|l| l.starts_with("after the gate")).count(),
            1,
            "the expiry fired once: {logs:?}"
        );
    }
}

/// The value of `series` in a daemon's `/metrics` text.
fn metric(d: &Daemon, series: &str) -> Option<f64> {
    let (_, body) = tollgate_tests::curl(&[&format!("{}/metrics", d.server())]);
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls until every daemon's `/metrics` says `series` is `want` (the stored state counts,
/// which every batch of every daemon updates through its write cache).
fn wait_metric(daemons: &[Daemon], series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for d in daemons {
        while metric(d, series) != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{series} is {:?}, not {want}",
                metric(d, series)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Resumes of different executions, each through another daemon than the one that started it,
/// all at once over 3 daemons, two rounds: every one wins, once; the state counts stay exact
/// (each daemon's write cache forgets or re-reads only the rows the others changed, and the
/// counts row is one of them) and the audit chain, appended to by all three, verifies.
#[test]
fn resumes_of_different_executions_over_three_daemons_all_win_and_the_audit_chain_verifies() {
    let url = postgres::new_database();
    let daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on(&url))).collect();
    let mut done = metric(&daemons[0], "tollgate_executions{state=\"SUCCESS\"}").unwrap_or(0.0) as usize;
    for round in 0..2 {
        let n = 12;
        let ids: Vec<String> = (0..n)
            .map(|i| id_of(&daemons[i % 3].run_wait("test", "approval", &[])))
            .collect();
        wait_metric(&daemons, "tollgate_executions{state=\"PAUSED\"}", n as f64);
        let resumes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let d = &daemons[(i + 1 + round) % 3];
                    s.spawn(move || d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=spread"]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
        });
        for o in &resumes {
            assert!(o.ok(), "every resume of its own execution wins: {o}");
        }
        for (i, id) in ids.iter().enumerate() {
            let d = &daemons[(i + 2) % 3];
            d.wait_state(id, "SUCCESS");
            let logs = log_messages(d, id);
            assert_eq!(
                logs.iter().filter(|l| l.starts_with("decision for")).count(),
                1,
                "{logs:?}"
            );
        }
        done += n;
        wait_metric(&daemons, "tollgate_executions{state=\"SUCCESS\"}", done as f64);
        wait_metric(&daemons, "tollgate_executions{state=\"PAUSED\"}", 0.0);
    }
    for d in &daemons {
        let verify = d.cli(&["audit", "--verify"]);
        assert!(verify.ok(), "{verify}");
    }
}

#[test]
fn logs_followed_on_one_daemon_show_a_decision_made_through_another() {
    let url = postgres::new_database();
    let a = Daemon::start_with(on(&url));
    let b = Daemon::start_with(on(&url));
    let id = id_of(&a.run_wait("test", "approval", &[]));
    let mut follower = Command::new(&binaries().tollgate)
        .args(["--server", &b.server(), "logs", &id, "-f"])
        .env_remove("TOLLGATE_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tollgate logs -f");
    let stdout = follower.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_line = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => continue,
                Err(_) => panic!("`logs -f` on the other daemon never printed `{needle}`"),
            }
        }
    };
    wait_line("request from");
    let out = a.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=via-a"]);
    assert!(out.ok(), "{out}");
    wait_line("reason=via-a");
    let status = follower.wait().expect("follower exit");
    assert!(status.success(), "`logs -f` ends when the execution does");
}

/// With polling of the change feed slowed to 10 minutes, only the commit's NOTIFY can bring a
/// decision made through daemon A to a Watch on daemon B within the deadline (Watch has no
/// re-read of its own).
#[test]
fn a_change_reaches_another_daemon_by_notification_without_waiting_for_a_poll() {
    use tollgate_proto::v1 as pb;
    let mut options = on(&postgres::new_database());
    options.env.push(("TOLLGATE_CHANGE_POLL_MS".into(), "600000".into()));
    let a = Daemon::start_with(options.clone());
    let b = Daemon::start_with(options);
    let id = id_of(&a.run_wait("test", "approval", &[]));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let seen = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(b.server())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to daemon B");
        let mut watch = pb::executions_client::ExecutionsClient::new(channel)
            .watch(pb::WatchRequest::default())
            .await
            .expect("watch on B")
            .into_inner();
        let out = a.cli(&["resume", &id, "--input", "approved=true", "--input", "reason=via-a"]);
        assert!(out.ok(), "{out}");
        tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(ev)) = watch.message().await {
                if ev.execution.is_some_and(|e| e.id == id && e.state != "PAUSED") {
                    return true;
                }
            }
            false
        })
        .await
    });
    assert_eq!(seen, Ok(true), "B's Watch saw the decision made through A");
}

/// What a test server does with its n-th request (from 0).
enum Reply {
    /// Never answers (the daemon running it is killed meanwhile).
    Hold,
    /// 200 after this long.
    OkAfter(Duration),
}

/// An HTTP server on loopback that counts its requests and answers each as `reply` says.
fn counting_server(reply: impl Fn(usize) -> Reply + Send + 'static) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let delay = match reply(n) {
                Reply::Hold => {
                    held.push(stream);
                    continue;
                }
                Reply::OkAfter(delay) => delay,
            };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            });
        }
    });
    (port, hits)
}

/// A server whose first request never gets an answer and whose later requests get 200.
fn held_then_ok() -> (u16, Arc<AtomicUsize>) {
    counting_server(|n| {
        if n == 0 {
            Reply::Hold
        } else {
            Reply::OkAfter(Duration::ZERO)
        }
    })
}

#[test]
fn kill_9_of_a_daemon_hands_its_running_task_run_to_another_within_the_lease() {
    let url = postgres::new_database();
    let (port, hits) = held_then_ok();
    let mut a = Daemon::start_with(on(&url));
    let b = Daemon::start_with(on(&url));
    a.apply_flow(
        "slow_call",
        &format!(
            "id: slow_call\nnamespace: test.pg\ntasks:\n  - id: call\n    type: io.kestra.plugin.core.http.Request\n    uri: \"http://127.0.0.1:{port}/slow\"\n    options:\n      readTimeout: PT60S\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: \"after the call\"\n"
        ),
    );
    // A paused execution on the same database must be left alone by the takeover.
    let paused = id_of(&a.run_wait("test", "approval", &[]));
    let id = id_of(&a.run_nowait("test.pg", "slow_call", &[]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the call never reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill9();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(40);
    loop {
        let e = b.execution(&id);
        if e["state"] == "SUCCESS" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no daemon took the task run over: {e:#}\nlog:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = killed.elapsed();
    eprintln!("takeover after kill -9: {:.1} s", took.as_secs_f64());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the call ran again once, on the survivor"
    );
    let logs = log_messages(&b, &id);
    assert!(logs.iter().any(|l| l.contains("running it again")), "{logs:?}");
    assert!(logs.iter().any(|l| l == "after the call"), "{logs:?}");
    assert_eq!(
        b.execution(&paused)["state"],
        "PAUSED",
        "the paused execution is untouched"
    );
}

/// A server that answers every request with 200 after `delay`.
fn delayed_ok(delay: Duration) -> (u16, Arc<AtomicUsize>) {
    counting_server(move |_| Reply::OkAfter(delay))
}

/// Two daemons run task runs of one execution (A started it; a decision through B dispatched
/// the rest). When A is killed, the survivor re-runs A's task run, and not the one B is still
/// running: leases are per task run, not per execution.
#[test]
fn a_takeover_reruns_only_the_task_runs_of_the_daemon_that_stopped() {
    let url = postgres::new_database();
    let (held, held_hits) = held_then_ok();
    let (slow, slow_hits) = delayed_ok(Duration::from_secs(15));
    let mut a = Daemon::start_with(on(&url));
    let b = Daemon::start_with(on(&url));
    a.apply_flow(
        "two_runners",
        &format!(
            "id: two_runners\nnamespace: test.pg\ntasks:\n  - id: both\n    type: io.kestra.plugin.core.flow.Parallel\n    tasks:\n      - id: on_a\n        type: io.kestra.plugin.core.http.Request\n        uri: \"http://127.0.0.1:{held}/a\"\n        options:\n          readTimeout: PT60S\n      - id: branch\n        type: io.kestra.plugin.core.flow.Sequential\n        tasks:\n          - id: gate\n            type: io.kestra.plugin.core.flow.Pause\n          - id: on_b\n            type: io.kestra.plugin.core.http.Request\n            uri: \"http://127.0.0.1:{slow}/b\"\n            options:\n              readTimeout: PT60S\n"
        ),
    );
    let id = id_of(&a.run_nowait("test.pg", "two_runners", &[]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while held_hits.load(Ordering::SeqCst) == 0 || task_run(&a.execution(&id), "gate")["state"] != "PAUSED" {
        assert!(Instant::now() < deadline, "A never ran on_a and paused at the gate");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = b.cli(&["resume", &id]);
    assert!(out.ok(), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while slow_hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "B never ran on_b");
        std::thread::sleep(Duration::from_millis(50));
    }
    a.kill9();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let e = b.execution(&id);
        if e["state"] == "SUCCESS" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the execution never ended: {e:#}\nlog:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        held_hits.load(Ordering::SeqCst),
        2,
        "A's task run ran again on the survivor"
    );
    assert_eq!(
        slow_hits.load(Ordering::SeqCst),
        1,
        "B's own task run, still running, was not run again"
    );
}

#[test]
fn a_database_outage_names_the_database_and_the_daemon_reconnects_by_itself() {
    let server = postgres::PgServer::start_own();
    let url = server.new_database();
    let d = Daemon::start_with(on(&url));
    let before = id_of(&d.run_wait("test", "approval", &[]));
    server.halt();
    let out = d.cli(&["run", "test", "approval"]);
    assert!(!out.ok(), "{out}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains(&url) && said.contains("unavailable"), "{out}");
    server.resume();
    // Back without a restart of the daemon: calls work again and nothing acknowledged is lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let out = d.cli(&["run", "test", "approval", "-o", "json"]);
        if out.ok() {
            break id_of(&serde_json::from_str(&out.stdout).expect("json"));
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not reconnect: {out}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(d.execution(&before)["state"], "PAUSED");
    d.wait_state(&after, "PAUSED");
    let out = d.cli(&[
        "resume",
        &before,
        "--input",
        "approved=true",
        "--input",
        "reason=after-outage",
    ]);
    assert!(out.ok(), "{out}");
    d.wait_state(&before, "SUCCESS");
}

/// A write transaction commits asynchronously (the write lock is released before the WAL
/// flush) and the writer answers only after the synchronous statement that flushes it: resumes
/// answered just before PostgreSQL is killed with SIGKILL (its unflushed WAL buffers lost) are
/// all there after it recovers.
#[test]
fn resumes_acknowledged_before_postgresql_is_killed_survive_its_recovery() {
    let server = postgres::PgServer::start_own();
    let url = server.new_database();
    let mut d = Daemon::start_with(on(&url));
    let ids: Vec<String> = (0..4).map(|_| id_of(&d.run_wait("test", "approval", &[]))).collect();
    for id in &ids {
        let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=flushed"]);
        assert!(out.ok(), "{out}");
    }
    server.crash();
    server.resume();
    // Steps the daemon took during the crash may have failed: restart it so it recovers what
    // the database holds, then every acknowledged resume runs to its end.
    d.kill9();
    d.restart();
    for id in &ids {
        let e = d.wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "decide")["state"], "SUCCESS");
    }
}

#[test]
fn migrate_copies_a_redb_data_dir_and_the_audit_chain_still_verifies() {
    let mut old = Daemon::start_with(DaemonOptions {
        env: vec![("TOLLGATE_SECRET_KEY".into(), SHARED_KEY.into())],
        extra_args: vec!["--store".into(), "redb".into()],
        ..DaemonOptions::default()
    });
    let (done, waiting) = one_finished_and_one_paused(&old);
    assert!(old.cli(&["audit", "--verify"]).ok());
    old.stop();

    let url = postgres::new_database();
    migrate(&old, &url);
    // Copying twice would mix two histories: refused.
    let again = tollgated(&["migrate", "--from", old.data_dir.to_str().expect("utf-8"), "--to", &url]);
    assert!(!again.ok() && again.stderr.contains("already holds data"), "{again}");
    assert_copied(&url, &done, &waiting, "copied");
}

/// What the migrate tests copy: a finished execution with its log lines and a paused one.
fn one_finished_and_one_paused(old: &Daemon) -> (String, String) {
    let done = id_of(&old.run_wait("test", "crashy", &["n=7"]));
    assert!(old.cli(&["resume", &done]).ok());
    old.wait_state(&done, "SUCCESS");
    let waiting = id_of(&old.run_wait("test", "approval", &[]));
    (done, waiting)
}

/// `tollgated migrate` from `old`'s data dir to `url`, which must succeed with the audit chain
/// verified.
fn migrate(old: &Daemon, url: &str) {
    let out = tollgated(&["migrate", "--from", old.data_dir.to_str().expect("utf-8"), "--to", url]);
    assert!(out.ok(), "{out}");
    assert!(out.stdout.contains("audit chain verifies"), "{out}");
}

/// A daemon on `url` holds what [`one_finished_and_one_paused`] left: the finished execution
/// and its log lines, the pause still waiting, an audit chain that verifies; and flows came
/// with their revisions, so the copied pause still resumes.
fn assert_copied(url: &str, done: &str, waiting: &str, reason: &str) {
    let d = Daemon::start_with(on(url));
    assert_eq!(d.execution(done)["state"], "SUCCESS");
    let logs = log_messages(&d, done);
    assert!(logs.iter().any(|l| l == "four 7"), "{logs:?}");
    assert_eq!(d.execution(waiting)["state"], "PAUSED");
    let verify = d.cli(&["audit", "--verify"]);
    assert!(verify.ok(), "{verify}");
    let reason = format!("reason={reason}");
    assert!(
        d.cli(&["resume", waiting, "--input", "approved=true", "--input", &reason])
            .ok()
    );
    d.wait_state(waiting, "SUCCESS");
}

/// A redb daemon killed while its changes were only in the journal (its flush held open, so
/// nothing reached tollgate.redb): `migrate` replays the journal before it copies, and every
/// acknowledged change arrives in PostgreSQL with the audit chain intact.
#[test]
fn migrate_copies_what_a_killed_daemon_left_only_in_its_journal() {
    let mut old = Daemon::start_with(DaemonOptions {
        env: vec![
            ("TOLLGATE_SECRET_KEY".into(), SHARED_KEY.into()),
            ("TOLLGATE_TEST_FLUSH_HOLD_MS".into(), "600000".into()),
        ],
        extra_args: vec!["--store".into(), "redb".into()],
        ..DaemonOptions::default()
    });
    let (done, waiting) = one_finished_and_one_paused(&old);
    wait_for("a flush held open", || {
        old.log().contains("flush holding").then_some(())
    });
    old.kill9();
    let journal = old.data_dir.join("journal");
    let segments = std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert!(
        segments > 0,
        "the killed daemon left its changes in {}",
        journal.display()
    );

    let url = postgres::new_database();
    migrate(&old, &url);
    assert_copied(&url, &done, &waiting, "replayed");
}

/// A xorshift step (seeded from the clock and printed, so a failing run can be told apart).
fn next(state: &mut u64, bound: u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % bound
}

/// Load over 3 daemons on one database while one of them, at random, is `kill -9`ed in the middle
/// of resumes and started again, round after round. Afterwards every daemon agrees that: every
/// acknowledged start exists, every acknowledged resume took effect exactly once with its own
/// values, a resume whose answer was lost either took effect once or not at all, and what nobody
/// resumed is still PAUSED (the same invariants as reliability.rs on one daemon).
#[test]
fn crash_soak_over_three_daemons_loses_nothing_acknowledged() {
    let url = postgres::new_database();
    let mut daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on(&url))).collect();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    println!("soak seed {seed:#x}");
    // id -> the reason of its acknowledged resume; lost answers and untouched ones apart.
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut unknown: Vec<(String, String)> = Vec::new();
    let mut untouched: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut paused = Vec::new();
        for _ in 0..6 {
            let d = &daemons[next(&mut seed, 3) as usize];
            let out = d.cli(&["run", "test", "approval", "--wait", "-o", "json"]);
            assert!(out.ok(), "a start on a live daemon is acknowledged: {out}");
            let e: serde_json::Value = serde_json::from_str(&out.stdout).expect("execution JSON");
            assert_eq!(e["state"], "PAUSED", "{e:#}");
            paused.push(id_of(&e));
        }
        // Two of each round are left alone; the others are resumed through random daemons while
        // the victim dies.
        untouched.extend(paused.drain(..2));
        let victim = next(&mut seed, 3) as usize;
        let pid = daemons[victim].pid().expect("victim runs");
        let picks: Vec<usize> = paused.iter().map(|_| next(&mut seed, 3) as usize).collect();
        let outcomes: Vec<(String, String, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = paused
                .iter()
                .zip(&picks)
                .enumerate()
                .map(|(i, (id, pick))| {
                    let d = &daemons[*pick];
                    s.spawn(move || {
                        let reason = format!("r{round}-{i}");
                        let out = d.cli(&[
                            "resume",
                            id,
                            "--input",
                            "approved=true",
                            "--input",
                            &format!("reason={reason}"),
                        ]);
                        (id.clone(), reason, out.ok())
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(30));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
        });
        for (id, reason, ok) in outcomes {
            if ok {
                acked.push((id, reason));
            } else {
                unknown.push((id, reason));
            }
        }
        daemons[victim].kill9();
        daemons[victim].restart();
    }
    println!(
        "{} resumes acknowledged, {} lost with their daemon, {} left alone",
        acked.len(),
        unknown.len(),
        untouched.len()
    );
    assert!(!acked.is_empty(), "some resumes were acknowledged");
    let decisions = |d: &Daemon, id: &str| -> Vec<String> {
        log_messages(d, id)
            .into_iter()
            .filter(|l| l.starts_with("decision for"))
            .collect()
    };
    for d in &daemons {
        for (id, reason) in &acked {
            let e = d.wait_state(id, "SUCCESS");
            assert_eq!(task_run(&e, "decide")["state"], "SUCCESS", "{e:#}");
            let lines = decisions(d, id);
            assert_eq!(lines.len(), 1, "resumed exactly once: {lines:?}");
            assert!(lines[0].contains(&format!("reason={reason}")), "{lines:?}");
        }
        for (id, reason) in &unknown {
            let state = d.execution(id)["state"].as_str().unwrap_or_default().to_string();
            match state.as_str() {
                "PAUSED" => assert!(decisions(d, id).is_empty()),
                _ => {
                    let e = d.wait_state(id, "SUCCESS");
                    let lines = decisions(d, id);
                    assert_eq!(lines.len(), 1, "{e:#} {lines:?}");
                    assert!(lines[0].contains(&format!("reason={reason}")), "{lines:?}");
                }
            }
        }
        for id in &untouched {
            assert_eq!(d.execution(id)["state"], "PAUSED", "nobody resumed {id}");
        }
    }
}

/// `tollgate-bench cluster` and `takeover` (which start their own PostgreSQL) run end to end
/// against the real (debug) daemon and print their figures; times are not asserted here.
#[test]
fn the_cluster_and_takeover_bench_scenarios_print_their_figures() {
    let daemon = tollgate_tests::binaries().tollgated.display().to_string();
    for scenario in ["cluster", "takeover"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-bench"))
            .args([scenario, "--quick", "--json", "--daemon", &daemon])
            .output()
            .expect("run tollgate-bench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tollgate-bench {scenario} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let o: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
        assert_eq!(o["scenario"], scenario);
        if scenario == "cluster" {
            for setup in ["redb, 1 daemon", "postgres, 1 daemon", "postgres, 3 daemons"] {
                let f = &o["figures"][setup];
                assert!(f["logFlowCompletedPerSec"].as_f64().is_some_and(|v| v > 0.0), "{o}");
                assert_eq!(f["bulkResume"]["acceptedOk"], o["parameters"]["bulkResume"], "{o}");
                assert!(f["resume"]["latencyMs"]["p99"].as_f64().is_some(), "{o}");
            }
        } else {
            let took = o["figures"]["killToTaskRunningAgainMs"]["max"].as_f64().unwrap_or(0.0);
            assert!(took > 0.0, "{o}");
        }
    }
}

/// Daemons whose row batches wait `hold_ms` after locking their executions (the test hook
/// `TOLLGATE_TEST_ROW_LOCK_HOLD_MS`): a real race between two batches then always overlaps.
fn on_holding(url: &str, hold_ms: u64) -> DaemonOptions {
    let mut o = on(url);
    o.env
        .push(("TOLLGATE_TEST_ROW_LOCK_HOLD_MS".into(), hold_ms.to_string()));
    o
}

/// Audit records of `id` with `action` that went through (not refused).
fn audited(d: &Daemon, id: &str, action: &str) -> usize {
    let records = d.cli_json(&["audit", "--execution", id, "--limit", "1000"]);
    records
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["action"] == action && !r["result"].as_str().unwrap_or_default().starts_with("DENIED"))
                .count()
        })
        .unwrap_or(0)
}

/// Row batches lock their executions as they read them: a kill of a subflow's parent through
/// daemon A locks the parent, then the child (to kill it); a resume of the child through
/// daemon B locks the child, then the parent (the finished child reports to it). Both hold
/// their first lock while the other takes its own, so they deadlock for real; PostgreSQL
/// aborts one, the writer rolls it back and runs it again exclusively. Nothing is lost or
/// applied twice: the outcome is one of the two orders, each decision audited at most once,
/// and the audit chain verifies.
#[test]
fn a_deadlock_between_a_subflow_parent_and_child_is_rolled_back_and_run_again_once() {
    let url = postgres::new_database();
    let a = Daemon::start_with(on_holding(&url, 1500));
    let b = Daemon::start_with(on_holding(&url, 1500));
    // The two calls must reach their daemons within the hold of each other; on a loaded
    // machine one round may miss, so up to three rounds (each checked the same way).
    let mut deadlocked = false;
    for _round in 0..3 {
        let parent_id = id_of(&a.run_nowait("test", "parent", &[]));
        let child = a.wait_listed(&["executions", "--state", "PAUSED", "--flow", "child"], |e| {
            e["parentExecutionId"] == parent_id.as_str()
        });
        let child_id = id_of(&child);
        let before = format!("{}{}", a.log(), b.log()).matches("40P01").count();
        let (kill, resume) = std::thread::scope(|s| {
            let kill = s.spawn(|| a.cli(&["kill", &parent_id]));
            let resume = s.spawn(|| b.cli(&["resume", &child_id, "--input", "verdict=approved"]));
            (kill.join().expect("kill"), resume.join().expect("resume"))
        });
        if resume.ok() {
            // The resume committed first: the child finished and its parent went on.
            b.wait_state(&child_id, "SUCCESS");
            a.wait_state(&parent_id, "SUCCESS");
            assert_eq!(audited(&a, &child_id, "resume"), 1);
        } else {
            // The kill committed first: both are killed and the resume found nothing paused.
            assert!(kill.ok(), "{kill}\n{resume}");
            a.wait_state(&parent_id, "KILLED");
            b.wait_state(&child_id, "KILLED");
            assert_eq!(audited(&a, &child_id, "resume"), 0);
            assert_eq!(audited(&a, &parent_id, "kill"), 1);
        }
        let logs = format!("{}{}", a.log(), b.log());
        if logs.matches("40P01").count() > before {
            assert!(logs.contains("row batch rolled back; running it exclusively"), "{logs}");
            deadlocked = true;
            break;
        }
    }
    assert!(deadlocked, "no round deadlocked:\n{}{}", a.log(), b.log());
    for d in [&a, &b] {
        let verify = d.cli(&["audit", "--verify"]);
        assert!(verify.ok(), "{verify}");
    }
}

/// Row batches of different executions run side by side: while three daemons' batches hold
/// their row locks, PostgreSQL shows the write lock held shared by several transactions at
/// once (with one exclusive write lock it could never be more than one). Every resume wins
/// once, the state counts (written late, under the commit lock) stay exact and the one audit
/// chain, linked under the commit lock, verifies.
#[test]
fn row_batches_of_different_executions_hold_the_write_lock_together() {
    let url = postgres::new_database();
    let daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on_holding(&url, 800))).collect();
    let n = 9;
    let ids: Vec<String> = (0..n)
        .map(|i| id_of(&daemons[i % 3].run_wait("test", "approval", &[])))
        .collect();
    wait_metric(&daemons, "tollgate_executions{state=\"PAUSED\"}", n as f64);
    let together = std::sync::atomic::AtomicI64::new(0);
    let resumes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let d = &daemons[(i + 1) % 3];
                s.spawn(move || {
                    d.cli(&[
                        "resume",
                        id,
                        "--input",
                        "approved=true",
                        "--input",
                        "reason=side-by-side",
                    ])
                })
            })
            .collect();
        // Sampled while the resumes run: how many transactions hold the write lock shared.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !handles.iter().all(|h| h.is_finished()) && Instant::now() < deadline {
            let held = postgres::server().psql(
                &url,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted",
            );
            let held: i64 = held.parse().unwrap_or(0);
            together.fetch_max(held, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        }
        handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
    });
    for o in &resumes {
        assert!(o.ok(), "every resume of its own execution wins: {o}");
    }
    assert!(
        together.load(Ordering::Relaxed) >= 2,
        "row batches of two daemons held the write lock at the same time"
    );
    for id in &ids {
        daemons[0].wait_state(id, "SUCCESS");
        let logs = log_messages(&daemons[2], id);
        assert_eq!(
            logs.iter().filter(|l| l.starts_with("decision for")).count(),
            1,
            "{logs:?}"
        );
        assert_eq!(audited(&daemons[1], id, "resume"), 1);
    }
    wait_metric(&daemons, "tollgate_executions{state=\"SUCCESS\"}", n as f64);
    wait_metric(&daemons, "tollgate_executions{state=\"PAUSED\"}", 0.0);
    for d in &daemons {
        let verify = d.cli(&["audit", "--verify"]);
        assert!(verify.ok(), "{verify}");
    }
}

/// The change feed is in commit order even when row batches of several daemons commit at
/// once (each feed row is written under the commit lock): a daemon following the logs of
/// executions decided through two other daemons, whose batches overlap, sees every decision.
/// A feed row given a lower number but committed after a higher one was read would be skipped
/// for good, and its `logs -f` would never print the decision.
#[test]
fn overlapping_commits_of_two_daemons_all_reach_a_third_through_the_change_feed() {
    let url = postgres::new_database();
    let daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on_holding(&url, 300))).collect();
    let n = 6;
    let ids: Vec<String> = (0..n)
        .map(|_| id_of(&daemons[0].run_wait("test", "approval", &[])))
        .collect();
    let followers: Vec<(std::process::Child, std::sync::mpsc::Receiver<String>)> = ids
        .iter()
        .map(|id| {
            let mut child = Command::new(&binaries().tollgate)
                .args(["--server", &daemons[0].server(), "logs", id, "-f"])
                .env_remove("TOLLGATE_TOKEN")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("tollgate logs -f");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            (child, rx)
        })
        .collect();
    let resumes: Vec<tollgate_tests::CliOutput> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let d = &daemons[1 + i % 2];
                s.spawn(move || d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=fed"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("resume thread")).collect()
    });
    for o in &resumes {
        assert!(o.ok(), "{o}");
    }
    for (i, (mut child, rx)) in followers.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains("reason=fed") => break,
                Ok(_) => continue,
                Err(_) => panic!("`logs -f` of {} on the third daemon never saw its decision", ids[i]),
            }
        }
        let status = child.wait().expect("follower exit");
        assert!(status.success(), "`logs -f` ends when the execution does");
    }
}

/// Flow `concurrency` counts the flow's executions by state, rows a row batch has not locked:
/// a batch that reads them is rolled back and run again exclusively, so starts through three
/// daemons at once still admit exactly `limit` executions and queue the rest, and each
/// resume admits exactly the next one.
#[test]
fn concurrency_admission_stays_exact_when_starts_race_over_three_daemons() {
    let url = postgres::new_database();
    let daemons: Vec<Daemon> = (0..3).map(|_| Daemon::start_with(on(&url))).collect();
    daemons[0].apply_flow(
        "one_at_a_time",
        r#"id: one_at_a_time
namespace: test.rows
concurrency:
  limit: 1
  behavior: QUEUE
tasks:
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "passed {{ execution.id }}"
"#,
    );
    let n = 6;
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let d = &daemons[i % 3];
                s.spawn(move || id_of(&d.run_nowait("test.rows", "one_at_a_time", &[])))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("start thread")).collect()
    });
    let settled = |ids: &[String]| -> (Vec<String>, usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let states: Vec<String> = ids
                .iter()
                .map(|id| {
                    daemons[1].execution(id)["state"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
            let paused: Vec<String> = ids
                .iter()
                .zip(&states)
                .filter(|(_, s)| *s == "PAUSED")
                .map(|(id, _)| id.clone())
                .collect();
            let queued = states.iter().filter(|s| *s == "QUEUED").count();
            if paused.len() + queued == ids.len() && !paused.is_empty() {
                return (paused, queued);
            }
            assert!(Instant::now() < deadline, "not settled: {states:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut left = ids.clone();
    while !left.is_empty() {
        let (paused, queued) = settled(&left);
        assert_eq!(paused.len(), 1, "one at a time: {paused:?}, {queued} queued");
        assert_eq!(queued, left.len() - 1);
        let out = daemons[left.len() % 3].cli(&["resume", &paused[0]]);
        assert!(out.ok(), "{out}");
        daemons[0].wait_state(&paused[0], "SUCCESS");
        left.retain(|id| *id != paused[0]);
    }
    let logs: String = daemons.iter().map(Daemon::log).collect();
    assert!(
        logs.contains("touched a scan of the executions_by_state table"),
        "the admissions ran as exclusive batches:\n{logs}"
    );
    for d in &daemons {
        let verify = d.cli(&["audit", "--verify"]);
        assert!(verify.ok(), "{verify}");
    }
}

/// Due timers are claimed with `FOR UPDATE SKIP LOCKED` on their executions: every daemon's
/// timer loop sees the same due timers; while one daemon's batch holds an execution (firing its
/// timer), the other daemon's batch leaves that timer instead of queueing behind it, and sends
/// it again later, when it is gone. Each timer fires once.
#[test]
fn a_due_timer_held_by_another_daemons_batch_is_skipped_and_fires_once() {
    let url = postgres::new_database();
    let mut o = on_holding(&url, 1000);
    o.env
        .push(("RUST_LOG".into(), "info,tollgate_daemon::engine::writer=debug".into()));
    let daemons: Vec<Daemon> = (0..2).map(|_| Daemon::start_with(o.clone())).collect();
    let ids: Vec<String> = (0..4)
        .map(|i| id_of(&daemons[i % 2].run_nowait("test", "expire_resume", &[])))
        .collect();
    for id in &ids {
        let e = daemons[1].wait_state(id, "SUCCESS");
        assert_eq!(task_run(&e, "gate")["state"], "SUCCESS");
        let logs = log_messages(&daemons[0], id);
        assert_eq!(
            logs.iter().filter(|l| l.starts_with("after the gate")).count(),
            1,
            "the expiry fired once: {logs:?}"
        );
    }
    let logs: String = daemons.iter().map(Daemon::log).collect();
    assert!(
        logs.contains("due timers left to the batch holding their execution"),
        "a daemon skipped a timer another daemon's batch held:\n{logs}"
    );
}

/// A timer set through one daemon is watched by the others as soon as it is committed: the
/// commit's change-feed row carries the `*timers` marker, which wakes their timer loops (other
/// changes no longer do: three daemons re-read the timers after every commit of the others).
/// The daemon that set it is killed before it falls due; the other fires it, once.
#[test]
fn a_timer_set_through_a_daemon_killed_before_it_is_due_fires_on_another_once() {
    let url = postgres::new_database();
    let mut o = on(&url);
    o.env
        .push(("RUST_LOG".into(), "info,tollgate_daemon::engine::timers=debug".into()));
    let mut a = Daemon::start_with(o.clone());
    let b = Daemon::start_with(o);
    let id = id_of(&a.run_nowait("test", "expire_resume", &[]));
    b.wait_state(&id, "PAUSED");
    a.kill9();
    let e = b.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "gate")["state"], "SUCCESS");
    let logs = log_messages(&b, &id);
    assert_eq!(
        logs.iter().filter(|l| l.starts_with("after the gate")).count(),
        1,
        "the expiry fired once: {logs:?}"
    );
    // B learnt of the timer before it fell due (it went to sleep until it), not only when
    // its own longest sleep ended.
    let waits: Vec<i64> = without_colors(&b.log())
        .lines()
        .filter(|l| l.contains("next timer") && l.contains(&id))
        .filter_map(|l| l.split("in_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        waits.iter().any(|ms| *ms > 0),
        "daemon B never waited for the timer set through A: {waits:?}\n{}",
        b.log()
    );
}

/// A daemon's log without the terminal colour codes (`ESC [ ... m`) around its fields.
fn without_colors(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
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
