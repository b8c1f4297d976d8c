//! The `tollgate` command line: scriptable commands (`-o json` everywhere) and the console.

pub mod audit;
pub mod credentials;
pub mod delegate;
pub mod demo;
pub mod executions;
pub mod flows;
pub mod inbox;
pub mod kv;
pub mod login;
pub mod output;
pub mod shell;
pub mod stats;
pub mod triggers;

use clap::{Parser, Subcommand, ValueEnum};

use crate::client::{Clients, Connection, DEFAULT_SERVER};

/// Terminal console and CLI for tollgated.
#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    /// Daemon address.
    #[arg(long, global = true, env = "TOLLGATE_SERVER")]
    pub server: Option<String>,
    /// PEM file of the CA that signed an `https://` daemon's certificate (besides the system's).
    #[arg(long, global = true, env = "TOLLGATE_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start an execution of NAMESPACE FLOW.
    Run(executions::RunArgs),
    /// List executions (default: PAUSED ones), or show one.
    #[command(alias = "execution", alias = "ex")]
    Executions(executions::ExecutionsArgs),
    /// Resume paused executions with onResume inputs.
    Resume(executions::ResumeArgs),
    /// Kill executions.
    Kill(executions::KillArgs),
    /// Reject a paused execution's decision (the pause fails; `--reason` says why).
    Reject(executions::RejectArgs),
    /// Delegate your HumanTask decisions while you are away (list, revoke).
    Delegate(delegate::DelegateArgs),
    /// Show (and with -f follow) the logs of an execution.
    Logs(executions::LogsArgs),
    /// Manage flows.
    Flow(flows::FlowArgs),
    /// Flow triggers: list them, switch one off or on.
    Trigger(triggers::TriggerArgs),
    /// Namespace key-value store.
    Kv(kv::KvArgs),
    /// Namespace secrets (values read from stdin, never shown).
    Secret(kv::SecretArgs),
    /// The paused executions you may decide, oldest first.
    Inbox(inbox::InboxArgs),
    /// Log in to a daemon: check a token and store it in the OS keyring.
    Login(login::LoginArgs),
    /// Forget the stored token of the server.
    Logout,
    /// Show who the stored token belongs to.
    Whoami,
    /// Show the audit trail, or verify its hash chain.
    Audit(audit::AuditArgs),
    /// Run a demo: embedded daemon, example flows, paused executions, and the console.
    Demo(demo::DemoArgs),
    /// Decisions waiting over time, and how long decisions take per flow, namespace and approver.
    Stats(stats::StatsArgs),
    /// Print a shell completion script (e.g. `tollgate completions bash > /etc/bash_completion.d/tollgate`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (`tollgate man > tollgate.1; man ./tollgate.1`).
    Man,
}

/// Where to connect, with which token: flag, then env, then the stored login.
pub fn connection(cli: &Cli) -> Connection {
    let server = cli
        .server
        .clone()
        .unwrap_or_else(|| credentials::default_server().unwrap_or_else(|| DEFAULT_SERVER.to_string()));
    let token = credentials::token_for(&server);
    Connection {
        server,
        token,
        ca_cert: cli.ca_cert.clone(),
    }
}

pub async fn connect(cli: &Cli) -> anyhow::Result<Clients> {
    Ok(connection(cli).connect().await?)
}

pub async fn whoami(cli: &Cli, c: &mut Clients) -> anyhow::Result<()> {
    let w = c
        .auth
        .whoami(tollgate_proto::v1::WhoamiRequest {})
        .await
        .map_err(|s| anyhow::anyhow!(executions::status_message(&s)))?
        .into_inner();
    match cli.output {
        Format::Json => output::print_json(&serde_json::json!({
            "user": w.user, "groups": w.groups, "server": c.server, "tenant": w.tenant,
            "roles": w.roles.iter().map(|r| serde_json::json!({"role": r.role, "namespace": r.namespace, "viaGroup": r.via_group})).collect::<Vec<_>>(),
        })),
        Format::Text => {
            println!("{} on {} (tenant {})", w.user, c.server, w.tenant);
            if !w.groups.is_empty() {
                println!("groups: {}", w.groups.join(", "));
            }
            for r in &w.roles {
                let ns = if r.namespace.is_empty() {
                    "*"
                } else {
                    r.namespace.as_str()
                };
                let via = if r.via_group.is_empty() {
                    String::new()
                } else {
                    format!(" (via {})", r.via_group)
                };
                println!("{} on {ns}{via}", r.role);
            }
        }
    }
    Ok(())
}
