//! The page `appLink()` points at: a small server-rendered approval form (no JavaScript). The
//! person signs in with their token, gets a short-lived signed session (never the token itself,
//! see `page_session`), sees what waits, and decides through the same engine call as gRPC — same
//! access checks, same audit. Every POST needs the form's CSRF value and must not come from
//! another site; every answer forbids framing, scripts and caching.

use std::collections::BTreeMap;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::form_fields;
use super::page_session::{self, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session};
use crate::api::ApiState;
use crate::auth::Principal;
use crate::engine::ids::now_ms;
use crate::engine::{EngineError, Execution, PauseSelector};
use crate::flow::TaskKind;
use crate::inputs::{InputDef, InputType};
use crate::ops::Door;

/// Sent with every answer of the page.
const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

fn harden(mut r: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        r.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    r
}

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

/// An execution id as a path segment of a `Location` (it comes from a form field).
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn with_cookies(mut r: Response, cookies: &[String]) -> Response {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

fn not_found_tenant() -> Response {
    (StatusCode::NOT_FOUND, page("Not found", "<p>Unknown tenant.</p>")).into_response()
}

/// The answer to a POST that may be forged: nothing changed, no cookie set.
fn refused(tenant: &str, id: &str) -> Response {
    let back = if id.is_empty() {
        String::new()
    } else {
        format!(
            "<p><a href=\"/ui/{}/executions/{}\">Open the execution again</a></p>",
            esc(tenant),
            esc(&path_segment(id))
        )
    };
    (
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            &format!(
                "<p class=\"err\">This form did not come from this page, or it has expired. Nothing was changed.</p>{back}"
            ),
        ),
    )
        .into_response()
}

/// Who is signed in: a valid session whose API token still holds (re-derived on every request).
struct SignedIn {
    principal: Principal,
    session: Session,
}

fn signed_in(s: &ApiState, headers: &HeaderMap) -> Option<SignedIn> {
    let value = page_session::cookie(headers, SESSION_COOKIE)?;
    let session = s.pages.verify(&value, now_ms()).ok()?;
    if s.ops.page_session_signed_out(&session.nonce) {
        return None;
    }
    let principal = s.ops.auth().principal_for_token_id(&session.token_id)?;
    Some(SignedIn { principal, session })
}

/// Whether a POST must be refused as coming from another site.
fn from_another_site(req: &Request) -> bool {
    page_session::from_another_site(req.headers(), req.uri().authority().map(|a| a.as_str()))
}

