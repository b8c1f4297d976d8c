//! Kestra's internal storage on a real daemon: FILE inputs (CLI, REST multipart, `onResume`),
//! `read()` and the other file functions, downloads, namespace scoping, the size cap, and
//! ForEachItem (a subflow per batch of a file), with assertions modelled on Kestra's own Java
//! tests (ForEachItemCaseTest, InputsTest) for the same constructs. Flows are our own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, assert_logged, curl, task_run};

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

fn task_ids(e: &Value) -> Vec<String> {
    e["taskRuns"]
        .as_array()
        .expect("taskRuns")
        .iter()
        .map(|r| {
            format!(
                "{}={}",
                r["taskId"].as_str().unwrap_or("?"),
                r["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn scratch(d: &Daemon, name: &str, content: &[u8]) -> PathBuf {
    let dir = d.data_dir.parent().expect("temp").join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write scratch file");
    path
}

fn download(d: &Daemon, id: &str, uri: &str) -> (u16, String) {
    curl(&[
        "-G",
        &format!("{}/api/v1/main/executions/{id}/file", d.server()),
        "--data-urlencode",
        &format!("path={uri}"),
    ])
}

/// Polls until the execution ends (any terminal state), with a generous deadline.
fn wait_ended(d: &Daemon, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let e = d.execution(id);
        let s = e["state"].as_str().unwrap_or_default().to_string();
        if ["SUCCESS", "WARNING", "FAILED", "KILLED"].contains(&s.as_str()) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} never ended; last seen:\n{e:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const READER: &str = r#"id: reader
namespace: company.team
inputs:
  - id: doc
    type: FILE
    extension: .txt
  - id: note
    type: FILE
    required: false
tasks:
  - id: content
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.doc) }}"
  - id: facts
    type: io.kestra.plugin.core.log.Log
    message: "size={{ fileSize(inputs.doc) }} exists={{ fileExists(inputs.doc) }} empty={{ isFileEmpty(inputs.doc) }}"
outputs:
  - id: o
    type: FILE
    value: "{{ inputs.doc }}"
"#;

/// As Kestra's InputsTest for FILE inputs: the upload is stored under the execution
/// (`kestra:///{namespace}/{flow}/executions/{id}/inputs/{input}/...`), the input's value is that
/// URI, tasks read it, and it can be downloaded; it survives `kill -9` of the daemon.
#[test]
fn file_input_uploaded_by_the_cli_is_read_downloaded_and_survives_kill9() {
    let mut d = Daemon::start();
    d.apply_flow("reader", READER);
    let file = scratch(&d, "doc.txt", b"line one\nline two\n");
    let e = d.cli_json(&[
        "run",
        "company.team",
        "reader",
        "--file",
        &format!("doc={}", file.display()),
        "--wait",
    ]);
    let id = id_of(&e);
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    let uri = e["inputs"]["doc"].as_str().expect("the input is a URI").to_string();
    assert_eq!(
        uri,
        format!("kestra:///company/team/reader/executions/{id}/inputs/doc/doc.txt")
    );
    assert!(
        e["inputs"]["note"].is_null(),
        "an optional FILE left out is null: {e:#}"
    );
    assert_eq!(task_run(&e, "content")["outputs"]["value"], "line one\nline two\n");
    assert_logged(&d, &id, "size=18 exists=true empty=false");
    assert_eq!(e["outputs"]["o"], uri.as_str());
    assert_eq!(download(&d, &id, &uri), (200, "line one\nline two\n".to_string()));

    d.kill9();
    d.restart();
    assert_eq!(download(&d, &id, &uri), (200, "line one\nline two\n".to_string()));
    // Only the execution's own files are served from its URL.
    let (code, body) = download(
        &d,
        &id,
        "kestra:///company/team/reader/executions/other/inputs/doc/doc.txt",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is not a file of execution"), "{body}");
}

/// Kestra's API takes FILE inputs as multipart file parts of the start request.
#[test]
fn file_input_uploaded_as_a_multipart_part_over_rest() {
    let d = Daemon::start();
    d.apply_flow("reader", READER);
    let file = scratch(&d, "upload.bin", b"from curl");
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/main/executions/company.team/reader", d.server()),
        "-F",
        &format!("doc=@{}", file.display()),
    ]);
    assert_eq!(code, 200, "{body}");
    let started: Value = serde_json::from_str(&body).expect("JSON");
    let e = wait_ended(&d, &id_of(&started));
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    assert_eq!(task_run(&e, "content")["outputs"]["value"], "from curl");
    // Kestra's clients name every file part `files`, with the input id as its file name.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/main/executions/company.team/reader", d.server()),
        "-F",
        &format!("files=@{};filename=doc", file.display()),
    ]);
    assert_eq!(code, 200, "{body}");
    let started: Value = serde_json::from_str(&body).expect("JSON");
    let e = wait_ended(&d, &id_of(&started));
    assert_eq!(task_run(&e, "content")["outputs"]["value"], "from curl");

    // A file for an input that is not FILE, or for no input, is refused and starts nothing.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/main/executions/company.team/reader", d.server()),
        "-F",
        &format!("doc=@{}", file.display()),
        "-F",
        &format!("nope=@{}", file.display()),
    ]);
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("Unknown input `nope`: a file was uploaded for it"),
        "{body}"
    );
    // Without the required FILE input.
    let (code, body) = curl(&[
        "-X",
        "POST",
        &format!("{}/api/v1/main/executions/company.team/reader", d.server()),
    ]);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("Missing required input `doc` (FILE)"), "{body}");
}

