//! Append-only, SHA-256 hash-chained audit log of every decision and change.
