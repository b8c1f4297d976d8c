//! `tollgated`: the Tollgate daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tollgate_daemon::server::{self, ServeConfig};

// glibc's malloc took ~24% of the writer thread's CPU under 100 concurrent resumes (`perf`,
// README Performance): requests, redb pages and records allocate and free many small buffers
// across threads, which mimalloc serves from thread-local pages. Without transparent huge pages
// (`no_thp`): with them, listing 100,000 rows spent ~40% of the daemon's CPU zeroing fresh 2 MB
// pages in the kernel.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's option API, linked in with the allocator above (libmimalloc-sys exposes no constant
// for this option in the version we use).
unsafe extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc v3's option enum.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Freed memory goes back to the OS at once instead of after a second: the daemon's RSS then
/// stays where glibc's malloc had it (bench `footprint`: 25 instead of 31 MiB idle, 35 instead of
/// 46 MiB with 100,000 paused) at no CPU cost we could measure. Only done when option 15 holds
/// purge_delay's default (1000 ms in mimalloc v3, 10 in v2), so a mimalloc whose options moved is
/// left alone, and `MIMALLOC_PURGE_DELAY` still wins.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain C calls on an option number; mimalloc ignores numbers it does not know.
    unsafe {
        if matches!(mi_option_get(MI_OPTION_PURGE_DELAY), 10 | 1000) {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

/// Runs Kestra-style flows with durable human approval gates.
#[derive(Parser, Debug)]
#[command(name = "tollgated", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve gRPC and the REST API on one port.
    Serve(ServeArgs),
    /// Manage users, groups, role bindings and tokens.
    Admin(tollgate_daemon::admin::AdminArgs),
    /// Copy a redb data dir into an empty PostgreSQL database (executions, logs, audit chain,
    /// users, tokens, sealed secrets, KV, flows with revisions). Stop the daemon first.
    Migrate(MigrateArgs),
    /// Move a stopped daemon's finished history to archive.redb now and shrink tollgate.redb to
    /// its live pages (redb files never shrink by themselves: a data dir written before the
    /// archive existed keeps its old size after the daemon drained it). Stop the daemon first.
    Compact(CompactArgs),
    /// Print a shell completion script (e.g. `tollgated completions bash`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page in roff (`tollgated man > tollgated.1`).
    Man,
}

#[derive(Parser, Debug)]
struct MigrateArgs {
    /// The data dir holding tollgate.redb.
    #[arg(long)]
    from: PathBuf,
    /// The PostgreSQL database: postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long)]
    to: tollgate_daemon::store::StoreSpec,
}

#[derive(Parser, Debug)]
struct CompactArgs {
    /// The data dir holding tollgate.redb.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
}

#[derive(Parser, Debug)]
struct ServeArgs {
    /// Where the data lives: `redb` (tollgate.redb in the data dir, the default) or a PostgreSQL
    /// database shared by any number of daemons: postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, env = "TOLLGATE_STORE", default_value = "redb")]
    store: tollgate_daemon::store::StoreSpec,
    /// Directory holding tollgate.redb.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Address to listen on (gRPC and REST share it).
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:28080")]
    listen: SocketAddr,
    /// Directory of flows (flows/<namespace>/<id>.yaml) applied at start.
    #[arg(long)]
    flows: Option<PathBuf>,
    /// Tenant id used in REST paths (/api/v1/{tenant}/...).
    #[arg(long, default_value = "main")]
    tenant: String,
    /// Accept calls without a token (every caller is an admin). Only for local experiments.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Delete finished executions and their logs older than this ISO-8601 duration (e.g. P90D).
    /// Paused and running executions are never deleted. Default: keep everything.
    #[arg(long, value_parser = parse_duration)]
    retention: Option<std::time::Duration>,
    /// Public base URL of this daemon, used by appLink() in notifications.
    #[arg(long, env = "TOLLGATE_EXTERNAL_URL")]
    external_url: Option<String>,
    /// Serve TLS: PEM certificate chain (needs --tls-key).
    #[arg(long, env = "TOLLGATE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Serve TLS: PEM private key of --tls-cert.
    #[arg(long, env = "TOLLGATE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also serve Prometheus `/metrics` WITHOUT a token, in clear text, on this address (e.g.
    /// 127.0.0.1:9464). On the main port `/metrics` needs a token with the metrics or admin role.
    #[arg(long, env = "TOLLGATE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Start although the store's secrets were sealed with another secret key, and make this key
    /// the store's (audited). Only when the old key is lost: its secrets stay unreadable.
    #[arg(long)]
    adopt_secret_key: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    tollgate_daemon::flow::duration::parse_iso8601(s)
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("tollgate")
}

fn main() -> std::process::ExitCode {
    // The daemon's jq sandbox: one program from stdin, answered on stdout, in this short-lived
    // child (no runtime, no logging). Not a command for people, so not in `--help`.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__jq") {
        return std::process::ExitCode::from(tollgate_daemon::expr::serve_jq_child() as u8);
    }
    purge_freed_memory_at_once();
    // One line with every cause, like the console's errors; a backtrace helps nobody running a daemon.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgated: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Flow sources and templates are parsed, checked and rendered on these threads (and
        // the writer's): bounded recursion still wants more than tokio's 2 MiB default.
        .thread_stack_size(tollgate_daemon::engine::THREAD_STACK_BYTES)
        .build()
        .context("cannot start the runtime")?;
    match cli.command {
        Command::Serve(args) => {
            // jq programs run in child processes of this executable: a runaway one (deep
            // recursion overflows the stack, which aborts a process) cannot take the daemon down.
            match std::env::current_exe() {
                Ok(exe) => tollgate_daemon::expr::run_jq_in_processes(exe),
                Err(e) => tracing::warn!(error = %e, "cannot find this executable; jq programs run in-process"),
            }
            let store = runtime.block_on(serve(args))?;
            // Dropping the runtime ends every task and with them the writer thread's last
            // sender; then the store can close cleanly.
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
            if !store.close(std::time::Duration::from_secs(10)) {
                tracing::warn!("the store was still in use at exit; the next start will check it");
            }
            Ok(())
        }
        Command::Admin(args) => tollgate_daemon::admin::run(args),
        Command::Migrate(args) => migrate(args),
        Command::Compact(args) => compact(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tollgated", &mut std::io::stdout().lock());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout().lock())
                .context("cannot write the man page")
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<tollgate_daemon::store::Store> {
    let extras = server::ServeExtras {
        retention: args.retention,
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(tollgate_daemon::tls::TlsFiles { cert, key }),
            _ => None,
        },
        metrics_listen: args.metrics_listen,
        store: args.store,
        adopt_secret_key: args.adopt_secret_key,
    };
    let running = server::start_with(
        ServeConfig {
            data_dir: args.data_dir,
            listen: args.listen,
            flows_dir: args.flows,
            tenant: args.tenant,
            insecure_no_auth: args.insecure_no_auth,
            external_url: args.external_url,
        },
        extras,
    )
    .await?;
    let stop = running.shutdown_handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: finishing in-flight calls");
        let _ = stop.send(true);
    });
    let store = running.engine.store().clone();
    running.wait().await?;
    Ok(store)
}

fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    use tollgate_daemon::store::{Store, StoreSpec};
    let StoreSpec::Postgres(url) = &args.to else {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://USER@HOST/DB)");
    };
    if !args.from.join("tollgate.redb").exists() {
        anyhow::bail!("{} holds no tollgate.redb", args.from.display());
    }
    let from = Store::open(&args.from).context("cannot open the data dir (is the daemon still running on it?)")?;
    let to = Store::open_postgres(url)?;
    let counts = tollgate_daemon::store::copy_all(&from, &to)?;
    for (table, n) in &counts {
        println!("{table:<22} {n}");
    }
    let report = tollgate_daemon::audit::verify(&to.read()?)?;
    if !report.ok {
        anyhow::bail!("the audit chain does not verify in the copy: {report:?}");
    }
    println!("audit chain verifies in {}", to.path().display());
    Ok(())
}

fn compact(args: CompactArgs) -> anyhow::Result<()> {
    use tollgate_daemon::store::{ArchiveSettings, Store};
    let hot = args.data_dir.join("tollgate.redb");
    let size = |f: &std::path::Path| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
    if !hot.exists() {
        anyhow::bail!("{} holds no tollgate.redb", args.data_dir.display());
    }
    let before = size(&hot);
    let store = Store::open(&args.data_dir).context("cannot open the data dir (is the daemon still running on it?)")?;
    let settings = ArchiveSettings::from_env()?;
    let (executions, audit) = store.archive_now::<tollgate_daemon::engine::State>(&settings)?;
    println!("moved to archive.redb: {executions} finished executions, {audit} audit records");
    if !store.compact_hot()? {
        anyhow::bail!("{} is in use elsewhere; nothing was compacted", hot.display());
    }
    println!(
        "tollgate.redb: {} -> {} bytes; archive.redb: {} bytes",
        before,
        size(&hot),
        size(&args.data_dir.join(tollgate_daemon::store::ARCHIVE_FILE))
    );
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
