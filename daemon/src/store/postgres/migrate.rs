//! Versioned schema migrations, applied at start under a session advisory lock (two daemons
//! starting together migrate once). Each version runs in its own transaction and is recorded in
//! `tollgate_schema`; a database recorded at a version above [`LATEST`] is refused.

use super::{Inner, StoreError};
use crate::store::Result;

/// Held while migrating (a constant of our own, distinct from the write lock).
const MIGRATE_LOCK: i64 = 0x746f_6c6c_6d69_6772; // "tollmigr"

/// The schema, one entry per version, never edited once released: add a version instead.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE tollgate_kv (
         tbl smallint NOT NULL,
         k bytea NOT NULL,
         v bytea NOT NULL,
         PRIMARY KEY (tbl, k)
     );
     CREATE TABLE tollgate_changes (
         seq bigserial PRIMARY KEY,
         daemon text NOT NULL,
         ids text[] NOT NULL,
         at timestamptz NOT NULL DEFAULT now()
     );
     CREATE INDEX tollgate_changes_at ON tollgate_changes (at);
     CREATE TABLE tollgate_daemons (
         id text PRIMARY KEY,
         addr text NOT NULL DEFAULT '',
         started_at timestamptz NOT NULL DEFAULT now(),
         seen_at timestamptz NOT NULL DEFAULT now()
     );",
    ),
    (
        2,
        // Bumped by every write transaction under the write lock: a daemon whose last commit
        // left it at n and finds n again knows nobody wrote since (its write cache is current).
        "CREATE TABLE tollgate_write_seq (
             one boolean PRIMARY KEY DEFAULT true CHECK (one),
             n bigint NOT NULL
         );
         INSERT INTO tollgate_write_seq (n) VALUES (0);",
    ),
    (
        3,
        // `tollgate_write_keys`: per write-counter value, the cached-table keys that commit wrote,
        // so another daemon evicts only those rows from its write cache (see `cache.rs`).
        // `tollgate_flush`: one row per daemon, written by a synchronous commit right after each
        // write transaction's asynchronous one: the WAL flush happens after the write lock is
        // released (see `PgWrite::commit`).
        "CREATE TABLE tollgate_write_keys (
             seq bigint PRIMARY KEY,
             tbls smallint[] NOT NULL,
             ks bytea[] NOT NULL
         );
         CREATE TABLE tollgate_flush (
             daemon text PRIMARY KEY,
             n bigint NOT NULL
         );",
    ),
];

/// The newest schema version this build knows.
pub const LATEST: i32 = 3;

pub(super) fn run(inner: &Inner) -> Result<()> {
    let name = inner.name.clone();
    let (config, tls, n) = (inner.config.clone(), inner.tls.clone(), inner.name.clone());
    // Its own connection, without the store's prepared statements (their tables may not exist yet);
    // dropped at the end, which also ends a failed migration's transaction.
    let outcome = inner.block(async move {
        let client = super::open_client(config, tls, n).await?;
        let client = &client;
        client
            .batch_execute(&format!(
                "SELECT pg_advisory_lock({MIGRATE_LOCK});
                 CREATE TABLE IF NOT EXISTS tollgate_schema (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );"
            ))
            .await?;
        let found: i32 = client
            .query_one("SELECT coalesce(max(version), 0) FROM tollgate_schema", &[])
            .await?
            .get(0);
        let mut applied = Vec::new();
        if found <= LATEST {
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
                client
                    .batch_execute(&format!(
                        "BEGIN; {sql}; INSERT INTO tollgate_schema (version) VALUES ({version}); COMMIT;"
                    ))
                    .await?;
                applied.push(*version);
            }
        }
        client
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATE_LOCK})"))
            .await?;
        Ok((found, applied))
    });
    let (found, applied) = outcome?;
    if found > LATEST {
        return Err(StoreError::NewerSchema {
            database: name,
            found,
            supported: LATEST,
        });
    }
    for v in applied {
        tracing::info!(database = %inner.name, version = v, "applied schema migration");
    }
    Ok(())
}
