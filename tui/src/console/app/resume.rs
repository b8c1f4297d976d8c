//! The resume form (one form for many executions) and the per-id result view.

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::exec_store::{ExecRow, Pause};
use super::super::form::Form;
use super::super::messages::{Command, RpcError};
use super::{App, ConfirmAction, Popup, View};

/// One execution a resume form acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    /// The paused task run this form decides (what the person saw when opening it).
    pub task_run_id: String,
}

/// Where a submitted form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitStatus {
    Editing,
    /// The call (BulkResume for a resume, Start for a start form) is in flight.
    Submitting(u64),
}

#[derive(Debug)]
pub struct ResumeState {
    pub form: Form,
    pub targets: Vec<Target>,
    /// The task all targets pause on, or empty when they differ (the daemon then picks each first pause).
    /// A single target always has one: the task of its first pause, the one the form shows.
    pub task_id: String,
    pub namespace: String,
    pub flow_id: String,
    /// The first target's pause: assignment and approvals shown above the form.
    pub pause: Option<Pause>,
    /// Lines explaining what is left out or will be refused.
    pub notes: Vec<String>,
    pub status: SubmitStatus,
    /// First line drawn (kept by the draw so the focused field stays visible).
    pub scroll: std::cell::Cell<usize>,
    /// The last preview (`^p`): what approving would do, as lines; and the request awaited.
    pub preview: Vec<String>,
    pub preview_request: Option<u64>,
}

impl ResumeState {
    pub fn new(paused: &[&ExecRow], specs: &[pb::InputSpec], skipped: usize, denied: usize) -> ResumeState {
        let targets: Vec<Target> = paused
            .iter()
            .map(|r| Target {
                id: r.id.clone(),
                task_run_id: r.pause().map(|p| p.task_run_id.clone()).unwrap_or_default(),
            })
            .collect();
        let first_task = paused[0].pause().map(|p| p.task_id.clone()).unwrap_or_default();
        let same_task = paused
            .iter()
            .all(|r| r.pause().is_some_and(|p| p.task_id == first_task));
        let mut notes = Vec::new();
        if skipped > 0 {
            notes.push(format!(
                "{skipped} selected execution(s) are not PAUSED and are left out"
            ));
        }
        if denied > 0 {
            notes.push(format!(
                "{denied} of them are assigned to others: the daemon will refuse those (access denied)"
            ));
        }
        let flows: std::collections::BTreeSet<String> = paused
            .iter()
            .map(|r| format!("{}.{}", r.namespace, r.flow_id))
            .collect();
        ResumeState {
            form: Form::for_decision(specs),
            targets,
            task_id: if same_task { first_task } else { String::new() },
            namespace: paused[0].namespace.clone(),
            flow_id: if flows.len() == 1 {
                paused[0].flow_id.clone()
            } else {
                format!("{} flows", flows.len())
            },
            pause: paused[0].pause().cloned(),
            notes,
            status: SubmitStatus::Editing,
            scroll: std::cell::Cell::new(0),
            preview: vec![],
            preview_request: None,
        }
    }
}

/// What happened to one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Resumed,
    Killed,
    Rejected,
    AccessDenied,
    NotPaused,
    InvalidInput,
    NotFound,
    Failed,
}

