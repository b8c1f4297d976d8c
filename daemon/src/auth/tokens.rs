//! Creating and checking bearer tokens.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::manage::{ManageError, Manager};
use super::{AuthError, Grant, Principal, Role};
use crate::engine::ids::{now_ms, random_id};
use crate::store::{Store, TokenRecord};

fn hash(salt: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(secret.as_bytes());
    hex::encode(h.finalize())
}

/// A new token for `user`: the record to store (salted hash only) and the text shown once,
/// `tg_<id>_<secret>` with 32 random bytes of secret. The id lets a check find the record
/// without comparing against every stored hash.
pub(super) fn issue(user: &str, name: &str, expires: Option<std::time::Duration>) -> (TokenRecord, String) {
    let mut secret_bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret_bytes);
    let secret = hex::encode(secret_bytes);
    let mut salt_bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt_bytes);
    let salt = hex::encode(salt_bytes);
    let now = now_ms();
    let id = random_id(12);
    let rec = TokenRecord {
        id: id.clone(),
        name: name.to_string(),
        user: user.to_string(),
        hash: hash(&salt, &secret),
        salt,
        created_ms: now,
        expires_ms: expires.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
        revoked_ms: None,
    };
    (rec, format!("tg_{id}_{secret}"))
}

/// Creates a token for `user` as the local administrator; returns (record, the token text shown once).
pub fn create_token(
    store: &Store,
    user: &str,
    name: &str,
    expires: Option<std::time::Duration>,
) -> Result<(TokenRecord, String), ManageError> {
    Manager::new(store.clone(), super::LOCAL_ADMIN_CLI).create_token(user, name, expires)
}

/// Checks a token; every failure is the same `Unauthenticated` (no hint which part was wrong).
/// Also returns when the token expires (ms; `None`: never).
pub fn authenticate_until(store: &Store, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
    let rest = token.strip_prefix("tg_").ok_or(AuthError::Unauthenticated)?;
    let (id, secret) = rest.split_once('_').ok_or(AuthError::Unauthenticated)?;
    let r = store.read().map_err(|_| AuthError::Storage)?;
    let rec = r
        .token(id)
        .map_err(|_| AuthError::Storage)?
        .ok_or(AuthError::Unauthenticated)?;
    let computed = hash(&rec.salt, secret);
    if !bool::from(computed.as_bytes().ct_eq(rec.hash.as_bytes())) {
        return Err(AuthError::Unauthenticated);
    }
    if rec.revoked_ms.is_some() || rec.expires_ms.is_some_and(|t| t <= now_ms()) {
        return Err(AuthError::Unauthenticated);
    }
    Ok((principal(&r, &rec)?, rec.expires_ms))
}

fn principal(r: &crate::store::Reader, rec: &TokenRecord) -> Result<Principal, AuthError> {
    let mut p = principal_of_user(r, &rec.user)?;
    p.token_id = Some(rec.id.clone());
    Ok(p)
}

/// A user's own rights (groups and grants), without a token: what a delegate acts with.
pub fn principal_of_user(r: &crate::store::Reader, email: &str) -> Result<Principal, AuthError> {
    let user = r
        .user(email)
        .map_err(|_| AuthError::Storage)?
        .ok_or(AuthError::Unauthenticated)?;
    let mut grants = Vec::new();
    for b in r.bindings().map_err(|_| AuthError::Storage)? {
        let applies = (b.kind == "user" && b.subject.eq_ignore_ascii_case(&user.email))
            || (b.kind == "group" && user.groups.contains(&b.subject));
        if let (true, Some(role)) = (applies, Role::parse(&b.role)) {
            let ns = if b.namespace == "*" {
                String::new()
            } else {
                b.namespace.clone()
            };
            grants.push(Grant {
                role,
                namespace: ns,
                via_group: (b.kind == "group").then(|| b.subject.clone()),
            });
        }
    }
    Ok(Principal {
        user: user.email,
        groups: user.groups,
        grants,
        token_id: None,
    })
}

/// The current rights behind a token id, or an error once it is revoked or expired.
pub fn principal_for_token_id(store: &Store, id: &str) -> Result<Principal, AuthError> {
    let r = store.read().map_err(|_| AuthError::Storage)?;
    let rec = r
        .token(id)
        .map_err(|_| AuthError::Storage)?
        .ok_or(AuthError::Unauthenticated)?;
    if rec.revoked_ms.is_some() || rec.expires_ms.is_some_and(|t| t <= now_ms()) {
        return Err(AuthError::Unauthenticated);
    }
    principal(&r, &rec)
}

/// What to tell the operator when no user exists yet.
pub fn first_start_hint(store: &Store, data_dir: &std::path::Path) -> Option<String> {
    let users = store.read().ok()?.users().ok()?;
    if !users.is_empty() {
        return None;
    }
    let d = data_dir.display().to_string();
    let d = if d.contains(|c: char| c.is_whitespace() || c == '\'') {
        format!("'{}'", d.replace('\'', "'\\''"))
    } else {
        d
    };
    Some(format!(
        "no users yet. Stop the daemon and create the first admin:\n  tollgated admin --data-dir {d} user add you@example.com\n  tollgated admin --data-dir {d} role bind --user you@example.com --role admin --namespace '*'\n  tollgated admin --data-dir {d} token create --user you@example.com --name laptop\nthen `tollgate login` with the printed token"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserRecord;

    fn authenticate(store: &Store, token: &str) -> Result<Principal, AuthError> {
        authenticate_until(store, token).map(|(p, _)| p)
    }

    #[test]
    fn tokens_authenticate_until_revoked_or_expired_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.put_user(&UserRecord {
                    email: "a@x".into(),
                    groups: vec!["ops".into()],
                    created_ms: 0,
                })
            })
            .unwrap();
        let (rec, token) = create_token(&store, "a@x", "laptop", None).unwrap();
        assert!(!rec.hash.contains(token.rsplit('_').next().unwrap()));
        let p = authenticate(&store, &token).unwrap();
        assert_eq!(p.user, "a@x");
        assert_eq!(p.groups, vec!["ops".to_string()]);
        assert_eq!(
            authenticate(&store, &format!("{token}x")),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(authenticate(&store, "tg_nope_nope"), Err(AuthError::Unauthenticated));
        let (_, short) = create_token(&store, "a@x", "short", Some(std::time::Duration::from_millis(1))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(authenticate(&store, &short), Err(AuthError::Unauthenticated));
        assert!(matches!(
            create_token(&store, "ghost@x", "n", None),
            Err(ManageError::UnknownUser(_))
        ));
    }
}
