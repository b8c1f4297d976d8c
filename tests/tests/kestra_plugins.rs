//! Flows written with Kestra's current plugin names and with `pluginDefaults` run unchanged:
//! Slack's `messageText`, Discord's and Teams' incoming webhooks, `io.kestra.plugin.email.MailSend`,
//! KV Get's `errorOnMissing`, all against real loopback servers.

use tollgate_tests::recorders::{HttpRecorder, SmtpRecorder};
use tollgate_tests::{Daemon, DaemonOptions, task_run, wait_for};

#[test]
fn current_notification_plugins_and_plugin_defaults_deliver_to_real_servers() {
    let slack = HttpRecorder::start();
    let discord = HttpRecorder::start();
    let teams = HttpRecorder::start();
    let smtp = SmtpRecorder::start();
    let d = Daemon::start_with(DaemonOptions {
        env: vec![
            ("TOLLGATE_SMTP_HOST".into(), "127.0.0.1".into()),
            ("TOLLGATE_SMTP_PORT".into(), smtp.port.to_string()),
        ],
        ..Default::default()
    });
    // The Slack URL comes only from pluginDefaults (by package prefix); Teams' `payload` is a
    // forced default that wins over the task's own.
    let source = format!(
        r#"id: notify
namespace: ops
pluginDefaults:
  - type: io.kestra.plugin.slack
    values:
      url: "{slack}/services/T/B/X"
  - type: io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook
    forced: true
    values:
      payload: '{{"text": "forced {{{{ flow.id }}}}"}}'
tasks:
  - id: slack
    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook
    messageText: 'Deploy "{{{{ flow.id }}}}" needs you'
  - id: discord
    type: io.kestra.plugin.discord.DiscordIncomingWebhook
    url: "{discord}/api/webhooks/1/x"
    payload: '{{"content": "hello {{{{ execution.id }}}}"}}'
  - id: teams
    type: io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook
    url: "{teams}/webhook"
    payload: '{{"text": "own"}}'
  - id: mail
    type: io.kestra.plugin.email.MailSend
    from: tollgate@example.com
    to: ana@example.com
    subject: "{{{{ flow.id }}}} done"
    plainTextContent: done
"#,
        slack = slack.url,
        discord = discord.url,
        teams = teams.url,
    );
    d.apply_flow("notify", &source);
    let e = d.run_wait("ops", "notify", &[]);
    let id = e["id"].as_str().expect("id").to_string();
    let e = d.wait_state(&id, "SUCCESS");
    assert_eq!(e["taskRuns"].as_array().map(Vec::len), Some(4), "{e:#}");

    let got = wait_for("the Slack post", || slack.received().into_iter().next());
    assert_eq!(got.path, "/services/T/B/X");
    let body: serde_json::Value = serde_json::from_str(&got.body).expect("Slack body is JSON");
    assert_eq!(body, serde_json::json!({"text": "Deploy \"notify\" needs you"}));

    let got = wait_for("the Discord post", || discord.received().into_iter().next());
    let body: serde_json::Value = serde_json::from_str(&got.body).expect("Discord body is JSON");
    assert_eq!(body["content"], format!("hello {id}"));

    let got = wait_for("the Teams post", || teams.received().into_iter().next());
    let body: serde_json::Value = serde_json::from_str(&got.body).expect("Teams body is JSON");
    assert_eq!(
        body["text"], "forced notify",
        "a forced default wins over the task's value"
    );

    let mail = wait_for("the mail", || smtp.received().into_iter().next());
    assert_eq!(mail.to, vec!["<ana@example.com>".to_string()]);
    assert!(mail.data.contains("notify done"), "{}", mail.data);
}

#[test]
fn kv_get_error_on_missing_fails_the_task_and_its_older_spelling_still_works() {
    let d = Daemon::start();
    d.apply_flow("kvget",
        "id: kvget\nnamespace: ops\ntasks:\n  - id: soft\n    type: io.kestra.plugin.core.kv.Get\n    key: absent\n  - id: strict\n    type: io.kestra.plugin.core.kv.Get\n    key: absent\n    errorOnMissing: true\n",
    );
    d.apply_flow("kvget_old",
        "id: kvget_old\nnamespace: ops\ntasks:\n  - id: strict\n    type: io.kestra.plugin.core.kv.Get\n    key: absent\n    errorOnMissingKey: true\n",
    );
    for flow in ["kvget", "kvget_old"] {
        let e = d.run_wait("ops", flow, &[]);
        let e = d.wait_state(e["id"].as_str().expect("id"), "FAILED");
        assert_eq!(task_run(&e, "strict")["state"], "FAILED", "{e:#}");
    }
    let e = d.execution(d.run_wait("ops", "kvget", &[])["id"].as_str().expect("id"));
    assert_eq!(task_run(&e, "soft")["state"], "SUCCESS", "{e:#}");
}

#[test]
fn misused_webhook_and_default_properties_are_refused_with_their_place() {
    let d = Daemon::start();
    let dir = d.data_dir.parent().expect("temp dir").to_path_buf();
    let cases = [
        (
            "teams_text",
            "id: teams_text\nnamespace: ops\ntasks:\n  - id: t\n    type: io.kestra.plugin.microsoft365.teams.TeamsIncomingWebhook\n    url: http://127.0.0.1:9/x\n    messageText: hi\n",
            "teams_text.yaml:7:5",
            "only Slack's webhook has it",
        ),
        (
            "both",
            "id: both\nnamespace: ops\ntasks:\n  - id: t\n    type: io.kestra.plugin.slack.notifications.SlackIncomingWebhook\n    url: http://127.0.0.1:9/x\n    payload: '{}'\n    messageText: hi\n",
            "both.yaml:8:5",
            "give one of them",
        ),
        (
            "bad_default",
            "id: bad_default\nnamespace: ops\npluginDefaults:\n  - type: io.kestra.plugin.core.log.Log\n    values:\n      mesage: typo\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\n",
            "bad_default.yaml:",
            "unknown property `mesage`",
        ),
    ];
    for (name, source, place, words) in cases {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, source).expect("write flow");
        let out = d.cli(&["flow", "apply", file.to_str().expect("utf-8 path")]);
        assert!(!out.ok(), "{name} must be refused");
        let text = format!("{out}");
        assert!(text.contains(place) && text.contains(words), "{name}: {text}");
    }
    let listed = d.cli(&["flow", "list"]);
    assert!(
        !format!("{listed}").contains("teams_text"),
        "nothing was applied: {listed}"
    );
}