impl Outcome {
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Pending => "…",
            Outcome::Resumed => "resumed",
            Outcome::Killed => "killed",
            Outcome::Rejected => "rejected",
            Outcome::AccessDenied => "access denied",
            Outcome::NotPaused => "no longer paused",
            Outcome::InvalidInput => "invalid input",
            Outcome::NotFound => "not found",
            Outcome::Failed => "failed",
        }
    }

    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Outcome::Pending | Outcome::Resumed | Outcome::Killed | Outcome::Rejected
        )
    }

    fn of(r: &pb::BulkResult, success: Outcome) -> Outcome {
        if r.ok {
            return success;
        }
        match r.code.as_str() {
            "PERMISSION_DENIED" => Outcome::AccessDenied,
            "FAILED_PRECONDITION" => Outcome::NotPaused,
            "INVALID_ARGUMENT" => Outcome::InvalidInput,
            "NOT_FOUND" => Outcome::NotFound,
            _ => Outcome::Failed,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub id: String,
    pub outcome: Outcome,
    pub message: String,
}

/// Per-id outcomes of a bulk resume or kill; the state column stays live from Watch.
#[derive(Debug)]
pub struct BulkResultState {
    pub title: &'static str,
    pub request: u64,
    pub pending: bool,
    pub rows: Vec<ResultRow>,
    pub cursor: usize,
    pub offset: std::cell::Cell<usize>,
}

impl BulkResultState {
    pub fn pending(title: &'static str, request: u64, ids: &[String]) -> Self {
        BulkResultState {
            title,
            request,
            pending: true,
            rows: ids
                .iter()
                .map(|id| ResultRow {
                    id: id.clone(),
                    outcome: Outcome::Pending,
                    message: String::new(),
                })
                .collect(),
            cursor: 0,
            offset: std::cell::Cell::new(0),
        }
    }

    fn fill(&mut self, results: &[pb::BulkResult], success: Outcome) {
        self.pending = false;
        self.rows = results
            .iter()
            .map(|r| {
                let mut message = r.message.clone();
                for e in &r.input_errors {
                    if !message.contains(&e.message) {
                        message = if message.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{message}; {}", e.message)
                        };
                    }
                }
                ResultRow {
                    id: r.id.clone(),
                    outcome: Outcome::of(r, success),
                    message,
                }
            })
            .collect();
    }

    pub fn summary(&self) -> String {
        if self.pending {
            return format!("{} {} execution(s)…", self.title, self.rows.len());
        }
        let ok = self.rows.iter().filter(|r| !r.outcome.is_failure()).count();
        let failed = self.rows.len() - ok;
        let verb = match self.title {
            "Kill" => "killed",
            "Reject" => "rejected",
            _ => "resumed",
        };
        if failed == 0 {
            format!("{ok} {verb}")
        } else {
            format!("{ok} {verb}, {failed} failed (kept selected)")
        }
    }
}

impl App {
    pub(super) fn handle_resume(&mut self, action: Action) -> Vec<Command> {
        let Some(View::Resume(state)) = self.views.last_mut() else {
            return vec![];
        };
        if super::move_or_edit(&mut state.form, action) {
            return vec![];
        }
        match action {
            Action::Back => {
                self.views.pop();
                vec![]
            }
            Action::Preview => {
                // With the values typed so far; the daemon walks a copy (nothing changes) and
                // refuses values the resume would refuse.
                let Some(target) = state.targets.first().cloned() else {
                    return vec![];
                };
                let inputs = state.form.values();
                let task_id = state.task_id.clone();
                let request = self.request_id();
                let Some(View::Resume(state)) = self.views.last_mut() else {
                    return vec![];
                };
                state.preview_request = Some(request);
                state.preview = vec!["Previewing…".into()];
                vec![Command::PreviewResume {
                    request,
                    id: target.id,
                    task_run_id: target.task_run_id,
                    task_id,
                    inputs,
                }]
            }
            Action::Submit => {
                if state.status != SubmitStatus::Editing {
                    return vec![];
                }
                if !state.form.validate() {
                    return vec![];
                }
                let request = self.request_id();
                let Some(View::Resume(state)) = self.views.last_mut() else {
                    return vec![];
                };
                // One call for one execution or many: the daemon checks the inputs for each id and
                // answers every refusal with its code and typed per-input errors.
                state.status = SubmitStatus::Submitting(request);
                vec![Command::BulkResume {
                    request,
                    ids: state.targets.iter().map(|t| t.id.clone()).collect(),
                    task_run_ids: state
                        .targets
                        .iter()
                        .filter(|t| !t.task_run_id.is_empty())
                        .map(|t| (t.id.clone(), t.task_run_id.clone()))
                        .collect(),
                    task_id: state.task_id.clone(),
                    inputs: state.form.values(),
                    comment: state.form.comment(),
                }]
            }
            Action::Reject => {
                if state.status != SubmitStatus::Editing {
                    return vec![];
                }
                let reason = state.form.comment();
                if reason.is_empty() && state.pause.as_ref().is_some_and(|p| p.rejection_reason_required) {
                    state
                        .form
                        .comment_error("This flow requires a reason to reject: type it in Comment, then ^r");
                    return vec![];
                }
                // Rejecting ends the paused task run FAILED: confirm first, as kill does.
                self.popup = Some(Popup::Confirm(ConfirmAction::Reject {
                    targets: state.targets.clone(),
                    reason,
                }));
                vec![]
            }
            _ => vec![],
        }
    }

