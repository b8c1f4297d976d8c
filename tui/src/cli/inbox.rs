//! `inbox`: the paused executions the current user may decide, oldest first.

use clap::Args;
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::{ListArgs, list_all, status_message};
use super::output::{age, iso, now_ms, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// Print only how many decisions wait (for shell prompts and status bars).
    #[arg(long)]
    pub count: bool,
}

/// Whether `who` may decide `pause` of an execution in `namespace`.
pub fn may_decide(who: &pb::WhoamiResponse, namespace: &str, pause: &pb::PauseInfo) -> bool {
    let operator = who.roles.iter().any(|r| {
        matches!(r.role.as_str(), "operator" | "admin")
            && (r.namespace.is_empty()
                || r.namespace == "*"
                || namespace == r.namespace
                || namespace.starts_with(&format!("{}.", r.namespace)))
    });
    if !operator {
        return false;
    }
    let human = pause.approvals_required > 0 || !pause.assignee_users.is_empty() || !pause.assignee_groups.is_empty();
    if !human {
        return true;
    }
    let assigned = pause.assignee_users.iter().any(|u| u.eq_ignore_ascii_case(&who.user))
        || pause.assignee_groups.iter().any(|g| who.groups.contains(g));
    assigned && !pause.approved_by.iter().any(|u| u.eq_ignore_ascii_case(&who.user))
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &InboxArgs) -> anyhow::Result<()> {
    let who = c
        .auth
        .whoami(pb::WhoamiRequest {})
        .await
        .map_err(|s| anyhow::anyhow!(status_message(&s)))?
        .into_inner();
    let paused = list_all(
        c,
        &ListArgs {
            limit: 100_000,
            ..Default::default()
        },
        true,
    )
    .await?;
    let mut items: Vec<(&pb::Execution, &pb::PauseInfo)> = paused
        .iter()
        .flat_map(|e| e.pauses.iter().map(move |p| (e, p)))
        .filter(|(e, p)| may_decide(&who, &e.namespace, p))
        .collect();
    items.sort_by_key(|(_, p)| p.since_ms);
    if a.count {
        match cli.output {
            Format::Json => print_json(&json!({"count": items.len()})),
            Format::Text => println!("{}", items.len()),
        }
        return Ok(());
    }
    let escalated = |p: &pb::PauseInfo| {
        p.escalated_to
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&who.user) || who.groups.contains(x))
    };
    match cli.output {
        Format::Json => print_json(&Value::Array(
            items
                .iter()
                .map(|(e, p)| {
                    json!({
                        "id": e.id, "namespace": e.namespace, "flowId": e.flow_id, "taskId": p.task_id,
                        "taskRunId": p.task_run_id, "waitingSince": iso(p.since_ms),
                        "waitingSeconds": (now_ms() - p.since_ms).max(0) / 1000,
                        "escalatedToMe": escalated(p), "startedBy": e.started_by,
                    })
                })
                .collect(),
        )),
        Format::Text => {
            if items.is_empty() {
                println!("nothing waits for {}", who.user);
                return Ok(());
            }
            let now = now_ms();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|(e, p)| {
                    vec![
                        e.id.clone(),
                        format!("{}.{}", e.namespace, e.flow_id),
                        p.task_id.clone(),
                        age(p.since_ms, now),
                        if escalated(p) {
                            "escalated".into()
                        } else {
                            String::new()
                        },
                        e.started_by.clone(),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "FLOW", "TASK", "WAITING", "", "STARTED BY"], &rows));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(user: &str, groups: &[&str], role: &str, ns: &str) -> pb::WhoamiResponse {
        pb::WhoamiResponse {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            roles: vec![pb::RoleBinding {
                role: role.into(),
                namespace: ns.into(),
                via_group: String::new(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn plain_pauses_need_operator_human_tasks_need_assignment() {
        let plain = pb::PauseInfo::default();
        let human = pb::PauseInfo {
            assignee_groups: vec!["Security".into()],
            approvals_required: 1,
            ..Default::default()
        };
        assert!(may_decide(&who("a@x", &[], "operator", "hr"), "hr.ops", &plain));
        assert!(!may_decide(&who("a@x", &[], "viewer", "hr"), "hr.ops", &plain));
        assert!(!may_decide(&who("a@x", &[], "operator", "hr"), "hrx", &plain));
        assert!(!may_decide(&who("a@x", &[], "admin", ""), "infra", &human));
        assert!(may_decide(
            &who("a@x", &["Security"], "operator", "infra"),
            "infra",
            &human
        ));
        let approved = pb::PauseInfo {
            approved_by: vec!["a@x".into()],
            ..human.clone()
        };
        assert!(!may_decide(
            &who("a@x", &["Security"], "operator", "infra"),
            "infra",
            &approved
        ));
    }
}
