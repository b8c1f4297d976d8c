//! Engine errors → gRPC status, in one place.

use tonic::{Code, Status};

use crate::engine::EngineError;
use crate::engine::error::ErrorCode;

pub fn code(c: ErrorCode) -> Code {
    match c {
        ErrorCode::Unauthenticated => Code::Unauthenticated,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::PermissionDenied => Code::PermissionDenied,
        ErrorCode::Internal => Code::Internal,
        ErrorCode::Unavailable => Code::Unavailable,
    }
}

pub fn from_engine(e: EngineError) -> Status {
    // Clients that want the per-input detail read it from ValidateResume or a bulk result.
    Status::new(code(e.code()), e.user_message())
}
