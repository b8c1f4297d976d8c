//! The flows of ../shared/seed/kestra-human-in-the-loop.txt, indentation restored, must parse and
//! validate unchanged. Snippets that the seed shows on their own (a task, a branch) are embedded
//! in the smallest flow that gives them what they refer to. The seed's e-mail addresses were
//! obfuscated by the web page it was copied from (`[email protected]`); plain addresses stand in.

use tollgate_daemon::flow::{self, Flow, TaskKind, TriggerKind};
use tollgate_daemon::inputs::InputType;

fn load(name: &str, src: &str) -> Flow {
    match flow::load(src, name) {
        Ok(flow) => flow,
        Err(diags) => {
            let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            panic!("seed flow {name} does not validate:\n{}", text.join("\n"));
        }
    }
}

const VACATION_APPROVAL: &str = r##"id: vacation_approval
namespace: hr.operations
inputs:
  - id: employee
    type: STRING
    required: false
  - id: start_date
    type: DATE
  - id: end_date
    type: DATE
tasks:
  - id: notify_manager
    type: io.kestra.plugin.notifications.slack.SlackIncomingWebhook
    url: "{{ secret('SLACK_HR_WEBHOOK') }}"
    payload: |
      {
        "channel": "#vacation-approvals",
        "text": "Review request from {{ inputs.employee ?? labels.system.username }}\n*Dates*: {{ inputs.start_date }} → {{ inputs.end_date }}\nApprove: {{ appLink('appId') }}"
      }
  - id: await_decision
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
        description: Approve this request?
      - id: reason
        type: STRING
        description: Decision notes
  - id: update_hr_system
    type: io.kestra.plugin.core.http.Request
    uri: "{{ kv('HR_API_ENDPOINT') }}/approvals"
    method: POST
    contentType: multipart/form-data
    formData:
      employee: "{{ inputs.employee ?? labels.system.username }}"
      approvalStatus: "{{ outputs.await_decision.onResume.approved ? 'APPROVED' : 'REJECTED' }}"
      notes: "{{ outputs.await_decision.onResume.reason }}"
      resumedBy: "{{ outputs.await_decision.resumed.by }}"
      resumedOn: "{{ outputs.await_decision.resumed.on }}"
      resumedStatus: "{{ outputs.await_decision.resumed.to }}" # by default: SUCCESS
  - id: log_result
    type: io.kestra.plugin.core.log.Log
    message: |
      Decision: {{ outputs.await_decision.onResume }}
"##;

#[test]
fn vacation_approval() {
    let flow = load("vacation_approval.yaml", VACATION_APPROVAL);
    assert_eq!(
        (flow.id.as_str(), flow.namespace.as_str()),
        ("vacation_approval", "hr.operations")
    );
    assert_eq!(flow.inputs.len(), 3);
    assert!(!flow.inputs[0].required);
    assert_eq!(flow.inputs[1].input_type, InputType::Date);
    let ids: Vec<&str> = flow.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["notify_manager", "await_decision", "update_hr_system", "log_result"]
    );
    let TaskKind::Pause(pause) = &flow.tasks[1].kind else {
        panic!("await_decision is a Pause")
    };
    assert_eq!(pause.on_resume.len(), 2);
    assert_eq!(pause.on_resume[0].input_type, InputType::Boolean);
    assert!(pause.human.is_none() && pause.pause_duration.is_none());
    let TaskKind::HttpRequest(http) = &flow.tasks[2].kind else {
        panic!("update_hr_system is a Request")
    };
    assert_eq!(http.content_type.as_deref(), Some("multipart/form-data"));
    assert_eq!(http.form_data.len(), 6);
    let TaskKind::SlackWebhook(slack) = &flow.tasks[0].kind else {
        panic!("notify_manager is a Slack webhook")
    };
    assert!(
        slack
            .payload
            .as_deref()
            .is_some_and(|p| p.contains("#vacation-approvals"))
    );
}

