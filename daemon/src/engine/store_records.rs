//! How the store keys and indexes the engine's records (the store names no engine type).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::execution::{Approval, Execution, LogLine, PauseState};
use super::state::State;
use crate::store::{ExecutionPart, ExecutionRecord, IndexedState, LogRecord};

/// An execution as a list row shows it, decoded from the stored record without the parts a row
/// does not show: inputs, outputs, trigger, history, and of each task run all but its id, task,
/// state and pause. serde skips a field this struct does not name without building it, so a
/// page of summaries costs a fraction of a page of executions. Field names are [`Execution`]'s
/// (the stored names); every field but the state has a default, as a row must read any record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionSummary {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub flow_id: String,
    #[serde(default)]
    pub flow_revision: u32,
    pub state: State,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub task_runs: Vec<TaskRunSummary>,
    #[serde(default)]
    pub created_ms: i64,
    #[serde(default)]
    pub updated_ms: i64,
    #[serde(default)]
    pub ended_ms: Option<i64>,
    #[serde(default)]
    pub started_by: String,
    #[serde(default)]
    pub parent: Option<ParentSummary>,
}

impl ExecutionSummary {
    /// The task runs waiting at a pause, as [`Execution::paused_runs`].
    pub fn paused_runs(&self) -> impl Iterator<Item = &TaskRunSummary> {
        self.task_runs.iter().filter(|r| r.state == State::Paused)
    }
}

/// What a summary keeps of a task run: enough to show its pause.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskRunSummary {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub task_id: String,
    pub state: State,
    #[serde(default)]
    pub pause: Option<PauseState>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default)]
pub struct ParentSummary {
    #[serde(default)]
    pub execution_id: String,
}

impl ExecutionPart for ExecutionSummary {
    type State = State;

    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        match bytes.first() {
            Some(&MSGPACK_V1) => summary_from_msgpack(&bytes[1..]),
            Some(&MSGPACK_LZ4_V1) => summary_from_msgpack(&unpack_lz4(&bytes[1..])?),
            _ => from_compact(bytes),
        }
    }

    fn from_index(
        id: &str,
        namespace: &str,
        flow_id: &str,
        state: State,
        summary: &[u8],
    ) -> Result<Option<Self>, String> {
        let Some(row) = IndexSummary::parse(summary)? else {
            return Ok(None);
        };
        let task_runs = row
            .paused
            .into_iter()
            .map(|p| TaskRunSummary {
                id: p.id.into_owned(),
                task_id: p.task_id.into_owned(),
                state: State::Paused,
                pause: p.pause.map(|p| PauseState {
                    since_ms: p.since_ms,
                    expires_ms: p.expires_ms,
                    users: texts(p.users),
                    groups: texts(p.groups),
                    approvals: p
                        .approved
                        .into_iter()
                        .map(|(by, on_behalf_of)| Approval {
                            by: by.into_owned(),
                            on_ms: 0,
                            values: Default::default(),
                            reason: String::new(),
                            on_behalf_of: on_behalf_of.into_owned(),
                            rejected: false,
                            stale_values: Vec::new(),
                        })
                        .collect(),
                    escalated_to: texts(p.escalated_to),
                    reminder_count: p.reminder_count,
                    ..PauseState::default()
                }),
            })
            .collect();
        Ok(Some(ExecutionSummary {
            id: id.to_string(),
            namespace: namespace.to_string(),
            flow_id: flow_id.to_string(),
            flow_revision: row.flow_revision,
            state,
            labels: row
                .labels
                .0
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            task_runs,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
            ended_ms: row.ended_ms,
            started_by: row.started_by.into_owned(),
            parent: row.parent.map(|execution_id| ParentSummary {
                execution_id: execution_id.into_owned(),
            }),
        }))
    }
}

fn texts(v: Vec<Text<'_>>) -> Vec<String> {
    v.into_iter().map(Text::into_owned).collect()
}

/// A list row as it is kept, either its state-index entry's bytes (a summary this version reads:
/// decoded when the row is used, borrowing its strings, see [`IndexRow::view`]) or, for an
/// entry written before summaries, the summary decoded from the execution. For lists that turn
/// rows straight into their wire form: a row costs one buffer, not a string per field.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexRow {
    Index {
        /// `{id}{namespace}{flow_id}{summary}`, split at the lengths below.
        bytes: Vec<u8>,
        id: usize,
        namespace: usize,
        flow_id: usize,
        state: State,
    },
    Stored(Box<ExecutionSummary>),
}

/// A row's fields, borrowed from an [`IndexRow`].
pub struct RowView<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub flow_id: &'a str,
    pub state: State,
    pub summary: IndexSummary<'a>,
}

