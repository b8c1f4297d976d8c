//! `io.kestra.plugin.notifications.mail.MailSend` over SMTP (plain, STARTTLS or implicit TLS).

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value};

use super::render::TaskRender;
use crate::flow::{MailSendTask, OneOrMany};

fn addresses(r: &mut TaskRender<'_>, property: &str, v: &Option<OneOrMany>) -> Result<Vec<Mailbox>, String> {
    let Some(v) = v else { return Ok(vec![]) };
    let mut out = Vec::new();
    for item in v.items() {
        for a in r
            .text(property, item)?
            .split([',', ';'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            out.push(
                a.parse::<Mailbox>()
                    .map_err(|e| format!("invalid address `{a}` in `{property}`: {e}"))?,
            );
        }
    }
    Ok(out)
}

pub async fn run(t: &MailSendTask, r: &mut TaskRender<'_>) -> Result<Map<String, Value>, String> {
    let host = r
        .opt("host", &t.host)?
        .or_else(|| std::env::var("TOLLGATE_SMTP_HOST").ok())
        .ok_or("MailSend needs `host` (or TOLLGATE_SMTP_HOST on the daemon)".to_string())?;
    let port = t
        .port
        .or_else(|| std::env::var("TOLLGATE_SMTP_PORT").ok().and_then(|p| p.parse().ok()));
    let from_text = r.opt("from", &t.from)?.unwrap_or_else(|| "tollgate@localhost".into());
    let from: Mailbox = from_text
        .parse()
        .map_err(|e| format!("invalid `from` address `{from_text}`: {e}"))?;
    let to = addresses(r, "to", &Some(t.to.clone()))?;
    if to.is_empty() {
        return Err("MailSend needs at least one `to` address".into());
    }
    let cc = addresses(r, "cc", &t.cc)?;
    let bcc = addresses(r, "bcc", &t.bcc)?;
    let subject = r.opt("subject", &t.subject)?.unwrap_or_default();
    let html = r.opt("htmlTextContent", &t.html_text_content)?;
    let plain = r.opt("plainTextContent", &t.plain_text_content)?;
    let mut b = Message::builder().from(from).subject(subject.clone());
    for m in &to {
        b = b.to(m.clone());
    }
    for m in &cc {
        b = b.cc(m.clone());
    }
    for m in &bcc {
        b = b.bcc(m.clone());
    }
    let message = match (html, plain) {
        (Some(h), Some(p)) => b.multipart(MultiPart::alternative_plain_html(p, h)),
        (Some(h), None) => b.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(h)),
        (None, Some(p)) => b.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(p)),
        (None, None) => b.body(String::new()),
    }
    .map_err(|e| format!("cannot build the mail: {e}"))?;
    let strategy = t
        .transport_strategy
        .clone()
        .unwrap_or_else(|| "SMTP".into())
        .to_ascii_uppercase();
    let mut transport = match strategy.as_str() {
        "SMTP" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        "SMTP_TLS" | "SMTPS" => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(|e| format!("SMTP over TLS to {host}: {e}"))?
        }
        "SMTP_STARTTLS" | "STARTTLS" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| format!("SMTP STARTTLS to {host}: {e}"))?,
        other => {
            return Err(format!(
                "unknown `transportStrategy` `{other}`: use SMTP, SMTP_TLS or SMTP_STARTTLS"
            ));
        }
    };
    if let Some(p) = port {
        transport = transport.port(p);
    }
    if let Some(user) = r.opt("username", &t.username)? {
        let password = r.opt("password", &t.password)?.unwrap_or_default();
        transport = transport.credentials(Credentials::new(user, password));
    }
    let transport = transport.timeout(Some(std::time::Duration::from_secs(30))).build();
    // The error never contains the password: lettre reports protocol replies, not credentials.
    transport
        .send(message)
        .await
        .map_err(|e| format!("sending the mail through {host} failed: {e}"))?;
    r.log(
        "INFO",
        format!(
            "mail `{subject}` sent to {} recipient(s) through {host}",
            to.len() + cc.len() + bcc.len()
        ),
    );
    let mut out = Map::new();
    out.insert(
        "to".into(),
        Value::from(to.iter().map(|m| m.to_string()).collect::<Vec<_>>()),
    );
    out.insert("subject".into(), Value::String(subject));
    Ok(out)
}
