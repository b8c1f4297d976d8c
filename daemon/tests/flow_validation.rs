//! Flow validation as a user sees it: one `file:line:column: message` per problem, all at once.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tollgate_daemon::flow::positions::PositionIndex;
use tollgate_daemon::flow::{self, validate};

/// Parses and validates `src` the way `flow::load` does once it reports parse and validation
/// problems together (`validate::check`), rendering each problem as `f.yaml:line:column: message`.
fn diagnose(src: &str) -> Vec<String> {
    let index = PositionIndex::new(src);
    match validate::check(src) {
        Ok(_) => vec![],
        Err(issues) => {
            let mut found: Vec<(u32, u32, String)> = issues
                .into_iter()
                .map(|i| {
                    let (line, column) = i.position.unwrap_or_else(|| index.locate(&i.path));
                    (line, column, i.message)
                })
                .collect();
            found.sort_by_key(|(line, column, _)| (*line, *column));
            found
                .into_iter()
                .map(|(l, c, m)| format!("f.yaml:{l}:{c}: {m}"))
                .collect()
        }
    }
}

/// The single problem of `src`.
fn only(src: &str) -> String {
    let found = diagnose(src);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    found.into_iter().next().unwrap_or_default()
}

/// A valid flow around `tasks` (given at the indentation of `tasks:` items).
fn with_tasks(tasks: &str) -> String {
    format!("id: demo\nnamespace: company.team\ninputs:\n  - id: employee\n    type: STRING\ntasks:\n{tasks}")
}

const HELLO: &str = "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";

#[test]
fn a_valid_flow_has_no_problem() {
    assert_eq!(diagnose(&with_tasks(HELLO)), Vec::<String>::new());
    assert!(flow::load(&with_tasks(HELLO), "f.yaml").is_ok());
}

#[test]
fn unknown_task_type_suggests_the_closest_type() {
    let src = with_tasks("  - id: gate\n    type: io.kestra.plugin.core.flow.Pase\n");
    assert_eq!(
        only(&src),
        "f.yaml:8:5: unknown task type `io.kestra.plugin.core.flow.Pase` on task `gate`; did you mean `io.kestra.plugin.core.flow.Pause`?"
    );
}

#[test]
fn short_task_type_suggests_the_full_name() {
    let src = with_tasks("  - id: gate\n    type: Pause\n");
    assert_eq!(
        only(&src),
        "f.yaml:8:5: unknown task type `Pause` on task `gate`; did you mean `io.kestra.plugin.core.flow.Pause`?"
    );
}

#[test]
fn deprecated_kestra_type_names_are_accepted() {
    let src = with_tasks("  - id: hello\n    type: io.kestra.core.tasks.log.Log\n    message: hi\n");
    let flow = flow::load(&src, "f.yaml").expect("alias accepted");
    assert_eq!(flow.tasks[0].type_name, "io.kestra.plugin.core.log.Log");
}

#[test]
fn misspelled_property_points_at_the_key_and_suggests() {
    let src = with_tasks("  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    mesage: hi\n");
    assert_eq!(
        diagnose(&src),
        vec![
            "f.yaml:7:5: missing required property `message` on task `hello` (Log)",
            "f.yaml:9:5: unknown property `mesage` on task `hello` (Log); did you mean `message`?",
        ]
    );
}

#[test]
fn misspelled_property_of_a_flowable_task() {
    let src = with_tasks("  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDurations: PT5M\n");
    assert_eq!(
        only(&src),
        "f.yaml:9:5: unknown property `pauseDurations` on task `gate` (Pause); did you mean `pauseDuration`?"
    );
}

#[test]
fn misspelled_common_property_is_suggested_on_plain_tasks() {
    let src =
        with_tasks("  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n    descripton: x\n");
    assert_eq!(
        only(&src),
        "f.yaml:10:5: unknown property `descripton` on task `hello` (Log); did you mean `description`?"
    );
}

#[test]
fn misspelled_flow_property() {
    let src = format!("id: demo\nnamespace: company.team\ntask:\n{HELLO}tasks:\n{HELLO}");
    assert_eq!(
        only(&src),
        "f.yaml:3:1: unknown property `task` on the flow; did you mean `tasks`?"
    );
}

