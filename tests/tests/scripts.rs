//! Script tasks (shell / python Commands and Script) against a real daemon: real child
//! processes, their output streamed into the execution's log while they run, outputs from
//! `::{"outputs":{...}}::`, exit codes, timeouts and kills that end the whole process group.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, binaries, log_messages, task_run, workspace_root};

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

/// A scratch directory next to the daemon's data dir, for pid and signal files.
fn scratch(d: &Daemon) -> PathBuf {
    let dir = d.data_dir.parent().expect("temp").join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Polls `cond` until it holds, failing with `what` after a generous deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not count).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file)
        .ok()?
        .trim()
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn outputs_env_and_input_files() {
    let d = Daemon::start();
    d.apply_flow("outputs",
        r#"id: outputs
namespace: test.scripts
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    env:
      GREETING: "hello {{ inputs.who }}"
    inputFiles:
      data/in.txt: "file for {{ inputs.who }}"
    commands:
      - echo "$GREETING"
      - cat data/in.txt; echo
      - test "$PWD" = "$WORKING_DIR" && test "{{ workingDir }}" = "$PWD" && echo "in the working dir"
      - echo '::{"outputs":{"first":1,"shared":"a"}}::'
      - echo '::{"outputs":{"second":"two","shared":"b"}}::'
      - echo '::{"outputs":{"dir":"'"$PWD"'"}}::'
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.sh.vars.first }} {{ outputs.sh.vars.second }} {{ outputs.sh.vars.shared }} exit={{ outputs.sh.exitCode }}"
"#,
    );
    let id = id_of(&d.run_nowait("test.scripts", "outputs", &["who=tollgate"]));
    let e = d.wait_state(&id, "SUCCESS");
    let sh = task_run(&e, "sh");
    assert_eq!(sh["outputs"]["vars"]["first"], 1, "{e:#}");
    assert_eq!(sh["outputs"]["vars"]["second"], "two");
    assert_eq!(
        sh["outputs"]["vars"]["shared"], "b",
        "later outputs lines win, as in Kestra"
    );
    assert_eq!(sh["outputs"]["exitCode"], 0);
    assert_eq!(task_run(&e, "after")["outputs"]["value"], "1 two b exit=0");
    let logs = log_messages(&d, &id);
    for line in ["hello tollgate", "file for tollgate", "in the working dir"] {
        assert!(logs.iter().any(|l| l == line), "missing `{line}` in {logs:#?}");
    }
    assert!(
        !logs.iter().any(|l| l.contains("::{")),
        "outputs lines are not logged: {logs:#?}"
    );
    let dir = sh["outputs"]["vars"]["dir"].as_str().expect("dir").to_string();
    assert!(
        dir.starts_with(d.data_dir.to_str().expect("path")),
        "the working dir is under the data dir: {dir}"
    );
    assert!(!Path::new(&dir).exists(), "the working dir is removed afterwards");
}

#[test]
fn a_non_zero_exit_code_fails_the_task_naming_it() {
    let d = Daemon::start();
    d.apply_flow("exits",
        "id: exits\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Script\n    script: |\n      echo before\n      echo oops >&2\n      exit 3\n      echo never\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: not reached\n",
    );
    let id = id_of(&d.run_nowait("test.scripts", "exits", &[]));
    let e = d.wait_state(&id, "FAILED");
    assert_eq!(task_run(&e, "sh")["state"], "FAILED");
    let out = d.cli(&["logs", &id, "-o", "json"]);
    let lines: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |msg: &str| lines.iter().find(|l| l["message"] == msg).cloned();
    assert_eq!(find("before").map(|l| l["level"].clone()), Some("INFO".into()), "{out}");
    assert_eq!(
        find("oops").map(|l| l["level"].clone()),
        Some("ERROR".into()),
        "stderr: {out}"
    );
    assert!(find("never").is_none(), "{out}");
    assert!(
        lines.iter().any(|l| l["message"] == "the command exited with code 3"),
        "{out}"
    );
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let d = Daemon::start();
    let pid_file = scratch(&d).join("grandchild.pid");
    d.apply_flow("slow",
        &format!(
            "id: slow\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    timeout: PT1S\n    commands:\n      - sleep 300 &\n      - echo $! > {}\n      - wait\n",
            pid_file.display()
        ),
    );
    let id = id_of(&d.run_nowait("test.scripts", "slow", &[]));
    let e = d.wait_state(&id, "FAILED");
    assert_eq!(task_run(&e, "sh")["state"], "FAILED");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter().any(|l| l.contains("timed out after PT1S")),
        "the failure names the timeout: {logs:#?}"
    );
    let pid = read_pid(&pid_file).expect("the script wrote its background child's pid");
    eventually("the background grandchild is gone", || !alive(pid));
}

