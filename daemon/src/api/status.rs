//! Engine errors → gRPC status, in one place.

use tonic::{Code, Status};

use crate::engine::EngineError;

pub fn from_engine(e: EngineError) -> Status {
    match e {
        EngineError::NotFound(m) => Status::not_found(m),
        EngineError::FailedPrecondition(m) => Status::failed_precondition(m),
        EngineError::InvalidInput(errors) => {
            // Clients that want the per-input detail call ValidateResume; the message names every input.
            let message = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
            Status::invalid_argument(message)
        }
        EngineError::InvalidFlow(d) => {
            Status::invalid_argument(d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))
        }
        EngineError::InvalidArgument(m) => Status::invalid_argument(m),
        EngineError::PermissionDenied(m) => Status::permission_denied(m),
        EngineError::Store(e) => {
            tracing::error!(error = %e, "storage error");
            Status::internal(e.user_message())
        }
        EngineError::Unavailable => Status::unavailable("the daemon is shutting down"),
    }
}

/// The short code name used in per-id bulk results.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::NotFound => "NOT_FOUND",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::Unauthenticated => "UNAUTHENTICATED",
        Code::Unavailable => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}
