//! `tollgate demo`: an embedded daemon on a temporary data dir, the example flows, a few paused
//! executions, then the console.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tollgate_daemon::server::{self, ServeConfig};
use tollgate_proto::v1 as pb;

use crate::client::Connection;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep state here instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory of flows to load (default: ./flows, else the flows shipped with the source).
    #[arg(long)]
    pub flows: Option<PathBuf>,
    /// Set everything up, print the address, and wait for ctrl-c instead of opening the console.
    #[arg(long)]
    pub no_console: bool,
}

fn flows_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| Some(PathBuf::from("flows")).filter(|p| p.is_dir()))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../flows")))
}

/// Executions the demo starts so that something waits for a decision.
const DEMO_STARTS: &[(&str, &str, &[(&str, &str)])] = &[
    ("demo", "pause_demo", &[]),
    ("demo", "pause_demo", &[]),
    ("demo", "pause_demo", &[]),
    ("infrastructure", "vm_provisioning_approval", &[]),
    (
        "hr.operations",
        "vacation_approval",
        &[
            ("employee", "alice@example.com"),
            ("start_date", "2026-12-21"),
            ("end_date", "2026-12-31"),
        ],
    ),
];

pub async fn run(a: &DemoArgs) -> anyhow::Result<()> {
    let temp;
    let data_dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary data dir")?;
            temp.path().to_path_buf()
        }
    };
    let flows = flows_dir(a.flows.clone());
    let running = server::start(ServeConfig {
        data_dir: data_dir.clone(),
        listen: "127.0.0.1:0".parse()?,
        flows_dir: Some(flows),
        tenant: "demo".into(),
        insecure_no_auth: true,
        external_url: None,
    })
    .await?;
    let server = format!("http://{}", running.addr);
    let connection = Connection {
        server: server.clone(),
        token: None,
    };
    let mut clients = connection.connect().await?;
    let mut started = 0;
    for (ns, flow, inputs) in DEMO_STARTS {
        let req = pb::StartRequest {
            namespace: ns.to_string(),
            flow_id: flow.to_string(),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: Default::default(),
        };
        match clients.executions.start(req).await {
            Ok(_) => started += 1,
            Err(e) => eprintln!("demo: could not start {ns}.{flow}: {}", e.message()),
        }
    }
    if a.no_console {
        println!(
            "tollgate demo: daemon at {server} (data dir {}), {started} executions started; ctrl-c to stop",
            data_dir.display()
        );
        tokio::signal::ctrl_c().await.ok();
    } else {
        let options = crate::console::ConsoleOptions {
            user: Some("demo admin".into()),
            ..Default::default()
        };
        crate::console::run(clients, options).await?;
    }
    running.stop().await?;
    Ok(())
}
