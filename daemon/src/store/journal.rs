//! The redo journal of the hot file: every write batch's changes, appended and `fdatasync`ed
//! before anyone sees them, so that tollgate.redb itself is written by rare large commits (see
//! `hot.rs`) instead of one copy-on-write commit per batch.
//!
//! Files: `journal/{first_seq:020}.log` in the data dir; a segment holds consecutive records and
//! the next segment starts where it ends. A record:
//!
//! ```text
//! len: u32 LE (payload bytes) | crc: u32 LE (CRC-32 of the payload) | payload
//! payload = seq: u64 LE, then operations:
//!   1, slot: u8, key_len: u32 LE, key, value_len: u32 LE, value   (put)
//!   2, slot: u8, key_len: u32 LE, key                               (delete)
//!   3, ops_len: u32 LE, LZ4 block of the operations above            (compressed: the last one)
//! ```
//!
//! A batch's operations are compressed as a whole when that makes them smaller: the rows of one
//! batch repeat each other's keys, ids and field names (issue 17: disk bytes per resume).
//! Segments written before compression hold only puts and deletes, and read as before.
//!
//! A crash mid-append leaves a torn last record (short, or failing its CRC with nothing valid
//! after it): it was never acknowledged, so replay ends there and the file is cut back to the
//! last whole record. A bad record with a valid one after it cannot come from a crash mid-append
//! (nothing is appended after a failed write: the journal refuses further writes): that is
//! damage to acknowledged data, and opening fails naming the file and offset.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::overlay::{Slot, TOMBS};
use super::{Result, StoreError};

/// Where the segments live, under the data dir.
pub const JOURNAL_DIR: &str = "journal";

const HEADER: usize = 8;
const PUT: u8 = 1;
const DELETE: u8 = 2;
const COMPRESSED: u8 = 3;
/// Operations shorter than this are written plain: too little to gain.
const COMPRESS_FROM: usize = 256;

/// One write batch: its sequence number and its changes (slot-prefixed keys, `None`: delete).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    pub(super) seq: u64,
    pub(super) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Encodes a record (header included) from slot-prefixed changes.
pub(super) fn encode<'a>(seq: u64, ops: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out.extend_from_slice(&seq.to_le_bytes());
    let start = out.len();
    encode_ops(&mut out, ops);
    compress_ops(&mut out, start);
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Replaces the operations in `out[start..]` by one [`COMPRESSED`] operation holding them, when
/// that is shorter.
fn compress_ops(out: &mut Vec<u8>, start: usize) {
    let raw_len = out.len() - start;
    if raw_len < COMPRESS_FROM {
        return;
    }
    if let Some(packed) = super::lz4::pack(COMPRESSED, &out[start..], raw_len) {
        out.truncate(start);
        out.extend_from_slice(&packed);
    }
}

