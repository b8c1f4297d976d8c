//! `trigger`: which triggers fire, and switching one off or on (the state Kestra's Toggle task
//! sets; a flow change, so it needs the admin role on the flow's namespace).

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

#[derive(Args, Debug)]
pub struct TriggerArgs {
    #[command(subcommand)]
    pub command: TriggerCommand,
}

#[derive(Subcommand, Debug)]
pub enum TriggerCommand {
    /// Every trigger of the flows you may see, and whether it fires.
    List {
        /// Only flows in this namespace (and below).
        #[arg(long)]
        namespace: Option<String>,
        /// Only this flow.
        #[arg(long)]
        flow: Option<String>,
    },
    /// Switch a trigger on again.
    Enable {
        namespace: String,
        flow: String,
        trigger: String,
    },
    /// Switch a trigger off: it fires nothing until enabled (a webhook answers 404).
    Disable {
        namespace: String,
        flow: String,
        trigger: String,
    },
}

/// "on", or why it is off.
fn status(t: &pb::TriggerInfo) -> String {
    if t.disabled_in_source {
        "off (disabled in the flow)".into()
    } else if t.switched_off {
        format!("off (switched by {})", t.switched_by)
    } else {
        "on".into()
    }
}

fn json_of(t: &pb::TriggerInfo) -> Value {
    let when = |ms: i64| if ms > 0 { Value::String(iso(ms)) } else { Value::Null };
    json!({
        "namespace": t.namespace, "flowId": t.flow_id, "id": t.trigger_id, "type": t.r#type,
        "enabled": !t.disabled_in_source && !t.switched_off,
        "disabledInSource": t.disabled_in_source, "switchedOff": t.switched_off,
        "switchedBy": if t.switched_by.is_empty() { Value::Null } else { Value::String(t.switched_by.clone()) },
        "switchedDate": when(t.switched_ms), "nextExecutionDate": when(t.next_fire_ms),
    })
}

fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    r.map(|r| r.into_inner())
        .map_err(|s| anyhow::anyhow!(status_message(&s)))
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &TriggerArgs) -> anyhow::Result<()> {
    let (namespace, flow, trigger, enabled) = match &a.command {
        TriggerCommand::List { namespace, flow } => {
            let request = pb::ListTriggersRequest {
                namespace: namespace.clone().unwrap_or_default(),
                flow_id: flow.clone().unwrap_or_default(),
            };
            let list = grpc(c.flows.list_triggers(request).await)?.triggers;
            match cli.output {
                Format::Json => print_json(&Value::Array(list.iter().map(json_of).collect())),
                Format::Text if list.is_empty() => println!("no triggers"),
                Format::Text => {
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|t| {
                            let short = t.r#type.rsplit('.').next().unwrap_or_default().to_string();
                            let next = if t.next_fire_ms > 0 {
                                iso(t.next_fire_ms)
                            } else {
                                String::new()
                            };
                            vec![
                                t.namespace.clone(),
                                t.flow_id.clone(),
                                t.trigger_id.clone(),
                                short,
                                status(t),
                                next,
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table(&["NAMESPACE", "FLOW", "TRIGGER", "TYPE", "STATUS", "NEXT"], &rows)
                    );
                }
            }
            return Ok(());
        }
        TriggerCommand::Enable {
            namespace,
            flow,
            trigger,
        } => (namespace, flow, trigger, true),
        TriggerCommand::Disable {
            namespace,
            flow,
            trigger,
        } => (namespace, flow, trigger, false),
    };
    let request = pb::SetTriggerRequest {
        namespace: namespace.clone(),
        flow_id: flow.clone(),
        trigger_id: trigger.clone(),
        enabled,
    };
    let t = grpc(c.flows.set_trigger(request).await)?;
    match cli.output {
        Format::Json => print_json(&json_of(&t)),
        Format::Text => println!("{}.{} trigger {}: {}", t.namespace, t.flow_id, t.trigger_id, status(&t)),
    }
    Ok(())
}
