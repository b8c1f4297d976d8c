//! kill -9 at random moments while executions start: every acknowledged start survives, reaches a
//! valid state, and no Log line of a finished task repeats.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_like::next;
use tollgate_tests::{Daemon, log_messages};

/// A tiny xorshift so the test needs no extra dependency; seeded from the clock and printed.
mod rand_like {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(seed()));
    fn seed() -> u64 {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        eprintln!("crash loop seed: {s}");
        s
    }
    pub fn next(bound: u64) -> u64 {
        STATE.with(|c| {
            let mut x = c.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.set(x);
            x % bound
        })
    }
}

#[test]
fn kill_9_loop_loses_nothing_acknowledged() {
    let mut d = Daemon::start();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let rounds = 3;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let starter = {
            let stop = stop.clone();
            let acknowledged = acknowledged.clone();
            let server = d.server();
            std::thread::spawn(move || {
                let bins = tollgate_tests::binaries();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let tag = format!("n=r{round}-{n}");
                    n += 1;
                    let out = std::process::Command::new(&bins.tollgate)
                        .args([
                            "--server", &server, "run", "test", "crashy", "--input", &tag, "-o", "json",
                        ])
                        .output();
                    if let Ok(out) = out
                        && out.status.success()
                        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                    {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap_or_default().to_string());
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(300 + next(700)));
        d.kill9();
        stop.store(true, Ordering::SeqCst);
        starter.join().unwrap();
        d.restart();
    }
    let ids = acknowledged.lock().unwrap().clone();
    assert!(!ids.is_empty(), "no start was acknowledged: the loop tested nothing");
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    for id in &ids {
        let e = d.wait_state(id, "PAUSED");
        let logs = log_messages(&d, id);
        let n = e["inputs"]["n"].as_str().unwrap().to_string();
        for word in ["one", "two", "three"] {
            let line = format!("{word} {n}");
            assert_eq!(
                logs.iter().filter(|l| **l == line).count(),
                1,
                "`{line}` must appear exactly once: {logs:?}"
            );
        }
    }
}