impl IndexRow {
    /// The row's fields; an error (naming what) when its summary does not decode: a damaged
    /// index entry.
    pub fn view(&self) -> Result<RowView<'_>, String> {
        match self {
            IndexRow::Index {
                bytes,
                id,
                namespace,
                flow_id,
                state,
            } => {
                fn text(b: &[u8], from: usize, to: usize) -> Result<&str, String> {
                    std::str::from_utf8(b.get(from..to).unwrap_or_default()).map_err(|e| e.to_string())
                }
                let (a, b, c) = (*id, id + namespace, id + namespace + flow_id);
                let summary = IndexSummary::parse(bytes.get(c..).unwrap_or_default())?
                    .ok_or_else(|| "row summary: unknown encoding".to_string())?;
                Ok(RowView {
                    id: text(bytes, 0, a)?,
                    namespace: text(bytes, a, b)?,
                    flow_id: text(bytes, b, c)?,
                    state: *state,
                    summary,
                })
            }
            IndexRow::Stored(s) => Ok(RowView {
                id: &s.id,
                namespace: &s.namespace,
                flow_id: &s.flow_id,
                state: s.state,
                summary: IndexSummary::of_summary(s),
            }),
        }
    }
}

impl ExecutionPart for IndexRow {
    type State = State;

    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        ExecutionSummary::from_stored(bytes).map(|s| IndexRow::Stored(Box::new(s)))
    }

    fn from_index(
        id: &str,
        namespace: &str,
        flow_id: &str,
        state: State,
        summary: &[u8],
    ) -> Result<Option<Self>, String> {
        // An encoding this version does not know reads the execution instead; the summary is
        // decoded once, when the row is used ([`IndexRow::view`] reports a damaged one).
        if summary.first() != Some(&INDEX_SUMMARY_V1) {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(id.len() + namespace.len() + flow_id.len() + summary.len());
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(namespace.as_bytes());
        bytes.extend_from_slice(flow_id.as_bytes());
        bytes.extend_from_slice(summary);
        Ok(Some(IndexRow::Index {
            bytes,
            id: id.len(),
            namespace: namespace.len(),
            flow_id: flow_id.len(),
            state,
        }))
    }
}

/// First byte of a row summary kept in the state index: [`IndexSummary`] as JSON follows. JSON,
/// not MessagePack, because redb keeps that table's values as text (changing its type would not
/// open existing data dirs); named fields, so a field added later with a default still reads
/// older entries. A list meets an entry with another first byte (or none: written before
/// summaries) by reading the execution instead.
const INDEX_SUMMARY_V1: u8 = b'1';

/// What the state index keeps of an execution for its list row: every [`ExecutionSummary`]
/// field that the index key and names do not already hold, and of the task runs only the paused
/// ones with what a row shows of their pause (approvals by whom, not their values: those can
/// be large, and no row shows them).
/// Short field names: the index holds one per execution, and every byte of it is rewritten on
/// each put. Empty and absent values are left out. Strings are borrowed both ways: from the
/// execution when written, from the index entry when read (unless JSON escapes them).
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexSummary<'a> {
    #[serde(rename = "r", default)]
    pub flow_revision: u32,
    #[serde(rename = "l", default, borrow, skip_serializing_if = "Pairs::is_empty")]
    pub labels: Pairs<'a>,
    #[serde(rename = "c", default)]
    pub created_ms: i64,
    #[serde(rename = "u", default)]
    pub updated_ms: i64,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    #[serde(rename = "b", default, borrow, skip_serializing_if = "str::is_empty")]
    pub started_by: Cow<'a, str>,
    #[serde(rename = "pa", default, borrow, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Cow<'a, str>>,
    #[serde(rename = "p", default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub paused: Vec<IndexPausedRun<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IndexPausedRun<'a> {
    #[serde(rename = "i", borrow)]
    pub id: Cow<'a, str>,
    #[serde(rename = "t", borrow)]
    pub task_id: Cow<'a, str>,
    #[serde(rename = "p", default, borrow, skip_serializing_if = "Option::is_none")]
    pub pause: Option<IndexPause<'a>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IndexPause<'a> {
    #[serde(rename = "s", default)]
    pub since_ms: i64,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    #[serde(rename = "u", default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Text<'a>>,
    #[serde(rename = "g", default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Text<'a>>,
    /// (by, on behalf of) of each approval so far.
    #[serde(rename = "a", default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub approved: Vec<(Text<'a>, Text<'a>)>,
    #[serde(rename = "e", default, borrow, skip_serializing_if = "Vec::is_empty")]
    pub escalated_to: Vec<Text<'a>>,
    #[serde(rename = "n", default, skip_serializing_if = "is_zero")]
    pub reminder_count: u32,
}

