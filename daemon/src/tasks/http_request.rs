//! `io.kestra.plugin.core.http.Request`: any method, JSON / form / multipart bodies, timeouts.

use std::time::Duration;

use serde_json::{Map, Value};

use super::TaskServices;
use super::render::{TaskRender, excerpt};
use crate::flow::HttpRequestTask;
use crate::flow::duration::parse_iso8601;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(t: &HttpRequestTask, r: &mut TaskRender<'_>, s: &TaskServices) -> Result<Map<String, Value>, String> {
    let uri = r.text("uri", &t.uri)?;
    let method_text = r
        .opt("method", &t.method)?
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method_text.as_bytes())
        .map_err(|_| format!("invalid HTTP method `{method_text}`"))?;
    let url = reqwest::Url::parse(&uri).map_err(|e| format!("invalid `uri` `{uri}`: {e}"))?;
    let options = t.options.clone().unwrap_or_default();
    let timeout = |name: &str, v: &Option<String>| -> Result<Duration, String> {
        v.as_deref()
            .map(|d| parse_iso8601(d).map_err(|e| format!("invalid `options.{name}`: {e}")))
            .transpose()
            .map(|d| d.unwrap_or(DEFAULT_TIMEOUT))
    };
    let read_timeout = timeout("readTimeout", &options.read_timeout)?;
    let connect_timeout = timeout("connectTimeout", &options.connect_timeout)?;
    let mut req = s
        .http
        .request(method.clone(), url)
        .timeout(read_timeout + connect_timeout);
    for (k, v) in &t.headers {
        req = req.header(k.as_str(), r.text(&format!("headers.{k}"), v)?);
    }
    let content_type = r.opt("contentType", &t.content_type)?.unwrap_or_default();
    if !t.form_data.is_empty() {
        let mut fields = Vec::new();
        for (k, v) in &t.form_data {
            let rendered = r.value(&format!("formData.{k}"), v)?;
            let text = match rendered {
                Value::String(s) => s,
                other => other.to_string(),
            };
            fields.push((k.clone(), text));
        }
        if content_type.starts_with("multipart/form-data") {
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in fields {
                form = form.text(k, v);
            }
            req = req.multipart(form);
        } else {
            req = req.form(&fields);
        }
    } else if let Some(body) = &t.body {
        let rendered = r.value("body", body)?;
        req = match rendered {
            Value::String(text) => {
                let ct = if content_type.is_empty() {
                    "application/json".to_string()
                } else {
                    content_type.clone()
                };
                req.header(reqwest::header::CONTENT_TYPE, ct).body(text)
            }
            other => req.json(&other),
        };
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method_text} {uri} failed: {}", crate::error_chain::error_chain(&e)))?;
    let code = resp.status().as_u16();
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        let entry = headers
            .entry(k.as_str().to_string())
            .or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(a) = entry {
            a.push(Value::String(v.to_str().unwrap_or_default().to_string()));
        }
    }
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let text = resp
        .text()
        .await
        .map_err(|e| format!("reading the response of {uri} failed: {e}"))?;
    let allow_failed = t.allow_failed || options.allow_failed.unwrap_or(false) || t.fail_on_non2xx == Some(false);
    if !(200..300).contains(&code) && !allow_failed {
        return Err(format!(
            "{method_text} {uri} answered HTTP {code}: {}",
            excerpt(&text, 300)
        ));
    }
    r.log("INFO", format!("{method_text} {uri} -> {code}"));
    let body = if is_json {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    };
    let mut out = Map::new();
    out.insert("uri".into(), Value::String(uri));
    out.insert("code".into(), Value::from(code));
    out.insert("headers".into(), Value::Object(headers));
    out.insert("body".into(), body);
    Ok(out)
}