/// As Kestra, a flow reads only files of namespaces it may read: another namespace's file is
/// refused by `read()` and as a FILE input given by URI; the same namespace's works.
#[test]
fn files_are_scoped_to_their_namespace() {
    let d = Daemon::start();
    d.apply_flow("reader", READER);
    d.apply_flow(
        "snoop",
        r#"id: snoop
namespace: other.team
inputs:
  - id: uri
    type: STRING
tasks:
  - id: peek
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.uri) }}"
"#,
    );
    d.apply_flow(
        "other_reader",
        r#"id: other_reader
namespace: other.team
inputs:
  - id: doc
    type: FILE
tasks:
  - id: content
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.doc) }}"
"#,
    );
    let file = scratch(&d, "secret.txt", b"team only");
    let e = d.cli_json(&[
        "run",
        "company.team",
        "reader",
        "--file",
        &format!("doc={}", file.display()),
        "--wait",
    ]);
    let uri = e["inputs"]["doc"].as_str().expect("URI").to_string();

    let snooped = d.run_wait("other.team", "snoop", &[&format!("uri={uri}")]);
    assert_eq!(snooped["state"], "FAILED", "{snooped:#}");
    assert_logged(&d, &id_of(&snooped), "belongs to namespace `company.team`");

    let out = d.cli(&["run", "other.team", "other_reader", "--input", &format!("doc={uri}")]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("belongs to namespace `company.team`"), "{out}");

    // The same namespace may pass a file on by its URI; a URI that names nothing is refused.
    let again = d.run_wait("company.team", "reader", &[&format!("doc={uri}")]);
    assert_eq!(task_run(&again, "content")["outputs"]["value"], "team only");
    let out = d.cli(&[
        "run",
        "company.team",
        "reader",
        "--input",
        "doc=kestra:///company/team/reader/executions/nope/x",
    ]);
    assert!(!out.ok() && out.stderr.contains("does not exist"), "{out}");
    let out = d.cli(&["run", "company.team", "reader", "--input", "doc=/etc/passwd"]);
    assert!(!out.ok() && out.stderr.contains("be an uploaded file"), "{out}");
}

