//! Kestra-compatible REST API (axum), served on the same port as gRPC. Thin: authenticate,
//! authorize, call the engine, translate; errors are JSON `{"message": ...}` with Kestra's statuses.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

pub mod admin;
mod approval_page;

use crate::api::ApiState;
use crate::auth::{Principal, Role};
use crate::engine::{EngineError, Execution, PauseSelector};

/// Errors are JSON `{"message": …}` as Kestra's API returns them.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "message": message.into() }))).into_response()
}

fn engine_error(e: EngineError) -> Response {
    match e {
        EngineError::NotFound(m) => json_error(StatusCode::NOT_FOUND, m),
        EngineError::FailedPrecondition(m) => json_error(StatusCode::CONFLICT, m),
        EngineError::InvalidInput(errs) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "message": errs.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "),
                "errors": errs.iter().map(|e| json!({"input": e.input_id, "message": e.message})).collect::<Vec<_>>(),
            })),
        )
            .into_response(),
        EngineError::InvalidArgument(m) => json_error(StatusCode::BAD_REQUEST, m),
        EngineError::InvalidFlow(d) => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"),
        ),
        EngineError::PermissionDenied(m) => json_error(StatusCode::FORBIDDEN, m),
        EngineError::Store(_) => json_error(StatusCode::INTERNAL_SERVER_ERROR, "storage error; see the daemon log"),
        EngineError::Unavailable => json_error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping"),
    }
}

type HttpResult = Result<Response, Response>;

fn principal(s: &ApiState, headers: &HeaderMap) -> Result<Principal, Response> {
    let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    s.auth
        .authenticate(h)
        .map_err(|_| json_error(StatusCode::UNAUTHORIZED, "invalid or missing bearer token"))
}

fn tenant(s: &ApiState, t: &str) -> Result<(), Response> {
    if t == s.tenant {
        Ok(())
    } else {
        Err(json_error(StatusCode::NOT_FOUND, format!("unknown tenant `{t}`")))
    }
}

async fn authorized(s: &ApiState, p: &Principal, id: &str, role: Role) -> Result<Execution, Response> {
    let exec = s.engine.get_execution(id).await.map_err(engine_error)?;
    if !p.may(role, &exec.namespace) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            format!(
                "{} needs the {} role on namespace `{}`",
                p.user,
                role.as_str(),
                exec.namespace
            ),
        ));
    }
    Ok(exec)
}

