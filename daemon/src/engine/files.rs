//! Kestra's internal storage: `kestra:///…` URIs naming files kept in the store (see
//! `store/files.rs`), with Kestra's layout of paths:
//! - FILE inputs (start and `onResume`): `/{namespace as a path}/{flow}/executions/{id}/inputs/{input}/{name}`;
//! - files a task writes: `/{namespace as a path}/{flow}/executions/{id}/tasks/{task}/{task run}/{name}`.
//!
//! Every file belongs to one execution (its id is in the path), so it lives and dies with it.
//! A flow reads a file only if its namespace may read the file's execution's namespace (the same
//! namespace, or what `auth::flow_scope` allows), as Kestra checks namespaces on every read.

use crate::engine::Execution;
use crate::expr::ExprServices;
use crate::store::{Reader, StoreError, Writer};

/// What file reads need from a store view (a snapshot or the writer's transaction).
pub trait FileSource {
    fn file(&self, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn file_size(&self, execution_id: &str, path: &str) -> Result<Option<u64>, StoreError>;
}

impl FileSource for Reader {
    fn file(&self, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Reader::file(self, execution_id, path)
    }
    fn file_size(&self, execution_id: &str, path: &str) -> Result<Option<u64>, StoreError> {
        Reader::file_size(self, execution_id, path)
    }
}

impl FileSource for Writer {
    fn file(&self, execution_id: &str, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Writer::file(self, execution_id, path)
    }
    fn file_size(&self, execution_id: &str, path: &str) -> Result<Option<u64>, StoreError> {
        Writer::file_size(self, execution_id, path)
    }
}

/// Largest file stored (an upload, a batch, a script's output file).
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Largest file `read()` returns as text (templates hold their values in memory).
pub const MAX_READ_BYTES: usize = crate::expr::limits::MAX_STRING_BYTES;

pub const SCHEME: &str = "kestra://";

/// A namespace as Kestra writes it in storage paths (`io.kestra.tests` -> `io/kestra/tests`).
pub fn namespace_path(namespace: &str) -> String {
    namespace.replace('.', "/")
}

/// The storage prefix of one execution's files, `/{ns}/{flow}/executions/{id}/`.
pub fn execution_prefix(namespace: &str, flow_id: &str, execution_id: &str) -> String {
    format!("/{}/{flow_id}/executions/{execution_id}/", namespace_path(namespace))
}

/// Where a FILE input's upload is kept (Kestra: `{input}/{input}{extension}`, `.upl` by default).
pub fn input_path(namespace: &str, flow_id: &str, execution_id: &str, input: &str, extension: &str) -> String {
    let ext = if extension.is_empty() || extension.starts_with('.') {
        extension.to_string()
    } else {
        format!(".{extension}")
    };
    format!(
        "{}inputs/{input}/{input}{ext}",
        execution_prefix(namespace, flow_id, execution_id)
    )
}

/// Where a task run's file `name` is kept.
pub fn task_path(
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    task_id: &str,
    task_run_id: &str,
    name: &str,
) -> String {
    format!(
        "{}tasks/{task_id}/{task_run_id}/{name}",
        execution_prefix(namespace, flow_id, execution_id)
    )
}

pub fn uri_of(path: &str) -> String {
    format!("kestra://{path}")
}

/// A `kestra:///…` URI taken apart: the execution that owns the file and the file's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The namespace of the execution that owns the file, read back from the path (namespaces
    /// hold dots, never slashes, so the mapping is one to one).
    pub namespace: String,
    pub execution_id: String,
    pub path: String,
}

/// Parses a `kestra:///…` URI; the error says what is wrong with it.
pub fn parse_uri(uri: &str) -> Result<FileRef, String> {
    let uri = uri.trim();
    let Some(path) = uri.strip_prefix(SCHEME) else {
        return Err(format!(
            "`{uri}` is not a kestra:/// URI of Tollgate's internal storage"
        ));
    };
    if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!("`{uri}` is not a valid kestra:/// URI"));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments
        .iter()
        .position(|s| *s == "executions")
        .filter(|i| *i >= 3 && segments.len() > i + 2)
        .ok_or_else(|| {
            format!("`{uri}` names no execution's file (expected kestra:///NAMESPACE/FLOW/executions/ID/...)")
        })?;
    let execution_id = segments[at + 1];
    if execution_id.is_empty() {
        return Err(format!("`{uri}` names no execution"));
    }
    Ok(FileRef {
        namespace: segments[1..at - 1].join("."),
        execution_id: execution_id.to_string(),
        path: path.to_string(),
    })
}