/// Files over 64 MiB are refused with the limit named; nothing starts.
#[test]
fn files_over_the_size_cap_are_refused() {
    let d = Daemon::start();
    d.apply_flow("reader", READER);
    let big = scratch(&d, "big.bin", &vec![b'x'; 64 * 1024 * 1024 + 1]);
    let out = d.cli(&[
        "run",
        "company.team",
        "reader",
        "--file",
        &format!("doc={}", big.display()),
    ]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("hold at most 67108864 bytes (64 MiB)"), "{out}");
    let list = d.cli_json(&["executions", "--state", "all", "--flow", "reader"]);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list:#}");
}

/// As Kestra's pause_on_resume: a FILE input of `onResume` is uploaded with the resume and its
/// URI is the pause's output.
#[test]
fn on_resume_file_input_is_uploaded_with_the_resume() {
    let d = Daemon::start();
    d.apply_flow(
        "approve_with_file",
        r#"id: approve_with_file
namespace: company.team
tasks:
  - id: pause
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: asked
        type: STRING
      - id: data
        type: FILE
        required: false
  - id: last
    type: io.kestra.plugin.core.output.OutputValues
    values:
      asked: "{{ outputs.pause.onResume.asked }}"
      data: "{{ read(outputs.pause.onResume.data) }}"
"#,
    );
    let e = d.run_wait("company.team", "approve_with_file", &[]);
    assert_eq!(e["state"], "PAUSED");
    let id = id_of(&e);
    let file = scratch(&d, "evidence.txt", b"signed off");
    let out = d.cli(&[
        "resume",
        &id,
        "--input",
        "asked=yes",
        "--file",
        &format!("data={}", file.display()),
    ]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&id, "SUCCESS");
    let uri = task_run(&e, "pause")["outputs"]["onResume"]["data"]
        .as_str()
        .expect("URI")
        .to_string();
    assert!(
        uri.starts_with(&format!(
            "kestra:///company/team/approve_with_file/executions/{id}/inputs/data/"
        )),
        "{uri}"
    );
    assert_eq!(task_run(&e, "last")["outputs"]["values"]["data"], "signed off");
    assert_eq!(task_run(&e, "last")["outputs"]["values"]["asked"], "yes");
}

const CHILD: &str = r#"id: batch_child
namespace: company.team
inputs:
  - id: items
    type: STRING
tasks:
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
outputs:
  - id: value
    type: STRING
    value: "{{ outputs.return.value }}"
"#;

fn lines(n: usize) -> Vec<u8> {
    (1..=n).map(|i| format!("row {i}\n")).collect::<String>().into_bytes()
}