#[test]
fn missing_required_property() {
    let src = with_tasks(&format!(
        "{HELLO}  - id: check\n    type: io.kestra.plugin.core.flow.If\n    then:\n      - id: inner\n        type: io.kestra.plugin.core.log.Log\n        message: x\n"
    ));
    assert_eq!(
        only(&src),
        "f.yaml:10:5: missing required property `condition` on task `check` (If)"
    );
}

#[test]
fn missing_flow_id_and_tasks() {
    let src = "namespace: company.team\n";
    assert_eq!(
        diagnose(src),
        vec![
            "f.yaml:1:1: missing required property `id` on flow",
            "f.yaml:1:1: flow has no `tasks`: a flow needs at least one task",
        ]
    );
}

#[test]
fn unknown_enum_value_suggests_the_valid_one() {
    let src = with_tasks(
        "  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDuration: PT5M\n    behavior: CANCELED\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:10:5: unknown value `CANCELED` for `behavior` on task `gate` (Pause); did you mean `CANCEL`?"
    );
}

#[test]
fn unknown_input_type_suggests_the_full_name() {
    let src = format!("id: demo\nnamespace: company.team\ninputs:\n  - id: when\n    type: DATTIME\ntasks:\n{HELLO}");
    assert_eq!(
        only(&src),
        "f.yaml:5:5: unknown value `DATTIME` for `type` on input `when`; did you mean `DATETIME`?"
    );
}

#[test]
fn bool_and_select_expression_inputs_validate() {
    let src = format!(
        "id: demo\nnamespace: company.team\ninputs:\n  - id: ok\n    type: BOOL\n  - id: region\n    type: SELECT\n    expression: \"{{{{ kv('regions') }}}}\"\n    allowCustomValue: true\ntasks:\n{HELLO}"
    );
    assert_eq!(diagnose(&src), Vec::<String>::new());
}

#[test]
fn select_expression_template_is_checked() {
    let src = format!(
        "id: demo\nnamespace: company.team\ninputs:\n  - id: region\n    type: SELECT\n    expression: \"{{{{ kv('regions') | nope }}}}\"\ntasks:\n{HELLO}"
    );
    let problem = only(&src);
    assert!(
        problem.starts_with("f.yaml:6:") && problem.contains("unknown filter `nope`"),
        "{problem}"
    );
}

#[test]
fn file_inputs_and_file_functions_validate() {
    let src = "id: demo\nnamespace: company.team\ninputs:\n  - id: upload\n    type: FILE\n    extension: .csv\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ read(inputs.upload) }} {{ fileSize(inputs.upload) }}\"\n";
    let flow = tollgate_daemon::flow::load(src, "f.yaml").unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(flow.inputs[0].extension.as_deref(), Some(".csv"));
}

#[test]
fn namespace_file_function_is_refused_at_validation() {
    let src =
        with_tasks("  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ fileURI('a.txt') }}\"\n");
    let problem = only(&src);
    assert!(
        problem.contains("`fileURI()` is not supported in Tollgate: it names a namespace file"),
        "{problem}"
    );
}

#[test]
fn duplicate_task_id_anywhere_in_the_tree() {
    let src = with_tasks(&format!(
        "{HELLO}  - id: check\n    type: io.kestra.plugin.core.flow.If\n    condition: \"{{{{ true }}}}\"\n    then:\n      - id: hello\n        type: io.kestra.plugin.core.log.Log\n        message: again\n"
    ));
    assert_eq!(
        only(&src),
        "f.yaml:14:9: duplicate task id `hello`: already used by the task at `tasks[0]`; task ids must be unique in the whole flow"
    );
}

#[test]
fn duplicate_task_id_in_errors_and_a_switch_case() {
    let src = with_tasks(&format!(
        "  - id: route\n    type: io.kestra.plugin.core.flow.Switch\n    value: a\n    cases:\n      a:\n{}errors:\n{HELLO}",
        HELLO.lines().map(|l| format!("    {l}\n")).collect::<String>()
    ));
    assert_eq!(
        only(&src),
        "f.yaml:16:5: duplicate task id `hello`: already used by the task at `tasks[0].cases.a[0]`; task ids must be unique in the whole flow"
    );
}