/// "Structured Inputs for Human Decisions": a pause whose form has a SELECT.
const STRUCTURED_INPUTS: &str = r##"id: structured_inputs
namespace: hr.operations
tasks:
  - id: await_decision
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
        displayName: Approve this request?
      - id: reason
        type: STRING
        displayName: Decision notes
      - id: team
        type: SELECT
        displayName: Team to review
        values:
          - HR
          - Finance
          - IT
"##;

#[test]
fn structured_inputs_snippet() {
    let flow = load("structured_inputs.yaml", STRUCTURED_INPUTS);
    let TaskKind::Pause(pause) = &flow.tasks[0].kind else {
        panic!("a Pause")
    };
    let team = &pause.on_resume[2];
    assert_eq!(team.input_type, InputType::Select);
    assert_eq!(
        team.values.as_deref(),
        Some(&["HR".to_string(), "Finance".to_string(), "IT".to_string()][..])
    );
    assert_eq!(team.display_name.as_deref(), Some("Team to review"));
}

/// "Conditional Branching": the If snippet refers to `inputs.employee_email` and to
/// `await_decision`, so the flow around it declares both.
const CONDITIONAL_BRANCHING: &str = r##"id: conditional_branching
namespace: hr.operations
inputs:
  - id: employee_email
    type: EMAIL
tasks:
  - id: await_decision
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
      - id: reason
        type: STRING
  - id: handle_rejection
    type: io.kestra.plugin.core.flow.If
    condition: "{{ outputs.await_decision.onResume.approved is false }}"
    then:
      - id: notify_employee
        type: io.kestra.plugin.notifications.mail.MailSend
        to: "{{ inputs.employee_email }}"
        subject: "Request Denied"
        htmlTextContent: "Reason: {{ outputs.await_decision.onResume.reason }}"
"##;

#[test]
fn conditional_branching_snippet() {
    let flow = load("conditional_branching.yaml", CONDITIONAL_BRANCHING);
    let TaskKind::If(branch) = &flow.tasks[1].kind else {
        panic!("an If")
    };
    assert_eq!(
        branch.condition,
        "{{ outputs.await_decision.onResume.approved is false }}"
    );
    assert_eq!(branch.then.len(), 1);
    assert!(branch.else_.is_empty());
    assert!(matches!(branch.then[0].kind, TaskKind::MailSend(_)));
}

/// The If snippet alone, in a flow without `employee_email`, is refused with a precise position:
/// the seed's snippet is not a flow by itself.
#[test]
fn conditional_branching_needs_its_input() {
    let without_input = CONDITIONAL_BRANCHING.replace("inputs:\n  - id: employee_email\n    type: EMAIL\n", "");
    let diags = flow::load(&without_input, "f.yaml").expect_err("unknown input");
    let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        text,
        ["f.yaml:17:9: unknown input `employee_email` in `inputs.employee_email`; the flow declares no inputs"]
    );
}

const VM_PROVISIONING_APPROVAL: &str = r##"id: vm_provisioning_approval
namespace: infrastructure
inputs:
  - id: vm_spec
    type: STRING
    defaults: "2 vCPU, 4GB RAM, Ubuntu 22.04"
tasks:
  - id: validate_request
    type: io.kestra.plugin.core.log.Log
    message: "Validating VM request from {{ labels.system.username }}: {{ inputs.vm_spec }}"
  - id: it_admin_approval
    type: io.kestra.plugin.ee.flow.HumanTask
    assignment:
      users:
        - it.admin@example.com
        - infra.lead@example.com
  - id: provision_vm
    type: io.kestra.plugin.core.log.Log
    message: "Approved by {{ outputs.it_admin_approval.resumed.by }}! Provisioning VM for {{ labels.system.username }}"
"##;

#[test]
fn vm_provisioning_approval() {
    let flow = load("vm_provisioning_approval.yaml", VM_PROVISIONING_APPROVAL);
    assert_eq!(flow.namespace, "infrastructure");
    let TaskKind::Pause(pause) = &flow.tasks[1].kind else {
        panic!("a HumanTask")
    };
    let human = pause.human.as_ref().expect("HumanTask extras");
    assert_eq!(
        human.assignment.users,
        ["it.admin@example.com", "infra.lead@example.com"]
    );
    assert!(human.assignment.groups.is_empty());
    assert_eq!(human.approvals, 1);
    assert_eq!(flow.tasks[1].type_name, "io.kestra.plugin.ee.flow.HumanTask");
}

