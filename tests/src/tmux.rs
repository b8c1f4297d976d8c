//! A small tmux driver for end-to-end console tests: a private server socket per session, keys
//! in, screen text out, and waits with a dump of the screen when they time out.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` (with `env`) in a detached session of `width`x`height`.
    pub fn start(command: &str, env: &[(&str, &str)], width: u16, height: u16) -> Tmux {
        let socket = format!("tollgate-test-{}-{}", std::process::id(), crate::free_port());
        let session = "console".to_string();
        let mut full = String::new();
        for (k, v) in env {
            full.push_str(&format!("{k}='{v}' "));
        }
        full.push_str(command);
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(&full)
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is installed");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket, session }
    }

    /// Sends keys as tmux names them (`Space`, `Enter`, `Tab`, `C-s`, or literal text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let status = Command::new("tmux")
                .args(["-L", &self.socket, "send-keys", "-t", &self.session, k])
                .status()
                .expect("tmux");
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    pub fn type_text(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", &self.session, "-l", text])
            .status()
            .expect("tmux");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(120));
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after `secs`.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}
