//! Who the console's user is, and which paused executions are theirs to decide: the rule behind
//! the INBOX tab and `tollgate inbox`, mirroring the daemon's (operator role on the namespace;
//! for a HumanTask, assigned by name or group and not already among its approvers).

use tollgate_proto::v1 as pb;

use super::exec_store::{ExecRow, Pause};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// (role, namespace prefix); an empty prefix or `*` is every namespace.
    pub roles: Vec<(String, String)>,
    /// Users whose HumanTask decisions this user may take by delegation: (user, their groups,
    /// namespace prefix covered). Never followed further: delegations are not transitive.
    pub acting_for: Vec<(String, Vec<String>, String)>,
}

impl Identity {
    pub fn from_whoami(w: &pb::WhoamiResponse) -> Identity {
        Identity {
            user: w.user.clone(),
            groups: w.groups.clone(),
            roles: w.roles.iter().map(|r| (r.role.clone(), r.namespace.clone())).collect(),
            acting_for: w
                .acting_for
                .iter()
                .map(|a| (a.user.clone(), a.groups.clone(), a.namespace.clone()))
                .collect(),
        }
    }

    /// Operator (or admin) on `namespace`: may resume its plain pauses.
    pub fn operates(&self, namespace: &str) -> bool {
        self.roles.iter().any(|(role, prefix)| {
            matches!(role.as_str(), "operator" | "admin")
                && (prefix.is_empty()
                    || prefix == "*"
                    || namespace == prefix
                    || namespace
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('.')))
        })
    }

    /// Whether this user may give `pause` of an execution in `namespace` a decision now,
    /// for themselves or as someone's delegate.
    pub fn may_decide(&self, namespace: &str, pause: &Pause) -> bool {
        self.decides_for(namespace, pause).is_some()
    }

    /// In whose name this user may decide `pause`: `Some("")` for themselves, `Some(user)` as
    /// that user's delegate (HumanTasks only: a plain pause needs no delegation).
    pub fn decides_for(&self, namespace: &str, pause: &Pause) -> Option<String> {
        let approved = |u: &str| pause.approved(u);
        if self.operates(namespace) && pause.may_decide(&self.user, &self.groups) && !approved(&self.user) {
            return Some(String::new());
        }
        if approved(&self.user) {
            return None;
        }
        self.acting_for
            .iter()
            .find(|(user, groups, prefix)| {
                within(namespace, prefix)
                    && (pause.approvals_required > 0
                        || !pause.assignee_users.is_empty()
                        || !pause.assignee_groups.is_empty())
                    && pause.may_decide(user, groups)
                    && !approved(user)
            })
            .map(|(user, _, _)| user.clone())
    }

    /// A paused execution with at least one pause this user may decide.
    pub fn decides(&self, row: &ExecRow) -> bool {
        row.is_paused() && row.pauses.iter().any(|p| self.may_decide(&row.namespace, p))
    }

    /// The first pause of `row` this user may decide.
    pub fn pause_of<'r>(&self, row: &'r ExecRow) -> Option<&'r Pause> {
        row.pauses.iter().find(|p| self.may_decide(&row.namespace, p))
    }

    /// Whether an escalation added this user (or one of their groups) to `pause`.
    pub fn escalated_to_me(&self, pause: &Pause) -> bool {
        pause
            .escalated_to
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&self.user) || self.groups.contains(x))
    }
}

fn within(namespace: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || prefix == "*"
        || namespace == prefix
        || namespace.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(groups: &[&str], role: &str, ns: &str) -> Identity {
        Identity {
            user: "a@x".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            roles: vec![(role.into(), ns.into())],
            acting_for: vec![],
        }
    }

    fn pause(groups: &[&str], approvals: u32, approved_by: &[&str]) -> Pause {
        Pause {
            task_run_id: "r".into(),
            task_id: "t".into(),
            since_ms: 0,
            expires_ms: 0,
            assignee_users: vec![],
            assignee_groups: groups.iter().map(|g| g.to_string()).collect(),
            approvals_required: approvals,
            approved_by: approved_by.iter().map(|u| u.to_string()).collect(),
            approved_for: vec![],
            escalated_to: vec![],
            form_key: String::new(),
            rejection_reason_required: false,
        }
    }

    #[test]
    fn plain_pauses_need_operator_human_tasks_need_assignment() {
        let plain = pause(&[], 0, &[]);
        let human = pause(&["Security"], 1, &[]);
        assert!(who(&[], "operator", "hr").may_decide("hr.ops", &plain));
        assert!(!who(&[], "viewer", "hr").may_decide("hr.ops", &plain));
        assert!(!who(&[], "operator", "hr").may_decide("hrx", &plain));
        assert!(who(&[], "admin", "*").may_decide("anything", &plain));
        assert!(!who(&[], "admin", "").may_decide("infra", &human));
        assert!(who(&["Security"], "operator", "infra").may_decide("infra", &human));
        let approved = pause(&["Security"], 2, &["A@X"]);
        assert!(!who(&["Security"], "operator", "infra").may_decide("infra", &approved));
    }

    #[test]
    fn escalation_to_a_group_or_the_user_counts() {
        let mut p = pause(&["Security"], 1, &[]);
        p.escalated_to = vec!["Managers".into()];
        assert!(who(&["Managers"], "operator", "").escalated_to_me(&p));
        assert!(!who(&["Security"], "operator", "").escalated_to_me(&p));
        p.escalated_to = vec!["A@x".into()];
        assert!(who(&[], "operator", "").escalated_to_me(&p));
    }

    #[test]
    fn a_delegate_decides_human_tasks_of_the_delegator_only_within_the_namespace() {
        let mut bob = who(&[], "viewer", "other");
        bob.user = "bob@x".into();
        bob.acting_for = vec![("ana@x".into(), vec!["Approvers".into()], "hr".into())];
        let mut by_name = pause(&[], 1, &[]);
        by_name.assignee_users = vec!["ana@x".into()];
        let by_group = pause(&["Approvers"], 1, &[]);
        assert_eq!(bob.decides_for("hr.payroll", &by_name), Some("ana@x".into()));
        assert_eq!(bob.decides_for("hr", &by_group), Some("ana@x".into()));
        assert_eq!(
            bob.decides_for("finance", &by_name),
            None,
            "outside the delegation's namespace"
        );
        let approved = pause(&["Approvers"], 2, &["ana@x"]);
        assert_eq!(bob.decides_for("hr", &approved), None, "ana's seat is taken");
        // A plain pause is not a delegated decision.
        assert_eq!(bob.decides_for("hr", &pause(&[], 0, &[])), None);
    }

    /// When bob approved for ana, ana's seat is taken: her console must not offer the decision
    /// (the daemon would refuse it), and the approval reads `bob@x for ana@x`.
    #[test]
    fn a_seat_taken_by_a_delegate_is_taken_for_the_delegator_too() {
        let mut p = pause(&["Approvers"], 2, &["bob@x"]);
        p.approved_for = vec!["ana@x".into()];
        let mut ana = who(&["Approvers"], "operator", "hr");
        ana.user = "ana@x".into();
        assert!(!ana.may_decide("hr", &p));
        let mut carol = who(&["Approvers"], "operator", "hr");
        carol.user = "carol@x".into();
        assert!(carol.may_decide("hr", &p));
        assert_eq!(p.approved_by_text(), "bob@x for ana@x");
    }
}
