//! The page `appLink()` points at: a small server-rendered approval form (no JavaScript). The
//! person signs in with their token (kept in an HttpOnly cookie), sees what waits, and decides
//! through the same engine call as gRPC — same access checks, same audit.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::form_fields;
use crate::api::ApiState;
use crate::auth::Principal;
use crate::engine::{Execution, PauseSelector};
use crate::flow::TaskKind;
use crate::inputs::{InputDef, InputType};
use crate::ops::Door;

const COOKIE: &str = "tollgate_token";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         label{{display:block;margin-top:1em}}input,select,textarea{{width:100%;padding:.4em}}\
         button{{margin-top:1.5em;padding:.6em 1.2em}}.err{{color:#a00}}.ok{{color:#070}}code{{background:#eee}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    ))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string))
}

async fn signed_in(s: &ApiState, headers: &HeaderMap) -> Option<Principal> {
    let token = cookie_token(headers)?;
    s.ops
        .authenticate(Some(&format!("Bearer {token}")), Door::Page)
        .await
        .ok()
}

fn login_form(tenant: &str, id: &str, message: &str) -> Response {
    let body = format!(
        "{msg}<p>Sign in with your Tollgate token to decide on execution <code>{id}</code>.</p>\
         <form method=\"post\" action=\"/ui/{t}/login\"><input type=\"hidden\" name=\"execution\" value=\"{id}\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\"></label><button>Sign in</button></form>",
        msg = if message.is_empty() {
            String::new()
        } else {
            format!("<p class=\"err\">{}</p>", esc(message))
        },
        id = esc(id),
        t = esc(tenant)
    );
    (StatusCode::UNAUTHORIZED, page("Tollgate approval", &body)).into_response()
}

fn field(def: &InputDef) -> String {
    let label = def
        .display_name
        .clone()
        .or_else(|| def.description.clone())
        .unwrap_or_else(|| def.id.clone());
    let default = def.defaults.as_ref().map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let name = esc(&def.id);
    let req = if def.required { " *" } else { "" };
    let control = match def.input_type {
        InputType::Boolean => format!(
            "<select name=\"{name}\"><option value=\"true\">true</option><option value=\"false\"{}>false</option></select>",
            if default.as_deref() == Some("false") {
                " selected"
            } else {
                ""
            }
        ),
        InputType::Select | InputType::Enum => {
            let opts: String = def
                .values
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|v| {
                    format!(
                        "<option{}>{}</option>",
                        if Some(v) == default.as_ref() { " selected" } else { "" },
                        esc(v)
                    )
                })
                .collect();
            format!("<select name=\"{name}\">{opts}</select>")
        }
        InputType::Json => format!(
            "<textarea name=\"{name}\" rows=\"4\">{}</textarea>",
            esc(&default.unwrap_or_default())
        ),
        InputType::Secret => format!("<input type=\"password\" name=\"{name}\">"),
        _ => format!(
            "<input name=\"{name}\" value=\"{}\" placeholder=\"{}\">",
            esc(&default.unwrap_or_default()),
            esc(crate::inputs::format_hint(def.input_type))
        ),
    };
    format!("<label>{}{req} {control}</label>", esc(&label))
}

async fn forms(s: &ApiState, tenant: &str, exec: &Execution) -> String {
    let Some(flow) = s.ops.flow_of(exec).await else {
        return "<p class=\"err\">The flow of this execution is not available.</p>".into();
    };
    let mut out = String::new();
    for run in exec.paused_runs() {
        let Some(TaskKind::Pause(p)) = flow.find_task(&run.task_id).map(|t| &t.kind) else {
            continue;
        };
        let fields: String = p.on_resume.iter().map(field).collect();
        out.push_str(&format!(
            "<h2>{task}</h2><form method=\"post\" action=\"/ui/{t}/executions/{id}/resume\">\
             <input type=\"hidden\" name=\"_task_run\" value=\"{run}\">{fields}\
             <label>Reason (recorded in the audit log) <input name=\"_reason\"></label><button>Resume</button></form>",
            task = esc(&run.task_id),
            t = esc(tenant),
            id = esc(&exec.id),
            run = esc(&run.id),
        ));
    }
    out
}

/// GET /ui/{tenant}/executions/{id}
pub async fn show(
    State(s): State<ApiState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if s.ops.check_tenant(&tenant).is_err() {
        return (StatusCode::NOT_FOUND, page("Not found", "<p>Unknown tenant.</p>")).into_response();
    }
    let Some(p) = signed_in(&s, &headers).await else {
        return login_form(&tenant, &id, "");
    };
    let exec = match s.ops.get(&p, &id).await {
        Ok(e) => e,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    &format!("<p>No execution <code>{}</code> you may see.</p>", esc(&id)),
                ),
            )
                .into_response();
        }
    };
    let head = format!(
        "<p>Signed in as <b>{}</b>.</p><p>Execution <code>{}</code> of <b>{}.{}</b> is <b>{}</b>.</p>",
        esc(&p.user),
        esc(&exec.id),
        esc(&exec.namespace),
        esc(&exec.flow_id),
        exec.state
    );
    let body = if exec.paused_runs().next().is_some() {
        forms(&s, &tenant, &exec).await
    } else {
        "<p>Nothing waits for a decision here.</p>".into()
    };
    page("Tollgate approval", &(head + &body)).into_response()
}

/// POST /ui/{tenant}/login — keeps the token in an HttpOnly cookie and goes back to the execution.
pub async fn login(State(s): State<ApiState>, Path(tenant): Path<String>, req: Request) -> Response {
    let fields = match form_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = fields.get("execution").cloned().unwrap_or_default();
    let token = fields.get("token").cloned().unwrap_or_default();
    if s.ops
        .authenticate(Some(&format!("Bearer {}", token.trim())), Door::Page)
        .await
        .is_err()
    {
        return login_form(&tenant, &id, "That token was not accepted.");
    }
    let location = format!("/ui/{tenant}/executions/{id}");
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/ui", token.trim()),
            ),
            (header::LOCATION, location),
        ],
    )
        .into_response()
}

/// POST /ui/{tenant}/executions/{id}/resume
pub async fn resume(State(s): State<ApiState>, Path((tenant, id)): Path<(String, String)>, req: Request) -> Response {
    let Some(p) = signed_in(&s, req.headers()).await else {
        return login_form(&tenant, &id, "Please sign in first.");
    };
    let mut fields = match form_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let run = fields.remove("_task_run");
    let reason = fields.remove("_reason").unwrap_or_default();
    // Optional inputs left blank are not sent, as an empty field in a form means "no value".
    let inputs: BTreeMap<String, String> = fields.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let select = PauseSelector {
        task_run_id: run,
        task_id: None,
    };
    let result = s.ops.resume(&p, &id, select, inputs, &reason).await;
    let back = format!(
        "<p><a href=\"/ui/{}/executions/{}\">Back to the execution</a></p>",
        esc(&tenant),
        esc(&id)
    );
    match result {
        Ok(e) => page(
            "Decision recorded",
            &format!(
                "<p class=\"ok\">Resumed. The execution is now <b>{}</b>.</p>{back}",
                e.state
            ),
        )
        .into_response(),
        Err(e) => {
            let status = super::status_of(e.code());
            (
                status,
                page(
                    "Not resumed",
                    &format!("<p class=\"err\">{}</p>{back}", esc(&e.to_string())),
                ),
            )
                .into_response()
        }
    }
}
