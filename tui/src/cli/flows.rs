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
    /// Check flow files without applying them; prints every error as file:line:column. Needs no
    /// daemon, except in a build without the embedded daemon, which asks --server's.
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

/// One checked file: the flow it declares, or every error with its position.
struct Checked {
    file: String,
    flow: Option<(String, String)>,
    /// (line, column, message)
    errors: Vec<(u32, u32, String)>,
}

/// Checks with the daemon's own parser, in this process: works without a running daemon.
#[cfg(feature = "embedded-daemon")]
async fn check(_: &Cli, files: &[PathBuf]) -> anyhow::Result<Vec<Checked>> {
    let mut out = Vec::new();
    for f in files {
        let file = f.display().to_string();
        let source = read(f)?;
        out.push(match tollgate_daemon::flow::load(&source, &file) {
            Ok(flow) => Checked {
                file,
                flow: Some((flow.namespace, flow.id)),
                errors: vec![],
            },
            Err(diags) => Checked {
                file,
                flow: None,
                errors: diags.into_iter().map(|d| (d.line, d.column, d.message)).collect(),
            },
        });
    }
    Ok(out)
}

/// Checks with the daemon's Flows.Validate: this build has no parser of its own.
#[cfg(not(feature = "embedded-daemon"))]
async fn check(cli: &Cli, files: &[PathBuf]) -> anyhow::Result<Vec<Checked>> {
    let mut c = super::connect(cli).await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}; this tollgate was built without the embedded daemon (feature `embedded-daemon`), so `flow validate` asks a daemon: pass --server URL of a running tollgated, or rebuild with default features"
        )
    })?;
    let mut out = Vec::new();
    for f in files {
        let file = f.display().to_string();
        let source = read(f)?;
        let r = c
            .flows
            .validate(pb::ValidateFlowRequest {
                source,
                file_name: file.clone(),
            })
            .await
            .map_err(|s| anyhow::anyhow!("{file}: {}", status_message(&s)))?
            .into_inner();
        out.push(Checked {
            file,
            flow: r.errors.is_empty().then_some((r.namespace, r.id)),
            errors: r.errors.into_iter().map(|e| (e.line, e.column, e.message)).collect(),
        });
    }
    Ok(out)
}

/// `flow validate`: every error as file:line:column, then a count (or one JSON report).
pub async fn validate(cli: &Cli, paths: &[PathBuf]) -> anyhow::Result<()> {
    let files = expand(paths)?;
    let checked = check(cli, &files).await?;
    let mut bad = 0;
    let mut report = Vec::new();
    for c in &checked {
        match &c.flow {
            Some((namespace, id)) if c.errors.is_empty() => {
                report.push(json!({"file": c.file, "namespace": namespace, "id": id, "errors": []}))
            }
            _ => {
                bad += 1;
                report.push(json!({
                    "file": c.file,
                    "errors": c.errors.iter().map(|(line, column, message)| json!({"line": line, "column": column, "message": message})).collect::<Vec<_>>(),
                }));
                if cli.output == Format::Text {
                    for (line, column, message) in &c.errors {
                        eprintln!("{}:{line}:{column}: {message}", c.file);
                    }
                }
            }
        }
    }
    match cli.output {
        Format::Json => print_json(&Value::Array(report)),
        Format::Text => println!("{} valid, {bad} invalid", checked.len() - bad),
    }
    if bad > 0 {
        bail!("{bad} flow file(s) invalid");
    }
    Ok(())
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &FlowArgs) -> anyhow::Result<()> {
    match &a.command {
        FlowCommand::Validate { paths } => validate(cli, paths).await,
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
