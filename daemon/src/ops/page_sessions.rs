//! Sign-outs of the approval page, kept in the store so they hold on every daemon and after a
//! crash (the page itself only checks signatures: `http/page_session.rs`).

use super::Ops;
use crate::engine::Result;

impl Ops {
    /// Whether the page session `nonce` was signed out. A store that cannot be read counts as
    /// signed out: the page then asks to sign in again rather than trust a session it cannot check.
    pub fn page_session_signed_out(&self, nonce: &str) -> bool {
        self.engine
            .store()
            .read()
            .and_then(|r| r.page_session_signed_out(nonce))
            .unwrap_or(true)
    }

    /// Ends the page session `nonce` (valid until `expires_ms`) on every daemon of the store.
    pub async fn sign_out_page_session(&self, nonce: &str, expires_ms: i64) -> Result<()> {
        let nonce = nonce.to_string();
        let now = crate::engine::ids::now_ms();
        self.engine
            .change(move |w| Ok(w.sign_out_page_session(&nonce, expires_ms, now)?))
            .await
    }
}
