//! The console's mirror of executions: compact rows kept in sync by List pages and Watch events.
//!
//! Rows hold only what the list, filter and resume form need; a full `Execution` is fetched for
//! the detail view. Pause forms are interned by `form_key`, so 100,000 paused executions of one
//! flow share one copy of their input specs.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_proto::v1::{self as pb, InputSpec};

/// What a paused task run waits for (the parts the list and forms use).
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub task_run_id: String,
    pub task_id: String,
    pub since_ms: i64,
    pub expires_ms: i64,
    pub assignee_users: Vec<String>,
    pub assignee_groups: Vec<String>,
    pub approvals_required: u32,
    pub approved_by: Vec<String>,
    /// Parallel to `approved_by`: whom a delegate's approval counts for ("" for one's own).
    pub approved_for: Vec<String>,
    /// Users and groups an escalation added.
    pub escalated_to: Vec<String>,
    pub form_key: String,
    /// HumanTask `rejectionReasonRequired`: the console asks for a reason before rejecting.
    pub rejection_reason_required: bool,
}

impl From<pb::PauseInfo> for Pause {
    fn from(p: pb::PauseInfo) -> Pause {
        Pause {
            task_run_id: p.task_run_id,
            task_id: p.task_id,
            since_ms: p.since_ms,
            expires_ms: p.expires_ms,
            assignee_users: p.assignee_users,
            assignee_groups: p.assignee_groups,
            approvals_required: p.approvals_required,
            approved_by: p.approved_by,
            approved_for: p.approved_on_behalf_of,
            escalated_to: p.escalated_to,
            form_key: p.form_key,
            rejection_reason_required: p.rejection_reason_required,
        }
    }
}

impl From<&pb::PauseInfo> for Pause {
    fn from(p: &pb::PauseInfo) -> Pause {
        Pause {
            task_run_id: p.task_run_id.clone(),
            task_id: p.task_id.clone(),
            since_ms: p.since_ms,
            expires_ms: p.expires_ms,
            assignee_users: p.assignee_users.clone(),
            assignee_groups: p.assignee_groups.clone(),
            approvals_required: p.approvals_required,
            approved_by: p.approved_by.clone(),
            approved_for: p.approved_on_behalf_of.clone(),
            escalated_to: p.escalated_to.clone(),
            form_key: p.form_key.clone(),
            rejection_reason_required: p.rejection_reason_required,
        }
    }
}

impl Pause {
    /// A HumanTask (assignment and approvals), as opposed to a plain Pause.
    /// Whether `user` already holds a seat in this pause's quorum: approved in their own name,
    /// or as a delegate, or had a delegate approve for them (the daemon refuses them all again).
    pub fn approved(&self, user: &str) -> bool {
        self.approved_by
            .iter()
            .chain(self.approved_for.iter())
            .any(|a| a.eq_ignore_ascii_case(user))
    }

    /// Who approved so far, as people read it: `bob for ana` when a delegate approved.
    pub fn approved_by_text(&self) -> String {
        approved_by_text(&self.approved_by, &self.approved_for)
    }

    pub fn is_human(&self) -> bool {
        self.approvals_required > 0 || !self.assignee_users.is_empty() || !self.assignee_groups.is_empty()
    }

