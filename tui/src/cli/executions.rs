//! `run`, `executions`, `resume`, `kill`, `logs`.

use std::collections::HashMap;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tollgate_proto::v1 as pb;

use super::output::{self, age, execution_json, iso, now_ms, parse_json, print_json, table};
use super::{Cli, Format};
use crate::client::Clients;

/// `k=v` pairs from `--input`.
fn parse_inputs(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--input `{p}` must look like KEY=VALUE");
        };
        if k.trim().is_empty() {
            bail!("--input `{p}` has an empty key");
        }
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

/// `KEY=PATH` pairs from `--file`: each file is read and sent as the FILE input KEY.
fn read_files(pairs: &[String]) -> anyhow::Result<HashMap<String, Vec<u8>>> {
    let mut out = HashMap::new();
    for p in pairs {
        let Some((k, path)) = p.split_once('=') else {
            bail!("--file `{p}` must look like KEY=PATH");
        };
        if k.trim().is_empty() {
            bail!("--file `{p}` has an empty key");
        }
        let bytes = std::fs::read(path).with_context(|| format!("--file {k}: cannot read {path}"))?;
        out.insert(k.trim().to_string(), bytes);
    }
    Ok(out)
}

/// Turns a gRPC error into a one-line user message (the daemon's message names what was wrong).
pub fn status_message(s: &tonic::Status) -> String {
    let what = match s.code() {
        tonic::Code::NotFound => "not found",
        tonic::Code::FailedPrecondition => "refused",
        tonic::Code::InvalidArgument => "invalid",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::Unauthenticated => "not logged in or token invalid (run `tollgate login`)",
        tonic::Code::Unavailable => "daemon unavailable",
        _ => "error",
    };
    format!("{what}: {}", s.message())
}

fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    r.map(|r| r.into_inner())
        .map_err(|s| anyhow::anyhow!(status_message(&s)))
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub namespace: String,
    pub flow: String,
    /// Input value, KEY=VALUE (repeatable).
    #[arg(short, long = "input")]
    pub inputs: Vec<String>,
    /// Label, KEY=VALUE (repeatable).
    #[arg(short, long = "label")]
    pub labels: Vec<String>,
    /// FILE input, KEY=PATH: the file is uploaded into the execution's storage (repeatable).
    #[arg(long = "file")]
    pub files: Vec<String>,
    /// Wait until the execution pauses or ends, then print it.
    #[arg(long)]
    pub wait: bool,
}

pub async fn run(cli: &Cli, c: &mut Clients, a: &RunArgs) -> anyhow::Result<()> {
    let req = pb::StartRequest {
        namespace: a.namespace.clone(),
        flow_id: a.flow.clone(),
        inputs: parse_inputs(&a.inputs)?,
        labels: parse_inputs(&a.labels)?,
        files: read_files(&a.files)?,
    };
    let mut exec = grpc(c.executions.start(req).await)?
        .execution
        .context("daemon returned no execution")?;
    if a.wait {
        exec = wait_settled(c, exec).await?;
    }
    match cli.output {
        Format::Json => print_json(&execution_json(&exec)),
        Format::Text => println!("{}  {}.{}  {}", exec.id, exec.namespace, exec.flow_id, exec.state),
    }
    Ok(())
}

/// Waits (with the Watch stream) until the execution is paused or terminal.
async fn wait_settled(c: &mut Clients, exec: pb::Execution) -> anyhow::Result<pb::Execution> {
    let settled = |e: &pb::Execution| {
        matches!(
            e.state.as_str(),
            "PAUSED" | "SUCCESS" | "WARNING" | "FAILED" | "KILLED" | "CANCELLED" | "SKIPPED"
        )
    };
    if settled(&exec) {
        return Ok(exec);
    }
    let mut stream = grpc(
        c.executions
            .watch(pb::WatchRequest {
                execution_id: exec.id.clone(),
                ..Default::default()
            })
            .await,
    )?;
    // The execution may have settled between Start and Watch: check once after subscribing.
    let now = grpc(c.executions.get(pb::GetExecutionRequest { id: exec.id.clone() }).await)?;
    if settled(&now) {
        return Ok(now);
    }
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|s| anyhow::anyhow!(status_message(&s)))?;
        if let Some(e) = ev.execution
            && settled(&e)
        {
            return Ok(e);
        }
    }
    bail!("the daemon closed the stream before execution {} settled", exec.id)
}

