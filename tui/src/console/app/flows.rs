//! The flows screen: list, source view, and starting an execution with the flow's inputs.

use std::cell::Cell;

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::form::Form;
use super::super::messages::{Command, RpcError};
use super::detail::Scroll;
use super::{App, LoadState, Screen, SubmitStatus, View};

#[derive(Debug, Default)]
pub struct FlowsState {
    pub flows: Vec<pb::Flow>,
    pub state: LoadState,
    pub cursor: usize,
    pub offset: Cell<usize>,
    pub page: Cell<usize>,
}

impl FlowsState {
    pub(super) fn apply(&mut self, r: Result<Vec<pb::Flow>, RpcError>) {
        match r {
            Ok(mut flows) => {
                flows.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
                self.flows = flows;
                self.cursor = self.cursor.min(self.flows.len().saturating_sub(1));
                self.state = LoadState::Loaded;
            }
            Err(e) => self.state = LoadState::Failed(e.text()),
        }
    }

    pub fn current(&self) -> Option<&pb::Flow> {
        self.flows.get(self.cursor)
    }

    fn movement(&mut self, action: Action) -> bool {
        super::move_cursor(&mut self.cursor, self.flows.len(), self.page.get(), action)
    }
}

#[derive(Debug)]
pub struct FlowSourceState {
    pub namespace: String,
    pub id: String,
    pub flow: Option<pb::Flow>,
    pub error: Option<String>,
    pub scroll: Scroll,
}

#[derive(Debug)]
pub struct StartState {
    pub form: Form,
    pub namespace: String,
    pub flow_id: String,
    pub status: SubmitStatus,
    pub scroll: Cell<usize>,
}

impl App {
    pub(super) fn handle_flows(&mut self, action: Action) -> Vec<Command> {
        if self.flows.movement(action) {
            return vec![];
        }
        match action {
            Action::Refresh => {
                self.flows.state = LoadState::Loading;
                vec![Command::ListFlows]
            }
            Action::Open => match self.flows.current() {
                Some(f) => {
                    let (namespace, id) = (f.namespace.clone(), f.id.clone());
                    let flow = (!f.source.is_empty()).then(|| f.clone());
                    let cmds = if flow.is_none() {
                        vec![Command::GetFlow {
                            namespace: namespace.clone(),
                            id: id.clone(),
                        }]
                    } else {
                        vec![]
                    };
                    self.views.push(View::FlowSource(FlowSourceState {
                        namespace,
                        id,
                        flow,
                        error: None,
                        scroll: Scroll::default(),
                    }));
                    cmds
                }
                None => vec![],
            },
            Action::StartFlow => {
                if let Some(f) = self.flows.current().cloned() {
                    self.open_start(&f);
                }
                vec![]
            }
            Action::Back => {
                self.screen = Screen::Executions;
                vec![]
            }
            _ => vec![],
        }
    }

    fn open_start(&mut self, f: &pb::Flow) {
        if f.disabled {
            self.error(format!("flow {}.{} is disabled", f.namespace, f.id));
            return;
        }
        self.views.push(View::Start(StartState {
            form: Form::new(&f.inputs),
            namespace: f.namespace.clone(),
            flow_id: f.id.clone(),
            status: SubmitStatus::Editing,
            scroll: Cell::new(0),
        }));
    }

    pub(super) fn handle_flow_source(&mut self, action: Action) -> Vec<Command> {
        let Some(View::FlowSource(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.scroll.apply(action) {
            return vec![];
        }
        match action {
            Action::Back => self.close_view(),
            Action::StartFlow => {
                let flow = state.flow.clone().or_else(|| {
                    let (ns, id) = (state.namespace.clone(), state.id.clone());
                    self.flows
                        .flows
                        .iter()
                        .find(|f| f.namespace == ns && f.id == id)
                        .cloned()
                });
                if let Some(f) = flow {
                    self.open_start(&f);
                }
                vec![]
            }
            _ => vec![],
        }
    }

    pub(super) fn apply_flow(&mut self, r: Result<pb::Flow, RpcError>) {
        for v in &mut self.views {
            if let View::FlowSource(s) = v {
                match &r {
                    Ok(f) if f.namespace == s.namespace && f.id == s.id => s.flow = Some(f.clone()),
                    Err(e) => s.error = Some(e.text()),
                    _ => {}
                }
            }
        }
    }

    pub(super) fn handle_start(&mut self, action: Action) -> Vec<Command> {
        let request = self.request_id();
        let Some(View::Start(state)) = self.views.last_mut() else {
            return vec![];
        };
        match super::form_key(&mut state.form, &mut state.status, action, request) {
            super::FormKey::Back => {
                self.views.pop();
            }
            super::FormKey::Submit => {
                return vec![Command::Start {
                    request,
                    namespace: state.namespace.clone(),
                    flow_id: state.flow_id.clone(),
                    inputs: state.form.values(),
                }];
            }
            super::FormKey::Done => {}
        }
        vec![]
    }

    pub(super) fn apply_started(&mut self, request: u64, result: Result<pb::Execution, RpcError>) -> Vec<Command> {
        let Some(View::Start(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.status != SubmitStatus::Submitting(request) {
            return vec![];
        }
        match result {
            Ok(e) => {
                self.views.pop();
                if self.store.upsert(&e) {
                    self.list.mark_dirty();
                }
                self.info(format!(
                    "started execution {} of {}.{}: {}",
                    e.id, e.namespace, e.flow_id, e.state
                ));
                let id = e.id.clone();
                self.views.push(View::Detail(super::DetailState::new(id.clone())));
                self.update_detail(e, false);
                vec![Command::GetExecution(id)]
            }
            Err(e) => {
                let errors = errors_from_message(&state.form, &e.text());
                state.form.apply_errors(&errors);
                state.status = SubmitStatus::Editing;
                vec![]
            }
        }
    }
}

/// Errors for the fields a daemon message names in backticks (`Invalid input for \`x\`…`): Start
/// answers a plain status, with no typed per-input errors as BulkResume has.
fn errors_from_message(form: &Form, message: &str) -> Vec<pb::InputError> {
    let mut out = Vec::new();
    for part in message.split("; ") {
        let named = form.fields.iter().find(|f| part.contains(&format!("`{}`", f.spec.id)));
        out.push(pb::InputError {
            input_id: named.map(|f| f.spec.id.clone()).unwrap_or_default(),
            message: part.to_string(),
        });
    }
    out
}