#[test]
fn killing_the_execution_kills_the_process() {
    let d = Daemon::start();
    let pid_file = scratch(&d).join("child.pid");
    d.apply_flow("long",
        &format!(
            "id: long\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 300 &\n      - echo $! > {}\n      - echo started\n      - wait\n",
            pid_file.display()
        ),
    );
    let id = id_of(&d.run_nowait("test.scripts", "long", &[]));
    eventually("the script's first line in the log", || {
        log_messages(&d, &id).iter().any(|l| l == "started")
    });
    let pid = read_pid(&pid_file).expect("pid written before `started`");
    assert!(alive(pid));
    assert!(d.cli(&["kill", &id]).ok());
    d.wait_state(&id, "KILLED");
    eventually("the script's process group is gone", || !alive(pid));
}

/// The log of a running script is the log: a follower sees a line while the script still runs
/// (it waits for a file only the test creates, after it has seen the line).
#[test]
fn lines_reach_logs_follow_while_the_script_runs() {
    let d = Daemon::start();
    let go = scratch(&d).join("go");
    d.apply_flow("waits",
        &format!(
            "id: waits\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - echo first line\n      - while [ ! -f {go} ]; do sleep 0.1; done\n      - echo second line\n",
            go = go.display()
        ),
    );
    let id = id_of(&d.run_nowait("test.scripts", "waits", &[]));
    let mut follower = Command::new(&binaries().tollgate)
        .args(["--server", &d.server(), "logs", &id, "-f"])
        .env_remove("TOLLGATE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tollgate logs -f");
    let stdout = follower.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_line = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) => continue,
                Err(_) => panic!("`logs -f` never printed `{needle}`"),
            }
        }
    };
    wait_line("first line");
    assert_eq!(d.execution(&id)["state"], "RUNNING", "the script still waits");
    std::fs::File::create(&go).expect("go file");
    wait_line("second line");
    d.wait_state(&id, "SUCCESS");
    let status = follower.wait().expect("follower exit");
    assert!(status.success(), "`logs -f` ends when the execution does");
}

#[test]
fn secrets_are_masked_in_streamed_lines_and_outputs() {
    let d = Daemon::start();
    let mut child = Command::new(&binaries().tollgate)
        .args(["--server", &d.server(), "secret", "set", "test.scripts", "API_TOKEN"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hunter2-very-secret")
        .expect("write secret");
    assert!(child.wait().expect("secret set").success());
    d.apply_flow("secretive",
        "id: secretive\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    env:\n      TOKEN: \"{{ secret('API_TOKEN') }}\"\n    commands:\n      - echo \"token is $TOKEN\"\n      - echo \"$TOKEN\" >&2\n      - echo '::{\"outputs\":{\"leak\":\"'\"$TOKEN\"'\"}}::'\n",
    );
    let id = id_of(&d.run_nowait("test.scripts", "secretive", &[]));
    let e = d.wait_state(&id, "SUCCESS");
    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "token is ******"), "{logs:#?}");
    assert!(!logs.iter().any(|l| l.contains("hunter2")), "{logs:#?}");
    assert_eq!(task_run(&e, "sh")["outputs"]["vars"]["leak"], "******", "{e:#}");
    assert!(!e.to_string().contains("hunter2"));
}

