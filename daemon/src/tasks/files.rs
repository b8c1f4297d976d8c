//! Files between a task's working directory and the internal storage: input files whose content
//! is a `kestra:///` URI are copied in, and output files matched by globs are handed back to the
//! engine (stored in the execution's storage with the task run's outcome).

use std::path::Path;

use serde_json::{Map, Value};

use super::{Job, TaskRender, TaskServices};
use crate::engine::files as storage;

/// A file for the engine to store with a job's outcome: (storage path, content).
pub type StoredFile = (String, Vec<u8>);

/// Most files one task collects by glob.
const MAX_OUTPUT_FILES: usize = 1000;
/// Most directory entries a glob walk visits (a task cannot make the walk unbounded).
const MAX_WALK: usize = 100_000;

/// The bytes of one input file: the stored file when `content` is a `kestra:///` URI (read with
/// the job's namespace rights), else the text itself.
pub fn content_of(content: &str, r: &TaskRender<'_>, services: &TaskServices) -> Result<Vec<u8>, String> {
    let t = content.trim();
    if t.starts_with(storage::SCHEME) && !t.contains(char::is_whitespace) {
        services
            .expr
            .read_file(r.namespace(), t, storage::MAX_FILE_BYTES)
            .map_err(|e| format!("cannot read {t}: {e}"))
    } else {
        Ok(content.as_bytes().to_vec())
    }
}

/// Writes `files` (relative names, checked) under `dir`, creating their directories.
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    for (file, content) in files {
        check_name(file)?;
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create the directory of `{file}`: {e}"))?;
        }
        std::fs::write(&path, content).map_err(|e| format!("cannot write input file `{file}`: {e}"))?;
    }
    Ok(())
}

/// A file name must stay inside the working directory.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.starts_with('/') || name.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(format!(
            "file name `{name}` must be a relative path inside the working directory"
        ));
    }
    Ok(())
}

/// Whether `path` (relative, `/`-separated) matches `glob`: `*` and `?` within a segment, `**`
/// across segments, anything else literally (as Kestra's `outputFiles` globs).
pub fn glob_matches(glob: &str, path: &str) -> bool {
    fn segs(glob: &[&str], path: &[&str]) -> bool {
        match glob.split_first() {
            None => path.is_empty(),
            Some((&"**", rest)) => (0..=path.len()).any(|i| segs(rest, &path[i..])),
            Some((g, rest)) => path
                .split_first()
                .is_some_and(|(p, prest)| seg(g.as_bytes(), p.as_bytes()) && segs(rest, prest)),
        }
    }
    fn seg(g: &[u8], p: &[u8]) -> bool {
        match g.split_first() {
            None => p.is_empty(),
            Some((b'*', rest)) => (0..=p.len()).any(|i| seg(rest, &p[i..])),
            Some((b'?', rest)) => !p.is_empty() && seg(rest, &p[1..]),
            Some((c, rest)) => p.first() == Some(c) && seg(rest, &p[1..]),
        }
    }
    let g: Vec<&str> = glob.trim_start_matches("./").split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    segs(&g, &p)
}

/// Regular files under `dir` matching any of `globs`: (relative name, content), by name.
pub fn collect(dir: &Path, globs: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    let mut visited = 0usize;
    while let Some((d, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| format!("cannot list {}: {e}", d.display()))?;
        for entry in entries.flatten() {
            visited += 1;
            if visited > MAX_WALK {
                return Err(format!("more than {MAX_WALK} entries in the working directory"));
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // Symbolic links are not followed: a link must not reach files outside the directory.
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if kind.is_file() && globs.iter().any(|g| glob_matches(g, &rel)) {
                found.push(rel);
            }
        }
    }
    found.sort();
    if found.len() > MAX_OUTPUT_FILES {
        return Err(format!(
            "{} files match; a task keeps at most {MAX_OUTPUT_FILES}",
            found.len()
        ));
    }
    let mut out = Vec::new();
    for rel in found {
        let path = dir.join(&rel);
        let len = std::fs::metadata(&path).map(|m| m.len() as usize).unwrap_or(0);
        storage::check_size(&format!("output file `{rel}`"), len)?;
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read output file `{rel}`: {e}"))?;
        out.push((rel, bytes));
    }
    Ok(out)
}

/// The files of a kept cache still within its `ttl`.
pub fn cache_restore(cache: &super::CacheSpec, services: &TaskServices) -> Option<Vec<(String, Vec<u8>)>> {
    use base64::Engine as _;
    let archive: Value = serde_json::from_slice(&services.expr.cache(&cache.owner)?).ok()?;
    let created = archive["createdMs"].as_i64()?;
    if cache
        .ttl_ms
        .is_some_and(|ttl| crate::engine::ids::now_ms() - created > ttl)
    {
        return None;
    }
    let mut out = Vec::new();
    for (name, b64) in archive["files"].as_object()? {
        if check_name(name).is_err() {
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64.as_str()?).ok()?;
        out.push((name.clone(), bytes));
    }
    Some(out)
}

/// The cache archive to keep after a successful run: the files matching its patterns, unless
/// they are those of the cache still in use (so its `ttl` runs from when they were kept).
pub fn cache_archive(cache: &super::CacheSpec, dir: &Path, services: &TaskServices) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    let found = collect(dir, &cache.patterns).map_err(|e| format!("`cache`: {e}"))?;
    if found.is_empty() || cache_restore(cache, services).is_some_and(|kept| kept == found) {
        return Ok(None);
    }
    let files: Map<String, Value> = found
        .into_iter()
        .map(|(n, b)| (n, Value::String(base64::engine::general_purpose::STANDARD.encode(b))))
        .collect();
    let archive = serde_json::json!({"createdMs": crate::engine::ids::now_ms(), "files": files});
    let bytes = serde_json::to_vec(&archive).unwrap_or_default();
    storage::check_size("the WorkingDirectory cache", bytes.len())?;
    Ok(Some(bytes))
}

/// Where the job's output files go in the storage: `{name: uri}` for its outputs, and the
/// (path, content) pairs the engine stores with its outcome.
pub fn stored(job: &Job, files: Vec<(String, Vec<u8>)>) -> (Map<String, Value>, Vec<StoredFile>) {
    let flow_id = job.vars["flow"]["id"].as_str().unwrap_or_default();
    let mut uris = Map::new();
    let mut out = Vec::new();
    for (name, bytes) in files {
        let path = storage::task_path(
            &job.namespace,
            flow_id,
            &job.execution_id,
            &job.task.id,
            &job.task_run_id,
            &name,
        );
        uris.insert(name, Value::String(storage::uri_of(&path)));
        out.push((path, bytes));
    }
    (uris, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_kestras() {
        assert!(glob_matches("out/*", "out/stay.txt"));
        assert!(!glob_matches("out/*", "out/a/b.txt"));
        assert!(glob_matches("**/*.txt", "a/b/c.txt"));
        assert!(glob_matches("**/*.txt", "c.txt"));
        assert!(glob_matches("output.txt", "output.txt"));
        assert!(glob_matches("file?.csv", "file1.csv"));
        assert!(!glob_matches("*.txt", "a/b.txt"));
        assert!(check_name("../x").is_err() && check_name("a/b").is_ok());
    }

    #[test]
    fn collect_reads_matching_files_only() {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[("out/a.txt".into(), b"A".to_vec()), ("b.log".into(), b"B".to_vec())],
        )
        .unwrap();
        let got = collect(dir.path(), &["out/*".to_string()]).unwrap();
        assert_eq!(got, vec![("out/a.txt".to_string(), b"A".to_vec())]);
    }
}