/// A string inside a list or pair, borrowed when it can be (serde borrows a `Cow` only as a
/// field of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Text<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    fn into_owned(self) -> String {
        self.0.into_owned()
    }
    fn of(s: &'a str) -> Text<'a> {
        Text(Cow::Borrowed(s))
    }
}

/// Labels: a JSON object (as the map it was), read into its pairs in order, without a map.
#[derive(Debug, Default)]
pub struct Pairs<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Pairs<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Pairs<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0));
                while let Some((k, v)) = m.next_entry::<Text<'a>, Text<'a>>()? {
                    out.push((k.0, v.0));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> IndexSummary<'a> {
    /// Decodes a summary as written by this or an earlier version: `Ok(None)` for an encoding
    /// it does not know (empty, or a later version's), an error for a damaged one.
    pub fn parse(summary: &'a [u8]) -> Result<Option<IndexSummary<'a>>, String> {
        let Some((&INDEX_SUMMARY_V1, body)) = summary.split_first() else {
            return Ok(None);
        };
        serde_json::from_slice(body)
            .map(Some)
            .map_err(|e| format!("row summary: {e}"))
    }

    /// The summary of an execution, borrowing its strings.
    fn of_execution(e: &'a Execution) -> IndexSummary<'a> {
        IndexSummary {
            flow_revision: e.flow_revision,
            labels: Pairs(
                e.labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                    .collect(),
            ),
            created_ms: e.created_ms,
            updated_ms: e.updated_ms,
            ended_ms: e.ended_ms,
            started_by: Cow::Borrowed(&e.started_by),
            parent: e.parent.as_ref().map(|p| Cow::Borrowed(p.execution_id.as_str())),
            paused: e
                .paused_runs()
                .map(|r| IndexPausedRun {
                    id: Cow::Borrowed(&r.id),
                    task_id: Cow::Borrowed(&r.task_id),
                    pause: r.pause.as_ref().map(IndexPause::of),
                })
                .collect(),
        }
    }

    /// The same of a summary read from an execution (a row whose index entry has none).
    fn of_summary(s: &'a ExecutionSummary) -> IndexSummary<'a> {
        IndexSummary {
            flow_revision: s.flow_revision,
            labels: Pairs(
                s.labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
                    .collect(),
            ),
            created_ms: s.created_ms,
            updated_ms: s.updated_ms,
            ended_ms: s.ended_ms,
            started_by: Cow::Borrowed(&s.started_by),
            parent: s.parent.as_ref().map(|p| Cow::Borrowed(p.execution_id.as_str())),
            paused: s
                .paused_runs()
                .map(|r| IndexPausedRun {
                    id: Cow::Borrowed(&r.id),
                    task_id: Cow::Borrowed(&r.task_id),
                    pause: r.pause.as_ref().map(IndexPause::of),
                })
                .collect(),
        }
    }
}

impl<'a> IndexPause<'a> {
    fn of(p: &'a PauseState) -> IndexPause<'a> {
        let texts = |v: &'a [String]| v.iter().map(|s| Text::of(s)).collect();
        IndexPause {
            since_ms: p.since_ms,
            expires_ms: p.expires_ms,
            users: texts(&p.users),
            groups: texts(&p.groups),
            approved: p
                .approvals
                .iter()
                .map(|a| (Text::of(&a.by), Text::of(&a.on_behalf_of)))
                .collect(),
            escalated_to: texts(&p.escalated_to),
            reminder_count: p.reminder_count,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn index_summary(e: &Execution) -> Vec<u8> {
    let row = IndexSummary::of_execution(e);
    let mut out = Vec::with_capacity(160);
    out.push(INDEX_SUMMARY_V1);
    // Plain data (string map keys): encoding cannot fail; if it ever did, an empty summary makes
    // lists read the execution instead, which is still correct.
    match serde_json::to_writer(&mut out, &row) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// Reads a summary from a MessagePack execution by walking its map: the fields a summary keeps
/// are decoded with serde, every other value is stepped over by its length prefixes alone.
/// (serde's "ignore this field" still decodes it in rmp_serde, UTF-8 checks of every string
/// included: in a list of 100,000 that was most of the decoding time.)
fn summary_from_msgpack(bytes: &[u8]) -> Result<ExecutionSummary, String> {
    fn field<'a, T: DeserializeOwned>(c: &mut Cursor<'a>, name: &str) -> Result<T, String> {
        rmp_serde::from_slice(c.value()?).map_err(|e| format!("{name}: {e}"))
    }
    let mut c = Cursor { b: bytes, pos: 0 };
    let mut state = None;
    let mut s = ExecutionSummary {
        id: String::new(),
        namespace: String::new(),
        flow_id: String::new(),
        flow_revision: 0,
        state: State::Created,
        labels: BTreeMap::new(),
        task_runs: Vec::new(),
        created_ms: 0,
        updated_ms: 0,
        ended_ms: None,
        started_by: String::new(),
        parent: None,
    };
    for _ in 0..c.map_len()? {
        match c.str()? {
            b"id" => s.id = field(&mut c, "id")?,
            b"namespace" => s.namespace = field(&mut c, "namespace")?,
            b"flow_id" => s.flow_id = field(&mut c, "flow_id")?,
            b"flow_revision" => s.flow_revision = field(&mut c, "flow_revision")?,
            b"state" => state = Some(field(&mut c, "state")?),
            b"labels" => s.labels = field(&mut c, "labels")?,
            b"created_ms" => s.created_ms = field(&mut c, "created_ms")?,
            b"updated_ms" => s.updated_ms = field(&mut c, "updated_ms")?,
            b"ended_ms" => s.ended_ms = field(&mut c, "ended_ms")?,
            b"started_by" => s.started_by = field(&mut c, "started_by")?,
            b"parent" => s.parent = field(&mut c, "parent")?,
            b"task_runs" => {
                for _ in 0..c.array_len()? {
                    let (mut id, mut task_id, mut run_state, mut pause) = (String::new(), String::new(), None, None);
                    for _ in 0..c.map_len()? {
                        match c.str()? {
                            b"id" => id = field(&mut c, "task_runs.id")?,
                            b"task_id" => task_id = field(&mut c, "task_runs.task_id")?,
                            b"state" => run_state = Some(field(&mut c, "task_runs.state")?),
                            b"pause" => pause = field(&mut c, "task_runs.pause")?,
                            _ => c.skip()?,
                        }
                    }
                    s.task_runs.push(TaskRunSummary {
                        id,
                        task_id,
                        state: run_state.ok_or("task run without a state")?,
                        pause,
                    });
                }
            }
            _ => c.skip()?,
        }
    }
    s.state = state.ok_or("execution without a state")?;
    Ok(s)
}

/// A read position in a MessagePack buffer; every step is bounds-checked (a damaged record is
/// an error, never a panic).
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or("record ends early")?;
        let out = &self.b[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, width: usize) -> Result<usize, String> {
        let mut n = 0usize;
        for b in self.take(width)? {
            n = (n << 8) | *b as usize;
        }
        Ok(n)
    }

    fn map_len(&mut self) -> Result<usize, String> {
        match self.byte()? {
            m @ 0x80..=0x8f => Ok((m & 0x0f) as usize),
            0xde => self.uint(2),
            0xdf => self.uint(4),
            m => Err(format!("expected a map, found marker {m:#04x}")),
        }
    }

    fn array_len(&mut self) -> Result<usize, String> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok((m & 0x0f) as usize),
            0xdc => self.uint(2),
            0xdd => self.uint(4),
            m => Err(format!("expected an array, found marker {m:#04x}")),
        }
    }

    /// A string's bytes (map keys: compared, not validated).
    fn str(&mut self) -> Result<&'a [u8], String> {
        let n = match self.byte()? {
            m @ 0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 => self.uint(1)?,
            0xda => self.uint(2)?,
            0xdb => self.uint(4)?,
            m => return Err(format!("expected a string, found marker {m:#04x}")),
        };
        self.take(n)
    }

    /// The bytes of the next value, which is stepped over.
    fn value(&mut self) -> Result<&'a [u8], String> {
        let start = self.pos;
        self.skip()?;
        Ok(&self.b[start..self.pos])
    }

    /// Steps over one value (with everything nested in it), by length prefixes only.
    fn skip(&mut self) -> Result<(), String> {
        let mut pending: usize = 1;
        while pending > 0 {
            pending -= 1;
            let m = self.byte()?;
            let (data, items) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * (m & 0x0f) as usize),
                0x90..=0x9f => (0, (m & 0x0f) as usize),
                0xa0..=0xbf => ((m & 0x1f) as usize, 0),
                0xc4 | 0xd9 => (self.uint(1)?, 0),
                0xc5 | 0xda => (self.uint(2)?, 0),
                0xc6 | 0xdb => (self.uint(4)?, 0),
                0xc7 => (self.uint(1)? + 1, 0),
                0xc8 => (self.uint(2)? + 1, 0),
                0xc9 => (self.uint(4)? + 1, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.uint(2)?),
                0xdd => (0, self.uint(4)?),
                0xde => (0, 2 * self.uint(2)?),
                0xdf => (0, 2 * self.uint(4)?),
                _ => return Err(format!("unknown MessagePack marker {m:#04x}")),
            };
            self.take(data)?;
            // More items than bytes left cannot be a valid record (and must not loop for long).
            pending = pending
                .checked_add(items)
                .filter(|p| *p <= self.b.len() - self.pos)
                .ok_or("record ends early")?;
        }
        Ok(())
    }
}

