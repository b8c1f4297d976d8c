//! Snapshots of every console view at 80x24 and 120x40, including empty, error and NO_COLOR
//! states. The clock is fixed (`NOW`) and ids are constants, so no masking is needed.

mod console_support;

use console_support::*;
use crossterm::event::KeyCode;
use insta::assert_snapshot;
use ratatui::style::{Color, Modifier};
use tollgate_console::console::app::{App, Screen};
use tollgate_console::console::messages::{Command, Connection, RpcError, Tab, Update};
use tollgate_console::console::theme::Theme;
use tollgate_proto::v1 as pb;

fn both(name: &str, app: &mut App) {
    assert_snapshot!(format!("{name}_80x24"), render(app, 80, 24));
    assert_snapshot!(format!("{name}_120x40"), render(app, 120, 40));
}

fn loaded() -> App {
    let mut a = app();
    load(&mut a, sample());
    a
}

#[test]
fn list_paused() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char(' '));
    press(&mut a, KeyCode::Char(' '));
    both("list_paused", &mut a);
}

#[test]
fn list_empty_loading_and_error() {
    let mut a = app();
    both("list_loading", &mut a);
    load(&mut a, vec![]);
    both("list_empty", &mut a);
    let mut e = app();
    e.apply(Update::ListFailed {
        tab: Tab::Paused,
        error: RpcError::new(tonic::Code::PermissionDenied, "alice@example.com needs the viewer role"),
    });
    both("list_error", &mut e);
}

#[test]
fn list_filter_and_tabs() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('/'));
    type_text(&mut a, "infra");
    both("list_filter", &mut a);
    press(&mut a, KeyCode::Esc);
    let mut running = sample()[0].clone();
    running.id = "6rU1nN2iN3gG4rR5uU6nN7".into();
    running.state = "RUNNING".into();
    running.pauses.clear();
    press(&mut a, KeyCode::Tab);
    a.apply(Update::Page {
        tab: Tab::Running,
        executions: vec![],
        forms: vec![],
        first: true,
        last: false,
    });
    // A change seen by Watch during the load survives the load's end.
    event(&mut a, running);
    a.apply(Update::Page {
        tab: Tab::Running,
        executions: vec![],
        forms: vec![],
        first: false,
        last: true,
    });
    both("list_running_tab", &mut a);
}

#[test]
fn connection_lost_banner() {
    let mut a = loaded();
    a.apply(Update::Connection(Connection::Lost {
        error: "daemon unreachable: tcp connect error".into(),
        retry_in_ms: 4_000,
    }));
    both("connection_lost", &mut a);
}

#[test]
fn no_color_uses_no_colors_and_stays_readable() {
    let mut a = app_with(Theme::MONO);
    load(&mut a, sample());
    press(&mut a, KeyCode::Char(' '));
    a.apply(Update::Connection(Connection::Lost {
        error: "gone".into(),
        retry_in_ms: 1_000,
    }));
    both("no_color_list", &mut a);
    let buf = render_buffer(&mut a, 80, 24);
    let mut reversed = 0;
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            Color::Reset,
            "no foreground colour under NO_COLOR at {:?}",
            cell.symbol()
        );
        assert_eq!(cell.bg, Color::Reset, "no background colour under NO_COLOR");
        if cell.modifier.contains(Modifier::REVERSED) {
            reversed += 1;
        }
    }
    assert!(reversed > 80, "header, banner and cursor row are shown reversed");
    // The colour theme does use colours (so the check above can fail).
    let mut c = loaded();
    let colored = render_buffer(&mut c, 80, 24);
    assert!(
        colored
            .content()
            .iter()
            .any(|cell| cell.fg != Color::Reset || cell.bg != Color::Reset)
    );
}

