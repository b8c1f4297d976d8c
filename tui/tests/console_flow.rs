//! Console behaviour driven by keys, as a user would: the resume path of issue 3 end to end
//! against the state machine (commands out, updates in), the event loop itself on a TestBackend,
//! and a 100,000-row list.

mod console_support;

use std::collections::BTreeMap;
use std::time::Duration;

use console_support::*;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use insta::assert_snapshot;
use tollgate_console::console::app::{App, Popup, View};
use tollgate_console::console::event_loop;
use tollgate_console::console::messages::{Command, RpcError, Tab, Update};
use tollgate_proto::v1 as pb;

fn ok(id: &str) -> pb::BulkResult {
    pb::BulkResult {
        id: id.into(),
        ok: true,
        code: "OK".into(),
        ..Default::default()
    }
}

#[test]
fn select_two_resume_with_one_form_and_see_both_succeed() {
    let mut a = app();
    let execs: Vec<pb::Execution> = (0..2)
        .map(|i| {
            paused(
                &format!("exec{i}"),
                "demo",
                "pause_demo",
                "wait",
                10_000 - i,
                approval_form(),
            )
        })
        .collect();
    load(&mut a, execs.clone());
    // space twice: both selected.
    press(&mut a, KeyCode::Char(' '));
    press(&mut a, KeyCode::Char(' '));
    assert_eq!(a.list.selected.len(), 2);
    press(&mut a, KeyCode::Char('r'));
    assert!(matches!(a.views.last(), Some(View::Resume(_))), "one form opens");
    type_text(&mut a, "ship it");
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Char(' '));
    // enter on the last field submits: one BulkResume for both ids with the same values.
    let cmds = press(&mut a, KeyCode::Enter);
    let expected: BTreeMap<String, String> = [
        ("reason".to_string(), "ship it".to_string()),
        ("approved".to_string(), "true".to_string()),
    ]
    .into();
    let request = match cmds.as_slice() {
        [
            Command::BulkResume {
                request,
                ids,
                task_run_ids,
                inputs,
                task_id,
                ..
            },
        ] => {
            let mut ids = ids.clone();
            ids.sort();
            assert_eq!(ids, ["exec0", "exec1"]);
            // Each at the pause the person saw, so a pause decided meanwhile is not replaced by a sibling.
            assert_eq!(task_run_ids.get("exec0").map(String::as_str), Some("exec0-t2"));
            assert_eq!(task_run_ids.get("exec1").map(String::as_str), Some("exec1-t2"));
            assert_eq!(inputs, &expected);
            assert_eq!(task_id, "wait");
            *request
        }
        other => panic!("expected BulkResume, got {other:?}"),
    };
    let cmds = a.apply(Update::Resumed {
        request,
        result: Ok(vec![ok("exec0"), ok("exec1")]),
    });
    assert!(cmds.is_empty(), "no second call: {cmds:?}");
    assert!(matches!(a.views.last(), Some(View::BulkResult(_))));
    // Watch brings the final states; the result view shows them live.
    for e in &execs {
        event(&mut a, in_state(e.clone(), "SUCCESS", NOW));
    }
    let screen = render(&mut a, 80, 24);
    assert_eq!(screen.matches("resumed          SUCCESS").count(), 2, "{screen}");
    assert!(screen.contains("2 resumed"), "{screen}");
    assert!(a.list.selected.is_empty(), "nothing failed, nothing stays selected");
    assert_snapshot!("flow_two_resumed_80x24", screen);
    press(&mut a, KeyCode::Esc);
    assert!(a.views.is_empty());
    // The PAUSED tab no longer lists them.
    let screen = render(&mut a, 80, 24);
    assert!(!screen.contains("exec0"), "{screen}");
}

