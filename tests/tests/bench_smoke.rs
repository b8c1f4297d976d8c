//! `tollgate-bench all --quick` runs every scenario end to end against the real (debug) daemon and
//! prints one JSON object per scenario with numeric figures. Times are not asserted here: the
//! figures are for people, measured in release mode (README, Performance).

use serde_json::Value;
use tollgate_tests::binaries;

fn numbers_in(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64()),
        Value::Object(m) => m.values().for_each(|v| numbers_in(v, out)),
        Value::Array(a) => a.iter().for_each(|v| numbers_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_scenario_prints_its_figures() {
    let daemon = binaries().tollgated.display().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-bench"))
        .args(["all", "--quick", "--json", "--daemon", &daemon])
        .output()
        .expect("run tollgate-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tollgate-bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let names: Vec<&str> = objects.iter().filter_map(|o| o["scenario"].as_str()).collect();
    assert_eq!(
        names,
        [
            "throughput",
            "bulk-resume",
            "resume-latency",
            "log-latency",
            "list-paused",
            "startup",
            "footprint",
            "console"
        ]
    );
    for o in &objects {
        let mut figures = Vec::new();
        numbers_in(&o["figures"], &mut figures);
        assert!(!figures.is_empty(), "numeric figures: {o}");
        assert!(figures.iter().all(|f| f.is_finite() && *f >= 0.0), "{o}");
        assert!(o["environment"]["cores"].as_u64().is_some_and(|c| c >= 1), "{o}");
    }
    // The runs did what they claim: every execution reached its state.
    let bulk = objects
        .iter()
        .find(|o| o["scenario"] == "bulk-resume")
        .expect("bulk-resume");
    assert_eq!(bulk["figures"]["acceptedOk"], bulk["parameters"]["paused"], "{bulk}");
    let console = objects.iter().find(|o| o["scenario"] == "console").expect("console");
    assert_eq!(
        console["figures"]["rowsListed"], console["parameters"]["paused"],
        "{console}"
    );
}