/// Why a file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Refused(String),
    #[error("the file {0} does not exist")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that a flow of `namespace` may read `uri`: the file's namespace (from its path) is
/// readable from `namespace`. A file is stored only under its own execution's path, so a URI
/// naming another namespace finds nothing.
pub fn check_access(services: &dyn ExprServices, namespace: &str, uri: &str) -> Result<FileRef, FileError> {
    let f = parse_uri(uri).map_err(FileError::Refused)?;
    if f.namespace != namespace {
        crate::expr::flow_may(
            services,
            namespace,
            &f.namespace,
            crate::auth::flow_scope::FlowAccess::Read,
        )
        .map_err(|why| FileError::Refused(format!("{uri} belongs to namespace `{}`: {why}", f.namespace)))?;
    }
    Ok(f)
}

/// Size of a file a flow of `namespace` may read; None when it does not exist.
pub fn size(
    r: &dyn FileSource,
    services: &dyn ExprServices,
    namespace: &str,
    uri: &str,
) -> Result<Option<u64>, FileError> {
    let f = check_access(services, namespace, uri)?;
    Ok(r.file_size(&f.execution_id, &f.path)?)
}

/// Content of a file a flow of `namespace` may read, at most `max` bytes.
pub fn read(
    r: &dyn FileSource,
    services: &dyn ExprServices,
    namespace: &str,
    uri: &str,
    max: usize,
) -> Result<Vec<u8>, FileError> {
    let f = check_access(services, namespace, uri)?;
    match r.file_size(&f.execution_id, &f.path)? {
        None => Err(FileError::Missing(uri.to_string())),
        Some(n) if n as usize > max => Err(FileError::Refused(format!(
            "{uri} holds {n} bytes; at most {max} can be read here"
        ))),
        Some(_) => r
            .file(&f.execution_id, &f.path)?
            .ok_or_else(|| FileError::Missing(uri.to_string())),
    }
}

/// Uploads by input id: (storage path, content).
pub type Placed = std::collections::BTreeMap<String, (String, Vec<u8>)>;