#[test]
fn summary_rows_show_and_resume_as_whole_executions_do() {
    let execs: Vec<pb::Execution> = (0..3)
        .map(|i| {
            paused(
                &format!("exec{i}"),
                "demo",
                "pause_demo",
                "wait",
                10_000 - i,
                approval_form(),
            )
        })
        .chain([paused(
            "other",
            "demo",
            "triage",
            "route",
            500,
            vec![input("team", "STRING")],
        )])
        .collect();
    let mut whole = app();
    load(&mut whole, execs.clone());
    let mut rows = app();
    load_summaries(&mut rows, &execs);
    assert_eq!(render(&mut rows, 100, 20), render(&mut whole, 100, 20));
    // The form of a summary row is the one its page sent (once for the three that share it).
    let mut shown = Vec::new();
    for a in [&mut whole, &mut rows] {
        press(a, KeyCode::Char('r'));
        let Some(View::Resume(r)) = a.views.last() else {
            panic!("form opens")
        };
        shown.push(r.form.fields.iter().map(|f| f.spec.clone()).collect::<Vec<_>>());
    }
    assert_eq!(shown[1], shown[0]);
    assert_eq!(&shown[1][..2], approval_form().as_slice());
    assert_eq!(render(&mut rows, 100, 20), render(&mut whole, 100, 20));
    // A Watch event (a whole execution) still updates a summary row.
    event(&mut rows, in_state(execs[0].clone(), "SUCCESS", NOW));
    assert_eq!(rows.store.get("exec0").map(|r| r.state.as_str()), Some("SUCCESS"));
}

/// One paused execution, its resume form opened with `r`, a reason typed, ctrl-s: the app and
/// the commands the submit produced.
fn submit_the_only_form() -> (App, Vec<Command>) {
    let mut a = app();
    load(
        &mut a,
        vec![paused("only", "demo", "pause_demo", "wait", 1_000, approval_form())],
    );
    press(&mut a, KeyCode::Char('r'));
    type_text(&mut a, "fine");
    let cmds = ctrl(&mut a, 's');
    (a, cmds)
}

#[test]
fn single_resume_is_one_bulk_resume_at_the_paused_task() {
    let (mut a, cmds) = submit_the_only_form();
    let [
        Command::BulkResume {
            request,
            ids,
            task_run_ids,
            task_id,
            inputs,
            ..
        },
    ] = cmds.as_slice()
    else {
        panic!("expected one BulkResume, got {cmds:?}")
    };
    assert_eq!(ids, &["only"]);
    assert_eq!(task_run_ids.get("only").map(String::as_str), Some("only-t2"));
    assert_eq!(task_id, "wait");
    assert_eq!(inputs.get("reason").map(String::as_str), Some("fine"));
    let cmds = a.apply(Update::Resumed {
        request: *request,
        result: Ok(vec![ok("only")]),
    });
    assert!(cmds.is_empty(), "no second call: {cmds:?}");
    assert!(matches!(a.views.last(), Some(View::BulkResult(_))));
}

#[test]
fn single_resume_refused_for_an_input_shows_the_typed_error_under_its_field() {
    let (mut a, cmds) = submit_the_only_form();
    let [Command::BulkResume { request, .. }] = cmds.as_slice() else {
        panic!("expected one BulkResume, got {cmds:?}")
    };
    // The message names no field the console could find: only the typed error places it.
    let refused = pb::BulkResult {
        id: "only".into(),
        ok: false,
        code: "INVALID_ARGUMENT".into(),
        message: "1 input rejected".into(),
        input_errors: vec![pb::InputError {
            input_id: "approved".into(),
            message: "must be chosen".into(),
        }],
    };
    let cmds = a.apply(Update::Resumed {
        request: *request,
        result: Ok(vec![refused]),
    });
    assert!(cmds.is_empty(), "no second call: {cmds:?}");
    let Some(View::Resume(r)) = a.views.last() else {
        panic!("form stays open")
    };
    assert_eq!(r.form.fields[0].error, None, "{:?}", r.form.fields[0]);
    assert_eq!(r.form.fields[1].spec.id, "approved");
    assert_eq!(r.form.fields[1].error.as_deref(), Some("must be chosen"));
    assert_eq!(r.form.error, None, "the message is not shown when typed errors exist");
    assert_eq!(r.form.focus, 1, "focus moves to the bad field");
    // Fixed and sent again: again one call, from the form.
    let cmds = ctrl(&mut a, 's');
    assert!(matches!(cmds.as_slice(), [Command::BulkResume { .. }]), "{cmds:?}");
}

