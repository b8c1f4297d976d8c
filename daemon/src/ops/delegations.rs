//! Delegation and out-of-office: a user's HumanTask decisions also offered to a delegate for a
//! while. Stored through the engine's writer with its audit record in the same transaction.
//!
//! Delegations are not transitive: a delegate acts with the delegator's own assignment (user
//! and groups), never with what others delegated to the delegator, so delegating onwards passes
//! on only one's own rights.

use chrono::NaiveDate;

use super::{Ops, Target};
use crate::auth::{Principal, Role};
use crate::engine::ids::{new_id, now_ms};
use crate::engine::{Delegator, EngineError, Execution, Result};
use crate::store::DelegationRecord;

/// What a user asks for.
#[derive(Debug, Clone, Default)]
pub struct NewDelegation {
    /// Whose decisions; empty = the caller's own.
    pub from_user: String,
    pub to_user: String,
    /// First day, `YYYY-MM-DD` (UTC); empty = today.
    pub from_date: String,
    /// Last day, `YYYY-MM-DD` (UTC), included.
    pub until_date: String,
    /// Namespace prefix covered; empty = every namespace.
    pub namespace: String,
}

const DAY_MS: i64 = 86_400_000;

fn day_start(field: &str, text: &str) -> Result<i64> {
    let d = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        EngineError::InvalidArgument(format!("--{field} `{text}` is not a date: write it as YYYY-MM-DD"))
    })?;
    Ok(d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0))
}

fn same_user(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Ops {
    /// Who may see or revoke a delegation: its two users, and admins of its namespace.
    fn concerns(p: &Principal, d: &DelegationRecord) -> bool {
        same_user(&p.user, &d.from_user) || same_user(&p.user, &d.to_user) || p.may(Role::Admin, &d.namespace)
    }

    pub async fn delegate(&self, p: &Principal, req: NewDelegation) -> Result<DelegationRecord> {
        let from_user = if req.from_user.trim().is_empty() {
            p.user.clone()
        } else {
            crate::auth::normalize_email(&req.from_user)
                .map_err(|e| EngineError::InvalidArgument(format!("--for: {e}")))?
        };
        let target = Target::namespace(&req.namespace);
        if !same_user(&from_user, &p.user) && !p.may(Role::Admin, &req.namespace) {
            let message = format!(
                "{} may only delegate their own decisions: delegating for {from_user} needs the admin role on namespace `{}`",
                p.user,
                if req.namespace.is_empty() {
                    "*"
                } else {
                    req.namespace.as_str()
                }
            );
            return Err(self.refuse(p, "delegate", target, message).await);
        }
        let to_user = crate::auth::normalize_email(&req.to_user)
            .map_err(|e| EngineError::InvalidArgument(format!("--to: {e}")))?;
        if same_user(&to_user, &from_user) {
            return Err(EngineError::InvalidArgument(format!(
                "--to {to_user}: a user cannot delegate to themselves"
            )));
        }
        let now = now_ms();
        let from_ms = if req.from_date.trim().is_empty() {
            now - now.rem_euclid(DAY_MS)
        } else {
            day_start("from", &req.from_date)?
        };
        if req.until_date.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "--until is required: a delegation must end (last day, YYYY-MM-DD)".into(),
            ));
        }
        let until_ms = day_start("until", &req.until_date)? + DAY_MS;
        if until_ms <= from_ms {
            return Err(EngineError::InvalidArgument(format!(
                "--until {} is before --from {}",
                req.until_date, req.from_date
            )));
        }
        if until_ms <= now {
            return Err(EngineError::InvalidArgument(format!(
                "--until {} is in the past",
                req.until_date
            )));
        }
        if !self.auth.is_insecure() {
            let to = to_user.clone();
            let known = self.read_store(move |r| Ok(r.user(&to)?.is_some())).await?;
            if !known {
                return Err(EngineError::InvalidArgument(format!(
                    "--to {to_user}: no such user on this daemon"
                )));
            }
        }
        let rec = DelegationRecord {
            id: new_id(),
            from_user,
            to_user,
            namespace: req.namespace.trim().to_string(),
            from_ms,
            until_ms,
            created_by: p.user.clone(),
            created_ms: now,
            revoked_ms: None,
        };
        let stored = rec.clone();
        let user = p.user.clone();
        self.engine
            .change(move |w| {
                w.put_delegation(&stored)?;
                crate::audit::append(w, delegation_entry(&user, "delegate", &stored))?;
                Ok(())
            })
            .await?;
        Ok(rec)
    }

    /// Delegations the caller gives, receives, or administers; revoked and ended ones too when `all`.
    pub async fn delegations(&self, p: &Principal, all: bool) -> Result<Vec<DelegationRecord>> {
        let now = now_ms();
        let mut list = self.read_store(|r| Ok(r.delegations()?)).await?;
        list.retain(|d| Self::concerns(p, d) && (all || (d.revoked_ms.is_none() && d.until_ms > now)));
        list.sort_by(|a, b| a.from_ms.cmp(&b.from_ms).then(a.id.cmp(&b.id)));
        Ok(list)
    }

    pub async fn revoke_delegation(&self, p: &Principal, id: &str) -> Result<DelegationRecord> {
        let id = id.to_string();
        let caller = p.clone();
        self.engine
            .change(move |w| {
                let Some(mut d) = w.delegation(&id)? else {
                    return Ok(Err(EngineError::NotFound(format!("delegation '{id}' not found"))));
                };
                if !Self::concerns(&caller, &d) {
                    // Told apart from "not found" only for those who may see it.
                    return Ok(Err(EngineError::NotFound(format!("delegation '{id}' not found"))));
                }
                if d.revoked_ms.is_some() {
                    return Ok(Err(EngineError::FailedPrecondition(format!(
                        "delegation '{id}' is already revoked"
                    ))));
                }
                d.revoked_ms = Some(now_ms());
                w.put_delegation(&d)?;
                crate::audit::append(w, delegation_entry(&caller.user, "delegate.revoke", &d))?;
                Ok(Ok(d))
            })
            .await?
    }

    /// The users `p` may decide for right now (in `namespace`, or anywhere when `None`), with
    /// their own groups and rights.
    pub(super) async fn acting_for(
        &self,
        p: &Principal,
        namespace: Option<&str>,
    ) -> Result<Vec<(Delegator, Principal)>> {
        let now = now_ms();
        let user = p.user.clone();
        let ns = namespace.map(str::to_string);
        self.read_point(move |r| {
            let mut out = Vec::new();
            for d in r.delegations()? {
                if !same_user(&d.to_user, &user)
                    || !d.holds_at(now)
                    || ns
                        .as_deref()
                        .is_some_and(|ns| !crate::store::namespace_within(ns, &d.namespace))
                {
                    continue;
                }
                // A delegator who no longer exists delegates nothing.
                if let Ok(from) = crate::auth::principal_of_user(r, &d.from_user) {
                    out.push((
                        Delegator {
                            user: from.user.clone(),
                            groups: from.groups.clone(),
                            namespace: d.namespace.clone(),
                        },
                        from,
                    ));
                }
            }
            Ok(out)
        })
        .await
    }

    /// Loads the execution a decision is for and checks the caller may decide there: the
    /// operator role on its namespace, held directly or by someone who delegated to the caller.
    /// Returns the actor the engine checks the assignment with.
    pub(super) async fn decision_for(
        &self,
        p: &Principal,
        id: &str,
        action: &str,
    ) -> Result<(Execution, crate::engine::Actor)> {
        let exec = self.engine.get_execution(id).await?;
        let delegators = self.acting_for(p, Some(&exec.namespace)).await?;
        let actor = self.decision_actor(p, &exec, &delegators, action).await?;
        Ok((exec, actor))
    }

    /// The actor deciding on `exec`: the caller, plus the delegators who hold the operator role
    /// there. PERMISSION_DENIED (audited) when neither the caller nor any of them does.
    pub(super) async fn decision_actor(
        &self,
        p: &Principal,
        exec: &Execution,
        delegators: &[(Delegator, Principal)],
        action: &str,
    ) -> Result<crate::engine::Actor> {
        let ns = &exec.namespace;
        let usable: Vec<Delegator> = delegators
            .iter()
            .filter(|(d, from)| crate::store::namespace_within(ns, &d.namespace) && from.may(Role::Operator, ns))
            .map(|(d, _)| d.clone())
            .collect();
        if usable.is_empty() {
            self.authorize(p, Role::Operator, action, Target::of(exec)).await?;
        }
        let mut actor = p.actor();
        actor.acting_for = usable;
        Ok(actor)
    }
}