/// "Group-Based Assignment" and "Combined User and Group Assignment", in one flow.
const HUMAN_TASK_ASSIGNMENTS: &str = r##"id: human_task_assignments
namespace: infrastructure
tasks:
  - id: security_review
    type: io.kestra.plugin.ee.flow.HumanTask
    assignment:
      groups:
        - Security Team
        - DevOps Engineers
        - Infrastructure Admins
  - id: production_deployment_approval
    type: io.kestra.plugin.ee.flow.HumanTask
    assignment:
      users:
        - release.manager@example.com
        - cto@example.com
      groups:
        - DevOps Team
        - Site Reliability Engineers
"##;

#[test]
fn human_task_assignment_snippets() {
    let flow = load("human_task_assignments.yaml", HUMAN_TASK_ASSIGNMENTS);
    let assignment = |i: usize| match &flow.tasks[i].kind {
        TaskKind::Pause(p) => p.human.as_ref().map(|h| h.assignment.clone()).expect("HumanTask"),
        other => panic!("not a HumanTask: {other:?}"),
    };
    assert_eq!(
        assignment(0).groups,
        ["Security Team", "DevOps Engineers", "Infrastructure Admins"]
    );
    assert!(assignment(0).users.is_empty());
    assert_eq!(assignment(1).users.len(), 2);
    assert_eq!(assignment(1).groups, ["DevOps Team", "Site Reliability Engineers"]);
}

const PAUSE_DEMO: &str = r##"id: pause_demo
namespace: demo
tasks:
  - id: initial_logic
    type: io.kestra.plugin.core.log.Log
    message: placeholder for tasks with initial logic before the pause
  - id: wait_for_manual_resume
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: status
        type: STRING
  - id: entire_downstream_logic
    type: io.kestra.plugin.core.log.Log
    message: can have multiple tasks defined here after the pause task
"##;

const PAUSE_DEMO_WITH_SUBFLOW: &str = r##"id: pause_demo_with_subflow
namespace: demo
tasks:
  - id: initial_logic
    type: io.kestra.plugin.core.log.Log
    message: placeholder for tasks with initial logic before the pause
  - id: wait_for_manual_resume
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: status
        type: STRING
  - id: entire_downstream_logic
    type: io.kestra.plugin.core.flow.Subflow
    namespace: demo
    flowId: downstream_logic_flow
"##;

/// The Flow-trigger pattern's first flow: it only pauses.
const PAUSE_DEMO_FOR_TRIGGER: &str = r##"id: pause_demo
namespace: demo
tasks:
  - id: initial_logic
    type: io.kestra.plugin.core.log.Log
    message: placeholder for tasks with initial logic before the pause
  - id: wait_for_manual_resume
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: status
        type: STRING
"##;

const RESUME_DEMO: &str = r##"id: resume_demo
namespace: demo
tasks:
  - id: entire_downstream_logic
    type: io.kestra.plugin.core.log.Log
    message: can have multiple tasks defined here that should run after the first flow completes
triggers:
  - id: flow
    type: io.kestra.plugin.core.trigger.Flow
    preconditions:
      id: flow1
      flows:
        - flowId: pause_demo
          namespace: demo
          states:
            - SUCCESS
"##;

