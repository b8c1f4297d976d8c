//! Where the user's token lives: `TOLLGATE_TOKEN`, else the OS keyring (service `tollgate`,
//! account = server URL), else `~/.config/tollgate/credentials` (mode 0600) on hosts without a
//! keyring service, as most SSH hosts are. `TOLLGATE_KEYRING=file` forces the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SERVICE: &str = "tollgate";

/// Where a token was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Keyring,
    File(PathBuf),
}

/// Runs a keyring call on its own thread: the secret-service client blocks on a runtime of its
/// own, which must not happen inside ours, and a keyring failure of any kind means "no keyring".
fn keyring<T: Send>(f: impl FnOnce() -> Option<T> + Send) -> Option<T> {
    std::thread::scope(|s| s.spawn(f).join().ok().flatten())
}

fn force_file() -> bool {
    std::env::var("TOLLGATE_KEYRING").is_ok_and(|v| v.eq_ignore_ascii_case("file"))
}

/// The token to use for `server`, if any.
pub fn token_for(server: &str) -> Option<String> {
    if let Ok(t) = std::env::var("TOLLGATE_TOKEN")
        && !t.trim().is_empty()
    {
        return Some(t.trim().to_string());
    }
    if !force_file()
        && let Some(t) = keyring(|| keyring::Entry::new(SERVICE, server).and_then(|e| e.get_password()).ok())
    {
        return Some(t);
    }
    read_file().remove(server)
}

/// Stores the token for `server` and remembers the server as the default.
pub fn store(server: &str, token: &str) -> anyhow::Result<Stored> {
    let dir = config_dir().ok_or_else(|| anyhow::anyhow!("no HOME or XDG_CONFIG_HOME to keep credentials in"))?;
    create_private_dir(&dir)?;
    std::fs::write(dir.join("server"), server)?;
    if !force_file() {
        let stored = keyring(|| {
            let entry = keyring::Entry::new(SERVICE, server).ok()?;
            (entry.set_password(token).is_ok() && entry.get_password().is_ok_and(|t| t == token)).then_some(())
        });
        if stored.is_some() {
            return Ok(Stored::Keyring);
        }
    }
    let mut all = read_file();
    all.insert(server.to_string(), token.to_string());
    write_file(&all)?;
    Ok(Stored::File(dir.join("credentials")))
}

/// Forgets the token of `server` everywhere; whether anything was removed.
pub fn forget(server: &str) -> anyhow::Result<bool> {
    let mut removed = false;
    if !force_file() {
        removed |= keyring(|| keyring::Entry::new(SERVICE, server).ok()?.delete_credential().ok()).is_some();
    }
    let mut all = read_file();
    if all.remove(server).is_some() {
        write_file(&all)?;
        removed = true;
    }
    Ok(removed)
}

/// The server of the last login, if any.
pub fn default_server() -> Option<String> {
    let path = config_dir()?.join("server");
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub fn config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("tollgate"))
}

/// `server token` lines.
fn read_file() -> BTreeMap<String, String> {
    let Some(path) = config_dir().map(|d| d.join("credentials")) else {
        return BTreeMap::new();
    };
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(s, t)| (s.to_string(), t.trim().to_string())))
        .collect()
}

fn write_file(all: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let dir = config_dir().ok_or_else(|| anyhow::anyhow!("no HOME or XDG_CONFIG_HOME"))?;
    create_private_dir(&dir)?;
    write_credentials(&dir, all)
}

/// Creates the config dir (and missing parents) readable by its owner only; an existing dir is
/// left as the user made it.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Replaces `dir/credentials` atomically with a file of mode 0600, whatever was left behind: a
/// stale `credentials.tmp` (say 0644, from a crash) is removed first, because opening an existing
/// file ignores the mode asked for; the new one is created exclusively (O_EXCL, which also refuses
/// to follow a planted symlink) and set to 0600 before the token is written into it.
fn write_credentials(dir: &Path, all: &BTreeMap<String, String>) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join("credentials");
    let tmp = dir.join("credentials.tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    #[cfg(unix)]
    {
        // The umask may have taken bits away; make it exactly 0600 either way.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    for (s, t) in all {
        writeln!(f, "{s} {t}")?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn credentials_are_0600_even_over_a_stale_world_readable_tmp_and_file() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("tollgate");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for stale in ["credentials.tmp", "credentials"] {
            std::fs::write(dir.join(stale), "old stale\n").unwrap();
            std::fs::set_permissions(dir.join(stale), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let all = BTreeMap::from([("http://s".to_string(), "tg_secret".to_string())]);
        write_credentials(&dir, &all).unwrap();
        assert_eq!(mode(&dir.join("credentials")), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join("credentials")).unwrap(),
            "http://s tg_secret\n"
        );
        assert!(!dir.join("credentials.tmp").exists());
    }

    #[test]
    fn a_planted_symlink_as_tmp_is_not_followed() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("tollgate");
        create_private_dir(&dir).unwrap();
        let target = home.path().join("elsewhere");
        std::fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("credentials.tmp")).unwrap();
        let all = BTreeMap::from([("http://s".to_string(), "tg_secret".to_string())]);
        write_credentials(&dir, &all).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(mode(&dir.join("credentials")), 0o600);
    }
}