/// The sign-in form, with a fresh pre-session CSRF value in a cookie and a hidden field.
fn login_form(s: &ApiState, tenant: &str, id: &str, message: &str) -> Response {
    let (csrf, cookie) = s.pages.login_csrf_cookie();
    let body = format!(
        "{msg}<p>Sign in with your Tollgate token to decide on execution <code>{id}</code>.</p>\
         <form method=\"post\" action=\"/ui/{t}/login\"><input type=\"hidden\" name=\"execution\" value=\"{id}\">\
         <input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\"></label><button>Sign in</button></form>",
        msg = if message.is_empty() {
            String::new()
        } else {
            format!("<p class=\"err\">{}</p>", esc(message))
        },
        id = esc(id),
        t = esc(tenant)
    );
    with_cookies(
        (StatusCode::UNAUTHORIZED, page("Tollgate approval", &body)).into_response(),
        &[cookie],
    )
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
        InputType::Boolean | InputType::Bool => format!(
            "<select name=\"{name}\"><option value=\"true\">true</option><option value=\"false\"{}>false</option></select>",
            if default.as_deref() == Some("false") {
                " selected"
            } else {
                ""
            }
        ),
        InputType::Select | InputType::Enum => {
            let opts: String = def
                .choices()
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

async fn forms(s: &ApiState, tenant: &str, exec: &Execution, csrf: &str) -> String {
    let Some(flow) = s.ops.flow_of(exec).await else {
        return "<p class=\"err\">The flow of this execution is not available.</p>".into();
    };
    let mut out = String::new();
    for run in exec.paused_runs() {
        let Some(TaskKind::Pause(p)) = flow.find_task(&run.task_id).map(|t| &t.kind) else {
            continue;
        };
        let fields: String = p.on_resume.iter().map(field).collect();
        let why = if p.human.as_ref().is_some_and(|h| h.rejection_reason_required) {
            "Comment, or reason for a rejection (required to reject; recorded in the audit log)"
        } else {
            "Comment, or reason for a rejection (recorded in the audit log)"
        };
        // A rejection needs none of the inputs: its button skips the browser's checks.
        out.push_str(&format!(
            "<h2>{task}</h2>{status}<form method=\"post\" action=\"/ui/{t}/executions/{id}/resume\">\
             <input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"_task_run\" value=\"{run}\">{fields}\
             <label>{why} <textarea name=\"_reason\"></textarea></label>\
             <button name=\"_action\" value=\"resume\">Resume</button> \
             <button name=\"_action\" value=\"preview\">Preview</button> \
             <button name=\"_action\" value=\"reject\" formnovalidate>Reject</button></form>",
            task = esc(&run.task_id),
            status = gate_status(run, p.human.as_ref().map(|h| h.approvals)),
            t = esc(tenant),
            id = esc(&exec.id),
            run = esc(&run.id),
            csrf = esc(csrf),
        ));
    }
    out
}

/// What the approver should know before deciding: since when it waits, by when it must be decided
/// (its `sla`, or that it was breached), and the approvals of a quorum so far (a delegate's
/// approval says for whom).
fn gate_status(run: &crate::engine::execution::TaskRun, approvals_required: Option<u32>) -> String {
    let Some(pause) = &run.pause else {
        return String::new();
    };
    let iso = crate::engine::context::iso_ms;
    let mut lines = vec![format!("Waiting since {}.", iso(pause.since_ms))];
    match (pause.sla_breached_ms, pause.sla_due_ms) {
        (Some(at), due) => lines.push(format!(
            "<span class=\"err\">SLA breached: still undecided at {}{}.</span>",
            iso(at),
            due.map(|d| format!(" (due {})", iso(d))).unwrap_or_default()
        )),
        (None, Some(due)) => lines.push(format!("SLA: decide by {}.", iso(due))),
        (None, None) => {}
    }
    if let Some(required) = approvals_required.filter(|n| *n > 1) {
        let given: Vec<String> = pause
            .approvals
            .iter()
            .filter(|a| !a.rejected)
            .map(|a| {
                if a.on_behalf_of.is_empty() {
                    esc(&a.by)
                } else {
                    format!("{} for {}", esc(&a.by), esc(&a.on_behalf_of))
                }
            })
            .collect();
        let by = if given.is_empty() {
            String::new()
        } else {
            format!(" (approved by {})", given.join(", "))
        };
        lines.push(format!("{} of {required} approvals{by}.", given.len()));
    }
    format!("<p>{}</p>", lines.join("<br>"))
}

fn sign_out_form(tenant: &str, id: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/ui/{t}/logout\"><input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"execution\" value=\"{id}\"><button>Sign out</button></form>",
        t = esc(tenant),
        id = esc(id),
        csrf = esc(csrf),
    )
}

/// GET /ui/{tenant}/executions/{id}
pub async fn show(
    State(s): State<ApiState>,
    Path((tenant, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    harden(show_page(&s, &tenant, &id, &headers).await)
}

async fn show_page(s: &ApiState, tenant: &str, id: &str, headers: &HeaderMap) -> Response {
    if s.ops.check_tenant(tenant).is_err() {
        return not_found_tenant();
    }
    let Some(SignedIn { principal: p, session }) = signed_in(s, headers) else {
        return login_form(s, tenant, id, "");
    };
    let csrf = s.pages.csrf(&session);
    let exec = match s.ops.get(&p, id).await {
        Ok(e) => e,
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                page(
                    "Not found",
                    &format!(
                        "<p>No execution <code>{}</code> you may see.</p>{}",
                        esc(id),
                        sign_out_form(tenant, id, &csrf)
                    ),
                ),
            )
                .into_response();
        }
    };
    let head = format!(
        "<p>Signed in as <b>{}</b>.</p>{}<p>Execution <code>{}</code> of <b>{}.{}</b> is <b>{}</b>.</p>",
        esc(&p.user),
        sign_out_form(tenant, id, &csrf),
        esc(&exec.id),
        esc(&exec.namespace),
        esc(&exec.flow_id),
        exec.state
    );
    let body = if exec.paused_runs().next().is_some() {
        forms(s, tenant, &exec, &csrf).await
    } else {
        "<p>Nothing waits for a decision here.</p>".into()
    };
    page("Tollgate approval", &(head + &body)).into_response()
}

/// POST /ui/{tenant}/login — checks the token once, then keeps only a signed session (token id,
/// expiry, nonce) in an HttpOnly cookie and goes back to the execution.
pub async fn login(State(s): State<ApiState>, Path(tenant): Path<String>, req: Request) -> Response {
    harden(sign_in(&s, &tenant, req).await)
}

async fn sign_in(s: &ApiState, tenant: &str, req: Request) -> Response {
    if s.ops.check_tenant(tenant).is_err() {
        return not_found_tenant();
    }
    if from_another_site(&req) {
        return refused(tenant, "");
    }
    let planted = page_session::cookie(req.headers(), LOGIN_CSRF_COOKIE);
    let fields = match form_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = fields.get("execution").cloned().unwrap_or_default();
    if !page_session::login_csrf_ok(planted.as_deref(), fields.get("_csrf").map(String::as_str)) {
        return refused(tenant, &id);
    }
    let token = fields.get("token").map(|t| t.trim()).unwrap_or_default();
    let Ok(p) = s.ops.authenticate(Some(&format!("Bearer {token}")), Door::Page).await else {
        return login_form(s, tenant, &id, "That token was not accepted.");
    };
    let (value, _) = s.pages.issue(p.token_id.as_deref().unwrap_or_default(), now_ms());
    let location = format!("/ui/{}/executions/{}", path_segment(tenant), path_segment(&id));
    let r = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    with_cookies(
        r,
        &[s.pages.session_cookie(&value), s.pages.clear_cookie(LOGIN_CSRF_COOKIE)],
    )
}

/// POST /ui/{tenant}/logout — ends the session on the daemon too, not only in this browser.
pub async fn logout(State(s): State<ApiState>, Path(tenant): Path<String>, req: Request) -> Response {
    harden(sign_out(&s, &tenant, req).await)
}

async fn sign_out(s: &ApiState, tenant: &str, req: Request) -> Response {
    if s.ops.check_tenant(tenant).is_err() {
        return not_found_tenant();
    }
    if from_another_site(&req) {
        return refused(tenant, "");
    }
    let current = page_session::cookie(req.headers(), SESSION_COOKIE).and_then(|v| s.pages.verify(&v, now_ms()).ok());
    let fields = match form_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = fields.get("execution").cloned().unwrap_or_default();
    if let Some(session) = current {
        if !s
            .pages
            .csrf_ok(&session, fields.get("_csrf").map(String::as_str).unwrap_or_default())
        {
            return refused(tenant, &id);
        }
        if s.ops
            .sign_out_page_session(&session.nonce, session.expires_ms)
            .await
            .is_err()
        {
            // The cookie would still open the page elsewhere: say so rather than claim success.
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Not signed out",
                    "<p class=\"err\">The sign-out could not be saved; you are still signed in. Try again.</p>",
                ),
            )
                .into_response();
        }
    }
    let back = if id.is_empty() {
        String::new()
    } else {
        format!(
            "<p><a href=\"/ui/{}/executions/{}\">Back to the execution</a></p>",
            esc(tenant),
            esc(&path_segment(&id))
        )
    };
    with_cookies(
        page("Signed out", &format!("<p class=\"ok\">You are signed out.</p>{back}")).into_response(),
        &[s.pages.clear_cookie(SESSION_COOKIE)],
    )
}

