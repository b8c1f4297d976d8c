//! Kestra's own test flows, run end to end on the real daemon, against what Kestra's Java tests
//! assert for the same flow: the execution's final state, its number of task runs, and an output
//! where the Java test checks one.
//!
//! The flows are Kestra's (`core/src/test/resources/flows/valids`) and may not be committed here,
//! so this test reads them from `KESTRA_VALIDS=DIR` and is ignored without it. The expectations
//! below are ours, transcribed from Kestra's tests (the class named on each row).

use serde_json::Value;
use tollgate_tests::Daemon;

/// One flow and what Kestra's test asserts about its execution.
struct Case {
    file: &'static str,
    /// Kestra's test class and method, for whoever checks the transcription.
    source: &'static str,
    state: &'static str,
    task_runs: Option<usize>,
    /// (task id, JSON pointer into its outputs, expected value)
    outputs: &'static [(&'static str, &'static str, &'static str)],
    /// `id=value` inputs the Java test passes.
    inputs: &'static [&'static str],
    /// Where Tollgate knowingly differs from Kestra, and why: reported, not asserted.
    differs: Option<&'static str>,
    /// Kestra's `runOneUntilPaused`: the execution first stops PAUSED with one task run; then
    /// `resume` (inputs) resumes it, or with `None` it goes on by itself (delay, timeout).
    paused: bool,
    resume: Option<&'static [&'static str]>,
    /// FILE inputs the Java test uploads: (input id, rows), each file `rows` lines of Kestra's
    /// ForEachItemCaseTest content (numbers left-padded to 20 characters).
    files: &'static [(&'static str, usize)],
    /// Other flow files of the same directory to apply first (subflows).
    needs: &'static [&'static str],
    /// FILE inputs of the resume (`onResume`), as `files`.
    resume_files: &'static [(&'static str, usize)],
}

const fn case(file: &'static str, source: &'static str, state: &'static str, task_runs: Option<usize>) -> Case {
    Case {
        file,
        source,
        state,
        task_runs,
        outputs: &[],
        inputs: &[],
        differs: None,
        paused: false,
        resume: None,
        files: &[],
        needs: &[],
        resume_files: &[],
    }
}

/// Kestra's ForEachItemCaseTest content: `rows` numbers left-padded to 20 characters, a line each.
fn rows_file(d: &Daemon, name: &str, rows: usize) -> String {
    let path = d.data_dir.parent().expect("temp").join(format!("{name}.txt"));
    let text: String = (0..rows).map(|i| format!("{i:>20}\n")).collect();
    std::fs::write(&path, text).expect("write the input file");
    path.display().to_string()
}

/// `--file ID=PATH` arguments for `files`.
fn file_args(d: &Daemon, files: &[(&str, usize)]) -> Vec<String> {
    files
        .iter()
        .flat_map(|(id, rows)| ["--file".to_string(), format!("{id}={}", rows_file(d, id, *rows))])
        .collect()
}