fn delegation_entry(user: &str, action: &str, d: &DelegationRecord) -> crate::audit::Entry {
    let iso = crate::engine::context::iso_ms;
    crate::audit::Entry {
        user: user.to_string(),
        action: action.to_string(),
        namespace: d.namespace.clone(),
        values: serde_json::json!({
            "id": d.id, "from": d.from_user, "to": d.to_user,
            "start": iso(d.from_ms), "end": iso(d.until_ms),
        }),
        result: "OK".into(),
        ..Default::default()
    }
}

impl Ops {
    /// The delegations the caller holds right now (for `whoami` and the inbox): whose decisions,
    /// with their groups, in which namespaces.
    pub async fn acting_for_now(&self, p: &Principal) -> Result<Vec<Delegator>> {
        Ok(self.acting_for(p, None).await?.into_iter().map(|(d, _)| d).collect())
    }
}

/// The narrower of two namespace prefixes when one lies within the other (empty = everything).
fn narrower(a: &str, b: &str) -> Option<String> {
    if crate::store::namespace_within(a, b) {
        Some(a.to_string())
    } else if crate::store::namespace_within(b, a) {
        Some(b.to_string())
    } else {
        None
    }
}

impl Ops {
    /// `p` with read access (viewer) to what the users who delegated to it may read, within
    /// each delegation's namespace: a delegate must see the executions offered to them.
    pub async fn widened(&self, p: &Principal) -> Principal {
        let mut out = p.clone();
        let Ok(delegators) = self.acting_for(p, None).await else {
            return out;
        };
        for (d, from) in delegators {
            for g in from.grants.iter().filter(|g| g.role >= Role::Viewer) {
                if let Some(ns) = narrower(&g.namespace, &d.namespace) {
                    out.grants.push(crate::auth::Grant {
                        role: Role::Viewer,
                        namespace: ns,
                        via_group: Some(format!("delegation from {}", d.user)),
                    });
                }
            }
        }
        out
    }
}
