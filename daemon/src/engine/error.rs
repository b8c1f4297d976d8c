//! Errors of engine operations, each naming what was wrong and where, with one code per kind
//! that every front door (gRPC, REST, the approval page) maps the same way.

use crate::flow::Diagnostic;
use crate::inputs::InputError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No valid token, or none at all; the message never says which part was wrong.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The execution is not in a state that allows the operation; the message names the state.
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{}", format_inputs(.0))]
    InvalidInput(Vec<InputError>),
    #[error("{}", format_diags(.0))]
    InvalidFlow(Vec<Diagnostic>),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the engine is shutting down")]
    Unavailable,
}

/// The kind of an error, as gRPC names it; REST maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The name used in per-id bulk results and JSON answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            EngineError::NotFound(_) => ErrorCode::NotFound,
            EngineError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            EngineError::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            EngineError::InvalidInput(_) | EngineError::InvalidFlow(_) | EngineError::InvalidArgument(_) => {
                ErrorCode::InvalidArgument
            }
            EngineError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            EngineError::Store(_) => ErrorCode::Internal,
            EngineError::Unavailable => ErrorCode::Unavailable,
        }
    }

    /// What the caller is told: storage details stay in the daemon log.
    pub fn user_message(&self) -> String {
        match self {
            EngineError::Store(inner) => {
                tracing::error!(error = %inner, "storage error");
                inner.user_message()
            }
            EngineError::Unavailable => "the daemon is stopping".into(),
            other => other.to_string(),
        }
    }

    /// The per-input problems of an invalid resume or start (empty for other errors).
    pub fn input_errors(&self) -> &[InputError] {
        match self {
            EngineError::InvalidInput(errs) => errs,
            _ => &[],
        }
    }
}

fn format_inputs(errors: &[InputError]) -> String {
    errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
}

fn format_diags(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
