//! The executions list view: tab, filter, sort, the visible rows, cursor and selection.
//!
//! `visible` holds row positions into the store, recomputed only when something changed
//! (`settle`), so drawing 100,000 executions costs one window of rows, not a pass over all.

use std::cell::Cell;
use std::collections::HashSet;

use super::exec_store::{ExecRow, ExecStore};
use super::identity::Identity;
use super::messages::Tab;
use super::text_input::TextInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    /// Longest waiting first (oldest `since`).
    LongestWaiting,
    /// Most recent first.
    Newest,
}

#[derive(Debug)]
pub struct ExecList {
    pub tab: Tab,
    pub filter: TextInput,
    pub filter_editing: bool,
    pub sort: SortOrder,
    /// Store positions of the rows shown, in display order.
    pub visible: Vec<u32>,
    pub cursor: usize,
    /// The highlighted execution, so the cursor follows it when rows move.
    cursor_id: Option<String>,
    /// First row drawn; adjusted by the draw to keep the cursor on screen.
    pub offset: Cell<usize>,
    /// Rows the last draw had room for (page up/down).
    pub page_height: Cell<usize>,
    pub selected: HashSet<String>,
    /// Matching rows per tab (with the filter applied), in `Tab::ORDER`.
    pub counts: [usize; 5],
    /// Whose inbox the INBOX tab shows; empty until the daemon said who we are.
    identity: Option<Identity>,
    dirty: bool,
}

impl Default for ExecList {
    fn default() -> Self {
        ExecList {
            tab: Tab::Paused,
            filter: TextInput::default(),
            filter_editing: false,
            sort: SortOrder::LongestWaiting,
            visible: Vec::new(),
            cursor: 0,
            cursor_id: None,
            offset: Cell::new(0),
            page_height: Cell::new(10),
            selected: HashSet::new(),
            counts: [0; 5],
            identity: None,
            dirty: true,
        }
    }
}

fn matches(row: &ExecRow, terms: &[String]) -> bool {
    terms.iter().all(|t| row.haystack.contains(t.as_str()))
}

impl ExecList {
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn set_identity(&mut self, identity: Identity) {
        self.identity = Some(identity);
        self.dirty = true;
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Whether `row` is listed under `tab`.
    pub fn in_tab(&self, tab: Tab, row: &ExecRow) -> bool {
        match tab {
            Tab::Inbox => self.identity.as_ref().is_some_and(|me| me.decides(row)),
            other => other.contains(&row.state),
        }
    }

    /// Recomputes the visible rows if anything changed; keeps the cursor on the same execution.
    pub fn settle(&mut self, store: &ExecStore) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let terms: Vec<String> = self
            .filter
            .as_str()
            .to_lowercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        let mut counts = [0usize; 5];
        let mut visible = Vec::with_capacity(self.visible.len());
        for (i, row) in store.rows().iter().enumerate() {
            if !terms.is_empty() && !matches(row, &terms) {
                continue;
            }
            for (slot, tab) in Tab::ORDER.iter().enumerate() {
                if self.in_tab(*tab, row) {
                    counts[slot] += 1;
                }
            }
            if self.in_tab(self.tab, row) {
                visible.push(i as u32);
            }
        }
        let rows = store.rows();
        let key = |i: &u32| {
            let r = &rows[*i as usize];
            (r.since_ms(), r.id.as_str())
        };
        match self.sort {
            SortOrder::LongestWaiting => visible.sort_unstable_by(|a, b| key(a).cmp(&key(b))),
            SortOrder::Newest => visible.sort_unstable_by(|a, b| key(b).cmp(&key(a))),
        }
        self.visible = visible;
        self.counts = counts;
        let found = self
            .cursor_id
            .as_deref()
            .and_then(|id| store.position(id))
            .and_then(|pos| self.visible.iter().position(|v| *v as usize == pos));
        match found {
            Some(p) => self.cursor = p,
            None => {
                self.cursor = self.cursor.min(self.visible.len().saturating_sub(1));
                self.remember(store);
            }
        }
    }

    fn remember(&mut self, store: &ExecStore) {
        self.cursor_id = self.current(store).map(|r| r.id.clone());
    }