impl IndexedState for State {
    type Execution = Execution;
    const ALL: &'static [State] = &State::ALL;

    fn name(self) -> &'static str {
        self.as_str()
    }

    fn is_terminal(self) -> bool {
        State::is_terminal(self)
    }
}

impl ExecutionRecord for Execution {
    type State = State;

    fn to_stored(&self) -> Vec<u8> {
        to_compact(self)
    }

    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        from_compact(bytes)
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn state(&self) -> State {
        self.state
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn flow_id(&self) -> &str {
        &self.flow_id
    }

    fn index_summary(&self) -> Vec<u8> {
        index_summary(self)
    }

    /// PAUSED executions list oldest pause first; the others oldest first.
    fn index_time_ms(&self) -> i64 {
        if self.state == State::Paused {
            self.waiting_since().unwrap_or(self.created_ms)
        } else {
            self.created_ms
        }
    }
}

impl LogRecord for LogLine {
    fn to_stored(&self) -> Vec<u8> {
        to_compact(self)
    }

    fn from_stored(bytes: &[u8]) -> Result<Self, String> {
        from_compact(bytes)
    }

    fn execution_id(&self) -> &str {
        &self.execution_id
    }

    fn seq(&self) -> u64 {
        self.seq
    }
}

/// First byte of an execution or log line stored as MessagePack (maps with field names, so a
/// field added later with a default still reads old records). Records written before this
/// encoding are JSON objects and start with `{`; every encoding is read.
const MSGPACK_V1: u8 = 0x01;
/// First byte of the same MessagePack compressed with LZ4 (block format):
/// `0x02 | msgpack_len: u32 LE | LZ4 block`. The field names of every task run and history
/// entry repeat within a record, so executions shrink to about half, and with them the journal
/// and the redb pages a flush rewrites (issue 17: disk bytes per resume).
const MSGPACK_LZ4_V1: u8 = 0x02;
/// Records shorter than this stay plain: too little repeats in them to pay for the header.
const COMPRESS_FROM: usize = 192;

fn to_compact<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.push(MSGPACK_V1);
    // Our plain data types always serialize (string map keys, no untagged enums); an error
    // here would be a bug, and writing JSON instead keeps the record readable.
    if rmp_serde::encode::write_named(&mut out, v).is_err() {
        return serde_json::to_vec(v).unwrap_or_default();
    }
    if out.len() - 1 < COMPRESS_FROM {
        return out;
    }
    crate::store::lz4::pack(MSGPACK_LZ4_V1, &out[1..], out.len()).unwrap_or(out)
}

