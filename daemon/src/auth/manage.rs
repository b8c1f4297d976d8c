//! Managing users, groups, role bindings and tokens: the one implementation behind
//! `tollgated admin` (directly on the data dir while the daemon is stopped) and the daemon's admin
//! API (while it runs). Every change is audited in the transaction that makes it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Role;
use super::tokens;
use crate::audit::{self, Entry};
use crate::engine::ids::now_ms;
use crate::store::{Binding, Store, StoreError, TokenRecord, UserRecord, Writer};

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("`{0}` is not an e-mail address")]
    InvalidEmail(String),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("unknown user `{0}`: add it first with `tollgated admin user add {0}`")]
    UnknownUser(String),
    #[error("invalid group name `{0}`: it must be non-empty, at most 200 characters, without control characters")]
    InvalidGroup(String),
    #[error("group `{0}` already exists")]
    GroupExists(String),
    #[error("unknown group `{0}`: add it first with `tollgated admin group add '{0}'`")]
    UnknownGroup(String),
    #[error("unknown role `{0}`: use viewer, operator, admin or metrics")]
    UnknownRole(String),
    #[error("invalid namespace `{0}`: use a dotted namespace like `hr.payroll`, or `*` for every namespace")]
    InvalidNamespace(String),
    #[error("the metrics role reads daemon-wide figures: bind it on `*` (every namespace), to a user or a group")]
    MetricsScope,
    #[error("{kind} `{subject}` already has the {role} role on `{namespace}`")]
    BindingExists {
        kind: String,
        subject: String,
        role: String,
        namespace: String,
    },
    #[error("{kind} `{subject}` has no {role} role on `{namespace}` (see `tollgated admin role list`)")]
    UnknownBinding {
        kind: String,
        subject: String,
        role: String,
        namespace: String,
    },
    #[error("invalid expiry `{0}`: use a number of days like 90d, hours like 12h, or an ISO-8601 duration like P90D")]
    BadExpiry(String),
    #[error("no token with id `{0}` (see `tollgated admin token list`)")]
    UnknownToken(String),
    #[error("token `{0}` is already revoked")]
    AlreadyRevoked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a role is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Subject {
    User(String),
    Group(String),
    /// Every flow in a namespace and its children (see `auth::flow_scope`).
    Flows(String),
}

impl Subject {
    fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Group(_) => "group",
            Subject::Flows(_) => super::FLOWS_SUBJECT,
        }
    }
    fn name(&self) -> &str {
        match self {
            Subject::User(n) | Subject::Group(n) | Subject::Flows(n) => n,
        }
    }
}

/// A group and the users in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub members: Vec<String>,
}

/// What may be shown about a token: never its salt or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub user: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now_ms`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            "expired"
        } else {
            "active"
        }
    }
}

impl From<&TokenRecord> for TokenInfo {
    fn from(t: &TokenRecord) -> Self {
        TokenInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            user: t.user.clone(),
            created_ms: t.created_ms,
            expires_ms: t.expires_ms,
            revoked_ms: t.revoked_ms,
        }
    }
}

/// Users are keyed by their e-mail in lower case, so `Alice@x` and `alice@x` are one person
/// (HumanTask assignments compare e-mails without regard to case too).
pub fn normalize_email(email: &str) -> Result<String, ManageError> {
    let e = email.trim();
    let bad = || ManageError::InvalidEmail(email.to_string());
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || e.len() > 254
        || e.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(e.to_lowercase())
}

/// Group names are shown to people (`Security Team`), so spaces and case are kept.
fn check_group(name: &str) -> Result<String, ManageError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(ManageError::InvalidGroup(name.to_string()));
    }
    Ok(n.to_string())
}

