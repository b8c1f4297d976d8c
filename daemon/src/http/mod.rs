//! Kestra-compatible REST API (axum), served on the same port as gRPC. Thin: authenticate,
//! authorize, call the engine, translate; errors are JSON `{"message": ...}` with Kestra's statuses.

// Handlers answer errors as ready-made responses (axum's idiom); boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

pub mod admin;
mod approval_page;
pub mod metrics;
pub mod page_session;

use crate::api::ApiState;
use crate::engine::error::ErrorCode;
use crate::engine::{EngineError, Execution, PauseSelector};
use crate::ops::{BulkTarget, Door};

/// Errors are JSON `{"message": …}` as Kestra's API returns them.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": message.into() }))).into_response()
}

/// The HTTP status a Kestra user expects for each kind of error.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
        ErrorCode::InvalidArgument => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The JSON answer to an error, with Kestra's status.
pub(crate) fn engine_error(e: EngineError) -> Response {
    let status = match &e {
        // A bad request shape (not a bad value) is a plain 400.
        EngineError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
        other => status_of(other.code()),
    };
    let mut body = json!({ "message": e.user_message() });
    if !e.input_errors().is_empty() {
        body["errors"] = e
            .input_errors()
            .iter()
            .map(|e| json!({"input": e.input_id, "message": e.message}))
            .collect();
    }
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    r
}

type HttpResult = Result<Response, Response>;

/// The tenant check, then the caller: both before anything else is read.
async fn caller(s: &ApiState, tenant: &str, headers: &HeaderMap) -> Result<crate::auth::Principal, Response> {
    s.ops.check_tenant(tenant).map_err(engine_error)?;
    let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    s.ops.authenticate(h, Door::Rest).await.map_err(engine_error)
}

/// Largest urlencoded or unknown body read (multipart has axum's own limit).
const MAX_FORM: usize = 1 << 20;

/// Form fields from multipart/form-data or application/x-www-form-urlencoded; a file part is
/// refused (only starts and resumes take files).
async fn form_fields(req: Request) -> Result<BTreeMap<String, String>, Response> {
    let (fields, files) = form_parts(req).await?;
    if let Some(name) = files.keys().next() {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            format!("field `{name}` is a file; this call takes no files"),
        ));
    }
    Ok(fields)
}

/// Largest body of a start or resume, whose multipart parts may carry FILE inputs.
const MAX_UPLOAD_BODY: usize = crate::engine::files::MAX_FILE_BYTES + (1 << 20);

/// Form fields, and the multipart parts sent as files (a part with a file name): FILE inputs,
/// as Kestra's API takes them.
async fn form_parts(req: Request) -> Result<(BTreeMap<String, String>, BTreeMap<String, Vec<u8>>), Response> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut out = BTreeMap::new();
    if ct.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.body_text()))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.body_text()))?
        {
            let mut name = field.name().unwrap_or_default().to_string();
            if let Some(file_name) = field.file_name() {
                // Kestra's own clients send every file as a part named `files` whose file name is
                // the input id; a part named after the input works too.
                if name == "files" {
                    name = file_name.to_string();
                }
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.body_text()))?;
                if out.contains_key(&name) || files.insert(name.clone(), bytes.to_vec()).is_some() {
                    return Err(json_error(
                        StatusCode::BAD_REQUEST,
                        format!("field `{name}` is given more than once"),
                    ));
                }
                continue;
            }
            let value = field
                .text()
                .await
                .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.body_text()))?;
            if files.contains_key(&name) || out.insert(name.clone(), value).is_some() {
                // Keeping either value silently could decide on the one the caller did not mean.
                return Err(json_error(
                    StatusCode::BAD_REQUEST,
                    format!("field `{name}` is given more than once"),
                ));
            }
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.to_string()))?;
        let body = std::str::from_utf8(&bytes)
            .map_err(|_| json_error(StatusCode::BAD_REQUEST, "the form body is not valid UTF-8"))?;
        let pairs = url_decode_pairs(body).map_err(|m| json_error(StatusCode::BAD_REQUEST, m))?;
        for (k, v) in pairs {
            if out.insert(k.clone(), v).is_some() {
                return Err(json_error(
                    StatusCode::BAD_REQUEST,
                    format!("field `{k}` is given more than once"),
                ));
            }
        }
    } else {
        // Anything else (JSON, say) is not read as inputs: ignoring it would resume with the
        // defaults instead of the values the caller meant, so a non-empty body is refused.
        let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
            .await
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.to_string()))?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "send inputs as multipart/form-data or application/x-www-form-urlencoded fields, not `{}`",
                    if ct.is_empty() {
                        "a body without a content type"
                    } else {
                        ct.as_str()
                    }
                ),
            ));
        }
    }
    Ok((out, files))
}