#[test]
fn python_script_runs_with_outputs() {
    let d = Daemon::start();
    d.apply_flow("py",
        "id: py\nnamespace: test.scripts\ninputs:\n  - id: n\n    type: INT\n    defaults: 6\ntasks:\n  - id: calc\n    type: io.kestra.plugin.scripts.python.Script\n    taskRunner:\n      type: io.kestra.plugin.core.runner.Process\n    script: |\n      import json, sys\n      n = {{ inputs.n }}\n      print(f\"squaring {n}\")\n      print(\"::\" + json.dumps({\"outputs\": {\"square\": n * n}}) + \"::\")\n      print(\"a warning\", file=sys.stderr)\n  - id: show\n    type: io.kestra.plugin.core.debug.Return\n    format: \"{{ outputs.calc.vars.square }}\"\n",
    );
    let id = id_of(&d.run_nowait("test.scripts", "py", &["n=7"]));
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "calc")["outputs"]["vars"]["square"], 49, "{e:#}");
    assert_eq!(task_run(&e, "show")["outputs"]["value"], "49");
    let logs = log_messages(&d, &id);
    assert!(logs.iter().any(|l| l == "squaring 7"), "{logs:#?}");
}

/// Kestra's `metrics` on the stdout protocol: kept on the task run (after kill -9 too), shown by
/// `executions get -o json` and REST; a malformed one is reported, not silently dropped.
#[test]
fn script_metrics_are_kept_on_the_task_run() {
    let mut d = Daemon::start();
    d.apply_flow(
        "metrics",
        r#"id: metrics
namespace: test.scripts
tasks:
  - id: load
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo '::{"metrics":[{"name":"rows","type":"counter","value":42,"tags":{"table":"users"}},{"name":"took","type":"timer","value":1.5}]}::'
      - echo '::{"metrics":[{"name":"bad","type":"gauge","value":1}]}::'
"#,
    );
    let id = id_of(&d.run_nowait("test.scripts", "metrics", &[]));
    d.wait_state(&id, "SUCCESS");
    d.kill9();
    d.restart();
    let e = d.execution(&id);
    let metrics = &task_run(&e, "load")["metrics"];
    assert_eq!(metrics.as_array().map(Vec::len), Some(2), "{e:#}");
    assert_eq!(metrics[0]["name"], "rows");
    assert_eq!(metrics[0]["value"], 42);
    assert_eq!(metrics[0]["tags"]["table"], "users");
    assert_eq!(metrics[1]["type"], "timer");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l.contains("a metric needs `type` counter or timer")),
        "{logs:#?}"
    );
    let (code, body) = tollgate_tests::curl(&[&format!("{}/api/v1/main/executions/{id}", d.server())]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""name":"rows""#), "{body}");
}

/// The shipped example: the approval gate, then the deploy's shell output in the log.
#[test]
fn deploy_example_runs_after_the_approval() {
    let mut d = Daemon::start_with(DaemonOptions {
        flows: Some(workspace_root().join("flows")),
        insecure: false,
        ..DaemonOptions::default()
    });
    // The gate is assigned to the DevOps Team: decide it as one of its members.
    d.stop();
    let admin = |args: &[&str]| {
        let out = d.admin(args);
        assert!(out.ok(), "tollgated admin {args:?}:\n{out}");
        out.stdout.trim().to_string()
    };
    admin(&["user", "add", "ops@example.com", "--group", "DevOps Team"]);
    admin(&[
        "role",
        "bind",
        "--user",
        "ops@example.com",
        "--role",
        "operator",
        "--namespace",
        "infrastructure",
    ]);
    let token = admin(&["token", "create", "--user", "ops@example.com"]);
    d.restart();
    d.token = Some(token);
    let e = d.run_wait("infrastructure", "deploy_with_approval", &["version=9.9.9"]);
    assert_eq!(e["state"], "PAUSED", "{e:#}");
    let id = id_of(&e);
    let out = d.cli(&["resume", &id, "--input", "reason=hotfix for ticket 42"]);
    assert!(out.ok(), "{out}");
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "deploy")["outputs"]["vars"]["instances"], 3, "{e:#}");
    let logs = log_messages(&d, &id);
    for line in [
        "deploying billing-api 9.9.9",
        "release notes: billing-api 9.9.9: hotfix for ticket 42",
        "health checks passed",
        "billing-api 9.9.9 is live on 3 instances (exit code 0)",
    ] {
        assert!(logs.iter().any(|l| l == line), "missing `{line}` in {logs:#?}");
    }
}

