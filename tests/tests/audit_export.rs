//! `tollgate audit export`: a JSON-lines run of the hash chain that verifies on its own, with the
//! README's own recipes (python3, and jq + sha256sum) run as documented.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tollgate_tests::{Daemon, workspace_root};

/// The fenced block that follows `<!-- marker -->` in README.md: the documented recipe itself.
fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let after = readme
        .split_once(&format!("<!-- {marker} -->"))
        .unwrap_or_else(|| panic!("README.md has no <!-- {marker} -->"))
        .1;
    let body = after.split_once("```").expect("a fenced block").1;
    let body = body.split_once('\n').expect("fence line").1;
    body.split_once("```").expect("closing fence").0.to_string()
}

/// Runs the README's python recipe on `file`: (success, output).
fn verify_python(dir: &Path, file: &Path) -> (bool, String) {
    let script = dir.join("verify.py");
    std::fs::write(&script, readme_block("verify-audit-python")).expect("write script");
    let out = Command::new("python3")
        .arg(&script)
        .arg(file)
        .output()
        .expect("python3");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs the README's jq + sha256sum recipe on `file` (the recipe reads `audit.jsonl` in its
/// working directory): (success, output).
fn verify_jq(file: &Path) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(file, dir.path().join("audit.jsonl")).expect("copy export");
    let out = Command::new("bash")
        .arg("-c")
        .arg(readme_block("verify-audit-jq"))
        .current_dir(dir.path())
        .output()
        .expect("bash");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .expect("export file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn export(d: &Daemon, dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let file = dir.join(name);
    let mut full = vec![
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        file.to_str().expect("utf-8 path"),
    ];
    full.extend(args);
    let out = d.cli(&full);
    assert!(out.ok(), "audit export failed:\n{out}");
    file
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn an_export_verifies_with_the_readme_recipes_and_a_tampered_one_does_not() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let notes = [
        "plain",
        "he said \"hi\"\\ and left",
        "caf\u{e9} \u{2713} \u{1F680} <tag> & 'q'",
    ];
    for (i, note) in notes.iter().enumerate() {
        let amount = format!("{}", 0.1 + i as f64 * 1.25);
        let e = d.run_wait(
            "observe",
            "ledger",
            &[&format!("note={note}"), &format!("amount={amount}")],
        );
        assert_eq!(e["state"], "PAUSED", "{e:#}");
        let id = e["id"].as_str().expect("id");
        let r = d.cli(&["resume", id, "--input", &format!("comment=line one\nline two {note}")]);
        assert!(r.ok(), "{r}");
        d.wait_state(id, "SUCCESS");
    }

    // The whole chain.
    let all = export(&d, dir.path(), "all.jsonl", &[]);
    let records = lines(&all);
    assert!(records.len() >= 6, "starts and resumes are exported: {records:#?}");
    assert_eq!(records[0]["seq"], 1);
    assert_eq!(records[0]["prev_hash"], "");
    for pair in records.windows(2) {
        assert_eq!(pair[1]["seq"].as_u64(), pair[0]["seq"].as_u64().map(|s| s + 1));
    }
    assert!(
        records.iter().any(|r| r["values"]["note"] == notes[2]),
        "the non-ASCII start values are exported as they were recorded"
    );
    let (ok, out) = verify_python(dir.path(), &all);
    assert!(ok, "python recipe rejected a genuine export: {out}");
    assert!(out.contains(&format!("{} records verified", records.len())), "{out}");
    let head = records.last().expect("records")["hash"]
        .as_str()
        .expect("hash")
        .to_string();
    assert!(out.contains(&head), "{out}");
    let (ok, out) = verify_jq(&all);
    assert!(ok, "jq recipe rejected a genuine export: {out}");
    // Paging (two records per call) gives the same bytes.
    let paged = export(&d, dir.path(), "paged.jsonl", &["--page-size", "2"]);
    let paged_records = lines(&paged);
    assert_eq!(
        paged_records[..records.len()],
        records[..],
        "a paged export holds the same records (plus the records of the exports in between)"
    );
    // The chain the daemon verifies is the one exported: the same hashes.
    let listed = d.cli_json(&["audit", "--limit", "1000"]);
    let listed: Vec<&Value> = listed.as_array().expect("list").iter().collect();
    for r in &records {
        let same = listed.iter().find(|l| l["seq"] == r["seq"]).expect("listed");
        assert_eq!(same["hash"], r["hash"]);
    }

    // From the middle: starts from the previous record's hash, and verifies on its own.
    let mid = records.len() / 2;
    let since = records[mid]["time_ms"].as_i64().expect("time");
    let until = records[records.len() - 1]["time_ms"].as_i64().expect("time");
    let part = export(
        &d,
        dir.path(),
        "part.jsonl",
        &["--since", &iso(since), "--until", &iso(until)],
    );
    let part_records = lines(&part);
    assert!(!part_records.is_empty());
    let first_seq = part_records[0]["seq"].as_u64().expect("seq") as usize;
    assert!(
        first_seq > 1 && first_seq <= mid + 1,
        "starts at or before record {}",
        mid + 1
    );
    assert!(
        records[first_seq - 2]["time_ms"].as_i64() < Some(since),
        "no earlier record is at or after --since"
    );
    assert_eq!(part_records[0]["prev_hash"], records[first_seq - 2]["hash"]);
    assert!(part_records.iter().all(|r| r["time_ms"].as_i64() < Some(until)));
    let (ok, out) = verify_python(dir.path(), &part);
    assert!(ok, "{out}");
    let (ok, out) = verify_jq(&part);
    assert!(ok, "{out}");

    // Tampering with one value is caught by both recipes; so is a deleted line.
    let text = std::fs::read_to_string(&all).expect("export");
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"comment\":\"line one", "\"comment\":\"line 1ne", 1),
    )
    .expect("write");
    assert_ne!(
        std::fs::read_to_string(&tampered).expect("read"),
        text,
        "the edit applied"
    );
    let (ok, out) = verify_python(dir.path(), &tampered);
    assert!(!ok && out.contains("was altered"), "{out}");
    let (ok, out) = verify_jq(&tampered);
    assert!(!ok && out.contains("altered"), "{out}");
    let gap = dir.path().join("gap.jsonl");
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&gap, kept.join("\n") + "\n").expect("write");
    let (ok, out) = verify_python(dir.path(), &gap);
    assert!(!ok && out.contains("does not chain"), "{out}");
    let (ok, out) = verify_jq(&gap);
    assert!(!ok && out.contains("do not chain"), "{out}");

    // The export is itself audited.
    let listed = d.cli_json(&["audit", "--limit", "5"]);
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["action"] == "audit.export"),
        "{listed:#}"
    );

    // Bad bounds change nothing and say why.
    let out = d.cli(&["audit", "export", "--since", "yesterday"]);
    assert!(!out.ok() && out.stderr.contains("RFC 3339"), "{out}");
    let out = d.cli(&[
        "audit",
        "export",
        "--since",
        "2026-12-02T00:00:00Z",
        "--until",
        "2026-12-01T00:00:00Z",
    ]);
    assert!(!out.ok() && out.stderr.contains("--until must be later"), "{out}");
    // A window after every record exports nothing (and succeeds).
    let none = export(&d, dir.path(), "none.jsonl", &["--since", "2999-01-01T00:00:00Z"]);
    assert!(lines(&none).is_empty());
}
