//! Slack and Teams incoming webhooks: POST the rendered JSON payload, retrying 429/5xx with
//! backoff that honours Retry-After.

use std::time::Duration;

use serde_json::{Map, Value};

use super::TaskServices;
use super::render::{TaskRender, excerpt};
use crate::flow::WebhookTask;

const ATTEMPTS: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(30);

pub async fn run(
    task_id: &str,
    t: &WebhookTask,
    r: &mut TaskRender<'_>,
    s: &TaskServices,
) -> Result<Map<String, Value>, String> {
    let url = r.text("url", &t.url)?;
    let url = reqwest::Url::parse(url.trim()).map_err(|e| format!("task `{task_id}`: invalid webhook `url`: {e}"))?;
    let payload = match (&t.payload, &t.message_text) {
        // Slack's `messageText`: the text is sent as is, JSON-encoded here so no escaping is needed.
        (None, Some(text)) => serde_json::json!({ "text": r.text("messageText", text)? }).to_string(),
        _ => r.opt("payload", &t.payload)?.unwrap_or_else(|| "{}".into()),
    };
    // The payload must be JSON once rendered: say where it breaks instead of sending garbage.
    if let Err(e) = serde_json::from_str::<Value>(&payload) {
        return Err(format!(
            "task `{task_id}`: the rendered payload is not valid JSON ({e} at line {}, column {})",
            e.line(),
            e.column()
        ));
    }
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let resp = s
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.clone())
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match resp {
            Ok(resp) => {
                let code = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = resp.text().await.unwrap_or_default();
                if (200..300).contains(&code) {
                    r.log("INFO", format!("webhook delivered (HTTP {code}, attempt {attempt})"));
                    let mut out = Map::new();
                    out.insert("code".into(), Value::from(code));
                    out.insert("body".into(), Value::String(text));
                    return Ok(out);
                }
                if (code == 429 || code >= 500) && attempt < ATTEMPTS {
                    let pause = retry_after.unwrap_or(wait).min(MAX_WAIT);
                    r.log(
                        "WARN",
                        format!("webhook answered HTTP {code}; retrying in {} ms", pause.as_millis()),
                    );
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(MAX_WAIT);
                    continue;
                }
                return Err(format!(
                    "task `{task_id}`: webhook answered HTTP {code}: {}",
                    excerpt(&text, 300)
                ));
            }
            Err(e) if attempt < ATTEMPTS => {
                r.log("WARN", format!("webhook request failed ({e}); retrying"));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            Err(e) => {
                return Err(format!(
                    "task `{task_id}`: webhook request failed: {}",
                    crate::error_chain::error_chain(&e)
                ));
            }
        }
    }
    Err(format!(
        "task `{task_id}`: webhook not delivered after {ATTEMPTS} attempts"
    ))
}