#[test]
fn a_resume_call_that_fails_as_a_whole_keeps_the_form() {
    let (mut a, cmds) = submit_the_only_form();
    let [Command::BulkResume { request, .. }] = cmds.as_slice() else {
        panic!("expected one BulkResume, got {cmds:?}")
    };
    a.apply(Update::Resumed {
        request: *request,
        result: Err(RpcError::new(tonic::Code::Unavailable, "connection refused")),
    });
    let Some(View::Resume(r)) = a.views.last() else {
        panic!("form stays open")
    };
    assert_eq!(r.form.error.as_deref(), Some("daemon unreachable: connection refused"));
}

#[test]
fn failed_ids_stay_selected_and_invalid_input_stays_in_the_form() {
    let mut a = app();
    load(
        &mut a,
        (0..3)
            .map(|i| {
                paused(
                    &format!("e{i}"),
                    "demo",
                    "pause_demo",
                    "wait",
                    5_000 - i,
                    approval_form(),
                )
            })
            .collect(),
    );
    press(&mut a, KeyCode::Char('a'));
    press(&mut a, KeyCode::Char('r'));
    type_text(&mut a, "x");
    let cmds = ctrl(&mut a, 's');
    let Command::BulkResume { request, .. } = &cmds[0] else {
        panic!("{cmds:?}")
    };
    let request = *request;
    // Every id refused for its input: the form stays, with the error under the field.
    let invalid = |id: &str| pb::BulkResult {
        id: id.into(),
        ok: false,
        code: "INVALID_ARGUMENT".into(),
        message: "Invalid input for `reason`, it must match `^[A-Z]`, but received `x`".into(),
        input_errors: vec![pb::InputError {
            input_id: "reason".into(),
            message: "must start upper-case".into(),
        }],
    };
    let cmds = a.apply(Update::Resumed {
        request,
        result: Ok(vec![invalid("e0"), invalid("e1"), invalid("e2")]),
    });
    assert!(cmds.is_empty(), "{cmds:?}");
    let Some(View::Resume(r)) = a.views.last() else {
        panic!("form stays open")
    };
    assert_eq!(r.form.fields[0].error.as_deref(), Some("must start upper-case"));
    // Fix and resubmit; now a mix of outcomes.
    press(&mut a, KeyCode::Backspace);
    type_text(&mut a, "X");
    let cmds = ctrl(&mut a, 's');
    let Command::BulkResume { request, .. } = &cmds[0] else {
        panic!("{cmds:?}")
    };
    let denied = pb::BulkResult {
        id: "e1".into(),
        ok: false,
        code: "PERMISSION_DENIED".into(),
        message: "Access denied to resume this execution".into(),
        ..Default::default()
    };
    let gone = pb::BulkResult {
        id: "e2".into(),
        ok: false,
        code: "FAILED_PRECONDITION".into(),
        message: "Execution 'e2' is not paused, can't resume it".into(),
        ..Default::default()
    };
    a.apply(Update::Resumed {
        request: *request,
        result: Ok(vec![ok("e0"), denied, gone]),
    });
    let screen = render(&mut a, 80, 24);
    assert!(
        screen.contains("access denied") && screen.contains("no longer paused"),
        "{screen}"
    );
    let mut selected: Vec<_> = a.list.selected.iter().cloned().collect();
    selected.sort();
    assert_eq!(selected, ["e1", "e2"], "failed ones stay selected");
}