fn encode_ops<'a>(out: &mut Vec<u8>, ops: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) {
    for (ck, v) in ops {
        let Some((&s, key)) = ck.split_first() else {
            continue;
        };
        out.push(if v.is_some() { PUT } else { DELETE });
        out.push(s);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(v) = v {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
}

fn decode(payload: &[u8]) -> std::result::Result<Record, String> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> std::result::Result<&'a [u8], String> {
        if p.len() < n {
            return Err("an operation runs past the record's end".into());
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Ok(a)
    }
    fn u32_of(p: &mut &[u8]) -> std::result::Result<usize, String> {
        let b = take(p, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    let mut p = payload;
    let seq_bytes = take(&mut p, 8)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(seq_bytes);
    let seq = u64::from_le_bytes(seq);
    let mut ops = Vec::new();
    let unpacked;
    if p.first() == Some(&COMPRESSED) {
        unpacked = super::lz4::unpack(&p[1..]).map_err(|e| format!("compressed operations: {e}"))?;
        p = &unpacked;
    }
    while !p.is_empty() {
        let kind = take(&mut p, 1)?[0];
        let s: Slot = take(&mut p, 1)?[0];
        if s != TOMBS && s as usize >= super::backend::Table::ALL.len() {
            return Err(format!("unknown table number {s}"));
        }
        let klen = u32_of(&mut p)?;
        let mut ck = Vec::with_capacity(klen + 1);
        ck.push(s);
        ck.extend_from_slice(take(&mut p, klen)?);
        match kind {
            PUT => {
                let vlen = u32_of(&mut p)?;
                ops.push((ck, Some(take(&mut p, vlen)?.to_vec())));
            }
            DELETE => ops.push((ck, None)),
            other => return Err(format!("unknown operation {other}")),
        }
    }
    Ok(Record { seq, ops })
}

/// What sits at an offset of a segment.
enum Parsed {
    Record(Record, usize),
    /// Nothing more (end of file, or zeros a crash left past the last write).
    End,
    /// Not a whole valid record: why.
    Bad(String),
}

fn parse_at(buf: &[u8], off: usize) -> Parsed {
    let rest = &buf[off..];
    if rest.is_empty() {
        return Parsed::End;
    }
    if rest.len() < HEADER {
        return Parsed::Bad(format!("{} bytes left, short of a record header", rest.len()));
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 && crc == 0 && rest.iter().all(|b| *b == 0) {
        return Parsed::End;
    }
    if len < 8 || len > rest.len() - HEADER {
        return Parsed::Bad(format!(
            "length {len} does not fit the {} bytes left",
            rest.len() - HEADER
        ));
    }
    let payload = &rest[HEADER..HEADER + len];
    if crc32fast::hash(payload) != crc {
        return Parsed::Bad("checksum mismatch".into());
    }
    match decode(payload) {
        Ok(r) => Parsed::Record(r, off + HEADER + len),
        Err(e) => Parsed::Bad(e),
    }
}

/// Whether a valid record starts anywhere after `off` (a bad record there is then damage, not a
/// torn tail). Looks at every offset: a torn record's length field cannot be trusted.
/// Only records with a seq from `expected` on count (bytes inside a torn record could pass for
/// an older one only by an unlikely accident; this makes it less likely still).
fn valid_record_after(buf: &[u8], off: usize, expected: u64) -> Option<usize> {
    (off + 1..buf.len()).find(|&o| matches!(parse_at(buf, o), Parsed::Record(r, _) if r.seq >= expected))
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

fn corrupt(path: &Path, off: usize, why: &str) -> StoreError {
    StoreError::Storage(format!(
        "the journal {} is damaged at offset {off} ({why}) and acknowledged changes follow it: refusing to \
         start rather than drop them (restore the data dir from a backup, or run with the damaged file \
         moved aside knowing that the changes from there on are lost)",
        path.display()
    ))
}

/// The append end of the journal. One writer at a time (the store's write lock).
pub(super) struct Journal {
    dir: PathBuf,
    /// Segments, oldest first: (first seq, path). The last is the one appended to.
    segments: Vec<(u64, PathBuf)>,
    file: File,
    next_seq: u64,
    /// Set by a failed write or sync: the file's state (and, after a failed fsync, the page
    /// cache's) is unknown, so nothing more is appended until a restart replays what is on disk.
    failed: Option<String>,
}

impl Journal {
    /// Opens the journal in `data_dir`, reads every record, cuts a torn tail, and returns the
    /// records after `flushed` (the last seq tollgate.redb holds), in order.
    pub(super) fn open(data_dir: &Path, flushed: u64) -> Result<(Journal, Vec<Record>)> {
        let dir = data_dir.join(JOURNAL_DIR);
        let io = |what: &str, p: &Path, e: std::io::Error| {
            StoreError::Storage(format!("cannot {what} {}: {e}", p.display()))
        };
        if !dir.exists() {
            super::create_private_dir(&dir).map_err(|e| io("create", &dir, e))?;
            sync_dir(data_dir).map_err(|e| io("sync", data_dir, e))?;
        }
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io("list", &dir, e))? {
            let entry = entry.map_err(|e| io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(first) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            segments.push((first, entry.path()));
        }
        segments.sort();
        let mut records = Vec::new();
        let mut last: Option<u64> = None;
        let count = segments.len();
        for (i, (first, path)) in segments.iter().enumerate() {
            let buf = std::fs::read(path).map_err(|e| io("read", path, e))?;
            let is_last = i + 1 == count;
            let mut off = 0usize;
            let mut expected = *first;
            if let Some(l) = last
                && l + 1 != *first
            {
                return Err(corrupt(
                    path,
                    0,
                    &format!("it starts at seq {first} but the one before ends at {l}"),
                ));
            }
            loop {
                match parse_at(&buf, off) {
                    Parsed::Record(r, next) => {
                        if r.seq != expected {
                            return Err(corrupt(path, off, &format!("seq {} where {expected} was due", r.seq)));
                        }
                        expected += 1;
                        last = Some(r.seq);
                        if r.seq > flushed {
                            records.push(r);
                        }
                        off = next;
                    }
                    Parsed::End => break,
                    Parsed::Bad(why) => {
                        if !is_last || valid_record_after(&buf, off, expected).is_some() {
                            return Err(corrupt(path, off, &why));
                        }
                        // The torn tail of a crash mid-append: never acknowledged. Cut it so
                        // that new records do not follow garbage.
                        tracing::warn!(file = %path.display(), offset = off, why, "cut the torn end of the journal (a crash while a batch was being written; it was never acknowledged)");
                        break;
                    }
                }
            }
            if is_last && off < buf.len() {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| io("open", path, e))?;
                f.set_len(off as u64).map_err(|e| io("truncate", path, e))?;
                f.sync_all().map_err(|e| io("sync", path, e))?;
            }
        }
        if let Some(r) = records.first()
            && r.seq > flushed + 1
        {
            return Err(StoreError::Storage(format!(
                "the journal in {} starts at seq {} but tollgate.redb holds changes up to {flushed} only: \
                 changes in between are missing",
                dir.display(),
                r.seq
            )));
        }
        let next_seq = last.unwrap_or(0).max(flushed) + 1;
        // Appends go to a new segment (or an empty one of that name).
        let path = dir.join(segment_name(next_seq));
        let file = open_segment(&dir, &path)?;
        segments.retain(|(_, p)| *p != path);
        segments.push((next_seq, path));
        let mut j = Journal {
            dir,
            segments,
            file,
            next_seq,
            failed: None,
        };
        j.remove_flushed(flushed);
        Ok((j, records))
    }

    /// The seq the next record gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a record made by [`encode`] with [`Journal::next_seq`] and waits until it is on
    /// disk. `flushed` (the last seq in tollgate.redb) lets it start a new segment when the
    /// current one holds flushed records, and delete segments that hold only flushed ones.
    pub(super) fn append(&mut self, record: &[u8], flushed: u64) -> Result<u64> {
        if let Some(why) = &self.failed {
            // "I/O error" makes the caller's message say what to do (StoreError::user_message).
            return Err(StoreError::Storage(format!(
                "I/O error: the journal could not be written earlier ({why}); no change is accepted until the \
                 daemon is restarted (what was acknowledged is on disk and is replayed then)"
            )));
        }
        let seq = self.next_seq;
        if self.segments.last().is_some_and(|(first, _)| *first <= flushed) {
            self.rotate(flushed)?;
        } else if self.segments.len() > 1 {
            self.remove_flushed(flushed);
        }
        let written = self.file.write_all(record).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let why = format!("{}: {e}", self.current().display());
            self.failed = Some(why.clone());
            return Err(StoreError::Storage(format!(
                "I/O error: cannot write the journal {why}; no change is accepted until the daemon is restarted"
            )));
        }
        self.next_seq += 1;
        Ok(seq)
    }

    fn current(&self) -> &Path {
        self.segments.last().map(|(_, p)| p.as_path()).unwrap_or(&self.dir)
    }

    /// Starts a new segment at the next seq and deletes the segments that hold only records up
    /// to `flushed`.
    fn rotate(&mut self, flushed: u64) -> Result<()> {
        let path = self.dir.join(segment_name(self.next_seq));
        self.file = open_segment(&self.dir, &path)?;
        self.segments.push((self.next_seq, path));
        self.remove_flushed(flushed);
        Ok(())
    }

    /// Deletes the segments whose records are all in tollgate.redb: a segment's records end
    /// where the next segment's begin. The one appended to stays.
    pub(super) fn remove_flushed(&mut self, flushed: u64) {
        while self.segments.len() >= 2 && self.segments[1].0 <= flushed + 1 {
            let (_, path) = self.segments.remove(0);
            if let Err(e) = std::fs::remove_file(&path) {
                // Harmless: replay skips records tollgate.redb holds; retried at the next rotation.
                tracing::warn!(file = %path.display(), error = %e, "cannot delete a flushed journal segment");
                self.segments.insert(0, (0, path));
                break;
            }
        }
    }

    /// After a final flush (clean shutdown, compaction): every record is in tollgate.redb, so
    /// every segment goes.
    pub(super) fn remove_all(&mut self, flushed: u64) {
        if self.next_seq > flushed + 1 {
            return;
        }
        for (_, path) in self.segments.drain(..) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot delete a flushed journal segment");
            }
        }
    }
}

