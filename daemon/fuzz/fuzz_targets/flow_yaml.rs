//! Any bytes given to the flow loader: it must return a flow or diagnostics, never panic, and
//! every diagnostic must carry a position inside the file.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Flow files are text; the loader takes `&str`.
    let Ok(source) = std::str::from_utf8(data) else { return };
    // YAML breaks lines at `\r\n`, `\n` and a lone `\r`; a position may sit just past the last one.
    let breaks = source
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\r')
        .count();
    let lines = u32::try_from(breaks).unwrap_or(u32::MAX).saturating_add(1);
    if let Err(diagnostics) = tollgate_daemon::flow::load(source, "fuzz.yaml") {
        for d in diagnostics {
            assert!(
                d.line >= 1 && d.line <= lines,
                "{d} is outside the {lines} lines of the file"
            );
            assert!(d.column >= 1, "{d} has no column");
        }
    }
    // The parse-and-validate pass that reports every problem at once.
    let _ = tollgate_daemon::flow::validate::check(source);
});
