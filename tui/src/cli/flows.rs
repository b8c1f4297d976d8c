//! `flow apply|validate|list|get`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tollgate_proto::v1 as pb;

use super::executions::status_message;
use super::output::{iso, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

#[derive(Args, Debug)]
pub struct FlowArgs {
    #[command(subcommand)]
    pub command: FlowCommand,
}

#[derive(Subcommand, Debug)]
pub enum FlowCommand {
    /// Apply flow files (or directories of them) to the daemon; each change becomes a new revision.
    Apply { paths: Vec<PathBuf> },
    /// Check flow files without applying them; prints every error as file:line:column.
    Validate { paths: Vec<PathBuf> },
    /// List flows.
    List {
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Show a flow's source.
    Get {
        namespace: String,
        id: String,
        #[arg(long, default_value_t = 0)]
        revision: u32,
    },
}

fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if paths.is_empty() {
        bail!("name at least one flow file or directory");
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            collect(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// Validates locally with the daemon's own parser: works without a running daemon.
pub fn validate(cli: &Cli, paths: &[PathBuf]) -> anyhow::Result<()> {
    let files = expand(paths)?;
    let mut bad = 0;
    let mut report = Vec::new();
    for f in &files {
        let name = f.display().to_string();
        let source = read(f)?;
        match tollgate_daemon::flow::load(&source, &name) {
            Ok(flow) => report.push(json!({"file": name, "namespace": flow.namespace, "id": flow.id, "errors": []})),
            Err(diags) => {
                bad += 1;
                report.push(json!({
                    "file": name,
                    "errors": diags.iter().map(|d| json!({"line": d.line, "column": d.column, "message": d.message})).collect::<Vec<_>>(),
                }));
                if cli.output == Format::Text {
                    for d in &diags {
                        eprintln!("{d}");
                    }
                }
            }
        }
    }
    match cli.output {
        Format::Json => print_json(&Value::Array(report)),
        Format::Text => println!("{} valid, {bad} invalid", files.len() - bad),
    }
    if bad > 0 {
        bail!("{bad} flow file(s) invalid");
    }
    Ok(())
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &FlowArgs) -> anyhow::Result<()> {
    match &a.command {
        FlowCommand::Validate { paths } => validate(cli, paths),
        FlowCommand::Apply { paths } => {
            let files = expand(paths)?;
            let mut failed = 0;
            let mut report = Vec::new();
            for f in &files {
                let name = f.display().to_string();
                let source = read(f)?;
                match c
                    .flows
                    .apply(pb::ApplyFlowRequest {
                        source,
                        file_name: name.clone(),
                    })
                    .await
                {
                    Ok(r) => {
                        let r = r.into_inner();
                        let flow = r.flow.unwrap_or_default();
                        if cli.output == Format::Text {
                            let what = if r.changed { "applied" } else { "unchanged" };
                            println!("{}.{}  revision {}  {what}", flow.namespace, flow.id, flow.revision);
                        }
                        report.push(json!({"file": name, "namespace": flow.namespace, "id": flow.id, "revision": flow.revision, "changed": r.changed}));
                    }
                    Err(s) => {
                        failed += 1;
                        if cli.output == Format::Text {
                            eprintln!("{name}: {}", status_message(&s));
                        }
                        report.push(json!({"file": name, "error": s.message()}));
                    }
                }
            }
            if cli.output == Format::Json {
                print_json(&Value::Array(report));
            }
            if failed > 0 {
                bail!("{failed} flow file(s) not applied");
            }
            Ok(())
        }
        FlowCommand::List { namespace } => {
            let r = c
                .flows
                .list(pb::ListFlowsRequest {
                    namespace: namespace.clone().unwrap_or_default(),
                })
                .await
                .map_err(|s| anyhow::anyhow!(status_message(&s)))?
                .into_inner();
            match cli.output {
                Format::Json => print_json(&Value::Array(
                    r.flows
                        .iter()
                        .map(|f| json!({"namespace": f.namespace, "id": f.id, "revision": f.revision, "description": f.description, "disabled": f.disabled, "updated": iso(f.updated_ms)}))
                        .collect(),
                )),
                Format::Text => {
                    let rows: Vec<Vec<String>> = r
                        .flows
                        .iter()
                        .map(|f| vec![f.namespace.clone(), f.id.clone(), f.revision.to_string(), f.description.lines().next().unwrap_or("").to_string()])
                        .collect();
                    if rows.is_empty() {
                        println!("no flows");
                    } else {
                        print!("{}", table(&["NAMESPACE", "ID", "REVISION", "DESCRIPTION"], &rows));
                    }
                }
            }
            Ok(())
        }
        FlowCommand::Get {
            namespace,
            id,
            revision,
        } => {
            let f = c
                .flows
                .get(pb::GetFlowRequest {
                    namespace: namespace.clone(),
                    id: id.clone(),
                    revision: *revision,
                })
                .await
                .map_err(|s| anyhow::anyhow!(status_message(&s)))?
                .into_inner();
            match cli.output {
                Format::Json => print_json(
                    &json!({"namespace": f.namespace, "id": f.id, "revision": f.revision, "source": f.source}),
                ),
                Format::Text => print!("{}", f.source),
            }
            Ok(())
        }
    }
}
