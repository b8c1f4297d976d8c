//! Shared helpers for the console tests: proto fixtures, key presses, rendering to TestBackend.
#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tollgate_console::console::action;
use tollgate_console::console::app::{App, AppOptions, Screen};
use tollgate_console::console::messages::{Command, Connection, Tab, Update};
use tollgate_console::console::theme::Theme;
use tollgate_console::console::ui;
use tollgate_proto::v1 as pb;

/// 2026-01-02 10:04:05Z: the fixed clock every view is drawn with.
pub const NOW: i64 = 1_767_348_245_000;

/// An app as `run` creates it, before its start commands.
pub fn fresh_app() -> App {
    App::new(AppOptions {
        user: Some("alice@example.com".into()),
        server: "http://127.0.0.1:28080".into(),
        theme: Theme::COLOR,
        now_ms: NOW,
        screen: Screen::Executions,
    })
}

pub fn app_with(theme: Theme) -> App {
    let mut app = fresh_app();
    app.theme = theme;
    let _ = app.start();
    app.apply(Update::Connection(Connection::Connected));
    app
}

pub fn app() -> App {
    app_with(Theme::COLOR)
}

pub fn input(id: &str, kind: &str) -> pb::InputSpec {
    pb::InputSpec {
        id: id.into(),
        r#type: kind.into(),
        required: true,
        ..Default::default()
    }
}

/// The pause_demo form: a STRING reason and a BOOLEAN approval.
pub fn approval_form() -> Vec<pb::InputSpec> {
    let mut reason = input("reason", "STRING");
    reason.display_name = "Reason".into();
    reason.description = "Why you decide this way".into();
    let mut approved = input("approved", "BOOLEAN");
    approved.display_name = "Approve?".into();
    approved.default_json = Some("false".into());
    vec![reason, approved]
}

