//! Keys → actions. Each view declares its bindings as data; the same tables draw the footer and
//! the `?` help screen, so the keys shown are always the keys that work.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::form::{Edit, WidgetKind};

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Back,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Select,
    SelectAll,
    ClearSelection,
    NextTab,
    PrevTab,
    Filter,
    FilterDone,
    FilterCancel,
    Open,
    Resume,
    Kill,
    Logs,
    Sort,
    ScreenExecutions,
    ScreenFlows,
    ScreenAudit,
    /// Edit the focused text (form field, filter, search).
    Edit(Edit),
    FormNext,
    FormPrev,
    Submit,
    /// Resume form: what approving with the values typed so far would do (nothing changes).
    Preview,
    /// Resume form: reject the pause, with the comment as the reason (asks to confirm).
    Reject,
    Confirm,
    Cancel,
    /// Narrow a mixed selection to the highlighted execution's flow and task.
    Narrow,
    Follow,
    Wrap,
    Level,
    Search,
    NextMatch,
    PrevMatch,
    StartFlow,
    Refresh,
    /// Executions: open the delegations view (out of office).
    Delegations,
    /// Delegations: a new one (opens its form).
    New,
    /// Delegations: end the highlighted one now (asks to confirm).
    Revoke,
    /// Delegations: also list revoked and ended ones.
    ShowAll,
    FilterUser,
    FilterExecution,
    ClearFilters,
}

/// Where the keyboard is: decides which bindings apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    List,
    ListFilter,
    Detail,
    /// `decide`: a resume form (preview, reject and a comment apply), not a start form.
    Form {
        kind: Option<WidgetKind>,
        last: bool,
        decide: bool,
    },
    BulkResult,
    Logs,
    LogsSearch,
    Flows,
    FlowSource,
    Audit,
    Delegations,
    Help,
    Confirm,
    Mismatch,
}

impl Ctx {
    /// Whether unbound printable keys type text here.
    pub fn takes_text(self) -> bool {
        match self {
            Ctx::ListFilter | Ctx::LogsSearch => true,
            Ctx::Form { kind, .. } => matches!(
                kind,
                Some(WidgetKind::Text | WidgetKind::Number | WidgetKind::Area | WidgetKind::SelectCustom)
            ),
            _ => false,
        }
    }
}

/// A key: code plus the modifiers that matter (ctrl, alt; shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn k(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}
const fn c(ch: char) -> Key {
    k(KeyCode::Char(ch))
}
const fn ctrl(ch: char) -> Key {
    Key {
        code: KeyCode::Char(ch),
        mods: KeyModifiers::CONTROL,
    }
}

impl Key {
    fn matches(&self, ev: &KeyEvent) -> bool {
        let relevant = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        // Terminals report shift-tab as BackTab, sometimes with SHIFT: treat both the same.
        self.code == ev.code && self.mods == relevant
    }
}

/// One binding: keys, the action, and how help and footer describe it.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    /// How the keys are written (`j/↓`).
    pub label: &'static str,
    pub desc: &'static str,
    /// Shown in the footer (otherwise only in `?` help).
    pub footer: bool,
}

const fn b(keys: &'static [Key], action: Action, label: &'static str, desc: &'static str, footer: bool) -> Binding {
    Binding {
        keys,
        action,
        label,
        desc,
        footer,
    }
}

const DOWN: Binding = b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/↓", "move down", false);
const UP: Binding = b(&[c('k'), k(KeyCode::Up)], Action::Up, "k/↑", "move up", false);
const PAGE_DOWN: Binding = b(
    &[ctrl('d'), k(KeyCode::PageDown)],
    Action::PageDown,
    "^d/PgDn",
    "page down",
    false,
);
const PAGE_UP: Binding = b(
    &[ctrl('u'), k(KeyCode::PageUp)],
    Action::PageUp,
    "^u/PgUp",
    "page up",
    false,
);
const TOP: Binding = b(&[c('g'), k(KeyCode::Home)], Action::Top, "g", "top", false);
const BOTTOM: Binding = b(&[c('G'), k(KeyCode::End)], Action::Bottom, "G", "bottom", false);
const HELP: Binding = b(&[c('?')], Action::Help, "?", "help", true);
const BACK: Binding = b(&[k(KeyCode::Esc), c('q')], Action::Back, "esc/q", "back", true);
const SCREENS: [Binding; 3] = [
    b(&[c('1')], Action::ScreenExecutions, "1", "executions", false),
    b(&[c('2')], Action::ScreenFlows, "2", "flows", false),
    b(&[c('3')], Action::ScreenAudit, "3", "audit", false),
];

