//! Kestra-compatible REST API (axum), served on the same port as gRPC.
//!
//! INTERFACE: `router(ApiState) -> axum::Router` (no fallback: `server` merges it with the gRPC
//! routes and installs [`fallback`]).

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use crate::api::ApiState;

/// Errors are JSON `{"message": …}` as Kestra's API returns them.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> axum::response::Response {
    (
        status,
        axum::Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

pub fn router(_state: ApiState) -> Router {
    Router::new()
}

/// Unknown paths: gRPC clients get UNIMPLEMENTED, HTTP clients a JSON 404.
pub async fn fallback(headers: HeaderMap) -> axum::response::Response {
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
