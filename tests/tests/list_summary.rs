//! `Executions.List` with `view = SUMMARY` (the console's rows): the same executions, in the same
//! order and pages, under the same filters and the same authorization as the FULL view, each
//! with the FULL execution's row fields and pauses, and every pause form of a page once.

mod auth_common;

use std::collections::HashMap;

use auth_common::{ADMIN, OUTSIDER, VIEWER, channel, req, team};
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::executions_client::ExecutionsClient;
use tollgate_tests::Daemon;
use tonic::Code;
use tonic::transport::Channel;

/// Every page of a List (`page_size` rows each) as `token`, rows and forms. A SUMMARY list is
/// also read as one `ListRows` stream, which must give the same rows (same order) or the same
/// refusal, and each of the same forms once.
async fn list_all(
    ex: &mut ExecutionsClient<Channel>,
    base: &pb::ListExecutionsRequest,
    view: pb::ExecutionView,
    token: Option<&str>,
) -> Result<(Vec<pb::Execution>, Vec<Vec<pb::PauseForm>>), tonic::Status> {
    let paged = list_pages(ex, base, view, token).await;
    if view == pb::ExecutionView::Summary {
        let streamed = list_stream(ex, base, token).await;
        match (&paged, &streamed) {
            (Ok((rows, forms)), Ok((stream_rows, stream_forms))) => {
                assert_eq!(stream_rows, rows, "ListRows rows = List SUMMARY rows");
                let mut keys: Vec<&str> = stream_forms.iter().map(|f| f.form_key.as_str()).collect();
                keys.sort();
                let n = keys.len();
                keys.dedup();
                assert_eq!(keys.len(), n, "each form once per stream: {stream_forms:?}");
                let mut paged_forms: Vec<&pb::PauseForm> = forms.iter().flatten().collect();
                paged_forms.sort_by(|a, b| a.form_key.cmp(&b.form_key));
                paged_forms.dedup_by(|a, b| a.form_key == b.form_key);
                let mut stream_sorted: Vec<&pb::PauseForm> = stream_forms.iter().collect();
                stream_sorted.sort_by(|a, b| a.form_key.cmp(&b.form_key));
                assert_eq!(stream_sorted, paged_forms, "ListRows forms = List SUMMARY forms");
            }
            (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{a:?} / {b:?}"),
            (a, b) => panic!("List and ListRows disagree: {a:?} / {b:?}"),
        }
    }
    paged
}

/// Rows and forms of a `ListRows` stream, each row decoded from its bytes.
async fn list_stream(
    ex: &mut ExecutionsClient<Channel>,
    base: &pb::ListExecutionsRequest,
    token: Option<&str>,
) -> Result<(Vec<pb::Execution>, Vec<pb::PauseForm>), tonic::Status> {
    use prost::Message;
    let mut stream = ex.list_rows(req(base.clone(), token)).await?.into_inner();
    let (mut rows, mut forms) = (Vec::new(), Vec::new());
    while let Some(page) = stream.message().await? {
        for row in page.executions {
            rows.push(pb::Execution::decode(row).expect("a row decodes as an Execution"));
        }
        forms.extend(page.forms);
        if page.next_page_token.is_empty() {
            break;
        }
        assert!(rows.len() < 10_000, "the stream does not end");
    }
    Ok((rows, forms))
}

/// Every page of a List, one call per page.
async fn list_pages(
    ex: &mut ExecutionsClient<Channel>,
    base: &pb::ListExecutionsRequest,
    view: pb::ExecutionView,
    token: Option<&str>,
) -> Result<(Vec<pb::Execution>, Vec<Vec<pb::PauseForm>>), tonic::Status> {
    let mut rows = Vec::new();
    let mut forms = Vec::new();
    let mut token_page = String::new();
    loop {
        let r = ex
            .list(req(
                pb::ListExecutionsRequest {
                    page_token: token_page.clone(),
                    view: view as i32,
                    ..base.clone()
                },
                token,
            ))
            .await?
            .into_inner();
        rows.extend(r.executions);
        forms.push(r.forms);
        if r.next_page_token.is_empty() {
            return Ok((rows, forms));
        }
        token_page = r.next_page_token;
        assert!(rows.len() < 10_000, "paging does not end");
    }
}

/// What a summary keeps of a whole execution.
fn as_summary(e: &pb::Execution) -> pb::Execution {
    let mut s = e.clone();
    s.task_runs.clear();
    s.inputs_json.clear();
    s.outputs_json.clear();
    s.trigger_json.clear();
    for p in &mut s.pauses {
        p.on_resume.clear();
    }
    s
}

const PICK_REGION: &str = r#"id: pick_region
namespace: test.sum
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: region
        type: SELECT
        expression: "{{ kv('regions') }}"
  - id: show
    type: io.kestra.plugin.core.log.Log
    message: "region={{ outputs.approve.onResume.region }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_rows_match_full_rows_under_every_filter_and_page_size() {
    let d = Daemon::start();
    assert!(
        d.cli(&[
            "kv",
            "set",
            "test.sum",
            "regions",
            r#"["eu-west-1","us-east-1"]"#,
            "--type",
            "JSON"
        ])
        .ok()
    );
    d.apply_flow("pick_region", PICK_REGION);
    let mut ex = ExecutionsClient::new(
        tonic::transport::Endpoint::from_shared(d.server())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect"),
    );
    let mut ids = Vec::new();
    for (i, (ns, flow)) in [
        ("test", "approval"),
        ("test", "approval"),
        ("test", "approval"),
        ("test", "parallel_gates"),
        ("test", "human"),
        ("console", "triage"),
        ("test.sum", "pick_region"),
        ("test", "approval"),
    ]
    .into_iter()
    .enumerate()
    {
        let e = ex
            .start(pb::StartRequest {
                namespace: ns.into(),
                flow_id: flow.into(),
                labels: HashMap::from([("team".to_string(), format!("t{}", i % 2))]),
                ..Default::default()
            })
            .await
            .expect("start")
            .into_inner()
            .execution
            .expect("execution");
        d.wait_state(&e.id, "PAUSED");
        ids.push(e.id);
    }
    // One finished execution (resumed) and one paused twice over (both Parallel gates waiting).
    let last = ids.last().expect("ids").clone();
    let out = d.cli(&["resume", &last, "--input", "approved=true", "--input", "reason=ok"]);
    assert!(out.ok(), "{out}");
    d.wait_state(&last, "SUCCESS");

    let filters = [
        pb::ListExecutionsRequest::default(),
        pb::ListExecutionsRequest {
            states: vec!["PAUSED".into()],
            ..Default::default()
        },
        pb::ListExecutionsRequest {
            states: vec!["SUCCESS".into(), "PAUSED".into()],
            ..Default::default()
        },
        pb::ListExecutionsRequest {
            namespace: "test".into(),
            ..Default::default()
        },
        pb::ListExecutionsRequest {
            namespace: "console".into(),
            ..Default::default()
        },
        pb::ListExecutionsRequest {
            namespace: "test".into(),
            flow_id: "approval".into(),
            states: vec!["PAUSED".into()],
            ..Default::default()
        },
    ];
    for filter in filters {
        for page_size in [1, 2, 1000] {
            let base = pb::ListExecutionsRequest {
                page_size,
                ..filter.clone()
            };
            let (full, _) = list_all(&mut ex, &base, pb::ExecutionView::Full, None)
                .await
                .expect("full");
            let (rows, forms) = list_all(&mut ex, &base, pb::ExecutionView::Summary, None)
                .await
                .expect("summary");
            let full_ids: Vec<&str> = full.iter().map(|e| e.id.as_str()).collect();
            let row_ids: Vec<&str> = rows.iter().map(|e| e.id.as_str()).collect();
            assert_eq!(row_ids, full_ids, "{base:?}");
            assert!(!rows.is_empty(), "{base:?} lists something");
            let per_page = page_size as usize;
            for (i, (row, whole)) in rows.iter().zip(&full).enumerate() {
                assert_eq!(row, &as_summary(whole), "{base:?}");
                assert!(row.task_runs.is_empty() && row.inputs_json.is_empty());
                // Each pause's form is on the row's page, the same as the whole execution's.
                let page = &forms[i / per_page];
                for (p, w) in row.pauses.iter().zip(&whole.pauses) {
                    let form = page
                        .iter()
                        .find(|f| f.form_key == p.form_key)
                        .unwrap_or_else(|| panic!("form {} of {} not on its page", p.form_key, row.id));
                    assert_eq!(form.on_resume, w.on_resume, "{}", row.id);
                }
            }
            // Forms come once per page however many rows share them.
            for page in &forms {
                let mut keys: Vec<&str> = page.iter().map(|f| f.form_key.as_str()).collect();
                let n = keys.len();
                keys.sort();
                keys.dedup();
                assert_eq!(keys.len(), n, "a form sent twice on one page");
            }
        }
    }

    // The whole set, checked once more for what the rows must show.
    let (rows, forms) = list_all(
        &mut ex,
        &pb::ListExecutionsRequest {
            page_size: 1000,
            ..Default::default()
        },
        pb::ExecutionView::Summary,
        None,
    )
    .await
    .expect("summary");
    let gates = rows
        .iter()
        .find(|r| r.flow_id == "parallel_gates")
        .expect("parallel_gates row");
    assert_eq!(gates.pauses.len(), 2, "{gates:?}");
    let human = rows.iter().find(|r| r.flow_id == "human").expect("human row");
    assert_eq!(human.pauses[0].assignee_users, vec!["approver@example.com".to_string()]);
    let pick = rows.iter().find(|r| r.flow_id == "pick_region").expect("pick row");
    let region = forms[0]
        .iter()
        .find(|f| f.form_key == pick.pauses[0].form_key)
        .expect("rendered form")
        .on_resume
        .iter()
        .find(|i| i.id == "region")
        .expect("region input")
        .values
        .clone();
    assert_eq!(region, vec!["eu-west-1".to_string(), "us-east-1".to_string()]);
    let approvals: Vec<&pb::Execution> = rows
        .iter()
        .filter(|r| r.flow_id == "approval" && r.state == "PAUSED")
        .collect();
    assert_eq!(approvals.len(), 3);
    assert!(
        approvals
            .iter()
            .all(|r| r.pauses[0].form_key == approvals[0].pauses[0].form_key)
    );
    assert!(
        rows.iter()
            .any(|r| r.state == "SUCCESS" && r.pauses.is_empty() && r.ended_ms > 0)
    );
    assert!(rows.iter().all(|r| r.labels.contains_key("team")), "{rows:?}");

    // A view this daemon does not know is refused, naming it.
    let bad = ex
        .list(pb::ListExecutionsRequest {
            view: 7,
            ..Default::default()
        })
        .await
        .expect_err("unknown view");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("view 7"), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summary_lists_only_what_the_caller_may_read() {
    let team = team();
    let admin = team.token(ADMIN);
    let mut ex = ExecutionsClient::new(channel(&team.d).await);
    let mut started = Vec::new();
    for (ns, flow) in [("test", "approval"), ("console", "triage"), ("test", "approval")] {
        let e = ex
            .start(req(
                pb::StartRequest {
                    namespace: ns.into(),
                    flow_id: flow.into(),
                    ..Default::default()
                },
                Some(&admin),
            ))
            .await
            .expect("admin starts")
            .into_inner()
            .execution
            .expect("execution");
        started.push((ns, e.id));
    }
    let paused = pb::ListExecutionsRequest {
        states: vec!["PAUSED".into()],
        page_size: 1,
        ..Default::default()
    };
    // Wait (generous deadline) until the admin sees all three paused.
    let mut all = Vec::new();
    for _ in 0..400 {
        all = list_pages(&mut ex, &paused, pb::ExecutionView::Summary, Some(&admin))
            .await
            .expect("admin lists")
            .0;
        if all.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(all.len(), 3, "{all:?}");

    // Viewer of `test`, operator of `console`: each sees their namespace's rows and nothing else,
    // page by page (a hidden row neither shows nor ends a page early), as with FULL.
    for (who, ns) in [(VIEWER, "test"), (OUTSIDER, "console")] {
        let token = team.token(who);
        let (rows, forms) = list_all(&mut ex, &paused, pb::ExecutionView::Summary, Some(&token))
            .await
            .expect("lists");
        let want: Vec<&str> = started
            .iter()
            .filter(|(n, _)| *n == ns)
            .map(|(_, id)| id.as_str())
            .collect();
        let mut got: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        got.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got, want_sorted, "{who}");
        assert!(rows.iter().all(|r| r.namespace == ns), "{who}: {rows:?}");
        // No form of a flow the caller may not read.
        let visible_keys: Vec<&str> = rows
            .iter()
            .flat_map(|r| r.pauses.iter().map(|p| p.form_key.as_str()))
            .collect();
        assert!(
            forms
                .iter()
                .flatten()
                .all(|f| visible_keys.contains(&f.form_key.as_str())),
            "{who}: {forms:?}"
        );
        // The stream, on its own: not one row (nor form) of a namespace the caller may not read.
        let (streamed, stream_forms) = list_stream(&mut ex, &paused, Some(&token)).await.expect("streams");
        assert!(streamed.iter().all(|r| r.namespace == ns), "{who}: {streamed:?}");
        assert_eq!(streamed.len(), want.len(), "{who}");
        assert!(
            stream_forms.iter().all(|f| visible_keys.contains(&f.form_key.as_str())),
            "{who}: {stream_forms:?}"
        );
        let (full, _) = list_all(&mut ex, &paused, pb::ExecutionView::Full, Some(&token))
            .await
            .expect("lists");
        let full_ids: Vec<&str> = full.iter().map(|r| r.id.as_str()).collect();
        let row_ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(row_ids, full_ids, "{who}");
    }

    // No token: refused, as FULL.
    let err = list_all(&mut ex, &paused, pb::ExecutionView::Summary, None)
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
}

/// Every row of a SUMMARY list (read from the state index alone) equals the FULL row of the same
/// execution (read from the executions table), page size 1 and 1000.
async fn assert_summary_rows_exact(ex: &mut ExecutionsClient<Channel>, when: &str) -> Vec<pb::Execution> {
    let mut last = Vec::new();
    for page_size in [1, 1000] {
        let base = pb::ListExecutionsRequest {
            page_size,
            ..Default::default()
        };
        let (full, _) = list_all(ex, &base, pb::ExecutionView::Full, None).await.expect("full");
        let (rows, _) = list_all(ex, &base, pb::ExecutionView::Summary, None)
            .await
            .expect("summary");
        let expected: Vec<pb::Execution> = full.iter().map(as_summary).collect();
        assert_eq!(rows, expected, "{when}, page size {page_size}");
        last = rows;
    }
    last
}

async fn connect(d: &Daemon) -> ExecutionsClient<Channel> {
    ExecutionsClient::new(
        tonic::transport::Endpoint::from_shared(d.server())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect"),
    )
}

/// Two approvals needed; `local-admin` is who every caller is under `--insecure-no-auth`.
const TWO_APPROVALS: &str = "id: two_approvals\nnamespace: test\ntasks:\n  - id: sign_off\n    type: io.kestra.plugin.ee.flow.HumanTask\n    approvals: 2\n    assignment:\n      users:\n        - local-admin\n        - ana@example.com\n";

/// The row summary kept in the state index follows every change that leaves the state as it is
/// (one of two gates resumed, one approval of two) and every state change, survives `kill -9`,
/// and a finished execution's row is the finished one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_rows_stay_exact_across_partial_resumes_approvals_and_a_kill() {
    let mut d = Daemon::start();
    d.apply_flow("two_approvals", TWO_APPROVALS);
    let mut ex = connect(&d).await;
    let mut ids = HashMap::new();
    for flow in ["parallel_gates", "two_approvals", "human", "approval"] {
        let e = ex
            .start(pb::StartRequest {
                namespace: "test".into(),
                flow_id: flow.into(),
                labels: HashMap::from([("team".to_string(), flow.to_string())]),
                ..Default::default()
            })
            .await
            .expect("start")
            .into_inner()
            .execution
            .expect("execution");
        d.wait_state(&e.id, "PAUSED");
        ids.insert(flow, e.id);
    }
    let rows = assert_summary_rows_exact(&mut ex, "all paused").await;
    let row = |rows: &[pb::Execution], flow: &str| rows.iter().find(|r| r.flow_id == flow).cloned().expect(flow);
    assert_eq!(row(&rows, "parallel_gates").pauses.len(), 2);

    // One gate of two: the execution stays PAUSED (its index key may not move), its row loses
    // that pause.
    let gates = &ids["parallel_gates"];
    let out = d.cli(&["resume", gates, "--task", "legal", "--input", "ok=true"]);
    assert!(out.ok(), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let e = d.cli_json(&["executions", "get", gates]);
        let legal_done = e["taskRuns"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["taskId"] == "legal" && r["state"] == "SUCCESS");
        if legal_done {
            assert_eq!(e["state"], "PAUSED", "{e:#}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "legal not resumed: {e:#}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rows = assert_summary_rows_exact(&mut ex, "one gate of two resumed").await;
    let g = row(&rows, "parallel_gates");
    assert_eq!((g.state.as_str(), g.pauses.len()), ("PAUSED", 1), "{g:?}");
    assert_eq!(g.pauses[0].task_id, "finance");

    // One approval of two: still PAUSED, the row shows who approved.
    let two = &ids["two_approvals"];
    let out = d.cli(&["resume", two]);
    assert!(out.ok(), "{out}");
    let rows = assert_summary_rows_exact(&mut ex, "one approval of two").await;
    let t = row(&rows, "two_approvals");
    assert_eq!(t.state, "PAUSED");
    assert_eq!(t.pauses[0].approved_by.len(), 1, "{t:?}");

    // kill -9 and start again: the rows read back from the index are the same.
    d.kill9();
    d.restart();
    let mut ex = connect(&d).await;
    let after = assert_summary_rows_exact(&mut ex, "after kill -9").await;
    assert_eq!(after, rows);

    // State changes: the rest resumed to the end; finished rows are finished ones.
    let out = d.cli(&["resume", gates, "--task", "finance", "--input", "budget=5"]);
    assert!(out.ok(), "{out}");
    d.wait_state(gates, "SUCCESS");
    let approval = &ids["approval"];
    let out = d.cli(&["resume", approval, "--input", "approved=true", "--input", "reason=ok"]);
    assert!(out.ok(), "{out}");
    d.wait_state(approval, "SUCCESS");
    let rows = assert_summary_rows_exact(&mut ex, "after state changes").await;
    for flow in ["parallel_gates", "approval"] {
        let r = row(&rows, flow);
        assert_eq!(r.state, "SUCCESS", "{r:?}");
        assert!(r.pauses.is_empty() && r.ended_ms > 0, "{r:?}");
        assert_eq!(r.labels["team"], flow);
    }
}