#[derive(Args, Debug)]
pub struct ExecutionsArgs {
    #[command(subcommand)]
    pub command: Option<ExecutionsCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Subcommand, Debug)]
pub enum ExecutionsCommand {
    /// List executions.
    List(ListArgs),
    /// Show one execution: state, task runs, outputs.
    Get { id: String },
    /// Download a file of an execution (a FILE input or a task's output file) by its
    /// kestra:/// URI, to stdout or `--out`.
    File {
        id: String,
        uri: String,
        /// Write it here instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Args, Debug, Default, Clone)]
pub struct ListArgs {
    /// State filter (repeatable); default PAUSED. Use `--state all` for every state.
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Namespace prefix.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Flow id.
    #[arg(long)]
    pub flow: Option<String>,
    /// Maximum number of executions to print.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

pub async fn executions(cli: &Cli, c: &mut Clients, a: &ExecutionsArgs) -> anyhow::Result<()> {
    match &a.command {
        Some(ExecutionsCommand::Get { id }) => get(cli, c, id).await,
        Some(ExecutionsCommand::File { id, uri, out }) => download(c, id, uri, out.as_deref()).await,
        Some(ExecutionsCommand::List(l)) => list(cli, c, l).await,
        None => list(cli, c, &a.list).await,
    }
}

async fn download(c: &mut Clients, id: &str, uri: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let request = pb::GetFileRequest {
        execution_id: id.to_string(),
        uri: uri.to_string(),
    };
    let content = c
        .executions
        .get_file(request)
        .await
        .map_err(|s| anyhow::anyhow!(status_message(&s)))?
        .into_inner()
        .content;
    match out {
        Some(path) => std::fs::write(path, &content).with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&content).context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")
        }
    }
}

/// Pages through List until `limit` executions are collected, whole or as row summaries (`view`).
pub async fn list_all(
    c: &mut Clients,
    a: &ListArgs,
    default_paused: bool,
    view: pb::ExecutionView,
) -> anyhow::Result<Vec<pb::Execution>> {
    let mut states: Vec<String> = a.states.iter().map(|s| s.to_ascii_uppercase()).collect();
    if states.iter().any(|s| s == "ALL") {
        states.clear();
    } else if states.is_empty() && default_paused {
        states.push("PAUSED".into());
    }
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListExecutionsRequest {
            states: states.clone(),
            namespace: a.namespace.clone().unwrap_or_default(),
            flow_id: a.flow.clone().unwrap_or_default(),
            page_size: (a.limit - out.len()).clamp(1, 1000) as u32,
            page_token: token.clone(),
            view: view as i32,
        };
        let page = grpc(c.executions.list(req).await)?;
        out.extend(page.executions);
        if page.next_page_token.is_empty() || out.len() >= a.limit {
            break;
        }
        token = page.next_page_token;
    }
    Ok(out)
}

