//! The audit screen: latest decisions, filtered by user or execution.

use std::cell::Cell;

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::messages::{Command, RpcError};
use super::{App, LoadState, Screen};

/// How many records one view asks for.
const PAGE: u32 = 500;

#[derive(Debug, Default)]
pub struct AuditState {
    pub records: Vec<pb::AuditRecord>,
    pub state: LoadState,
    pub user: String,
    pub execution_id: String,
    pub cursor: usize,
    pub offset: Cell<usize>,
    pub page: Cell<usize>,
}

impl AuditState {
    pub(super) fn reload(&mut self) -> Vec<Command> {
        self.state = LoadState::Loading;
        vec![Command::ListAudit {
            user: self.user.clone(),
            execution_id: self.execution_id.clone(),
        }]
    }

    pub(super) fn apply(&mut self, r: Result<Vec<pb::AuditRecord>, RpcError>) {
        match r {
            Ok(mut records) => {
                records.sort_by_key(|r| std::cmp::Reverse(r.seq));
                self.records = records;
                self.cursor = self.cursor.min(self.records.len().saturating_sub(1));
                self.state = LoadState::Loaded;
            }
            Err(e) if e.code == tonic::Code::Unimplemented => {
                self.records.clear();
                self.state = LoadState::Failed("This daemon does not serve the audit log yet (UNIMPLEMENTED).".into());
            }
            Err(e) => self.state = LoadState::Failed(e.text()),
        }
    }

    pub fn current(&self) -> Option<&pb::AuditRecord> {
        self.records.get(self.cursor)
    }

    pub fn limit() -> u32 {
        PAGE
    }
}

impl App {
    pub(super) fn handle_audit(&mut self, action: Action) -> Vec<Command> {
        let a = &mut self.audit;
        if super::move_cursor(&mut a.cursor, a.records.len(), a.page.get(), action) {
            return vec![];
        }
        match action {
            Action::Refresh => return a.reload(),
            Action::FilterUser => {
                if let Some(u) = a.current().map(|r| r.user.clone()) {
                    a.user = u;
                    a.cursor = 0;
                    return a.reload();
                }
            }
            Action::FilterExecution => {
                if let Some(e) = a.current().map(|r| r.execution_id.clone()).filter(|e| !e.is_empty()) {
                    a.execution_id = e;
                    a.cursor = 0;
                    return a.reload();
                }
            }
            Action::ClearFilters => {
                a.user.clear();
                a.execution_id.clear();
                return a.reload();
            }
            Action::Open => {
                if let Some(e) = a.current().map(|r| r.execution_id.clone()).filter(|e| !e.is_empty()) {
                    return self.open_detail(e);
                }
            }
            Action::Back => self.screen = Screen::Executions,
            _ => {}
        }
        vec![]
    }
}
