//! `GET /metrics`: Prometheus text exposition. On the main port it needs a bearer token of a user
//! with the `metrics` role (or `admin`) on every namespace; `--metrics-listen` serves it without a
//! token on a separate address (bind that to a private interface).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::engine_error;
use crate::api::ApiState;
use crate::ops::Door;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn router() -> Router<ApiState> {
    Router::new().route("/metrics", get(with_token))
}

async fn with_token(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let h = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let p = match s.ops.authenticate(h, Door::Rest).await {
        Ok(p) => p,
        Err(e) => return engine_error(e),
    };
    match s.ops.metrics_text(Some(&p)).await {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => engine_error(e),
    }
}

/// The router of `--metrics-listen`: `/metrics` only, no token.
pub fn open_router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<ApiState>| async move {
                match s.ops.metrics_text(None).await {
                    Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                    Err(e) => engine_error(e),
                }
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is served here\n").into_response() })
        .with_state(state)
}

/// Counts every request by protocol for `tollgate_requests_total`.
pub async fn count_requests(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    crate::metrics::process().request(grpc);
    next.run(req).await
}