/// POST /ui/{tenant}/executions/{id}/resume
pub async fn resume(State(s): State<ApiState>, Path((tenant, id)): Path<(String, String)>, req: Request) -> Response {
    harden(decide_page(&s, &tenant, &id, req).await)
}

async fn decide_page(s: &ApiState, tenant: &str, id: &str, req: Request) -> Response {
    if s.ops.check_tenant(tenant).is_err() {
        return not_found_tenant();
    }
    if from_another_site(&req) {
        return refused(tenant, id);
    }
    let Some(SignedIn { principal: p, session }) = signed_in(s, req.headers()) else {
        return login_form(s, tenant, id, "Please sign in first.");
    };
    let mut fields = match form_fields(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let csrf = fields.remove("_csrf").unwrap_or_default();
    if !s.pages.csrf_ok(&session, &csrf) {
        return refused(tenant, id);
    }
    let run = fields.remove("_task_run");
    let reason = fields.remove("_reason").unwrap_or_default();
    let action = fields.remove("_action").unwrap_or_else(|| "resume".into());
    // Optional inputs left blank are not sent, as an empty field in a form means "no value".
    let inputs: BTreeMap<String, String> = fields.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let rejecting = action == "reject";
    if action == "preview" {
        let select = PauseSelector {
            task_run_id: run,
            task_id: None,
        };
        let back = format!(
            "<p><a href=\"/ui/{}/executions/{}\">Back to the execution</a></p>",
            esc(tenant),
            esc(id)
        );
        return match s.ops.preview_resume(&p, id, select, inputs, &reason).await {
            Ok(v) => page("Preview", &(preview_html(&v) + &back)).into_response(),
            Err(e) => (
                super::status_of(e.code()),
                page(
                    "No preview",
                    &format!("<p class=\"err\">{}</p>{back}", esc(&e.user_message())),
                ),
            )
                .into_response(),
        };
    }
    let result = if rejecting {
        let select = PauseSelector {
            task_run_id: run,
            task_id: None,
        };
        s.ops.reject(&p, id, select, &reason).await
    } else {
        decide(s, &p, id, run, inputs, &reason).await
    };
    let back = format!(
        "<p><a href=\"/ui/{}/executions/{}\">Back to the execution</a></p>",
        esc(tenant),
        esc(id)
    );
    match result {
        Ok(e) => page(
            "Decision recorded",
            &format!(
                "<p class=\"ok\">{}. The execution is now <b>{}</b>.</p>{back}",
                if rejecting { "Rejected" } else { "Resumed" },
                e.state
            ),
        )
        .into_response(),
        Err(e) => {
            let status = super::status_of(e.code());
            (
                status,
                page(
                    if rejecting { "Not rejected" } else { "Not resumed" },
                    &format!("<p class=\"err\">{}</p>{back}", esc(&e.user_message())),
                ),
            )
                .into_response()
        }
    }
}

/// The decision itself: the one call that changes anything (the operations layer checks the
/// role and the assignment, and audits the decision or its refusal).
async fn decide(
    s: &ApiState,
    p: &Principal,
    id: &str,
    task_run_id: Option<String>,
    inputs: BTreeMap<String, String>,
    reason: &str,
) -> Result<Execution, EngineError> {
    let select = PauseSelector {
        task_run_id,
        task_id: None,
    };
    s.ops.resume(p, id, select, inputs, reason).await
}

/// What "Resume" would do next, as the page shows it (nothing was run or changed).
fn preview_html(v: &crate::engine::preview::Preview) -> String {
    let mut out = format!(
        "<p>Nothing was run or changed. Resuming <b>{}</b> now would:</p>",
        esc(&v.task_id)
    );
    if !v.completes {
        out.push_str(&format!(
            "<p>record approval {} of {}; the task keeps waiting for the others.</p>",
            v.approvals_so_far + 1,
            v.approvals_required
        ));
        return out;
    }
    out.push_str("<ul>");
    for s in &v.steps {
        let branch = s
            .branch
            .as_ref()
            .map(|b| format!(" &rarr; branch <b>{}</b>", esc(b)))
            .unwrap_or_default();
        out.push_str(&format!(
            "<li><code>{}</code> ({}) {}{branch}",
            esc(&s.task_id),
            esc(s.task_type.rsplit('.').next().unwrap_or("")),
            esc(&s.state)
        ));
        if !s.properties.is_null() {
            out.push_str(&format!(
                "<pre>{}</pre>",
                esc(&serde_json::to_string_pretty(&s.properties).unwrap_or_default())
            ));
        }
        for m in &s.messages {
            out.push_str(&format!("<br>log: {}", esc(m)));
        }
        out.push_str("</li>");
    }
    out.push_str(&format!(
        "</ul><p>The execution would then be <b>{}</b>.</p>",
        esc(&v.state_after)
    ));
    out
}
