//! `tollgate`: CLI and terminal console for tollgated.

mod client;
mod console;

fn main() {}