fn detail_app() -> App {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('G'));
    let cmds = press(&mut a, KeyCode::Enter);
    assert_eq!(
        cmds,
        vec![tollgate_console::console::messages::Command::GetExecution(
            "1aZ3bY5cX7dW9eV1fU3gT5".into()
        )]
    );
    let mut e = sample()[0].clone();
    e.inputs_json = r#"{"requester":"bob@example.com","token":"******"}"#.into();
    e.labels.insert("env".into(), "dev".into());
    e.task_runs.push(pb::TaskRun {
        id: "child-1".into(),
        task_id: "notify".into(),
        parent_task_run_id: e.task_runs[0].id.clone(),
        state: "SUCCESS".into(),
        attempt: 2,
        started_ms: NOW - 43_000,
        ended_ms: NOW - 42_800,
        outputs_json: r#"{"status":200}"#.into(),
        ..Default::default()
    });
    a.apply(Update::Execution(Ok(e)));
    a
}

#[test]
fn detail_paused_and_resumed() {
    let mut a = detail_app();
    both("detail_paused", &mut a);
    let done = {
        let mut e = in_state(sample()[0].clone(), "SUCCESS", NOW - 1_000);
        e.task_runs[1].outputs_json = r#"{"onResume":{"reason":"looks good","approved":true},"resumed":{"by":"alice@example.com","on":"2026-01-02T10:04:04Z","to":"RUNNING"}}"#.into();
        e.ended_ms = NOW - 500;
        e
    };
    event(&mut a, done);
    both("detail_resumed", &mut a);
}

/// Approvals with their comments (one by a delegate) and a rejection with its reason.
#[test]
fn detail_decisions_with_comments_and_a_rejection() {
    let mut a = detail_app();
    let mut e = in_state(sample()[0].clone(), "FAILED", NOW - 1_000);
    e.task_runs[1].state = "FAILED".into();
    e.task_runs[1].outputs_json = r#"{"rejected":{"by":"carol@example.com","reason":"over budget"}}"#.into();
    e.task_runs[1].decisions = vec![
        pb::Decision {
            by: "bob@example.com".into(),
            on_behalf_of: "ana@example.com".into(),
            on_ms: NOW - 5_000,
            comment: "covering for ana".into(),
            rejected: false,
        },
        pb::Decision {
            by: "carol@example.com".into(),
            on_ms: NOW - 2_000,
            comment: "over budget".into(),
            rejected: true,
            ..Default::default()
        },
    ];
    e.ended_ms = NOW - 500;
    event(&mut a, e);
    both("detail_decisions", &mut a);
}

/// A gate with an `sla`: due in the future, overdue before the daemon records it, and breached.
#[test]
fn detail_shows_the_gate_sla_and_its_breach() {
    let mut a = detail_app();
    let mut e = sample()[0].clone();
    e.task_runs[1].sla_due_ms = NOW + 3_600_000;
    event(&mut a, e.clone());
    assert_snapshot!("detail_sla_due_80x24", render(&mut a, 80, 24));
    e.task_runs[1].sla_due_ms = NOW - 10_000;
    e.task_runs[1].sla_breached_ms = NOW - 9_000;
    event(&mut a, e.clone());
    assert_snapshot!("detail_sla_breached_80x24", render(&mut a, 80, 24));
    // Decided after the breach: the breach stays next to the decision.
    let mut done = in_state(e, "SUCCESS", NOW - 1_000);
    done.task_runs[1].state = "SUCCESS".into();
    done.task_runs[1].ended_ms = NOW - 1_000;
    done.task_runs[1].decisions = vec![pb::Decision {
        by: "alice@example.com".into(),
        on_ms: NOW - 1_000,
        comment: "sorry, was out".into(),
        ..Default::default()
    }];
    done.ended_ms = NOW - 500;
    event(&mut a, done);
    assert_snapshot!("detail_sla_breached_then_decided_120x40", render(&mut a, 120, 40));
}

#[test]
fn detail_error() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('G'));
    press(&mut a, KeyCode::Enter);
    a.apply(Update::Execution(Err((
        "1aZ3bY5cX7dW9eV1fU3gT5".into(),
        RpcError::new(tonic::Code::NotFound, "execution '1aZ3bY5cX7dW9eV1fU3gT5' not found"),
    ))));
    assert_snapshot!("detail_error_80x24", render(&mut a, 80, 24));
}

