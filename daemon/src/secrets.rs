//! Namespace secrets, encrypted at rest with AES-256-GCM. The key comes from
//! `TOLLGATE_SECRET_KEY` (base64 of 32 bytes) or `DATA_DIR/secret.key` (created 0600 on first use),
//! so a copy of the redb file alone reveals nothing.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("TOLLGATE_SECRET_KEY must be base64 of exactly 32 bytes")]
    BadEnvKey,
    #[error("cannot read or create the secret key file {path}: {message}")]
    KeyFile { path: String, message: String },
    /// Never says more: the value must not leak through an error.
    #[error("secret `{0}` cannot be decrypted with this daemon's key")]
    Decrypt(String),
}

/// Seals and opens secret values.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Where the key came from, for errors: `TOLLGATE_SECRET_KEY` or the key file's path.
    origin: String,
    /// The key itself, only to derive keys for other purposes ([`SecretBox::derive_key`]).
    root: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

const NONCE_LEN: usize = 12;

impl SecretBox {
    /// The key from the environment, else from (or created in) `data_dir`.
    pub fn open(data_dir: &Path) -> Result<SecretBox, SecretError> {
        let key_path = data_dir.join("secret.key");
        let mut origin = "TOLLGATE_SECRET_KEY".to_string();
        let key = match std::env::var("TOLLGATE_SECRET_KEY") {
            Ok(v) if !v.trim().is_empty() => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map_err(|_| SecretError::BadEnvKey)?;
                if bytes.len() != 32 {
                    return Err(SecretError::BadEnvKey);
                }
                bytes
            }
            _ => {
                origin = key_path.display().to_string();
                key_file(&key_path)?
            }
        };
        let root = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| SecretError::BadEnvKey)?;
        let cipher = Aes256Gcm::new_from_slice(&root).map_err(|_| SecretError::BadEnvKey)?;
        Ok(SecretBox { cipher, origin, root })
    }

    /// A key for `purpose`, derived from this key (HMAC-SHA256 of the purpose): every daemon that
    /// shares the secret key derives the same one, and a derived key reveals nothing of the
    /// secret key or of keys for other purposes.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use hmac::Mac;
        let mut m =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.root).expect("HMAC takes keys of any length");
        m.update(b"tollgate derived key\0");
        m.update(purpose.as_bytes());
        m.finalize().into_bytes().into()
    }

    pub fn seal(&self, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        out
    }

    pub fn unseal(&self, name: &str, sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Decrypt(name.into()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt(name.into()))?;
        String::from_utf8(pt).map_err(|_| SecretError::Decrypt(name.into()))
    }
}

/// The meta row holding a value derived from the secret key the store's secrets are sealed with.
const KEY_CHECK: &str = "secret_key_check";

/// Why a daemon may not use its secret key on a store.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "the secret key from {origin} is not the one the secrets in {store} were sealed with: \
         give this daemon that key (every daemon of one database needs the same \
         TOLLGATE_SECRET_KEY). If that key is lost, start once with --adopt-secret-key: \
         secrets sealed with the old key stay unreadable and must be set again"
    )]
    WrongKey { origin: String, store: String },
}

/// Refuses to run with a secret key other than the one the store's secrets are sealed with (a
/// second daemon on a shared database with a key of its own would seal secrets the others cannot
/// open). The store remembers a value derived from the key; a store from before that is checked
/// by opening one of its secrets. `adopt` makes this key the store's, audited, when the old one is
/// lost. Checked and recorded in one write transaction, so daemons starting together agree.
pub fn check_store_key(store: &crate::store::Store, key: &SecretBox, adopt: bool) -> Result<(), KeyCheckError> {
    let mine = key.derive_key("store key check");
    let name = store.path().display().to_string();
    store.write(|w| {
        let stored = w.meta(KEY_CHECK)?;
        let matches = match &stored {
            Some(v) => bool::from(subtle::ConstantTimeEq::ct_eq(v.as_slice(), &mine[..])),
            None => match w.first_sealed_secret()? {
                Some(sealed) => key.unseal("(key check)", &sealed).is_ok(),
                None => true,
            },
        };
        if !matches && !adopt {
            return Err(KeyCheckError::WrongKey {
                origin: key.origin.clone(),
                store: name.clone(),
            });
        }
        if !matches {
            tracing::warn!(store = %name, key = %key.origin, "adopting a new secret key: secrets sealed with the old one cannot be read");
            crate::audit::append(
                w,
                crate::audit::Entry {
                    user: "tollgated".into(),
                    action: "secret_key.adopt".into(),
                    reason: format!("started with --adopt-secret-key (key from {})", key.origin),
                    result: "ok".into(),
                    ..Default::default()
                },
            )?;
        }
        if stored.as_deref() != Some(&mine[..]) {
            w.put_meta(KEY_CHECK, &mine)?;
        }
        Ok(())
    })
}

