//! `inbox`: the paused executions the current user may decide, oldest first.

use clap::Args;
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::{ListArgs, list_all, status_message};
use super::output::{age, iso, now_ms, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;
use crate::console::exec_store::Pause;
use crate::console::identity::Identity;

#[derive(Args, Debug)]
pub struct InboxArgs {
    /// Print only how many decisions wait (for shell prompts and status bars).
    #[arg(long)]
    pub count: bool,
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
        // Only who waits where: rows, not whole executions.
        pb::ExecutionView::Summary,
    )
    .await?;
    let me = Identity::from_whoami(&who);
    let mut items: Vec<(&pb::Execution, Pause)> = paused
        .iter()
        .flat_map(|e| e.pauses.iter().map(move |p| (e, Pause::from(p))))
        .filter(|(e, p)| me.may_decide(&e.namespace, p))
        .collect();
    items.sort_by_key(|(_, p)| p.since_ms);
    if a.count {
        match cli.output {
            Format::Json => print_json(&json!({"count": items.len()})),
            Format::Text => println!("{}", items.len()),
        }
        return Ok(());
    }
    let escalated = |p: &Pause| me.escalated_to_me(p);
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
                        "onBehalfOf": me.decides_for(&e.namespace, p).unwrap_or_default(),
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
                        match me.decides_for(&e.namespace, p).filter(|u| !u.is_empty()) {
                            Some(u) => format!("for {u}"),
                            None if escalated(p) => "escalated".into(),
                            None => String::new(),
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