/// As Kestra's ForEachItemCaseTest (forEachItem, forEachItemWithSubflowOutputs): 10 rows in
/// batches of 4 make 3 subflow executions whose `items` input is a batch file under
/// `tasks/{id}_split`; the ForEachItem has its 3 task runs, `_items` counts the executions by
/// state, and `_merge` holds one line of outputs per execution.
#[test]
fn for_each_item_runs_a_subflow_per_batch_and_merges_their_outputs() {
    let d = Daemon::start();
    d.apply_flow("batch_child", CHILD);
    d.apply_flow(
        "batches",
        r#"id: batches
namespace: company.team
inputs:
  - id: file
    type: FILE
  - id: batch
    type: INT
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: "{{ inputs.batch }}"
    namespace: company.team
    flowId: batch_child
    wait: true
    transmitFailed: true
    inputs:
      items: "{{ taskrun.items }}"
  - id: merged
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.each_merge.subflowOutputs) }}"
"#,
    );
    let file = scratch(&d, "rows.txt", &lines(10));
    let started = d.cli_json(&[
        "run",
        "company.team",
        "batches",
        "--file",
        &format!("file={}", file.display()),
        "--input",
        "batch=4",
    ]);
    let id = id_of(&started);
    let e = wait_ended(&d, &id);
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    assert_eq!(
        task_ids(&e),
        [
            "each=SUCCESS",
            "each_split=SUCCESS",
            "each_items=SUCCESS",
            "each_merge=SUCCESS",
            "merged=SUCCESS"
        ]
    );
    let items = task_run(&e, "each_items");
    assert_eq!(items["outputs"]["numberOfBatches"], 3);
    assert_eq!(items["outputs"]["iterations"]["SUCCESS"], 3);
    assert_eq!(items["outputs"]["iterations"]["CREATED"], 0);
    assert_eq!(items["outputs"]["iterations"]["RUNNING"], 0);

    let children = d.cli_json(&["executions", "--state", "all", "--flow", "batch_child"]);
    let children = children.as_array().expect("list");
    assert_eq!(children.len(), 3, "{children:#?}");
    let mut seen: Vec<String> = Vec::new();
    for c in children {
        let c = d.execution(&id_of(c));
        assert_eq!(c["state"], "SUCCESS", "{c:#}");
        assert_eq!(c["parentExecutionId"], id.as_str());
        let uri = c["inputs"]["items"].as_str().expect("items URI");
        assert!(
            uri.starts_with(&format!(
                "kestra:///company/team/batches/executions/{id}/tasks/each_split/"
            )) && uri.ends_with(".txt"),
            "{uri}"
        );
        assert_eq!(task_ids(&c).len(), 1);
        seen.push(
            task_run(&c, "return")["outputs"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "row 1\nrow 2\nrow 3\nrow 4",
            "row 5\nrow 6\nrow 7\nrow 8",
            "row 9\nrow 10"
        ]
    );

    let merged = task_run(&e, "merged")["outputs"]["value"]
        .as_str()
        .expect("merged")
        .to_string();
    let rows: Vec<Value> = merged
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 3, "{merged}");
    assert_eq!(rows[0]["value"], "row 1\nrow 2\nrow 3\nrow 4");
    assert_eq!(rows[2]["value"], "row 9\nrow 10");
}

const FAILING_CHILD: &str = r#"id: batch_fails
namespace: company.team
inputs:
  - id: items
    type: STRING
tasks:
  - id: fail
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: "no"
"#;

/// As Kestra's forEachItemFailed: every subflow fails, `_items` ends FAILED with them counted,
/// `_merge` never runs (3 task runs) and the execution fails; with `allowFailure` the
/// ForEachItem ends WARNING and the next task runs (task-allow-failure-executable-foreachitem).
#[test]
fn for_each_item_fails_with_its_subflows_unless_allowed() {
    let d = Daemon::start();
    d.apply_flow("batch_fails", FAILING_CHILD);
    let flow = |id: &str, allow: bool| {
        format!(
            r#"id: {id}
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    allowFailure: {allow}
    items: "{{{{ inputs.file }}}}"
    batch:
      rows: 4
    namespace: company.team
    flowId: batch_fails
    inputs:
      items: "{{{{ taskrun.items }}}}"
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: allowed
"#
        )
    };
    d.apply_flow("fei_failed", &flow("fei_failed", false));
    d.apply_flow("fei_allowed", &flow("fei_allowed", true));
    let file = scratch(&d, "rows.txt", &lines(8));
    let arg = format!("file={}", file.display());

    let e = d.cli_json(&["run", "company.team", "fei_failed", "--file", &arg]);
    let e = wait_ended(&d, &id_of(&e));
    assert_eq!(e["state"], "FAILED", "{e:#}");
    assert_eq!(task_ids(&e), ["each=FAILED", "each_split=SUCCESS", "each_items=FAILED"]);
    assert_eq!(task_run(&e, "each_items")["outputs"]["iterations"]["FAILED"], 2);
    assert_eq!(task_run(&e, "each_items")["outputs"]["numberOfBatches"], 2);

    let e = d.cli_json(&["run", "company.team", "fei_allowed", "--file", &arg]);
    let e = wait_ended(&d, &id_of(&e));
    assert_eq!(e["state"], "WARNING", "{e:#}");
    assert_eq!(task_run(&e, "each")["state"], "WARNING");
    assert_eq!(task_run(&e, "after")["state"], "SUCCESS");
}

