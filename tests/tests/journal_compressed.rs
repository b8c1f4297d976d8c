//! Journal records compressed as a whole (a batch's operations as one LZ4 block) and stored
//! executions compressed on their own: a daemon killed with `kill -9` while its changes are only
//! in such records (its flush held open, so tollgate.redb has none of them) comes back with all
//! of them. No timing is asserted.

use tollgate_tests::{Daemon, DaemonOptions, wait_for};

/// The operation kinds that start the records of the journal's segments (the byte after each
/// record's 8-byte header and 8-byte seq: 1 put, 2 delete, 3 compressed operations).
fn first_ops(d: &Daemon) -> Vec<u8> {
    let mut kinds = Vec::new();
    let Ok(rd) = std::fs::read_dir(d.data_dir.join("journal")) else {
        return kinds;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let buf = std::fs::read(e.path()).expect("segment");
        let mut off = 0usize;
        while off + 17 <= buf.len() {
            let len = u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
            if len < 9 {
                break;
            }
            kinds.push(buf[off + 16]);
            off += 8 + len;
        }
    }
    kinds
}

#[test]
fn kill9_with_changes_only_in_compressed_journal_records_loses_none() {
    let mut d = Daemon::start_with(DaemonOptions {
        env: vec![("TOLLGATE_TEST_FLUSH_HOLD_MS".into(), "600000".into())],
        ..Default::default()
    });
    let ids: Vec<String> = (0..12)
        .map(|i| {
            let e = d.run_wait("test", "approval", &[&format!("requester=user{i}")]);
            assert_eq!(e["state"], "PAUSED", "{e:#}");
            e["id"].as_str().expect("id").to_string()
        })
        .collect();
    wait_for("a flush under way", || d.log().contains("flush holding").then_some(()));
    // Resumed while the flush is held: these changes exist only in the journal.
    for id in &ids[..6] {
        let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=ok"]);
        assert!(out.ok(), "{out}");
    }
    let kinds = first_ops(&d);
    assert!(kinds.contains(&3), "compressed records in the journal: {kinds:?}");
    d.kill9();
    d.options.env.clear();
    d.restart();
    for id in &ids[..6] {
        d.wait_state(id, "SUCCESS");
    }
    for id in &ids[6..] {
        assert_eq!(d.execution(id)["state"], "PAUSED");
        let out = d.cli(&["resume", id, "--input", "approved=true", "--input", "reason=after"]);
        assert!(out.ok(), "{out}");
        d.wait_state(id, "SUCCESS");
    }
    let v = d.cli_json(&["audit", "--verify"]);
    assert_eq!(v["ok"], true, "audit chain: {v:#}");
}
