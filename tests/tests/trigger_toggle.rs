//! Kestra's Toggle task against a real daemon: a flow switches a Webhook or Flow trigger of its
//! namespace off and on again, the switch survives kill -9, a trigger that does not exist fails
//! the task with Kestra's message, and a flow cannot switch a trigger of another namespace
//! (the attack: silencing another team's approval webhook), which is refused and audited.

use serde_json::Value;
use tollgate_tests::{Daemon, assert_logged, curl};

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
}