#[test]
fn resume_form_string_and_boolean() {
    let mut a = loaded();
    // Rows 1 and 3 are both demo.pause_demo, waiting on the same form.
    for k in [' ', 'j', ' '] {
        press(&mut a, KeyCode::Char(k));
    }
    press(&mut a, KeyCode::Char('r'));
    type_text(&mut a, "ship it");
    both("resume_form", &mut a);
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Char(' '));
    both("resume_form_toggled", &mut a);
}

/// A pause form with Kestra's newer BOOL type and a SELECT whose values the daemon rendered from
/// `expression: "{{ kv('regions') }}"` (`autoSelectFirst`: the first value comes as the default).
#[test]
fn resume_form_bool_and_select_from_expression() {
    let mut a = app();
    let mut ok = input("approved", "BOOL");
    ok.display_name = "Approve?".into();
    ok.default_json = Some("true".into());
    let mut region = input("region", "SELECT");
    region.display_name = "Region".into();
    region.values = vec!["eu-west-1".into(), "us-east-1".into(), "ap-south-1".into()];
    region.default_json = Some("\"eu-west-1\"".into());
    load(
        &mut a,
        vec![paused(
            "4dX9expr",
            "acme.ops",
            "deploy",
            "approve",
            60_000,
            vec![ok, region],
        )],
    );
    press(&mut a, KeyCode::Char('r'));
    assert_snapshot!("resume_form_bool_select_expression_80x24", render(&mut a, 80, 24));
    // The BOOL toggles like a BOOLEAN; the SELECT moves through the rendered values.
    press(&mut a, KeyCode::Char(' '));
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Right);
    assert_snapshot!(
        "resume_form_bool_select_expression_changed_80x24",
        render(&mut a, 80, 24)
    );
}

#[test]
fn resume_form_errors_inline() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('r'));
    // Submitting with the required reason empty: client-side error under the field.
    ctrl(&mut a, 's');
    assert_snapshot!("resume_form_client_error_80x24", render(&mut a, 80, 24));
    type_text(&mut a, "x");
    let cmds = ctrl(&mut a, 's');
    let request = match cmds.as_slice() {
        [tollgate_console::console::messages::Command::BulkResume { request, .. }] => *request,
        other => panic!("expected one BulkResume, got {other:?}"),
    };
    // The daemon refuses the id with a typed error for the field: it lands under it, no second call.
    let cmds = a.apply(Update::Resumed {
        request,
        result: Ok(vec![pb::BulkResult {
            id: "1aZ3bY5cX7dW9eV1fU3gT5".into(),
            ok: false,
            code: "INVALID_ARGUMENT".into(),
            message: "1 input rejected".into(),
            input_errors: vec![pb::InputError {
                input_id: "reason".into(),
                message: "Invalid input for `reason`, it must match the pattern `^[A-Z].*`, but received `x`".into(),
            }],
        }]),
    });
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_snapshot!("resume_form_daemon_error_80x24", render(&mut a, 80, 24));
}

/// `^r` in the resume form: a flow that requires a reason refuses an empty one under the
/// Comment field; with a reason it asks to confirm, then rejects each execution with it.
#[test]
fn resume_form_rejects_with_the_comment_as_reason() {
    let mut a = app();
    let mut e = paused("5eR7reject", "acme.finance", "refund", "approve", 60_000, vec![]);
    e.pauses[0].rejection_reason_required = true;
    load(&mut a, vec![e]);
    press(&mut a, KeyCode::Char('r'));
    assert!(ctrl(&mut a, 'r').is_empty(), "no call without the required reason");
    assert_snapshot!("resume_form_reject_needs_reason_80x24", render(&mut a, 80, 24));
    type_text(&mut a, "over budget");
    assert!(ctrl(&mut a, 'r').is_empty(), "a confirmation comes first");
    both("reject_confirm", &mut a);
    let cmds = press(&mut a, KeyCode::Char('y'));
    let request = match cmds.as_slice() {
        [
            Command::Reject {
                request,
                targets,
                reason,
            },
        ] => {
            assert_eq!(targets, &vec![("5eR7reject".to_string(), "5eR7reject-t2".to_string())]);
            assert_eq!(reason, "over budget");
            *request
        }
        other => panic!("expected one Reject, got {other:?}"),
    };
    a.apply(Update::Rejected {
        request,
        results: vec![pb::BulkResult {
            id: "5eR7reject".into(),
            ok: true,
            code: "OK".into(),
            ..Default::default()
        }],
    });
    assert_snapshot!("reject_result_80x24", render(&mut a, 80, 24));
}