#[test]
fn pause_demo_variants() {
    let flow = load("pause_demo.yaml", PAUSE_DEMO);
    assert_eq!(flow.tasks.len(), 3);
    let TaskKind::Pause(pause) = &flow.tasks[1].kind else {
        panic!("a Pause")
    };
    assert_eq!(pause.on_resume[0].id, "status");
    assert!(pause.on_resume[0].required, "Kestra's `required` defaults to true");

    let flow = load("pause_demo_with_subflow.yaml", PAUSE_DEMO_WITH_SUBFLOW);
    let TaskKind::Subflow(sub) = &flow.tasks[2].kind else {
        panic!("a Subflow")
    };
    assert_eq!(
        (sub.namespace.as_str(), sub.flow_id.as_str()),
        ("demo", "downstream_logic_flow")
    );
    assert!(sub.wait && sub.transmit_failed, "Kestra's defaults");

    let flow = load("pause_demo.yaml", PAUSE_DEMO_FOR_TRIGGER);
    assert_eq!(flow.tasks.len(), 2);
}

#[test]
fn resume_demo_with_flow_trigger() {
    let flow = load("resume_demo.yaml", RESUME_DEMO);
    assert_eq!(flow.triggers.len(), 1);
    let trigger = &flow.triggers[0];
    assert_eq!(trigger.id, "flow");
    let TriggerKind::Flow(t) = &trigger.kind else {
        panic!("a Flow trigger")
    };
    let pre = t.preconditions.as_ref().expect("preconditions");
    assert_eq!(pre.id.as_deref(), Some("flow1"));
    assert_eq!(pre.flows.len(), 1);
    assert_eq!(
        (pre.flows[0].namespace.as_str(), pre.flows[0].flow_id.as_deref()),
        ("demo", Some("pause_demo"))
    );
    assert_eq!(pre.flows[0].states, ["SUCCESS"]);
}

/// "Understanding behavior": a timed pause that cancels when the time is up.
const WAIT_FIVE_MINUTES: &str = r##"id: wait_five_minutes
namespace: demo
tasks:
  - id: wait_five_minutes
    type: io.kestra.plugin.core.flow.Pause
    behavior: CANCEL
    pauseDuration: PT5M
"##;

#[test]
fn behavior_snippet() {
    let flow = load("wait_five_minutes.yaml", WAIT_FIVE_MINUTES);
    let TaskKind::Pause(pause) = &flow.tasks[0].kind else {
        panic!("a Pause")
    };
    assert_eq!(pause.pause_duration.as_deref(), Some("PT5M"));
    assert_eq!(pause.behavior, flow::PauseBehavior::Cancel);
}

/// "Getting Started": an approval gate with a required sign-off, and a Teams alert.
const GETTING_STARTED: &str = r##"id: getting_started
namespace: demo
tasks:
  - id: alert
    type: io.kestra.plugin.notifications.teams.TeamsIncomingWebhook
    url: "{{ secret('TEAMS_WEBHOOK') }}"
    payload: |
      {
        "text": "The process {{ flow.id }} is pending approval {{ appLink() }}"
      }
  - id: approval_gate
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: signoff
        type: BOOLEAN
        required: true
"##;

#[test]
fn getting_started_snippets() {
    let flow = load("getting_started.yaml", GETTING_STARTED);
    assert!(matches!(flow.tasks[0].kind, TaskKind::TeamsWebhook(_)));
    let TaskKind::Pause(pause) = &flow.tasks[1].kind else {
        panic!("a Pause")
    };
    assert_eq!(pause.on_resume[0].input_type, InputType::Boolean);
}

/// The seed's own flows are also shipped under flows/ (byte for byte apart from comments), so
/// `tollgate demo` runs what the document shows.
#[test]
fn shipped_copies_match_the_seed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
    for (file, seed) in [
        ("hr.operations/vacation_approval.yaml", VACATION_APPROVAL),
        ("infrastructure/vm_provisioning_approval.yaml", VM_PROVISIONING_APPROVAL),
        ("demo/pause_demo.yaml", PAUSE_DEMO),
        ("demo/pause_demo_with_subflow.yaml", PAUSE_DEMO_WITH_SUBFLOW),
        ("demo/resume_demo.yaml", RESUME_DEMO),
    ] {
        let shipped = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let a = flow::load(&shipped, file).unwrap_or_else(|d| panic!("{file}: {d:?}"));
        let b = load(file, seed);
        assert_eq!(a, b, "{file} differs from the seed");
    }
}