#[test]
fn reference_to_an_unknown_task() {
    let src = with_tasks(&format!(
        "{HELLO}  - id: report\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.helo.value }}}}\"\n"
    ));
    assert_eq!(
        only(&src),
        "f.yaml:12:5: unknown task `helo` in `outputs.helo`; did you mean `hello`?"
    );
}

#[test]
fn reference_to_a_later_task_is_fine() {
    let src = with_tasks(&format!(
        "  - id: early\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.hello ?? 'not yet' }}}}\"\n{HELLO}"
    ));
    assert_eq!(diagnose(&src), Vec::<String>::new());
}

#[test]
fn guarded_reference_to_a_task_that_does_not_exist_is_fine() {
    // Kestra renders the right side when the left is missing; the author planned for it.
    let src = with_tasks(&format!(
        "{HELLO}  - id: report\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.missing.value ?? 'x' }}}}\"\n"
    ));
    assert_eq!(diagnose(&src), Vec::<String>::new());
}

#[test]
fn reference_to_an_unknown_input() {
    let src = with_tasks(
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"Hi {{ inputs.employe }}\"\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:9:5: unknown input `employe` in `inputs.employe`; did you mean `employee`?"
    );
    let src = with_tasks(
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"Hi {{ inputs.manager }}\"\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:9:5: unknown input `manager` in `inputs.manager`; declared inputs: employee"
    );
}

#[test]
fn references_inside_nested_properties_point_at_the_nested_key() {
    let src = with_tasks(
        "  - id: call\n    type: io.kestra.plugin.core.http.Request\n    uri: https://example.com\n    formData:\n      who: \"{{ inputs.employee }}\"\n      notes: \"{{ outputs.gate.onResume.reason }}\"\n",
    );
    assert_eq!(only(&src), "f.yaml:12:7: unknown task `gate` in `outputs.gate`");
}

#[test]
fn references_in_string_literals_are_not_references() {
    let src = with_tasks(
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ 'outputs.nope' ~ trigger.outputs.x }}\"\n",
    );
    assert_eq!(diagnose(&src), Vec::<String>::new());
}

#[test]
fn onresume_inputs_are_not_flow_inputs() {
    let src = with_tasks(
        "  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: approved\n        type: BOOLEAN\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.approved }}\"\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:14:5: unknown input `approved` in `inputs.approved`; declared inputs: employee"
    );
}

#[test]
fn bad_duration() {
    let src = with_tasks("  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDuration: 5 minutes\n");
    assert_eq!(
        only(&src),
        "f.yaml:9:5: invalid duration for `pauseDuration` on task `gate` (Pause): `5 minutes` is not an ISO-8601 duration such as PT5M, PT1H30M or P2D"
    );
}

fn with_trigger(trigger: &str) -> String {
    format!("{}triggers:\n{trigger}", with_tasks(HELLO))
}

#[test]
fn bad_cron_names_the_field() {
    let src =
        with_trigger("  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 25 * * *\"\n");
    assert_eq!(
        only(&src),
        "f.yaml:13:5: invalid cron expression `0 25 * * *` on trigger `nightly`: hour field `25`: number out of bounds"
    );
    let src =
        with_trigger("  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * *\"\n");
    assert_eq!(
        only(&src),
        "f.yaml:13:5: invalid cron expression `0 2 * *` on trigger `nightly`: expected 5 fields (minute hour day-of-month month day-of-week), found 4"
    );
    let src = with_trigger("  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"@dayly\"\n");
    assert_eq!(
        only(&src),
        "f.yaml:13:5: invalid cron expression `@dayly` on trigger `nightly`: unknown shortcut `@dayly`; use @hourly, @daily, @weekly, @monthly, @yearly or @annually"
    );
}

#[test]
fn valid_crons_pass() {
    for cron in ["0 9 * * MON-FRI", "*/15 * * * *", "@daily", "0 0 1 1 *"] {
        let src = with_trigger(&format!(
            "  - id: t\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"{cron}\"\n    timezone: Europe/Paris\n"
        ));
        assert_eq!(diagnose(&src), Vec::<String>::new(), "{cron}");
    }
}

#[test]
fn bad_timezone() {
    let src = with_trigger(
        "  - id: nightly\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 2 * * *\"\n    timezone: Europe/Pari\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:14:5: unknown time zone `Europe/Pari` on trigger `nightly`; did you mean `Europe/Paris`?"
    );
}

