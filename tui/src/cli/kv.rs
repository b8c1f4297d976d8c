//! `kv get|set|list|delete` and `secret set|list|delete` (admin of the namespace).

use std::io::Read;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

#[derive(Args, Debug)]
pub struct KvArgs {
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// Print a value.
    Get { namespace: String, key: String },
    /// Store a value (typed: inferred, or --type STRING|NUMBER|BOOLEAN|JSON).
    Set {
        namespace: String,
        key: String,
        value: String,
        #[arg(long = "type")]
        kind: Option<String>,
        /// Expiry as an ISO-8601 duration, e.g. P7D.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List the keys of a namespace.
    List { namespace: String },
    /// Delete a key.
    Delete { namespace: String, key: String },
}

fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    r.map(|r| r.into_inner())
        .map_err(|s| anyhow::anyhow!(status_message(&s)))
}

fn entry_json(v: &pb::KvValue) -> Value {
    json!({
        "namespace": v.namespace, "key": v.key, "type": v.kind,
        "value": serde_json::from_str::<Value>(&v.value_json).unwrap_or(Value::Null),
        "expirationDate": if v.expires_ms > 0 { Value::String(iso(v.expires_ms)) } else { Value::Null },
        "updateDate": iso(v.updated_ms),
    })
}

pub async fn kv(cli: &Cli, c: &mut Clients, a: &KvArgs) -> anyhow::Result<()> {
    match &a.command {
        KvCommand::Get { namespace, key } => {
            let v = grpc(
                c.kv.get(pb::KvKey {
                    namespace: namespace.clone(),
                    key: key.clone(),
                })
                .await,
            )?;
            match cli.output {
                Format::Json => print_json(&entry_json(&v)),
                Format::Text => match serde_json::from_str::<Value>(&v.value_json) {
                    Ok(Value::String(s)) => println!("{s}"),
                    Ok(other) => println!("{other}"),
                    Err(_) => println!("{}", v.value_json),
                },
            }
        }
        KvCommand::Set {
            namespace,
            key,
            value,
            kind,
            ttl,
        } => {
            let v = grpc(
                c.kv.set(pb::KvSetRequest {
                    namespace: namespace.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    kind: kind.clone().unwrap_or_default(),
                    ttl: ttl.clone().unwrap_or_default(),
                })
                .await,
            )?;
            match cli.output {
                Format::Json => print_json(&entry_json(&v)),
                Format::Text => println!("{}.{} = {} ({})", v.namespace, v.key, v.value_json, v.kind),
            }
        }
        KvCommand::List { namespace } => {
            let r = grpc(
                c.kv.list(pb::KvListRequest {
                    namespace: namespace.clone(),
                })
                .await,
            )?;
            match cli.output {
                Format::Json => print_json(&Value::Array(r.entries.iter().map(entry_json).collect())),
                Format::Text => {
                    let rows: Vec<Vec<String>> = r
                        .entries
                        .iter()
                        .map(|e| {
                            vec![
                                e.key.clone(),
                                e.kind.clone(),
                                e.value_json.clone(),
                                if e.expires_ms > 0 {
                                    iso(e.expires_ms)
                                } else {
                                    String::new()
                                },
                            ]
                        })
                        .collect();
                    if rows.is_empty() {
                        println!("no keys in {namespace}");
                    } else {
                        print!("{}", table(&["KEY", "TYPE", "VALUE", "EXPIRES"], &rows));
                    }
                }
            }
        }
        KvCommand::Delete { namespace, key } => {
            let r = grpc(
                c.kv.delete(pb::KvKey {
                    namespace: namespace.clone(),
                    key: key.clone(),
                })
                .await,
            )?;
            if !r.existed {
                bail!("no KV entry `{key}` in namespace `{namespace}`");
            }
            if cli.output == Format::Text {
                println!("deleted {namespace}.{key}");
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub command: SecretCommand,
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store a secret; the value is read from standard input (never from the command line).
    Set { namespace: String, name: String },
    /// List secret names of a namespace (values are never shown).
    List { namespace: String },
    /// Delete a secret.
    Delete { namespace: String, name: String },
}

pub async fn secret(cli: &Cli, c: &mut Clients, a: &SecretArgs) -> anyhow::Result<()> {
    match &a.command {
        SecretCommand::Set { namespace, name } => {
            let mut value = String::new();
            std::io::stdin().read_to_string(&mut value)?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value)
                .to_string();
            if value.is_empty() {
                bail!(
                    "no value on standard input: pipe it in, e.g. `printf %s \"$VALUE\" | tollgate secret set {namespace} {name}`"
                );
            }
            grpc(
                c.secrets
                    .set(pb::SecretSetRequest {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        value,
                    })
                    .await,
            )?;
            if cli.output == Format::Text {
                println!("secret {name} stored in {namespace}");
            }
        }
        SecretCommand::List { namespace } => {
            let r = grpc(
                c.secrets
                    .list(pb::SecretListRequest {
                        namespace: namespace.clone(),
                    })
                    .await,
            )?;
            match cli.output {
                Format::Json => print_json(&json!(r.names)),
                Format::Text => {
                    for n in &r.names {
                        println!("{n}");
                    }
                }
            }
        }
        SecretCommand::Delete { namespace, name } => {
            let r = grpc(
                c.secrets
                    .delete(pb::SecretKey {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    })
                    .await,
            )?;
            if !r.existed {
                bail!("no secret `{name}` in namespace `{namespace}`");
            }
        }
    }
    Ok(())
}
