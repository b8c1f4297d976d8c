//! Triggers switched on or off at run time (Kestra's Toggle task and `tollgate trigger
//! enable/disable`), beside the flow source: a trigger fires only when neither its YAML nor
//! this state disables it.

use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::backend::{KvRead, Table, k};
use super::{Reader, Result, Writer, decode, encode, get_json, key_text};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    pub namespace: String,
    pub flow_id: String,
    pub trigger_id: String,
    pub disabled: bool,
    /// Who switched it last: a user, or `flow:<namespace>.<flowId>` for a Toggle task.
    pub by: String,
    pub at_ms: i64,
}

fn key(namespace: &str, flow_id: &str, trigger_id: &str) -> String {
    format!("{namespace}\0{flow_id}\0{trigger_id}")
}

/// Every state under `prefix` (a namespace, or a namespace and a flow, each ending in `\0`).
fn under(r: &dyn KvRead, prefix: &str) -> Result<Vec<TriggerState>> {
    let mut out = Vec::new();
    r.scan(
        Table::TriggerStates,
        Bound::Included(k(prefix)),
        Bound::Unbounded,
        false,
        &mut |key, v| {
            if !key.starts_with(prefix.as_bytes()) {
                return Ok(false);
            }
            out.push(decode("trigger_states", &key_text(key), v)?);
            Ok(true)
        },
    )?;
    Ok(out)
}

impl Reader {
    /// The switched triggers of one flow.
    pub fn trigger_states(&self, namespace: &str, flow_id: &str) -> Result<Vec<TriggerState>> {
        under(self.kv_read(), &format!("{namespace}\0{flow_id}\0"))
    }

    /// Next fire time of a Schedule trigger, if it is registered.
    pub fn schedule_due(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<Option<i64>> {
        let key = format!("{namespace}\0{flow_id}\0{trigger_id}");
        Ok(self
            .kv_read()
            .get(Table::Schedules, k(&key))?
            .and_then(|v| super::decode_i64(&v)))
    }
}

impl Writer {
    /// Whether a trigger was switched off at run time.
    pub fn trigger_switched_off(&self, namespace: &str, flow_id: &str, trigger_id: &str) -> Result<bool> {
        let state: Option<TriggerState> = get_json(
            self.kv_read(),
            Table::TriggerStates,
            &key(namespace, flow_id, trigger_id),
        )?;
        Ok(state.is_some_and(|s| s.disabled))
    }

    pub fn put_trigger_state(&mut self, s: &TriggerState) -> Result<()> {
        self.kvw().put(
            Table::TriggerStates,
            k(&key(&s.namespace, &s.flow_id, &s.trigger_id)),
            &encode(s),
        )
    }

    /// Forgets the switched triggers of a deleted flow.
    pub fn delete_trigger_states(&mut self, namespace: &str, flow_id: &str) -> Result<()> {
        for s in under(self.kv_read(), &format!("{namespace}\0{flow_id}\0"))? {
            self.kvw()
                .erase(Table::TriggerStates, k(&key(&s.namespace, &s.flow_id, &s.trigger_id)))?;
        }
        Ok(())
    }
}