/// As Kestra's forEachItemNoWait: the task ends once the subflows are started; they run on.
/// An empty file makes no batch and the ForEachItem succeeds (forEachItemEmptyItems).
#[test]
fn for_each_item_without_wait_and_with_no_items() {
    let d = Daemon::start();
    d.apply_flow("batch_child", CHILD);
    d.apply_flow(
        "fei_nowait",
        r#"id: fei_nowait
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      partitions: 2
    namespace: company.team
    flowId: batch_child
    wait: false
    inputs:
      items: "{{ taskrun.items }}"
"#,
    );
    let file = scratch(&d, "rows.txt", &lines(5));
    let e = d.cli_json(&[
        "run",
        "company.team",
        "fei_nowait",
        "--file",
        &format!("file={}", file.display()),
    ]);
    let e = wait_ended(&d, &id_of(&e));
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    assert_eq!(task_ids(&e).len(), 4, "{:?}", task_ids(&e));
    assert_eq!(task_run(&e, "each_items")["outputs"]["numberOfBatches"], 2);
    tollgate_tests::wait_for("both subflows to succeed", || {
        let list = d.cli_json(&["executions", "--state", "SUCCESS", "--flow", "batch_child"]);
        (list.as_array().map(Vec::len) == Some(2)).then_some(())
    });

    let empty = scratch(&d, "empty.txt", b"");
    let e = d.cli_json(&[
        "run",
        "company.team",
        "fei_nowait",
        "--file",
        &format!("file={}", empty.display()),
    ]);
    let e = wait_ended(&d, &id_of(&e));
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    assert_eq!(task_run(&e, "each_items")["outputs"]["numberOfBatches"], 0);
    assert!(
        task_run(&e, "each_merge")["outputs"]["subflowOutputs"].is_null(),
        "{e:#}"
    );
}

/// The batches, the count of ended subflows and their outputs are stored with each step: a
/// ForEachItem waiting on paused subflows picks up where it was after `kill -9`.
#[test]
fn for_each_item_survives_kill9_while_its_subflows_wait() {
    let mut d = Daemon::start();
    d.apply_flow(
        "batch_gate",
        r#"id: batch_gate
namespace: company.team
inputs:
  - id: items
    type: STRING
tasks:
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
  - id: return
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(inputs.items) | trim }}"
outputs:
  - id: value
    type: STRING
    value: "{{ outputs.return.value }}"
"#,
    );
    d.apply_flow(
        "fei_gated",
        r#"id: fei_gated
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 1
    namespace: company.team
    flowId: batch_gate
    inputs:
      items: "{{ taskrun.items }}"
"#,
    );
    let file = scratch(&d, "rows.txt", &lines(3));
    let e = d.cli_json(&[
        "run",
        "company.team",
        "fei_gated",
        "--file",
        &format!("file={}", file.display()),
    ]);
    let id = id_of(&e);
    let paused = tollgate_tests::wait_for("3 paused subflows", || {
        let list = d.cli_json(&["executions", "--state", "PAUSED", "--flow", "batch_gate"]);
        let ids: Vec<String> = list.as_array()?.iter().map(id_of).collect();
        (ids.len() == 3).then_some(ids)
    });
    // One ends before the crash, two after.
    assert!(d.cli(&["resume", &paused[0]]).ok());
    d.wait_state(&paused[0], "SUCCESS");
    tollgate_tests::wait_for("the first batch counted", || {
        let e = d.execution(&id);
        (task_run(&e, "each_items")["outputs"]["iterations"]["SUCCESS"] == 1).then_some(())
    });
    d.kill9();
    d.restart();
    assert_eq!(d.execution(&id)["state"], "RUNNING");
    for child in &paused[1..] {
        let out = d.cli(&["resume", child]);
        assert!(out.ok(), "{out}");
    }
    let e = wait_ended(&d, &id);
    assert_eq!(e["state"], "SUCCESS", "{e:#}");
    let items = task_run(&e, "each_items");
    assert_eq!(items["outputs"]["iterations"]["SUCCESS"], 3, "{items:#}");
    let merged = task_run(&e, "each_merge")["outputs"]["subflowOutputs"]
        .as_str()
        .expect("merged")
        .to_string();
    let (code, body) = download(&d, &id, &merged);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.lines().count(), 3, "{body}");
}

