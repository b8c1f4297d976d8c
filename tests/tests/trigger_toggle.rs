//! Kestra's Toggle task against a real daemon: a flow switches a Webhook or Flow trigger of its
//! namespace off and on again, the switch survives kill -9, a trigger that does not exist fails
//! the task with Kestra's message, and a flow cannot switch a trigger of another namespace
//! (the attack: silencing another team's approval webhook), which is refused and audited.

mod auth_common;

use serde_json::Value;
use tollgate_tests::{Daemon, DaemonOptions, assert_logged, curl};

const HOOKED: &str = r#"id: hooked
namespace: test.toggle
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "started by {{ trigger.body ?? 'a flow' }}"
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: toggle-hook-key-0123456789
  - id: after_upstream
    type: io.kestra.plugin.core.trigger.Flow
    conditions:
      - type: io.kestra.plugin.core.condition.ExecutionFlow
        namespace: test.toggle
        flowId: upstream
"#;

const UPSTREAM: &str = "id: upstream\nnamespace: test.toggle\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: upstream\n";

/// Kestra's own example: switch on or off with an If on a BOOLEAN input (`enabled` is not dynamic).
const SWITCHER: &str = r#"id: switcher
namespace: test.toggle
inputs:
  - id: trigger
    type: STRING
  - id: "on"
    type: BOOLEAN
tasks:
  - id: if
    type: io.kestra.plugin.core.flow.If
    condition: "{{ inputs.on }}"
    then:
      - id: enable
        type: io.kestra.plugin.core.trigger.Toggle
        flowId: hooked
        trigger: "{{ inputs.trigger }}"
        enabled: true
    else:
      - id: disable
        type: io.kestra.core.tasks.trigger.Toggle
        namespace: test.toggle
        flowId: hooked
        trigger: "{{ inputs.trigger }}"
"#;

const PAYROLL: &str = r#"id: payroll
namespace: prod
tasks:
  - id: gate
    type: io.kestra.plugin.core.log.Log
    message: payroll approval requested
triggers:
  - id: hook
    type: io.kestra.plugin.core.trigger.Webhook
    key: payroll-hook-key-0123456789
"#;

const INTRUDER: &str = r#"id: intruder
namespace: test.toggle
tasks:
  - id: silence
    type: io.kestra.plugin.core.trigger.Toggle
    namespace: prod
    flowId: payroll
    trigger: hook
"#;

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("execution id").to_string()
}

fn post_hook(d: &Daemon, ns: &str, flow: &str, key: &str) -> u16 {
    let url = format!("{}/api/v1/main/executions/webhook/{ns}/{flow}/{key}", d.server());
    curl(&["-X", "POST", &url, "-d", "ci"]).0
}

fn hooked_hook(d: &Daemon) -> u16 {
    post_hook(d, "test.toggle", "hooked", "toggle-hook-key-0123456789")
}