    /// Assignees as one short text: users then `@group`s.
    pub fn assignees(&self) -> String {
        self.assignee_users
            .iter()
            .cloned()
            .chain(self.assignee_groups.iter().map(|g| format!("@{g}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether `user` (with `groups`) may decide, mirroring the daemon's rule for HumanTasks.
    pub fn may_decide(&self, user: &str, groups: &[String]) -> bool {
        may_decide(
            &self.assignee_users,
            &self.assignee_groups,
            self.approvals_required,
            user,
            groups,
        )
    }
}

/// The daemon's HumanTask rule: a plain pause (no assignment, no approvals) is anyone's to
/// resume; otherwise the user must be listed or belong to a listed group.
pub fn may_decide(users: &[String], groups: &[String], approvals: u32, user: &str, user_groups: &[String]) -> bool {
    let human = approvals > 0 || !users.is_empty() || !groups.is_empty();
    !human || users.iter().any(|u| u.eq_ignore_ascii_case(user)) || groups.iter().any(|g| user_groups.contains(g))
}

/// One execution as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRow {
    pub id: String,
    pub namespace: String,
    pub flow_id: String,
    pub state: String,
    pub labels: Vec<(String, String)>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_by: String,
    pub pauses: Vec<Pause>,
    /// Lower-cased id, namespace, flow, labels and assignees: what `/` filters on.
    pub haystack: String,
}

impl ExecRow {
    /// The first pause: the one a resume without task id targets (the daemon's default).
    pub fn pause(&self) -> Option<&Pause> {
        self.pauses.first()
    }

    /// When the execution started waiting (or was created, when it is not paused).
    pub fn since_ms(&self) -> i64 {
        self.pause().map(|p| p.since_ms).unwrap_or(self.created_ms)
    }

    pub fn is_paused(&self) -> bool {
        self.state == "PAUSED" && !self.pauses.is_empty()
    }
}

/// The rows, an id index, and interned pause forms.
#[derive(Debug, Default)]
pub struct ExecStore {
    rows: Vec<ExecRow>,
    /// Id -> position. Fx, not SipHash: hashing 100,000 ids was ~10% of a first load's CPU
    /// (`perf`), and the ids come from the daemon.
    index: rustc_hash::FxHashMap<String, usize>,
    forms: HashMap<String, Arc<Vec<InputSpec>>>,
}

/// The row of a whole execution or a decoded summary row.
pub fn row_of(e: pb::Execution) -> ExecRow {
    row_from(e)
}

fn row_from(e: pb::Execution) -> ExecRow {
    let labels: Vec<(String, String)> = e.labels.into_iter().collect();
    let pauses: Vec<Pause> = e.pauses.into_iter().map(Pause::from).collect();
    build_row(RowParts {
        id: e.id,
        namespace: e.namespace,
        flow_id: e.flow_id,
        state: e.state,
        labels,
        created_ms: e.created_ms,
        updated_ms: e.updated_ms,
        started_by: e.started_by,
        pauses,
    })
}

/// A row's fields as decoded (labels in any order), before [`build_row`] completes it.
#[derive(Debug, Default)]
pub struct RowParts {
    pub id: String,
    pub namespace: String,
    pub flow_id: String,
    pub state: String,
    pub labels: Vec<(String, String)>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_by: String,
    pub pauses: Vec<Pause>,
}

/// The row of `p`: labels sorted, and what `/` filters on.
pub fn build_row(p: RowParts) -> ExecRow {
    let RowParts {
        id,
        namespace,
        flow_id,
        state,
        mut labels,
        created_ms,
        updated_ms,
        started_by,
        pauses,
    } = p;
    labels.sort();
    let mut haystack = String::with_capacity(128);
    for part in [&id, &namespace, &flow_id] {
        haystack.push_str(part);
        haystack.push(' ');
    }
    haystack.push_str(&started_by);
    for (k, v) in &labels {
        haystack.push(' ');
        haystack.push_str(k);
        haystack.push('=');
        haystack.push_str(v);
    }
    for p in &pauses {
        haystack.push(' ');
        haystack.push_str(&p.task_id);
        for u in &p.assignee_users {
            haystack.push(' ');
            haystack.push_str(u);
        }
        for g in &p.assignee_groups {
            haystack.push_str(" @");
            haystack.push_str(g);
        }
    }
    // Ids, names and emails are mostly ASCII: lower-case in place, without a second string.
    if haystack.is_ascii() {
        haystack.make_ascii_lowercase();
    } else {
        haystack = haystack.to_lowercase();
    }
    ExecRow {
        id,
        namespace,
        flow_id,
        state,
        labels,
        created_ms,
        updated_ms,
        started_by,
        pauses,
        haystack,
    }
}

impl ExecStore {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[ExecRow] {
        &self.rows
    }

    pub fn get(&self, id: &str) -> Option<&ExecRow> {
        self.index.get(id).map(|i| &self.rows[*i])
    }

    /// The position of `id` in [`rows`](Self::rows).
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The onResume inputs of a pause form.
    pub fn form(&self, form_key: &str) -> Option<&Arc<Vec<InputSpec>>> {
        self.forms.get(form_key)
    }

    /// Remembers a pause form (a summary page sends each once). A key names one form for good
    /// (it is the form's fingerprint), so a known key is kept.
    pub fn add_form(&mut self, form_key: String, on_resume: Vec<InputSpec>) {
        self.forms.entry(form_key).or_insert_with(|| Arc::new(on_resume));
    }

    /// Inserts or replaces a row unless the stored one is newer; true when something changed.
    /// `e` is a whole execution (a Watch event, a Get) or a row summary whose pauses' forms were
    /// added before ([`Self::add_form`]): those are known, so the summary's empty `on_resume`
    /// is never taken for a form.
    pub fn upsert(&mut self, e: &pb::Execution) -> bool {
        self.upsert_owned(e.clone())
    }

    /// [`Self::upsert`] taking the execution, whose strings become the row's (a page of 1,000
    /// rows is not copied).
    pub fn upsert_owned(&mut self, mut e: pb::Execution) -> bool {
        for p in &mut e.pauses {
            if !self.forms.contains_key(&p.form_key) {
                self.forms
                    .insert(p.form_key.clone(), Arc::new(std::mem::take(&mut p.on_resume)));
            }
        }
        self.upsert_row(row_from(e))
    }

    /// [`Self::upsert_owned`] of a row decoded straight from the wire (a List page's), whose
    /// pauses' forms were added before ([`Self::add_form`]); a pause whose form is not known
    /// has none (as a whole execution's pause without `onResume`).
    pub fn upsert_row(&mut self, row: ExecRow) -> bool {
        for p in &row.pauses {
            if !self.forms.contains_key(&p.form_key) {
                self.forms.insert(p.form_key.clone(), Arc::new(Vec::new()));
            }
        }
        match self.index.get(&row.id) {
            Some(&i) => {
                // A List page may carry an older snapshot than a Watch event already applied.
                if self.rows[i].updated_ms > row.updated_ms {
                    return false;
                }
                if self.rows[i] == row {
                    return false;
                }
                self.rows[i] = row;
                true
            }
            None => {
                self.index.insert(row.id.clone(), self.rows.len());
                self.rows.push(row);
                true
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.index.remove(id) else {
            return false;
        };
        self.rows.swap_remove(i);
        if let Some(moved) = self.rows.get(i) {
            self.index.insert(moved.id.clone(), i);
        }
        true
    }

    /// Removes rows matching `pred` (used to drop rows a reload no longer returns).
    pub fn retain(&mut self, mut keep: impl FnMut(&ExecRow) -> bool) -> bool {
        let before = self.rows.len();
        self.rows.retain(|r| keep(r));
        if self.rows.len() == before {
            return false;
        }
        self.index = self.rows.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        true
    }
}

/// `approved_by` with each delegate's principal: `ana, bob for carol`.
pub fn approved_by_text(by: &[String], on_behalf_of: &[String]) -> String {
    by.iter()
        .enumerate()
        .map(|(i, b)| match on_behalf_of.get(i).filter(|f| !f.is_empty()) {
            Some(f) => format!("{b} for {f}"),
            None => b.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn exec(id: &str, state: &str, updated: i64) -> pb::Execution {
        pb::Execution {
            id: id.into(),
            namespace: "demo".into(),
            flow_id: "f".into(),
            state: state.into(),
            updated_ms: updated,
            ..Default::default()
        }
    }

    #[test]
    fn older_snapshots_do_not_overwrite_newer_ones() {
        let mut s = ExecStore::default();
        assert!(s.upsert(&exec("a", "PAUSED", 10)));
        assert!(s.upsert(&exec("a", "RUNNING", 20)));
        assert!(!s.upsert(&exec("a", "PAUSED", 15)), "stale page ignored");
        assert_eq!(s.get("a").map(|r| r.state.as_str()), Some("RUNNING"));
        assert!(!s.upsert(&exec("a", "RUNNING", 20)), "identical snapshot is no change");
    }

    #[test]
    fn remove_keeps_the_index_consistent() {
        let mut s = ExecStore::default();
        for id in ["a", "b", "c"] {
            s.upsert(&exec(id, "PAUSED", 1));
        }
        assert!(s.remove("a"));
        assert_eq!(s.get("c").map(|r| r.id.as_str()), Some("c"));
        assert_eq!(s.get("b").map(|r| r.id.as_str()), Some("b"));
        assert!(s.retain(|r| r.id != "b"));
        assert_eq!(s.position("c"), Some(0));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn human_task_assignment_mirrors_the_daemon() {
        let p = Pause {
            task_run_id: "t".into(),
            task_id: "approve".into(),
            since_ms: 0,
            expires_ms: 0,
            assignee_users: vec!["Alice@x.io".into()],
            assignee_groups: vec!["ops".into()],
            approvals_required: 1,
            approved_by: vec![],
            approved_for: vec![],
            escalated_to: vec![],
            form_key: "k".into(),
            rejection_reason_required: false,
        };
        assert!(p.may_decide("alice@x.io", &[]));
        assert!(p.may_decide("bob", &["ops".to_string()]));
        assert!(!p.may_decide("bob", &[]));
        assert_eq!(p.assignees(), "Alice@x.io, @ops");
    }
}