const LIST: &[Binding] = &[
    b(&[c(' ')], Action::Select, "space", "select", true),
    b(&[c('r')], Action::Resume, "r", "resume", true),
    b(&[k(KeyCode::Enter)], Action::Open, "enter", "detail", true),
    b(&[c('l')], Action::Logs, "l", "logs", true),
    b(&[c('K')], Action::Kill, "K", "kill", true),
    b(&[c('/')], Action::Filter, "/", "filter", true),
    b(&[k(KeyCode::Tab)], Action::NextTab, "tab", "state", true),
    b(
        &[k(KeyCode::BackTab)],
        Action::PrevTab,
        "S-tab",
        "previous state",
        false,
    ),
    b(&[c('a')], Action::SelectAll, "a", "select all visible", true),
    b(&[c('A')], Action::ClearSelection, "A", "clear selection", false),
    b(&[c('s')], Action::Sort, "s", "sort: longest waiting / newest", false),
    b(
        &[c('D')],
        Action::Delegations,
        "D",
        "delegations (out of office)",
        false,
    ),
    DOWN,
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    BOTTOM,
    SCREENS[0],
    SCREENS[1],
    SCREENS[2],
    HELP,
    b(&[c('q'), ctrl('c')], Action::Quit, "q", "quit", true),
    b(
        &[k(KeyCode::Esc)],
        Action::Back,
        "esc",
        "clear filter, else quit",
        false,
    ),
];

const TEXT_EDIT: &[Binding] = &[
    b(
        &[k(KeyCode::Backspace)],
        Action::Edit(Edit::Backspace),
        "bksp",
        "delete before cursor",
        false,
    ),
    b(
        &[k(KeyCode::Delete)],
        Action::Edit(Edit::Delete),
        "del",
        "delete at cursor",
        false,
    ),
    b(&[k(KeyCode::Left)], Action::Edit(Edit::Left), "←", "cursor left", false),
    b(
        &[k(KeyCode::Right)],
        Action::Edit(Edit::Right),
        "→",
        "cursor right",
        false,
    ),
    b(
        &[k(KeyCode::Home), ctrl('a')],
        Action::Edit(Edit::Home),
        "home/^a",
        "start of line",
        false,
    ),
    b(
        &[k(KeyCode::End), ctrl('e')],
        Action::Edit(Edit::End),
        "end/^e",
        "end of line",
        false,
    ),
    b(
        &[ctrl('u')],
        Action::Edit(Edit::ClearLine),
        "^u",
        "delete to start",
        false,
    ),
    b(&[ctrl('w')], Action::Edit(Edit::DeleteWord), "^w", "delete word", false),
];

const LIST_FILTER: &[Binding] = &[
    b(&[k(KeyCode::Enter)], Action::FilterDone, "enter", "keep filter", true),
    b(&[k(KeyCode::Esc)], Action::FilterCancel, "esc", "clear filter", true),
    b(&[k(KeyCode::Down)], Action::Down, "↓", "move down", false),
    b(&[k(KeyCode::Up)], Action::Up, "↑", "move up", false),
];

const DETAIL: &[Binding] = &[
    b(&[c('r')], Action::Resume, "r", "resume", true),
    b(&[c('l')], Action::Logs, "l", "logs", true),
    b(&[c('K')], Action::Kill, "K", "kill", true),
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "scroll", true),
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    BOTTOM,
    HELP,
    BACK,
];

