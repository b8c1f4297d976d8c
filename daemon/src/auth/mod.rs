//! Users, groups, tokens and namespace roles.
//!
//! Tokens look like `tg_<id>_<secret>`; only a salted SHA-256 of the secret is stored, and it is
//! compared in constant time. `--insecure-no-auth` treats every caller as a local admin.

pub mod flow_scope;
mod manage;
mod tokens;

pub use manage::{
    ChangeFn as AdminChange, Commit, GroupInfo, ManageError, ManageError as TokenError, Manager, Subject, TokenInfo,
    normalize_email, parse_expiry,
};
pub use tokens::{create_token, first_start_hint, principal_of_user};

use crate::engine::Actor;

/// What a role allows, cumulative: viewer < operator < admin. `metrics` sits below them all:
/// it allows reading `/metrics` and `stats` and nothing else (see [`Principal::may_read_metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `/metrics` and `stats` only (for a Prometheus scraper's token)
    Metrics,
    /// list, get, logs
    Viewer,
    /// + start, resume, kill
    Operator,
    /// + flows, secrets, KV, users, audit
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "metrics" => Some(Role::Metrics),
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A role on a namespace prefix, granted to the user directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub namespace: String,
    pub via_group: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub groups: Vec<String>,
    pub grants: Vec<Grant>,
    /// The token this principal authenticated with (re-checked by long-lived streams).
    pub token_id: Option<String>,
}

impl Principal {
    /// Whether the caller holds at least `role` on `namespace`.
    pub fn may(&self, role: Role, namespace: &str) -> bool {
        self.grants
            .iter()
            .any(|g| g.role >= role && crate::store::namespace_within(namespace, &g.namespace))
    }

    /// Daemon-wide figures name every flow and approver: they need the `metrics` role or `admin`
    /// bound on every namespace.
    pub fn may_read_metrics(&self) -> bool {
        self.grants
            .iter()
            .any(|g| g.namespace.is_empty() && matches!(g.role, Role::Metrics | Role::Admin))
    }

    pub fn actor(&self) -> Actor {
        Actor::new(self.user.clone(), self.groups.clone())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Deliberately says nothing about which part of the token was wrong.
    #[error("invalid or missing bearer token")]
    Unauthenticated,
    #[error("storage error")]
    Storage,
}

/// The authority that turns bearer tokens into principals.
pub struct Auth {
    insecure: bool,
    store: Option<crate::store::Store>,
    /// Bumped when a token is revoked or a role removed on the running daemon, so open streams
    /// re-check their caller at once instead of at their next event.
    changes: tokio::sync::watch::Sender<u64>,
    /// Token -> the principal it authenticated as, so a client's every call (a console polling,
    /// a script resuming thousands) skips the token, user and bindings reads and the hash.
    /// An entry holds only while no rights changed since it was read (see [`rights_generation`])
    /// and the token has not expired.
    principals: std::sync::Mutex<std::collections::HashMap<String, CachedPrincipal>>,
}

struct CachedPrincipal {
    generation: u64,
    expires_ms: Option<i64>,
    principal: Principal,
}

/// Most tokens remembered at once; the cache starts over when full.
const PRINCIPAL_CACHE_MAX: usize = 4096;

static RIGHTS_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bumped after every change of users, groups, roles or tokens is committed on the running
/// daemon: principals remembered before it are read again.
pub fn rights_generation() -> u64 {
    RIGHTS_GENERATION.load(std::sync::atomic::Ordering::SeqCst)
}

/// Called once an administrative change is committed (and before its caller is answered).
pub fn bump_rights_generation() {
    RIGHTS_GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// The binding kind of roles granted to the flows of a namespace (see [`flow_scope`]).
pub const FLOWS_SUBJECT: &str = "flows";

/// The principal every caller becomes with `--insecure-no-auth`.
pub const LOCAL_ADMIN: &str = "local-admin";

/// The audit log's user for changes made with `tollgated admin` directly on the data dir.
pub const LOCAL_ADMIN_CLI: &str = "admin-cli";

impl Auth {
    /// No authentication: every caller is an admin of every namespace (loopback development only).
    pub fn insecure() -> Auth {
        Auth {
            insecure: true,
            store: None,
            changes: tokio::sync::watch::Sender::new(0),
            principals: Default::default(),
        }
    }

    /// Tokens checked against the store (or no checks at all when `insecure`).
    pub fn from_store(store: crate::store::Store, insecure: bool) -> Auth {
        Auth {
            insecure,
            store: Some(store),
            changes: tokio::sync::watch::Sender::new(0),
            principals: Default::default(),
        }
    }

    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// Tells open streams that rights may have shrunk.
    pub fn rights_changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes as `rights_changed` announces them.
    pub fn rights_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The caller's current rights, for long-lived streams: `None` once the token is no longer valid.
    pub fn recheck(&self, p: &Principal) -> Option<Principal> {
        if self.insecure {
            return Some(p.clone());
        }
        let store = self.store.as_ref()?;
        tokens::principal_for_token_id(store, p.token_id.as_deref()?).ok()
    }

    /// The current rights behind a token id (the approval page's sessions carry only the id):
    /// `None` once the token is revoked or expired. With `--insecure-no-auth`, the local admin.
    pub fn principal_for_token_id(&self, id: &str) -> Option<Principal> {
        if self.insecure {
            return self.authenticate(None).ok();
        }
        tokens::principal_for_token_id(self.store.as_ref()?, id).ok()
    }

    /// Checks `authorization: Bearer <token>`; `authorization` is the header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        if self.insecure {
            return Ok(Principal {
                user: LOCAL_ADMIN.into(),
                groups: vec![],
                grants: vec![Grant {
                    role: Role::Admin,
                    namespace: String::new(),
                    via_group: None,
                }],
                token_id: None,
            });
        }
        let store = self.store.as_ref().ok_or(AuthError::Unauthenticated)?;
        let header = authorization.ok_or(AuthError::Unauthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Unauthenticated)?
            .trim();
        // Read before the store: a change committed after this read bumps it, so what is
        // cached below from an older snapshot is never used after that change.
        let generation = rights_generation();
        let now = crate::engine::ids::now_ms();
        if let Ok(cache) = self.principals.lock()
            && let Some(c) = cache.get(token)
            && c.generation == generation
            && c.expires_ms.is_none_or(|t| t > now)
        {
            return Ok(c.principal.clone());
        }
        let (principal, expires_ms) = tokens::authenticate_until(store, token)?;
        if let Ok(mut cache) = self.principals.lock() {
            if cache.len() >= PRINCIPAL_CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                token.to_string(),
                CachedPrincipal {
                    generation,
                    expires_ms,
                    principal: principal.clone(),
                },
            );
        }
        Ok(principal)
    }
}

impl Principal {
    /// Namespace prefixes where the caller holds at least `role`; `None` when that is every namespace.
    pub fn visible_namespaces(&self, role: Role) -> Option<Vec<String>> {
        let prefixes: Vec<String> = self
            .grants
            .iter()
            .filter(|g| g.role >= role)
            .map(|g| g.namespace.clone())
            .collect();
        if prefixes.iter().any(|p| p.is_empty()) {
            None
        } else {
            Some(prefixes)
        }
    }
}