/// Where each upload goes: input id -> (path, content). Every upload must be for a FILE input
/// of `defs`, given once (not also as text), and within [`MAX_FILE_BYTES`].
pub fn place_uploads(
    defs: &[crate::inputs::InputDef],
    namespace: &str,
    flow_id: &str,
    execution_id: &str,
    files: &std::collections::BTreeMap<String, Vec<u8>>,
    texts: &std::collections::BTreeMap<String, String>,
) -> Result<Placed, Vec<crate::inputs::InputError>> {
    let mut out = std::collections::BTreeMap::new();
    let mut errors = Vec::new();
    for (input, content) in files {
        let error = |message: String| crate::inputs::InputError {
            input_id: input.clone(),
            message,
        };
        let Some(def) = defs.iter().find(|d| &d.id == input) else {
            errors.push(error(format!("Unknown input `{input}`: a file was uploaded for it")));
            continue;
        };
        if def.input_type != crate::inputs::InputType::File {
            errors.push(error(format!(
                "input `{input}` is of type {}, not FILE: give it as text, not as a file",
                def.input_type.as_str()
            )));
            continue;
        }
        if texts.contains_key(input) {
            errors.push(error(format!("input `{input}` is given both as a file and as text")));
            continue;
        }
        if let Err(e) = check_size(&format!("the file for input `{input}`"), content.len()) {
            errors.push(error(e));
            continue;
        }
        let ext = def.extension.as_deref().unwrap_or(".upl");
        let path = input_path(namespace, flow_id, execution_id, input, ext);
        out.insert(input.clone(), (path, content.clone()));
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// What the file functions see of a file already in memory.
pub fn view_of(bytes: &[u8]) -> crate::expr::FileView {
    crate::expr::FileView {
        size: bytes.len() as u64,
        text: (bytes.len() <= MAX_READ_BYTES)
            .then(|| String::from_utf8(bytes.to_vec()).ok())
            .flatten(),
    }
}

/// What the file functions of templates see of `uri` (see `ExprServices::file`).
pub fn view(
    src: &dyn FileSource,
    services: &dyn ExprServices,
    namespace: &str,
    uri: &str,
) -> Result<Option<crate::expr::FileView>, String> {
    let size = match size(src, services, namespace, uri) {
        Ok(Some(size)) => size,
        Ok(None) => return Ok(None),
        Err(FileError::Store(e)) => return Err(e.user_message()),
        Err(e) => return Err(e.to_string()),
    };
    // Only small files are read whole: `fileSize()` of a large file does not load it.
    let text = if size as usize <= MAX_READ_BYTES {
        match read(src, services, namespace, uri, MAX_READ_BYTES) {
            Ok(bytes) => String::from_utf8(bytes).ok(),
            Err(FileError::Missing(_)) => return Ok(None),
            Err(FileError::Store(e)) => return Err(e.user_message()),
            Err(e) => return Err(e.to_string()),
        }
    } else {
        None
    };
    Ok(Some(crate::expr::FileView { size, text }))
}

/// The whole content of `uri` as `ExprServices::read_file` returns it.
pub fn read_whole(
    src: &dyn FileSource,
    services: &dyn ExprServices,
    namespace: &str,
    uri: &str,
    max: usize,
) -> Result<Vec<u8>, String> {
    read(src, services, namespace, uri, max).map_err(|e| match e {
        FileError::Store(e) => e.user_message(),
        other => other.to_string(),
    })
}

/// The single file of a WorkingDirectory's cache (JSON: `createdMs`, `files` name -> base64).
pub const CACHE_PATH: &str = "cache.json";

/// The owner of a WorkingDirectory's cache in the store's files: never an execution id (those
/// hold no `/`), so retention leaves it; a newer cache replaces it.
pub fn cache_owner(namespace: &str, flow_id: &str, task_id: &str, value: Option<&str>) -> String {
    format!("~cache/{namespace}/{flow_id}/{task_id}/{}", value.unwrap_or_default())
}

/// Most batches one ForEachItem makes (each is a subflow execution).
pub const MAX_BATCHES: usize = 10_000;

/// How a ForEachItem cuts its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// This many rows a batch.
    Rows(usize),
    /// Rows are added to a batch until it holds at least this many bytes.
    Bytes(usize),
    /// Rows dealt round-robin into this many batches (empty ones are left out).
    Partitions(usize),
}

/// Cuts `content` into batches of whole rows, each row ending with `separator` (as Kestra
/// writes them); a last row without one gets one. Empty content makes no batch.
pub fn split_batches(content: &[u8], how: Batching, separator: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let sep: &[u8] = if separator.is_empty() { b"\n" } else { separator };
    let mut rows: Vec<&[u8]> = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                rows.push(&rest[..at]);
                rest = &rest[at + sep.len()..];
            }
            None => {
                rows.push(rest);
                rest = &[];
            }
        }
    }
    let row_bytes = |r: &[u8]| {
        let mut v = r.to_vec();
        v.extend_from_slice(sep);
        v
    };
    let mut batches: Vec<Vec<u8>> = Vec::new();
    match how {
        Batching::Rows(n) => {
            for chunk in rows.chunks(n.max(1)) {
                batches.push(chunk.iter().flat_map(|r| row_bytes(r)).collect());
            }
        }
        Batching::Bytes(limit) => {
            let mut current = Vec::new();
            for r in rows {
                current.extend(row_bytes(r));
                if current.len() >= limit {
                    batches.push(std::mem::take(&mut current));
                }
            }
            if !current.is_empty() {
                batches.push(current);
            }
        }
        Batching::Partitions(n) => {
            let mut parts: Vec<Vec<u8>> = vec![Vec::new(); n.clamp(1, MAX_BATCHES + 1)];
            let count = parts.len();
            for (i, r) in rows.iter().enumerate() {
                parts[i % count].extend(row_bytes(r));
            }
            batches = parts.into_iter().filter(|p| !p.is_empty()).collect();
        }
    }
    if batches.len() > MAX_BATCHES {
        return Err(format!(
            "the items make {} batches; a ForEachItem makes at most {MAX_BATCHES} (use larger batches)",
            batches.len()
        ));
    }
    Ok(batches)
}

