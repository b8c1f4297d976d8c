//! Namespace KV entries and encrypted namespace secrets.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Reader, Result, Writer, decode, encode};

/// `{namespace}\0{key}` → KvEntry (JSON).
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// `{namespace}\0{name}` → nonce || AES-256-GCM ciphertext of the secret value.
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

pub(super) fn create_tables(tx: &redb::WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(KV)?;
    tx.open_table(SECRETS)?;
    Ok(())
}

/// A typed KV value with an optional expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub value: serde_json::Value,
    /// STRING, NUMBER, BOOLEAN or JSON.
    pub kind: String,
    pub expires_ms: Option<i64>,
    pub updated_ms: i64,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}\0{name}")
}

fn list<T>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    namespace: &str,
    f: impl Fn(&str, &[u8]) -> Result<T>,
) -> Result<Vec<(String, T)>> {
    let lo = format!("{namespace}\0");
    let hi = format!("{namespace}\x01");
    let mut out = Vec::new();
    for item in t.range::<&str>(lo.as_str()..hi.as_str())? {
        let (k, v) = item?;
        let name = k
            .value()
            .split_once('\0')
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        out.push((name.clone(), f(k.value(), v.value())?));
    }
    Ok(out)
}

impl Reader {
    pub fn kv(&self, namespace: &str, name: &str) -> Result<Option<KvEntry>> {
        let t = self.tx.open_table(KV)?;
        let k = key(namespace, name);
        match t.get(k.as_str())? {
            Some(v) => Ok(Some(decode("kv", &k, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn kv_list(&self, namespace: &str) -> Result<Vec<(String, KvEntry)>> {
        let t = self.tx.open_table(KV)?;
        list(&t, namespace, |k, v| decode("kv", k, v))
    }

    pub fn secret_sealed(&self, namespace: &str, name: &str) -> Result<Option<Vec<u8>>> {
        let t = self.tx.open_table(SECRETS)?;
        Ok(t.get(key(namespace, name).as_str())?.map(|v| v.value().to_vec()))
    }

    /// Names of the secrets of one namespace (never their values).
    pub fn secret_names(&self, namespace: &str) -> Result<Vec<String>> {
        let t = self.tx.open_table(SECRETS)?;
        Ok(list(&t, namespace, |_, _| Ok(()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }
}

impl Writer {
    pub fn kv(&self, namespace: &str, name: &str) -> Result<Option<KvEntry>> {
        let t = self.tx.open_table(KV)?;
        let k = key(namespace, name);
        let v = t.get(k.as_str())?;
        match v {
            Some(v) => Ok(Some(decode("kv", &k, v.value())?)),
            None => Ok(None),
        }
    }

    pub fn put_kv(&mut self, namespace: &str, name: &str, entry: &KvEntry) -> Result<()> {
        let mut t = self.tx.open_table(KV)?;
        t.insert(key(namespace, name).as_str(), encode(entry).as_slice())?;
        Ok(())
    }

    /// Whether the entry existed.
    pub fn delete_kv(&mut self, namespace: &str, name: &str) -> Result<bool> {
        let mut t = self.tx.open_table(KV)?;
        Ok(t.remove(key(namespace, name).as_str())?.is_some())
    }

    pub fn put_secret_sealed(&mut self, namespace: &str, name: &str, sealed: &[u8]) -> Result<()> {
        let mut t = self.tx.open_table(SECRETS)?;
        t.insert(key(namespace, name).as_str(), sealed)?;
        Ok(())
    }

    pub fn delete_secret(&mut self, namespace: &str, name: &str) -> Result<bool> {
        let mut t = self.tx.open_table(SECRETS)?;
        Ok(t.remove(key(namespace, name).as_str())?.is_some())
    }
}
