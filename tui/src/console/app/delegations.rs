//! Out of office from the console: the delegations you give, receive or administer (`D`), a
//! form for a new one (`n`) and revoking one (`x`, confirmed). The daemon checks every rule
//! (dates, who may delegate for whom) and audits each change; the console only asks and shows.

use std::cell::Cell;

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::form::Form;
use super::super::messages::{Command, RpcError};
use super::{App, ConfirmAction, LoadState, Popup, SubmitStatus, View};

#[derive(Debug, Default)]
pub struct DelegationsState {
    pub items: Vec<pb::Delegation>,
    pub state: LoadState,
    /// Revoked and ended ones too (`a` toggles).
    pub all: bool,
    pub cursor: usize,
    pub offset: Cell<usize>,
}

impl DelegationsState {
    pub fn current(&self) -> Option<&pb::Delegation> {
        self.items.get(self.cursor)
    }

    fn reload(&mut self) -> Vec<Command> {
        self.state = LoadState::Loading;
        vec![Command::ListDelegations { all: self.all }]
    }
}

/// The new-delegation form.
#[derive(Debug)]
pub struct DelegateState {
    pub form: Form,
    pub status: SubmitStatus,
    pub scroll: Cell<usize>,
}

fn spec(id: &str, name: &str, kind: &str, required: bool, description: &str) -> pb::InputSpec {
    pb::InputSpec {
        id: id.into(),
        display_name: name.into(),
        r#type: kind.into(),
        required,
        description: description.into(),
        ..Default::default()
    }
}

/// The fields of `tollgate delegate`, typed so the form checks them as it does flow inputs.
pub fn delegate_form() -> Form {
    Form::new(&[
        spec("to", "Delegate to", "EMAIL", true, "Who may decide for you meanwhile."),
        spec("from", "First day", "DATE", false, "YYYY-MM-DD (UTC); empty: today."),
        spec("until", "Last day", "DATE", true, "YYYY-MM-DD (UTC), included."),
        spec(
            "namespace",
            "Namespace",
            "STRING",
            false,
            "Only decisions in this namespace and below; empty: every namespace.",
        ),
        spec(
            "for",
            "For user",
            "STRING",
            false,
            "Delegate someone else's decisions (needs the admin role); empty: your own.",
        ),
    ])
}

impl App {
    pub(super) fn open_delegations(&mut self) -> Vec<Command> {
        let mut state = DelegationsState::default();
        let cmds = state.reload();
        self.views.push(View::Delegations(state));
        cmds
    }

    pub(super) fn handle_delegations(&mut self, action: Action) -> Vec<Command> {
        let Some(View::Delegations(d)) = self.views.last_mut() else {
            return vec![];
        };
        if super::move_cursor(&mut d.cursor, d.items.len(), 1, action) {
            return vec![];
        }
        match action {
            Action::Refresh => return d.reload(),
            Action::ShowAll => {
                d.all = !d.all;
                return d.reload();
            }
            Action::New => {
                self.views.push(View::Delegate(DelegateState {
                    form: delegate_form(),
                    status: SubmitStatus::Editing,
                    scroll: Cell::new(0),
                }));
            }
            Action::Revoke => {
                if let Some(cur) = d.current().filter(|c| c.revoked_ms == 0) {
                    self.popup = Some(Popup::Confirm(ConfirmAction::RevokeDelegation {
                        id: cur.id.clone(),
                        what: format!("{} -> {}", cur.from_user, cur.to_user),
                    }));
                } else if d.current().is_some() {
                    self.error("that delegation is already revoked");
                }
            }
            Action::Back => return self.close_view(),
            _ => {}
        }
        vec![]
    }

    pub(super) fn handle_delegate_form(&mut self, action: Action) -> Vec<Command> {
        let request = self.request_id();
        let Some(View::Delegate(state)) = self.views.last_mut() else {
            return vec![];
        };
        match super::form_key(&mut state.form, &mut state.status, action, request) {
            super::FormKey::Back => {
                self.views.pop();
            }
            super::FormKey::Submit => {
                let v = state.form.values();
                let get = |k: &str| v.get(k).cloned().unwrap_or_default();
                return vec![Command::CreateDelegation {
                    request,
                    req: pb::CreateDelegationRequest {
                        to_user: get("to"),
                        from_date: get("from"),
                        until_date: get("until"),
                        namespace: get("namespace"),
                        for_user: get("for"),
                    },
                }];
            }
            super::FormKey::Done => {}
        }
        vec![]
    }

    pub(super) fn apply_delegations(&mut self, result: Result<Vec<pb::Delegation>, RpcError>) {
        for v in &mut self.views {
            if let View::Delegations(d) = v {
                match &result {
                    Ok(items) => {
                        d.items = items.clone();
                        d.cursor = d.cursor.min(d.items.len().saturating_sub(1));
                        d.state = LoadState::Loaded;
                    }
                    Err(e) => d.state = LoadState::Failed(e.text()),
                }
            }
        }
    }

    pub(super) fn apply_delegation_created(
        &mut self,
        request: u64,
        result: Result<pb::Delegation, RpcError>,
    ) -> Vec<Command> {
        let Some(View::Delegate(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.status != SubmitStatus::Submitting(request) {
            return vec![];
        }
        match result {
            Ok(d) => {
                self.views.pop();
                self.info(format!(
                    "delegation {} created: {} decides for {}",
                    d.id, d.to_user, d.from_user
                ));
                self.reload_delegations()
            }
            // The daemon's refusal (a date in the past, no right to delegate for that user)
            // stays above the form, which keeps what was typed.
            Err(e) => {
                state.form.apply_errors(&[pb::InputError {
                    input_id: String::new(),
                    message: e.text(),
                }]);
                state.status = SubmitStatus::Editing;
                vec![]
            }
        }
    }

    pub(super) fn apply_delegation_revoked(&mut self, result: Result<pb::Delegation, RpcError>) -> Vec<Command> {
        match result {
            Ok(d) => {
                self.info(format!("delegation {} revoked", d.id));
                self.reload_delegations()
            }
            Err(e) => {
                self.error(format!("not revoked: {}", e.text()));
                vec![]
            }
        }
    }

    fn reload_delegations(&mut self) -> Vec<Command> {
        match self.views.last_mut() {
            Some(View::Delegations(d)) => d.reload(),
            _ => vec![],
        }
    }
}