    /// The highlighted row.
    pub fn current<'s>(&self, store: &'s ExecStore) -> Option<&'s ExecRow> {
        self.visible
            .get(self.cursor)
            .and_then(|i| store.rows().get(*i as usize))
    }

    pub fn move_by(&mut self, store: &ExecStore, delta: isize) {
        if self.visible.is_empty() {
            return;
        }
        let last = self.visible.len() - 1;
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
        self.remember(store);
    }

    pub fn top(&mut self, store: &ExecStore) {
        self.cursor = 0;
        self.remember(store);
    }

    pub fn bottom(&mut self, store: &ExecStore) {
        self.cursor = self.visible.len().saturating_sub(1);
        self.remember(store);
    }

    pub fn page(&mut self, store: &ExecStore, down: bool) {
        let h = self.page_height.get().max(1) as isize;
        self.move_by(store, if down { h } else { -h });
    }

    pub fn toggle_select(&mut self, store: &ExecStore) {
        if let Some(id) = self.current(store).map(|r| r.id.clone())
            && !self.selected.remove(&id)
        {
            self.selected.insert(id);
        }
    }

    pub fn select_all_visible(&mut self, store: &ExecStore) {
        let rows = store.rows();
        self.selected
            .extend(self.visible.iter().map(|i| rows[*i as usize].id.clone()));
    }

    pub fn set_tab(&mut self, tab: Tab) {
        self.tab = tab;
        self.cursor = 0;
        self.cursor_id = None;
        self.offset.set(0);
        self.dirty = true;
    }

    pub fn set_sort(&mut self, sort: SortOrder) {
        self.sort = sort;
        self.dirty = true;
    }

    /// Selected rows that still exist, in display order first, then the others.
    pub fn selected_rows<'s>(&self, store: &'s ExecStore) -> Vec<&'s ExecRow> {
        let mut ids: Vec<&String> = self.selected.iter().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| store.get(id)).collect()
    }

    /// Keeps the cursor within the drawn window of `height` rows; returns the first row to draw.
    pub fn window(&self, height: usize) -> usize {
        self.page_height.set(height);
        let mut offset = self.offset.get();
        if self.cursor < offset {
            offset = self.cursor;
        } else if height > 0 && self.cursor >= offset + height {
            offset = self.cursor + 1 - height;
        }
        offset = offset.min(self.visible.len().saturating_sub(height.max(1)));
        self.offset.set(offset);
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_proto::v1 as pb;

    fn paused(id: &str, since: i64) -> pb::Execution {
        pb::Execution {
            id: id.into(),
            namespace: "ns".into(),
            flow_id: if id.starts_with('x') {
                "other".into()
            } else {
                "flow".into()
            },
            state: "PAUSED".into(),
            pauses: vec![pb::PauseInfo {
                task_id: "wait".into(),
                since_ms: since,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn sorts_by_waiting_time_and_follows_the_cursor() {
        let mut store = ExecStore::default();
        store.upsert(&paused("b", 20));
        store.upsert(&paused("a", 10));
        store.upsert(&paused("c", 30));
        let mut list = ExecList::default();
        list.settle(&store);
        let ids: Vec<&str> = list
            .visible
            .iter()
            .map(|i| store.rows()[*i as usize].id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        list.move_by(&store, 1);
        assert_eq!(list.current(&store).map(|r| r.id.as_str()), Some("b"));
        // A row ahead of the cursor disappears: the cursor stays on "b".
        let mut done = paused("a", 10);
        done.state = "SUCCESS".into();
        done.pauses.clear();
        store.upsert(&done);
        list.mark_dirty();
        list.settle(&store);
        assert_eq!(list.current(&store).map(|r| r.id.as_str()), Some("b"));
        assert_eq!(list.counts, [0, 2, 0, 0, 3]);
    }

    #[test]
    fn filter_terms_all_match_and_select_all_takes_visible_only() {
        let mut store = ExecStore::default();
        store.upsert(&paused("a1", 1));
        store.upsert(&paused("x2", 2));
        store.upsert(&paused("a3", 3));
        let mut list = ExecList::default();
        list.filter.set("FLOW ns");
        list.mark_dirty();
        list.settle(&store);
        assert_eq!(list.visible.len(), 2);
        list.select_all_visible(&store);
        assert!(list.selected.contains("a1") && list.selected.contains("a3") && !list.selected.contains("x2"));
    }

    #[test]
    fn window_keeps_cursor_visible() {
        let mut store = ExecStore::default();
        for i in 0..100 {
            store.upsert(&paused(&format!("e{i:03}"), i));
        }
        let mut list = ExecList::default();
        list.settle(&store);
        assert_eq!(list.window(10), 0);
        list.move_by(&store, 15);
        assert_eq!(list.window(10), 6);
        list.bottom(&store);
        assert_eq!(list.window(10), 90);
        list.top(&store);
        assert_eq!(list.window(10), 0);
    }
}
