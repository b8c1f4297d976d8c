//! Flow registry: applies flows as revisions and serves parsed flows from a cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{EngineError, Result};
use super::ids::now_ms;
use crate::flow::{self, Flow};
use crate::store::{FlowHead, Store, Writer};

/// Revision and flow of every flow with a Flow trigger.
type TriggerFlows = Arc<Vec<(u32, Arc<Flow>)>>;

pub struct FlowRegistry {
    store: Store,
    cache: Mutex<HashMap<(String, String, u32), Arc<Flow>>>,
    /// Latest revisions of flows that have a Flow trigger; `None` until first needed or after a change.
    trigger_flows: Mutex<Option<TriggerFlows>>,
    timer_wake: Arc<tokio::sync::Notify>,
}

/// Timer kind of a Schedule trigger's next fire.
pub const SCHEDULE_TIMER: &str = "schedule";

/// The timer of a Schedule trigger: the flow in `execution_id`, the trigger in `task_run_id`.
pub fn schedule_timer(namespace: &str, flow_id: &str, trigger_id: &str, due_ms: i64) -> crate::store::TimerKey {
    crate::store::TimerKey {
        due_ms,
        execution_id: format!("{namespace}/{flow_id}"),
        task_run_id: trigger_id.to_string(),
        kind: SCHEDULE_TIMER.into(),
    }
}

/// Timer kind of an HTTP trigger's next poll.
pub const HTTP_POLL_TIMER: &str = "httppoll";

/// The timer of an HTTP trigger's next poll (keyed as a Schedule's).
pub fn poll_timer(namespace: &str, flow_id: &str, trigger_id: &str, due_ms: i64) -> crate::store::TimerKey {
    crate::store::TimerKey {
        kind: HTTP_POLL_TIMER.into(),
        ..schedule_timer(namespace, flow_id, trigger_id, due_ms)
    }
}

/// Replaces the registered Schedule and HTTP triggers of a flow with those of `flow` (none when
/// deleted or disabled). An HTTP trigger polls first at once, then every `interval`.
fn reschedule(w: &mut crate::store::Writer, namespace: &str, id: &str, flow: Option<&Flow>, now: i64) -> Result<bool> {
    for (trigger, due) in w.take_schedules(namespace, id)? {
        w.delete_timer(&schedule_timer(namespace, id, &trigger, due))?;
        w.delete_timer(&poll_timer(namespace, id, &trigger, due))?;
    }
    let mut added = false;
    let Some(flow) = flow.filter(|f| !f.disabled) else {
        return Ok(false);
    };
    for t in flow.triggers.iter().filter(|t| !t.disabled) {
        if let crate::flow::TriggerKind::Http(_) = &t.kind {
            w.put_schedule(namespace, id, &t.id, now)?;
            w.put_timer(&poll_timer(namespace, id, &t.id, now))?;
            added = true;
        }
    }
    for t in &flow.triggers {
        let crate::flow::TriggerKind::Schedule(s) = &t.kind else {
            continue;
        };
        if t.disabled {
            continue;
        }
        match crate::triggers::schedule::next_fire(&s.cron, s.with_seconds, s.timezone.as_deref(), now) {
            Ok(due) => {
                w.put_schedule(namespace, id, &t.id, due)?;
                w.put_timer(&schedule_timer(namespace, id, &t.id, due))?;
                added = true;
            }
            Err(e) => {
                tracing::warn!(flow = %format!("{namespace}.{id}"), trigger = %t.id, error = %e, "schedule not registered")
            }
        }
    }
    Ok(added)
}

/// Outcome of applying a flow source.
pub struct Applied {
    pub head: FlowHead,
    pub flow: Arc<Flow>,
    /// False when the source equals the latest revision (no new revision stored).
    pub changed: bool,
}

impl FlowRegistry {
    pub fn new(store: Store, timer_wake: Arc<tokio::sync::Notify>) -> Self {
        FlowRegistry {
            store,
            cache: Mutex::new(HashMap::new()),
            trigger_flows: Mutex::new(None),
            timer_wake,
        }
    }

    /// Another daemon sharing the database changed a flow: forget what was derived from the
    /// latest revisions (cached revisions themselves never change).
    pub fn changed_elsewhere(&self) {
        self.triggers_changed();
    }

    fn triggers_changed(&self) {
        if let Ok(mut t) = self.trigger_flows.lock() {
            *t = None;
        }
        self.timer_wake.notify_one();
    }

    /// Latest revisions of every flow with a Flow trigger.
    pub fn flows_with_flow_triggers(&self) -> Arc<Vec<(u32, Arc<Flow>)>> {
        if let Some(cached) = self.trigger_flows.lock().ok().and_then(|t| t.clone()) {
            return cached;
        }
        let mut out = Vec::new();
        for head in self.list().unwrap_or_default() {
            if let Ok((h, flow, _)) = self.get(&head.namespace, &head.id, 0) {
                let has = flow
                    .triggers
                    .iter()
                    .any(|t| matches!(t.kind, crate::flow::TriggerKind::Flow(_)));
                if has && !flow.disabled {
                    out.push((h.revision, flow));
                }
            }
        }
        let out = Arc::new(out);
        if let Ok(mut t) = self.trigger_flows.lock() {
            *t = Some(out.clone());
        }
        out
    }