async fn list(cli: &Cli, c: &mut Clients, a: &ListArgs) -> anyhow::Result<()> {
    // The table shows row fields only; `-o json` prints whole executions.
    let view = match cli.output {
        Format::Json => pb::ExecutionView::Full,
        Format::Text => pb::ExecutionView::Summary,
    };
    let execs = list_all(c, a, true, view).await?;
    match cli.output {
        Format::Json => print_json(&Value::Array(execs.iter().map(execution_json).collect())),
        Format::Text => {
            let now = now_ms();
            let rows: Vec<Vec<String>> = execs
                .iter()
                .map(|e| {
                    let waiting = e.pauses.first();
                    vec![
                        e.id.clone(),
                        e.namespace.clone(),
                        e.flow_id.clone(),
                        e.state.clone(),
                        waiting.map(|p| p.task_id.clone()).unwrap_or_default(),
                        waiting
                            .map(|p| age(p.since_ms, now))
                            .unwrap_or_else(|| age(e.created_ms, now)),
                        e.started_by.clone(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                println!("no executions match");
            } else {
                print!(
                    "{}",
                    table(
                        &["ID", "NAMESPACE", "FLOW", "STATE", "WAITING TASK", "AGE", "STARTED BY"],
                        &rows
                    )
                );
            }
        }
    }
    Ok(())
}

/// `1`, or for a retried task run each attempt's state (`3: FAILED FAILED SUCCESS`), and when a
/// RETRYING run starts its next attempt.
fn attempts_text(t: &pb::TaskRun) -> String {
    let mut text = match t.attempts.len() {
        0 | 1 => t.attempt.max(1).to_string(),
        n => {
            let states: Vec<&str> = t.attempts.iter().map(|a| a.state.as_str()).collect();
            format!("{n}: {}", states.join(" "))
        }
    };
    if t.next_attempt_ms > 0 {
        text.push_str(&format!(" (next {})", iso(t.next_attempt_ms)));
    }
    text
}

async fn get(cli: &Cli, c: &mut Clients, id: &str) -> anyhow::Result<()> {
    let e = grpc(c.executions.get(pb::GetExecutionRequest { id: id.to_string() }).await)?;
    match cli.output {
        Format::Json => print_json(&execution_json(&e)),
        Format::Text => {
            println!("Execution  {}", e.id);
            println!(
                "Flow       {}.{} (revision {})",
                e.namespace, e.flow_id, e.flow_revision
            );
            println!("State      {}", e.state);
            println!("Started    {} by {}", iso(e.created_ms), e.started_by);
            if e.ended_ms > 0 {
                println!("Ended      {}", iso(e.ended_ms));
            }
            let inputs = parse_json(&e.inputs_json);
            if inputs.as_object().is_some_and(|m| !m.is_empty()) {
                println!("Inputs     {}", output::clean(&inputs.to_string()));
            }
            println!();
            let depth = |t: &pb::TaskRun| {
                let mut d = 0;
                let mut cur = t.parent_task_run_id.clone();
                while let Some(p) = e.task_runs.iter().find(|r| r.id == cur) {
                    d += 1;
                    cur = p.parent_task_run_id.clone();
                }
                d
            };
            let rows: Vec<Vec<String>> = e
                .task_runs
                .iter()
                .map(|t| {
                    let name = format!("{}{}", "  ".repeat(depth(t)), t.task_id);
                    let name = if t.value.is_empty() {
                        name
                    } else {
                        format!("{name} [{}]", t.value)
                    };
                    let outputs = parse_json(&t.outputs_json);
                    let outputs = if outputs.as_object().is_some_and(|m| m.is_empty()) {
                        String::new()
                    } else {
                        outputs.to_string()
                    };
                    vec![name, t.state.clone(), attempts_text(t), t.id.clone(), outputs]
                })
                .collect();
            print!(
                "{}",
                table(&["TASK", "STATE", "ATTEMPTS", "TASK RUN", "OUTPUTS"], &rows)
            );
            for t in e.task_runs.iter().filter(|t| t.sla_breached_ms > 0) {
                println!(
                    "SLA breached: `{}` was still waiting at {} (due {})",
                    t.task_id,
                    iso(t.sla_breached_ms),
                    iso(t.sla_due_ms)
                );
            }
            let decisions: Vec<(&pb::TaskRun, &pb::Decision)> = e
                .task_runs
                .iter()
                .flat_map(|t| t.decisions.iter().map(move |d| (t, d)))
                .collect();
            if !decisions.is_empty() {
                println!("\nDecisions");
                for (t, d) in decisions {
                    let verb = if d.rejected { "rejected" } else { "approved" };
                    let comment = if d.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", output::clean(&d.comment))
                    };
                    println!(
                        "  {} {} `{}` at {}{}",
                        output::who(&d.by, &d.on_behalf_of),
                        verb,
                        t.task_id,
                        iso(d.on_ms),
                        comment
                    );
                }
            }
            for p in &e.pauses {
                println!();
                println!(
                    "Waiting at `{}` since {} (task run {})",
                    p.task_id,
                    iso(p.since_ms),
                    p.task_run_id
                );
                if !p.on_resume.is_empty() {
                    let fields: Vec<String> = p
                        .on_resume
                        .iter()
                        .map(|i| format!("{} ({}{})", i.id, i.r#type, if i.required { ", required" } else { "" }))
                        .collect();
                    println!("  onResume inputs: {}", fields.join(", "));
                }
                if !p.assignee_users.is_empty() || !p.assignee_groups.is_empty() {
                    println!(
                        "  may decide: users [{}] groups [{}]",
                        p.assignee_users.join(", "),
                        p.assignee_groups.join(", ")
                    );
                }
            }
            let outputs = parse_json(&e.outputs_json);
            if outputs.as_object().is_some_and(|m| !m.is_empty()) {
                println!("\nOutputs    {}", outputs);
            }
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// Execution ids (none with --all-paused).
    pub ids: Vec<String>,
    /// onResume input, KEY=VALUE (repeatable).
    #[arg(short, long = "input")]
    pub inputs: Vec<String>,
    /// FILE input of `onResume`, KEY=PATH (repeatable; one execution at a time).
    #[arg(long = "file")]
    pub files: Vec<String>,
    /// Which paused task to resume when several are paused.
    #[arg(long = "task")]
    pub task: Option<String>,
    /// Resume every PAUSED execution matching --namespace/--flow.
    #[arg(long)]
    pub all_paused: bool,
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long)]
    pub flow: Option<String>,
    /// A comment kept with the approval (shown in `executions get` and the audit log).
    #[arg(long, alias = "reason", default_value = "")]
    pub comment: String,
    /// Show what resuming would do next (branches taken, next tasks with their properties
    /// rendered, secrets masked) without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// `resume ID --dry-run`: the daemon walks a copy of the execution; nothing changes.
async fn preview(cli: &Cli, c: &mut Clients, a: &ResumeArgs) -> anyhow::Result<()> {
    let [id] = a.ids.as_slice() else {
        bail!("--dry-run previews one execution: name exactly one id");
    };
    let v = grpc(
        c.executions
            .preview_resume(pb::ResumeRequest {
                id: id.clone(),
                inputs: parse_inputs(&a.inputs)?,
                task_id: a.task.clone().unwrap_or_default(),
                reason: a.comment.clone(),
                ..Default::default()
            })
            .await,
    )?;
    match cli.output {
        Format::Json => print_json(&json!({
            "taskId": v.task_id, "completes": v.completes, "approvalsSoFar": v.approvals_so_far,
            "approvalsRequired": v.approvals_required, "stateAfter": v.state_after,
            "steps": v.steps.iter().map(|s| json!({
                "taskId": s.task_id, "type": s.task_type, "state": s.state,
                "branch": if s.branch.is_empty() { Value::Null } else { Value::String(s.branch.clone()) },
                "properties": if s.properties_json.is_empty() { Value::Null } else { parse_json(&s.properties_json) },
                "messages": s.messages,
            })).collect::<Vec<_>>(),
        })),
        Format::Text => print!("{}", preview_text(&v)),
    }
    Ok(())
}

/// The preview as text (the console shows the same lines).
pub fn preview_text(v: &pb::ResumePreview) -> String {
    let mut out = format!("Dry run: nothing was changed. Resuming `{}` now would:\n", v.task_id);
    if !v.completes {
        out.push_str(&format!(
            "  record approval {} of {}; the task keeps waiting for the others\n",
            v.approvals_so_far + 1,
            v.approvals_required
        ));
        return out;
    }
    for s in &v.steps {
        let kind = s.task_type.rsplit('.').next().unwrap_or("");
        let branch = if s.branch.is_empty() {
            String::new()
        } else {
            format!(" -> branch {}", s.branch)
        };
        out.push_str(&format!("  {} ({kind}) {}{branch}\n", s.task_id, s.state));
        if !s.properties_json.is_empty()
            && let Value::Object(m) = parse_json(&s.properties_json)
        {
            for (k, v) in m {
                let v = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
                out.push_str(&format!("      {k}: {}\n", output::clean(&v)));
            }
        }
        for m in &s.messages {
            out.push_str(&format!("      log: {}\n", output::clean(m)));
        }
    }
    out.push_str(&format!("  then the execution is {}\n", v.state_after));
    out
}

pub async fn resume(cli: &Cli, c: &mut Clients, a: &ResumeArgs) -> anyhow::Result<()> {
    if a.dry_run {
        return preview(cli, c, a).await;
    }
    if a.ids.is_empty() && !a.all_paused {
        bail!("name the executions to resume, or use --all-paused with --namespace/--flow");
    }
    if a.all_paused && a.namespace.is_none() && a.flow.is_none() {
        bail!("--all-paused needs --namespace and/or --flow, so it cannot resume everything by accident");
    }
    let inputs = parse_inputs(&a.inputs)?;
    if !a.files.is_empty() {
        // Uploads belong to one execution: a single resume, not a bulk one.
        let [id] = a.ids.as_slice() else {
            bail!("--file resumes one execution: name exactly one id (not --all-paused)");
        };
        let exec = grpc(
            c.executions
                .resume(pb::ResumeRequest {
                    id: id.clone(),
                    inputs,
                    task_id: a.task.clone().unwrap_or_default(),
                    reason: a.comment.clone(),
                    files: read_files(&a.files)?,
                    ..Default::default()
                })
                .await,
        )?
        .execution
        .context("daemon returned no execution")?;
        match cli.output {
            Format::Json => print_json(&execution_json(&exec)),
            Format::Text => println!("resumed {}  {}", exec.id, exec.state),
        }
        return Ok(());
    }
    let req = pb::BulkResumeRequest {
        ids: a.ids.clone(),
        namespace: a.namespace.clone().unwrap_or_default(),
        flow_id: a.flow.clone().unwrap_or_default(),
        inputs,
        task_id: a.task.clone().unwrap_or_default(),
        reason: a.comment.clone(),
        ..Default::default()
    };
    let resp = grpc(c.executions.bulk_resume(req).await)?;
    report_bulk(cli, &resp, "resumed")
}

fn report_bulk(cli: &Cli, resp: &pb::BulkResponse, verb: &str) -> anyhow::Result<()> {
    let failed = resp.results.iter().filter(|r| !r.ok).count();
    match cli.output {
        Format::Json => print_json(&Value::Array(
            resp.results
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id, "ok": r.ok, "code": r.code, "message": r.message,
                        "inputErrors": r.input_errors.iter().map(|e| json!({"input": e.input_id, "message": e.message})).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )),
        Format::Text => {
            for r in &resp.results {
                if r.ok {
                    println!("{}  {verb}", r.id);
                } else {
                    println!("{}  {}: {}", r.id, r.code, r.message);
                    for e in &r.input_errors {
                        println!("    {}: {}", e.input_id, e.message);
                    }
                }
            }
            if resp.results.is_empty() {
                println!("nothing matched");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} failed", resp.results.len());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct KillArgs {
    pub ids: Vec<String>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Args, Debug)]
pub struct RejectArgs {
    /// Execution id.
    pub id: String,
    /// Why (kept with the rejection; required when the HumanTask says `rejectionReasonRequired`).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Which paused task to reject when several are paused.
    #[arg(long = "task")]
    pub task: Option<String>,
}

/// Rejects a pause: its task run ends FAILED with output `rejected`.
pub async fn reject(cli: &Cli, c: &mut Clients, a: &RejectArgs) -> anyhow::Result<()> {
    let e = grpc(
        c.executions
            .reject(pb::RejectRequest {
                id: a.id.clone(),
                task_id: a.task.clone().unwrap_or_default(),
                reason: a.reason.clone(),
                ..Default::default()
            })
            .await,
    )?
    .execution
    .unwrap_or_default();
    match cli.output {
        Format::Json => print_json(&output::execution_json(&e)),
        Format::Text => println!("{}  rejected (now {})", e.id, e.state),
    }
    Ok(())
}

pub async fn kill(cli: &Cli, c: &mut Clients, a: &KillArgs) -> anyhow::Result<()> {
    if a.ids.is_empty() {
        bail!("name the executions to kill");
    }
    let resp = grpc(
        c.executions
            .bulk_kill(pb::BulkKillRequest {
                ids: a.ids.clone(),
                reason: a.reason.clone(),
                ..Default::default()
            })
            .await,
    )?;
    report_bulk(cli, &resp, "killed")
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    pub id: String,
    /// Keep following new lines until the execution ends.
    #[arg(short, long)]
    pub follow: bool,
    /// First sequence number to show.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
}

pub async fn logs(cli: &Cli, c: &mut Clients, a: &LogsArgs) -> anyhow::Result<()> {
    let req = pb::TailLogsRequest {
        execution_id: a.id.clone(),
        from_seq: a.from,
        follow: a.follow,
    };
    let mut stream = grpc(c.executions.tail_logs(req).await)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|s| anyhow::anyhow!(status_message(&s)))?;
        for l in &batch.lines {
            match cli.output {
                Format::Json => println!(
                    "{}",
                    json!({"seq": l.seq, "timestamp": iso(l.time_ms), "level": l.level, "taskId": l.task_id, "taskRunId": l.task_run_id, "message": l.message})
                ),
                Format::Text => {
                    let task = if l.task_id.is_empty() { "-" } else { l.task_id.as_str() };
                    for (i, line) in l.message.lines().enumerate() {
                        if i == 0 {
                            println!("{} {:<5} {task}: {}", iso(l.time_ms), l.level, output::clean(line));
                        } else {
                            println!("    {}", output::clean(line));
                        }
                    }
                }
            }
        }
        if batch.end {
            break;
        }
    }
    Ok(())
}