/// The comment typed in the form travels with the approval, not as one of the flow's inputs.
#[test]
fn resume_form_sends_the_comment_with_the_approval() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('r'));
    type_text(&mut a, "Ship it");
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Tab);
    type_text(&mut a, "checked the diff");
    assert_snapshot!("resume_form_comment_80x24", render(&mut a, 80, 24));
    match ctrl(&mut a, 's').as_slice() {
        [Command::BulkResume { inputs, comment, .. }] => {
            assert_eq!(comment, "checked the diff");
            assert!(!inputs.contains_key("comment"), "{inputs:?}");
            assert_eq!(inputs.get("reason").map(String::as_str), Some("Ship it"));
        }
        other => panic!("expected one BulkResume, got {other:?}"),
    }
}

/// Every widget type in one form (a start form over a flow declaring them all).
fn all_types_flow() -> pb::Flow {
    let mut inputs = Vec::new();
    let mut s = input("name", "STRING");
    s.display_name = "Name".into();
    s.description = "Who asks".into();
    s.default_json = Some("\"ops\"".into());
    inputs.push(s);
    inputs.push(input("token", "SECRET"));
    let mut b = input("dry_run", "BOOLEAN");
    b.required = false;
    inputs.push(b);
    let mut sel = input("env", "SELECT");
    sel.values = vec!["dev".into(), "staging".into(), "prod".into()];
    sel.allow_custom_value = true;
    inputs.push(sel);
    let mut m = input("regions", "MULTISELECT");
    m.values = vec!["eu-west".into(), "us-east".into(), "ap-south".into()];
    m.default_json = Some(r#"["eu-west"]"#.into());
    inputs.push(m);
    let mut i = input("replicas", "INT");
    i.min = "1".into();
    i.max = "9".into();
    i.default_json = Some("3".into());
    inputs.push(i);
    inputs.push(input("ratio", "FLOAT"));
    let mut d = input("start", "DATE");
    d.after = "2026-01-01".into();
    inputs.push(d);
    inputs.push(input("at", "DATETIME"));
    inputs.push(input("daily", "TIME"));
    inputs.push(input("window", "DURATION"));
    let mut j = input("extra", "JSON");
    j.default_json = Some(r#"{"a":1}"#.into());
    inputs.push(j);
    let mut arr = input("ids", "ARRAY");
    arr.item_type = "INT".into();
    inputs.push(arr);
    pb::Flow {
        namespace: "demo".into(),
        id: "all_inputs".into(),
        revision: 3,
        description: "Every input type".into(),
        source: "id: all_inputs\nnamespace: demo\n# every input type\ninputs:\n  - id: name\n    type: STRING\n    defaults: \"ops\"\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.name }}\"\n".into(),
        inputs,
        ..Default::default()
    }
}

fn flows_app() -> App {
    let mut a = loaded();
    let cmds = press(&mut a, KeyCode::Char('2'));
    assert_eq!(cmds, vec![tollgate_console::console::messages::Command::ListFlows]);
    a.apply(Update::Flows(Ok(vec![
        all_types_flow(),
        pb::Flow {
            namespace: "demo".into(),
            id: "pause_demo".into(),
            revision: 1,
            description: "Pause and resume".into(),
            ..Default::default()
        },
        pb::Flow {
            namespace: "infrastructure".into(),
            id: "vm_provisioning_approval".into(),
            revision: 2,
            description: "Approve a VM\nsecond line".into(),
            disabled: true,
            ..Default::default()
        },
    ])));
    a
}

#[test]
fn flows_list_source_and_start_form() {
    let mut a = flows_app();
    both("flows_list", &mut a);
    press(&mut a, KeyCode::Enter);
    both("flow_source", &mut a);
    press(&mut a, KeyCode::Char('s'));
    both("start_form_all_types", &mut a);
    // Move to the MULTISELECT and the JSON area to show their focused rendering.
    for _ in 0..4 {
        press(&mut a, KeyCode::Tab);
    }
    assert_snapshot!("start_form_multiselect_120x40", render(&mut a, 120, 40));
    for _ in 0..7 {
        press(&mut a, KeyCode::Tab);
    }
    assert_snapshot!("start_form_json_80x24", render(&mut a, 80, 24));
}

#[test]
fn flows_empty_and_error() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('2'));
    assert_snapshot!("flows_loading_80x24", render(&mut a, 80, 24));
    a.apply(Update::Flows(Ok(vec![])));
    assert_snapshot!("flows_empty_80x24", render(&mut a, 80, 24));
    a.apply(Update::Flows(Err(RpcError::new(
        tonic::Code::Unavailable,
        "connection refused",
    ))));
    assert_snapshot!("flows_error_80x24", render(&mut a, 80, 24));
}