/// A paused execution waiting at `task` since `NOW - waited_ms`.
pub fn paused(id: &str, ns: &str, flow: &str, task: &str, waited_ms: i64, form: Vec<pb::InputSpec>) -> pb::Execution {
    let form_key = format!("{ns}.{flow}.{task}");
    pb::Execution {
        id: id.into(),
        namespace: ns.into(),
        flow_id: flow.into(),
        flow_revision: 1,
        state: "PAUSED".into(),
        created_ms: NOW - waited_ms - 2_000,
        updated_ms: NOW - waited_ms,
        started_by: "bob@example.com".into(),
        inputs_json: "{}".into(),
        outputs_json: "{}".into(),
        task_runs: vec![
            pb::TaskRun {
                id: format!("{id}-t1"),
                task_id: "hello".into(),
                state: "SUCCESS".into(),
                outputs_json: "{}".into(),
                attempt: 1,
                started_ms: NOW - waited_ms - 1_500,
                ended_ms: NOW - waited_ms - 1_250,
                task_type: "io.kestra.plugin.core.log.Log".into(),
                ..Default::default()
            },
            pb::TaskRun {
                id: format!("{id}-t2"),
                task_id: task.into(),
                state: "PAUSED".into(),
                outputs_json: "{}".into(),
                attempt: 1,
                started_ms: NOW - waited_ms,
                task_type: "io.kestra.plugin.core.flow.Pause".into(),
                ..Default::default()
            },
        ],
        pauses: vec![pb::PauseInfo {
            task_run_id: format!("{id}-t2"),
            task_id: task.into(),
            since_ms: NOW - waited_ms,
            on_resume: form,
            behavior: "RESUME".into(),
            form_key,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `e` in another state, its pause ended (as Watch would deliver it).
pub fn in_state(mut e: pb::Execution, state: &str, at: i64) -> pb::Execution {
    e.state = state.into();
    e.pauses.clear();
    e.updated_ms = at;
    for r in &mut e.task_runs {
        if r.state == "PAUSED" {
            r.state = if state == "KILLED" {
                "KILLED".into()
            } else {
                "SUCCESS".into()
            };
            r.ended_ms = at;
        }
    }
    e
}

/// Loads executions into the app as the PAUSED tab's (only) page.
pub fn load(app: &mut App, executions: Vec<pb::Execution>) {
    app.apply(Update::Page {
        tab: Tab::Paused,
        executions,
        forms: vec![],
        first: true,
        last: true,
    });
}

/// `e` as a SUMMARY List returns it: no task runs, inputs or outputs, pauses without their form.
pub fn summary(e: &pb::Execution) -> pb::Execution {
    let mut s = e.clone();
    s.task_runs.clear();
    s.inputs_json.clear();
    s.outputs_json.clear();
    for p in &mut s.pauses {
        p.on_resume.clear();
    }
    s
}

/// Loads executions as one SUMMARY page: rows, and each pause form once.
pub fn load_summaries(app: &mut App, executions: &[pb::Execution]) {
    let mut forms: Vec<pb::PauseForm> = Vec::new();
    for p in executions.iter().flat_map(|e| &e.pauses) {
        if !forms.iter().any(|f| f.form_key == p.form_key) {
            forms.push(pb::PauseForm {
                form_key: p.form_key.clone(),
                on_resume: p.on_resume.clone(),
            });
        }
    }
    app.apply(Update::Page {
        tab: Tab::Paused,
        executions: executions.iter().map(summary).collect(),
        forms,
        first: true,
        last: true,
    });
}

pub fn event(app: &mut App, e: pb::Execution) {
    app.apply(Update::Event(pb::ExecutionEvent {
        execution: Some(e),
        deleted: false,
    }));
}

fn key_event(code: KeyCode) -> KeyEvent {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        KeyCode::BackTab => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    KeyEvent::new(code, mods)
}

/// Presses one key the way the event loop does; returns the calls it asks for.
pub fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    press_event(app, key_event(code))
}

pub fn press_event(app: &mut App, ev: KeyEvent) -> Vec<Command> {
    match action::map(app.ctx(), ev) {
        Some(a) => app.handle(a),
        None => vec![],
    }
}

pub fn ctrl(app: &mut App, c: char) -> Vec<Command> {
    press_event(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Types text (each char a key press); returns all commands.
pub fn type_text(app: &mut App, text: &str) -> Vec<Command> {
    text.chars().flat_map(|c| press(app, KeyCode::Char(c))).collect()
}

pub fn terminal(w: u16, h: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(w, h)).expect("test terminal")
}

/// Draws the app at `w`×`h` and returns the screen text.
pub fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = terminal(w, h);
    app.settle();
    t.draw(|f| ui::draw(f, app)).expect("draw");
    t.backend().to_string()
}

/// Draws and returns the buffer (for style checks).
pub fn render_buffer(app: &mut App, w: u16, h: u16) -> ratatui::buffer::Buffer {
    let mut t = terminal(w, h);
    app.settle();
    t.draw(|f| ui::draw(f, app)).expect("draw");
    t.backend().buffer().clone()
}

/// Five paused executions over three flows, one a HumanTask with assignees and approvals.
pub fn sample() -> Vec<pb::Execution> {
    let mut vm = paused(
        "3kKv9cQeTfGh2JxYmNpR4s",
        "infrastructure",
        "vm_provisioning_approval",
        "wait_for_approval",
        3_600_000 * 5 + 60_000 * 7,
        {
            let mut size = input("vm_size", "SELECT");
            size.display_name = "VM size".into();
            size.values = vec!["small".into(), "medium".into(), "large".into()];
            size.default_json = Some("\"small\"".into());
            vec![size, input("approved", "BOOLEAN")]
        },
    );
    vm.pauses[0].assignee_users = vec!["carol@example.com".into()];
    vm.pauses[0].assignee_groups = vec!["infra-leads".into()];
    vm.pauses[0].approvals_required = 2;
    vm.pauses[0].approved_by = vec!["dave@example.com".into()];
    vm.labels.insert("team".into(), "platform".into());
    vec![
        paused(
            "1aZ3bY5cX7dW9eV1fU3gT5",
            "demo",
            "pause_demo",
            "wait",
            42_000,
            approval_form(),
        ),
        paused(
            "2hS7iR9jQ1kP3lO5mN7nM9",
            "demo",
            "pause_demo",
            "wait",
            725_000,
            approval_form(),
        ),
        paused(
            "4pL1qK3rJ5sI7tH9uG1vF3",
            "demo",
            "pause_demo",
            "wait",
            86_400_000 * 2 + 3_600_000 * 3,
            approval_form(),
        ),
        vm,
        paused(
            "5wE5xD7yC9zB1aA3bZ5cY7",
            "hr.operations",
            "vacation_approval",
            "manager_review",
            90_000,
            vec![input("comment", "STRING")],
        ),
    ]
}
