//! Flow model, YAML parsing and validation with `file:line:column` errors.

pub mod defaults;
pub mod model;
pub mod parse;
pub mod path;
pub mod positions;
pub mod retry;
pub mod unsupported;
pub mod validate;

pub use crate::duration;
pub use crate::yaml::depth;
pub use model::*;

use std::fmt;

/// Shortest `reminders.every` a flow may ask for: `TOLLGATE_MIN_REMINDER_INTERVAL` (ISO-8601), default PT1M.
pub fn min_reminder_interval() -> std::time::Duration {
    std::env::var("TOLLGATE_MIN_REMINDER_INTERVAL")
        .ok()
        .and_then(|v| duration::parse_iso8601(&v).ok())
        .unwrap_or(std::time::Duration::from_secs(60))
}

/// A flow problem positioned in its source file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Parses and validates a flow source; on failure returns every diagnostic, sorted by position.
pub fn load(source: &str, file: &str) -> Result<Flow, Vec<Diagnostic>> {
    let issues = match parse::parse_flow(source) {
        Ok(flow) => {
            let issues = validate::validate(&flow);
            if issues.is_empty() {
                return Ok(flow);
            }
            issues
        }
        Err(issues) => issues,
    };
    let mut diags: Vec<Diagnostic> = issues
        .into_iter()
        .map(|i| {
            let (line, column) = i.position.unwrap_or_else(|| positions::locate(source, &i.path));
            Diagnostic {
                file: file.to_string(),
                line,
                column,
                message: i.message,
            }
        })
        .collect();
    diags.sort_by_key(|d| (d.line, d.column));
    Err(diags)
}
