//! Tables and typed operations for users, groups, role bindings and tokens.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Reader, Result, Writer, decode, encode};

/// email → UserRecord
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("auth_users");
/// group name → ()
const GROUPS: TableDefinition<&str, ()> = TableDefinition::new("auth_groups");
/// `{kind}\0{subject}\0{role}\0{namespace}` → ()
const BINDINGS: TableDefinition<&str, ()> = TableDefinition::new("auth_bindings");
/// token id → TokenRecord
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("auth_tokens");

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(USERS)?;
    tx.open_table(GROUPS)?;
    tx.open_table(BINDINGS)?;
    tx.open_table(TOKENS)?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub email: String,
    pub groups: Vec<String>,
    pub created_ms: i64,
}

/// A role granted to a user or a group on a namespace prefix (empty = every namespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// "user" or "group".
    pub kind: String,
    pub subject: String,
    pub role: String,
    pub namespace: String,
}

impl Binding {
    fn key(&self) -> String {
        format!("{}\0{}\0{}\0{}", self.kind, self.subject, self.role, self.namespace)
    }
    fn decode(k: &str) -> Option<Binding> {
        let mut p = k.split('\0');
        Some(Binding {
            kind: p.next()?.into(),
            subject: p.next()?.into(),
            role: p.next()?.into(),
            namespace: p.next()?.into(),
        })
    }
}

/// A token as stored: only a salted hash of its secret part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub user: String,
    pub salt: String,
    pub hash: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

fn bindings(t: &impl ReadableTable<&'static str, ()>) -> Result<Vec<Binding>> {
    let mut out = Vec::new();
    for item in t.iter()? {
        let (k, _) = item?;
        if let Some(b) = Binding::decode(k.value()) {
            out.push(b);
        }
    }
    Ok(out)
}

impl Reader {
    pub fn user(&self, email: &str) -> Result<Option<UserRecord>> {
        let t = self.tx.open_table(USERS)?;
        match t.get(email)? {
            Some(v) => Ok(Some(decode("auth_users", email, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn users(&self) -> Result<Vec<UserRecord>> {
        let t = self.tx.open_table(USERS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push(decode("auth_users", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn groups(&self) -> Result<Vec<String>> {
        let t = self.tx.open_table(GROUPS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            out.push(item?.0.value().to_string());
        }
        Ok(out)
    }

    pub fn bindings(&self) -> Result<Vec<Binding>> {
        bindings(&self.tx.open_table(BINDINGS)?)
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let t = self.tx.open_table(TOKENS)?;
        match t.get(id)? {
            Some(v) => Ok(Some(decode("auth_tokens", id, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let t = self.tx.open_table(TOKENS)?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push(decode("auth_tokens", k.value(), v.value())?);
        }
        Ok(out)
    }
}

impl Writer {
    pub fn user(&self, email: &str) -> Result<Option<UserRecord>> {
        let t = self.tx.open_table(USERS)?;
        let v = t.get(email)?;
        match v {
            Some(v) => Ok(Some(decode("auth_users", email, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn put_user(&mut self, u: &UserRecord) -> Result<()> {
        self.tx
            .open_table(USERS)?
            .insert(u.email.as_str(), encode(u).as_slice())?;
        Ok(())
    }

    pub fn has_group(&self, name: &str) -> Result<bool> {
        Ok(self.tx.open_table(GROUPS)?.get(name)?.is_some())
    }

    pub fn put_group(&mut self, name: &str) -> Result<()> {
        self.tx.open_table(GROUPS)?.insert(name, ())?;
        Ok(())
    }

    pub fn put_binding(&mut self, b: &Binding) -> Result<()> {
        self.tx.open_table(BINDINGS)?.insert(b.key().as_str(), ())?;
        Ok(())
    }

    pub fn has_binding(&self, b: &Binding) -> Result<bool> {
        Ok(self.tx.open_table(BINDINGS)?.get(b.key().as_str())?.is_some())
    }

    /// Removes a binding; whether it existed.
    pub fn delete_binding(&mut self, b: &Binding) -> Result<bool> {
        Ok(self.tx.open_table(BINDINGS)?.remove(b.key().as_str())?.is_some())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let t = self.tx.open_table(TOKENS)?;
        let v = t.get(id)?;
        match v {
            Some(v) => Ok(Some(decode("auth_tokens", id, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn put_token(&mut self, t: &TokenRecord) -> Result<()> {
        self.tx
            .open_table(TOKENS)?
            .insert(t.id.as_str(), encode(t).as_slice())?;
        Ok(())
    }
}