    /// Validates and stores `source` as a new revision when it differs from the latest one.
    /// Writes `parsed` as the flow's next revision inside the caller's transaction; `false` when
    /// the source is the same as the current revision's (nothing written).
    pub fn write_revision(&self, w: &mut Writer, parsed: &Flow, source: &str) -> Result<(FlowHead, bool)> {
        let (ns, id) = (parsed.namespace.as_str(), parsed.id.as_str());
        let current = w.flow_head(ns, id)?;
        if let Some(cur) = &current
            && !cur.deleted
            && w.flow_source(ns, id, cur.revision)?.as_deref() == Some(source)
        {
            return Ok((cur.clone(), false));
        }
        let head = FlowHead {
            namespace: ns.to_string(),
            id: id.to_string(),
            revision: current.map(|c| c.revision + 1).unwrap_or(1),
            deleted: false,
            updated_ms: now_ms(),
        };
        w.put_flow_revision(&head, source)?;
        reschedule(w, ns, id, Some(parsed), head.updated_ms)?;
        Ok((head, true))
    }

    /// Once a revision is committed: cache it and let triggers and schedules see it.
    pub fn applied(&self, head: FlowHead, flow: Arc<Flow>, changed: bool) -> Applied {
        self.remember(&head, flow.clone());
        if changed {
            self.triggers_changed();
        }
        Applied { head, flow, changed }
    }

    fn remember(&self, head: &FlowHead, flow: Arc<Flow>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert((head.namespace.clone(), head.id.clone(), head.revision), flow);
        }
    }

    /// A revision of a flow (0 = latest), parsed, without its source: when that revision was
    /// parsed before, only the head is read (on PostgreSQL one round trip less per Start).
    pub fn parsed(&self, namespace: &str, id: &str, revision: u32) -> Result<(FlowHead, Arc<Flow>)> {
        if let Some(found) = self.parsed_if_cached(namespace, id, revision)? {
            return Ok(found);
        }
        self.get(namespace, id, revision).map(|(h, f, _)| (h, f))
    }

    /// [`FlowRegistry::parsed`] when that costs only a point read and a cache hit: `None` when
    /// the revision must be read whole and parsed (the caller does that off the async runtime).
    pub fn parsed_if_cached(&self, namespace: &str, id: &str, revision: u32) -> Result<Option<(FlowHead, Arc<Flow>)>> {
        let head = self
            .store
            .read()?
            .flow_head(namespace, id)?
            .filter(|h| !h.deleted || revision != 0);
        Ok(head.and_then(|head| {
            let rev = if revision == 0 { head.revision } else { revision };
            self.cached_revision(namespace, id, rev)
                .map(|f| (FlowHead { revision: rev, ..head }, f))
        }))
    }

    /// A revision of a flow (0 = latest), parsed.
    pub fn get(&self, namespace: &str, id: &str, revision: u32) -> Result<(FlowHead, Arc<Flow>, String)> {
        let not_found = || EngineError::NotFound(format!("flow `{namespace}.{id}` not found"));
        let r = self.store.read()?;
        let head = r
            .flow_head(namespace, id)?
            .filter(|h| !h.deleted || revision != 0)
            .ok_or_else(not_found)?;
        let rev = if revision == 0 { head.revision } else { revision };
        let source = r
            .flow_source(namespace, id, rev)?
            .ok_or_else(|| EngineError::NotFound(format!("flow `{namespace}.{id}` has no revision {rev}")))?;
        let key = (namespace.to_string(), id.to_string(), rev);
        if let Some(f) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok((FlowHead { revision: rev, ..head }, f, source));
        }
        // A stored revision was valid when applied; if a newer Tollgate rejects it, say so.
        let parsed = flow::load(&source, &format!("{namespace}/{id}.yaml")).map_err(EngineError::InvalidFlow)?;
        let flow = Arc::new(parsed);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, flow.clone());
        }
        Ok((FlowHead { revision: rev, ..head }, flow, source))
    }

    /// Revision `revision` (not 0) of a flow, parsed. A stored revision never changes, so once
    /// seen it comes from the cache without a read transaction: the writer asks for every command.
    pub fn revision(&self, namespace: &str, id: &str, revision: u32) -> Result<Arc<Flow>> {
        if revision != 0
            && let Some(f) = self
                .cache
                .lock()
                .ok()
                .and_then(|c| c.get(&(namespace.to_string(), id.to_string(), revision)).cloned())
        {
            return Ok(f);
        }
        Ok(self.get(namespace, id, revision)?.1)
    }

    /// Revision `revision` (not 0) if it was parsed before: never reads the store, so async
    /// code may call it without a hop to the blocking pool.
    pub fn cached_revision(&self, namespace: &str, id: &str, revision: u32) -> Option<Arc<Flow>> {
        if revision == 0 {
            return None;
        }
        self.cache
            .lock()
            .ok()
            .and_then(|c| c.get(&(namespace.to_string(), id.to_string(), revision)).cloned())
    }

    pub fn list(&self) -> Result<Vec<FlowHead>> {
        Ok(self.store.read()?.flows()?)
    }

    /// Marks a flow deleted inside the caller's transaction; its revisions stay for the
    /// executions that ran them. Call [`FlowRegistry::deleted`] once committed.
    pub fn mark_deleted(&self, w: &mut Writer, namespace: &str, id: &str) -> Result<()> {
        let mut head = w
            .flow_head(namespace, id)?
            .filter(|h| !h.deleted)
            .ok_or_else(|| EngineError::NotFound(format!("flow `{namespace}.{id}` not found")))?;
        head.deleted = true;
        head.updated_ms = now_ms();
        w.put_flow_head(&head)?;
        reschedule(w, namespace, id, None, head.updated_ms)?;
        // What its MultipleConditions had seen goes with it: a flow created again under the
        // same name starts with empty windows.
        w.delete_condition_windows(&crate::engine::flow_trigger::window_key(namespace, id, "", ""))?;
        // And so do its triggers switched on or off at run time.
        w.delete_trigger_states(namespace, id)?;
        Ok(())
    }

    pub fn deleted(&self) {
        self.triggers_changed();
    }
}
