//! Errors of engine operations, each naming what was wrong and where.

use crate::flow::Diagnostic;
use crate::inputs::InputError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
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

fn format_inputs(errors: &[InputError]) -> String {
    errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
}

fn format_diags(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
