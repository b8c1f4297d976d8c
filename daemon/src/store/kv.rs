//! Namespace KV entries and encrypted namespace secrets.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::backend::{KvRead, Table, k};
use super::{Reader, Result, Writer, decode, encode, get_json, key_text, scan_range};

/// A typed KV value with an optional expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub value: serde_json::Value,
    /// STRING, NUMBER, BOOLEAN or JSON.
    pub kind: String,
    pub expires_ms: Option<i64>,
    pub updated_ms: i64,
}

/// `{namespace}\0{key}`: the KV table's and the secrets table's (nonce || AES-256-GCM
/// ciphertext) key.
fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}\0{name}")
}

fn list<T>(
    r: &dyn KvRead,
    table: Table,
    namespace: &str,
    f: impl Fn(&str, &[u8]) -> Result<T>,
) -> Result<Vec<(String, T)>> {
    let lo = format!("{namespace}\0");
    let hi = format!("{namespace}\x01");
    let mut out = Vec::new();
    scan_range(r, table, &lo, &hi, &mut |key, v| {
        let key = key_text(key);
        let name = key.split_once('\0').map(|(_, n)| n.to_string()).unwrap_or_default();
        out.push((name, f(&key, v)?));
        Ok(true)
    })?;
    Ok(out)
}

/// Any one sealed secret (the first), to try a key on.
fn first_sealed_secret(r: &dyn KvRead) -> Result<Option<Vec<u8>>> {
    let mut out = None;
    r.scan(
        Table::Secrets,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |_, v| {
            out = Some(v.to_vec());
            Ok(false)
        },
    )?;
    Ok(out)
}

impl Reader {
    pub fn kv(&self, namespace: &str, name: &str) -> Result<Option<KvEntry>> {
        get_json(self.kv_read(), Table::Kv, &key(namespace, name))
    }

    pub fn kv_list(&self, namespace: &str) -> Result<Vec<(String, KvEntry)>> {
        list(self.kv_read(), Table::Kv, namespace, |k, v| decode("kv", k, v))
    }

    pub fn secret_sealed(&self, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
        self.kv_read().get(Table::Secrets, k(&key(namespace, name)))
    }

    /// Names of the secrets of one namespace (never their values).
    pub fn secret_names(&self, namespace: &str) -> Result<Vec<String>> {
        Ok(list(self.kv_read(), Table::Secrets, namespace, |_, _| Ok(()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }
}

impl Writer {
    /// Any one sealed secret, to try a key on.
    pub fn first_sealed_secret(&self) -> Result<Option<Vec<u8>>> {
        first_sealed_secret(self.kv_read())
    }

    pub fn kv(&self, namespace: &str, name: &str) -> Result<Option<KvEntry>> {
        get_json(self.kv_read(), Table::Kv, &key(namespace, name))
    }

    pub fn put_kv(&mut self, namespace: &str, name: &str, entry: &KvEntry) -> Result<()> {
        self.kvw().put(Table::Kv, k(&key(namespace, name)), &encode(entry))
    }

    /// Whether the entry existed.
    pub fn delete_kv(&mut self, namespace: &str, name: &str) -> Result<bool> {
        self.kvw().delete(Table::Kv, k(&key(namespace, name)))
    }

    pub fn put_secret_sealed(&mut self, namespace: &str, name: &str, sealed: &[u8]) -> Result<()> {
        self.kvw().put(Table::Secrets, k(&key(namespace, name)), sealed)
    }

    pub fn delete_secret(&mut self, namespace: &str, name: &str) -> Result<bool> {
        self.kvw().delete(Table::Secrets, k(&key(namespace, name)))
    }
}