#[test]
fn unknown_trigger_type_and_state() {
    let src = with_trigger(
        "  - id: after\n    type: io.kestra.plugin.core.trigger.Flow\n    preconditions:\n      id: upstream\n      flows:\n        - namespace: demo\n          flowId: pause_demo\n          states: [SUCCES]\n  - id: t2\n    type: io.kestra.plugin.core.trigger.Schedul\n    cron: \"@daily\"\n",
    );
    assert_eq!(
        diagnose(&src),
        vec![
            "f.yaml:18:20: unknown state `SUCCES` on trigger `after`; did you mean `SUCCESS`?",
            "f.yaml:20:5: unknown trigger type `io.kestra.plugin.core.trigger.Schedul` on trigger `t2`; did you mean `io.kestra.plugin.core.trigger.Schedule`?",
        ]
    );
}

#[test]
fn select_without_values() {
    let src = format!("id: demo\nnamespace: company.team\ninputs:\n  - id: team\n    type: SELECT\ntasks:\n{HELLO}");
    let found = only(&src);
    assert!(found.starts_with("f.yaml:4:5: "), "{found}");
    assert!(found.contains("`team`") && found.contains("values"), "{found}");
}

#[test]
fn bad_regex_in_a_string_validator() {
    let src = format!(
        "id: demo\nnamespace: company.team\ninputs:\n  - id: code\n    type: STRING\n    validator: \"[A-Z\"\ntasks:\n{HELLO}"
    );
    assert_eq!(
        only(&src),
        "f.yaml:6:5: invalid regex `[A-Z` in `validator` of input `code`: unclosed character class"
    );
}

#[test]
fn bad_regex_in_an_onresume_validator() {
    let src = with_tasks(
        "  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    onResume:\n      - id: ticket\n        type: STRING\n        validator: \"^(JIRA-[0-9]+$\"\n",
    );
    assert_eq!(
        only(&src),
        "f.yaml:12:9: invalid regex `^(JIRA-[0-9]+$` in `validator` of input `ticket`: unclosed group"
    );
}

// The wording after `invalid template in ...:` comes from the expression front end (expr/);
// the position is ours: inside the text when the source shows it as is, else the property.

