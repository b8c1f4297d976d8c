//! The admin API: users, groups, role bindings and tokens on a running daemon (redb locks the
//! data file while the daemon runs, so `tollgated admin` goes through here then). Only an admin
//! of every namespace may call it; each change is audited under the caller's name.
//!
//! `GET|POST /admin/v1/users`, `GET|POST /admin/v1/groups`, `GET|POST|DELETE /admin/v1/roles`,
//! `GET|POST /admin/v1/tokens`, `DELETE /admin/v1/tokens/{id}`. Bodies and answers are JSON;
//! errors are `{"message": …}`.

// Handlers answer errors as ready-made responses (axum's idiom); boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::json_error;
use crate::api::ApiState;
use crate::auth::{GroupInfo, ManageError, Manager, Subject, TokenInfo, parse_expiry};
use crate::store::{Binding, UserRecord};

/// `POST /admin/v1/users`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddUser {
    pub email: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `POST /admin/v1/groups`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddGroup {
    pub name: String,
}

/// `POST|DELETE /admin/v1/roles`: exactly one of `user`, `group` and `flows` (the flows of a namespace).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<String>,
    pub role: String,
    pub namespace: String,
}

/// `POST /admin/v1/tokens`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateToken {
    pub user: String,
    #[serde(default)]
    pub name: String,
    /// `90d`, `12h` or an ISO-8601 duration; none = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// The answer to `POST /admin/v1/tokens`: the only time the token text is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

fn status_of(e: &ManageError) -> StatusCode {
    match e {
        ManageError::InvalidEmail(_)
        | ManageError::InvalidGroup(_)
        | ManageError::UnknownRole(_)
        | ManageError::InvalidNamespace(_)
        | ManageError::MetricsScope
        | ManageError::BadExpiry(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ManageError::UserExists(_)
        | ManageError::GroupExists(_)
        | ManageError::BindingExists { .. }
        | ManageError::AlreadyRevoked(_) => StatusCode::CONFLICT,
        ManageError::UnknownUser(_)
        | ManageError::UnknownGroup(_)
        | ManageError::UnknownBinding { .. }
        | ManageError::UnknownToken(_) => StatusCode::NOT_FOUND,
        ManageError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn manage_error(e: ManageError) -> Response {
    if let ManageError::Store(inner) = &e {
        tracing::error!(error = %inner, "admin API storage error");
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, inner.user_message());
    }
    json_error(status_of(&e), e.to_string())
}

/// The caller's manager, or 401/403 (refusals audited by the operations layer).
async fn manager(s: &ApiState, headers: &HeaderMap) -> Result<Manager, Response> {
    let h = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.ops.admin_manager(h).await.map_err(super::engine_error)
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| json_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

/// Runs a store operation off the async runtime and answers with its JSON (or its error).
async fn run<T: Serialize + Send + 'static>(
    m: Manager,
    created: bool,
    f: impl FnOnce(&Manager) -> Result<T, ManageError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&m)).await {
        Ok(Ok(v)) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, axum::Json(v)).into_response()
        }
        Ok(Err(e)) => manage_error(e),
        Err(_) => json_error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping"),
    }
}

impl RoleChange {
    /// Who the role is for; exactly one of `user`, `group` and `flows` must be named.
    pub fn subject(&self) -> Result<Subject, String> {
        match (&self.user, &self.group, &self.flows) {
            (Some(u), None, None) => Ok(Subject::User(u.clone())),
            (None, Some(g), None) => Ok(Subject::Group(g.clone())),
            (None, None, Some(ns)) => Ok(Subject::Flows(ns.clone())),
            _ => Err("name exactly one of --user, --group and --flows-of".into()),
        }
    }
}

fn subject(r: &RoleChange) -> Result<Subject, Response> {
    r.subject().map_err(|m| json_error(StatusCode::BAD_REQUEST, m))
}

async fn list_users(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match manager(&s, &headers).await {
        Ok(m) => run(m, false, |m| -> Result<Vec<UserRecord>, _> { m.users() }).await,
        Err(r) => r,
    }
}

async fn add_user(State(s): State<ApiState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let (m, req) = match manager(&s, &headers)
        .await
        .and_then(|m| Ok((m, body::<AddUser>(&bytes)?)))
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    run(m, true, move |m| m.add_user(&req.email, &req.groups)).await
}

async fn list_groups(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match manager(&s, &headers).await {
        Ok(m) => run(m, false, |m| -> Result<Vec<GroupInfo>, _> { m.groups() }).await,
        Err(r) => r,
    }
}

async fn add_group(State(s): State<ApiState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let (m, req) = match manager(&s, &headers)
        .await
        .and_then(|m| Ok((m, body::<AddGroup>(&bytes)?)))
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    run(m, true, move |m| {
        m.add_group(&req.name)?;
        Ok(GroupInfo {
            name: req.name.trim().to_string(),
            members: vec![],
        })
    })
    .await
}

async fn list_roles(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match manager(&s, &headers).await {
        Ok(m) => run(m, false, |m| -> Result<Vec<Binding>, _> { m.bindings() }).await,
        Err(r) => r,
    }
}

async fn bind_role(State(s): State<ApiState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let (m, req, who) = match manager(&s, &headers).await.and_then(|m| {
        let req = body::<RoleChange>(&bytes)?;
        let who = subject(&req)?;
        Ok((m, req, who))
    }) {
        Ok(x) => x,
        Err(r) => return r,
    };
    run(m, true, move |m| m.bind(&who, &req.role, &req.namespace)).await
}

async fn unbind_role(State(s): State<ApiState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let (m, req, who) = match manager(&s, &headers).await.and_then(|m| {
        let req = body::<RoleChange>(&bytes)?;
        let who = subject(&req)?;
        Ok((m, req, who))
    }) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let answer = run(m, false, move |m| m.unbind(&who, &req.role, &req.namespace)).await;
    s.ops.auth().rights_changed();
    answer
}

async fn list_tokens(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    match manager(&s, &headers).await {
        Ok(m) => run(m, false, |m| -> Result<Vec<TokenInfo>, _> { m.tokens() }).await,
        Err(r) => r,
    }
}

async fn create_token(State(s): State<ApiState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let (m, req) = match manager(&s, &headers)
        .await
        .and_then(|m| Ok((m, body::<CreateToken>(&bytes)?)))
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    run(m, true, move |m| {
        let expires = req.expires.as_deref().map(parse_expiry).transpose()?;
        let (rec, token) = m.create_token(&req.user, &req.name, expires)?;
        Ok(CreatedToken {
            token,
            info: TokenInfo::from(&rec),
        })
    })
    .await
}

async fn revoke_token(State(s): State<ApiState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let answer = match manager(&s, &headers).await {
        Ok(m) => run(m, false, move |m| m.revoke_token(&id)).await,
        Err(r) => return r,
    };
    s.ops.auth().rights_changed();
    answer
}

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/admin/v1/users", get(list_users).post(add_user))
        .route("/admin/v1/groups", get(list_groups).post(add_group))
        .route("/admin/v1/roles", get(list_roles).post(bind_role).delete(unbind_role))
        .route("/admin/v1/tokens", get(list_tokens).post(create_token))
        .route("/admin/v1/tokens/{id}", delete(revoke_token))
}
