//! `tollgate`: CLI and terminal console for tollgated.

fn main() {}
