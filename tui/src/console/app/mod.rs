//! The console's state and how actions and updates change it.
//!
//! `App` never touches the network or the terminal: `handle` turns an [`Action`] into state
//! changes plus [`Command`]s for the gRPC tasks, `apply` folds an [`Update`] in. Both are plain
//! functions of the state, which is what the snapshot tests drive.

mod audit;
mod delegations;
mod detail;
mod flows;
mod list;
mod logs;
mod resume;

use std::collections::{HashMap, HashSet};

pub use audit::AuditState;
pub use delegations::{DelegateState, DelegationsState};
pub use detail::DetailState;
pub use flows::{FlowSourceState, FlowsState, StartState};
pub use logs::{LevelFilter, LogsState};
pub use resume::{BulkResultState, Outcome, ResultRow, ResumeState, SubmitStatus, Target};

use super::action::{Action, Ctx};
use super::exec_list::ExecList;
use super::exec_store::ExecStore;
use super::identity::Identity;
use super::messages::{Command, Connection, Tab, Update};
use super::theme::Theme;

/// The top-level screens (`1`, `2`, `3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Executions,
    Flows,
    Audit,
}

/// A view opened on top of a screen; `esc` closes it.
#[derive(Debug)]
pub enum View {
    Detail(DetailState),
    Resume(ResumeState),
    BulkResult(BulkResultState),
    Logs(LogsState),
    FlowSource(FlowSourceState),
    Start(StartState),
    Delegations(DelegationsState),
    Delegate(DelegateState),
}

/// What a confirmation popup will do.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmAction {
    Kill {
        ids: Vec<String>,
    },
    /// Reject the pauses the resume form decides, with the comment typed there as the reason.
    Reject {
        targets: Vec<Target>,
        reason: String,
    },
    /// End a delegation now; `what` is `ana -> bob` for the question.
    RevokeDelegation {
        id: String,
        what: String,
    },
}

/// A pause form group in a mixed selection.
#[derive(Debug, Clone, PartialEq)]
pub struct FormGroup {
    pub namespace: String,
    pub flow_id: String,
    pub task_id: String,
    pub form_key: String,
    pub count: usize,
}

/// A modal popup over the current view.
#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Confirm(ConfirmAction),
    /// The selection waits on different forms; `narrow_to` is the highlighted row's group.
    Mismatch {
        groups: Vec<FormGroup>,
        narrow_to: FormGroup,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Info,
    Error,
}

/// A one-line message above the footer, cleared by the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub text: String,
}

/// Loading state of something fetched once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LoadState {
    #[default]
    NotLoaded,
    Loading,
    Loaded,
    Failed(String),
}

/// The help screen over the context it explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelpState {
    pub ctx: Ctx,
    pub scroll: usize,
}

/// How the console was configured, for `App::new`.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub user: Option<String>,
    pub server: String,
    pub theme: Theme,
    pub now_ms: i64,
    pub screen: Screen,
}

#[derive(Debug)]
pub struct App {
    pub theme: Theme,
    /// The user named by the options (header) until Whoami answers.
    pub user: Option<String>,
    /// Identity from Auth.Whoami (for HumanTask assignment checks); `None` until known.
    pub whoami: Option<(String, Vec<String>)>,
    pub server: String,
    /// The clock views are drawn with (injected so snapshots are stable).
    pub now_ms: i64,
    pub connection: Connection,
    pub store: ExecStore,
    pub list: ExecList,
    pub tab_loads: HashMap<Tab, LoadState>,
    /// Ids seen by each tab reload in progress; rows of the tab not seen are dropped at its end.
    reloads: HashMap<Tab, HashSet<String>>,
    pub screen: Screen,
    pub views: Vec<View>,
    pub popup: Option<Popup>,
    pub help: Option<HelpState>,
    pub message: Option<Message>,
    pub flows: FlowsState,
    pub audit: AuditState,
    next_request: u64,
    /// Once the user changed tabs, or the console chose between INBOX and PAUSED, it stays put.
    tab_settled: bool,
    pub quit: bool,
    redraw: bool,
}

