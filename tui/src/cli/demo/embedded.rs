//! The demo with the daemon in this process: a temporary data dir, the example flows, a demo
//! administrator seeded in the store, a few paused executions, then the console.

use std::path::PathBuf;

use anyhow::Context;
use tollgate_daemon::server::{self, ServeConfig};
use tollgate_proto::v1 as pb;

use super::DemoArgs;
use crate::client::Connection;

fn flows_dir(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| Some(PathBuf::from("flows")).filter(|p| p.is_dir()))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../flows")))
}

/// Namespace, flow and inputs of an execution the demo starts.
type DemoStart = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Executions the demo starts so that something waits for a decision.
const DEMO_STARTS: &[DemoStart] = &[
    ("demo", "pause_demo", &[]),
    ("demo", "pause_demo", &[]),
    ("demo", "pause_demo", &[]),
    ("demo", "notify_on_pause", &[]),
    ("demo", "approval_reminders", &[]),
    ("demo", "parallel_approvals", &[]),
    ("infrastructure", "vm_provisioning_approval", &[]),
    ("infrastructure", "deploy_with_approval", &[]),
    (
        "hr.operations",
        "vacation_approval",
        &[
            ("employee", "alice@example.com"),
            ("start_date", "2026-12-21"),
            ("end_date", "2026-12-31"),
        ],
    ),
    (
        "hr.operations",
        "vacation_approval",
        &[
            ("employee", "bob@example.com"),
            ("start_date", "2027-01-04"),
            ("end_date", "2027-01-08"),
        ],
    ),
    (
        "hr.operations",
        "vacation_rejection",
        &[("employee_email", "carol@example.com")],
    ),
];

/// The demo's administrator: admin everywhere, and in every group a HumanTask of the flows names,
/// so every gate of the demo can be decided from the console.
const DEMO_USER: &str = "demo-admin@tollgate.local";

fn demo_admin(data_dir: &std::path::Path, flows: &std::path::Path) -> anyhow::Result<String> {
    use tollgate_daemon::flow::TaskKind;
    let mut groups = std::collections::BTreeSet::new();
    let mut stack = vec![flows.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(flow) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|src| tollgate_daemon::flow::load(&src, "").ok())
            {
                for t in flow.all_tasks() {
                    if let TaskKind::Pause(p) = &t.kind
                        && let Some(h) = &p.human
                    {
                        groups.extend(h.assignment.groups.iter().cloned());
                        for e in &h.escalation {
                            groups.extend(e.assignment.groups.iter().cloned());
                        }
                    }
                }
            }
        }
    }
    let store = tollgate_daemon::store::Store::open(data_dir)?;
    let groups: Vec<String> = groups.into_iter().collect();
    store.write(|w| -> Result<(), tollgate_daemon::store::StoreError> {
        for g in &groups {
            w.put_group(g)?;
        }
        if w.user(DEMO_USER)?.is_none() {
            w.put_user(&tollgate_daemon::store::UserRecord {
                email: DEMO_USER.into(),
                groups: groups.clone(),
                created_ms: 0,
            })?;
            w.put_binding(&tollgate_daemon::store::Binding {
                kind: "user".into(),
                subject: DEMO_USER.into(),
                role: "admin".into(),
                namespace: String::new(),
            })?;
        }
        Ok(())
    })?;
    let (_, token) = tollgate_daemon::auth::create_token(&store, DEMO_USER, "demo", None)?;
    Ok(token)
}

/// Points the example flows' secrets and KV entries at the local sinks.
async fn wire_sinks(clients: &mut crate::client::Clients, sinks: &super::sinks::Sinks) -> anyhow::Result<()> {
    let secrets = [
        ("hr.operations", "SLACK_HR_WEBHOOK", format!("{}/slack/hr", sinks.http)),
        ("demo", "TEAMS_WEBHOOK", format!("{}/teams/demo", sinks.http)),
        (
            "demo",
            "SLACK_APPROVALS_WEBHOOK",
            format!("{}/slack/approvals", sinks.http),
        ),
    ];
    for (ns, name, value) in secrets {
        clients
            .secrets
            .set(pb::SecretSetRequest {
                namespace: ns.into(),
                name: name.into(),
                value,
            })
            .await
            .map_err(|s| anyhow::anyhow!("demo: cannot store secret {name}: {}", s.message()))?;
    }
    clients
        .kv
        .set(pb::KvSetRequest {
            namespace: "hr.operations".into(),
            key: "HR_API_ENDPOINT".into(),
            value: format!("{}/hr-api", sinks.http),
            kind: "STRING".into(),
            ttl: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("demo: cannot store KV HR_API_ENDPOINT: {}", s.message()))?;
    Ok(())
}

pub(super) async fn run(a: &DemoArgs) -> anyhow::Result<()> {
    let temp;
    let data_dir = match &a.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary data dir")?;
            temp.path().to_path_buf()
        }
    };
    let flows = flows_dir(a.flows.clone());
    let token = demo_admin(&data_dir, &flows)?;
    let sinks = super::sinks::start(data_dir.join("sinks.log")).await?;
    let running = server::start(ServeConfig {
        data_dir: data_dir.clone(),
        listen: "127.0.0.1:0".parse()?,
        flows_dir: Some(flows),
        tenant: "demo".into(),
        insecure_no_auth: false,
        external_url: None,
    })
    .await?;
    let server = format!("http://{}", running.addr);
    let connection = Connection::new(server.clone(), Some(token.clone()));
    let mut clients = connection.connect().await?;
    wire_sinks(&mut clients, &sinks).await?;
    let mut started = 0;
    for (ns, flow, inputs) in DEMO_STARTS {
        let req = pb::StartRequest {
            namespace: ns.to_string(),
            flow_id: flow.to_string(),
            inputs: inputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            labels: Default::default(),
            files: Default::default(),
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
        println!("export TOLLGATE_SERVER={server} TOLLGATE_TOKEN={token}");
        tokio::signal::ctrl_c().await.ok();
    } else {
        let options = crate::console::ConsoleOptions {
            user: Some("demo admin".into()),
            ..Default::default()
        };
        crate::console::run(clients, options).await?;
    }
    running.stop().await?;
    println!(
        "tollgate demo: {} notifications reached the local Slack/Teams/HR/SMTP sinks (see {})",
        sinks.received.load(std::sync::atomic::Ordering::SeqCst),
        sinks.log.display()
    );
    Ok(())
}
