//! `tollgate`: CLI and terminal console for tollgated.

use clap::Parser;
use tollgate_console::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(dispatch(&cli)) {
        eprintln!("tollgate: {e:#}");
        std::process::exit(1);
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        None => {
            let clients = cli::connection(cli).connect_lazy()?;
            let options = tollgate_console::console::ConsoleOptions::default();
            tollgate_console::console::run(clients, options).await
        }
        Some(Command::Demo(a)) => cli::demo::run(a).await,
        Some(Command::Login(a)) => cli::login::login(cli, a).await,
        Some(Command::Logout) => cli::login::logout(cli),
        Some(Command::Completions { shell }) => cli::shell::completions(*shell),
        Some(Command::Man) => cli::shell::man(),
        Some(Command::Flow(a)) if matches!(a.command, cli::flows::FlowCommand::Validate { .. }) => {
            let cli::flows::FlowCommand::Validate { paths } = &a.command else {
                unreachable!()
            };
            cli::flows::validate(cli, paths).await
        }
        Some(cmd) => {
            let mut c = cli::connect(cli).await?;
            match cmd {
                Command::Run(a) => cli::executions::run(cli, &mut c, a).await,
                Command::Executions(a) => cli::executions::executions(cli, &mut c, a).await,
                Command::Resume(a) => cli::executions::resume(cli, &mut c, a).await,
                Command::Kill(a) => cli::executions::kill(cli, &mut c, a).await,
                Command::Reject(a) => cli::executions::reject(cli, &mut c, a).await,
                Command::Delegate(a) => cli::delegate::run(cli, &mut c, a).await,
                Command::Logs(a) => cli::executions::logs(cli, &mut c, a).await,
                Command::Flow(a) => cli::flows::run(cli, &mut c, a).await,
                Command::Trigger(a) => cli::triggers::run(cli, &mut c, a).await,
                Command::Whoami => cli::whoami(cli, &mut c).await,
                Command::Inbox(a) => cli::inbox::run(cli, &mut c, a).await,
                Command::Kv(a) => cli::kv::kv(cli, &mut c, a).await,
                Command::Secret(a) => cli::kv::secret(cli, &mut c, a).await,
                Command::Audit(a) => cli::audit::run(cli, &mut c, a).await,
                Command::Stats(a) => cli::stats::run(cli, &mut c, a).await,
                Command::Demo(_) | Command::Login(_) | Command::Logout | Command::Completions { .. } | Command::Man => {
                    Ok(())
                }
            }
        }
    }
}