/// Decodes `a=b&c=d`; a name or value whose bytes are not UTF-8 is refused (named), never
/// silently replaced: a decision must carry exactly what the caller sent.
fn url_decode_pairs(body: &str) -> Result<Vec<(String, String)>, String> {
    fn dec(s: &str) -> Result<String, Vec<u8>> {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).map_err(|e| e.into_bytes())
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let key = dec(k).map_err(|_| format!("field name `{k}` is not valid UTF-8 once decoded"))?;
            let value = dec(v).map_err(|_| format!("field `{key}` is not valid UTF-8 once decoded"))?;
            Ok((key, value))
        })
        .collect()
}

fn state_json(
    current: crate::engine::State,
    history: &[crate::engine::execution::StateChange],
    start: i64,
    end: Option<i64>,
) -> Value {
    let iso = crate::engine::context::iso_ms;
    json!({
        "current": current.as_str(),
        "histories": history.iter().map(|h| json!({"state": h.state.as_str(), "date": iso(h.at_ms)})).collect::<Vec<_>>(),
        "startDate": iso(start),
        "endDate": end.map(iso),
    })
}

/// An execution shaped like Kestra's API (`state.current`, `state.histories`, `taskRunList`,
/// labels as key/value pairs); SECRET values were masked by the operations layer.
fn execution_json(e: &Execution) -> Value {
    json!({
        "id": e.id,
        "namespace": e.namespace,
        "flowId": e.flow_id,
        "flowRevision": e.flow_revision,
        "state": state_json(e.state, &e.history, e.created_ms, e.ended_ms),
        "labels": e.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "inputs": e.inputs,
        "outputs": e.outputs,
        "parentId": e.parent.as_ref().map(|p| p.execution_id.clone()),
        "trigger": e.trigger.as_ref().map(|v| json!({ "variables": v })),
        "taskRunList": e.task_runs.iter().map(|r| json!({
            "id": r.id, "executionId": e.id, "namespace": e.namespace, "flowId": e.flow_id,
            "taskId": r.task_id, "parentTaskRunId": r.parent_task_run_id, "value": r.value,
            "state": state_json(r.state, &r.history, r.started_ms, r.ended_ms), "outputs": r.outputs,
            "attempts": attempts_json(r),
            "metrics": r.metrics,
            "iteration": r.loop_iteration,
            "decisions": r.pause.as_ref().map(|p| p.approvals.iter().map(|a| json!({
                "by": a.by, "onBehalfOf": a.on_behalf_of, "date": crate::engine::context::iso_ms(a.on_ms),
                "comment": a.reason, "rejected": a.rejected,
            })).collect::<Vec<_>>()).unwrap_or_default(),
            "sla": r.pause.as_ref().and_then(|p| p.sla_due_ms.map(|due| json!({
                "due": crate::engine::context::iso_ms(due),
                "breached": p.sla_breached_ms.is_some(),
                "breachedDate": p.sla_breached_ms.map(crate::engine::context::iso_ms),
            }))),
        })).collect::<Vec<_>>(),
    })
}

/// Kestra's `attempts`: ended attempts plus the current one while it runs.
fn attempts_json(r: &crate::engine::execution::TaskRun) -> Vec<Value> {
    let iso_ms = crate::engine::context::iso_ms;
    let mut out: Vec<Value> = r
        .attempts
        .iter()
        .map(|a| json!({"state": {"current": a.state.as_str(), "startDate": iso_ms(a.started_ms), "endDate": a.ended_ms.map(iso_ms)}}))
        .collect();
    if !r.state.is_terminal() && r.state != crate::engine::State::Retrying {
        out.push(json!({"state": {"current": r.state.as_str()}}));
    }
    out
}

