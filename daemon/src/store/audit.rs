//! The audit table: append-only, hash-chained records.

/// Creates this module's tables (called once by `Store::open`).
pub(super) fn create_tables(_tx: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    Ok(())
}
