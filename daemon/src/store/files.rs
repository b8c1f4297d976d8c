//! Execution files (Kestra's internal storage, `kestra:///…` URIs), kept in the store itself so
//! they survive `kill -9`, live on PostgreSQL like every other table, travel with `migrate`, and
//! go when retention deletes their execution.
//!
//! A file is a run of rows `{execution_id}\0{path}\0{chunk:08x}` of at most [`CHUNK`] bytes each
//! (an empty file is one empty chunk); keys lead with the execution id so that deleting an
//! execution's files is one range scan. Paths and sizes are checked by `engine::files`.

use super::backend::{KvRead, KvWrite, Table, k};
use super::{Reader, Result, Writer, key_text, scan_range};

/// Largest row: big files are split so no single value is huge (PostgreSQL rows, redb pages).
pub const CHUNK: usize = 1 << 20;

fn prefix(execution_id: &str, path: &str) -> (String, String) {
    (
        format!("{execution_id}\0{path}\0"),
        format!("{execution_id}\0{path}\x01"),
    )
}

/// The size of a file, None when there is none.
fn size_in(r: &dyn KvRead, execution_id: &str, path: &str) -> Result<Option<u64>> {
    let (lo, hi) = prefix(execution_id, path);
    let mut size = None;
    scan_range(r, Table::Files, &lo, &hi, &mut |_, v| {
        *size.get_or_insert(0u64) += v.len() as u64;
        Ok(true)
    })?;
    Ok(size)
}

/// The content of a file, None when there is none.
fn read_in(r: &dyn KvRead, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>> {
    let (lo, hi) = prefix(execution_id, path);
    let mut out: Option<Vec<u8>> = None;
    scan_range(r, Table::Files, &lo, &hi, &mut |_, v| {
        out.get_or_insert_with(Vec::new).extend_from_slice(v);
        Ok(true)
    })?;
    Ok(out)
}

/// Every file of an execution: (path, size), in path order.
fn list_in(r: &dyn KvRead, execution_id: &str) -> Result<Vec<(String, u64)>> {
    let lo = format!("{execution_id}\0");
    let hi = format!("{execution_id}\x01");
    let mut out: Vec<(String, u64)> = Vec::new();
    scan_range(r, Table::Files, &lo, &hi, &mut |key, v| {
        let key = key_text(key);
        let path = key.split('\0').nth(1).unwrap_or_default().to_string();
        match out.last_mut() {
            Some((p, size)) if *p == path => *size += v.len() as u64,
            _ => out.push((path, v.len() as u64)),
        }
        Ok(true)
    })?;
    Ok(out)
}

fn delete_in(w: &mut dyn KvWrite, lo: &str, hi: &str) -> Result<u64> {
    let mut keys = Vec::new();
    scan_range(w, Table::Files, lo, hi, &mut |key, _| {
        keys.push(key.to_vec());
        Ok(true)
    })?;
    for key in &keys {
        w.erase(Table::Files, key)?;
    }
    Ok(keys.len() as u64)
}

impl Reader {
    pub fn file(&self, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>> {
        read_in(self.kv_read(), execution_id, path)
    }

    pub fn file_size(&self, execution_id: &str, path: &str) -> Result<Option<u64>> {
        size_in(self.kv_read(), execution_id, path)
    }

    pub fn files_of(&self, execution_id: &str) -> Result<Vec<(String, u64)>> {
        list_in(self.kv_read(), execution_id)
    }
}

impl Writer {
    pub fn file(&self, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>> {
        read_in(self.kv_read(), execution_id, path)
    }

    pub fn file_size(&self, execution_id: &str, path: &str) -> Result<Option<u64>> {
        size_in(self.kv_read(), execution_id, path)
    }

    /// Stores (or replaces) a file.
    pub fn put_file(&mut self, execution_id: &str, path: &str, content: &[u8]) -> Result<()> {
        let (lo, hi) = prefix(execution_id, path);
        delete_in(self.kvw(), &lo, &hi)?;
        let mut chunks: Vec<&[u8]> = content.chunks(CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        for (i, chunk) in chunks.into_iter().enumerate() {
            let key = format!("{lo}{i:08x}");
            self.kvw().put(Table::Files, k(&key), chunk)?;
        }
        Ok(())
    }

    /// Removes every file of an execution (retention); the number of rows removed.
    pub fn delete_files(&mut self, execution_id: &str) -> Result<u64> {
        let lo = format!("{execution_id}\0");
        let hi = format!("{execution_id}\x01");
        delete_in(self.kvw(), &lo, &hi)
    }
}