const FORM: &[Binding] = &[
    b(&[ctrl('s')], Action::Submit, "^s", "submit", true),
    b(&[k(KeyCode::Tab)], Action::FormNext, "tab", "next field", true),
    b(&[k(KeyCode::Esc)], Action::Back, "esc", "cancel", true),
    b(
        &[k(KeyCode::BackTab)],
        Action::FormPrev,
        "S-tab",
        "previous field",
        true,
    ),
];
/// Resume forms only: see what approving with the values typed so far would do.
const FORM_DECIDE: &[Binding] = &[
    b(&[ctrl('p')], Action::Preview, "^p", "preview", true),
    b(&[ctrl('r')], Action::Reject, "^r", "reject", true),
];
const FORM_ENTER_NEXT: Binding = b(&[k(KeyCode::Enter)], Action::FormNext, "enter", "next field", false);
const FORM_ENTER_SUBMIT: Binding = b(
    &[k(KeyCode::Enter)],
    Action::Submit,
    "enter",
    "submit (last field)",
    true,
);
const FORM_BOOL: &[Binding] = &[
    b(
        &[c(' '), k(KeyCode::Left), k(KeyCode::Right)],
        Action::Edit(Edit::Toggle),
        "space",
        "toggle",
        true,
    ),
    b(&[c('y')], Action::Edit(Edit::Insert('y')), "y", "yes (true)", false),
    b(&[c('n')], Action::Edit(Edit::Insert('n')), "n", "no (false)", false),
];
const FORM_SELECT: &[Binding] = &[
    b(
        &[k(KeyCode::Right), k(KeyCode::Down), c(' ')],
        Action::Edit(Edit::Down),
        "←/→",
        "choose",
        true,
    ),
    b(
        &[k(KeyCode::Left), k(KeyCode::Up)],
        Action::Edit(Edit::Up),
        "←/↑",
        "previous choice",
        false,
    ),
];
const FORM_SELECT_CUSTOM: &[Binding] = &[
    b(&[k(KeyCode::Down)], Action::Edit(Edit::Down), "↑/↓", "choose", true),
    b(&[k(KeyCode::Up)], Action::Edit(Edit::Up), "↑", "previous choice", false),
];
const FORM_MULTI: &[Binding] = &[
    b(&[c(' ')], Action::Edit(Edit::Toggle), "space", "check", true),
    b(
        &[k(KeyCode::Down), c('j')],
        Action::Edit(Edit::Down),
        "↑/↓",
        "move",
        true,
    ),
    b(&[k(KeyCode::Up), c('k')], Action::Edit(Edit::Up), "↑", "move up", false),
];
const FORM_NUMBER: &[Binding] = &[
    b(&[k(KeyCode::Up)], Action::Edit(Edit::StepUp), "+/↑", "step up", true),
    b(
        &[k(KeyCode::Down)],
        Action::Edit(Edit::StepDown),
        "-/↓",
        "step down",
        true,
    ),
];
const FORM_AREA: &[Binding] = &[
    b(
        &[k(KeyCode::Enter)],
        Action::Edit(Edit::NewLine),
        "enter",
        "new line",
        true,
    ),
    b(&[k(KeyCode::Up)], Action::Edit(Edit::Up), "↑", "line up", false),
    b(&[k(KeyCode::Down)], Action::Edit(Edit::Down), "↓", "line down", false),
];

const BULK_RESULT: &[Binding] = &[
    b(
        &[k(KeyCode::Esc), c('q')],
        Action::Back,
        "esc",
        "back (failed stay selected)",
        true,
    ),
    b(&[k(KeyCode::Enter)], Action::Open, "enter", "detail", true),
    b(&[c('l')], Action::Logs, "l", "logs", true),
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "move", true),
    UP,
    TOP,
    BOTTOM,
    HELP,
];

const LOGS: &[Binding] = &[
    b(&[c('f')], Action::Follow, "f", "follow", true),
    b(&[c('/')], Action::Search, "/", "search", true),
    b(&[c('n')], Action::NextMatch, "n/N", "next/prev match", true),
    b(&[c('N')], Action::PrevMatch, "N", "previous match", false),
    b(&[c('v')], Action::Level, "v", "level", true),
    b(&[c('w')], Action::Wrap, "w", "wrap", true),
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "scroll", false),
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    b(
        &[c('G'), k(KeyCode::End)],
        Action::Bottom,
        "G",
        "bottom (follows)",
        false,
    ),
    HELP,
    BACK,
];

const LOGS_SEARCH: &[Binding] = &[
    b(&[k(KeyCode::Enter)], Action::FilterDone, "enter", "search", true),
    b(&[k(KeyCode::Esc)], Action::FilterCancel, "esc", "clear search", true),
];

