//! Sessions and CSRF protection of the approval page: a short-lived signed cookie that never
//! carries the API token.
//!
//! `tollgate_session` = `<token id>.<expiry ms>.<nonce>.<mac>`, the MAC being HMAC-SHA256 over the
//! first three with a key derived from the daemon's secret key (`TOLLGATE_SECRET_KEY` or
//! `DATA_DIR/secret.key`), so a restart signs nobody out and every daemon sharing a database (and
//! so the secret key) accepts the sessions of the others. A verified session yields only the token id; the
//! page re-derives the principal from it on every request, so a revoked or expired API token ends
//! the session at once. Sessions end 30 minutes after sign-in (no sliding renewal).
//!
//! Each form carries `_csrf` = HMAC(key, "csrf" | nonce): bound to one session, useless after it.
//! Before sign-in, the login form uses a double-submit value (`tollgate_login_csrf` cookie and
//! hidden field must match). Every POST is also refused when the browser says it comes from
//! another site (`Sec-Fetch-Site`) or its `Origin` names another host.
//!
//! Sign-out is remembered in the store (the session's nonce, until the session would have
//! expired), not here: it holds after a restart or crash and on every daemon of a database. The
//! caller checks it after [`PageSessions::verify`].

use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secrets::SecretBox;

pub(crate) const SESSION_COOKIE: &str = "tollgate_session";
pub(crate) const LOGIN_CSRF_COOKIE: &str = "tollgate_login_csrf";
/// How long a session lasts after sign-in.
pub(crate) const SESSION_TTL_MS: i64 = 30 * 60 * 1000;

type HmacSha256 = Hmac<Sha256>;

/// Why a session cookie is not accepted (the page answers all of them the same way).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("the session cookie is malformed")]
    Malformed,
    #[error("the session cookie's signature does not match")]
    BadSignature,
    #[error("the session has expired")]
    Expired,
}

/// A verified session: which API token it stands for and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// Empty with `--insecure-no-auth`, where callers have no token.
    pub token_id: String,
    pub expires_ms: i64,
    /// Random, unique to this session: what a sign-out remembers.
    pub nonce: String,
}

/// The signing key and whether cookies get `Secure`.
pub struct PageSessions {
    key: [u8; 32],
    secure: bool,
}

impl std::fmt::Debug for PageSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageSessions(..)")
    }
}