#[test]
fn human_task_outside_the_assignment_explains_why_resume_is_refused() {
    let mut a = app();
    let mut e = paused("h1", "infrastructure", "vm", "approve", 1_000, approval_form());
    e.pauses[0].assignee_users = vec!["carol@example.com".into()];
    e.pauses[0].approvals_required = 1;
    load(&mut a, vec![e]);
    a.apply(Update::Whoami {
        user: "alice@example.com".into(),
        groups: vec!["dev".into()],
        roles: vec![],
        acting_for: vec![],
    });
    press(&mut a, KeyCode::Char('r'));
    assert!(a.views.is_empty(), "no form for someone who may not decide");
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("Access denied to resume this execution"), "{screen}");
    assert_snapshot!("flow_denied_80x24", screen);
    // The detail view says so too, before anyone tries.
    let cmds = press(&mut a, KeyCode::Enter);
    assert_eq!(cmds, vec![Command::GetExecution("h1".into())]);
    let mut full = paused("h1", "infrastructure", "vm", "approve", 1_000, approval_form());
    full.pauses[0].assignee_users = vec!["carol@example.com".into()];
    full.pauses[0].approvals_required = 1;
    a.apply(Update::Execution(Ok(full)));
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("not among the approvers"), "{screen}");
    press(&mut a, KeyCode::Esc);
    // A member of an assigned group may.
    a.apply(Update::Whoami {
        user: "bob@example.com".into(),
        groups: vec!["ops".into()],
        roles: vec![("operator".into(), "infrastructure".into())],
        acting_for: vec![],
    });
    let mut e = paused("h2", "infrastructure", "vm", "approve", 500, approval_form());
    e.pauses[0].assignee_groups = vec!["ops".into()];
    e.pauses[0].approvals_required = 2;
    e.pauses[0].approved_by = vec!["carol@example.com".into()];
    event(&mut a, e);
    press(&mut a, KeyCode::Char('j'));
    press(&mut a, KeyCode::Char('r'));
    assert!(matches!(a.views.last(), Some(View::Resume(_))));
    let screen = render(&mut a, 80, 24);
    assert!(
        screen.contains("1 of 2 approvals (approved by carol@example.com)"),
        "{screen}"
    );
    assert_snapshot!("flow_human_task_form_80x24", screen);
}

#[test]
fn mixed_forms_offer_to_narrow_the_selection() {
    let mut a = app();
    load(
        &mut a,
        vec![
            paused("a1", "demo", "pause_demo", "wait", 3_000, approval_form()),
            paused("b1", "demo", "other", "check", 2_000, vec![input("x", "INT")]),
            paused("a2", "demo", "pause_demo", "wait", 1_000, approval_form()),
        ],
    );
    press(&mut a, KeyCode::Char('a'));
    press(&mut a, KeyCode::Char('r'));
    assert!(matches!(a.popup, Some(Popup::Mismatch { .. })));
    press(&mut a, KeyCode::Char('n'));
    let Some(View::Resume(r)) = a.views.last() else {
        panic!("narrowing opens the form")
    };
    let mut ids: Vec<_> = r.targets.iter().map(|t| t.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["a1", "a2"]);
}

#[test]
fn kill_asks_first_then_kills_the_selection() {
    let mut a = app();
    load(
        &mut a,
        (0..3)
            .map(|i| {
                paused(
                    &format!("k{i}"),
                    "demo",
                    "pause_demo",
                    "wait",
                    3_000 - i,
                    approval_form(),
                )
            })
            .collect(),
    );
    press(&mut a, KeyCode::Char(' '));
    press(&mut a, KeyCode::Char(' '));
    let cmds = press(&mut a, KeyCode::Char('K'));
    assert!(cmds.is_empty(), "nothing is killed before confirming");
    assert!(press(&mut a, KeyCode::Char('n')).is_empty());
    assert!(a.popup.is_none());
    press(&mut a, KeyCode::Char('K'));
    let cmds = press(&mut a, KeyCode::Char('y'));
    let [Command::Kill { request, ids }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(ids.len(), 2);
    let results = ids.iter().map(|id| ok(id)).collect();
    a.apply(Update::Killed {
        request: *request,
        results,
    });
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("2 killed"), "{screen}");
}

