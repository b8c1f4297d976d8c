//! Delegations (out-of-office): one user's HumanTask decisions also offered to another.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Reader, Result, Writer, decode, encode};

/// delegation id → DelegationRecord
const DELEGATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("delegations");

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(DELEGATIONS)?;
    Ok(())
}

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

fn all(t: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Vec<DelegationRecord>> {
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, v) = item?;
        out.push(decode("delegations", k.value(), v.value())?);
    }
    Ok(out)
}

impl Reader {
    pub fn delegations(&self) -> Result<Vec<DelegationRecord>> {
        all(&self.tx.open_table(DELEGATIONS)?)
    }
}

impl Writer {
    pub fn delegations(&self) -> Result<Vec<DelegationRecord>> {
        all(&self.tx.open_table(DELEGATIONS)?)
    }

    pub fn delegation(&self, id: &str) -> Result<Option<DelegationRecord>> {
        let t = self.tx.open_table(DELEGATIONS)?;
        match t.get(id)? {
            Some(v) => Ok(Some(decode("delegations", id, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn put_delegation(&mut self, d: &DelegationRecord) -> Result<()> {
        let mut t = self.tx.open_table(DELEGATIONS)?;
        t.insert(d.id.as_str(), encode(d).as_slice())?;
        Ok(())
    }
}