/// A crash while a script runs: on restart the job runs again (at-least-once), and the first
/// attempt's process is gone rather than left running beside the second.
#[test]
fn a_script_running_at_a_crash_runs_again_after_restart() {
    let mut d = Daemon::start();
    let dir = scratch(&d);
    let (pids, go) = (dir.join("pids"), dir.join("go"));
    d.apply_flow("crashy_script",
        &format!(
            "id: crashy_script\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - sleep 300 &\n      - echo $! >> {pids}\n      - echo running\n      - while [ ! -f {go} ]; do sleep 0.1; done\n      - kill $!\n",
            pids = pids.display(),
            go = go.display()
        ),
    );
    let id = id_of(&d.run_nowait("test.scripts", "crashy_script", &[]));
    eventually("the first attempt runs", || {
        log_messages(&d, &id).iter().any(|l| l == "running")
    });
    let first = read_pid(&pids).expect("first attempt's pid");
    d.kill9();
    d.restart();
    eventually("the second attempt runs", || {
        std::fs::read_to_string(&pids).unwrap_or_default().lines().count() >= 2
    });
    eventually("the first attempt's processes are gone", || !alive(first));
    std::fs::File::create(&go).expect("go file");
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(task_run(&e, "sh")["attempt"], 2, "{e:#}");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter().any(|l| l.contains("running it again (attempt 2)")),
        "{logs:#?}"
    );
}

/// Without a docker binary, a task that needs the Docker runner fails saying so and how to run
/// it on the host instead.
#[test]
fn the_docker_runner_without_docker_is_refused_at_run_time() {
    let d = Daemon::start_with(DaemonOptions {
        // A PATH with nothing on it: CI machines may have docker in /usr/bin.
        env: vec![("PATH".into(), "/nonexistent-tollgate-test-path".into())],
        ..DaemonOptions::default()
    });
    d.apply_flow("boxed",
        "id: boxed\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    containerImage: ubuntu:24.04\n    commands:\n      - echo hi\n",
    );
    let id = id_of(&d.run_nowait("test.scripts", "boxed", &[]));
    d.wait_state(&id, "FAILED");
    let logs = log_messages(&d, &id);
    assert!(
        logs.iter()
            .any(|l| l.contains("docker is not available") && l.contains("io.kestra.plugin.core.runner.Process")),
        "{logs:#?}"
    );
}

#[test]
fn unsupported_script_properties_are_refused_with_their_place() {
    let d = Daemon::start();
    let file = d.data_dir.parent().expect("temp").join("files.yaml");
    std::fs::write(
        &file,
        "id: files\nnamespace: test.scripts\ntasks:\n  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    outputDirectory: true\n    commands:\n      - echo hi > out.txt\n",
    )
    .expect("write");
    let out = d.cli(&["flow", "apply", file.to_str().expect("path")]);
    assert!(!out.ok(), "{out}");
    assert!(
        out.stderr.contains("6:5") && out.stderr.contains("`outputDirectory`") && out.stderr.contains("not supported"),
        "{out}"
    );
}

/// `warningOnStdErr: true` (Kestra before 0.23) ends a run that wrote to stderr WARNING; without
/// it the exit code alone decides (Kestra 0.23+).
#[test]
fn warning_on_std_err_turns_stderr_into_a_warning() {
    let d = Daemon::start();
    d.apply_flow("stderr",
        "id: stderr\nnamespace: test.scripts\ntasks:\n  - id: strict\n    type: io.kestra.plugin.scripts.shell.Commands\n    warningOnStdErr: true\n    commands:\n      - echo careful >&2\n  - id: lenient\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - echo careful >&2\n",
    );
    let id = id_of(&d.run_nowait("test.scripts", "stderr", &[]));
    let e = d.wait_state(&id, "WARNING");
    assert_eq!(task_run(&e, "strict")["state"], "WARNING", "{e:#}");
    assert_eq!(task_run(&e, "lenient")["state"], "SUCCESS", "{e:#}");
}