/// As Kestra's WorkingDirectoryTest (success, outputFiles, inputFiles): LocalFiles writes files
/// into the shared directory and stores the ones its `outputs` globs match (`uris`); a
/// WorkingDirectory's `outputFiles` are stored once its tasks succeeded; a script's
/// `inputFiles` given a `kestra:///` URI get that file, and its `outputFiles` are stored.
#[test]
fn local_files_and_output_files_move_files_through_the_storage() {
    let d = Daemon::start();
    d.apply_flow(
        "files_wd",
        r#"id: files_wd
namespace: company.team
inputs:
  - id: doc
    type: FILE
tasks:
  - id: worker
    type: io.kestra.plugin.core.flow.WorkingDirectory
    outputFiles:
      - "*.csv"
    tasks:
      - id: first
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          out/stay.txt: "{{ taskrun.id }}"
          copy.txt: "{{ inputs.doc }}"
      - id: script
        type: io.kestra.plugin.scripts.shell.Commands
        taskRunner:
          type: io.kestra.plugin.core.runner.Process
        commands:
          - tr a-z A-Z < copy.txt > loud.csv
      - id: second
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - out/*
  - id: stay
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.second.uris['out/stay.txt']) }}"
  - id: loud
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.worker.outputFiles['loud.csv']) }}"
  - id: again
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      in.txt: "{{ outputs.worker.outputFiles['loud.csv'] }}"
    outputFiles:
      - "**/*.out"
    commands:
      - mkdir -p deep && rev < in.txt > deep/result.out
  - id: result
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.again.outputFiles['deep/result.out']) }}"
"#,
    );
    let file = scratch(&d, "doc.txt", b"hello files\n");
    let e = d.cli_json(&[
        "run",
        "company.team",
        "files_wd",
        "--file",
        &format!("doc={}", file.display()),
        "--wait",
    ]);
    let e = wait_ended(&d, &id_of(&e));
    assert_eq!(e["state"], "SUCCESS", "{e:#}\n{}", d.log());
    let first = task_run(&e, "first")["id"].as_str().expect("run id").to_string();
    assert_eq!(task_run(&e, "stay")["outputs"]["value"], first.as_str());
    let stay_uri = task_run(&e, "second")["outputs"]["uris"]["out/stay.txt"]
        .as_str()
        .expect("uri");
    assert!(stay_uri.contains("/tasks/second/"), "{stay_uri}");
    assert_eq!(task_run(&e, "loud")["outputs"]["value"], "HELLO FILES\n");
    let kept = task_run(&e, "worker")["outputs"]["outputFiles"]
        .as_object()
        .expect("outputFiles")
        .clone();
    assert_eq!(
        kept.keys().collect::<Vec<_>>(),
        ["loud.csv"],
        "only the glob's matches are kept"
    );
    assert_eq!(task_run(&e, "result")["outputs"]["value"], "SELIF OLLEH\n");
}

