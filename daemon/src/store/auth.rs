//! Tables and typed operations for users, groups, role bindings and tokens.

/// Creates this module's tables (called once by `Store::open`).
pub(super) fn create_tables(_tx: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    Ok(())
}
