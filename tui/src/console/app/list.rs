//! The executions list: movement, selection, filter, tabs, and opening other views from it.

use super::super::action::Action;
use super::super::exec_list::SortOrder;
use super::super::exec_store::ExecRow;
use super::super::form::Edit;
use super::super::messages::Command;
use super::{App, ConfirmAction, DetailState, FormGroup, LogsState, Popup, ResumeState, View};

fn group_of(r: &ExecRow) -> Option<FormGroup> {
    r.pause().map(|p| FormGroup {
        namespace: r.namespace.clone(),
        flow_id: r.flow_id.clone(),
        task_id: p.task_id.clone(),
        form_key: p.form_key.clone(),
        count: 1,
    })
}

pub(super) fn edit_text(input: &mut super::super::text_input::TextInput, e: Edit) {
    match e {
        Edit::Insert(c) => input.insert(c),
        Edit::Backspace => input.backspace(),
        Edit::Delete => input.delete(),
        Edit::Left => input.left(),
        Edit::Right => input.right(),
        Edit::Home => input.home(),
        Edit::End => input.end(),
        Edit::ClearLine => input.clear_before(),
        Edit::DeleteWord => input.delete_word(),
        _ => {}
    }
}

impl App {
    pub(super) fn handle_list(&mut self, action: Action) -> Vec<Command> {
        let store = &self.store;
        let list = &mut self.list;
        match action {
            Action::Down => list.move_by(store, 1),
            Action::Up => list.move_by(store, -1),
            Action::PageDown => list.page(store, true),
            Action::PageUp => list.page(store, false),
            Action::Top => list.top(store),
            Action::Bottom => list.bottom(store),
            Action::Select => {
                list.toggle_select(store);
                list.move_by(store, 1);
            }
            Action::SelectAll => {
                list.select_all_visible(store);
                let n = list.selected.len();
                self.info(format!("{n} selected"));
            }
            Action::ClearSelection => list.selected.clear(),
            Action::NextTab | Action::PrevTab => {
                let tab = if action == Action::NextTab {
                    list.tab.next()
                } else {
                    list.tab.prev()
                };
                list.set_tab(tab);
                self.settle_tab();
                return self.ensure_tab_loaded(tab);
            }
            Action::Delegations => return self.open_delegations(),
            Action::Sort => {
                let next = match list.sort {
                    SortOrder::LongestWaiting => SortOrder::Newest,
                    SortOrder::Newest => SortOrder::LongestWaiting,
                };
                list.set_sort(next);
            }
            Action::Filter => list.filter_editing = true,
            Action::FilterDone => list.filter_editing = false,
            Action::FilterCancel => {
                list.filter_editing = false;
                list.filter.set("");
                list.mark_dirty();
            }
            Action::Edit(e) => {
                edit_text(&mut list.filter, e);
                list.mark_dirty();
            }
            Action::Back => {
                if list.filter.is_empty() {
                    self.quit = true;
                } else {
                    list.filter.set("");
                    list.mark_dirty();
                }
            }
            Action::Open => {
                if let Some(id) = list.current(store).map(|r| r.id.clone()) {
                    return self.open_detail(id);
                }
            }
            Action::Logs => {
                if let Some(id) = list.current(store).map(|r| r.id.clone()) {
                    return self.open_logs(id);
                }
            }
            Action::Resume => {
                let ids = self.target_ids();
                return self.open_resume(ids);
            }
            Action::Kill => {
                let ids = self.target_ids();
                self.confirm_kill(ids);
            }
            _ => {}
        }
        vec![]
    }

    /// The selection, or the highlighted execution when nothing is selected.
    fn target_ids(&self) -> Vec<String> {
        if self.list.selected.is_empty() {
            self.list
                .current(&self.store)
                .map(|r| vec![r.id.clone()])
                .unwrap_or_default()
        } else {
            self.list
                .selected_rows(&self.store)
                .iter()
                .map(|r| r.id.clone())
                .collect()
        }
    }

    pub(super) fn open_detail(&mut self, id: String) -> Vec<Command> {
        self.views.push(View::Detail(DetailState::new(id.clone())));
        vec![Command::GetExecution(id)]
    }

    pub(super) fn open_logs(&mut self, id: String) -> Vec<Command> {
        let stream = self.request_id();
        self.views.push(View::Logs(LogsState::new(id.clone(), stream)));
        vec![Command::TailLogs { stream, id }]
    }