#[test]
fn logs_open_stream_follow_and_close() {
    let mut a = app();
    load(
        &mut a,
        vec![paused("l1", "demo", "pause_demo", "wait", 1_000, approval_form())],
    );
    let cmds = press(&mut a, KeyCode::Char('l'));
    let [Command::TailLogs { stream, id }] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(id, "l1");
    let stream = *stream;
    let line = |seq: u64, msg: &str| pb::LogLine {
        seq,
        level: "INFO".into(),
        task_id: "hello".into(),
        message: msg.into(),
        time_ms: NOW,
        ..Default::default()
    };
    a.apply(Update::Logs {
        stream,
        batch: pb::LogBatch {
            lines: vec![line(0, "first")],
            end: false,
        },
    });
    // A line appended while the view is open shows up; a repeated batch is not duplicated.
    a.apply(Update::Logs {
        stream,
        batch: pb::LogBatch {
            lines: vec![line(0, "first"), line(1, "second")],
            end: false,
        },
    });
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("first") && screen.contains("second"), "{screen}");
    assert_eq!(screen.matches("first").count(), 1);
    // A batch of another (closed) stream is ignored.
    a.apply(Update::Logs {
        stream: stream + 100,
        batch: pb::LogBatch {
            lines: vec![line(2, "stale")],
            end: false,
        },
    });
    assert!(!render(&mut a, 80, 24).contains("stale"));
    press(&mut a, KeyCode::Char('f'));
    assert!(render(&mut a, 80, 24).contains("follow off"));
    assert_eq!(press(&mut a, KeyCode::Esc), vec![Command::StopLogs]);
}

#[test]
fn tabs_load_lazily_and_filter_finds_labels_and_assignees() {
    let mut a = app();
    let mut e = paused("f1", "demo", "pause_demo", "wait", 1_000, approval_form());
    e.labels.insert("ticket".into(), "OPS-42".into());
    let mut h = paused("f2", "demo", "pause_demo", "wait", 2_000, approval_form());
    h.pauses[0].assignee_users = vec!["zoe@example.com".into()];
    load(&mut a, vec![e, h]);
    assert_eq!(press(&mut a, KeyCode::Tab), vec![Command::LoadTab(Tab::Running)]);
    assert_eq!(press(&mut a, KeyCode::Tab), vec![Command::LoadTab(Tab::Failed)]);
    assert_eq!(press(&mut a, KeyCode::Tab), vec![Command::LoadTab(Tab::All)]);
    assert_eq!(press(&mut a, KeyCode::Tab), vec![], "INBOX is a view of PAUSED, loaded");
    assert_eq!(press(&mut a, KeyCode::Tab), vec![], "PAUSED is already loaded");
    assert_eq!(a.list.tab, Tab::Paused);
    press(&mut a, KeyCode::Char('/'));
    type_text(&mut a, "ops-42");
    assert_eq!(a.list.visible.len(), 1);
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('/'));
    type_text(&mut a, "zoe");
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.list.current(&a.store).map(|r| r.id.as_str()), Some("f2"));
    // While filtering, q typed text; now it quits.
    press(&mut a, KeyCode::Char('q'));
    assert!(a.quit);
}

#[test]
fn waiting_time_ticks_only_when_the_text_changes() {
    let mut a = app();
    load(
        &mut a,
        vec![paused(
            "t1",
            "demo",
            "pause_demo",
            "wait",
            3 * 3_600_000,
            approval_form(),
        )],
    );
    render(&mut a, 80, 24);
    a.take_redraw();
    // Hours and minutes: a tick 10 s later changes nothing on screen.
    assert!(!a.tick(NOW + 10_000));
    assert!(!a.take_redraw());
    assert!(a.tick(NOW + 61_000));
    assert!(a.take_redraw());
}

#[test]
fn a_hundred_thousand_rows_scroll_without_building_them_all() {
    let mut a = app();
    let form = approval_form();
    let execs: Vec<pb::Execution> = (0..100_000)
        .map(|i| {
            let mut e = paused(&format!("e{i:06}"), "bulk", "load", "wait", 100_000 - i, form.clone());
            e.task_runs.clear();
            e
        })
        .collect();
    load(&mut a, execs);
    assert_eq!(a.store.len(), 100_000);
    press(&mut a, KeyCode::Char('G'));
    let screen = render(&mut a, 80, 24);
    assert!(
        screen.contains("e099999") && screen.contains("100000/100000"),
        "{screen}"
    );
    press(&mut a, KeyCode::Char('g'));
    press_event(&mut a, KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL));
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("e000"), "{screen}");
    // Select all visible and open one form for all of them.
    press(&mut a, KeyCode::Char('a'));
    press(&mut a, KeyCode::Char('r'));
    let Some(View::Resume(r)) = a.views.last() else {
        panic!()
    };
    assert_eq!(r.targets.len(), 100_000);
}

