//! Approval-page sessions signed out before their expiry. Kept in the store, not in one daemon's
//! memory, so a sign-out holds after a restart or crash and on every daemon of a shared database.
//! Rows live in the `meta` table under one prefix and go once their session would have expired.

use super::backend::{KvRead, Table, k};
use super::{Reader, Result, Writer, scan_range};

/// Meta keys `page_signed_out\0{nonce}` -> the session's expiry (ms, 8 bytes big-endian).
const NAME: &str = "page_signed_out";

fn key(nonce: &str) -> String {
    format!("{NAME}\0{nonce}")
}

fn expiry(v: &[u8]) -> i64 {
    <[u8; 8]>::try_from(v).map(i64::from_be_bytes).unwrap_or(i64::MAX)
}

fn signed_out(r: &dyn KvRead, nonce: &str) -> Result<bool> {
    Ok(r.get(Table::Meta, k(&key(nonce)))?.is_some())
}

impl Reader {
    /// Whether the page session with `nonce` was signed out.
    pub fn page_session_signed_out(&self, nonce: &str) -> Result<bool> {
        signed_out(self.kv_read(), nonce)
    }
}

impl Writer {
    /// Remembers that the session `nonce` (valid until `expires_ms`) was signed out, and forgets
    /// sessions that have expired by `now_ms` (their cookies are refused as expired anyway).
    pub fn sign_out_page_session(&mut self, nonce: &str, expires_ms: i64, now_ms: i64) -> Result<()> {
        let mut expired = Vec::new();
        let (lo, hi) = (format!("{NAME}\0"), format!("{NAME}\x01"));
        scan_range(self.kv_read(), Table::Meta, &lo, &hi, &mut |key, v| {
            if expiry(v) <= now_ms {
                expired.push(key.to_vec());
            }
            Ok(true)
        })?;
        for key in expired {
            self.kvw().erase(Table::Meta, &key)?;
        }
        if expires_ms > now_ms {
            self.kvw().put(Table::Meta, k(&key(nonce)), &expires_ms.to_be_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn a_sign_out_is_kept_until_its_session_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|w| {
                w.sign_out_page_session("n1", 1_000, 0)?;
                w.sign_out_page_session("n2", 5_000, 0)
            })
            .unwrap();
        let r = store.read().unwrap();
        assert!(r.page_session_signed_out("n1").unwrap());
        assert!(!r.page_session_signed_out("n3").unwrap());
        drop(r);
        // A later sign-out drops what has expired meanwhile, and keeps the rest.
        store.write(|w| w.sign_out_page_session("n3", 9_000, 2_000)).unwrap();
        let r = store.read().unwrap();
        assert!(!r.page_session_signed_out("n1").unwrap());
        assert!(r.page_session_signed_out("n2").unwrap());
        assert!(r.page_session_signed_out("n3").unwrap());
        // Other meta rows are untouched.
        assert!(r.meta("page_signed_out").unwrap().is_none());
    }
}
