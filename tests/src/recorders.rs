//! Real servers on loopback that record what they receive: an HTTP server (any method, any path,
//! answers a configurable status) and a minimal SMTP server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// An HTTP server that records every request.
pub struct HttpRecorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    /// Status codes to answer, in order; after they run out, 200.
    pub script: Script,
}

/// Status codes (with headers) to answer, in order.
pub type Script = Arc<Mutex<Vec<(u16, Vec<(String, String)>)>>>;

impl HttpRecorder {
    pub fn start() -> HttpRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(Mutex::new(Vec::new()));
        let (reqs, scr) = (requests.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reqs, scr) = (reqs.clone(), scr.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, path) = (
                            parts.next().unwrap_or("").to_string(),
                            parts.next().unwrap_or("").to_string(),
                        );
                        let mut headers = Vec::new();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end().to_string();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                            }
                        }
                        let mut body = vec![0u8; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        reqs.lock().unwrap().push(Recorded {
                            method,
                            path,
                            headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        let (code, extra) = {
                            let mut s = scr.lock().unwrap();
                            if s.is_empty() { (200, vec![]) } else { s.remove(0) }
                        };
                        let mut resp =
                            format!("HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: 11\r\n");
                        for (k, v) in extra {
                            resp.push_str(&format!("{k}: {v}\r\n"));
                        }
                        resp.push_str("\r\n{\"ok\":true}");
                        let mut s = reader.get_ref();
                        if s.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HttpRecorder { url, requests, script }
    }

    pub fn received(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// One mail as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server (no TLS, no auth) that records every message.
pub struct SmtpRecorder {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpRecorder {
    pub fn start() -> SmtpRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || {
                    let mut w = stream.try_clone().expect("clone");
                    let mut r = BufReader::new(stream);
                    let _ = w.write_all(b"220 recorder ESMTP\r\n");
                    let (mut from, mut to, mut data, mut in_data) = (String::new(), Vec::new(), String::new(), false);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if in_data {
                            if line.trim_end() == "." {
                                in_data = false;
                                m.lock().unwrap().push(Mail {
                                    from: from.clone(),
                                    to: to.clone(),
                                    data: std::mem::take(&mut data),
                                });
                                let _ = w.write_all(b"250 OK\r\n");
                            } else {
                                data.push_str(&line);
                            }
                            continue;
                        }
                        let up = line.to_ascii_uppercase();
                        let reply: &[u8] = if up.starts_with("EHLO") || up.starts_with("HELO") {
                            b"250-recorder\r\n250 8BITMIME\r\n"
                        } else if up.starts_with("MAIL FROM:") {
                            from = line[10..].trim().to_string();
                            b"250 OK\r\n"
                        } else if up.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().to_string());
                            b"250 OK\r\n"
                        } else if up.starts_with("DATA") {
                            in_data = true;
                            b"354 go\r\n"
                        } else if up.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n");
                            return;
                        } else {
                            b"250 OK\r\n"
                        };
                        let _ = w.write_all(reply);
                    }
                });
            }
        });
        SmtpRecorder { port, mails }
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}
