//! Loopback stand-ins for Slack, Teams, an HR API and an SMTP server, so the demo's notification
//! tasks succeed without a network. Every message received is appended to a log file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Addresses of the running sinks and how much they received.
pub struct Sinks {
    /// Base URL of the HTTP sink (any path, any method answers 200 `{"ok":true}`).
    pub http: String,
    pub smtp_port: u16,
    pub received: Arc<AtomicUsize>,
    pub log: PathBuf,
}

fn append(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(
            f,
            "{} {line}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
}

/// Starts both sinks on 127.0.0.1 with free ports.
pub async fn start(log: PathBuf) -> anyhow::Result<Sinks> {
    let received = Arc::new(AtomicUsize::new(0));
    let http = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo HTTP sink")?;
    let http_addr = http.local_addr()?;
    let (count, path) = (received.clone(), log.clone());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (count, path) = (count.clone(), path.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let flat: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(400)
                .collect();
            append(&path, &format!("HTTP {} {} {}", parts.method, parts.uri, flat));
            count.fetch_add(1, Ordering::SeqCst);
            axum::Json(serde_json::json!({"ok": true}))
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(http, app).await;
    });

    let smtp = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the demo SMTP sink")?;
    let smtp_port = smtp.local_addr()?.port();
    let (count, path) = (received.clone(), log.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = smtp.accept().await {
            let (count, path) = (count.clone(), path.clone());
            tokio::spawn(async move {
                let _ = smtp_session(sock, &path).await;
                count.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Ok(Sinks {
        http: format!("http://{http_addr}"),
        smtp_port,
        received,
        log,
    })
}

/// Just enough SMTP to accept one or more messages and note their envelope and subject.
async fn smtp_session(sock: tokio::net::TcpStream, log: &Path) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 tollgate-demo ESMTP\r\n").await?;
    let (mut to, mut subject, mut in_data) = (Vec::new(), String::new(), false);
    while let Some(line) = lines.next_line().await? {
        if in_data {
            if line == "." {
                in_data = false;
                append(log, &format!("MAIL to {} subject {subject:?}", to.join(", ")));
                w.write_all(b"250 OK queued\r\n").await?;
            } else if let Some(s) = line.strip_prefix("Subject: ") {
                subject = s.to_string();
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-tollgate-demo\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().to_string());
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            in_data = true;
            b"354 end with .\r\n"
        } else if upper.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        w.write_all(reply).await?;
    }
    Ok(())
}