#[tokio::test]
async fn event_loop_draws_sends_commands_and_quits() {
    let mut terminal = terminal(80, 24);
    let mut a = fresh_app();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(Update::Page {
        tab: Tab::Paused,
        executions: vec![paused("ev1", "demo", "pause_demo", "wait", 1_000, approval_form())],
        forms: vec![],
        first: true,
        last: true,
    })
    .await
    .expect("send");
    // Keys arrive after the page: wait a little, then open logs and quit.
    let keys = futures::stream::iter(vec![
        Ok(Event::Key(KeyEvent::new(KeyCode::Char('l'), KeyModifiers::NONE))),
        Ok(Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE))),
        Ok(Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE))),
    ]);
    let delayed = futures::StreamExt::then(keys, |k| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        k
    });
    let mut sent = Vec::new();
    let result = event_loop::run(
        &mut terminal,
        &mut a,
        Box::pin(delayed),
        rx,
        |c| sent.push(c),
        event_loop::Clock {
            now_ms: || NOW,
            tick: Duration::from_secs(1),
        },
        std::future::pending::<()>(),
    )
    .await;
    assert!(result.is_ok());
    assert!(a.quit);
    assert_eq!(sent[0], Command::LoadTab(Tab::Paused));
    assert!(
        sent.iter()
            .any(|c| matches!(c, Command::TailLogs { id, .. } if id == "ev1")),
        "{sent:?}"
    );
    assert!(sent.contains(&Command::StopLogs));
    assert!(terminal.backend().to_string().contains("ev1"), "the list was drawn");
}

fn whoami(user: &str, groups: &[&str], roles: &[(&str, &str)]) -> Update {
    Update::Whoami {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        roles: roles.iter().map(|(r, n)| (r.to_string(), n.to_string())).collect(),
        acting_for: vec![],
    }
}

/// Two plain pauses in `demo`, a HumanTask for Security in `infrastructure` (escalated to
/// Managers), and one for someone else.
fn inbox_fixture() -> Vec<pb::Execution> {
    let plain_old = paused("plain-old", "demo", "deploy", "wait", 90 * 60_000, approval_form());
    let plain_new = paused("plain-new", "demo", "deploy", "wait", 60_000, approval_form());
    let mut vm = paused("vm-1", "infrastructure", "vm", "approve", 30 * 60_000, approval_form());
    // Escalation (mode ADD) added Managers to the assignment and says so.
    vm.pauses[0].assignee_groups = vec!["Security".into(), "Managers".into()];
    vm.pauses[0].approvals_required = 1;
    vm.pauses[0].escalated_to = vec!["Managers".into()];
    let mut other = paused("hr-1", "hr", "vacation", "approve", 5 * 60_000, approval_form());
    other.pauses[0].assignee_users = vec!["carol@example.com".into()];
    other.pauses[0].approvals_required = 1;
    vec![plain_new, vm, other, plain_old]
}

#[test]
fn console_opens_on_the_inbox_when_decisions_wait_oldest_first() {
    let mut a = app();
    // Whoami may answer before or after the list; here it answers first.
    a.apply(whoami(
        "ana@example.com",
        &["Managers"],
        &[("operator", "demo"), ("operator", "infrastructure"), ("viewer", "hr")],
    ));
    assert_eq!(a.list.tab, Tab::Paused, "nothing is known yet");
    load(&mut a, inbox_fixture());
    assert_eq!(a.list.tab, Tab::Inbox, "decisions wait: the inbox is the first view");
    a.settle();
    let ids: Vec<&str> = a
        .list
        .visible
        .iter()
        .map(|i| a.store.rows()[*i as usize].id.as_str())
        .collect();
    assert_eq!(ids, ["plain-old", "vm-1", "plain-new"], "only mine, oldest first");
    let screen = render(&mut a, 120, 40);
    assert!(screen.contains("INBOX 3") && screen.contains("PAUSED 4"), "{screen}");
    let vm_line = screen.lines().find(|l| l.contains("vm-1")).expect("vm-1 listed");
    assert!(vm_line.contains("yes"), "escalated to Managers, so to ana: {vm_line}");
    assert_snapshot!("inbox_120x40", screen);
    assert_snapshot!("inbox_80x24", render(&mut a, 80, 24));
    // tab goes on to every paused execution.
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.list.tab, Tab::Paused);
    a.settle();
    assert_eq!(a.list.visible.len(), 4);
}

