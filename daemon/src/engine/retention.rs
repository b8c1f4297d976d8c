//! Retention: finished executions (with their logs) older than the configured age are deleted.
//! Default is to keep everything; paused and running executions are never touched.

use std::time::Duration;

use super::ids::now_ms;
use super::{Execution, State};
use crate::store::Store;

/// Deletes finished executions created more than `keep` ago, 500 at a time, each batch
/// committed by `commit` (the engine's writer on a running daemon).
pub fn sweep(
    store: &Store,
    commit: &dyn crate::auth::Commit,
    keep: Duration,
) -> Result<usize, crate::store::StoreError> {
    let cutoff = now_ms() - keep.as_millis() as i64;
    let mut deleted = 0;
    loop {
        let ids = store.read()?.finished_before::<State>(cutoff, 500)?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = count.clone();
        commit.commit(Box::new(move |w| {
            for id in &ids {
                if w.delete_execution::<Execution>(id)? {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        }))?;
        deleted += count.load(std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sweeps once a minute after start, then hourly; deletions go through the engine's writer.
pub async fn run(engine: super::Engine, keep: Duration) {
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::time::sleep(wait).await;
        wait = Duration::from_secs(3600);
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || sweep(e.store(), &e, keep)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(deleted = n, "retention: removed finished executions"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::State;
    use crate::engine::execution::{Execution, LogLine};

    fn exec(id: &str, state: State, created_ms: i64) -> Execution {
        let flow = crate::flow::load(
            "id: f\nnamespace: n\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
            "f.yaml",
        )
        .unwrap();
        let mut e = crate::engine::advance::new_execution(
            &flow,
            1,
            Default::default(),
            Default::default(),
            "u",
            created_ms,
            None,
            None,
        );
        e.id = id.into();
        e.state = state;
        e
    }

    #[test]
    fn sweeps_only_old_finished_executions_and_their_logs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = now_ms() - 10 * 86_400_000;
        store
            .write(|w| -> Result<(), crate::store::StoreError> {
                w.put_execution(&exec("old_done", State::Success, old))?;
                w.put_execution(&exec("old_paused", State::Paused, old))?;
                w.put_execution(&exec("new_done", State::Success, now_ms()))?;
                let line = LogLine {
                    seq: 0,
                    execution_id: "old_done".into(),
                    task_run_id: String::new(),
                    task_id: String::new(),
                    level: "INFO".into(),
                    message: "m".into(),
                    time_ms: old,
                };
                w.append_log(&line)?;
                // Files go with their execution, and only with it; a big one spans chunks.
                let big = vec![7u8; crate::store::files::CHUNK + 10];
                w.put_file("old_done", "/n/f/executions/old_done/inputs/a/a.upl", &big)?;
                w.put_file("new_done", "/n/f/executions/new_done/inputs/a/a.upl", b"kept")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(
            store
                .read()
                .unwrap()
                .file_size("old_done", "/n/f/executions/old_done/inputs/a/a.upl")
                .unwrap(),
            Some(crate::store::files::CHUNK as u64 + 10)
        );
        assert_eq!(sweep(&store, &store, Duration::from_secs(86_400)).unwrap(), 1);
        let r = store.read().unwrap();
        assert!(r.execution::<Execution>("old_done").unwrap().is_none());
        assert!(r.logs::<LogLine>("old_done", 0, 10).unwrap().is_empty());
        assert!(
            r.files_of("old_done").unwrap().is_empty(),
            "its files were deleted with it"
        );
        assert_eq!(
            r.file("new_done", "/n/f/executions/new_done/inputs/a/a.upl").unwrap(),
            Some(b"kept".to_vec())
        );
        assert!(
            r.execution::<Execution>("old_paused").unwrap().is_some(),
            "paused executions are kept whatever their age"
        );
        assert!(r.execution::<Execution>("new_done").unwrap().is_some());
    }
}
