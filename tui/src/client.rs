//! gRPC connection to a tollgated: one channel, a bearer token on every call.

use std::path::PathBuf;
use std::str::FromStr;

use tollgate_proto::v1::delegations_client::DelegationsClient;
use tollgate_proto::v1::{
    audit_client::AuditClient, auth_client::AuthClient, executions_client::ExecutionsClient, flows_client::FlowsClient,
};
use tollgate_proto::v1::{kv_client::KvClient, secrets_client::SecretsClient, stats_client::StatsClient};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// Default daemon address (PRODUCT.md).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:28080";

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;

/// The four API clients sharing one HTTP/2 connection.
#[derive(Clone)]
pub struct Clients {
    pub executions: ExecutionsClient<Authed>,
    pub flows: FlowsClient<Authed>,
    pub audit: AuditClient<Authed>,
    pub auth: AuthClient<Authed>,
    pub kv: KvClient<Authed>,
    pub secrets: SecretsClient<Authed>,
    pub stats: StatsClient<Authed>,
    pub delegations: DelegationsClient<Authed>,
    /// The connection with its token, for calls made without a generated client (the
    /// console's pipelined List pages, `console::pages`).
    pub service: Authed,
    pub server: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server address `{0}`: {1}")]
    BadAddress(String, String),
    #[error("cannot connect to {0}: {1} (is tollgated running? start it with `tollgated serve`)")]
    Unreachable(String, String),
    #[error(
        "cannot connect to {0}: {1} (the daemon's TLS certificate is not trusted: pass the CA that signed it with \
         --ca-cert or TOLLGATE_CA_CERT; a self-signed certificate must say basicConstraints=CA:FALSE)"
    )]
    Untrusted(String, String),
    #[error("cannot connect to {0}: {1} (does the daemon serve TLS? then use an https:// address)")]
    NotTls(String, String),
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    #[error("cannot use the CA certificate {0}: {1}")]
    BadCaCert(String, String),
}

/// Where to connect and with which token.
#[derive(Debug, Clone)]
pub struct Connection {
    pub server: String,
    pub token: Option<String>,
    /// Trusted besides the system's roots, for `https://` daemons with a private CA.
    pub ca_cert: Option<PathBuf>,
}

impl Connection {
    /// A connection with the system's trust roots only.
    pub fn new(server: impl Into<String>, token: Option<String>) -> Connection {
        Connection {
            server: server.into(),
            token,
            ca_cert: None,
        }
    }

    fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let endpoint = Endpoint::from_str(&self.server)
            .map_err(|e| ConnectError::BadAddress(self.server.clone(), e.to_string()))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        if !self.server.starts_with("https://") {
            return Ok(endpoint);
        }
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(path) = &self.ca_cert {
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|e| ConnectError::BadCaCert(shown.clone(), e.to_string()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(ConnectError::BadCaCert(
                    shown,
                    "no CERTIFICATE block in the file".into(),
                ));
            }
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint
            .tls_config(tls)
            .map_err(|e| ConnectError::BadAddress(self.server.clone(), source_chain(&e)))
    }

    fn interceptor(&self) -> Result<BearerToken, ConnectError> {
        match &self.token {
            None => Ok(BearerToken(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| BearerToken(Some(v)))
                .map_err(|_| ConnectError::BadToken),
        }
    }

    /// Connects now; fails fast when the daemon is not there.
    pub async fn connect(&self) -> Result<Clients, ConnectError> {
        let channel = self
            .endpoint()?
            .connect()
            .await
            .map_err(|e| self.connect_error(source_chain(&e)))?;
        self.clients(channel)
    }

    /// The error with a hint that fits what went wrong.
    fn connect_error(&self, chain: String) -> ConnectError {
        if chain.contains("certificate") {
            ConnectError::Untrusted(self.server.clone(), chain)
        } else if self.server.starts_with("http://") && chain.contains("frame") {
            ConnectError::NotTls(self.server.clone(), chain)
        } else {
            ConnectError::Unreachable(self.server.clone(), chain)
        }
    }

    /// A channel that connects on first use and reconnects after failures (for the console).
    pub fn connect_lazy(&self) -> Result<Clients, ConnectError> {
        let channel = self.endpoint()?.connect_lazy();
        self.clients(channel)
    }

    fn clients(&self, channel: Channel) -> Result<Clients, ConnectError> {
        let i = self.interceptor()?;
        Ok(Clients {
            // A file of up to 64 MiB travels in one GetFile answer.
            executions: ExecutionsClient::with_interceptor(channel.clone(), i.clone())
                .max_decoding_message_size(65 * 1024 * 1024),
            flows: FlowsClient::with_interceptor(channel.clone(), i.clone()),
            audit: AuditClient::with_interceptor(channel.clone(), i.clone()),
            auth: AuthClient::with_interceptor(channel.clone(), i.clone()),
            kv: KvClient::with_interceptor(channel.clone(), i.clone()),
            secrets: SecretsClient::with_interceptor(channel.clone(), i.clone()),
            stats: StatsClient::with_interceptor(channel.clone(), i.clone()),
            delegations: DelegationsClient::with_interceptor(channel.clone(), i.clone()),
            service: InterceptedService::new(channel, i),
            server: self.server.clone(),
        })
    }
}

/// An error and its causes on one line (tonic's transport errors hide the useful part in sources).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}