fn random_hex<const N: usize>() -> String {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl PageSessions {
    /// Signs with a key derived from `secrets`; `secure` when the daemon serves TLS.
    pub fn from_secrets(secrets: &SecretBox, secure: bool) -> PageSessions {
        PageSessions::with_key(secrets.derive_key("approval-page session"), secure)
    }

    pub(crate) fn with_key(key: [u8; 32], secure: bool) -> PageSessions {
        PageSessions { key, secure }
    }

    fn mac(&self, purpose: &str, parts: &[&str]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        m.update(purpose.as_bytes());
        for p in parts {
            m.update(b"\0");
            m.update(p.as_bytes());
        }
        m
    }

    /// A new session for `token_id`: the cookie value and what it stands for.
    pub(crate) fn issue(&self, token_id: &str, now_ms: i64) -> (String, Session) {
        let session = Session {
            token_id: token_id.to_string(),
            expires_ms: now_ms.saturating_add(SESSION_TTL_MS),
            nonce: random_hex::<16>(),
        };
        let expiry = session.expires_ms.to_string();
        let mac = self
            .mac("session", &[&session.token_id, &expiry, &session.nonce])
            .finalize()
            .into_bytes();
        let value = format!("{}.{expiry}.{}.{}", session.token_id, session.nonce, hex::encode(mac));
        (value, session)
    }

    /// Checks a cookie value: signature (constant time) and expiry. Whether it was signed out is
    /// the store's to say.
    pub(crate) fn verify(&self, value: &str, now_ms: i64) -> Result<Session, SessionError> {
        let parts: Vec<&str> = value.split('.').collect();
        let [token_id, expiry, nonce, mac] = parts[..] else {
            return Err(SessionError::Malformed);
        };
        if !token_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SessionError::Malformed);
        }
        let mac = hex::decode(mac).map_err(|_| SessionError::Malformed)?;
        self.mac("session", &[token_id, expiry, nonce])
            .verify_slice(&mac)
            .map_err(|_| SessionError::BadSignature)?;
        let expires_ms: i64 = expiry.parse().map_err(|_| SessionError::Malformed)?;
        if expires_ms <= now_ms {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            token_id: token_id.to_string(),
            expires_ms,
            nonce: nonce.to_string(),
        })
    }

    /// The `_csrf` value of the forms shown within `session`.
    pub(crate) fn csrf(&self, session: &Session) -> String {
        hex::encode(self.mac("csrf", &[&session.nonce]).finalize().into_bytes())
    }

    /// Whether `given` is the `_csrf` value of `session` (constant time).
    pub(crate) fn csrf_ok(&self, session: &Session, given: &str) -> bool {
        hex::decode(given).is_ok_and(|mac| self.mac("csrf", &[&session.nonce]).verify_slice(&mac).is_ok())
    }

    fn attributes(&self, max_age: i64) -> String {
        format!(
            "; Max-Age={max_age}; HttpOnly; SameSite=Strict; Path=/ui{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// `Set-Cookie` for a session cookie value from [`PageSessions::issue`].
    pub(crate) fn session_cookie(&self, value: &str) -> String {
        format!("{SESSION_COOKIE}={value}{}", self.attributes(SESSION_TTL_MS / 1000))
    }

    /// A fresh pre-session CSRF value and its `Set-Cookie`.
    pub(crate) fn login_csrf_cookie(&self) -> (String, String) {
        let value = random_hex::<16>();
        let cookie = format!("{LOGIN_CSRF_COOKIE}={value}{}", self.attributes(SESSION_TTL_MS / 1000));
        (value, cookie)
    }

    /// `Set-Cookie` that removes cookie `name`.
    pub(crate) fn clear_cookie(&self, name: &str) -> String {
        format!("{name}={}", self.attributes(0))
    }
}

/// Whether the login form's hidden value matches its cookie (both present, constant time).
pub(crate) fn login_csrf_ok(cookie: Option<&str>, field: Option<&str>) -> bool {
    match (cookie, field) {
        (Some(c), Some(f)) if !c.is_empty() => bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    }
}

/// The first value of cookie `name` in the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// `host[:port]`, lower case, without a default port (compared scheme-insensitively).
fn host_key(h: &str) -> String {
    let h = h.trim().trim_end_matches('/').to_ascii_lowercase();
    h.strip_suffix(":80")
        .or_else(|| h.strip_suffix(":443"))
        .map(str::to_string)
        .unwrap_or(h)
}

/// Whether a POST comes from another site: `Sec-Fetch-Site` other than `same-origin`/`none`,
/// or an `Origin` whose host:port differs from the request's `Host` (`authority` is the request
/// URI's, used over HTTP/2 where there is no `Host` header).
///
/// `Origin: null` is accepted only together with `Sec-Fetch-Site: same-origin`: the page's own
/// `Referrer-Policy: no-referrer` makes browsers send `null` on its same-origin form POSTs
/// (Fetch standard), and those browsers all send `Sec-Fetch-Site`, which a page cannot forge.
pub(crate) fn from_another_site(headers: &HeaderMap, authority: Option<&str>) -> bool {
    let mut same_origin = false;
    if let Some(site) = headers.get("sec-fetch-site") {
        let Ok(site) = site.to_str() else {
            return true;
        };
        same_origin = site.eq_ignore_ascii_case("same-origin");
        if !same_origin && !site.eq_ignore_ascii_case("none") {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    if origin.trim() == "null" {
        return !same_origin;
    }
    let Some((_, origin_host)) = origin.split_once("://") else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(authority);
    match host {
        Some(host) => host_key(origin_host) != host_key(host),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_800_000_000_000;

    fn sessions() -> PageSessions {
        PageSessions::with_key([7u8; 32], false)
    }

    #[test]
    fn an_issued_session_verifies_and_carries_only_the_token_id() {
        let p = sessions();
        let (value, s) = p.issue("abcDEF123456", NOW);
        assert!(value.starts_with("abcDEF123456."), "{value}");
        assert_eq!(p.verify(&value, NOW + 1), Ok(s.clone()));
        assert_eq!(s.expires_ms, NOW + SESSION_TTL_MS);
        // Another daemon key (another data dir) does not accept it.
        let other = PageSessions::with_key([8u8; 32], false);
        assert_eq!(other.verify(&value, NOW), Err(SessionError::BadSignature));
    }

    #[test]
    fn tampering_with_any_part_is_detected() {
        let p = sessions();
        let (value, _) = p.issue("tok1", NOW);
        let parts: Vec<&str> = value.split('.').collect();
        let later = (NOW + 10 * SESSION_TTL_MS).to_string();
        let mut flipped_mac = parts[3].to_string();
        flipped_mac.replace_range(0..1, if parts[3].starts_with('0') { "1" } else { "0" });
        for forged in [
            format!("tok2.{}.{}.{}", parts[1], parts[2], parts[3]),
            format!("{}.{later}.{}.{}", parts[0], parts[2], parts[3]),
            format!("{}.{}.{}.{}", parts[0], parts[1], "00".repeat(16), parts[3]),
            format!("{}.{}.{}.{flipped_mac}", parts[0], parts[1], parts[2]),
        ] {
            assert_eq!(p.verify(&forged, NOW), Err(SessionError::BadSignature), "{forged}");
        }
        for junk in [
            "",
            "tok1",
            "a.b.c",
            "a.b.c.d.e",
            "tok1.1.2.zz",
            "tok 1.1.2.00",
            "tg_tok1_secret",
        ] {
            assert_eq!(p.verify(junk, NOW), Err(SessionError::Malformed), "{junk}");
        }
    }

    #[test]
    fn sessions_expire_and_each_has_its_own_nonce() {
        let p = sessions();
        let (value, s) = p.issue("tok1", NOW);
        assert_eq!(p.verify(&value, s.expires_ms), Err(SessionError::Expired));
        let (_, other) = p.issue("tok1", NOW);
        assert_ne!(s.nonce, other.nonce, "a sign-out must end only its own session");
    }

    #[test]
    fn csrf_tokens_are_bound_to_one_session() {
        let p = sessions();
        let (_, a) = p.issue("tok1", NOW);
        let (_, b) = p.issue("tok1", NOW);
        let token = p.csrf(&a);
        assert!(p.csrf_ok(&a, &token));
        assert!(!p.csrf_ok(&b, &token));
        assert!(!p.csrf_ok(&a, ""));
        assert!(!p.csrf_ok(&a, "not hex"));
        assert!(login_csrf_ok(Some("abc"), Some("abc")));
        assert!(!login_csrf_ok(Some("abc"), Some("abd")));
        assert!(!login_csrf_ok(None, Some("abc")));
        assert!(!login_csrf_ok(Some(""), Some("")));
    }

    /// Set up like `TOLLGATE_SECRET_KEY` (base64 of 32 bytes) in `dir`.
    fn secret_box(dir: &std::path::Path, key: u8) -> SecretBox {
        std::fs::write(dir.join("secret.key"), [key; 32]).unwrap();
        SecretBox::open(dir).unwrap()
    }

    #[test]
    fn the_same_secret_key_keeps_sessions_across_restarts_and_daemons() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = PageSessions::from_secrets(&secret_box(a.path(), 1), false);
        let (value, _) = first.issue("tok1", NOW);
        // A restart, or another daemon with the same secret key.
        let again = PageSessions::from_secrets(&secret_box(b.path(), 1), true);
        assert!(again.verify(&value, NOW).is_ok());
        let other = PageSessions::from_secrets(&secret_box(b.path(), 2), false);
        assert_eq!(other.verify(&value, NOW), Err(SessionError::BadSignature));
        assert!(again.session_cookie(&value).ends_with("; Secure"));
        assert!(!first.session_cookie(&value).contains("Secure"));
        assert!(
            first
                .session_cookie(&value)
                .contains("Max-Age=1800; HttpOnly; SameSite=Strict; Path=/ui")
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn posts_from_other_sites_are_recognised() {
        let host = ("host", "127.0.0.1:28080");
        assert!(!from_another_site(&headers(&[host]), None));
        assert!(!from_another_site(
            &headers(&[
                host,
                ("origin", "http://127.0.0.1:28080"),
                ("sec-fetch-site", "same-origin")
            ]),
            None
        ));
        assert!(!from_another_site(
            &headers(&[("host", "Example.com"), ("origin", "https://example.com:443")]),
            None
        ));
        assert!(from_another_site(
            &headers(&[host, ("origin", "https://evil.example")]),
            None
        ));
        assert!(from_another_site(
            &headers(&[host, ("origin", "http://127.0.0.1:28081")]),
            None
        ));
        assert!(from_another_site(&headers(&[host, ("origin", "null")]), None));
        assert!(from_another_site(
            &headers(&[host, ("origin", "null"), ("sec-fetch-site", "cross-site")]),
            None
        ));
        // What a browser sends for the page's own forms under `Referrer-Policy: no-referrer`.
        assert!(!from_another_site(
            &headers(&[host, ("origin", "null"), ("sec-fetch-site", "same-origin")]),
            None
        ));
        assert!(from_another_site(&headers(&[host, ("origin", "garbage")]), None));
        assert!(from_another_site(
            &headers(&[host, ("sec-fetch-site", "cross-site")]),
            None
        ));
        assert!(from_another_site(
            &headers(&[host, ("sec-fetch-site", "same-site")]),
            None
        ));
        assert!(!from_another_site(
            &headers(&[("origin", "https://tollgate.example")]),
            Some("tollgate.example")
        ));
        assert!(from_another_site(
            &headers(&[("origin", "https://tollgate.example")]),
            None
        ));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            ("cookie", "a=1; tollgate_session_x=2"),
            ("cookie", "tollgate_session=3"),
        ]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("3"));
        assert_eq!(cookie(&h, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
