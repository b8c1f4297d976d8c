//! tollgate-console: the `tollgate` CLI and terminal console for tollgated.

pub mod cli;
pub mod client;
pub mod console;
