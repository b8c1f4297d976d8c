//! Executions: start, read, resume (one or many), validate, kill, logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Ops, Target};
use crate::auth::{Principal, Role};
use crate::engine::{
    Engine, EngineError, Execution, ExecutionSummary, IndexRow, LogLine, PauseSelector, Result, RowView, State,
};
use crate::flow::Flow;
use crate::store::ExecutionFilter;

/// A flow revision: namespace, flow id, revision.
type RevisionKey = (String, String, u32);

/// Largest page a list returns.
pub const MAX_PAGE: usize = 1000;
/// Largest number of executions a filter-based bulk call touches at once.
const MAX_BULK: usize = 100_000;

/// Which executions a bulk call is for: ids, or every one matching a filter that the caller may see.
#[derive(Debug, Clone)]
pub enum BulkTarget {
    Ids(Vec<String>),
    Filter {
        namespace: Option<String>,
        flow_id: Option<String>,
        states: Vec<State>,
    },
}

/// Labels under `system.` are the daemon's to write (`system.username` says who started).
fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    match labels
        .keys()
        .find(|k| k.starts_with("system.") || k.as_str() == "system")
    {
        Some(k) => Err(EngineError::InvalidArgument(format!(
            "label `{k}` is reserved: labels under `system.` are set by the daemon"
        ))),
        None => Ok(()),
    }
}

/// Most bytes of text (input ids and values, and the reason) one start or decision may carry.
/// Calls may be far larger for their FILE inputs' contents; large values travel that way.
const MAX_TEXT_BYTES: usize = 1 << 20;

fn check_text(inputs: &BTreeMap<String, String>, reason: &str) -> Result<()> {
    let bytes = reason.len() + inputs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    if bytes > MAX_TEXT_BYTES {
        return Err(EngineError::InvalidArgument(format!(
            "the inputs and reason hold {} KiB of text; at most {} KiB are accepted (send large values as FILE inputs)",
            bytes.div_ceil(1024),
            MAX_TEXT_BYTES / 1024
        )));
    }
    Ok(())
}

impl Ops {
    /// Loads an execution and checks the caller's role on its namespace (a refusal is audited as
    /// `action`).
    async fn execution_for(&self, p: &Principal, id: &str, role: Role, action: &str) -> Result<Execution> {
        let exec = self.engine.get_execution(id).await?;
        self.authorize(p, role, action, Target::of(&exec)).await?;
        Ok(exec)
    }

