//! Tables and typed operations for users, groups, role bindings and tokens.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::backend::{KvRead, Table, k};
use super::{Reader, Result, Writer, decode, encode, get_json, key_text};

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

fn bindings(r: &dyn KvRead) -> Result<Vec<Binding>> {
    let mut out = Vec::new();
    r.scan(
        Table::Bindings,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |key, _| {
            if let Some(b) = Binding::decode(&key_text(key)) {
                out.push(b);
            }
            Ok(true)
        },
    )?;
    Ok(out)
}

fn all<T: serde::de::DeserializeOwned>(r: &dyn KvRead, table: Table) -> Result<Vec<T>> {
    let mut out = Vec::new();
    r.scan(table, Bound::Unbounded, Bound::Unbounded, false, &mut |key, v| {
        out.push(decode(table.name(), &key_text(key), v)?);
        Ok(true)
    })?;
    Ok(out)
}

impl Reader {
    pub fn user(&self, email: &str) -> Result<Option<UserRecord>> {
        get_json(self.kv_read(), Table::Users, email)
    }

    pub fn users(&self) -> Result<Vec<UserRecord>> {
        all(self.kv_read(), Table::Users)
    }

    pub fn groups(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        self.kv_read().scan(
            Table::Groups,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut |key, _| {
                out.push(key_text(key));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    pub fn bindings(&self) -> Result<Vec<Binding>> {
        bindings(self.kv_read())
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        get_json(self.kv_read(), Table::Tokens, id)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        all(self.kv_read(), Table::Tokens)
    }
}

impl Writer {
    pub fn user(&self, email: &str) -> Result<Option<UserRecord>> {
        get_json(self.kv_read(), Table::Users, email)
    }

    pub fn put_user(&mut self, u: &UserRecord) -> Result<()> {
        self.kvw().put(Table::Users, k(&u.email), &encode(u))
    }

    pub fn has_group(&self, name: &str) -> Result<bool> {
        Ok(self.kv_read().get(Table::Groups, k(name))?.is_some())
    }

    pub fn put_group(&mut self, name: &str) -> Result<()> {
        self.kvw().put(Table::Groups, k(name), &[])
    }

    pub fn put_binding(&mut self, b: &Binding) -> Result<()> {
        self.kvw().put(Table::Bindings, k(&b.key()), &[])
    }

    pub fn has_binding(&self, b: &Binding) -> Result<bool> {
        Ok(self.kv_read().get(Table::Bindings, k(&b.key()))?.is_some())
    }

    /// Removes a binding; whether it existed.
    pub fn delete_binding(&mut self, b: &Binding) -> Result<bool> {
        self.kvw().delete(Table::Bindings, k(&b.key()))
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        get_json(self.kv_read(), Table::Tokens, id)
    }

    pub fn put_token(&mut self, t: &TokenRecord) -> Result<()> {
        self.kvw().put(Table::Tokens, k(&t.id), &encode(t))
    }
}