#[test]
fn no_decisions_keeps_the_paused_list_and_a_chosen_tab_is_kept() {
    // A viewer decides nothing: the console stays on PAUSED; the inbox says why it is empty.
    let mut a = app();
    load(&mut a, inbox_fixture());
    a.apply(whoami("val@example.com", &[], &[("viewer", "")]));
    assert_eq!(a.list.tab, Tab::Paused);
    press(&mut a, KeyCode::BackTab);
    assert_eq!(a.list.tab, Tab::Inbox, "the inbox sits before PAUSED");
    let screen = render(&mut a, 80, 24);
    assert!(screen.contains("Nothing waits for your decision"), "{screen}");

    // Someone who moved to another tab before the answers came is not moved back.
    let mut a = app();
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.list.tab, Tab::Running);
    a.apply(whoami("ana@example.com", &["Managers"], &[("admin", "*")]));
    load(&mut a, inbox_fixture());
    assert_eq!(a.list.tab, Tab::Running, "the user's choice stands");
}

#[test]
fn a_decision_leaves_the_inbox_and_new_ones_arrive_live() {
    let mut a = app();
    load(&mut a, inbox_fixture());
    a.apply(whoami("ana@example.com", &[], &[("operator", "demo")]));
    assert_eq!(a.list.tab, Tab::Inbox);
    a.settle();
    assert_eq!(a.list.visible.len(), 2);
    event(
        &mut a,
        in_state(
            paused("plain-old", "demo", "deploy", "wait", 0, vec![]),
            "SUCCESS",
            NOW + 1,
        ),
    );
    a.settle();
    assert_eq!(a.list.visible.len(), 1, "the resumed one left the inbox");
    event(
        &mut a,
        paused("fresh", "demo.sub", "deploy", "wait", 10, approval_form()),
    );
    a.settle();
    assert_eq!(a.list.visible.len(), 2, "a new pause in a child namespace arrives");
}

fn page(executions: Vec<pb::Execution>, first: bool, last: bool) -> Update {
    Update::Page {
        tab: Tab::Paused,
        executions,
        forms: vec![],
        first,
        last,
    }
}

/// A reload of a loaded tab drops the rows it no longer returns (decided while we were not
/// watching) and keeps those a Watch event brought during the load; a first load (no rows of
/// the tab yet) keeps every row it listed and every row an event brought meanwhile.
#[test]
fn a_reload_drops_rows_it_no_longer_lists_and_keeps_live_ones() {
    let mut a = fresh_app();
    let row = |id: &str| paused(id, "demo", "pause_demo", "wait", 1_000, approval_form());
    a.apply(page(vec![], true, false));
    a.apply(page(vec![row("a"), row("b")], false, false));
    // Mid-load, a Watch event brings a new paused execution.
    a.apply(Update::Event(pb::ExecutionEvent {
        execution: Some(row("live1")),
        ..Default::default()
    }));
    a.apply(page(vec![row("c")], false, true));
    a.settle();
    let ids = |a: &App| {
        let mut ids: Vec<String> = a.store.rows().iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&a), ["a", "b", "c", "live1"]);

    // Reload: `a` and `live1` are no longer paused (not listed); `live2` arrives during it.
    a.apply(page(vec![], true, false));
    a.apply(Update::Event(pb::ExecutionEvent {
        execution: Some(row("live2")),
        ..Default::default()
    }));
    a.apply(page(vec![row("b"), row("c")], false, true));
    a.settle();
    assert_eq!(ids(&a), ["b", "c", "live2"]);
}