/// The MessagePack of an [`MSGPACK_LZ4_V1`] record (the bytes after its tag).
fn unpack_lz4(b: &[u8]) -> Result<Vec<u8>, String> {
    crate::store::lz4::unpack(b).map_err(|e| format!("compressed record: {e}"))
}

fn from_compact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.first() {
        Some(&MSGPACK_V1) => rmp_serde::from_slice(&bytes[1..]).map_err(|e| e.to_string()),
        Some(&MSGPACK_LZ4_V1) => rmp_serde::from_slice(&unpack_lz4(&bytes[1..])?).map_err(|e| e.to_string()),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown record encoding (first byte {other:#04x})")),
        None => Err("empty record".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An execution as the store wrote it before the compact encoding (JSON, fields as the
    /// daemon wrote them then): a paused gate with inputs, an approval and a finished Log run.
    const OLD_JSON: &str = r#"{"id":"7hQ2","namespace":"hr.ops","flow_id":"onboard","flow_revision":3,"state":"PAUSED","history":[{"state":"CREATED","at_ms":1000},{"state":"RUNNING","at_ms":1001},{"state":"PAUSED","at_ms":1005}],"labels":{"team":"hr"},"inputs":{"name":"Ana \"A\" Lima","count":3,"ratio":0.5,"neg":-7,"big":18446744073709551615,"tags":["a","b"],"none":null,"nested":{"ok":true}},"secret_inputs":["pin"],"task_runs":[{"id":"r1","task_id":"hello","task_type":"io.kestra.plugin.core.log.Log","parent_task_run_id":null,"value":null,"iteration":null,"state":"SUCCESS","history":[{"state":"CREATED","at_ms":1001},{"state":"RUNNING","at_ms":1001},{"state":"SUCCESS","at_ms":1002}],"outputs":{},"attempt":1,"started_ms":1001,"ended_ms":1002,"branch":null,"items":null,"pause":null,"child_execution_id":null,"attempts":[{"state":"SUCCESS","started_ms":1001,"ended_ms":1002}]},{"id":"r2","task_id":"gate","task_type":"io.kestra.plugin.ee.flow.HumanTask","parent_task_run_id":null,"value":null,"iteration":2,"state":"PAUSED","history":[{"state":"PAUSED","at_ms":1005}],"outputs":{"x":[1,2.25,"s"]},"attempt":1,"started_ms":1003,"ended_ms":null,"branch":"yes","items":[{"k":1}],"pause":{"since_ms":1005,"expires_ms":null,"timeout_ms":9000,"users":["ana@example.com"],"groups":["hr"],"approvals":[{"by":"bob@example.com","on_ms":1100,"values":{"ok":true},"reason":"fine"}],"escalation_level":0,"escalated_to":[],"reminder_count":1,"next_reminder_ms":5000,"next_escalation_ms":null},"child_execution_id":null}],"created_ms":1000,"updated_ms":1100,"ended_ms":null,"outputs":{},"started_by":"ana@example.com","parent":{"execution_id":"p1","task_run_id":"pr","wait":true,"transmit_failed":false},"trigger":{"body":"x"},"log_seq":4}"#;

    #[test]
    fn an_old_json_record_reads_and_is_rewritten_compact_with_the_same_content() {
        let old = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        assert_eq!(old.state, State::Paused);
        assert_eq!(old.inputs["name"], "Ana \"A\" Lima");
        assert_eq!(old.task_runs[1].pause.as_ref().unwrap().approvals[0].reason, "fine");
        let stored = old.to_stored();
        assert_eq!(stored[0], MSGPACK_LZ4_V1);
        assert!(stored.len() < OLD_JSON.len(), "{} >= {}", stored.len(), OLD_JSON.len());
        let back = Execution::from_stored(&stored).expect("compact record");
        assert_eq!(back, old);
        // Numbers keep their kind (integer, float, the largest u64) and maps their order.
        assert_eq!(back.inputs["big"], serde_json::json!(u64::MAX));
        assert_eq!(back.inputs["ratio"], serde_json::json!(0.5));
        assert_eq!(back.inputs["neg"], serde_json::json!(-7));
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
    }

    #[test]
    fn a_summary_reads_both_encodings_and_keeps_what_a_row_shows() {
        let whole = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        let compact = whole.to_stored();
        for bytes in [OLD_JSON.as_bytes(), compact.as_slice()] {
            let s = ExecutionSummary::from_stored(bytes).expect("summary");
            assert_eq!(
                (s.id.as_str(), s.namespace.as_str(), s.flow_id.as_str()),
                ("7hQ2", "hr.ops", "onboard")
            );
            assert_eq!((s.flow_revision, s.state), (3, State::Paused));
            assert_eq!(s.labels, whole.labels);
            assert_eq!((s.created_ms, s.updated_ms, s.ended_ms), (1000, 1100, None));
            assert_eq!(s.started_by, "ana@example.com");
            assert_eq!(s.parent.as_ref().map(|p| p.execution_id.as_str()), Some("p1"));
            let paused: Vec<&TaskRunSummary> = s.paused_runs().collect();
            assert_eq!(paused.len(), 1);
            assert_eq!((paused[0].id.as_str(), paused[0].task_id.as_str()), ("r2", "gate"));
            assert_eq!(paused[0].pause, whole.task_runs[1].pause);
            assert_eq!(s.task_runs.len(), 2);
        }
        // The map walker reads what serde's derive would (both paths, same record).
        let walked = ExecutionSummary::from_stored(&compact).expect("walked");
        let derived: ExecutionSummary =
            rmp_serde::from_slice(&unpack_lz4(&compact[1..]).expect("unpacked")).expect("derived");
        assert_eq!(walked, derived);
        for cut in [1, 2, compact.len() / 3, compact.len() / 2, compact.len() - 1] {
            assert!(ExecutionSummary::from_stored(&compact[..cut]).is_err(), "cut at {cut}");
        }
        assert!(ExecutionSummary::from_stored(&[]).is_err());
    }

    /// The row summary kept in the state index reads back as the summary decoded from the
    /// execution, for everything a row shows: the paused runs with their pause's assignees,
    /// approvers, escalations and reminders (not approval values, which no row shows).
    #[test]
    fn the_index_summary_reads_back_what_a_row_shows() {
        let whole = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        let summary = whole.index_summary();
        assert_eq!(summary[0], INDEX_SUMMARY_V1);
        let from_index = ExecutionSummary::from_index("7hQ2", "hr.ops", "onboard", State::Paused, &summary)
            .expect("decodes")
            .expect("a summary this version reads");
        let mut expected = ExecutionSummary::from_stored(&whole.to_stored()).expect("summary");
        expected.task_runs.retain(|r| r.state == State::Paused);
        for r in &mut expected.task_runs {
            if let Some(p) = &mut r.pause {
                let shown = PauseState {
                    since_ms: p.since_ms,
                    expires_ms: p.expires_ms,
                    users: p.users.clone(),
                    groups: p.groups.clone(),
                    approvals: p
                        .approvals
                        .iter()
                        .map(|a| Approval {
                            by: a.by.clone(),
                            on_ms: 0,
                            values: Default::default(),
                            reason: String::new(),
                            on_behalf_of: a.on_behalf_of.clone(),
                            rejected: false,
                            stale_values: Vec::new(),
                        })
                        .collect(),
                    escalated_to: p.escalated_to.clone(),
                    reminder_count: p.reminder_count,
                    ..PauseState::default()
                };
                *p = shown;
            }
        }
        assert_eq!(from_index, expected);
        assert_eq!(
            from_index
                .paused_runs()
                .next()
                .unwrap()
                .pause
                .as_ref()
                .unwrap()
                .approvals[0]
                .by,
            "bob@example.com"
        );
        // No approval values in the index (they may be large, or sensitive).
        assert!(!summary.windows(4).any(|w| w == b"fine"));
        // Another encoding (a later version, or none): the list reads the execution instead.
        assert_eq!(
            ExecutionSummary::from_index("x", "n", "f", State::Paused, &[]),
            Ok(None)
        );
        assert_eq!(
            ExecutionSummary::from_index("x", "n", "f", State::Paused, &[0x7f, 1]),
            Ok(None)
        );
        // A damaged summary of this version is an error, not a panic.
        assert!(ExecutionSummary::from_index("x", "n", "f", State::Paused, &summary[..summary.len() / 2]).is_err());
    }

    /// The index summary is written byte for byte as before its strings were borrowed (entries
    /// already stored read the same), and an [`IndexRow`] shows an index entry's row and an
    /// older entry's (read from the execution) alike; an unknown encoding reads the execution,
    /// a damaged one is an error, not a panic.
    #[test]
    fn index_rows_read_new_and_old_entries_alike() {
        let whole = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        let summary = whole.index_summary();
        let written_before = r#"1{"r":3,"l":{"team":"hr"},"c":1000,"u":1100,"b":"ana@example.com","pa":"p1","p":[{"i":"r2","t":"gate","p":{"s":1005,"u":["ana@example.com"],"g":["hr"],"a":[["bob@example.com",""]],"n":1}}]}"#;
        assert_eq!(String::from_utf8_lossy(&summary), written_before);
        let row = IndexRow::from_index("7hQ2", "hr.ops", "onboard", State::Paused, &summary)
            .expect("reads")
            .expect("a summary this version reads");
        let old = IndexRow::from_stored(&whole.to_stored()).expect("from the execution");
        assert!(matches!(old, IndexRow::Stored(_)));
        for r in [&row, &old] {
            let v = r.view().expect("view");
            assert_eq!(
                (v.id, v.namespace, v.flow_id, v.state),
                ("7hQ2", "hr.ops", "onboard", State::Paused)
            );
            let s = &v.summary;
            assert_eq!(
                (s.flow_revision, s.created_ms, s.updated_ms, s.ended_ms),
                (3, 1000, 1100, None)
            );
            assert_eq!(s.labels.0, vec![(Cow::Borrowed("team"), Cow::Borrowed("hr"))]);
            assert_eq!(
                (s.started_by.as_ref(), s.parent.as_deref()),
                ("ana@example.com", Some("p1"))
            );
            assert_eq!(s.paused.len(), 1);
            let p = &s.paused[0];
            assert_eq!((p.id.as_ref(), p.task_id.as_ref()), ("r2", "gate"));
            let pause = p.pause.as_ref().expect("pause");
            assert_eq!(pause.since_ms, 1005);
            assert_eq!(pause.users, vec![Text::of("ana@example.com")]);
            assert_eq!(pause.approved, vec![(Text::of("bob@example.com"), Text::of(""))]);
            assert_eq!(pause.reminder_count, 1);
        }
        // Strings are borrowed from the entry unless JSON escapes them.
        let escaped = br#"1{"r":1,"l":{"k":"a\"b"},"b":"plain"}"#;
        let row = IndexRow::from_index("x", "n", "f", State::Paused, escaped)
            .unwrap()
            .unwrap();
        let v = row.view().expect("view");
        assert!(matches!(v.summary.started_by, Cow::Borrowed("plain")));
        assert_eq!(v.summary.labels.0[0].1, "a\"b");
        assert_eq!(IndexRow::from_index("x", "n", "f", State::Paused, &[]), Ok(None));
        assert_eq!(IndexRow::from_index("x", "n", "f", State::Paused, &[0x7f, 1]), Ok(None));
        let damaged = IndexRow::from_index("x", "n", "f", State::Paused, &summary[..summary.len() / 2])
            .expect("kept")
            .expect("this version's tag");
        assert!(damaged.view().is_err());
    }

    /// Records written before compression (tag byte + plain MessagePack) read as before, whole
    /// and as summaries; records as this version writes them are the same MessagePack,
    /// compressed, and smaller.
    #[test]
    fn plain_msgpack_records_still_read_and_new_ones_are_compressed() {
        let whole = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        let mut plain = vec![MSGPACK_V1];
        plain.extend(rmp_serde::to_vec_named(&whole).expect("msgpack"));
        assert_eq!(Execution::from_stored(&plain).expect("plain msgpack"), whole);
        let packed = whole.to_stored();
        assert_eq!(packed[0], MSGPACK_LZ4_V1);
        assert!(packed.len() < plain.len(), "{} >= {}", packed.len(), plain.len());
        assert_eq!(unpack_lz4(&packed[1..]).expect("unpacked"), plain[1..]);
        assert_eq!(
            ExecutionSummary::from_stored(&plain).expect("summary of plain"),
            ExecutionSummary::from_stored(&packed).expect("summary of packed")
        );
        // A small record is not worth compressing and stays plain.
        let small = LogLine {
            seq: 1,
            execution_id: "e1".into(),
            task_run_id: "r1".into(),
            task_id: "a".into(),
            level: "INFO".into(),
            message: "hi".into(),
            time_ms: 5,
        };
        assert_eq!(small.to_stored()[0], MSGPACK_V1);
        // A damaged header (a length no block of this size can give) is an error, not an
        // allocation of that length.
        let mut bad = packed.clone();
        bad[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Execution::from_stored(&bad).unwrap_err().contains("cannot come from"));
        let mut bad = packed.clone();
        // One byte more than the MessagePack holds.
        bad[1..5].copy_from_slice(&(plain.len() as u32).to_le_bytes());
        assert!(Execution::from_stored(&bad).is_err());
        assert!(Execution::from_stored(&packed[..4]).is_err());
    }

    /// The previous version wrote every field, empty or not; this one leaves out fields at
    /// their default (None, empty, 0, false), which halves a paused execution. Records with
    /// every field written still read, whole and as summaries, to the same values.
    #[test]
    fn fields_at_their_default_are_left_out_and_records_with_them_still_read() {
        let whole = Execution::from_stored(OLD_JSON.as_bytes()).expect("old JSON record");
        // The previous version's MessagePack: every field of the JSON record, nulls included.
        let mut explicit = vec![MSGPACK_V1];
        let json: serde_json::Value = serde_json::from_str(OLD_JSON).expect("JSON");
        explicit.extend(rmp_serde::to_vec_named(&json).expect("msgpack"));
        assert_eq!(Execution::from_stored(&explicit).expect("explicit fields"), whole);
        let slim = whole.to_stored();
        let slim_plain = unpack_lz4(&slim[1..]).expect("unpacked");
        assert!(
            slim_plain.len() < explicit.len(),
            "{} >= {}",
            slim_plain.len(),
            explicit.len()
        );
        let has_key = |bytes: &[u8], key: &str| bytes.windows(key.len()).any(|w| w == key.as_bytes());
        assert!(has_key(&explicit, "child_execution_id"));
        for absent in [
            "child_execution_id",
            "next_check_ms",
            "retry_decided",
            "escalation_level",
        ] {
            assert!(!has_key(&slim_plain, absent), "{absent} is written");
        }
        assert_eq!(Execution::from_stored(&slim).expect("slim record"), whole);
        assert_eq!(
            ExecutionSummary::from_stored(&explicit).expect("summary of explicit"),
            ExecutionSummary::from_stored(&slim).expect("summary of slim")
        );
    }

    #[test]
    fn log_lines_read_in_both_encodings() {
        let old = r#"{"seq":2,"execution_id":"e1","task_run_id":"r1","task_id":"a","level":"INFO","message":"hi","time_ms":5}"#;
        let line = LogLine::from_stored(old.as_bytes()).unwrap();
        assert_eq!(line.message, "hi");
        let stored = line.to_stored();
        assert_eq!(stored[0], MSGPACK_V1);
        assert_eq!(LogLine::from_stored(&stored).unwrap(), line);
    }

    #[test]
    fn unknown_or_damaged_records_are_errors_not_panics() {
        assert!(Execution::from_stored(&[]).unwrap_err().contains("empty"));
        assert!(Execution::from_stored(&[0x7f, 1, 2]).unwrap_err().contains("0x7f"));
        let mut stored = Execution::from_stored(OLD_JSON.as_bytes()).unwrap().to_stored();
        stored.truncate(stored.len() / 2);
        assert!(Execution::from_stored(&stored).is_err());
        assert!(Execution::from_stored(&OLD_JSON.as_bytes()[..40]).is_err());
    }
}
