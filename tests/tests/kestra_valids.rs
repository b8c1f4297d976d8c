//! Kestra's own test flows (`core/src/test/resources/flows/valids` in kestra-io/kestra) through
//! `tollgate flow validate`, as a newcomer would measure Tollgate. The flows are Kestra's and are
//! not vendored here, so the test needs a checkout: `KESTRA_VALIDS=DIR cargo test -p
//! tollgate-tests --test kestra_valids -- --ignored --nocapture`. It prints every refused flow
//! with its first problem (the list in the README comes from it) and fails when fewer flows
//! validate than the README states, or when a refusal of a flow that uses only types Tollgate
//! knows does not name its reason.

use std::path::PathBuf;
use std::process::Command;

use tollgate_tests::binaries;

/// How many of the 181 flows validate (the README states this figure).
const EXPECTED_ACCEPTED: usize = 165;

/// Kestra's test-only plugins: flows using them are outside what Tollgate is measured on.
const TEST_ONLY_PREFIXES: &[&str] = &[
    "io.kestra.core.tasks.test.",
    "io.kestra.core.runners.test.",
    "io.kestra.plugin.core.debug.Fake",
];

#[test]
#[ignore = "needs a checkout of Kestra's test flows, which this repository does not vendor (their licence is Kestra's); set KESTRA_VALIDS to the valids directory"]
fn kestra_test_flows_validate() {
    let dir = PathBuf::from(std::env::var("KESTRA_VALIDS").expect("KESTRA_VALIDS=path to Kestra's flows/valids"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read KESTRA_VALIDS")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut accepted = 0;
    let mut unexplained = Vec::new();
    for file in &files {
        let out = Command::new(&binaries().tollgate)
            .args(["flow", "validate"])
            .arg(file)
            .output()
            .expect("run tollgate flow validate");
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if out.status.success() {
            accepted += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
        println!("REFUSED {name}: {first}");
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let test_only = TEST_ONLY_PREFIXES.iter().any(|p| source.contains(p));
        let explained = first.contains("not supported") || test_only;
        if !explained {
            unexplained.push(format!("{name}: {first}"));
        }
    }
    println!("{accepted} of {} validate", files.len());
    assert!(
        accepted >= EXPECTED_ACCEPTED,
        "{accepted} of {} validate, fewer than the {EXPECTED_ACCEPTED} the README states",
        files.len()
    );
    println!(
        "refusals without a stated reason ({}):\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
}