/// `10KB`, `1MB`, `2 GB`, `512` (bytes): Kestra's batch size, in bytes.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim().to_ascii_uppercase();
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    let n: usize = digits.parse().ok()?;
    let unit = t[digits.len()..].trim();
    let factor: usize = match unit {
        "" | "B" => 1,
        "KB" | "K" => 1024,
        "MB" | "M" => 1024 * 1024,
        "GB" | "G" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor).filter(|n| *n > 0)
}

/// Where the outputs of a ForEachItem's subflow execution number `iteration` are kept, under
/// the `_items` task run of `exec`.
pub fn iteration_outputs_path(exec: &Execution, items: &crate::engine::TaskRun, iteration: u32) -> String {
    task_path(
        &exec.namespace,
        &exec.flow_id,
        &exec.id,
        &items.task_id,
        &items.id,
        &format!("{iteration}/outputs.json"),
    )
}

/// Refuses content over [`MAX_FILE_BYTES`], naming `what`.
pub fn check_size(what: &str, len: usize) -> Result<(), String> {
    if len > MAX_FILE_BYTES {
        Err(format!(
            "{what} is {len} bytes; files in Tollgate's internal storage hold at most {MAX_FILE_BYTES} bytes (64 MiB)"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_follow_kestra_layout_and_parse_back() {
        let p = input_path("io.kestra.tests", "inputs", "E1", "file", ".upl");
        assert_eq!(p, "/io/kestra/tests/inputs/executions/E1/inputs/file/file.upl");
        let f = parse_uri(&uri_of(&p)).unwrap();
        assert_eq!(f.execution_id, "E1");
        assert_eq!(f.namespace, "io.kestra.tests");
        assert_eq!(f.path, p);
        assert_eq!(
            task_path("a.b", "f", "E2", "t", "R", "out.txt"),
            "/a/b/f/executions/E2/tasks/t/R/out.txt"
        );
    }

    #[test]
    fn batches_by_rows_bytes_and_partitions() {
        let text = b"a\nb\nc\nd\ne";
        let rows = split_batches(text, Batching::Rows(2), b"\n").unwrap();
        assert_eq!(rows, vec![b"a\nb\n".to_vec(), b"c\nd\n".to_vec(), b"e\n".to_vec()]);
        let bytes = split_batches(text, Batching::Bytes(3), b"\n").unwrap();
        assert_eq!(bytes.len(), 3, "{bytes:?}");
        let parts = split_batches(text, Batching::Partitions(2), b"\n").unwrap();
        assert_eq!(parts, vec![b"a\nc\ne\n".to_vec(), b"b\nd\n".to_vec()]);
        assert!(split_batches(b"", Batching::Rows(1), b"\n").unwrap().is_empty());
        let many = "x\n".repeat(MAX_BATCHES + 1);
        assert!(
            split_batches(many.as_bytes(), Batching::Rows(1), b"\n")
                .unwrap_err()
                .contains("at most")
        );
        assert_eq!(parse_size("10KB"), Some(10 * 1024));
        assert_eq!(parse_size("1 mb"), Some(1 << 20));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn bad_uris_are_refused_with_the_reason() {
        assert!(
            parse_uri("file:///etc/passwd")
                .unwrap_err()
                .contains("not a kestra:/// URI")
        );
        assert!(
            parse_uri("kestra:///a/f/executions/E/../../x")
                .unwrap_err()
                .contains("not a valid")
        );
        assert!(parse_uri("kestra:///a/b").unwrap_err().contains("names no execution"));
        assert!(
            check_size("upload `f`", MAX_FILE_BYTES + 1)
                .unwrap_err()
                .contains("at most")
        );
    }
}
