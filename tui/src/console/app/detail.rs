//! The execution detail view: the full execution, fetched with Get and kept live by Watch.

use std::cell::Cell;

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::messages::{Command, RpcError};
use super::{App, View};

/// A scroll position clamped to what the last draw could show.
#[derive(Debug, Default)]
pub struct Scroll {
    pub top: usize,
    /// Largest useful `top`, set by the draw from the content and area heights.
    pub max: Cell<usize>,
    /// Lines per page, set by the draw.
    pub page: Cell<usize>,
}

impl Scroll {
    /// Applies a movement action; false when the action is not a movement.
    pub fn apply(&mut self, action: Action) -> bool {
        let max = self.max.get();
        let page = self.page.get().max(1);
        self.top = match action {
            Action::Down => (self.top + 1).min(max),
            Action::Up => self.top.saturating_sub(1),
            Action::PageDown => (self.top + page).min(max),
            Action::PageUp => self.top.saturating_sub(page),
            Action::Top => 0,
            Action::Bottom => max,
            _ => return false,
        };
        true
    }
}

#[derive(Debug)]
pub struct DetailState {
    pub id: String,
    pub exec: Option<pb::Execution>,
    pub error: Option<String>,
    pub scroll: Scroll,
}

impl DetailState {
    pub fn new(id: String) -> Self {
        DetailState {
            id,
            exec: None,
            error: None,
            scroll: Scroll::default(),
        }
    }
}

impl App {
    pub(super) fn handle_detail(&mut self, action: Action) -> Vec<Command> {
        let Some(View::Detail(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.scroll.apply(action) {
            return vec![];
        }
        let id = state.id.clone();
        match action {
            Action::Back => self.close_view(),
            Action::Resume => self.open_resume(vec![id]),
            Action::Logs => self.open_logs(id),
            Action::Kill => {
                self.confirm_kill(vec![id]);
                vec![]
            }
            _ => vec![],
        }
    }

    pub(super) fn apply_execution(&mut self, r: Result<pb::Execution, (String, RpcError)>) {
        match r {
            Ok(e) => {
                if self.store.upsert(&e) {
                    self.list.mark_dirty();
                }
                self.update_detail(e, false);
            }
            Err((id, err)) => {
                for v in &mut self.views {
                    if let View::Detail(d) = v
                        && d.id == id
                    {
                        d.error = Some(err.text());
                    }
                }
            }
        }
    }

    /// Refreshes open detail views of this execution (a newer snapshot wins).
    pub(super) fn update_detail(&mut self, e: pb::Execution, deleted: bool) {
        for v in &mut self.views {
            if let View::Detail(d) = v
                && d.id == e.id
            {
                if deleted {
                    d.error = Some("this execution was deleted".into());
                } else if d.exec.as_ref().is_none_or(|old| old.updated_ms <= e.updated_ms) {
                    d.exec = Some(e.clone());
                    d.error = None;
                }
            }
        }
    }
}