/// As Kestra's WorkingDirectoryTest.cache: files matching `cache.patterns` are kept after a
/// successful run and are in the directory of the next run (until `ttl`); a run that changes
/// nothing keeps the old cache, and it survives `kill -9`.
#[test]
fn working_directory_cache_is_kept_between_executions() {
    let mut d = Daemon::start();
    d.apply_flow(
        "cached",
        r#"id: cached
namespace: company.team
tasks:
  - id: workingDir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    cache:
      ttl: PT5m
      patterns:
        - "*.txt"
    tasks:
      - id: exists
        type: io.kestra.plugin.core.storage.LocalFiles
        outputs:
          - hello.txt
      - id: inputFiles
        type: io.kestra.plugin.core.storage.LocalFiles
        inputs:
          hello.txt: "HELLO WORLD"
          other.log: "not cached"
"#,
    );
    let first = d.run_wait("company.team", "cached", &[]);
    let first = wait_ended(&d, &id_of(&first));
    assert_eq!(first["state"], "SUCCESS", "{first:#}");
    assert_eq!(task_ids(&first).len(), 3);
    assert_eq!(task_run(&first, "exists")["outputs"]["uris"], serde_json::json!({}));

    d.kill9();
    d.restart();
    let second = d.run_wait("company.team", "cached", &[]);
    let second = wait_ended(&d, &id_of(&second));
    assert_eq!(second["state"], "SUCCESS", "{second:#}");
    let uri = task_run(&second, "exists")["outputs"]["uris"]["hello.txt"]
        .as_str()
        .expect("the cached file is back")
        .to_string();
    assert_eq!(download(&d, &id_of(&second), &uri), (200, "HELLO WORLD".to_string()));
    assert_logged(&d, &id_of(&second), "cache restored: 1 files");
}

/// As Kestra: killing the execution of a ForEachItem kills the batch executions still running
/// (here, paused at an approval), and leaves those that had ended as they were.
#[test]
fn killing_a_for_each_item_parent_kills_its_running_batches() {
    let d = Daemon::start();
    d.apply_flow(
        "batch_gate",
        r#"id: batch_gate
namespace: company.team
inputs:
  - id: items
    type: FILE
tasks:
  - id: fast
    type: io.kestra.plugin.core.flow.If
    condition: "{{ fileSize(inputs.items) < 4 }}"
    then:
      - id: done
        type: io.kestra.plugin.core.log.Log
        message: short batch
    else:
      - id: gate
        type: io.kestra.plugin.core.flow.Pause
"#,
    );
    d.apply_flow(
        "gated_batches",
        r#"id: gated_batches
namespace: company.team
inputs:
  - id: file
    type: FILE
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEachItem
    items: "{{ inputs.file }}"
    batch:
      rows: 2
    namespace: company.team
    flowId: batch_gate
    wait: true
    inputs:
      items: "{{ taskrun.items }}"
"#,
    );
    // 5 rows of "rN\n" in batches of 2: two batches pause, the last (one row, 3 bytes) ends.
    let file = scratch(&d, "rows.txt", b"r1\nr2\nr3\nr4\nr5\n");
    let started = d.cli_json(&[
        "run",
        "company.team",
        "gated_batches",
        "--file",
        &format!("file={}", file.display()),
    ]);
    let id = id_of(&started);
    let children = |state: &str| -> Vec<Value> {
        let all = d.cli_json(&["executions", "--state", "all", "--flow", "batch_gate"]);
        all.as_array()
            .expect("list")
            .iter()
            .filter(|e| e["state"] == state)
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while children("PAUSED").len() < 2 || children("SUCCESS").is_empty() {
        assert!(std::time::Instant::now() < deadline, "batches never paused");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    assert!(d.cli(&["kill", &id]).ok());
    let e = wait_ended(&d, &id);
    assert_eq!(e["state"], "KILLED", "{e:#}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !children("PAUSED").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "paused batches of a killed parent must be killed: {:#?}",
            children("PAUSED")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(children("KILLED").len(), 2);
    assert_eq!(children("SUCCESS").len(), 1, "an ended batch stays as it ended");
}