    fn resume_state_for(&mut self, status: SubmitStatus) -> Option<&mut ResumeState> {
        match self.views.last_mut() {
            Some(View::Resume(s)) if s.status == status => Some(s),
            _ => None,
        }
    }

    pub(super) fn apply_resumed(
        &mut self,
        request: u64,
        result: Result<Vec<pb::BulkResult>, RpcError>,
    ) -> Vec<Command> {
        let Some(state) = self.resume_state_for(SubmitStatus::Submitting(request)) else {
            return vec![];
        };
        let results = match result {
            Ok(results) => results,
            // The call itself failed (daemon unreachable, token refused): nothing was resumed,
            // the form stays with the reason above its fields.
            Err(e) => {
                state.form.apply_errors(&[pb::InputError {
                    input_id: String::new(),
                    message: e.text(),
                }]);
                state.status = SubmitStatus::Editing;
                return vec![];
            }
        };
        // Every id refused for its inputs: the form is still the place to fix them, each typed
        // error under its field (the message only when the daemon named no input).
        let all_invalid = !results.is_empty() && results.iter().all(|r| !r.ok && r.code == "INVALID_ARGUMENT");
        if all_invalid {
            let mut errors: Vec<pb::InputError> = Vec::new();
            for r in &results {
                let typed = if r.input_errors.is_empty() {
                    vec![pb::InputError {
                        input_id: String::new(),
                        message: r.message.clone(),
                    }]
                } else {
                    r.input_errors.clone()
                };
                for e in typed {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
            state.form.apply_errors(&errors);
            state.status = SubmitStatus::Editing;
            return vec![];
        }
        let ids: Vec<String> = state.targets.iter().map(|t| t.id.clone()).collect();
        self.views.pop();
        let mut view = BulkResultState::pending("Resume", request, &ids);
        view.fill(&results, Outcome::Resumed);
        self.list.selected = view
            .rows
            .iter()
            .filter(|r| r.outcome.is_failure())
            .map(|r| r.id.clone())
            .collect();
        self.info(view.summary());
        self.views.push(View::BulkResult(view));
        vec![]
    }

    /// Fills the per-id result view of a kill or reject; failed ones stay selected for a retry.
    pub(super) fn apply_bulk_results(&mut self, request: u64, results: Vec<pb::BulkResult>, success: Outcome) {
        for v in self.views.iter_mut() {
            if let View::BulkResult(r) = v
                && r.request == request
            {
                r.fill(&results, success);
                let summary = r.summary();
                self.list.selected = r
                    .rows
                    .iter()
                    .filter(|r| r.outcome.is_failure())
                    .map(|r| r.id.clone())
                    .collect();
                self.info(summary);
                return;
            }
        }
    }

    pub(super) fn handle_bulk_result(&mut self, action: Action) -> Vec<Command> {
        let Some(View::BulkResult(state)) = self.views.last_mut() else {
            return vec![];
        };
        if super::move_cursor(&mut state.cursor, state.rows.len(), 1, action) {
            return vec![];
        }
        match action {
            Action::Open => {
                if let Some(id) = state.rows.get(state.cursor).map(|r| r.id.clone()) {
                    return self.open_detail(id);
                }
            }
            Action::Logs => {
                if let Some(id) = state.rows.get(state.cursor).map(|r| r.id.clone()) {
                    return self.open_logs(id);
                }
            }
            Action::Back => return self.close_view(),
            _ => {}
        }
        vec![]
    }
}

impl App {
    pub(super) fn apply_previewed(
        &mut self,
        request: u64,
        result: Result<pb::ResumePreview, RpcError>,
    ) -> Vec<Command> {
        let Some(View::Resume(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.preview_request != Some(request) {
            return vec![];
        }
        state.preview_request = None;
        state.preview = match result {
            Ok(v) => crate::cli::executions::preview_text(&v)
                .lines()
                .map(String::from)
                .collect(),
            Err(e) => vec![format!("No preview: {}", e.text())],
        };
        vec![]
    }
}