fn record(seq: u64, user: &str, action: &str, exec: &str, result: &str) -> pb::AuditRecord {
    pb::AuditRecord {
        seq,
        time_ms: NOW - (100 - seq as i64) * 60_000,
        user: user.into(),
        action: action.into(),
        namespace: "demo".into(),
        flow_id: "pause_demo".into(),
        execution_id: exec.into(),
        task_id: if action == "resume" {
            "wait".into()
        } else {
            String::new()
        },
        values_json: if action == "resume" {
            r#"{"approved":true}"#.into()
        } else {
            String::new()
        },
        reason: String::new(),
        result: result.into(),
        ..Default::default()
    }
}

#[test]
fn audit_records_filters_and_unimplemented() {
    let mut a = loaded();
    let cmds = press(&mut a, KeyCode::Char('3'));
    assert!(matches!(
        cmds.as_slice(),
        [tollgate_console::console::messages::Command::ListAudit { .. }]
    ));
    a.apply(Update::Audit(Ok(vec![
        record(1, "bob@example.com", "start", "1aZ3bY5cX7dW9eV1fU3gT5", "ok"),
        record(2, "alice@example.com", "resume", "1aZ3bY5cX7dW9eV1fU3gT5", "ok"),
        record(3, "eve@example.com", "resume", "3kKv9cQeTfGh2JxYmNpR4s", "denied"),
    ])));
    both("audit", &mut a);
    let cmds = press(&mut a, KeyCode::Char('u'));
    assert_eq!(
        cmds,
        vec![tollgate_console::console::messages::Command::ListAudit {
            user: "eve@example.com".into(),
            execution_id: String::new()
        }]
    );
    a.apply(Update::Audit(Err(RpcError::new(
        tonic::Code::Unimplemented,
        "Audit.List",
    ))));
    both("audit_unimplemented", &mut a);
    assert_eq!(a.screen, Screen::Audit);
}

#[test]
fn bulk_result_view() {
    let mut a = loaded();
    // The three pause_demo executions are rows 1, 3 and 5 (longest waiting first).
    for k in [' ', 'j', ' ', 'j', ' '] {
        press(&mut a, KeyCode::Char(k));
    }
    press(&mut a, KeyCode::Char('r'));
    type_text(&mut a, "ok");
    let cmds = ctrl(&mut a, 's');
    let tollgate_console::console::messages::Command::BulkResume { request, ids, .. } = &cmds[0] else {
        panic!("{cmds:?}")
    };
    let results = vec![
        pb::BulkResult {
            id: ids[0].clone(),
            ok: true,
            code: "OK".into(),
            ..Default::default()
        },
        pb::BulkResult {
            id: ids[1].clone(),
            ok: false,
            code: "FAILED_PRECONDITION".into(),
            message: format!("Execution '{}' is not paused, can't resume it", ids[1]),
            ..Default::default()
        },
        pb::BulkResult {
            id: ids[2].clone(),
            ok: false,
            code: "PERMISSION_DENIED".into(),
            message: "Access denied to resume this execution".into(),
            ..Default::default()
        },
    ];
    a.apply(Update::Resumed {
        request: *request,
        result: Ok(results),
    });
    event(&mut a, in_state(sample()[0].clone(), "SUCCESS", NOW));
    both("bulk_result", &mut a);
}