/// `*` and the empty prefix both mean every namespace (stored as the empty prefix).
fn check_namespace(namespace: &str) -> Result<String, ManageError> {
    let ns = namespace.trim();
    if ns.is_empty() || ns == "*" {
        return Ok(String::new());
    }
    if !crate::flow::parse::valid_namespace(ns) {
        return Err(ManageError::InvalidNamespace(namespace.to_string()));
    }
    Ok(ns.to_string())
}

fn shown_namespace(ns: &str) -> &str {
    if ns.is_empty() { "*" } else { ns }
}

/// `90d`, `12h`, or an ISO-8601 duration.
pub fn parse_expiry(s: &str) -> Result<std::time::Duration, ManageError> {
    let t = s.trim();
    let bad = || ManageError::BadExpiry(s.into());
    let scaled = |n: &str, unit: u64| {
        n.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .filter(|secs| *secs > 0)
            .map(std::time::Duration::from_secs)
            .ok_or_else(bad)
    };
    if let Some(d) = t.strip_suffix('d') {
        return scaled(d, 86_400);
    }
    if let Some(h) = t.strip_suffix('h') {
        return scaled(h, 3600);
    }
    crate::flow::duration::parse_iso8601(t)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

/// The audit record of an administrative change by `actor`.
fn entry_by(actor: &str, action: &str, namespace: &str, values: serde_json::Value) -> Entry {
    Entry {
        user: actor.to_string(),
        action: action.into(),
        namespace: namespace.into(),
        values,
        result: "OK".into(),
        ..Default::default()
    }
}

/// Performs administrative changes on behalf of `actor` (recorded as the audit record's user).
pub struct Manager {
    store: Store,
    /// How changes are committed: directly on the data dir while the daemon is stopped, through
    /// the engine's writer while it runs.
    commit: Arc<dyn Commit>,
    actor: String,
}

/// A change as the manager hands it over: it writes, and its domain answer travels back beside.
pub type ChangeFn = Box<dyn FnOnce(&mut Writer) -> Result<(), StoreError> + Send>;

/// Commits a change in one write transaction and returns once it is durable.
pub trait Commit: Send + Sync {
    fn commit(&self, change: ChangeFn) -> Result<(), StoreError>;
}

impl Commit for Store {
    fn commit(&self, change: ChangeFn) -> Result<(), StoreError> {
        let committed = self.write(change);
        // Principals remembered in this process are read again (super::Auth::authenticate).
        super::bump_rights_generation();
        committed
    }
}

impl Manager {
    /// Changes committed directly on `store` (the daemon is stopped, or in tests).
    pub fn new(store: Store, actor: impl Into<String>) -> Manager {
        Manager {
            commit: Arc::new(store.clone()),
            store,
            actor: actor.into(),
        }
    }

    /// Changes committed by `commit` (the running daemon's writer); reads from `store`.
    pub fn through(store: Store, commit: Arc<dyn Commit>, actor: impl Into<String>) -> Manager {
        Manager {
            store,
            commit,
            actor: actor.into(),
        }
    }

    /// Runs `f` in a write transaction: a storage error aborts it; a domain error must be found
    /// before anything is written, and is returned as is.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, ManageError> + Send + 'static,
    ) -> Result<T, ManageError> {
        let answer = Arc::new(std::sync::Mutex::new(None));
        let slot = answer.clone();
        self.commit.commit(Box::new(move |w| match f(w) {
            Err(ManageError::Store(e)) => Err(e),
            other => {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(other);
                Ok(())
            }
        }))?;
        let taken = answer.lock().unwrap_or_else(|p| p.into_inner()).take();
        taken.unwrap_or_else(|| {
            Err(ManageError::Store(StoreError::Storage(
                "the change was not committed".into(),
            )))
        })
    }

    fn entry(&self, action: &str, namespace: &str, values: serde_json::Value) -> Entry {
        entry_by(&self.actor, action, namespace, values)
    }

    /// Adds a user, creating the groups it names that do not exist yet.
    pub fn add_user(&self, email: &str, groups: &[String]) -> Result<UserRecord, ManageError> {
        let email = normalize_email(email)?;
        let mut names: Vec<String> = Vec::with_capacity(groups.len());
        for g in groups {
            let g = check_group(g)?;
            if !names.contains(&g) {
                names.push(g);
            }
        }
        let user = UserRecord {
            email: email.clone(),
            groups: names,
            created_ms: now_ms(),
        };
        let entry = self.entry("user.add", "", json!({"email": email, "groups": user.groups}));
        self.write(move |w| {
            if w.user(&email)?.is_some() {
                return Err(ManageError::UserExists(email));
            }
            for g in &user.groups {
                w.put_group(g)?;
            }
            w.put_user(&user)?;
            audit::append(w, entry)?;
            Ok(user)
        })
    }

    pub fn users(&self) -> Result<Vec<UserRecord>, ManageError> {
        Ok(self.store.read()?.users()?)
    }

    pub fn add_group(&self, name: &str) -> Result<(), ManageError> {
        let name = check_group(name)?;
        let entry = self.entry("group.add", "", json!({"group": name}));
        self.write(move |w| {
            if w.has_group(&name)? {
                return Err(ManageError::GroupExists(name));
            }
            w.put_group(&name)?;
            audit::append(w, entry)?;
            Ok(())
        })
    }

    /// Every group with its members.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, ManageError> {
        let r = self.store.read()?;
        let users = r.users()?;
        Ok(r.groups()?
            .into_iter()
            .map(|name| GroupInfo {
                members: users
                    .iter()
                    .filter(|u| u.groups.contains(&name))
                    .map(|u| u.email.clone())
                    .collect(),
                name,
            })
            .collect())
    }

    fn binding(subject: &Subject, role: &str, namespace: &str) -> Result<Binding, ManageError> {
        let role = Role::parse(role.trim()).ok_or_else(|| ManageError::UnknownRole(role.to_string()))?;
        let subject_name = match subject {
            Subject::User(u) => normalize_email(u)?,
            Subject::Group(g) => check_group(g)?,
            Subject::Flows(ns) if ns.trim() == "*" || ns.trim().is_empty() => {
                // Allowing every flow everywhere would undo the rule it is an exception to.
                return Err(ManageError::InvalidNamespace(format!(
                    "{ns} (name the namespace whose flows are allowed)"
                )));
            }
            Subject::Flows(ns) => check_namespace(ns)?,
        };
        let namespace = check_namespace(namespace)?;
        // A metrics binding anywhere narrower would grant nothing: refuse it rather than keep it.
        if role == Role::Metrics && (!namespace.is_empty() || matches!(subject, Subject::Flows(_))) {
            return Err(ManageError::MetricsScope);
        }
        Ok(Binding {
            kind: subject.kind().into(),
            subject: subject_name,
            role: role.as_str().into(),
            namespace,
        })
    }

    /// Grants `role` on the namespace prefix (`*` = every namespace) to a user or a group.
    pub fn bind(&self, subject: &Subject, role: &str, namespace: &str) -> Result<Binding, ManageError> {
        let b = Self::binding(subject, role, namespace)?;
        let entry = self.entry(
            "role.bind",
            &b.namespace,
            json!({subject.kind(): b.subject, "role": b.role, "namespace": shown_namespace(&b.namespace)}),
        );
        let subject = subject.clone();
        self.write(move |w| {
            match subject {
                Subject::User(_) if w.user(&b.subject)?.is_none() => {
                    return Err(ManageError::UnknownUser(b.subject.clone()));
                }
                Subject::Group(_) if !w.has_group(&b.subject)? => {
                    return Err(ManageError::UnknownGroup(b.subject.clone()));
                }
                _ => {}
            }
            if w.has_binding(&b)? {
                return Err(ManageError::BindingExists {
                    kind: b.kind.clone(),
                    subject: b.subject.clone(),
                    role: b.role.clone(),
                    namespace: shown_namespace(&b.namespace).into(),
                });
            }
            w.put_binding(&b)?;
            audit::append(w, entry)?;
            Ok(b)
        })
    }

    /// Takes a role back; rights change on the holder's next call (and open streams end or narrow).
    pub fn unbind(&self, subject: &Subject, role: &str, namespace: &str) -> Result<Binding, ManageError> {
        let b = Self::binding(subject, role, namespace)?;
        let entry = self.entry(
            "role.unbind",
            &b.namespace,
            json!({subject.kind(): b.subject, "role": b.role, "namespace": shown_namespace(&b.namespace)}),
        );
        let subject_name = subject.name().to_string();
        self.write(move |w| {
            if !w.delete_binding(&b)? {
                return Err(ManageError::UnknownBinding {
                    kind: b.kind.clone(),
                    subject: subject_name,
                    role: b.role.clone(),
                    namespace: shown_namespace(&b.namespace).into(),
                });
            }
            audit::append(w, entry)?;
            Ok(b)
        })
    }

    pub fn bindings(&self) -> Result<Vec<Binding>, ManageError> {
        Ok(self.store.read()?.bindings()?)
    }

    /// Creates a token for `user`; returns what may be shown about it and the token text, which
    /// exists nowhere else afterwards (only a salted hash is stored).
    pub fn create_token(
        &self,
        user: &str,
        name: &str,
        expires: Option<std::time::Duration>,
    ) -> Result<(TokenRecord, String), ManageError> {
        let user = normalize_email(user).map_err(|_| ManageError::UnknownUser(user.to_string()))?;
        let name = if name.trim().is_empty() { "default" } else { name.trim() };
        let (rec, text) = tokens::issue(&user, name, expires);
        let entry = self.entry(
            "token.create",
            "",
            json!({"token": rec.id, "name": rec.name, "user": rec.user, "expiresMs": rec.expires_ms}),
        );
        let rec = self.write(move |w| {
            if w.user(&user)?.is_none() {
                return Err(ManageError::UnknownUser(user));
            }
            w.put_token(&rec)?;
            audit::append(w, entry)?;
            Ok(rec)
        })?;
        Ok((rec, text))
    }

    pub fn tokens(&self) -> Result<Vec<TokenInfo>, ManageError> {
        Ok(self.store.read()?.tokens()?.iter().map(TokenInfo::from).collect())
    }

    /// Revokes a token: every later call with it fails, and open streams end at their next event.
    pub fn revoke_token(&self, id: &str) -> Result<TokenInfo, ManageError> {
        let id = id.trim();
        // Accept the whole token text too: people paste what they have.
        let id = id
            .strip_prefix("tg_")
            .and_then(|rest| rest.split_once('_').map(|(id, _)| id))
            .unwrap_or(id);
        let (id, actor) = (id.to_string(), self.actor.clone());
        self.write(move |w| {
            let mut t = w.token(&id)?.ok_or_else(|| ManageError::UnknownToken(id.clone()))?;
            if t.revoked_ms.is_some() {
                return Err(ManageError::AlreadyRevoked(id));
            }
            t.revoked_ms = Some(now_ms());
            w.put_token(&t)?;
            let values = json!({"token": t.id, "name": t.name, "user": t.user});
            audit::append(w, entry_by(&actor, "token.revoke", "", values))?;
            Ok(TokenInfo::from(&t))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> (tempfile::TempDir, Manager) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, Manager::new(store, "admin-cli"))
    }

    #[test]
    fn users_are_unique_by_lowercase_email_and_groups_are_created() {
        let (_d, m) = manager();
        let u = m.add_user(" Alice@Example.com ", &["Security Team".into()]).unwrap();
        assert_eq!(u.email, "alice@example.com");
        assert!(matches!(
            m.add_user("alice@EXAMPLE.com", &[]),
            Err(ManageError::UserExists(_))
        ));
        assert!(matches!(
            m.add_user("not-an-email", &[]),
            Err(ManageError::InvalidEmail(_))
        ));
        assert!(matches!(m.add_user("a b@x", &[]), Err(ManageError::InvalidEmail(_))));
        assert!(matches!(m.add_group("Security Team"), Err(ManageError::GroupExists(_))));
        assert!(matches!(m.add_group("bad\0name"), Err(ManageError::InvalidGroup(_))));
        let groups = m.groups().unwrap();
        assert_eq!(
            groups,
            vec![GroupInfo {
                name: "Security Team".into(),
                members: vec!["alice@example.com".into()]
            }]
        );
    }

    #[test]
    fn bindings_need_a_known_subject_role_and_namespace_and_are_not_duplicated() {
        let (_d, m) = manager();
        m.add_user("a@x.io", &[]).unwrap();
        m.add_group("ops").unwrap();
        let user = Subject::User("A@x.io".into());
        let b = m.bind(&user, "Operator", "hr").unwrap();
        assert_eq!((b.subject.as_str(), b.role.as_str()), ("a@x.io", "operator"));
        assert!(matches!(
            m.bind(&user, "operator", "hr"),
            Err(ManageError::BindingExists { .. })
        ));
        assert!(matches!(
            m.bind(&user, "superuser", "hr"),
            Err(ManageError::UnknownRole(_))
        ));
        assert!(matches!(
            m.bind(&user, "viewer", "not a namespace"),
            Err(ManageError::InvalidNamespace(_))
        ));
        assert!(matches!(
            m.bind(&Subject::User("ghost@x.io".into()), "viewer", "*"),
            Err(ManageError::UnknownUser(_))
        ));
        assert!(matches!(
            m.bind(&Subject::Group("nobody".into()), "viewer", "*"),
            Err(ManageError::UnknownGroup(_))
        ));
        let all = m.bind(&Subject::Group("ops".into()), "viewer", "*").unwrap();
        assert_eq!(all.namespace, "");
        assert_eq!(m.bindings().unwrap().len(), 2);
        m.unbind(&user, "operator", "hr").unwrap();
        assert!(matches!(
            m.unbind(&user, "operator", "hr"),
            Err(ManageError::UnknownBinding { .. })
        ));
        assert_eq!(m.bindings().unwrap().len(), 1);
    }

    #[test]
    fn tokens_are_revoked_once_and_every_change_is_audited() {
        let (_d, m) = manager();
        assert!(matches!(
            m.create_token("ghost@x.io", "n", None),
            Err(ManageError::UnknownUser(_))
        ));
        m.add_user("a@x.io", &[]).unwrap();
        let (rec, text) = m.create_token("a@x.io", "laptop", None).unwrap();
        assert!(text.starts_with(&format!("tg_{}_", rec.id)));
        // The whole token text is accepted where an id is expected.
        let revoked = m.revoke_token(&text).unwrap();
        assert_eq!(revoked.status(now_ms()), "revoked");
        assert!(matches!(m.revoke_token(&rec.id), Err(ManageError::AlreadyRevoked(_))));
        assert!(matches!(m.revoke_token("nope"), Err(ManageError::UnknownToken(_))));
        let r = m.store.read().unwrap();
        let actions: Vec<String> = r
            .audit(0, 100, |_: &crate::audit::Record| true)
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, vec!["token.revoke", "token.create", "user.add"]);
        assert!(crate::audit::verify(&r).unwrap().ok);
    }

    #[test]
    fn expiry_forms() {
        assert_eq!(parse_expiry("90d").unwrap().as_secs(), 90 * 86_400);
        assert_eq!(parse_expiry("12h").unwrap().as_secs(), 12 * 3600);
        assert_eq!(parse_expiry("PT30S").unwrap().as_secs(), 30);
        for bad in ["soon", "0d", "-1d", "99999999999999999999d", ""] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
