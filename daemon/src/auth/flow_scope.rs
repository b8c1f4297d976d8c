//! What a running flow may reach outside its own namespace. The flow's namespace is the
//! principal, never the person who started it (a flow runs long after, and on triggers):
//!
//! - read a secret or a KV entry (`secret()`, `kv()`, KV Get): its own namespace and its parents
//!   (`hr.payroll` reads `hr`), as Kestra's inheritance goes;
//! - write a KV entry (KV Set) and start a Subflow: its own namespace and its children;
//! - anything else only where an admin allowed it with a role bound to the flows of a namespace
//!   (`tollgated admin role bind --flows-of hr --role viewer --namespace sec`): `viewer` to read,
//!   `operator` to start subflows, `admin` to write KV.

use super::Role;
use crate::store::namespace_within;

/// What a flow wants to do in another namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowAccess {
    Read,
    Write,
    StartSubflow,
}

impl FlowAccess {
    /// The role an explicit allowance must grant.
    pub fn role(self) -> Role {
        match self {
            FlowAccess::Read => Role::Viewer,
            FlowAccess::StartSubflow => Role::Operator,
            FlowAccess::Write => Role::Admin,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            FlowAccess::Read => "read from",
            FlowAccess::Write => "write to",
            FlowAccess::StartSubflow => "start a subflow in",
        }
    }
}

/// `Ok` when a flow in `from` may do `access` in `target` by the rule alone, or because
/// `allowed(role)` says an admin granted the flows of `from` that role on `target`; otherwise the
/// message to fail with.
pub fn check(from: &str, target: &str, access: FlowAccess, allowed: impl FnOnce(Role) -> bool) -> Result<(), String> {
    let by_rule = match access {
        FlowAccess::Read => namespace_within(from, target),
        FlowAccess::Write | FlowAccess::StartSubflow => namespace_within(target, from),
    };
    if by_rule || allowed(access.role()) {
        return Ok(());
    }
    Err(format!(
        "a flow in namespace `{from}` may not {} namespace `{target}`: flows reach their own namespace, \
         {} only; an admin can allow it with `tollgated admin role bind --flows-of {from} --role {} --namespace {target}`",
        access.verb(),
        match access {
            FlowAccess::Read => "and its parents",
            _ => "and its children",
        },
        access.role().as_str()
    ))
}

/// Whether `bindings` (kind `flows`) grant the flows of `from` at least `role` on `target`.
pub fn allowed_by(bindings: &[crate::store::Binding], from: &str, target: &str, role: Role) -> bool {
    bindings.iter().any(|b| {
        b.kind == super::FLOWS_SUBJECT
            && namespace_within(from, &b.subject)
            && Role::parse(&b.role).is_some_and(|r| r >= role)
            && namespace_within(target, &b.namespace)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: Role) -> bool {
        false
    }

    #[test]
    fn reads_go_up_writes_and_subflows_go_down() {
        assert!(check("hr.payroll", "hr", FlowAccess::Read, never).is_ok());
        assert!(check("hr", "hr", FlowAccess::Read, never).is_ok());
        assert!(check("hr", "hr.payroll", FlowAccess::Read, never).is_err());
        assert!(check("hr", "sec", FlowAccess::Read, never).is_err());
        assert!(check("hr", "hr2", FlowAccess::Read, never).is_err());
        assert!(check("hr", "hr.payroll", FlowAccess::Write, never).is_ok());
        assert!(check("hr.payroll", "hr", FlowAccess::Write, never).is_err());
        assert!(check("hr", "sec", FlowAccess::StartSubflow, never).is_err());
        assert!(check("hr", "hr.x", FlowAccess::StartSubflow, never).is_ok());
    }

    #[test]
    fn an_allowance_needs_the_right_role_on_the_right_namespace() {
        let b = |role: &str, subject: &str, ns: &str| crate::store::Binding {
            kind: super::super::FLOWS_SUBJECT.into(),
            subject: subject.into(),
            role: role.into(),
            namespace: ns.into(),
        };
        let bindings = vec![b("viewer", "hr", "sec")];
        let ok = |access: FlowAccess| {
            check("hr.x", "sec.keys", access, |r| {
                allowed_by(&bindings, "hr.x", "sec.keys", r)
            })
        };
        assert!(ok(FlowAccess::Read).is_ok());
        let e = ok(FlowAccess::StartSubflow).unwrap_err();
        assert!(e.contains("--role operator") && e.contains("`sec.keys`"), "{e}");
        assert!(!allowed_by(&bindings, "hr2", "sec", Role::Viewer));
        assert!(!allowed_by(&[b("viewer", "hr", "sec")], "hr", "security", Role::Viewer));
    }
}