/// Creates (or opens, emptied) a segment and makes its directory entry durable.
fn open_segment(dir: &Path, path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| {
            StoreError::Storage(format!(
                "I/O error: cannot create the journal segment {}: {e}",
                path.display()
            ))
        })?;
    super::restrict_to_owner(path)
        .map_err(|e| StoreError::Storage(format!("cannot make {} private (0600): {e}", path.display())))?;
    sync_dir(dir).map_err(|e| StoreError::Storage(format!("I/O error: cannot sync {}: {e}", dir.display())))?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::overlay::ckey;
    use super::*;

    fn rec(seq: u64, n: u8) -> Record {
        Record {
            seq,
            ops: vec![
                (ckey(0, format!("exec-{seq}").as_bytes()), Some(vec![n; 3 + n as usize])),
                (ckey(2, b"gone"), None),
                (ckey(TOMBS, b"\x00e1"), Some(vec![])),
            ],
        }
    }

    fn append(j: &mut Journal, r: &Record, flushed: u64) {
        assert_eq!(j.next_seq(), r.seq);
        let bytes = encode(r.seq, r.ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        assert_eq!(j.append(&bytes, flushed).unwrap(), r.seq);
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir.join(JOURNAL_DIR))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, got) = Journal::open(dir.path(), 0).unwrap();
        assert!(got.is_empty());
        let all: Vec<Record> = (1..=6).map(|s| rec(s, s as u8)).collect();
        for r in &all[..3] {
            append(&mut j, r, 0);
        }
        drop(j);
        let (mut j, got) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(got, all[..3]);
        for r in &all[3..] {
            append(&mut j, r, 0);
        }
        drop(j);
        assert_eq!(segments(dir.path()).len(), 2);
        let (_, got) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(got, all);
    }

    /// Only records after the flushed seq are replayed: a crash between the flush's commit and
    /// the deletion of its segments leaves records tollgate.redb already holds, and they are
    /// skipped by seq. (Replaying them would also be harmless as long as everything after them
    /// is replayed too, in order: puts and deletes carry whole values, not deltas, so the last
    /// one of each key decides; skipping is simply cheaper.)
    #[test]
    fn replay_skips_flushed_records_and_flushed_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        for s in 1..=4 {
            append(&mut j, &rec(s, 1), 0);
        }
        drop(j);
        let (mut j, got) = Journal::open(dir.path(), 2).unwrap();
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4]);
        // Flushed up to 4: the next append starts a segment and deletes the old ones.
        append(&mut j, &rec(5, 1), 4);
        assert_eq!(segments(dir.path()).len(), 1, "{:?}", segments(dir.path()));
        drop(j);
        let (_, got) = Journal::open(dir.path(), 4).unwrap();
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5]);
        // A journal whose records start after what the store holds is missing changes.
        let err = Journal::open(dir.path(), 3).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("starts at seq 5"), "{err}");
    }

    /// A batch of rows that repeat each other (as a batch's executions of one flow do).
    fn big(seq: u64) -> Record {
        Record {
            seq,
            ops: (0..40u8)
                .map(|i| {
                    let v = format!("{{\"id\":\"exec-{seq}-{i}\",\"flow\":\"gate\",\"state\":\"RUNNING\",\"n\":{i}}}");
                    (ckey(0, format!("exec-{seq}-{i}").as_bytes()), Some(v.into_bytes()))
                })
                .chain([(ckey(1, b"gone"), None)])
                .collect(),
        }
    }

    fn plain_len(r: &Record) -> usize {
        let mut ops = Vec::new();
        encode_ops(&mut ops, r.ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        HEADER + 8 + ops.len()
    }

    /// Large batches are written compressed, small ones plain, and a segment mixing them (or
    /// written before compression: plain records only) replays in order.
    #[test]
    fn compressed_and_plain_records_replay_alike() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        let all = vec![rec(1, 1), big(2), rec(3, 2), big(4)];
        for r in &all {
            append(&mut j, r, 0);
        }
        drop(j);
        let small = encode(1, all[0].ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        assert_eq!(
            (small.len(), small[HEADER + 8]),
            (plain_len(&all[0]), PUT),
            "small: plain"
        );
        let packed = encode(2, all[1].ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        assert_eq!(packed[HEADER + 8], COMPRESSED);
        assert!(
            packed.len() * 2 < plain_len(&all[1]),
            "{} vs {}",
            packed.len(),
            plain_len(&all[1])
        );
        let (_, got) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(got, all);
    }

    /// A compressed record torn anywhere is cut like a plain one; one damaged inside its
    /// compressed bytes (checksum recomputed, as if written so) is refused, not misread.
    #[test]
    fn a_torn_or_damaged_compressed_record() {
        let first = encode(1, big(1).ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        let second = encode(2, big(2).ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        for cut in [1usize, 8, 17, 20, second.len() / 2, second.len() - 1] {
            let dir = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
            append(&mut j, &big(1), 0);
            drop(j);
            let seg = segments(dir.path()).pop().unwrap();
            let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
            f.write_all(&second[..cut]).unwrap();
            drop(f);
            let (_, got) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(got, vec![big(1)], "cut at {cut}");
            assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, first.len());
        }
        let mut payload = second[HEADER..].to_vec();
        // The uncompressed length says one byte more than the block holds.
        let len = u32::from_le_bytes([payload[9], payload[10], payload[11], payload[12]]);
        payload[9..13].copy_from_slice(&(len + 1).to_le_bytes());
        assert!(decode(&payload).unwrap_err().contains("were due"));
        payload[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&payload).unwrap_err().contains("cannot come from"));
        let mut payload = second[HEADER..].to_vec();
        let last = payload.len() - 1;
        payload.truncate(last);
        assert!(decode(&payload).is_err());
    }

    #[test]
    fn a_torn_tail_ends_replay_and_is_cut() {
        for cut in [1usize, 5, 8, 12, 20] {
            let dir = tempfile::tempdir().unwrap();
            let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
            append(&mut j, &rec(1, 1), 0);
            append(&mut j, &rec(2, 2), 0);
            drop(j);
            let seg = segments(dir.path()).pop().unwrap();
            let full = std::fs::metadata(&seg).unwrap().len();
            // A third record written only in part, or zeros past the end.
            let third = encode(3, rec(3, 3).ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
            let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
            f.write_all(&third[..cut.min(third.len() - 1)]).unwrap();
            drop(f);
            let (mut j, got) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(got.len(), 2, "cut at {cut}");
            assert_eq!(std::fs::metadata(&seg).unwrap().len(), full, "the torn bytes are cut");
            append(&mut j, &rec(3, 3), 0);
            drop(j);
            let (_, got) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        }
        // Zeros past the last record (a file extended but not written) end replay too.
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        append(&mut j, &rec(1, 1), 0);
        drop(j);
        let seg = segments(dir.path()).pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        drop(f);
        let (_, got) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn a_corrupt_record_with_valid_ones_after_it_is_refused_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        for s in 1..=3 {
            append(&mut j, &rec(s, s as u8), 0);
        }
        drop(j);
        let seg = segments(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        let first_len = encode(1, rec(1, 1).ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))).len();
        // One bit flipped inside the second record's value.
        bytes[first_len + 30] ^= 0x10;
        std::fs::write(&seg, &bytes).unwrap();
        let err = Journal::open(dir.path(), 0).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(&seg.display().to_string()), "{err}");
        assert!(err.contains(&format!("offset {first_len}")), "{err}");
        assert!(err.contains("checksum"), "{err}");
        // Nothing was cut: the file is as it was.
        assert_eq!(std::fs::read(&seg).unwrap(), bytes);
        // A damaged record in an older segment is refused even at its end.
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        append(&mut j, &rec(1, 1), 0);
        drop(j);
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        append(&mut j, &rec(2, 1), 0);
        drop(j);
        let old = segments(dir.path()).remove(0);
        let mut bytes = std::fs::read(&old).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&old, &bytes).unwrap();
        let err = Journal::open(dir.path(), 0).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains(&old.display().to_string()) && err.contains("offset 0"),
            "{err}"
        );
    }
}