    pub(super) fn confirm_kill(&mut self, ids: Vec<String>) {
        let live: Vec<String> = ids
            .into_iter()
            .filter(|id| {
                self.store.get(id).is_none_or(|r| {
                    !matches!(
                        r.state.as_str(),
                        "SUCCESS" | "WARNING" | "FAILED" | "KILLED" | "CANCELLED" | "SKIPPED"
                    )
                })
            })
            .collect();
        if live.is_empty() {
            self.error("Nothing to kill: the execution has already ended");
            return;
        }
        self.popup = Some(Popup::Confirm(ConfirmAction::Kill { ids: live }));
    }

    /// Opens one resume form for `ids`, or explains why not.
    pub(super) fn open_resume(&mut self, ids: Vec<String>) -> Vec<Command> {
        let rows: Vec<&ExecRow> = ids.iter().filter_map(|id| self.store.get(id)).collect();
        let paused: Vec<&ExecRow> = rows.iter().copied().filter(|r| r.is_paused()).collect();
        if paused.is_empty() {
            let text = match rows.as_slice() {
                [] => "Nothing to resume: no execution is highlighted".to_string(),
                [one] => format!("Nothing to resume: execution {} is {}, not PAUSED", one.id, one.state),
                many => format!(
                    "Nothing to resume: none of the {} selected executions is PAUSED",
                    many.len()
                ),
            };
            self.error(text);
            return vec![];
        }
        let mut groups: Vec<FormGroup> = Vec::new();
        for r in &paused {
            let Some(g) = group_of(r) else { continue };
            match groups.iter_mut().find(|x| {
                x.form_key == g.form_key
                    && x.flow_id == g.flow_id
                    && x.namespace == g.namespace
                    && x.task_id == g.task_id
            }) {
                Some(x) => x.count += 1,
                None => groups.push(g),
            }
        }
        let keys: std::collections::HashSet<&str> = groups.iter().map(|g| g.form_key.as_str()).collect();
        if keys.len() > 1 {
            let highlighted = self.list.current(&self.store).filter(|r| r.is_paused());
            let narrow_to = highlighted.and_then(group_of).or_else(|| groups.first().cloned());
            if let Some(narrow_to) = narrow_to {
                groups.sort_by_key(|g| std::cmp::Reverse(g.count));
                self.popup = Some(Popup::Mismatch { groups, narrow_to });
            }
            return vec![];
        }
        // HumanTask: refuse outright when the user may decide none of them, and say why.
        let mut denied = 0;
        if let Some((user, user_groups)) = &self.whoami {
            denied = paused
                .iter()
                // A delegate may decide what is assigned to whoever delegated to them.
                .filter(|r| {
                    r.pause().is_some_and(|p| {
                        !p.may_decide(user, user_groups)
                            && self
                                .list
                                .identity()
                                .is_none_or(|me| me.decides_for(&r.namespace, p).is_none())
                    })
                })
                .count();
            if denied == paused.len() {
                let p = paused[0].pause();
                let who = p.map(|p| p.assignees()).unwrap_or_default();
                let task = p.map(|p| p.task_id.clone()).unwrap_or_default();
                self.error(format!(
                    "Access denied to resume this execution: {user} is not assigned to task `{task}` (assignees: {who})"
                ));
                return vec![];
            }
        }
        let skipped = rows.len() - paused.len();
        let form_key = paused[0].pause().map(|p| p.form_key.clone()).unwrap_or_default();
        let specs = self.store.form(&form_key).cloned().unwrap_or_default();
        let state = ResumeState::new(&paused, &specs, skipped, denied);
        self.views.push(View::Resume(state));
        vec![]
    }

    /// Keeps only selected executions of the highlighted row's flow, task and form, then opens the form.
    pub(super) fn narrow_selection(&mut self, to: &FormGroup) -> Vec<Command> {
        let store = &self.store;
        self.list.selected.retain(|id| {
            store.get(id).and_then(group_of).is_some_and(|g| {
                g.form_key == to.form_key
                    && g.flow_id == to.flow_id
                    && g.namespace == to.namespace
                    && g.task_id == to.task_id
            })
        });
        self.info(format!(
            "selection narrowed to {} execution(s) of {}.{} / {}",
            self.list.selected.len(),
            to.namespace,
            to.flow_id,
            to.task_id
        ));
        let ids = self.target_ids();
        self.open_resume(ids)
    }
}
