//! Flow registry: applies flows as revisions and serves parsed flows from a cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::{EngineError, Result};
use super::ids::now_ms;
use crate::flow::{self, Flow};
use crate::store::{FlowHead, Store};

pub struct FlowRegistry {
    store: Store,
    cache: Mutex<HashMap<(String, String, u32), Arc<Flow>>>,
}

/// Outcome of applying a flow source.
pub struct Applied {
    pub head: FlowHead,
    pub flow: Arc<Flow>,
    /// False when the source equals the latest revision (no new revision stored).
    pub changed: bool,
}

impl FlowRegistry {
    pub fn new(store: Store) -> Self {
        FlowRegistry {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Validates and stores `source` as a new revision when it differs from the latest one.
    pub fn apply(&self, source: &str, file: &str) -> Result<Applied> {
        let parsed = flow::load(source, file).map_err(EngineError::InvalidFlow)?;
        let (ns, id) = (parsed.namespace.clone(), parsed.id.clone());
        let (head, changed) = self.store.write(|w| -> Result<(FlowHead, bool)> {
            let current = w.flow_head(&ns, &id)?;
            if let Some(cur) = &current {
                if !cur.deleted && w.flow_source(&ns, &id, cur.revision)?.as_deref() == Some(source)
                {
                    return Ok((cur.clone(), false));
                }
            }
            let head = FlowHead {
                namespace: ns.clone(),
                id: id.clone(),
                revision: current.map(|c| c.revision + 1).unwrap_or(1),
                deleted: false,
                updated_ms: now_ms(),
            };
            w.put_flow_revision(&head, source)?;
            Ok((head, true))
        })?;
        let flow = Arc::new(parsed);
        self.remember(&head, flow.clone());
        Ok(Applied {
            head,
            flow,
            changed,
        })
    }

    fn remember(&self, head: &FlowHead, flow: Arc<Flow>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                (head.namespace.clone(), head.id.clone(), head.revision),
                flow,
            );
        }
    }

    /// A revision of a flow (0 = latest), parsed.
    pub fn get(
        &self,
        namespace: &str,
        id: &str,
        revision: u32,
    ) -> Result<(FlowHead, Arc<Flow>, String)> {
        let not_found = || EngineError::NotFound(format!("flow `{namespace}.{id}` not found"));
        let r = self.store.read()?;
        let head = r
            .flow_head(namespace, id)?
            .filter(|h| !h.deleted || revision != 0)
            .ok_or_else(not_found)?;
        let rev = if revision == 0 {
            head.revision
        } else {
            revision
        };
        let source = r.flow_source(namespace, id, rev)?.ok_or_else(|| {
            EngineError::NotFound(format!("flow `{namespace}.{id}` has no revision {rev}"))
        })?;
        let key = (namespace.to_string(), id.to_string(), rev);
        if let Some(f) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok((
                FlowHead {
                    revision: rev,
                    ..head
                },
                f,
                source,
            ));
        }
        // A stored revision was valid when applied; if a newer Tollgate rejects it, say so.
        let parsed = flow::load(&source, &format!("{namespace}/{id}.yaml"))
            .map_err(EngineError::InvalidFlow)?;
        let flow = Arc::new(parsed);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, flow.clone());
        }
        Ok((
            FlowHead {
                revision: rev,
                ..head
            },
            flow,
            source,
        ))
    }

    pub fn list(&self) -> Result<Vec<FlowHead>> {
        Ok(self.store.read()?.flows()?)
    }

    /// Marks a flow deleted; its revisions stay for the executions that ran them.
    pub fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        self.store.write(|w| -> Result<()> {
            let mut head = w
                .flow_head(namespace, id)?
                .filter(|h| !h.deleted)
                .ok_or_else(|| {
                    EngineError::NotFound(format!("flow `{namespace}.{id}` not found"))
                })?;
            head.deleted = true;
            head.updated_ms = now_ms();
            w.put_flow_head(&head)?;
            Ok(())
        })
    }
}
