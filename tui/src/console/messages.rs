//! Messages between the UI loop and the gRPC tasks: `Command`s go out, `Update`s come back.
//!
//! The loop never awaits the network: it sends a command and goes on drawing; the answer arrives
//! later as an update through the same channel as Watch events.

use std::collections::BTreeMap;

use tollgate_proto::v1 as pb;

/// The state filter tabs of the executions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    /// Paused executions the user may decide (the default view when there are any).
    Inbox,
    Paused,
    Running,
    Failed,
    All,
}

impl Tab {
    pub const ORDER: [Tab; 5] = [Tab::Inbox, Tab::Paused, Tab::Running, Tab::Failed, Tab::All];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Inbox => "INBOX",
            Tab::Paused => "PAUSED",
            Tab::Running => "RUNNING",
            Tab::Failed => "FAILED",
            Tab::All => "ALL",
        }
    }

    /// The states the tab lists (empty = every state), as the List RPC takes them.
    pub fn states(self) -> &'static [&'static str] {
        match self {
            Tab::Inbox | Tab::Paused => &["PAUSED"],
            Tab::Running => &["CREATED", "QUEUED", "RUNNING", "KILLING"],
            Tab::Failed => &["FAILED"],
            Tab::All => &[],
        }
    }

    /// The tab whose List load fills this one: the inbox is a view of the paused executions.
    pub fn load_key(self) -> Tab {
        match self {
            Tab::Inbox => Tab::Paused,
            other => other,
        }
    }

    /// Whether rows in `state` may belong to the tab (the inbox narrows it further).
    pub fn contains(self, state: &str) -> bool {
        let s = self.states();
        s.is_empty() || s.contains(&state)
    }

    pub fn next(self) -> Tab {
        let i = Tab::ORDER.iter().position(|t| *t == self).unwrap_or(0);
        Tab::ORDER[(i + 1) % Tab::ORDER.len()]
    }

    pub fn prev(self) -> Tab {
        let i = Tab::ORDER.iter().position(|t| *t == self).unwrap_or(0);
        Tab::ORDER[(i + Tab::ORDER.len() - 1) % Tab::ORDER.len()]
    }
}

/// A failed call, reduced to what the user needs to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: tonic::Code,
    pub message: String,
}

impl RpcError {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// One line for a message bar.
    pub fn text(&self) -> String {
        match self.code {
            tonic::Code::Unimplemented => {
                format!("the daemon does not offer this yet (UNIMPLEMENTED): {}", self.message)
            }
            tonic::Code::Unavailable => format!("daemon unreachable: {}", self.message),
            _ if self.message.is_empty() => format!("{:?}", self.code),
            _ => self.message.clone(),
        }
    }
}

impl From<tonic::Status> for RpcError {
    fn from(s: tonic::Status) -> Self {
        RpcError {
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

/// The connection to the daemon as the Watch stream sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Connected,
    /// Lost; the next attempt is in `retry_in_ms`.
    Lost {
        error: String,
        retry_in_ms: u64,
    },
}

/// Work for the gRPC side.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Load (and keep loaded across reconnects) the executions of a tab.
    LoadTab(Tab),
    GetExecution(String),
    /// Resume one execution or many with the same inputs, at `task_id` (empty: each first pause).
    /// What resuming would do next (a read).
    PreviewResume {
        request: u64,
        id: String,
        task_run_id: String,
        task_id: String,
        inputs: BTreeMap<String, String>,
    },
    BulkResume {
        request: u64,
        ids: Vec<String>,
        /// Execution id -> the paused task run the form decides.
        task_run_ids: BTreeMap<String, String>,
        task_id: String,
        inputs: BTreeMap<String, String>,
        /// The decision's comment, kept with the approval.
        comment: String,
    },
    Kill {
        request: u64,
        ids: Vec<String>,
    },
    /// Reject the paused task run each (execution id, task run id) names, with one reason.
    Reject {
        request: u64,
        targets: Vec<(String, String)>,
        reason: String,
    },
    ListFlows,
    GetFlow {
        namespace: String,
        id: String,
    },
    Start {
        request: u64,
        namespace: String,
        flow_id: String,
        inputs: BTreeMap<String, String>,
    },
    ListAudit {
        user: String,
        execution_id: String,
    },
    ListDelegations {
        all: bool,
    },
    CreateDelegation {
        request: u64,
        req: pb::CreateDelegationRequest,
    },
    RevokeDelegation {
        id: String,
    },
    /// Start tailing the logs of an execution as stream `stream` (replacing any other tail).
    TailLogs {
        stream: u64,
        id: String,
    },
    StopLogs,
}

/// Results and events for the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Connection(Connection),
    Whoami {
        user: String,
        groups: Vec<String>,
        /// (role, namespace prefix)
        roles: Vec<(String, String)>,
        /// (user, groups, namespace prefix) whose decisions this user takes by delegation
        acting_for: Vec<(String, Vec<String>, String)>,
    },
    /// One page of a tab (re)load; `first` starts it, `last` ends it.
    Page {
        tab: Tab,
        /// Whole executions, or row summaries (their pauses' forms are in `forms`).
        executions: Vec<pb::Execution>,
        /// The pause forms of a summary page, once per form key.
        forms: Vec<pb::PauseForm>,
        first: bool,
        last: bool,
    },
    /// [`Update::Page`] with its rows decoded straight from the wire (a loader's pages; see
    /// `console/pages.rs`).
    Rows {
        tab: Tab,
        rows: Vec<super::exec_store::ExecRow>,
        forms: Vec<pb::PauseForm>,
        first: bool,
        last: bool,
    },
    ListFailed {
        tab: Tab,
        error: RpcError,
    },
    Event(pb::ExecutionEvent),
    Execution(Result<pb::Execution, (String, RpcError)>),
    /// Per-id outcomes of a resume (one id or many), or why the call itself failed.
    Previewed {
        request: u64,
        result: Result<pb::ResumePreview, RpcError>,
    },
    Resumed {
        request: u64,
        result: Result<Vec<pb::BulkResult>, RpcError>,
    },
    Killed {
        request: u64,
        results: Vec<pb::BulkResult>,
    },
    Rejected {
        request: u64,
        results: Vec<pb::BulkResult>,
    },
    Flows(Result<Vec<pb::Flow>, RpcError>),
    Flow(Result<pb::Flow, RpcError>),
    Started {
        request: u64,
        result: Result<pb::Execution, RpcError>,
    },
    Audit(Result<Vec<pb::AuditRecord>, RpcError>),
    Delegations(Result<Vec<pb::Delegation>, RpcError>),
    DelegationCreated {
        request: u64,
        result: Result<pb::Delegation, RpcError>,
    },
    DelegationRevoked(Result<pb::Delegation, RpcError>),
    Logs {
        stream: u64,
        batch: pb::LogBatch,
    },
    /// The log tail failed; it retries on its own.
    LogsError {
        stream: u64,
        error: RpcError,
    },
}
