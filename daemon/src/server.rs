//! Assembles and runs the daemon: store, engine, gRPC + REST on one port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::kv::{KvService, SecretsService};
use crate::api::{ApiState, executions::ExecutionsService, flows::FlowsService, whoami::WhoamiService};
use crate::auth::Auth;
use crate::engine::Engine;
use crate::expr::ExprServices;
use crate::secrets::SecretBox;
use crate::services::DaemonServices;
use crate::store::Store;
use crate::tasks::TaskServices;
use tollgate_proto::v1::{
    auth_server::AuthServer, executions_server::ExecutionsServer, flows_server::FlowsServer, kv_server::KvServer,
    secrets_server::SecretsServer,
};

/// How long a graceful stop waits for in-flight calls.
const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything `tollgated serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub flows_dir: Option<PathBuf>,
    pub tenant: String,
    pub insecure_no_auth: bool,
    pub external_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    KeyCheck(#[from] crate::secrets::KeyCheckError),
}

/// A running daemon: its address and engine, and a handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub engine: Engine,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops accepting calls, lets in-flight ones finish, and waits.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the server ends by itself.
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await.unwrap_or(Ok(()))
    }

    pub fn shutdown_handle(&self) -> tokio::sync::watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Settings beyond the basic ones (kept apart so existing `ServeConfig` literals stay valid).
#[derive(Debug, Clone, Default)]
pub struct ServeExtras {
    /// Delete finished executions (and their logs) older than this; `None` keeps everything.
    pub retention: Option<std::time::Duration>,
    /// Serve TLS with this certificate and key instead of clear text.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Also serve `/metrics` without a token, in clear text, on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the data lives: redb in the data dir (default) or a PostgreSQL database.
    pub store: crate::store::StoreSpec,
    /// Make this daemon's secret key the store's even if its secrets were sealed with another.
    pub adopt_secret_key: bool,
}

/// Opens the store, starts the engine, loads `flows_dir`, binds and serves in the background.
pub async fn start(config: ServeConfig) -> Result<Running, ServeError> {
    start_with(config, ServeExtras::default()).await
}

/// [`start`] with extra settings.
pub async fn start_with(config: ServeConfig, extras: ServeExtras) -> Result<Running, ServeError> {
    // Bad certificate files are the operator's mistake: refuse before touching anything.
    let tls = extras.tls.as_ref().map(crate::tls::server_config).transpose()?;
    // A bad archiver setting is refused before anything starts.
    let archive_settings = crate::store::ArchiveSettings::from_env()?;
    let store = Store::open_spec(&extras.store, &config.data_dir)?;
    // History moves to archive.redb in the background (redb only): see store/archive.rs.
    store.start_archiver::<crate::engine::State>(archive_settings);
    // Bound first so links (appLink) name the real port even with `--listen 127.0.0.1:0`.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let secrets = Arc::new(SecretBox::open(&config.data_dir)?);
    crate::secrets::check_store_key(&store, &secrets, extras.adopt_secret_key)?;
    crate::secrets::install_at_rest(secrets.as_ref().clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let external_url = config
        .external_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let expr: Arc<dyn ExprServices> = Arc::new(DaemonServices::new(
        store.clone(),
        secrets.clone(),
        external_url,
        config.tenant.clone(),
    ));
    let task_services = Arc::new(TaskServices::new(expr.clone()));
    let scripts_dir = config.data_dir.join("scripts");
    // Before any job runs: end what a crash left of script processes, drop their directories.
    crate::tasks::script::sweep(&scripts_dir);
    let _ = task_services.scripts_dir.set(scripts_dir);
    let engine = Engine::start(store, expr, task_services)?;
    if let Some(dir) = &config.flows_dir {
        load_flows_dir(&engine, dir).await;
    }
    if let Some(keep) = extras.retention {
        tokio::spawn(crate::engine::retention::run(engine.clone(), keep));
    }
    let store = engine.store().clone();
    if !config.insecure_no_auth
        && let Some(hint) = crate::auth::first_start_hint(&store, &config.data_dir)
    {
        tracing::warn!("{hint}");
    }
    let auth = Arc::new(Auth::from_store(store, config.insecure_no_auth));
    {
        // Rights changed through another daemon of a shared database end streams here too.
        let (auth, mut elsewhere) = (auth.clone(), engine.rights_changed_elsewhere());
        tokio::spawn(async move {
            while elsewhere.changed().await.is_ok() {
                auth.rights_changed();
            }
        });
    }
    let secrets_for_pages = secrets.clone();
    let ops = crate::ops::Ops::new(engine.clone(), auth, secrets, config.tenant.clone());
    let state = ApiState {
        ops: Arc::new(ops),
        pages: Arc::new(crate::http::page_session::PageSessions::from_secrets(
            &secrets_for_pages,
            tls.is_some(),
        )),
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ExecutionsServer<ExecutionsService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tollgate_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    // Starts and resumes may carry FILE inputs of up to 64 MiB each.
    let executions = ExecutionsServer::new(ExecutionsService(state.clone()))
        .max_decoding_message_size(crate::engine::files::MAX_FILE_BYTES + (1 << 20));
    let grpc = tonic::service::Routes::new(executions)
        .add_service(FlowsServer::new(FlowsService(state.clone())))
        .add_service(AuthServer::new(WhoamiService(state.clone())))
        .add_service(KvServer::new(KvService(state.clone())))
        .add_service(tollgate_proto::v1::delegations_server::DelegationsServer::new(
            crate::api::delegations::DelegationsService(state.clone()),
        ))
        .add_service(tollgate_proto::v1::audit_server::AuditServer::new(
            crate::api::audit::AuditService(state.clone()),
        ))
        .add_service(SecretsServer::new(SecretsService(state.clone())))
        .add_service(tollgate_proto::v1::stats_server::StatsServer::new(
            crate::api::stats::StatsService(state.clone()),
        ))
        .add_service(health_service)
        .add_service(reflection)
        .into_axum_router();
    let app = grpc
        .merge(crate::http::router(state.clone()))
        .fallback(crate::http::fallback)
        .layer(axum::middleware::from_fn(crate::http::metrics::count_requests));
    let metrics_listener = match extras.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };

    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    if let Some(listener) = metrics_listener {
        let metrics_app = crate::http::metrics::open_router(state.clone());
        let mut stop = rx.clone();
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving /metrics without a token");
        }
        tokio::spawn(async move {
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, metrics_app)
                .with_graceful_shutdown(stopping)
                .await
            {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let closing_engine = engine.clone();
    let task = tokio::spawn(async move {
        let mut deadline_rx = rx.clone();
        let stopping = async move {
            let _ = rx.wait_for(|stop| *stop).await;
            // Open Watch/TailLogs streams would hold the graceful stop forever: end them.
            closing_engine.begin_shutdown();
        };
        let serve = async move {
            match tls {
                Some(config) => {
                    let listener = crate::tls::TlsListener::new(listener, config).map_err(ServeError::Serve)?;
                    axum::serve(listener, app).with_graceful_shutdown(stopping).await
                }
                None => {
                    // Without TCP_NODELAY a small gRPC answer waits for the client's delayed ACK:
                    // ~40 ms on every call.
                    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                        let _ = tcp.set_nodelay(true);
                    });
                    axum::serve(listener, app).with_graceful_shutdown(stopping).await
                }
            }
            .map_err(ServeError::Serve)
        };
        tokio::select! {
            r = serve => r,
            _ = async {
                let _ = deadline_rx.wait_for(|stop| *stop).await;
                tokio::time::sleep(GRACE).await;
            } => {
                tracing::warn!("calls still open after {GRACE:?}; stopping anyway");
                Ok(())
            }
        }
    });
    crate::admin::write_endpoint(&config.data_dir, scheme, addr);
    tracing::info!(%addr, %scheme, data_dir = %config.data_dir.display(), tenant = %config.tenant, "tollgated listening");
    Ok(Running {
        addr,
        engine,
        shutdown,
        task,
    })
}

/// Applies every `*.yaml`/`*.yml` under `dir`; a bad file is reported and skipped, never fatal.
pub async fn load_flows_dir(engine: &Engine, dir: &Path) -> (usize, usize) {
    let mut files = Vec::new();
    collect_yaml(dir, &mut files);
    files.sort();
    let (mut ok, mut bad) = (0, 0);
    for file in files {
        let name = file.display().to_string();
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "cannot read flow file");
                bad += 1;
                continue;
            }
        };
        let applied = match engine.parse_flow(source.clone(), name.clone()).await {
            Ok(flow) => {
                engine
                    .apply_flow(flow, source, crate::engine::Actor::system().user.as_str())
                    .await
            }
            Err(e) => Err(e),
        };
        match applied {
            Ok(a) => {
                ok += 1;
                tracing::info!(file = %name, flow = %format!("{}.{}", a.head.namespace, a.head.id), revision = a.head.revision, changed = a.changed, "flow loaded");
            }
            Err(e) => {
                bad += 1;
                tracing::warn!(file = %name, "flow not loaded:\n{e}");
            }
        }
    }
    (ok, bad)
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        tracing::warn!(dir = %dir.display(), "cannot read flows directory");
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}