const CASES: &[Case] = &[
    // Kestra's `success` case runs it without reading inputs at all (a test-only path): the
    // required `crash` input is given here, as in its `failed` case.
    Case {
        inputs: &["crash=1"],
        ..case("allow-failure.yaml", "AllowFailureTest.failed", "FAILED", Some(10))
    },
    case("dag.yaml", "DagTest.dag", "SUCCESS", Some(7)),
    case("disable-simple.yaml", "DisabledTest.simple", "", Some(2)),
    case("disable-error.yaml", "DisabledTest.error", "", Some(3)),
    case("disable-flowable.yaml", "DisabledTest.flowable", "", Some(10)),
    case(
        "each-empty.yaml",
        "EachSequentialTest.sequentialEmpty",
        "SUCCESS",
        Some(2),
    ),
    case("each-object.yaml", "EachSequentialTest.object", "SUCCESS", Some(8)),
    case(
        "each-object-in-list.yaml",
        "EachSequentialTest.objectInList",
        "SUCCESS",
        Some(8),
    ),
    case(
        "each-sequential-nested.yaml",
        "EachSequentialTest.sequentialNested",
        "SUCCESS",
        Some(23),
    ),
    case("each-switch.yaml", "EachSequentialTest.eachSwitch", "SUCCESS", Some(12)),
    case("each-parallel.yaml", "EachParallelTest.parallel", "SUCCESS", Some(8)),
    case(
        "each-parallel-nested.yaml",
        "EachParallelTest.parallelNested",
        "SUCCESS",
        Some(11),
    ),
    case(
        "each-parallel-Integer.yml",
        "EachParallelTest.parallelInteger",
        "SUCCESS",
        None,
    ),
    case("failed-first.yaml", "VariablesTest.failedFirst", "FAILED", Some(1)),
    Case {
        differs: Some("a `{% for %}` tag inside `{{ }}` is refused when the flow is applied; Kestra fails at run time"),
        ..case(
            "flowable-with-parent-fail.yaml",
            "BadFlowableTest.flowableWithParentFail",
            "FAILED",
            Some(5),
        )
    },
    case("foreach-concurrent.yaml", "ForEachTest.concurrent", "SUCCESS", Some(7)),
    case(
        "foreach-concurrent-no-limit.yaml",
        "ForEachTest.concurrentNoLimit",
        "SUCCESS",
        Some(7),
    ),
    case(
        "foreach-concurrent-parallel.yaml",
        "ForEachTest.concurrentParallel",
        "SUCCESS",
        Some(10),
    ),
    case(
        "foreach-non-concurrent.yaml",
        "ForEachTest.nonConcurrent",
        "SUCCESS",
        Some(7),
    ),
    case("full.yaml", "FullTest", "SUCCESS", Some(13)),
    case("get-log.yaml", "FetchTest.fetch", "SUCCESS", Some(4)),
    case("get-log-taskid.yaml", "FetchTest.fetchWithTaskId", "SUCCESS", Some(4)),
    case(
        "get-log-executionid.yaml",
        "FetchTest.fetchWithExecutionId",
        "SUCCESS",
        Some(4),
    ),
    case("log-to-file.yaml", "LogToFileTest", "SUCCESS", Some(1)),
    case("trigger-toggle.yaml", "ToggleTest.toggle", "SUCCESS", Some(1)),
    case("npe-labels-update-task.yml", "LabelsTest", "SUCCESS", Some(1)),
    Case {
        outputs: &[("task-id", "/value", "task-id"), ("flow-id", "/value", "return")],
        ..case("return.yaml", "RunContextTest.variables", "SUCCESS", Some(3))
    },
    case("sequential.yaml", "SequentialTest.sequential", "SUCCESS", Some(11)),
    case(
        "sequential-with-global-errors.yaml",
        "SequentialTest.sequentialWithGlobalErrors",
        "FAILED",
        Some(6),
    ),
    case(
        "sequential-with-local-errors.yaml",
        "SequentialTest.sequentialWithLocalErrors",
        "FAILED",
        Some(6),
    ),
    case("sleep-task-flow.yaml", "SleepTest", "SUCCESS", None),
    case("flow-with-outputs.yml", "FlowOutputTest", "SUCCESS", None),
    case(
        "task-allow-failure-runnable.yml",
        "AllowFailureTest.runnable",
        "WARNING",
        Some(2),
    ),
    case(
        "task-allow-failure-flowable.yml",
        "AllowFailureTest.flowable",
        "WARNING",
        Some(3),
    ),
    case(
        "task-allow-warning-runnable.yml",
        "AllowWarningTest.runnable",
        "SUCCESS",
        Some(2),
    ),
    case(
        "task-allow-warning-flowable.yml",
        "AllowWarningTest.flowable",
        "SUCCESS",
        Some(3),
    ),
    Case {
        differs: Some("a reference to a task the flow does not have is refused when applied; Kestra fails at run time"),
        ..case("task-runif.yml", "TaskWithRunIfTest.runnableTask", "FAILED", Some(4))
    },
    case("minimal.yaml", "ExecutionControllerTest and others", "SUCCESS", Some(1)),
    Case {
        inputs: &["param=true"],
        ..case("if-condition.yaml", "IfTest.ifTruthy", "SUCCESS", Some(2))
    },
    Case {
        inputs: &["param=true"],
        ..case(
            "if-without-else.yaml",
            "IfTest.ifWithoutElse (true)",
            "SUCCESS",
            Some(2),
        )
    },
    Case {
        inputs: &["param=false"],
        ..case(
            "if-without-else.yaml",
            "IfTest.ifWithoutElse (false)",
            "SUCCESS",
            Some(1),
        )
    },
    Case {
        inputs: &["param=true"],
        ..case("if-in-flowable.yaml", "IfTest.ifInFlowable", "SUCCESS", Some(8))
    },
    Case {
        inputs: &["param=fail"],
        ..case(
            "fail-on-condition.yaml",
            "FailTest.failOnCondition (fail)",
            "FAILED",
            Some(2),
        )
    },
    Case {
        inputs: &["param=success"],
        ..case(
            "fail-on-condition.yaml",
            "FailTest.failOnCondition (success)",
            "SUCCESS",
            Some(3),
        )
    },
    Case {
        inputs: &["param=fail"],
        ..case("fail-on-switch.yaml", "FailTest.failOnSwitch", "FAILED", Some(1))
    },
    case("each-null.yaml", "EachSequentialTest.eachNull", "FAILED", Some(1)),
    case("errors.yaml", "ErrorsTest.errors", "", Some(7)),
    case("waitfor.yaml", "WaitForCaseTest.waitfor", "SUCCESS", None),
    case(
        "waitfor-no-success.yaml",
        "WaitForCaseTest.waitforNoSuccess",
        "SUCCESS",
        None,
    ),
    case(
        "waitfor-multiple-tasks.yaml",
        "WaitForCaseTest.waitforMultipleTasks",
        "SUCCESS",
        None,
    ),
    case(
        "waitfor-max-iterations.yaml",
        "WaitForCaseTest.waitforMaxIterations",
        "FAILED",
        None,
    ),
    case(
        "waitfor-multiple-tasks-failed.yaml",
        "WaitForCaseTest.waitforMultipleTasksFailed",
        "FAILED",
        None,
    ),
    Case {
        paused: true,
        resume: Some(&[]),
        ..case("pause.yaml", "PauseTest.run", "SUCCESS", None)
    },
    Case {
        paused: true,
        ..case("pause-delay.yaml", "PauseTest.runDelay", "SUCCESS", Some(3))
    },
    Case {
        paused: true,
        ..case(
            "pause-delay-from-input.yaml",
            "PauseTest.runDelayFromInput",
            "SUCCESS",
            Some(3),
        )
    },
    Case {
        paused: true,
        ..case("pause-timeout.yaml", "PauseTest.runTimeout", "FAILED", Some(1))
    },
    Case {
        paused: true,
        resume: Some(&[]),
        ..case("pause_no_tasks.yaml", "PauseTest.runEmptyTasks", "SUCCESS", None)
    },
    case(
        "each-parallel-pause.yml",
        "PauseTest.runParallelDelay",
        "SUCCESS",
        Some(7),
    ),
    Case {
        inputs: &["batch=4"],
        files: &[("file", 102)],
        needs: &["for-each-item-subflow.yaml"],
        outputs: &[
            ("each_items", "/numberOfBatches", "26"),
            ("each_items", "/iterations/SUCCESS", "26"),
            ("each_items", "/iterations/CREATED", "0"),
        ],
        ..case(
            "for-each-item.yaml",
            "ForEachItemCaseTest.forEachItem",
            "SUCCESS",
            Some(4),
        )
    },
    Case {
        files: &[("file", 102)],
        needs: &["for-each-item-subflow.yaml"],
        outputs: &[("each_items", "/numberOfBatches", "26")],
        ..case(
            "for-each-item-no-wait.yaml",
            "ForEachItemCaseTest.forEachItemNoWait",
            "SUCCESS",
            Some(4),
        )
    },
    Case {
        files: &[("file", 102)],
        needs: &["for-each-item-subflow-failed.yaml"],
        outputs: &[
            ("each_items", "/numberOfBatches", "26"),
            ("each_items", "/iterations/FAILED", "26"),
        ],
        ..case(
            "for-each-item-failed.yaml",
            "ForEachItemCaseTest.forEachItemFailed",
            "FAILED",
            Some(3),
        )
    },
    Case {
        files: &[("file", 102)],
        needs: &["for-each-item-outputs-subflow.yaml"],
        outputs: &[
            ("each_items", "/numberOfBatches", "26"),
            ("each_items", "/iterations/SUCCESS", "26"),
        ],
        ..case(
            "for-each-item-outputs.yaml",
            "ForEachItemCaseTest.forEachItemWithSubflowOutputs",
            "SUCCESS",
            Some(5),
        )
    },
    Case {
        files: &[("file", 102)],
        needs: &["for-each-item-subflow-failed.yaml"],
        ..case(
            "task-allow-failure-executable-foreachitem.yml",
            "TaskWithAllowFailureTest.executableTask_ForEachItem",
            "WARNING",
            Some(4),
        )
    },
    Case {
        files: &[("file", 102)],
        needs: &["for-each-item-subflow-failed.yaml"],
        ..case(
            "task-allow-warning-executable-foreachitem.yml",
            "TaskWithAllowWarningTest.executableTask_ForEachItem",
            "SUCCESS",
            Some(4),
        )
    },
    Case {
        inputs: &[
            "string=myString",
            "enum=ENUM_VALUE",
            "int=42",
            "float=42.42",
            "bool=false",
            "instant=2019-10-06T18:27:49Z",
            "date=2019-10-06",
            "time=18:27:49",
            "duration=PT5M6S",
            "json={\"a\": \"b\"}",
            "uri=https://www.google.com",
            "nested.string=a string",
            "nested.more.int=123",
            "nested.bool=true",
            "validatedString=A123",
            "validatedInt=12",
            "validatedDate=2023-01-02",
            "validatedDateTime=2023-01-01T00:00:10Z",
            "validatedDuration=PT15S",
            "validatedFloat=0.42",
            "validatedTime=11:27:49",
            "secret=secret",
            "array=[1, 2, 3]",
            "yaml=some: property\nalist:\n- of\n- values",
        ],
        files: &[("file", 3)],
        // Kestra's test also reads the SECRET input back from an output in clear; Tollgate
        // masks secret values in task outputs (README, SECRET inputs), so that is not checked.
        outputs: &[("optional", "/value", "")],
        ..case("inputs.yaml", "InputsTest.inputFlow", "SUCCESS", Some(14))
    },
    Case {
        files: &[("f", 3)],
        ..case(
            "inputs-small-files.yaml",
            "ExecutionControllerTest.triggerInputSmall",
            "SUCCESS",
            Some(1),
        )
    },
    Case {
        inputs: &["failed=false"],
        ..case(
            "working-directory.yaml",
            "WorkingDirectoryTest.success",
            "SUCCESS",
            Some(4),
        )
    },
    Case {
        inputs: &["failed=true"],
        ..case(
            "working-directory.yaml",
            "WorkingDirectoryTest.failed",
            "FAILED",
            Some(3),
        )
    },
    case(
        "working-directory-each.yaml",
        "WorkingDirectoryTest.each",
        "SUCCESS",
        Some(8),
    ),
    case(
        "working-directory-outputs.yml",
        "WorkingDirectoryTest.outputFiles",
        "SUCCESS",
        Some(2),
    ),
    Case {
        outputs: &[("exists", "/uris", "{}")],
        ..case(
            "working-directory-cache.yml",
            "WorkingDirectoryTest.cache (first run)",
            "SUCCESS",
            Some(3),
        )
    },
    case(
        "working-directory-inputs.yml",
        "WorkingDirectoryTest.inputFiles",
        "SUCCESS",
        Some(2),
    ),
    Case {
        paused: true,
        resume: Some(&["asked=restarted"]),
        resume_files: &[("data", 1)],
        outputs: &[("last", "/values/asked", "restarted")],
        ..case("pause_on_resume.yaml", "PauseTest.runOnResume", "SUCCESS", Some(2))
    },
];

