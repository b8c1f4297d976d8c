//! `io.kestra.plugin.core.storage.LocalFiles`: moves files between the working directory and
//! the internal storage. `inputs` (file name to content; a `kestra:///` URI stands for that
//! file's content) are written into the directory; files matching `outputs` (globs) are stored,
//! output as `uris` (file name to URI). In a WorkingDirectory it works in the shared directory;
//! elsewhere in a directory of its own, removed when it ends (as Kestra's temporary one).

use serde_json::{Map, Value};

use super::{Job, TaskRender, TaskServices, WorkDir, files, script};
use crate::flow::LocalFilesTask;

/// Outputs and the files to store.
type Produced = (Map<String, Value>, Vec<files::StoredFile>);

/// What a WorkingDirectory's closing job produced: outputs, the files to store, and its cache
/// archive to keep (owner, archive).
type Collected = (Map<String, Value>, Vec<files::StoredFile>, Option<(String, Vec<u8>)>);

pub fn run(job: &Job, t: &LocalFilesTask, r: &mut TaskRender<'_>, services: &TaskServices) -> Result<Produced, String> {
    let root = services
        .scripts_dir
        .get()
        .ok_or("LocalFiles needs the daemon's data directory, which is not set")?
        .clone();
    match &job.workdir {
        Some(wd) => {
            let dir = script::shared_dir(&root, wd, r, services)?;
            in_dir(job, t, r, services, &dir)
        }
        None => {
            let dir = root.join(WorkDir::dir_name(&job.task_run_id));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create the working directory: {e}"))?;
            let result = in_dir(job, t, r, services, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
    }
}

fn in_dir(
    job: &Job,
    t: &LocalFilesTask,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
    dir: &std::path::Path,
) -> Result<Produced, String> {
    if let Some(inputs) = &t.inputs {
        let written = script::input_files(inputs, r, services).map_err(|e| e.replace("inputFiles", "inputs"))?;
        files::write_files(dir, &written)?;
    }
    let mut outputs = Map::new();
    let mut stored = Vec::new();
    if !t.outputs.is_empty() {
        let globs = t
            .outputs
            .iter()
            .map(|g| r.text("outputs", g))
            .collect::<Result<Vec<_>, _>>()?;
        let found = files::collect(dir, &globs)?;
        let (uris, to_store) = files::stored(job, found);
        outputs.insert("uris".into(), Value::Object(uris));
        stored = to_store;
    }
    Ok((outputs, stored))
}

/// A WorkingDirectory's `outputFiles`, collected from its directory once its tasks are done
/// (output as `outputFiles`, file name to URI), and its `cache` archive to keep.
pub fn output_files(
    job: &Job,
    t: &crate::flow::WorkingDirectoryTask,
    r: &mut TaskRender<'_>,
    services: &TaskServices,
) -> Result<Collected, String> {
    let root = services
        .scripts_dir
        .get()
        .ok_or("`outputFiles` needs the daemon's data directory, which is not set")?
        .clone();
    let wd = job
        .workdir
        .as_ref()
        .ok_or("internal: no working directory to collect from")?;
    let dir = script::shared_dir(&root, wd, r, services)?;
    let globs = t
        .output_files
        .iter()
        .map(|g| r.text("outputFiles", g))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = Map::new();
    let mut stored = Vec::new();
    if !globs.is_empty() {
        let found = files::collect(&dir, &globs).map_err(|e| format!("`outputFiles`: {e}"))?;
        let (uris, to_store) = files::stored(job, found);
        outputs.insert("outputFiles".into(), Value::Object(uris));
        stored = to_store;
    }
    let kept = match &wd.cache {
        Some(cache) => files::cache_archive(cache, &dir, services)?.map(|a| (cache.owner.clone(), a)),
        None => None,
    };
    Ok((outputs, stored, kept))
}