fn executions_of(d: &Daemon, flow: &str) -> usize {
    d.cli_json(&["executions", "--state", "ALL", "--flow", flow])
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

fn switch(d: &Daemon, trigger: &str, on: bool, state: &str) -> String {
    let id = id_of(&d.run_nowait(
        "test.toggle",
        "switcher",
        &[&format!("trigger={trigger}"), &format!("on={on}")],
    ));
    d.wait_state(&id, state);
    id
}

#[test]
fn a_toggle_task_switches_triggers_of_its_namespace_durably_and_never_of_another() {
    let mut d = Daemon::start();
    for (name, source) in [
        ("hooked", HOOKED),
        ("upstream", UPSTREAM),
        ("switcher", SWITCHER),
        ("payroll", PAYROLL),
        ("intruder", INTRUDER),
    ] {
        d.apply_flow(name, source);
    }
    assert_eq!(hooked_hook(&d), 200);
    d.run_wait("test.toggle", "upstream", &[]);
    d.wait_listed(&["executions", "--state", "ALL", "--flow", "hooked"], |_| {
        executions_of(&d, "hooked") == 2
    });

    let id = switch(&d, "hook", false, "SUCCESS");
    assert_logged(&d, &id, "trigger `hook` of flow test.toggle.hooked disabled");
    assert_eq!(hooked_hook(&d), 404, "a switched-off webhook answers as an unknown one");
    switch(&d, "after_upstream", false, "SUCCESS");
    // A Flow trigger is decided in the transaction that ends the upstream execution: once it
    // is SUCCESS, an execution it would have started exists already.
    d.run_wait("test.toggle", "upstream", &[]);
    let upstream_done = d.cli_json(&["executions", "--state", "ALL", "--flow", "upstream"]);
    assert!(
        upstream_done
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["state"] == "SUCCESS"))
    );
    assert_eq!(
        executions_of(&d, "hooked"),
        2,
        "no execution from a switched-off Flow trigger"
    );

    d.kill9();
    d.restart();
    assert_eq!(hooked_hook(&d), 404, "still off after kill -9");

    switch(&d, "hook", true, "SUCCESS");
    assert_eq!(hooked_hook(&d), 200, "on again");
    assert_eq!(executions_of(&d, "hooked"), 3);

    let id = switch(&d, "nope", false, "FAILED");
    assert_logged(&d, &id, "Unable to find trigger nope for the flow test.toggle.hooked");

    // The attack: silencing another namespace's approval webhook from a flow of one's own.
    let id = id_of(&d.run_nowait("test.toggle", "intruder", &[]));
    d.wait_state(&id, "FAILED");
    assert_logged(
        &d,
        &id,
        "a flow may only switch triggers of its own namespace `test.toggle`",
    );
    assert_eq!(
        post_hook(&d, "prod", "payroll", "payroll-hook-key-0123456789"),
        200,
        "prod's webhook still works"
    );
    let audit = d.cli_json(&["audit", "--limit", "1000"]).to_string();
    assert!(audit.contains("trigger.toggle"), "{audit}");
    assert!(
        audit.contains("DENIED: a flow may only switch triggers of its own namespace"),
        "{audit}"
    );
    assert!(audit.contains("flow:test.toggle.switcher"), "{audit}");

    // What an operator sees, and switching back by hand.
    let listed = d.cli_json(&["trigger", "list", "--namespace", "test.toggle"]);
    let find = |list: &Value, id: &str| {
        list.as_array()
            .and_then(|a| a.iter().find(|t| t["id"] == id).cloned())
            .unwrap_or_else(|| panic!("no trigger {id} in {list:#}"))
    };
    let after = find(&listed, "after_upstream");
    assert_eq!(after["enabled"], false, "{listed:#}");
    assert_eq!(after["switchedBy"], "flow:test.toggle.switcher", "{listed:#}");
    assert_eq!(find(&listed, "hook")["enabled"], true, "{listed:#}");
    let out = d.cli(&["trigger", "enable", "test.toggle", "hooked", "after_upstream"]);
    assert!(
        out.ok() && out.stdout.contains("test.toggle.hooked trigger after_upstream: on"),
        "{out}"
    );
    d.run_wait("test.toggle", "upstream", &[]);
    d.wait_listed(&["executions", "--state", "ALL", "--flow", "hooked"], |_| {
        executions_of(&d, "hooked") == 4
    });
}

/// Switching a trigger by hand is a flow change: a namespace admin's, refused to an operator
/// (and the webhook keeps answering), invisible to a caller of another namespace, audited.
#[test]
fn switching_a_trigger_by_hand_needs_the_admin_role_and_is_audited() {
    let mut team = auth_common::team_with(DaemonOptions::default());
    team.d.token = Some(team.token(auth_common::ADMIN));
    team.d.apply_flow(
        "hooked",
        &HOOKED.replace("namespace: test.toggle\n", "namespace: test\n"),
    );
    let hook = |d: &Daemon| post_hook(d, "test", "hooked", "toggle-hook-key-0123456789");
    assert_eq!(hook(&team.d), 200);

    team.d.token = Some(team.token(auth_common::OPERATOR));
    let out = team.d.cli(&["trigger", "disable", "test", "hooked", "hook"]);
    assert!(!out.ok() && out.stderr.contains("denied"), "{out}");
    assert_eq!(hook(&team.d), 200, "an operator's refused switch changes nothing");

    team.d.token = Some(team.token(auth_common::OUTSIDER));
    let seen = team.d.cli_json(&["trigger", "list"]);
    assert_eq!(
        seen,
        serde_json::json!([]),
        "another namespace's caller sees no trigger of `test`"
    );

    team.d.token = Some(team.token(auth_common::NS_ADMIN));
    let out = team.d.cli(&["trigger", "disable", "test", "hooked", "nope"]);
    assert!(
        !out.ok()
            && out
                .stderr
                .contains("has no trigger `nope` (its triggers: hook, after_upstream)"),
        "{out}"
    );
    let out = team.d.cli(&["trigger", "disable", "test", "hooked", "hook"]);
    assert!(out.ok(), "{out}");
    assert!(out.stdout.contains("off (switched by nsadmin@example.com)"), "{out}");
    assert_eq!(hook(&team.d), 404);

    team.d.token = Some(team.token(auth_common::VIEWER));
    let listed = team.d.cli(&["trigger", "list"]);
    assert!(
        listed.ok() && listed.stdout.contains("off (switched by nsadmin@example.com)"),
        "{listed}"
    );
    team.d.token = Some(team.token(auth_common::ADMIN));
    let audit = team.d.cli_json(&["audit", "--limit", "1000"]).to_string();
    assert!(
        audit.contains("trigger.toggle") && audit.contains("nsadmin@example.com"),
        "{audit}"
    );
    assert!(
        audit.contains("operator@example.com"),
        "the refused switch is audited: {audit}"
    );
}
