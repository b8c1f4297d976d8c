//! LZ4 blocks stored as `tag: u8 | decompressed_len: u32 LE | block` (compressed execution and
//! log records, compressed journal batches): one place writes and reads that layout and decides
//! what a damaged length is.

/// `tag | raw.len() | LZ4 block of raw`, when that is shorter than `must_beat` bytes (what the
/// plain form costs the caller); `None` when compressing does not pay.
pub fn pack(tag: u8, raw: &[u8], must_beat: usize) -> Option<Vec<u8>> {
    let len = u32::try_from(raw.len()).ok()?;
    let mut packed = vec![0u8; 5 + lz4_flex::block::get_maximum_output_size(raw.len())];
    packed[0] = tag;
    packed[1..5].copy_from_slice(&len.to_le_bytes());
    match lz4_flex::block::compress_into(raw, &mut packed[5..]) {
        Ok(n) if 5 + n < must_beat => {
            packed.truncate(5 + n);
            Some(packed)
        }
        _ => None,
    }
}

/// The raw bytes of what [`pack`] wrote, given the bytes after its tag (`len | block`).
pub fn unpack(after_tag: &[u8]) -> Result<Vec<u8>, String> {
    let (len, block) = after_tag.split_first_chunk::<4>().ok_or("shorter than its header")?;
    decompress_exact(block, u32::from_le_bytes(*len) as usize)
}

/// Decompresses `block`, which must give exactly `len` bytes. A `len` that no block of this size
/// can give (LZ4 expands at most ~255x) is damage, refused before anything is allocated for it.
fn decompress_exact(block: &[u8], len: usize) -> Result<Vec<u8>, String> {
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