async fn get_execution(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let e = s.ops.get(&p, &id).await.map_err(engine_error)?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

/// One query parameter (`?comment=…`, `?reason=…`): form fields are the onResume inputs, so
/// what describes the decision travels beside them.
fn query_param(query: Option<&str>, name: &str) -> Result<String, Response> {
    let pairs = url_decode_pairs(query.unwrap_or("")).map_err(|m| json_error(StatusCode::BAD_REQUEST, m))?;
    Ok(pairs
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default())
}

async fn resume(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let comment = query_param(req.uri().query(), "comment")?;
    let (mut inputs, files) = form_parts(req).await?;
    let uploaded = s
        .ops
        .resume_files(&p, &id, &PauseSelector::default(), files)
        .await
        .map_err(engine_error)?;
    inputs.extend(uploaded);
    s.ops
        .resume(&p, &id, PauseSelector::default(), inputs, &comment)
        .await
        .map_err(engine_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resume_validate(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let inputs = form_fields(req).await?;
    s.ops
        .validate_resume(&p, &id, PauseSelector::default(), inputs)
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(json!({"valid": true, "errors": []})).into_response())
}

/// One id's outcome in a bulk answer: the code name and the HTTP status a single call would get.
fn bulk_item(id: &str, r: Result<Execution, EngineError>) -> Value {
    match r {
        Ok(_) => json!({"id": id, "ok": true, "code": "OK", "status": 200}),
        Err(e) => json!({
            "id": id, "ok": false, "code": e.code().as_str(),
            "status": status_of(e.code()).as_u16(), "message": e.user_message(),
        }),
    }
}

fn bulk_answer(outcomes: Vec<(String, Result<Execution, EngineError>)>) -> Response {
    let count = outcomes.iter().filter(|(_, r)| r.is_ok()).count();
    let results: Vec<Value> = outcomes.into_iter().map(|(id, r)| bulk_item(&id, r)).collect();
    axum::Json(json!({"count": count, "results": results})).into_response()
}

fn ids_body(body: &[u8]) -> Result<Vec<String>, Response> {
    serde_json::from_slice(body).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON array of execution ids: {e}"),
        )
    })
}

async fn resume_by_ids(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let ids = ids_body(&body)?;
    let outcomes = s
        .ops
        .bulk_resume(
            &p,
            BulkTarget::Ids(ids),
            PauseSelector::default(),
            BTreeMap::new(),
            BTreeMap::new(),
            "",
        )
        .await
        .map_err(engine_error)?;
    Ok(bulk_answer(outcomes))
}

/// POST …/resume/preview: what the resume with these form fields would do next (a read).
async fn resume_preview(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let comment = query_param(req.uri().query(), "comment")?;
    let inputs = form_fields(req).await?;
    let v = s
        .ops
        .preview_resume(&p, &id, PauseSelector::default(), inputs, &comment)
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(v).into_response())
}