fn log(seq: u64, level: &str, task: &str, msg: &str) -> pb::LogLine {
    pb::LogLine {
        seq,
        execution_id: "1aZ3bY5cX7dW9eV1fU3gT5".into(),
        task_id: task.into(),
        level: level.into(),
        message: msg.into(),
        time_ms: NOW - 60_000 + seq as i64 * 1_000,
        ..Default::default()
    }
}

fn logs_app() -> App {
    let mut a = loaded();
    let cmds = press(&mut a, KeyCode::Char('l'));
    let tollgate_console::console::messages::Command::TailLogs { stream, .. } = &cmds[0] else {
        panic!("{cmds:?}")
    };
    let mut lines: Vec<pb::LogLine> = (0..30)
        .map(|i| log(i, "INFO", "hello", &format!("step {i} of the deployment")))
        .collect();
    lines.push(log(
        30,
        "WARN",
        "wait",
        "waiting for approval from ops; a very long line that will need wrapping when the wrap toggle is on",
    ));
    lines.push(log(31, "ERROR", "notify", "webhook answered 500"));
    a.apply(Update::Logs {
        stream: *stream,
        batch: pb::LogBatch { lines, end: false },
    });
    a
}

#[test]
fn logs_follow_search_wrap_level() {
    let mut a = logs_app();
    both("logs_follow", &mut a);
    press(&mut a, KeyCode::Char('/'));
    type_text(&mut a, "step 1");
    press(&mut a, KeyCode::Enter);
    assert_snapshot!("logs_search_80x24", render(&mut a, 80, 24));
    press(&mut a, KeyCode::Char('G'));
    press(&mut a, KeyCode::Char('w'));
    assert_snapshot!("logs_wrap_80x24", render(&mut a, 80, 24));
    press(&mut a, KeyCode::Char('v'));
    press(&mut a, KeyCode::Char('v'));
    press(&mut a, KeyCode::Char('v'));
    assert_snapshot!("logs_level_warn_80x24", render(&mut a, 80, 24));
}

#[test]
fn logs_empty_and_error() {
    let mut a = loaded();
    let cmds = press(&mut a, KeyCode::Char('l'));
    let tollgate_console::console::messages::Command::TailLogs { stream, .. } = &cmds[0] else {
        panic!()
    };
    assert_snapshot!("logs_empty_80x24", render(&mut a, 80, 24));
    a.apply(Update::LogsError {
        stream: *stream,
        error: RpcError::new(tonic::Code::Unavailable, "connection reset"),
    });
    assert_snapshot!("logs_error_80x24", render(&mut a, 80, 24));
}

#[test]
fn help_screen() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('?'));
    both("help_list", &mut a);
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('r'));
    // In a text field `?` types; help for forms opens from a toggle.
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Char('?'));
    assert_snapshot!("help_form_80x24", render(&mut a, 80, 24));
}

#[test]
fn kill_confirm_popup() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('a'));
    press(&mut a, KeyCode::Char('K'));
    both("kill_confirm", &mut a);
}

#[test]
fn mixed_selection_popup() {
    let mut a = loaded();
    press(&mut a, KeyCode::Char('a'));
    press(&mut a, KeyCode::Char('r'));
    both("mismatch", &mut a);
}

/// Every cell of `buf` is free of colour.
fn assert_monochrome(buf: &ratatui::buffer::Buffer, what: &str) {
    for cell in buf.content() {
        assert_eq!(
            cell.fg,
            Color::Reset,
            "{what}: foreground colour at {:?}",
            cell.symbol()
        );
        assert_eq!(
            cell.bg,
            Color::Reset,
            "{what}: background colour at {:?}",
            cell.symbol()
        );
    }
}