#[test]
fn template_syntax_error_points_inside_the_string() {
    let src =
        with_tasks("  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"Hi {{ inputs.employee \"\n");
    let found = only(&src);
    assert!(
        found.starts_with("f.yaml:9:18: invalid template in `message`: "),
        "{found}"
    );
}

#[test]
fn template_syntax_error_in_a_list_item() {
    let src = with_tasks(
        "  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message:\n      - fine\n      - \"{% if %}\"\n",
    );
    let found = only(&src);
    // Column 16 is the `%}` where an expression was expected.
    assert!(
        found.starts_with("f.yaml:11:16: invalid template in `message[1]`: "),
        "{found}"
    );
}

#[test]
fn template_syntax_error_in_a_block_points_at_its_line() {
    let src = with_tasks(
        "  - id: notify\n    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook\n    url: https://hooks.example.com/x\n    payload: |\n      {\n        \"text\": \"{{ inputs.employee | nosuchfilter }}\"\n      }\n",
    );
    let found = only(&src);
    assert!(found.starts_with("f.yaml:12:"), "{found}");
    assert!(found.contains(": invalid template in `payload`: "), "{found}");
    assert!(found.contains("nosuchfilter"), "{found}");
}

#[test]
fn template_syntax_error_with_escapes_points_at_the_property() {
    let src =
        with_tasks("  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"\\t{{ inputs.employee \"\n");
    let found = only(&src);
    assert!(
        found.starts_with("f.yaml:9:5: invalid template in `message` (column 2 of the template): "),
        "{found}"
    );
}

#[test]
fn invalid_yaml_is_positioned() {
    let found = only("id: demo\nnamespace: [\ntasks: x\n");
    assert_eq!(
        found,
        "f.yaml:4:1: invalid YAML: did not find expected ',' or ']', while parsing a flow sequence at line 2 column 12"
    );
}

#[test]
fn tasks_after_a_broken_one_keep_their_positions() {
    // `broken` cannot be read, so the model has one task less than the file; `report` must
    // still be located at its own line.
    let src = with_tasks(
        "  - id: broken\n    type: io.kestra.plugin.core.log.Log\n    messages: x\n    message: y\n  - id: report\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ outputs.brokn }}\"\n",
    );
    assert_eq!(
        diagnose(&src),
        vec![
            "f.yaml:9:5: unknown property `messages` on task `broken` (Log); did you mean `message`?",
            "f.yaml:13:5: unknown task `brokn` in `outputs.brokn`; did you mean `broken`?",
        ]
    );
}

#[test]
fn task_ids_follow_kestra_rules() {
    let src = with_tasks("  - id: say.hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n");
    assert_eq!(
        only(&src),
        "f.yaml:7:5: task id `say.hello` must match [a-zA-Z0-9][a-zA-Z0-9_-]*"
    );
}

#[test]
fn single_task_in_place_of_a_list_is_located() {
    let src = with_tasks(
        "  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    onPause:\n      id: alert\n      type: io.kestra.plugin.core.log.Log\n      message: \"{{ outputs.nope }}\"\n",
    );
    assert_eq!(only(&src), "f.yaml:12:7: unknown task `nope` in `outputs.nope`");
}

#[test]
fn invalid_yaml_at_the_end_of_a_file_without_final_line_break_stays_inside_it() {
    // Found by the fuzz target: the scanner reported line 3 for this two-line file.
    let found = only("id: demo\nyd:a.plu g");
    assert!(found.starts_with("f.yaml:2:11: invalid YAML: "), "{found}");
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let src = r#"id: demo
namespace: company.team
inputs:
  - id: employee
    type: STRING
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    mesage: hi
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
    pauseDuration: soon
  - id: check
    type: io.kestra.plugin.core.flow.If
    then:
      - id: hello
        type: io.kestra.plugin.core.log.Log
        message: "{{ outputs.gat.onResume }} {{ inputs.employe }}"
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "61 * * * *"
"#;
    assert_eq!(
        diagnose(src),
        vec![
            "f.yaml:7:5: missing required property `message` on task `hello` (Log)",
            "f.yaml:9:5: unknown property `mesage` on task `hello` (Log); did you mean `message`?",
            "f.yaml:12:5: invalid duration for `pauseDuration` on task `gate` (Pause): `soon` is not an ISO-8601 duration such as PT5M, PT1H30M or P2D",
            "f.yaml:13:5: missing required property `condition` on task `check` (If)",
            "f.yaml:16:9: duplicate task id `hello`: already used by the task at `tasks[0]`; task ids must be unique in the whole flow",
            "f.yaml:18:9: unknown task `gat` in `outputs.gat`; did you mean `gate`?",
            "f.yaml:18:9: unknown input `employe` in `inputs.employe`; did you mean `employee`?",
            "f.yaml:22:5: invalid cron expression `61 * * * *` on trigger `nightly`: minute field `61`: number out of bounds",
        ]
    );
}

#[test]
fn load_reports_every_validation_problem_sorted() {
    let src = with_tasks(&format!(
        "{HELLO}  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.zz }}}}\"\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ inputs.yy }}}}\"\n"
    ));
    let errors = flow::load(&src, "flows/demo/x.yaml").expect_err("invalid");
    let rendered: Vec<String> = errors.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        rendered,
        vec![
            "flows/demo/x.yaml:12:5: unknown task `zz` in `outputs.zz`",
            "flows/demo/x.yaml:13:5: duplicate task id `hello`: already used by the task at `tasks[0]`; task ids must be unique in the whole flow",
            "flows/demo/x.yaml:15:5: unknown input `yy` in `inputs.yy`; declared inputs: employee",
        ]
    );
}

/// Every example under `flows/` (Kestra layout `flows/<namespace>/<id>.yaml`) is valid, and its
/// path matches its namespace and id.
#[test]
fn every_example_flow_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let mut files = Vec::new();
    collect_yaml(&root, &mut files);
    assert!(
        files.len() >= 15,
        "expected the example flows under {}, found {}",
        root.display(),
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let name = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        match flow::load(&source, &name) {
            Ok(flow) => {
                let expected = format!("{}/{}.yaml", flow.namespace, flow.id);
                if name != expected {
                    problems.push(format!("{name}: should be at {expected}"));
                }
            }
            Err(diags) => problems.extend(diags.iter().map(|d| d.to_string())),
        }
        problems.extend(diagnose(&source).into_iter().map(|d| format!("{name}: {d}")));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never makes the parser panic.
    #[test]
    fn parser_never_panics_on_arbitrary_text(src in "\\PC{0,200}") {
        let _ = flow::load(&src, "f.yaml");
        let _ = diagnose(&src);
    }

    /// Text made of YAML's own punctuation and flow words never makes it panic either.
    #[test]
    fn parser_never_panics_on_yaml_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("id: "), Just("namespace: "), Just("tasks:"), Just("type: "), Just("- "), Just("  "),
                Just("\n"), Just("io.kestra.plugin.core.flow.Pause"), Just("io.kestra.plugin.core.log.Log"),
                Just("io.kestra.plugin.core.flow.If"), Just("then:"), Just("onResume:"), Just("{{ outputs.a }}"),
                Just("{{"), Just("}}"), Just("{%"), Just("'"), Just("\""), Just(": "), Just("["), Just("]"),
                Just("{"), Just("}"), Just("&a "), Just("*a"), Just("? "), Just("|"), Just(">"), Just("#"),
                Just("message: "), Just("a"), Just("PT5M"), Just("0 25 * * *"), Just("é"), Just("---\n"),
            ],
            0..60,
        )
    ) {
        let src: String = parts.concat();
        let _ = flow::load(&src, "f.yaml");
        let _ = diagnose(&src);
    }

    /// Mutating a valid flow (deleting or duplicating a byte range) never makes it panic, and any
    /// problem found carries a position inside the file.
    #[test]
    fn mutated_flows_are_positioned_inside_the_file(start in 0usize..400, len in 0usize..40, dup in any::<bool>()) {
        let base = with_tasks(&format!(
            "{HELLO}  - id: gate\n    type: io.kestra.plugin.core.flow.Pause\n    pauseDuration: PT5M\n    onResume:\n      - id: ok\n        type: BOOLEAN\n  - id: after\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{{{ outputs.gate.onResume.ok }}}}\"\n"
        ));
        let chars: Vec<char> = base.chars().collect();
        let s = start.min(chars.len());
        let e = (s + len).min(chars.len());
        let mut mutated: Vec<char> = chars[..s].to_vec();
        if dup {
            mutated.extend_from_slice(&chars[s..e]);
        }
        mutated.extend_from_slice(&chars[if dup { s } else { e }..]);
        let src: String = mutated.into_iter().collect();
        let lines = src.lines().count().max(1) as u32 + 1;
        if let Err(diags) = flow::load(&src, "f.yaml") {
            for d in diags {
                prop_assert!(d.line >= 1 && d.line <= lines, "{d} outside {lines} lines");
                prop_assert!(d.column >= 1, "{d}");
            }
        }
    }
}

