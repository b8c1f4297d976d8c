//! `audit [--execution ID] [--user U] [--verify]`.

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only records of this execution.
    #[arg(long)]
    pub execution: Option<String>,
    /// Only records of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// How many records (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Verify the hash chain instead of listing.
    #[arg(long)]
    pub verify: bool,
}

pub async fn run(cli: &Cli, c: &mut crate::client::Clients, a: &AuditArgs) -> anyhow::Result<()> {
    if a.verify {
        let r = c
            .audit
            .verify(pb::VerifyAuditRequest {})
            .await
            .map_err(|s| anyhow::anyhow!(status_message(&s)))?
            .into_inner();
        match cli.output {
            Format::Json => print_json(
                &json!({"ok": r.ok, "records": r.records, "firstBadSeq": r.first_bad_seq, "message": r.message}),
            ),
            Format::Text => println!("{}", r.message),
        }
        if !r.ok {
            bail!("the audit chain is broken at record {}", r.first_bad_seq);
        }
        return Ok(());
    }
    let r = c
        .audit
        .list(pb::ListAuditRequest {
            execution_id: a.execution.clone().unwrap_or_default(),
            user: a.user.clone().unwrap_or_default(),
            limit: a.limit,
            before_seq: 0,
        })
        .await
        .map_err(|s| anyhow::anyhow!(status_message(&s)))?
        .into_inner();
    match cli.output {
        Format::Json => print_json(&Value::Array(
            r.records
                .iter()
                .map(|x| {
                    json!({
                        "seq": x.seq, "date": iso(x.time_ms), "user": x.user, "action": x.action,
                        "namespace": x.namespace, "flowId": x.flow_id, "executionId": x.execution_id, "taskId": x.task_id,
                        "values": serde_json::from_str::<Value>(&x.values_json).unwrap_or(Value::Null),
                        "reason": x.reason, "result": x.result, "hash": x.hash,
                        "onBehalfOf": if x.on_behalf_of.is_empty() { Value::Null } else { Value::String(x.on_behalf_of.clone()) },
                    })
                })
                .collect(),
        )),
        Format::Text => {
            let rows: Vec<Vec<String>> = r
                .records
                .iter()
                .map(|x| {
                    vec![
                        x.seq.to_string(),
                        iso(x.time_ms),
                        super::output::who(&x.user, &x.on_behalf_of),
                        x.action.clone(),
                        x.execution_id.clone(),
                        x.task_id.clone(),
                        x.values_json.clone(),
                        x.reason.clone(),
                        x.result.clone(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no audit records match");
            } else {
                print!("{}", table(&["SEQ", "DATE", "USER", "ACTION", "EXECUTION", "TASK", "VALUES", "REASON", "RESULT"], &rows));
            }
        }
    }
    Ok(())
}