/// `key: value` of a top-level line of a flow file.
fn top_level(source: &str, key: &str) -> Option<String> {
    source
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
}

/// The execution once it ended (a minute at most: these flows wait a second or two).
fn wait_terminal(d: &Daemon, id: &str) -> Result<Value, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let e = d.execution(id);
        if ["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"].contains(&e["state"].as_str().unwrap_or("")) {
            return Ok(e);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("still {} after a minute", e["state"]));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Applies and runs one flow; what differs from Kestra's assertions, if anything.
fn run_case(d: &Daemon, dir: &std::path::Path, c: &Case) -> Result<(), String> {
    let path = dir.join(c.file);
    let source = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (Some(namespace), Some(id)) = (top_level(&source, "namespace"), top_level(&source, "id")) else {
        return Err("no top-level id/namespace".into());
    };
    for other in c.needs.iter().chain([&c.file]) {
        let applied = d.cli(&["flow", "apply", dir.join(other).to_str().unwrap_or_default()]);
        if !applied.ok() {
            return Err(format!("refused {other}: {}", applied.stderr.trim()));
        }
    }
    let mut args = vec!["run", namespace.as_str(), id.as_str(), "--wait", "-o", "json"];
    for i in c.inputs {
        args.extend(["--input", i]);
    }
    let files = file_args(d, c.files);
    args.extend(files.iter().map(String::as_str));
    let ran = d.cli(&args);
    let mut e: Value = serde_json::from_str(&ran.stdout).map_err(|_| format!("no execution: {ran}"))?;
    let mut wrong = Vec::new();
    if c.paused {
        let runs = e["taskRuns"].as_array().map(Vec::len).unwrap_or(0);
        if e["state"] != "PAUSED" || runs != 1 {
            return Err(format!(
                "first {} with {runs} task runs (Kestra: PAUSED with 1)",
                e["state"]
            ));
        }
        let id = e["id"].as_str().unwrap_or_default().to_string();
        if let Some(inputs) = c.resume {
            let mut args = vec!["resume", id.as_str()];
            for i in inputs {
                args.extend(["--input", i]);
            }
            let files = file_args(d, c.resume_files);
            args.extend(files.iter().map(String::as_str));
            let resumed = d.cli(&args);
            if !resumed.ok() {
                return Err(format!("resume refused: {}", resumed.stderr.trim()));
            }
        }
        e = wait_terminal(d, &id)?;
    } else if e["state"] == "PAUSED" {
        // Kestra's `runOne` waits for the end: a delay goes on by itself.
        e = wait_terminal(d, e["id"].as_str().unwrap_or_default())?;
    }
    if !c.state.is_empty() && e["state"] != c.state {
        wrong.push(format!("state {} (Kestra: {})", e["state"], c.state));
    }
    let runs = e["taskRuns"].as_array().map(Vec::len).unwrap_or(0);
    if let Some(n) = c.task_runs
        && runs != n
    {
        let ids: Vec<String> = e["taskRuns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!(
                    "{}={}",
                    r["taskId"].as_str().unwrap_or("?"),
                    r["state"].as_str().unwrap_or("?")
                )
            })
            .collect();
        wrong.push(format!("{runs} task runs (Kestra: {n}): {}", ids.join(" ")));
    }
    for (task, pointer, expected) in c.outputs {
        let run = e["taskRuns"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["taskId"] == *task));
        let got = run
            .and_then(|r| r["outputs"].pointer(pointer))
            .cloned()
            .unwrap_or(Value::Null);
        // Numbers and booleans are compared by their JSON text.
        let same_text = !got.is_string() && got.to_string().as_str() == *expected;
        if got != *expected && !same_text {
            wrong.push(format!("`{task}` output {pointer} = {got} (Kestra: {expected})"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

#[test]
#[ignore = "needs Kestra's test flows, which may not be committed here: KESTRA_VALIDS=DIR cargo test -- --ignored"]
fn kestra_flows_end_as_kestras_own_tests_assert() {
    let Some(dir) = std::env::var_os("KESTRA_VALIDS").map(std::path::PathBuf::from) else {
        panic!("set KESTRA_VALIDS to a directory holding Kestra's core/src/test/resources/flows/valids");
    };
    let d = Daemon::start();
    let mut failures = Vec::new();
    let mut matched = 0;
    for c in CASES {
        match (run_case(&d, &dir, c), c.differs) {
            (Ok(()), None) => {
                matched += 1;
                println!("ok      {} ({})", c.file, c.source);
            }
            (Ok(()), Some(_)) => {
                println!("FIXED   {} ({}): matches now, drop its `differs`", c.file, c.source);
                failures.push(c.file);
            }
            (Err(why), Some(known)) => println!("differs {} ({}): {known} [{why}]", c.file, c.source),
            (Err(why), None) => {
                println!("FAIL    {} ({}): {why}", c.file, c.source);
                failures.push(c.file);
            }
        }
    }
    println!("{matched} of {} flows end as Kestra's tests assert", CASES.len());
    assert!(failures.is_empty(), "unexpected results: {failures:?}");
}