/// Rejects the first pause; the reason comes as `?reason=` or a `reason` form field.
async fn reject(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let mut reason = query_param(req.uri().query(), "reason")?;
    let fields = form_fields(req).await?;
    if let Some(r) = fields.get("reason").filter(|_| reason.is_empty()) {
        reason = r.clone();
    }
    let e = s
        .ops
        .reject(&p, &id, PauseSelector::default(), &reason)
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

async fn kill(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let reason = query_param(req.uri().query(), "reason")?;
    s.ops.kill(&p, &id, &reason).await.map_err(engine_error)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn kill_by_ids(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let ids = ids_body(&body)?;
    let outcomes = s
        .ops
        .bulk_kill(&p, BulkTarget::Ids(ids), "")
        .await
        .map_err(engine_error)?;
    Ok(bulk_answer(outcomes))
}

/// Kestra's `labels=key:value` query parameters (repeatable).
fn labels_from_query(query: Option<&str>) -> Result<BTreeMap<String, String>, Response> {
    let mut labels = BTreeMap::new();
    let pairs = url_decode_pairs(query.unwrap_or("")).map_err(|m| json_error(StatusCode::BAD_REQUEST, m))?;
    for (k, v) in pairs {
        if k != "labels" {
            continue;
        }
        match v.split_once(':') {
            Some((key, value)) if !key.is_empty() => {
                labels.insert(key.to_string(), value.to_string());
            }
            _ => {
                return Err(json_error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid label `{v}`: use labels=key:value"),
                ));
            }
        }
    }
    Ok(labels)
}

async fn start(
    State(s): State<ApiState>,
    Path((t, ns, flow)): Path<(String, String, String)>,
    req: Request,
) -> HttpResult {
    let p = caller(&s, &t, req.headers()).await?;
    let labels = labels_from_query(req.uri().query())?;
    let (inputs, files) = form_parts(req).await?;
    let e = s
        .ops
        .start(&p, &ns, &flow, inputs, labels, files)
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

/// `GET /api/v1/{tenant}/executions/{id}/file?path=kestra:///…`: a file of the execution.
async fn execution_file(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
    req: Request,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let path = query_param(req.uri().query(), "path")?;
    let bytes = s.ops.execution_file(&p, &id, &path).await.map_err(engine_error)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Headers never copied into `trigger.headers`: credentials meant for a proxy or a browser
/// session would otherwise be stored with the execution.
const WEBHOOK_HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// `POST|GET|PUT /api/v1/{tenant}/executions/webhook/{namespace}/{flowId}/{key}`: no bearer
/// token; the key is the credential (checked, audited and rate-limited by `ops`).
async fn webhook(
    State(s): State<ApiState>,
    Path((t, ns, flow, key)): Path<(String, String, String, String)>,
    req: Request,
) -> HttpResult {
    s.ops.check_tenant(&t).map_err(engine_error)?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        if WEBHOOK_HIDDEN_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.entry(name.as_str().to_string()).or_default().push(value);
    }
    let mut parameters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let pairs =
        url_decode_pairs(req.uri().query().unwrap_or("")).map_err(|m| json_error(StatusCode::BAD_REQUEST, m))?;
    for (k, v) in pairs {
        parameters.entry(k).or_default().push(v);
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM)
        .await
        .map_err(|e| json_error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()))?;
    let body = String::from_utf8(bytes.to_vec())
        .map_err(|_| json_error(StatusCode::BAD_REQUEST, "the webhook body is not valid UTF-8"))?;
    let call = crate::engine::WebhookCall {
        namespace: ns,
        flow_id: flow,
        key,
        body,
        headers,
        parameters,
    };
    match s.ops.webhook(call).await.map_err(engine_error)? {
        crate::ops::WebhookAnswer::Started(e) => Ok(axum::Json(execution_json(&e)).into_response()),
        crate::ops::WebhookAnswer::ConditionsNotMet => Ok(StatusCode::NO_CONTENT.into_response()),
        crate::ops::WebhookAnswer::Shut => Err(json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed webhook calls for this flow; retry in a minute",
        )),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DelegationBody {
    to: String,
    #[serde(default)]
    from: String,
    until: String,
    #[serde(default)]
    namespace: String,
    /// Whose decisions (admins of the namespace); default the caller's.
    #[serde(default, rename = "for")]
    for_user: String,
}

fn delegation_json(d: &crate::store::DelegationRecord) -> Value {
    let iso = crate::engine::context::iso_ms;
    json!({
        "id": d.id, "from": d.from_user, "to": d.to_user, "namespace": d.namespace,
        "startDate": iso(d.from_ms), "endDate": iso(d.until_ms), "createdBy": d.created_by,
        "revokedDate": d.revoked_ms.map(iso),
    })
}

async fn delegate(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let b: DelegationBody = serde_json::from_slice(&body).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON object {{\"to\", \"until\", \"from\"?, \"namespace\"?, \"for\"?}}: {e}"),
        )
    })?;
    let d = s
        .ops
        .delegate(
            &p,
            crate::ops::NewDelegation {
                from_user: b.for_user,
                to_user: b.to,
                from_date: b.from,
                until_date: b.until,
                namespace: b.namespace,
            },
        )
        .await
        .map_err(engine_error)?;
    Ok((StatusCode::CREATED, axum::Json(delegation_json(&d))).into_response())
}

