//! `delegate`: offer your HumanTask decisions to someone else while you are away.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DelegateArgs {
    #[command(subcommand)]
    pub command: Option<DelegateCommand>,
    /// Who may decide for you meanwhile (their email).
    #[arg(long)]
    pub to: Option<String>,
    /// First day, YYYY-MM-DD (UTC); default today.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (UTC), included.
    #[arg(long)]
    pub until: Option<String>,
    /// Only decisions in this namespace (and below); default every namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Delegate someone else's decisions (needs the admin role on the namespace).
    #[arg(long = "for")]
    pub for_user: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DelegateCommand {
    /// Delegations you give, receive or administer.
    List {
        /// Include revoked and ended ones.
        #[arg(long)]
        all: bool,
    },
    /// End a delegation now.
    Revoke { id: String },
}

fn json_of(d: &pb::Delegation) -> Value {
    json!({
        "id": d.id, "from": d.from_user, "to": d.to_user,
        "namespace": if d.namespace.is_empty() { Value::Null } else { Value::String(d.namespace.clone()) },
        "startDate": iso(d.from_ms), "endDate": iso(d.until_ms), "createdBy": d.created_by,
        "revokedDate": if d.revoked_ms > 0 { Value::String(iso(d.revoked_ms)) } else { Value::Null },
    })
}

fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    r.map(|r| r.into_inner())
        .map_err(|s| anyhow::anyhow!(status_message(&s)))
}

fn days(d: &pb::Delegation) -> String {
    // `until_ms` is the start of the day after the last one.
    let last = d.until_ms - 86_400_000;
    format!("{} .. {}", &iso(d.from_ms)[..10], &iso(last)[..10])
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &DelegateArgs) -> anyhow::Result<()> {
    match &a.command {
        Some(DelegateCommand::List { all }) => {
            let list = grpc(c.delegations.list(pb::ListDelegationsRequest { all: *all }).await)?.delegations;
            match cli.output {
                Format::Json => print_json(&Value::Array(list.iter().map(json_of).collect())),
                Format::Text => {
                    if list.is_empty() {
                        println!("no delegations");
                        return Ok(());
                    }
                    let rows: Vec<Vec<String>> = list
                        .iter()
                        .map(|d| {
                            vec![
                                d.id.clone(),
                                d.from_user.clone(),
                                d.to_user.clone(),
                                if d.namespace.is_empty() {
                                    "*".into()
                                } else {
                                    d.namespace.clone()
                                },
                                days(d),
                                if d.revoked_ms > 0 {
                                    "revoked".into()
                                } else {
                                    String::new()
                                },
                            ]
                        })
                        .collect();
                    print!("{}", table(&["ID", "FROM", "TO", "NAMESPACE", "DAYS", ""], &rows));
                }
            }
            Ok(())
        }
        Some(DelegateCommand::Revoke { id }) => {
            let d = grpc(
                c.delegations
                    .revoke(pb::RevokeDelegationRequest { id: id.clone() })
                    .await,
            )?;
            match cli.output {
                Format::Json => print_json(&json_of(&d)),
                Format::Text => println!(
                    "{}  revoked ({} no longer decides for {})",
                    d.id, d.to_user, d.from_user
                ),
            }
            Ok(())
        }
        None => {
            let (Some(to), Some(until)) = (&a.to, &a.until) else {
                anyhow::bail!(
                    "say who and until when: tollgate delegate --to EMAIL --until YYYY-MM-DD [--from YYYY-MM-DD] [--namespace NS]"
                );
            };
            let d = grpc(
                c.delegations
                    .create(pb::CreateDelegationRequest {
                        to_user: to.clone(),
                        from_date: a.from.clone().unwrap_or_default(),
                        until_date: until.clone(),
                        namespace: a.namespace.clone().unwrap_or_default(),
                        for_user: a.for_user.clone().unwrap_or_default(),
                    })
                    .await,
            )?;
            match cli.output {
                Format::Json => print_json(&json_of(&d)),
                Format::Text => println!(
                    "{}  {} decides for {} on {} in {}",
                    d.id,
                    d.to_user,
                    d.from_user,
                    days(&d),
                    if d.namespace.is_empty() {
                        "every namespace"
                    } else {
                        d.namespace.as_str()
                    }
                ),
            }
            Ok(())
        }
    }
}