#[test]
fn no_color_in_forms_logs_results_and_popups() {
    let mut a = app_with(Theme::MONO);
    load(&mut a, sample());
    press(&mut a, KeyCode::Char('K'));
    assert_monochrome(&render_buffer(&mut a, 80, 24), "kill popup");
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('r'));
    ctrl(&mut a, 's');
    assert_monochrome(&render_buffer(&mut a, 80, 24), "form with an error");
    assert_snapshot!("no_color_form_error_80x24", render(&mut a, 80, 24));
    press(&mut a, KeyCode::Esc);
    let cmds = press(&mut a, KeyCode::Char('l'));
    let tollgate_console::console::messages::Command::TailLogs { stream, .. } = &cmds[0] else {
        panic!()
    };
    let lines = vec![log(0, "ERROR", "hello", "disk full"), log(1, "INFO", "hello", "retry")];
    a.apply(Update::Logs {
        stream: *stream,
        batch: pb::LogBatch { lines, end: true },
    });
    press(&mut a, KeyCode::Char('/'));
    type_text(&mut a, "disk");
    press(&mut a, KeyCode::Enter);
    let buf = render_buffer(&mut a, 80, 24);
    assert_monochrome(&buf, "logs");
    // The search match stands out without colour.
    let hit = buf
        .content()
        .iter()
        .find(|c| c.symbol() == "d" && c.modifier.contains(Modifier::REVERSED));
    assert!(hit.is_some(), "match is reversed");
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('2'));
    a.apply(Update::Flows(Ok(vec![all_types_flow()])));
    press(&mut a, KeyCode::Enter);
    assert_monochrome(&render_buffer(&mut a, 120, 40), "flow source");
}

fn delegation(id: &str, from: &str, to: &str, days: (i64, i64), revoked: bool) -> pb::Delegation {
    const DAY: i64 = 86_400_000;
    let today = NOW - NOW.rem_euclid(DAY);
    pb::Delegation {
        id: id.into(),
        from_user: from.into(),
        to_user: to.into(),
        namespace: if revoked { String::new() } else { "hr".into() },
        from_ms: today + days.0 * DAY,
        until_ms: today + days.1 * DAY,
        created_by: from.into(),
        created_ms: NOW - DAY,
        revoked_ms: if revoked { NOW - 1_000 } else { 0 },
    }
}

/// `D` lists delegations; `n` opens the form whose fields become a CreateDelegation; `x` asks
/// before revoking.
#[test]
fn delegations_view_form_and_revoke() {
    let mut a = loaded();
    assert_eq!(
        press(&mut a, KeyCode::Char('D')),
        vec![Command::ListDelegations { all: false }]
    );
    a.apply(Update::Delegations(Ok(vec![
        delegation("dlg1", "alice@example.com", "bob@example.com", (0, 14), false),
        delegation("dlg2", "carol@example.com", "alice@example.com", (3, 5), false),
    ])));
    both("delegations", &mut a);
    press(&mut a, KeyCode::Char('n'));
    type_text(&mut a, "bob@example");
    press(&mut a, KeyCode::Tab);
    press(&mut a, KeyCode::Tab);
    type_text(&mut a, "2027-01-05");
    assert!(ctrl(&mut a, 's').is_empty(), "an invalid email is caught in the form");
    assert_snapshot!("delegate_form_error_80x24", render(&mut a, 80, 24));
    // The error focused the field it names: typing goes on there.
    type_text(&mut a, ".com");
    match ctrl(&mut a, 's').as_slice() {
        [Command::CreateDelegation { req, .. }] => {
            assert_eq!(req.to_user, "bob@example.com");
            assert_eq!(req.until_date, "2027-01-05");
            assert_eq!(req.from_date, "");
            assert_eq!(req.namespace, "");
        }
        other => panic!("expected one CreateDelegation, got {other:?}"),
    }
    press(&mut a, KeyCode::Esc);
    press(&mut a, KeyCode::Char('x'));
    assert_snapshot!("delegation_revoke_confirm_80x24", render(&mut a, 80, 24));
    assert_eq!(
        press(&mut a, KeyCode::Char('y')),
        vec![Command::RevokeDelegation { id: "dlg1".into() }]
    );
}