impl App {
    pub fn new(o: AppOptions) -> App {
        App {
            theme: o.theme,
            user: o.user,
            whoami: None,
            server: o.server,
            now_ms: o.now_ms,
            connection: Connection::Connecting,
            store: ExecStore::default(),
            list: ExecList::default(),
            tab_loads: HashMap::new(),
            reloads: HashMap::new(),
            screen: o.screen,
            views: Vec::new(),
            popup: None,
            help: None,
            message: None,
            flows: FlowsState::default(),
            audit: AuditState::default(),
            next_request: 1,
            tab_settled: false,
            quit: false,
            redraw: true,
        }
    }

    /// Commands to send once at start: load the default tab (and the first screen's data).
    pub fn start(&mut self) -> Vec<Command> {
        let mut cmds = self.ensure_tab_loaded(self.list.tab);
        cmds.extend(self.enter_screen(self.screen));
        cmds
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    /// Whether something changed since the last draw; resets the flag.
    pub fn take_redraw(&mut self) -> bool {
        std::mem::take(&mut self.redraw)
    }

    pub fn request_redraw(&mut self) {
        self.redraw = true;
    }

    /// Recomputes derived state (visible rows) after a batch of changes.
    pub fn settle(&mut self) {
        self.list.settle(&self.store);
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            kind: MessageKind::Info,
            text: text.into(),
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            kind: MessageKind::Error,
            text: text.into(),
        });
    }

    /// The user shown in the header: the name the caller configured, else Whoami's answer.
    pub fn user_label(&self) -> Option<&str> {
        self.user.as_deref().or(self.whoami.as_ref().map(|(u, _)| u.as_str()))
    }

    /// Where the keyboard is.
    pub fn ctx(&self) -> Ctx {
        if self.help.is_some() {
            return Ctx::Help;
        }
        match &self.popup {
            Some(Popup::Confirm(_)) => return Ctx::Confirm,
            Some(Popup::Mismatch { .. }) => return Ctx::Mismatch,
            None => {}
        }
        match self.views.last() {
            Some(View::Detail(_)) => Ctx::Detail,
            Some(View::Resume(r)) => Ctx::Form {
                kind: r.form.focused_kind(),
                last: r.form.on_last_field(),
                decide: true,
            },
            Some(View::Start(s)) => Ctx::Form {
                kind: s.form.focused_kind(),
                last: s.form.on_last_field(),
                decide: false,
            },
            Some(View::Delegate(s)) => Ctx::Form {
                kind: s.form.focused_kind(),
                last: s.form.on_last_field(),
                decide: false,
            },
            Some(View::Delegations(_)) => Ctx::Delegations,
            Some(View::BulkResult(_)) => Ctx::BulkResult,
            Some(View::Logs(l)) if l.search_editing => Ctx::LogsSearch,
            Some(View::Logs(_)) => Ctx::Logs,
            Some(View::FlowSource(_)) => Ctx::FlowSource,
            None => match self.screen {
                Screen::Executions if self.list.filter_editing => Ctx::ListFilter,
                Screen::Executions => Ctx::List,
                Screen::Flows => Ctx::Flows,
                Screen::Audit => Ctx::Audit,
            },
        }
    }

    /// Applies a user action; returns the calls to make.
    pub fn handle(&mut self, action: Action) -> Vec<Command> {
        self.redraw = true;
        self.settle();
        if action == Action::Quit {
            self.quit = true;
            return vec![];
        }
        // A message stays until the next key, so it is read before it goes.
        self.message = None;
        let cmds = if let Some(help) = &mut self.help {
            match action {
                Action::Back | Action::Help => self.help = None,
                Action::Down => help.scroll += 1,
                Action::Up => help.scroll = help.scroll.saturating_sub(1),
                _ => {}
            }
            vec![]
        } else if action == Action::Help && !self.ctx().takes_text() {
            self.help = Some(HelpState {
                ctx: self.ctx(),
                scroll: 0,
            });
            vec![]
        } else if self.popup.is_some() {
            self.handle_popup(action)
        } else if let Some(view) = self.views.last_mut() {
            match view {
                View::Detail(_) => self.handle_detail(action),
                View::Resume(_) => self.handle_resume(action),
                View::BulkResult(_) => self.handle_bulk_result(action),
                View::Logs(_) => self.handle_logs(action),
                View::FlowSource(_) => self.handle_flow_source(action),
                View::Start(_) => self.handle_start(action),
                View::Delegations(_) => self.handle_delegations(action),
                View::Delegate(_) => self.handle_delegate_form(action),
            }
        } else {
            match action {
                Action::ScreenExecutions => self.enter_screen(Screen::Executions),
                Action::ScreenFlows => self.enter_screen(Screen::Flows),
                Action::ScreenAudit => self.enter_screen(Screen::Audit),
                _ => match self.screen {
                    Screen::Executions => self.handle_list(action),
                    Screen::Flows => self.handle_flows(action),
                    Screen::Audit => self.handle_audit(action),
                },
            }
        };
        self.settle();
        cmds
    }

    fn enter_screen(&mut self, screen: Screen) -> Vec<Command> {
        self.screen = screen;
        match screen {
            Screen::Executions => vec![],
            Screen::Flows if self.flows.state == LoadState::NotLoaded => {
                self.flows.state = LoadState::Loading;
                vec![Command::ListFlows]
            }
            Screen::Audit if self.audit.state == LoadState::NotLoaded => self.audit.reload(),
            _ => vec![],
        }
    }

    fn handle_popup(&mut self, action: Action) -> Vec<Command> {
        let Some(popup) = self.popup.take() else {
            return vec![];
        };
        match (popup, action) {
            (Popup::Confirm(ConfirmAction::Kill { ids }), Action::Confirm) => {
                let request = self.request_id();
                self.info(format!("killing {} execution(s)…", ids.len()));
                self.views
                    .push(View::BulkResult(BulkResultState::pending("Kill", request, &ids)));
                vec![Command::Kill { request, ids }]
            }
            (Popup::Confirm(ConfirmAction::Reject { targets, reason }), Action::Confirm) => {
                let request = self.request_id();
                let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
                self.info(format!("rejecting {} execution(s)…", ids.len()));
                if matches!(self.views.last(), Some(View::Resume(_))) {
                    self.views.pop();
                }
                self.views
                    .push(View::BulkResult(BulkResultState::pending("Reject", request, &ids)));
                vec![Command::Reject {
                    request,
                    targets: targets.into_iter().map(|t| (t.id, t.task_run_id)).collect(),
                    reason,
                }]
            }
            (Popup::Confirm(ConfirmAction::RevokeDelegation { id, what }), Action::Confirm) => {
                self.info(format!("revoking delegation {id} ({what})…"));
                vec![Command::RevokeDelegation { id }]
            }
            (Popup::Mismatch { narrow_to, .. }, Action::Narrow) => self.narrow_selection(&narrow_to),
            (_, Action::Cancel | Action::Back) => vec![],
            (popup, _) => {
                self.popup = Some(popup);
                vec![]
            }
        }
    }

    /// Closes the top view; stops what it streamed.
    fn close_view(&mut self) -> Vec<Command> {
        match self.views.pop() {
            Some(View::Logs(_)) => vec![Command::StopLogs],
            Some(View::BulkResult(r)) => {
                // Failed ones stay selected so a retry is one `r` away.
                let failed: HashSet<String> = r
                    .rows
                    .iter()
                    .filter(|r| r.outcome.is_failure())
                    .map(|r| r.id.clone())
                    .collect();
                if !r.pending {
                    self.list.selected = failed;
                }
                vec![]
            }
            _ => vec![],
        }
    }

    /// Applies an update from the gRPC side; may answer with more calls.
    pub fn apply(&mut self, update: Update) -> Vec<Command> {
        self.redraw = true;
        match update {
            Update::Connection(c) => {
                self.connection = c;
                vec![]
            }
            Update::Whoami {
                user,
                groups,
                roles,
                acting_for,
            } => {
                self.list.set_identity(Identity {
                    user: user.clone(),
                    groups: groups.clone(),
                    roles,
                    acting_for,
                });
                self.whoami = Some((user, groups));
                self.open_inbox_if_waiting();
                vec![]
            }
            Update::Page {
                tab,
                executions,
                forms,
                first,
                last,
            } => {
                // Whole executions carry their pauses' forms: those first, as a page's.
                let mut forms = forms;
                let rows = executions
                    .into_iter()
                    .map(|mut e| {
                        for p in &mut e.pauses {
                            if !p.on_resume.is_empty() || !forms.iter().any(|f| f.form_key == p.form_key) {
                                forms.push(tollgate_proto::v1::PauseForm {
                                    form_key: p.form_key.clone(),
                                    on_resume: std::mem::take(&mut p.on_resume),
                                });
                            }
                        }
                        crate::console::exec_store::row_of(e)
                    })
                    .collect();
                self.apply_page(tab, rows, forms, first, last);
                vec![]
            }
            Update::Rows {
                tab,
                rows,
                forms,
                first,
                last,
            } => {
                self.apply_page(tab, rows, forms, first, last);
                vec![]
            }
            Update::ListFailed { tab, error } => {
                self.tab_loads.insert(tab, LoadState::Failed(error.text()));
                self.reloads.remove(&tab);
                vec![]
            }
            Update::Event(ev) => {
                if let Some(e) = ev.execution {
                    for seen in self.reloads.values_mut() {
                        seen.insert(e.id.clone());
                    }
                    let changed = if ev.deleted {
                        self.store.remove(&e.id)
                    } else {
                        self.store.upsert(&e)
                    };
                    if changed {
                        self.list.mark_dirty();
                    }
                    self.update_detail(e, ev.deleted);
                }
                vec![]
            }
            Update::Execution(r) => {
                self.apply_execution(r);
                vec![]
            }
            Update::Resumed { request, result } => self.apply_resumed(request, result),
            Update::Killed { request, results } => {
                self.apply_bulk_results(request, results, Outcome::Killed);
                vec![]
            }
            Update::Rejected { request, results } => {
                self.apply_bulk_results(request, results, Outcome::Rejected);
                vec![]
            }
            Update::Flows(r) => {
                self.flows.apply(r);
                vec![]
            }
            Update::Flow(r) => {
                self.apply_flow(r);
                vec![]
            }
            Update::Started { request, result } => self.apply_started(request, result),
            Update::Previewed { request, result } => self.apply_previewed(request, result),
            Update::Audit(r) => {
                self.audit.apply(r);
                vec![]
            }
            Update::Delegations(r) => {
                self.apply_delegations(r);
                vec![]
            }
            Update::DelegationCreated { request, result } => self.apply_delegation_created(request, result),
            Update::DelegationRevoked(r) => self.apply_delegation_revoked(r),
            Update::Logs { stream, batch } => {
                self.apply_logs(stream, batch);
                vec![]
            }
            Update::LogsError { stream, error } => {
                self.apply_logs_error(stream, error);
                vec![]
            }
        }
    }

    fn apply_page(
        &mut self,
        tab: Tab,
        rows: Vec<crate::console::exec_store::ExecRow>,
        forms: Vec<tollgate_proto::v1::PauseForm>,
        first: bool,
        last: bool,
    ) {
        // Before the rows: a summary row's pauses name their form by key only.
        for f in forms {
            self.store.add_form(f.form_key, f.on_resume);
        }
        if first {
            // Rows to check at the end exist only if the tab had rows when the load started;
            // a first load (no rows of the tab yet, e.g. 100,000 paused at start) keeps no set
            // of seen ids, saving a copy and two hash lookups per row.
            if self.store.rows().iter().any(|r| tab.contains(&r.state)) {
                self.reloads.insert(tab, HashSet::new());
            } else {
                self.reloads.remove(&tab);
            }
            // A retry after a failure shows as loading again; a reload of a loaded tab keeps its rows.
            if self.tab_loads.get(&tab) != Some(&LoadState::Loaded) {
                self.tab_loads.insert(tab, LoadState::Loading);
            }
        }
        if let Some(seen) = self.reloads.get_mut(&tab) {
            for r in &rows {
                seen.insert(r.id.clone());
            }
        }
        for r in rows {
            self.store.upsert_row(r);
        }
        if last {
            // Rows of this tab the reload did not return changed while we were not watching.
            if let Some(seen) = self.reloads.remove(&tab) {
                self.store.retain(|r| !tab.contains(&r.state) || seen.contains(&r.id));
            }
            self.tab_loads.insert(tab, LoadState::Loaded);
        }
        self.list.mark_dirty();
        if last {
            self.open_inbox_if_waiting();
        }
    }

    /// The console opens on the user's inbox when decisions wait for them: once both who they
    /// are and the paused executions are known, and only if they have not moved on themselves.
    fn open_inbox_if_waiting(&mut self) {
        if self.tab_settled || self.tab_loads.get(&Tab::Paused) != Some(&LoadState::Loaded) {
            return;
        }
        let Some(me) = self.list.identity() else {
            return;
        };
        self.tab_settled = true;
        if self.list.tab == Tab::Paused && self.store.rows().iter().any(|r| me.decides(r)) {
            self.list.set_tab(Tab::Inbox);
        }
    }

    /// Called when the user picks a tab: the console no longer chooses for them.
    pub(super) fn settle_tab(&mut self) {
        self.tab_settled = true;
    }

    fn ensure_tab_loaded(&mut self, tab: Tab) -> Vec<Command> {
        let tab = tab.load_key();
        let all_loaded = self.tab_loads.get(&Tab::All) == Some(&LoadState::Loaded);
        match self.tab_loads.get(&tab) {
            Some(LoadState::Loaded | LoadState::Loading) => vec![],
            _ if all_loaded => vec![],
            _ => {
                self.tab_loads.insert(tab, LoadState::Loading);
                vec![Command::LoadTab(tab)]
            }
        }
    }

    /// Advances the clock; true when something on screen shows a different time.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        let before = self.clock_signature();
        self.now_ms = now_ms;
        let changed = before != self.clock_signature();
        if changed {
            self.redraw = true;
        }
        changed
    }

    /// The time texts currently on screen (waiting times of the drawn rows).
    fn clock_signature(&self) -> Vec<String> {
        if self.screen != Screen::Executions || !self.views.is_empty() {
            return vec![];
        }
        let start = self.list.offset.get();
        let height = self.list.page_height.get();
        self.list
            .visible
            .iter()
            .skip(start)
            .take(height)
            .filter_map(|i| self.store.rows().get(*i as usize))
            .map(|r| super::time_fmt::duration(self.now_ms - r.since_ms()))
            .collect()
    }
}

