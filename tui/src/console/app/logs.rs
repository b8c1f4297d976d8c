//! The live logs view of one execution: follow, level filter, search, wrap.

use tollgate_proto::v1 as pb;

use super::super::action::Action;
use super::super::messages::{Command, RpcError};
use super::super::text_input::TextInput;
use super::detail::Scroll;
use super::list::edit_text;
use super::{App, View};

/// Most lines kept per view; older ones are dropped (the daemon keeps them all).
const MAX_LINES: usize = 100_000;

/// Lowest level shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LevelFilter {
    All,
    Debug,
    Info,
    Warn,
    Error,
}

impl LevelFilter {
    pub fn next(self) -> Self {
        match self {
            LevelFilter::All => LevelFilter::Debug,
            LevelFilter::Debug => LevelFilter::Info,
            LevelFilter::Info => LevelFilter::Warn,
            LevelFilter::Warn => LevelFilter::Error,
            LevelFilter::Error => LevelFilter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            LevelFilter::All => "all",
            LevelFilter::Debug => "≥DEBUG",
            LevelFilter::Info => "≥INFO",
            LevelFilter::Warn => "≥WARN",
            LevelFilter::Error => "ERROR",
        }
    }

    fn rank(level: &str) -> LevelFilter {
        match level.to_ascii_uppercase().as_str() {
            "TRACE" => LevelFilter::All,
            "DEBUG" => LevelFilter::Debug,
            "WARN" | "WARNING" => LevelFilter::Warn,
            "ERROR" => LevelFilter::Error,
            _ => LevelFilter::Info,
        }
    }

    pub fn admits(self, level: &str) -> bool {
        LevelFilter::rank(level) >= self
    }
}

#[derive(Debug)]
pub struct LogsState {
    pub id: String,
    pub stream: u64,
    pub lines: Vec<pb::LogLine>,
    pub follow: bool,
    pub wrap: bool,
    pub level: LevelFilter,
    pub search: TextInput,
    pub search_editing: bool,
    /// `top` indexes the filtered lines.
    pub scroll: Scroll,
    /// The execution ended and every line arrived.
    pub ended: bool,
    pub error: Option<String>,
}

impl LogsState {
    pub fn new(id: String, stream: u64) -> Self {
        LogsState {
            id,
            stream,
            lines: Vec::new(),
            follow: true,
            wrap: false,
            level: LevelFilter::All,
            search: TextInput::default(),
            search_editing: false,
            scroll: Scroll::default(),
            ended: false,
            error: None,
        }
    }

    /// Lines passing the level filter.
    pub fn filtered(&self) -> Vec<&pb::LogLine> {
        self.lines.iter().filter(|l| self.level.admits(&l.level)).collect()
    }

    /// Whether `line` contains the search text (case-insensitive).
    pub fn is_match(&self, line: &pb::LogLine) -> bool {
        let q = self.search.as_str();
        !q.is_empty() && line.message.to_lowercase().contains(&q.to_lowercase())
    }

    fn jump(&mut self, forward: bool) -> bool {
        let lines = self.filtered();
        let top = self.scroll.top;
        let found = if forward {
            lines
                .iter()
                .enumerate()
                .skip(top + 1)
                .find(|(_, l)| self.is_match(l))
                .map(|(i, _)| i)
        } else {
            lines
                .iter()
                .enumerate()
                .take(top)
                .rev()
                .find(|(_, l)| self.is_match(l))
                .map(|(i, _)| i)
        };
        if let Some(i) = found {
            self.scroll.top = i;
            self.follow = false;
        }
        found.is_some()
    }

    fn first_match(&mut self) -> bool {
        let lines = self.filtered();
        match lines.iter().position(|l| self.is_match(l)) {
            Some(i) => {
                self.scroll.top = i;
                self.follow = false;
                true
            }
            None => false,
        }
    }
}

impl App {
    pub(super) fn handle_logs(&mut self, action: Action) -> Vec<Command> {
        let Some(View::Logs(state)) = self.views.last_mut() else {
            return vec![];
        };
        if state.search_editing {
            match action {
                Action::FilterDone => {
                    state.search_editing = false;
                    if !state.search.is_empty() && !state.first_match() {
                        let q = state.search.as_str().to_string();
                        self.error(format!("no line matches `{q}`"));
                    }
                }
                Action::FilterCancel => {
                    state.search_editing = false;
                    state.search.set("");
                }
                Action::Edit(e) => edit_text(&mut state.search, e),
                _ => {}
            }
            return vec![];
        }
        match action {
            Action::Back => return self.close_view(),
            Action::Follow => {
                // Leaving follow keeps the view where it is (the bottom), entering jumps there.
                state.follow = !state.follow;
                state.scroll.top = state.scroll.max.get();
            }
            Action::Wrap => state.wrap = !state.wrap,
            Action::Level => {
                state.level = state.level.next();
                state.scroll.top = 0;
            }
            Action::Search => state.search_editing = true,
            Action::NextMatch | Action::PrevMatch => {
                if !state.jump(action == Action::NextMatch) && !state.search.is_empty() {
                    self.error("no more matches");
                }
            }
            Action::Bottom => {
                state.follow = true;
                state.scroll.apply(action);
            }
            a => {
                if state.follow {
                    state.scroll.top = state.scroll.max.get();
                }
                if state.scroll.apply(a) && matches!(a, Action::Up | Action::PageUp | Action::Top) {
                    state.follow = false;
                }
            }
        }
        vec![]
    }

    pub(super) fn apply_logs(&mut self, stream: u64, batch: pb::LogBatch) {
        for v in &mut self.views {
            if let View::Logs(l) = v
                && l.stream == stream
            {
                let last = l.lines.last().map(|x| x.seq);
                l.lines
                    .extend(batch.lines.iter().filter(|x| last.is_none_or(|s| x.seq > s)).cloned());
                if l.lines.len() > MAX_LINES {
                    let drop = l.lines.len() - MAX_LINES;
                    l.lines.drain(..drop);
                    l.scroll.top = l.scroll.top.saturating_sub(drop);
                }
                l.ended |= batch.end;
                l.error = None;
            }
        }
    }

    pub(super) fn apply_logs_error(&mut self, stream: u64, error: RpcError) {
        for v in &mut self.views {
            if let View::Logs(l) = v
                && l.stream == stream
            {
                l.error = Some(error.text());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_filter_orders_levels() {
        assert!(LevelFilter::All.admits("TRACE"));
        assert!(LevelFilter::Info.admits("WARN"));
        assert!(!LevelFilter::Warn.admits("INFO"));
        assert!(LevelFilter::Error.admits("error"));
        assert_eq!(LevelFilter::Error.next(), LevelFilter::All);
    }
}