    pub async fn start(
        &self,
        p: &Principal,
        namespace: &str,
        flow_id: &str,
        inputs: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<Execution> {
        let target = Target {
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            ..Default::default()
        };
        check_text(&inputs, "")?;
        self.authorize(p, Role::Operator, "start", target).await?;
        check_labels(&labels)?;
        let exec = self
            .engine
            .start_execution(namespace, flow_id, inputs, labels, files, &p.actor())
            .await?;
        Ok(present(exec))
    }

    pub async fn get(&self, p: &Principal, id: &str) -> Result<Execution> {
        let p = &self.widened(p).await;
        Ok(present(self.execution_for(p, id, Role::Viewer, "read").await?))
    }

    /// A page of executions the caller may see, and the token of the next page.
    pub async fn list(
        &self,
        p: &Principal,
        states: Vec<State>,
        namespace: Option<String>,
        flow_id: Option<String>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<Execution>, Option<String>)> {
        let filter = self.list_filter(p, states, namespace, flow_id).await;
        let (execs, next) = self
            .engine
            .list_executions(filter, limit.clamp(1, MAX_PAGE), after)
            .await?;
        Ok((execs.into_iter().map(present).collect(), next))
    }

    /// What a list of `p` shows: the executions of the namespaces `p` (or whom `p` stands in
    /// for) may view, under the caller's filters.
    async fn list_filter(
        &self,
        p: &Principal,
        states: Vec<State>,
        namespace: Option<String>,
        flow_id: Option<String>,
    ) -> ExecutionFilter<State> {
        ExecutionFilter {
            states,
            namespace,
            flow_id,
            visible: self.widened(p).await.visible_namespaces(Role::Viewer),
        }
    }

    /// [`Ops::list`] as row summaries: the same filter, paging and visibility, with each listed
    /// execution's flow (the revision it runs, with rendered choices for a pause form that
    /// computes them), to show its pauses.
    pub async fn list_summaries(
        &self,
        p: &Principal,
        states: Vec<State>,
        namespace: Option<String>,
        flow_id: Option<String>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<(ExecutionSummary, Option<Arc<Flow>>)>, Option<String>)> {
        let filter = self.list_filter(p, states, namespace, flow_id).await;
        let (rows, next) = self
            .engine
            .list_execution_summaries(filter, limit.clamp(1, MAX_PAGE), after)
            .await?;
        let keys: Vec<RevisionKey> = rows
            .iter()
            .map(|e| (e.namespace.clone(), e.flow_id.clone(), e.flow_revision))
            .collect();
        let mut flows = self.revisions_of(&keys).await;
        // A pause form whose choices come from an expression renders them against the whole
        // execution (as Get does, so both show the same form key): read it for those rows only.
        let render = needing_render(rows.iter().map(|e| e.state), &flows);
        for (i, flow) in render {
            let id = rows[i].id.clone();
            // Gone since the page was read: its row shows the form unrendered. Rendered against
            // the execution as FULL presents it (secrets masked), so choices are FULL's too.
            if let Ok(exec) = self.engine.get_execution(&id).await {
                let exec = present(exec);
                let engine = self.engine.clone();
                if let Ok(rendered) =
                    tokio::task::spawn_blocking(move || engine.with_input_values(&flow, Some(&exec))).await
                {
                    flows[i] = Some(rendered);
                }
            }
        }
        Ok((rows.into_iter().zip(flows).collect(), next))
    }

    /// [`Ops::list_summaries`] handed to `sink` row by row, in order, each with its flow (the
    /// revision it runs; rendered against the execution when its pause form computes its
    /// choices, as there): the same filter, paging and visibility. A row's strings are borrowed
    /// from what the store read, so the sink can write its wire form without building one.
    #[allow(clippy::too_many_arguments)]
    pub async fn list_rows<K: RowSink>(
        &self,
        p: &Principal,
        states: Vec<State>,
        namespace: Option<String>,
        flow_id: Option<String>,
        limit: usize,
        after: Option<String>,
        sink: K,
    ) -> Result<(K, Option<String>)> {
        let filter = self.list_filter(p, states, namespace, flow_id).await;
        let engine = self.engine.clone();
        let limit = limit.clamp(1, MAX_PAGE);
        tokio::task::spawn_blocking(move || rows_page(&engine, &filter, limit, after.as_deref(), sink))
            .await
            .map_err(|_| EngineError::Unavailable)?
    }

    pub async fn resume(
        &self,
        p: &Principal,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        reason: &str,
    ) -> Result<Execution> {
        check_text(&inputs, reason)?;
        let (_, actor) = self.decision_for(p, id, "resume").await?;
        let exec = self.engine.resume(id, select, inputs, &actor, reason).await?;
        Ok(present(exec))
    }

    /// A file of an execution the caller may read (`kestra:///…` URI under that execution).
    pub async fn execution_file(&self, p: &Principal, id: &str, uri: &str) -> Result<Vec<u8>> {
        let p = &self.widened(p).await;
        let exec = self.execution_for(p, id, Role::Viewer, "read").await?;
        self.engine.execution_file(&exec, uri).await
    }

    /// Stores the files uploaded for a resume's FILE inputs (the caller must be one who may
    /// decide) and returns the inputs' URIs, to pass on with the other inputs of the resume.
    pub async fn resume_files(
        &self,
        p: &Principal,
        id: &str,
        select: &PauseSelector,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<BTreeMap<String, String>> {
        if files.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.decision_for(p, id, "resume").await?;
        self.engine.store_resume_files(id, select, files).await
    }

    /// What resuming with `inputs` would do next; a read (same checks as the resume, nothing
    /// changes, nothing is audited).
    pub async fn preview_resume(
        &self,
        p: &Principal,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
        comment: &str,
    ) -> Result<crate::engine::preview::Preview> {
        check_text(&inputs, comment)?;
        let (_, actor) = self.decision_for(p, id, "resume.preview").await?;
        self.engine.preview_resume(id, select, inputs, &actor, comment).await
    }

    /// Rejects a pause (its run ends FAILED with output `rejected`); `reason` is required when
    /// the HumanTask says `rejectionReasonRequired`.
    pub async fn reject(&self, p: &Principal, id: &str, select: PauseSelector, reason: &str) -> Result<Execution> {
        check_text(&BTreeMap::new(), reason)?;
        let (_, actor) = self.decision_for(p, id, "reject").await?;
        Ok(present(self.engine.reject(id, select, &actor, reason).await?))
    }

    /// The same checks as a resume, nothing applied.
    pub async fn validate_resume(
        &self,
        p: &Principal,
        id: &str,
        select: PauseSelector,
        inputs: BTreeMap<String, String>,
    ) -> Result<()> {
        check_text(&inputs, "")?;
        let (_, actor) = self.decision_for(p, id, "resume.validate").await?;
        self.engine.validate_resume(id, select, inputs, &actor).await
    }

    /// Resumes every target with the same inputs, at `select`'s pause or, for the ids in
    /// `task_runs`, at that task run; each id gets its own outcome, in order.
    pub async fn bulk_resume(
        &self,
        p: &Principal,
        target: BulkTarget,
        select: PauseSelector,
        task_runs: BTreeMap<String, String>,
        inputs: BTreeMap<String, String>,
        reason: &str,
    ) -> Result<Vec<(String, Result<Execution>)>> {
        check_text(&inputs, reason)?;
        let (ids, mut outcomes, allowed) = self.bulk_allowed(p, target, "resume").await?;
        let targets = allowed
            .into_iter()
            .map(|(id, actor)| {
                let at = match task_runs.get(&id) {
                    Some(run) => PauseSelector {
                        task_run_id: Some(run.clone()),
                        task_id: None,
                    },
                    None => select.clone(),
                };
                (id, at, actor)
            })
            .collect();
        let done = self.engine.bulk_resume(targets, inputs, reason).await;
        Ok(merge(ids, &mut outcomes, done))
    }

    pub async fn kill(&self, p: &Principal, id: &str, reason: &str) -> Result<Execution> {
        self.execution_for(p, id, Role::Operator, "kill").await?;
        Ok(present(self.engine.kill(id, &p.actor(), reason).await?))
    }

    pub async fn bulk_kill(
        &self,
        p: &Principal,
        target: BulkTarget,
        reason: &str,
    ) -> Result<Vec<(String, Result<Execution>)>> {
        let (ids, mut outcomes, allowed) = self.bulk_allowed(p, target, "kill").await?;
        let allowed = allowed.into_iter().map(|(id, _)| id).collect();
        let done = self.engine.bulk_kill(allowed, &p.actor(), reason).await;
        Ok(merge(ids, &mut outcomes, done))
    }

    /// Log lines from `from_seq`, at most `limit`.
    pub async fn logs(&self, p: &Principal, id: &str, from_seq: u64, limit: usize) -> Result<Vec<LogLine>> {
        let p = &self.widened(p).await;
        self.execution_for(p, id, Role::Viewer, "read").await?;
        self.engine.logs(id, from_seq, limit).await
    }

    /// Checks the caller may read an execution's logs (streams call this once at start).
    pub async fn may_read(&self, p: &Principal, id: &str) -> Result<Execution> {
        let p = &self.widened(p).await;
        Ok(present(self.execution_for(p, id, Role::Viewer, "read").await?))
    }

    /// The flow revision an execution ran, for its pause forms (None when it is gone).
    pub async fn flow_of(&self, exec: &Execution) -> Option<Arc<Flow>> {
        self.flows_of(std::slice::from_ref(exec)).await.pop().flatten()
    }

    /// [`Ops::flow_of`] for many executions (a listed page). Each distinct revision on the page
    /// is looked up once (a page is mostly one or a few flows, and a stored revision never
    /// changes, so the registry answers it from its cache); only executions whose pause form
    /// renders its choices are copied to the blocking pool for that rendering.
    pub async fn flows_of(&self, execs: &[Execution]) -> Vec<Option<Arc<Flow>>> {
        let keys: Vec<RevisionKey> = execs
            .iter()
            .map(|e| (e.namespace.clone(), e.flow_id.clone(), e.flow_revision))
            .collect();
        let mut out = self.revisions_of(&keys).await;
        // Executions waiting at a pause whose form computes its choices get them rendered now.
        let render: Vec<(usize, Arc<Flow>, Execution)> = needing_render(execs.iter().map(|e| e.state), &out)
            .into_iter()
            .map(|(i, flow)| (i, flow, execs[i].clone()))
            .collect();
        if !render.is_empty() {
            let engine = self.engine.clone();
            let rendered = tokio::task::spawn_blocking(move || {
                render
                    .into_iter()
                    .map(|(i, flow, exec)| (i, engine.with_input_values(&flow, Some(&exec))))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            for (i, flow) in rendered {
                out[i] = Some(flow);
            }
        }
        out
    }

    /// The flow revision of each key (`None` when it cannot be read), each distinct one looked
    /// up once.
    async fn revisions_of(&self, keys: &[RevisionKey]) -> Vec<Option<Arc<Flow>>> {
        type Key = RevisionKey;
        let mut distinct: Vec<Key> = keys.to_vec();
        distinct.sort();
        distinct.dedup();
        // Revisions parsed before come from the registry's cache right here; only the others
        // (a read of the store) take a hop to the blocking pool.
        let mut found: std::collections::HashMap<Key, Arc<Flow>> = Default::default();
        let mut missing = Vec::new();
        for k in distinct {
            match self.engine.flows().cached_revision(&k.0, &k.1, k.2) {
                Some(flow) => {
                    found.insert(k, flow);
                }
                None => missing.push(k),
            }
        }
        if !missing.is_empty() {
            let engine = self.engine.clone();
            let read: Vec<(Key, Arc<Flow>)> = tokio::task::spawn_blocking(move || {
                missing
                    .into_iter()
                    .filter_map(|k| {
                        let flow = engine.flows().revision(&k.0, &k.1, k.2).ok()?;
                        Some((k, flow))
                    })
                    .collect()
            })
            .await
            .unwrap_or_default();
            found.extend(read);
        }
        keys.iter().map(|k| found.get(k).cloned()).collect()
    }

    /// The ids of a bulk call, the refusals already decided (not found, no role: audited), and
    /// the ids the engine is to act on.
    async fn bulk_allowed(
        &self,
        p: &Principal,
        target: BulkTarget,
        action: &str,
    ) -> Result<(
        Vec<String>,
        BTreeMap<String, Result<Execution>>,
        Vec<(String, crate::engine::Actor)>,
    )> {
        let ids = match target {
            BulkTarget::Ids(ids) => ids,
            BulkTarget::Filter {
                namespace,
                flow_id,
                states,
            } => self.ids_matching(p, namespace, flow_id, states).await?,
        };
        let found = {
            let engine = self.engine.clone();
            let ids = ids.clone();
            tokio::task::spawn_blocking(move || -> Result<Vec<Option<Execution>>> {
                let r = engine.store().read()?;
                ids.iter()
                    .map(|id| r.execution(id).map_err(EngineError::from))
                    .collect()
            })
            .await
            .map_err(|_| EngineError::Unavailable)??
        };
        // Decisions may be taken for those who delegated theirs to the caller.
        let delegators = if action == "resume" {
            self.acting_for(p, None).await?
        } else {
            vec![]
        };
        let mut refused = BTreeMap::new();
        let mut allowed = Vec::with_capacity(ids.len());
        for (id, exec) in ids.iter().zip(found) {
            match exec {
                None => {
                    refused.insert(
                        id.clone(),
                        Err(EngineError::NotFound(format!("execution '{id}' not found"))),
                    );
                }
                Some(e) => match self.decision_actor(p, &e, &delegators, action).await {
                    Ok(actor) => allowed.push((id.clone(), actor)),
                    Err(err) => {
                        refused.insert(id.clone(), Err(err));
                    }
                },
            }
        }
        Ok((ids, refused, allowed))
    }

    async fn ids_matching(
        &self,
        p: &Principal,
        namespace: Option<String>,
        flow_id: Option<String>,
        states: Vec<State>,
    ) -> Result<Vec<String>> {
        if namespace.is_none() && flow_id.is_none() {
            return Err(EngineError::InvalidArgument(
                "a bulk call needs ids, or a namespace and/or flow filter".into(),
            ));
        }
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let filter = ExecutionFilter {
                states: states.clone(),
                namespace: namespace.clone(),
                flow_id: flow_id.clone(),
                visible: self.widened(p).await.visible_namespaces(Role::Viewer),
            };
            let (page, next) = self.engine.list_executions(filter, MAX_PAGE, after).await?;
            ids.extend(page.into_iter().map(|e| e.id));
            if next.is_none() || ids.len() >= MAX_BULK {
                break;
            }
            after = next;
        }
        Ok(ids)
    }
}

/// Outcomes in the order the ids were asked for.
fn merge(
    ids: Vec<String>,
    outcomes: &mut BTreeMap<String, Result<Execution>>,
    done: Vec<(String, Result<Execution>)>,
) -> Vec<(String, Result<Execution>)> {
    for (id, r) in done {
        outcomes.insert(id, r.map(present));
    }
    ids.into_iter()
        .map(|id| {
            let r = outcomes.remove(&id).unwrap_or_else(|| {
                Err(EngineError::InvalidArgument(format!(
                    "execution '{id}' is listed twice"
                )))
            });
            (id, r)
        })
        .collect()
}

/// [`present`] for a shared execution (a Watch event): copied only when something must be masked.
pub fn present_shared(exec: Arc<Execution>) -> Arc<Execution> {
    let sealed_somewhere = || {
        exec.task_runs.iter().any(|r| {
            r.outputs.values().any(crate::secrets::has_sealed)
                || r.pause.as_ref().is_some_and(|p| {
                    p.approvals
                        .iter()
                        .any(|a| a.values.values().any(crate::secrets::has_sealed))
                })
        })
    };
    if exec.secret_inputs.is_empty() && !sealed_somewhere() {
        exec
    } else {
        Arc::new(present((*exec).clone()))
    }
}

/// An execution as it may leave the daemon: every SECRET value masked (SECRET inputs by id, and
/// any sealed value wherever it was copied to: outputs, approvals).
pub fn present(mut exec: Execution) -> Execution {
    use serde_json::Value;
    const MASK: &str = "******";
    for (k, v) in exec.inputs.iter_mut() {
        if exec.secret_inputs.contains(k) && !v.is_null() {
            *v = Value::String(MASK.into());
        }
    }
    let mask_sealed = |v: &mut Value| crate::secrets::replace_sealed(v, MASK);
    exec.inputs.values_mut().for_each(mask_sealed);
    exec.outputs.values_mut().for_each(mask_sealed);
    for run in &mut exec.task_runs {
        run.outputs.values_mut().for_each(mask_sealed);
        if let Some(pause) = run.pause.as_mut() {
            for a in &mut pause.approvals {
                a.values.values_mut().for_each(mask_sealed);
            }
        }
    }
    exec
}

/// Receives the rows of a list page ([`Ops::list_rows`]).
pub trait RowSink: Send + 'static {
    fn row(&mut self, row: &RowView<'_>, flow: Option<&Arc<Flow>>);
}

/// One page for [`Ops::list_rows`] (blocking: reads the store, and flows not yet cached).
fn rows_page<K: RowSink>(
    engine: &Engine,
    filter: &ExecutionFilter<State>,
    limit: usize,
    after: Option<&str>,
    mut sink: K,
) -> Result<(K, Option<String>)> {
    let (rows, next) = engine.list_index_rows(filter, limit, after)?;
    // Consecutive rows mostly share a flow revision: the last one is kept at hand, the others
    // in a map (each distinct revision looked up once per page).
    let mut flows: std::collections::HashMap<RevisionKey, Option<Arc<Flow>>> = Default::default();
    let mut last: Option<(RevisionKey, Option<Arc<Flow>>)> = None;
    for row in &rows {
        let view = row.view().map_err(|message| {
            EngineError::Store(crate::store::StoreError::Corrupt {
                table: "executions_by_state",
                key: row_id(row),
                message,
            })
        })?;
        let rev = view.summary.flow_revision;
        let hit = last
            .as_ref()
            .filter(|(k, _)| k.2 == rev && k.0 == view.namespace && k.1 == view.flow_id)
            .map(|(_, f)| f.clone());
        let flow = match hit {
            Some(f) => f,
            None => {
                let key: RevisionKey = (view.namespace.to_string(), view.flow_id.to_string(), rev);
                let f = flows
                    .entry(key.clone())
                    .or_insert_with(|| engine.flows().revision(&key.0, &key.1, key.2).ok())
                    .clone();
                last = Some((key, f.clone()));
                f
            }
        };
        // As list_summaries: a pause form whose choices come from an expression is rendered
        // against the whole execution (as FULL presents it); gone since: shown unrendered.
        let rendered = match &flow {
            Some(f) if view.state == State::Paused && f.has_input_expressions() => engine
                .store()
                .read()
                .ok()
                .and_then(|r| r.execution::<Execution>(view.id).ok().flatten())
                .map(|exec| engine.with_input_values(f, Some(&present(exec)))),
            _ => None,
        };
        sink.row(&view, rendered.as_ref().or(flow.as_ref()));
    }
    Ok((sink, next))
}

fn row_id(row: &IndexRow) -> String {
    row.view().map(|v| v.id.to_string()).unwrap_or_else(|_| match row {
        IndexRow::Index { bytes, id, .. } => String::from_utf8_lossy(bytes.get(..*id).unwrap_or_default()).into_owned(),
        IndexRow::Stored(s) => s.id.clone(),
    })
}

/// Of listed rows (their states, in order) and their flows, those waiting at a pause whose form
/// computes its choices: the rows whose choices are rendered against their execution.
fn needing_render(states: impl Iterator<Item = State>, flows: &[Option<Arc<Flow>>]) -> Vec<(usize, Arc<Flow>)> {
    states
        .zip(flows)
        .enumerate()
        .filter_map(|(i, (state, flow))| {
            let flow = flow.as_ref()?;
            (state == State::Paused && flow.has_input_expressions()).then(|| (i, flow.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_labels_are_the_daemons() {
        let mut labels = BTreeMap::new();
        labels.insert("team".to_string(), "hr".to_string());
        assert!(check_labels(&labels).is_ok());
        labels.insert("system.username".to_string(), "ceo@example.com".to_string());
        let e = check_labels(&labels).unwrap_err().to_string();
        assert!(e.contains("`system.username`") && e.contains("reserved"), "{e}");
    }
}