/// Form fields from multipart/form-data or application/x-www-form-urlencoded.
async fn form_fields(req: Request) -> Result<BTreeMap<String, String>, Response> {
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
            let name = field.name().unwrap_or_default().to_string();
            let value = field
                .text()
                .await
                .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.body_text()))?;
            out.insert(name, value);
        }
    } else if ct.starts_with("application/x-www-form-urlencoded") {
        let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .map_err(|e| json_error(StatusCode::BAD_REQUEST, e.to_string()))?;
        for (k, v) in url_decode_pairs(&String::from_utf8_lossy(&bytes)) {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn url_decode_pairs(body: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
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
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// An execution shaped like Kestra's API.
fn execution_json(e: &Execution) -> Value {
    let iso = crate::engine::context::iso_ms;
    json!({
        "id": e.id,
        "namespace": e.namespace,
        "flowId": e.flow_id,
        "flowRevision": e.flow_revision,
        "state": {
            "current": e.state.as_str(),
            "histories": e.history.iter().map(|h| json!({"state": h.state.as_str(), "date": iso(h.at_ms)})).collect::<Vec<_>>(),
            "startDate": iso(e.created_ms),
        },
        "labels": e.labels.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "inputs": e.inputs.iter().map(|(k, v)| (k.clone(), if e.secret_inputs.contains(k) { json!("******") } else { v.clone() })).collect::<serde_json::Map<_, _>>(),
        "outputs": e.outputs,
        "taskRunList": e.task_runs.iter().map(|r| json!({
            "id": r.id, "taskId": r.task_id, "parentTaskRunId": r.parent_task_run_id, "value": r.value,
            "state": {"current": r.state.as_str()}, "outputs": r.outputs, "attempts": [{"state": {"current": r.state.as_str()}}],
        })).collect::<Vec<_>>(),
    })
}

async fn get_execution(
    State(s): State<ApiState>,
    Path((t, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, &headers)?;
    let e = authorized(&s, &p, &id, Role::Viewer).await?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

async fn resume(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, req.headers())?;
    authorized(&s, &p, &id, Role::Operator).await?;
    let inputs = form_fields(req).await?;
    s.engine
        .resume(&id, PauseSelector::default(), inputs, &p.actor(), "")
        .await
        .map_err(engine_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn resume_validate(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, req: Request) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, req.headers())?;
    authorized(&s, &p, &id, Role::Operator).await?;
    let inputs = form_fields(req).await?;
    match s
        .engine
        .validate_resume(&id, PauseSelector::default(), inputs, &p.actor())
        .await
    {
        Ok(()) => Ok(axum::Json(json!({"valid": true, "errors": []})).into_response()),
        Err(e) => Err(engine_error(e)),
    }
}

async fn bulk(s: &ApiState, p: &Principal, ids: Vec<String>, kill: bool) -> Response {
    let mut results = Vec::new();
    let mut allowed = Vec::new();
    for id in ids {
        match authorized(s, p, &id, Role::Operator).await {
            Ok(_) => allowed.push(id),
            Err(_) => results.push(json!({"id": id, "ok": false, "message": "not found or access denied"})),
        }
    }
    let outcomes = if kill {
        s.engine.bulk_kill(allowed, &p.actor(), "").await
    } else {
        s.engine
            .bulk_resume(allowed, PauseSelector::default(), BTreeMap::new(), &p.actor(), "")
            .await
    };
    let mut count = 0;
    for (id, r) in outcomes {
        match r {
            Ok(_) => {
                count += 1;
                results.push(json!({"id": id, "ok": true}));
            }
            Err(e) => results.push(json!({"id": id, "ok": false, "message": e.to_string()})),
        }
    }
    axum::Json(json!({"count": count, "results": results})).into_response()
}

async fn resume_by_ids(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, &headers)?;
    let ids: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON array of execution ids: {e}"),
        )
    })?;
    Ok(bulk(&s, &p, ids, false).await)
}

async fn kill(State(s): State<ApiState>, Path((t, id)): Path<(String, String)>, headers: HeaderMap) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, &headers)?;
    authorized(&s, &p, &id, Role::Operator).await?;
    s.engine.kill(&id, &p.actor(), "").await.map_err(engine_error)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn kill_by_ids(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, &headers)?;
    let ids: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
        json_error(
            StatusCode::BAD_REQUEST,
            format!("expected a JSON array of execution ids: {e}"),
        )
    })?;
    Ok(bulk(&s, &p, ids, true).await)
}

async fn start(
    State(s): State<ApiState>,
    Path((t, ns, flow)): Path<(String, String, String)>,
    req: Request,
) -> HttpResult {
    tenant(&s, &t)?;
    let p = principal(&s, req.headers())?;
    if !p.may(Role::Operator, &ns) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            format!("{} needs the operator role on namespace `{ns}`", p.user),
        ));
    }
    let inputs = form_fields(req).await?;
    let e = s
        .engine
        .start_execution(&ns, &flow, inputs, BTreeMap::new(), &p.actor())
        .await
        .map_err(engine_error)?;
    Ok(axum::Json(execution_json(&e)).into_response())
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/{tenant}/executions/resume/by-ids", post(resume_by_ids))
        .route("/api/v1/{tenant}/executions/kill/by-ids", delete(kill_by_ids))
        .route("/api/v1/{tenant}/executions/{id}/resume", post(resume))
        .route(
            "/api/v1/{tenant}/executions/{id}/resume/validate",
            post(resume_validate),
        )
        .route("/api/v1/{tenant}/executions/{id}/kill", delete(kill))
        .route("/api/v1/{tenant}/executions/{id}", get(get_execution))
        .route("/api/v1/{tenant}/executions/{namespace}/{flow_id}", post(start))
        .route("/ui/{tenant}/executions/{id}", get(approval_page::show))
        .route("/ui/{tenant}/executions/{id}/resume", post(approval_page::resume))
        .route("/ui/{tenant}/login", post(approval_page::login))
        .merge(admin::router())
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