/// A 32-byte key kept in `path`: read when it exists, else made from random bytes and written
/// 0600.
pub(crate) fn key_file(path: &Path) -> Result<Vec<u8>, SecretError> {
    let err = |e: std::io::Error| SecretError::KeyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Ok(bytes) = std::fs::read(path) {
        if bytes.len() == 32 {
            return Ok(bytes);
        }
        return Err(SecretError::KeyFile {
            path: path.display().to_string(),
            message: "not 32 bytes".into(),
        });
    }
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    // Written whole under a private name, then linked into place: another process starting at
    // the same moment (a daemon, an admin command) never reads a half-written key, and a crash
    // leaves no short file behind. Linking fails if the key appeared meanwhile: that one wins.
    let tmp = dir.join(format!(
        ".secret.key.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(&key)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
        Err(e) => Err(err(e)),
    }
}

// ------------------------------------------------------------ SECRET values of executions

/// Marks a value of a SECRET input (or onResume field) sealed at rest in an execution.
pub const SEALED_PREFIX: &str = "tgsealed:v1:";

static AT_REST: std::sync::OnceLock<SecretBox> = std::sync::OnceLock::new();

/// Installs the key that seals SECRET values of executions (the daemon's secret key). The first
/// call wins: one daemon per process.
pub fn install_at_rest(key: SecretBox) {
    let _ = AT_REST.set(key);
}

/// A SECRET value as it is stored: sealed, so neither the redb file nor anything that copies a
/// stored value out holds it in clear. Without an installed key (library use without a daemon)
/// the value is kept as is.
pub fn seal_at_rest(clear: &str) -> String {
    match AT_REST.get() {
        Some(key) => format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(key.seal(clear))
        ),
        None => clear.to_string(),
    }
}

/// The clear value of a sealed one; `None` for any other text, or when it cannot be opened.
pub fn unseal_at_rest(text: &str) -> Option<String> {
    let encoded = text.strip_prefix(SEALED_PREFIX)?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    match AT_REST.get()?.unseal("SECRET input", &bytes) {
        Ok(clear) => Some(clear),
        Err(e) => {
            tracing::error!(error = %e, "a sealed SECRET value cannot be opened");
            None
        }
    }
}

/// Seals every string of a SECRET value (a SECRET input is a string; an ARRAY of them is sealed
/// item by item).
pub fn seal_value(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) if !s.starts_with(SEALED_PREFIX) => Value::String(seal_at_rest(s)),
        Value::Array(items) => Value::Array(items.iter().map(seal_value).collect()),
        other => other.clone(),
    }
}

/// Applies `f` to every sealed string inside `v`.
fn each_sealed(v: &mut serde_json::Value, f: &mut dyn FnMut(&mut String)) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.starts_with(SEALED_PREFIX) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| each_sealed(i, f)),
        Value::Object(m) => m.values_mut().for_each(|i| each_sealed(i, f)),
        _ => {}
    }
}

/// Whether `v` holds a sealed string anywhere.
pub fn has_sealed(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.starts_with(SEALED_PREFIX),
        Value::Array(items) => items.iter().any(has_sealed),
        Value::Object(m) => m.values().any(has_sealed),
        _ => false,
    }
}

/// Replaces every sealed string inside `v` by `with` (`******` where a value leaves the daemon).
pub fn replace_sealed(v: &mut serde_json::Value, with: &str) {
    each_sealed(v, &mut |s| *s = with.to_string());
}

/// Opens every sealed string inside `v` (for a template's context); the clear values are added to
/// `opened` so whatever is rendered from them can be masked.
pub fn open_sealed(v: &mut serde_json::Value, opened: &mut Vec<String>) {
    each_sealed(v, &mut |s| {
        if let Some(clear) = unseal_at_rest(s) {
            if !clear.is_empty() && !opened.contains(&clear) {
                opened.push(clear.clone());
            }
            *s = clear;
        }
    });
}

/// `a.b.c` → [`a.b.c`, `a.b`, `a`]: secrets are inherited by child namespaces.
pub fn namespace_chain(namespace: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = namespace.to_string();
    loop {
        out.push(cur.clone());
        match cur.rfind('.') {
            Some(i) => cur.truncate(i),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes starting together (a daemon and an admin command) all get the one key, never a
    /// half-written file.
    #[test]
    fn a_key_created_by_many_at_once_is_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("secret.key");
            let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8).map(|_| s.spawn(|| key_file(&path))).collect();
                handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
            });
            assert!(keys.iter().all(|k| k.len() == 32 && *k == keys[0]));
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "no temporary file is left behind");
        }
    }

    #[test]
    fn seal_round_trips_and_tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::open(dir.path()).unwrap();
        let sealed = b.seal("hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"), "not stored in clear");
        assert_eq!(b.unseal("x", &sealed).unwrap(), "hunter2");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = b.unseal("x", &bad).unwrap_err().to_string();
        assert!(!e.contains("hunter2"));
        // The key persists: a second open reads the same file.
        let b2 = SecretBox::open(dir.path()).unwrap();
        assert_eq!(b2.unseal("x", &sealed).unwrap(), "hunter2");
    }

    #[test]
    fn sealed_values_open_and_mask() {
        let dir = tempfile::tempdir().unwrap();
        install_at_rest(SecretBox::open(dir.path()).unwrap());
        let sealed = seal_value(&serde_json::json!("hunter2"));
        let text = sealed.as_str().unwrap();
        assert!(text.starts_with(SEALED_PREFIX) && !text.contains("hunter2"));
        let mut doc = serde_json::json!({"a": [sealed.clone()], "b": "plain"});
        let mut masked = doc.clone();
        replace_sealed(&mut masked, "******");
        assert_eq!(masked, serde_json::json!({"a": ["******"], "b": "plain"}));
        let mut opened = vec![];
        open_sealed(&mut doc, &mut opened);
        assert_eq!(doc, serde_json::json!({"a": ["hunter2"], "b": "plain"}));
        assert_eq!(opened, vec!["hunter2".to_string()]);
        assert_eq!(unseal_at_rest("plain"), None);
    }

    #[test]
    fn namespaces_inherit_upwards() {
        assert_eq!(namespace_chain("hr.ops.eu"), vec!["hr.ops.eu", "hr.ops", "hr"]);
        assert_eq!(namespace_chain("hr"), vec!["hr"]);
    }
}