#[test]
fn kestras_deprecated_echo_runs_as_a_log_of_its_format() {
    let src = with_tasks(
        "  - id: hello\n    type: io.kestra.plugin.core.debug.Echo\n    format: \"{{ task.id }} > {{ taskrun.startDate }}\"\n    level: WARN\n",
    );
    assert_eq!(diagnose(&src), Vec::<String>::new());
    let f = flow::load(&src, "f.yaml").expect("valid");
    match &f.tasks[0].kind {
        flow::TaskKind::Log(log) => {
            assert_eq!(
                log.message,
                flow::OneOrMany::One("{{ task.id }} > {{ taskrun.startDate }}".into())
            );
            assert_eq!(log.level, Some(flow::LogLevel::Warn));
        }
        other => panic!("Echo should run as a Log, got {other:?}"),
    }
    // Its own property name is `format`: a `message` is not silently taken.
    let wrong = with_tasks("  - id: hello\n    type: io.kestra.plugin.core.debug.Echo\n    message: hi\n");
    assert!(!diagnose(&wrong).is_empty());
}

#[test]
fn kestras_older_input_name_is_read_as_its_id() {
    let src = "id: demo\nnamespace: company.team\ninputs:\n  - name: intLabel\n    type: INT\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ inputs.intLabel }}\"\n";
    assert_eq!(diagnose(src), Vec::<String>::new());
    let f = flow::load(src, "f.yaml").expect("valid");
    assert_eq!(f.inputs[0].id, "intLabel");
    // With both, `id` is the id (and `name` stays what some Kestra versions read it as: a label).
    let both = "id: demo\nnamespace: company.team\ninputs:\n  - id: a\n    name: b\n    type: INT\ntasks:\n  - id: hello\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    assert_eq!(diagnose(both), Vec::<String>::new());
    assert_eq!(flow::load(both, "f.yaml").expect("valid").inputs[0].id, "a");
}

