//! Delegations (out-of-office): one user's HumanTask decisions also offered to another.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::backend::{KvRead, Table, k};
use super::{Reader, Result, Writer, decode, encode, get_json, key_text};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelegationRecord {
    pub id: String,
    /// Whose decisions are delegated.
    pub from_user: String,
    /// Who may take them meanwhile.
    pub to_user: String,
    /// Namespace prefix covered; empty = every namespace.
    pub namespace: String,
    /// Start of the first day and end of the last day, in ms since the epoch (UTC).
    pub from_ms: i64,
    pub until_ms: i64,
    pub created_by: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

impl DelegationRecord {
    /// Whether it holds at `now` (not revoked, inside its dates).
    pub fn holds_at(&self, now: i64) -> bool {
        self.revoked_ms.is_none() && self.from_ms <= now && now < self.until_ms
    }
}

fn all(r: &dyn KvRead) -> Result<Vec<DelegationRecord>> {
    let mut out = Vec::new();
    r.scan(
        Table::Delegations,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |key, v| {
            out.push(decode("delegations", &key_text(key), v)?);
            Ok(true)
        },
    )?;
    Ok(out)
}

impl Reader {
    pub fn delegations(&self) -> Result<Vec<DelegationRecord>> {
        all(self.kv_read())
    }
}

impl Writer {
    pub fn delegations(&self) -> Result<Vec<DelegationRecord>> {
        all(self.kv_read())
    }

    pub fn delegation(&self, id: &str) -> Result<Option<DelegationRecord>> {
        get_json(self.kv_read(), Table::Delegations, id)
    }

    pub fn put_delegation(&mut self, d: &DelegationRecord) -> Result<()> {
        self.kvw().put(Table::Delegations, k(&d.id), &encode(d))
    }
}