const FLOWS: &[Binding] = &[
    b(&[k(KeyCode::Enter)], Action::Open, "enter", "source", true),
    b(&[c('s')], Action::StartFlow, "s", "start", true),
    b(&[c('R')], Action::Refresh, "R", "reload", true),
    DOWN,
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    BOTTOM,
    SCREENS[0],
    SCREENS[1],
    SCREENS[2],
    HELP,
    b(&[c('q'), ctrl('c')], Action::Quit, "q", "quit", true),
    b(&[k(KeyCode::Esc)], Action::Back, "esc", "executions", true),
];

const FLOW_SOURCE: &[Binding] = &[
    b(&[c('s')], Action::StartFlow, "s", "start", true),
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "scroll", true),
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    BOTTOM,
    HELP,
    BACK,
];

const AUDIT: &[Binding] = &[
    b(&[c('u')], Action::FilterUser, "u", "this user only", true),
    b(&[c('e')], Action::FilterExecution, "e", "this execution only", true),
    b(&[c('c')], Action::ClearFilters, "c", "clear filters", true),
    b(&[c('R')], Action::Refresh, "R", "reload", true),
    b(&[k(KeyCode::Enter)], Action::Open, "enter", "execution", false),
    DOWN,
    UP,
    PAGE_DOWN,
    PAGE_UP,
    TOP,
    BOTTOM,
    SCREENS[0],
    SCREENS[1],
    SCREENS[2],
    HELP,
    b(&[c('q'), ctrl('c')], Action::Quit, "q", "quit", true),
    b(&[k(KeyCode::Esc)], Action::Back, "esc", "executions", false),
];

const DELEGATIONS: &[Binding] = &[
    b(&[c('n')], Action::New, "n", "new delegation", true),
    b(&[c('x')], Action::Revoke, "x", "revoke", true),
    b(&[c('a')], Action::ShowAll, "a", "include ended", true),
    b(&[c('R')], Action::Refresh, "R", "reload", true),
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "move", true),
    UP,
    TOP,
    BOTTOM,
    HELP,
    BACK,
];

const HELP_VIEW: &[Binding] = &[
    b(&[c('j'), k(KeyCode::Down)], Action::Down, "j/k", "scroll", true),
    UP,
    b(
        &[k(KeyCode::Esc), c('q'), c('?')],
        Action::Back,
        "esc/?",
        "close help",
        true,
    ),
];

const CONFIRM: &[Binding] = &[
    b(
        &[c('y'), k(KeyCode::Enter)],
        Action::Confirm,
        "y/enter",
        "confirm",
        true,
    ),
    b(
        &[c('n'), k(KeyCode::Esc), c('q')],
        Action::Cancel,
        "n/esc",
        "cancel",
        true,
    ),
];

const MISMATCH: &[Binding] = &[
    b(&[c('n')], Action::Narrow, "n", "narrow selection", true),
    b(&[k(KeyCode::Esc), c('q')], Action::Cancel, "esc", "cancel", true),
];

/// Bindings that work everywhere.
const GLOBAL: &[Binding] = &[b(&[ctrl('c')], Action::Quit, "^c", "quit", false)];

/// The bindings of a context, most specific first.
pub fn bindings(ctx: Ctx) -> Vec<&'static Binding> {
    let tables: Vec<&'static [Binding]> = match ctx {
        Ctx::List => vec![LIST],
        Ctx::ListFilter => vec![LIST_FILTER, TEXT_EDIT],
        Ctx::Detail => vec![DETAIL],
        Ctx::Form { kind, last, decide } => {
            let field: &'static [Binding] = match kind {
                Some(WidgetKind::Bool) => FORM_BOOL,
                Some(WidgetKind::Select) => FORM_SELECT,
                Some(WidgetKind::SelectCustom) => FORM_SELECT_CUSTOM,
                Some(WidgetKind::Multi) => FORM_MULTI,
                Some(WidgetKind::Number) => FORM_NUMBER,
                Some(WidgetKind::Area) => FORM_AREA,
                Some(WidgetKind::Text) | Some(WidgetKind::Unsupported) | None => &[],
            };
            let enter: &'static [Binding] = if last {
                std::slice::from_ref(&FORM_ENTER_SUBMIT)
            } else {
                std::slice::from_ref(&FORM_ENTER_NEXT)
            };
            let mut t = vec![field, FORM, enter];
            if decide {
                t.insert(1, FORM_DECIDE);
            }
            if ctx.takes_text() {
                t.push(TEXT_EDIT);
            }
            t
        }
        Ctx::BulkResult => vec![BULK_RESULT],
        Ctx::Logs => vec![LOGS],
        Ctx::LogsSearch => vec![LOGS_SEARCH, TEXT_EDIT],
        Ctx::Flows => vec![FLOWS],
        Ctx::FlowSource => vec![FLOW_SOURCE],
        Ctx::Audit => vec![AUDIT],
        Ctx::Delegations => vec![DELEGATIONS],
        Ctx::Help => vec![HELP_VIEW],
        Ctx::Confirm => vec![CONFIRM],
        Ctx::Mismatch => vec![MISMATCH],
    };
    tables.into_iter().chain([GLOBAL]).flat_map(|t| t.iter()).collect()
}

