//! `audit [--execution ID] [--user U] [--verify]` and `audit export --since T [--until T]`.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
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

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write a run of the chain, oldest first, one JSON record per line with its `prev_hash` and
    /// `hash`, for a SIEM to verify on its own (admin of every namespace).
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// First record at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<i64>,
    /// Stop before the first record at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Records asked for per call (tests use a small page to cover paging).
    #[arg(long, default_value_t = 1000, hide = true, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

fn parse_time(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.timestamp_millis())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z ({e})"))
}

/// One exported record as a JSON line: the fields the hash covers, in the order it covers them,
/// then the hash and a readable date (not hashed). `values` is written exactly as the daemon
/// sent it: parsing and printing it again could change a float's last digit, and with it the hash.
fn exported_line(r: &pb::AuditRecord) -> anyhow::Result<String> {
    let values = if r.values_json.is_empty() {
        "null"
    } else {
        r.values_json.as_str()
    };
    serde_json::from_str::<serde::de::IgnoredAny>(values)
        .context("the daemon sent a record whose values are not JSON")?;
    let s = |v: &str| Value::String(v.to_string()).to_string();
    Ok(format!(
        "{{\"seq\":{},\"time_ms\":{},\"user\":{},\"action\":{},\"namespace\":{},\"flow_id\":{},\"execution_id\":{},\"task_id\":{},\"values\":{values},\"reason\":{},\"result\":{},\"prev_hash\":{},\"hash\":{},\"date\":{}}}",
        r.seq,
        r.time_ms,
        s(&r.user),
        s(&r.action),
        s(&r.namespace),
        s(&r.flow_id),
        s(&r.execution_id),
        s(&r.task_id),
        s(&r.reason),
        s(&r.result),
        s(&r.prev_hash),
        s(&r.hash),
        s(&iso(r.time_ms)),
    ))
}

async fn export(c: &mut crate::client::Clients, a: &ExportArgs) -> anyhow::Result<()> {
    if let (Some(s), Some(u)) = (a.since, a.until)
        && u <= s
    {
        bail!("--until must be later than --since");
    }
    let mut out: Box<dyn Write> = match &a.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after_seq = 0;
    let mut written = 0u64;
    loop {
        let page = c
            .audit
            .export(pb::ExportAuditRequest {
                since_ms: a.since.unwrap_or(0),
                until_ms: a.until.unwrap_or(0),
                after_seq,
                limit: a.page_size,
            })
            .await
            .map_err(|s| anyhow::anyhow!(status_message(&s)))?
            .into_inner();
        for r in &page.records {
            out.write_all(exported_line(r)?.as_bytes())?;
            out.write_all(b"\n")?;
            after_seq = r.seq;
            written += 1;
        }
        if page.done || page.records.is_empty() {
            break;
        }
    }
    out.flush()?;
    if a.out.is_some() {
        eprintln!("exported {written} audit records");
    }
    Ok(())
}

pub async fn run(cli: &Cli, c: &mut crate::client::Clients, a: &AuditArgs) -> anyhow::Result<()> {
    if let Some(AuditCommand::Export(e)) = &a.command {
        return export(c, e).await;
    }
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