#[test]
fn kv_get_keys_and_delete_work_on_the_flows_namespace_and_are_audited() {
    let d = Daemon::start();
    for (k, v) in [("region_eu", "1"), ("region_us", "2"), ("other", "3")] {
        assert!(d.cli(&["kv", "set", "ops", k, v]).ok());
    }
    d.apply_flow("kvkeys",
        "id: kvkeys\nnamespace: ops\ntasks:\n  - id: before\n    type: io.kestra.plugin.core.kv.GetKeys\n    prefix: region_\n  - id: drop\n    type: io.kestra.plugin.core.kv.Delete\n    key: \"{{ outputs.before.keys[0] }}\"\n  - id: drop_again\n    type: io.kestra.plugin.core.kv.Delete\n    key: region_eu\n  - id: after\n    type: io.kestra.plugin.core.kv.GetKeys\n  - id: strict\n    type: io.kestra.plugin.core.kv.Delete\n    key: region_eu\n    errorOnMissing: true\n",
    );
    let e = d.run_wait("ops", "kvkeys", &[]);
    let e = d.wait_state(e["id"].as_str().expect("id"), "FAILED");
    assert_eq!(
        task_run(&e, "before")["outputs"]["keys"],
        serde_json::json!(["region_eu", "region_us"]),
        "{e:#}"
    );
    assert_eq!(task_run(&e, "drop")["outputs"]["deleted"], true);
    assert_eq!(task_run(&e, "drop_again")["outputs"]["deleted"], false);
    assert_eq!(
        task_run(&e, "after")["outputs"]["keys"],
        serde_json::json!(["other", "region_us"])
    );
    assert_eq!(task_run(&e, "strict")["state"], "FAILED");
    let audit = d.cli_json(&["audit", "--limit", "1000"]);
    let deletes: Vec<&serde_json::Value> = audit
        .as_array()
        .expect("audit list")
        .iter()
        .filter(|r| r["action"] == "kv.delete")
        .collect();
    assert_eq!(deletes.len(), 1, "one entry went, one record: {audit:#}");
    assert_eq!(deletes[0]["executionId"], e["id"]);
}

/// Kestra's deprecated state tasks keep a JSON object per flow (and per loop value) on the KV
/// store: a second run reads what the first one wrote; another flow does not see it.
#[test]
fn state_tasks_remember_per_flow_and_per_loop_value() {
    let d = Daemon::start();
    d.apply_flow("remember",
        "id: remember\nnamespace: ops\ninputs:\n  - id: note\n    type: STRING\ntasks:\n  - id: get\n    type: io.kestra.plugin.core.state.Get\n    name: notes\n  - id: set\n    type: io.kestra.plugin.core.state.Set\n    name: notes\n    data:\n      last: \"{{ inputs.note }}\"\n  - id: each\n    type: io.kestra.plugin.core.flow.ForEach\n    values: [\"a\", \"b\"]\n    tasks:\n      - id: per_set\n        type: io.kestra.plugin.core.state.Set\n        name: per\n        data:\n          seen: \"{{ taskrun.value }}-{{ inputs.note }}\"\n",
    );
    d.apply_flow("forget",
        "id: forget\nnamespace: ops\ntasks:\n  - id: other_flow\n    type: io.kestra.plugin.core.state.Delete\n    name: notes\n  - id: strict\n    type: io.kestra.plugin.core.state.Get\n    name: notes\n    errorOnMissing: true\n",
    );
    let first = d.wait_state(
        d.run_wait("ops", "remember", &["note=one"])["id"].as_str().expect("id"),
        "SUCCESS",
    );
    assert_eq!(task_run(&first, "get")["outputs"]["count"], 0, "{first:#}");
    assert_eq!(task_run(&first, "set")["outputs"]["count"], 1);
    let second = d.wait_state(
        d.run_wait("ops", "remember", &["note=two"])["id"].as_str().expect("id"),
        "SUCCESS",
    );
    assert_eq!(task_run(&second, "get")["outputs"]["data"]["last"], "one", "{second:#}");
    // One state per loop value: each value's Set merged into its own object (count stays 1).
    let per: Vec<&serde_json::Value> = second["taskRuns"]
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["taskId"] == "per_set")
        .collect();
    assert_eq!(per.len(), 2);
    assert!(per.iter().all(|r| r["outputs"]["count"] == 1), "{per:#?}");
    let keys = d.cli_json(&["kv", "list", "ops"]);
    let text = keys.to_string();
    assert!(
        text.contains("state.remember.per.a") && text.contains("state.remember.per.b"),
        "{text}"
    );

    let other = d.wait_state(d.run_wait("ops", "forget", &[])["id"].as_str().expect("id"), "FAILED");
    assert_eq!(
        task_run(&other, "other_flow")["outputs"]["deleted"],
        false,
        "another flow's state is its own"
    );
    assert_eq!(task_run(&other, "strict")["state"], "FAILED");
}
