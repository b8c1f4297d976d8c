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
}

impl Identity {
    pub fn from_whoami(w: &pb::WhoamiResponse) -> Identity {
        Identity {
            user: w.user.clone(),
            groups: w.groups.clone(),
            roles: w.roles.iter().map(|r| (r.role.clone(), r.namespace.clone())).collect(),
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

    /// Whether this user may give `pause` of an execution in `namespace` a decision now.
    pub fn may_decide(&self, namespace: &str, pause: &Pause) -> bool {
        self.operates(namespace)
            && pause.may_decide(&self.user, &self.groups)
            && !pause.approved_by.iter().any(|u| u.eq_ignore_ascii_case(&self.user))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn who(groups: &[&str], role: &str, ns: &str) -> Identity {
        Identity {
            user: "a@x".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            roles: vec![(role.into(), ns.into())],
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
            escalated_to: vec![],
            form_key: String::new(),
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
}