/// The keys every form treats alike (moving between fields, editing the focused one); true when
/// `action` was one of them.
fn move_or_edit(form: &mut super::form::Form, action: Action) -> bool {
    match action {
        Action::FormNext => form.next(),
        Action::FormPrev => form.prev(),
        Action::Edit(e) => form.edit(e),
        _ => return false,
    }
    true
}

/// What a key did in a form sent as one request (a delegation, a start).
enum FormKey {
    /// Nothing more to do (a move, an edit, a key the form ignores).
    Done,
    Back,
    /// The form passed its client-side checks and is now in flight: send it.
    Submit,
}

/// Moves and edits apply to the form; Submit is taken only while editing and when the form
/// passes its client-side checks (an invalid form stays open with its errors), and marks it in
/// flight as `request`.
fn form_key(form: &mut super::form::Form, status: &mut SubmitStatus, action: Action, request: u64) -> FormKey {
    if move_or_edit(form, action) {
        return FormKey::Done;
    }
    match action {
        Action::Back => FormKey::Back,
        Action::Submit if *status == SubmitStatus::Editing && form.validate() => {
            *status = SubmitStatus::Submitting(request);
            FormKey::Submit
        }
        _ => FormKey::Done,
    }
}

/// Moves a list cursor over `len` rows (`page` rows per page); true when `action` was a move.
fn move_cursor(cursor: &mut usize, len: usize, page: usize, action: Action) -> bool {
    let last = len.saturating_sub(1);
    let page = page.max(1);
    *cursor = match action {
        Action::Down => (*cursor + 1).min(last),
        Action::Up => cursor.saturating_sub(1),
        Action::PageDown => (*cursor + page).min(last),
        Action::PageUp => cursor.saturating_sub(page),
        Action::Top => 0,
        Action::Bottom => last,
        _ => return false,
    };
    true
}
