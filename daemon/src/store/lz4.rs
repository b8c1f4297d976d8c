//! LZ4 blocks stored with their decompressed length beside them (compressed execution and log
//! records, compressed journal batches): one place decides what a damaged length is.

/// Decompresses `block`, which must give exactly `len` bytes. A `len` that no block of this size
/// can give (LZ4 expands at most ~255x) is damage, refused before anything is allocated for it.
pub fn decompress_exact(block: &[u8], len: usize) -> Result<Vec<u8>, String> {
    if len > block.len().saturating_mul(255) + 16 {
        return Err(format!("{len} bytes cannot come from {} compressed ones", block.len()));
    }
    let mut raw = vec![0u8; len];
    match lz4_flex::block::decompress_into(block, &mut raw) {
        Ok(n) if n == len => Ok(raw),
        Ok(n) => Err(format!("{n} bytes where {len} were due")),
        Err(e) => Err(e.to_string()),
    }
}