#[test]
fn script_tasks_parse_with_their_runner() {
    let src = with_tasks(
        "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n    commands:\n      - echo {{ inputs.employee }}\n  - id: py\n    type: io.kestra.plugin.scripts.python.Script\n    containerImage: python:3.12\n    script: print(1)\n  - id: node\n    type: io.kestra.plugin.scripts.node.Commands\n    taskRunner:\n      type: io.kestra.plugin.core.runner.Process\n    interpreter: [\"/bin/bash\", \"-c\"]\n    commands: [\"node -e 1\"]\n",
    );
    let f = flow::load(&src, "f.yaml").expect("valid");
    let kinds: Vec<_> = f
        .tasks
        .iter()
        .map(|t| match &t.kind {
            flow::TaskKind::Script(s) => (s.language, s.runner, s.interpreter.clone()),
            other => panic!("not a script: {other:?}"),
        })
        .collect();
    let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
    assert_eq!(
        kinds,
        vec![
            (flow::ScriptLanguage::Shell, flow::ScriptRunner::Process, sh.clone()),
            // An image without a runner means Docker, as Kestra's default runner.
            (flow::ScriptLanguage::Python, flow::ScriptRunner::Docker, sh),
            (
                flow::ScriptLanguage::Node,
                flow::ScriptRunner::Process,
                vec!["/bin/bash".to_string(), "-c".to_string()]
            ),
        ]
    );
}

#[test]
fn script_task_problems_name_their_place() {
    let src = with_tasks(
        "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Script\n    commands: [\"echo\"]\n    namespaceFiles: {enabled: true}\n    taskRunner:\n      type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes\n    inputFiles:\n      ../escape.txt: x\n",
    );
    assert_eq!(
        diagnose(&src),
        vec![
            "f.yaml:7:5: missing required property `script` on task `sh` (Script)",
            "f.yaml:9:5: unknown property `commands` on task `sh` (Script): a Script task takes `script` (or use the Commands type)",
            "f.yaml:10:5: `namespaceFiles` on task `sh` (Script) is not supported: Tollgate has no namespace files; use `inputFiles`",
            "f.yaml:12:7: task runner `io.kestra.plugin.ee.kubernetes.runner.Kubernetes` on task `sh` (Script) is not supported: use io.kestra.plugin.core.runner.Process (on the daemon's host) or io.kestra.plugin.scripts.runner.docker.Docker",
            "f.yaml:14:7: input file name `../escape.txt` on task `sh` (Script) must be a relative path inside the working directory",
        ]
    );
}

#[test]
fn a_kestra_type_tollgate_does_not_run_says_why_and_what_to_use() {
    let p = only(&with_tasks(
        "  - id: fetch\n    type: io.kestra.plugin.core.http.Download\n    uri: https://example.com\n",
    ));
    assert!(p.starts_with("f.yaml:8:5:"), "{p}");
    assert!(
        p.contains("is not supported by Tollgate") && p.contains("use io.kestra.plugin.core.http.Request"),
        "{p}"
    );
}

#[test]
fn plugin_defaults_apply_by_type_prefix_and_are_checked_like_the_task_itself() {
    let ok = "id: f\nnamespace: n\npluginDefaults:\n  - type: io.kestra.plugin.core.log\n    values:\n      level: WARN\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    assert!(diagnose(ok).is_empty(), "{:?}", diagnose(ok));
    let bad = "id: f\nnamespace: n\ntaskDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      level: LOUD\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n";
    let p = only(bad);
    assert!(p.contains("LOUD") && p.contains("`level`"), "{p}");
}