async fn delegations(State(s): State<ApiState>, Path(t): Path<String>, headers: HeaderMap) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let list = s.ops.delegations(&p, false).await.map_err(engine_error)?;
    Ok(axum::Json(list.iter().map(delegation_json).collect::<Vec<_>>()).into_response())
}

async fn revoke_delegation(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> HttpResult {
    let p = caller(&s, &t, &headers).await?;
    let d = s.ops.revoke_delegation(&p, &id).await.map_err(engine_error)?;
    Ok(axum::Json(delegation_json(&d)).into_response())
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/{tenant}/executions/resume/by-ids", post(resume_by_ids))
        .route("/api/v1/{tenant}/executions/kill/by-ids", delete(kill_by_ids))
        .route(
            "/api/v1/{tenant}/executions/{id}/resume",
            post(resume).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        )
        .route("/api/v1/{tenant}/executions/{id}/file", get(execution_file))
        .route(
            "/api/v1/{tenant}/executions/{id}/resume/validate",
            post(resume_validate),
        )
        .route("/api/v1/{tenant}/executions/{id}/kill", delete(kill))
        .route("/api/v1/{tenant}/executions/{id}/reject", post(reject))
        .route("/api/v1/{tenant}/executions/{id}/resume/preview", post(resume_preview))
        .route("/api/v1/{tenant}/delegations", post(delegate).get(delegations))
        .route("/api/v1/{tenant}/delegations/{id}", delete(revoke_delegation))
        .route("/api/v1/{tenant}/executions/{id}", get(get_execution))
        .route(
            "/api/v1/{tenant}/executions/{namespace}/{flow_id}",
            post(start).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        )
        .route(
            "/api/v1/{tenant}/executions/webhook/{namespace}/{flow_id}/{key}",
            post(webhook).get(webhook).put(webhook),
        )
        .route("/ui/{tenant}/executions/{id}", get(approval_page::show))
        .route("/ui/{tenant}/executions/{id}/resume", post(approval_page::resume))
        .route("/ui/{tenant}/login", post(approval_page::login))
        .route("/ui/{tenant}/logout", post(approval_page::logout))
        .merge(admin::router())
        .merge(metrics::router())
        .with_state(state)
}

/// Unknown paths: gRPC clients get UNIMPLEMENTED, HTTP clients a JSON 404.
pub async fn fallback(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        (
            StatusCode::OK,
            [
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
                ("grpc-message", "unknown method"),
            ],
        )
            .into_response()
    } else {
        json_error(StatusCode::NOT_FOUND, "no such route")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_pairs_decode_plus_and_percent() {
        assert_eq!(
            url_decode_pairs("status=OK&note=a+b%2Bc%C3%BC&empty=&flag").unwrap(),
            vec![
                ("status".to_string(), "OK".to_string()),
                ("note".to_string(), "a b+cü".to_string()),
                ("empty".to_string(), String::new()),
                ("flag".to_string(), String::new()),
            ]
        );
        // A truncated escape is kept as text, not dropped or panicked on.
        assert_eq!(
            url_decode_pairs("a=%4").unwrap(),
            vec![("a".to_string(), "%4".to_string())]
        );
        let e = url_decode_pairs("ok=1&reason=%C3%28").unwrap_err();
        assert!(e.contains("`reason`"), "{e}");
    }

    #[test]
    fn labels_come_from_repeated_query_parameters() {
        let labels = labels_from_query(Some("labels=team:hr&wait=false&labels=ticket%3AOPS-1:x")).unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("hr"));
        assert_eq!(labels.get("ticket").map(String::as_str), Some("OPS-1:x"));
        assert_eq!(
            labels_from_query(Some("labels=nocolon")).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert!(labels_from_query(None).unwrap().is_empty());
    }
}
