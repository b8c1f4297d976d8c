//! What the store needs to know about the records it keeps, so it can key and index them without
//! naming the types of the engine or the audit log: those implement these traits.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A state an execution can be in, as the state index keys it: by name, in a fixed list order.
pub trait IndexedState: Copy + Eq + 'static {
    /// The execution type whose state this is (decoded when the writer needs a stored state it
    /// has not read yet).
    type Execution: ExecutionRecord<State = Self>;
    /// Every state, in the order lists return them.
    const ALL: &'static [Self];
    /// The name stored in index keys; must never change for a state that is stored.
    fn name(self) -> &'static str;
    /// Whether an execution in this state is finished (retention deletes only those).
    fn is_terminal(self) -> bool;
}

/// An execution: stored under its id (JSON unless the type encodes itself, see
/// [`ExecutionRecord::to_stored`]), indexed by `{state}\0{index_time_ms:016x}\0{id}` →
/// `\x02{namespace}\0{flow_id}\0{index_summary}` (`{namespace}\0{flow_id}` when written before
/// index summaries: both are read).
pub trait ExecutionRecord: Serialize + DeserializeOwned {
    type State: IndexedState;
    /// The stored bytes. JSON unless the type chooses a more compact encoding; whatever it
    /// writes, [`ExecutionRecord::from_stored`] must read it and every encoding written before.
    fn to_stored(&self) -> Vec<u8> {
        json_bytes(self)
    }
    /// Decodes stored bytes (an error names what is wrong with them).
    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
    fn id(&self) -> &str;
    fn state(&self) -> Self::State;
    fn namespace(&self) -> &str;
    fn flow_id(&self) -> &str;
    /// Where it sorts among executions in the same state (lists are oldest first by this).
    fn index_time_ms(&self) -> i64;
    /// What a list row shows of this execution beyond its id, state, namespace and flow, kept in
    /// its state-index entry (rewritten on every put) so that a list of rows reads the index
    /// alone. Read back by [`ExecutionPart::from_index`]. Empty: rows read the execution. Must be
    /// UTF-8 text: redb keeps that table's values as text.
    fn index_summary(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// Part of a stored execution decoded on its own, for lists that show rows rather than whole
/// executions: it must read every encoding [`ExecutionRecord::to_stored`] writes or wrote, and
/// should skip the fields it does not name without building them.
pub trait ExecutionPart: Sized {
    type State: IndexedState;
    fn from_stored(bytes: &[u8]) -> Result<Self, String>;
    /// The part from a state-index entry: its key's id and state, and its value's names and
    /// summary ([`ExecutionRecord::index_summary`]). `Ok(None)`: the summary is not one this
    /// part reads (empty, or an encoding it does not know), and the list reads the execution.
    fn from_index(
        _id: &str,
        _namespace: &str,
        _flow_id: &str,
        _state: Self::State,
        _summary: &[u8],
    ) -> Result<Option<Self>, String> {
        Ok(None)
    }
}

/// A log line: stored under `{execution_id}\0{seq:016x}` (JSON unless the type encodes itself,
/// as for executions).
pub trait LogRecord: Serialize + DeserializeOwned {
    fn to_stored(&self) -> Vec<u8> {
        json_bytes(self)
    }
    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
    fn execution_id(&self) -> &str;
    fn seq(&self) -> u64;
}

/// An audit record: stored as JSON under its sequence number; the store remembers only the
/// newest one's place in the chain ([`AuditHead`]).
pub trait AuditRecord: Serialize + DeserializeOwned {
    fn seq(&self) -> u64;
    fn hash(&self) -> &str;
    /// Moves the record to `seq` after `prev_hash` and recomputes its hash; false when this
    /// kind of record cannot (it is then appended only where the chain's head is read first).
    /// A PostgreSQL row batch links its records only under the short commit lock.
    fn relink(&mut self, _seq: u64, _prev_hash: &str) -> bool {
        false
    }
}

/// A record's place in the audit chain: its sequence number and hash. Stored as the chain's head
/// marker beside the newest record, and returned as the newest record's link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

fn json_bytes<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Our own plain data types always serialize to JSON (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}