/// The action for a key press in `ctx`, if any. Pure: the whole keymap is testable without a terminal.
pub fn map(ctx: Ctx, ev: KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    if let Some(bnd) = bindings(ctx)
        .into_iter()
        .find(|bnd| bnd.keys.iter().any(|key| key.matches(&ev)))
    {
        return Some(bnd.action);
    }
    let plain = !ev.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match ev.code {
        KeyCode::Char(ch) if plain && ctx.takes_text() => Some(Action::Edit(Edit::Insert(ch))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }
    fn ch(c: char) -> KeyEvent {
        let mods = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        KeyEvent::new(KeyCode::Char(c), mods)
    }
    fn text_form(last: bool) -> Ctx {
        Ctx::Form {
            kind: Some(WidgetKind::Text),
            last,
            decide: false,
        }
    }

    #[test]
    fn ctrl_p_previews_in_resume_forms_only() {
        let ctrl_p = KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL);
        let resume = Ctx::Form {
            kind: Some(WidgetKind::Text),
            last: false,
            decide: true,
        };
        assert_eq!(map(resume, ctrl_p), Some(Action::Preview));
        assert_eq!(map(text_form(false), ctrl_p), None);
        // A plain `p` is still typed into a text field.
        assert_eq!(map(resume, ch('p')), Some(Action::Edit(Edit::Insert('p'))));
    }

    #[test]
    fn list_keys() {
        assert_eq!(map(Ctx::List, ch('j')), Some(Action::Down));
        assert_eq!(map(Ctx::List, key(KeyCode::Up)), Some(Action::Up));
        assert_eq!(map(Ctx::List, ch(' ')), Some(Action::Select));
        assert_eq!(map(Ctx::List, ch('a')), Some(Action::SelectAll));
        assert_eq!(map(Ctx::List, ch('A')), Some(Action::ClearSelection));
        assert_eq!(map(Ctx::List, ch('G')), Some(Action::Bottom));
        assert_eq!(map(Ctx::List, ch('K')), Some(Action::Kill));
        assert_eq!(map(Ctx::List, ch('k')), Some(Action::Up));
        assert_eq!(map(Ctx::List, key(KeyCode::Tab)), Some(Action::NextTab));
        assert_eq!(
            map(Ctx::List, KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevTab)
        );
        assert_eq!(map(Ctx::List, ch('r')), Some(Action::Resume));
        assert_eq!(map(Ctx::List, ch('q')), Some(Action::Quit));
        assert_eq!(map(Ctx::List, key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(map(Ctx::List, ch('z')), None, "unbound keys do nothing");
        assert_eq!(
            map(Ctx::List, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn filter_takes_text_but_not_commands() {
        assert_eq!(map(Ctx::ListFilter, ch('r')), Some(Action::Edit(Edit::Insert('r'))));
        assert_eq!(map(Ctx::ListFilter, ch('q')), Some(Action::Edit(Edit::Insert('q'))));
        assert_eq!(map(Ctx::ListFilter, key(KeyCode::Enter)), Some(Action::FilterDone));
        assert_eq!(map(Ctx::ListFilter, key(KeyCode::Esc)), Some(Action::FilterCancel));
        assert_eq!(
            map(
                Ctx::ListFilter,
                KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit),
            "ctrl-c always quits"
        );
    }

    #[test]
    fn form_keys_depend_on_the_field() {
        assert_eq!(map(text_form(false), ch('q')), Some(Action::Edit(Edit::Insert('q'))));
        assert_eq!(map(text_form(false), key(KeyCode::Enter)), Some(Action::FormNext));
        assert_eq!(map(text_form(true), key(KeyCode::Enter)), Some(Action::Submit));
        assert_eq!(
            map(
                text_form(false),
                KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL)
            ),
            Some(Action::Submit)
        );
        assert_eq!(map(text_form(false), key(KeyCode::Tab)), Some(Action::FormNext));
        assert_eq!(map(text_form(false), key(KeyCode::BackTab)), Some(Action::FormPrev));
        assert_eq!(map(text_form(false), key(KeyCode::Esc)), Some(Action::Back));
        let boolean = Ctx::Form {
            kind: Some(WidgetKind::Bool),
            last: false,
            decide: false,
        };
        assert_eq!(map(boolean, ch(' ')), Some(Action::Edit(Edit::Toggle)));
        assert_eq!(map(boolean, ch('x')), None, "a toggle ignores letters");
        let area = Ctx::Form {
            kind: Some(WidgetKind::Area),
            last: true,
            decide: false,
        };
        assert_eq!(
            map(area, key(KeyCode::Enter)),
            Some(Action::Edit(Edit::NewLine)),
            "enter adds a JSON line"
        );
        let number = Ctx::Form {
            kind: Some(WidgetKind::Number),
            last: false,
            decide: false,
        };
        assert_eq!(map(number, key(KeyCode::Up)), Some(Action::Edit(Edit::StepUp)));
        assert_eq!(map(number, ch('+')), Some(Action::Edit(Edit::Insert('+'))));
        let select = Ctx::Form {
            kind: Some(WidgetKind::Select),
            last: false,
            decide: false,
        };
        assert_eq!(map(select, key(KeyCode::Left)), Some(Action::Edit(Edit::Up)));
        assert_eq!(map(select, key(KeyCode::Right)), Some(Action::Edit(Edit::Down)));
        let empty = Ctx::Form {
            kind: None,
            last: true,
            decide: false,
        };
        assert_eq!(
            map(empty, key(KeyCode::Enter)),
            Some(Action::Submit),
            "a form without inputs submits on enter"
        );
    }

    #[test]
    fn logs_popups_and_release_events() {
        assert_eq!(map(Ctx::Logs, ch('f')), Some(Action::Follow));
        assert_eq!(map(Ctx::Logs, ch('/')), Some(Action::Search));
        assert_eq!(map(Ctx::Logs, ch('w')), Some(Action::Wrap));
        assert_eq!(map(Ctx::Logs, ch('q')), Some(Action::Back));
        assert_eq!(map(Ctx::Confirm, ch('y')), Some(Action::Confirm));
        assert_eq!(map(Ctx::Confirm, key(KeyCode::Esc)), Some(Action::Cancel));
        assert_eq!(map(Ctx::Mismatch, ch('n')), Some(Action::Narrow));
        let mut release = ch('j');
        release.kind = KeyEventKind::Release;
        assert_eq!(map(Ctx::List, release), None);
    }

    #[test]
    fn every_context_has_a_footer_and_a_way_out() {
        let all = [
            Ctx::List,
            Ctx::ListFilter,
            Ctx::Detail,
            text_form(false),
            Ctx::BulkResult,
            Ctx::Logs,
            Ctx::LogsSearch,
            Ctx::Flows,
            Ctx::FlowSource,
            Ctx::Audit,
            Ctx::Delegations,
            Ctx::Help,
            Ctx::Confirm,
            Ctx::Mismatch,
        ];
        for ctx in all {
            let b = bindings(ctx);
            assert!(b.iter().any(|b| b.footer), "{ctx:?} shows keys in the footer");
            assert!(
                b.iter().any(|b| matches!(
                    b.action,
                    Action::Back | Action::Quit | Action::Cancel | Action::FilterCancel
                ) && b.keys.iter().any(|k| k.code == KeyCode::Esc)),
                "{ctx:?} has esc"
            );
        }
    }
}
