//! tollgate-console: the `tollgate` CLI and terminal console for tollgated.

pub mod client;
pub mod cli;
pub mod console;
